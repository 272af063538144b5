//! Attribute types (RFC 8489 §14, §18.3; RFC 8445 §16.1) and their value codecs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{MAGIC_COOKIE, StunError, TransactionId};

/// MAPPED-ADDRESS (§14.1).
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// USERNAME (§14.3).
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY, HMAC-SHA1 (§14.5).
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE (§14.8).
pub const ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES (§14.13).
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// REALM (§14.9).
pub const REALM: u16 = 0x0014;
/// NONCE (§14.10).
pub const NONCE: u16 = 0x0015;
/// MESSAGE-INTEGRITY-SHA256 (§14.6).
pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
/// XOR-MAPPED-ADDRESS (§14.2).
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// PRIORITY (RFC 8445 §7.1.1).
pub const PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE (RFC 8445 §7.1.2).
pub const USE_CANDIDATE: u16 = 0x0025;
/// SOFTWARE (§14.14).
pub const SOFTWARE: u16 = 0x8022;
/// FINGERPRINT (§14.7).
pub const FINGERPRINT: u16 = 0x8028;
/// ICE-CONTROLLED (RFC 8445 §7.1.3).
pub const ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING (RFC 8445 §7.1.3).
pub const ICE_CONTROLLING: u16 = 0x802A;

/// Types 0x0000–0x7FFF must be understood by the receiver (§14).
pub fn is_comprehension_required(typ: u16) -> bool {
    typ < 0x8000
}

/// Whether this module understands `typ` (so it is never reported as unknown).
pub fn is_known(typ: u16) -> bool {
    matches!(
        typ,
        MAPPED_ADDRESS
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | REALM
            | NONCE
            | MESSAGE_INTEGRITY_SHA256
            | XOR_MAPPED_ADDRESS
            | PRIORITY
            | USE_CANDIDATE
            | SOFTWARE
            | FINGERPRINT
            | ICE_CONTROLLED
            | ICE_CONTROLLING
    )
}

/// Checks the value of a known attribute so that accessors can read it infallibly.
/// Unknown attributes are only framed, never inspected.
pub(super) fn validate(typ: u16, value: &[u8]) -> Result<(), StunError> {
    let ok = match typ {
        MAPPED_ADDRESS | XOR_MAPPED_ADDRESS => matches!(
            (value.get(1), value.len()),
            (Some(&FAMILY_V4), 8) | (Some(&FAMILY_V6), 20)
        ),
        // §14.3 allows fewer than 509 bytes; RFC 5389 allowed 513. Accept either.
        USERNAME => value.len() <= 512,
        MESSAGE_INTEGRITY => value.len() == 20,
        // §14.6: at least 16 bytes, at most 32, a multiple of 4.
        MESSAGE_INTEGRITY_SHA256 => {
            (16..=32).contains(&value.len()) && value.len().is_multiple_of(4)
        }
        ERROR_CODE => ErrorCode::decode(value).is_some(),
        UNKNOWN_ATTRIBUTES => value.len().is_multiple_of(2),
        PRIORITY | FINGERPRINT => value.len() == 4,
        USE_CANDIDATE => value.is_empty(),
        ICE_CONTROLLED | ICE_CONTROLLING => value.len() == 8,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(StunError::BadAttribute(typ))
    }
}

const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

/// Decodes a (XOR-)MAPPED-ADDRESS value (§14.1, §14.2). With `xor`, the port is xored
/// with the cookie's top 16 bits and the address with cookie ‖ transaction ID.
pub(super) fn decode_address(value: &[u8], xor: Option<&TransactionId>) -> Option<SocketAddr> {
    let mask = xor_mask(xor);
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?])
        ^ u16::from_be_bytes([mask[0], mask[1]]);
    let raw = value.get(4..)?;
    let ip = match (*value.get(1)?, raw.len()) {
        (FAMILY_V4, 4) => {
            let mut a = [0u8; 4];
            xor_into(&mut a, raw, &mask);
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (FAMILY_V6, 16) => {
            let mut a = [0u8; 16];
            xor_into(&mut a, raw, &mask);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Writes a (XOR-)MAPPED-ADDRESS value into `out` and returns its length (8 or 20).
pub(super) fn encode_address(
    addr: SocketAddr,
    xor: Option<&TransactionId>,
    out: &mut [u8; 20],
) -> usize {
    let mask = xor_mask(xor);
    let port = addr.port() ^ u16::from_be_bytes([mask[0], mask[1]]);
    out[0] = 0;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = FAMILY_V4;
            xor_into(&mut out[4..8], &ip.octets(), &mask);
            8
        }
        IpAddr::V6(ip) => {
            out[1] = FAMILY_V6;
            xor_into(&mut out[4..20], &ip.octets(), &mask);
            20
        }
    }
}

/// Magic cookie followed by the transaction ID, or all zeros for plain MAPPED-ADDRESS.
fn xor_mask(xor: Option<&TransactionId>) -> [u8; 16] {
    let mut mask = [0u8; 16];
    if let Some(tid) = xor {
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&tid.0);
    }
    mask
}

fn xor_into(out: &mut [u8], src: &[u8], mask: &[u8; 16]) {
    for ((o, s), m) in out.iter_mut().zip(src).zip(mask) {
        *o = s ^ m;
    }
}

/// An ERROR-CODE value (§14.8): a code from 300 to 699 and a UTF-8 reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode<'a> {
    /// Class × 100 + number, e.g. 401.
    pub code: u16,
    /// The reason phrase as sent (UTF-8 per the RFC, not checked here).
    pub reason: &'a [u8],
}

impl<'a> ErrorCode<'a> {
    /// 400 Bad Request (§14.8).
    pub const BAD_REQUEST: u16 = 400;
    /// 401 Unauthenticated (§14.8).
    pub const UNAUTHENTICATED: u16 = 401;
    /// 420 Unknown Attribute (§14.8).
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    /// 487 Role Conflict (RFC 8445 §7.3.1.1).
    pub const ROLE_CONFLICT: u16 = 487;

    pub(super) fn decode(value: &'a [u8]) -> Option<Self> {
        let class = u16::from(*value.get(2)? & 0x07);
        let number = u16::from(*value.get(3)?);
        // §14.8: the class is 3 to 6 and the number 0 to 99.
        if !(3..=6).contains(&class) || number > 99 {
            return None;
        }
        Some(Self {
            code: class * 100 + number,
            reason: value.get(4..)?,
        })
    }
}
