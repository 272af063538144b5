#![no_main]
//! RTX (RFC 4588) unwrapping of a peer's packet, and wrapping the original back: the round
//! trip must give the same OSN, timestamp and payload.

use rtc::rtp::RtpPacket;
use rtc::rtp::rtx::{OVERHEAD, RtxSender, unwrap};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(rtx) = RtpPacket::parse(data) else { return };
    let mut original = Vec::new();
    if !unwrap(&rtx, 0x1111, 96, &mut original) {
        assert!(original.is_empty());
        return;
    }
    let o = RtpPacket::parse(&original).expect("an unwrapped packet parses");
    assert_eq!(o.payload(), &rtx.payload()[OVERHEAD..]);
    assert_eq!((o.ssrc(), o.payload_type(), o.timestamp()), (0x1111, 96, rtx.timestamp()));
    let mut sender = RtxSender {
        ssrc: rtx.ssrc(),
        payload_type: rtx.payload_type(),
        seq: rtx.sequence_number(),
    };
    let len = original.len();
    original.resize(len + OVERHEAD, 0);
    let n = sender.wrap(&mut original, len).expect("room for the OSN");
    let again = RtpPacket::parse(&original[..n]).expect("a wrapped packet parses");
    assert_eq!(again.payload(), rtx.payload());
    assert_eq!(again.sequence_number(), rtx.sequence_number());
});
