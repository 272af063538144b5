//! RTX retransmission (RFC 4588 §4): a retransmitted packet travels on its own SSRC, payload
//! type and sequence numbers, its payload prefixed with the original sequence number (OSN).
//! Its own numbers give it its own SRTP index, so it never repeats an IV, whatever its bytes;
//! and a receiver's statistics of the media stream are not disturbed by retransmissions.

use super::{RtpPacket, RtpPacketMut};

/// Bytes RTX adds to a packet: the OSN.
pub const OVERHEAD: usize = 2;

/// One RTX stream we send (a viewer's, paired to one media SSRC by `a=ssrc-group:FID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxSender {
    /// Its SSRC.
    pub ssrc: u32,
    /// Its payload type (`a=rtpmap:<pt> rtx/…`, `apt=` the media payload type).
    pub payload_type: u8,
    /// Its next sequence number.
    pub seq: u16,
}

impl RtxSender {
    /// Turns the media packet in `buf[..len]` (as it went out) into its RTX packet in place,
    /// using the room after it, and returns the new length (`len + 2`); `None` if it does not
    /// parse or there is no room.
    pub fn wrap(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        let (header_len, osn) = {
            let view = RtpPacket::parse(buf.get(..len)?).ok()?;
            (view.header_len(), view.sequence_number())
        };
        let end = len.checked_add(OVERHEAD)?;
        if end > buf.len() {
            return None;
        }
        // Payload (and padding, which stays last) moves up; the OSN goes before it (§4).
        buf.copy_within(header_len..len, header_len + OVERHEAD);
        buf.get_mut(header_len..header_len + OVERHEAD)?
            .copy_from_slice(&osn.to_be_bytes());
        let mut packet = RtpPacketMut::parse(buf.get_mut(..end)?).ok()?;
        packet.set_ssrc(self.ssrc);
        packet.set_payload_type(self.payload_type);
        packet.set_sequence_number(self.seq);
        self.seq = self.seq.wrapping_add(1);
        Some(end)
    }
}

/// Writes into `out` the original of the RTX packet `rtx` (RFC 4588 §4): its OSN as sequence
/// number, `ssrc` and `payload_type` of the media stream, the payload after the OSN, no
/// padding. False, with `out` cleared, for an RTX packet without an OSN (a padding-only
/// bandwidth probe).
pub fn unwrap(rtx: &RtpPacket<'_>, ssrc: u32, payload_type: u8, out: &mut Vec<u8>) -> bool {
    out.clear();
    let (Some(osn), Some(payload)) = (rtx.payload().get(..OVERHEAD), rtx.payload().get(2..)) else {
        return false;
    };
    if payload.is_empty() {
        return false;
    }
    let osn = u16::from_be_bytes([osn[0], osn[1]]);
    let header = rtx.bytes().get(..rtx.header_len()).unwrap_or_default();
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    if let Some(b0) = out.first_mut() {
        *b0 &= !0x20; // no padding
    }
    let Ok(mut packet) = RtpPacketMut::parse(out) else {
        out.clear();
        return false;
    };
    packet.set_ssrc(ssrc);
    packet.set_payload_type(payload_type);
    packet.set_sequence_number(osn);
    true
}

#[cfg(test)]
mod tests {
    use crate::rtp::{RtpHeader, RtpPacket};

    use super::{RtxSender, unwrap};

    fn media(seq: u16, payload: &[u8], padding: u8) -> Vec<u8> {
        let mut out = Vec::new();
        RtpHeader {
            payload_type: 96,
            sequence_number: seq,
            timestamp: 1234,
            ssrc: 0x1111,
            marker: true,
            ..Default::default()
        }
        .write_vec(payload, padding, &mut out)
        .unwrap();
        out
    }

    #[test]
    fn wraps_with_its_own_numbers_and_unwraps_to_the_original() {
        let mut rtx = RtxSender {
            ssrc: 0x2222,
            payload_type: 97,
            seq: 65535,
        };
        for (i, original) in [media(700, b"vp8 frame", 0), media(701, b"x", 4)]
            .iter()
            .enumerate()
        {
            let mut buf = original.clone();
            buf.resize(original.len() + 20, 0);
            let len = rtx.wrap(&mut buf, original.len()).unwrap();
            assert_eq!(len, original.len() + 2);
            let v = RtpPacket::parse(&buf[..len]).unwrap();
            assert_eq!(
                (v.ssrc(), v.payload_type(), v.sequence_number()),
                (0x2222, 97, 65535u16.wrapping_add(i as u16))
            );
            assert_eq!((v.timestamp(), v.marker()), (1234, true));
            let o = RtpPacket::parse(original).unwrap();
            assert_eq!(&v.payload()[..2], &o.sequence_number().to_be_bytes());
            assert_eq!(&v.payload()[2..], o.payload());
            let mut back = Vec::new();
            assert!(unwrap(&v, 0x1111, 96, &mut back));
            let b = RtpPacket::parse(&back).unwrap();
            assert_eq!(
                (
                    b.ssrc(),
                    b.payload_type(),
                    b.sequence_number(),
                    b.timestamp()
                ),
                (0x1111, 96, o.sequence_number(), 1234)
            );
            assert_eq!(b.payload(), o.payload());
        }
        assert_eq!(rtx.seq, 1);
        let mut no_room = media(1, b"abc", 0);
        let len = no_room.len();
        assert_eq!(rtx.wrap(&mut no_room, len), None);
    }

    /// The fuzz target's property (fuzz/fuzz_targets/rtx.rs) over 50 000 pseudo-random
    /// packets with valid first bytes: unwrapping never panics, and wrapping the original
    /// again gives the RTX payload back.
    #[test]
    fn random_packets_unwrap_and_wrap_back() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut data, mut original, mut unwrapped) = (Vec::new(), Vec::new(), 0);
        for _ in 0..50_000 {
            let len = (next() % 64) as usize;
            data.clear();
            data.extend((0..len).map(|_| next() as u8));
            if let Some(b0) = data.first_mut() {
                *b0 = 0x80 | (*b0 & 0x3f); // version 2, any P/X/CC
            }
            let Ok(rtx) = RtpPacket::parse(&data) else {
                continue;
            };
            if !unwrap(&rtx, 0x1111, 96, &mut original) {
                assert!(original.is_empty());
                continue;
            }
            unwrapped += 1;
            let o = RtpPacket::parse(&original).unwrap();
            assert_eq!(o.payload(), &rtx.payload()[2..]);
            let mut sender = RtxSender {
                ssrc: rtx.ssrc(),
                payload_type: rtx.payload_type(),
                seq: rtx.sequence_number(),
            };
            let n = original.len();
            original.resize(n + 2, 0);
            let len = sender.wrap(&mut original, n).unwrap();
            let again = RtpPacket::parse(&original[..len]).unwrap();
            assert_eq!(again.payload(), rtx.payload());
            assert_eq!(again.bytes()[1..12], rtx.bytes()[1..12], "the fixed header");
            assert_eq!(again.bytes()[0], rtx.bytes()[0] & !0x20, "P clear");
        }
        assert!(unwrapped > 1000, "{unwrapped}");
    }

    #[test]
    fn a_padding_probe_unwraps_to_nothing() {
        let mut out = vec![1];
        for payload in [&b""[..], b"\x00", b"\x00\x07"] {
            let probe = media(5, payload, 200);
            let v = RtpPacket::parse(&probe).unwrap();
            assert!(!unwrap(&v, 1, 96, &mut out));
            assert!(out.is_empty());
        }
    }
}
