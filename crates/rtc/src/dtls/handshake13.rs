//! Steps both DTLS 1.3 roles share (RFC 8446 §4.4): the peer's Certificate checked against the
//! SDP fingerprint, CertificateVerify, Finished, the key changes, and reporting the connection.

use super::cert::{Fingerprint, PeerKey};
use super::conn::Phase;
use super::conn13::Conn13;
use super::crypto::{self, ECDSA_P256_SHA256};
use super::error::DtlsError;
use super::flight::FlightItem;
use super::handshake::check_peer_certificate;
use super::msgs13::{Handshake13, certificate_verify_input};
use super::schedule::{AppSecrets, DTLS13, HandshakeSecrets, TrafficKeys, export, verify_data};
use super::{DtlsEvent, SRTP_EXPORTER_LABEL};
use crate::srtp::SrtpProfile;

/// What a 1.3 handshake has learned, carried from state to state.
#[derive(Debug)]
pub struct Secrets13 {
    /// Handshake traffic secrets.
    pub hs: HandshakeSecrets,
    /// Application traffic secrets, once the server's Finished is in the transcript.
    pub app: Option<AppSecrets>,
    /// The negotiated SRTP profile.
    pub profile: SrtpProfile,
    /// The peer certificate's key and fingerprint, once seen.
    pub peer: Option<(PeerKey, Fingerprint)>,
}

impl Secrets13 {
    /// Derives the handshake secrets from the shared secret and the transcript so far (which
    /// ends with the ServerHello) and installs epoch 2 both ways (RFC 9147 §6.1).
    pub fn after_server_hello(
        conn: &mut Conn13,
        shared: &[u8],
        profile: SrtpProfile,
    ) -> Result<Self, DtlsError> {
        let hs = HandshakeSecrets::new(DTLS13, shared, &conn.transcript_hash())?;
        let client = TrafficKeys::new(DTLS13, &hs.client)?;
        let server = TrafficKeys::new(DTLS13, &hs.server)?;
        conn.install(2, !conn.is_client, &server)?;
        conn.install(2, conn.is_client, &client)?;
        Ok(Secrets13 {
            hs,
            app: None,
            profile,
            peer: None,
        })
    }

    /// Derives the application secrets once the server's Finished is in the transcript.
    pub fn after_server_finished(&mut self, conn: &Conn13) -> Result<(), DtlsError> {
        self.app = Some(AppSecrets::new(
            DTLS13,
            &self.hs.handshake,
            &conn.transcript_hash(),
        )?);
        Ok(())
    }

    /// Checks the peer's Certificate (an empty certificate_request_context, RFC 8446 §4.4.2).
    pub fn check_certificate(&mut self, conn: &Conn13, msg: &Handshake13) -> Result<(), DtlsError> {
        let Handshake13::Certificate { context, certs } = msg else {
            return Err(DtlsError::Internal("not a Certificate"));
        };
        if !context.is_empty() {
            return Err(DtlsError::IllegalParameter("certificate_request_context"));
        }
        self.peer = Some(check_peer_certificate(conn.expected_fingerprint, certs)?);
        Ok(())
    }

    /// Checks the peer's CertificateVerify over the transcript so far (§4.4.3).
    pub fn check_certificate_verify(
        &self,
        conn: &Conn13,
        scheme: u16,
        signature: &[u8],
    ) -> Result<(), DtlsError> {
        let key = self
            .peer
            .as_ref()
            .map(|p| &p.0)
            .ok_or(DtlsError::NoCertificate)?;
        // RSASSA-PKCS1-v1_5 is not allowed in TLS 1.3 signatures (RFC 8446 §4.2.3).
        if scheme == crypto::RSA_PKCS1_SHA256 {
            return Err(DtlsError::IllegalParameter("rsa_pkcs1 in TLS 1.3"));
        }
        let input = certificate_verify_input(conn.is_client, &conn.transcript_hash());
        crypto::verify(key, scheme, &input, signature, "CertificateVerify")
    }

    /// Our CertificateVerify over the transcript so far.
    pub fn certificate_verify(conn: &Conn13) -> Result<Handshake13, DtlsError> {
        let input = certificate_verify_input(!conn.is_client, &conn.transcript_hash());
        Ok(Handshake13::CertificateVerify {
            scheme: ECDSA_P256_SHA256,
            signature: conn.config.certificate().sign(&input)?,
        })
    }

    /// Queues our Certificate and CertificateVerify (RFC 8446 §4.4.2–4.4.3) in epoch 2;
    /// the signature covers the transcript with the certificate in it.
    pub fn push_certificate(
        conn: &mut Conn13,
        items: &mut Vec<FlightItem>,
    ) -> Result<(), DtlsError> {
        let cert = Handshake13::Certificate {
            context: Vec::new(),
            certs: vec![conn.config.certificate().der().to_vec()],
        };
        items.push(conn.message(2, &cert));
        let cv = Self::certificate_verify(conn)?;
        items.push(conn.message(2, &cv));
        Ok(())
    }

    /// Finished verify_data of the client or the server over the transcript so far.
    pub fn finished(&self, conn: &Conn13, client: bool) -> Result<Vec<u8>, DtlsError> {
        let base = if client {
            &self.hs.client
        } else {
            &self.hs.server
        };
        Ok(verify_data(DTLS13, base, &conn.transcript_hash())?.to_vec())
    }

    /// Checks the peer's Finished, which must come protected in epoch 2.
    pub fn check_finished(&self, conn: &Conn13, epoch: u16, got: &[u8]) -> Result<(), DtlsError> {
        if epoch != 2 {
            return Err(DtlsError::UnexpectedMessage {
                expected: "Finished in epoch 2",
                got: "Finished in another epoch",
            });
        }
        // verify_data is not secret; a plain comparison is fine.
        if self.finished(conn, !conn.is_client)? != got {
            return Err(DtlsError::DecryptError("Finished"));
        }
        Ok(())
    }

    /// Installs epoch 3 both ways, exports the SRTP keys (RFC 5764 §4.2 with the TLS 1.3
    /// exporter, RFC 8446 §7.5) and reports the connection.
    pub fn connected(&self, conn: &mut Conn13) -> Result<(), DtlsError> {
        let app = self
            .app
            .as_ref()
            .ok_or(DtlsError::Internal("no application secrets"))?;
        let client = TrafficKeys::new(DTLS13, &app.client)?;
        let server = TrafficKeys::new(DTLS13, &app.server)?;
        conn.install(3, conn.is_client, &client)?;
        conn.install(3, !conn.is_client, &server)?;
        let keying_material = export(
            DTLS13,
            &app.exporter,
            SRTP_EXPORTER_LABEL.as_bytes(),
            &[],
            self.profile.keying_material_len(),
        )?;
        let (_, fingerprint) = self.peer.as_ref().ok_or(DtlsError::NoCertificate)?;
        conn.exporter = Some(app.exporter);
        conn.phase = Phase::Connected;
        conn.transcript = Vec::new();
        conn.events.push_back(DtlsEvent::Connected {
            srtp_profile: self.profile,
            keying_material,
            peer_certificate_fingerprint: *fingerprint,
        });
        Ok(())
    }
}

/// The error for a message the current state does not accept.
pub fn unexpected13(expected: &'static str, got: &Handshake13) -> DtlsError {
    DtlsError::UnexpectedMessage {
        expected,
        got: got.name(),
    }
}
