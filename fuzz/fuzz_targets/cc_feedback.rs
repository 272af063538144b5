#![no_main]
//! The send-side bandwidth estimator (`rtc::cc`) fed by a peer: the input scripts packets we
//! send (some as probe clusters) and the peer's RTCP (its transport-wide feedback and REMB,
//! parsed from the bytes given), at times the input advances. Nothing may panic or overflow,
//! and the estimate stays within its bounds.

use std::time::{Duration, Instant};

use rtc::cc::pacer::{Pacer, PacerConfig};
use rtc::cc::{BandwidthEstimator, BweConfig};
use rtc::rtcp::{RtcpPacket, parse_compound};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let config = BweConfig::default();
    let mut bwe = BandwidthEstimator::new(config);
    let mut pacer = Pacer::new(PacerConfig::default(), config.start_bps);
    let mut now = Instant::now();
    let mut seq: u16 = 0;
    let mut rest = data;
    while let [op, arg, tail @ ..] = rest {
        rest = tail;
        match op % 4 {
            // Send `arg` packets 1 ms apart, sized by the next byte.
            0 => {
                let size = 100 + usize::from(rest.first().copied().unwrap_or(0)) * 5;
                for _ in 0..*arg {
                    match pacer.probing() {
                        Some(cluster) => bwe.on_probe_sent(seq, size, cluster, now),
                        None => bwe.on_packet_sent(seq, size, now),
                    }
                    seq = seq.wrapping_add(1);
                    now += Duration::from_millis(1);
                }
            }
            // The peer's RTCP: the next `arg` bytes.
            1 => {
                let n = usize::from(*arg).min(rest.len());
                let (rtcp, tail) = rest.split_at(n);
                rest = tail;
                for packet in parse_compound(rtcp).flatten() {
                    match packet {
                        RtcpPacket::Twcc(fb) => bwe.on_twcc(&fb, now),
                        RtcpPacket::Remb(r) => bwe.on_remb(r.bitrate(), now),
                        _ => {}
                    }
                }
            }
            // Time passes.
            2 => now += Duration::from_millis(u64::from(*arg) * 10),
            // Probes and padding.
            _ => {
                if let Some(probe) = bwe.poll_probe(now) {
                    pacer.start_probe(&probe);
                }
                pacer.set_estimate(bwe.estimate());
                for _ in 0..*arg {
                    let Some((size, cluster)) = pacer.poll_padding(now) else {
                        break;
                    };
                    match cluster {
                        Some(c) => bwe.on_probe_sent(seq, size, c, now),
                        None => bwe.on_packet_sent(seq, size, now),
                    }
                    seq = seq.wrapping_add(1);
                }
            }
        }
        let e = bwe.estimate();
        assert!((config.min_bps..=config.max_bps).contains(&e), "{e}");
    }
});
