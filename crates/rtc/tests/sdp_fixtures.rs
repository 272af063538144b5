//! The parser and the answerer on offers we did not write: captured from headless Chromium
//! and Firefox and from GStreamer's webrtcbin on this machine, the RFC 9725 (WHIP) and
//! draft-ietf-wish-whep examples, and OBS's offer (see tests/fixtures/sdp/README.md).

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use rtc::rand::Rng;
use rtc::sdp::{
    AnswerConfig, Codec, Direction, DtlsRole, H264Profile, HeaderExtension, MediaKind,
    RejectReason, RtcpFeedback, SessionDescription, Setup, accept_answer, answer,
};

fn fixtures() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdp");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "sdp") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.insert(name, std::fs::read_to_string(&path).expect("read fixture"));
        }
    }
    assert!(out.len() >= 17, "fixtures missing from {}", dir.display());
    out
}

fn offers() -> impl Iterator<Item = (String, SessionDescription)> {
    fixtures()
        .into_iter()
        .filter(|(name, _)| !name.ends_with("-answer"))
        .map(|(name, text)| {
            (
                name,
                SessionDescription::parse(&text).expect("offer parses"),
            )
        })
}

/// What we would be for this offer: a WHEP server sends, a WHIP server receives.
fn config_for(name: &str) -> AnswerConfig {
    let sends = name.contains("whep") || name.contains("datachannel");
    let direction = if sends {
        Direction::SendOnly
    } else {
        Direction::RecvOnly
    };
    let mut c = AnswerConfig::new(
        "ourUfrag",
        "ourPasswordIsLongEnough1",
        [0x5a; 32],
        vec![
            "127.0.0.1:4000".parse().unwrap(),
            "[::1]:4000".parse().unwrap(),
        ],
        direction,
    );
    c.codecs = vec![
        Codec::H264(H264Profile::ConstrainedBaseline),
        Codec::Vp8,
        Codec::Opus,
    ];
    c
}

#[test]
fn every_fixture_parses_and_writes_back_byte_for_byte() {
    for (name, text) in fixtures() {
        let sdp = SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let crlf = if text.contains("\r\n") {
            text.clone()
        } else {
            text.replace('\n', "\r\n")
        };
        assert_eq!(sdp.to_string(), crlf, "{name}");
        assert_eq!(
            SessionDescription::parse(&sdp.to_string()).unwrap(),
            sdp,
            "{name}"
        );
        assert!(!sdp.media.is_empty(), "{name}");
    }
}

#[test]
fn every_offer_gets_a_valid_answer() {
    for (name, offer) in offers() {
        let config = config_for(&name);
        let (answer, negotiated) =
            answer(&offer, &config, &mut Rng::seeded(1)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = answer.to_string();
        let reparsed = SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(reparsed, answer, "{name}");
        assert!(answer.attrs().ice_lite(), "{name}");
        assert_eq!(
            answer.media.len(),
            offer.media.len(),
            "{name}: every m-line answered"
        );

        let mut accepted = Vec::new();
        for (i, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
            assert_eq!(
                (&a.kind, a.attrs().mid()),
                (&o.kind, o.attrs().mid()),
                "{name} #{i}"
            );
            let rejected = negotiated.rejected.iter().any(|r| r.index == i);
            if rejected {
                assert_eq!(a.port, 0, "{name} #{i}: rejected sections have port 0");
                continue;
            }
            accepted.push(a.attrs().mid().unwrap().to_owned());
            assert_eq!(a.port, 4000, "{name} #{i}");
            let attrs = a.attrs();
            assert!(attrs.rtcp_mux(), "{name} #{i}");
            assert_eq!(attrs.setup(), Some(Setup::Passive), "{name} #{i}");
            assert_eq!(attrs.ice_ufrag(), Some("ourUfrag"));
            assert_eq!(attrs.fingerprints().next().unwrap().algorithm, "sha-256");
            assert_eq!(attrs.candidates().count(), 2, "{name} #{i}");
            assert!(attrs.end_of_candidates(), "{name} #{i}");
            let ours = config.direction;
            assert_eq!(attrs.direction(), Some(ours), "{name} #{i}");
            // Payload types are the offerer's, with the offerer's rtpmap.
            for pt in &a.formats {
                assert!(
                    o.formats.contains(pt),
                    "{name} #{i}: pt {pt} was not offered"
                );
                let pt: u8 = pt.parse().unwrap();
                assert_eq!(
                    attrs.rtpmap(pt),
                    o.attrs().rtpmap(pt),
                    "{name} #{i} pt {pt}"
                );
            }
            for ext in attrs.extmaps() {
                assert!(
                    o.attrs()
                        .extmaps()
                        .any(|e| e.id == ext.id && e.uri == ext.uri),
                    "{name}"
                );
                assert!(
                    HeaderExtension::from_uri(&ext.uri).is_some(),
                    "{name}: {}",
                    ext.uri
                );
            }
            for fb in attrs.values("rtcp-fb") {
                let value = fb.split_once(' ').unwrap().1;
                assert!(
                    RtcpFeedback::from_value(value).is_some(),
                    "{name}: rtcp-fb {fb}"
                );
            }
        }
        let mids: Vec<String> = negotiated.media.iter().map(|m| m.mid.clone()).collect();
        assert_eq!(mids, accepted, "{name}");
        let group = answer.attrs().bundle_groups().next().expect("BUNDLE group");
        assert_eq!(
            group.mids, accepted,
            "{name}: the answer bundles every accepted section"
        );
        assert_eq!(negotiated.dtls_role, DtlsRole::Server, "{name}");
        assert!(
            !negotiated.remote_ice_ufrag.is_empty() && !negotiated.remote_fingerprints.is_empty()
        );
    }
}

fn answer_fixture(name: &str) -> rtc::sdp::Negotiated {
    let offer = offers().find(|(n, _)| n == name).expect("fixture").1;
    answer(&offer, &config_for(name), &mut Rng::seeded(9))
        .expect("answer")
        .1
}

#[test]
fn chromium_h264_offer_gets_constrained_baseline_mode_1() {
    // Chromium offers 102 (42001f, mode 1), 104 (mode 0), 108 (42e01f, mode 1) with rtx 109.
    let n = answer_fixture("chromium-whip-h264");
    let video = n.media.iter().find(|m| m.kind == MediaKind::Video).unwrap();
    let h264 = &video.codecs[0];
    assert_eq!((h264.pt, h264.rtx_pt), (108, Some(109)));
    assert!(
        h264.fmtp
            .as_deref()
            .unwrap()
            .contains("profile-level-id=42e01f")
    );
    assert_eq!(h264.feedback, RtcpFeedback::ALL);
    assert_eq!(video.payload_type(Codec::Vp8), Some(96));
    assert_eq!(video.extension_id(HeaderExtension::SdesMid), Some(4));
    assert_eq!(video.remote_ssrcs.len(), 1);
    assert!(
        video.remote_ssrcs[0].rtx.is_some(),
        "FID group pairs the RTX SSRC"
    );
}

#[test]
fn obs_offer_with_session_level_ice_is_answered() {
    let n = answer_fixture("obs-h264-opus-offer");
    assert_eq!(n.remote_ice_ufrag, "riAt");
    let pts: Vec<(Codec, u8, Option<u8>)> = n
        .media
        .iter()
        .flat_map(|m| m.codecs.iter().map(|c| (c.codec, c.pt, c.rtx_pt)))
        .collect();
    let cb = Codec::H264(H264Profile::ConstrainedBaseline);
    assert_eq!(pts, [(Codec::Opus, 111, None), (cb, 96, None)]);
    assert_eq!(n.media[1].remote_ssrcs[0].ssrc, 3382040869);
}

#[test]
fn gstreamer_offer_with_bundle_only_port_0_is_answered() {
    let n = answer_fixture("gstreamer-h264-offer");
    let mids: Vec<&str> = n.media.iter().map(|m| m.mid.as_str()).collect();
    assert_eq!(mids, ["video0", "audio1"]);
    assert_eq!(
        n.media[0].codecs[0].pt, 102,
        "42c00d is Constrained Baseline"
    );
    assert_eq!(
        n.media[1].codecs[0].codec,
        Codec::Opus,
        "OPUS matches case-insensitively"
    );
    let n = answer_fixture("whep-draft-offer");
    assert_eq!(
        n.media.len(),
        2,
        "m=video 0 with a=bundle-only is bundled, not rejected"
    );
}

#[test]
fn data_channel_sections_are_rejected_in_place() {
    for name in ["chromium-datachannel", "firefox-datachannel"] {
        let n = answer_fixture(name);
        assert_eq!(n.media.len(), 2, "{name}");
        assert_eq!(n.rejected.len(), 1, "{name}");
        assert_eq!(
            (n.rejected[0].index, n.rejected[0].reason),
            (2, RejectReason::UnsupportedMedia)
        );
    }
}

#[test]
fn spec_answers_are_accepted_by_the_offerer_side() {
    let all = fixtures();
    for (offer, answer) in [
        ("whip-rfc9725-offer", "whip-rfc9725-answer"),
        ("whep-draft-offer", "whep-draft-answer"),
    ] {
        let o = SessionDescription::parse(&all[offer]).unwrap();
        let a = SessionDescription::parse(&all[answer]).unwrap();
        let n = accept_answer(&o, &a).unwrap_or_else(|e| panic!("{answer}: {e}"));
        assert_eq!(
            n.dtls_role,
            DtlsRole::Client,
            "{answer}: a=setup:passive makes us the client"
        );
        assert!(n.remote_ice_lite);
        assert_eq!(
            n.remote_candidates[0].socket_addr(),
            Some("198.51.100.1:39132".parse().unwrap())
        );
        let video = &n.media[1];
        assert_eq!(
            (
                video.codecs[0].codec,
                video.codecs[0].pt,
                video.codecs[0].rtx_pt
            ),
            (Codec::Vp8, 96, Some(97))
        );
        assert_eq!(
            video.codecs[0].feedback,
            [RtcpFeedback::Fir, RtcpFeedback::Nack, RtcpFeedback::Pli]
        );
        assert_eq!(video.extension_id(HeaderExtension::SdesMid), Some(4));
        let want = if offer.starts_with("whip") {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        };
        assert!(n.media.iter().all(|m| m.direction == want), "{answer}");
    }
}
