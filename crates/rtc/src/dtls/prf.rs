//! The TLS 1.2 key schedule for SHA-256 suites: PRF (RFC 5246 §5), extended master secret
//! (RFC 7627 §4), key block (RFC 5246 §6.3), Finished (§7.4.9) and exporter (RFC 5705 §4).

use aws_lc_rs::{digest, hmac};

/// P_SHA256(secret, label + seed) filling `out` (RFC 5246 §5).
pub fn prf(secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut label_seed = label.to_vec();
    seed.iter().for_each(|s| label_seed.extend_from_slice(s));
    // A(1) = HMAC(secret, seed); A(i) = HMAC(secret, A(i-1)).
    let mut a = hmac::sign(&key, &label_seed);
    for chunk in out.chunks_mut(32) {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(&label_seed);
        let block = ctx.sign();
        chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        a = hmac::sign(&key, a.as_ref());
    }
}

/// SHA-256 of the handshake messages so far.
pub fn transcript_hash(transcript: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, transcript).as_ref());
    out
}

/// The 48-byte master secret with the extended master secret construction (RFC 7627 §4):
/// the seed is the hash of the transcript up to and including ClientKeyExchange.
pub fn extended_master_secret(pre_master: &[u8], session_hash: &[u8; 32]) -> [u8; 48] {
    let mut ms = [0u8; 48];
    prf(
        pre_master,
        b"extended master secret",
        &[session_hash],
        &mut ms,
    );
    ms
}

/// AES-128-GCM traffic keys (RFC 5288 §3): write keys and 4-byte implicit nonce salts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficKeys {
    /// client_write_key.
    pub client_key: [u8; 16],
    /// server_write_key.
    pub server_key: [u8; 16],
    /// client_write_IV (GCM salt).
    pub client_iv: [u8; 4],
    /// server_write_IV (GCM salt).
    pub server_iv: [u8; 4],
}

/// Expands the master secret into the key block (RFC 5246 §6.3; no MAC keys for AEAD).
pub fn traffic_keys(master: &[u8; 48], client_random: &[u8], server_random: &[u8]) -> TrafficKeys {
    let mut kb = [0u8; 40];
    prf(
        master,
        b"key expansion",
        &[server_random, client_random],
        &mut kb,
    );
    let mut k = TrafficKeys {
        client_key: [0; 16],
        server_key: [0; 16],
        client_iv: [0; 4],
        server_iv: [0; 4],
    };
    k.client_key.copy_from_slice(&kb[..16]);
    k.server_key.copy_from_slice(&kb[16..32]);
    k.client_iv.copy_from_slice(&kb[32..36]);
    k.server_iv.copy_from_slice(&kb[36..40]);
    k
}

/// verify_data of a Finished message (RFC 5246 §7.4.9).
pub fn verify_data(master: &[u8; 48], client: bool, transcript: &[u8]) -> [u8; 12] {
    let label: &[u8] = if client {
        b"client finished"
    } else {
        b"server finished"
    };
    let mut out = [0u8; 12];
    prf(master, label, &[&transcript_hash(transcript)], &mut out);
    out
}

/// The RFC 5705 exporter without context; for DTLS-SRTP the label is "EXTRACTOR-dtls_srtp"
/// (RFC 5764 §4.2).
pub fn export(
    master: &[u8; 48],
    label: &str,
    client_random: &[u8],
    server_random: &[u8],
    len: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; len];
    prf(
        master,
        label.as_bytes(),
        &[client_random, server_random],
        &mut out,
    );
    out
}
