#![no_main]
//! The receive path driven by arbitrary packet sequences: each 4-byte op pushes a packet (seq,
//! timestamp, arrival step), records a TWCC arrival, polls released packets, NACKs, feedback or
//! reports, or moves the clock (also backwards). Nothing may panic, released packets must
//! come out in increasing sequence order, and every feedback must parse.

use std::time::{Duration, Instant};

use rtc::receive::{ReceiveConfig, ReceiveStream, TwccRecorder};
use rtc::rtcp::{RtcpPacket, RtcpWriter, SenderInfo, parse_compound};
use rtc::rtp::seq::seq_newer;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((cfg, ops)) = data.split_first_chunk::<3>() else {
        return;
    };
    let t0 = Instant::now() + Duration::from_secs(3600);
    let mut s = ReceiveStream::new(ReceiveConfig {
        nack: cfg[0] & 1 == 1,
        max_nack_retries: cfg[0] >> 1 & 7,
        capacity: usize::from(cfg[1]) * 4,
        ..ReceiveConfig::new(1, if cfg[2] & 1 == 1 { 90_000 } else { 48_000 })
    });
    let mut twcc = TwccRecorder::new();
    let (mut now, mut seq) = (t0, 0u16);
    let (mut nacks, mut rtcp, mut payload) = (Vec::new(), Vec::new(), vec![0u8; 1600]);
    for op in ops.chunks_exact(4) {
        let arg = u16::from_be_bytes([op[1], op[2]]);
        match op[0] % 10 {
            // Push: `arg` is the step from the previous seq (mostly small), `op[3]` the
            // arrival step in 100 µs and the payload length.
            0..=3 => {
                seq = seq.wrapping_add(arg.rotate_left(u32::from(op[0] >> 4)));
                now += Duration::from_micros(u64::from(op[3]) * 100);
                let len = (usize::from(op[3]) * 7 % 1600).max(2);
                payload[..2].copy_from_slice(&seq.to_be_bytes());
                s.push(now, seq, u32::from(arg) * 3000, &payload[..len]);
            }
            4 => twcc.record(now + Duration::from_micros(u64::from(op[3]) * 250), arg),
            5 => {
                // Consecutive releases lie within the window, so 16-bit order tells; across
                // drains the sequence may have moved by more than half its range.
                let mut last_out = None::<u16>;
                while let Some(p) = s.poll_packet(now) {
                    let got = u16::from_be_bytes([p[0], p[1]]);
                    assert!(
                        last_out.is_none_or(|l| seq_newer(got, l)),
                        "{got} after {last_out:?}"
                    );
                    last_out = Some(got);
                }
            }
            6 => {
                nacks.clear();
                let n = s.poll_nacks(now, &mut nacks);
                assert!(n <= 128 && nacks.windows(2).all(|w| seq_newer(w[1], w[0])));
                rtcp.clear();
                RtcpWriter::new(&mut rtcp)
                    .nack(1, 2, &nacks)
                    .expect("NACK fits");
            }
            7 => {
                rtcp.clear();
                let wrote = twcc.poll_feedback(now, 1, 2, &mut RtcpWriter::new(&mut rtcp));
                if wrote.expect("feedback deltas fit") {
                    assert!(rtcp.len() <= 1100);
                    let Some(Ok(RtcpPacket::Twcc(fb))) = parse_compound(&rtcp).next() else {
                        panic!("feedback parses");
                    };
                    assert_eq!(fb.packets().count(), usize::from(fb.status_count()));
                }
            }
            8 => {
                let _ = s.report_block(now);
                let _ = (
                    s.poll_keyframe_request(now),
                    s.poll_timeout(),
                    twcc.poll_timeout(),
                );
                let ntp = u64::from(arg) << 40 | u64::from(op[3]) << 16;
                s.on_sender_report(
                    now,
                    &SenderInfo {
                        ntp_time: ntp,
                        ..Default::default()
                    },
                );
                s.set_rtt(Duration::from_millis(u64::from(op[3]) * 8));
            }
            _ => {
                let d = Duration::from_millis(u64::from(arg) % 20_000);
                now = if op[3] & 1 == 1 {
                    now + d
                } else {
                    now.checked_sub(d).unwrap_or(now)
                };
            }
        }
    }
});
