//! Framing, validation and integrity rules of `rtc::stun` beyond the RFC 5769 vectors.

use aws_lc_rs::hmac;
use rtc::stun::{
    self, Attribute, Class, Integrity, Key, MessageBuilder, Method, StunError, TransactionId, attr,
};

const TID: TransactionId = TransactionId([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

fn build(f: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, Class::Request, Method::BINDING, TID);
    f(&mut b);
    buf
}

/// A message whose attribute section is exactly `attrs` (length set accordingly).
fn with_attrs(attrs: &[u8]) -> Vec<u8> {
    let mut v = build(|_| {});
    v.extend_from_slice(attrs);
    let len = (attrs.len() as u16).to_be_bytes();
    v[2..4].copy_from_slice(&len);
    v
}

#[test]
fn header_errors() {
    let ok = build(|_| {});
    assert!(stun::parse(&ok).is_ok());
    assert_eq!(stun::parse(&ok[..19]).unwrap_err(), StunError::TooShort);
    assert_eq!(stun::parse(&[]).unwrap_err(), StunError::TooShort);

    let mut v = ok.clone();
    v[0] |= 0x80;
    assert_eq!(stun::parse(&v).unwrap_err(), StunError::NotStun);

    let mut v = ok.clone();
    v[7] ^= 1;
    assert_eq!(stun::parse(&v).unwrap_err(), StunError::BadMagicCookie);

    let mut v = ok.clone();
    v[3] = 2;
    v.extend_from_slice(&[0, 0]);
    assert!(matches!(
        stun::parse(&v).unwrap_err(),
        StunError::BadLength { header: 2, .. }
    ));

    let mut v = ok.clone();
    v.extend_from_slice(&[0; 4]); // trailing bytes the header does not count
    assert_eq!(
        stun::parse(&v).unwrap_err(),
        StunError::BadLength {
            header: 0,
            actual: 4
        }
    );
}

#[test]
fn attribute_framing_errors() {
    // A value running past the end.
    let v = with_attrs(&[0x80, 0x22, 0x00, 0x08, b'a', b'b', b'c', b'd']);
    assert_eq!(stun::parse(&v).unwrap_err(), StunError::Truncated(0x8022));
    // A value that fits but whose padding does not.
    let v = with_attrs(&[0x80, 0x22, 0x00, 0x05, b'a', b'b', b'c', b'd']);
    assert!(stun::parse(&v).is_err());
    // A half attribute header (impossible with a length that is a multiple of 4, so
    // checked through the length rule).
    let v = with_attrs(&[0x80, 0x22]);
    assert!(stun::parse(&v).is_err());
}

#[test]
fn malformed_known_attributes_are_rejected() {
    let cases: &[(u16, &[u8])] = &[
        (attr::PRIORITY, &[1, 2, 3]),
        (attr::USE_CANDIDATE, &[0]),
        (attr::ICE_CONTROLLED, &[0; 4]),
        (attr::ICE_CONTROLLING, &[0; 12]),
        (attr::MESSAGE_INTEGRITY, &[0; 16]),
        (attr::MESSAGE_INTEGRITY_SHA256, &[0; 12]),
        (attr::MESSAGE_INTEGRITY_SHA256, &[0; 18]),
        (attr::FINGERPRINT, &[0; 8]),
        (attr::ERROR_CODE, &[0, 0, 4]),
        (attr::ERROR_CODE, &[0, 0, 2, 0]), // class 2 is not an error
        (attr::ERROR_CODE, &[0, 0, 4, 100]), // number above 99
        (attr::UNKNOWN_ATTRIBUTES, &[0, 1, 2]),
        (attr::XOR_MAPPED_ADDRESS, &[0, 1, 0, 0, 1, 2, 3]),
        (attr::XOR_MAPPED_ADDRESS, &[0, 3, 0, 0, 1, 2, 3, 4]), // unknown family
        (attr::MAPPED_ADDRESS, &[0, 2, 0, 0, 1, 2, 3, 4]),     // v6 family, v4 size
        (attr::USERNAME, &[b'a'; 513]),
    ];
    for &(typ, value) in cases {
        let v = build(|b| {
            b.attr(typ, value);
        });
        assert_eq!(
            stun::parse(&v).unwrap_err(),
            StunError::BadAttribute(typ),
            "{typ:#x} {value:?}"
        );
    }
}

#[test]
fn fingerprint_must_be_last() {
    let mut v = build(|b| {
        b.fingerprint();
    });
    v.extend_from_slice(&[0x80, 0x22, 0, 0]);
    let len = (v.len() as u16 - 20).to_be_bytes();
    v[2..4].copy_from_slice(&len);
    assert_eq!(stun::parse(&v).unwrap_err(), StunError::FingerprintNotLast);
}

#[test]
fn unknown_attributes_are_kept_and_reported_when_required() {
    let v = build(|b| {
        b.attr(0x8033, b"optional")
            .attr(0x0033, b"required")
            .username(b"u:v")
            .attr(0x7FFF, &[]);
    });
    let msg = stun::parse(&v).unwrap();
    let types: Vec<u16> = msg.attributes().map(|a| a.typ).collect();
    assert_eq!(types, [0x8033, 0x0033, attr::USERNAME, 0x7FFF]);
    assert_eq!(
        msg.attributes().nth(1),
        Some(Attribute {
            typ: 0x0033,
            value: b"required"
        })
    );
    let unknown: Vec<u16> = msg.unknown_comprehension_required().collect();
    assert_eq!(unknown, [0x0033, 0x7FFF]);
    assert_eq!(msg.username(), Some(&b"u:v"[..]));
}

#[test]
fn first_duplicate_wins() {
    let v = build(|b| {
        b.priority(1).priority(2);
    });
    assert_eq!(stun::parse(&v).unwrap().priority(), Some(1));
}

#[test]
fn attributes_after_integrity_are_ignored_but_fingerprint_counts() {
    // RFC 8489 §14.5: only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may follow
    // MESSAGE-INTEGRITY; anything else there is ignored and not covered by the HMAC.
    let key = Key::new(b"pass");
    let v = build(|b| {
        b.username(b"a:b")
            .message_integrity(&key)
            .software(b"added later")
            .attr(0x0033, b"unknown, ignored")
            .attr(attr::PRIORITY, &[1]) // malformed, but ignored, so harmless
            .fingerprint();
    });
    let msg = stun::parse(&v).unwrap();
    assert_eq!(msg.software(), None);
    assert_eq!(msg.unknown_comprehension_required().count(), 0);
    assert_eq!(msg.verify_integrity(&key), Ok(Integrity::Sha1));
    msg.verify_fingerprint().unwrap();
    let types: Vec<u16> = msg.attributes().map(|a| a.typ).collect();
    assert_eq!(
        types,
        [attr::USERNAME, attr::MESSAGE_INTEGRITY, attr::FINGERPRINT]
    );
}

#[test]
fn integrity_sha256_full_and_truncated() {
    let key = Key::new(b"pass");
    let v = build(|b| {
        b.username(b"a:b")
            .message_integrity_sha256(&key)
            .fingerprint();
    });
    let msg = stun::parse(&v).unwrap();
    assert_eq!(msg.message_integrity_sha256().map(<[u8]>::len), Some(32));
    assert_eq!(msg.verify_integrity(&key), Ok(Integrity::Sha256));
    assert_eq!(
        msg.verify_integrity(&Key::new(b"other")),
        Err(StunError::IntegrityMismatch)
    );
    msg.verify_fingerprint().unwrap();

    // A 16-byte truncated HMAC-SHA256 (§14.6), computed here straight from the RFC's
    // definition: HMAC over the message up to the attribute, with the length counting it.
    let mut v = build(|b| {
        b.username(b"a:b");
    });
    let at = v.len();
    let len = ((at + 4 + 16 - 20) as u16).to_be_bytes();
    v[2..4].copy_from_slice(&len);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"pass"), &v);
    v.extend_from_slice(&[0x00, 0x1C, 0x00, 0x10]);
    v.extend_from_slice(&tag.as_ref()[..16]);
    let msg = stun::parse(&v).unwrap();
    assert_eq!(msg.verify_integrity(&key), Ok(Integrity::Sha256));
    assert_eq!(msg.verify_fingerprint(), Err(StunError::MissingFingerprint));
}

#[test]
fn both_integrities_and_tampering() {
    let key = Key::new(b"pass");
    let v = build(|b| {
        b.username(b"a:b")
            .message_integrity(&key)
            .message_integrity_sha256(&key)
            .fingerprint();
    });
    let msg = stun::parse(&v).unwrap();
    assert_eq!(msg.message_integrity().map(<[u8]>::len), Some(20));
    assert_eq!(msg.verify_integrity(&key), Ok(Integrity::Sha256));
    msg.verify_fingerprint().unwrap();

    let mut bad = v.clone();
    bad[24] ^= 1; // inside USERNAME
    let msg = stun::parse(&bad).unwrap();
    assert_eq!(
        msg.verify_integrity(&key),
        Err(StunError::IntegrityMismatch)
    );
    assert_eq!(
        msg.verify_fingerprint(),
        Err(StunError::FingerprintMismatch)
    );

    let no_mi = build(|b| {
        b.username(b"a:b").fingerprint();
    });
    assert_eq!(
        stun::parse(&no_mi).unwrap().verify_integrity(&key),
        Err(StunError::MissingIntegrity)
    );
}

#[test]
fn builder_reuses_its_buffer_and_writes_every_attribute() {
    let mut buf = Vec::with_capacity(256);
    MessageBuilder::new(&mut buf, Class::Indication, Method::BINDING, TID).software(b"x");
    let cap = buf.capacity();
    let tid = TransactionId([9; 12]);
    let v4 = "192.0.2.1:1".parse().unwrap();
    MessageBuilder::new(&mut buf, Class::Error, Method(0x123), tid)
        .mapped_address(v4)
        .realm(b"r")
        .nonce(b"n")
        .error_code(401, "Unauthenticated")
        .unknown_attributes(&[1, 2, 3]);
    assert_eq!(buf.capacity(), cap);
    let msg = stun::parse(&buf).unwrap();
    assert_eq!((msg.class(), msg.method()), (Class::Error, Method(0x123)));
    assert_eq!(msg.transaction_id(), tid);
    assert_eq!(msg.mapped_address(), Some(v4));
    assert_eq!(msg.realm(), Some(&b"r"[..]));
    assert_eq!(msg.nonce(), Some(&b"n"[..]));
    let ec = msg.error_code().unwrap();
    assert_eq!((ec.code, ec.reason), (401, &b"Unauthenticated"[..]));
    assert_eq!(msg.unknown_attributes().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(msg.software(), None);
}

#[test]
fn username_ufrag_is_cheap_and_strict() {
    let v = build(|b| {
        b.username(b"serv:peer").fingerprint();
    });
    assert_eq!(stun::username_ufrag(&v), Some(&b"serv"[..]));
    let no_colon = build(|b| {
        b.username(b"servpeer");
    });
    assert_eq!(stun::username_ufrag(&no_colon), None);
    assert_eq!(stun::username_ufrag(&v[..v.len() - 1]), None);
    assert_eq!(
        stun::username_ufrag(b"\x80not stun at all, an RTP packet"),
        None
    );
}
