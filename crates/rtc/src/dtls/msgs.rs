//! Handshake messages (RFC 5246 §7.4, RFC 6347 §4.2, RFC 8422 §5) as plain types with
//! `parse`/`encode`. No state lives here: the fuzzers drive these directly.

use super::codec::{Reader, put_bytes, put_u16, put_u16_list, put_uint, put_vec};
use super::error::DtlsError;
use super::ext::Extensions;

/// DTLS 1.0 on the wire (used in HelloVerifyRequest, RFC 6347 §4.2.1).
pub const DTLS1_0: u16 = 0xfeff;
/// DTLS 1.2 on the wire.
pub const DTLS1_2: u16 = 0xfefd;

/// Handshake message types (RFC 5246 §7.4, RFC 6347 §4.3.2).
pub mod hs_type {
    #![allow(missing_docs)]
    pub const HELLO_REQUEST: u8 = 0;
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const HELLO_VERIFY_REQUEST: u8 = 3;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const CERTIFICATE_REQUEST: u8 = 13;
    pub const SERVER_HELLO_DONE: u8 = 14;
    pub const CERTIFICATE_VERIFY: u8 = 15;
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    pub const FINISHED: u8 = 20;
}
use hs_type::*;

/// The 12-byte DTLS handshake header (RFC 6347 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeHeader {
    /// HandshakeType.
    pub msg_type: u8,
    /// Length of the whole message body.
    pub length: u32,
    /// Handshake message sequence number.
    pub message_seq: u16,
    /// Where this fragment starts in the body.
    pub fragment_offset: u32,
    /// Length of this fragment.
    pub fragment_length: u32,
}

impl HandshakeHeader {
    /// Header length on the wire.
    pub const LEN: usize = 12;

    /// Reads a header and its fragment bytes; the fragment must lie inside the message.
    pub fn parse<'a>(r: &mut Reader<'a>) -> Result<(Self, &'a [u8]), DtlsError> {
        let h = HandshakeHeader {
            msg_type: r.u8()?,
            length: r.u24()?,
            message_seq: r.u16()?,
            fragment_offset: r.u24()?,
            fragment_length: r.u24()?,
        };
        if h.fragment_offset.saturating_add(h.fragment_length) > h.length {
            return Err(DtlsError::Decode("handshake fragment header"));
        }
        Ok((h, r.take(h.fragment_length as usize)?))
    }

    /// Appends the header.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.msg_type);
        put_uint(out, self.length.into(), 3);
        put_u16(out, self.message_seq);
        put_uint(out, self.fragment_offset.into(), 3);
        put_uint(out, self.fragment_length.into(), 3);
    }
}

/// ClientHello (RFC 6347 §4.2.1: with a cookie field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// client_version: the highest DTLS version offered in the legacy field.
    pub version: u16,
    /// client random.
    pub random: [u8; 32],
    /// session_id (we never resume).
    pub session_id: Vec<u8>,
    /// cookie from a HelloVerifyRequest, empty at first.
    pub cookie: Vec<u8>,
    /// Offered cipher suites.
    pub cipher_suites: Vec<u16>,
    /// Offered compression methods (must include null).
    pub compression_methods: Vec<u8>,
    /// Extensions.
    pub extensions: Extensions,
}

/// ServerHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// server_version.
    pub version: u16,
    /// server random.
    pub random: [u8; 32],
    /// session_id.
    pub session_id: Vec<u8>,
    /// Chosen cipher suite.
    pub cipher_suite: u16,
    /// Chosen compression method.
    pub compression_method: u8,
    /// Extensions.
    pub extensions: Extensions,
}

/// ServerKeyExchange for ECDHE with a named curve (RFC 8422 §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeyExchange {
    /// NamedGroup.
    pub group: u16,
    /// Server's ephemeral public key.
    pub public: Vec<u8>,
    /// SignatureAndHashAlgorithm used.
    pub scheme: u16,
    /// Signature over client_random + server_random + params.
    pub signature: Vec<u8>,
}

impl ServerKeyExchange {
    /// The ServerECDHParams bytes that the signature covers (after both randoms).
    pub fn params(group: u16, public: &[u8]) -> Vec<u8> {
        let mut out = vec![3]; // ECCurveType named_curve
        put_u16(&mut out, group);
        put_bytes(&mut out, 1, public);
        out
    }
}

/// CertificateRequest (RFC 5246 §7.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    /// ClientCertificateType values (1 = rsa_sign, 64 = ecdsa_sign).
    pub certificate_types: Vec<u8>,
    /// Acceptable signature algorithms.
    pub signature_algorithms: Vec<u16>,
    /// DistinguishedName list, kept raw (WebRTC ignores it).
    pub authorities: Vec<u8>,
}

/// A handshake message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// HelloRequest: the server asks to renegotiate (we refuse).
    HelloRequest,
    /// ClientHello.
    ClientHello(ClientHello),
    /// ServerHello.
    ServerHello(ServerHello),
    /// HelloVerifyRequest (RFC 6347 §4.2.1).
    HelloVerifyRequest {
        /// server_version.
        version: u16,
        /// The cookie to echo.
        cookie: Vec<u8>,
    },
    /// Certificate: DER certificates, leaf first.
    Certificate(Vec<Vec<u8>>),
    /// ServerKeyExchange.
    ServerKeyExchange(ServerKeyExchange),
    /// CertificateRequest.
    CertificateRequest(CertificateRequest),
    /// ServerHelloDone.
    ServerHelloDone,
    /// CertificateVerify: scheme and signature over the transcript so far.
    CertificateVerify {
        /// SignatureAndHashAlgorithm.
        scheme: u16,
        /// Signature.
        signature: Vec<u8>,
    },
    /// ClientKeyExchange: the client's ephemeral ECDH public key.
    ClientKeyExchange(Vec<u8>),
    /// Finished: verify_data.
    Finished(Vec<u8>),
}

impl Handshake {
    /// The HandshakeType number.
    pub fn msg_type(&self) -> u8 {
        match self {
            Handshake::HelloRequest => HELLO_REQUEST,
            Handshake::ClientHello(_) => CLIENT_HELLO,
            Handshake::ServerHello(_) => SERVER_HELLO,
            Handshake::HelloVerifyRequest { .. } => HELLO_VERIFY_REQUEST,
            Handshake::Certificate(_) => CERTIFICATE,
            Handshake::ServerKeyExchange(_) => SERVER_KEY_EXCHANGE,
            Handshake::CertificateRequest(_) => CERTIFICATE_REQUEST,
            Handshake::ServerHelloDone => SERVER_HELLO_DONE,
            Handshake::CertificateVerify { .. } => CERTIFICATE_VERIFY,
            Handshake::ClientKeyExchange(_) => CLIENT_KEY_EXCHANGE,
            Handshake::Finished(_) => FINISHED,
        }
    }

    /// A name for error messages.
    pub fn name(&self) -> &'static str {
        type_name(self.msg_type())
    }

    /// Parses the body of a reassembled message of type `msg_type`.
    pub fn parse(msg_type: u8, body: &[u8]) -> Result<Self, DtlsError> {
        let mut r = Reader::new(body, type_name(msg_type));
        let msg = match msg_type {
            HELLO_REQUEST => Handshake::HelloRequest,
            CLIENT_HELLO => Handshake::ClientHello(ClientHello {
                version: r.u16()?,
                random: r.array()?,
                session_id: r.vec(1)?.to_vec(),
                cookie: r.vec(1)?.to_vec(),
                cipher_suites: r.u16_list(2)?,
                compression_methods: r.vec(1)?.to_vec(),
                extensions: parse_extensions(&mut r, true)?,
            }),
            SERVER_HELLO => Handshake::ServerHello(ServerHello {
                version: r.u16()?,
                random: r.array()?,
                session_id: r.vec(1)?.to_vec(),
                cipher_suite: r.u16()?,
                compression_method: r.u8()?,
                extensions: parse_extensions(&mut r, false)?,
            }),
            HELLO_VERIFY_REQUEST => Handshake::HelloVerifyRequest {
                version: r.u16()?,
                cookie: r.vec(1)?.to_vec(),
            },
            CERTIFICATE => {
                let mut list = r.sub(3)?;
                let mut certs = Vec::new();
                while !list.is_empty() {
                    certs.push(list.vec(3)?.to_vec());
                }
                Handshake::Certificate(certs)
            }
            SERVER_KEY_EXCHANGE => {
                if r.u8()? != 3 {
                    return Err(DtlsError::IllegalParameter(
                        "ECCurveType other than named_curve",
                    ));
                }
                Handshake::ServerKeyExchange(ServerKeyExchange {
                    group: r.u16()?,
                    public: r.vec(1)?.to_vec(),
                    scheme: r.u16()?,
                    signature: r.vec(2)?.to_vec(),
                })
            }
            CERTIFICATE_REQUEST => Handshake::CertificateRequest(CertificateRequest {
                certificate_types: r.vec(1)?.to_vec(),
                signature_algorithms: r.u16_list(2)?,
                authorities: r.vec(2)?.to_vec(),
            }),
            SERVER_HELLO_DONE => Handshake::ServerHelloDone,
            CERTIFICATE_VERIFY => Handshake::CertificateVerify {
                scheme: r.u16()?,
                signature: r.vec(2)?.to_vec(),
            },
            CLIENT_KEY_EXCHANGE => Handshake::ClientKeyExchange(r.vec(1)?.to_vec()),
            FINISHED => Handshake::Finished(r.rest().to_vec()),
            _ => return Err(DtlsError::Decode("unknown handshake message type")),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Appends the message body (without the handshake header).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Handshake::HelloRequest | Handshake::ServerHelloDone => {}
            Handshake::ClientHello(ch) => {
                put_u16(out, ch.version);
                out.extend_from_slice(&ch.random);
                put_bytes(out, 1, &ch.session_id);
                put_bytes(out, 1, &ch.cookie);
                put_u16_list(out, 2, &ch.cipher_suites);
                put_bytes(out, 1, &ch.compression_methods);
                ch.extensions.encode(out);
            }
            Handshake::ServerHello(sh) => {
                put_u16(out, sh.version);
                out.extend_from_slice(&sh.random);
                put_bytes(out, 1, &sh.session_id);
                put_u16(out, sh.cipher_suite);
                out.push(sh.compression_method);
                sh.extensions.encode(out);
            }
            Handshake::HelloVerifyRequest { version, cookie } => {
                put_u16(out, *version);
                put_bytes(out, 1, cookie);
            }
            Handshake::Certificate(certs) => put_vec(out, 3, |o| {
                certs.iter().for_each(|c| put_bytes(o, 3, c));
            }),
            Handshake::ServerKeyExchange(ske) => {
                out.extend_from_slice(&ServerKeyExchange::params(ske.group, &ske.public));
                put_u16(out, ske.scheme);
                put_bytes(out, 2, &ske.signature);
            }
            Handshake::CertificateRequest(cr) => {
                put_bytes(out, 1, &cr.certificate_types);
                put_u16_list(out, 2, &cr.signature_algorithms);
                put_bytes(out, 2, &cr.authorities);
            }
            Handshake::CertificateVerify { scheme, signature } => {
                put_u16(out, *scheme);
                put_bytes(out, 2, signature);
            }
            Handshake::ClientKeyExchange(public) => put_bytes(out, 1, public),
            Handshake::Finished(verify_data) => out.extend_from_slice(verify_data),
        }
    }

    /// The whole message as it enters the transcript (see [`full_message`]).
    pub fn to_message(&self, message_seq: u16) -> Vec<u8> {
        let mut body = Vec::new();
        self.encode(&mut body);
        full_message(self.msg_type(), message_seq, &body)
    }
}

/// A handshake message with the DTLS header of an unfragmented message, as it enters the
/// transcript (RFC 6347 §4.2.6).
pub fn full_message(msg_type: u8, message_seq: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HandshakeHeader::LEN + body.len());
    let length = body.len() as u32;
    HandshakeHeader {
        msg_type,
        length,
        message_seq,
        fragment_offset: 0,
        fragment_length: length,
    }
    .encode(&mut out);
    out.extend_from_slice(body);
    out
}

fn parse_extensions(r: &mut Reader<'_>, client_hello: bool) -> Result<Extensions, DtlsError> {
    if r.is_empty() {
        return Ok(Extensions::default());
    }
    Extensions::parse(r.sub(2)?, client_hello)
}

/// A name for a handshake type, for error messages.
pub fn type_name(msg_type: u8) -> &'static str {
    match msg_type {
        HELLO_REQUEST => "HelloRequest",
        CLIENT_HELLO => "ClientHello",
        SERVER_HELLO => "ServerHello",
        HELLO_VERIFY_REQUEST => "HelloVerifyRequest",
        CERTIFICATE => "Certificate",
        SERVER_KEY_EXCHANGE => "ServerKeyExchange",
        CERTIFICATE_REQUEST => "CertificateRequest",
        SERVER_HELLO_DONE => "ServerHelloDone",
        CERTIFICATE_VERIFY => "CertificateVerify",
        CLIENT_KEY_EXCHANGE => "ClientKeyExchange",
        FINISHED => "Finished",
        _ => "unknown handshake message",
    }
}
