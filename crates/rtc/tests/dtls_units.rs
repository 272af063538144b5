//! Unit tests of the DTLS building blocks against known vectors and OpenSSL's KDF.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rtc::dtls::msgs::HandshakeHeader;
use rtc::dtls::prf;
use rtc::dtls::reassembly::{Inserted, MAX_FRAGMENTS, MAX_MESSAGE_LEN, MIN_FRAGMENT, Reassembler};
use rtc::dtls::record::ReplayWindow;
use rtc::dtls::{DtlsError, Fingerprint};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The TLS 1.2 P_SHA256 test vector posted to the IETF TLS list (msg03416), also produced by
/// `openssl kdf -kdfopt digest:SHA256 ... TLS1-PRF`.
#[test]
fn prf_sha256_known_vector() {
    let mut out = [0u8; 100];
    prf::prf(
        &hex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35"),
        b"test label",
        &[&hex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c")],
        &mut out,
    );
    let expected = hex(
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e
         14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5
         a72e5a5110fff70187347b66",
    );
    assert_eq!(out[..], expected[..]);
}

fn openssl_prf(secret: &[u8], label: &str, seed: &[u8], len: usize) -> Vec<u8> {
    let to_hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let out = Command::new("/usr/bin/openssl")
        .args([
            "kdf",
            "-keylen",
            &len.to_string(),
            "-kdfopt",
            "digest:SHA256",
        ])
        .arg("-kdfopt")
        .arg(format!("hexsecret:{}", to_hex(secret)))
        .arg("-kdfopt")
        .arg(format!(
            "hexseed:{}{}",
            to_hex(label.as_bytes()),
            to_hex(seed)
        ))
        .arg("TLS1-PRF")
        .output()
        .expect("/usr/bin/openssl missing: apt-get install openssl");
    hex(&String::from_utf8(out.stdout).unwrap())
}

/// Extended master secret (RFC 7627 §4) and the DTLS-SRTP exporter (RFC 5705, RFC 5764 §4.2)
/// as OpenSSL's TLS1-PRF computes them. (The s_client tests check the whole chain end to end.)
#[test]
fn ems_and_exporter_match_openssl() {
    let pre_master: Vec<u8> = (0..32).map(|i| i * 7 + 1).collect();
    let session_hash = prf::transcript_hash(b"handshake messages");
    let ms = prf::extended_master_secret(&pre_master, &session_hash);
    assert_eq!(
        ms.to_vec(),
        openssl_prf(&pre_master, "extended master secret", &session_hash, 48)
    );
    let (cr, sr) = ([1u8; 32], [2u8; 32]);
    let km = prf::export(&ms, "EXTRACTOR-dtls_srtp", &cr, &sr, 60);
    assert_eq!(
        km,
        openssl_prf(&ms, "EXTRACTOR-dtls_srtp", &[cr, sr].concat(), 60)
    );
    let keys = prf::traffic_keys(&ms, &cr, &sr);
    let kb = openssl_prf(&ms, "key expansion", &[sr, cr].concat(), 40);
    assert_eq!(
        [
            &keys.client_key[..],
            &keys.server_key,
            &keys.client_iv,
            &keys.server_iv
        ]
        .concat(),
        kb
    );
}

#[test]
fn replay_window() {
    let mut w = ReplayWindow::default();
    assert!(w.check(0));
    w.mark(0);
    assert!(!w.check(0));
    w.mark(5);
    assert!(w.check(3) && w.check(4) && !w.check(5));
    w.mark(3);
    assert!(!w.check(3));
    w.mark(100); // slides: 36 is the oldest still tracked
    assert!(!w.check(36) && w.check(37) && !w.check(100) && w.check(99));
    w.mark(37);
    assert!(!w.check(37));
    w.mark(1 << 40); // a big jump clears everything behind
    assert!(!w.check(99) && w.check((1 << 40) - 1) && !w.check(1 << 40));
    assert!(w.check((1 << 40) + 1));
}

fn header(seq: u16, len: u32, off: u32, flen: u32) -> HandshakeHeader {
    HandshakeHeader {
        msg_type: 11,
        length: len,
        message_seq: seq,
        fragment_offset: off,
        fragment_length: flen,
    }
}

#[test]
fn reassembly_out_of_order_overlapping_duplicated() {
    let body: Vec<u8> = (0..300).map(|i| i as u8).collect();
    let mut re = Reassembler::new(false);
    let put = |re: &mut Reassembler, off: u32, end: u32| {
        let h = header(0, 300, off, end - off);
        re.insert(0, &h, &body[off as usize..end as usize])
    };
    assert_eq!(put(&mut re, 180, 300), Inserted::Buffered);
    assert!(re.pop().is_none());
    assert_eq!(put(&mut re, 30, 210), Inserted::Buffered); // overlaps
    assert_eq!(put(&mut re, 30, 210), Inserted::Buffered); // duplicate
    assert_eq!(re.ranges_kept(), 1);
    assert!(re.pop().is_none());
    assert_eq!(put(&mut re, 0, 31), Inserted::Buffered);
    let m = re.pop().unwrap();
    assert_eq!((m.seq, m.msg_type, m.body), (0, 11, body.clone()));
    assert!(re.pop().is_none());
    // Now seq 0 is old: the peer retransmitting.
    assert_eq!(put(&mut re, 0, 10), Inserted::Old { seq: 0, offset: 0 });
}

#[test]
fn reassembly_delivers_in_sequence_and_bounds_memory() {
    let mut re = Reassembler::new(false);
    re.expect(3);
    // seq 4 complete first, then 3: delivered 3 then 4.
    assert_eq!(
        re.insert(0, &header(4, 2, 0, 2), &[4, 4]),
        Inserted::Buffered
    );
    assert!(re.pop().is_none());
    assert_eq!(re.insert(0, &header(3, 0, 0, 0), &[]), Inserted::Buffered); // empty message
    assert_eq!(re.pop().unwrap().seq, 3);
    assert_eq!(re.pop().unwrap().body, [4, 4]);
    // Too far ahead, too large, inconsistent lengths: dropped.
    assert_eq!(
        re.insert(0, &header(100, 2, 0, 2), &[0, 0]),
        Inserted::Dropped
    );
    assert_eq!(
        re.insert(0, &header(5, MAX_MESSAGE_LEN + 1, 0, 1), &[0]),
        Inserted::Dropped
    );
    assert_eq!(
        re.insert(0, &header(5, 10, 0, 2), &[0, 0]),
        Inserted::Buffered
    );
    assert_eq!(
        re.insert(0, &header(5, 11, 0, 2), &[0, 0]),
        Inserted::Dropped
    );
    // Large claimed lengths stop being buffered after the memory bound.
    let accepted = (6..12)
        .filter(|s| re.insert(0, &header(*s, MAX_MESSAGE_LEN, 0, 1), &[0]) == Inserted::Buffered)
        .count();
    assert!(accepted < 6, "{accepted}");
}

/// Issue 10: one peer sent ~700 datagrams of 1-byte fragments of a ClientHello, then the same
/// again, before the cookie exchange. Each fragment used to re-sort and re-merge every range
/// kept so far (quadratic, and the media thread of every session waited). Now tiny fragments
/// in the middle of a message are refused, a range costs O(log n), and the connection's
/// fragment budget ends the game. The work is counted as the ranges each insert had to
/// look at (what the old sort-and-merge walked), not timed.
#[test]
fn reassembly_survives_one_byte_fragments_and_duplicates() {
    let len = 1400u32;
    let mut re = Reassembler::new(true); // a server before the cookie exchange
    let mut work = 0usize;
    let mut buffered = 0usize;
    for round in 0..2 {
        for i in 0..700u32 {
            let off = 1 + 2 * i; // every other byte: nothing merges
            if off >= len {
                break;
            }
            let r = re.insert(0, &header(0, len, off, 1), &[round as u8]);
            buffered += usize::from(r == Inserted::Buffered);
            work += re.ranges_kept();
        }
    }
    assert!(re.ranges_kept() <= 2, "ranges kept {}", re.ranges_kept());
    assert!(work <= 2 * 1400, "range visits {work}");
    assert_eq!(buffered, 0);
    assert!(re.fragments_taken() <= MAX_FRAGMENTS);
    // Past the budget nothing is even looked at, a fine first fragment included.
    let h = header(1, 100, 0, 100);
    for _ in 0..2 * MAX_FRAGMENTS {
        let _ = re.insert(0, &h, &[0; 100]);
    }
    assert_eq!(re.fragments_taken(), MAX_FRAGMENTS);
    assert_eq!(re.insert(0, &h, &[0; 100]), Inserted::Dropped);
}

/// What real senders do still works: a small first fragment squeezed into the end of a
/// datagram (OpenSSL packs so), full middle fragments, a small last one.
#[test]
fn reassembly_takes_small_first_and_last_fragments() {
    let body: Vec<u8> = (0..1000).map(|i| (i * 7) as u8).collect();
    let mut re = Reassembler::new(false);
    for (off, end) in [(0, 5), (5, 505), (505, 995), (995, 1000)] {
        let h = header(0, 1000, off, end - off);
        let frag = &body[off as usize..end as usize];
        assert_eq!(re.insert(0, &h, frag), Inserted::Buffered, "{off}..{end}");
    }
    assert_eq!(re.pop().unwrap().body, body);
    // A small fragment in the middle of a message is refused.
    let h = header(1, 1000, 500, MIN_FRAGMENT as u32 - 1);
    assert_eq!(
        re.insert(0, &h, &body[..MIN_FRAGMENT - 1]),
        Inserted::Dropped
    );
}

#[test]
fn handshake_header_rejects_fragments_outside_the_message() {
    let mut bytes = Vec::new();
    header(0, 10, 8, 4).encode(&mut bytes);
    bytes.extend_from_slice(&[0; 4]);
    let mut r = rtc::dtls::codec::Reader::new(&bytes, "t");
    assert_eq!(
        HandshakeHeader::parse(&mut r),
        Err(DtlsError::Decode("handshake fragment header"))
    );
}

#[test]
fn fingerprint_formats_like_sdp() {
    let fp = Fingerprint::of(b"certificate");
    let s = fp.to_string();
    assert_eq!(s.len(), 32 * 3 - 1);
    assert!(
        s.chars()
            .all(|c| c == ':' || c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    assert_eq!(s.parse::<Fingerprint>().unwrap(), fp);
    assert_eq!(
        format!("sha-256 {}", s.to_lowercase())
            .parse::<Fingerprint>()
            .unwrap(),
        fp
    );
    assert!("sha-1 AB:CD".parse::<Fingerprint>().is_err());
    assert!(s[..s.len() - 3].parse::<Fingerprint>().is_err());
    assert!(format!("{s}:00").parse::<Fingerprint>().is_err());
}
