//! The delay-based half of the estimator (draft-ietf-rmcat-gcc-02 §5): packets are grouped
//! by send time, the growth of one-way delay between groups is smoothed and fitted with a
//! line over a window (the "trendline"), and the slope is compared with a threshold that
//! adapts to the path, so that a queue building up at the bottleneck is seen as overuse
//! before it causes loss.

use std::collections::VecDeque;

/// What the delay trend says about the path (GCC §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Delay is steady: the path carries what we send.
    Normal,
    /// Delay grows: a queue is building, we send more than the path carries.
    Overusing,
    /// Delay shrinks: a queue drains.
    Underusing,
}

/// One packet as the receiver saw it: our send time and its arrival in the receiver's
/// clock, both in µs (only differences matter).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub send_us: i64,
    pub arrival_us: i64,
}

/// Packets sent within this time of a group's first are one group (GCC §5.2: a video frame
/// is sent as a burst; its packets' individual delays are meaningless).
const GROUP_SPAN_US: i64 = 5_000;
/// A group whose packets arrive this close together after the previous one, with less delay
/// growth than send spacing, is the same burst, queued at once (GCC §5.2's burst rule).
const BURST_ARRIVAL_US: i64 = 5_000;

#[derive(Debug, Clone, Copy)]
struct Group {
    first_send_us: i64,
    last_send_us: i64,
    last_arrival_us: i64,
}

/// Samples the trendline is fitted over (libwebrtc's default window is 20).
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay (GCC's trendline smoothing coefficient).
const SMOOTHING: f64 = 0.9;
/// The slope is scaled by this gain and by the number of deltas seen (capped) before it is
/// compared with the threshold, which is in ms.
const GAIN: f64 = 4.0;
const MAX_DELTAS: f64 = 60.0;
/// Adaptive threshold (GCC §5.4): starts at 12.5 ms, moves towards |trend| faster when the
/// trend falls under it (k_down) than when it exceeds it (k_up), within [6, 600] ms.
const THRESHOLD_START: f64 = 12.5;
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// Overuse must last this long (and over two samples) before it is signalled.
const OVERUSE_TIME_MS: f64 = 10.0;

/// Inter-group delay variation → trendline → overuse detector.
#[derive(Debug, Clone)]
pub(crate) struct DelayDetector {
    current: Option<Group>,
    previous: Option<Group>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    first_arrival_us: Option<i64>,
    samples: VecDeque<(f64, f64)>,
    deltas: f64,
    prev_trend: f64,
    threshold: f64,
    last_threshold_update_us: Option<i64>,
    time_over_ms: f64,
    overuse_count: u32,
    usage: Usage,
}

impl DelayDetector {
    pub fn new() -> Self {
        Self {
            current: None,
            previous: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            first_arrival_us: None,
            samples: VecDeque::with_capacity(WINDOW),
            deltas: 0.0,
            prev_trend: 0.0,
            threshold: THRESHOLD_START,
            last_threshold_update_us: None,
            time_over_ms: 0.0,
            overuse_count: 0,
            usage: Usage::Normal,
        }
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Takes one received packet; feed them in arrival order.
    pub fn on_arrival(&mut self, p: Arrival) {
        let Some(mut group) = self.current else {
            self.current = Some(Group {
                first_send_us: p.send_us,
                last_send_us: p.send_us,
                last_arrival_us: p.arrival_us,
            });
            return;
        };
        // Reordered on the way: sent before the group we are filling. Its delay says
        // nothing about the queue now (libwebrtc ignores such packets too).
        if p.send_us < group.first_send_us {
            return;
        }
        if self.belongs(&group, p) {
            group.last_send_us = group.last_send_us.max(p.send_us);
            group.last_arrival_us = group.last_arrival_us.max(p.arrival_us);
            self.current = Some(group);
            return;
        }
        if let Some(prev) = self.previous {
            let send_delta = group.last_send_us - prev.last_send_us;
            let arrival_delta = group.last_arrival_us - prev.last_arrival_us;
            self.on_delta(send_delta, arrival_delta, group.last_arrival_us);
        }
        self.previous = Some(group);
        self.current = Some(Group {
            first_send_us: p.send_us,
            last_send_us: p.send_us,
            last_arrival_us: p.arrival_us,
        });
    }

    fn belongs(&self, group: &Group, p: Arrival) -> bool {
        if p.send_us - group.first_send_us <= GROUP_SPAN_US {
            return true;
        }
        let arrival_delta = p.arrival_us - group.last_arrival_us;
        let send_delta = p.send_us - group.last_send_us;
        arrival_delta < BURST_ARRIVAL_US && arrival_delta - send_delta < 0
    }

    /// One inter-group sample: the delay variation `arrival_delta - send_delta`.
    fn on_delta(&mut self, send_delta_us: i64, arrival_delta_us: i64, arrival_us: i64) {
        let variation_ms = (arrival_delta_us - send_delta_us) as f64 / 1000.0;
        self.deltas = (self.deltas + 1.0).min(MAX_DELTAS);
        self.accumulated_ms += variation_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let first = *self.first_arrival_us.get_or_insert(arrival_us);
        let x_ms = (arrival_us - first) as f64 / 1000.0;
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back((x_ms, self.smoothed_ms));
        let trend = if self.samples.len() == WINDOW {
            slope(&self.samples).unwrap_or(self.prev_trend)
        } else {
            self.prev_trend
        };
        self.detect(trend, send_delta_us as f64 / 1000.0, arrival_us);
        self.prev_trend = trend;
    }

    /// GCC §5.4: overuse when the scaled trend stays above the threshold.
    fn detect(&mut self, trend: f64, send_delta_ms: f64, now_us: i64) {
        let modified = self.deltas * trend * GAIN;
        if modified > self.threshold {
            self.time_over_ms += if self.time_over_ms == 0.0 {
                send_delta_ms / 2.0
            } else {
                send_delta_ms
            };
            self.overuse_count += 1;
            if self.time_over_ms > OVERUSE_TIME_MS
                && self.overuse_count > 1
                && trend >= self.prev_trend
            {
                self.time_over_ms = 0.0;
                self.overuse_count = 0;
                self.usage = Usage::Overusing;
            }
        } else if modified < -self.threshold {
            self.time_over_ms = 0.0;
            self.overuse_count = 0;
            self.usage = Usage::Underusing;
        } else {
            self.time_over_ms = 0.0;
            self.overuse_count = 0;
            self.usage = Usage::Normal;
        }
        self.adapt_threshold(modified, now_us);
    }

    fn adapt_threshold(&mut self, modified: f64, now_us: i64) {
        let last = self.last_threshold_update_us.replace(now_us);
        // A spike far above the threshold (a sudden route change) must not drag it up.
        if modified.abs() > self.threshold + 15.0 {
            return;
        }
        let k = if modified.abs() < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let dt_ms = last.map_or(0.0, |l| ((now_us - l) as f64 / 1000.0).clamp(0.0, 100.0));
        self.threshold += k * (modified.abs() - self.threshold) * dt_ms;
        self.threshold = self.threshold.clamp(6.0, 600.0);
    }

    /// The adaptive threshold now.
    #[cfg(test)]
    pub fn threshold(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.threshold / 1000.0)
    }
}

/// The least-squares slope of `(x, y)` samples; `None` when every x is the same.
fn slope(samples: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = samples.len() as f64;
    let mean_x = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in samples {
        num += (x - mean_x) * (y - mean_y);
        den += (x - mean_x) * (x - mean_x);
    }
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups every 10 ms of send time (3 packets each); each group arrives `growth_us`
    /// later than the last plus the send spacing.
    fn feed(d: &mut DelayDetector, groups: i64, growth_us: i64, start: (i64, i64)) -> (i64, i64) {
        let (mut send, mut arrival) = start;
        for _ in 0..groups {
            for k in 0..3 {
                d.on_arrival(Arrival {
                    send_us: send + k * 1000,
                    arrival_us: arrival + k * 1000,
                });
            }
            send += 10_000;
            arrival += 10_000 + growth_us;
        }
        (send, arrival)
    }

    #[test]
    fn steady_delay_is_normal_growing_is_overuse_shrinking_is_underuse() {
        let mut d = DelayDetector::new();
        let at = feed(&mut d, 100, 0, (0, 50_000));
        assert_eq!(d.usage(), Usage::Normal);
        // A queue growing by 1 ms every 10 ms (the link carries 10 % less than we send).
        let at = feed(&mut d, 40, 1_000, at);
        assert_eq!(d.usage(), Usage::Overusing);
        // The queue drains.
        feed(&mut d, 40, -1_000, at);
        assert_eq!(d.usage(), Usage::Underusing);
    }

    #[test]
    fn jitter_without_a_trend_is_not_overuse_and_the_threshold_adapts_down() {
        let mut d = DelayDetector::new();
        let (mut send, mut arrival) = (0, 0);
        for i in 0..600 {
            // ±3 ms of alternating jitter: no queue building.
            let jitter = if i % 2 == 0 { 3_000 } else { -3_000 };
            d.on_arrival(Arrival {
                send_us: send,
                arrival_us: arrival + jitter,
            });
            assert_ne!(d.usage(), Usage::Overusing, "sample {i}");
            send += 10_000;
            arrival += 10_000;
        }
        assert!(d.threshold() < std::time::Duration::from_micros(12_500));
    }

    #[test]
    fn packets_reordered_before_their_group_are_ignored() {
        let mut d = DelayDetector::new();
        let at = feed(&mut d, 50, 0, (0, 0));
        // A packet sent long ago arrives now, with a huge apparent delay.
        d.on_arrival(Arrival {
            send_us: at.0 - 300_000,
            arrival_us: at.1,
        });
        feed(&mut d, 50, 0, at);
        assert_eq!(d.usage(), Usage::Normal);
    }
}
