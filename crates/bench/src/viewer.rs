//! A WHEP viewer's media: packets counted per SSRC (unique, duplicates, loss), the video put
//! in order, gaps NACKed, VP8 frames reassembled and recorded (or their hashes), a PLI when a
//! frame cannot be decoded, latency from the stamps of synthetic frames, and the RTCP the
//! server sends (Sender Reports, BYE).

use std::time::{Duration, Instant};

use media::RtpMeta;
use media::vp8::{Descriptor, PictureId, Vp8Depacketizer};
use rtc::rtcp::{RtcpPacket, RtcpWriter, parse_compound};
use rtc::rtp::{RtpPacket, SeqUnwrapper};
use rtc::sdp::{Codec, MediaKind, Negotiated};

use crate::jitter::Jitter;
use crate::session::Transport;
use crate::synthetic::{self, Stamp};

/// PLIs at most this often.
const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// Sequence numbers remembered per SSRC to tell duplicates (a power of two, in 64-bit words).
const SEEN_WORDS: usize = 16;
const SEEN: i64 = 64 * SEEN_WORDS as i64;

/// What a viewer does with what it receives.
#[derive(Debug, Clone)]
pub struct ViewerConfig {
    /// Reassemble VP8 frames (and record each one's facts and hash).
    pub reassemble: bool,
    /// Keep each frame's bytes too.
    pub keep_frames: bool,
    /// NACK gaps in the video.
    pub nack: bool,
    /// Send a PLI when a frame cannot be decoded.
    pub pli: bool,
    /// How long a gap in the video may hold back the packets after it.
    pub hold: Duration,
    /// Decrypt one RTP packet in this many (1: all). The others are counted from their
    /// plain headers, unauthenticated; reassembly, NACK and latency see only decrypted ones.
    pub decrypt_one_in: u32,
}

impl Default for ViewerConfig {
    fn default() -> Self {
        Self {
            reassemble: true,
            keep_frames: false,
            nack: true,
            pli: true,
            hold: Duration::from_millis(300),
            decrypt_one_in: 1,
        }
    }
}

impl ViewerConfig {
    /// A viewer that only counts packets, decrypting none (for load).
    pub fn counting() -> Self {
        Self {
            reassemble: false,
            nack: false,
            pli: false,
            decrypt_one_in: u32::MAX,
            ..Self::default()
        }
    }
}

/// Reception of one SSRC.
#[derive(Debug, Clone)]
pub struct SsrcStats {
    /// The SSRC.
    pub ssrc: u32,
    /// Payload type of its first packet.
    pub payload_type: u8,
    /// Packets received, duplicates included.
    pub packets: u64,
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Packets whose sequence number had been received already.
    pub duplicates: u64,
    /// Bytes received (RTP packets as decrypted, or SRTP datagrams when not decrypted).
    pub bytes: u64,
    /// First arrival.
    pub first_at: Instant,
    /// Last arrival.
    pub last_at: Instant,
    unwrap: SeqUnwrapper,
    first: i64,
    highest: i64,
    seen: [u64; SEEN_WORDS],
}

impl SsrcStats {
    fn new(ssrc: u32, payload_type: u8, now: Instant) -> Self {
        Self {
            ssrc,
            payload_type,
            packets: 0,
            unique: 0,
            duplicates: 0,
            bytes: 0,
            first_at: now,
            last_at: now,
            unwrap: SeqUnwrapper::new(),
            first: 0,
            highest: 0,
            seen: [0; SEEN_WORDS],
        }
    }

    /// Sequence numbers from the first to the highest received.
    pub fn expected(&self) -> u64 {
        (self.highest - self.first + 1).max(0) as u64
    }

    /// Expected but never received.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.unique)
    }

    fn bit(&mut self, ext: i64) -> (&mut u64, u64) {
        let i = ext.rem_euclid(SEEN) as usize;
        let word = &mut self.seen[(i / 64) % SEEN_WORDS];
        (word, 1u64 << (i % 64))
    }

    fn record(&mut self, now: Instant, seq: u16, len: usize) {
        let ext = self.unwrap.extend(seq);
        if self.packets == 0 {
            (self.first, self.highest) = (ext, ext - 1);
        }
        self.packets += 1;
        self.bytes += len as u64;
        self.last_at = now;
        if ext > self.highest {
            for e in (self.highest + 1).max(ext - SEEN + 1)..=ext {
                let (word, mask) = self.bit(e);
                *word &= !mask;
            }
            self.highest = ext;
        } else if ext <= self.highest - SEEN {
            // Too old to tell; it cannot be counted twice as new either.
            self.duplicates += 1;
            return;
        }
        self.first = self.first.min(ext);
        let (word, mask) = self.bit(ext);
        if *word & mask != 0 {
            self.duplicates += 1;
        } else {
            *word |= mask;
            self.unique += 1;
        }
    }
}

/// One reassembled video frame.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// When its last packet was released.
    pub at: Instant,
    /// RTP timestamp.
    pub rtp_timestamp: u32,
    /// Sequence number of its first packet.
    pub first_seq: u16,
    /// Sequence number of its last packet.
    pub last_seq: u16,
    /// VP8 PictureID of its first packet.
    pub picture_id: Option<u16>,
    /// A VP8 keyframe.
    pub keyframe: bool,
    /// A decoder could show it: a keyframe, or every frame since one arrived whole.
    pub decodable: bool,
    /// Its size.
    pub len: usize,
    /// [`frame_hash`] of its bytes.
    pub hash: u64,
    /// Its bytes, with [`ViewerConfig::keep_frames`].
    pub data: Option<Vec<u8>>,
    /// The stamp of its first packet, for synthetic frames.
    pub stamp: Option<Stamp>,
}

/// FNV-1a, 64 bits: a frame's fingerprint (not cryptographic; tests compare frames with it).
pub fn frame_hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Frame reassembly behind the reorder buffer.
#[derive(Debug, Default)]
struct Assembly {
    depack: Vp8Depacketizer,
    keep: bool,
    /// First sequence number, PictureID and stamp of the frame being built.
    start: Option<(u16, Option<u16>, Option<Stamp>)>,
    decodable: bool,
    /// Since when a keyframe is needed (a frame could not be decoded).
    keyframe_wanted: Option<Instant>,
    frames: Vec<FrameInfo>,
}

impl Assembly {
    fn release(&mut self, now: Instant, meta: RtpMeta, payload: &[u8]) {
        let Ok(d) = Descriptor::parse(payload) else {
            return;
        };
        if d.starts_frame() {
            let picture_id = d.picture_id.map(|p| match p {
                PictureId::Long(id) => id,
                PictureId::Short(id) => u16::from(id),
            });
            let stamp = payload.get(d.len..).and_then(synthetic::read_stamp);
            self.start = Some((meta.seq, picture_id, stamp));
        }
        let Ok(Some(frame)) = self.depack.push(meta, payload) else {
            return;
        };
        let decodable = frame.keyframe || (!frame.after_loss && self.decodable);
        self.decodable = decodable;
        if !decodable {
            self.keyframe_wanted.get_or_insert(now);
        }
        let (first_seq, picture_id, stamp) = self.start.take().unwrap_or((meta.seq, None, None));
        self.frames.push(FrameInfo {
            at: now,
            rtp_timestamp: frame.timestamp,
            first_seq,
            last_seq: meta.seq,
            picture_id,
            keyframe: frame.keyframe,
            decodable,
            len: frame.data.len(),
            hash: frame_hash(frame.data),
            data: self.keep.then(|| frame.data.to_vec()),
            stamp,
        });
    }
}

/// A viewer's media state.
#[derive(Debug)]
pub struct Viewer {
    config: ViewerConfig,
    video_pt: Option<u8>,
    /// The video's RTX payload type (RFC 4588), if negotiated, and the buffer an RTX packet
    /// is unwrapped into.
    video_rtx: (Option<u8>, Vec<u8>),
    video_ssrc: Option<u32>,
    sender_ssrc: u32,
    jitter: Jitter,
    asm: Assembly,
    last_pli: Option<Instant>,
    decrypt_count: u32,
    scratch: Vec<u16>,
    rtcp: Vec<u8>,
    /// Reception per SSRC, in order of first arrival.
    pub ssrcs: Vec<SsrcStats>,
    /// Forwarding latency of each stamped video packet decrypted, in microseconds.
    pub latencies_us: Vec<u32>,
    /// When the first RTP packet arrived.
    pub first_media_at: Option<Instant>,
    /// When the first video packet with the marker bit arrived: the end of the first frame
    /// (RFC 7741 §4.1), which the server's keyframe cache makes a keyframe. Read from the
    /// plain RTP header, so counting viewers that decrypt few packets see it too.
    pub first_frame_at: Option<Instant>,
    /// When RTCP BYE came, and for which SSRCs.
    pub bye: Option<(Instant, Vec<u32>)>,
    /// Sender Reports received.
    pub sender_reports: u64,
    /// Sequence numbers NACKed.
    pub nacks_sent: u64,
    /// PLIs sent.
    pub plis_sent: u64,
}

impl Viewer {
    /// A viewer of what `negotiated` accepted; `random` picks the SSRC its feedback comes from.
    pub fn new(config: ViewerConfig, negotiated: &Negotiated, random: u64) -> Self {
        let video = (negotiated.media.iter())
            .find(|m| m.kind == MediaKind::Video && m.direction.receives());
        let vp8 = video.and_then(|m| m.codecs.iter().find(|c| c.codec == Codec::Vp8));
        let video_pt = vp8.map(|c| c.pt);
        let video_rtx = (vp8.and_then(|c| c.rtx_pt), Vec::new());
        Viewer {
            jitter: Jitter::new(config.hold),
            asm: Assembly {
                keep: config.keep_frames,
                ..Assembly::default()
            },
            config,
            video_pt,
            video_rtx,
            video_ssrc: None,
            sender_ssrc: (random as u32).max(1),
            last_pli: None,
            decrypt_count: 0,
            scratch: Vec::new(),
            rtcp: Vec::new(),
            ssrcs: Vec::new(),
            latencies_us: Vec::new(),
            first_media_at: None,
            first_frame_at: None,
            bye: None,
            sender_reports: 0,
            nacks_sent: 0,
            plis_sent: 0,
        }
    }

    /// The SSRC the VP8 video comes with, once some arrived.
    pub fn video_ssrc(&self) -> Option<u32> {
        self.video_ssrc
    }

    /// Reception of the VP8 video.
    pub fn video(&self) -> Option<&SsrcStats> {
        self.ssrcs.iter().find(|s| Some(s.ssrc) == self.video_ssrc)
    }

    /// The SSRC our feedback is sent from.
    pub fn sender_ssrc(&self) -> u32 {
        self.sender_ssrc
    }

    /// The frames reassembled so far.
    pub fn frames(&self) -> &[FrameInfo] {
        &self.asm.frames
    }

    /// Video packets given up on after waiting, and packets that came too late.
    pub fn reorder_counts(&self) -> (u64, u64) {
        (self.jitter.lost, self.jitter.late)
    }

    /// Frames the depacketizer dropped (packets lost or malformed).
    pub fn frames_dropped(&self) -> u64 {
        self.asm.depack.dropped()
    }

    /// Whether the next RTP datagram should skip decryption (see
    /// [`ViewerConfig::decrypt_one_in`]).
    pub(crate) fn skip_decrypt(&mut self) -> bool {
        if self.config.decrypt_one_in <= 1 {
            return false;
        }
        self.decrypt_count = self.decrypt_count.wrapping_add(1);
        !self
            .decrypt_count
            .is_multiple_of(self.config.decrypt_one_in)
    }

    /// An SRTP packet counted from its plain header, without decrypting it.
    pub(crate) fn on_srtp_header(&mut self, now: Instant, datagram: &[u8]) {
        let (Some(&pt), Some(seq), Some(ssrc)) = (
            datagram.get(1),
            datagram.get(2..4).and_then(|b| b.try_into().ok()),
            datagram.get(8..12).and_then(|b| b.try_into().ok()),
        ) else {
            return;
        };
        let (seq, ssrc) = (u16::from_be_bytes(seq), u32::from_be_bytes(ssrc));
        let marker = pt & 0x80 != 0;
        self.count(now, ssrc, (pt & 0x7f, marker), seq, datagram.len());
    }

    /// Counts a packet of `ssrc` with payload type and marker bit `pt`.
    fn count(&mut self, now: Instant, ssrc: u32, pt: (u8, bool), seq: u16, len: usize) {
        let (pt, marker) = pt;
        self.first_media_at.get_or_insert(now);
        if Some(pt) == self.video_pt {
            self.video_ssrc = Some(ssrc);
            if marker {
                self.first_frame_at.get_or_insert(now);
            }
        }
        let i = match self.ssrcs.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => i,
            None => {
                self.ssrcs.push(SsrcStats::new(ssrc, pt, now));
                self.ssrcs.len() - 1
            }
        };
        if let Some(s) = self.ssrcs.get_mut(i) {
            s.record(now, seq, len);
        }
    }

    /// A decrypted RTP packet.
    pub fn on_rtp(&mut self, now: Instant, packet: &[u8]) {
        let Ok(view) = RtpPacket::parse(packet) else {
            return;
        };
        // A retransmission over RTX is handled as its original.
        if let (Some(rtx_pt), Some(pt), Some(ssrc)) =
            (self.video_rtx.0, self.video_pt, self.video_ssrc)
            && view.payload_type() == rtx_pt
        {
            let mut buf = std::mem::take(&mut self.video_rtx.1);
            if rtc::rtp::rtx::unwrap(&view, ssrc, pt, &mut buf) {
                self.on_rtp(now, &buf);
            }
            self.video_rtx.1 = buf;
            return;
        }
        let seq = view.sequence_number();
        let pt = (view.payload_type(), view.marker());
        self.count(now, view.ssrc(), pt, seq, packet.len());
        if Some(view.payload_type()) != self.video_pt {
            return;
        }
        let payload = view.payload();
        if let Some(stamp) = Descriptor::parse(payload)
            .ok()
            .and_then(|d| payload.get(d.len..))
            .and_then(synthetic::read_stamp)
        {
            let age = synthetic::micros(now).saturating_sub(stamp.sent_us);
            self.latencies_us
                .push(u32::try_from(age).unwrap_or(u32::MAX));
        }
        if !(self.config.reassemble || self.config.nack) {
            return;
        }
        let meta = RtpMeta {
            seq,
            timestamp: view.timestamp(),
            marker: view.marker(),
        };
        let (jitter, asm, reassemble) = (&mut self.jitter, &mut self.asm, self.config.reassemble);
        jitter.push(now, meta, payload, |m, p| {
            if reassemble {
                asm.release(now, m, p);
            }
        });
    }

    /// Decrypted RTCP from the server.
    pub fn on_rtcp(&mut self, now: Instant, rtcp: &[u8]) {
        for packet in parse_compound(rtcp).flatten() {
            match packet {
                RtcpPacket::Sr(_) => self.sender_reports += 1,
                RtcpPacket::Bye(bye) => self.bye = Some((now, bye.ssrcs().collect())),
                _ => {}
            }
        }
    }

    /// When [`Viewer::on_timeout`] has something to do.
    pub fn next_wake(&self) -> Option<Instant> {
        let pli = (self.asm.keyframe_wanted)
            .filter(|_| self.config.pli && self.video_ssrc.is_some())
            .map(|wanted| {
                self.last_pli
                    .map_or(wanted, |t| wanted.max(t + PLI_INTERVAL))
            });
        match (self.jitter.next_wake(), pli) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Gives up gaps that waited too long, sends the NACKs and the PLI that are due.
    pub fn on_timeout(&mut self, now: Instant, tx: &mut impl Transport) {
        let (asm, reassemble) = (&mut self.asm, self.config.reassemble);
        self.jitter.poll(now, |m, p| {
            if reassemble {
                asm.release(now, m, p);
            }
        });
        let Some(media_ssrc) = self.video_ssrc else {
            return;
        };
        self.scratch.clear();
        self.jitter.nacks(now, &mut self.scratch);
        if self.config.nack && !self.scratch.is_empty() {
            self.rtcp.clear();
            if RtcpWriter::new(&mut self.rtcp)
                .nack(self.sender_ssrc, media_ssrc, &self.scratch)
                .is_ok()
            {
                self.nacks_sent += self.scratch.len() as u64;
                tx.send_rtcp(&self.rtcp);
            }
        }
        let pli_due = self.last_pli.is_none_or(|t| now >= t + PLI_INTERVAL);
        if self.config.pli && self.asm.keyframe_wanted.is_some() && pli_due {
            self.asm.keyframe_wanted = None;
            self.last_pli = Some(now);
            self.rtcp.clear();
            if RtcpWriter::new(&mut self.rtcp)
                .pli(self.sender_ssrc, media_ssrc)
                .is_ok()
            {
                self.plis_sent += 1;
                tx.send_rtcp(&self.rtcp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_unique_duplicates_and_loss_across_the_wrap() {
        let now = Instant::now();
        let mut s = SsrcStats::new(1, 96, now);
        for seq in [65533, 65535, 0, 65535, 2, 1, 65534] {
            s.record(now, seq, 100);
        }
        assert_eq!((s.packets, s.unique, s.duplicates), (7, 6, 1));
        assert_eq!((s.expected(), s.lost()), (6, 0));
        s.record(now, 10, 100);
        assert_eq!((s.expected(), s.lost()), (14, 7));
        // Far behind the window: not counted again.
        s.record(now, 5000, 100);
        s.record(now, 10, 100);
        assert_eq!(s.duplicates, 2);
    }

    #[test]
    fn the_window_slides_over_many_packets() {
        let now = Instant::now();
        let mut s = SsrcStats::new(1, 96, now);
        for seq in 0..5000u16 {
            s.record(now, seq, 100);
            if seq % 7 == 0 {
                s.record(now, seq, 100);
            }
        }
        assert_eq!((s.unique, s.duplicates, s.lost()), (5000, 715, 0));
    }

    #[test]
    fn fnv_1a_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "" and "a".
        assert_eq!(frame_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(frame_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
