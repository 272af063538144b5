//! One track as one viewer receives it: that viewer's SSRC, payload type, and offsets added
//! to the source's sequence numbers and timestamps, rewritten into each packet in place (the
//! source's packet is copied once into the send buffer, then patched).
//!
//! Sequence numbers are the source's plus an offset, not a counter: reordering on the way in
//! stays visible to the viewer's jitter buffer, and a late retransmission from the publisher
//! lands on the number the viewer is missing. When the source changes under a viewer (a
//! publisher reconnecting under the same name) or a file's GOP is replayed after a PLI, the
//! offsets are re-based at a keyframe so that numbers, timestamps and VP8
//! PictureID/TL0PICIDX continue where they were: Chrome drops frames whose picture ids jump
//! ("invalid frame references", INTEROP-NOTES.md), and the viewer never renegotiates.

use std::time::{Duration, Instant};

use media::vp8::{self, Descriptor, PictureId};
use rtc::rtp::{ExtIdMap, RtpPacket, RtpPacketMut, seq};

use crate::router::layers::{LayerConfig, LayerSelector};
use crate::router::replay::Replay;
use crate::router::{AUDIO_HISTORY, VIDEO_HISTORY};
use crate::sources::Codec;
use rtc::rtp::rtx::RtxSender;

/// How many of our sequence numbers we can map back to source packets for NACKs: as many as
/// the track's history keeps (an older one maps to a packet the history no longer has).
/// Powers of two, so the ring stays aligned as sequence numbers wrap.
fn sent_ring(video: bool) -> usize {
    if video { VIDEO_HISTORY } else { AUDIO_HISTORY }
}

/// The per-viewer state of one track.
#[derive(Debug)]
pub struct Output {
    /// Index of the track in its stream.
    pub track: usize,
    /// The viewer's negotiated payload type for this track's codec.
    pub payload_type: u8,
    /// The SSRC we send this track with (announced in our answer's `a=ssrc`).
    pub ssrc: u32,
    /// Where retransmissions go when the viewer negotiated RTX (RFC 4588); plain copies on
    /// `ssrc` otherwise.
    pub rtx: Option<RtxSender>,
    /// Added to the source's sequence numbers and timestamps.
    seq_offset: u16,
    ts_offset: u32,
    /// The highest sequence number and the last timestamp we sent, once we sent anything.
    last: Option<(u16, u32)>,
    /// Our sequence number → (source packet index, our timestamp), for NACKs (RFC 4585
    /// §6.2.1). A retransmission must be byte-identical to the original: SRTP would reuse
    /// the same IV for different bytes otherwise, which AES-GCM must never do.
    sent: Vec<Sent>,
    /// Waiting for a keyframe before sending anything (video at the start).
    waiting_for_keyframe: bool,
    /// The origin of [`Sent::resent`] times (the first retransmission).
    resend_clock: Option<Instant>,
    /// Packets sent, for Sender Reports.
    pub packets: u32,
    /// Payload octets sent, for Sender Reports.
    pub octets: u32,
    /// Bytes of RTP sent (headers included, retransmissions not), for the NACK budget.
    pub bytes_sent: u64,
    /// The header-extension ids this viewer negotiated, from the source's ids.
    ext_map: ExtIdMap,
    /// The source SSRC we follow; another one means the source changed.
    source_ssrc: Option<u32>,
    /// When the last packet was admitted (a switch re-bases timestamps by the silence).
    last_at: Option<Instant>,
    /// VP8 only: offsets added to the source's PictureID and TL0PICIDX, and the last
    /// values sent.
    vp8: Option<Vp8Ids>,
    /// Sending the GOP cache, paced: live packets wait for it to catch up.
    pub replay: Option<Replay>,
    /// Simulcast: the first track of the layers this output chooses among (`track` is the
    /// layer it forwards now), and the layer it switches to at that layer's next keyframe.
    pub layers: Option<LayerChoice>,
}

/// Which simulcast layer an output forwards (issue 12): `track` is the current one. A
/// single-layer video output of a viewer with an estimate has one too: it has no layer to
/// choose, but is paused and resumed the same way.
#[derive(Debug, Clone)]
pub struct LayerChoice {
    /// The group: its layers' tracks name it in their `TrackLayer::group`. `None`: a
    /// single-layer track, the output's own.
    pub group: Option<usize>,
    /// The layer to switch to at its next keyframe (a track of the group), and its index
    /// among the group's layers (lowest first) as the selector knows it.
    pub target: Option<(usize, usize)>,
    /// Chooses by the viewer's estimate, with hysteresis.
    pub selector: LayerSelector,
    /// Not even the lowest layer fits the estimate: no video until one does (audio goes on).
    pub paused: bool,
    /// Switches made, for `/metrics`.
    pub switches: u64,
    /// Forwarding a layer below the top one received (as of the last choice).
    pub below_top: bool,
}

impl LayerChoice {
    /// For the layers of `group`.
    pub fn new(group: usize) -> Self {
        Self {
            group: Some(group),
            selector: LayerSelector::new(LayerConfig::default()),
            ..Self::single()
        }
    }

    /// For a single-layer video track: paused while the estimate cannot carry it. Its one
    /// layer is the lowest, so the selector keeps it until the estimate is clearly under
    /// its rate (`pause_below`) for `pause_hold`: one that only grazes it (a busy server's
    /// own delay, a keyframe) costs a few queued frames, a pause seconds of video.
    pub fn single() -> Self {
        Self {
            group: None,
            target: None,
            selector: LayerSelector::new(LayerConfig::default()),
            paused: false,
            switches: 0,
            below_top: false,
        }
    }

    /// Whether the output waits for a keyframe of `track` to switch to it.
    pub fn waits_for(&self, track: usize) -> bool {
        self.target.is_some_and(|(t, _)| t == track)
    }
}

/// One entry of the NACK map, 16 bytes: a viewer holds a thousand of them per video track.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    /// The low 32 bits of the source packet's index ([`Output::source_of`] restores the rest
    /// from the history's next index: the ring never spans 2^32 packets).
    index: u32,
    /// Our timestamp.
    ts: u32,
    /// Our sequence number (the slot is reused every ring-size numbers). A slot whose number
    /// does not belong in it ([`Sent::empty`]) holds nothing.
    seq: u16,
    /// When it was last retransmitted, in [`Output::tick`]s; 0 if never since it was sent.
    resent: u16,
    /// The transport-wide sequence number it carried, if any (a plain retransmission must
    /// carry it again, to be byte-identical).
    twcc: u16,
}

impl Sent {
    /// Nothing, in slot `at`: a sequence number that cannot be in that slot.
    fn empty(at: usize) -> Self {
        Sent {
            seq: (at as u16).wrapping_add(1),
            ..Sent::default()
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Vp8Ids {
    picture_offset: u16,
    tl0_offset: u8,
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
    /// The newest source PictureID seen, in one 15-bit space (see [`Vp8Ids::extend`]).
    last_source: Option<u16>,
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
    /// A new output with random starting offsets.
    pub fn new(
        track: usize,
        payload_type: u8,
        ssrc: u32,
        seq_offset: u16,
        ts_offset: u32,
        video: bool,
        is_vp8: bool,
    ) -> Self {
        Output {
            track,
            payload_type,
            ssrc,
            rtx: None,
            seq_offset,
            ts_offset,
            last: None,
            sent: (0..sent_ring(video)).map(Sent::empty).collect(),
            waiting_for_keyframe: video,
            resend_clock: None,
            packets: 0,
            octets: 0,
            bytes_sent: 0,
            ext_map: ExtIdMap::drop_all(),
            source_ssrc: None,
            last_at: None,
            vp8: is_vp8.then(Vp8Ids::default),
            replay: None,
            layers: None,
        }
    }

    /// Forwards simulcast layer `track` from its keyframe on: what this output sent before
    /// came from another track's history, so no NACK of it can be answered from `track`'s
    /// (the sequence numbers would point into the wrong history). The keyframe's first
    /// packet then re-bases numbering, timestamps and VP8 picture ids in [`Output::admit`]
    /// (its SSRC differs), so the viewer sees one continuous stream.
    pub fn switch_layer(&mut self, track: usize) {
        self.track = track;
        self.replay = None;
        self.forget_sent();
        // Resuming the same layer after a pause re-bases too: the packets not sent in
        // between must not show as a gap the viewer would NACK.
        self.waiting_for_keyframe |= self.source_ssrc.is_some();
        if let Some(l) = &mut self.layers {
            if let Some((_, index)) = l.target.take() {
                l.selector.on_keyframe(index);
            }
            l.paused = false;
            l.switches += 1;
        }
    }

    /// Stops sending video: not even the lowest layer fits the viewer's estimate (its audio
    /// goes on). A GOP replay in progress stops too, and a switch waiting for a keyframe is
    /// called off; [`Output::switch_layer`] at a keyframe resumes it, re-based so that the
    /// viewer sees no gap in the numbering.
    pub fn pause(&mut self) {
        self.replay = None;
        if let Some(l) = &mut self.layers {
            l.paused = true;
            l.target = None;
        }
    }

    /// Our timestamp of the newest packet sent, once one was.
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last.map(|(_, ts)| ts)
    }

    /// Whether it sends nothing now (video paused by the viewer's estimate).
    pub fn is_paused(&self) -> bool {
        self.layers.as_ref().is_some_and(|l| l.paused)
    }

    /// Decides whether a source packet goes to this viewer. A video output starts, and
    /// switches to a new source SSRC, only at a keyframe; audio switches at once. On a switch
    /// the numbering is re-based to continue; timestamps advance by the wall time the viewer
    /// went without packets (at least one frame), so its jitter buffer sees real time pass.
    pub fn admit(
        &mut self,
        packet: &RtpPacket<'_>,
        keyframe_start: bool,
        codec: Codec,
        now: Instant,
    ) -> Admit {
        let ssrc = packet.ssrc();
        if self.source_ssrc == Some(ssrc) && !self.waiting_for_keyframe {
            self.last_at = Some(now);
            return Admit::Send;
        }
        if codec.is_video() && !keyframe_start {
            return Admit::Skip;
        }
        let resumed = self.waiting_for_keyframe && self.source_ssrc.is_some();
        if resumed || self.source_ssrc.is_some_and(|s| s != ssrc) {
            let silent = self
                .last_at
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            let elapsed = silent.as_micros() * u128::from(codec.clock_rate()) / 1_000_000;
            self.rebase(
                packet,
                u32::try_from(elapsed)
                    .unwrap_or(u32::MAX)
                    .max(codec.frame_gap()),
            );
        }
        self.source_ssrc = Some(ssrc);
        self.waiting_for_keyframe = false;
        self.last_at = Some(now);
        Admit::Send
    }

    /// Re-bases the offsets so that `first` (a keyframe's first packet) goes out right after
    /// what was sent last: next sequence number, timestamp one `gap` later, next picture id.
    /// Used at a source switch and when replaying a file's GOP after a PLI.
    pub fn rebase(&mut self, first: &RtpPacket<'_>, gap: u32) {
        if let Some((last_seq, last_ts)) = self.last {
            self.seq_offset = last_seq
                .wrapping_add(1)
                .wrapping_sub(first.sequence_number());
            self.ts_offset = last_ts.wrapping_add(gap).wrapping_sub(first.timestamp());
        }
        if let Some(ids) = &mut self.vp8 {
            let before = (ids.picture_offset, ids.tl0_offset);
            ids.rebase(first.payload());
            if before != (ids.picture_offset, ids.tl0_offset) {
                // What was sent before now has other picture ids than a rewrite would give
                // it, and a plain retransmission must be byte-identical to the original (same
                // SRTP index, so the same AES-GCM nonce: RFC 7714 §8.4 forbids other bytes
                // under it). A NACK from before a switch or a replay is not worth answering
                // anyway: the viewer decodes from the keyframe that follows.
                self.forget_sent();
            }
        }
    }

    /// Forgets every packet sent so far: no NACK for them is answered.
    fn forget_sent(&mut self) {
        for (at, slot) in self.sent.iter_mut().enumerate() {
            *slot = Sent::empty(at);
        }
    }

    /// Our timestamp for a source timestamp.
    pub fn timestamp(&self, source_ts: u32) -> u32 {
        source_ts.wrapping_add(self.ts_offset)
    }

    /// Rewrites the packet in `buf[..len]` (a copy of the source's) for this viewer, as
    /// packet number `index` of the source. Returns its new length (a 7-bit VP8 PictureID
    /// is widened to 15 bits into the byte after it, which `buf` must have), or None if it
    /// does not parse (never sent).
    #[cfg(test)]
    pub fn rewrite(&mut self, buf: &mut [u8], len: usize, index: u64) -> Option<usize> {
        self.rewrite_cc(buf, len, index, None)
    }

    /// [`Output::rewrite`], carrying transport-wide sequence number `twcc.1` in extension
    /// id `twcc.0` (the viewer's transport-wide-cc id): the packet's extension block is
    /// replaced by one holding only that (the source's extensions are never forwarded).
    pub fn rewrite_cc(
        &mut self,
        buf: &mut [u8],
        len: usize,
        index: u64,
        twcc: Option<(u8, u16)>,
    ) -> Option<usize> {
        let mut packet = RtpPacketMut::parse(buf.get_mut(..len)?).ok()?;
        let view = packet.as_packet();
        let (seq, ts) = (
            view.sequence_number().wrapping_add(self.seq_offset),
            view.timestamp().wrapping_add(self.ts_offset),
        );
        let (payload_len, header_len) = (view.payload().len(), view.header_len());
        self.patch_header(&mut packet, seq, ts);
        let vp8_len = match &mut self.vp8 {
            Some(ids) => ids.rewrite(buf, header_len, len),
            None => len,
        };
        let new_len = match twcc {
            Some((id, n)) => put_twcc(buf, vp8_len, id, n)?,
            None => vp8_len,
        };
        let ring = self.sent.len().max(1);
        if let Some(slot) = self.sent.get_mut(usize::from(seq) % ring) {
            *slot = Sent {
                index: index as u32, // the low bits (see `Sent::index`)
                ts,
                seq,
                resent: 0,
                twcc: twcc.map_or(0, |t| t.1),
            };
        }
        if self.last.is_none_or(|(last, _)| seq::seq_newer(seq, last)) {
            self.last = Some((seq, ts));
        }
        self.packets = self.packets.wrapping_add(1);
        self.octets = self
            .octets
            .wrapping_add((payload_len + vp8_len - len) as u32);
        self.bytes_sent += new_len as u64;
        Some(new_len)
    }

    /// The transport-wide sequence number what we sent as `seq` carried.
    pub fn sent_twcc(&self, seq: u16) -> Option<u16> {
        self.slot(seq).map(|s| s.twcc)
    }

    /// Rewrites a retransmission in `buf[..len]` exactly as the original went out: same
    /// sequence number and timestamp (RFC 4588 RTX is not negotiated; browsers take plain
    /// retransmissions). Returns its new length, as [`Output::rewrite`].
    pub fn rewrite_resend(&self, buf: &mut [u8], len: usize, seq: u16, ts: u32) -> Option<usize> {
        self.rewrite_resend_cc(buf, len, seq, ts, None)
    }

    /// [`Output::rewrite_resend`] with a transport-wide sequence number, as
    /// [`Output::rewrite_cc`]: for a plain retransmission the one the original carried.
    pub fn rewrite_resend_cc(
        &self,
        buf: &mut [u8],
        len: usize,
        seq: u16,
        ts: u32,
        twcc: Option<(u8, u16)>,
    ) -> Option<usize> {
        let mut packet = RtpPacketMut::parse(buf.get_mut(..len)?).ok()?;
        let header_len = packet.as_packet().header_len();
        self.patch_header(&mut packet, seq, ts);
        // The same picture offsets as when first sent: a re-base that changed them forgot
        // every packet sent before it.
        let len = match self.vp8 {
            Some(ids) => ids.apply(buf, header_len, len),
            None => len,
        };
        match twcc {
            Some((id, n)) => put_twcc(buf, len, id, n),
            None => Some(len),
        }
    }

    /// Whether a packet of source `ssrc` may only start a keyframe for this viewer (video
    /// at the start, or a new source).
    pub fn needs_keyframe(&self, ssrc: u32) -> bool {
        self.waiting_for_keyframe || self.source_ssrc != Some(ssrc)
    }

    fn patch_header(&self, packet: &mut RtpPacketMut<'_>, seq: u16, ts: u32) {
        packet.set_ssrc(self.ssrc);
        packet.set_sequence_number(seq);
        packet.set_timestamp(ts);
        packet.set_payload_type(self.payload_type);
        packet.remap_extensions(&self.ext_map);
    }

    /// The source packet index and our timestamp of what we sent as `seq`, if we still
    /// remember it; `next_index` is the track history's next index (every index we sent is
    /// below it).
    pub fn source_of(&self, seq: u16, next_index: u64) -> Option<(u64, u32)> {
        let slot = self.slot(seq)?;
        let behind = (next_index as u32).wrapping_sub(slot.index);
        let index = next_index.checked_sub(u64::from(behind))?;
        Some((index, slot.ts))
    }

    /// The NACK-map entry of what we sent as `seq`, if we still remember it.
    fn slot(&self, seq: u16) -> Option<&Sent> {
        self.sent
            .get(usize::from(seq) % self.sent.len().max(1))
            .filter(|s| s.seq == seq)
    }

    /// One more than the milliseconds since the first retransmission, wrapping at 16 bits,
    /// never 0 (0 is "never"). A wrap can make a 65 s old retransmission look recent; by then
    /// the slot has almost always been reused (which clears it).
    fn tick(clock: Instant, now: Instant) -> u16 {
        let ms = now.saturating_duration_since(clock).as_millis() as u16;
        ms.wrapping_add(1).max(1)
    }

    /// Whether `seq` was retransmitted less than `gap` (the viewer's RTT) ago: a receiver
    /// asks again only after a round trip without it (RFC 4585 §3.5.3), so an earlier repeat
    /// is a duplicate NACK or a hostile one.
    pub fn resent_within(&self, seq: u16, now: Instant, gap: Duration) -> bool {
        let (Some(slot), Some(clock)) = (self.slot(seq), self.resend_clock) else {
            return false;
        };
        slot.resent != 0
            && u128::from(Self::tick(clock, now).wrapping_sub(slot.resent)) < gap.as_millis()
    }

    /// Notes that `seq` was retransmitted at `now`.
    pub fn mark_resent(&mut self, seq: u16, now: Instant) {
        let clock = *self.resend_clock.get_or_insert(now);
        let ring = self.sent.len().max(1);
        if let Some(slot) = self
            .sent
            .get_mut(usize::from(seq) % ring)
            .filter(|s| s.seq == seq)
        {
            slot.resent = Self::tick(clock, now);
        }
    }
}

impl Vp8Ids {
    /// The source's PictureID in one 15-bit space: a 7-bit one (pion sends those below 128)
    /// is unwrapped next to the last one seen, so it keeps counting past 127.
    fn extend(&self, id: PictureId) -> u16 {
        match (id, self.last_source) {
            (PictureId::Long(id), _) => id,
            (PictureId::Short(id), None) => u16::from(id),
            (PictureId::Short(id), Some(last)) => {
                let ahead = u16::from(id.wrapping_sub(last as u8) & 0x7f);
                let step = if ahead < 64 {
                    ahead
                } else {
                    ahead.wrapping_sub(128)
                };
                last.wrapping_add(step) & 0x7fff
            }
        }
    }

    /// Offsets so that the picture in `payload` follows the last one sent.
    fn rebase(&mut self, payload: &[u8]) {
        let Ok(d) = Descriptor::parse(payload) else {
            return;
        };
        if let (Some(id), Some(last)) = (d.picture_id, self.last_picture) {
            // A new source has its own numbering: start its 15-bit space at its id.
            let id = match id {
                PictureId::Long(id) => id,
                PictureId::Short(id) => u16::from(id),
            };
            self.last_source = Some(id);
            self.picture_offset = last.wrapping_add(1).wrapping_sub(id) & 0x7fff;
        }
        if let (Some(tl0), Some(last)) = (d.tl0picidx, self.last_tl0) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(tl0);
        }
    }

    /// Applies the offsets to the packet in `buf[..len]`, whose payload starts at `at`, and
    /// remembers what was sent. Returns the new length.
    fn rewrite(&mut self, buf: &mut [u8], at: usize, len: usize) -> usize {
        if let Some(id) = buf
            .get(at..len)
            .and_then(|p| Descriptor::parse(p).ok())
            .and_then(|d| d.picture_id)
        {
            let id = self.extend(id);
            if self
                .last_source
                .is_none_or(|last| id != last && id.wrapping_sub(last) & 0x7fff < 0x4000)
            {
                self.last_source = Some(id);
            }
        }
        let len = self.apply(buf, at, len);
        if let Some(d) = buf.get(at..len).and_then(|p| Descriptor::parse(p).ok()) {
            if let Some(PictureId::Long(id)) = d.picture_id {
                self.last_picture = Some(id);
            }
            self.last_tl0 = d.tl0picidx.or(self.last_tl0);
        }
        len
    }

    /// Writes the offset ids into the packet in `buf[..len]` (payload at `at`), always as a
    /// 15-bit PictureID: a 7-bit one is widened by a byte, moving the rest of the packet, so
    /// a viewer's ids run on whatever size each publisher sends. Returns the new length.
    fn apply(self, buf: &mut [u8], at: usize, len: usize) -> usize {
        let Some(d) = buf.get(at..len).and_then(|p| Descriptor::parse(p).ok()) else {
            return len;
        };
        if let (Some(tl0), Some(payload)) = (d.tl0picidx, buf.get_mut(at..len)) {
            let _ = vp8::set_tl0picidx(payload, tl0.wrapping_add(self.tl0_offset));
        }
        let Some(id) = d.picture_id else {
            return len;
        };
        let out = self.extend(id).wrapping_add(self.picture_offset) & 0x7fff;
        match id {
            PictureId::Long(_) => {
                if let Some(payload) = buf.get_mut(at..len) {
                    let _ = vp8::set_picture_id(payload, out);
                }
                len
            }
            // RFC 7741 §4.2: with X and I set the PictureID is the third descriptor byte; M = 1
            // makes it two bytes.
            PictureId::Short(_) if buf.len() > len => {
                buf.copy_within(at + 3..len, at + 4);
                let [hi, lo] = (0x8000 | out).to_be_bytes();
                if let Some(field) = buf.get_mut(at + 2..at + 4) {
                    field.copy_from_slice(&[hi, lo]);
                }
                len + 1
            }
            PictureId::Short(_) => len,
        }
    }
}

/// Replaces the extension block of the RTP packet in `buf[..len]` with one holding only a
/// transport-wide sequence number (one-byte form, RFC 8285 §4.2; the element of
/// draft-holmer-rmcat-transport-wide-cc-extensions-01 §2), moving the payload. Returns the
/// new length; `None` if the packet does not parse, `id` is not 1-14 or `buf` is too short.
pub fn put_twcc(buf: &mut [u8], len: usize, id: u8, seq: u16) -> Option<usize> {
    if !(1..=14).contains(&id) {
        return None;
    }
    let (fixed, header_len) = {
        let p = RtpPacket::parse(buf.get(..len)?).ok()?;
        (12 + 4 * p.csrcs().len(), p.header_len())
    };
    let block = fixed + 8;
    let new_len = len - header_len + block;
    if new_len > buf.len() {
        return None;
    }
    buf.copy_within(header_len..len, block);
    let [hi, lo] = seq.to_be_bytes();
    buf.get_mut(fixed..block)?
        .copy_from_slice(&[0xbe, 0xde, 0, 1, id << 4 | 1, hi, lo, 0]);
    buf[0] |= 0x10;
    Some(new_len)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rtc::rtp::{RtpHeader, RtpPacket};

    use super::{AUDIO_HISTORY, Admit, Output, VIDEO_HISTORY};
    use crate::sources::Codec;

    /// An RTP packet of payload type 96 carrying `payload`.
    fn rtp(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        RtpHeader {
            payload_type: 96,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        }
        .write_vec(payload, 0, &mut out)
        .unwrap();
        out
    }

    fn packet(ssrc: u32, seq: u16, ts: u32, picture_id: u16) -> Vec<u8> {
        // VP8 descriptor: X=1, S=1 PID 0; I=1; 15-bit PictureID. Then a keyframe header byte.
        let [hi, lo] = (0x8000 | picture_id).to_be_bytes();
        rtp(ssrc, seq, ts, &[0x90, 0x80, hi, lo, 0x00])
    }

    fn sent(out: &mut Output, p: &[u8], index: u64) -> (u16, u32, u16) {
        let mut buf = p.to_vec();
        buf.push(0); // room to widen a 7-bit PictureID
        let len = out.rewrite(&mut buf, p.len(), index).unwrap();
        buf.truncate(len);
        let v = RtpPacket::parse(&buf).unwrap();
        assert_eq!((v.ssrc(), v.payload_type()), (0xabcd, 120));
        let pid = u16::from_be_bytes([v.payload()[2], v.payload()[3]]) & 0x7fff;
        (v.sequence_number(), v.timestamp(), pid)
    }

    #[test]
    fn remembers_as_many_packets_as_the_history_keeps() {
        // Audio: a 128-packet ring across the 16-bit wrap; 128 later the slot is reused.
        let mut out = Output::new(0, 120, 0xabcd, 0, 0, false, false);
        for i in 0..(AUDIO_HISTORY as u64 + 1) {
            let seq = 65500u16.wrapping_add(i as u16);
            let mut buf = packet(1, seq, 0, 0);
            let len = buf.len();
            assert!(out.rewrite(&mut buf, len, i).is_some());
        }
        let first = 65500u16;
        let next = AUDIO_HISTORY as u64 + 1;
        assert_eq!(out.source_of(first, next), None, "overwritten");
        assert_eq!(
            out.source_of(first.wrapping_add(1), next).map(|s| s.0),
            Some(1)
        );
        let last = first.wrapping_add(AUDIO_HISTORY as u16);
        assert_eq!(
            out.source_of(last, next).map(|s| s.0),
            Some(AUDIO_HISTORY as u64)
        );
        assert_eq!(out.sent.len(), AUDIO_HISTORY);
        let video = Output::new(0, 120, 0xabcd, 0, 0, true, true);
        assert_eq!(video.sent.len(), VIDEO_HISTORY);
    }

    #[test]
    fn the_nack_map_restores_indices_past_32_bits() {
        assert_eq!(std::mem::size_of::<super::Sent>(), 16);
        let mut out = Output::new(0, 120, 0xabcd, 0, 0, false, false);
        let index = (1u64 << 32) + 5;
        let mut buf = packet(1, 9, 0, 0);
        let len = buf.len();
        assert!(out.rewrite(&mut buf, len, index).is_some());
        assert_eq!(out.source_of(9, index + 3).map(|s| s.0), Some(index));
        assert_eq!(out.source_of(9, index + 1).map(|s| s.0), Some(index));
    }

    #[test]
    fn keeps_source_order_and_remembers_for_nacks() {
        let mut out = Output::new(0, 120, 0xabcd, 65534, 1000, true, true);
        let (a, b) = (packet(1, 7, 90_000, 5), packet(1, 8, 93_000, 6));
        assert_eq!(
            out.admit(
                &RtpPacket::parse(&b).unwrap(),
                false,
                Codec::Vp8,
                Instant::now()
            ),
            Admit::Skip,
            "waits for a keyframe"
        );
        assert_eq!(
            out.admit(
                &RtpPacket::parse(&a).unwrap(),
                true,
                Codec::Vp8,
                Instant::now()
            ),
            Admit::Send
        );
        // Reordered on the way: 8 before 7 stays 8 before 7, with the offset applied.
        assert_eq!(sent(&mut out, &b, 43), (6, 94_000, 6));
        assert_eq!(sent(&mut out, &a, 42), (5, 91_000, 5));
        assert_eq!(
            (
                out.source_of(5, 44),
                out.source_of(6, 44),
                out.source_of(7, 44)
            ),
            (Some((42, 91_000)), Some((43, 94_000)), None)
        );
        assert_eq!((out.packets, out.octets), (2, 10));
        assert_eq!(out.rewrite(&mut [0u8; 5], 5, 1), None, "garbage is refused");
    }

    #[test]
    fn a_new_source_continues_numbering_at_its_keyframe() {
        let mut out = Output::new(0, 120, 0xabcd, 100, 0, true, true);
        let first = packet(1, 500, 10_000, 300);
        assert_eq!(
            out.admit(
                &RtpPacket::parse(&first).unwrap(),
                true,
                Codec::Vp8,
                Instant::now()
            ),
            Admit::Send
        );
        assert_eq!(sent(&mut out, &first, 0), (600, 10_000, 300));
        // The publisher reconnects: new SSRC, numbers and picture ids from elsewhere.
        let delta = packet(2, 9, 777_000, 4000);
        assert_eq!(
            out.admit(
                &RtpPacket::parse(&delta).unwrap(),
                false,
                Codec::Vp8,
                Instant::now()
            ),
            Admit::Skip
        );
        let key = packet(2, 10, 780_000, 4001);
        assert_eq!(
            out.admit(
                &RtpPacket::parse(&key).unwrap(),
                true,
                Codec::Vp8,
                Instant::now()
            ),
            Admit::Send
        );
        assert_eq!(
            sent(&mut out, &key, 1),
            (601, 13_000, 301),
            "continues after the last sent"
        );
        let next = packet(2, 11, 783_000, 4002);
        assert_eq!(
            out.admit(
                &RtpPacket::parse(&next).unwrap(),
                false,
                Codec::Vp8,
                Instant::now()
            ),
            Admit::Send
        );
        assert_eq!(sent(&mut out, &next, 2), (602, 16_000, 302));
    }

    #[test]
    fn a_replay_after_a_pli_gets_new_numbers() {
        let mut out = Output::new(0, 120, 0xabcd, 0, 0, true, true);
        let key = packet(1, 10, 0, 1);
        let delta = packet(1, 11, 3000, 2);
        out.admit(
            &RtpPacket::parse(&key).unwrap(),
            true,
            Codec::Vp8,
            Instant::now(),
        );
        sent(&mut out, &key, 0);
        sent(&mut out, &delta, 1);
        out.rebase(&RtpPacket::parse(&key).unwrap(), 3000);
        assert_eq!(sent(&mut out, &key, 0), (12, 6000, 3));
        assert_eq!(sent(&mut out, &delta, 1), (13, 9000, 4));
    }

    /// `p` as `out` sends it (one byte of room for a widened PictureID).
    fn rewritten(out: &mut Output, p: &[u8], index: u64) -> Vec<u8> {
        let mut buf = p.to_vec();
        buf.push(0);
        let n = out.rewrite(&mut buf, p.len(), index).expect("rewritten");
        buf.truncate(n);
        buf
    }

    /// SRTP would protect a retransmission under the original's index (same SSRC, ROC and
    /// sequence number, so the same AES-GCM nonce): its bytes must be the original's, or it
    /// must not be sent at all.
    #[test]
    fn a_retransmission_after_a_rebase_is_the_original_or_nothing() {
        let mut out = Output::new(0, 120, 0xabcd, 0, 0, true, true);
        let t0 = Instant::now();
        let key = packet(1, 10, 0, 1);
        let delta = packet(1, 11, 3000, 2);
        out.admit(&RtpPacket::parse(&key).unwrap(), true, Codec::Vp8, t0);
        let mut originals = Vec::new();
        for (index, p) in [&key, &delta].into_iter().enumerate() {
            originals.push(rewritten(&mut out, p, index as u64));
        }
        let resend = |out: &Output, index: usize| {
            let v = RtpPacket::parse(&originals[index]).unwrap();
            let (source, ts) = out.source_of(v.sequence_number(), 2)?;
            assert_eq!(source, index as u64);
            let mut buf = [&key, &delta][index].clone();
            let len = buf.len();
            buf.push(0);
            let n = out.rewrite_resend(&mut buf, len, v.sequence_number(), ts)?;
            buf.truncate(n);
            Some(buf)
        };
        assert_eq!(resend(&out, 1).as_ref(), Some(&originals[1]), "before");
        // A new publisher's keyframe with other picture ids re-bases the VP8 offsets.
        let other = packet(2, 500, 90_000, 7000);
        out.admit(&RtpPacket::parse(&other).unwrap(), true, Codec::Vp8, t0);
        for (index, original) in originals.iter().enumerate() {
            if let Some(bytes) = resend(&out, index) {
                assert_eq!(&bytes, original, "packet {index} resent with other bytes");
            }
        }
    }

    #[test]
    fn a_packet_is_resent_at_most_once_per_round_trip() {
        let mut out = Output::new(0, 120, 0xabcd, 0, 0, false, false);
        let (t0, rtt) = (Instant::now(), Duration::from_millis(50));
        for i in 0..AUDIO_HISTORY as u16 {
            rewritten(&mut out, &packet(1, i, 0, 0), u64::from(i));
        }
        assert!(!out.resent_within(3, t0, rtt), "never resent");
        out.mark_resent(3, t0);
        assert!(out.resent_within(3, t0 + Duration::from_millis(49), rtt));
        assert!(!out.resent_within(4, t0, rtt), "another packet");
        assert!(!out.resent_within(3, t0 + rtt, rtt), "a round trip later");
        out.mark_resent(3, t0 + rtt);
        assert!(out.resent_within(3, t0 + rtt, rtt));
        // The slot taken by a new packet forgets the retransmission.
        let next = 3 + AUDIO_HISTORY as u16;
        rewritten(&mut out, &packet(1, next, 0, 0), u64::from(next));
        assert!(!out.resent_within(next, t0 + rtt, rtt));
        assert_eq!(out.source_of(3, 1000), None);
    }

    /// A VP8 packet with a 7-bit PictureID (X=1, S=1, I=1, M=0), then `0xaa 0xbb` of data.
    fn short_id_packet(ssrc: u32, seq: u16, ts: u32, picture_id: u8) -> Vec<u8> {
        rtp(ssrc, seq, ts, &[0x90, 0x80, picture_id & 0x7f, 0xaa, 0xbb])
    }

    #[test]
    fn seven_bit_picture_ids_continue_after_a_takeover() {
        // A publisher with 15-bit ids, then (a takeover) one with pion's 7-bit ids that wrap
        // at 128: the viewer's ids run on 178, 179, 180, 181, 182, … in 15 bits.
        let mut out = Output::new(0, 120, 0xabcd, 0, 0, true, true);
        let t0 = Instant::now();
        let mut index = 0;
        for (i, pid) in (178..=180).enumerate() {
            let p = packet(1, 10 + i as u16, 3000 * i as u32, pid);
            out.admit(&RtpPacket::parse(&p).unwrap(), i == 0, Codec::Vp8, t0);
            assert_eq!(sent(&mut out, &p, index).2, pid);
            index += 1;
        }
        for (i, pid) in [126u8, 127, 0, 1, 2].into_iter().enumerate() {
            let expected = 181 + i as u16;
            let p = short_id_packet(2, 500 + i as u16, 90_000 + 3000 * i as u32, pid);
            let admitted = out.admit(&RtpPacket::parse(&p).unwrap(), i == 0, Codec::Vp8, t0);
            assert_eq!(admitted, Admit::Send);
            let mut buf = p.clone();
            buf.push(0);
            let len = out.rewrite(&mut buf, p.len(), index).unwrap();
            assert_eq!(len, p.len() + 1, "widened by one byte");
            let v = RtpPacket::parse(&buf[..len]).unwrap();
            let payload = v.payload();
            assert_eq!(payload[2] & 0x80, 0x80, "M = 1");
            let id = u16::from_be_bytes([payload[2], payload[3]]) & 0x7fff;
            assert_eq!(id, expected, "source id {pid}");
            assert_eq!(&payload[4..], &[0xaa, 0xbb], "the data moved intact");
            // A retransmission of it comes out byte-identical.
            let mut again = p.clone();
            again.push(0);
            let n = out
                .rewrite_resend(&mut again, p.len(), v.sequence_number(), v.timestamp())
                .unwrap();
            assert_eq!(&again[..n], &buf[..len]);
            index += 1;
        }
    }

    #[test]
    fn a_switch_after_silence_advances_time_by_the_silence() {
        let mut out = Output::new(0, 120, 0xabcd, 0, 0, true, true);
        let t0 = Instant::now();
        let first = packet(1, 500, 10_000, 300);
        assert_eq!(
            out.admit(&RtpPacket::parse(&first).unwrap(), true, Codec::Vp8, t0),
            Admit::Send
        );
        sent(&mut out, &first, 0);
        let key = packet(2, 10, 780_000, 4001);
        let later = t0 + Duration::from_millis(2500);
        assert_eq!(
            out.admit(&RtpPacket::parse(&key).unwrap(), true, Codec::Vp8, later),
            Admit::Send
        );
        assert_eq!(
            sent(&mut out, &key, 1),
            (501, 10_000 + 225_000, 301),
            "2.5 s at 90 kHz"
        );
    }
}
