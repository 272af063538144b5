//! RFC vectors (RFC 3711 Appendix B.2/B.3, RFC 7714 §16/§17) and behaviour tests. The interop
//! cross-check against webrtc-rs lives in `crates/rtc/tests/srtp_interop.rs`.

use aws_lc_rs::cipher::{AES_128, EncryptingKey, UnboundCipherKey};

use super::kdf::{self, SessionKeys, Stream};
use super::transform::{cm_iv, ctr};
use super::{SrtpError, SrtpProfile, SrtpSession};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn aes(key: &[u8]) -> EncryptingKey {
    EncryptingKey::ctr(UnboundCipherKey::new(&AES_128, key).unwrap()).unwrap()
}

/// RFC 3711 Appendix B.2: the AES-CM keystream for session key 2B7E…, salt F0F1…FD,
/// SSRC 0, ROC 0, SEQ 0, over the whole 65282-block segment.
#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let key = aes(&hex("2B7E151628AED2A6ABF7158809CF4F3C"));
    let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
    let iv = cm_iv(&salt, 0, 0);
    assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
    let mut stream = vec![0u8; 1_044_512];
    ctr(&key, iv, &mut stream).unwrap();
    let block = |n: usize| stream[n * 16..n * 16 + 16].to_vec();
    assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

const B3_MASTER_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
const B3_MASTER_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";

/// RFC 3711 Appendix B.3: cipher key, cipher salt and the (94-byte) auth key.
#[test]
fn rfc3711_b3_key_derivation() {
    let (mk, ms) = (hex(B3_MASTER_KEY), hex(B3_MASTER_SALT));
    let auth_94 = hex(
        "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
         E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
         6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2",
    );
    let mut out = vec![0u8; 94];
    kdf::prf(&aes(&mk), &ms, 1, &mut out).unwrap();
    assert_eq!(out, auth_94);

    let keys = kdf::derive(SrtpProfile::Aes128CmSha1_80, &mk, &ms, Stream::Rtp).unwrap();
    assert_eq!(keys.key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(keys.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    // Our profile's auth key is 160 bits: the first 20 bytes of the same PRF output.
    assert_eq!(keys.auth.to_vec(), auth_94[..20]);
    // SRTCP uses labels 3/4/5, so its keys differ from SRTP's.
    let rtcp = kdf::derive(SrtpProfile::Aes128CmSha1_80, &mk, &ms, Stream::Rtcp).unwrap();
    assert_ne!(rtcp.key, keys.key);
    let mut label3 = [0u8; 16];
    kdf::prf(&aes(&mk), &ms, 3, &mut label3).unwrap();
    assert_eq!(rtcp.key, label3);
}

/// RFC 7714 §16/§17 give session keys directly: key 00 01 … 0f, salt "Quid pro quo".
fn rfc7714_session() -> SrtpSession {
    let mut keys = SessionKeys {
        key: hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap(),
        salt: [0; 14],
        auth: [0; 20],
    };
    keys.salt[..12].copy_from_slice(b"Quid pro quo");
    SrtpSession::from_session_keys(SrtpProfile::AeadAes128Gcm, &keys, &keys).unwrap()
}

/// RFC 7714 §16: SSRC 5501a0b2, SEQ f17b, ROC 0, "Gallia est omnis divisa in partes tres".
const RFC7714_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
    20646976 69736120 696e2070 61727465 73207472 6573";

/// RFC 7714 §16.1.1 "Encrypted and tagged packet" and §16.1.2 (decryption of the same).
#[test]
fn rfc7714_16_1_srtp_aead_aes_128_gcm() {
    let plain = hex(RFC7714_RTP);
    let expected = hex(
        "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
         0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
    );
    let mut buf = plain.clone();
    buf.resize(plain.len() + 16, 0);
    let n = rfc7714_session()
        .protect_rtp(&mut buf, plain.len())
        .unwrap();
    assert_eq!(buf[..n], expected);

    let mut buf = expected.clone();
    let n = rfc7714_session().unprotect_rtp(&mut buf).unwrap();
    assert_eq!(buf[..n], plain);
}

/// RFC 7714 §17: an SR from SSRC 4d617273 ("Mars") with SRTCP index 000005d4.
const RFC7714_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
    4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";

/// RFC 7714 §17.1 (encryption and tagging) and §17.2's direction (verify and decrypt).
#[test]
fn rfc7714_17_1_srtcp_encrypted() {
    let plain = hex(RFC7714_RTCP);
    let expected = hex(
        "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
         c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872
         45d9eade 800005d4",
    );
    let mut session = rfc7714_session();
    session.set_rtcp_index(0x5d4);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 20, 0);
    let n = session.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n], expected);

    let mut buf = expected.clone();
    let n = rfc7714_session().unprotect_rtcp(&mut buf).unwrap();
    assert_eq!(buf[..n], plain);
}

/// RFC 7714 §17.3 (tagging only, E-flag clear) and §17.4 (verification only).
#[test]
fn rfc7714_17_3_srtcp_tagging_only() {
    let plain = hex(RFC7714_RTCP);
    let expected = hex(
        "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
         deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790
         125f62b3 000005d4",
    );
    let mut session = rfc7714_session();
    session.set_rtcp_index(0x5d4);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 20, 0);
    let n = session
        .protect_rtcp_with(&mut buf, plain.len(), false)
        .unwrap();
    assert_eq!(buf[..n], expected);

    let mut buf = expected.clone();
    let n = rfc7714_session().unprotect_rtcp(&mut buf).unwrap();
    assert_eq!(buf[..n], plain);
    // A flipped bit anywhere, the word included, must not verify.
    for at in [0, 20, expected.len() - 1, expected.len() - 5] {
        let mut bad = expected.clone();
        bad[at] ^= 1;
        assert_eq!(
            rfc7714_session().unprotect_rtcp(&mut bad),
            Err(SrtpError::AuthFailed)
        );
    }
}

const PROFILES: [SrtpProfile; 2] = [SrtpProfile::Aes128CmSha1_80, SrtpProfile::AeadAes128Gcm];

fn session(profile: SrtpProfile) -> SrtpSession {
    let key: Vec<u8> = (1..=16).collect();
    let salt: Vec<u8> = (100..100 + profile.salt_len() as u8).collect();
    SrtpSession::new(profile, &key, &salt).unwrap()
}

/// An RTP packet with the given seq and SSRC, two CSRCs and a one-byte header extension.
fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x92, 0x60];
    p.extend(seq.to_be_bytes());
    p.extend(0x1234_5678u32.to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend([0, 0, 0, 1, 0, 0, 0, 2]);
    p.extend([0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
    p.extend(payload);
    p
}

fn protect(s: &mut SrtpSession, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + s.profile().rtp_overhead(), 0);
    let n = s.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn unprotect(s: &mut SrtpSession, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = packet.to_vec();
    let n = s.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn rtp_round_trip_keeps_header_and_payload() {
    for profile in PROFILES {
        let (mut tx, mut rx) = (session(profile), session(profile));
        for payload in [&b""[..], b"x", &[7u8; 1200]] {
            let plain = rtp(9, 0xabcd, payload);
            let wire = protect(&mut tx, &plain);
            assert_eq!(wire.len(), plain.len() + profile.rtp_overhead());
            assert_eq!(wire[..24], plain[..24], "header stays in the clear");
            if !payload.is_empty() {
                assert_ne!(wire[24..plain.len()], plain[24..], "payload is encrypted");
            }
            assert_eq!(unprotect(&mut rx, &wire).unwrap(), plain);
            assert_eq!(unprotect(&mut rx, &wire), Err(SrtpError::Replayed));
            rx = session(profile);
        }
    }
}

#[test]
fn rtp_tampering_and_bad_lengths_are_refused() {
    for profile in PROFILES {
        let mut tx = session(profile);
        let wire = protect(&mut tx, &rtp(1, 5, b"hello"));
        for at in [1, 12, 25, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x40;
            assert_eq!(
                unprotect(&mut session(profile), &bad),
                Err(SrtpError::AuthFailed)
            );
        }
        let mut short = wire[..wire.len() - 6].to_vec();
        assert_eq!(
            session(profile).unprotect_rtp(&mut short),
            Err(SrtpError::TooShort)
        );
        assert_eq!(
            session(profile).unprotect_rtp(&mut [0x80; 8]),
            Err(SrtpError::TooShort)
        );
        let mut no_room = rtp(1, 5, b"hello");
        let len = no_room.len();
        assert_eq!(
            tx.protect_rtp(&mut no_room, len),
            Err(SrtpError::BufferTooSmall)
        );
        let mut v1 = rtp(1, 5, b"hello");
        v1[0] = 0x40;
        v1.resize(len + 16, 0);
        assert_eq!(tx.protect_rtp(&mut v1, len), Err(SrtpError::BadVersion));
    }
}

/// RFC 3711 §3.3.1: reordering around a sequence wrap, with the sender's ROC following.
#[test]
fn roc_follows_wrap_and_reordering() {
    for profile in PROFILES {
        let (mut tx, mut rx) = (session(profile), session(profile));
        let seqs = [65533u16, 65534, 0, 65535, 1, 2, 3];
        let wires: Vec<_> = seqs
            .iter()
            .map(|&s| protect(&mut tx, &rtp(s, 7, &[s as u8])))
            .collect();
        // Deliver in send order except 65535 after 0 (and 2 after 3).
        for i in [0usize, 1, 2, 3, 4, 6, 5] {
            let plain = unprotect(&mut rx, &wires[i]).unwrap();
            assert_eq!(plain, rtp(seqs[i], 7, &[seqs[i] as u8]));
        }
        // Protecting 65535 again (a retransmission) reuses ROC 0: the receiver calls it a replay.
        let again = protect(&mut tx, &rtp(65535, 7, &[255]));
        assert_eq!(again, wires[3]);
        assert_eq!(unprotect(&mut rx, &again), Err(SrtpError::Replayed));
        // Far behind the window.
        let mut tx2 = session(profile);
        let old = protect(&mut tx2, &rtp(100, 8, b"a"));
        let new = protect(&mut tx2, &rtp(1400, 8, b"b"));
        unprotect(&mut rx, &new).unwrap();
        assert_eq!(unprotect(&mut rx, &old), Err(SrtpError::TooOld));
    }
}

/// A forged packet must not move the ROC or the window (RFC 3711 §3.3: update after auth).
#[test]
fn state_advances_only_after_authentication() {
    for profile in PROFILES {
        let (mut tx, mut rx) = (session(profile), session(profile));
        unprotect(&mut rx, &protect(&mut tx, &rtp(10, 3, b"a"))).unwrap();
        let mut forged = protect(&mut session(profile), &rtp(40000, 3, b"b"));
        let n = forged.len();
        forged[n - 1] ^= 1;
        assert_eq!(unprotect(&mut rx, &forged), Err(SrtpError::AuthFailed));
        // Had 40000 been accepted, 11 would be estimated in ROC 1 and fail.
        unprotect(&mut rx, &protect(&mut tx, &rtp(11, 3, b"c"))).unwrap();
    }
}

#[test]
fn rtcp_round_trip_replay_and_index() {
    let sr = hex(RFC7714_RTCP);
    for profile in PROFILES {
        let (mut tx, mut rx) = (session(profile), session(profile));
        let mut wires = Vec::new();
        for i in 0..3u32 {
            let mut buf = sr.clone();
            buf.resize(sr.len() + profile.rtcp_overhead(), 0);
            let n = tx.protect_rtcp(&mut buf, sr.len()).unwrap();
            assert_eq!(n, sr.len() + profile.rtcp_overhead());
            let at = if profile == SrtpProfile::AeadAes128Gcm {
                n - 4
            } else {
                n - 14
            };
            assert_eq!(
                buf[at..at + 4],
                (0x8000_0000 | i).to_be_bytes(),
                "E=1, index"
            );
            assert_ne!(buf[8..sr.len()], sr[8..], "encrypted");
            wires.push(buf);
        }
        for w in [&wires[1], &wires[0], &wires[2]] {
            let mut buf = w.clone();
            let n = rx.unprotect_rtcp(&mut buf).unwrap();
            assert_eq!(buf[..n], sr);
        }
        let mut again = wires[0].clone();
        assert_eq!(rx.unprotect_rtcp(&mut again), Err(SrtpError::Replayed));
        let mut short = wires[0][..20].to_vec();
        assert_eq!(rx.unprotect_rtcp(&mut short), Err(SrtpError::TooShort));
        // Flipping the E-flag is caught by the tag.
        let mut flipped = wires[2].clone();
        let at = if profile == SrtpProfile::AeadAes128Gcm {
            flipped.len() - 4
        } else {
            flipped.len() - 14
        };
        flipped[at] ^= 0x80;
        assert_eq!(
            session(profile).unprotect_rtcp(&mut flipped),
            Err(SrtpError::AuthFailed)
        );
        tx.set_rtcp_index(0x8000_0000);
        let mut buf = sr.clone();
        buf.resize(sr.len() + 20, 0);
        assert_eq!(
            tx.protect_rtcp(&mut buf, sr.len()),
            Err(SrtpError::IndexExhausted)
        );
    }
}

/// Unencrypted SRTCP (E=0) from a peer verifies for the AES-CM profile too.
#[test]
fn rtcp_unencrypted_round_trip_cm() {
    let sr = hex(RFC7714_RTCP);
    let profile = SrtpProfile::Aes128CmSha1_80;
    let mut buf = sr.clone();
    buf.resize(sr.len() + 14, 0);
    let n = session(profile)
        .protect_rtcp_with(&mut buf, sr.len(), false)
        .unwrap();
    assert_eq!(buf[..sr.len()], sr, "nothing encrypted");
    let mut wire = buf[..n].to_vec();
    let m = session(profile).unprotect_rtcp(&mut wire).unwrap();
    assert_eq!(wire[..m], sr);
}

/// RFC 5764 §4.2: the client's outbound session is the server's inbound one and vice versa.
#[test]
fn dtls_keying_material_splits_by_role() {
    for profile in PROFILES {
        let material: Vec<u8> = (0..profile.keying_material_len() as u8).collect();
        let (mut c_out, mut c_in) =
            SrtpSession::from_dtls_keying_material(profile, &material, true).unwrap();
        let (mut s_out, mut s_in) =
            SrtpSession::from_dtls_keying_material(profile, &material, false).unwrap();
        let p = rtp(1, 2, b"client");
        assert_eq!(unprotect(&mut s_in, &protect(&mut c_out, &p)).unwrap(), p);
        let p = rtp(1, 2, b"server");
        assert_eq!(unprotect(&mut c_in, &protect(&mut s_out, &p)).unwrap(), p);
        // The client key with the client salt: same as building it by hand.
        let (k, s) = (profile.key_len(), profile.salt_len());
        let mut by_hand =
            SrtpSession::new(profile, &material[..k], &material[2 * k..2 * k + s]).unwrap();
        let p = rtp(5, 2, b"hand");
        assert_eq!(
            unprotect(&mut by_hand, &protect(&mut c_out, &p)).unwrap(),
            p
        );
        assert!(matches!(
            SrtpSession::from_dtls_keying_material(profile, &material[1..], true),
            Err(SrtpError::BadKeyLength)
        ));
    }
}

/// Sessions move between media threads when peers are sharded.
#[test]
fn session_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SrtpSession>();
}
