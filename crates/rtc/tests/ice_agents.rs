//! The controlling agent against the lite agent, in memory, on a fake clock, over a network
//! that drops, duplicates, delays and reorders datagrams.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::Transmit;
use rtc::ice::{
    ControllingConfig, Credentials, DisconnectReason, IceControlling, IceError, IceEvent, IceLite,
};
use rtc::rand::Rng;
use rtc::stun::{self, Class, Key, MessageBuilder, Method};

fn server() -> SocketAddr {
    "192.0.2.1:3478".parse().unwrap()
}

fn client() -> SocketAddr {
    "198.51.100.7:50000".parse().unwrap()
}

/// A remote candidate that nothing answers on.
fn black_hole() -> SocketAddr {
    "192.0.2.99:3478".parse().unwrap()
}

#[derive(Clone, Copy)]
struct Net {
    loss: f64,
    duplicate: f64,
    /// Each datagram is delayed uniformly in [base, base + jitter]: reordering.
    base: Duration,
    jitter: Duration,
}

const PERFECT: Net = Net {
    loss: 0.0,
    duplicate: 0.0,
    base: Duration::from_millis(10),
    jitter: Duration::ZERO,
};

struct Sim {
    now: Instant,
    lite: IceLite,
    ctl: IceControlling,
    net: Net,
    rng: Rng,
    /// (delivery time, sequence for stable order, to the lite agent?, datagram)
    flight: Vec<(Instant, u64, bool, Transmit)>,
    seq: u64,
    partitioned: bool,
    lite_events: Vec<(Duration, IceEvent)>,
    ctl_events: Vec<(Duration, IceEvent)>,
    /// Every datagram the controlling agent sent: (time, bytes).
    ctl_sent: Vec<(Duration, Vec<u8>)>,
    start: Instant,
}

impl Sim {
    fn new(seed: u64, net: Net, config: ControllingConfig) -> Self {
        let start = Instant::now();
        let mut rng = Rng::seeded(seed);
        let server_creds = Credentials::random(&mut rng);
        let ctl = IceControlling::new(
            start,
            config,
            Rng::seeded(seed ^ 0xC0FFEE),
            &server_creds,
            client(),
            &[black_hole(), server()],
        );
        let lite = IceLite::with_credentials(start, server_creds, Some(ctl.local_credentials()));
        Self {
            now: start,
            lite,
            ctl,
            net,
            rng,
            flight: Vec::new(),
            seq: 0,
            partitioned: false,
            lite_events: Vec::new(),
            ctl_events: Vec::new(),
            ctl_sent: Vec::new(),
            start,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        f64::from(self.rng.u32()) / f64::from(u32::MAX) < p
    }

    fn send(&mut self, t: Transmit, to_lite: bool) {
        if to_lite {
            self.ctl_sent
                .push((self.now - self.start, t.contents.clone()));
        }
        if self.partitioned || self.chance(self.net.loss) {
            return;
        }
        let copies = if self.chance(self.net.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = self
                .net
                .jitter
                .mul_f64(f64::from(self.rng.u32()) / f64::from(u32::MAX));
            let at = self.now + self.net.base + jitter;
            self.seq += 1;
            self.flight.push((at, self.seq, to_lite, t.clone()));
        }
    }

    fn drain(&mut self) {
        while let Some(t) = self.ctl.poll_transmit() {
            assert_eq!(t.source, client());
            self.send(t, true);
        }
        while let Some(t) = self.lite.poll_transmit() {
            assert_eq!(t.source, server());
            self.send(t, false);
        }
        let at = self.now - self.start;
        while let Some(e) = self.lite.poll_event() {
            self.lite_events.push((at, e));
        }
        while let Some(e) = self.ctl.poll_event() {
            self.ctl_events.push((at, e));
        }
    }

    /// Runs until `until` (relative to the start), one event at a time.
    fn run(&mut self, until: Duration) {
        let end = self.start + until;
        loop {
            self.drain();
            let next_flight = self.flight.iter().map(|f| (f.0, f.1)).min();
            let next = [
                next_flight.map(|f| f.0),
                self.lite.poll_timeout(),
                self.ctl.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|&n| n <= end) else {
                self.now = end;
                return;
            };
            self.now = self.now.max(next);
            if let Some(i) = self
                .flight
                .iter()
                .position(|f| Some((f.0, f.1)) == next_flight)
                && self.flight[i].0 <= self.now
            {
                let (_, _, to_lite, t) = self.flight.swap_remove(i);
                // Datagrams to the black hole vanish; errors are the agents' business
                // (duplicates of answered checks give UnknownTransaction, for instance).
                if to_lite && t.destination == server() {
                    let _ = self
                        .lite
                        .handle_datagram(self.now, t.source, server(), &t.contents);
                } else if !to_lite {
                    let _ = self
                        .ctl
                        .handle_datagram(self.now, t.source, client(), &t.contents);
                }
            }
            self.lite.handle_timeout(self.now);
            self.ctl.handle_timeout(self.now);
        }
    }

    fn connected_at(events: &[(Duration, IceEvent)]) -> Option<Duration> {
        events
            .iter()
            .find(|(_, e)| matches!(e, IceEvent::Connected { .. }))
            .map(|(t, _)| *t)
    }

    fn disconnected(events: &[(Duration, IceEvent)]) -> Option<(Duration, DisconnectReason)> {
        events.iter().find_map(|(t, e)| match e {
            IceEvent::Disconnected { reason } => Some((*t, *reason)),
            _ => None,
        })
    }
}

#[test]
fn connect_on_a_perfect_network_and_keep_consent() {
    let mut sim = Sim::new(1, PERFECT, ControllingConfig::default());
    sim.run(Duration::from_secs(120));
    let pair = IceEvent::Connected {
        remote: server(),
        local: client(),
    };
    assert!(
        sim.ctl_events.iter().any(|(_, e)| *e == pair),
        "{:?}",
        sim.ctl_events
    );
    let lite_pair = IceEvent::Connected {
        remote: client(),
        local: server(),
    };
    assert!(sim.lite_events.iter().any(|(_, e)| *e == lite_pair));
    // Check to the black hole at 0, to the server at Ta = 50 ms, answer 20 ms later,
    // nomination and its answer another 20 ms.
    assert_eq!(
        Sim::connected_at(&sim.ctl_events),
        Some(Duration::from_millis(90))
    );
    assert_eq!(sim.ctl.selected_pair(), Some((server(), client())));
    assert_eq!(sim.lite.selected_pair(), Some((client(), server())));
    assert_eq!(Sim::disconnected(&sim.ctl_events), None);
    assert_eq!(Sim::disconnected(&sim.lite_events), None);
}

#[test]
fn connect_through_loss_duplicates_and_reordering() {
    let net = Net {
        loss: 0.15,
        duplicate: 0.2,
        base: Duration::from_millis(5),
        jitter: Duration::from_millis(200),
    };
    for seed in 0..40 {
        let mut sim = Sim::new(seed, net, ControllingConfig::default());
        sim.run(Duration::from_secs(20));
        let at = Sim::connected_at(&sim.ctl_events)
            .unwrap_or_else(|| panic!("seed {seed}: {:?}", sim.ctl_events));
        assert!(Sim::connected_at(&sim.lite_events).is_some(), "seed {seed}");
        assert!(at < Duration::from_secs(10), "seed {seed}: {at:?}");
        assert_eq!(sim.ctl.selected_pair(), Some((server(), client())));
        assert_eq!(sim.lite.selected_pair(), Some((client(), server())));
    }
}

#[test]
fn heavy_loss_ends_consistently_either_way() {
    let net = Net {
        loss: 0.45,
        duplicate: 0.1,
        base: Duration::from_millis(5),
        jitter: Duration::from_millis(100),
    };
    let mut connected = 0;
    for seed in 0..40 {
        let mut sim = Sim::new(seed, net, ControllingConfig::default());
        // A check and then the nomination may each take up to 39.5 s.
        sim.run(Duration::from_secs(90));
        if Sim::connected_at(&sim.ctl_events).is_some() {
            // The controlling side only connects on the answer to its nomination, which
            // the lite side sends after selecting the pair.
            assert!(Sim::connected_at(&sim.lite_events).is_some(), "seed {seed}");
            connected += 1;
        } else {
            // All 7 transmissions of some transaction were lost: ICE failed, and said so.
            assert!(
                matches!(
                    Sim::disconnected(&sim.ctl_events),
                    Some((_, DisconnectReason::ChecksFailed))
                ),
                "seed {seed}: {:?}",
                sim.ctl_events
            );
        }
    }
    assert!(connected >= 30, "{connected} of 40");
}

#[test]
fn consent_survives_light_loss_for_minutes() {
    // RFC 7675 sends each consent check once, every ~5 s, so about six round trips in a
    // row must fail for consent to expire; with 10% loss each way that is ~5e-5.
    let net = Net {
        loss: 0.1,
        duplicate: 0.05,
        base: Duration::from_millis(20),
        jitter: Duration::from_millis(50),
    };
    for seed in 0..5 {
        let mut sim = Sim::new(seed, net, ControllingConfig::default());
        sim.run(Duration::from_secs(300));
        assert!(Sim::connected_at(&sim.ctl_events).is_some(), "seed {seed}");
        assert_eq!(Sim::disconnected(&sim.ctl_events), None, "seed {seed}");
        assert_eq!(Sim::disconnected(&sim.lite_events), None, "seed {seed}");
    }
}

#[test]
fn a_partition_expires_consent_on_both_sides() {
    let mut sim = Sim::new(7, PERFECT, ControllingConfig::default());
    sim.run(Duration::from_secs(60));
    sim.partitioned = true;
    sim.run(Duration::from_secs(120));
    let (ctl_at, ctl_reason) = Sim::disconnected(&sim.ctl_events).unwrap();
    let (lite_at, lite_reason) = Sim::disconnected(&sim.lite_events).unwrap();
    assert_eq!(ctl_reason, DisconnectReason::ConsentExpired);
    assert_eq!(lite_reason, DisconnectReason::ConsentExpired);
    // The last consent check before the partition was at most ~6 s before it; consent
    // lasts 30 s after it.
    for at in [ctl_at, lite_at] {
        assert!(
            at > Duration::from_secs(84) && at <= Duration::from_secs(90),
            "{at:?}"
        );
    }
    // Nothing is sent after the end.
    let last = sim.ctl_sent.last().unwrap().0;
    assert!(last <= ctl_at);
}

#[test]
fn consent_checks_are_randomized_around_5_s() {
    let mut sim = Sim::new(3, PERFECT, ControllingConfig::default());
    sim.run(Duration::from_secs(200));
    let times: Vec<Duration> = sim
        .ctl_sent
        .iter()
        .filter(|(t, _)| *t > Duration::from_secs(1))
        .map(|(t, _)| *t)
        .collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() > 30);
    for g in &gaps {
        assert!(
            *g >= Duration::from_secs(4) && *g <= Duration::from_secs(6),
            "{g:?}"
        );
    }
    assert!(gaps.iter().any(|g| *g != gaps[0]), "not randomized");
    // Consent checks carry no USE-CANDIDATE, but do carry credentials and FINGERPRINT.
    for (t, bytes) in &sim.ctl_sent {
        if *t > Duration::from_secs(1) {
            let m = stun::parse(bytes).unwrap();
            assert!(!m.use_candidate());
            assert!(m.ice_controlling().is_some() && m.priority().is_some());
            m.verify_fingerprint().unwrap();
        }
    }
}

#[test]
fn retransmissions_follow_rfc_8489_and_then_the_checks_fail() {
    // Nobody answers: the server candidate is unreachable too.
    let mut sim = Sim::new(5, PERFECT, ControllingConfig::default());
    sim.partitioned = true;
    sim.run(Duration::from_secs(60));
    let to_hole: Vec<u128> = sim
        .ctl_sent
        .iter()
        .filter(|(_, b)| stun::parse(b).is_ok())
        .map(|(t, _)| t.as_millis())
        .collect();
    // Two pairs, the second started Ta = 50 ms later; each sent at 0, 500, 1500, 3500,
    // 7500, 15500, 31500 ms (RFC 8489 §6.2.1's example), failing at 39500 ms.
    let schedule = [0u128, 500, 1500, 3500, 7500, 15500, 31500];
    let mut expected: Vec<u128> = schedule.iter().flat_map(|&t| [t, t + 50]).collect();
    expected.sort();
    assert_eq!(to_hole, expected);
    assert_eq!(
        Sim::disconnected(&sim.ctl_events),
        Some((Duration::from_millis(39550), DisconnectReason::ChecksFailed))
    );
    // Retransmissions are the same message (same transaction).
    let first: Vec<_> = sim
        .ctl_sent
        .iter()
        .step_by(2)
        .map(|(_, b)| &b[8..20])
        .collect();
    assert!(first.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn configurable_rto() {
    let config = ControllingConfig {
        rto: Duration::from_millis(100),
        max_transmits: 3,
        last_wait: 4,
        ..ControllingConfig::default()
    };
    let mut sim = Sim::new(5, PERFECT, config);
    sim.partitioned = true;
    sim.run(Duration::from_secs(5));
    let times: Vec<u128> = sim.ctl_sent.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(times, [0, 50, 100, 150, 300, 350]);
    assert_eq!(
        Sim::disconnected(&sim.ctl_events),
        Some((Duration::from_millis(750), DisconnectReason::ChecksFailed))
    );
}

#[test]
fn controlling_agent_drops_forged_and_misrouted_responses() {
    let t0 = Instant::now();
    let creds = Credentials {
        ufrag: "srvA".into(),
        pwd: "server-password-of-24chr".into(),
    };
    let mut ctl = IceControlling::new(
        t0,
        ControllingConfig::default(),
        Rng::seeded(9),
        &creds,
        client(),
        &[server()],
    );
    ctl.handle_timeout(t0);
    let check = ctl.poll_transmit().unwrap();
    let req = stun::parse(&check.contents).unwrap();
    let answer = |pwd: &[u8], tid| {
        let mut buf = Vec::new();
        MessageBuilder::new(&mut buf, Class::Success, Method::BINDING, tid)
            .xor_mapped_address(client())
            .message_integrity(&Key::new(pwd))
            .fingerprint();
        buf
    };
    let tid = req.transaction_id();
    let forged = answer(b"guessed-password", tid);
    assert_eq!(
        ctl.handle_datagram(t0, server(), client(), &forged),
        Err(IceError::BadIntegrity)
    );
    let stranger = answer(creds.pwd.as_bytes(), stun::TransactionId([0; 12]));
    assert_eq!(
        ctl.handle_datagram(t0, server(), client(), &stranger),
        Err(IceError::UnknownTransaction)
    );
    // A real answer still completes the check, which then nominates.
    let good = answer(creds.pwd.as_bytes(), tid);
    ctl.handle_datagram(t0, server(), client(), &good).unwrap();
    let nomination = ctl.poll_transmit().unwrap();
    let n = stun::parse(&nomination.contents).unwrap();
    assert!(n.use_candidate());
    // Its answer from the wrong address fails the pair (not symmetric), and with it ICE.
    let wrong = answer(creds.pwd.as_bytes(), n.transaction_id());
    assert_eq!(
        ctl.handle_datagram(t0, black_hole(), client(), &wrong),
        Err(IceError::NonSymmetric)
    );
    assert_eq!(
        ctl.poll_event(),
        Some(IceEvent::Disconnected {
            reason: DisconnectReason::ChecksFailed
        })
    );
    assert_eq!(
        ctl.handle_datagram(t0, server(), client(), &good),
        Err(IceError::Closed)
    );
}

#[test]
fn no_usable_candidate_fails_at_once() {
    let t0 = Instant::now();
    let creds = Credentials::random(&mut Rng::seeded(1));
    let v6: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
    let mut ctl = IceControlling::new(
        t0,
        ControllingConfig::default(),
        Rng::seeded(2),
        &creds,
        client(),
        &[v6],
    );
    assert_eq!(
        ctl.poll_event(),
        Some(IceEvent::Disconnected {
            reason: DisconnectReason::ChecksFailed
        })
    );
    assert_eq!(ctl.poll_timeout(), None);
}
