//! A WHIP publisher's media: frames from an IVF file or made up, paced at their frame rate,
//! packetized as VP8 (RFC 7741) with the negotiated mid and transport-wide sequence number
//! extensions; NACKed packets resent from a history, PLI/FIR answered with a keyframe, a
//! Sender Report every second, and optional deterministic loss on the send path.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use media::ivf::IvfReader;
use media::vp8::{Vp8Payloader, keyframe_size};
use rtc::rtcp::{RtcpPacket, RtcpWriter, SenderInfo, parse_compound};
use rtc::rtp::RtpHeader;
use rtc::sdp::{Codec, HeaderExtension, MediaKind, Negotiated};

use crate::ClientError;
use crate::session::Transport;
use crate::synthetic::{self, Stamp};

/// Packets kept for retransmission (a power of two: indexed by sequence number).
const HISTORY: usize = 1024;
/// Sender Reports this often.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// When this far behind schedule (a stalled thread), skip ahead instead of bursting.
const MAX_BEHIND: Duration = Duration::from_millis(500);

/// Where frames come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The frames of an IVF file, looped, each for its duration from the file's timestamps.
    Ivf(Vec<IvfFrame>),
    /// Made-up VP8-shaped frames with a stamp in every packet ([`crate::synthetic`]).
    Synthetic {
        /// Bits per second of frame data.
        bitrate: u32,
        /// Frames per second.
        fps: u32,
        /// A keyframe every this many frames (0: only at the start and on request).
        keyframe_interval: u32,
    },
    /// Nothing: the publisher connects and declares its track, then sends neither media nor
    /// Sender Reports (a stream that exists, for join storms that measure handshakes alone).
    Silent,
}

/// One frame of an IVF source.
#[derive(Debug, Clone)]
pub struct IvfFrame {
    /// The VP8 frame.
    pub data: Vec<u8>,
    /// How long it shows.
    pub duration: Duration,
    /// The same in 90 kHz RTP units.
    pub rtp_duration: u32,
    /// A decoder can start here.
    pub keyframe: bool,
}

impl Source {
    /// Reads every frame of an IVF file (held in memory).
    pub fn ivf(file: &[u8]) -> Result<Self, ClientError> {
        let (header, reader) = IvfReader::new(file)?;
        let frames = reader.collect::<Result<Vec<_>, _>>()?;
        let (num, den) = (
            u64::from(header.timebase_num.max(1)),
            u64::from(header.timebase_den.max(1)),
        );
        let mut out = Vec::with_capacity(frames.len());
        for (i, f) in frames.iter().enumerate() {
            // A frame lasts until the next; the last as long as the one before it.
            let ticks = match (
                frames.get(i + 1),
                i.checked_sub(1).and_then(|p| frames.get(p)),
            ) {
                (Some(next), _) => next.timestamp.saturating_sub(f.timestamp),
                (None, Some(prev)) => f.timestamp.saturating_sub(prev.timestamp),
                (None, None) => 1,
            }
            .max(1);
            out.push(IvfFrame {
                data: f.data.to_vec(),
                duration: Duration::from_nanos(ticks * num * 1_000_000_000 / den),
                rtp_duration: (ticks * num * 90_000 / den) as u32,
                keyframe: keyframe_size(f.data).is_some(),
            });
        }
        if out.is_empty() {
            return Err(ClientError::NoMedia("IVF frame"));
        }
        Ok(Source::Ivf(out))
    }

    /// Synthetic frames at `bitrate` bits/s and `fps`, a keyframe every 2 s.
    pub fn synthetic(bitrate: u32, fps: u32) -> Self {
        Source::Synthetic {
            bitrate,
            fps: fps.max(1),
            keyframe_interval: 2 * fps.max(1),
        }
    }
}

/// Deterministic loss: each RTP packet the publisher sends (retransmissions too) is dropped
/// with probability `percent` / 100, decided by a hash of `seed` and a counter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loss {
    /// Percent of packets dropped.
    pub percent: f64,
    /// Picks which ones.
    pub seed: u64,
}

/// How a publisher behaves.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Its frames.
    pub source: Source,
    /// Loss on its send path.
    pub loss: Option<Loss>,
    /// Largest RTP payload.
    pub max_payload: usize,
}

impl PublisherConfig {
    /// A publisher of `source` without loss.
    pub fn new(source: Source) -> Self {
        Self {
            source,
            loss: None,
            max_payload: media::DEFAULT_MAX_PAYLOAD,
        }
    }
}

/// What a publisher did and was asked.
#[derive(Debug, Clone, Default)]
pub struct PublisherStats {
    /// Frames sent.
    pub frames: u64,
    /// Keyframes among them.
    pub keyframes: u64,
    /// RTP packets made (first transmissions, whether or not loss dropped them).
    pub packets: u64,
    /// Payload bytes of those packets.
    pub bytes: u64,
    /// Transmissions the loss injection dropped (first ones and retransmissions).
    pub dropped: u64,
    /// Packets resent for NACKs.
    pub retransmitted: u64,
    /// Sequence numbers NACKed to us.
    pub nacked: u64,
    /// NACKed sequence numbers no longer (or never) in the history.
    pub nack_misses: u64,
    /// When each PLI or FIR arrived.
    pub keyframe_requests: Vec<Instant>,
    /// Receiver reports received.
    pub receiver_reports: u64,
    /// Transport-wide congestion control feedback packets received.
    pub twcc_feedback: u64,
}

/// A publisher's media state.
#[derive(Debug)]
pub struct Publisher {
    source: Source,
    /// Next IVF frame, or frames made so far.
    position: usize,
    payloader: Vp8Payloader,
    max_payload: usize,
    out: Sender,
    frame: Vec<u8>,
    next_due: Option<Instant>,
    next_report: Option<Instant>,
    keyframe_wanted: bool,
    rtcp: Vec<u8>,
    /// What it did and was asked.
    pub stats: PublisherStats,
}

/// The RTP side: numbering, extensions, history and loss.
#[derive(Debug)]
struct Sender {
    ssrc: u32,
    payload_type: u8,
    seq: u16,
    timestamp: u32,
    mid: Option<(u8, Vec<u8>)>,
    twcc: Option<u8>,
    twcc_seq: u16,
    history: Vec<(u16, Vec<u8>)>,
    packet: Vec<u8>,
    loss: Option<Loss>,
    sends: u64,
}

impl Publisher {
    /// A publisher for the video section `negotiated` accepted. `random` seeds its first
    /// sequence number, timestamp and PictureID (RFC 3550 §5.1 wants them random).
    pub fn new(
        config: PublisherConfig,
        negotiated: &Negotiated,
        random: u64,
    ) -> Result<Self, ClientError> {
        let video = (negotiated.media.iter())
            .find(|m| m.kind == MediaKind::Video && m.direction.sends())
            .ok_or(ClientError::NoMedia("sending video"))?;
        let payload_type = video
            .payload_type(Codec::Vp8)
            .ok_or(ClientError::NoMedia("VP8"))?;
        let ssrc = video.local_ssrc.ok_or(ClientError::NoMedia("SSRC"))?;
        let mid = (video.extension_id(HeaderExtension::SdesMid))
            .map(|id| (id, video.mid.clone().into_bytes()));
        let payloader = Vp8Payloader::new(config.max_payload, (random >> 48) as u16)
            .map_err(|_| ClientError::NoMedia("payload room"))?;
        Ok(Publisher {
            source: config.source,
            position: 0,
            payloader,
            max_payload: config.max_payload,
            out: Sender {
                ssrc,
                payload_type,
                seq: random as u16,
                timestamp: (random >> 16) as u32,
                mid,
                twcc: video.extension_id(HeaderExtension::TransportWideCc),
                twcc_seq: 0,
                history: vec![(0, Vec::new()); HISTORY],
                packet: Vec::with_capacity(1500),
                loss: config.loss,
                sends: 0,
            },
            frame: Vec::new(),
            next_due: None,
            next_report: None,
            keyframe_wanted: false,
            rtcp: Vec::new(),
            stats: PublisherStats::default(),
        })
    }

    /// The SSRC it sends with.
    pub fn ssrc(&self) -> u32 {
        self.out.ssrc
    }

    /// The sequence number the next packet gets.
    pub fn next_seq(&self) -> u16 {
        self.out.seq
    }

    /// Starts sending (the connection is up).
    pub fn start(&mut self, now: Instant) {
        if matches!(self.source, Source::Silent) {
            return;
        }
        self.next_due = Some(now);
        self.next_report = Some(now + REPORT_INTERVAL);
    }

    /// When it next has something to send.
    pub fn next_wake(&self) -> Option<Instant> {
        match (self.next_due, self.next_report) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends the frames due by `now`, and the Sender Report when due.
    pub fn on_timeout(&mut self, now: Instant, tx: &mut impl Transport) {
        while let Some(due) = self.next_due.filter(|&d| d <= now) {
            let duration = self.send_frame(now, tx);
            let next = due + duration;
            self.next_due = Some(if now.saturating_duration_since(next) > MAX_BEHIND {
                now
            } else {
                next
            });
        }
        if self.next_report.is_some_and(|t| t <= now) {
            self.next_report = Some(now + REPORT_INTERVAL);
            self.send_report(tx);
        }
    }

    /// Makes and sends the next frame; returns how long it lasts.
    fn send_frame(&mut self, now: Instant, tx: &mut impl Transport) -> Duration {
        let wanted = std::mem::take(&mut self.keyframe_wanted);
        let (data, keyframe, duration, rtp_duration) = match &self.source {
            Source::Ivf(frames) => {
                if wanted {
                    // Restart at the next keyframe the file has (this one, if it is one).
                    let n = frames.len();
                    let found = (0..n)
                        .map(|i| (self.position + i) % n)
                        .find(|&i| frames.get(i).is_some_and(|f| f.keyframe));
                    self.position = found.unwrap_or(self.position);
                }
                let i = self.position % frames.len().max(1);
                self.position = i + 1;
                let Some(f) = frames.get(i) else {
                    return Duration::from_secs(1);
                };
                (&f.data, f.keyframe, f.duration, f.rtp_duration)
            }
            Source::Synthetic {
                bitrate,
                fps,
                keyframe_interval,
            } => {
                let interval = u64::from(*keyframe_interval);
                let n = self.position as u64;
                let keyframe = wanted || n == 0 || (interval > 0 && n.is_multiple_of(interval));
                self.position += 1;
                let size = (*bitrate / 8 / *fps) as usize;
                // The payloader puts (max_payload − descriptor) bytes of frame in a packet.
                let chunk = self.max_payload - Vp8Payloader::DESCRIPTOR_LEN;
                let stamp = Stamp {
                    sent_us: synthetic::micros(now),
                    origin: self.out.ssrc,
                };
                synthetic::write_frame(&mut self.frame, size, keyframe, chunk, stamp);
                let duration = Duration::from_secs(1) / *fps;
                (&self.frame, keyframe, duration, 90_000 / *fps)
            }
            // Never scheduled (see `start`); a keyframe request does not wake it either.
            Source::Silent => return Duration::from_secs(1),
        };
        self.stats.frames += 1;
        self.stats.keyframes += u64::from(keyframe);
        let (out, stats) = (&mut self.out, &mut self.stats);
        let _ = self.payloader.packetize(data, |payload, marker| {
            stats.packets += 1;
            stats.bytes += payload.len() as u64;
            if !out.send(payload, marker, tx) {
                stats.dropped += 1;
            }
        });
        self.out.timestamp = self.out.timestamp.wrapping_add(rtp_duration);
        duration
    }

    fn send_report(&mut self, tx: &mut impl Transport) {
        self.rtcp.clear();
        let info = SenderInfo {
            ntp_time: ntp_now(),
            rtp_time: self.out.timestamp,
            packet_count: self.stats.packets as u32,
            octet_count: self.stats.bytes as u32,
        };
        let mut w = RtcpWriter::new(&mut self.rtcp);
        if w.sr(self.out.ssrc, &info, &[]).is_ok() && w.cname(self.out.ssrc, "bench").is_ok() {
            tx.send_rtcp(&self.rtcp);
        }
    }

    /// RTCP from the server: NACKs are answered from the history, PLI/FIR with a keyframe
    /// next; reports and congestion feedback are counted.
    pub fn on_rtcp(&mut self, rtcp: &[u8], now: Instant, tx: &mut impl Transport) {
        for packet in parse_compound(rtcp).flatten() {
            match packet {
                RtcpPacket::Nack(nack) if nack.media_ssrc() == self.out.ssrc => {
                    for seq in nack.lost() {
                        self.stats.nacked += 1;
                        match self.out.resend(seq, tx) {
                            Some(true) => self.stats.retransmitted += 1,
                            Some(false) => self.stats.dropped += 1,
                            None => self.stats.nack_misses += 1,
                        }
                    }
                }
                RtcpPacket::Pli(_) | RtcpPacket::Fir(_) => {
                    self.stats.keyframe_requests.push(now);
                    self.keyframe_wanted = true;
                }
                RtcpPacket::Rr(_) => self.stats.receiver_reports += 1,
                RtcpPacket::Twcc(_) => self.stats.twcc_feedback += 1,
                _ => {}
            }
        }
    }
}

impl Sender {
    /// Builds the next packet, keeps it for NACKs and sends it unless loss drops it. Returns
    /// false when dropped or refused.
    fn send(&mut self, payload: &[u8], marker: bool, tx: &mut impl Transport) -> bool {
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let twcc = self.twcc_seq.to_be_bytes();
        self.twcc_seq = self.twcc_seq.wrapping_add(1);
        let mut ext: [(u8, &[u8]); 2] = [(0, &[]); 2];
        let mut n = 0;
        if let Some((id, mid)) = &self.mid {
            ext[n] = (*id, mid);
            n += 1;
        }
        if let Some(id) = self.twcc {
            ext[n] = (id, &twcc);
            n += 1;
        }
        let header = RtpHeader {
            marker,
            payload_type: self.payload_type,
            sequence_number: seq,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            csrcs: &[],
            extensions: ext.get(..n).unwrap_or_default(),
        };
        if header.write_vec(payload, 0, &mut self.packet).is_err() {
            return false;
        }
        if let Some((s, kept)) = self.history.get_mut(usize::from(seq) % HISTORY) {
            *s = seq;
            kept.clear();
            kept.extend_from_slice(&self.packet);
        }
        self.transmit(tx, None)
    }

    /// Sends packet `seq` again, byte for byte (SRTP then repeats the same ciphertext, never
    /// new bytes under an old index). `None` when it is not in the history.
    fn resend(&mut self, seq: u16, tx: &mut impl Transport) -> Option<bool> {
        let slot = usize::from(seq) % HISTORY;
        let (kept_seq, kept) = self.history.get_mut(slot)?;
        if *kept_seq != seq || kept.is_empty() {
            return None;
        }
        let packet = std::mem::take(kept);
        let sent = self.transmit(tx, Some(&packet));
        if let Some(s) = self.history.get_mut(slot) {
            s.1 = packet;
        }
        Some(sent)
    }

    /// Sends `packet` (or the one just built) unless the loss injection drops it.
    fn transmit(&mut self, tx: &mut impl Transport, packet: Option<&[u8]>) -> bool {
        self.sends += 1;
        if let Some(loss) = self.loss
            && drops(loss, self.sends)
        {
            return false;
        }
        tx.send_rtp(packet.unwrap_or(&self.packet))
    }
}

/// Whether send number `n` is lost: splitmix64 of seed and counter against the percentage.
fn drops(loss: Loss, n: u64) -> bool {
    let mut z = loss.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z % 1_000_000) as f64) < loss.percent * 10_000.0
}

/// Now as a 64-bit NTP timestamp (RFC 5905 §6: seconds since 1900, 32.32 fixed point).
fn ntp_now() -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    ((since.as_secs() + UNIX_TO_NTP) << 32) | frac
}
