//! How much a viewer's NACKs may make us send (RFC 4585 §6.2.1 answered from history). A NACK
//! costs its sender 4 bytes per 17 packets and us up to 17 full packets: one 1200-byte SRTCP
//! packet could name ~5 000 sequence numbers, ~6 MB of retransmissions. So a viewer gets
//! retransmissions worth at most a quarter of what it was sent in the last window, plus a
//! small floor for a viewer that has just started; a NACK packet's first FCIs only are read;
//! a packet is resent at most once per RTT (see `Output::resent_within`). What is refused is
//! counted for `/metrics`.

use std::time::{Duration, Instant};

/// Retransmitted bytes per window: this share of the bytes sent in the window before…
const SHARE_DIVISOR: u64 = 4;
/// …plus this floor (about 13 full-size packets).
const FLOOR: u64 = 16 * 1024;
/// The budget's window.
const WINDOW: Duration = Duration::from_secs(1);
/// NACK FCIs (PID + BLP, up to 17 packets each) read per RTCP compound packet; a browser's
/// NACK names a few, even under heavy loss. 32 name at most 544 packets.
pub const MAX_FCIS: usize = 32;
/// The gap between two retransmissions of one packet when the viewer's RTT is not known
/// yet, and its bounds otherwise.
pub const DEFAULT_GAP: Duration = Duration::from_millis(100);
const MIN_GAP: Duration = Duration::from_millis(10);
const MAX_GAP: Duration = Duration::from_secs(1);

/// Sequence numbers a viewer NACKed and what became of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResendCounts {
    /// Packets retransmitted.
    pub resent: u64,
    /// Their bytes (RTP, before SRTP).
    pub resent_bytes: u64,
    /// Refused: retransmitted less than an RTT before.
    pub refused_repeat: u64,
    /// Refused: over the viewer's retransmission budget.
    pub refused_budget: u64,
    /// Not read: beyond [`MAX_FCIS`] in one RTCP packet.
    pub refused_fci: u64,
}

/// One viewer's retransmission budget.
#[derive(Debug, Clone)]
pub struct ResendBudget {
    /// When the window started and the viewer's sent-bytes counter then.
    start: Instant,
    sent_then: u64,
    /// Bytes this window allows, and used so far.
    allowed: u64,
    used: u64,
    /// What was resent and refused.
    pub counts: ResendCounts,
}

impl ResendBudget {
    /// A budget for a viewer that has been sent nothing as of `now`.
    pub fn new(now: Instant) -> Self {
        ResendBudget {
            start: now,
            sent_then: 0,
            allowed: FLOOR,
            used: 0,
            counts: ResendCounts::default(),
        }
    }

    /// Whether a retransmission of `len` bytes fits now, `sent` being the bytes sent to the
    /// viewer so far (a running total); takes it from the budget if so, counts it either way.
    pub fn take(&mut self, now: Instant, sent: u64, len: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= WINDOW {
            // The rate of the window that ended (a longer one is averaged over its length).
            let bytes = sent.saturating_sub(self.sent_then);
            let per_window = u128::from(bytes) * WINDOW.as_millis() / elapsed.as_millis().max(1);
            let share = u64::try_from(per_window).unwrap_or(u64::MAX) / SHARE_DIVISOR;
            self.allowed = FLOOR.saturating_add(share);
            (self.start, self.sent_then, self.used) = (now, sent, 0);
        }
        let len = len as u64;
        if self.used + len > self.allowed {
            self.counts.refused_budget += 1;
            return false;
        }
        self.used += len;
        self.counts.resent += 1;
        self.counts.resent_bytes += len;
        true
    }
}

/// Of a NACK's FCIs (`(PID, BLP)` pairs), how many sequence numbers to read with `fcis` FCIs
/// left for its RTCP packet (which it lowers), and how many it names in all. The numbers read
/// are the first ones [`Nack::lost`](rtc::rtcp::Nack::lost) yields; the rest are counted as
/// refused.
pub fn read_fcis(
    pairs: impl Iterator<Item = (u16, u16)>,
    fcis: &mut usize,
    counts: &mut ResendCounts,
) -> (usize, u64) {
    let (mut read, mut named) = (0, 0);
    for (_, blp) in pairs {
        let n = 1 + blp.count_ones() as usize;
        named += n as u64;
        if *fcis > 0 {
            *fcis -= 1;
            read += n;
        } else {
            counts.refused_fci += n as u64;
        }
    }
    (read, named)
}

/// How long after a retransmission the same packet may be resent: the viewer's RTT, bounded.
pub fn repeat_gap(rtt: Option<Duration>) -> Duration {
    rtt.unwrap_or(DEFAULT_GAP).clamp(MIN_GAP, MAX_GAP)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{FLOOR, MAX_FCIS, ResendBudget, ResendCounts, read_fcis};

    #[test]
    fn an_rtcp_packet_gets_its_first_fcis_read() {
        let mut counts = ResendCounts::default();
        let mut left = MAX_FCIS;
        // 20 FCIs naming 17 numbers each, then 20 naming 1: 32 read in all.
        let full = vec![(7u16, 0xffffu16); 20];
        assert_eq!(
            read_fcis(full.into_iter(), &mut left, &mut counts),
            (340, 340)
        );
        let single = vec![(9u16, 0u16); 20];
        assert_eq!(
            read_fcis(single.into_iter(), &mut left, &mut counts),
            (12, 20)
        );
        assert_eq!((left, counts.refused_fci), (0, 8));
        // A 1200-byte packet's ~290 FCIs name ~5 000 numbers; 32 are read.
        let (mut left, mut counts) = (MAX_FCIS, ResendCounts::default());
        let flood = vec![(1u16, 0xffffu16); 290];
        assert_eq!(
            read_fcis(flood.into_iter(), &mut left, &mut counts),
            (544, 4930)
        );
        assert_eq!(counts.refused_fci, 4930 - 544);
    }

    /// Resends of 1000 bytes taken at `now` until refused.
    fn fill(b: &mut ResendBudget, now: Instant, sent: u64) -> u64 {
        let mut n = 0;
        while b.take(now, sent, 1000) {
            n += 1;
        }
        n
    }

    #[test]
    fn the_budget_is_a_quarter_of_the_send_rate_and_a_floor() {
        let t0 = Instant::now();
        let mut b = ResendBudget::new(t0);
        // A new viewer: the floor only.
        assert_eq!(fill(&mut b, t0, 0), FLOOR / 1000);
        // It was sent 400 kB in the first second: 100 kB + the floor in the next.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(fill(&mut b, t1, 400_000), (100_000 + FLOOR) / 1000);
        assert_eq!(fill(&mut b, t1 + Duration::from_millis(999), 800_000), 0);
        // 2 MB over the next 4 s: 500 kB a second, 125 kB + the floor.
        let t5 = t1 + Duration::from_secs(4);
        assert_eq!(fill(&mut b, t5, 2_400_000), (125_000 + FLOOR) / 1000);
        assert_eq!(b.counts.refused_budget, 4);
        assert_eq!(b.counts.resent_bytes, b.counts.resent * 1000);
        assert_eq!(
            b.counts.resent,
            (FLOOR / 1000) * 3 + 100 + 125,
            "every resend counted"
        );
    }
}
