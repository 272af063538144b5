//! A viewer's congestion control (issue 12): our own transport-wide sequence numbers on
//! everything we send it (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2: one
//! counter for the whole transport, not per stream), and the send-side estimate
//! (`rtc::cc`) its transport-cc feedback — or REMB — drives. The estimate chooses the
//! viewer's simulcast layer.

use std::time::{Duration, Instant};

use rtc::cc::pacer::{Pacer, PacerConfig};
use rtc::cc::{BandwidthEstimator, BweConfig, Usage};

/// Bytes of padding in a probe packet (RFC 3550 §5.1: the count is one byte).
pub const PADDING: usize = 240;

/// Where a viewer's estimate starts: enough for the top layer of a 720p Chromium simulcast,
/// so a viewer on a good link starts there; one on a weak link is brought down by its first
/// feedback (delay and loss), within a second or two.
pub const START_BPS: u64 = 2_500_000;

/// One viewer's transport-wide numbering and estimate.
#[derive(Debug, Clone)]
pub struct ViewerCc {
    /// The viewer's id for the transport-wide-cc header extension.
    pub id: u8,
    next: u16,
    /// The estimate of what the path to the viewer carries.
    pub bwe: BandwidthEstimator,
    /// Spreads its video over time at the estimate (a keyframe leaves over tens of
    /// milliseconds, not in one burst into the bottleneck's queue) and times the probes'
    /// padding.
    pub pacer: Pacer,
    /// Probe packets sent.
    pub probes_sent: u64,
    /// When the viewer's last feedback came (or the estimate was last restarted).
    last_feedback: Option<Instant>,
    /// Whether any feedback came: until then the estimate is only the starting guess.
    has_feedback: bool,
    /// Since when the feedback has shown neither loss nor a queue (see [`CALM`]).
    calm_since: Option<Instant>,
    /// When the estimate was last restarted by [`ViewerCc::restart_if_calm`].
    calm_restart: Option<Instant>,
}

/// A paused viewer's feedback calm (no queue, under [`CALM_LOSS`] lost) this long restarts
/// its estimate ([`ViewerCc::restart_if_calm`]), at most once per [`CALM_RESTARTS`].
const CALM: Duration = Duration::from_secs(1);
const CALM_LOSS: f64 = 0.02;
const CALM_RESTARTS: Duration = Duration::from_secs(3);

/// An estimate without feedback for this long is stale: restarted from its value, which
/// probes at once. A viewer whose video is paused and that gets no audio sends no
/// feedback, and an estimator waiting for calm feedback before it probes would wait
/// forever.
const STALE: Duration = Duration::from_secs(2);

impl ViewerCc {
    /// For a viewer that negotiated the extension as `id`.
    pub fn new(id: u8) -> Self {
        Self {
            id,
            next: 0,
            bwe: BandwidthEstimator::new(BweConfig {
                start_bps: START_BPS,
                ..BweConfig::default()
            }),
            pacer: Pacer::new(
                PacerConfig {
                    padding_size: PADDING + 20,
                    ..PacerConfig::default()
                },
                START_BPS,
            ),
            probes_sent: 0,
            last_feedback: None,
            has_feedback: false,
            calm_since: None,
            calm_restart: None,
        }
    }

    /// The viewer's feedback arrived (and moved the estimate): the pacer follows it.
    pub fn on_feedback(&mut self, now: Instant) {
        self.last_feedback = Some(now);
        self.pacer.set_estimate(self.bwe.estimate());
        self.has_feedback = true;
        let calm = self.bwe.usage() == Usage::Normal && self.bwe.loss_fraction() < CALM_LOSS;
        if !calm {
            self.calm_since = None;
        } else if self.calm_since.is_none() {
            self.calm_since = Some(now);
        }
    }

    /// Whether the viewer ever sent feedback (transport-wide or REMB): a peer that
    /// negotiated the extension and sends none keeps the starting guess for ever.
    pub fn has_feedback(&self) -> bool {
        self.has_feedback
    }

    /// Restarts a stale estimate (see [`STALE`]) from its value; true if it did.
    pub fn restart_if_stale(&mut self, now: Instant) -> bool {
        let last = *self.last_feedback.get_or_insert(now);
        if now.saturating_duration_since(last) < STALE {
            return false;
        }
        self.restart(now);
        true
    }

    /// Restarts the estimate of a viewer whose video is paused once its feedback (on its
    /// audio and probes) has been calm for [`CALM`], at most once per [`CALM_RESTARTS`],
    /// and in any case after twice that; true if it did. The congestion that paused it
    /// left a loss-based limit that grows only 8 %/s and, while it stands, holds back the
    /// estimator's probes: from ~60 kbit/s that is half a minute to resume a 500 kbit/s
    /// stream. A restart from the estimate probes at once, at three times it, then at twice
    /// each result the path carries; on a path still full that costs one short cluster.
    pub fn restart_if_calm(&mut self, now: Instant) -> bool {
        let calm = self
            .calm_since
            .is_some_and(|t| now.saturating_duration_since(t) >= CALM);
        let since = *self.calm_restart.get_or_insert(now);
        let waited = now.saturating_duration_since(since);
        if !(calm && waited >= CALM_RESTARTS || waited >= 2 * CALM_RESTARTS) {
            return false;
        }
        self.calm_restart = Some(now);
        self.restart(now);
        true
    }

    fn restart(&mut self, now: Instant) {
        let start_bps = self.bwe.estimate();
        self.bwe = BandwidthEstimator::new(BweConfig {
            start_bps,
            ..BweConfig::default()
        });
        self.last_feedback = Some(now);
        self.calm_since = None;
    }

    /// The extension id and the next transport-wide sequence number, taken.
    pub fn next_seq(&mut self) -> (u8, u16) {
        let n = self.next;
        self.next = n.wrapping_add(1);
        (self.id, n)
    }

    /// Packet `seq` left, `size` bytes protected. Media that leaves while a probe cluster
    /// is being sent is part of it (the pacer counts it towards the probe's bits, and the
    /// padding only tops it up to the probe's rate), so it is reported as such.
    pub fn sent(&mut self, seq: u16, size: usize, now: Instant) {
        match self.pacer.probing() {
            Some(cluster) => self.bwe.on_probe_sent(seq, size, cluster, now),
            None => self.bwe.on_packet_sent(seq, size, now),
        }
    }
}
