//! RTP packets (RFC 3550 §5.1) with header extensions (RFC 8285): borrowed views, a builder,
//! and in-place rewriting for the SFU's per-viewer forwarding path.
//!
//! * [`RtpPacket`] parses and validates once; its accessors then never fail.
//! * [`RtpPacketMut`] is the same view over `&mut [u8]`, with setters that rewrite sequence
//!   number, timestamp, SSRC, payload type, marker and header-extension IDs without moving
//!   or allocating anything.
//! * [`RtpHeader`] writes a packet into a caller's buffer.
//! * [`rtx`] wraps a retransmission in RTX (RFC 4588) and unwraps one.
//! * [`seq`] has wrap-aware sequence-number arithmetic, [`ext`] the extensions we read.

mod builder;
pub mod ext;
mod packet;
pub mod rtx;
pub mod seq;
pub mod simulcast;

pub use builder::RtpHeader;
pub use ext::{ExtIdMap, Extensions};
pub use packet::{RtpPacket, RtpPacketMut};
pub use seq::SeqUnwrapper;

/// Length of the fixed RTP header (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;
/// "defined by profile" value of the one-byte extension form (RFC 8285 §4.2).
pub const PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// "defined by profile" value of the two-byte form; its low 4 bits are "appbits" (RFC 8285 §4.3).
pub const PROFILE_TWO_BYTE: u16 = 0x1000;

/// What is wrong with an RTP packet we were given, or with one we were asked to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Fewer bytes than the 12-byte fixed header.
    #[error("RTP packet of {0} bytes is shorter than the fixed header")]
    TooShort(usize),
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC list or the header extension runs past the end of the packet.
    #[error("RTP CSRC list or header extension runs past the end of the packet")]
    HeaderOverrun,
    /// The P bit is set but the last octet is 0 or counts more than the payload (RFC 3550 §5.1).
    #[error("RTP padding count {0} is zero or larger than the payload")]
    BadPadding(u8),
    /// Builder: more than 15 CSRCs.
    #[error("{0} CSRCs, at most 15 fit")]
    TooManyCsrcs(usize),
    /// Builder: payload type above 127.
    #[error("payload type {0} does not fit in 7 bits")]
    BadPayloadType(u8),
    /// Builder: extension ID 0 (padding), or an element that fits no RFC 8285 form.
    #[error("header extension id {id} with {len} bytes fits neither RFC 8285 form")]
    BadExtension {
        /// The extension's ID.
        id: u8,
        /// The length of its value.
        len: usize,
    },
    /// Builder: the extension elements need more than the 16-bit length field can count.
    #[error("header extension block of {0} bytes is too long")]
    ExtensionTooLong(usize),
    /// Builder: the output buffer is too small.
    #[error("output buffer of {have} bytes, packet needs {need}")]
    BufferTooSmall {
        /// Bytes the packet needs.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
}

/// Big-endian u16 at `at`, or 0 past the end (callers check lengths first; never panics).
fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_be_bytes)
}

/// Big-endian u32 at `at`, or 0 past the end.
fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

#[cfg(test)]
mod tests;
