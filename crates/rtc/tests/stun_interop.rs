//! Our STUN against an implementation we did not write: webrtc-rs's `stun` crate.
//! Messages built by either side are parsed and verified (integrity + fingerprint) by the other.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use ::stun::attributes::{
    ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME, AttrType, RawAttribute,
};
use ::stun::error_code::{ErrorCode as TheirErrorCode, ErrorCodeAttribute};
use ::stun::fingerprint::FINGERPRINT;
use ::stun::integrity::MessageIntegrity;
use ::stun::message::{
    BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS, Getter, Message as TheirMessage, Setter,
};
use ::stun::textattrs::TextAttribute;
use ::stun::xoraddr::XorMappedAddress;
use md5::{Digest, Md5};
use rtc::rand::Rng;
use rtc::stun::{self as ours, Class, Integrity, Key, MessageBuilder, Method, TransactionId};

const PWD: &str = "asd88fgpdd777uzjYhagZg0d";

fn theirs_from(bytes: &[u8]) -> TheirMessage {
    let mut m = TheirMessage::new();
    m.unmarshal_binary(bytes).unwrap();
    m
}

fn raw(typ: AttrType, value: &[u8]) -> Box<dyn Setter> {
    Box::new(RawAttribute {
        typ,
        length: value.len() as u16,
        value: value.to_vec(),
    })
}

#[test]
fn our_ice_check_is_accepted_by_theirs() {
    let tid = TransactionId::random(&mut Rng::seeded(1));
    let mut buf = Vec::new();
    MessageBuilder::new(&mut buf, Class::Request, Method::BINDING, tid)
        .username(b"abcd:efgh")
        .priority(1_853_824_767)
        .ice_controlling(0x0102_0304_0506_0708)
        .use_candidate()
        .message_integrity(&Key::new(PWD.as_bytes()))
        .fingerprint();

    let mut m = theirs_from(&buf);
    assert_eq!(m.typ, BINDING_REQUEST);
    assert_eq!(m.transaction_id.0, tid.0);
    let user = TextAttribute::get_from_as(&m, ATTR_USERNAME).unwrap();
    assert_eq!(user.text, "abcd:efgh");
    assert_eq!(
        m.get(ATTR_PRIORITY).unwrap(),
        1_853_824_767u32.to_be_bytes()
    );
    assert_eq!(
        m.get(ATTR_ICE_CONTROLLING).unwrap(),
        0x0102_0304_0506_0708u64.to_be_bytes()
    );
    assert!(m.contains(ATTR_USE_CANDIDATE));
    MessageIntegrity::new_short_term_integrity(PWD.into())
        .check(&mut m)
        .unwrap();
    FINGERPRINT.check(&m).unwrap();
    // And a wrong password is refused by them too.
    assert!(
        MessageIntegrity::new_short_term_integrity("wrong".into())
            .check(&mut m)
            .is_err()
    );
}

#[test]
fn their_ice_check_is_accepted_by_ours() {
    let mut m = TheirMessage::new();
    m.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(::stun::agent::TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, "efgh:abcd".into())),
        raw(ATTR_PRIORITY, &7u32.to_be_bytes()),
        raw(ATTR_ICE_CONTROLLING, &9u64.to_be_bytes()),
        raw(ATTR_USE_CANDIDATE, &[]),
        Box::new(MessageIntegrity::new_short_term_integrity(PWD.into())),
        Box::new(FINGERPRINT),
    ])
    .unwrap();

    let msg = ours::parse(&m.raw).unwrap();
    assert_eq!(msg.class(), Class::Request);
    assert_eq!(msg.method(), Method::BINDING);
    assert_eq!(msg.transaction_id().0, m.transaction_id.0);
    assert_eq!(msg.username(), Some(&b"efgh:abcd"[..]));
    assert_eq!(ours::username_ufrag(&m.raw), Some(&b"efgh"[..]));
    assert_eq!(msg.priority(), Some(7));
    assert_eq!(msg.ice_controlling(), Some(9));
    assert!(msg.use_candidate());
    assert_eq!(
        msg.verify_integrity(&Key::new(PWD.as_bytes())),
        Ok(Integrity::Sha1)
    );
    msg.verify_fingerprint().unwrap();
    assert!(msg.verify_integrity(&Key::new(b"wrong")).is_err());
}

#[test]
fn xor_mapped_address_both_families_both_directions() {
    for addr in [
        "198.51.100.7:40000".parse::<SocketAddr>().unwrap(),
        "[2001:db8::1:2]:5000".parse().unwrap(),
    ] {
        // Theirs -> ours.
        let mut m = TheirMessage::new();
        m.build(&[
            Box::new(BINDING_SUCCESS),
            Box::new(::stun::agent::TransactionId::new()),
            Box::new(XorMappedAddress {
                ip: addr.ip(),
                port: addr.port(),
            }),
            Box::new(MessageIntegrity::new_short_term_integrity(PWD.into())),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
        let msg = ours::parse(&m.raw).unwrap();
        assert_eq!(msg.class(), Class::Success);
        assert_eq!(msg.xor_mapped_address(), Some(addr));
        msg.verify_integrity(&Key::new(PWD.as_bytes())).unwrap();
        msg.verify_fingerprint().unwrap();

        // Ours -> theirs.
        let tid = TransactionId::random(&mut Rng::seeded(2));
        let mut buf = Vec::new();
        MessageBuilder::new(&mut buf, Class::Success, Method::BINDING, tid)
            .xor_mapped_address(addr)
            .message_integrity(&Key::new(PWD.as_bytes()))
            .fingerprint();
        let mut m = theirs_from(&buf);
        assert_eq!(m.typ, BINDING_SUCCESS);
        let mut xor = XorMappedAddress::default();
        xor.get_from(&m).unwrap();
        assert_eq!(SocketAddr::new(xor.ip, xor.port), addr);
        MessageIntegrity::new_short_term_integrity(PWD.into())
            .check(&mut m)
            .unwrap();
        FINGERPRINT.check(&m).unwrap();
    }
}

#[test]
fn error_responses_both_directions() {
    let tid = TransactionId::random(&mut Rng::seeded(3));
    let mut buf = Vec::new();
    MessageBuilder::new(&mut buf, Class::Error, Method::BINDING, tid)
        .error_code(420, "Unknown Attribute")
        .unknown_attributes(&[0x0033, 0x7FFF])
        .fingerprint();
    let m = theirs_from(&buf);
    assert_eq!(m.typ, BINDING_ERROR);
    let mut code = ErrorCodeAttribute::default();
    code.get_from(&m).unwrap();
    assert!(code.code == TheirErrorCode(420));
    assert_eq!(code.reason, b"Unknown Attribute");
    FINGERPRINT.check(&m).unwrap();

    let mut m = TheirMessage::new();
    m.build(&[
        Box::new(BINDING_ERROR),
        Box::new(::stun::agent::TransactionId::new()),
        Box::new(ErrorCodeAttribute {
            code: TheirErrorCode(487),
            reason: b"Role Conflict".to_vec(),
        }),
        Box::new(FINGERPRINT),
    ])
    .unwrap();
    let msg = ours::parse(&m.raw).unwrap();
    let code = msg.error_code().unwrap();
    assert_eq!((code.code, code.reason), (487, &b"Role Conflict"[..]));
    msg.verify_fingerprint().unwrap();
}

#[test]
fn long_term_credentials_both_directions() {
    let (user, realm, pass) = ("user", "example.org", "secret");
    let key = Key::new(&Md5::digest(format!("{user}:{realm}:{pass}")));
    let mut m = TheirMessage::new();
    m.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(::stun::agent::TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, user.into())),
        Box::new(TextAttribute::new(
            ::stun::attributes::ATTR_REALM,
            realm.into(),
        )),
        Box::new(MessageIntegrity::new_long_term_integrity(
            user.into(),
            realm.into(),
            pass.into(),
        )),
    ])
    .unwrap();
    ours::parse(&m.raw).unwrap().verify_integrity(&key).unwrap();

    let mut buf = Vec::new();
    MessageBuilder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([7; 12]),
    )
    .username(user.as_bytes())
    .realm(realm.as_bytes())
    .message_integrity(&key);
    MessageIntegrity::new_long_term_integrity(user.into(), realm.into(), pass.into())
        .check(&mut theirs_from(&buf))
        .unwrap();
}
