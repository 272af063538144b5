//! A simulated path for the estimator's tests: a paced sender at the estimate, a bottleneck
//! link with a drop-tail queue, optional bursty random loss, a receiver that sends
//! transport-wide CC feedback every 50 ms, and a return path that may reorder feedback.
//! Time advances in 1 ms steps from an explicit start; nothing sleeps.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{BandwidthEstimator, BweConfig};
use crate::rand::Rng;

/// Bytes per simulated packet.
const PACKET: usize = 1200;
const FEEDBACK_EVERY_MS: u64 = 50;

/// One feedback's packets: (transport-wide seq, arrival µs or lost).
type Report = Vec<(u16, Option<i64>)>;

/// Gilbert-Elliott loss: in the bad state packets are lost with `bad_loss`.
#[derive(Debug, Clone, Copy)]
pub struct BurstyLoss {
    /// Chance per packet of going from good to bad.
    pub enter_bad: f64,
    /// Chance per packet of leaving the bad state.
    pub leave_bad: f64,
    /// Loss in the bad state.
    pub bad_loss: f64,
}

pub struct Sim {
    pub now_ms: u64,
    t0: Instant,
    pub bwe: BandwidthEstimator,
    /// The bottleneck's rate, bit/s (tests change it over time).
    pub capacity: f64,
    /// The most the sender has to send, bit/s (a source's encoder maximum).
    pub source_max: f64,
    pub loss: Option<BurstyLoss>,
    /// Deliver each pair of feedback packets in swapped order.
    pub reorder_feedback: bool,
    one_way: Duration,
    queue_limit: Duration,
    rng: Rng,
    bad: bool,
    credit_bits: f64,
    next_seq: u16,
    busy_until_us: u64,
    /// (seq, arrival µs) not yet fed back, and the next seq feedback starts at.
    arrived: VecDeque<(u16, u64)>,
    next_fb_seq: u16,
    in_flight_fb: VecDeque<(u64, Report)>,
    held: Option<Report>,
    /// Send probes when the estimator asks (as a pacer would).
    pub probing: bool,
    /// The probe being sent: (cluster, bit/s, until ms).
    probe: Option<(u32, f64, u64)>,
    /// How many probes were sent.
    pub probes: u32,
    /// (ms, estimate) once per 100 ms.
    pub trace: Vec<(u64, u64)>,
}

impl Sim {
    pub fn new(capacity: f64, start_bps: u64) -> Self {
        let config = BweConfig {
            start_bps,
            ..BweConfig::default()
        };
        Self {
            now_ms: 0,
            t0: Instant::now(),
            bwe: BandwidthEstimator::new(config),
            capacity,
            source_max: 5e6,
            loss: None,
            reorder_feedback: false,
            one_way: Duration::from_millis(25),
            queue_limit: Duration::from_millis(300),
            rng: Rng::seeded(42),
            bad: false,
            credit_bits: 0.0,
            next_seq: 65_000, // wraps during every test
            busy_until_us: 0,
            arrived: VecDeque::new(),
            next_fb_seq: 65_000,
            in_flight_fb: VecDeque::new(),
            held: None,
            probing: true,
            probe: None,
            probes: 0,
            trace: Vec::new(),
        }
    }

    fn chance(&mut self) -> f64 {
        f64::from(self.rng.u32()) / f64::from(u32::MAX)
    }

    fn lost_at_random(&mut self) -> bool {
        let Some(l) = self.loss else { return false };
        let flip = self.chance();
        self.bad = if self.bad {
            flip >= l.leave_bad
        } else {
            flip < l.enter_bad
        };
        self.bad && self.chance() < l.bad_loss
    }

    /// Runs until `until_ms`.
    pub fn run_until(&mut self, until_ms: u64) {
        while self.now_ms < until_ms {
            self.step();
        }
    }

    fn step(&mut self) {
        self.now_ms += 1;
        let now = self.t0 + Duration::from_millis(self.now_ms);
        let now_us = self.now_ms * 1000;
        // Send: a pacer at the estimate (capped by the source) spends its credit; during a
        // probe it tops that up with padding to the probe's rate.
        if self.probing
            && self.probe.is_none()
            && let Some(p) = self.bwe.poll_probe(now)
        {
            let until = self.now_ms + p.duration.as_millis() as u64;
            self.probe = Some((p.cluster, p.bps as f64, until));
            self.probes += 1;
        }
        let cluster = match self.probe {
            Some((c, bps, until)) if self.now_ms <= until => Some((c, bps)),
            _ => None,
        };
        if cluster.is_none() {
            self.probe = None;
        }
        let media = (self.bwe.estimate() as f64).min(self.source_max);
        let rate = cluster.map_or(media, |(_, bps)| bps.max(media));
        self.credit_bits =
            (self.credit_bits + rate / 1000.0).min((rate / 100.0).max(2.0 * (PACKET * 8) as f64));
        while self.credit_bits >= (PACKET * 8) as f64 {
            self.credit_bits -= (PACKET * 8) as f64;
            let seq = self.next_seq;
            self.next_seq = seq.wrapping_add(1);
            match cluster {
                Some((c, _)) => self.bwe.on_probe_sent(seq, PACKET, c, now),
                None => self.bwe.on_packet_sent(seq, PACKET, now),
            }
            if self.lost_at_random() {
                continue;
            }
            // The bottleneck: FIFO at `capacity`, drop-tail past `queue_limit` of delay.
            let tx_us = (PACKET * 8) as f64 / self.capacity * 1e6;
            let start = self.busy_until_us.max(now_us);
            if start - now_us > self.queue_limit.as_micros() as u64 {
                continue;
            }
            self.busy_until_us = start + tx_us as u64;
            let arrival = self.busy_until_us + self.one_way.as_micros() as u64;
            self.arrived.push_back((seq, arrival));
        }
        if self.now_ms.is_multiple_of(FEEDBACK_EVERY_MS) {
            self.send_feedback(now_us);
        }
        self.deliver_feedback(now_us, now);
        if self.now_ms.is_multiple_of(100) {
            self.trace.push((self.now_ms, self.bwe.estimate()));
        }
    }

    /// The receiver reports every packet up to the highest arrived by now; the gaps are
    /// losses (the link is FIFO, so nothing later can still come).
    fn send_feedback(&mut self, now_us: u64) {
        let mut report = Vec::new();
        // Arbitrary offset: only differences of the peer's clock may matter.
        const PEER_CLOCK_US: i64 = 123_456_789;
        while let Some(&(seq, arrival)) = self.arrived.front() {
            if arrival > now_us {
                break;
            }
            self.arrived.pop_front();
            while self.next_fb_seq != seq {
                report.push((self.next_fb_seq, None));
                self.next_fb_seq = self.next_fb_seq.wrapping_add(1);
            }
            report.push((seq, Some(arrival as i64 + PEER_CLOCK_US)));
            self.next_fb_seq = seq.wrapping_add(1);
        }
        if !report.is_empty() {
            let at = now_us + self.one_way.as_micros() as u64;
            self.in_flight_fb.push_back((at, report));
        }
    }

    fn deliver_feedback(&mut self, now_us: u64, now: Instant) {
        while self
            .in_flight_fb
            .front()
            .is_some_and(|(at, _)| *at <= now_us)
        {
            let Some((_, report)) = self.in_flight_fb.pop_front() else {
                return;
            };
            if !self.reorder_feedback {
                self.bwe.on_feedback(report, now);
            } else if let Some(first) = self.held.take() {
                // The later one arrives first.
                self.bwe.on_feedback(report, now);
                self.bwe.on_feedback(first, now);
            } else {
                self.held = Some(report);
            }
        }
    }

    /// The first time (ms) from `from_ms` on after which every traced estimate stays within
    /// `[lo, hi]` until the end of the trace; `None` if it never settles there.
    pub fn settled_at(&self, from_ms: u64, lo: u64, hi: u64) -> Option<u64> {
        let mut settled = None;
        for &(t, e) in self.trace.iter().filter(|(t, _)| *t >= from_ms) {
            if (lo..=hi).contains(&e) {
                settled.get_or_insert(t);
            } else {
                settled = None;
            }
        }
        settled
    }

    /// The mean traced estimate over `[from_ms, to_ms)`.
    pub fn mean(&self, from_ms: u64, to_ms: u64) -> u64 {
        let window: Vec<u64> = self
            .trace
            .iter()
            .filter(|(t, _)| (from_ms..to_ms).contains(t))
            .map(|(_, e)| *e)
            .collect();
        window.iter().sum::<u64>() / window.len().max(1) as u64
    }

    pub fn dump(&self) -> String {
        let cells: Vec<String> = self
            .trace
            .iter()
            .filter(|(t, _)| t.is_multiple_of(1000))
            .map(|(t, e)| format!("{}s:{}k", t / 1000, e / 1000))
            .collect();
        cells.join(" ")
    }
}
