//! One track as one viewer receives it: that viewer's SSRC, payload type, sequence numbers
//! and timestamp offset, rewritten into each packet in place (the source's packet is copied
//! once into the send buffer, then patched — no parsing beyond the fixed header).
//!
//! When the source changes under a viewer (a publisher reconnecting under the same name), the
//! output switches at the new source's first keyframe and re-bases timestamps and VP8
//! PictureID/TL0PICIDX so they continue where they were: Chrome drops frames whose picture
//! ids jump ("invalid frame references", INTEROP-NOTES.md), and the viewer never renegotiates.

use media::vp8::{self, Descriptor, PictureId};
use rtc::rtp::{ExtIdMap, RtpPacket, RtpPacketMut};

/// How many of our sequence numbers we can map back to source packets for NACKs.
const SENT_RING: usize = 2048;

/// The per-viewer state of one track.
#[derive(Debug)]
pub struct Output {
    /// Index of the track in its stream.
    pub track: usize,
    /// The viewer's negotiated payload type for this track's codec.
    pub payload_type: u8,
    /// The SSRC we send this track with (announced in our answer's `a=ssrc`).
    pub ssrc: u32,
    /// Next sequence number.
    seq: u16,
    /// Added to the source's timestamps.
    ts_offset: u32,
    /// The last timestamp we sent, and whether we sent anything yet.
    last_ts: Option<u32>,
    /// Our sequence number → (source packet index, our timestamp), for NACKs (RFC 4585
    /// §6.2.1). A retransmission must be byte-identical to the original: SRTP would reuse
    /// the same IV for different bytes otherwise, which AES-GCM must never do.
    sent: Vec<(u16, u64, u32)>,
    /// Video only: waiting for a keyframe before sending anything.
    pub waiting_for_keyframe: bool,
    /// Packets and payload octets sent, for Sender Reports.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
    /// The header-extension ids this viewer negotiated, from the source's ids.
    ext_map: ExtIdMap,
    /// The source SSRC we follow; another one means the source changed.
    source_ssrc: Option<u32>,
    /// VP8 only: offsets added to the source's 15-bit PictureID and TL0PICIDX, and the last
    /// values sent.
    vp8: Option<Vp8Ids>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Vp8Ids {
    picture_offset: u16,
    tl0_offset: u8,
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
}

/// What to do with a source packet for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it.
    Send,
    /// Skip it: waiting for a keyframe (at the start, or to switch sources).
    Skip,
}

impl Output {
    /// A new output starting at random `seq` and `ts_offset`.
    pub fn new(
        track: usize,
        payload_type: u8,
        ssrc: u32,
        seq: u16,
        ts_offset: u32,
        video: bool,
        is_vp8: bool,
    ) -> Self {
        Output {
            track,
            payload_type,
            ssrc,
            seq,
            ts_offset,
            last_ts: None,
            sent: vec![(0, u64::MAX, 0); SENT_RING],
            waiting_for_keyframe: video,
            packets: 0,
            octets: 0,
            ext_map: ExtIdMap::drop_all(),
            source_ssrc: None,
            vp8: is_vp8.then(Vp8Ids::default),
        }
    }

    /// Decides whether a source packet goes to this viewer. A video output starts, and
    /// switches to a new source SSRC, only at a keyframe; audio switches at once. On a switch
    /// the numbering is re-based to continue: timestamps one `gap` after the last sent.
    pub fn admit(
        &mut self,
        packet: &RtpPacket<'_>,
        keyframe_start: bool,
        video: bool,
        gap: u32,
    ) -> Admit {
        let ssrc = packet.ssrc();
        if self.source_ssrc == Some(ssrc) && !self.waiting_for_keyframe {
            return Admit::Send;
        }
        if video && !keyframe_start {
            return Admit::Skip;
        }
        if self.source_ssrc.is_some_and(|s| s != ssrc) {
            self.rebase(packet.timestamp(), gap);
            if let Some(ids) = &mut self.vp8 {
                ids.rebase(packet.payload());
            }
        }
        self.source_ssrc = Some(ssrc);
        self.waiting_for_keyframe = false;
        Admit::Send
    }

    /// Re-bases timestamps so that a packet with source timestamp `source_ts` goes out one
    /// `gap` after the last one sent (used when replaying from a keyframe after a PLI, so the
    /// viewer never sees time go backwards).
    pub fn rebase(&mut self, source_ts: u32, gap: u32) {
        if let Some(last) = self.last_ts {
            self.ts_offset = last.wrapping_add(gap).wrapping_sub(source_ts);
        }
    }

    /// Our timestamp for a source timestamp.
    pub fn timestamp(&self, source_ts: u32) -> u32 {
        source_ts.wrapping_add(self.ts_offset)
    }

    /// Rewrites the packet in `buf` (a copy of the source's) for this viewer, as packet number
    /// `index` of the source. Returns false if it does not parse (never sent).
    pub fn rewrite(&mut self, buf: &mut [u8], index: u64) -> bool {
        let Ok(mut packet) = RtpPacketMut::parse(buf) else {
            return false;
        };
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let ts = packet.as_packet().timestamp().wrapping_add(self.ts_offset);
        let payload_len = packet.as_packet().payload().len();
        packet.set_ssrc(self.ssrc);
        packet.set_sequence_number(seq);
        packet.set_timestamp(ts);
        packet.set_payload_type(self.payload_type);
        packet.remap_extensions(&self.ext_map);
        let header_len = packet.as_packet().header_len();
        if let (Some(ids), Some(payload)) = (&mut self.vp8, buf.get_mut(header_len..)) {
            ids.rewrite(payload);
        }
        if let Some(slot) = self.sent.get_mut(usize::from(seq) % SENT_RING) {
            *slot = (seq, index, ts);
        }
        self.last_ts = Some(ts);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
        true
    }

    /// Rewrites a retransmission: same as the original, with our original sequence number
    /// (RFC 4588 RTX is not negotiated; Chromium accepts plain retransmissions).
    pub fn rewrite_resend(&self, buf: &mut [u8], seq: u16, ts: u32) -> bool {
        let Ok(mut packet) = RtpPacketMut::parse(buf) else {
            return false;
        };
        packet.set_ssrc(self.ssrc);
        packet.set_sequence_number(seq);
        packet.set_timestamp(ts);
        packet.set_payload_type(self.payload_type);
        packet.remap_extensions(&self.ext_map);
        let header_len = packet.as_packet().header_len();
        // The same offsets as when first sent: a switch since then only moved later packets.
        if let (Some(ids), Some(payload)) = (self.vp8, buf.get_mut(header_len..)) {
            ids.apply(payload);
        }
        true
    }

    /// The source packet index and our timestamp of what we sent as `seq`, if we still
    /// remember it.
    pub fn source_of(&self, seq: u16) -> Option<(u64, u32)> {
        self.sent
            .get(usize::from(seq) % SENT_RING)
            .filter(|(s, i, _)| *s == seq && *i != u64::MAX)
            .map(|(_, i, ts)| (*i, *ts))
    }
}

impl Vp8Ids {
    /// Offsets so that the picture in `payload` follows the last one sent.
    fn rebase(&mut self, payload: &[u8]) {
        let Ok(d) = Descriptor::parse(payload) else {
            return;
        };
        if let (Some(PictureId::Long(id)), Some(last)) = (d.picture_id, self.last_picture) {
            self.picture_offset = last.wrapping_add(1).wrapping_sub(id) & 0x7fff;
        }
        if let (Some(tl0), Some(last)) = (d.tl0picidx, self.last_tl0) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(tl0);
        }
    }

    /// Applies the offsets in place and remembers what was sent.
    fn rewrite(&mut self, payload: &mut [u8]) {
        self.apply(payload);
        if let Ok(d) = Descriptor::parse(payload) {
            if let Some(PictureId::Long(id)) = d.picture_id {
                self.last_picture = Some(id);
            }
            self.last_tl0 = d.tl0picidx.or(self.last_tl0);
        }
    }

    fn apply(self, payload: &mut [u8]) {
        let Ok(d) = Descriptor::parse(payload) else {
            return;
        };
        // A 7-bit PictureID cannot take an offset in place (its size would change); such
        // sources keep their ids.
        if let Some(PictureId::Long(id)) = d.picture_id {
            let _ = vp8::set_picture_id(payload, id.wrapping_add(self.picture_offset) & 0x7fff);
        }
        if let Some(tl0) = d.tl0picidx {
            let _ = vp8::set_tl0picidx(payload, tl0.wrapping_add(self.tl0_offset));
        }
    }
}

#[cfg(test)]
mod tests {
    use rtc::rtp::{RtpHeader, RtpPacket};

    use super::Output;

    fn packet(seq: u16, ts: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RtpHeader {
            payload_type: 96,
            sequence_number: seq,
            timestamp: ts,
            ssrc: 1,
            ..Default::default()
        }
        .write_vec(b"abc", 0, &mut out)
        .unwrap();
        out
    }

    #[test]
    fn rewrites_numbering_and_remembers_for_nacks() {
        let mut out = Output::new(0, 120, 0xabcd, 65535, 1000, true, false);
        let mut p = packet(7, 90_000);
        assert!(out.rewrite(&mut p, 42));
        let v = RtpPacket::parse(&p).unwrap();
        assert_eq!(
            (
                v.ssrc(),
                v.sequence_number(),
                v.timestamp(),
                v.payload_type()
            ),
            (0xabcd, 65535, 91_000, 120)
        );
        let mut p = packet(8, 93_000);
        assert!(out.rewrite(&mut p, 43));
        assert_eq!(RtpPacket::parse(&p).unwrap().sequence_number(), 0, "wraps");
        assert_eq!(
            (out.source_of(65535), out.source_of(0), out.source_of(1)),
            (Some((42, 91_000)), Some((43, 94_000)), None)
        );
        // After a rebase the next frame continues one gap after the last sent timestamp.
        out.rebase(90_000, 3000);
        let mut p = packet(7, 90_000);
        assert!(out.rewrite(&mut p, 42));
        assert_eq!(RtpPacket::parse(&p).unwrap().timestamp(), 94_000 + 3000);
        assert_eq!((out.packets, out.octets), (3, 9));
        assert!(!out.rewrite(&mut [0u8; 5], 1), "garbage is refused");
    }
}
