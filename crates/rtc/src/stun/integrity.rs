//! MESSAGE-INTEGRITY(-SHA256) HMACs (RFC 8489 §14.5, §14.6) and FINGERPRINT's CRC-32 (§14.7).

use aws_lc_rs::{constant_time, hmac};

use super::{HEADER_LEN, StunError};

/// An HMAC key for MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256, prepared once.
///
/// For short-term credentials (ICE) the key bytes are the password (§9.1.1); for long-term
/// credentials they are MD5(username ":" realm ":" password) (§9.2.2), computed by the caller.
pub struct Key {
    sha1: hmac::Key,
    sha256: hmac::Key,
}

impl Key {
    /// Prepares both HMACs for `key` (the HMAC key schedule runs here, not per message).
    pub fn new(key: &[u8]) -> Self {
        Self {
            sha1: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
            sha256: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Which integrity attribute protects (or should protect) a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// MESSAGE-INTEGRITY: HMAC-SHA1, 20 bytes.
    Sha1,
    /// MESSAGE-INTEGRITY-SHA256: HMAC-SHA256, here always the full 32 bytes.
    Sha256,
}

impl Integrity {
    pub(super) fn attr_type(self) -> u16 {
        match self {
            Integrity::Sha1 => super::attr::MESSAGE_INTEGRITY,
            Integrity::Sha256 => super::attr::MESSAGE_INTEGRITY_SHA256,
        }
    }
}

/// The HMAC over `msg[..attr_at]` where `attr_at` is the offset of the integrity attribute
/// and `attr_len` its total size (header + value). §14.5: the header's length field is taken
/// as if the message ended right after this attribute, so attributes after it (other than
/// those the RFC lets follow) do not disturb the HMAC.
pub(super) fn compute(
    key: &Key,
    kind: Integrity,
    msg: &[u8],
    attr_at: usize,
    attr_len: usize,
) -> Option<hmac::Tag> {
    let length = u16::try_from((attr_at + attr_len).checked_sub(HEADER_LEN)?).ok()?;
    let mut ctx = hmac::Context::with_key(match kind {
        Integrity::Sha1 => &key.sha1,
        Integrity::Sha256 => &key.sha256,
    });
    ctx.update(msg.get(..2)?);
    ctx.update(&length.to_be_bytes());
    ctx.update(msg.get(4..attr_at)?);
    Some(ctx.sign())
}

/// Checks `tag` (possibly truncated, for SHA-256) in constant time.
pub(super) fn verify(
    key: &Key,
    kind: Integrity,
    msg: &[u8],
    attr_at: usize,
    tag: &[u8],
) -> Result<(), StunError> {
    let expected =
        compute(key, kind, msg, attr_at, 4 + tag.len()).ok_or(StunError::IntegrityMismatch)?;
    let expected = expected
        .as_ref()
        .get(..tag.len())
        .ok_or(StunError::IntegrityMismatch)?;
    constant_time::verify_slices_are_equal(expected, tag).map_err(|_| StunError::IntegrityMismatch)
}

/// FINGERPRINT's value: CRC-32 of everything before it, xored with "STUN" (§14.7).
pub(super) fn fingerprint(msg_before: &[u8]) -> u32 {
    crc32(msg_before) ^ 0x5354_554E
}

/// CRC-32 as in ISO 3309 / ITU-T V.42 (the zlib/Ethernet CRC), which §14.7 names.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    !crc
}

/// The byte-at-a-time table for the reflected polynomial 0xEDB88320, built at compile time.
/// A `static`, not a `const`: an unoptimised build copies a `const` array onto the stack at
/// every use, 1 KiB per byte hashed, which made a check flood overrun the debug test server.
static CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard "check" value of CRC-32/ISO-HDLC over the ASCII digits 1..9.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
