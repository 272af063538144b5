//! The answerer's rules (RFC 8829 §5.3.1, RFC 3264 §6.1, RFC 8843, RFC 8842, RFC 6184) and
//! the offerer's check of answers, on small hand-made offers (LF line ends on purpose).

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rtc::rand::Rng;
use rtc::sdp::{
    AnswerConfig, Codec, Direction, DtlsRole, H264Profile, HeaderExtension, Negotiated,
    NegotiationError, OfferConfig, RejectReason, RtcpFeedback, SessionDescription, Setup,
    accept_answer, answer, create_offer,
};

const FP: &str = "sha-256 DA:7B:57:DC:28:CE:04:4F:31:79:85:C4:31:67:EB:27:58:29:ED:77:2A:0D:24:AE:ED:AD:30:BC:BD:F1:9C:02";

fn offer_text() -> String {
    let transport = format!(
        "c=IN IP4 0.0.0.0\na=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
         a=fingerprint:{FP}\na=setup:actpass\na=rtcp-mux\n"
    );
    format!(
        "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=group:BUNDLE 0 1\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\n{transport}a=mid:0\na=sendonly\n\
         a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\n\
         a=extmap:2/sendonly http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\n\
         a=extmap:3 urn:ietf:params:rtp-hdrext:toffset\n\
         a=rtpmap:96 VP8/90000\na=rtcp-fb:96 nack\na=rtcp-fb:96 nack pli\na=rtcp-fb:96 rrtr\n\
         a=rtpmap:97 rtx/90000\na=fmtp:97 apt=96\n\
         a=rtpmap:102 H264/90000\na=fmtp:102 packetization-mode=0;profile-level-id=42e01f\n\
         a=ssrc-group:FID 11 12\na=ssrc:11 cname:x\na=ssrc:12 cname:x\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111\n{transport}a=mid:1\na=sendonly\n\
         a=rtpmap:111 opus/48000/2\na=rtcp-fb:* transport-cc\n"
    )
}

fn config(direction: Direction) -> AnswerConfig {
    AnswerConfig::new(
        "ours",
        "ourPasswordIsLongEnough1",
        [7; 32],
        vec!["192.0.2.1:5000".parse().unwrap()],
        direction,
    )
}

fn try_answer(
    offer: &str,
    config: &AnswerConfig,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let offer = SessionDescription::parse(offer).unwrap_or_else(|e| panic!("{e}\n{offer}"));
    answer(&offer, config, &mut Rng::seeded(5))
}

fn answered(offer: &str, config: &AnswerConfig) -> (SessionDescription, Negotiated) {
    try_answer(offer, config).unwrap_or_else(|e| panic!("{e}\n{offer}"))
}

#[test]
fn keeps_what_we_handle_and_nothing_else() {
    let (sdp, n) = answered(&offer_text(), &config(Direction::RecvOnly));
    let video = &sdp.media[0];
    assert_eq!(
        video.formats,
        ["96", "97"],
        "H.264 packetization-mode 0 is not taken"
    );
    let fbs: Vec<&str> = video.attrs().values("rtcp-fb").collect();
    assert_eq!(fbs, ["96 nack", "96 nack pli"]);
    let exts: Vec<String> = video.attrs().extmaps().map(|e| e.to_string()).collect();
    assert_eq!(
        exts,
        [
            "1 urn:ietf:params:rtp-hdrext:sdes:mid",
            "2/recvonly http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
        ]
    );
    // The audio section offers transport-cc feedback but not the transport-wide-cc
    // extension (extmaps are per section, RFC 8285 §5): no packet of it could carry the
    // numbers the feedback reports on, so it is not answered (see sdp_simulcast.rs).
    assert_eq!(
        sdp.media[1].attrs().values("rtcp-fb").count(),
        0,
        "transport-cc without its extension"
    );
    let v = &n.media[0];
    assert_eq!((v.codecs[0].pt, v.codecs[0].rtx_pt), (96, Some(97)));
    assert_eq!(
        v.codecs[0].feedback,
        [RtcpFeedback::Nack, RtcpFeedback::Pli]
    );
    assert_eq!(v.extension_id(HeaderExtension::TransportWideCc), Some(2));
    assert_eq!(
        (v.remote_ssrcs[0].ssrc, v.remote_ssrcs[0].rtx),
        (11, Some(12))
    );
    assert_eq!(
        (v.local_ssrc, v.local_rtx_ssrc),
        (None, None),
        "we only receive"
    );
    assert_eq!(n.remote_ice_ufrag, "abcd");
    assert_eq!(n.remote_fingerprints[0].bytes[0], 0xda);
    let text = sdp.to_string();
    assert!(text.contains("\r\na=ice-lite\r\n") && text.contains("a=group:BUNDLE 0 1\r\n"));
    assert!(text.contains("m=video 5000 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 192.0.2.1\r\n"));
    assert!(text.contains(
        "a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n"
    ));
}

#[test]
fn answers_directions_per_rfc_3264() {
    use Direction::*;
    // (offered, what we can do, answered)
    let table = [
        (SendOnly, RecvOnly, Some(RecvOnly)),
        (SendOnly, SendRecv, Some(RecvOnly)),
        (SendOnly, SendOnly, None),
        (RecvOnly, SendOnly, Some(SendOnly)),
        (RecvOnly, SendRecv, Some(SendOnly)),
        (RecvOnly, RecvOnly, None),
        (SendRecv, SendOnly, Some(SendOnly)),
        (SendRecv, RecvOnly, Some(RecvOnly)),
        (SendRecv, SendRecv, Some(SendRecv)),
        (Inactive, SendRecv, None),
    ];
    for (offered, ours, want) in table {
        let offer = offer_text().replace("a=sendonly", &format!("a={}", offered.as_str()));
        match (try_answer(&offer, &config(ours)), want) {
            (Ok((sdp, n)), Some(want)) => {
                assert_eq!(
                    sdp.media[0].attrs().direction(),
                    Some(want),
                    "{offered:?} {ours:?}"
                );
                assert_eq!(n.media[0].direction, want);
                assert_eq!(n.media[0].local_ssrc.is_some(), want.sends());
            }
            (Err(NegotiationError::NoUsableMedia(r)), None) => {
                assert!(
                    r.iter().all(|r| r.reason == RejectReason::Direction),
                    "{r:?}"
                );
            }
            (other, _) => panic!("{offered:?} {ours:?}: {other:?}"),
        }
    }
}

#[test]
fn settles_the_dtls_role_from_a_setup() {
    let cases = [
        ("actpass", Setup::Passive, DtlsRole::Server),
        ("active", Setup::Passive, DtlsRole::Server),
        ("passive", Setup::Active, DtlsRole::Client),
    ];
    for (offered, ours, role) in cases {
        let offer = offer_text().replace("a=setup:actpass", &format!("a=setup:{offered}"));
        let (sdp, n) = answered(&offer, &config(Direction::RecvOnly));
        assert!(
            sdp.media.iter().all(|m| m.attrs().setup() == Some(ours)),
            "{offered}"
        );
        assert_eq!(n.dtls_role, role, "{offered}");
    }
    let offer = offer_text().replace("a=setup:actpass\n", "");
    assert_eq!(
        answered(&offer, &config(Direction::RecvOnly)).1.dtls_role,
        DtlsRole::Server
    );
    let offer = offer_text().replace("a=setup:actpass", "a=setup:holdconn");
    let err = try_answer(&offer, &config(Direction::RecvOnly)).unwrap_err();
    assert_eq!(err, NegotiationError::BadSetup(Setup::HoldConn));
}

#[test]
fn offers_that_cannot_be_answered_get_typed_errors() {
    let c = config(Direction::RecvOnly);
    let err = |offer: String| try_answer(&offer, &c).unwrap_err();
    assert_eq!(
        err(offer_text().replace("a=ice-ufrag:abcd\n", "")),
        NegotiationError::NoIceCredentials
    );
    assert_eq!(
        err(offer_text().replace(&format!("a=fingerprint:{FP}\n"), "")),
        NegotiationError::NoFingerprint
    );
    assert_eq!(
        err(offer_text().replace("t=0 0\n", "t=0 0\na=ice-lite\n")),
        NegotiationError::BothIceLite
    );
    let e = err(offer_text().replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"));
    assert!(
        matches!(&e, NegotiationError::NoUsableMedia(r) if r.iter().all(|r| r.reason == RejectReason::UnsupportedProtocol))
    );
    assert!(
        e.to_string()
            .contains("m-line 0 (mid 0): protocol is not UDP/TLS/RTP/SAVPF"),
        "{e}"
    );
    let e = err(offer_text().replace("a=rtcp-mux\n", ""));
    assert!(
        matches!(&e, NegotiationError::NoUsableMedia(r) if r[0].reason == RejectReason::NoRtcpMux)
    );
    let e = err(offer_text().replace("a=mid:", "a=x-mid:"));
    assert!(
        matches!(&e, NegotiationError::NoUsableMedia(r) if r[1].reason == RejectReason::NotBundled)
    );
}

/// Issue 10: credentials RFC 8839 §5.4 does not allow are refused when the offer is parsed,
/// with the line; 4 and 22 ice-chars (the minimum) are fine.
#[test]
fn offers_with_bad_ice_credentials_do_not_parse() {
    let good = offer_text();
    for (from, to, line) in [
        ("a=ice-ufrag:abcd\n", "a=ice-ufrag:\n".to_owned(), 8),
        ("a=ice-ufrag:abcd\n", "a=ice-ufrag:abc\n".to_owned(), 8),
        (
            "a=ice-ufrag:abcd\n",
            format!("a=ice-ufrag:{}\n", "u".repeat(100_000)),
            8,
        ),
        ("a=ice-ufrag:abcd\n", "a=ice-ufrag:ab-d\n".to_owned(), 8),
        (
            "a=ice-pwd:abcdefghijklmnopqrstuv\n",
            "a=ice-pwd:abcdefghijklmnopqrstu\n".to_owned(),
            9,
        ),
        (
            "a=ice-pwd:abcdefghijklmnopqrstuv\n",
            format!("a=ice-pwd:{}\n", "p".repeat(257)),
            9,
        ),
    ] {
        let e = SessionDescription::parse(&good.replacen(from, &to, 1)).unwrap_err();
        let text = e.to_string();
        let name = if line == 8 { "ice-ufrag" } else { "ice-pwd" };
        assert!(
            text.contains(&format!("line {line}")) && text.contains(name),
            "{to:.40}: {text}"
        );
    }
    assert!(SessionDescription::parse(&good).is_ok());
}

#[test]
fn rejects_sections_in_place_with_port_0() {
    let mut c = config(Direction::RecvOnly);
    c.codecs = vec![Codec::H264(H264Profile::ConstrainedBaseline), Codec::Opus];
    let (sdp, n) = answered(&offer_text(), &c);
    assert_eq!(
        (n.rejected[0].index, n.rejected[0].reason),
        (0, RejectReason::NoCommonCodec)
    );
    assert_eq!(
        (sdp.media[0].port, sdp.media[0].attrs().mid()),
        (0, Some("0"))
    );
    assert_eq!(sdp.attrs().bundle_groups().next().unwrap().mids, ["1"]);

    // A second video section, one outside the group, one disabled by the offerer.
    let text = offer_text();
    let video = &text[text.find("m=video").unwrap()..text.find("m=audio").unwrap()];
    let extra = video.replace("a=mid:0", "a=mid:2") + &video.replace("a=mid:0", "a=mid:3");
    let offer = format!(
        "{text}{extra}{}",
        video.replace("a=mid:0", "a=mid:4").replace(" 9 ", " 0 ")
    )
    .replace("BUNDLE 0 1", "BUNDLE 0 1 2 4");
    let (sdp, n) = answered(&offer, &config(Direction::RecvOnly));
    let reasons: Vec<_> = n.rejected.iter().map(|r| (r.index, r.reason)).collect();
    assert_eq!(
        reasons,
        [
            (2, RejectReason::TooManyOfKind),
            (3, RejectReason::NotBundled),
            (4, RejectReason::Disabled)
        ]
    );
    assert!(sdp.media[2..].iter().all(|m| m.port == 0));
    assert_eq!(sdp.attrs().bundle_groups().next().unwrap().mids, ["0", "1"]);
}

#[test]
fn without_a_bundle_group_only_one_section_is_taken() {
    let offer = offer_text().replace("a=group:BUNDLE 0 1\n", "");
    let (sdp, n) = answered(&offer, &config(Direction::RecvOnly));
    assert_eq!(n.media.len(), 1);
    assert_eq!(n.rejected[0].reason, RejectReason::NotBundled);
    assert!(
        sdp.attrs().bundle_groups().next().is_none(),
        "RFC 8843: no group in, no group out"
    );
}

#[test]
fn h264_profiles_are_matched_not_assumed() {
    let offer = offer_text()
        .replace("96 97 102", "102 104 106")
        .replace(
            "a=fmtp:102 packetization-mode=0;profile-level-id=42e01f",
            "a=fmtp:102 packetization-mode=1;profile-level-id=640c34\n\
             a=rtpmap:104 H264/90000\na=fmtp:104 packetization-mode=1;profile-level-id=42001f\n\
             a=rtpmap:106 H264/90000\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        );
    let mut c = config(Direction::RecvOnly);
    c.codecs = vec![
        Codec::H264(H264Profile::ConstrainedBaseline),
        Codec::H264(H264Profile::ConstrainedHigh),
        Codec::Opus,
    ];
    let (sdp, n) = answered(&offer, &c);
    assert_eq!(
        sdp.media[0].formats,
        ["106", "102"],
        "our preference order, offerer's PTs"
    );
    let fmtp = sdp.media[0].attrs().fmtp(102).unwrap();
    assert_eq!(
        fmtp.param("profile-level-id"),
        Some("640c34"),
        "the offered profile is kept"
    );
    assert_eq!(
        n.media[0].payload_type(Codec::H264(H264Profile::ConstrainedHigh)),
        Some(102)
    );
    c.codecs = vec![Codec::H264(H264Profile::Main), Codec::Opus];
    let (_, n) = answered(&offer, &c);
    assert_eq!(n.rejected[0].reason, RejectReason::NoCommonCodec);
}

fn offer_config(direction: Direction) -> OfferConfig {
    OfferConfig::new(
        "them",
        "theirPasswordIsLongEnough",
        [9; 32],
        vec!["127.0.0.1:7000".parse().unwrap()],
        direction,
    )
}

#[test]
fn our_offer_our_answer_and_back_agree() {
    for (offering, answering) in [
        (Direction::SendOnly, Direction::RecvOnly),
        (Direction::RecvOnly, Direction::SendOnly),
    ] {
        let offer = create_offer(&offer_config(offering), &mut Rng::seeded(1));
        let offer = SessionDescription::parse(&offer.to_string()).unwrap();
        let (ans, server) = answer(&offer, &config(answering), &mut Rng::seeded(2)).unwrap();
        let ans = SessionDescription::parse(&ans.to_string()).unwrap();
        let client = accept_answer(&offer, &ans).unwrap();
        assert_eq!(
            (client.dtls_role, server.dtls_role),
            (DtlsRole::Client, DtlsRole::Server)
        );
        assert_eq!(
            (
                client.remote_ice_ufrag.as_str(),
                server.remote_ice_ufrag.as_str()
            ),
            ("ours", "them")
        );
        assert_eq!(client.media.len(), 2);
        for (c, s) in client.media.iter().zip(&server.media) {
            assert_eq!((c.direction, s.direction), (offering, answering));
            assert_eq!(
                c.codecs, s.codecs,
                "same payload types, rtx and feedback on both sides"
            );
            assert_eq!(c.extensions, s.extensions);
            let (sender, receiver) = if offering.sends() { (c, s) } else { (s, c) };
            assert_eq!(receiver.remote_ssrcs[0].ssrc, sender.local_ssrc.unwrap());
            assert_eq!(receiver.remote_ssrcs[0].rtx, sender.local_rtx_ssrc);
        }
        assert_eq!(client.media[0].codecs[0].codec, Codec::Vp8);
        assert_eq!(
            client.media[0].codecs[1].codec,
            Codec::H264(H264Profile::ConstrainedBaseline)
        );
    }
}

#[test]
fn answers_that_do_not_fit_the_offer_are_refused() {
    let offer = create_offer(&offer_config(Direction::SendOnly), &mut Rng::seeded(1));
    let (good, _) = answer(&offer, &config(Direction::RecvOnly), &mut Rng::seeded(2)).unwrap();
    let good = good.to_string();
    let check = |bad: String| {
        let bad = SessionDescription::parse(&bad).unwrap();
        accept_answer(&offer, &bad).unwrap_err()
    };
    assert!(matches!(
        check(good.replace("96 97 98 99", "96 97 98 99 100")),
        NegotiationError::AnswerMismatch(_)
    ));
    assert!(matches!(
        check(good.replace("profile-level-id=42e01f", "profile-level-id=64001f")),
        NegotiationError::AnswerMismatch(_)
    ));
    assert!(matches!(
        check(good.replace("a=extmap:1 ", "a=extmap:9 ")),
        NegotiationError::AnswerMismatch(_)
    ));
    assert_eq!(
        check(good.replace("a=setup:passive", "a=setup:actpass")),
        NegotiationError::BadSetup(Setup::ActPass)
    );
    let audio = good.find("m=audio").unwrap();
    assert!(matches!(
        check(good[..audio].to_owned()),
        NegotiationError::AnswerMismatch(_)
    ));
    let rejected = good.replace("m=audio 5000", "m=audio 0");
    let n = accept_answer(&offer, &SessionDescription::parse(&rejected).unwrap()).unwrap();
    assert_eq!(
        (n.media.len(), n.rejected[0].reason),
        (1, RejectReason::RejectedByPeer)
    );
}
