//! One remote media stream: reorder buffer, generic NACKs, keyframe requests, report block.

use std::time::{Duration, Instant};

use super::nack::DEFAULT_RTT;

use super::stats::Stats;
use crate::rtcp::{ReportBlock, SenderInfo};
use crate::rtp::SeqUnwrapper;

/// A jump ahead of this many sequence numbers or more is a "large jump" (RFC 3550 §A.1
/// `MAX_DROPOUT`): the packet is held off until the next one confirms a restarted sequence.
const MAX_DROPOUT: i64 = 3000;
/// Sequential packets from less than `MAX_DROPOUT` behind the window needed to accept them as
/// a restart: more than a burst of late retransmissions makes. Elsewhere 2 do (§A.1).
const NEAR_CONFIRM: u16 = 64;
/// Packets longer than this are refused: slots keep their buffers, so this bounds memory.
pub const MAX_PACKET_LEN: usize = 1500;

/// How a stream is received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveConfig {
    /// The remote media SSRC.
    pub ssrc: u32,
    /// RTP clock rate of its payload format (90000 for video, 48000 for Opus).
    pub clock_rate: u32,
    /// Whether to NACK gaps (`a=rtcp-fb:* nack` negotiated). Without it a gap waits only
    /// briefly for reordering.
    pub nack: bool,
    /// NACKs per missing packet at most (the first one included).
    pub max_nack_retries: u8,
    /// Whether a gap given up (or a restart) asks for a keyframe. Only video has keyframes:
    /// an audio stream's loss must not make the sender of the video start a new GOP.
    pub keyframe_requests: bool,
    /// Packets the reorder buffer holds (rounded up to a power of two).
    pub capacity: usize,
}

impl ReceiveConfig {
    /// NACK and keyframe requests on, 3 tries, 512 packets.
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        Self {
            ssrc,
            clock_rate,
            nack: true,
            max_nack_retries: 3,
            keyframe_requests: true,
            capacity: 512,
        }
    }
}

/// What [`ReceiveStream::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Stored; [`ReceiveStream::poll_packet`] releases it in sequence order.
    Accepted,
    /// A copy of a packet held or released already: dropped.
    Duplicate,
    /// Older than what was released already (its gap was given up): dropped.
    Late,
    /// Far away from the current sequence (RFC 3550 §A.1 large jump): dropped until more
    /// packets confirm the stream restarted.
    Stray,
    /// Confirmed restart: packets held from the old sequence were dropped, this one is stored,
    /// and a keyframe is requested.
    Reset,
    /// Longer than [`MAX_PACKET_LEN`]: dropped.
    TooLarge,
}

/// Running counts of what happened to the stream's packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveCounters {
    /// Packets accepted (distinct, in the window).
    pub accepted: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Packets that came after their gap was given up, dropped.
    pub late: u64,
    /// Sequence numbers given up on (never released).
    pub lost: u64,
    /// Received packets dropped unreleased because the buffer overflowed or the stream reset.
    pub discarded: u64,
    /// Packets dropped as far off the sequence (RFC 3550 §A.1 probation).
    pub strays: u64,
    /// Confirmed restarts of the sequence.
    pub resets: u64,
    /// Packets longer than [`MAX_PACKET_LEN`].
    pub too_large: u64,
    /// Sequence numbers put in NACKs (retries included).
    pub nacked: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum State {
    /// Nothing known about this slot's sequence number.
    #[default]
    Free,
    /// Received and waiting to be released.
    Held,
    /// Not received yet: noticed missing at `since`, NACKed `tries` times, last at `nacked`.
    Missing {
        since: Instant,
        nacked: Option<Instant>,
        tries: u8,
    },
    /// Released by `poll_packet` (kept to tell duplicates from late packets).
    Released,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Slot {
    /// The extended sequence number this slot's state is about.
    pub(super) ext: i64,
    pub(super) state: State,
    pub(super) buf: Vec<u8>,
}

/// Sequential packets seen far off the current sequence (RFC 3550 §A.1 probation).
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    next: u16,
    count: u16,
}

/// One remote media SSRC on the receive path. Push every packet (after SRTP), then take what
/// it has for you: in-order packets ([`poll_packet`](Self::poll_packet)), NACKs
/// ([`poll_nacks`](Self::poll_nacks)), keyframe requests
/// ([`poll_keyframe_request`](Self::poll_keyframe_request)), and at report time a
/// [`report_block`](Self::report_block). [`poll_timeout`](Self::poll_timeout) says when to
/// come back if no packet arrives.
#[derive(Debug, Clone)]
pub struct ReceiveStream {
    pub(super) cfg: ReceiveConfig,
    pub(super) slots: Vec<Slot>,
    pub(super) unwrap: SeqUnwrapper,
    /// Next extended sequence number to release, and the highest received; `next <= highest
    /// + 1` and every number between them is `Held` or `Missing`.
    pub(super) next: i64,
    pub(super) highest: i64,
    pub(super) started: bool,
    /// Missing slots in the window, to skip NACK scans.
    pub(super) missing: usize,
    pub(super) probe: Option<Probe>,
    pub(super) stats: Stats,
    pub(super) rtt: Duration,
    pub(super) nack_window: Option<(Instant, u16)>,
    pub(super) keyframe_needed: bool,
    pub(super) last_keyframe_request: Option<Instant>,
    pub(super) counters: ReceiveCounters,
}

impl ReceiveStream {
    /// A stream that has received nothing yet.
    pub fn new(cfg: ReceiveConfig) -> Self {
        let n = cfg.capacity.clamp(16, 1 << 15).next_power_of_two();
        Self {
            cfg,
            slots: vec![Slot::default(); n],
            unwrap: SeqUnwrapper::new(),
            next: 0,
            highest: -1,
            started: false,
            missing: 0,
            probe: None,
            stats: Stats::new(cfg.clock_rate),
            rtt: DEFAULT_RTT,
            nack_window: None,
            keyframe_needed: false,
            last_keyframe_request: None,
            counters: ReceiveCounters::default(),
        }
    }

    /// The remote SSRC.
    pub fn ssrc(&self) -> u32 {
        self.cfg.ssrc
    }

    /// What happened so far.
    pub fn counters(&self) -> &ReceiveCounters {
        &self.counters
    }

    pub(super) fn mask(&self) -> i64 {
        self.slots.len() as i64 - 1
    }

    pub(super) fn slot(&mut self, ext: i64) -> Option<&mut Slot> {
        let i = (ext & self.mask()) as usize;
        self.slots.get_mut(i)
    }

    /// Takes in the packet `bytes` with sequence number `seq` and RTP timestamp
    /// `rtp_timestamp` (from its header), arrived at `now`.
    pub fn push(&mut self, now: Instant, seq: u16, rtp_timestamp: u32, bytes: &[u8]) -> Pushed {
        if bytes.len() > MAX_PACKET_LEN {
            self.counters.too_large += 1;
            return Pushed::TooLarge;
        }
        if !self.started {
            self.restart(seq);
        }
        let ext = self.unwrap.peek(seq);
        let delta = ext - self.highest;
        if delta >= MAX_DROPOUT || ext < self.highest - self.mask() {
            // Just behind the window may be a burst of late retransmissions, not a restart.
            let near = delta < 0 && delta > -MAX_DROPOUT;
            return self.stray(now, seq, rtp_timestamp, bytes, near);
        }
        self.probe = None;
        if delta > 0 {
            self.advance(now, ext, rtp_timestamp);
        } else if ext < self.next {
            return self.behind(ext);
        } else if let Some(Slot { state, .. }) = self.slot(ext) {
            match *state {
                State::Missing { nacked, tries, .. } => {
                    *state = State::Held;
                    self.missing = self.missing.saturating_sub(1);
                    self.stats.count();
                    if let (1, Some(at)) = (tries, nacked) {
                        self.rtt_sample(now.saturating_duration_since(at));
                    }
                }
                _ => {
                    self.counters.duplicates += 1;
                    return Pushed::Duplicate;
                }
            }
        }
        self.store(ext, bytes);
        Pushed::Accepted
    }

    /// Starts the sequence over at `seq` with an empty window.
    fn restart(&mut self, seq: u16) {
        for s in &mut self.slots {
            s.state = State::Free;
        }
        self.unwrap = SeqUnwrapper::new();
        let ext = self.unwrap.extend(seq);
        (self.next, self.highest, self.missing) = (ext, ext - 1, 0);
        self.stats.restart(ext);
        self.started = true;
    }

    /// A packet far off the sequence: counts it towards a restart (§A.1 probation).
    fn stray(&mut self, now: Instant, seq: u16, ts: u32, bytes: &[u8], near: bool) -> Pushed {
        let need = if near { NEAR_CONFIRM } else { 2 };
        let count = match self.probe {
            Some(p) if p.next == seq => p.count + 1,
            _ => 1,
        };
        if count < need {
            self.probe = Some(Probe {
                next: seq.wrapping_add(1),
                count,
            });
            self.counters.strays += 1;
            return Pushed::Stray;
        }
        self.probe = None;
        let held = self.slots.iter().filter(|s| s.state == State::Held).count();
        self.counters.discarded += held as u64;
        self.counters.resets += 1;
        self.restart(seq);
        self.keyframe_needed = true;
        self.advance(now, self.next, ts);
        self.store(self.next, bytes);
        Pushed::Reset
    }

    /// Classifies a packet older than the next to release.
    fn behind(&mut self, ext: i64) -> Pushed {
        let released =
            matches!(self.slot(ext), Some(s) if s.ext == ext && s.state == State::Released);
        if released {
            self.counters.duplicates += 1;
            return Pushed::Duplicate;
        }
        // It did arrive: the report's cumulative loss goes down (RFC 3550 §6.4.1).
        self.stats.count();
        self.counters.late += 1;
        Pushed::Late
    }

    /// Raises the highest sequence number to `ext`: makes room in the window, marks the numbers
    /// skipped as missing.
    fn advance(&mut self, now: Instant, ext: i64, rtp_timestamp: u32) {
        let keep_from = ext - self.mask();
        while self.next < keep_from && self.next <= self.highest {
            let state = self.slot(self.next).map(|s| std::mem::take(&mut s.state));
            match state {
                Some(State::Held) => self.counters.discarded += 1,
                Some(State::Missing { .. }) => self.give_up(),
                _ => {}
            }
            self.next += 1;
        }
        if self.next < keep_from {
            // A jump past the whole window with nothing held: the numbers skipped are lost.
            self.counters.lost += (keep_from - self.next) as u64;
            self.keyframe_needed = true;
            self.next = keep_from;
        }
        for e in self.next.max(self.highest + 1)..ext {
            if let Some(slot) = self.slot(e) {
                slot.ext = e;
                slot.state = State::Missing {
                    since: now,
                    nacked: None,
                    tries: 0,
                };
                self.missing += 1;
            }
        }
        self.highest = ext;
        self.unwrap.extend(ext as u16);
        self.stats.count();
        self.stats.on_in_order(now, rtp_timestamp);
    }

    /// Books a missing slot given up on (the caller frees the slot).
    fn give_up(&mut self) {
        self.missing = self.missing.saturating_sub(1);
        self.counters.lost += 1;
        self.keyframe_needed = true;
    }

    fn store(&mut self, ext: i64, bytes: &[u8]) {
        if let Some(slot) = self.slot(ext) {
            slot.ext = ext;
            slot.state = State::Held;
            slot.buf.clear();
            slot.buf.extend_from_slice(bytes);
        }
        self.counters.accepted += 1;
    }

    /// The next packet in sequence order, if it is here, skipping gaps that waited long enough
    /// (each counted lost, and a keyframe becomes needed). Call after each push until `None`.
    pub fn poll_packet(&mut self, now: Instant) -> Option<&[u8]> {
        let wait = self.wait();
        let mask = self.mask();
        let i = loop {
            if self.next > self.highest {
                return None;
            }
            let i = (self.next & mask) as usize;
            let slot = self.slots.get_mut(i)?;
            match slot.state {
                State::Held => {
                    slot.state = State::Released;
                    self.next += 1;
                    break i;
                }
                State::Missing { since, .. } if now >= since + wait => {
                    slot.state = State::Free;
                    self.give_up();
                }
                State::Missing { .. } => return None,
                State::Free | State::Released => {}
            }
            self.next += 1;
        };
        self.slots.get(i).map(|s| s.buf.as_slice())
    }

    /// Records a sender report from the remote source, for LSR/DLSR in our report blocks.
    pub fn on_sender_report(&mut self, now: Instant, info: &SenderInfo) {
        self.stats.on_sender_report(now, info.ntp_time);
    }

    /// The interarrival jitter so far, in RTP timestamp units (RFC 3550 §A.8).
    pub fn jitter(&self) -> u32 {
        self.stats.jitter()
    }

    /// A report block about this stream for our next RR (RFC 3550 §6.4.1). Each call starts a
    /// new interval for the fraction lost, so call it once per report sent.
    pub fn report_block(&mut self, now: Instant) -> ReportBlock {
        if !self.started {
            return ReportBlock {
                ssrc: self.cfg.ssrc,
                ..ReportBlock::default()
            };
        }
        self.stats.report(now, self.cfg.ssrc, self.highest)
    }
}
