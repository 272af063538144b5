#![no_main]
//! Arbitrary bytes through `unprotect_rtp` / `unprotect_rtcp` of both profiles (must never
//! panic), and the same bytes, made to look like RTP/RTCP version 2, through protect then
//! unprotect (must give them back).

use rtc::srtp::{SrtpProfile, SrtpSession};

const PROFILES: [SrtpProfile; 2] = [SrtpProfile::Aes128CmSha1_80, SrtpProfile::AeadAes128Gcm];

fn session(profile: SrtpProfile) -> SrtpSession {
    let salt = [0x5c; 14];
    match SrtpSession::new(profile, &[0x42; 16], &salt[..profile.salt_len()]) {
        Ok(s) => s,
        Err(e) => panic!("fixed keys must build: {e}"),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for profile in PROFILES {
        let mut rx = session(profile);
        let _ = rx.unprotect_rtp(&mut data.to_vec());
        let _ = rx.unprotect_rtcp(&mut data.to_vec());

        let Some(first) = data.first() else { continue };
        let mut plain = data.to_vec();
        plain[0] = (first & 0x3f) | 0x80;

        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtp_overhead(), 0);
        if let Ok(n) = session(profile).protect_rtp(&mut buf, plain.len()) {
            let got = rx.unprotect_rtp(&mut buf[..n]);
            assert_eq!(got, Ok(plain.len()), "{profile:?} RTP round trip");
            assert_eq!(buf[..plain.len()], plain[..]);
        }

        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtcp_overhead(), 0);
        if let Ok(n) = session(profile).protect_rtcp(&mut buf, plain.len()) {
            let got = rx.unprotect_rtcp(&mut buf[..n]);
            assert_eq!(got, Ok(plain.len()), "{profile:?} RTCP round trip");
            assert_eq!(buf[..plain.len()], plain[..]);
        }
    }
});
