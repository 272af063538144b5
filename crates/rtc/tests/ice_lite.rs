//! The ICE-lite agent against checks built by an independent STUN stack (webrtc-rs `stun`),
//! every rejection path, selection across several addresses, and consent by fake clock.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ::stun::attributes::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME,
    AttrType, RawAttribute,
};
use ::stun::error_code::ErrorCodeAttribute;
use ::stun::fingerprint::FINGERPRINT;
use ::stun::integrity::MessageIntegrity;
use ::stun::message::{
    BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS, Getter, Message as TheirMessage, MessageType,
    Setter,
};
use ::stun::textattrs::TextAttribute;
use ::stun::uattrs::UnknownAttributes;
use ::stun::xoraddr::XorMappedAddress;
use rtc::ice::{Credentials, DisconnectReason, IceError, IceEvent, IceLite};
use rtc::stun::{self, Class, Integrity, Key, MessageBuilder, Method, StunError, TransactionId};

fn server() -> Credentials {
    Credentials {
        ufrag: "srvA".into(),
        pwd: SERVER_PWD.into(),
    }
}

fn client() -> Credentials {
    Credentials {
        ufrag: "cliB".into(),
        pwd: "client-password-of-24chr".into(),
    }
}

fn local() -> SocketAddr {
    "192.0.2.1:3478".parse().unwrap()
}

fn peer(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, n], 50000 + u16::from(n)))
}

/// What a check carries; each field can be spoiled by a test.
struct Check {
    username: Option<String>,
    password: Option<&'static str>,
    priority: u32,
    controlling: bool,
    controlled: bool,
    use_candidate: bool,
    extra: Option<(u16, Vec<u8>)>,
    fingerprint: bool,
    typ: MessageType,
}

impl Default for Check {
    fn default() -> Self {
        Self {
            username: Some(format!("{}:{}", server().ufrag, client().ufrag)),
            password: Some(SERVER_PWD),
            priority: 1_845_501_695,
            controlling: true,
            controlled: false,
            use_candidate: false,
            extra: None,
            fingerprint: true,
            typ: BINDING_REQUEST,
        }
    }
}

const SERVER_PWD: &str = "server-password-of-24chr";

fn raw(typ: AttrType, value: &[u8]) -> Box<dyn Setter> {
    Box::new(RawAttribute {
        typ,
        length: value.len() as u16,
        value: value.to_vec(),
    })
}

/// The check, built by webrtc-rs's stun crate.
fn build(c: &Check) -> Vec<u8> {
    let mut s: Vec<Box<dyn Setter>> = vec![
        Box::new(c.typ),
        Box::new(::stun::agent::TransactionId::new()),
    ];
    if let Some(u) = &c.username {
        s.push(Box::new(TextAttribute::new(ATTR_USERNAME, u.clone())));
    }
    s.push(raw(ATTR_PRIORITY, &c.priority.to_be_bytes()));
    if c.controlling {
        s.push(raw(ATTR_ICE_CONTROLLING, &1u64.to_be_bytes()));
    }
    if c.controlled {
        s.push(raw(ATTR_ICE_CONTROLLED, &1u64.to_be_bytes()));
    }
    if c.use_candidate {
        s.push(raw(ATTR_USE_CANDIDATE, &[]));
    }
    if let Some((t, v)) = &c.extra {
        s.push(raw(AttrType(*t), v));
    }
    if let Some(p) = c.password {
        s.push(Box::new(MessageIntegrity::new_short_term_integrity(
            p.into(),
        )));
    }
    if c.fingerprint {
        s.push(Box::new(FINGERPRINT));
    }
    let mut m = TheirMessage::new();
    m.build(&s).unwrap();
    m.raw
}

fn agent(now: Instant, remote_known: bool) -> IceLite {
    IceLite::with_credentials(now, server(), remote_known.then_some(&client()))
}

fn events(a: &mut IceLite) -> Vec<IceEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

/// The one response queued, parsed by webrtc-rs and checked for FINGERPRINT.
fn response(a: &mut IceLite, to: SocketAddr) -> TheirMessage {
    let t = a.poll_transmit().unwrap();
    assert!(a.poll_transmit().is_none());
    assert_eq!((t.source, t.destination), (local(), to));
    let mut m = TheirMessage::new();
    m.unmarshal_binary(&t.contents).unwrap();
    FINGERPRINT.check(&m).unwrap();
    m
}

fn error_code(m: &TheirMessage) -> u16 {
    let mut e = ErrorCodeAttribute::default();
    e.get_from(m).unwrap();
    e.code.0
}

fn signed(m: &mut TheirMessage) -> bool {
    MessageIntegrity::new_short_term_integrity(SERVER_PWD.into())
        .check(m)
        .is_ok()
}

#[test]
fn accepts_a_check_from_another_stack_and_answers_it() {
    let t0 = Instant::now();
    let mut a = agent(t0, true);
    let check = build(&Check {
        use_candidate: true,
        ..Check::default()
    });
    a.handle_datagram(t0, peer(1), local(), &check).unwrap();

    let mut m = response(&mut a, peer(1));
    assert_eq!(m.typ, BINDING_SUCCESS);
    assert_eq!(m.transaction_id.0, check[8..20]);
    let mut xor = XorMappedAddress::default();
    xor.get_from(&m).unwrap();
    assert_eq!(SocketAddr::new(xor.ip, xor.port), peer(1));
    assert!(signed(&mut m));
    assert_eq!(
        events(&mut a),
        [
            IceEvent::AddressValidated {
                remote: peer(1),
                local: local()
            },
            IceEvent::Connected {
                remote: peer(1),
                local: local()
            },
        ]
    );
    assert_eq!(a.selected_pair(), Some((peer(1), local())));
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(30)));
}

#[test]
fn learns_the_remote_ufrag_then_holds_to_it() {
    let t0 = Instant::now();
    let mut a = agent(t0, false);
    assert_eq!(a.remote_ufrag(), None);
    a.handle_datagram(t0, peer(1), local(), &build(&Check::default()))
        .unwrap();
    assert_eq!(a.remote_ufrag(), Some(client().ufrag.as_bytes()));
    response(&mut a, peer(1));
    let other = Check {
        username: Some(format!("{}:someoneElse", server().ufrag)),
        ..Check::default()
    };
    let err = a.handle_datagram(t0, peer(1), local(), &build(&other));
    assert_eq!(err, Err(IceError::WrongUsername));
    assert_eq!(error_code(&response(&mut a, peer(1))), 401);
}

#[test]
fn every_rejection_path() {
    let t0 = Instant::now();
    // (the check, the error, the error response code if one is due, whether it is signed)
    let cases: Vec<(&str, Check, IceError, Option<u16>, bool)> = vec![
        (
            "wrong local ufrag",
            Check {
                username: Some(format!("xxxx:{}", client().ufrag)),
                ..Check::default()
            },
            IceError::WrongUsername,
            Some(401),
            false,
        ),
        (
            "wrong remote ufrag",
            Check {
                username: Some(format!("{}:xxxx", server().ufrag)),
                ..Check::default()
            },
            IceError::WrongUsername,
            Some(401),
            false,
        ),
        (
            "no colon",
            Check {
                username: Some(server().ufrag.clone()),
                ..Check::default()
            },
            IceError::WrongUsername,
            Some(401),
            false,
        ),
        (
            "ufrag prefix only",
            Check {
                username: Some(format!("{}X:{}", server().ufrag, client().ufrag)),
                ..Check::default()
            },
            IceError::WrongUsername,
            Some(401),
            false,
        ),
        (
            "bad integrity",
            Check {
                password: Some("not-the-server-password!"),
                ..Check::default()
            },
            IceError::BadIntegrity,
            Some(401),
            false,
        ),
        (
            "no integrity",
            Check {
                password: None,
                ..Check::default()
            },
            IceError::MissingCredentials,
            Some(400),
            false,
        ),
        (
            "no username",
            Check {
                username: None,
                ..Check::default()
            },
            IceError::MissingCredentials,
            Some(400),
            false,
        ),
        (
            "no fingerprint",
            Check {
                fingerprint: false,
                ..Check::default()
            },
            IceError::Stun(StunError::MissingFingerprint),
            None,
            false,
        ),
        (
            "unknown comprehension-required attribute",
            Check {
                extra: Some((0x0033, b"?".to_vec())),
                ..Check::default()
            },
            IceError::UnknownAttributes,
            Some(420),
            true,
        ),
        (
            "peer is controlled too",
            Check {
                controlling: false,
                controlled: true,
                use_candidate: true,
                ..Check::default()
            },
            IceError::RoleConflict,
            Some(487),
            true,
        ),
        (
            "a success response",
            Check {
                typ: BINDING_SUCCESS,
                ..Check::default()
            },
            IceError::UnexpectedClass(Class::Success),
            None,
            false,
        ),
        (
            "another method",
            Check {
                typ: MessageType::new(
                    ::stun::message::METHOD_ALLOCATE,
                    ::stun::message::CLASS_REQUEST,
                ),
                ..Check::default()
            },
            IceError::NotBinding,
            None,
            false,
        ),
    ];
    for (name, check, error, code, is_signed) in cases {
        let mut a = agent(t0, true);
        let bytes = build(&check);
        assert_eq!(
            a.handle_datagram(t0, peer(1), local(), &bytes),
            Err(error),
            "{name}"
        );
        match code {
            Some(code) => {
                let mut m = response(&mut a, peer(1));
                assert_eq!(m.typ, BINDING_ERROR, "{name}");
                assert_eq!(m.transaction_id.0, bytes[8..20], "{name}");
                assert_eq!(error_code(&m), code, "{name}");
                assert_eq!(signed(&mut m), is_signed, "{name}");
                if code == 420 {
                    let mut u = UnknownAttributes(Vec::new());
                    u.get_from(&m).unwrap();
                    assert_eq!(u.0, [AttrType(0x0033)]);
                }
            }
            None => assert!(a.poll_transmit().is_none(), "{name}"),
        }
        // Nothing was learned from a rejected check.
        assert!(events(&mut a).is_empty(), "{name}");
        assert_eq!(a.selected_pair(), None, "{name}");
    }
}

#[test]
fn corrupted_truncated_and_foreign_datagrams_are_dropped_silently() {
    let t0 = Instant::now();
    let mut a = agent(t0, true);
    let good = build(&Check::default());
    for len in 0..good.len() {
        assert!(
            a.handle_datagram(t0, peer(1), local(), &good[..len])
                .is_err()
        );
    }
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        assert!(
            a.handle_datagram(t0, peer(1), local(), &bad).is_err(),
            "byte {i}"
        );
    }
    let rtp = [
        0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0,
    ];
    assert_eq!(
        a.handle_datagram(t0, peer(1), local(), &rtp),
        Err(IceError::Stun(StunError::NotStun))
    );
    assert!(a.poll_transmit().is_none());
    assert!(events(&mut a).is_empty());
    // And the good one still works afterwards.
    a.handle_datagram(t0, peer(1), local(), &good).unwrap();
}

#[test]
fn optional_unknowns_and_indications_are_fine() {
    let t0 = Instant::now();
    let mut a = agent(t0, true);
    let check = Check {
        extra: Some((0xC057, vec![0, 1, 0, 0])), // Chrome's GOOG-NETWORK-INFO
        ..Check::default()
    };
    a.handle_datagram(t0, peer(1), local(), &build(&check))
        .unwrap();
    assert_eq!(response(&mut a, peer(1)).typ, BINDING_SUCCESS);
    // RFC 8445 §11 keepalive: a Binding indication, unauthenticated, no answer.
    let mut ind = Vec::new();
    MessageBuilder::new(
        &mut ind,
        Class::Indication,
        Method::BINDING,
        TransactionId([3; 12]),
    )
    .fingerprint();
    a.handle_datagram(t0, peer(1), local(), &ind).unwrap();
    assert!(a.poll_transmit().is_none());
}

#[test]
fn answers_sha256_integrity_in_kind() {
    let t0 = Instant::now();
    let mut a = agent(t0, true);
    let mut req = Vec::new();
    MessageBuilder::new(
        &mut req,
        Class::Request,
        Method::BINDING,
        TransactionId([5; 12]),
    )
    .username(format!("{}:{}", server().ufrag, client().ufrag).as_bytes())
    .priority(1)
    .ice_controlling(2)
    .message_integrity_sha256(&Key::new(SERVER_PWD.as_bytes()))
    .fingerprint();
    a.handle_datagram(t0, peer(1), local(), &req).unwrap();
    let t = a.poll_transmit().unwrap();
    let msg = stun::parse(&t.contents).unwrap();
    assert_eq!(
        msg.verify_integrity(&Key::new(SERVER_PWD.as_bytes())),
        Ok(Integrity::Sha256)
    );
    assert_eq!(msg.xor_mapped_address(), Some(peer(1)));
}

fn check_from(a: &mut IceLite, now: Instant, from: SocketAddr, priority: u32, nominate: bool) {
    let c = Check {
        priority,
        use_candidate: nominate,
        ..Check::default()
    };
    a.handle_datagram(now, from, local(), &build(&c)).unwrap();
    while a.poll_transmit().is_some() {}
}

#[test]
fn several_addresses_and_selection() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut a = agent(t0, true);
    check_from(&mut a, t0, peer(1), 100, false);
    check_from(&mut a, t0, peer(2), 200, false);
    let validated = |r| IceEvent::AddressValidated {
        remote: r,
        local: local(),
    };
    assert_eq!(events(&mut a), [validated(peer(1)), validated(peer(2))]);
    assert_eq!(a.selected_pair(), None);

    // The lower-priority pair is nominated first: it is selected (nothing better is).
    check_from(&mut a, t0, peer(1), 100, true);
    assert_eq!(
        events(&mut a),
        [IceEvent::Connected {
            remote: peer(1),
            local: local()
        }]
    );
    // A better pair is nominated: switch.
    check_from(&mut a, t0 + s(1), peer(2), 200, true);
    assert_eq!(
        events(&mut a),
        [IceEvent::SelectedPairChanged {
            remote: peer(2),
            local: local()
        }]
    );
    // Aggressive nomination keeps nominating both: no flapping.
    for i in 2..10 {
        check_from(&mut a, t0 + s(i), peer(1), 100, true);
        check_from(&mut a, t0 + s(i), peer(2), 200, true);
    }
    assert!(events(&mut a).is_empty());
    // The selected pair goes quiet (e.g. the browser changed networks) while the other
    // keeps checking: once it is stale, the other takes over.
    for i in 10..30 {
        check_from(&mut a, t0 + s(i), peer(1), 100, false);
    }
    assert_eq!(
        events(&mut a),
        [IceEvent::SelectedPairChanged {
            remote: peer(1),
            local: local()
        }]
    );
    assert_eq!(a.selected_pair(), Some((peer(1), local())));
}

#[test]
fn many_addresses_stay_bounded() {
    let t0 = Instant::now();
    let mut a = agent(t0, true);
    check_from(&mut a, t0, peer(0), 1, true);
    for n in 1..=200u8 {
        check_from(
            &mut a,
            t0 + Duration::from_millis(u64::from(n)),
            peer(n),
            0,
            false,
        );
    }
    // The selected pair survives the churn.
    assert_eq!(a.selected_pair(), Some((peer(0), local())));
    check_from(&mut a, t0 + Duration::from_secs(1), peer(0), 1, false);
}

/// A NAT rebinding: the peer's checks (with the same PRIORITY, as its candidate did not
/// change) suddenly come from a new address. The new pair must be selected at its first
/// nominating check, not once the dead one has been quiet for 15 s.
#[test]
fn nat_rebinding_moves_the_selection_at_once() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut a = agent(t0, true);
    // The browser checks its nominated pair every 2.5 s, USE-CANDIDATE on each (libwebrtc).
    for i in 0..3 {
        check_from(&mut a, t0 + ms(2500 * i), peer(1), 100, true);
    }
    events(&mut a);
    assert_eq!(a.selected_pair(), Some((peer(1), local())));
    // The NAT maps the same client port to a new public port.
    let rebound = SocketAddr::from(([198, 51, 100, 1], 61000));
    check_from(&mut a, t0 + ms(5100), rebound, 100, true);
    assert_eq!(
        events(&mut a),
        [
            IceEvent::AddressValidated {
                remote: rebound,
                local: local()
            },
            IceEvent::SelectedPairChanged {
                remote: rebound,
                local: local()
            }
        ]
    );
    assert_eq!(a.selected_pair(), Some((rebound, local())));
    // Media goes to the new address while the consent timer follows its checks.
    check_from(&mut a, t0 + ms(7600), rebound, 100, true);
    assert_eq!(
        a.poll_timeout(),
        Some(t0 + ms(7600) + Duration::from_secs(30))
    );
}

/// Aggressive nomination of two pairs of equal PRIORITY: the later one wins once, and the
/// selection then stays (the time a pair was first nominated does not move).
#[test]
fn equal_priority_pairs_nominated_on_every_check_do_not_flap() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut a = agent(t0, true);
    let mut changes = 0;
    for i in 0..40 {
        check_from(&mut a, t0 + ms(100 * i), peer(1), 100, true);
        check_from(&mut a, t0 + ms(100 * i + 50), peer(2), 100, true);
        changes += events(&mut a)
            .iter()
            .filter(|e| matches!(e, IceEvent::SelectedPairChanged { .. }))
            .count();
    }
    assert_eq!(changes, 1);
    assert_eq!(a.selected_pair(), Some((peer(2), local())));
}

/// Valid checks from many addresses: the agent keeps at most MAX_PAIRS, reports each one it
/// forgets (so the server can forget its route), forgets stale ones first, and never the
/// selected pair.
#[test]
fn forgotten_pairs_are_reported_and_bounded() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut a = agent(t0, true);
    check_from(&mut a, t0, peer(0), 1, true);
    events(&mut a);
    let (mut kept, mut removed) = (1usize, 0usize);
    let mut count = |a: &mut IceLite| {
        for e in events(a) {
            match e {
                IceEvent::AddressValidated { .. } => kept += 1,
                IceEvent::AddressRemoved { remote, .. } => {
                    assert_ne!(remote, peer(0), "the selected pair was forgotten");
                    kept -= 1;
                    removed += 1;
                }
                _ => {}
            }
        }
        (kept, removed)
    };
    for n in 1..=200u16 {
        let from = SocketAddr::from(([203, 0, 113, (n % 250) as u8], 1000 + n));
        check_from(&mut a, t0 + ms(u64::from(n)), from, 0, false);
        assert!(count(&mut a).0 <= rtc::ice::MAX_PAIRS);
    }
    assert_eq!(
        count(&mut a),
        (rtc::ice::MAX_PAIRS, 201 - rtc::ice::MAX_PAIRS)
    );
    // 20 s later every pair but the selected one is stale: one new pair sweeps them all.
    check_from(&mut a, t0 + ms(10), peer(0), 1, false);
    check_from(&mut a, t0 + Duration::from_secs(20), peer(7), 0, false);
    let removed_before = 201 - rtc::ice::MAX_PAIRS;
    assert_eq!(count(&mut a), (2, removed_before + rtc::ice::MAX_PAIRS - 1));
    assert_eq!(a.selected_pair(), Some((peer(0), local())));
}

#[test]
fn consent_expires_after_30_s_without_checks_from_the_selected_pair() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut a = agent(t0, true);
    check_from(&mut a, t0, peer(1), 100, true);
    events(&mut a);
    // Checks from the selected pair keep it fresh...
    check_from(&mut a, t0 + s(20), peer(1), 100, false);
    assert_eq!(a.poll_timeout(), Some(t0 + s(50)));
    // ...checks from another address do not.
    check_from(&mut a, t0 + s(45), peer(2), 50, false);
    events(&mut a);
    a.handle_timeout(t0 + s(49));
    assert!(events(&mut a).is_empty());
    a.handle_timeout(t0 + s(50));
    assert_eq!(
        events(&mut a),
        [IceEvent::Disconnected {
            reason: DisconnectReason::ConsentExpired
        }]
    );
    assert_eq!(a.poll_timeout(), None);
    let late = build(&Check::default());
    assert_eq!(
        a.handle_datagram(t0 + s(51), peer(1), local(), &late),
        Err(IceError::Closed)
    );
    assert!(a.poll_transmit().is_none());
}

#[test]
fn gives_up_without_nomination() {
    let t0 = Instant::now();
    let mut a = agent(t0, true);
    check_from(&mut a, t0 + Duration::from_secs(5), peer(1), 100, false);
    events(&mut a);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    a.handle_timeout(t0 + Duration::from_secs(29));
    assert!(events(&mut a).is_empty());
    a.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(
        events(&mut a),
        [IceEvent::Disconnected {
            reason: DisconnectReason::NotNominated
        }]
    );
}
