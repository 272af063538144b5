#![no_main]
//! Datagram classification: total, and consistent with the first two bytes.

use rtc::demux::{Class, classify};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let class = classify(data);
    let want = match (data.first(), data.get(1)) {
        (Some(0..=3), _) => Class::Stun,
        (Some(20..=63), _) => Class::Dtls,
        (Some(128..=191), Some(192..=223)) => Class::Rtcp,
        (Some(128..=191), Some(_)) => Class::Rtp,
        _ => Class::Drop,
    };
    assert_eq!(class, want);
    if class == Class::Rtcp {
        for p in rtc::rtcp::parse_compound(data) {
            let _ = p;
        }
    } else if class == Class::Rtp {
        let _ = rtc::rtp::RtpPacket::parse(data);
    }
});
