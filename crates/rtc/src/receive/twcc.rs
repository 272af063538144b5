//! Transport-wide congestion-control feedback from the receiving side
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): records when each transport-wide
//! sequence number arrived and reports them back in batches.

use std::time::{Duration, Instant};

use crate::rtcp::{RtcpError, RtcpWriter, TwccHeader};
use crate::rtp::SeqUnwrapper;

/// Transport-wide sequence numbers remembered (a power of two): ~1 s of a 20 Mbit/s publisher.
const HISTORY: usize = 2048;
/// Feedback packets stay under this many bytes, leaving room for the SRTCP trailer in a
/// 1200-byte datagram.
const MAX_FEEDBACK_LEN: usize = 1100;
/// Receive deltas count multiples of 250 µs (§3.1.5); the reference time, of 64 ms (§3.1).
const TICK_US: i64 = 250;
const REFERENCE_US: i64 = 64_000;
/// libwebrtc's default feedback interval.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// Marks a sequence number not received.
const NOT_RECEIVED: i64 = -1;

/// Arrival times of one session's transport-wide sequence numbers, and the feedback that
/// reports them. Feed it [`record`](Self::record) for every RTP packet that carries the
/// extension (audio and video alike), and call [`poll_feedback`](Self::poll_feedback) at
/// [`poll_timeout`](Self::poll_timeout).
///
/// Each feedback covers the numbers from the first not yet reported that arrived up to the
/// last that arrived. A packet arriving after the feedback that covered it (reordering, a
/// late retransmission) is reported again in the next one, as libwebrtc does: the window
/// rewinds to it. A feedback packet ends early when it would exceed ~1100 bytes or a delta
/// would not fit 16 bits of 250 µs; the rest follows at once.
#[derive(Debug, Clone)]
pub struct TwccRecorder {
    unwrap: SeqUnwrapper,
    /// Where arrival times count from (the first arrival).
    epoch: Option<Instant>,
    /// Arrival in µs since `epoch` per extended number, or `NOT_RECEIVED`; slot `ext % HISTORY`
    /// holds `ext` for `start <= ext < end`.
    arrivals: Vec<i64>,
    start: i64,
    end: i64,
    /// First extended number not reported yet.
    next_report: i64,
    interval: Duration,
    next_due: Option<Instant>,
    /// The last feedback stopped early: the next may go out at once.
    more: bool,
    fb_count: u8,
    deltas: Vec<Option<i64>>,
}

impl Default for TwccRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl TwccRecorder {
    /// A recorder sending feedback every 100 ms.
    pub fn new() -> Self {
        Self {
            unwrap: SeqUnwrapper::new(),
            epoch: None,
            arrivals: vec![NOT_RECEIVED; HISTORY],
            start: 0,
            end: 0,
            next_report: 0,
            interval: DEFAULT_INTERVAL,
            next_due: None,
            more: false,
            fb_count: 0,
            deltas: Vec::new(),
        }
    }

    /// Sets the feedback interval (libwebrtc uses 50–250 ms, 100 by default).
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval.clamp(Duration::from_millis(10), Duration::from_secs(1));
    }

    fn at(&self, ext: i64) -> i64 {
        let i = ext.rem_euclid(HISTORY as i64) as usize;
        self.arrivals.get(i).copied().unwrap_or(NOT_RECEIVED)
    }

    fn set(&mut self, ext: i64, v: i64) {
        let i = ext.rem_euclid(HISTORY as i64) as usize;
        if let Some(a) = self.arrivals.get_mut(i) {
            *a = v;
        }
    }

    /// Records that the packet with transport-wide sequence number `seq` arrived at `now`.
    /// Numbers older than the history (~2048 back) are ignored; a duplicate keeps the first
    /// arrival.
    pub fn record(&mut self, now: Instant, seq: u16) {
        let epoch = *self.epoch.get_or_insert(now);
        let t = i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX);
        let ext = if self.unwrap.last().is_none() {
            let ext = self.unwrap.extend(seq);
            (self.start, self.end, self.next_report) = (ext, ext, ext);
            ext
        } else {
            self.unwrap.peek(seq)
        };
        if ext < self.start {
            return;
        }
        if ext >= self.end {
            self.start = self.start.max(ext - HISTORY as i64 + 1);
            for e in self.end.max(self.start)..ext {
                self.set(e, NOT_RECEIVED);
            }
            self.set(ext, NOT_RECEIVED);
            self.end = ext + 1;
            self.unwrap.extend(seq);
            self.next_report = self.next_report.max(self.start);
        } else if ext < self.next_report {
            self.next_report = ext;
        }
        if self.at(ext) == NOT_RECEIVED {
            self.set(ext, t);
        }
        if self.next_due.is_none() {
            self.next_due = Some(now + self.interval);
        }
    }

    /// When feedback is due next, if anything is waiting to be reported.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.next_report >= self.end {
            return None;
        }
        self.next_due
    }

    /// Appends one feedback packet to `w` if one is due at `now` and something arrived that
    /// was not reported; returns whether it wrote one. Call again while it returns `true`
    /// (each packet in its own datagram): a long or sparse stretch takes several.
    pub fn poll_feedback(
        &mut self,
        now: Instant,
        sender_ssrc: u32,
        media_ssrc: u32,
        w: &mut RtcpWriter<'_>,
    ) -> Result<bool, RtcpError> {
        let due = self.more || self.next_due.is_some_and(|t| now >= t);
        if !due || self.next_report >= self.end {
            return Ok(false);
        }
        self.next_due = Some(now + self.interval);
        let Some(base) = (self.next_report..self.end).find(|&e| self.at(e) != NOT_RECEIVED) else {
            self.more = false;
            return Ok(false);
        };
        let reference = self.at(base) / REFERENCE_US;
        let covered = self.fill_deltas(base, reference * REFERENCE_US / TICK_US);
        let header = TwccHeader {
            sender_ssrc,
            media_ssrc,
            base_seq: base as u16,
            reference_time: (reference & 0x00ff_ffff) as i32,
            fb_pkt_count: self.fb_count,
        };
        w.twcc(&header, &self.deltas)?;
        self.fb_count = self.fb_count.wrapping_add(1);
        self.next_report = base + covered as i64;
        Ok(true)
    }

    /// Fills `self.deltas` for the numbers from `base` on, starting from `ticks` (the
    /// reference time in 250 µs ticks), until the end, a delta that needs a new reference, or
    /// the size limit; trailing numbers not received are left for later. Returns how many
    /// numbers it covers and sets `self.more` when it stopped early.
    fn fill_deltas(&mut self, base: i64, mut ticks: i64) -> usize {
        self.deltas.clear();
        self.more = false;
        let (mut covered, mut delta_bytes) = (0, 0);
        for e in base..self.end {
            let t = self.at(e);
            if t == NOT_RECEIVED {
                self.deltas.push(None);
                continue;
            }
            // Floor to ticks in absolute terms so the rounding errors do not add up.
            let d = t / TICK_US - ticks;
            let cost = if (0..=255).contains(&d) { 1 } else { 2 };
            let chunks = 2 * (self.deltas.len() + 1).div_ceil(7);
            let too_long = 20 + chunks + delta_bytes + cost + 3 > MAX_FEEDBACK_LEN;
            if i16::try_from(d).is_err() || too_long || self.deltas.len() >= 0xffff {
                self.more = true;
                break;
            }
            self.deltas.push(Some(d * TICK_US));
            (ticks, delta_bytes, covered) = (ticks + d, delta_bytes + cost, self.deltas.len());
        }
        self.deltas.truncate(covered);
        covered
    }
}
