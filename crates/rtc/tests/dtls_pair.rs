//! Our client against our server in memory: whole handshakes, lossy links, data, close.
//! (Interop with stacks we did not write is in dtls_openssl.rs, dtls_dimpl.rs and
//! dtls_browser_hello.rs; this checks the plumbing and the failure paths.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dtls_common;

use std::time::{Duration, Instant};

use dtls_common::*;
use std::sync::Arc;

use rtc::dtls::{Dtls, DtlsError, DtlsEvent, DtlsVersions};
use rtc::rand::Rng;

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

fn connected_pair(seed: u64) -> (Ours, Ours, Instant) {
    let now = Instant::now();
    let (mut c, mut s) = pair(seed, now);
    let mut link = Link::new(seed, 0.0);
    link.duplicate = 0.0;
    link.run(now, &mut c, &mut s, Duration::from_secs(5))
        .expect("handshake");
    (c, s, now)
}

/// Moves every pending datagram from `a` to `b`.
fn pass(now: Instant, a: &mut Ours, b: &mut Ours) {
    for d in a.output() {
        b.input(now, &d);
    }
}

#[test]
fn application_data_both_ways_then_close_notify() {
    let (mut c, mut s, now) = connected_pair(3);
    // The RFC 5705 exporter gives the same bytes as the Connected event, on both sides.
    let km = c.dtls.export_keying_material("EXTRACTOR-dtls_srtp", 56);
    assert_eq!(km, c.keys());
    assert_eq!(km, s.dtls.export_keying_material("EXTRACTOR-dtls_srtp", 56));
    assert_ne!(km, c.dtls.export_keying_material("EXPORTER-other", 56));
    c.dtls.send_application_data(b"ping").unwrap();
    pass(now, &mut c, &mut s);
    s.dtls.send_application_data(b"pong").unwrap();
    pass(now, &mut s, &mut c);
    assert_eq!(
        s.events.last(),
        Some(&DtlsEvent::ApplicationData(b"ping".to_vec()))
    );
    assert_eq!(
        c.events.last(),
        Some(&DtlsEvent::ApplicationData(b"pong".to_vec()))
    );
    // A replayed record is dropped.
    s.dtls.send_application_data(b"once").unwrap();
    let d = s.output().pop().unwrap();
    c.input(now, &d);
    c.input(now, &d);
    let n = c
        .events
        .iter()
        .filter(|e| **e == DtlsEvent::ApplicationData(b"once".to_vec()))
        .count();
    assert_eq!(n, 1);
    // Server closes; the client answers with its own close_notify.
    s.dtls.close();
    pass(now, &mut s, &mut c);
    assert_eq!(c.events.last(), Some(&DtlsEvent::Closed));
    assert!(!c.output().is_empty(), "close_notify answered");
    assert!(c.dtls.send_application_data(b"late").is_err());
}

#[test]
fn client_close_notify_reaches_server() {
    let (mut c, mut s, now) = connected_pair(4);
    c.dtls.close();
    c.drain();
    assert_eq!(c.events.last(), Some(&DtlsEvent::Closed));
    pass(now, &mut c, &mut s);
    assert_eq!(s.events.last(), Some(&DtlsEvent::Closed));
}

/// The tests of DTLS 1.2's flights: both ends speak 1.2 only (dtls13_pair.rs has 1.3's).
fn pair12(seed: u64, now: Instant) -> (Ours, Ours) {
    pair_with(seed, now, DtlsVersions::Only12, DtlsVersions::Only12)
}

#[test]
fn retransmission_doubles_and_gives_up() {
    let start = Instant::now();
    let (mut c, _s) = pair12(5, start);
    let first = c.output();
    assert_eq!(first.len(), 1);
    let mut now = start;
    let mut gaps = Vec::new();
    while let Some(at) = c.dtls.poll_timeout() {
        gaps.push((at - now).as_secs());
        now = at;
        c.timeout(now);
        if let Some(d) = c.output().pop() {
            // Same ClientHello, only the record sequence number differs.
            assert_eq!(d.len(), first[0].len());
            assert_eq!(d[..5], first[0][..5]);
            assert_eq!(d[11..], first[0][11..]);
        }
    }
    assert_eq!(gaps, [1, 2, 4, 8, 16, 32, 60]);
    assert_eq!(c.events, [DtlsEvent::Failed(DtlsError::Timeout(6))]);
}

/// Records of a datagram without their headers' sequence numbers.
fn strip_seq(d: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = d;
    while rest.len() >= 13 {
        let len = u16::from_be_bytes([rest[11], rest[12]]) as usize;
        out.extend_from_slice(&rest[..5]);
        out.extend_from_slice(&rest[11..13 + len]);
        rest = &rest[13 + len..];
    }
    out
}

#[test]
fn server_flight_fragments_are_stable_across_retransmissions() {
    let now = Instant::now();
    let mut cc = config_with(20, DtlsVersions::Only12);
    let mut sc = config_with(21, DtlsVersions::Only12);
    Arc::get_mut(&mut cc).unwrap().mtu = 250;
    Arc::get_mut(&mut sc).unwrap().mtu = 250;
    let mut c = Ours {
        dtls: Dtls::new_client(
            cc.clone(),
            sc.certificate().fingerprint(),
            Rng::seeded(1),
            now,
        ),
        events: vec![],
    };
    let mut s = Ours {
        dtls: Dtls::new_server(sc, cc.certificate().fingerprint(), b"p", Rng::seeded(2)),
        events: vec![],
    };
    pass(now, &mut c, &mut s); // ClientHello
    pass(now, &mut s, &mut c); // HelloVerifyRequest
    pass(now, &mut c, &mut s); // ClientHello with cookie
    let flight4 = s.output();
    assert!(flight4.len() >= 3, "{} datagrams", flight4.len());
    assert!(flight4.iter().all(|d| d.len() <= 250));
    let at = s.dtls.poll_timeout().unwrap();
    assert_eq!(at - now, Duration::from_secs(1));
    s.timeout(at);
    let again = s.output();
    assert_eq!(again.len(), flight4.len());
    for (a, b) in flight4.iter().zip(&again) {
        assert_eq!(strip_seq(a), strip_seq(b));
    }
    // The client reassembles the retransmission (the first copy was "lost").
    for d in &again {
        c.input(at, d);
    }
    pass(at, &mut c, &mut s);
    pass(at, &mut s, &mut c);
    assert_eq!(c.keys(), s.keys());
    assert!(c.keys().is_some());
}

/// Flights (runs of datagrams in one direction) until both sides are connected, and the
/// handshake type the server's first datagram starts with.
fn flights(validated: bool) -> (usize, Option<u8>) {
    let now = Instant::now();
    let (mut c, s) = pair12(40, now);
    let mut s = Validated(s);
    let mut server_first = None;
    for flight in 1..20 {
        let to_server = flight % 2 == 1;
        let out = if to_server { c.output() } else { s.output() };
        assert!(!out.is_empty(), "flight {flight} is empty");
        for d in out {
            if to_server {
                if validated {
                    s.input(now, &d);
                } else {
                    s.0.input(now, &d);
                }
            } else {
                server_first = server_first.or(first_handshake_type(&d));
                c.input(now, &d);
            }
        }
        if c.keys().is_some() && s.keys().is_some() {
            assert_eq!(c.keys(), s.keys());
            return (flight, server_first);
        }
    }
    panic!("no handshake: {:?} / {:?}", c.events, s.0.events);
}

/// Issue 10: from an address ICE validated, the server answers the first ClientHello with
/// ServerHello (4 flights); from any other, it still asks for the cookie first (6 flights,
/// RFC 6347 §4.2.1).
#[test]
fn cookie_exchange_only_for_unvalidated_addresses() {
    assert_eq!(flights(false), (6, Some(3))); // HelloVerifyRequest
    assert_eq!(flights(true), (4, Some(2))); // ServerHello
}

#[test]
fn lost_final_flight_is_resent_when_the_client_retransmits() {
    let now = Instant::now();
    let (mut c, mut s) = pair12(30, now);
    pass(now, &mut c, &mut s);
    pass(now, &mut s, &mut c);
    pass(now, &mut c, &mut s);
    pass(now, &mut s, &mut c); // flight 4
    pass(now, &mut c, &mut s); // flight 5: the server is now connected
    assert!(s.keys().is_some());
    let _lost = s.output(); // flight 6 lost
    let at = c.dtls.poll_timeout().unwrap();
    c.timeout(at); // the client repeats flight 5 ...
    let flight5 = c.output();
    let at2 = c.dtls.poll_timeout().unwrap();
    c.timeout(at2); // ... twice (kept for later)
    let flight5_again = c.output();
    for d in &flight5 {
        s.input(at, d); // ... and the server repeats flight 6
    }
    let flight6 = s.output();
    for d in &flight6 {
        c.input(at, d);
    }
    assert_eq!(c.keys(), s.keys());
    assert!(c.keys().is_some());
    assert_eq!(c.dtls.poll_timeout(), None);
    // Another copy of the final flight (fresh record numbers, so past the replay window)
    // must not make the connected client answer: that would ping-pong forever.
    for d in &flight5_again {
        s.input(at, d);
    }
    let again = s.output();
    assert_eq!(again.len(), flight6.len());
    for d in &again {
        c.input(at, d);
    }
    assert!(c.output().is_empty());
}

#[test]
fn fingerprint_mismatch_fails_both_sides() {
    let now = Instant::now();
    let (cc, sc) = (config(40), config(41));
    let wrong = config(42).certificate().fingerprint();
    let mut c = Ours {
        dtls: Dtls::new_client(cc.clone(), wrong, Rng::seeded(1), now),
        events: vec![],
    };
    let mut s = Ours {
        dtls: Dtls::new_server(
            sc.clone(),
            cc.certificate().fingerprint(),
            b"p",
            Rng::seeded(2),
        ),
        events: vec![],
    };
    for _ in 0..3 {
        pass(now, &mut c, &mut s);
        pass(now, &mut s, &mut c);
    }
    let expected = DtlsError::FingerprintMismatch {
        expected: wrong,
        actual: sc.certificate().fingerprint(),
    };
    assert_eq!(c.events, [DtlsEvent::Failed(expected.clone())]);
    let text = expected.to_string();
    assert!(text.contains(&wrong.to_string()), "{text}");
    assert!(
        text.contains(&sc.certificate().fingerprint().to_string()),
        "{text}"
    );
    assert_eq!(s.events, [DtlsEvent::Failed(DtlsError::AlertReceived(42))]);
}

#[test]
fn garbage_never_panics() {
    let mut state = 99u64;
    let mut random = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    for round in 0..200 {
        let now = Instant::now();
        let (mut c, mut s) = pair(round, now);
        // Advance to a random point of the handshake.
        for _ in 0..(round % 5) {
            pass(now, &mut c, &mut s);
            pass(now, &mut s, &mut c);
        }
        let mut d: Vec<u8> = (0..(random() % 300)).map(|_| random() as u8).collect();
        if round % 2 == 0 && d.len() > 13 {
            // A plausible record header over random contents.
            d[0] = 22;
            d[1] = 0xfe;
            d[2] = 0xfd;
            let len = (d.len() - 13) as u16;
            d[11..13].copy_from_slice(&len.to_be_bytes());
        }
        s.input(now, &d);
        c.input(now, &d);
    }
}

#[test]
fn forged_epoch0_handshake_after_connect_is_ignored() {
    let (mut c, mut s, now) = connected_pair(50);
    // A plaintext ServerHelloDone / Certificate with the next message_seq, as an off-path
    // attacker could send.
    for (msg_type, seq) in [(14u8, 6u16), (11, 7), (1, 5), (16, 5)] {
        let mut d = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 99, 0, 12];
        d.extend_from_slice(&[
            msg_type,
            0,
            0,
            0,
            (seq >> 8) as u8,
            seq as u8,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        c.input(now, &d);
        s.input(now, &d);
    }
    assert!(c.dtls.is_connected() && s.dtls.is_connected());
    assert!(c.output().is_empty() && s.output().is_empty());
}
