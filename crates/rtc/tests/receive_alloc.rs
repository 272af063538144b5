//! The receive path allocates nothing per packet once warm: reorder buffer slots, NACK lists
//! and TWCC feedback reuse their buffers.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rtc::receive::{ReceiveConfig, ReceiveStream, TwccRecorder};
use rtc::rtcp::RtcpWriter;

#[test]
fn push_poll_nack_and_feedback_do_not_allocate_when_warm() {
    let t = Instant::now();
    let mut s = ReceiveStream::new(ReceiveConfig::new(1, 90_000));
    let mut twcc = TwccRecorder::new();
    let (mut nacks, mut rtcp) = (Vec::with_capacity(256), Vec::with_capacity(1500));
    let payload = [0x5a; 1200];
    let mut run = |from: u32, to: u32| {
        for i in from..to {
            let now = t + Duration::from_micros(u64::from(i) * 700);
            // Every 50th packet is lost and every 7th comes one place late.
            let seq = if i % 7 == 0 {
                i + 1
            } else if i % 7 == 1 {
                i - 1
            } else {
                i
            };
            if seq % 50 != 49 {
                s.push(now, seq as u16, i * 90, &payload);
                twcc.record(now, seq as u16);
            }
            while s.poll_packet(now).is_some() {}
            nacks.clear();
            s.poll_nacks(now, &mut nacks);
            rtcp.clear();
            while twcc
                .poll_feedback(now, 1, 2, &mut RtcpWriter::new(&mut rtcp))
                .unwrap()
            {}
            let _ = s.poll_keyframe_request(now);
        }
    };
    run(0, 3000);
    let info = allocation_counter::measure(|| run(3000, 20_000));
    assert_eq!(info.count_total, 0);
    assert!(s.counters().nacked > 0 && s.counters().accepted > 19_000);
}
