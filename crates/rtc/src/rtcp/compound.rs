//! Splitting a compound datagram into packets (RFC 3550 §6.1, §6.4.1) and typing each one.

use super::feedback::{Fir, Nack, Pli, Remb};
use super::report::{ReceiverReport, SenderReport};
use super::sdes::{Bye, Sdes};
use super::twcc::Twcc;
use super::{PT_BYE, PT_PSFB, PT_RR, PT_RTPFB, PT_SDES, PT_SR, RtcpError};

/// One packet's common header and body, before typing; also how unknown types are passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRtcp<'a> {
    bytes: &'a [u8],
    body: &'a [u8],
}

impl<'a> RawRtcp<'a> {
    /// Splits the first packet off `buf`, checking version, length and padding.
    fn split(buf: &'a [u8]) -> Result<(Self, &'a [u8]), RtcpError> {
        let &[b0, _, l0, l1, ..] = buf else {
            return Err(RtcpError::Truncated(buf.len()));
        };
        if b0 >> 6 != 2 {
            return Err(RtcpError::BadVersion(b0 >> 6));
        }
        let length = 4 * (usize::from(u16::from_be_bytes([l0, l1])) + 1);
        if length > buf.len() {
            return Err(RtcpError::LengthOverrun {
                length,
                have: buf.len(),
            });
        }
        let (bytes, rest) = buf.split_at(length);
        let mut body = bytes.get(4..).unwrap_or(&[]);
        if b0 & 0x20 != 0 {
            // The last octet counts the padding, itself included (RFC 3550 §6.4.1).
            let pad = bytes.last().copied().unwrap_or(0);
            if pad == 0 || usize::from(pad) > body.len() {
                return Err(RtcpError::BadPadding(pad));
            }
            body = body.get(..body.len() - usize::from(pad)).unwrap_or(&[]);
        }
        Ok((Self { bytes, body }, rest))
    }

    /// The 5-bit count field: report count, source count, or feedback message type (FMT).
    pub fn count(&self) -> u8 {
        self.bytes[0] & 0x1f
    }
    /// The packet type.
    pub fn packet_type(&self) -> u8 {
        self.bytes[1]
    }
    /// Everything after the 4-byte common header, padding removed.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
    /// The whole packet as it came, header and padding included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// One typed RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// Sender report (PT 200).
    Sr(SenderReport<'a>),
    /// Receiver report (PT 201).
    Rr(ReceiverReport<'a>),
    /// Source description (PT 202).
    Sdes(Sdes<'a>),
    /// Goodbye (PT 203).
    Bye(Bye<'a>),
    /// Generic NACK (PT 205, FMT 1).
    Nack(Nack<'a>),
    /// Transport-wide congestion control feedback (PT 205, FMT 15).
    Twcc(Twcc<'a>),
    /// Picture loss indication (PT 206, FMT 1).
    Pli(Pli),
    /// Full intra request (PT 206, FMT 4).
    Fir(Fir<'a>),
    /// Receiver estimated maximum bitrate (PT 206, FMT 15, "REMB").
    Remb(Remb<'a>),
    /// Any other type or feedback format, untouched.
    Other(RawRtcp<'a>),
}

impl<'a> RtcpPacket<'a> {
    /// Types and validates one packet.
    pub fn parse(raw: RawRtcp<'a>) -> Result<Self, RtcpError> {
        let (count, body) = (raw.count(), raw.body());
        Ok(match (raw.packet_type(), count) {
            (PT_SR, _) => Self::Sr(SenderReport::parse(count, body)?),
            (PT_RR, _) => Self::Rr(ReceiverReport::parse(count, body)?),
            (PT_SDES, _) => Self::Sdes(Sdes::parse(count, body)?),
            (PT_BYE, _) => Self::Bye(Bye::parse(count, body)?),
            (PT_RTPFB, 1) => Self::Nack(Nack::parse(body)?),
            (PT_RTPFB, 15) => Self::Twcc(Twcc::parse(body)?),
            (PT_PSFB, 1) => Self::Pli(Pli::parse(body)?),
            (PT_PSFB, 4) => Self::Fir(Fir::parse(body)?),
            (PT_PSFB, 15) if body.get(8..12) == Some(b"REMB") => Self::Remb(Remb::parse(body)?),
            _ => Self::Other(raw),
        })
    }
}

/// Iterator over the packets of a compound datagram.
///
/// A packet whose contents are malformed yields an error and iteration goes on with the next
/// one (its length still frames it); a broken common header ends the iteration after its error.
/// Reduced-size RTCP (RFC 5506) is accepted: no rule on which packet comes first. Padding is
/// accepted on any packet, not only the last (libwebrtc and webrtc-rs pad feedback alone).
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    rest: &'a [u8],
}

/// Walks the packets of a (compound or reduced-size) RTCP datagram.
pub fn parse_compound(buf: &[u8]) -> RtcpIter<'_> {
    RtcpIter { rest: buf }
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match RawRtcp::split(self.rest) {
            Ok((raw, rest)) => {
                self.rest = rest;
                Some(RtcpPacket::parse(raw))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}
