#![no_main]
//! SDP: parse any UTF-8, write back and re-parse (must be equal), read every typed
//! attribute, then answer whatever parses (as a WHIP and a WHEP server) and check that the
//! answer re-parses and that the offerer side can read it.

use libfuzzer_sys::fuzz_target;
use rtc::rand::Rng;
use rtc::sdp::{AnswerConfig, Direction, SessionDescription, accept_answer, answer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sdp) = SessionDescription::parse(text) else { return };
    let written = sdp.to_string();
    let again = SessionDescription::parse(&written).expect("what we write parses");
    assert_eq!(again, sdp, "parse(write(x)) == x");
    assert_eq!(again.to_string(), written);

    for attrs in std::iter::once(sdp.attrs()).chain(sdp.media.iter().map(|m| m.attrs())) {
        let _ = (attrs.mid(), attrs.direction(), attrs.setup(), attrs.msid(), attrs.ice_lite());
        let _ = attrs.bundle_groups().count() + attrs.fingerprints().count();
        let _ = attrs.rtpmaps().count() + attrs.extmaps().count() + attrs.candidates().count();
        let _ = attrs.ssrcs().count() + attrs.ssrc_groups().count() + attrs.ice_options().count();
        let _ = (attrs.rids().count(), attrs.simulcast());
        for r in attrs.rtpmaps() {
            let _ = (attrs.fmtp(r.pt), attrs.rtcp_fbs(r.pt).count());
        }
    }

    for direction in [Direction::RecvOnly, Direction::SendOnly] {
        let candidates = vec!["127.0.0.1:5000".parse().unwrap(), "[::1]:5000".parse().unwrap()];
        let config = AnswerConfig::new("ufrag", "passwordpasswordpassword", [1; 32], candidates, direction);
        if let Ok((ans, negotiated)) = answer(&sdp, &config, &mut Rng::seeded(1)) {
            assert_eq!(ans.media.len(), sdp.media.len());
            assert!(!negotiated.media.is_empty());
            let reparsed = SessionDescription::parse(&ans.to_string()).expect("our answer parses");
            assert_eq!(reparsed, ans);
            // Every simulcast layer we take is answered with its a=rid ... recv line.
            for (m, a) in negotiated.media.iter().map(|m| (m, &ans.media[m.index])) {
                let rids: Vec<_> = a.attrs().rids().collect();
                assert_eq!(rids.len(), m.simulcast.len());
                assert_eq!(a.attrs().simulcast().is_some(), !m.simulcast.is_empty());
                for (rid, layer) in rids.iter().zip(&m.simulcast) {
                    assert_eq!(rid.id, layer.rid);
                }
            }
            let _ = accept_answer(&sdp, &reparsed);
        }
    }
});
