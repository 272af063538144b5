//! Our client-side peer (`Peer::new_controlling`) against an independent *full* ICE agent:
//! str0m, not ICE-lite, in the controlled role, as a WHEP server that is not leanrtc would
//! be (issue 11: stock pion as origin stays in `checking` forever). A full controlled agent
//! only selects a pair the controlling side nominated once its *own* check on that pair has
//! succeeded (RFC 8445 §7.3.1.5, §8.1.1), so this connects only if we answer its checks —
//! and it stays connected only if we keep answering its consent checks (RFC 7675).
//!
//! In memory, on a fake clock (no sleeps, no sockets), with a fixed one-way delay.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::dtls::{DtlsCertificate, DtlsConfig, Fingerprint};
use rtc::ice::Credentials;
use rtc::peer::{Peer, PeerEvent, PeerSetup, Received};
use rtc::rand::Rng;
use rtc::rtp::{RtpHeader, RtpPacket};
use rtc::stun::{self, Class, Method};
use str0m::media::{MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig};

/// Our client.
fn ours() -> SocketAddr {
    "10.0.0.2:6000".parse().unwrap()
}

/// str0m's host candidate.
fn theirs() -> SocketAddr {
    "10.0.0.1:5000".parse().unwrap()
}

/// A candidate in str0m's answer that nothing answers on.
fn black_hole() -> SocketAddr {
    "10.0.0.99:5000".parse().unwrap()
}

/// Opus, which str0m's default codec config carries under this payload type.
const PT: u8 = 111;
/// One-way delay: enough for str0m's first DTLS flight (sent as soon as its side of ICE is
/// done) to race the answer to our nomination.
const LATENCY: Duration = Duration::from_millis(20);
const OUR_SSRC: u32 = 0x1111;
const THEIR_SSRC: u32 = 0x2222;

struct Sim {
    now: Instant,
    start: Instant,
    peer: Peer,
    str0m: Rtc,
    str0m_timeout: Instant,
    peer_events: Vec<(Duration, PeerEvent)>,
    str0m_connected: Option<Duration>,
    str0m_ice: Vec<(Duration, IceConnectionState)>,
    /// str0m's Binding requests (when sent, transaction ID) and the transaction IDs of our
    /// success responses: str0m itself tolerates unanswered consent checks while it keeps
    /// receiving ours, so whether we answer is checked on the wire.
    str0m_requests: Vec<(Duration, [u8; 12])>,
    our_successes: Vec<[u8; 12]>,
    /// Transaction IDs of our checks with USE-CANDIDATE.
    our_nominations: Vec<[u8; 12]>,
    /// The network loses str0m's first answer to one of them.
    lose_nomination_answer: bool,
    /// Datagrams on the way: (arrival, to str0m?, bytes).
    flight: Vec<(Instant, bool, Vec<u8>)>,
    /// Payloads of RTP each side received.
    str0m_rtp: Vec<Vec<u8>>,
    peer_rtp: Vec<Vec<u8>>,
}

impl Sim {
    /// str0m as a full (non-lite) controlled agent, DTLS client if `str0m_active` (as
    /// pion answers by default) or else server; our peer checks `ours()` → each of
    /// `candidates` (what str0m's answer would list).
    fn new(seed: u64, candidates: &[SocketAddr], str0m_active: bool) -> Self {
        let now = Instant::now();
        let mut rng = Rng::seeded(seed);
        let cert = DtlsCertificate::generate(&mut rng).unwrap();
        let our_fp = cert.fingerprint();
        let dtls = Arc::new(DtlsConfig::new(cert, &mut rng));
        let our_creds = Credentials::random(&mut rng);

        let mut str0m = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .set_ice_lite(false)
            .set_rtp_mode(true)
            .build(now);
        str0m.add_local_candidate(Candidate::host(theirs(), "udp").unwrap());
        str0m.add_remote_candidate(Candidate::host(ours(), "udp").unwrap());
        let mid: Mid = "0".into();
        let (their_creds, their_fp) = {
            let mut api = str0m.direct_api();
            api.set_ice_controlling(false);
            api.set_remote_ice_credentials(IceCreds {
                ufrag: our_creds.ufrag.clone(),
                pass: our_creds.pwd.clone(),
            });
            api.set_remote_fingerprint(str0m::config::Fingerprint {
                hash_func: "sha-256".into(),
                bytes: our_fp.0.to_vec(),
            });
            api.start_dtls(str0m_active).unwrap();
            api.declare_media(mid, MediaKind::Audio);
            api.expect_stream_rx(Ssrc::from(OUR_SSRC), None, mid, None);
            api.declare_stream_tx(Ssrc::from(THEIR_SSRC), None, mid, None);
            (
                api.local_ice_credentials(),
                api.local_dtls_fingerprint().clone(),
            )
        };
        assert_eq!(their_fp.hash_func, "sha-256");
        let remote = Credentials::from_peer(&their_creds.ufrag, &their_creds.pass).unwrap();
        let peer = Peer::new_controlling(
            now,
            dtls,
            our_creds,
            &remote,
            ours(),
            candidates,
            &PeerSetup {
                remote_fingerprint: Fingerprint(their_fp.bytes.try_into().unwrap()),
                dtls_client: !str0m_active,
            },
            Rng::seeded(seed + 1),
        );
        let mut sim = Self {
            now,
            start: now,
            peer,
            str0m,
            str0m_timeout: now,
            peer_events: Vec::new(),
            str0m_connected: None,
            str0m_ice: Vec::new(),
            str0m_requests: Vec::new(),
            our_successes: Vec::new(),
            our_nominations: Vec::new(),
            lose_nomination_answer: false,
            flight: Vec::new(),
            str0m_rtp: Vec::new(),
            peer_rtp: Vec::new(),
        };
        sim.str0m.handle_input(Input::Timeout(now)).unwrap();
        sim
    }

    /// Takes what both sides want sent into the network (each datagram arrives `LATENCY`
    /// later) and records their events.
    fn collect(&mut self) {
        let at = self.now - self.start;
        while let Some(t) = self.peer.poll_transmit() {
            assert_eq!(t.source, ours());
            if t.destination != theirs() {
                continue; // the black hole
            }
            if let Some((Class::Success, tid)) = stun_kind(&t.contents) {
                self.our_successes.push(tid);
            }
            if let Some(m) = stun::parse(&t.contents).ok().filter(|m| m.use_candidate()) {
                self.our_nominations.push(m.transaction_id().0);
            }
            self.flight.push((self.now + LATENCY, true, t.contents));
        }
        loop {
            match self.str0m.poll_output().unwrap() {
                Output::Timeout(when) => {
                    self.str0m_timeout = when;
                    break;
                }
                Output::Transmit(t) => {
                    assert_eq!((t.source, t.destination), (theirs(), ours()));
                    match stun_kind(&t.contents) {
                        Some((Class::Request, tid)) => self.str0m_requests.push((at, tid)),
                        Some((Class::Success, tid))
                            if self.lose_nomination_answer
                                && self.our_nominations.contains(&tid) =>
                        {
                            self.lose_nomination_answer = false;
                            continue;
                        }
                        _ => {}
                    }
                    self.flight
                        .push((self.now + LATENCY, false, t.contents.to_vec()));
                }
                Output::Event(Event::Connected) => self.str0m_connected = Some(at),
                Output::Event(Event::IceConnectionStateChange(s)) => self.str0m_ice.push((at, s)),
                Output::Event(Event::RtpPacket(p)) => self.str0m_rtp.push(p.payload.to_vec()),
                Output::Event(_) => {}
            }
        }
        self.peer_events
            .extend(std::iter::from_fn(|| self.peer.poll_event()).map(|e| (at, e)));
    }

    /// Delivers the datagrams due by now, in the order they were sent.
    fn deliver(&mut self) {
        let now = self.now;
        let (due, later) = std::mem::take(&mut self.flight)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.flight = later;
        for (_, to_str0m, mut bytes) in due {
            if to_str0m {
                let receive = Receive {
                    proto: Protocol::Udp,
                    source: ours(),
                    destination: theirs(),
                    contents: bytes.as_slice().try_into().unwrap(),
                };
                self.str0m
                    .handle_input(Input::Receive(now, receive))
                    .unwrap();
            } else if let Received::Rtp(rtp) =
                self.peer.handle_datagram(now, theirs(), ours(), &mut bytes)
            {
                let packet = RtpPacket::parse(rtp).unwrap();
                self.peer_rtp.push(packet.payload().to_vec());
            }
            self.collect();
        }
    }

    /// Runs both sides and the network until `until` after the start.
    fn run(&mut self, until: Duration) {
        let end = self.start + until;
        loop {
            self.collect();
            let next = [self.peer.poll_timeout(), Some(self.str0m_timeout)]
                .into_iter()
                .chain(self.flight.iter().map(|(at, _, _)| Some(*at)))
                .flatten()
                .min()
                .unwrap_or(end);
            if next > end {
                self.now = end;
                return;
            }
            self.now = next.max(self.now);
            self.deliver();
            if self.peer.poll_timeout().is_some_and(|t| t <= self.now) {
                self.peer.handle_timeout(self.now);
            }
            if self.now >= self.str0m_timeout {
                self.str0m.handle_input(Input::Timeout(self.now)).unwrap();
            }
        }
    }

    fn peer_connected(&self) -> Option<Duration> {
        self.peer_events
            .iter()
            .find(|(_, e)| matches!(e, PeerEvent::Connected { .. }))
            .map(|(at, _)| *at)
    }

    /// One RTP packet each way; returns whether both arrived.
    fn media_both_ways(&mut self, seq: u16) -> bool {
        let (str0m_before, peer_before) = (self.str0m_rtp.len(), self.peer_rtp.len());
        let payload = format!("from leanrtc {seq}").into_bytes();
        let header = RtpHeader {
            payload_type: PT,
            sequence_number: seq,
            timestamp: u32::from(seq) * 960,
            ssrc: OUR_SSRC,
            ..Default::default()
        };
        let mut buf = Vec::new();
        header.write_vec(&payload, 0, &mut buf).unwrap();
        let len = buf.len();
        buf.resize(len + 64, 0);
        let len = self.peer.protect_rtp(&mut buf, len).unwrap();
        let (_, local) = self.peer.path().unwrap();
        assert_eq!(local, ours());
        buf.truncate(len);
        self.flight.push((self.now + LATENCY, true, buf));

        let wallclock = self.now;
        let mut api = self.str0m.direct_api();
        let tx = api.stream_tx(&Ssrc::from(THEIR_SSRC)).unwrap();
        let back = format!("from str0m {seq}").into_bytes();
        let time = u32::from(seq) * 960;
        tx.write_rtp(RtpWrite::new(
            Pt::from(PT),
            u64::from(seq).into(),
            time,
            wallclock,
            back.as_slice(),
        ));
        // str0m paces its sending: give it a moment.
        let until = self.now - self.start + Duration::from_millis(100);
        self.run(until);
        self.str0m_rtp[str0m_before..].contains(&payload)
            && self.peer_rtp[peer_before..].contains(&back)
    }
}

/// A Binding message's class and transaction ID.
fn stun_kind(bytes: &[u8]) -> Option<(Class, [u8; 12])> {
    let msg = stun::parse(bytes).ok()?;
    (msg.method() == Method::BINDING).then(|| (msg.class(), msg.transaction_id().0))
}

fn assert_connects(sim: &mut Sim) {
    sim.run(Duration::from_secs(10));
    assert!(
        sim.peer_connected().is_some() && sim.str0m_connected.is_some(),
        "no connection within 10 s: our events {:?}, str0m's ICE states {:?}, \
         str0m DTLS connected {:?}",
        sim.peer_events,
        sim.str0m_ice,
        sim.str0m_connected
    );
    let peer = sim.peer_connected().unwrap();
    let str0m = sim.str0m_connected.unwrap();
    assert!(
        peer < Duration::from_millis(500) && str0m < Duration::from_millis(500),
        "connected late: we after {peer:?}, str0m after {str0m:?}"
    );
    assert!(
        sim.media_both_ways(1),
        "SRTP did not get through: str0m got {:?}, we got {:?}",
        sim.str0m_rtp,
        sim.peer_rtp
    );
}

/// The WHEP-client case of issue 11: we connect (ICE + DTLS) to a full-ICE server and
/// exchange SRTP both ways, then stay connected for two minutes — longer than either
/// side's consent timeout — because each answers the other's consent checks.
#[test]
fn connects_to_a_full_ice_str0m_and_keeps_consent() {
    let mut sim = Sim::new(1, &[theirs()], false);
    assert_connects(&mut sim);
    sim.run(Duration::from_secs(120));
    // str0m's consent checks after the first seconds, all answered.
    let late: Vec<_> = (sim.str0m_requests.iter())
        .filter(|(at, _)| *at > Duration::from_secs(5))
        .collect();
    assert!(late.len() >= 10, "str0m sent {} checks", late.len());
    for (at, tid) in late {
        assert!(
            sim.our_successes.contains(tid),
            "str0m's check at {at:?} went unanswered"
        );
    }
    assert!(
        !sim.peer_events
            .iter()
            .any(|(_, e)| matches!(e, PeerEvent::Disconnected(_))),
        "{:?}",
        sim.peer_events
    );
    let last_ice = sim.str0m_ice.last().map(|(_, s)| *s);
    assert!(
        matches!(
            last_ice,
            Some(IceConnectionState::Connected | IceConnectionState::Completed)
        ),
        "str0m's ICE states: {:?}",
        sim.str0m_ice
    );
    assert!(sim.media_both_ways(2), "no SRTP after two minutes");
}

/// str0m's answer lists only an address nothing answers on; its checks from its real
/// address teach us a peer-reflexive candidate (RFC 8445 §7.3.1.3), whose triggered check
/// (§7.3.1.4) succeeds and is nominated.
#[test]
fn learns_a_peer_reflexive_candidate_from_str0m_checks() {
    let mut sim = Sim::new(2, &[black_hole()], false);
    assert_connects(&mut sim);
    assert_eq!(sim.peer.path(), Some((theirs(), ours())));
}

/// str0m as the DTLS client, which sends its ClientHello as soon as its own ICE side
/// is done — possibly before our nomination's answer reaches us.
#[test]
fn connects_to_a_full_ice_str0m_that_is_the_dtls_client() {
    let mut sim = Sim::new(3, &[theirs()], true);
    assert_connects(&mut sim);
}

/// As above, and the answer to our nomination is lost: str0m's side of ICE is done, so its
/// ClientHello arrives while our nomination waits for its retransmission (500 ms). The
/// pair was checked both ways already, so the peer takes the ClientHello from that
/// address instead of dropping it and waiting a second for str0m's DTLS retransmission.
#[test]
fn dtls_from_a_full_peer_need_not_wait_for_our_nomination() {
    let mut sim = Sim::new(4, &[theirs()], true);
    sim.lose_nomination_answer = true;
    assert_connects(&mut sim);
    assert!(!sim.lose_nomination_answer, "no nomination answer was lost");
    let ice = (sim.peer_events.iter())
        .find(|(_, e)| matches!(e, PeerEvent::IceConnected { .. }))
        .map(|(at, _)| *at)
        .unwrap();
    assert!(
        ice >= Duration::from_millis(500),
        "ICE connected at {ice:?}"
    );
}
