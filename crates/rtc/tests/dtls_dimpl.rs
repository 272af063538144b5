//! Our DTLS against dimpl (str0m's independent sans-IO DTLS), both roles, in memory over a
//! seeded link that drops 20 %, duplicates and reorders datagrams, with a fake clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dtls_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_common::*;
use rtc::dtls::{Dtls, DtlsEvent, DtlsVersion, Fingerprint};
use rtc::rand::Rng;

/// Which dimpl: DTLS 1.2 only, both versions, or 1.3 only (with one key exchange group).
#[derive(Clone, Copy)]
enum Mode {
    V12,
    Auto,
    V13(Option<dimpl::NamedGroup>),
}

/// dimpl as an [`Endpoint`].
struct Dimpl {
    dtls: dimpl::Dtls,
    next: Option<Instant>,
    keys: Option<Vec<u8>>,
    profile: Option<dimpl::SrtpProfile>,
    peer_cert: Option<Vec<u8>>,
    data: Vec<Vec<u8>>,
    error: Option<String>,
}

impl Dimpl {
    fn new(active: bool, mode: Mode, seed: u64, now: Instant) -> (Self, Vec<u8>) {
        let cert = dimpl::certificate::generate_self_signed_certificate().unwrap();
        let der = cert.certificate.clone();
        let mut builder = dimpl::Config::builder()
            .dangerously_set_rng_seed(seed)
            .flight_retries(10)
            .handshake_timeout(Duration::from_secs(300));
        if let Mode::V13(Some(group)) = mode {
            builder = builder.kx_groups(&[group]);
        }
        let config = Arc::new(builder.build().unwrap());
        let mut dtls = match mode {
            Mode::Auto => dimpl::Dtls::new_auto(config, cert, now),
            Mode::V12 => dimpl::Dtls::new_12(config, cert, now),
            Mode::V13(_) => dimpl::Dtls::new_13(config, cert, now),
        };
        dtls.set_active(active);
        let d = Dimpl {
            dtls,
            next: None,
            keys: None,
            profile: None,
            peer_cert: None,
            data: vec![],
            error: None,
        };
        (d, der)
    }
}

impl Endpoint for Dimpl {
    fn input(&mut self, now: Instant, datagram: &[u8]) {
        if let Err(e) = self.dtls.handle_timeout(now) {
            self.error.get_or_insert(e.to_string());
        }
        if let Err(e) = self.dtls.handle_packet(datagram) {
            self.error.get_or_insert(e.to_string());
        }
    }
    fn timeout(&mut self, now: Instant) {
        if let Err(e) = self.dtls.handle_timeout(now) {
            self.error.get_or_insert(e.to_string());
        }
    }
    fn output(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 2048];
        loop {
            match self.dtls.poll_output(&mut buf) {
                dimpl::Output::Packet(p) => out.push(p.to_vec()),
                dimpl::Output::BufferTooSmall { needed } => buf.resize(needed, 0),
                dimpl::Output::Timeout(t) => {
                    self.next = Some(t);
                    break;
                }
                dimpl::Output::PeerCert(c) => self.peer_cert = Some(c.to_vec()),
                dimpl::Output::KeyingMaterial(k, p) => {
                    self.keys = Some(k.to_vec());
                    self.profile = Some(p);
                }
                dimpl::Output::ApplicationData(d) => self.data.push(d.to_vec()),
                _ => {}
            }
        }
        out
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.next
    }
    fn keys(&self) -> Option<Vec<u8>> {
        self.keys.clone()
    }
}

fn our_side(client: bool, peer_der: &[u8], seed: u64, now: Instant) -> (Ours, Vec<u8>) {
    let cfg = config(seed);
    let der = cfg.certificate().der().to_vec();
    let fp = Fingerprint::of(peer_der);
    let dtls = if client {
        Dtls::new_client(cfg, fp, Rng::seeded(seed), now)
    } else {
        Dtls::new_server(cfg, fp, b"127.0.0.1:5000", Rng::seeded(seed))
    };
    (
        Ours {
            dtls,
            events: vec![],
        },
        der,
    )
}

fn run(our_client: bool, mode: Mode, seed: u64, drop: f64) -> usize {
    run_with(our_client, mode, seed, drop, false)
}

/// `validated`: our server skips the cookie exchange, as behind ICE.
fn run_with(our_client: bool, mode: Mode, seed: u64, drop: f64, validated: bool) -> usize {
    let now = Instant::now();
    let (mut theirs, their_der) = Dimpl::new(!our_client, mode, seed, now);
    let (ours, our_der) = our_side(our_client, &their_der, seed, now);
    let mut link = Link::new(seed, drop);
    let mut ours = Validated(ours);
    let took = if validated {
        link.run(now, &mut ours, &mut theirs, Duration::from_secs(200))
    } else {
        link.run(now, &mut ours.0, &mut theirs, Duration::from_secs(200))
    };
    let mut ours = ours.0;
    let expected = match mode {
        Mode::V12 => DtlsVersion::V12,
        Mode::Auto | Mode::V13(_) => DtlsVersion::V13,
    };
    assert_eq!(ours.dtls.version(), expected, "seed {seed}");
    if let Mode::V13(Some(group)) = mode {
        let ours_group = ours.dtls.group().unwrap();
        assert_eq!(ours_group, group.as_u16(), "seed {seed}");
    }
    assert!(
        took.is_some(),
        "seed {seed}: no handshake; ours {:?}, dimpl error {:?}",
        ours.events,
        theirs.error
    );
    assert_eq!(ours.keys(), theirs.keys(), "seed {seed}");
    eprintln!(
        "seed {seed}: {took:?} simulated, {} delivered, {} dropped",
        link.delivered, link.dropped
    );
    assert_eq!(theirs.profile, Some(dimpl::SrtpProfile::AEAD_AES_128_GCM));
    assert_eq!(theirs.peer_cert.as_deref(), Some(our_der.as_slice()));
    // Application data both ways over the same lossy link is best effort; on a clean hop:
    ours.dtls.send_application_data(b"hello dimpl").unwrap();
    for d in ours.output() {
        theirs.input(now, &d);
    }
    theirs.output();
    assert_eq!(theirs.data, [b"hello dimpl".to_vec()]);
    theirs.dtls.send_application_data(b"hello leanrtc").unwrap();
    for d in theirs.output() {
        ours.input(now, &d);
    }
    assert!(
        ours.events
            .contains(&DtlsEvent::ApplicationData(b"hello leanrtc".to_vec()))
    );
    link.dropped
}

#[test]
fn our_server_dimpl_client_clean() {
    assert_eq!(run(false, Mode::V12, 1, 0.0), 0);
}

#[test]
fn our_client_dimpl_server_clean() {
    assert_eq!(run(true, Mode::V12, 2, 0.0), 0);
}

#[test]
fn our_server_dimpl_client_lossy() {
    let dropped: usize = (10..20).map(|seed| run(false, Mode::V12, seed, 0.2)).sum();
    assert!(dropped >= 10, "{dropped}");
}

#[test]
fn our_client_dimpl_server_lossy() {
    let dropped: usize = (20..30).map(|seed| run(true, Mode::V12, seed, 0.2)).sum();
    assert!(dropped >= 10, "{dropped}");
}

/// Behind ICE our server sends no HelloVerifyRequest; dimpl's client takes the ServerHello
/// at once (RFC 6347 §4.2.1 makes the cookie optional), clean and lossy.
#[test]
fn our_server_without_cookie_dimpl_client() {
    assert_eq!(run_with(false, Mode::V12, 50, 0.0, true), 0);
    let dropped: usize = (51..61)
        .map(|seed| run_with(false, Mode::V12, seed, 0.2, true))
        .sum();
    assert!(dropped >= 3, "{dropped}");
    let dropped: usize = (61..71)
        .map(|seed| run_with(false, Mode::Auto, seed, 0.2, true))
        .sum();
    assert!(dropped >= 3, "{dropped}");
}

/// dimpl's auto client offers DTLS 1.3 (supported_versions, key_share) in a hybrid
/// ClientHello; we answer with 1.3 (it has no ML-KEM, so x25519).
#[test]
fn our_server_dimpl_auto_client() {
    let dropped: usize = (30..40).map(|seed| run(false, Mode::Auto, seed, 0.2)).sum();
    assert!(dropped >= 10, "{dropped}");
}

const X25519: dimpl::NamedGroup = dimpl::NamedGroup::X25519;
const P256: dimpl::NamedGroup = dimpl::NamedGroup::Secp256r1;

/// DTLS 1.3 both ways, for each group dimpl and we share, on a clean link.
#[test]
fn dtls13_both_ways_each_group_clean() {
    for (i, group) in [None, Some(X25519), Some(P256)].into_iter().enumerate() {
        let seed = 200 + i as u64;
        assert_eq!(run(false, Mode::V13(group), seed, 0.0), 0);
        assert_eq!(run_with(false, Mode::V13(group), seed, 0.0, true), 0);
        assert_eq!(run(true, Mode::V13(group), seed, 0.0), 0);
    }
}

/// Our 1.3 server (cookie exchange by HelloRetryRequest, and without it behind ICE) against
/// dimpl's 1.3 client over a link that drops 20 %, duplicates and reorders.
#[test]
fn dtls13_our_server_dimpl_client_lossy() {
    for group in [X25519, P256] {
        let dropped: usize = (300..310)
            .map(|seed| run(false, Mode::V13(Some(group)), seed, 0.2))
            .sum();
        assert!(dropped >= 10, "{dropped}");
        let dropped: usize = (310..320)
            .map(|seed| run_with(false, Mode::V13(Some(group)), seed, 0.2, true))
            .sum();
        assert!(dropped >= 10, "{dropped}");
    }
}

/// Our 1.3 client against dimpl's 1.3 server over the lossy link. dimpl has no ML-KEM: it takes
/// our x25519 share, or asks for P-256 with a HelloRetryRequest.
#[test]
fn dtls13_our_client_dimpl_server_lossy() {
    for group in [X25519, P256] {
        let dropped: usize = (400..410)
            .map(|seed| run(true, Mode::V13(Some(group)), seed, 0.2))
            .sum();
        assert!(dropped >= 10, "{dropped}");
    }
}
