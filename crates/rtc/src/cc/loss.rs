//! The loss-based limit (draft-ietf-rmcat-gcc-02 §6): over a window of reported packets,
//! more than 10 % lost lowers the limit by half the loss fraction, under 2 % lets it grow
//! by 8 %/s, in between holds it. Loss from a shallow bottleneck queue or a lossy radio link
//! shows no delay trend; this is what catches it.

use std::time::{Duration, Instant};

/// A window is judged once it has this many packets and spans this long.
const MIN_PACKETS: u32 = 20;
const MIN_SPAN: Duration = Duration::from_millis(200);
const HIGH_LOSS: f64 = 0.10;
const LOW_LOSS: f64 = 0.02;
/// At most one decrease in this long (plus the round trip): feedback about packets sent
/// before the last decrease would otherwise decrease again.
const DECREASE_INTERVAL: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
pub(crate) struct LossLimit {
    /// `None`: loss does not limit the rate now.
    limit: Option<f64>,
    lost: u32,
    total: u32,
    window_start: Option<Instant>,
    last_fraction: f64,
    last_decrease: Option<Instant>,
    last_update: Option<Instant>,
}

impl LossLimit {
    pub fn new() -> Self {
        Self {
            limit: None,
            lost: 0,
            total: 0,
            window_start: None,
            last_fraction: 0.0,
            last_decrease: None,
            last_update: None,
        }
    }

    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// The loss fraction of the last window judged.
    pub fn fraction(&self) -> f64 {
        self.last_fraction
    }

    /// Counts the packets one feedback reported; judges the window when it is full.
    /// `current` is the estimate in force (bit/s), `delay_rate` the delay-based rate;
    /// `overusing`: the delay detector sees a queue building, so the loss is that queue
    /// overflowing and the delay-based decrease already answers it (decreasing for it
    /// twice would undershoot the path well below its capacity).
    #[allow(clippy::too_many_arguments)]
    pub fn on_report(
        &mut self,
        lost: u32,
        received: u32,
        current: f64,
        delay_rate: f64,
        overusing: bool,
        rtt: Duration,
        now: Instant,
    ) {
        self.lost += lost;
        self.total += lost + received;
        let start = *self.window_start.get_or_insert(now);
        if self.total < MIN_PACKETS || now.saturating_duration_since(start) < MIN_SPAN {
            return;
        }
        let fraction = f64::from(self.lost) / f64::from(self.total);
        (self.lost, self.total, self.window_start) = (0, 0, Some(now));
        self.last_fraction = fraction;
        let dt = self
            .last_update
            .replace(now)
            .map_or(Duration::ZERO, |l| now.saturating_duration_since(l))
            .min(Duration::from_secs(1));
        if fraction > HIGH_LOSS && !overusing {
            let waited = self
                .last_decrease
                .is_none_or(|l| now.saturating_duration_since(l) >= DECREASE_INTERVAL + rtt);
            if waited {
                let base = self.limit.unwrap_or(current).min(current);
                self.limit = Some(base * (1.0 - 0.5 * fraction));
                self.last_decrease = Some(now);
            }
        } else if fraction < LOW_LOSS
            && let Some(limit) = self.limit
        {
            let grown = limit * 1.08f64.powf(dt.as_secs_f64());
            // Once well above what delay allows, loss no longer limits anything.
            self.limit = (grown < 1.5 * delay_rate).then_some(grown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(100);

    #[test]
    fn high_loss_lowers_by_half_the_fraction_low_loss_grows_then_lets_go() {
        let t0 = Instant::now();
        let mut l = LossLimit::new();
        let ms = |m| t0 + Duration::from_millis(m);
        // 20 % loss over a 250 ms window of 100 packets.
        l.on_report(10, 40, 1e6, 1e6, false, RTT, ms(0));
        l.on_report(10, 40, 1e6, 1e6, false, RTT, ms(250));
        assert_eq!(l.limit(), Some(900_000.0));
        assert!((l.fraction() - 0.2).abs() < 1e-9);
        // Still 20 %, but within 300 ms + RTT of the decrease: held.
        l.on_report(20, 80, 1e6, 1e6, false, RTT, ms(500));
        assert_eq!(l.limit(), Some(900_000.0));
        l.on_report(20, 80, 1e6, 1e6, false, RTT, ms(700));
        assert_eq!(l.limit(), Some(810_000.0));
        // 5 %: held.
        l.on_report(5, 95, 1e6, 1e6, false, RTT, ms(1000));
        assert_eq!(l.limit(), Some(810_000.0));
        // No loss: +8 %/s until 1.5 × the delay-based rate, then no limit at all.
        let mut t = 1000;
        while l.limit().is_some() {
            t += 250;
            l.on_report(0, 100, 1e6, 1e6, false, RTT, ms(t));
            assert!(t < 12_000, "never let go: {:?}", l.limit());
        }
        // ln(1.5 / 0.81) / ln(1.08) ≈ 8 s.
        assert!((8_500..10_500).contains(&t), "{t}");
    }

    #[test]
    fn small_windows_are_not_judged() {
        let t0 = Instant::now();
        let mut l = LossLimit::new();
        // Half lost, but only 10 packets in 1 s of reports.
        for i in 0..5 {
            l.on_report(
                1,
                1,
                1e6,
                1e6,
                false,
                RTT,
                t0 + Duration::from_millis(200 * i),
            );
        }
        assert_eq!(l.limit(), None);
    }
}
