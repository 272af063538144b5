//! A pacer for what we send one peer, sans-IO: a leaky bucket that lets packets leave at the
//! bandwidth estimate × a pacing factor, so a keyframe (or a GOP-cache replay) is spread over
//! tens of milliseconds instead of hitting the bottleneck queue at once; a cap on how long a
//! packet may wait; and padding to probe upward (a probe cluster at a target rate, or a
//! steady padding floor), which the caller sends as RTX of recent packets or padding-only
//! RTP (RFC 3550 §5.1 P bit).
//!
//! The caller [`enqueue`](Pacer::enqueue)s packets by an id of its own, then calls
//! [`poll_send`](Pacer::poll_send) until it returns `None`, then
//! [`poll_padding`](Pacer::poll_padding), and sleeps until
//! [`poll_timeout`](Pacer::poll_timeout).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back media sent counts towards the padding floor.
const PADDING_MEMORY: Duration = Duration::from_millis(100);

/// The pacer's tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacerConfig {
    /// Packets leave at estimate × this (libwebrtc paces at 2.5 ×: an encoder overshoots,
    /// and a frame is better late by a few ms than queued at the bottleneck).
    pub factor: f64,
    /// Unused send time is saved up to this much (a burst after idling is at most this
    /// long at the pacing rate).
    pub max_burst: Duration,
    /// No packet waits longer than this: beyond it the queue is drained faster than the
    /// pacing rate (stale video is worse than a burst).
    pub max_queue_delay: Duration,
    /// Padding packets are this size (bytes).
    pub padding_size: usize,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            factor: 2.5,
            max_burst: Duration::from_millis(10),
            max_queue_delay: Duration::from_millis(500),
            padding_size: 1200,
        }
    }
}

/// A probe cluster in progress: padding until `bits` were sent at `rate`.
#[derive(Debug, Clone, Copy)]
struct Probe {
    id: u32,
    rate: f64,
    bits_left: f64,
}

/// The pacer for one peer's transport.
#[derive(Debug, Clone)]
pub struct Pacer {
    config: PacerConfig,
    /// The pacing rate, bit/s (estimate × factor).
    rate: f64,
    /// The padding floor, bit/s: below it, padding fills in.
    padding_rate: f64,
    /// Leaky bucket, bits: may go negative by one packet; refills at `rate`.
    budget: f64,
    padding_budget: f64,
    last: Option<Instant>,
    queue: VecDeque<(u64, usize, Instant)>,
    queued_bytes: usize,
    probe: Option<Probe>,
}

impl Pacer {
    /// A pacer at `estimate_bps`.
    pub fn new(config: PacerConfig, estimate_bps: u64) -> Self {
        Self {
            config,
            rate: estimate_bps as f64 * config.factor,
            padding_rate: 0.0,
            budget: 0.0,
            padding_budget: 0.0,
            last: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            probe: None,
        }
    }

    /// Takes a new bandwidth estimate.
    pub fn set_estimate(&mut self, estimate_bps: u64) {
        self.rate = estimate_bps as f64 * self.config.factor;
    }

    /// Sets the rate (bit/s) below which padding is sent (0: none), e.g. the next layer's
    /// bitrate while the estimate is being raised towards it.
    pub fn set_padding_rate(&mut self, bps: u64) {
        self.padding_rate = bps as f64;
    }

    /// Starts a probe cluster (from
    /// [`BandwidthEstimator::poll_probe`](super::BandwidthEstimator::poll_probe)): padding
    /// at its rate (media first) until its duration of it was sent.
    /// [`poll_padding`](Self::poll_padding) tags its packets with the cluster id; report
    /// each packet sent meanwhile with `on_probe_sent`, so the peer's feedback tells whether
    /// the path carries that rate.
    pub fn start_probe(&mut self, probe: &super::ProbeRequest) {
        let rate = probe.bps as f64;
        self.padding_budget = 0.0;
        self.probe = Some(Probe {
            id: probe.cluster,
            rate,
            bits_left: rate * probe.duration.as_secs_f64(),
        });
    }

    /// Gives up the probe cluster being sent (nothing to pad it with): the estimator judges
    /// it by what was sent, or gives it up when no result comes.
    pub fn cancel_probe(&mut self) {
        self.probe = None;
        self.padding_budget = self.padding_budget.min(0.0);
    }

    /// The probe cluster being sent, if any: tag media packets sent now with it too.
    pub fn probing(&self) -> Option<u32> {
        self.probe.map(|p| p.id)
    }

    /// Queues a packet of `size` bytes under the caller's `id`.
    pub fn enqueue(&mut self, id: u64, size: usize, now: Instant) {
        self.refill(now);
        self.queue.push_back((id, size, now));
        self.queued_bytes += size;
    }

    /// Packets waiting.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    fn refill(&mut self, now: Instant) {
        let dt = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        let burst = self.config.max_burst.as_secs_f64();
        let rate = self.drain_rate(now);
        self.budget = (self.budget + rate * dt).min(rate * burst);
        let pad = self
            .probe
            .map_or(self.padding_rate, |p| p.rate.max(self.padding_rate));
        // Media counts towards the padding floor only over the last PADDING_MEMORY: what was
        // sent long ago (or when there was no floor) does not stand in for padding now.
        let memory = PADDING_MEMORY.as_secs_f64();
        self.padding_budget = (self.padding_budget + pad * dt).clamp(-pad * memory, pad * burst);
    }

    /// The pacing rate, raised when the oldest packet would otherwise wait too long: then
    /// what is queued leaves within what is left of `max_queue_delay` (at least 5 ms).
    /// A probe cluster raises it to the probe's rate while it lasts (the point of a probe is
    /// to send faster than the estimate).
    fn drain_rate(&self, now: Instant) -> f64 {
        let rate = self.probe.map_or(self.rate, |p| self.rate.max(p.rate));
        let Some(&(_, _, oldest)) = self.queue.front() else {
            return rate;
        };
        let waited = now.saturating_duration_since(oldest);
        let left = self
            .config
            .max_queue_delay
            .saturating_sub(waited)
            .max(Duration::from_millis(5));
        let needed = self.queued_bytes as f64 * 8.0 / left.as_secs_f64();
        rate.max(needed)
    }

    /// A packet of `size` bytes left without waiting in the queue (audio, a retransmission:
    /// what libwebrtc's pacer sends ahead of video): it still spends the budget, so video
    /// after it waits its turn, and counts towards the padding floor and the probe.
    pub fn on_sent_unpaced(&mut self, size: usize, now: Instant) {
        self.refill(now);
        self.spend((size * 8) as f64);
    }

    /// Whether a packet of `size` bytes may leave now without queueing (nothing waits and
    /// the budget allows): if so it is counted as sent. The common case — most packets of
    /// a viewer whose estimate carries its stream — without a trip through the queue.
    pub fn send_now(&mut self, size: usize, now: Instant) -> bool {
        if !self.queue.is_empty() {
            return false;
        }
        self.refill(now);
        if self.budget < 0.0 {
            return false;
        }
        self.spend((size * 8) as f64);
        true
    }

    fn spend(&mut self, bits: f64) {
        self.budget -= bits;
        // Media counts towards the padding floor and the probe.
        self.padding_budget -= bits;
        if let Some(p) = &mut self.probe {
            p.bits_left -= bits;
        }
        self.end_probe_if_done();
    }

    /// The next queued packet that may leave now, if any.
    pub fn poll_send(&mut self, now: Instant) -> Option<u64> {
        self.refill(now);
        if self.budget < 0.0 {
            return None;
        }
        let (id, size, _) = self.queue.pop_front()?;
        self.queued_bytes -= size;
        self.spend((size * 8) as f64);
        Some(id)
    }

    /// Padding to send now, once the queue is empty: `(bytes, probe cluster id)`, or `None`.
    pub fn poll_padding(&mut self, now: Instant) -> Option<(usize, Option<u32>)> {
        self.refill(now);
        if !self.queue.is_empty() || self.padding_budget <= 0.0 || self.budget < 0.0 {
            return None;
        }
        let size = self.config.padding_size;
        let bits = (size * 8) as f64;
        self.padding_budget -= bits;
        self.budget -= bits;
        let cluster = self.probe.map(|p| p.id);
        if let Some(p) = &mut self.probe {
            p.bits_left -= bits;
        }
        self.end_probe_if_done();
        Some((size, cluster))
    }

    fn end_probe_if_done(&mut self) {
        if self.probe.is_some_and(|p| p.bits_left <= 0.0) {
            self.probe = None;
            self.padding_budget = self.padding_budget.min(0.0);
        }
    }

    /// When to call again: the next queued packet's (or padding's) time; `None` when there
    /// is nothing to send.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let rate = self.drain_rate(now).max(1.0);
        // Rounded up, to the microsecond after: at the time returned the budget has
        // refilled, not fallen a rounding error short (which would ask to be called again
        // at once).
        let wait = |deficit: f64, rate: f64| {
            let secs = (deficit.max(0.0) / rate).min(1.0);
            now + Duration::from_micros((secs * 1e6).ceil() as u64 + 1)
        };
        if !self.queue.is_empty() {
            return Some(wait(-self.budget, rate));
        }
        let pad = self
            .probe
            .map_or(self.padding_rate, |p| p.rate.max(self.padding_rate));
        (pad > 0.0).then(|| {
            let bits = (self.config.padding_size * 8) as f64;
            let deficit = (bits - self.padding_budget).max(-self.budget);
            wait(deficit, pad.min(rate))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the pacer in 1 ms steps; returns when each packet left (ms).
    fn drain(p: &mut Pacer, t0: Instant, until_ms: u64) -> Vec<(u64, u64)> {
        let mut sent = Vec::new();
        for ms in 0..=until_ms {
            let now = t0 + Duration::from_millis(ms);
            while let Some(id) = p.poll_send(now) {
                sent.push((id, ms));
            }
        }
        sent
    }

    #[test]
    fn a_keyframe_leaves_at_the_estimate_times_the_factor() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), 1_000_000);
        // A 100-packet keyframe: 960 kbit, at 2.5 Mbit/s is 384 ms.
        for id in 0..100 {
            p.enqueue(id, 1200, t0);
        }
        let sent = drain(&mut p, t0, 1_000);
        assert_eq!(sent.len(), 100);
        let last = sent[99].1;
        assert!((375..=390).contains(&last), "last left at {last} ms");
        // Evenly: no 10 ms holds more than the pacing rate's worth (+1 packet).
        for w in 0..38 {
            let n = sent
                .iter()
                .filter(|(_, ms)| (w * 10..w * 10 + 10).contains(ms))
                .count();
            assert!(n <= 4, "{n} packets in [{}, {}) ms", w * 10, w * 10 + 10);
        }
        assert_eq!(p.poll_timeout(t0 + Duration::from_millis(1_000)), None);
    }

    #[test]
    fn what_leaves_unpaced_delays_the_queue_by_its_size() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), 1_000_000);
        // 10 audio-sized packets straight out: 24 kbit at 2.5 Mbit/s is 9.6 ms of budget.
        for _ in 0..10 {
            p.on_sent_unpaced(300, t0);
        }
        p.enqueue(1, 1200, t0);
        assert_eq!(
            p.poll_send(t0),
            None,
            "the budget went to what left unpaced"
        );
        let next = p.poll_timeout(t0).unwrap();
        let wait = next.saturating_duration_since(t0);
        assert!(
            (Duration::from_millis(9)..=Duration::from_millis(10)).contains(&wait),
            "{wait:?}"
        );
        assert_eq!(p.poll_send(next), Some(1));
    }

    #[test]
    fn send_now_only_when_nothing_waits_and_the_budget_allows() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), 1_000_000);
        // 2.5 Mbit/s: the first packet goes (the budget may overdraw by one), the second
        // must wait 1200 × 8 / 2.5 M = 3.84 ms.
        assert!(p.send_now(1200, t0));
        assert!(!p.send_now(1200, t0), "the budget is overdrawn");
        let later = t0 + Duration::from_millis(4);
        // Something queued goes first, whatever the budget.
        p.enqueue(7, 1200, t0);
        assert!(!p.send_now(100, later), "a packet waits: it goes first");
        assert_eq!(p.poll_send(later), Some(7));
        assert!(!p.send_now(100, later), "and spent the budget");
        assert!(p.send_now(100, t0 + Duration::from_millis(8)));
    }

    #[test]
    fn idle_time_saves_at_most_the_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), 1_000_000);
        let _ = p.poll_send(t0);
        // A second of idling, then 20 packets: only 10 ms × 2.5 Mbit/s = 25 kbit go at once.
        let later = t0 + Duration::from_secs(1);
        for id in 0..20 {
            p.enqueue(id, 1200, later);
        }
        let mut at_once = 0;
        while p.poll_send(later).is_some() {
            at_once += 1;
        }
        assert_eq!(
            at_once, 3,
            "25 kbit of budget: three 9.6 kbit packets (the last overdraws)"
        );
        let next = p.poll_timeout(later).unwrap();
        assert!(
            next > later && next <= later + Duration::from_millis(4),
            "{next:?}"
        );
    }

    #[test]
    fn a_queue_older_than_the_limit_drains_faster() {
        let t0 = Instant::now();
        // 100 kbit/s × 2.5: 500 packets would take 19 s; the limit is 500 ms.
        let mut p = Pacer::new(PacerConfig::default(), 100_000);
        for id in 0..500 {
            p.enqueue(id, 1200, t0);
        }
        let sent = drain(&mut p, t0, 2_000);
        assert_eq!(sent.len(), 500);
        assert!(sent[499].1 <= 520, "last left at {} ms", sent[499].1);
    }

    #[test]
    fn a_probe_sends_padding_at_its_rate_then_stops() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), 1_000_000);
        let id = 7;
        p.start_probe(&crate::cc::ProbeRequest {
            cluster: id,
            bps: 2_000_000,
            duration: Duration::from_millis(100),
        });
        assert_eq!(p.probing(), Some(id));
        let mut bytes = 0;
        let mut last_ms = 0;
        for ms in 0..=500 {
            let now = t0 + Duration::from_millis(ms);
            while let Some((size, cluster)) = p.poll_padding(now) {
                assert_eq!(cluster, Some(id));
                bytes += size;
                last_ms = ms;
            }
        }
        // 2 Mbit/s for 100 ms: 200 kbit = 25 kB, within one packet.
        assert!((25_000..=26_400).contains(&bytes), "{bytes} bytes");
        assert!((90..=110).contains(&last_ms), "probe ended at {last_ms} ms");
        assert_eq!(p.probing(), None);
        assert_eq!(p.poll_timeout(t0 + Duration::from_millis(500)), None);
    }

    #[test]
    fn a_probe_after_a_stretch_of_media_still_pads() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), 1_000_000);
        // 10 s of media at 500 kbit/s, with no padding floor: nothing to stand in for.
        for ms in (0..10_000u64).step_by(20) {
            let now = t0 + Duration::from_millis(ms);
            p.enqueue(ms, 1250, now);
            while p.poll_send(now).is_some() {}
            p.on_sent_unpaced(100, now);
        }
        let now = t0 + Duration::from_secs(10);
        p.start_probe(&crate::cc::ProbeRequest {
            cluster: 1,
            bps: 2_000_000,
            duration: Duration::from_millis(30),
        });
        let mut padding = 0;
        for ms in 0..50 {
            while let Some((size, _)) = p.poll_padding(now + Duration::from_millis(ms)) {
                padding += size;
            }
        }
        // 2 Mbit/s for 30 ms: 60 kbit = 7.5 kB.
        assert!(
            (7_000..=8_700).contains(&padding),
            "{padding} bytes of padding"
        );
    }

    #[test]
    fn a_probe_faster_than_the_pacing_rate_is_sent_at_its_own_rate() {
        let t0 = Instant::now();
        // 100 kbit/s × 2.5 = 250 kbit/s; the probe asks for 600 kbit/s for 100 ms.
        let mut p = Pacer::new(PacerConfig::default(), 100_000);
        p.start_probe(&crate::cc::ProbeRequest {
            cluster: 3,
            bps: 600_000,
            duration: Duration::from_millis(100),
        });
        let mut bytes = 0;
        for ms in 0..100 {
            while let Some((size, _)) = p.poll_padding(t0 + Duration::from_millis(ms)) {
                bytes += size;
            }
        }
        // 600 kbit/s for 100 ms is 7.5 kB; at the pacing rate it would be 3.1 kB.
        assert!(bytes >= 6_000, "{bytes} bytes in the probe's 100 ms");
    }

    #[test]
    fn padding_fills_up_to_the_floor_and_media_counts_towards_it() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), 2_000_000);
        p.set_padding_rate(800_000);
        let (mut media, mut padding) = (0usize, 0usize);
        for ms in 0..1_000u64 {
            let now = t0 + Duration::from_millis(ms);
            // 300 kbit/s of media: one 1200-byte packet every 32 ms.
            if ms % 32 == 0 {
                p.enqueue(ms, 1200, now);
            }
            while p.poll_send(now).is_some() {
                media += 1200;
            }
            while let Some((size, cluster)) = p.poll_padding(now) {
                assert_eq!(cluster, None);
                padding += size;
            }
        }
        let total_kbit = (media + padding) * 8 / 1000;
        assert!(
            (780..=830).contains(&total_kbit),
            "{total_kbit} kbit in 1 s"
        );
        assert!(media >= 36_000, "media is never held back for padding");
    }
}
