//! STUN (RFC 8489): a zero-copy message view, the attributes ICE needs, and a builder.
//!
//! [`parse`] checks the header and every attribute's framing once and returns a
//! [`Message`] that borrows the datagram; accessors then read attributes in place.
//! [`MessageBuilder`] writes a message into a caller's `Vec<u8>` and finishes it with
//! MESSAGE-INTEGRITY and FINGERPRINT. Keys are [`Key`]s: for short-term credentials
//! (ICE) the key is the password itself (RFC 8489 §9.1.1); for long-term credentials it
//! is MD5(username ":" realm ":" password) (§9.2.2), which the caller computes — our
//! crypto library has no MD5 and nothing in a WebRTC server needs long-term credentials.

pub mod attr;
mod builder;
mod integrity;
mod message;

pub use attr::ErrorCode;
pub use builder::{MAX_UNKNOWN, MessageBuilder};
pub use integrity::{Integrity, Key, crc32};
pub use message::{Attribute, Attributes, Message, parse};

use crate::rand::Rng;

/// The fixed value in bytes 4..8 of every RFC 5389/8489 message (§5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// Size of the fixed message header (§5).
pub const HEADER_LEN: usize = 20;

/// The message class, two bits spread through the message type (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request: expects a response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// The 12-bit STUN method (§5, §18.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// Binding, the only method ICE uses.
    pub const BINDING: Method = Method(0x001);
}

/// The 96-bit transaction ID that matches a response to its request (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// A fresh random transaction ID (§5: "uniformly and randomly chosen").
    pub fn random(rng: &mut Rng) -> Self {
        Self(rng.bytes())
    }
}

/// What is wrong with a datagram that was offered as a STUN message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Shorter than the 20-byte header.
    #[error("shorter than a STUN header")]
    TooShort,
    /// The two most significant bits are not zero (§5), so this is not STUN.
    #[error("first two bits are not zero")]
    NotStun,
    /// The magic cookie is wrong (§5): not RFC 5389/8489 STUN.
    #[error("wrong magic cookie")]
    BadMagicCookie,
    /// The header's length is not a multiple of 4 or does not match the datagram.
    #[error("message length {header} in the header, but {actual} bytes follow it")]
    BadLength {
        /// The length the header claims.
        header: usize,
        /// The bytes actually present after the header.
        actual: usize,
    },
    /// An attribute (or its padding) runs past the end of the message.
    #[error("attribute {0:#06x} runs past the end of the message")]
    Truncated(u16),
    /// A known attribute has a value of the wrong size or content.
    #[error("attribute {0:#06x} is malformed")]
    BadAttribute(u16),
    /// Something follows FINGERPRINT, which must be last (§14.7).
    #[error("FINGERPRINT is not the last attribute")]
    FingerprintNotLast,
    /// The message carries no FINGERPRINT but one is required (§7).
    #[error("no FINGERPRINT")]
    MissingFingerprint,
    /// The FINGERPRINT does not match the message (§14.7).
    #[error("FINGERPRINT does not match")]
    FingerprintMismatch,
    /// The message carries neither MESSAGE-INTEGRITY nor MESSAGE-INTEGRITY-SHA256.
    #[error("no MESSAGE-INTEGRITY")]
    MissingIntegrity,
    /// The HMAC does not match under the given key (§14.5, §14.6).
    #[error("MESSAGE-INTEGRITY does not match")]
    IntegrityMismatch,
}

/// Encodes class and method into the 14-bit message type (§5, figure 3).
fn message_type(class: Class, method: Method) -> u16 {
    let c: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::Success => 0b10,
        Class::Error => 0b11,
    };
    let m = method.0;
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

/// Splits a message type into class and method (the inverse of [`message_type`]).
fn split_type(t: u16) -> (Class, Method) {
    let method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    (class, Method(method))
}

/// The first part of a STUN message's USERNAME (up to the first `:`), if `bytes` is a
/// well-formed STUN message with one.
///
/// In an ICE check the USERNAME is `recipient-ufrag:sender-ufrag` (RFC 8445 §7.2.2), so on
/// the server this is *our* ufrag: the UDP layer uses it to route a datagram from a new
/// address to its session before any HMAC is computed. No cryptography, no allocation.
pub fn username_ufrag(bytes: &[u8]) -> Option<&[u8]> {
    let username = parse(bytes).ok()?.username()?;
    let colon = username.iter().position(|&b| b == b':')?;
    username.get(..colon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_round_trips_and_matches_known_values() {
        // §6: Binding request 0x0001, success 0x0101, error 0x0111, indication 0x0011.
        assert_eq!(message_type(Class::Request, Method::BINDING), 0x0001);
        assert_eq!(message_type(Class::Success, Method::BINDING), 0x0101);
        assert_eq!(message_type(Class::Error, Method::BINDING), 0x0111);
        assert_eq!(message_type(Class::Indication, Method::BINDING), 0x0011);
        for m in [0u16, 1, 0x0F, 0x70, 0xF80, 0xFFF, 0x123] {
            for c in [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ] {
                assert_eq!(split_type(message_type(c, Method(m))), (c, Method(m)));
            }
        }
    }
}
