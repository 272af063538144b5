//! The borrowed message view: [`parse`] frames and checks, accessors read in place.

use std::net::SocketAddr;

use super::attr::{self, ErrorCode};
use super::integrity::{self, Integrity, Key};
use super::{Class, HEADER_LEN, MAGIC_COOKIE, Method, StunError, TransactionId, split_type};

/// A STUN message borrowed from a datagram. Made by [`parse`], which has checked the
/// header, the framing of every attribute and the values of the attributes this module
/// knows, so accessors cannot fail: they return `None` only when an attribute is absent.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    class: Class,
    method: Method,
    transaction_id: TransactionId,
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
}

/// One attribute as it appears in the message: its type and its value without padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute type (see [`attr`](super::attr) for the known ones).
    pub typ: u16,
    /// The value, without padding.
    pub value: &'a [u8],
}

/// Parses `bytes` as exactly one STUN message (§5, §14).
///
/// Checks: the first two bits are zero, the magic cookie, that the length is a multiple
/// of 4 and matches the datagram, that every attribute and its padding fit, that the
/// values of known attributes are well formed, and that FINGERPRINT (if any) is last.
/// Unknown attributes are framed and kept. Attributes that follow MESSAGE-INTEGRITY, other
/// than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, are ignored as §14.5 requires (likewise
/// all but FINGERPRINT after MESSAGE-INTEGRITY-SHA256, §14.6). No integrity is verified
/// here: see [`Message::verify_integrity`] and [`Message::verify_fingerprint`].
pub fn parse(bytes: &[u8]) -> Result<Message<'_>, StunError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(StunError::TooShort)?;
    if header[0] & 0xC0 != 0 {
        return Err(StunError::NotStun);
    }
    if u32::from_be_bytes([header[4], header[5], header[6], header[7]]) != MAGIC_COOKIE {
        return Err(StunError::BadMagicCookie);
    }
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let actual = bytes.len() - HEADER_LEN;
    if !length.is_multiple_of(4) || length != actual {
        return Err(StunError::BadLength {
            header: length,
            actual,
        });
    }
    let (class, method) = split_type(u16::from_be_bytes([header[0], header[1]]));
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&header[8..]);
    let mut msg = Message {
        bytes,
        class,
        method,
        transaction_id: TransactionId(tid),
        integrity: None,
        integrity_sha256: None,
        fingerprint: None,
    };
    let mut cutoff = Cutoff::default();
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let (typ, value, next) = read_attr(bytes, pos)?;
        if msg.fingerprint.is_some() {
            return Err(StunError::FingerprintNotLast);
        }
        if cutoff.admit(typ) {
            attr::validate(typ, value)?;
            match typ {
                attr::MESSAGE_INTEGRITY => msg.integrity = Some(pos),
                attr::MESSAGE_INTEGRITY_SHA256 => msg.integrity_sha256 = Some(pos),
                attr::FINGERPRINT => msg.fingerprint = Some(pos),
                _ => {}
            }
        }
        pos = next;
    }
    Ok(msg)
}

/// Reads the attribute at `pos`: its type, its value and where the next one starts.
fn read_attr(bytes: &[u8], pos: usize) -> Result<(u16, &[u8], usize), StunError> {
    let h = bytes.get(pos..pos + 4).ok_or(StunError::Truncated(0))?;
    let typ = u16::from_be_bytes([h[0], h[1]]);
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let start = pos + 4;
    // §14: values are padded to a multiple of 4 bytes; the padding must be present too.
    let next = start + len.next_multiple_of(4);
    if next > bytes.len() {
        return Err(StunError::Truncated(typ));
    }
    let value = bytes
        .get(start..start + len)
        .ok_or(StunError::Truncated(typ))?;
    Ok((typ, value, next))
}

/// Which attributes still count, given the integrity attributes seen so far (§14.5, §14.6).
#[derive(Debug, Default, Clone, Copy)]
struct Cutoff {
    after_integrity: bool,
    after_integrity_sha256: bool,
}

impl Cutoff {
    fn admit(&mut self, typ: u16) -> bool {
        let ok = if self.after_integrity_sha256 {
            typ == attr::FINGERPRINT
        } else if self.after_integrity {
            typ == attr::FINGERPRINT || typ == attr::MESSAGE_INTEGRITY_SHA256
        } else {
            true
        };
        if ok {
            match typ {
                attr::MESSAGE_INTEGRITY => self.after_integrity = true,
                attr::MESSAGE_INTEGRITY_SHA256 => self.after_integrity_sha256 = true,
                _ => {}
            }
        }
        ok
    }
}

/// The attributes of a message that count, in order (ignored ones are skipped).
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    pos: usize,
    cutoff: Cutoff,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        while self.pos < self.bytes.len() {
            let (typ, value, next) = read_attr(self.bytes, self.pos).ok()?;
            self.pos = next;
            if self.cutoff.admit(typ) {
                return Some(Attribute { typ, value });
            }
        }
        None
    }
}

impl<'a> Message<'a> {
    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Request, indication, success or error response.
    pub fn class(&self) -> Class {
        self.class
    }

    /// The method (ICE uses only [`Method::BINDING`]).
    pub fn method(&self) -> Method {
        self.method
    }

    /// The transaction ID.
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// Every attribute that counts, in order, unknown ones included.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            bytes: self.bytes,
            pos: HEADER_LEN,
            cutoff: Cutoff::default(),
        }
    }

    /// The value of the first attribute of type `typ` (§14: later duplicates are ignored).
    pub fn get(&self, typ: u16) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// Comprehension-required attribute types this module does not know: the list a
    /// 420 (Unknown Attribute) response carries in UNKNOWN-ATTRIBUTES (§6.3.1).
    pub fn unknown_comprehension_required(&self) -> impl Iterator<Item = u16> + 'a {
        self.attributes()
            .map(|a| a.typ)
            .filter(|&t| attr::is_comprehension_required(t) && !attr::is_known(t))
    }

    /// USERNAME, raw (§14.3).
    pub fn username(&self) -> Option<&'a [u8]> {
        self.get(attr::USERNAME)
    }

    /// SOFTWARE, raw (§14.14).
    pub fn software(&self) -> Option<&'a [u8]> {
        self.get(attr::SOFTWARE)
    }

    /// REALM, raw (§14.9).
    pub fn realm(&self) -> Option<&'a [u8]> {
        self.get(attr::REALM)
    }

    /// NONCE, raw (§14.10).
    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.get(attr::NONCE)
    }

    /// XOR-MAPPED-ADDRESS, decoded (§14.2).
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        attr::decode_address(
            self.get(attr::XOR_MAPPED_ADDRESS)?,
            Some(&self.transaction_id),
        )
    }

    /// MAPPED-ADDRESS (§14.1).
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        attr::decode_address(self.get(attr::MAPPED_ADDRESS)?, None)
    }

    /// ERROR-CODE (§14.8).
    pub fn error_code(&self) -> Option<ErrorCode<'a>> {
        ErrorCode::decode(self.get(attr::ERROR_CODE)?)
    }

    /// The attribute types listed in UNKNOWN-ATTRIBUTES (§14.13).
    pub fn unknown_attributes(&self) -> impl Iterator<Item = u16> + 'a {
        self.get(attr::UNKNOWN_ATTRIBUTES)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }

    /// PRIORITY (RFC 8445 §7.1.1).
    pub fn priority(&self) -> Option<u32> {
        Some(u32::from_be_bytes(
            self.get(attr::PRIORITY)?.try_into().ok()?,
        ))
    }

    /// Whether USE-CANDIDATE is present (RFC 8445 §7.1.2).
    pub fn use_candidate(&self) -> bool {
        self.get(attr::USE_CANDIDATE).is_some()
    }

    /// ICE-CONTROLLED's tie-breaker (RFC 8445 §7.1.3).
    pub fn ice_controlled(&self) -> Option<u64> {
        Some(u64::from_be_bytes(
            self.get(attr::ICE_CONTROLLED)?.try_into().ok()?,
        ))
    }

    /// ICE-CONTROLLING's tie-breaker (RFC 8445 §7.1.3).
    pub fn ice_controlling(&self) -> Option<u64> {
        Some(u64::from_be_bytes(
            self.get(attr::ICE_CONTROLLING)?.try_into().ok()?,
        ))
    }

    /// MESSAGE-INTEGRITY's HMAC-SHA1 as sent.
    pub fn message_integrity(&self) -> Option<&'a [u8]> {
        self.value_at(self.integrity?)
    }

    /// MESSAGE-INTEGRITY-SHA256's (possibly truncated) HMAC-SHA256 as sent.
    pub fn message_integrity_sha256(&self) -> Option<&'a [u8]> {
        self.value_at(self.integrity_sha256?)
    }

    /// FINGERPRINT's value as sent.
    pub fn fingerprint(&self) -> Option<u32> {
        Some(u32::from_be_bytes(
            self.value_at(self.fingerprint?)?.try_into().ok()?,
        ))
    }

    /// Which integrity attribute [`verify_integrity`](Self::verify_integrity) would check.
    pub fn integrity_kind(&self) -> Option<Integrity> {
        if self.integrity_sha256.is_some() {
            Some(Integrity::Sha256)
        } else if self.integrity.is_some() {
            Some(Integrity::Sha1)
        } else {
            None
        }
    }

    /// Verifies the message's integrity under `key` and says which attribute was checked.
    ///
    /// MESSAGE-INTEGRITY-SHA256 is preferred when present (§9.1.3 lets the stronger one
    /// decide); otherwise MESSAGE-INTEGRITY. The HMAC covers the message up to the
    /// attribute with the length field adjusted to end after it (§14.5, §14.6).
    pub fn verify_integrity(&self, key: &Key) -> Result<Integrity, StunError> {
        let kind = self.integrity_kind().ok_or(StunError::MissingIntegrity)?;
        let at = match kind {
            Integrity::Sha1 => self.integrity,
            Integrity::Sha256 => self.integrity_sha256,
        }
        .ok_or(StunError::MissingIntegrity)?;
        let tag = self.value_at(at).ok_or(StunError::IntegrityMismatch)?;
        integrity::verify(key, kind, self.bytes, at, tag)?;
        Ok(kind)
    }

    /// Checks that FINGERPRINT is present and matches (§7, §14.7).
    pub fn verify_fingerprint(&self) -> Result<(), StunError> {
        let at = self.fingerprint.ok_or(StunError::MissingFingerprint)?;
        let sent = self.fingerprint().ok_or(StunError::MissingFingerprint)?;
        let before = self.bytes.get(..at).ok_or(StunError::FingerprintMismatch)?;
        if integrity::fingerprint(before) == sent {
            Ok(())
        } else {
            Err(StunError::FingerprintMismatch)
        }
    }

    fn value_at(&self, at: usize) -> Option<&'a [u8]> {
        read_attr(self.bytes, at).ok().map(|(_, value, _)| value)
    }
}
