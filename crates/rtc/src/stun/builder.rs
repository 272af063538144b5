//! Writes a STUN message into a reused `Vec<u8>`.

use std::net::SocketAddr;

use super::attr;
use super::integrity::{self, Integrity, Key};
use super::{Class, HEADER_LEN, MAGIC_COOKIE, Method, TransactionId, message_type};

/// How many types [`MessageBuilder::unknown_attributes`] lists; more would only make an
/// error response larger than the request that caused it.
pub const MAX_UNKNOWN: usize = 16;

/// Builds one message in a caller's buffer: header first, then attributes in the order
/// they are added, then (optionally) MESSAGE-INTEGRITY and FINGERPRINT, which must come
/// last in that order (§14.5, §14.7). The header's length is kept current after every
/// step, so the buffer holds a complete message at any point.
///
/// Messages are meant to fit a datagram; a caller that appends more than 64 KiB of
/// attributes gets a message whose length field is wrong (but no panic).
#[derive(Debug)]
pub struct MessageBuilder<'a> {
    buf: &'a mut Vec<u8>,
    padding: u8,
}

impl<'a> MessageBuilder<'a> {
    /// Clears `buf` and writes the header.
    pub fn new(buf: &'a mut Vec<u8>, class: Class, method: Method, tid: TransactionId) -> Self {
        buf.clear();
        buf.extend_from_slice(&message_type(class, method).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&tid.0);
        Self { buf, padding: 0 }
    }

    /// Sets the byte used to pad values to a multiple of 4. RFC 8489 §14 says zero (the
    /// default); RFC 5389 allowed any value and RFC 5769's vectors use spaces. Only for
    /// reproducing such messages byte for byte.
    pub fn padding_byte(mut self, byte: u8) -> Self {
        self.padding = byte;
        self
    }

    /// Appends any attribute, padding its value to a multiple of 4.
    pub fn attr(&mut self, typ: u16, value: &[u8]) -> &mut Self {
        self.attr_parts(typ, &[value])
    }

    /// Appends an attribute whose value is the concatenation of `parts`.
    fn attr_parts(&mut self, typ: u16, parts: &[&[u8]]) -> &mut Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.buf.extend_from_slice(&typ.to_be_bytes());
        self.buf
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, self.padding);
        self.set_length(self.buf.len());
        self
    }

    /// USERNAME (§14.3).
    pub fn username(&mut self, username: &[u8]) -> &mut Self {
        self.attr(attr::USERNAME, username)
    }

    /// SOFTWARE (§14.14).
    pub fn software(&mut self, software: &[u8]) -> &mut Self {
        self.attr(attr::SOFTWARE, software)
    }

    /// REALM (§14.9).
    pub fn realm(&mut self, realm: &[u8]) -> &mut Self {
        self.attr(attr::REALM, realm)
    }

    /// NONCE (§14.10).
    pub fn nonce(&mut self, nonce: &[u8]) -> &mut Self {
        self.attr(attr::NONCE, nonce)
    }

    /// XOR-MAPPED-ADDRESS (§14.2); the transaction ID is read back from the header.
    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> &mut Self {
        let mut tid = [0u8; 12];
        if let Some(t) = self.buf.get(8..HEADER_LEN) {
            tid.copy_from_slice(t);
        }
        let mut value = [0u8; 20];
        let n = attr::encode_address(addr, Some(&TransactionId(tid)), &mut value);
        self.attr(attr::XOR_MAPPED_ADDRESS, &value[..n])
    }

    /// MAPPED-ADDRESS (§14.1), for RFC 3489-era clients.
    pub fn mapped_address(&mut self, addr: SocketAddr) -> &mut Self {
        let mut value = [0u8; 20];
        let n = attr::encode_address(addr, None, &mut value);
        self.attr(attr::MAPPED_ADDRESS, &value[..n])
    }

    /// ERROR-CODE (§14.8); `code` is 300–699.
    pub fn error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        // Class in the low 3 bits of byte 2, number (0–99) in byte 3.
        let head = [0, 0, ((code / 100) & 0x07) as u8, (code % 100) as u8];
        self.attr_parts(attr::ERROR_CODE, &[&head, reason.as_bytes()])
    }

    /// UNKNOWN-ATTRIBUTES (§14.13), listing at most [`MAX_UNKNOWN`] types.
    pub fn unknown_attributes(&mut self, types: &[u16]) -> &mut Self {
        let mut value = [0u8; 2 * MAX_UNKNOWN];
        let n = types.len().min(MAX_UNKNOWN);
        for (out, t) in value.chunks_exact_mut(2).zip(&types[..n]) {
            out.copy_from_slice(&t.to_be_bytes());
        }
        self.attr(attr::UNKNOWN_ATTRIBUTES, &value[..2 * n])
    }

    /// PRIORITY (RFC 8445 §7.1.1).
    pub fn priority(&mut self, priority: u32) -> &mut Self {
        self.attr(attr::PRIORITY, &priority.to_be_bytes())
    }

    /// USE-CANDIDATE (RFC 8445 §7.1.2).
    pub fn use_candidate(&mut self) -> &mut Self {
        self.attr(attr::USE_CANDIDATE, &[])
    }

    /// ICE-CONTROLLED with our tie-breaker (RFC 8445 §7.1.3).
    pub fn ice_controlled(&mut self, tie_breaker: u64) -> &mut Self {
        self.attr(attr::ICE_CONTROLLED, &tie_breaker.to_be_bytes())
    }

    /// ICE-CONTROLLING with our tie-breaker (RFC 8445 §7.1.3).
    pub fn ice_controlling(&mut self, tie_breaker: u64) -> &mut Self {
        self.attr(attr::ICE_CONTROLLING, &tie_breaker.to_be_bytes())
    }

    /// MESSAGE-INTEGRITY (HMAC-SHA1) over everything so far (§14.5).
    pub fn message_integrity(&mut self, key: &Key) -> &mut Self {
        self.integrity(Integrity::Sha1, key)
    }

    /// MESSAGE-INTEGRITY-SHA256 (full 32-byte HMAC-SHA256) over everything so far (§14.6).
    pub fn message_integrity_sha256(&mut self, key: &Key) -> &mut Self {
        self.integrity(Integrity::Sha256, key)
    }

    /// The integrity attribute `kind` over everything so far.
    pub fn integrity(&mut self, kind: Integrity, key: &Key) -> &mut Self {
        let tag_len = match kind {
            Integrity::Sha1 => 20,
            Integrity::Sha256 => 32,
        };
        let at = self.buf.len();
        // The length field must already count this attribute when the HMAC is taken.
        self.set_length(at + 4 + tag_len);
        match integrity::compute(key, kind, self.buf, at, 4 + tag_len) {
            Some(tag) => self.attr(kind.attr_type(), tag.as_ref()),
            None => self,
        }
    }

    /// FINGERPRINT over everything so far; the message is complete after this (§14.7).
    pub fn fingerprint(&mut self) -> &mut Self {
        let at = self.buf.len();
        self.set_length(at + 8);
        let crc = integrity::fingerprint(self.buf);
        self.attr(attr::FINGERPRINT, &crc.to_be_bytes())
    }

    /// The message as built so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf
    }

    fn set_length(&mut self, total: usize) {
        let len = u16::try_from(total.saturating_sub(HEADER_LEN)).unwrap_or(u16::MAX);
        if let Some(field) = self.buf.get_mut(2..4) {
            field.copy_from_slice(&len.to_be_bytes());
        }
    }
}
