#![no_main]
//! The DTLS record layer and everything behind it: arbitrary datagrams go to a server or a
//! client in one of the states a test can reach cheaply (fresh, mid-handshake, connected).
//! Input: a state selector byte, then datagrams each prefixed by a 2-byte length.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rtc::dtls::codec::Reader;
use rtc::dtls::record::Record;
use rtc::dtls::{Dtls, DtlsCertificate, DtlsConfig};
use rtc::rand::Rng;

fn configs() -> &'static (Arc<DtlsConfig>, Arc<DtlsConfig>) {
    static CONFIGS: OnceLock<(Arc<DtlsConfig>, Arc<DtlsConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let make = |seed| {
            let mut rng = Rng::seeded(seed);
            let cert = DtlsCertificate::generate(&mut rng).expect("certificate");
            Arc::new(DtlsConfig::new(cert, &mut rng))
        };
        (make(1), make(2))
    })
}

/// Exchanges datagrams `steps` times in each direction.
fn exchange(now: Instant, c: &mut Dtls, s: &mut Dtls, steps: usize) {
    for _ in 0..steps {
        while let Some(d) = c.poll_datagram() {
            s.handle_datagram(now, &d);
        }
        while let Some(d) = s.poll_datagram() {
            c.handle_datagram(now, &d);
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else { return };
    let mut r = Reader::new(rest, "fuzz");
    while let Ok(_rec) = Record::parse(&mut r) {}

    let (cc, sc) = configs();
    let now = Instant::now();
    let mut client = Dtls::new_client(cc.clone(), sc.certificate().fingerprint(), Rng::seeded(3), now);
    let mut server = Dtls::new_server(sc.clone(), cc.certificate().fingerprint(), b"p", Rng::seeded(4));
    // 0: fresh; 1: after the cookie exchange; 2: flight 4 sent; 3: connected.
    exchange(now, &mut client, &mut server, usize::from(selector % 4));
    let target = if selector & 0x10 == 0 { &mut server } else { &mut client };
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        target.handle_datagram(now, &rest[2..end]);
        rest = &rest[end..];
        while target.poll_datagram().is_some() {}
        while target.poll_event().is_some() {}
    }
    target.handle_timeout(now + Duration::from_secs(2));
    if selector & 0x20 != 0 {
        let _ = target.send_application_data(rest);
        target.close();
    }
});
