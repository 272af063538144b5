//! Real ClientHellos captured from headless Chromium and Firefox (see fixtures/dtls/README.md):
//! both offer DTLS 1.3 with an X25519MLKEM768 key share and arrive as two handshake fragments
//! in two datagrams. Our server must reassemble them in any order and answer with DTLS 1.3
//! and the hybrid group (or, configured for 1.2 only, run the cookie exchange and answer
//! with a DTLS 1.2 flight).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dtls_common;

use std::time::Instant;

use dtls_common::{config, config_with};
use rtc::dtls::codec::{Reader, put_u16, put_uint};
use rtc::dtls::msgs::{ClientHello, DTLS1_0, DTLS1_2, Handshake, HandshakeHeader};
use rtc::dtls::msgs13::{DTLS1_3, HRR_RANDOM};
use rtc::dtls::reassembly::{Message, Reassembler};
use rtc::dtls::record::Record;
use rtc::dtls::{Dtls, DtlsVersion, DtlsVersions, Fingerprint};
use rtc::rand::Rng;

fn fixture(browser: &str, i: u32) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/dtls/{browser}-clienthello-{i}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every handshake message in `datagrams` (epoch 0), reassembled with our own reassembler.
fn messages(datagrams: &[Vec<u8>], first_seq: u16) -> Vec<Message> {
    let mut re = Reassembler::new(false);
    re.expect(first_seq);
    let mut out = Vec::new();
    for d in datagrams {
        let mut r = Reader::new(d, "test");
        while !r.is_empty() {
            let rec = Record::parse(&mut r).unwrap();
            assert_eq!(rec.epoch, 0);
            let mut hr = Reader::new(rec.fragment, "test");
            while !hr.is_empty() {
                let (h, frag) = HandshakeHeader::parse(&mut hr).unwrap();
                re.insert(0, &h, frag);
            }
        }
        while let Some(m) = re.pop() {
            out.push(m);
        }
    }
    out
}

fn client_hello(browser: &str) -> (ClientHello, Vec<Vec<u8>>) {
    let frags = vec![fixture(browser, 1), fixture(browser, 2)];
    let msgs = messages(&frags, 0);
    assert_eq!(msgs.len(), 1);
    let Handshake::ClientHello(ch) = Handshake::parse(msgs[0].msg_type, &msgs[0].body).unwrap()
    else {
        panic!("not a ClientHello")
    };
    (ch, frags)
}

/// A ClientHello split into two records in two datagrams, as the browsers do.
fn fragmented(ch: &ClientHello, seq: u16, record_seq: u64) -> Vec<Vec<u8>> {
    let mut body = Vec::new();
    Handshake::ClientHello(ch.clone()).encode(&mut body);
    let split = body.len() * 3 / 4;
    [(0, split), (split, body.len())]
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| {
            let mut payload = Vec::new();
            HandshakeHeader {
                msg_type: 1,
                length: body.len() as u32,
                message_seq: seq,
                fragment_offset: a as u32,
                fragment_length: (b - a) as u32,
            }
            .encode(&mut payload);
            payload.extend_from_slice(&body[a..b]);
            let mut d = vec![22];
            put_u16(&mut d, DTLS1_2);
            put_u16(&mut d, 0);
            put_uint(&mut d, record_seq + i as u64, 6);
            put_u16(&mut d, payload.len() as u16);
            d.extend_from_slice(&payload);
            d
        })
        .collect()
}

fn check_browser(browser: &str) {
    let (ch, frags) = client_hello(browser);
    // What makes these hellos hard: DTLS 1.3 offered, a post-quantum share, 2 fragments.
    let e = &ch.extensions;
    assert!(e.supported_versions.as_ref().unwrap().contains(&0xfefc));
    let shares = e.key_shares.as_ref().unwrap();
    assert!(
        shares.iter().any(|(g, k)| *g == 0x11ec && k.len() == 1216),
        "no X25519MLKEM768"
    );
    assert!(e.extended_master_secret && e.use_srtp.as_ref().unwrap().contains(&7));
    assert!(ch.cookie.is_empty());

    let (f1, f2) = (frags[0].clone(), frags[1].clone());
    for order in [vec![&f1, &f2], vec![&f2, &f1], vec![&f1, &f1, &f2, &f2]] {
        let now = Instant::now();
        let cfg = config_with(11, DtlsVersions::Only12);
        let mut server = Dtls::new_server(
            cfg,
            Fingerprint([0; 32]),
            b"127.0.0.1:40000",
            Rng::seeded(1),
        );
        for d in order {
            server.handle_datagram(now, d);
        }
        let out: Vec<Vec<u8>> = std::iter::from_fn(|| server.poll_datagram()).collect();
        assert_eq!(out.len(), 1, "{browser}: one HelloVerifyRequest");
        assert_eq!(server.poll_event(), None);
        let hvr = &out[0];
        assert_eq!(
            u16::from_be_bytes([hvr[1], hvr[2]]),
            DTLS1_0,
            "HVR record version"
        );
        let msgs = messages(&out, 0);
        let Handshake::HelloVerifyRequest { version, cookie } =
            Handshake::parse(msgs[0].msg_type, &msgs[0].body).unwrap()
        else {
            panic!("{browser}: expected HelloVerifyRequest")
        };
        assert_eq!(version, DTLS1_0);
        assert!(!cookie.is_empty());
        // No state before the cookie: the same hello gets the same cookie.
        server.handle_datagram(now, &f1);
        server.handle_datagram(now, &f2);
        let again = messages(&[server.poll_datagram().unwrap()], 0);
        assert_eq!(again[0].body, msgs[0].body);

        // The browser's second ClientHello: the same with our cookie, message_seq 1.
        let mut ch2 = ch.clone();
        ch2.cookie = cookie;
        for d in fragmented(&ch2, 1, 2).iter().rev() {
            server.handle_datagram(now, d);
        }
        let flight: Vec<Vec<u8>> = std::iter::from_fn(|| server.poll_datagram()).collect();
        assert!(flight.iter().all(|d| d.len() <= 1200));
        let msgs = messages(&flight, 1);
        let types: Vec<u8> = msgs.iter().map(|m| m.msg_type).collect();
        assert_eq!(
            types,
            [2, 11, 12, 13, 14],
            "{browser}: SH, Certificate, SKE, CR, SHD"
        );
        let Handshake::ServerHello(sh) = Handshake::parse(2, &msgs[0].body).unwrap() else {
            panic!()
        };
        assert_eq!(sh.version, DTLS1_2);
        assert_eq!(sh.cipher_suite, 0xc02b); // ECDHE-ECDSA-AES128-GCM-SHA256
        assert!(sh.extensions.extended_master_secret);
        assert_eq!(sh.extensions.use_srtp, Some(vec![0x0007])); // AEAD_AES_128_GCM
        assert_eq!(sh.extensions.renegotiation_info, Some(vec![]));
        assert_eq!(sh.extensions.supported_versions, None);
        let Handshake::ServerKeyExchange(ske) = Handshake::parse(12, &msgs[2].body).unwrap() else {
            panic!()
        };
        assert_eq!(ske.group, 0x001d); // x25519
        assert_eq!(ske.scheme, 0x0403);
        assert_eq!(server.poll_event(), None, "{browser}");
    }
}

#[test]
fn chromium_client_hello() {
    check_browser("chromium");
}

#[test]
fn firefox_client_hello() {
    check_browser("firefox");
}

#[test]
fn client_hello_round_trips_through_our_codec() {
    for browser in ["chromium", "firefox"] {
        let (ch, frags) = client_hello(browser);
        let msgs = messages(&frags, 0);
        let mut body = Vec::new();
        Handshake::ClientHello(ch.clone()).encode(&mut body);
        // Same length; the order of unknown extensions may differ from the original.
        assert_eq!(body.len(), msgs[0].body.len(), "{browser}");
        assert_eq!(
            Handshake::parse(1, &body).unwrap(),
            Handshake::ClientHello(ch)
        );
    }
}

/// RFC 7627 §5.3: a server may refuse a client without extended_master_secret; we do, with
/// handshake_failure and an error saying why.
#[test]
fn client_hello_without_ems_is_refused() {
    let (mut ch, _) = client_hello("chromium");
    ch.extensions.extended_master_secret = false;
    let now = Instant::now();
    let cfg = config_with(12, DtlsVersions::Only12);
    let mut server = Dtls::new_server(cfg, Fingerprint([0; 32]), b"peer", Rng::seeded(1));
    for d in fragmented(&ch, 0, 0) {
        server.handle_datagram(now, &d);
    }
    let msgs = messages(&[server.poll_datagram().unwrap()], 0);
    let Handshake::HelloVerifyRequest { cookie, .. } = Handshake::parse(3, &msgs[0].body).unwrap()
    else {
        panic!()
    };
    ch.cookie = cookie;
    for d in fragmented(&ch, 1, 2) {
        server.handle_datagram(now, &d);
    }
    let err = rtc::dtls::DtlsError::NoExtendedMasterSecret;
    assert_eq!(
        server.poll_event(),
        Some(rtc::dtls::DtlsEvent::Failed(err.clone()))
    );
    assert!(err.to_string().contains("extended_master_secret"));
    let alert = server.poll_datagram().unwrap();
    assert_eq!((alert[0], &alert[13..]), (21, &[2u8, 40][..])); // fatal handshake_failure
    assert!(server.poll_datagram().is_none());
}

/// The epoch-0 handshake messages of a 1.3 server's datagrams (the protected records, which
/// start with a unified header, are skipped) and how many protected records there were.
fn plaintext_messages(datagrams: &[Vec<u8>], first_seq: u16) -> (Vec<Message>, usize) {
    let mut plain = Vec::new();
    let mut protected = 0;
    for d in datagrams {
        let mut r = Reader::new(d, "test");
        let mut out = Vec::new();
        while !r.is_empty() {
            if rtc::dtls::record13::is_unified(d[d.len() - r.len()]) {
                rtc::dtls::record13::Ciphertext::parse(&mut r).unwrap();
                protected += 1;
            } else {
                let start = d.len() - r.len();
                Record::parse(&mut r).unwrap();
                out.extend_from_slice(&d[start..d.len() - r.len()]);
            }
        }
        if !out.is_empty() {
            plain.push(out);
        }
    }
    (messages(&plain, first_seq), protected)
}

fn server_hello(m: &Message) -> rtc::dtls::msgs::ServerHello {
    let Handshake::ServerHello(sh) = Handshake::parse(m.msg_type, &m.body).unwrap() else {
        panic!("expected ServerHello, got type {}", m.msg_type)
    };
    sh
}

/// The 1.3 answer: ServerHello choosing DTLS 1.3 and X25519MLKEM768 (a 1120-byte share:
/// ML-KEM ciphertext and x25519 key), then the rest of the flight protected in epoch 2.
fn check_13_flight(browser: &str, flight: &[Vec<u8>], seq: u16) {
    assert!(flight.iter().all(|d| d.len() <= 1200), "{browser}");
    let (msgs, protected) = plaintext_messages(flight, seq);
    assert_eq!(
        msgs.len(),
        1,
        "{browser}: only the ServerHello is in the clear"
    );
    let sh = server_hello(&msgs[0]);
    assert_ne!(sh.random, HRR_RANDOM);
    assert_eq!(sh.version, DTLS1_2, "legacy_version");
    assert_eq!(sh.cipher_suite, 0x1301, "TLS_AES_128_GCM_SHA256");
    assert_eq!(sh.extensions.selected_version, Some(DTLS1_3));
    let (group, share) = sh.extensions.server_share.as_ref().unwrap();
    assert_eq!((*group, share.len()), (0x11ec, 1120), "{browser}");
    // EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify, Finished.
    assert!(protected >= 5, "{browser}: {protected} protected records");
}

fn check_browser_13(browser: &str) {
    let (ch, frags) = client_hello(browser);
    let (f1, f2) = (frags[0].clone(), frags[1].clone());
    for order in [vec![&f1, &f2], vec![&f2, &f1], vec![&f1, &f1, &f2, &f2]] {
        let now = Instant::now();
        // From an address ICE validated: the ServerHello at once (RFC 9147 §5.1).
        let mut server = Dtls::new_server(config(13), Fingerprint([0; 32]), b"ice", Rng::seeded(1));
        for d in &order {
            server.handle_validated_datagram(now, d);
        }
        let flight: Vec<Vec<u8>> = std::iter::from_fn(|| server.poll_datagram()).collect();
        check_13_flight(browser, &flight, 0);
        assert_eq!(server.version(), DtlsVersion::V13);
        assert_eq!(server.group(), Some(0x11ec));
        assert_eq!(server.poll_event(), None);

        // From anywhere else: a stateless HelloRetryRequest with a cookie and no key_share
        // (the browser already sent a share for the group we want, RFC 8446 §4.2.8).
        let mut server =
            Dtls::new_server(config(14), Fingerprint([0; 32]), b"addr", Rng::seeded(2));
        for d in &order {
            server.handle_datagram(now, d);
        }
        let out: Vec<Vec<u8>> = std::iter::from_fn(|| server.poll_datagram()).collect();
        assert_eq!(out.len(), 1, "{browser}: one HelloRetryRequest");
        let msgs = messages(&out, 0);
        let hrr = server_hello(&msgs[0]);
        assert_eq!(hrr.random, HRR_RANDOM);
        assert_eq!(hrr.extensions.selected_version, Some(DTLS1_3));
        assert_eq!(hrr.extensions.hrr_group, None);
        let cookie = hrr.extensions.cookie.clone().unwrap();
        // No state before the cookie: the same hello gets the same HelloRetryRequest.
        server.handle_datagram(now, &f1);
        server.handle_datagram(now, &f2);
        let again = messages(&[server.poll_datagram().unwrap()], 0);
        assert_eq!(again[0].body, msgs[0].body);
        assert_eq!(server.version(), DtlsVersion::V12, "nothing chosen yet");

        // The browser's second ClientHello: the same with our cookie, message_seq 1.
        let mut ch2 = ch.clone();
        ch2.extensions.cookie = Some(cookie.clone());
        for d in fragmented(&ch2, 1, 2).iter().rev() {
            server.handle_datagram(now, d);
        }
        let flight: Vec<Vec<u8>> = std::iter::from_fn(|| server.poll_datagram()).collect();
        check_13_flight(browser, &flight, 1);
        assert_eq!(server.poll_event(), None, "{browser}");

        // A cookie made for another address is dropped without an answer.
        let mut other =
            Dtls::new_server(config(14), Fingerprint([0; 32]), b"other", Rng::seeded(3));
        for d in fragmented(&ch2, 1, 2) {
            other.handle_datagram(now, &d);
        }
        assert_eq!(other.poll_datagram(), None);
        assert_eq!(other.poll_event(), None);
    }
}

#[test]
fn chromium_client_hello_answered_with_dtls13() {
    check_browser_13("chromium");
}

#[test]
fn firefox_client_hello_answered_with_dtls13() {
    check_browser_13("firefox");
}
