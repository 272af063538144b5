//! Congestion control for what we send to one peer, sans-IO: a send-side bandwidth
//! estimator in the style of Google Congestion Control (draft-ietf-rmcat-gcc-02), fed with
//! transport-wide CC feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01) or REMB
//! (draft-alvestrand-rmcat-remb).
//!
//! The caller tells [`BandwidthEstimator`] about every packet it sends with a transport-wide
//! sequence number ([`on_packet_sent`](BandwidthEstimator::on_packet_sent)), hands it the
//! peer's feedback ([`on_twcc`](BandwidthEstimator::on_twcc),
//! [`on_remb`](BandwidthEstimator::on_remb)) and reads
//! [`estimate`](BandwidthEstimator::estimate): the bit rate the path to the peer carries
//! now. Three limits make it, the lowest wins:
//!
//! * delay-based ([`delay`]): the trend of one-way delay between packet groups; a rising
//!   trend is a queue building, answered by AIMD rate control ([`aimd`]);
//! * loss-based ([`loss`]): more than 10 % lost lowers the rate;
//! * the peer's own REMB, when it sends one.
//!
//! Time is passed in; nothing here reads a clock.

mod aimd;
mod delay;
mod history;
mod loss;
pub mod pacer;
mod probe;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

pub use delay::Usage;
pub use probe::ProbeRequest;

use self::aimd::AimdRate;
use self::delay::{Arrival, DelayDetector};
use self::history::{AckedRate, Reported, SendHistory};
use self::loss::LossLimit;
use self::probe::Prober;
use crate::rtcp::Twcc;

/// Bounds and starting point of an estimate, in bit/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BweConfig {
    /// Where the estimate starts, before any feedback.
    pub start_bps: u64,
    /// It never goes below this (keeps audio and the lowest layer probing their way back).
    pub min_bps: u64,
    /// Nor above this.
    pub max_bps: u64,
}

impl Default for BweConfig {
    fn default() -> Self {
        Self {
            start_bps: 1_000_000,
            min_bps: 30_000,
            max_bps: 20_000_000,
        }
    }
}

/// A send-side bandwidth estimate for the path to one peer.
#[derive(Debug, Clone)]
pub struct BandwidthEstimator {
    config: BweConfig,
    history: SendHistory,
    delay: DelayDetector,
    rate: AimdRate,
    loss: LossLimit,
    acked: AckedRate,
    prober: Prober,
    /// When the delay detector last said overuse (the path was full then).
    last_overuse: Option<Instant>,
    remb: Option<f64>,
    rtt: Option<Duration>,
    /// The last feedback's reference time, unwrapped (24-bit field, 64 ms units).
    reference: Option<i64>,
    has_feedback: bool,
}

impl BandwidthEstimator {
    /// An estimator starting at `config.start_bps`.
    pub fn new(config: BweConfig) -> Self {
        let (min, max) = (config.min_bps as f64, config.max_bps as f64);
        Self {
            config,
            history: SendHistory::new(),
            delay: DelayDetector::new(),
            rate: AimdRate::new(config.start_bps as f64, min, max),
            loss: LossLimit::new(),
            acked: AckedRate::new(),
            prober: Prober::new(),
            last_overuse: None,
            remb: None,
            rtt: None,
            reference: None,
            has_feedback: false,
        }
    }

    /// Records a packet we sent: its transport-wide sequence number, its size on the wire
    /// (bytes: RTP header, payload, SRTP tag) and when it left.
    pub fn on_packet_sent(&mut self, seq: u16, size: usize, now: Instant) {
        self.history.on_sent(seq, size, None, now);
    }

    /// Records a packet sent as part of probe `cluster` (see [`poll_probe`](Self::poll_probe)):
    /// media or padding the pacer sent at the probe's rate.
    pub fn on_probe_sent(&mut self, seq: u16, size: usize, cluster: u32, now: Instant) {
        self.history.on_sent(seq, size, Some(cluster), now);
        self.prober
            .on_sent(cluster, u32::try_from(size).unwrap_or(u32::MAX), now);
    }

    /// A probe to send now, if one is due: at the start (3 × the initial estimate), again at
    /// twice a result while the path keeps up, and every 5 s while delay and loss show the
    /// path is not full. Hand it to the pacer
    /// ([`Pacer::start_probe`](pacer::Pacer::start_probe)).
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeRequest> {
        if self.remb.is_some() && !self.has_feedback {
            return None; // REMB-only: no feedback to judge a probe by.
        }
        // Periodic probes only when nothing said "full" for a while: probing a path that is
        // full builds the queue the delay detector just drained.
        let calm = self
            .last_overuse
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(5));
        let quiet = calm && self.delay.usage() == Usage::Normal && self.loss.limit().is_none();
        let (estimate, max) = (self.estimate() as f64, self.config.max_bps as f64);
        self.prober.poll(now, estimate, max, quiet)
    }

    /// Takes a transport-wide CC feedback packet from the peer.
    pub fn on_twcc(&mut self, fb: &Twcc<'_>, now: Instant) {
        // The reference time is 24 bits of 64 ms: unwrap it against the last one so a
        // feedback after a wrap (every ~12 days) is not 12 days early.
        let raw = i64::from(fb.reference_time());
        let reference = match self.reference {
            None => raw,
            Some(last) => {
                let diff = (raw - last).rem_euclid(1 << 24);
                let diff = if diff >= 1 << 23 {
                    diff - (1 << 24)
                } else {
                    diff
                };
                last + diff
            }
        };
        self.reference = Some(self.reference.map_or(reference, |l| l.max(reference)));
        let mut at = reference * 64_000;
        let packets = fb.packets().map(|(seq, delta)| {
            (
                seq,
                delta.map(|d| {
                    at += d;
                    at
                }),
            )
        });
        self.on_feedback(packets, now);
    }

    /// Takes feedback as `(transport-wide seq, arrival time in µs in the peer's clock or
    /// None when lost)`: what [`on_twcc`](Self::on_twcc) reads from the packet.
    pub fn on_feedback(
        &mut self,
        packets: impl IntoIterator<Item = (u16, Option<i64>)>,
        now: Instant,
    ) {
        let mut received: Vec<Reported> = Vec::new();
        let mut lost = 0u32;
        let mut newest_send: Option<Instant> = None;
        for (seq, arrival) in packets {
            match self.history.report(seq, arrival) {
                Some(Reported::Lost { cluster }) => {
                    lost += 1;
                    if let Some(c) = cluster {
                        self.prober.on_reported(c, None);
                    }
                }
                Some(
                    r @ Reported::Received {
                        send,
                        arrival_us,
                        size,
                        cluster,
                    },
                ) => {
                    newest_send = newest_send.max(Some(send));
                    if let Some(c) = cluster {
                        self.prober.on_reported(c, Some((arrival_us, size)));
                    }
                    received.push(r);
                }
                None => {}
            }
        }
        if received.is_empty() && lost == 0 {
            return;
        }
        self.has_feedback = true;
        if let Some(send) = newest_send {
            // The round trip as feedback shows it (including the peer's feedback interval):
            // smoothed, as it only paces decreases and sizes the additive increase.
            let sample = now.saturating_duration_since(send);
            self.rtt = Some(match self.rtt {
                Some(rtt) => rtt.mul_f64(0.875) + sample.mul_f64(0.125),
                None => sample,
            });
        }
        received.sort_by_key(|r| match r {
            Reported::Received { arrival_us, .. } => *arrival_us,
            Reported::Lost { .. } => 0,
        });
        let base = self.history.base().unwrap_or(now);
        for r in &received {
            if let Reported::Received {
                send,
                arrival_us,
                size,
                ..
            } = *r
            {
                self.acked.on_received(arrival_us, size);
                let send_us = send.saturating_duration_since(base).as_micros() as i64;
                self.delay.on_arrival(Arrival {
                    send_us,
                    arrival_us,
                });
            }
        }
        let rtt = self.rtt();
        let acked = self.acked.rate();
        self.rate.update(self.delay.usage(), acked, rtt, now);
        if self.delay.usage() == Usage::Overusing {
            self.last_overuse = Some(now);
        }
        if let Some(probed) = self.prober.take_result() {
            // The path carried the probe: the delay-based rate may jump there (not while a
            // queue is building: then the probe itself overshot).
            if self.delay.usage() != Usage::Overusing {
                self.rate.raise_to(probed);
            }
        }
        let current = self.estimate() as f64;
        let overusing = self.delay.usage() == Usage::Overusing;
        let (n, delay_rate) = (received.len() as u32, self.rate.rate());
        (self.loss).on_report(lost, n, current, delay_rate, overusing, rtt, now);
        self.history.prune(now);
    }

    /// Takes a REMB (the peer's own estimate of what it can receive, bit/s).
    pub fn on_remb(&mut self, bitrate: u64, _now: Instant) {
        self.remb = Some(bitrate as f64);
    }

    /// The estimate now, bit/s: the lowest of the delay-based rate, the loss limit and the
    /// peer's REMB, within the configured bounds.
    pub fn estimate(&self) -> u64 {
        let mut rate = self.rate.rate();
        if let Some(limit) = self.loss.limit() {
            rate = rate.min(limit);
        }
        if let Some(remb) = self.remb {
            // A REMB-only peer: its REMB is the estimate.
            rate = if self.has_feedback {
                rate.min(remb)
            } else {
                remb
            };
        }
        (rate as u64).clamp(self.config.min_bps, self.config.max_bps)
    }

    /// What the delay trend says now.
    pub fn usage(&self) -> Usage {
        self.delay.usage()
    }

    /// The rate the peer received over the last half second, bit/s, once known.
    pub fn acked_bps(&self) -> Option<u64> {
        self.acked.rate().map(|r| r as u64)
    }

    /// The loss fraction of the last window judged (0.0..=1.0).
    pub fn loss_fraction(&self) -> f64 {
        self.loss.fraction()
    }

    /// The feedback round trip (send → feedback received), smoothed; 100 ms before any.
    pub fn rtt(&self) -> Duration {
        self.rtt.unwrap_or(Duration::from_millis(100))
    }
}
