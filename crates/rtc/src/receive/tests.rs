//! ReceiveStream with a fake clock: reordering, loss, duplicates, wrap, reset, NACK timing and
//! limits, jitter (RFC 3550 §A.8 by hand), loss counts (§A.3), LSR/DLSR and RTT (§6.4.1).

use std::time::{Duration, Instant};

use super::*;
use crate::rtcp::{ReportBlock, SenderInfo};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn stream() -> ReceiveStream {
    ReceiveStream::new(ReceiveConfig::new(0x1234, 90_000))
}

/// A packet whose bytes name its sequence number.
fn push(s: &mut ReceiveStream, now: Instant, seq: u16) -> Pushed {
    s.push(now, seq, u32::from(seq) * 3000, &seq.to_be_bytes())
}

fn drain(s: &mut ReceiveStream, now: Instant) -> Vec<u16> {
    let mut out = Vec::new();
    while let Some(b) = s.poll_packet(now) {
        out.push(u16::from_be_bytes([b[0], b[1]]));
    }
    out
}

fn nacks(s: &mut ReceiveStream, now: Instant) -> Vec<u16> {
    let mut out = Vec::new();
    s.poll_nacks(now, &mut out);
    out
}

/// The give-up wait at the default 100 ms RTT and 3 tries: 5 ms + 3 × 125 ms.
const WAIT: u64 = 380;

#[test]
fn in_order_packets_come_out_at_once() {
    let (t, mut s) = (Instant::now(), stream());
    for seq in 10..20 {
        assert_eq!(push(&mut s, t, seq), Pushed::Accepted);
        assert_eq!(drain(&mut s, t), [seq]);
    }
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.counters().accepted, 10);
}

#[test]
fn reordered_packets_come_out_in_order() {
    let (t, mut s) = (Instant::now(), stream());
    push(&mut s, t, 1);
    push(&mut s, t, 4);
    push(&mut s, t, 3);
    assert_eq!(drain(&mut s, t), [1]);
    assert_eq!(
        s.poll_timeout(),
        Some(t + ms(5)),
        "first NACK of 2 is the next deadline"
    );
    push(&mut s, t + ms(2), 2);
    assert_eq!(drain(&mut s, t + ms(2)), [2, 3, 4]);
    assert_eq!(s.counters().lost, 0);
    assert!(!s.poll_keyframe_request(t + ms(2)));
}

#[test]
fn a_gap_is_given_up_after_the_wait_and_asks_for_a_keyframe() {
    let (t, mut s) = (Instant::now(), stream());
    push(&mut s, t, 1);
    push(&mut s, t, 3);
    push(&mut s, t + ms(10), 4);
    assert_eq!(drain(&mut s, t + ms(WAIT - 1)), [1]);
    assert!(!s.poll_keyframe_request(t + ms(WAIT - 1)));
    assert_eq!(drain(&mut s, t + ms(WAIT)), [3, 4]);
    assert_eq!(s.counters().lost, 1);
    assert!(s.poll_keyframe_request(t + ms(WAIT)));
    assert!(
        !s.poll_keyframe_request(t + ms(WAIT)),
        "one request per loss"
    );
    // A second loss given up within 300 ms waits for the rate limit; poll_timeout says when.
    push(&mut s, t + ms(100), 6);
    assert_eq!(drain(&mut s, t + ms(WAIT + 100)), [6]);
    assert!(!s.poll_keyframe_request(t + ms(WAIT + 100)));
    assert_eq!(s.poll_timeout(), Some(t + ms(WAIT + 300)));
    assert!(s.poll_keyframe_request(t + ms(WAIT + 300)));
    // The late packet is dropped but counted received: the report's loss goes down.
    assert_eq!(push(&mut s, t + ms(WAIT + 400), 2), Pushed::Late);
    let rb = s.report_block(t + ms(WAIT + 400));
    assert_eq!(
        (rb.cumulative_lost, rb.highest_seq),
        (1, 6),
        "5 is still lost"
    );
}

#[test]
fn without_keyframe_requests_a_loss_asks_for_none() {
    let t = Instant::now();
    let mut s = ReceiveStream::new(ReceiveConfig {
        keyframe_requests: false,
        ..ReceiveConfig::new(7, 48_000)
    });
    push(&mut s, t, 1);
    push(&mut s, t, 3);
    assert_eq!(drain(&mut s, t + ms(WAIT)), [1, 3]);
    assert_eq!(s.counters().lost, 1);
    assert!(!s.poll_keyframe_request(t + ms(WAIT)));
    assert_eq!(s.poll_timeout(), None, "nothing to wake up for");
    // A restart asks for none either.
    push(&mut s, t + ms(WAIT), 30_000);
    assert_eq!(push(&mut s, t + ms(WAIT), 30_001), Pushed::Reset);
    assert!(!s.poll_keyframe_request(t + ms(WAIT * 3)));
}

#[test]
fn without_nack_a_gap_waits_only_for_reordering() {
    let t = Instant::now();
    let mut s = ReceiveStream::new(ReceiveConfig {
        nack: false,
        ..ReceiveConfig::new(7, 48_000)
    });
    push(&mut s, t, 1);
    push(&mut s, t, 3);
    assert!(nacks(&mut s, t + ms(50)).is_empty());
    assert_eq!(drain(&mut s, t + ms(19)), [1]);
    assert_eq!(drain(&mut s, t + ms(20)), [3]);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let (t, mut s) = (Instant::now(), stream());
    push(&mut s, t, 1);
    push(&mut s, t, 3);
    assert_eq!(push(&mut s, t, 3), Pushed::Duplicate, "held");
    assert_eq!(push(&mut s, t, 1), Pushed::Duplicate, "released");
    push(&mut s, t, 2);
    assert_eq!(drain(&mut s, t), [1, 2, 3]);
    assert_eq!(push(&mut s, t, 2), Pushed::Duplicate);
    assert_eq!(s.counters().duplicates, 3);
    let rb = s.report_block(t);
    assert_eq!(rb.cumulative_lost, 0, "duplicates do not hide losses");
}

#[test]
fn sequence_wraps_at_65535() {
    let (t, mut s) = (Instant::now(), stream());
    for seq in [65533, 65534, 0, 65535, 2, 1] {
        push(&mut s, t, seq);
    }
    assert_eq!(drain(&mut s, t), [65533, 65534, 65535, 0, 1, 2]);
    let rb = s.report_block(t);
    assert_eq!(
        rb.highest_seq, 0x0001_0002,
        "one cycle, seq 2 (RFC 3550 §6.4.1)"
    );
    assert_eq!((rb.cumulative_lost, rb.fraction_lost), (0, 0));
}

#[test]
fn a_large_jump_confirmed_by_the_next_packet_resets() {
    let (t, mut s) = (Instant::now(), stream());
    push(&mut s, t, 100);
    push(&mut s, t, 102);
    assert_eq!(drain(&mut s, t), [100]);
    // One far packet alone is not a restart (RFC 3550 §A.1 probation).
    assert_eq!(push(&mut s, t, 20_000), Pushed::Stray);
    assert_eq!(push(&mut s, t, 103), Pushed::Accepted);
    assert_eq!(push(&mut s, t, 20_000), Pushed::Stray);
    assert_eq!(push(&mut s, t, 20_001), Pushed::Reset);
    assert_eq!(drain(&mut s, t), [20_001]);
    assert_eq!(push(&mut s, t, 20_002), Pushed::Accepted);
    assert_eq!(drain(&mut s, t), [20_002]);
    let c = *s.counters();
    assert_eq!(
        (c.resets, c.strays, c.discarded),
        (1, 2, 2),
        "102 and 103 were held"
    );
    assert!(s.poll_keyframe_request(t));
    let rb = s.report_block(t);
    assert_eq!(
        (rb.highest_seq, rb.cumulative_lost),
        (20_002, 0),
        "counting restarted"
    );
}

#[test]
fn a_restart_just_behind_the_window_needs_a_long_sequential_run() {
    let (t, mut s) = (Instant::now(), stream());
    push(&mut s, t, 30_000);
    drain(&mut s, t);
    // Late retransmissions just beyond the window: a burst of them is not a restart.
    for seq in 29_000..29_063 {
        assert_eq!(push(&mut s, t, seq), Pushed::Stray);
    }
    assert_eq!(push(&mut s, t, 30_001), Pushed::Accepted);
    assert_eq!(drain(&mut s, t), [30_001]);
    for seq in 28_000..28_063 {
        assert_eq!(push(&mut s, t, seq), Pushed::Stray);
    }
    assert_eq!(push(&mut s, t, 28_063), Pushed::Reset);
    assert_eq!(drain(&mut s, t), [28_063]);
    // Far away (here 27 063 behind, or as far ahead) two sequential packets are enough.
    assert_eq!(push(&mut s, t, 1000), Pushed::Stray);
    assert_eq!(push(&mut s, t, 1001), Pushed::Reset);
    assert_eq!(drain(&mut s, t), [1001]);
    assert_eq!(s.counters().resets, 2);
}

#[test]
fn a_full_window_gives_up_its_oldest_gap() {
    let t = Instant::now();
    let mut s = ReceiveStream::new(ReceiveConfig {
        capacity: 16,
        ..ReceiveConfig::new(1, 90_000)
    });
    push(&mut s, t, 0);
    assert_eq!(drain(&mut s, t), [0]);
    for seq in 2..=16 {
        push(&mut s, t, seq);
    }
    assert!(drain(&mut s, t).is_empty(), "waiting for 1");
    push(&mut s, t, 17);
    assert_eq!(drain(&mut s, t), (2..=17).collect::<Vec<_>>());
    assert_eq!((s.counters().lost, s.counters().discarded), (1, 0));
    // A caller that does not poll loses what falls out of the window.
    for seq in 18..=40 {
        push(&mut s, t, seq);
    }
    assert_eq!(s.counters().discarded, 7);
    assert_eq!(drain(&mut s, t), (25..=40).collect::<Vec<_>>());
    // A jump past the whole window with nothing held.
    push(&mut s, t, 100);
    assert_eq!(drain(&mut s, t + ms(WAIT)), [100]);
    assert_eq!(s.counters().lost, 1 + 59);
}

#[test]
fn nacks_are_retried_every_rtt_and_a_quarter_up_to_the_limit() {
    let (t, mut s) = (Instant::now(), stream());
    push(&mut s, t, 1);
    push(&mut s, t, 5);
    drain(&mut s, t);
    assert!(nacks(&mut s, t + ms(4)).is_empty(), "grace for reordering");
    assert_eq!(nacks(&mut s, t + ms(5)), [2, 3, 4]);
    assert!(nacks(&mut s, t + ms(6)).is_empty());
    assert_eq!(s.poll_timeout(), Some(t + ms(130)));
    push(&mut s, t + ms(60), 3);
    assert_eq!(nacks(&mut s, t + ms(130)), [2, 4]);
    assert_eq!(nacks(&mut s, t + ms(255)), [2, 4]);
    assert!(nacks(&mut s, t + ms(380)).is_empty(), "3 tries at most");
    assert_eq!(drain(&mut s, t + ms(380)), [3, 5]);
    assert_eq!(s.counters().nacked, 7);
    // The retransmission of 3, NACKed once, came after 55 ms: the RTT moves towards it.
    assert_eq!(s.rtt(), (ms(100) * 7 + ms(55)) / 8);
    // A packet NACKed once that comes 3 ms later may just have been reordered: no sample.
    push(&mut s, t + ms(400), 7);
    nacks(&mut s, t + ms(405));
    push(&mut s, t + ms(408), 6);
    assert_eq!(s.rtt(), (ms(100) * 7 + ms(55)) / 8);
}

#[test]
fn set_rtt_spaces_retries_and_bounds_the_wait() {
    let (t, mut s) = (Instant::now(), stream());
    s.set_rtt(ms(40));
    push(&mut s, t, 1);
    push(&mut s, t, 3);
    assert_eq!(nacks(&mut s, t + ms(5)), [2]);
    assert!(nacks(&mut s, t + ms(54)).is_empty());
    assert_eq!(nacks(&mut s, t + ms(55)), [2]);
    // 5 ms + 3 × 50 ms.
    assert_eq!(drain(&mut s, t + ms(154)), [1]);
    assert_eq!(drain(&mut s, t + ms(155)), [3]);
}

#[test]
fn nacks_are_bounded_per_interval() {
    let (t, mut s) = (Instant::now(), stream());
    push(&mut s, t, 0);
    push(&mut s, t, 301);
    let first = nacks(&mut s, t + ms(5));
    assert_eq!(first, (1..=128).collect::<Vec<_>>());
    assert!(
        nacks(&mut s, t + ms(50)).is_empty(),
        "budget spent for this 100 ms"
    );
    let second = nacks(&mut s, t + ms(105));
    assert_eq!(second, (129..=256).collect::<Vec<_>>());
}

#[test]
fn reordering_makes_no_nacks() {
    let (t, mut s) = (Instant::now(), stream());
    let mut sent = 0;
    push(&mut s, t, 0);
    // Pairs swapped, each fixed within 1 ms: polled every ms, nothing is NACKed.
    for i in 0..500u16 {
        let now = t + ms(u64::from(i));
        push(&mut s, now, 2 * i + 2);
        sent += nacks(&mut s, now).len();
        push(&mut s, now + ms(1) / 2, 2 * i + 1);
        drain(&mut s, now);
    }
    assert_eq!(sent, 0);
    assert_eq!((s.counters().accepted, s.counters().lost), (1001, 0));
}

#[test]
fn jitter_follows_rfc3550_a8_by_hand() {
    // 8 kHz: 20 ms packets (160 units) arriving at 0, 20, 45 and 60 ms.
    // Transit 0, 0, 40, 0; |D| = 0, 40, 40. Float §A.8: J = 0, 2.5, 4.84375.
    // Integer §A.8 (J×16): 0, 40, 77 → reported 77 >> 4 = 4.
    let t = Instant::now();
    let mut s = ReceiveStream::new(ReceiveConfig::new(9, 8000));
    for (i, at) in [0u64, 20, 45, 60].into_iter().enumerate() {
        s.push(t + ms(at), i as u16, 1000 + 160 * i as u32, &[0; 12]);
    }
    assert_eq!(s.jitter(), 4);
    let mut j = 0f64;
    let mut s = ReceiveStream::new(ReceiveConfig::new(9, 90_000));
    let mut last_transit = None;
    for i in 0..200u32 {
        // 30 fps with arrival noise of up to ±7 ms, a retransmission-free stream.
        let noise = i64::from((i * 7919) % 15) - 7;
        let at_us = (i64::from(i) * 33_333 + noise * 1000 + 10_000) as u64;
        let ts = 5000u32.wrapping_add(i * 3000);
        s.push(t + Duration::from_micros(at_us), i as u16, ts, &[0; 12]);
        let arrival = (at_us as f64 - 10_000.0) * 90_000.0 / 1e6;
        let transit = arrival.floor() - f64::from(ts);
        if let Some(l) = last_transit {
            let d: f64 = transit - l;
            j += (d.abs() - j) / 16.0;
        }
        last_transit = Some(transit);
    }
    assert!(
        (f64::from(s.jitter()) - j).abs() <= 2.0,
        "{} vs {j}",
        s.jitter()
    );
}

#[test]
fn fraction_and_cumulative_loss_per_interval() {
    let (t, mut s) = (Instant::now(), stream());
    for seq in (65530u16..=65535)
        .chain(0..4)
        .filter(|&q| q != 65533 && q != 1)
    {
        push(&mut s, t, seq);
    }
    drain(&mut s, t + ms(WAIT));
    let rb = s.report_block(t + ms(WAIT));
    // Expected 10, received 8: 2/10 × 256 = 51.
    assert_eq!((rb.fraction_lost, rb.cumulative_lost), (51, 2));
    assert_eq!(rb.highest_seq, 0x0001_0003);
    for seq in 4..14 {
        push(&mut s, t + ms(WAIT), seq);
    }
    let rb = s.report_block(t + ms(WAIT));
    assert_eq!((rb.fraction_lost, rb.cumulative_lost), (0, 2));
}

#[test]
fn lsr_and_dlsr_come_from_the_last_sender_report() {
    let (t, mut s) = (Instant::now(), stream());
    push(&mut s, t, 1);
    assert_eq!(
        (
            s.report_block(t).last_sr,
            s.report_block(t).delay_since_last_sr
        ),
        (0, 0)
    );
    let info = SenderInfo {
        ntp_time: 0x0001_2345_6789_abcd,
        ..SenderInfo::default()
    };
    s.on_sender_report(t, &info);
    let rb = s.report_block(t + ms(1500));
    assert_eq!(rb.last_sr, 0x2345_6789, "middle 32 bits (RFC 3550 §6.4.1)");
    assert_eq!(rb.delay_since_last_sr, 98_304, "1.5 s in 1/65536 s");
    assert_eq!(rb.ssrc, 0x1234);
}

#[test]
fn rtt_from_a_report_block_matches_rfc3550_figure_2() {
    // RFC 3550 §6.4.1, Figure 2: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000,
    // round-trip delay 0x0006:2000 = 6.125 s.
    let block = ReportBlock {
        last_sr: 0xb705_2000,
        delay_since_last_sr: 0x0005_4000,
        ..ReportBlock::default()
    };
    let now_ntp = 0xb710_8000u64 << 16;
    assert_eq!(compact_ntp(now_ntp), 0xb710_8000);
    assert_eq!(rtt_from_report(now_ntp, &block), Some(ms(6125)));
    let none = ReportBlock::default();
    assert_eq!(rtt_from_report(now_ntp, &none), None, "no SR seen");
    let early = 0xb705_2000u64 << 16;
    assert_eq!(rtt_from_report(early, &block), None, "negative");
}

#[test]
fn oversized_packets_are_refused() {
    let (t, mut s) = (Instant::now(), stream());
    assert_eq!(s.push(t, 1, 0, &[0; 1501]), Pushed::TooLarge);
    assert_eq!(s.push(t, 1, 0, &[0; 1500]), Pushed::Accepted);
    assert_eq!(s.counters().too_large, 1);
}

#[test]
fn legal_gaps_that_move_past_half_the_range_between_polls() {
    // Found by the `receive` fuzz target: steps of 2570 (under MAX_DROPOUT) with no poll in
    // between carry the sequence 33 409 ahead; each step empties the 16-slot window.
    let t = Instant::now();
    let mut s = ReceiveStream::new(ReceiveConfig {
        nack: false,
        capacity: 8,
        ..ReceiveConfig::new(1, 90_000)
    });
    push(&mut s, t, 17);
    assert_eq!(drain(&mut s, t), [17]);
    let mut seq = 17u16;
    for _ in 0..13 {
        seq = seq.wrapping_add(2570);
        assert_eq!(push(&mut s, t, seq), Pushed::Accepted);
    }
    assert_eq!(push(&mut s, t, seq - 1), Pushed::Accepted);
    assert_eq!(drain(&mut s, t + ms(20)), [seq - 1, seq]);
    assert_eq!(s.counters().discarded, 12);
}
