//! DTLS 1.3 handshake messages (RFC 8446 §4, RFC 9147 §5) as plain types with `parse`/`encode`.
//! ClientHello and ServerHello keep the DTLS 1.2 layout ([`super::msgs`]); the rest changed.

use super::codec::{Reader, put_bytes, put_u16, put_vec};
use super::error::DtlsError;
use super::ext::Extensions;
use super::msgs::{ClientHello, Handshake, ServerHello, hs_type};

/// DTLS 1.3 on the wire (RFC 9147 §5.3).
pub const DTLS1_3: u16 = 0xfefc;
/// TLS_AES_128_GCM_SHA256 (RFC 8446 §B.4).
pub const TLS_AES_128_GCM_SHA256: u16 = 0x1301;
/// The ServerHello random that marks a HelloRetryRequest: SHA-256("HelloRetryRequest")
/// (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];
/// The last 8 bytes of a ServerHello random from a TLS 1.3-capable server that negotiated
/// (D)TLS 1.2 (RFC 8446 §4.1.3): a client that offered 1.3 treats them as a downgrade attack.
pub const DOWNGRADE_TLS12: [u8; 8] = [0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01];

/// Handshake types new in 1.3.
pub mod hs13 {
    #![allow(missing_docs)]
    pub const NEW_SESSION_TICKET: u8 = 4;
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    pub const KEY_UPDATE: u8 = 24;
    pub const MESSAGE_HASH: u8 = 254;
}
use hs_type::{
    CERTIFICATE, CERTIFICATE_REQUEST, CERTIFICATE_VERIFY, CLIENT_HELLO, FINISHED, SERVER_HELLO,
};
use hs13::*;

/// A DTLS 1.3 handshake message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake13 {
    /// ClientHello.
    ClientHello(ClientHello),
    /// ServerHello or HelloRetryRequest (random = [`HRR_RANDOM`]).
    ServerHello(ServerHello),
    /// EncryptedExtensions.
    EncryptedExtensions(Extensions),
    /// CertificateRequest: context and extensions.
    CertificateRequest {
        /// certificate_request_context.
        context: Vec<u8>,
        /// Extensions (signature_algorithms is required).
        extensions: Extensions,
    },
    /// Certificate: context and DER certificates, leaf first (entry extensions dropped).
    Certificate {
        /// certificate_request_context.
        context: Vec<u8>,
        /// cert_data of each entry.
        certs: Vec<Vec<u8>>,
    },
    /// CertificateVerify.
    CertificateVerify {
        /// SignatureScheme.
        scheme: u16,
        /// Signature over the context string and transcript hash (RFC 8446 §4.4.3).
        signature: Vec<u8>,
    },
    /// Finished: verify_data.
    Finished(Vec<u8>),
    /// KeyUpdate: request_update.
    KeyUpdate(u8),
    /// NewSessionTicket (we never resume; ignored).
    NewSessionTicket,
}

impl Handshake13 {
    /// The HandshakeType number.
    pub fn msg_type(&self) -> u8 {
        match self {
            Handshake13::ClientHello(_) => CLIENT_HELLO,
            Handshake13::ServerHello(_) => SERVER_HELLO,
            Handshake13::EncryptedExtensions(_) => ENCRYPTED_EXTENSIONS,
            Handshake13::CertificateRequest { .. } => CERTIFICATE_REQUEST,
            Handshake13::Certificate { .. } => CERTIFICATE,
            Handshake13::CertificateVerify { .. } => CERTIFICATE_VERIFY,
            Handshake13::Finished(_) => FINISHED,
            Handshake13::KeyUpdate(_) => KEY_UPDATE,
            Handshake13::NewSessionTicket => NEW_SESSION_TICKET,
        }
    }

    /// A name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Handshake13::EncryptedExtensions(_) => "EncryptedExtensions",
            Handshake13::KeyUpdate(_) => "KeyUpdate",
            Handshake13::NewSessionTicket => "NewSessionTicket",
            Handshake13::ServerHello(sh) if sh.random == HRR_RANDOM => "HelloRetryRequest",
            m => super::msgs::type_name(m.msg_type()),
        }
    }

    /// Parses the body of a reassembled message of type `msg_type`.
    pub fn parse(msg_type: u8, body: &[u8]) -> Result<Self, DtlsError> {
        let mut r = Reader::new(body, super::msgs::type_name(msg_type));
        let msg = match msg_type {
            CLIENT_HELLO | SERVER_HELLO => {
                return Ok(match Handshake::parse(msg_type, body)? {
                    Handshake::ClientHello(ch) => Handshake13::ClientHello(ch),
                    Handshake::ServerHello(sh) => Handshake13::ServerHello(sh),
                    _ => return Err(DtlsError::Decode("hello")),
                });
            }
            ENCRYPTED_EXTENSIONS => {
                Handshake13::EncryptedExtensions(Extensions::parse(r.sub(2)?, false)?)
            }
            CERTIFICATE_REQUEST => Handshake13::CertificateRequest {
                context: r.vec(1)?.to_vec(),
                extensions: Extensions::parse(r.sub(2)?, false)?,
            },
            CERTIFICATE => {
                let context = r.vec(1)?.to_vec();
                let mut list = r.sub(3)?;
                let mut certs = Vec::new();
                while !list.is_empty() {
                    certs.push(list.vec(3)?.to_vec());
                    list.vec(2)?; // per-entry extensions: nothing we use
                }
                Handshake13::Certificate { context, certs }
            }
            CERTIFICATE_VERIFY => Handshake13::CertificateVerify {
                scheme: r.u16()?,
                signature: r.vec(2)?.to_vec(),
            },
            FINISHED => Handshake13::Finished(r.rest().to_vec()),
            KEY_UPDATE => Handshake13::KeyUpdate(r.u8()?),
            NEW_SESSION_TICKET => {
                r.rest();
                Handshake13::NewSessionTicket
            }
            _ => return Err(DtlsError::Decode("unknown handshake message type")),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Appends the message body (without the handshake header).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Handshake13::ClientHello(ch) => Handshake::ClientHello(ch.clone()).encode(out),
            Handshake13::ServerHello(sh) => Handshake::ServerHello(sh.clone()).encode(out),
            Handshake13::EncryptedExtensions(e) => e.encode_block(out),
            Handshake13::CertificateRequest {
                context,
                extensions,
            } => {
                put_bytes(out, 1, context);
                extensions.encode_block(out);
            }
            Handshake13::Certificate { context, certs } => {
                put_bytes(out, 1, context);
                put_vec(out, 3, |o| {
                    for c in certs {
                        put_bytes(o, 3, c);
                        put_u16(o, 0);
                    }
                });
            }
            Handshake13::CertificateVerify { scheme, signature } => {
                put_u16(out, *scheme);
                put_bytes(out, 2, signature);
            }
            Handshake13::Finished(v) => out.extend_from_slice(v),
            Handshake13::KeyUpdate(r) => out.push(*r),
            Handshake13::NewSessionTicket => {}
        }
    }
}

/// A message as the TLS 1.3 transcript hashes it: type and 24-bit length, without DTLS's
/// message_seq and fragment fields (RFC 9147 §5.2).
pub fn transcript_form(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.push(msg_type);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

/// The synthetic message that replaces ClientHello1 in the transcript after a
/// HelloRetryRequest: message_hash, length 32, Hash(ClientHello1) (RFC 8446 §4.4.1).
pub fn message_hash(client_hello1_hash: &[u8; 32]) -> Vec<u8> {
    transcript_form(MESSAGE_HASH, client_hello1_hash)
}

/// The content CertificateVerify signs: 64 spaces, the context string, a zero byte and the
/// transcript hash (RFC 8446 §4.4.3).
pub fn certificate_verify_input(server: bool, transcript_hash: &[u8; 32]) -> Vec<u8> {
    let context: &[u8] = if server {
        b"TLS 1.3, server CertificateVerify"
    } else {
        b"TLS 1.3, client CertificateVerify"
    };
    [&[0x20u8; 64][..], context, &[0], transcript_hash].concat()
}

/// The body of an ACK record (RFC 9147 §7): record numbers as (epoch, sequence) pairs of u64.
pub fn encode_ack(records: &[(u16, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 16 * records.len());
    put_vec(&mut out, 2, |o| {
        for &(epoch, seq) in records {
            o.extend_from_slice(&u64::from(epoch).to_be_bytes());
            o.extend_from_slice(&seq.to_be_bytes());
        }
    });
    out
}

/// Parses an ACK body; record numbers whose epoch does not fit a u16 are not ours and skipped.
pub fn parse_ack(body: &[u8]) -> Result<Vec<(u16, u64)>, DtlsError> {
    let mut r = Reader::new(body, "ACK");
    let mut list = r.sub(2)?;
    r.finish()?;
    let mut out = Vec::with_capacity(list.len() / 16);
    while !list.is_empty() {
        let (epoch, seq) = (list.uint(8)?, list.uint(8)?);
        if let Ok(epoch) = u16::try_from(epoch) {
            out.push((epoch, seq));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_round_trip() {
        let ext = Extensions {
            signature_algorithms: Some(vec![0x0403]),
            ..Default::default()
        };
        for m in [
            Handshake13::EncryptedExtensions(Extensions::default()),
            Handshake13::EncryptedExtensions(Extensions {
                use_srtp: Some(vec![7]),
                ..Default::default()
            }),
            Handshake13::CertificateRequest {
                context: vec![],
                extensions: ext,
            },
            Handshake13::Certificate {
                context: vec![],
                certs: vec![vec![1, 2, 3], vec![4]],
            },
            Handshake13::CertificateVerify {
                scheme: 0x0403,
                signature: vec![9; 70],
            },
            Handshake13::Finished(vec![5; 32]),
            Handshake13::KeyUpdate(1),
        ] {
            let mut body = Vec::new();
            m.encode(&mut body);
            assert_eq!(Handshake13::parse(m.msg_type(), &body).unwrap(), m);
        }
        // An empty EncryptedExtensions still carries its length (RFC 8446 §4.3.1).
        let mut body = Vec::new();
        Handshake13::EncryptedExtensions(Extensions::default()).encode(&mut body);
        assert_eq!(body, [0, 0]);
    }

    #[test]
    fn hrr_random_is_the_hash_of_its_name() {
        assert_eq!(
            super::super::schedule::hash(b"HelloRetryRequest"),
            HRR_RANDOM
        );
    }

    #[test]
    fn ack_round_trip() {
        let acks = [(2, 0), (2, 1), (3, 70_000)];
        assert_eq!(parse_ack(&encode_ack(&acks)).unwrap(), acks);
        assert!(parse_ack(&[0, 16, 0]).is_err());
    }
}
