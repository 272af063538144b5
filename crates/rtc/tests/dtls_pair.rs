//! Our client against our server in memory: whole handshakes, lossy links, data, close.
//! (Interop with stacks we did not write is in dtls_openssl.rs, dtls_dimpl.rs and
//! dtls_browser_hello.rs; this checks the plumbing and the failure paths.)

mod dtls_common;

use std::time::{Duration, Instant};

use dtls_common::*;
use rtc::dtls::{DtlsError, DtlsEvent};

#[test]
fn handshake_on_a_clean_link() {
    let now = Instant::now();
    let (mut c, mut s) = pair(1, now);
    let mut link = Link::new(1, 0.0);
    link.duplicate = 0.0;
    let took = link
        .run(now, &mut c, &mut s, Duration::from_secs(5))
        .expect("handshake");
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(c.keys(), s.keys());
    assert_eq!(c.keys().unwrap().len(), 56); // AEAD_AES_128_GCM: 2 * (16 + 12)
}

#[test]
fn handshake_on_a_lossy_link() {
    for seed in 0..20 {
        let now = Instant::now();
        let (mut c, mut s) = pair(100 + seed, now);
        let mut link = Link::new(seed, 0.2);
        link.run(now, &mut c, &mut s, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("seed {seed}: {:?} / {:?}", c.events, s.events));
        assert_eq!(c.keys(), s.keys(), "seed {seed}");
    }
}
