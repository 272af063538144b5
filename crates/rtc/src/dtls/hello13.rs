//! The server's answer to a ClientHello that offers DTLS 1.3, before any state is kept
//! (RFC 9147 §5.1): go on in 1.3 at once, or send a stateless HelloRetryRequest whose cookie
//! carries everything needed to continue when the client returns it (RFC 8446 §4.2.2).
//!
//! The cookie is: flags (1: the HRR asked for a key share), the group (2), the hash of
//! ClientHello1 (32) and an HMAC-SHA256 over the peer's identity and those fields (32). From it
//! the server rebuilds the HelloRetryRequest and the transcript's first two messages.

use aws_lc_rs::hmac;

use super::codec::Reader;
use super::conn::Conn;
use super::crypto::ECDSA_P256_SHA256;
use super::error::DtlsError;
use super::ext::Extensions;
use super::kx::GROUPS;
use super::msgs::{ClientHello, DTLS1_2, Handshake, ServerHello, hs_type};
use super::msgs13::{DTLS1_3, HRR_RANDOM, TLS_AES_128_GCM_SHA256, message_hash, transcript_form};
use super::record::{content_type, write_plain};
use super::schedule::hash;

/// Everything the 1.3 server needs from the stateless phase.
#[derive(Debug, Clone)]
pub struct Upgrade13 {
    /// The ClientHello to answer.
    pub ch: ClientHello,
    /// Its body as received (the transcript hashes these bytes).
    pub body: Vec<u8>,
    /// Its message_seq.
    pub seq: u16,
    /// The group whose share we answer.
    pub group: u16,
    /// The transcript before this ClientHello: empty, or message_hash and the HRR.
    pub transcript: Vec<u8>,
}

/// True if the hello offers DTLS 1.3 in supported_versions (RFC 8446 §4.2.1).
pub fn offers_13(ch: &ClientHello) -> bool {
    ch.extensions
        .supported_versions
        .as_ref()
        .is_some_and(|v| v.contains(&DTLS1_3))
}

/// Decides how to answer a 1.3 ClientHello whose body is `body`. `Ok(Some(..))`: go on in 1.3;
/// `Ok(None)`: a HelloRetryRequest was queued (or a bad cookie dropped) and nothing is kept.
pub fn answer(
    conn: &mut Conn,
    peer_id: &[u8],
    ch: &ClientHello,
    seq: u16,
    body: &[u8],
) -> Result<Option<Upgrade13>, DtlsError> {
    let e = &ch.extensions;
    if !ch.cipher_suites.contains(&TLS_AES_128_GCM_SHA256) {
        return Err(DtlsError::NoCommon("cipher suite (TLS_AES_128_GCM_SHA256)"));
    }
    if !e
        .signature_algorithms
        .as_ref()
        .is_some_and(|s| s.contains(&ECDSA_P256_SHA256))
    {
        return Err(DtlsError::NoCommon(
            "signature algorithm (ecdsa_secp256r1_sha256)",
        ));
    }
    let share_of = |g: u16| {
        e.key_shares
            .as_ref()
            .is_some_and(|s| s.iter().any(|(group, _)| *group == g))
    };
    let supported = |g: &u16| e.supported_groups.as_ref().is_some_and(|s| s.contains(g));
    let key = &conn.config.cookie_key;
    if let Some(cookie) = &e.cookie {
        let Some((asked_share, group, ch1_hash)) = open_cookie(key, peer_id, cookie) else {
            return Ok(None); // forged or from another server: not worth an alert
        };
        if !share_of(group) {
            return Err(DtlsError::IllegalParameter(
                "no key share for the group we asked for",
            ));
        }
        let hrr = retry_request(ch, asked_share.then_some(group), cookie.clone());
        let transcript = [
            message_hash(&ch1_hash),
            transcript_form(hs_type::SERVER_HELLO, &hrr),
        ]
        .concat();
        return Ok(Some(Upgrade13 {
            ch: ch.clone(),
            body: body.to_vec(),
            seq,
            group,
            transcript,
        }));
    }
    let with_share = GROUPS.into_iter().find(|g| supported(g) && share_of(*g));
    if let Some(group) = with_share
        && conn.source_validated
    {
        // ICE already proved the address (RFC 9147 §5.1 makes the cookie optional).
        return Ok(Some(Upgrade13 {
            ch: ch.clone(),
            body: body.to_vec(),
            seq,
            group,
            transcript: Vec::new(),
        }));
    }
    let group = match with_share {
        Some(g) => g,
        None => GROUPS
            .into_iter()
            .find(supported)
            .ok_or(DtlsError::NoCommon("key exchange group"))?,
    };
    // RFC 8446 §4.2.8: a HelloRetryRequest may only ask for a share the client did not send.
    let asked_share = with_share.is_none();
    let ch1_hash = hash(&transcript_form(hs_type::CLIENT_HELLO, body));
    let cookie = seal_cookie(key, peer_id, asked_share, group, &ch1_hash);
    let hrr = retry_request(ch, asked_share.then_some(group), cookie);
    // Stateless like HelloVerifyRequest: message_seq and record sequence number echo the
    // ClientHello's (RFC 9147 §5.1).
    let mut datagram = Vec::new();
    let mut message = Vec::new();
    super::msgs::HandshakeHeader {
        msg_type: hs_type::SERVER_HELLO,
        length: hrr.len() as u32,
        message_seq: seq,
        fragment_offset: 0,
        fragment_length: hrr.len() as u32,
    }
    .encode(&mut message);
    message.extend_from_slice(&hrr);
    write_plain(
        &mut datagram,
        content_type::HANDSHAKE,
        DTLS1_2,
        conn.peer_epoch0_seq,
        &message,
    );
    conn.queue(datagram);
    Ok(None)
}

/// The HelloRetryRequest body (RFC 8446 §4.1.4), the same every time for the same inputs.
fn retry_request(ch: &ClientHello, group: Option<u16>, cookie: Vec<u8>) -> Vec<u8> {
    let hrr = Handshake::ServerHello(ServerHello {
        version: DTLS1_2,
        random: HRR_RANDOM,
        session_id: ch.session_id.clone(),
        cipher_suite: TLS_AES_128_GCM_SHA256,
        compression_method: 0,
        extensions: Extensions {
            selected_version: Some(DTLS1_3),
            hrr_group: group,
            cookie: Some(cookie),
            ..Default::default()
        },
    });
    let mut body = Vec::new();
    hrr.encode(&mut body);
    body
}

fn cookie_input(peer_id: &[u8], fields: &[u8]) -> Vec<u8> {
    let mut input = b"dtls13 cookie".to_vec();
    input.extend_from_slice(&(peer_id.len() as u16).to_be_bytes());
    input.extend_from_slice(peer_id);
    input.extend_from_slice(fields);
    input
}

fn seal_cookie(
    key: &hmac::Key,
    peer_id: &[u8],
    asked_share: bool,
    group: u16,
    ch1_hash: &[u8; 32],
) -> Vec<u8> {
    let mut c = vec![u8::from(asked_share)];
    c.extend_from_slice(&group.to_be_bytes());
    c.extend_from_slice(ch1_hash);
    let tag = hmac::sign(key, &cookie_input(peer_id, &c));
    c.extend_from_slice(tag.as_ref());
    c
}

fn open_cookie(key: &hmac::Key, peer_id: &[u8], cookie: &[u8]) -> Option<(bool, u16, [u8; 32])> {
    let mut r = Reader::new(cookie, "cookie");
    let fields = r.clone().take(35).ok()?;
    let flags = r.u8().ok()?;
    let group = r.u16().ok()?;
    let ch1_hash: [u8; 32] = r.array().ok()?;
    // aws-lc compares the tag in constant time.
    hmac::verify(key, &cookie_input(peer_id, fields), r.rest()).ok()?;
    (flags <= 1).then_some((flags == 1, group, ch1_hash))
}
