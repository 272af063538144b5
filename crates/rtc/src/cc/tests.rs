//! The estimator on simulated paths (see `sim.rs`): explicit time, seeded randomness. Each
//! test asserts how long the estimate takes to settle after a change and where it settles.

use std::time::{Duration, Instant};

use super::sim::{BurstyLoss, Sim};
use super::{BandwidthEstimator, BweConfig, Usage};
use crate::rtcp::{RtcpPacket, RtcpWriter, TwccHeader, parse_compound};

const K: u64 = 1000;

/// Fails with the trace, so a regression shows what the estimate did.
fn check(s: &Sim, ok: bool, what: &str) {
    assert!(ok, "{what}\ntrace: {}", s.dump());
}

#[test]
fn climbs_to_the_link_then_follows_a_step_drop_within_two_seconds() {
    let mut s = Sim::new(2.5e6, 300 * K);
    s.run_until(30_000);
    let before = s.mean(25_000, 30_000);
    check(
        &s,
        (1_900 * K..=2_700 * K).contains(&before),
        "near 2.5 Mbit/s before the drop",
    );
    s.capacity = 0.6e6;
    s.run_until(60_000);
    let settled = s.settled_at(30_000, 400 * K, 700 * K);
    check(
        &s,
        settled.is_some_and(|t| t <= 32_000),
        "within [400k, 700k] by 2 s after the drop",
    );
    let after = s.mean(35_000, 60_000);
    check(
        &s,
        (480 * K..=650 * K).contains(&after),
        "mean near 600k after the drop",
    );
    assert_eq!(
        s.bwe.loss_fraction(),
        0.0,
        "the delay trend caught it before the queue overflowed"
    );
}

#[test]
fn probes_find_the_link_at_the_start_and_after_a_step_rise() {
    let mut s = Sim::new(2.5e6, 300 * K);
    s.run_until(5_000);
    // The start probe (3 × 300k), then probes at twice each result that kept up.
    let settled = s.settled_at(0, 1_400 * K, 2_800 * K);
    check(
        &s,
        settled.is_some_and(|t| t <= 2_000),
        "above 1.4M within 2 s of the start",
    );

    let mut s = Sim::new(0.6e6, 500 * K);
    s.run_until(30_000);
    check(&s, s.bwe.estimate() < 700 * K, "held under the 600k link");
    let before = s.probes;
    s.capacity = 2.5e6;
    s.run_until(60_000);
    // Issue 12: a viewer whose link opens reaches the top layer within 10 s.
    let settled = s.settled_at(30_000, 1_800 * K, 2_800 * K);
    check(
        &s,
        settled.is_some_and(|t| t <= 40_000),
        "above 1.8M within 10 s of the rise",
    );
    let after = s.mean(45_000, 60_000);
    check(
        &s,
        (2_000 * K..=2_700 * K).contains(&after),
        "mean near 2.5M after the rise",
    );
    check(&s, s.probes > before, "it probed");
}

#[test]
fn without_probes_a_step_rise_is_followed_at_8_percent_per_second() {
    let mut s = Sim::new(0.6e6, 500 * K);
    s.probing = false;
    s.run_until(30_000);
    s.capacity = 2.5e6;
    s.run_until(70_000);
    // 600k → 1.9M at 8 %/s is 15 s; allow 22 s, and not much faster either.
    let settled = s.settled_at(30_000, 1_900 * K, 2_800 * K);
    check(
        &s,
        settled.is_some_and(|t| (42_000..=52_000).contains(&t)),
        "above 1.9M 12-22 s after the rise",
    );
    let after = s.mean(55_000, 70_000);
    check(
        &s,
        (2_000 * K..=2_700 * K).contains(&after),
        "mean near 2.5M after the rise",
    );
}

#[test]
fn light_bursty_loss_does_not_lower_the_estimate() {
    let mut s = Sim::new(2e6, 1_500 * K);
    // Bursts of ~10 packets, 50 % lost in them, entered every ~400 packets: ~1.5 % loss.
    s.loss = Some(BurstyLoss {
        enter_bad: 0.0025,
        leave_bad: 0.1,
        bad_loss: 0.5,
    });
    s.run_until(40_000);
    let mean = s.mean(10_000, 40_000);
    check(&s, mean >= 1_500 * K, "random loss under 2 % costs nothing");
}

#[test]
fn heavy_bursty_loss_lowers_the_estimate_and_it_recovers() {
    let mut s = Sim::new(2e6, 1_500 * K);
    s.run_until(20_000);
    let before = s.bwe.estimate();
    check(&s, before >= 1_700 * K, "at the link before the loss");
    // ~13 % loss in bursts: a radio link, no queue, so no delay trend to see.
    s.loss = Some(BurstyLoss {
        enter_bad: 0.01,
        leave_bad: 0.05,
        bad_loss: 0.8,
    });
    s.run_until(40_000);
    // Bursty: not every 200 ms window is over 10 %, each one over takes 5-10 % off.
    let settled = s.settled_at(20_000, 0, 1_400 * K);
    check(
        &s,
        settled.is_some_and(|t| t <= 30_000),
        "under 1.4M within 10 s of the loss",
    );
    check(
        &s,
        s.mean(35_000, 40_000) < 900 * K,
        "and well under the link by 15 s",
    );
    s.loss = None;
    let low = s.bwe.estimate();
    s.run_until(80_000);
    // The loss limit grows 8 %/s once loss is under 2 %: from `low` to 1.5M takes
    // ln(1.5M / low) / ln(1.08) s; allow 5 s more.
    let climb = ((1.5e6 / low as f64).ln() / 1.08f64.ln() * 1000.0) as u64 + 5_000;
    let settled = s.settled_at(40_000, 1_500 * K, 2_700 * K);
    let ok = settled.is_some_and(|t| t <= 40_000 + climb);
    check(
        &s,
        ok,
        &format!("back above 1.5M within {climb} ms of the loss ending"),
    );
}

#[test]
fn reordered_feedback_changes_nothing_that_matters() {
    let mut s = Sim::new(2.5e6, 300 * K);
    s.reorder_feedback = true;
    s.run_until(30_000);
    check(
        &s,
        s.mean(25_000, 30_000) >= 1_900 * K,
        "climbs despite reordering",
    );
    s.capacity = 0.6e6;
    s.run_until(50_000);
    let settled = s.settled_at(30_000, 400 * K, 700 * K);
    check(&s, settled.is_some_and(|t| t <= 32_500), "follows the drop");
    check(
        &s,
        s.bwe.loss_fraction() < 0.02,
        "a late report is not a loss",
    );
}

#[test]
fn remb_alone_is_the_estimate_and_caps_transport_cc() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default());
    assert_eq!(bwe.estimate(), 1_000_000);
    bwe.on_remb(400_000, t0);
    assert_eq!(bwe.estimate(), 400_000, "a REMB-only peer");
    bwe.on_remb(3_000_000, t0);
    assert_eq!(bwe.estimate(), 3_000_000);
    bwe.on_remb(5, t0);
    assert_eq!(bwe.estimate(), 30_000, "within the configured bounds");

    let mut s = Sim::new(2.5e6, 300 * K);
    s.run_until(25_000);
    s.bwe.on_remb(800_000, Instant::now());
    s.run_until(30_000);
    assert!(
        s.bwe.estimate() <= 800_000,
        "REMB caps the delay-based rate"
    );
}

#[test]
fn twcc_packets_feed_the_same_as_parsed_feedback() {
    // 40 packets 5 ms apart; feedback every 10: arrivals spaced like the sends, one lost.
    let t0 = Instant::now();
    let mut a = BandwidthEstimator::new(BweConfig::default());
    let mut b = a.clone();
    let mut buf = Vec::new();
    for round in 0..30u16 {
        let base = round * 10;
        for i in 0..10 {
            let at = t0 + Duration::from_millis(u64::from(base + i) * 5);
            a.on_packet_sent(base + i, 1200, at);
            b.on_packet_sent(base + i, 1200, at);
        }
        let now = t0 + Duration::from_millis(u64::from(base) * 5 + 80);
        let reference = i32::from(round) * 50 / 64; // 50 ms per round, 64 ms units
        let first_arrival = i64::from(round) * 50_000 - i64::from(reference) * 64_000;
        let deltas: Vec<Option<i64>> = (0..10)
            .map(|i| match i {
                3 => None,
                0 => Some(first_arrival),
                4 => Some(10_000),
                _ => Some(5_000),
            })
            .collect();
        buf.clear();
        let header = TwccHeader {
            base_seq: base,
            reference_time: reference,
            fb_pkt_count: round as u8,
            ..TwccHeader::default()
        };
        RtcpWriter::new(&mut buf).twcc(&header, &deltas).unwrap();
        let Some(Ok(RtcpPacket::Twcc(fb))) = parse_compound(&buf).next() else {
            panic!("not TWCC");
        };
        a.on_twcc(&fb, now);
        let mut at = i64::from(reference) * 64_000;
        let parsed = (0..10).map(|i| {
            let d = deltas[usize::from(i)].map(|d| {
                at += d;
                at
            });
            (base + i, d)
        });
        b.on_feedback(parsed.collect::<Vec<_>>(), now);
    }
    assert_eq!(a.estimate(), b.estimate());
    assert_eq!(a.acked_bps(), b.acked_bps());
    assert!(a.acked_bps().is_some());
    assert_eq!(a.usage(), Usage::Normal);
    assert!(
        (a.loss_fraction() - 0.1).abs() < 1e-9,
        "{}",
        a.loss_fraction()
    );
}
