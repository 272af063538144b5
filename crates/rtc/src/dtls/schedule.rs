//! The TLS 1.3 key schedule (RFC 8446 §7) for SHA-256 suites, as DTLS 1.3 uses it: the same
//! derivations with the label prefix "dtls13" instead of "tls13 " (RFC 9147 §5.9). The prefix
//! is a parameter so that RFC 8448's TLS 1.3 traces can check every step.
//!
//! HKDF-Expand is aws-lc-rs's; HKDF-Extract is one HMAC (RFC 5869 §2.2), done with aws-lc-rs's
//! HMAC so that the extracted secrets stay visible to the known-answer tests.

use aws_lc_rs::{digest, hkdf, hmac};

use super::error::DtlsError;

/// The label prefix of DTLS 1.3 (RFC 9147 §5.9).
pub const DTLS13: &[u8] = b"dtls13";
/// The label prefix of TLS 1.3 (RFC 8446 §7.1), for RFC 8448's vectors.
pub const TLS13: &[u8] = b"tls13 ";
/// SHA-256 output length.
pub const HASH_LEN: usize = 32;

/// A secret of the schedule.
pub type Secret = [u8; HASH_LEN];

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// SHA-256 of `data`.
pub fn hash(data: &[u8]) -> Secret {
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// HKDF-Extract(salt, ikm) = HMAC-SHA256(salt, ikm) (RFC 5869 §2.2).
pub fn extract(salt: &[u8], ikm: &[u8]) -> Secret {
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), ikm).as_ref());
    out
}

/// HKDF-Expand-Label(secret, label, context, out.len()) (RFC 8446 §7.1).
pub fn expand_label(
    prefix: &[u8],
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), DtlsError> {
    let mut info = Vec::with_capacity(4 + prefix.len() + label.len() + context.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push((prefix.len() + label.len()) as u8);
    info.extend_from_slice(prefix);
    info.extend_from_slice(label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    let info = [info.as_slice()];
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| DtlsError::Internal("HKDF-Expand"))
}

/// Derive-Secret(secret, label, messages) with the transcript already hashed.
pub fn derive_secret(
    prefix: &[u8],
    secret: &Secret,
    label: &[u8],
    transcript_hash: &Secret,
) -> Result<Secret, DtlsError> {
    let mut out = [0u8; HASH_LEN];
    expand_label(prefix, secret, label, transcript_hash, &mut out)?;
    Ok(out)
}

/// The Handshake Secret from the (EC)DHE or hybrid shared secret, without a PSK:
/// Extract(Derive-Secret(Extract(0, 0), "derived", ""), shared).
pub fn handshake_secret(prefix: &[u8], shared: &[u8]) -> Result<Secret, DtlsError> {
    let early = extract(&[0; HASH_LEN], &[0; HASH_LEN]);
    let derived = derive_secret(prefix, &early, b"derived", &hash(&[]))?;
    Ok(extract(&derived, shared))
}

/// The Master Secret: Extract(Derive-Secret(handshake_secret, "derived", ""), 0).
pub fn master_secret(prefix: &[u8], handshake: &Secret) -> Result<Secret, DtlsError> {
    let derived = derive_secret(prefix, handshake, b"derived", &hash(&[]))?;
    Ok(extract(&derived, &[0; HASH_LEN]))
}

/// AES-128-GCM record keys from a traffic secret (RFC 8446 §7.3), with the record number
/// encryption key of RFC 9147 §4.2.3.
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficKeys {
    /// write_key.
    pub key: [u8; 16],
    /// write_iv.
    pub iv: [u8; 12],
    /// sn_key.
    pub sn: [u8; 16],
}

impl std::fmt::Debug for TrafficKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrafficKeys(..)")
    }
}

impl TrafficKeys {
    /// The keys of `secret`.
    pub fn new(prefix: &[u8], secret: &Secret) -> Result<Self, DtlsError> {
        let mut k = TrafficKeys {
            key: [0; 16],
            iv: [0; 12],
            sn: [0; 16],
        };
        expand_label(prefix, secret, b"key", &[], &mut k.key)?;
        expand_label(prefix, secret, b"iv", &[], &mut k.iv)?;
        expand_label(prefix, secret, b"sn", &[], &mut k.sn)?;
        Ok(k)
    }
}

/// Finished verify_data: HMAC(finished_key, transcript hash) (RFC 8446 §4.4.4).
pub fn verify_data(
    prefix: &[u8],
    base: &Secret,
    transcript_hash: &Secret,
) -> Result<Secret, DtlsError> {
    let mut finished_key = [0u8; HASH_LEN];
    expand_label(prefix, base, b"finished", &[], &mut finished_key)?;
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(
        hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &finished_key),
            transcript_hash,
        )
        .as_ref(),
    );
    Ok(out)
}

/// TLS-Exporter(label, context, len) from the exporter master secret (RFC 8446 §7.5). WebRTC's
/// "EXTRACTOR-dtls_srtp" has no context, which TLS 1.3 treats as an empty one.
pub fn export(
    prefix: &[u8],
    exporter_master: &Secret,
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Result<Vec<u8>, DtlsError> {
    let secret = derive_secret(prefix, exporter_master, label, &hash(&[]))?;
    let mut out = vec![0u8; len];
    expand_label(prefix, &secret, b"exporter", &hash(context), &mut out)?;
    Ok(out)
}

/// The secrets after the ServerHello: the handshake traffic secrets of both sides.
#[derive(Clone)]
pub struct HandshakeSecrets {
    /// Handshake Secret.
    pub handshake: Secret,
    /// client_handshake_traffic_secret.
    pub client: Secret,
    /// server_handshake_traffic_secret.
    pub server: Secret,
}

impl std::fmt::Debug for HandshakeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandshakeSecrets(..)")
    }
}

impl HandshakeSecrets {
    /// From the shared secret and the hash of ClientHello..ServerHello.
    pub fn new(prefix: &[u8], shared: &[u8], hello_hash: &Secret) -> Result<Self, DtlsError> {
        let handshake = handshake_secret(prefix, shared)?;
        Ok(HandshakeSecrets {
            handshake,
            client: derive_secret(prefix, &handshake, b"c hs traffic", hello_hash)?,
            server: derive_secret(prefix, &handshake, b"s hs traffic", hello_hash)?,
        })
    }
}

/// The secrets after the server's Finished.
#[derive(Clone)]
pub struct AppSecrets {
    /// client_application_traffic_secret_0.
    pub client: Secret,
    /// server_application_traffic_secret_0.
    pub server: Secret,
    /// exporter_master_secret.
    pub exporter: Secret,
}

impl std::fmt::Debug for AppSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSecrets(..)")
    }
}

impl AppSecrets {
    /// From the Handshake Secret and the hash of ClientHello..server Finished.
    pub fn new(
        prefix: &[u8],
        handshake: &Secret,
        finished_hash: &Secret,
    ) -> Result<Self, DtlsError> {
        let master = master_secret(prefix, handshake)?;
        Ok(AppSecrets {
            client: derive_secret(prefix, &master, b"c ap traffic", finished_hash)?,
            server: derive_secret(prefix, &master, b"s ap traffic", finished_hash)?,
            exporter: derive_secret(prefix, &master, b"exp master", finished_hash)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn s(hex: &str) -> Secret {
        h(hex).try_into().unwrap()
    }

    // RFC 8448 §3, "Simple 1-RTT Handshake" (TLS_AES_128_GCM_SHA256, x25519).
    const CLIENT_HELLO: &str =
        "01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2
        1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01
        00 00 91 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00
        0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00
        23 00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2 3d 8e
        43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c 00 2b 00
        03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06
        04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c
        00 02 40 01";
    const SERVER_HELLO: &str = "02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c
        d3 4c 95 93 0c 8a c5 cb 14 34 da c1 55 77 2e d3 e2 69 28 00 13 01 00 00
        2e 00 33 00 24 00 1d 00 20 c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6 72
        e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04";
    const CLIENT_PRIVATE: &str = "49 af 42 ba 7f 79 94 85 2d 71 3e f2 78 4b cb ca a7 91 1d e2 6a dc 56 42 cb 63 45 40 e7 ea 50 05";
    const SERVER_PUBLIC: &str = "c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6 72 e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f";
    const ECDHE: &str = "8b d4 05 4f b5 5b 9d 63 fd fb ac f9 f0 4b 9f 0d 35 e6 d6 3f 53 75 63 ef d4 62 72 90 0f 89 49 2d";
    const EARLY: &str = "33 ad 0a 1c 60 7e c0 3b 09 e6 cd 98 93 68 0c e2 10 ad f3 00 aa 1f 26 60 e1 b2 2e 10 f1 70 f9 2a";
    const HANDSHAKE: &str = "1d c8 26 e9 36 06 aa 6f dc 0a ad c1 2f 74 1b 01 04 6a a6 b9 9f 69 1e d2 21 a9 f0 ca 04 3f be ac";
    const HELLO_HASH: &str = "86 0c 06 ed c0 78 58 ee 8e 78 f0 e7 42 8c 58 ed d6 b4 3f 2c a3 e6 e9 5f 02 ed 06 3c f0 e1 ca d8";
    const C_HS: &str = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
    const S_HS: &str = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";
    const MASTER: &str = "18 df 06 84 3d 13 a0 8b f2 a4 49 84 4c 5f 8a 47 80 01 bc 4d 4c 62 79 84 d5 a4 1d a8 d0 40 29 19";
    const FINISHED_HASH: &str = "96 08 10 2a 0f 1c cc 6d b6 25 0b 7b 7e 41 7b 1a 00 0e aa da 3d aa e4 77 7a 76 86 c9 ff 83 df 13";
    const C_AP: &str = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5";
    const S_AP: &str = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
    const EXP: &str = "fe 22 f8 81 17 6e da 18 eb 8f 44 52 9e 67 92 c5 0c 9a 3f 89 45 2f 68 d8 ae 31 1b 43 09 d3 cf 50";

    #[test]
    fn rfc8448_shared_secret_and_transcript() {
        use aws_lc_rs::agreement;
        let private =
            agreement::PrivateKey::from_private_key(&agreement::X25519, &h(CLIENT_PRIVATE))
                .unwrap();
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, h(SERVER_PUBLIC));
        let shared = agreement::agree(&private, peer, (), |k| Ok(k.to_vec())).unwrap();
        assert_eq!(shared, h(ECDHE));
        let transcript = [h(CLIENT_HELLO), h(SERVER_HELLO)].concat();
        assert_eq!(hash(&transcript), s(HELLO_HASH));
    }

    #[test]
    fn rfc8448_key_schedule() {
        assert_eq!(extract(&[0; 32], &[0; 32]), s(EARLY));
        assert_eq!(handshake_secret(TLS13, &h(ECDHE)).unwrap(), s(HANDSHAKE));
        let hs = HandshakeSecrets::new(TLS13, &h(ECDHE), &s(HELLO_HASH)).unwrap();
        assert_eq!(hs.client, s(C_HS));
        assert_eq!(hs.server, s(S_HS));
        assert_eq!(master_secret(TLS13, &hs.handshake).unwrap(), s(MASTER));
        let app = AppSecrets::new(TLS13, &hs.handshake, &s(FINISHED_HASH)).unwrap();
        assert_eq!(app.client, s(C_AP));
        assert_eq!(app.server, s(S_AP));
        assert_eq!(app.exporter, s(EXP));
    }

    #[test]
    fn rfc8448_traffic_keys() {
        let server_hs = TrafficKeys::new(TLS13, &s(S_HS)).unwrap();
        assert_eq!(
            server_hs.key.to_vec(),
            h("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
        );
        assert_eq!(
            server_hs.iv.to_vec(),
            h("5d 31 3e b2 67 12 76 ee 13 00 0b 30")
        );
        let client_hs = TrafficKeys::new(TLS13, &s(C_HS)).unwrap();
        assert_eq!(
            client_hs.key.to_vec(),
            h("db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01")
        );
        assert_eq!(
            client_hs.iv.to_vec(),
            h("5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f")
        );
        let server_ap = TrafficKeys::new(TLS13, &s(S_AP)).unwrap();
        assert_eq!(
            server_ap.key.to_vec(),
            h("9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56")
        );
        assert_eq!(
            server_ap.iv.to_vec(),
            h("cf 78 2b 88 dd 83 54 9a ad f1 e9 84")
        );
        // The server's finished_key (RFC 8448 §3 logs it as an intermediate value).
        let mut fk = [0u8; 32];
        expand_label(TLS13, &s(S_HS), b"finished", &[], &mut fk).unwrap();
        assert_eq!(
            fk.to_vec(),
            h(
                "00 8d 3b 66 f8 16 ea 55 9f 96 b5 37 e8 85 c3 1f c0 68 bf 49 2c 65 2f 01 f2 88 a1 d8 cd c1 9f c8"
            )
        );
    }

    /// The DTLS prefix changes every derived value (RFC 9147 §5.9): a schedule that ignored it
    /// would pass the TLS vectors and fail every peer.
    #[test]
    fn dtls_prefix_differs() {
        let tls = HandshakeSecrets::new(TLS13, &h(ECDHE), &s(HELLO_HASH)).unwrap();
        let dtls = HandshakeSecrets::new(DTLS13, &h(ECDHE), &s(HELLO_HASH)).unwrap();
        assert_ne!(tls.client, dtls.client);
        assert_eq!(tls.handshake.len(), dtls.handshake.len());
        let a = export(DTLS13, &s(EXP), b"EXTRACTOR-dtls_srtp", &[], 60).unwrap();
        let b = export(TLS13, &s(EXP), b"EXTRACTOR-dtls_srtp", &[], 60).unwrap();
        assert_eq!(a.len(), 60);
        assert_ne!(a, b);
    }
}
