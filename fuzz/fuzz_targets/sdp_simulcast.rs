#![no_main]
//! `a=rid` (RFC 8851) and `a=simulcast` (RFC 8853) values: parse any UTF-8; what parses
//! writes back to text that parses to the same value (and is then written identically).

use libfuzzer_sys::fuzz_target;
use rtc::sdp::{Rid, Simulcast};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(rid) = Rid::parse(text) {
        let written = rid.to_string();
        let again = Rid::parse(&written).expect("a written rid parses");
        assert_eq!(again, rid);
        assert_eq!(again.to_string(), written);
    }
    if let Ok(sc) = Simulcast::parse(text) {
        let written = sc.to_string();
        let again = Simulcast::parse(&written).expect("a written simulcast parses");
        assert_eq!(again, sc);
        assert_eq!(again.to_string(), written);
    }
});
