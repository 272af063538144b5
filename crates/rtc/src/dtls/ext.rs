//! Hello extensions (RFC 5246 §7.4.1.4) as one plain struct: the few we act on are typed,
//! everything else is kept raw and ignored — an unknown extension is never fatal.

use super::codec::{Reader, put_bytes, put_u16, put_u16_list, put_vec};
use super::error::DtlsError;

/// Extension type numbers (IANA "TLS ExtensionType Values").
pub mod ext_type {
    /// supported_groups (RFC 8422 §5.1.1).
    pub const SUPPORTED_GROUPS: u16 = 10;
    /// ec_point_formats (RFC 8422 §5.1.2).
    pub const EC_POINT_FORMATS: u16 = 11;
    /// signature_algorithms (RFC 5246 §7.4.1.4.1).
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    /// use_srtp (RFC 5764 §4.1.1).
    pub const USE_SRTP: u16 = 14;
    /// extended_master_secret (RFC 7627 §5.1).
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    /// supported_versions (RFC 8446 §4.2.1), seen in DTLS 1.3-capable ClientHellos.
    pub const SUPPORTED_VERSIONS: u16 = 43;
    /// cookie (RFC 8446 §4.2.2), in a HelloRetryRequest and the ClientHello answering it.
    pub const COOKIE: u16 = 44;
    /// key_share (RFC 8446 §4.2.8), seen in DTLS 1.3-capable ClientHellos.
    pub const KEY_SHARE: u16 = 51;
    /// renegotiation_info (RFC 5746 §3.2).
    pub const RENEGOTIATION_INFO: u16 = 0xff01;
}
use ext_type::*;

/// The extensions of a ClientHello or ServerHello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Named groups offered (client) for ECDHE.
    pub supported_groups: Option<Vec<u16>>,
    /// EC point formats (0 = uncompressed).
    pub ec_point_formats: Option<Vec<u8>>,
    /// SignatureAndHashAlgorithm values (TLS 1.3 calls them SignatureScheme).
    pub signature_algorithms: Option<Vec<u16>>,
    /// SRTP protection profiles (RFC 5764 §4.1.1); the server answers with exactly one.
    pub use_srtp: Option<Vec<u16>>,
    /// The srtp_mki field of use_srtp (we always send it empty).
    pub srtp_mki: Vec<u8>,
    /// extended_master_secret present.
    pub extended_master_secret: bool,
    /// renegotiation_info contents (empty on an initial handshake).
    pub renegotiation_info: Option<Vec<u8>>,
    /// DTLS 1.3 supported_versions (ClientHello form): we read it only to know we saw it.
    pub supported_versions: Option<Vec<u16>>,
    /// DTLS 1.3 key shares (ClientHello form): group and key_exchange; ignored by 1.2.
    pub key_shares: Option<Vec<(u16, Vec<u8>)>>,
    /// supported_versions in its ServerHello form: the version the server selected.
    pub selected_version: Option<u16>,
    /// key_share in its ServerHello form: the server's group and share.
    pub server_share: Option<(u16, Vec<u8>)>,
    /// key_share in its HelloRetryRequest form: the group the server wants a share for.
    pub hrr_group: Option<u16>,
    /// cookie (RFC 8446 §4.2.2).
    pub cookie: Option<Vec<u8>>,
    /// Every other extension, type and body, in the order received.
    pub unknown: Vec<(u16, Vec<u8>)>,
}

impl Extensions {
    /// Parses the `extensions` block (after its u16 length prefix has been stripped).
    /// `client_hello` selects the ClientHello forms of supported_versions and key_share.
    pub fn parse(mut r: Reader<'_>, client_hello: bool) -> Result<Self, DtlsError> {
        let mut e = Extensions::default();
        while !r.is_empty() {
            let typ = r.u16()?;
            let body = r.vec(2)?;
            let mut b = Reader::new(body, "extension");
            match typ {
                SUPPORTED_GROUPS => e.supported_groups = Some(b.u16_list(2)?),
                EC_POINT_FORMATS => e.ec_point_formats = Some(b.vec(1)?.to_vec()),
                SIGNATURE_ALGORITHMS => e.signature_algorithms = Some(b.u16_list(2)?),
                USE_SRTP => {
                    e.use_srtp = Some(b.u16_list(2)?);
                    e.srtp_mki = b.vec(1)?.to_vec();
                }
                EXTENDED_MASTER_SECRET => e.extended_master_secret = true,
                RENEGOTIATION_INFO => e.renegotiation_info = Some(b.vec(1)?.to_vec()),
                SUPPORTED_VERSIONS if client_hello => e.supported_versions = Some(b.u16_list(1)?),
                KEY_SHARE if client_hello => {
                    let mut list = b.sub(2)?;
                    let mut shares = Vec::new();
                    while !list.is_empty() {
                        shares.push((list.u16()?, list.vec(2)?.to_vec()));
                    }
                    e.key_shares = Some(shares);
                }
                SUPPORTED_VERSIONS => e.selected_version = Some(b.u16()?),
                KEY_SHARE if body.len() == 2 => e.hrr_group = Some(b.u16()?),
                KEY_SHARE => e.server_share = Some((b.u16()?, b.vec(2)?.to_vec())),
                COOKIE => e.cookie = Some(b.vec(2)?.to_vec()),
                _ => {
                    e.unknown.push((typ, b.rest().to_vec()));
                }
            }
            b.finish()?;
        }
        Ok(e)
    }

    /// Appends the extensions block including its u16 length prefix; nothing when empty.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if *self != Extensions::default() {
            self.encode_block(out);
        }
    }

    /// Appends the extensions block with its u16 length prefix even when empty, as TLS 1.3
    /// messages carry it (EncryptedExtensions, CertificateRequest; RFC 8446 §4.3).
    pub fn encode_block(&self, out: &mut Vec<u8>) {
        put_vec(out, 2, |o| {
            let mut ext = |typ: u16, body: &dyn Fn(&mut Vec<u8>)| {
                put_u16(o, typ);
                put_vec(o, 2, body);
            };
            if let Some(v) = &self.supported_groups {
                ext(SUPPORTED_GROUPS, &|b| put_u16_list(b, 2, v));
            }
            if let Some(v) = &self.ec_point_formats {
                ext(EC_POINT_FORMATS, &|b| put_bytes(b, 1, v));
            }
            if let Some(v) = &self.signature_algorithms {
                ext(SIGNATURE_ALGORITHMS, &|b| put_u16_list(b, 2, v));
            }
            if let Some(v) = &self.use_srtp {
                ext(USE_SRTP, &|b| {
                    put_u16_list(b, 2, v);
                    put_bytes(b, 1, &self.srtp_mki);
                });
            }
            if self.extended_master_secret {
                ext(EXTENDED_MASTER_SECRET, &|_| {});
            }
            if let Some(v) = &self.renegotiation_info {
                ext(RENEGOTIATION_INFO, &|b| put_bytes(b, 1, v));
            }
            if let Some(v) = &self.supported_versions {
                ext(SUPPORTED_VERSIONS, &|b| put_u16_list(b, 1, v));
            }
            if let Some(shares) = &self.key_shares {
                ext(KEY_SHARE, &|b| {
                    put_vec(b, 2, |l| {
                        for (group, key) in shares {
                            put_u16(l, *group);
                            put_bytes(l, 2, key);
                        }
                    })
                });
            }
            if let Some(v) = self.selected_version {
                ext(SUPPORTED_VERSIONS, &|b| put_u16(b, v));
            }
            if let Some((group, key)) = &self.server_share {
                ext(KEY_SHARE, &|b| {
                    put_u16(b, *group);
                    put_bytes(b, 2, key);
                });
            }
            if let Some(group) = self.hrr_group {
                ext(KEY_SHARE, &|b| put_u16(b, group));
            }
            if let Some(cookie) = &self.cookie {
                ext(COOKIE, &|b| put_bytes(b, 2, cookie));
            }
            for (typ, body) in &self.unknown {
                ext(*typ, &|b| b.extend_from_slice(body));
            }
        });
    }
}
