#![no_main]
//! The DTLS 1.3 record layer (RFC 9147 §4): unified headers parse, record numbers decrypt and
//! reconstruct, and what one key seals the same key opens to the same content. Then the
//! datagrams go to a 1.3 server or client in one of the states a test reaches cheaply (fresh,
//! after the HelloRetryRequest, flight sent, connected), from an ICE-validated address or not.
//! Input: a state selector byte, then datagrams each prefixed by a 2-byte length.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rtc::dtls::codec::Reader;
use rtc::dtls::record13::{Cipher13, Ciphertext, reconstruct_seq};
use rtc::dtls::schedule::TrafficKeys;
use rtc::dtls::{Dtls, DtlsCertificate, DtlsConfig, DtlsVersions};
use rtc::rand::Rng;

fn configs() -> &'static (Arc<DtlsConfig>, Arc<DtlsConfig>) {
    static CONFIGS: OnceLock<(Arc<DtlsConfig>, Arc<DtlsConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let make = |seed| {
            let mut rng = Rng::seeded(seed);
            let cert = DtlsCertificate::generate(&mut rng).expect("certificate");
            Arc::new(DtlsConfig::new(cert, &mut rng).with_versions(DtlsVersions::Only13))
        };
        (make(1), make(2))
    })
}

fn cipher() -> &'static Cipher13 {
    static CIPHER: OnceLock<Cipher13> = OnceLock::new();
    CIPHER.get_or_init(|| {
        let keys = TrafficKeys {
            key: [7; 16],
            iv: [9; 12],
            sn: [3; 16],
        };
        Cipher13::new(&keys).expect("cipher")
    })
}

fn exchange(now: Instant, c: &mut Dtls, s: &mut Dtls, steps: usize, validated: bool) {
    for _ in 0..steps {
        while let Some(d) = c.poll_datagram() {
            if validated {
                s.handle_validated_datagram(now, &d);
            } else {
                s.handle_datagram(now, &d);
            }
        }
        while let Some(d) = s.poll_datagram() {
            c.handle_datagram(now, &d);
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let c = cipher();
    let mut r = Reader::new(rest, "fuzz");
    while let Ok(rec) = Ciphertext::parse(&mut r) {
        let _ = c.open(&rec, u64::from(selector) << 8);
    }
    // Seal and open agree for any content, type and record number.
    let seq = u64::from(selector) * 0x0101;
    let mut sealed = Vec::new();
    c.seal(&mut sealed, 23, 3, seq, rest).expect("seal");
    let rec = Ciphertext::parse(&mut Reader::new(&sealed, "fuzz")).expect("our record parses");
    let opened = c
        .open(&rec, seq.saturating_sub(100))
        .expect("our record opens");
    assert_eq!((opened.seq, opened.content_type), (seq, 23));
    assert_eq!(opened.content, rest);
    assert!(reconstruct_seq(seq, seq & 0xffff, 16) == seq);

    let (cc, sc) = configs();
    let now = Instant::now();
    let mut client = Dtls::new_client(
        cc.clone(),
        sc.certificate().fingerprint(),
        Rng::seeded(3),
        now,
    );
    let mut server = Dtls::new_server(
        sc.clone(),
        cc.certificate().fingerprint(),
        b"p",
        Rng::seeded(4),
    );
    let validated = selector & 0x40 != 0;
    exchange(
        now,
        &mut client,
        &mut server,
        usize::from(selector % 4),
        validated,
    );
    let target = if selector & 0x10 == 0 {
        &mut server
    } else {
        &mut client
    };
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        if validated {
            target.handle_validated_datagram(now, &rest[2..end]);
        } else {
            target.handle_datagram(now, &rest[2..end]);
        }
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
