#![no_main]
//! STUN parser, accessors, integrity and a round trip through the builder; then the bytes
//! (as sent, and re-signed with the agent's password so that the fuzzer reaches the checks
//! behind MESSAGE-INTEGRITY) go to an ICE-lite agent and to the controlling agent, which
//! answers a full peer's checks with the same credentials.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::ice::{ControllingConfig, Credentials, IceControlling, IceLite};
use rtc::rand::Rng;
use rtc::stun::{self, Integrity, Key, MessageBuilder, attr};

const UFRAG: &str = "fuzz";
const PWD: &str = "fuzz-password-0123456789";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let key = Key::new(PWD.as_bytes());
    let resigned = stun::parse(data).ok().and_then(|msg| exercise(&msg, &key));
    let _ = stun::username_ufrag(data);

    let t0 = Instant::now();
    let remote = Credentials {
        ufrag: "peer".into(),
        pwd: "peer-password-0123456789".into(),
    };
    let local = Credentials {
        ufrag: UFRAG.into(),
        pwd: PWD.into(),
    };
    let known = data.first().is_some_and(|b| b & 1 == 1);
    let mut agent = IceLite::with_credentials(t0, local.clone(), known.then_some(&remote));
    let from: SocketAddr = "198.51.100.1:5000".parse().unwrap();
    let to: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let _ = agent.handle_datagram(t0, from, to, data);
    if let Some(bytes) = &resigned {
        let _ = agent.handle_datagram(t0, from, to, bytes);
        let v6: SocketAddr = "[2001:db8::1]:6000".parse().unwrap();
        let _ = agent.handle_datagram(t0 + Duration::from_secs(1), v6, to, bytes);
    }
    while let Some(t) = agent.poll_transmit() {
        // Whatever we answer is well formed and fingerprinted.
        let m = stun::parse(&t.contents).expect("our response parses");
        m.verify_fingerprint().expect("our fingerprint verifies");
    }
    while agent.poll_event().is_some() {}
    let _ = agent.poll_timeout();
    agent.handle_timeout(t0 + Duration::from_secs(31));
    while agent.poll_event().is_some() {}

    // The controlling agent: the same bytes as a check of the peer's, before and after
    // its own first check is out, and as a response to it.
    let mut ctl = IceControlling::with_credentials(
        t0,
        ControllingConfig::default(),
        Rng::seeded(1),
        local,
        &remote,
        to,
        &[from],
    );
    let _ = ctl.handle_datagram(t0, from, to, data);
    ctl.handle_timeout(t0);
    for bytes in [Some(data), resigned.as_deref()].into_iter().flatten() {
        let _ = ctl.handle_datagram(t0, from, to, bytes);
        let other: SocketAddr = "198.51.100.2:5000".parse().unwrap();
        let _ = ctl.handle_datagram(t0, other, to, bytes);
    }
    for s in [1, 40] {
        ctl.handle_timeout(t0 + Duration::from_secs(s));
    }
    while let Some(t) = ctl.poll_transmit() {
        let m = stun::parse(&t.contents).expect("our message parses");
        m.verify_fingerprint().expect("our fingerprint verifies");
    }
    while ctl.poll_event().is_some() {}
    let _ = (ctl.poll_timeout(), ctl.selected_pair());
});

/// Reads every accessor, then rebuilds the message with our builder (integrity under
/// `key`) and checks that the copy parses to the same attributes. Returns the copy.
fn exercise(msg: &stun::Message<'_>, key: &Key) -> Option<Vec<u8>> {
    let _ = (
        msg.class(),
        msg.method(),
        msg.transaction_id(),
        msg.as_bytes(),
    );
    let _ = (msg.username(), msg.software(), msg.realm(), msg.nonce());
    let _ = (
        msg.xor_mapped_address(),
        msg.mapped_address(),
        msg.error_code(),
    );
    let _ = (msg.priority(), msg.use_candidate());
    let _ = (msg.ice_controlled(), msg.ice_controlling());
    let _ = (msg.message_integrity(), msg.message_integrity_sha256());
    let _ = (msg.fingerprint(), msg.integrity_kind());
    let _ = msg.unknown_attributes().count();
    let _ = msg.unknown_comprehension_required().count();
    let _ = msg.verify_integrity(key);
    let _ = msg.verify_fingerprint();

    let keep = |t: u16| {
        !matches!(
            t,
            attr::MESSAGE_INTEGRITY | attr::MESSAGE_INTEGRITY_SHA256 | attr::FINGERPRINT
        )
    };
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, msg.class(), msg.method(), msg.transaction_id());
    for a in msg.attributes().filter(|a| keep(a.typ)) {
        b.attr(a.typ, a.value);
    }
    b.message_integrity(key).fingerprint();
    if buf.len() > usize::from(u16::MAX) + stun::HEADER_LEN {
        return None; // grew past what a length field can say
    }
    let again = stun::parse(&buf).expect("a rebuilt message parses");
    assert_eq!((again.class(), again.method()), (msg.class(), msg.method()));
    assert_eq!(again.transaction_id(), msg.transaction_id());
    assert!(
        again
            .attributes()
            .filter(|a| keep(a.typ))
            .eq(msg.attributes().filter(|a| keep(a.typ)))
    );
    assert_eq!(again.verify_integrity(key), Ok(Integrity::Sha1));
    assert_eq!(again.verify_fingerprint(), Ok(()));
    Some(buf)
}
