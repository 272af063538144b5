//! Rate control (draft-ietf-rmcat-gcc-02 §5.5): additive increase near the capacity the path
//! showed before, multiplicative increase (8 %/s) away from it, and a decrease to 85 % of
//! what was delivered when the delay detector reports overuse.

use std::time::{Duration, Instant};

use super::delay::Usage;

/// β: after overuse the rate drops to this share of the delivered (acked) rate.
const BETA: f64 = 0.85;
/// η: multiplicative increase per second far from the known capacity.
const INCREASE_PER_S: f64 = 1.08;
/// The average packet used to size the additive increase (one packet per response time).
const PACKET_BITS: f64 = 1200.0 * 8.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
    Decrease,
}

/// The delay-based rate, driven by the detector's [`Usage`] and the acked rate.
#[derive(Debug, Clone)]
pub(crate) struct AimdRate {
    rate: f64,
    min: f64,
    max: f64,
    state: State,
    last_update: Option<Instant>,
    last_decrease: Option<Instant>,
    capacity: Option<Capacity>,
}

impl AimdRate {
    pub fn new(start: f64, min: f64, max: f64) -> Self {
        Self {
            rate: start.clamp(min, max),
            min,
            max,
            state: State::Increase,
            last_update: None,
            last_decrease: None,
            capacity: None,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// A probe showed the path carries `bps`: raise the rate to it (never lower), and
    /// forget the old capacity (the path changed).
    pub fn raise_to(&mut self, bps: f64) {
        if bps > self.rate {
            self.rate = bps.clamp(self.min, self.max);
            self.capacity = None;
        }
    }

    /// Moves the rate for `usage`; `acked` is the rate the receiver got (bit/s), `rtt` the
    /// feedback round trip.
    pub fn update(&mut self, usage: Usage, acked: Option<f64>, rtt: Duration, now: Instant) {
        let dt = self
            .last_update
            .map_or(Duration::ZERO, |l| now.saturating_duration_since(l))
            .min(Duration::from_secs(1));
        self.last_update = Some(now);
        // GCC §5.5's state machine: overuse always decreases; underuse holds (the queue
        // drains at the current rate); normal increases, after one hold following a decrease.
        self.state = match (usage, self.state) {
            (Usage::Overusing, _) => State::Decrease,
            (Usage::Underusing, _) => State::Hold,
            (Usage::Normal, State::Hold | State::Increase) => State::Increase,
            (Usage::Normal, State::Decrease) => State::Hold,
        };
        match self.state {
            State::Hold => {}
            State::Increase => self.increase(acked, rtt, dt),
            State::Decrease => self.decrease(acked, rtt, now),
        }
        self.rate = self.rate.clamp(self.min, self.max);
    }

    fn increase(&mut self, acked: Option<f64>, rtt: Duration, dt: Duration) {
        // Delivered above the old capacity: the path changed, forget it.
        if let (Some(acked), Some(c)) = (acked, self.capacity)
            && acked > c.upper()
        {
            self.capacity = None;
        }
        let new = if self.capacity.is_some() {
            // Near the capacity seen at the last decreases: one packet more per response
            // time (GCC's additive increase), not to overshoot into another queue.
            let response = rtt.as_secs_f64() + 0.1;
            self.rate + (PACKET_BITS / response).max(4_000.0) * dt.as_secs_f64()
        } else {
            self.rate * INCREASE_PER_S.powf(dt.as_secs_f64())
        };
        // Do not run away from what is actually sent (the sender may be application-limited).
        let cap = acked.map_or(f64::INFINITY, |a| 1.5 * a + 10_000.0);
        if new > self.rate {
            self.rate = new.min(cap.max(self.rate));
        }
    }

    fn decrease(&mut self, acked: Option<f64>, rtt: Duration, now: Instant) {
        // One decrease per round trip: the overuse seen now may be from before the last one.
        if self
            .last_decrease
            .is_some_and(|l| now.saturating_duration_since(l) < rtt.max(Duration::from_millis(100)))
        {
            return;
        }
        let Some(acked) = acked else {
            self.rate *= BETA;
            self.last_decrease = Some(now);
            return;
        };
        self.rate = self.rate.min(BETA * acked);
        self.last_decrease = Some(now);
        self.capacity = Some(match self.capacity {
            Some(c) if acked >= c.lower() => c.update(acked),
            // Far below the average: the capacity dropped; start over from here.
            _ => Capacity::new(acked),
        });
    }
}

/// Where the path's capacity is thought to be: the acked rate at past decreases, averaged,
/// with a variance normalised by the average (in kbit/s, as GCC keeps it, within [0.4, 2.5]).
#[derive(Debug, Clone, Copy)]
struct Capacity {
    avg_kbps: f64,
    var: f64,
}

impl Capacity {
    fn new(acked: f64) -> Self {
        Self {
            avg_kbps: acked / 1000.0,
            var: 0.4,
        }
    }

    fn update(self, acked: f64) -> Self {
        let x = acked / 1000.0;
        let avg_kbps = 0.95 * self.avg_kbps + 0.05 * x;
        let var = 0.95 * self.var + 0.05 * (x - avg_kbps).powi(2) / avg_kbps.max(1.0);
        Self {
            avg_kbps,
            var: var.clamp(0.4, 2.5),
        }
    }

    fn std_kbps(self) -> f64 {
        (self.var * self.avg_kbps).sqrt()
    }

    fn upper(self) -> f64 {
        (self.avg_kbps + 3.0 * self.std_kbps()) * 1000.0
    }

    fn lower(self) -> f64 {
        (self.avg_kbps - 3.0 * self.std_kbps()) * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(100);

    #[test]
    fn increases_8_percent_per_second_when_normal() {
        let t0 = Instant::now();
        let mut r = AimdRate::new(1e6, 1e4, 1e8);
        for i in 0..=100 {
            r.update(
                Usage::Normal,
                None,
                RTT,
                t0 + Duration::from_millis(100 * i),
            );
        }
        // 10 s at 8 %/s: 1.08^10 ≈ 2.16.
        assert!((r.rate() / 1e6 - 2.159).abs() < 0.01, "{}", r.rate());
    }

    #[test]
    fn overuse_drops_to_85_percent_of_acked_once_per_rtt() {
        let t0 = Instant::now();
        let mut r = AimdRate::new(2e6, 1e4, 1e8);
        r.update(Usage::Overusing, Some(1e6), RTT, t0);
        assert_eq!(r.rate(), 850_000.0);
        // Within the same round trip a second overuse changes nothing.
        r.update(
            Usage::Overusing,
            Some(0.5e6),
            RTT,
            t0 + Duration::from_millis(50),
        );
        assert_eq!(r.rate(), 850_000.0);
        r.update(
            Usage::Overusing,
            Some(0.5e6),
            RTT,
            t0 + Duration::from_millis(150),
        );
        assert_eq!(r.rate(), 425_000.0);
        // After a decrease, normal first holds, then increases.
        r.update(
            Usage::Normal,
            Some(0.5e6),
            RTT,
            t0 + Duration::from_millis(250),
        );
        assert_eq!(r.rate(), 425_000.0);
        r.update(
            Usage::Normal,
            Some(0.5e6),
            RTT,
            t0 + Duration::from_millis(350),
        );
        assert!(r.rate() > 425_000.0);
    }

    #[test]
    fn increase_is_additive_near_the_known_capacity_and_capped_by_acked() {
        let t0 = Instant::now();
        let mut r = AimdRate::new(1e6, 1e4, 1e8);
        r.update(Usage::Overusing, Some(1e6), RTT, t0);
        let mut t = t0;
        for _ in 0..20 {
            t += Duration::from_millis(100);
            r.update(Usage::Normal, Some(0.9e6), RTT, t);
        }
        // 1.9 s of additive increase: ~1 packet (9600 bit) per 200 ms response time per s.
        let gained = r.rate() - 850_000.0;
        assert!(gained > 50_000.0 && gained < 120_000.0, "{gained}");
        // Far from the capacity but application-limited: never above 1.5 × acked + 10 k.
        let mut r = AimdRate::new(1e6, 1e4, 1e8);
        for i in 0..100 {
            r.update(
                Usage::Normal,
                Some(0.2e6),
                RTT,
                t0 + Duration::from_millis(100 * i),
            );
        }
        assert_eq!(r.rate(), 1e6, "not raised above the cap, nor lowered to it");
    }

    #[test]
    fn stays_within_min_and_max() {
        let t0 = Instant::now();
        let mut r = AimdRate::new(5e6, 3e4, 4e6);
        assert_eq!(r.rate(), 4e6);
        for i in 0..50 {
            r.update(
                Usage::Overusing,
                Some(1e3),
                RTT,
                t0 + Duration::from_secs(i),
            );
        }
        assert_eq!(r.rate(), 3e4);
    }
}
