//! TwccRecorder with a fake clock, read back with our own parser (the webrtc-rs cross-check is
//! in tests/receive_webrtc_rs.rs).

use std::time::{Duration, Instant};

use super::TwccRecorder;
use crate::rtcp::{RtcpPacket, RtcpWriter, parse_compound};

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// One feedback: (base, reference µs, fb count, packets with absolute arrival µs).
type Feedback = (u16, i64, u8, Vec<(u16, Option<i64>)>);

fn poll(r: &mut TwccRecorder, now: Instant) -> Vec<(Feedback, usize)> {
    let mut out = Vec::new();
    loop {
        let mut buf = Vec::new();
        if !r
            .poll_feedback(now, 1, 2, &mut RtcpWriter::new(&mut buf))
            .unwrap()
        {
            return out;
        }
        let Some(Ok(RtcpPacket::Twcc(fb))) = parse_compound(&buf).next() else {
            panic!("one TWCC packet")
        };
        let mut at = fb.reference_time_us();
        let pkts = fb
            .packets()
            .map(|(seq, d)| {
                (
                    seq,
                    d.map(|d| {
                        at += d;
                        at
                    }),
                )
            })
            .collect();
        out.push((
            (
                fb.base_seq(),
                fb.reference_time_us(),
                fb.fb_pkt_count(),
                pkts,
            ),
            buf.len(),
        ));
    }
}

#[test]
fn feedback_reports_arrivals_floored_to_250_us() {
    let (t, mut r) = (Instant::now(), TwccRecorder::new());
    let arrivals = [
        (10u16, 0u64),
        (11, 1100),
        (13, 2600),
        (12, 2700),
        (14, 70_000),
    ];
    for (seq, at) in arrivals {
        r.record(t + us(at), seq);
    }
    assert_eq!(r.poll_timeout(), Some(t + us(100_000)));
    assert!(poll(&mut r, t + us(99_999)).is_empty(), "not due yet");
    let fbs = poll(&mut r, t + us(100_000));
    assert_eq!(fbs.len(), 1);
    let ((base, reference, count, pkts), _) = &fbs[0];
    assert_eq!((*base, *reference, *count), (10, 0, 0));
    let want = [
        (10, Some(0)),
        (11, Some(1000)),
        (12, Some(2500)),
        (13, Some(2500)),
        (14, Some(70_000)),
    ];
    assert_eq!(pkts, &want);
    assert_eq!(r.poll_timeout(), None, "all reported");
}

#[test]
fn losses_are_reported_and_trailing_ones_wait() {
    let (t, mut r) = (Instant::now(), TwccRecorder::new());
    for seq in [0u16, 1, 4] {
        r.record(t, seq);
    }
    r.record(t + us(200_000), 9);
    let ((base, reference, _, pkts), _) = poll(&mut r, t + us(200_000)).remove(0);
    assert_eq!((base, reference), (0, 0));
    let received: Vec<bool> = pkts.iter().map(|p| p.1.is_some()).collect();
    assert_eq!(
        received,
        [
            true, true, false, false, true, false, false, false, false, true
        ]
    );
    // 10 and 11 are not reported lost at the end of a feedback: only up to the last arrival.
    r.record(t + us(250_000), 12);
    let ((base, reference, count, pkts), _) = poll(&mut r, t + us(300_000)).remove(0);
    assert_eq!(
        (base, reference, count),
        (12, 192_000, 1),
        "reference 250 ms floored to 64 ms"
    );
    assert_eq!(pkts, [(12, Some(250_000))]);
}

#[test]
fn a_packet_arriving_after_its_feedback_is_reported_again() {
    let (t, mut r) = (Instant::now(), TwccRecorder::new());
    for seq in [0u16, 1, 3] {
        r.record(t, seq);
    }
    let (fb, _) = poll(&mut r, t + us(100_000)).remove(0);
    assert_eq!(fb.3[2], (2, None));
    r.record(t + us(120_000), 2);
    r.record(t + us(121_000), 4);
    let ((base, _, _, pkts), _) = poll(&mut r, t + us(200_000)).remove(0);
    assert_eq!(base, 2);
    assert_eq!(pkts, [(2, Some(120_000)), (3, Some(0)), (4, Some(121_000))]);
}

#[test]
fn sequence_wrap_and_reordering_across_it() {
    let (t, mut r) = (Instant::now(), TwccRecorder::new());
    for (i, seq) in [65533u16, 65534, 0, 65535, 1].into_iter().enumerate() {
        r.record(t + us(1000 * i as u64), seq);
    }
    let ((base, _, _, pkts), _) = poll(&mut r, t + us(100_000)).remove(0);
    assert_eq!(base, 65533);
    let seqs: Vec<u16> = pkts.iter().map(|p| p.0).collect();
    assert_eq!(seqs, [65533, 65534, 65535, 0, 1]);
    assert_eq!(pkts[2].1, Some(3000));
    assert_eq!(pkts[3].1, Some(2000));
}

#[test]
fn a_delta_too_large_for_16_bits_starts_a_new_feedback() {
    let (t, mut r) = (Instant::now(), TwccRecorder::new());
    r.record(t, 0);
    r.record(t + us(9_000_000), 1);
    let fbs = poll(&mut r, t + us(9_000_000));
    assert_eq!(fbs.len(), 2, "8.19 s is the most one delta holds");
    assert_eq!(fbs[0].0.3, [(0, Some(0))]);
    let ((base, reference, count, pkts), _) = &fbs[1];
    assert_eq!((*base, *reference, *count), (1, 8_960_000, 1));
    assert_eq!(pkts, &[(1, Some(9_000_000))]);
}

#[test]
fn long_stretches_split_into_packets_under_1100_bytes() {
    let (t, mut r) = (Instant::now(), TwccRecorder::new());
    let mut want = Vec::new();
    for i in 0..2000u64 {
        let seq = i as u16;
        if i % 3 == 1 {
            continue;
        }
        // Alternate small and large deltas (300 µs, 70 ms), some negative by reordering.
        let at = i * 35_000 + if i % 2 == 1 { 300 } else { 0 };
        r.record(t + us(at), seq);
        want.push((seq, Some(at as i64 / 250 * 250)));
    }
    let fbs = poll(&mut r, t + us(2000 * 35_000));
    assert!(fbs.len() > 1);
    let mut got = Vec::new();
    for (i, ((_, _, count, pkts), len)) in fbs.into_iter().enumerate() {
        assert!(len <= 1100, "{len} bytes");
        assert_eq!(usize::from(count), i);
        got.extend(pkts.into_iter().filter(|p| p.1.is_some()));
    }
    assert_eq!(got, want);
}

#[test]
fn duplicates_keep_the_first_arrival_and_old_numbers_are_ignored() {
    let (t, mut r) = (Instant::now(), TwccRecorder::new());
    r.record(t + us(4000), 5000);
    r.record(t + us(9000), 5000);
    r.record(t + us(9000), 5000 - 2100);
    // The first arrival is the time origin.
    let ((base, _, _, pkts), _) = poll(&mut r, t + us(104_000)).remove(0);
    assert_eq!((base, pkts), (5000, vec![(5000, Some(0))]));
}
