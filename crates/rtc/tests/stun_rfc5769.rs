//! RFC 5769 "Test Vectors for STUN": every vector parses, verifies and is rebuilt byte for
//! byte. The bytes are copied from the RFC's hex dumps (sections cited on each constant).

use std::net::SocketAddr;

use md5::{Digest, Md5};
use rtc::stun::{self, Class, Integrity, Key, MessageBuilder, Method, StunError, TransactionId};

/// RFC 5769 §2.1 "Sample Request". Username "evtj:h6vY", password
/// "VOkJxbRl1RmTxUk/WvJxBt", software "STUN test client".
const SAMPLE_REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, // Request type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x10, // SOFTWARE attribute header
    0x53, 0x54, 0x55, 0x4e, // }
    0x20, 0x74, 0x65, 0x73, // }  User-agent...
    0x74, 0x20, 0x63, 0x6c, // }  ...name
    0x69, 0x65, 0x6e, 0x74, // }
    0x00, 0x24, 0x00, 0x04, // PRIORITY attribute header
    0x6e, 0x00, 0x01, 0xff, // ICE priority value
    0x80, 0x29, 0x00, 0x08, // ICE-CONTROLLED attribute header
    0x93, 0x2f, 0xf9, 0xb1, // }  Pseudo-random tie breaker...
    0x51, 0x26, 0x3b, 0x36, // }   ...for ICE control
    0x00, 0x06, 0x00, 0x09, // USERNAME attribute header
    0x65, 0x76, 0x74, 0x6a, // }
    0x3a, 0x68, 0x36, 0x76, // }  Username (9 bytes) and padding (3 bytes)
    0x59, 0x20, 0x20, 0x20, // }
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x9a, 0xea, 0xa7, 0x0c, // }
    0xbf, 0xd8, 0xcb, 0x56, // }
    0x78, 0x1e, 0xf2, 0xb5, // }  HMAC-SHA1 fingerprint
    0xb2, 0xd3, 0xf2, 0x49, // }
    0xc1, 0xb5, 0x71, 0xa2, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xe5, 0x7a, 0x3b, 0xcf, // CRC32 fingerprint
];

/// RFC 5769 §2.2 "Sample IPv4 Response". Software "test vector", mapped address
/// 192.0.2.1 port 32853, same password as §2.1.
const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, // Response type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x0b, // SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // }
    0x20, 0x76, 0x65, 0x63, // }  UTF-8 server name
    0x74, 0x6f, 0x72, 0x20, // }
    0x00, 0x20, 0x00, 0x08, // XOR-MAPPED-ADDRESS attribute header
    0x00, 0x01, 0xa1, 0x47, // Address family (IPv4) and xor'd mapped port number
    0xe1, 0x12, 0xa6, 0x43, // Xor'd mapped IPv4 address
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x2b, 0x91, 0xf5, 0x99, // }
    0xfd, 0x9e, 0x90, 0xc3, // }
    0x8c, 0x74, 0x89, 0xf9, // }  HMAC-SHA1 fingerprint
    0x2a, 0xf9, 0xba, 0x53, // }
    0xf0, 0x6b, 0xe7, 0xd7, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xc0, 0x7d, 0x4c, 0x96, // CRC32 fingerprint
];

/// RFC 5769 §2.3 "Sample IPv6 Response". Mapped address
/// 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
const SAMPLE_IPV6_RESPONSE: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, // Response type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x0b, // SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // }
    0x20, 0x76, 0x65, 0x63, // }  UTF-8 server name
    0x74, 0x6f, 0x72, 0x20, // }
    0x00, 0x20, 0x00, 0x14, // XOR-MAPPED-ADDRESS attribute header
    0x00, 0x02, 0xa1, 0x47, // Address family (IPv6) and xor'd mapped port number
    0x01, 0x13, 0xa9, 0xfa, // }
    0xa5, 0xd3, 0xf1, 0x79, // }  Xor'd mapped IPv6 address
    0xbc, 0x25, 0xf4, 0xb5, // }
    0xbe, 0xd2, 0xb9, 0xd9, // }
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0xa3, 0x82, 0x95, 0x4e, // }
    0x4b, 0xe6, 0x7b, 0xf1, // }
    0x17, 0x84, 0xc9, 0x7c, // }  HMAC-SHA1 fingerprint
    0x82, 0x92, 0xc2, 0x75, // }
    0xbf, 0xe3, 0xed, 0x41, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xc8, 0xfb, 0x0b, 0x4c, // CRC32 fingerprint
];

/// RFC 5769 §2.4 "Sample Request with Long-Term Authentication". Username
/// "マトリックス" (U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9), password "TheMatrIX"
/// after SASLprep, nonce "f//499k954d6OL34oL9FSTvy64sA", realm "example.org". No FINGERPRINT.
const SAMPLE_REQUEST_LONG_TERM: [u8; 116] = [
    0x00, 0x01, 0x00, 0x60, // Request type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0x78, 0xad, 0x34, 0x33, // }
    0xc6, 0xad, 0x72, 0xc0, // }  Transaction ID
    0x29, 0xda, 0x41, 0x2e, // }
    0x00, 0x06, 0x00, 0x12, // USERNAME attribute header
    0xe3, 0x83, 0x9e, 0xe3, // }
    0x83, 0x88, 0xe3, 0x83, // }
    0xaa, 0xe3, 0x83, 0x83, // }  Username value (18 bytes) and padding (2 bytes)
    0xe3, 0x82, 0xaf, 0xe3, // }
    0x82, 0xb9, 0x00, 0x00, // }
    0x00, 0x15, 0x00, 0x1c, // NONCE attribute header
    0x66, 0x2f, 0x2f, 0x34, // }
    0x39, 0x39, 0x6b, 0x39, // }
    0x35, 0x34, 0x64, 0x36, // }
    0x4f, 0x4c, 0x33, 0x34, // }  Nonce value
    0x6f, 0x4c, 0x39, 0x46, // }
    0x53, 0x54, 0x76, 0x79, // }
    0x36, 0x34, 0x73, 0x41, // }
    0x00, 0x14, 0x00, 0x0b, // REALM attribute header
    0x65, 0x78, 0x61, 0x6d, // }
    0x70, 0x6c, 0x65, 0x2e, // }  Realm value (11 bytes) and padding (1 byte)
    0x6f, 0x72, 0x67, 0x00, // }
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0xf6, 0x70, 0x24, 0x65, // }
    0x6d, 0xd6, 0x4a, 0x3e, // }
    0x02, 0xb8, 0xe0, 0x71, // }  HMAC-SHA1 fingerprint
    0x2e, 0x85, 0xc9, 0xa2, // }
    0x8c, 0xa8, 0x96, 0x66, // }
];

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
const TID: TransactionId = TransactionId([
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
]);
const MAPPED_PORT: u16 = 32853;

#[test]
fn rfc5769_2_1_sample_request() {
    let msg = stun::parse(&SAMPLE_REQUEST).unwrap();
    assert_eq!(msg.class(), Class::Request);
    assert_eq!(msg.method(), Method::BINDING);
    assert_eq!(msg.transaction_id(), TID);
    assert_eq!(msg.software(), Some(&b"STUN test client"[..]));
    assert_eq!(msg.priority(), Some(0x6e00_01ff));
    assert_eq!(msg.ice_controlled(), Some(0x932f_f9b1_5126_3b36));
    assert_eq!(msg.ice_controlling(), None);
    assert!(!msg.use_candidate());
    assert_eq!(msg.username(), Some(&b"evtj:h6vY"[..]));
    assert_eq!(stun::username_ufrag(&SAMPLE_REQUEST), Some(&b"evtj"[..]));
    assert_eq!(
        msg.verify_integrity(&Key::new(PASSWORD)),
        Ok(Integrity::Sha1)
    );
    assert_eq!(
        msg.verify_integrity(&Key::new(b"VOkJxbRl1RmTxUk/WvJxBu")),
        Err(StunError::IntegrityMismatch)
    );
    msg.verify_fingerprint().unwrap();
    assert_eq!(msg.fingerprint(), Some(0xe57a_3bcf));
    assert_eq!(msg.unknown_comprehension_required().count(), 0);

    // Rebuilt with the vector's space padding (RFC 5389 allowed any padding value).
    let mut buf = Vec::new();
    MessageBuilder::new(&mut buf, Class::Request, Method::BINDING, TID)
        .padding_byte(b' ')
        .software(b"STUN test client")
        .priority(0x6e00_01ff)
        .ice_controlled(0x932f_f9b1_5126_3b36)
        .username(b"evtj:h6vY")
        .message_integrity(&Key::new(PASSWORD))
        .fingerprint();
    assert_eq!(buf, SAMPLE_REQUEST);
}

#[test]
fn rfc5769_2_2_sample_ipv4_response() {
    let msg = stun::parse(&SAMPLE_IPV4_RESPONSE).unwrap();
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.software(), Some(&b"test vector"[..]));
    let mapped = SocketAddr::from(([192, 0, 2, 1], MAPPED_PORT));
    assert_eq!(msg.xor_mapped_address(), Some(mapped));
    msg.verify_integrity(&Key::new(PASSWORD)).unwrap();
    msg.verify_fingerprint().unwrap();

    let mut buf = Vec::new();
    MessageBuilder::new(&mut buf, Class::Success, Method::BINDING, TID)
        .padding_byte(b' ')
        .software(b"test vector")
        .xor_mapped_address(mapped)
        .message_integrity(&Key::new(PASSWORD))
        .fingerprint();
    assert_eq!(buf, SAMPLE_IPV4_RESPONSE);
}

#[test]
fn rfc5769_2_3_sample_ipv6_response() {
    let msg = stun::parse(&SAMPLE_IPV6_RESPONSE).unwrap();
    assert_eq!(msg.class(), Class::Success);
    let ip: std::net::Ipv6Addr = "2001:db8:1234:5678:11:2233:4455:6677".parse().unwrap();
    let mapped = SocketAddr::from((ip, MAPPED_PORT));
    assert_eq!(msg.xor_mapped_address(), Some(mapped));
    msg.verify_integrity(&Key::new(PASSWORD)).unwrap();
    msg.verify_fingerprint().unwrap();

    let mut buf = Vec::new();
    MessageBuilder::new(&mut buf, Class::Success, Method::BINDING, TID)
        .padding_byte(b' ')
        .software(b"test vector")
        .xor_mapped_address(mapped)
        .message_integrity(&Key::new(PASSWORD))
        .fingerprint();
    assert_eq!(buf, SAMPLE_IPV6_RESPONSE);
}

#[test]
fn rfc5769_2_4_sample_request_long_term() {
    let username = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    let (realm, nonce) = ("example.org", "f//499k954d6OL34oL9FSTvy64sA");
    // RFC 8489 §9.2.2: key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password)).
    let key = Key::new(&Md5::digest(format!("{username}:{realm}:TheMatrIX")));

    let msg = stun::parse(&SAMPLE_REQUEST_LONG_TERM).unwrap();
    assert_eq!(msg.class(), Class::Request);
    assert_eq!(msg.username(), Some(username.as_bytes()));
    assert_eq!(msg.realm(), Some(realm.as_bytes()));
    assert_eq!(msg.nonce(), Some(nonce.as_bytes()));
    assert_eq!(msg.verify_integrity(&key), Ok(Integrity::Sha1));
    assert_eq!(msg.verify_fingerprint(), Err(StunError::MissingFingerprint));

    let tid = TransactionId(SAMPLE_REQUEST_LONG_TERM[8..20].try_into().unwrap());
    let mut buf = Vec::new();
    MessageBuilder::new(&mut buf, Class::Request, Method::BINDING, tid)
        .username(username.as_bytes())
        .nonce(nonce.as_bytes())
        .realm(realm.as_bytes())
        .message_integrity(&key);
    assert_eq!(buf, SAMPLE_REQUEST_LONG_TERM);
}

#[test]
fn rfc5769_vectors_reject_any_flipped_bit() {
    // Each vector is protected end to end: a flipped bit anywhere after the header is
    // caught by parse, FINGERPRINT or MESSAGE-INTEGRITY.
    let key = Key::new(PASSWORD);
    for vector in [
        &SAMPLE_REQUEST[..],
        &SAMPLE_IPV4_RESPONSE[..],
        &SAMPLE_IPV6_RESPONSE[..],
    ] {
        for i in 0..vector.len() * 8 {
            let mut v = vector.to_vec();
            v[i / 8] ^= 1 << (i % 8);
            let ok = stun::parse(&v)
                .is_ok_and(|m| m.verify_fingerprint().is_ok() && m.verify_integrity(&key).is_ok());
            // Flipping a padding byte is the only change the RFC tells receivers to ignore
            // (§14), but it is still covered by the HMAC and the CRC.
            assert!(!ok, "bit {i} flipped and still accepted");
        }
    }
}
