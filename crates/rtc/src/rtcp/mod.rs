//! RTCP (RFC 3550 §6) as it runs in WebRTC: multiplexed with RTP (RFC 5761), in compound
//! packets or reduced-size ones (RFC 5506), with the feedback messages browsers send and expect.
//!
//! * [`parse_compound`] walks a compound datagram and yields one typed view per packet
//!   ([`RtcpPacket`]); every view is validated when it is made, so its accessors never fail.
//! * [`RtcpWriter`] appends packets to a reused `Vec<u8>`; writing several in a row makes a
//!   compound packet.
//!
//! | packet | view | writer method |
//! |---|---|---|
//! | SR / RR (§6.4) | [`SenderReport`], [`ReceiverReport`] | `sr`, `rr` |
//! | SDES (§6.5), BYE (§6.6) | [`Sdes`], [`Bye`] | `sdes`, `cname`, `bye` |
//! | generic NACK (RFC 4585 §6.2.1) | [`Nack`] | `nack` |
//! | PLI (RFC 4585 §6.3.1), FIR (RFC 5104 §4.3.1) | [`Pli`], [`Fir`] | `pli`, `fir` |
//! | REMB (draft-alvestrand-rmcat-remb) | [`Remb`] | `remb` |
//! | transport-wide CC (draft-holmer-…-01 §3.1) | [`Twcc`] | `twcc` |

mod compound;
mod feedback;
mod report;
mod sdes;
mod twcc;

pub use compound::{RawRtcp, RtcpIter, RtcpPacket, parse_compound};
pub use feedback::{Fir, Nack, Pli, Remb};
pub use report::{ReceiverReport, ReportBlock, SenderInfo, SenderReport};
pub use sdes::{Bye, Sdes, SdesChunk, SdesItem};
pub use twcc::{Twcc, TwccHeader, TwccPackets};

/// Packet type of a sender report.
pub const PT_SR: u8 = 200;
/// Packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// Packet type of source description.
pub const PT_SDES: u8 = 202;
/// Packet type of goodbye.
pub const PT_BYE: u8 = 203;
/// Packet type of transport-layer feedback (RFC 4585 §6.1).
pub const PT_RTPFB: u8 = 205;
/// Packet type of payload-specific feedback (RFC 4585 §6.1).
pub const PT_PSFB: u8 = 206;

/// What is wrong with RTCP we were given, or with RTCP we were asked to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Fewer than 4 bytes left for a common header.
    #[error("{0} trailing bytes cannot hold an RTCP header")]
    Truncated(usize),
    /// The version field is not 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The length field counts more bytes than the datagram has left.
    #[error("RTCP length says {length} bytes, only {have} left")]
    LengthOverrun {
        /// Bytes the header claims.
        length: usize,
        /// Bytes left in the datagram.
        have: usize,
    },
    /// The P bit is set but the padding count is 0 or too large (RFC 3550 §6.4.1).
    #[error("RTCP padding count {0} is zero or larger than the packet")]
    BadPadding(u8),
    /// The body is too short for what its header says it holds.
    #[error("RTCP {kind} body of {len} bytes is too short for its contents")]
    ShortBody {
        /// The packet kind.
        kind: &'static str,
        /// Body length after the common header.
        len: usize,
    },
    /// An SDES chunk or item runs past the packet, or lacks its null terminator (RFC 3550 §6.5).
    #[error("SDES chunk is malformed")]
    BadSdes,
    /// A BYE reason runs past the packet (RFC 3550 §6.6).
    #[error("BYE reason runs past the packet")]
    BadByeReason,
    /// REMB mantissa << exponent does not fit 64 bits.
    #[error("REMB bitrate does not fit in 64 bits")]
    BadRembBitrate,
    /// A transport-wide CC status chunk uses the reserved symbol 11.
    #[error("transport-wide CC feedback uses the reserved status symbol")]
    BadTwccSymbol,
    /// Writer: more items than the count field or the format allows.
    #[error("{n} {what} do not fit one RTCP packet")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// How many were given.
        n: usize,
    },
    /// Writer: the packet would exceed the 16-bit length field.
    #[error("RTCP packet of {0} bytes exceeds the length field")]
    TooLong(usize),
    /// Writer: a transport-wide CC receive delta outside ±8.19 s (16-bit 250 µs ticks).
    #[error("transport-wide CC delta of {0} µs does not fit 16 bits of 250 µs")]
    TwccDeltaOutOfRange(i64),
}

/// Appends RTCP packets to a reused buffer. Each method writes one packet; several in a row
/// form a compound packet (RFC 3550 §6.1: start with SR or RR, include SDES CNAME), and a lone
/// feedback packet is a reduced-size one (RFC 5506). On error the buffer is left as it was.
#[derive(Debug)]
pub struct RtcpWriter<'v> {
    out: &'v mut Vec<u8>,
}

impl<'v> RtcpWriter<'v> {
    /// A writer appending to `out` (clear it first to start a new datagram).
    pub fn new(out: &'v mut Vec<u8>) -> Self {
        Self { out }
    }

    /// Bytes in the buffer so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Starts a packet with the common header; `finish` fills in the length.
    fn begin(&mut self, count: u8, pt: u8) -> usize {
        let start = self.out.len();
        self.out
            .extend_from_slice(&[0x80 | (count & 0x1f), pt, 0, 0]);
        start
    }

    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn put32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Pads the packet begun at `start` to a 32-bit boundary — with zeros, or with the P bit
    /// and a count octet when `p_bit` (as libwebrtc does for transport-wide CC) — and writes
    /// the length in words minus one (RFC 3550 §6.4.1).
    fn finish(&mut self, start: usize, p_bit: bool) -> Result<&mut Self, RtcpError> {
        let pad = (4 - (self.out.len() - start) % 4) % 4;
        if p_bit && pad > 0 {
            self.out.resize(self.out.len() + pad - 1, 0);
            self.out.push(pad as u8);
            if let Some(b0) = self.out.get_mut(start) {
                *b0 |= 0x20;
            }
        } else {
            self.out.resize(self.out.len() + pad, 0);
        }
        let len = self.out.len() - start;
        let Ok(words) = u16::try_from(len / 4 - 1) else {
            self.out.truncate(start);
            return Err(RtcpError::TooLong(len));
        };
        if let Some(field) = self.out.get_mut(start + 2..start + 4) {
            field.copy_from_slice(&words.to_be_bytes());
        }
        Ok(self)
    }
}

/// Fails with `TooMany` when `n` exceeds `max`.
fn check_count(what: &'static str, n: usize, max: usize) -> Result<(), RtcpError> {
    if n > max {
        return Err(RtcpError::TooMany { what, n });
    }
    Ok(())
}

/// Big-endian u16 at `at`, or 0 past the end (views check lengths first; never panics).
fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_be_bytes)
}

/// Big-endian u24 at `at`, or 0 past the end.
fn be24(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 3)
        .map_or(0, |s| s.iter().fold(0, |v, &x| v << 8 | u32::from(x)))
}

/// Big-endian u32 at `at`, or 0 past the end.
fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

/// Fails with `ShortBody` when `body` is shorter than `need`.
fn need(kind: &'static str, body: &[u8], need: usize) -> Result<(), RtcpError> {
    if body.len() < need {
        return Err(RtcpError::ShortBody {
            kind,
            len: body.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
