//! Interop of `rtc::srtp` with an implementation we did not write: webrtc-rs `webrtc-srtp`
//! (pure Rust, RustCrypto ciphers). Packets protected by one are unprotected by the other, for
//! both profiles, SRTP and SRTCP, across a sequence-number wrap (ROC 0 -> 1), with keys split
//! from DTLS keying material the RFC 5764 §4.2 way.

use rtc::srtp::{SrtpProfile, SrtpSession};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const PROFILES: [(SrtpProfile, ProtectionProfile); 2] = [
    (
        SrtpProfile::Aes128CmSha1_80,
        ProtectionProfile::Aes128CmHmacSha1_80,
    ),
    (SrtpProfile::AeadAes128Gcm, ProtectionProfile::AeadAes128Gcm),
];

/// Keying material as DTLS would export it, and the client's master key and salt in it.
fn material(profile: SrtpProfile) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let m: Vec<u8> = (0..profile.keying_material_len())
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
        .collect();
    let (k, s) = (profile.key_len(), profile.salt_len());
    let key = m[..k].to_vec();
    let salt = m[2 * k..2 * k + s].to_vec();
    (m, key, salt)
}

/// RTP with a CSRC, a one-byte header extension (RFC 8285) and a payload that depends on seq.
fn rtp(seq: u16, ssrc: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x91, 0x6f];
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 3000).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend(0xcafe_f00du32.to_be_bytes());
    p.extend([0xbe, 0xde, 0, 1, 0x22, 1, 2, 3]);
    p.extend((0..len).map(|i| (i as u16 ^ seq) as u8));
    p
}

/// A receiver report from `ssrc` with one report block.
fn rtcp(ssrc: u32, n: u8) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend(ssrc.to_be_bytes());
    p.extend([0x11, 0x22, 0x33, 0x44, n, 0, 0, 9]);
    p.extend([0; 16]);
    p
}

/// Sequence numbers that cross the wrap: ROC 0 up to 65535, then ROC 1.
fn wrapping_seqs() -> impl Iterator<Item = u16> {
    (65530u16..=65535).chain(0..6)
}

#[test]
fn our_srtp_is_read_by_webrtc_rs() {
    for (ours, theirs) in PROFILES {
        let (m, key, salt) = material(ours);
        let (mut tx, _) = SrtpSession::from_dtls_keying_material(ours, &m, true).unwrap();
        let mut rx = Context::new(&key, &salt, theirs, None, None).unwrap();
        for seq in wrapping_seqs() {
            let plain = rtp(seq, 0x1234_5678, 1200);
            let mut buf = plain.clone();
            buf.resize(plain.len() + ours.rtp_overhead(), 0);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            let got = rx.decrypt_rtp(&buf[..n]).unwrap();
            assert_eq!(&got[..], &plain[..], "{ours:?} seq {seq}");
        }
    }
}

#[test]
fn webrtc_rs_srtp_is_read_by_us() {
    for (ours, theirs) in PROFILES {
        let (m, key, salt) = material(ours);
        let (_, mut rx) = SrtpSession::from_dtls_keying_material(ours, &m, false).unwrap();
        let mut tx = Context::new(&key, &salt, theirs, None, None).unwrap();
        let wires: Vec<_> = wrapping_seqs()
            .map(|seq| (seq, tx.encrypt_rtp(&rtp(seq, 0xfeed, 160)).unwrap()))
            .collect();
        // Deliver 0 (ROC 1) before 65535 (ROC 0): the estimate must go back across the wrap.
        let order = [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11];
        for i in order {
            let (seq, wire) = &wires[i];
            let mut buf = wire.to_vec();
            let n = rx.unprotect_rtp(&mut buf).unwrap();
            assert_eq!(buf[..n], rtp(*seq, 0xfeed, 160), "{ours:?} seq {seq}");
        }
    }
}

#[test]
fn srtcp_both_ways() {
    for (ours, theirs) in PROFILES {
        let (m, key, salt) = material(ours);
        let (mut our_tx, _) = SrtpSession::from_dtls_keying_material(ours, &m, true).unwrap();
        let (_, mut our_rx) = SrtpSession::from_dtls_keying_material(ours, &m, false).unwrap();
        let mut their_rx = Context::new(&key, &salt, theirs, None, None).unwrap();
        let mut their_tx = Context::new(&key, &salt, theirs, None, None).unwrap();
        for n in 0..5u8 {
            let plain = rtcp(0x0bad_cafe, n);
            let mut buf = plain.clone();
            buf.resize(plain.len() + ours.rtcp_overhead(), 0);
            let len = our_tx.protect_rtcp(&mut buf, plain.len()).unwrap();
            assert_eq!(&their_rx.decrypt_rtcp(&buf[..len]).unwrap()[..], &plain[..]);

            let wire = their_tx.encrypt_rtcp(&plain).unwrap();
            let mut buf = wire.to_vec();
            let len = our_rx.unprotect_rtcp(&mut buf).unwrap();
            assert_eq!(buf[..len], plain, "{ours:?} rtcp {n}");
        }
    }
}
