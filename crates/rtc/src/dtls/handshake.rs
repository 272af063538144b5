//! Steps both handshake roles share: checking the peer certificate against the SDP
//! fingerprint, deriving keys, verifying Finished, and reporting the connection.

use super::cert::{Fingerprint, PeerKey, peer_key};
use super::conn::{Conn, Phase};
use super::error::DtlsError;
use super::prf;
use super::{DtlsEvent, SRTP_EXPORTER_LABEL};
use crate::srtp::SrtpProfile;

/// Cipher suite TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (RFC 5289).
pub const ECDHE_ECDSA_AES128_GCM: u16 = 0xc02b;
/// Cipher suite TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (RFC 5289): only as a client, for
/// OpenSSL-based peers with RSA certificates.
pub const ECDHE_RSA_AES128_GCM: u16 = 0xc02f;
/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3).
pub const EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00ff;

/// What a handshake has learned so far, carried from state to state.
#[derive(Debug)]
pub struct Secrets {
    /// client_random.
    pub client_random: [u8; 32],
    /// server_random.
    pub server_random: [u8; 32],
    /// The negotiated SRTP profile.
    pub profile: SrtpProfile,
    /// The fingerprint SDP told us to expect.
    pub expected: Fingerprint,
    /// The peer certificate's key and fingerprint, once seen.
    pub peer: Option<(PeerKey, Fingerprint)>,
    /// The master secret, once derived.
    pub master: [u8; 48],
}

impl Secrets {
    /// Checks the peer's Certificate message: a leaf whose SHA-256 fingerprint is the one SDP
    /// announced (RFC 8122 §5, RFC 8827 §6.5) and whose key we can verify with.
    pub fn check_certificate(&mut self, certs: &[Vec<u8>]) -> Result<(), DtlsError> {
        self.peer = Some(check_peer_certificate(self.expected, certs)?);
        Ok(())
    }

    /// The peer's key (after [`Secrets::check_certificate`]).
    pub fn peer_key(&self) -> Result<&PeerKey, DtlsError> {
        self.peer
            .as_ref()
            .map(|p| &p.0)
            .ok_or(DtlsError::NoCertificate)
    }

    /// Derives the extended master secret from the transcript so far (which must end with
    /// ClientKeyExchange, RFC 7627 §4) and installs the epoch-1 keys.
    pub fn derive(&mut self, conn: &mut Conn, pre_master: &[u8]) -> Result<(), DtlsError> {
        let session_hash = prf::transcript_hash(&conn.transcript);
        self.master = prf::extended_master_secret(pre_master, &session_hash);
        let keys = prf::traffic_keys(&self.master, &self.client_random, &self.server_random);
        conn.install_keys(&keys)
    }

    /// verify_data for a Finished by the client or server over the transcript so far.
    pub fn verify_data(&self, conn: &Conn, client: bool) -> Vec<u8> {
        prf::verify_data(&self.master, client, &conn.transcript).to_vec()
    }

    /// Checks the peer's Finished (RFC 5246 §7.4.9) and that it came protected (epoch 1).
    pub fn check_finished(&self, conn: &Conn, epoch: u16, got: &[u8]) -> Result<(), DtlsError> {
        if epoch != 1 {
            return Err(DtlsError::UnexpectedMessage {
                expected: "Finished in epoch 1",
                got: "Finished in epoch 0",
            });
        }
        let expected = self.verify_data(conn, !conn.is_client);
        // verify_data is not secret; a plain comparison is fine.
        if expected != got {
            return Err(DtlsError::DecryptError("Finished"));
        }
        Ok(())
    }

    /// Reports the connection: SRTP profile, exported keys (RFC 5764 §4.2), peer fingerprint.
    pub fn connected(&self, conn: &mut Conn) {
        let len = self.profile.keying_material_len();
        let keying_material = prf::export(
            &self.master,
            SRTP_EXPORTER_LABEL,
            &self.client_random,
            &self.server_random,
            len,
        );
        let Some((_, fingerprint)) = self.peer else {
            return conn.fail(DtlsError::NoCertificate);
        };
        conn.phase = Phase::Connected;
        // Both Finished messages are checked or built: nothing reads the transcript again, and
        // it is most of what a connection holds afterwards (a ClientHello with post-quantum key
        // shares alone is ~1.8 KB, the buffer's capacity up to twice the messages).
        conn.transcript = Vec::new();
        conn.exporter = Some(Box::new((
            self.master,
            self.client_random,
            self.server_random,
        )));
        conn.timer.stop();
        conn.events.push_back(DtlsEvent::Connected {
            srtp_profile: self.profile,
            keying_material,
            peer_certificate_fingerprint: fingerprint,
        });
    }
}

/// Checks a peer's certificate list: a leaf whose SHA-256 fingerprint is the one SDP announced
/// (RFC 8122 §5, RFC 8827 §6.5) and whose key we can verify with. Both versions use it.
pub fn check_peer_certificate(
    expected: Fingerprint,
    certs: &[Vec<u8>],
) -> Result<(PeerKey, Fingerprint), DtlsError> {
    let leaf = certs.first().ok_or(DtlsError::NoCertificate)?;
    let actual = Fingerprint::of(leaf);
    if actual != expected {
        return Err(DtlsError::FingerprintMismatch { expected, actual });
    }
    Ok((peer_key(leaf)?, actual))
}

/// The SRTP profile for a peer's use_srtp offer: the first of ours it offers (RFC 5764 §4.1.1).
pub fn pick_srtp_profile(
    offered: Option<&[u16]>,
    ours: &[SrtpProfile],
) -> Result<SrtpProfile, DtlsError> {
    let offered = offered.unwrap_or(&[]);
    ours.iter()
        .copied()
        .find(|p| offered.contains(&p.id()))
        .ok_or(DtlsError::NoCommon("SRTP protection profile"))
}

/// The error for a message the current state does not accept.
pub fn unexpected(expected: &'static str, got: &super::msgs::Handshake) -> DtlsError {
    DtlsError::UnexpectedMessage {
        expected,
        got: got.name(),
    }
}
