//! Which simulcast layer a viewer gets (issue 12), sans-IO: given the layers' bitrates and
//! the viewer's bandwidth estimate over time, pick the target layer with hysteresis — up only
//! once the estimate has cleared the next layer by a margin for a while, down as soon as the
//! current layer stops fitting, and "paused video" when not even the lowest fits. A switch
//! happens on a keyframe of the target layer, which the selector asks for (and asks again if
//! it does not come); until then the viewer keeps the layer it has.
//!
//! Layers are indexed from the lowest bitrate up; a layer with bitrate 0 is not being
//! received (the publisher stopped it, or it has not started) and is never chosen.

use std::time::{Duration, Instant};

/// The selector's tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerConfig {
    /// Up only when the estimate is at least the layer's bitrate × (1 + this).
    pub up_margin: f64,
    /// ... continuously for this long (no flapping on a noisy estimate).
    pub up_hold: Duration,
    /// Down when the estimate has been under the current layer's bitrate for this long
    /// (short: a layer that does not fit means queues and loss now).
    pub down_hold: Duration,
    /// Ask again for the target's keyframe when none came in this long.
    pub keyframe_retry: Duration,
    /// The lowest layer is kept while the estimate is at least its bitrate × this: pausing
    /// video is a certain freeze, while an estimate a little under the lowest layer is
    /// usually the estimator being cautious after a drop (it falls to 85 % of what got
    /// through, then climbs back at 8 %/s) — a 400 kbit/s link carries a 200 kbit/s layer.
    pub pause_below: f64,
    /// ... and video pauses only after the estimate was under that for this long.
    pub pause_hold: Duration,
}

impl Default for LayerConfig {
    fn default() -> Self {
        Self {
            up_margin: 0.2,
            up_hold: Duration::from_secs(2),
            down_hold: Duration::from_millis(300),
            keyframe_retry: Duration::from_secs(1),
            pause_below: 0.6,
            pause_hold: Duration::from_secs(1),
        }
    }
}

/// What the selector wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerAction {
    /// Ask the publisher for a keyframe of this layer (PLI/FIR on its SSRC): the viewer
    /// switches to it on that keyframe.
    RequestKeyframe(usize),
    /// Stop forwarding video to the viewer now: not even the lowest layer fits (its audio
    /// goes on). It resumes with a keyframe when a layer fits again.
    Pause,
}

/// Where the selector is heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This layer.
    Layer(usize),
    /// No video.
    Paused,
}

/// The layer choice for one viewer of one simulcast (or single-layer) video track.
#[derive(Debug, Clone)]
pub struct LayerSelector {
    config: LayerConfig,
    /// The layer being forwarded now (`None`: nothing yet, or paused).
    forwarding: Option<usize>,
    target: Option<Target>,
    /// Since when the estimate has cleared the layer above the target (and which layer).
    above_since: Option<(usize, Instant)>,
    /// Since when the estimate has been under the target's bitrate.
    below_since: Option<Instant>,
    /// Since when the estimate has been under `pause_below` × the lowest layer's bitrate.
    deep_since: Option<Instant>,
    /// When the target's keyframe was last asked for.
    requested_at: Option<Instant>,
}

impl LayerSelector {
    /// A selector that has chosen nothing yet.
    pub fn new(config: LayerConfig) -> Self {
        Self {
            config,
            forwarding: None,
            target: None,
            above_since: None,
            below_since: None,
            deep_since: None,
            requested_at: None,
        }
    }

    /// The layer whose packets the viewer gets now.
    #[cfg(test)]
    pub fn forwarding(&self) -> Option<usize> {
        self.forwarding
    }

    /// Where the selector is heading (it may still wait for a keyframe).
    #[cfg(test)]
    pub fn target(&self) -> Option<Target> {
        self.target
    }

    /// Re-evaluates with the viewer's estimate (bit/s) and each layer's bitrate, lowest
    /// first. Call it on every new estimate and every tick.
    pub fn update(&mut self, now: Instant, estimate: u64, layers: &[u64]) -> Option<LayerAction> {
        let est = estimate as f64;
        let fits = |i: usize| layers.get(i).is_some_and(|&b| b > 0 && b as f64 <= est);
        // Nothing fits: the lowest layer still, unless the estimate has been far under it
        // for `pause_hold`.
        let lowest = layers.iter().position(|&b| b > 0);
        let deep = lowest.is_some_and(|l| est < layers[l] as f64 * self.config.pause_below);
        let paused_due = if deep {
            let since = *self.deep_since.get_or_insert(now);
            now.saturating_duration_since(since) >= self.config.pause_hold
        } else {
            self.deep_since = None;
            false
        };
        let best_fit = (0..layers.len())
            .rev()
            .find(|&i| fits(i))
            .or(lowest.filter(|_| !paused_due));
        let target = match self.target {
            // The first choice: the best that fits now (the estimate starts as a guess, so
            // no margin is asked for yet; a wrong guess is corrected by `down_hold`).
            None => best_fit.map_or(Target::Paused, Target::Layer),
            Some(t) => self.next_target(t, now, est, layers, best_fit),
        };
        self.set_target(target, now)
    }

    fn next_target(
        &mut self,
        current: Target,
        now: Instant,
        est: f64,
        layers: &[u64],
        best_fit: Option<usize>,
    ) -> Target {
        let active = |i: usize| layers.get(i).is_some_and(|&b| b > 0);
        // A target layer that stopped coming is left at once for the best that fits.
        if let Target::Layer(t) = current
            && !active(t)
        {
            return best_fit.map_or(Target::Paused, Target::Layer);
        }
        // Down: the current target no longer fits for `down_hold` (the lowest layer "fits"
        // until video is to pause: `best_fit` is then still it).
        let fits_now = match current {
            Target::Layer(t) => layers[t] as f64 <= est || best_fit == Some(t),
            Target::Paused => true,
        };
        if fits_now {
            self.below_since = None;
        } else {
            let since = *self.below_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.config.down_hold {
                self.below_since = None;
                self.above_since = None;
                return best_fit.map_or(Target::Paused, Target::Layer);
            }
            return current;
        }
        // Up: the next active layer above clears the margin for `up_hold`.
        let from = match current {
            Target::Layer(t) => t + 1,
            Target::Paused => 0,
        };
        let Some(next) = (from..layers.len()).find(|&i| active(i)) else {
            self.above_since = None;
            return current;
        };
        if est < layers[next] as f64 * (1.0 + self.config.up_margin) {
            self.above_since = None;
            return current;
        }
        let since = match self.above_since {
            Some((layer, since)) if layer == next => since,
            _ => {
                self.above_since = Some((next, now));
                now
            }
        };
        if now.saturating_duration_since(since) >= self.config.up_hold {
            self.above_since = None;
            return Target::Layer(next);
        }
        current
    }

    fn set_target(&mut self, target: Target, now: Instant) -> Option<LayerAction> {
        let changed = self.target != Some(target);
        self.target = Some(target);
        match target {
            Target::Paused => {
                self.requested_at = None;
                self.forwarding = None;
                // Also when nothing was forwarded yet: a first choice that fits nothing must
                // stop the start (an estimate that starts under the stream's rate), and a
                // switch still waiting for its keyframe is called off.
                changed.then_some(LayerAction::Pause)
            }
            Target::Layer(layer) if self.forwarding == Some(layer) => {
                self.requested_at = None;
                None
            }
            Target::Layer(layer) => {
                let due = self.requested_at.is_none_or(|at| {
                    changed || now.saturating_duration_since(at) >= self.config.keyframe_retry
                });
                if due {
                    self.requested_at = Some(now);
                }
                due.then_some(LayerAction::RequestKeyframe(layer))
            }
        }
    }

    /// A keyframe of `layer` arrived from the publisher. Returns whether the viewer switches
    /// to `layer` here: forward this keyframe and that layer's packets from now on (with
    /// sequence numbers, timestamps and picture ids rewritten to continue the viewer's).
    pub fn on_keyframe(&mut self, layer: usize) -> bool {
        if self.target != Some(Target::Layer(layer)) || self.forwarding == Some(layer) {
            return false;
        }
        self.forwarding = Some(layer);
        self.requested_at = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 150 k, 500 k, 1.5 M: a three-layer Chromium publish.
    const LAYERS: [u64; 3] = [150_000, 500_000, 1_500_000];

    struct Run {
        sel: LayerSelector,
        t0: Instant,
        now_ms: u64,
        actions: Vec<(u64, LayerAction)>,
        switches: Vec<(u64, Option<usize>)>,
    }

    impl Run {
        fn new() -> Self {
            Self {
                sel: LayerSelector::new(LayerConfig::default()),
                t0: Instant::now(),
                now_ms: 0,
                actions: Vec::new(),
                switches: Vec::new(),
            }
        }

        /// Runs to `until_ms` in 100 ms ticks with `estimate(ms)`; every layer sends a
        /// keyframe `kf_delay_ms` after one is asked for (`None`: never).
        fn run(
            &mut self,
            until_ms: u64,
            layers: &[u64],
            kf_delay_ms: Option<u64>,
            estimate: impl Fn(u64) -> u64,
        ) {
            let mut pending: Vec<(u64, usize)> = Vec::new();
            while self.now_ms < until_ms {
                self.now_ms += 100;
                let now = self.t0 + Duration::from_millis(self.now_ms);
                for &(at, layer) in &pending {
                    if at <= self.now_ms && self.sel.on_keyframe(layer) {
                        self.switches.push((self.now_ms, Some(layer)));
                    }
                }
                pending.retain(|(at, _)| *at > self.now_ms);
                if let Some(a) = self.sel.update(now, estimate(self.now_ms), layers) {
                    self.actions.push((self.now_ms, a));
                    match a {
                        LayerAction::RequestKeyframe(l) => {
                            if let Some(d) = kf_delay_ms {
                                pending.push((self.now_ms + d, l));
                            }
                        }
                        LayerAction::Pause => self.switches.push((self.now_ms, None)),
                    }
                }
            }
        }
    }

    #[test]
    fn starts_at_the_best_fit_and_switches_only_on_its_keyframe() {
        let mut r = Run::new();
        r.run(100, &LAYERS, None, |_| 800_000);
        assert_eq!(r.actions, [(100, LayerAction::RequestKeyframe(1))]);
        assert_eq!(r.sel.forwarding(), None, "nothing before the keyframe");
        assert!(
            !r.sel.on_keyframe(2),
            "a keyframe of another layer is not a switch"
        );
        assert!(r.sel.on_keyframe(1));
        assert_eq!(r.sel.forwarding(), Some(1));
        assert!(!r.sel.on_keyframe(1), "already there");
    }

    #[test]
    fn up_only_after_clearing_the_next_layer_by_the_margin_for_the_hold_time() {
        let mut r = Run::new();
        r.run(1_000, &LAYERS, Some(50), |_| 800_000);
        assert_eq!(r.sel.forwarding(), Some(1));
        // 1.7 M clears 1.5 M but not by 20 %: stays.
        r.run(10_000, &LAYERS, Some(50), |_| 1_700_000);
        assert_eq!(r.sel.forwarding(), Some(1));
        // 1.9 M for 1.5 s then a dip: no switch; the hold starts over.
        r.run(11_500, &LAYERS, Some(50), |_| 1_900_000);
        r.run(11_600, &LAYERS, Some(50), |_| 1_000_000);
        r.run(13_000, &LAYERS, Some(50), |_| 1_900_000);
        assert_eq!(r.sel.forwarding(), Some(1));
        r.run(14_000, &LAYERS, Some(50), |_| 1_900_000);
        assert_eq!(r.sel.forwarding(), Some(2));
        // Asked at 2 s of clearing (from 11.7 s: at 13.7 s), switched on the keyframe.
        assert_eq!(
            r.actions.last(),
            Some(&(13_700, LayerAction::RequestKeyframe(2)))
        );
        assert_eq!(r.switches.last(), Some(&(13_800, Some(2))));
    }

    #[test]
    fn down_within_the_short_hold_to_the_best_that_fits() {
        let mut r = Run::new();
        r.run(1_000, &LAYERS, Some(50), |_| 3_000_000);
        assert_eq!(r.sel.forwarding(), Some(2));
        // The estimate falls to 400 k at 1.0 s: layer 0 fits, 1 and 2 do not.
        r.run(3_000, &LAYERS, Some(50), |_| 400_000);
        assert_eq!(r.sel.forwarding(), Some(0));
        let (asked, _) = r
            .actions
            .iter()
            .find(|(_, a)| *a == LayerAction::RequestKeyframe(0))
            .unwrap();
        assert!(*asked <= 1_400, "asked at {asked} ms");
    }

    #[test]
    fn no_flapping_around_a_layer_boundary() {
        let mut r = Run::new();
        // ±12 % around 1.6 M every 300 ms, for a minute: it may take layer 1 or 2 once, but
        // never switch back and forth.
        r.run(60_000, &LAYERS, Some(50), |ms| {
            if (ms / 300) % 2 == 0 {
                1_800_000
            } else {
                1_420_000
            }
        });
        assert!(r.switches.len() <= 2, "{:?}", r.switches);
    }

    #[test]
    fn pauses_when_nothing_fits_and_resumes_with_a_keyframe() {
        let mut r = Run::new();
        r.run(1_000, &LAYERS, Some(50), |_| 600_000);
        assert_eq!(r.sel.forwarding(), Some(1));
        // 80 k: under 60 % of the lowest layer.
        r.run(3_000, &LAYERS, Some(50), |_| 80_000);
        assert_eq!(r.sel.target(), Some(Target::Paused));
        assert_eq!(r.sel.forwarding(), None);
        let pauses: Vec<_> = r
            .actions
            .iter()
            .filter(|(_, a)| *a == LayerAction::Pause)
            .collect();
        assert_eq!(pauses.len(), 1, "{:?}", r.actions);
        // Down to the lowest layer within `down_hold`, paused `pause_hold` after that.
        assert!(pauses[0].0 <= 2_500, "{:?}", r.actions);
        // 170 k: above the lowest, under its margin: still paused.
        r.run(10_000, &LAYERS, Some(50), |_| 170_000);
        assert_eq!(r.sel.forwarding(), None);
        r.run(13_000, &LAYERS, Some(50), |_| 200_000);
        assert_eq!(r.sel.forwarding(), Some(0));
        // A single-layer stream pauses and resumes the same way.
        let mut r = Run::new();
        r.run(1_000, &[800_000], Some(50), |_| 1_000_000);
        r.run(3_000, &[800_000], Some(50), |_| 100_000);
        assert_eq!(r.sel.forwarding(), None);
        r.run(6_000, &[800_000], Some(50), |_| 1_000_000);
        assert_eq!(r.sel.forwarding(), Some(0));
    }

    /// What a 400 kbit/s Chromium viewer showed: after the drop from the top layer its
    /// estimate dips under the lowest layer (plus audio) for seconds. The lowest layer is
    /// kept: pausing would freeze what the link carries. A dip deep under it pauses only
    /// once it lasted `pause_hold`.
    #[test]
    fn an_estimate_a_little_under_the_lowest_layer_keeps_it() {
        let mut r = Run::new();
        r.run(1_000, &LAYERS, Some(50), |_| 3_000_000);
        assert_eq!(r.sel.forwarding(), Some(2));
        r.run(11_000, &LAYERS, Some(50), |_| 110_000);
        assert_eq!(r.sel.forwarding(), Some(0));
        // A deep dip shorter than the hold.
        r.run(11_800, &LAYERS, Some(50), |_| 50_000);
        r.run(15_000, &LAYERS, Some(50), |_| 110_000);
        assert_eq!(r.sel.forwarding(), Some(0));
        assert!(
            !r.actions.iter().any(|(_, a)| *a == LayerAction::Pause),
            "{:?}",
            r.actions
        );
    }

    #[test]
    fn a_single_layer_is_kept_while_the_estimate_grazes_it_and_paused_deep_under_it() {
        let mut r = Run::new();
        r.run(1_000, &[800_000], Some(50), |_| 1_000_000);
        assert_eq!(r.sel.forwarding(), Some(0));
        r.run(6_000, &[800_000], Some(50), |_| 700_000);
        assert_eq!(r.sel.forwarding(), Some(0), "700 k grazes 800 k");
        r.run(6_900, &[800_000], Some(50), |_| 400_000);
        assert_eq!(r.sel.forwarding(), Some(0), "under 480 k for less than 1 s");
        r.run(7_500, &[800_000], Some(50), |_| 400_000);
        assert_eq!(r.sel.forwarding(), None, "under 480 k for 1 s: paused");
    }

    #[test]
    fn a_first_choice_deep_under_the_layer_pauses_and_a_pending_resume_is_called_off() {
        // The estimate starts far under the only layer: paused once that lasted.
        let mut r = Run::new();
        r.run(1_500, &[3_000_000], None, |_| 1_000_000);
        assert_eq!(r.sel.target(), Some(Target::Paused));
        assert_eq!(r.actions.last().map(|a| a.1), Some(LayerAction::Pause));
        // It rises: a keyframe is asked for, which does not come before the estimate falls
        // again; the resume is called off (a late keyframe is no switch).
        r.run(4_000, &[3_000_000], None, |_| 4_000_000);
        assert_eq!(r.sel.target(), Some(Target::Layer(0)));
        r.run(6_000, &[3_000_000], None, |_| 1_000_000);
        assert_eq!(r.sel.target(), Some(Target::Paused));
        assert_eq!(r.actions.last().map(|a| a.1), Some(LayerAction::Pause));
        assert!(!r.sel.on_keyframe(0));
    }

    #[test]
    fn keyframes_are_asked_again_until_one_comes() {
        let mut r = Run::new();
        r.run(3_500, &LAYERS, None, |_| 3_000_000);
        let asks: Vec<u64> = r.actions.iter().map(|(t, _)| *t).collect();
        assert_eq!(asks, [100, 1_100, 2_100, 3_100]);
        assert!(r.sel.on_keyframe(2));
        r.run(5_000, &LAYERS, None, |_| 3_000_000);
        assert_eq!(r.actions.len(), 4, "no more asks once switched");
    }

    #[test]
    fn layers_not_received_are_never_chosen_and_a_stopped_one_is_left_at_once() {
        let mut r = Run::new();
        r.run(1_000, &[150_000, 0, 1_500_000], Some(50), |_| 1_000_000);
        assert_eq!(r.sel.forwarding(), Some(0), "layer 1 is not being received");
        r.run(4_000, &[150_000, 0, 1_500_000], Some(50), |_| 2_000_000);
        assert_eq!(r.sel.forwarding(), Some(2), "up skips the missing layer");
        r.run(4_200, &[150_000, 500_000, 0], Some(50), |_| 2_000_000);
        assert_eq!(
            r.sel.forwarding(),
            Some(1),
            "the top stopped: best remaining, no hold"
        );
    }
}
