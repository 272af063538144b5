#![no_main]
//! The DTLS handshake codec: every message type parses without panicking, and whatever parses
//! re-encodes to something that parses to the same message. The same bytes also go through
//! the handshake header parser and the fragment reassembler.

use rtc::dtls::codec::Reader;
use rtc::dtls::msgs::{Handshake, HandshakeHeader};
use rtc::dtls::reassembly::Reassembler;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    // Aim at the known types most of the time; the rest exercises the unknown-type path.
    const TYPES: [u8; 11] = [0, 1, 2, 3, 11, 12, 13, 14, 15, 16, 20];
    let msg_type = TYPES.get(usize::from(selector % 12)).copied().unwrap_or(selector);
    if let Ok(msg) = Handshake::parse(msg_type, body) {
        let mut encoded = Vec::new();
        msg.encode(&mut encoded);
        let again = Handshake::parse(msg_type, &encoded).expect("re-encoded message parses");
        assert_eq!(again, msg);
        let _ = msg.to_message(7);
    }
    let mut re = Reassembler::new(selector & 1 == 0);
    let mut r = Reader::new(body, "fuzz");
    while let Ok((h, fragment)) = HandshakeHeader::parse(&mut r) {
        re.insert(0, &h, fragment);
        while let Some(m) = re.pop() {
            let _ = Handshake::parse(m.msg_type, &m.body);
        }
    }
});
