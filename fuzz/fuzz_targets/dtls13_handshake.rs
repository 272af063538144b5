#![no_main]
//! The DTLS 1.3 handshake codec (RFC 8446 §4, RFC 9147 §5, §7): every message type parses
//! without panicking, whatever parses re-encodes to something that parses to the same
//! message, and ACK bodies round-trip.

use rtc::dtls::msgs13::{Handshake13, encode_ack, parse_ack};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    const TYPES: [u8; 9] = [1, 2, 4, 8, 11, 13, 15, 20, 24];
    let msg_type = TYPES
        .get(usize::from(selector % 10))
        .copied()
        .unwrap_or(selector);
    if let Ok(msg) = Handshake13::parse(msg_type, body) {
        let mut encoded = Vec::new();
        msg.encode(&mut encoded);
        let again = Handshake13::parse(msg_type, &encoded).expect("re-encoded message parses");
        assert_eq!(again, msg);
        let _ = msg.name();
    }
    if let Ok(acks) = parse_ack(body) {
        assert_eq!(
            parse_ack(&encode_ack(&acks)).expect("re-encoded ACK parses"),
            acks
        );
    }
});
