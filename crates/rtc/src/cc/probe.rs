//! Probing upward: a short cluster of packets sent at a target rate (media topped up with
//! padding by the pacer) tells from its arrival spacing whether the path carries that rate,
//! so the estimate can jump there instead of creeping up at 8 %/s — what lets a viewer whose
//! link improved reach a higher layer within seconds. The idea is libwebrtc's probe
//! controller and probe bitrate estimator; the rules below are ours.

use std::time::{Duration, Instant};

/// A cluster is judged from at least this many received packets.
const MIN_PACKETS: u32 = 5;
/// And at least this share of its packets received (a lossy cluster says nothing).
const MIN_RECEIVED: f64 = 0.8;
/// A probe lasts at least this long.
const MIN_DURATION: Duration = Duration::from_millis(30);
/// Without a result within this, a cluster is given up.
const RESULT_TIMEOUT: Duration = Duration::from_secs(1);
/// When the path kept up with a probe (result ≥ this share of its target), probe again at
/// twice the result at once.
const KEPT_UP: f64 = 0.9;
/// Otherwise probe every this long while nothing says the path is full.
const PERIODIC: Duration = Duration::from_secs(5);

/// A probe to send: `duration` of packets at `bps`, reported with
/// [`on_probe_sent`](super::BandwidthEstimator::on_probe_sent) under `cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The cluster's id.
    pub cluster: u32,
    /// The rate to send at, bit/s.
    pub bps: u64,
    /// For how long.
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Cluster {
    id: u32,
    target: f64,
    started: Instant,
    sent: u32,
    sent_bytes: u64,
    first_send: Option<Instant>,
    last_send: Option<Instant>,
    last_size: u32,
    reported: u32,
    received: u32,
    recv_bytes: u64,
    first_arrival: i64,
    first_size: u32,
    last_arrival: i64,
}

/// Sends probes and turns their feedback into rates.
#[derive(Debug, Clone)]
pub(crate) struct Prober {
    next_id: u32,
    pending: Option<Cluster>,
    last_probe: Option<Instant>,
    /// A result that kept up: probe again from it at once.
    follow_up: Option<f64>,
    started: bool,
}

impl Prober {
    pub fn new() -> Self {
        Self {
            next_id: 0,
            pending: None,
            last_probe: None,
            follow_up: None,
            started: false,
        }
    }

    /// A probe to send now, if one is due. `estimate` is the estimate in force; `quiet`
    /// says nothing shows the path full (delay normal, loss low).
    pub fn poll(
        &mut self,
        now: Instant,
        estimate: f64,
        max: f64,
        quiet: bool,
    ) -> Option<ProbeRequest> {
        if let Some(c) = self.pending {
            if now.saturating_duration_since(c.started) < RESULT_TIMEOUT {
                return None;
            }
            self.pending = None;
        }
        let target = if !self.started {
            // At the start: the initial estimate is a guess; find out at 3 × it.
            self.started = true;
            3.0 * estimate
        } else if let Some(result) = self.follow_up.take() {
            2.0 * result
        } else if quiet
            && self
                .last_probe
                .is_none_or(|l| now.saturating_duration_since(l) >= PERIODIC)
        {
            2.0 * estimate
        } else {
            return None;
        };
        let target = target.min(max);
        if target <= estimate * 1.1 {
            return None;
        }
        let id = self.next_id;
        self.next_id = id.wrapping_add(1);
        self.last_probe = Some(now);
        self.pending = Some(Cluster {
            id,
            target,
            started: now,
            sent: 0,
            sent_bytes: 0,
            first_send: None,
            last_send: None,
            last_size: 0,
            reported: 0,
            received: 0,
            recv_bytes: 0,
            first_arrival: i64::MAX,
            first_size: 0,
            last_arrival: i64::MIN,
        });
        let packet_time = 1200.0 * 8.0 * f64::from(MIN_PACKETS) / target;
        Some(ProbeRequest {
            cluster: id,
            bps: target as u64,
            duration: MIN_DURATION.max(Duration::from_secs_f64(packet_time)),
        })
    }

    pub fn on_sent(&mut self, cluster: u32, size: u32, now: Instant) {
        let Some(c) = self.pending.as_mut().filter(|c| c.id == cluster) else {
            return;
        };
        c.sent += 1;
        c.sent_bytes += u64::from(size);
        c.first_send.get_or_insert(now);
        c.last_send = Some(now);
        c.last_size = size;
    }

    /// Feedback on one packet of `cluster`; `arrival_us` when received.
    pub fn on_reported(&mut self, cluster: u32, arrival: Option<(i64, u32)>) {
        let Some(c) = self.pending.as_mut().filter(|c| c.id == cluster) else {
            return;
        };
        c.reported += 1;
        if let Some((at, size)) = arrival {
            c.received += 1;
            c.recv_bytes += u64::from(size);
            if at < c.first_arrival {
                (c.first_arrival, c.first_size) = (at, size);
            }
            c.last_arrival = c.last_arrival.max(at);
        }
    }

    /// The probed rate once every packet of the cluster was reported, bit/s.
    pub fn take_result(&mut self) -> Option<f64> {
        let c = self.pending?;
        if c.sent == 0 || c.reported < c.sent {
            return None;
        }
        self.pending = None;
        let (first, last) = (c.first_send?, c.last_send?);
        let send_span = last.saturating_duration_since(first).as_secs_f64();
        // Saturating: with nothing received the bounds are still i64::MIN and i64::MAX
        // (a cluster lost whole must not overflow; `enough` refuses it below).
        let recv_span = c.last_arrival.saturating_sub(c.first_arrival) as f64 / 1e6;
        let enough = c.received >= MIN_PACKETS
            && f64::from(c.received) >= MIN_RECEIVED * f64::from(c.sent)
            && send_span > 0.0
            && recv_span > 0.0;
        if !enough {
            return None;
        }
        // Each span covers all packets but one: the last one sent, the first one received.
        let send_rate = (c.sent_bytes - u64::from(c.last_size)) as f64 * 8.0 / send_span;
        let recv_rate = (c.recv_bytes - u64::from(c.first_size)) as f64 * 8.0 / recv_span;
        let result = send_rate.min(recv_rate);
        if result >= KEPT_UP * c.target {
            self.follow_up = Some(result);
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_lost_whole_has_no_result() {
        let t = Instant::now();
        let mut p = Prober::new();
        let probe = p.poll(t, 1_000_000.0, 20_000_000.0, true).unwrap();
        for i in 0..5 {
            p.on_sent(probe.cluster, 1200, t + Duration::from_millis(i));
        }
        for _ in 0..5 {
            p.on_reported(probe.cluster, None);
        }
        assert_eq!(p.take_result(), None);
    }

    /// Sends `n` packets of cluster `c` 1 ms apart from `t`; reports them arriving `gap_us`
    /// apart (`lost` of them not at all). Returns the result.
    fn run(p: &mut Prober, c: u32, t: Instant, n: u32, gap_us: i64, lost: u32) -> Option<f64> {
        for i in 0..n {
            p.on_sent(c, 1200, t + Duration::from_millis(u64::from(i)));
        }
        for i in 0..n {
            let arrival = (i >= lost).then(|| (i64::from(i) * gap_us, 1200));
            p.on_reported(c, arrival);
        }
        p.take_result()
    }

    #[test]
    fn starts_at_three_times_then_doubles_while_the_path_keeps_up() {
        let t0 = Instant::now();
        let mut p = Prober::new();
        let first = p.poll(t0, 500_000.0, 1e8, true).unwrap();
        assert_eq!(first.bps, 1_500_000);
        // Five packets at 1.5 Mbit/s take 32 ms, over the 30 ms minimum.
        assert_eq!(first.duration, Duration::from_millis(32));
        assert_eq!(
            p.poll(t0, 500_000.0, 1e8, true),
            None,
            "one cluster at a time"
        );
        // 9.6 kbit per ms: 9.6 Mbit/s sent; received 1 ms apart too.
        let r = run(&mut p, first.cluster, t0, 10, 1_000, 0).unwrap();
        assert!((r - 9.6e6).abs() < 1.0, "{r}");
        let next = p.poll(t0, 1_500_000.0, 1e8, false).unwrap();
        assert_eq!(
            next.bps, 19_200_000,
            "twice the result, at once, quiet or not"
        );
        // The path carried only a third: no follow-up, and the periodic one waits 5 s.
        let r = run(&mut p, next.cluster, t0, 10, 3_000, 0).unwrap();
        assert!((r - 3.2e6).abs() < 1.0, "{r}");
        assert_eq!(p.poll(t0 + Duration::from_secs(4), 3.2e6, 1e8, true), None);
        let later = p
            .poll(t0 + Duration::from_secs(5), 3.2e6, 1e8, true)
            .unwrap();
        assert_eq!(later.bps, 6_400_000);
        assert_eq!(
            p.poll(t0 + Duration::from_secs(11), 3.2e6, 1e8, false),
            None,
            "not quiet"
        );
        assert_eq!(
            p.poll(t0 + Duration::from_secs(11), 6e6, 6.5e6, true),
            None,
            "at the max"
        );
    }

    #[test]
    fn lossy_or_unanswered_clusters_give_no_result() {
        let t0 = Instant::now();
        let mut p = Prober::new();
        let c = p.poll(t0, 1e6, 1e8, true).unwrap().cluster;
        assert_eq!(run(&mut p, c, t0, 10, 1_000, 3), None, "30 % lost");
        let t5 = t0 + Duration::from_secs(5);
        let c = p.poll(t5, 1e6, 1e8, true).unwrap().cluster;
        p.on_sent(c, 1200, t5);
        p.on_sent(c, 1200, t5 + Duration::from_millis(1));
        p.on_reported(c, Some((0, 1200)));
        assert_eq!(p.take_result(), None, "not all reported yet");
        // No answer within a second: given up, and the next probe can go (5 s later).
        assert_eq!(
            p.poll(t5 + Duration::from_millis(999), 1e6, 1e8, true),
            None
        );
        assert!(
            p.poll(t5 + Duration::from_secs(5), 1e6, 1e8, true)
                .is_some()
        );
        // Packets of a cluster given up are ignored.
        p.on_reported(c, Some((5, 1200)));
        assert_eq!(p.take_result(), None);
    }
}
