//! Our DTLS 1.3 client against our DTLS 1.3 server in memory (RFC 9147): the flights, the
//! HelloRetryRequest cookie, ACKs and retransmission, version negotiation both ways and the
//! downgrade sentinel, data and close. (Interop with dimpl is in dtls_dimpl.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dtls_common;

use std::time::{Duration, Instant};

use dtls_common::*;
use rtc::dtls::{DtlsError, DtlsEvent, DtlsVersion, DtlsVersions, SRTP_EXPORTER_LABEL};

use DtlsVersions::{Auto, Only12, Only13};

fn pass(now: Instant, a: &mut Ours, b: &mut Ours) {
    for d in a.output() {
        b.input(now, &d);
    }
}

/// Flights (runs of datagrams in one direction) until both sides are connected.
fn flights(seed: u64, validated: bool) -> usize {
    let now = Instant::now();
    let (mut c, s) = pair(seed, now);
    let mut s = Validated(s);
    for flight in 1..20 {
        let to_server = flight % 2 == 1;
        let out = if to_server { c.output() } else { s.output() };
        assert!(!out.is_empty(), "flight {flight} is empty");
        for d in out {
            match (to_server, validated) {
                (true, true) => s.input(now, &d),
                (true, false) => s.0.input(now, &d),
                (false, _) => c.input(now, &d),
            }
        }
        if c.keys().is_some() && s.keys().is_some() {
            assert_eq!(c.keys(), s.keys());
            for o in [&c, &s.0] {
                assert_eq!(o.dtls.version(), DtlsVersion::V13);
                assert_eq!(o.dtls.group(), Some(0x11ec), "X25519MLKEM768");
            }
            return flight;
        }
    }
    panic!("no handshake: {:?} / {:?}", c.events, s.0.events);
}

/// Behind ICE: ClientHello, the server's one flight, the client's (RFC 9147 §5: 1 RTT). From
/// an unvalidated address the HelloRetryRequest cookie exchange comes first.
#[test]
fn flights_with_and_without_cookie() {
    assert_eq!(flights(1, true), 3);
    assert_eq!(flights(2, false), 5);
}

#[test]
fn exporter_agrees_for_any_label() {
    let now = Instant::now();
    let (mut c, mut s) = pair(3, now);
    let took = Link::new(3, 0.0).run(now, &mut c, &mut s, Duration::from_secs(10));
    assert!(took.is_some());
    let a = c
        .dtls
        .export_keying_material("EXPERIMENTAL-test", 48)
        .unwrap();
    assert_eq!(
        Some(a),
        s.dtls.export_keying_material("EXPERIMENTAL-test", 48)
    );
    let srtp = c
        .dtls
        .export_keying_material(SRTP_EXPORTER_LABEL, 56)
        .unwrap();
    assert_eq!(Some(srtp), c.keys());
}

#[test]
fn handshake_on_a_lossy_link() {
    let mut dropped = 0;
    for seed in 0..20 {
        let now = Instant::now();
        let (mut c, s) = pair(100 + seed, now);
        let mut link = Link::new(seed, 0.2);
        let took = if seed % 2 == 0 {
            link.run(now, &mut c, &mut Validated(s), Duration::from_secs(120))
        } else {
            let mut s = s;
            link.run(now, &mut c, &mut s, Duration::from_secs(120))
        };
        assert!(took.is_some(), "seed {seed}: {:?}", c.events);
        assert_eq!(c.dtls.version(), DtlsVersion::V13);
        dropped += link.dropped;
    }
    assert!(dropped >= 20, "{dropped}");
}

/// RFC 9147 §7: the client repeats its last flight until the server ACKs it; a repeated
/// flight after the server connected (its ACK was lost) gets the ACK again.
#[test]
fn final_flight_repeated_until_acked() {
    let now = Instant::now();
    let (mut c, s) = pair(5, now);
    let mut s = Validated(s);
    for d in c.output() {
        s.input(now, &d);
    }
    for d in s.output() {
        c.input(now, &d);
    }
    let final_flight = c.output();
    assert!(
        c.keys().is_some(),
        "the client is connected once its Finished is out"
    );
    for d in &final_flight {
        s.input(now, d);
    }
    assert!(s.keys().is_some());
    let ack = s.output();
    assert_eq!(ack.len(), 1, "one ACK");
    assert!(ack[0][0] & 0xe0 == 0x20, "protected (unified header)");
    // The ACK is lost: the client's timer repeats the flight.
    let at = c.dtls.poll_timeout().expect("the client waits for the ACK");
    assert_eq!(at - now, Duration::from_secs(1));
    c.timeout(at);
    let again = c.output();
    assert_eq!(again.len(), final_flight.len());
    for d in &again {
        s.input(at, d);
    }
    let ack = s.output();
    assert_eq!(ack.len(), 1, "the server ACKs again");
    for d in &ack {
        c.input(at, d);
    }
    assert_eq!(c.dtls.poll_timeout(), None, "ACKed: nothing more to repeat");
    assert!(c.output().is_empty());
    assert_eq!(c.keys(), s.keys());
}

/// The server's flight is lost whole: its timer repeats it with the same fragments.
#[test]
fn server_flight_repeated_on_timeout() {
    let now = Instant::now();
    let (mut c, s) = pair(6, now);
    let mut s = Validated(s);
    for d in c.output() {
        s.input(now, &d);
    }
    let first = s.output();
    let at = s.0.dtls.poll_timeout().unwrap();
    s.timeout(at);
    let again = s.output();
    assert_eq!(
        first.iter().map(Vec::len).collect::<Vec<_>>(),
        again.iter().map(Vec::len).collect::<Vec<_>>()
    );
    for d in &again {
        c.input(at, d);
    }
    pass(at, &mut c, &mut s.0);
    assert_eq!(c.keys(), s.keys());
    assert!(c.keys().is_some());
}

fn negotiate(client: DtlsVersions, server: DtlsVersions) -> (Ours, Ours) {
    let now = Instant::now();
    let (mut c, mut s) = pair_with(7, now, client, server);
    Link::new(7, 0.0).run(now, &mut c, &mut s, Duration::from_secs(100));
    (c, s)
}

/// 1.3 when both speak it, 1.2 when either end is limited to it, a clear failure when the
/// two have no version in common.
#[test]
fn version_negotiation() {
    for (client, server, version) in [
        (Auto, Auto, DtlsVersion::V13),
        (Only13, Auto, DtlsVersion::V13),
        (Auto, Only13, DtlsVersion::V13),
        (Only12, Auto, DtlsVersion::V12),
        (Auto, Only12, DtlsVersion::V12),
    ] {
        let (c, s) = negotiate(client, server);
        assert!(c.keys().is_some(), "{client:?}/{server:?}: {:?}", c.events);
        assert_eq!(c.keys(), s.keys());
        assert_eq!((c.dtls.version(), s.dtls.version()), (version, version));
    }
    let (c, s) = negotiate(Only12, Only13);
    assert!(matches!(
        s.events[..],
        [DtlsEvent::Failed(DtlsError::ProtocolVersion(_))]
    ));
    assert!(matches!(
        c.events[..],
        [DtlsEvent::Failed(DtlsError::AlertReceived(70))]
    ));
    let (c, _) = negotiate(Only13, Only12);
    assert!(matches!(
        c.events[..],
        [DtlsEvent::Failed(DtlsError::ProtocolVersion(_))]
    ));
}

/// RFC 8446 §4.1.3: a client that offered 1.3 refuses a 1.2 ServerHello whose random ends
/// with the downgrade sentinel (what a 1.3 server answering a hello stripped of 1.3 sends).
#[test]
fn downgrade_sentinel_is_detected() {
    for tamper in [false, true] {
        let now = Instant::now();
        let (mut c, s) = pair_with(8, now, Auto, Only12);
        let mut s = Validated(s);
        for d in c.output() {
            s.input(now, &d);
        }
        for mut d in s.output() {
            // record header 13, handshake header 12, version 2: random is bytes 27..59.
            if tamper && first_handshake_type(&d) == Some(2) {
                d[51..59].copy_from_slice(b"DOWNGRD\x01");
            }
            c.input(now, &d);
        }
        let failed = c.events.iter().find_map(|e| match e {
            DtlsEvent::Failed(err) => Some(err.clone()),
            _ => None,
        });
        if tamper {
            assert_eq!(
                failed,
                Some(DtlsError::IllegalParameter(
                    "downgrade from DTLS 1.3 detected"
                ))
            );
        } else {
            assert_eq!(failed, None);
        }
    }
}

#[test]
fn application_data_both_ways_then_close_notify() {
    let now = Instant::now();
    let (mut c, mut s) = pair(9, now);
    Link::new(9, 0.0).run(now, &mut c, &mut s, Duration::from_secs(10));
    assert!(s.keys().is_some());
    c.dtls.send_application_data(b"from client").unwrap();
    s.dtls.send_application_data(b"from server").unwrap();
    pass(now, &mut c, &mut s);
    pass(now, &mut s, &mut c);
    assert!(
        s.events
            .contains(&DtlsEvent::ApplicationData(b"from client".to_vec()))
    );
    assert!(
        c.events
            .contains(&DtlsEvent::ApplicationData(b"from server".to_vec()))
    );
    c.dtls.close();
    c.drain();
    pass(now, &mut c, &mut s);
    assert_eq!(s.events.last(), Some(&DtlsEvent::Closed));
    assert_eq!(c.events.last(), Some(&DtlsEvent::Closed));
    assert!(s.dtls.send_application_data(b"late").is_err());
}

#[test]
fn fingerprint_mismatch_fails() {
    let now = Instant::now();
    let (cc, sc) = (config(10), config(11));
    let wrong = config(12).certificate().fingerprint();
    let mut c = Ours {
        dtls: rtc::dtls::Dtls::new_client(cc.clone(), wrong, rtc::rand::Rng::seeded(1), now),
        events: vec![],
    };
    let mut s = Ours {
        dtls: rtc::dtls::Dtls::new_server(
            sc,
            cc.certificate().fingerprint(),
            b"p",
            rtc::rand::Rng::seeded(2),
        ),
        events: vec![],
    };
    Link::new(10, 0.0).run(now, &mut c, &mut s, Duration::from_secs(100));
    assert!(matches!(
        c.events[..],
        [DtlsEvent::Failed(DtlsError::FingerprintMismatch { .. })]
    ));
    // The client's bad_certificate alert reaches the server, protected in epoch 2.
    assert!(matches!(
        s.events[..],
        [DtlsEvent::Failed(DtlsError::AlertReceived(42))]
    ));
}

/// Random and mutated records never panic a 1.3 endpoint in any state, and forged records
/// after the handshake change nothing.
#[test]
fn garbage_never_panics() {
    let mut rng = rtc::rand::Rng::seeded(77);
    for round in 0..30u64 {
        let now = Instant::now();
        let (mut c, mut s) = pair(round, now);
        let steps = round % 4;
        for _ in 0..steps {
            pass(now, &mut c, &mut s);
            pass(now, &mut s, &mut c);
        }
        for _ in 0..50 {
            let len = (rng.u32() % 300) as usize + 1;
            let mut d = vec![0u8; len];
            rng.fill(&mut d);
            d[0] = [0x2c, 0x2e, 0x2f, 0x22, 22, 21, 26][(rng.u32() % 7) as usize];
            c.input(now, &d);
            s.input(now, &d);
        }
        if steps == 3 {
            assert!(c.keys().is_some() && s.keys().is_some(), "round {round}");
            assert!(!c.events.iter().any(|e| matches!(e, DtlsEvent::Failed(_))));
            assert!(!s.events.iter().any(|e| matches!(e, DtlsEvent::Failed(_))));
        }
    }
}
