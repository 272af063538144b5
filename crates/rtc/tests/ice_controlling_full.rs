//! The controlling agent as a full agent: it answers the peer's checks (RFC 8445 §7.3),
//! settles role conflicts (§7.3.1.1, §7.2.5.1), learns peer-reflexive candidates and
//! triggers checks for them (§7.3.1.3, §7.3.1.4), and keeps answering consent checks
//! after `Connected` (RFC 7675). Explicit instants, hand-made STUN messages.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::Transmit;
use rtc::ice::{ControllingConfig, Credentials, IceControlling, IceError, IceEvent};
use rtc::rand::Rng;
use rtc::stun::{self, Class, ErrorCode, Key, MessageBuilder, Method, TransactionId};

fn ours() -> SocketAddr {
    "198.51.100.7:50000".parse().unwrap()
}

fn server() -> SocketAddr {
    "192.0.2.1:3478".parse().unwrap()
}

fn black_hole() -> SocketAddr {
    "192.0.2.99:3478".parse().unwrap()
}

/// The server's address as its NAT maps it: in no candidate list.
fn reflexive() -> SocketAddr {
    "203.0.113.5:41000".parse().unwrap()
}

struct Test {
    t0: Instant,
    ctl: IceControlling,
    peer: Credentials,
    next_tid: u8,
}

/// What a check of the peer's carries.
#[derive(Clone, Copy, Default)]
struct Check {
    controlling: Option<u64>,
    controlled: Option<u64>,
    use_candidate: bool,
    /// USERNAME with this `their-ufrag` half instead of the peer's.
    wrong_ufrag: bool,
    no_username: bool,
    /// Signed with a wrong password.
    wrong_pwd: bool,
    /// An unknown comprehension-required attribute.
    unknown_attr: bool,
}

impl Test {
    fn new(remotes: &[SocketAddr]) -> Self {
        let t0 = Instant::now();
        let peer = Credentials {
            ufrag: "srvA".into(),
            pwd: "server-password-of-24chr".into(),
        };
        let ctl = IceControlling::new(
            t0,
            ControllingConfig::default(),
            Rng::seeded(7),
            &peer,
            ours(),
            remotes,
        );
        Self {
            t0,
            ctl,
            peer,
            next_tid: 0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.ctl.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<IceEvent> {
        std::iter::from_fn(|| self.ctl.poll_event()).collect()
    }

    /// A check of the peer's, as a full peer sends it: `ours:theirs`, signed with our
    /// password, FINGERPRINT last.
    fn check(&mut self, c: Check) -> (TransactionId, Vec<u8>) {
        self.next_tid += 1;
        let tid = TransactionId([self.next_tid; 12]);
        let ours = self.ctl.local_credentials().clone();
        let theirs = if c.wrong_ufrag {
            "zzzz"
        } else {
            &self.peer.ufrag
        };
        let username = format!("{}:{theirs}", ours.ufrag);
        let key = Key::new(if c.wrong_pwd {
            b"not-our-password-at-all!"
        } else {
            ours.pwd.as_bytes()
        });
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, Class::Request, Method::BINDING, tid);
        if !c.no_username {
            b.username(username.as_bytes());
        }
        b.priority(1_845_501_695);
        if let Some(t) = c.controlling {
            b.ice_controlling(t);
        }
        if let Some(t) = c.controlled {
            b.ice_controlled(t);
        }
        if c.use_candidate {
            b.use_candidate();
        }
        if c.unknown_attr {
            b.attr(0x0033, b"?");
        }
        b.message_integrity(&key).fingerprint();
        (tid, buf)
    }

    /// The peer's answer to our request, signed with its password.
    fn answer(&self, request: &[u8], class: Class, code: Option<u16>) -> Vec<u8> {
        let req = stun::parse(request).unwrap();
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, class, Method::BINDING, req.transaction_id());
        match code {
            Some(code) => b.error_code(code, "Role Conflict"),
            None => b.xor_mapped_address(ours()),
        };
        b.message_integrity(&Key::new(self.peer.pwd.as_bytes()))
            .fingerprint();
        buf
    }

    /// Sends our first check to `server()` and has it answered; then answers the
    /// nomination: `Connected`.
    fn connect(&mut self) {
        self.ctl.handle_timeout(self.at(0));
        let check = self.transmits().pop().unwrap();
        assert_eq!(check.destination, server());
        let ok = self.answer(&check.contents, Class::Success, None);
        self.ctl
            .handle_datagram(self.at(10), server(), ours(), &ok)
            .unwrap();
        let nomination = self.transmits().pop().unwrap();
        assert!(stun::parse(&nomination.contents).unwrap().use_candidate());
        let ok = self.answer(&nomination.contents, Class::Success, None);
        self.ctl
            .handle_datagram(self.at(20), server(), ours(), &ok)
            .unwrap();
        assert!(
            self.events()
                .iter()
                .any(|e| matches!(e, IceEvent::Connected { .. }))
        );
    }
}

/// The one datagram queued: a response to `tid`, from `ours()` back to `to`.
fn response(t: &mut Test, tid: TransactionId, to: SocketAddr) -> Vec<u8> {
    let mut out = t.transmits();
    assert_eq!(out.len(), 1, "{out:?}");
    let r = out.pop().unwrap();
    assert_eq!((r.source, r.destination), (ours(), to));
    let msg = stun::parse(&r.contents).unwrap();
    assert_eq!(msg.transaction_id(), tid);
    msg.verify_fingerprint().unwrap();
    r.contents
}

#[test]
fn answers_a_full_peers_check_with_a_signed_success() {
    let mut t = Test::new(&[server()]);
    let (tid, check) = t.check(Check {
        controlled: Some(5),
        ..Check::default()
    });
    t.ctl
        .handle_datagram(t.at(0), server(), ours(), &check)
        .unwrap();
    let bytes = response(&mut t, tid, server());
    let msg = stun::parse(&bytes).unwrap();
    assert_eq!(msg.class(), Class::Success);
    // RFC 8445 §7.3.1.2: the mapped address is the check's source.
    assert_eq!(msg.xor_mapped_address(), Some(server()));
    // Signed with *our* password (§7.3: the responder's), which the peer knows.
    let ours = Key::new(t.ctl.local_credentials().pwd.as_bytes());
    msg.verify_integrity(&ours).unwrap();
    assert!(
        msg.verify_integrity(&Key::new(t.peer.pwd.as_bytes()))
            .is_err()
    );
    assert!(t.ctl.is_controlling());
}

#[test]
fn refuses_bad_checks_as_the_lite_agent_does() {
    let cases = [
        (
            Check {
                no_username: true,
                ..Check::default()
            },
            IceError::MissingCredentials,
            ErrorCode::BAD_REQUEST,
            false,
        ),
        (
            Check {
                wrong_ufrag: true,
                ..Check::default()
            },
            IceError::WrongUsername,
            ErrorCode::UNAUTHENTICATED,
            false,
        ),
        (
            Check {
                wrong_pwd: true,
                ..Check::default()
            },
            IceError::BadIntegrity,
            ErrorCode::UNAUTHENTICATED,
            false,
        ),
        (
            Check {
                unknown_attr: true,
                ..Check::default()
            },
            IceError::UnknownAttributes,
            ErrorCode::UNKNOWN_ATTRIBUTE,
            true,
        ),
    ];
    for (check, err, code, signed) in cases {
        let mut t = Test::new(&[server()]);
        let (tid, bytes) = t.check(check);
        assert_eq!(
            t.ctl.handle_datagram(t.at(0), server(), ours(), &bytes),
            Err(err.clone())
        );
        let reply = response(&mut t, tid, server());
        let msg = stun::parse(&reply).unwrap();
        assert_eq!(msg.class(), Class::Error, "{err:?}");
        assert_eq!(msg.error_code().map(|e| e.code), Some(code), "{err:?}");
        assert_eq!(msg.integrity_kind().is_some(), signed, "{err:?}");
        // A refused check teaches nothing: no pair, no triggered check.
        t.ctl.handle_timeout(t.at(0));
        let sent: Vec<_> = t.transmits().iter().map(|x| x.destination).collect();
        assert_eq!(sent, [server()]);
    }
}

#[test]
fn a_controlling_peer_with_a_smaller_tie_breaker_gets_487() {
    let mut t = Test::new(&[server()]);
    let our_tie_breaker = t.ctl.tie_breaker();
    for theirs in [0, our_tie_breaker] {
        let (tid, check) = t.check(Check {
            controlling: Some(theirs),
            ..Check::default()
        });
        assert_eq!(
            t.ctl.handle_datagram(t.at(0), server(), ours(), &check),
            Err(IceError::RoleConflict)
        );
        let reply = response(&mut t, tid, server());
        let msg = stun::parse(&reply).unwrap();
        assert_eq!(
            msg.error_code().map(|e| e.code),
            Some(ErrorCode::ROLE_CONFLICT)
        );
        // 487 is signed (§7.3.1.1 answers with a full error response).
        let key = Key::new(t.ctl.local_credentials().pwd.as_bytes());
        msg.verify_integrity(&key).unwrap();
        assert!(t.ctl.is_controlling());
    }
}

#[test]
fn a_controlling_peer_with_a_larger_tie_breaker_makes_us_controlled() {
    let mut t = Test::new(&[server()]);
    assert!(t.ctl.tie_breaker() < u64::MAX);
    // Our check is in flight, claiming the controlling role.
    t.ctl.handle_timeout(t.at(0));
    let first = t.transmits().pop().unwrap();
    assert!(
        stun::parse(&first.contents)
            .unwrap()
            .ice_controlling()
            .is_some()
    );
    let (tid, check) = t.check(Check {
        controlling: Some(u64::MAX),
        use_candidate: true,
        ..Check::default()
    });
    t.ctl
        .handle_datagram(t.at(5), server(), ours(), &check)
        .unwrap();
    let reply = response(&mut t, tid, server());
    assert_eq!(stun::parse(&reply).unwrap().class(), Class::Success);
    assert!(!t.ctl.is_controlling());
    // The check in flight claimed the old role: it is sent again as ICE-CONTROLLED at the
    // next pacing slot, and a response to the old one is no longer expected.
    let late = t.answer(&first.contents, Class::Success, None);
    assert_eq!(
        t.ctl.handle_datagram(t.at(10), server(), ours(), &late),
        Err(IceError::UnknownTransaction)
    );
    t.ctl.handle_timeout(t.at(50));
    let again = t.transmits().pop().unwrap();
    let msg = stun::parse(&again.contents).unwrap();
    assert_eq!(again.destination, server());
    assert_eq!(msg.ice_controlled(), Some(t.ctl.tie_breaker()));
    assert!(msg.ice_controlling().is_none() && !msg.use_candidate());
    // The peer nominated this pair; our own check succeeding selects it (§7.3.1.5).
    let ok = t.answer(&again.contents, Class::Success, None);
    t.ctl
        .handle_datagram(t.at(60), server(), ours(), &ok)
        .unwrap();
    assert!(
        t.transmits().is_empty(),
        "the controlled side nominates nothing"
    );
    assert!(t.events().contains(&IceEvent::Connected {
        remote: server(),
        local: ours()
    }));
    assert_eq!(t.ctl.selected_pair(), Some((server(), ours())));
}

#[test]
fn a_487_to_our_check_switches_role_and_checks_again() {
    let mut t = Test::new(&[server()]);
    t.ctl.handle_timeout(t.at(0));
    let check = t.transmits().pop().unwrap();
    let conflict = t.answer(
        &check.contents,
        Class::Error,
        Some(ErrorCode::ROLE_CONFLICT),
    );
    t.ctl
        .handle_datagram(t.at(10), server(), ours(), &conflict)
        .unwrap();
    assert!(!t.ctl.is_controlling());
    assert!(t.events().is_empty(), "the pair did not fail");
    t.ctl.handle_timeout(t.at(50));
    let again = t.transmits().pop().unwrap();
    assert_eq!(again.destination, server());
    assert!(
        stun::parse(&again.contents)
            .unwrap()
            .ice_controlled()
            .is_some()
    );
    // An unsigned 487 (anyone who saw the transaction ID could send one) fails the check
    // like any other error response instead of switching the role back.
    let mut unsigned = Vec::new();
    let tid = stun::parse(&again.contents).unwrap().transaction_id();
    MessageBuilder::new(&mut unsigned, Class::Error, Method::BINDING, tid)
        .error_code(ErrorCode::ROLE_CONFLICT, "Role Conflict")
        .fingerprint();
    t.ctl
        .handle_datagram(t.at(60), server(), ours(), &unsigned)
        .unwrap();
    assert!(!t.ctl.is_controlling());
}

#[test]
fn a_controlled_peer_claiming_control_too_is_settled_by_tie_breaker() {
    // First make us controlled (the peer's larger ICE-CONTROLLING), then a check with
    // ICE-CONTROLLED: with a larger tie-breaker it keeps its claim (487)...
    let mut t = Test::new(&[server()]);
    let (_, check) = t.check(Check {
        controlling: Some(u64::MAX),
        ..Check::default()
    });
    t.ctl
        .handle_datagram(t.at(0), server(), ours(), &check)
        .unwrap();
    t.transmits();
    let (tid, check) = t.check(Check {
        controlled: Some(u64::MAX),
        ..Check::default()
    });
    assert_eq!(
        t.ctl.handle_datagram(t.at(1), server(), ours(), &check),
        Err(IceError::RoleConflict)
    );
    let reply = response(&mut t, tid, server());
    assert_eq!(
        stun::parse(&reply).unwrap().error_code().map(|e| e.code),
        Some(ErrorCode::ROLE_CONFLICT)
    );
    assert!(!t.ctl.is_controlling());
    // ...and with a smaller one we take control back and answer.
    let (tid, check) = t.check(Check {
        controlled: Some(0),
        ..Check::default()
    });
    t.ctl
        .handle_datagram(t.at(2), server(), ours(), &check)
        .unwrap();
    let reply = response(&mut t, tid, server());
    assert_eq!(stun::parse(&reply).unwrap().class(), Class::Success);
    assert!(t.ctl.is_controlling());
}

#[test]
fn a_check_from_an_unknown_address_adds_a_peer_reflexive_pair_checked_first() {
    let mut t = Test::new(&[black_hole(), server()]);
    // t = 0: the first ordinary check goes to the black hole.
    t.ctl.handle_timeout(t.at(0));
    assert_eq!(t.transmits().pop().unwrap().destination, black_hole());
    // The peer's check arrives from its NAT's address (RFC 8445 §7.3.1.3).
    let (tid, check) = t.check(Check {
        controlled: Some(1),
        ..Check::default()
    });
    t.ctl
        .handle_datagram(t.at(20), reflexive(), ours(), &check)
        .unwrap();
    let reply = response(&mut t, tid, reflexive());
    assert_eq!(
        stun::parse(&reply).unwrap().xor_mapped_address(),
        Some(reflexive())
    );
    // The next pacing slot (Ta = 50 ms) is the triggered check (§7.3.1.4), ahead of the
    // server's ordinary one.
    assert_eq!(t.ctl.poll_timeout(), Some(t.at(50)));
    t.ctl.handle_timeout(t.at(50));
    let triggered = t.transmits().pop().unwrap();
    assert_eq!(triggered.destination, reflexive());
    // It succeeds: the pair is reported valid (checked both ways) and nominated.
    let ok = t.answer(&triggered.contents, Class::Success, None);
    t.ctl
        .handle_datagram(t.at(60), reflexive(), ours(), &ok)
        .unwrap();
    assert_eq!(
        t.events(),
        [IceEvent::AddressValidated {
            remote: reflexive(),
            local: ours()
        }]
    );
    let nomination = t.transmits().pop().unwrap();
    assert_eq!(nomination.destination, reflexive());
    assert!(stun::parse(&nomination.contents).unwrap().use_candidate());
    let ok = t.answer(&nomination.contents, Class::Success, None);
    t.ctl
        .handle_datagram(t.at(70), reflexive(), ours(), &ok)
        .unwrap();
    assert_eq!(t.ctl.selected_pair(), Some((reflexive(), ours())));
}

#[test]
fn peer_reflexive_pairs_are_bounded() {
    let mut t = Test::new(&[server()]);
    for n in 0..100u16 {
        let from = SocketAddr::from(([203, 0, 113, (n % 250) as u8], 40000 + n));
        let (_, check) = t.check(Check::default());
        t.ctl
            .handle_datagram(t.at(0), from, ours(), &check)
            .unwrap();
        // Every check is answered, pair or no pair.
        assert_eq!(t.transmits().len(), 1);
    }
    let mut destinations = std::collections::HashSet::new();
    for ms in 0..200 {
        t.ctl.handle_timeout(t.at(ms * 50));
        destinations.extend(t.transmits().into_iter().map(|x| x.destination));
    }
    assert_eq!(destinations.len(), rtc::ice::MAX_PAIRS);
}

#[test]
fn keeps_answering_consent_checks_after_connected() {
    let mut t = Test::new(&[server()]);
    t.connect();
    // RFC 7675: a full peer keeps checking the selected pair; each is answered, and
    // nothing else changes (no new check, no event).
    for s in [5u64, 10, 35, 60] {
        let (tid, check) = t.check(Check {
            controlled: Some(1),
            ..Check::default()
        });
        let now = t.at(s * 1000);
        // Keep our own consent alive too, as the peer would by answering.
        t.ctl.handle_timeout(now);
        for ours_check in t.transmits() {
            let ok = t.answer(&ours_check.contents, Class::Success, None);
            t.ctl.handle_datagram(now, server(), ours(), &ok).unwrap();
        }
        t.ctl
            .handle_datagram(now, server(), ours(), &check)
            .unwrap();
        let reply = response(&mut t, tid, server());
        assert_eq!(stun::parse(&reply).unwrap().class(), Class::Success);
        assert!(t.events().is_empty());
    }
    assert_eq!(t.ctl.selected_pair(), Some((server(), ours())));
}

#[test]
fn indications_are_keepalives() {
    let mut t = Test::new(&[server()]);
    let mut buf = Vec::new();
    MessageBuilder::new(
        &mut buf,
        Class::Indication,
        Method::BINDING,
        TransactionId([1; 12]),
    )
    .fingerprint();
    t.ctl
        .handle_datagram(t.at(0), server(), ours(), &buf)
        .unwrap();
    assert!(t.transmits().is_empty());
}
