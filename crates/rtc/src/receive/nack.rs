//! NACK generation (RFC 4585 §6.2.1), keyframe requests and timing of a [`ReceiveStream`]:
//! every wait here follows the RTT.

use std::time::{Duration, Instant};

use super::stream::{ReceiveStream, State};

/// How long a gap waits before its first NACK: plain reordering fills most gaps sooner.
pub(super) const NACK_DELAY: Duration = Duration::from_millis(5);
/// Sequence numbers NACKed at most per `NACK_WINDOW`, so reordering floods cannot make NACK
/// floods.
pub(super) const NACK_BUDGET: u16 = 128;
pub(super) const NACK_WINDOW: Duration = Duration::from_millis(100);
/// A gap of a stream without NACK waits this long for reordered packets.
pub(super) const REORDER_WAIT: Duration = Duration::from_millis(20);
/// A gap never holds packets longer than this.
pub(super) const MAX_WAIT: Duration = Duration::from_millis(1000);
/// Keyframe requests are at most one per this, or per two RTTs if longer.
pub(super) const KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);
/// NACK retries of one packet are at least this far apart.
const MIN_SPACING: Duration = Duration::from_millis(10);
/// RTT until [`ReceiveStream::set_rtt`] or NACK round trips say otherwise.
pub(super) const DEFAULT_RTT: Duration = Duration::from_millis(100);

impl ReceiveStream {
    /// The RTT used to space NACK retries and bound waits.
    pub fn rtt(&self) -> Duration {
        self.rtt
    }

    /// Sets the RTT (from an SR/RR exchange). Without one (a WHIP publisher sends us no RR)
    /// the stream starts at 100 ms and learns from NACK round trips: a packet NACKed once
    /// that then arrives is a sample, averaged in with weight 1/8.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt.clamp(Duration::from_millis(1), Duration::from_secs(2));
    }

    /// Learns from a packet NACKed once that then arrived after `sample`. Samples under 10 ms
    /// are ignored: they cannot be told from plain reordering, and retries are spaced by at
    /// least 10 ms anyway.
    pub(super) fn rtt_sample(&mut self, sample: Duration) {
        if sample >= MIN_SPACING {
            self.rtt = (self.rtt * 7 + sample.min(Duration::from_secs(2))) / 8;
        }
    }

    /// Time between NACKs of one packet: an RTT and a margin for the retransmission's jitter.
    fn spacing(&self) -> Duration {
        (self.rtt * 5 / 4).max(MIN_SPACING)
    }

    /// How long a gap holds back the packets after it: time for every NACK retry's
    /// retransmission to come back, or a short reordering wait without NACK.
    pub(super) fn wait(&self) -> Duration {
        if !self.cfg.nack {
            return REORDER_WAIT;
        }
        let tries = u32::from(self.cfg.max_nack_retries.max(1));
        (NACK_DELAY + self.spacing() * tries).clamp(REORDER_WAIT, MAX_WAIT)
    }

    /// Appends to `out` the sequence numbers to NACK now, in wrap-aware increasing order as
    /// [`RtcpWriter::nack`](crate::rtcp::RtcpWriter::nack) wants them, and returns how many.
    /// A gap is NACKed after a few ms of grace for reordering, then again every RTT and a
    /// quarter, at most `max_nack_retries` times and until it is given up; at most 128 numbers
    /// per 100 ms in all.
    pub fn poll_nacks(&mut self, now: Instant, out: &mut Vec<u16>) -> usize {
        if !self.cfg.nack || self.missing == 0 {
            return 0;
        }
        let (start, mut used) = match self.nack_window {
            Some((start, used)) if now < start + NACK_WINDOW => (start, used),
            _ => (now, 0),
        };
        let (spacing, max, mask, before) = (
            self.spacing(),
            self.cfg.max_nack_retries,
            self.mask(),
            out.len(),
        );
        for e in self.next..=self.highest {
            if used >= NACK_BUDGET {
                break;
            }
            let Some(slot) = self.slots.get_mut((e & mask) as usize) else {
                continue;
            };
            if let State::Missing {
                since,
                nacked,
                tries,
            } = &mut slot.state
            {
                let due = nacked.map_or(*since + NACK_DELAY, |at| at + spacing);
                if *tries < max && now >= due {
                    (*nacked, *tries) = (Some(now), *tries + 1);
                    out.push(e as u16);
                    used += 1;
                }
            }
        }
        self.nack_window = Some((start, used));
        let n = out.len() - before;
        self.counters.nacked += n as u64;
        n
    }

    /// Whether to send a PLI now: a gap was given up (or the stream restarted) since the last
    /// request. Rate-limited here to one per max(300 ms, 2 RTT); the caller may aggregate
    /// further (e.g. with its viewers' PLIs). Never without `keyframe_requests`.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> bool {
        let interval = KEYFRAME_INTERVAL.max(self.rtt * 2);
        let blocked = matches!(self.last_keyframe_request, Some(at) if now < at + interval);
        if !self.cfg.keyframe_requests {
            self.keyframe_needed = false;
            return false;
        }
        if !self.keyframe_needed || blocked {
            return false;
        }
        self.keyframe_needed = false;
        self.last_keyframe_request = Some(now);
        true
    }

    /// When to call the `poll_*` methods again if nothing arrives: the earliest NACK retry,
    /// gap give-up, or rate-limited keyframe request due. `None` when nothing is pending.
    /// (What is due at once after a push is not included: poll after every push.)
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut at = None;
        let mut earliest = |t: Instant| at = Some(at.map_or(t, |a: Instant| a.min(t)));
        if self.keyframe_needed && self.cfg.keyframe_requests {
            let interval = KEYFRAME_INTERVAL.max(self.rtt * 2);
            if let Some(last) = self.last_keyframe_request {
                earliest(last + interval);
            }
        }
        if self.missing == 0 {
            return at;
        }
        let (spacing, wait, max) = (self.spacing(), self.wait(), self.cfg.max_nack_retries);
        let mut head = true;
        for e in self.next..=self.highest {
            let Some(slot) = self.slots.get((e & self.mask()) as usize) else {
                continue;
            };
            if let State::Missing {
                since,
                nacked,
                tries,
            } = slot.state
            {
                if head {
                    earliest(since + wait);
                }
                if self.cfg.nack && tries < max {
                    earliest(nacked.map_or(since + NACK_DELAY, |t| t + spacing));
                }
            }
            head = false;
        }
        at
    }
}
