//! Two peers of ours in memory — a lite server and a controlling client — through ICE, DTLS
//! and SRTP, with a fake clock. (Interop with independent stacks is tested at the server.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::dtls::DtlsCertificate;
use crate::rtcp::RtcpWriter;
use crate::rtp::RtpHeader;

const SERVER: &str = "10.0.0.1:5000";
const CLIENT: &str = "10.0.0.2:6000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Pair {
    now: Instant,
    server: Peer,
    client: Peer,
    server_events: Vec<PeerEvent>,
    client_events: Vec<PeerEvent>,
    /// Drop every n-th datagram (0: none), counted over both directions.
    drop_every: usize,
    sent: usize,
    /// Every DTLS datagram delivered, with its direction (true: to the server).
    dtls: Vec<(bool, Vec<u8>)>,
}

fn pair(seed: u64) -> Pair {
    let mut rng = Rng::seeded(seed);
    let server_cert = DtlsCertificate::generate(&mut rng).unwrap();
    let client_cert = DtlsCertificate::generate(&mut rng).unwrap();
    let (server_fp, client_fp) = (server_cert.fingerprint(), client_cert.fingerprint());
    let server_cfg = Arc::new(DtlsConfig::new(server_cert, &mut rng));
    let client_cfg = Arc::new(DtlsConfig::new(client_cert, &mut rng));
    let now = Instant::now();
    let server_creds = Credentials::random(&mut rng);
    let client_creds = Credentials::random(&mut rng);
    let client = Peer::new_controlling(
        now,
        client_cfg,
        client_creds.clone(),
        &server_creds,
        addr(CLIENT),
        &[addr(SERVER)],
        &PeerSetup {
            remote_fingerprint: server_fp,
            dtls_client: true,
        },
        Rng::seeded(seed + 1),
    );
    let server = Peer::new_lite(
        now,
        server_cfg,
        server_creds,
        &client_creds,
        &PeerSetup {
            remote_fingerprint: client_fp,
            dtls_client: false,
        },
        Rng::seeded(seed + 2),
    );
    Pair {
        now,
        server,
        client,
        server_events: Vec::new(),
        client_events: Vec::new(),
        drop_every: 0,
        sent: 0,
        dtls: Vec::new(),
    }
}

impl Pair {
    /// Delivers everything queued, then advances to the next timer (at most `step`).
    fn step(&mut self, step: Duration) {
        let mut moved = true;
        while moved {
            moved = false;
            while let Some(t) = self.client.poll_transmit() {
                moved = true;
                assert_eq!((t.source, t.destination), (addr(CLIENT), addr(SERVER)));
                self.deliver(true, t.contents);
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                assert_eq!((t.source, t.destination), (addr(SERVER), addr(CLIENT)));
                self.deliver(false, t.contents);
            }
        }
        self.server_events
            .extend(std::iter::from_fn(|| self.server.poll_event()));
        self.client_events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
        let next = [self.server.poll_timeout(), self.client.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        self.now = next.map_or(self.now + step, |t| t.clamp(self.now, self.now + step));
        self.server.handle_timeout(self.now);
        self.client.handle_timeout(self.now);
    }

    fn deliver(&mut self, to_server: bool, mut bytes: Vec<u8>) {
        self.sent += 1;
        if self.drop_every != 0 && self.sent.is_multiple_of(self.drop_every) {
            return;
        }
        if demux::classify(&bytes) == Class::Dtls {
            self.dtls.push((to_server, bytes.clone()));
        }
        let got = if to_server {
            self.server
                .handle_datagram(self.now, addr(CLIENT), addr(SERVER), &mut bytes)
        } else {
            self.client
                .handle_datagram(self.now, addr(SERVER), addr(CLIENT), &mut bytes)
        };
        assert_eq!(
            got,
            Received::Nothing,
            "no media before the test sends some"
        );
    }

    fn connect(&mut self) {
        for _ in 0..2000 {
            if self.server.is_connected() && self.client.is_connected() {
                return;
            }
            self.step(Duration::from_millis(100));
        }
        panic!(
            "no connection: server {:?} client {:?}",
            self.server_events, self.client_events
        );
    }
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let header = RtpHeader {
        marker: true,
        payload_type: 96,
        sequence_number: seq,
        timestamp: 9000,
        ssrc: 0x1234,
        ..Default::default()
    };
    let mut out = Vec::new();
    header.write_vec(payload, 0, &mut out).unwrap();
    out
}

#[test]
fn connects_and_carries_srtp_both_ways() {
    let mut p = pair(1);
    p.connect();
    assert!(
        p.server_events.iter().any(
            |e| matches!(e, PeerEvent::IceConnected { remote, .. } if *remote == addr(CLIENT))
        )
    );
    assert!(p.server_events.iter().any(|e| matches!(
        e,
        PeerEvent::Connected {
            profile: SrtpProfile::AeadAes128Gcm,
            ..
        }
    )));
    assert!(
        p.client_events
            .iter()
            .any(|e| matches!(e, PeerEvent::Connected { .. }))
    );
    assert_eq!(p.server.path(), Some((addr(CLIENT), addr(SERVER))));

    // Client → server RTP, protected in place and unprotected into a borrowed view.
    let plain = rtp(7, b"hello media");
    let mut buf = plain.clone();
    buf.resize(plain.len() + 16, 0);
    let len = p.client.protect_rtp(&mut buf, plain.len()).unwrap();
    assert_ne!(&buf[12..plain.len()], &plain[12..], "payload is encrypted");
    let got = p
        .server
        .handle_datagram(p.now, addr(CLIENT), addr(SERVER), &mut buf[..len]);
    assert_eq!(got, Received::Rtp(&plain[..]));

    // Server → client RTCP.
    let mut rtcp = Vec::new();
    RtcpWriter::new(&mut rtcp).pli(1, 0x1234).unwrap();
    let mut buf = rtcp.clone();
    buf.resize(rtcp.len() + 20, 0);
    let len = p.server.protect_rtcp(&mut buf, rtcp.len()).unwrap();
    let got = p
        .client
        .handle_datagram(p.now, addr(SERVER), addr(CLIENT), &mut buf[..len]);
    assert_eq!(got, Received::Rtcp(&rtcp[..]));

    // A replay of the same SRTCP is refused and counted.
    let mut again = buf[..len].to_vec();
    let before = p.client.stats().srtp_failed;
    assert_eq!(
        p.client
            .handle_datagram(p.now, addr(SERVER), addr(CLIENT), &mut again),
        Received::Nothing
    );
    assert_eq!(p.client.stats().srtp_failed, before + 1);
}

/// The DTLS handshake type of a datagram's first record, if it is a plaintext handshake.
fn first_handshake_type(d: &[u8]) -> Option<u8> {
    (d.first() == Some(&22) && d.get(3..5) == Some(&[0, 0])).then(|| d.get(13).copied())?
}

/// Issue 10: ICE has validated the client's address with a MESSAGE-INTEGRITY check before
/// any DTLS from it is accepted, so the server answers the first ClientHello with its
/// ServerHello flight: 4 flights (2 round trips), not 6 with a HelloVerifyRequest.
#[test]
fn no_hello_verify_request_after_ice_validated_the_address() {
    let mut p = pair(3);
    p.connect();
    let flights = p.dtls.iter().map(|(to_server, _)| *to_server).fold(
        Vec::new(),
        |mut runs: Vec<bool>, dir| {
            if runs.last() != Some(&dir) {
                runs.push(dir);
            }
            runs
        },
    );
    assert_eq!(flights, [true, false, true, false], "flights by direction");
    let first_reply = p.dtls.iter().find(|(to_server, _)| !to_server).unwrap();
    assert_eq!(
        first_handshake_type(&first_reply.1),
        Some(2),
        "the server's first DTLS datagram starts with ServerHello, not HelloVerifyRequest (3)"
    );
}

#[test]
fn connects_through_loss() {
    for seed in 10..14 {
        let mut p = pair(seed);
        p.drop_every = 4;
        p.connect();
    }
}

#[test]
fn refuses_media_and_dtls_from_addresses_ice_did_not_validate() {
    let mut p = pair(2);
    p.connect();
    let plain = rtp(1, b"x");
    let mut buf = plain.clone();
    buf.resize(plain.len() + 16, 0);
    let len = p.client.protect_rtp(&mut buf, plain.len()).unwrap();
    let stranger = addr("10.0.0.66:6666");
    assert_eq!(
        p.server
            .handle_datagram(p.now, stranger, addr(SERVER), &mut buf[..len]),
        Received::Nothing
    );
    let mut dtls = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        p.server
            .handle_datagram(p.now, stranger, addr(SERVER), &mut dtls),
        Received::Nothing
    );
    assert_eq!(p.server.stats().unvalidated, 2);
    // Garbage of every class from the real peer is dropped without harm.
    for first in [0u8, 1, 20, 63, 64, 127, 128, 191, 192, 255] {
        let mut junk = vec![first; 40];
        assert_eq!(
            p.server
                .handle_datagram(p.now, addr(CLIENT), addr(SERVER), &mut junk),
            Received::Nothing
        );
    }
    assert!(p.server.is_connected());
}

#[test]
fn close_notify_reaches_the_other_side() {
    let mut p = pair(3);
    p.connect();
    p.server.close(p.now);
    p.step(Duration::from_millis(10));
    assert!(
        p.server_events
            .contains(&PeerEvent::Disconnected(DisconnectCause::ClosedLocally))
    );
    assert!(
        p.client_events
            .contains(&PeerEvent::Disconnected(DisconnectCause::ClosedByPeer))
    );
    let mut buf = vec![0u8; 64];
    assert_eq!(
        p.server.protect_rtp(&mut buf, 20),
        Err(PeerError::NotConnected)
    );
}

#[test]
fn consent_expiry_disconnects_the_server() {
    let mut p = pair(4);
    p.connect();
    // The client vanishes: only the server's clock moves.
    let mut now = p.now;
    for _ in 0..40 {
        now += Duration::from_secs(1);
        p.server.handle_timeout(now);
    }
    let events: Vec<_> = std::iter::from_fn(|| p.server.poll_event()).collect();
    assert!(
        events.contains(&PeerEvent::Disconnected(DisconnectCause::Ice(
            DisconnectReason::ConsentExpired
        ))),
        "{events:?}"
    );
}

/// Valid checks from 200 more addresses (a peer that knows the password, or a NAT that
/// keeps rebinding): the peer keeps a bounded set, reports each address it forgets, and
/// never forgets the selected path — media from it still gets through.
#[test]
fn many_validated_addresses_never_push_out_the_selected_path() {
    use crate::stun::{Class, Key, MessageBuilder, Method, TransactionId};
    let mut p = pair(3);
    p.connect();
    let key = Key::new(p.server.local_credentials().pwd.as_bytes());
    let username = format!(
        "{}:{}",
        p.server.local_credentials().ufrag,
        p.client.local_credentials().ufrag
    );
    p.server_events.clear();
    for n in 0..200u16 {
        let mut check = Vec::new();
        let mut tid = [0u8; 12];
        tid[..2].copy_from_slice(&n.to_be_bytes());
        MessageBuilder::new(
            &mut check,
            Class::Request,
            Method::BINDING,
            TransactionId(tid),
        )
        .username(username.as_bytes())
        .priority(1)
        .ice_controlling(1)
        .message_integrity(&key)
        .fingerprint();
        let from = SocketAddr::from(([10, 0, 1 + (n / 250) as u8, (n % 250) as u8], 7000 + n));
        p.now += Duration::from_millis(10);
        p.server
            .handle_datagram(p.now, from, addr(SERVER), &mut check);
        while p.server.poll_transmit().is_some() {}
        p.server_events
            .extend(std::iter::from_fn(|| p.server.poll_event()));
    }
    let count = |f: fn(&PeerEvent) -> bool| p.server_events.iter().filter(|e| f(e)).count();
    let validated = count(|e| matches!(e, PeerEvent::AddressValidated { .. }));
    let removed = count(|e| matches!(e, PeerEvent::AddressRemoved { .. }));
    assert_eq!(validated, 200);
    // The client's address plus 15 others are kept.
    assert_eq!(validated - removed, MAX_VALIDATED - 1);
    assert!(
        !p.server_events
            .iter()
            .any(|e| matches!(e, PeerEvent::AddressRemoved { remote } if *remote == addr(CLIENT)))
    );
    assert_eq!(p.server.path(), Some((addr(CLIENT), addr(SERVER))));
    let plain = rtp(9, b"still here");
    let mut buf = plain.clone();
    buf.resize(plain.len() + 16, 0);
    let len = p.client.protect_rtp(&mut buf, plain.len()).unwrap();
    let got = p
        .server
        .handle_datagram(p.now, addr(CLIENT), addr(SERVER), &mut buf[..len]);
    assert_eq!(got, Received::Rtp(&plain[..]));
}
