//! Simulcast in the answerer (RFC 8853 with RFC 8851 rids and RFC 8852 stream ids): the
//! captured Chromium offer (three `sendEncodings`), OBS's (rids 0..N by number), and the
//! rules on small hand-made offers. Also transport-cc feedback only with its extension.

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use rtc::rand::Rng;
use rtc::sdp::{
    AnswerConfig, Codec, Direction, HeaderExtension, MediaKind, Negotiated, NegotiatedMedia, Rid,
    RidDirection, RtcpFeedback, SessionDescription, Simulcast, SimulcastLayer, answer,
};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sdp")
        .join(format!("{name}.sdp"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn config(direction: Direction) -> AnswerConfig {
    let mut c = AnswerConfig::new(
        "ours",
        "ourPasswordIsLongEnough1",
        [7; 32],
        vec!["192.0.2.1:5000".parse().unwrap()],
        direction,
    );
    c.codecs = vec![
        Codec::Vp8,
        Codec::H264(rtc::sdp::H264Profile::ConstrainedBaseline),
        Codec::Opus,
    ];
    c
}

fn answered(offer: &str, config: &AnswerConfig) -> (SessionDescription, Negotiated) {
    let offer = SessionDescription::parse(offer).unwrap_or_else(|e| panic!("{e}\n{offer}"));
    answer(&offer, config, &mut Rng::seeded(5)).unwrap_or_else(|e| panic!("{e}"))
}

fn video(n: &Negotiated) -> &NegotiatedMedia {
    n.media.iter().find(|m| m.kind == MediaKind::Video).unwrap()
}

fn layer(rid: &str) -> SimulcastLayer {
    SimulcastLayer {
        rid: rid.into(),
        paused: false,
        pts: Vec::new(),
    }
}

/// The answer's video section: its `a=rid` and `a=simulcast` lines as text.
fn simulcast_lines(sdp: &SessionDescription) -> (Vec<String>, Option<String>) {
    let m = sdp.media.iter().find(|m| m.kind == "video").unwrap();
    let rids = m.attrs().values("rid").map(str::to_owned).collect();
    (rids, m.attrs().value("simulcast").map(str::to_owned))
}

#[test]
fn chromium_simulcast_offer_is_answered_with_every_layer() {
    let (sdp, n) = answered(
        &fixture("chromium-whip-simulcast"),
        &config(Direction::RecvOnly),
    );
    let (rids, sc) = simulcast_lines(&sdp);
    assert_eq!(rids, ["q recv", "h recv", "f recv"]);
    assert_eq!(sc.as_deref(), Some("recv q;h;f"));
    let v = video(&n);
    assert_eq!(v.simulcast, [layer("q"), layer("h"), layer("f")]);
    assert_eq!(v.layer_index(b"h"), Some(1));
    assert_eq!(v.layer_index(b"x"), None);
    // What the router needs to learn the unsignalled SSRCs: MID, RID and RRID ids.
    assert_eq!(v.extension_id(HeaderExtension::SdesMid), Some(4));
    assert_eq!(v.extension_id(HeaderExtension::RtpStreamId), Some(10));
    assert_eq!(
        v.extension_id(HeaderExtension::RepairedRtpStreamId),
        Some(11)
    );
    // Audio has no simulcast.
    let audio = n.media.iter().find(|m| m.kind == MediaKind::Audio).unwrap();
    assert!(audio.simulcast.is_empty());
    let reparsed = SessionDescription::parse(&sdp.to_string()).unwrap();
    assert_eq!(reparsed, sdp);
}

#[test]
fn obs_simulcast_offer_is_answered_with_every_layer() {
    let (sdp, n) = answered(
        &fixture("obs-simulcast-offer"),
        &config(Direction::RecvOnly),
    );
    let (rids, sc) = simulcast_lines(&sdp);
    assert_eq!(rids, ["0 recv", "1 recv", "2 recv"]);
    assert_eq!(sc.as_deref(), Some("recv 0;1;2"));
    let v = video(&n);
    assert_eq!(v.simulcast.len(), 3);
    assert_eq!(v.extension_id(HeaderExtension::RtpStreamId), Some(2));
    assert_eq!(v.extension_id(HeaderExtension::SdesMid), Some(1));
    // Only layer 0's SSRC is announced; the others are learnt from their RID.
    assert_eq!(v.remote_ssrcs.len(), 1);
}

/// A one-video offer with `lines` added to the video section.
fn offer_with(extmaps: &str, lines: &str, direction: &str) -> String {
    format!(
        "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=group:BUNDLE 0\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\nc=IN IP4 0.0.0.0\na=ice-ufrag:abcd\n\
         a=ice-pwd:abcdefghijklmnopqrstuv\n\
         a=fingerprint:sha-256 DA:7B:57:DC:28:CE:04:4F:31:79:85:C4:31:67:EB:27:58:29:ED:77:2A:0D:24:AE:ED:AD:30:BC:BD:F1:9C:02\n\
         a=setup:actpass\na=rtcp-mux\na=mid:0\na={direction}\n{extmaps}\
         a=rtpmap:96 VP8/90000\na=rtcp-fb:96 nack\na=rtcp-fb:96 transport-cc\n\
         a=rtpmap:97 rtx/90000\na=fmtp:97 apt=96\na=rtpmap:98 VP9/90000\n{lines}"
    )
}

const RID_EXTS: &str = "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\n\
    a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\n\
    a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\n";

#[test]
fn rids_are_kept_by_their_formats_alternatives_and_declarations() {
    let lines = "a=rid:lo send pt=98\na=rid:mid send pt=96,98;max-width=640\n\
                 a=rid:hi send max-height=720\na=rid:alt send\na=rid:back recv\n\
                 a=simulcast:send lo;~mid;hi,alt;ghost;back\n";
    let (sdp, n) = answered(
        &offer_with(RID_EXTS, lines, "sendonly"),
        &config(Direction::RecvOnly),
    );
    let (rids, sc) = simulcast_lines(&sdp);
    // `lo` only has VP9, which we did not accept (RFC 8851 §4.2: removed); `mid` keeps VP8
    // alone and its pause (RFC 8853 §5.1); of `hi,alt` the first is kept; `ghost` has no
    // a=rid line and `back` is a recv rid: neither is a stream the offerer sends.
    assert_eq!(rids, ["mid recv pt=96", "hi recv"]);
    assert_eq!(sc.as_deref(), Some("recv ~mid;hi"));
    let want = [
        SimulcastLayer {
            rid: "mid".into(),
            paused: true,
            pts: vec![96],
        },
        layer("hi"),
    ];
    assert_eq!(video(&n).simulcast, want);
}

/// OBS's "Total Layers" goes up to 4, numbered from 0 (issue 12): all four are answered.
#[test]
fn four_layers_as_obs_numbers_them_are_all_answered() {
    let lines = "a=rid:0 send\na=rid:1 send\na=rid:2 send\na=rid:3 send\n\
                 a=simulcast:send 0;1;2;3\n";
    let (sdp, n) = answered(
        &offer_with(RID_EXTS, lines, "sendonly"),
        &config(Direction::RecvOnly),
    );
    let (rids, sc) = simulcast_lines(&sdp);
    assert_eq!(rids, ["0 recv", "1 recv", "2 recv", "3 recv"]);
    assert_eq!(sc.as_deref(), Some("recv 0;1;2;3"));
    assert_eq!(video(&n).simulcast.len(), 4);
}

#[test]
fn no_simulcast_without_the_rid_extension_or_when_we_send() {
    let lines = "a=rid:a send\na=rid:b send\na=simulcast:send a;b\n";
    let mids_only = "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\n";
    // Offered without the RID extension: packets could not say their layer.
    let (sdp, n) = answered(
        &offer_with(mids_only, lines, "sendonly"),
        &config(Direction::RecvOnly),
    );
    assert_eq!(simulcast_lines(&sdp), (vec![], None));
    assert!(video(&n).simulcast.is_empty());
    // Offered with it, but our config leaves it out (the server has not opted in).
    let mut cfg = config(Direction::RecvOnly);
    cfg.extensions
        .retain(|e| *e != HeaderExtension::RtpStreamId);
    let (sdp, _) = answered(&offer_with(RID_EXTS, lines, "sendonly"), &cfg);
    assert_eq!(simulcast_lines(&sdp), (vec![], None));
    // A viewer asking to receive simulcast from us: we send one stream.
    let recv = "a=rid:a recv\na=rid:b recv\na=simulcast:recv a;b\n";
    let (sdp, n) = answered(
        &offer_with(RID_EXTS, recv, "recvonly"),
        &config(Direction::SendOnly),
    );
    assert_eq!(simulcast_lines(&sdp), (vec![], None));
    assert!(video(&n).simulcast.is_empty());
    // Every rid removed: no a=simulcast at all.
    let only_vp9 = "a=rid:a send pt=98\na=simulcast:send a\n";
    let (sdp, _) = answered(
        &offer_with(RID_EXTS, only_vp9, "sendonly"),
        &config(Direction::RecvOnly),
    );
    assert_eq!(simulcast_lines(&sdp), (vec![], None));
}

#[test]
fn transport_cc_feedback_comes_with_its_extension() {
    let twcc =
        "a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\n";
    let fbs = |sdp: &SessionDescription| -> Vec<String> {
        sdp.media[0]
            .attrs()
            .values("rtcp-fb")
            .map(str::to_owned)
            .collect()
    };
    // A viewer's offer with the extension: a server that takes it answers both.
    let mut viewer = config(Direction::SendOnly);
    viewer.extensions = vec![HeaderExtension::TransportWideCc];
    let (sdp, n) = answered(&offer_with(twcc, "", "recvonly"), &viewer);
    assert_eq!(fbs(&sdp), ["96 nack", "96 transport-cc"]);
    let exts: Vec<String> = sdp.media[0]
        .attrs()
        .extmaps()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        exts,
        ["5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"]
    );
    let v = video(&n);
    assert_eq!(v.extension_id(HeaderExtension::TransportWideCc), Some(5));
    assert!(v.codecs[0].feedback.contains(&RtcpFeedback::TransportCc));
    // Without the extension (not offered, or not taken) transport-cc feedback would report on
    // sequence numbers no packet carries: it is left out.
    viewer.extensions.clear();
    for (exts, cfg) in [(twcc, &viewer), ("", &config(Direction::SendOnly))] {
        let (sdp, n) = answered(&offer_with(exts, "", "recvonly"), cfg);
        assert_eq!(fbs(&sdp), ["96 nack"]);
        assert_eq!(video(&n).codecs[0].feedback, [RtcpFeedback::Nack]);
    }
}

#[test]
fn typed_rid_and_simulcast_values() {
    let rid = Rid::parse("hi send pt=96;max-width=1280").unwrap();
    assert_eq!(rid.direction.reverse(), RidDirection::Recv);
    let sc = Simulcast::parse("send q;~h;f").unwrap();
    assert_eq!(sc.send.len(), 3);
    assert!(sc.send[1][0].paused);
    // A bad a=rid is a parse error with its line number, like every attribute we interpret.
    let bad = offer_with(RID_EXTS, "a=rid:no!pe send\n", "sendonly");
    let e = SessionDescription::parse(&bad).unwrap_err();
    assert!(e.to_string().contains("a=rid"), "{e}");
    let bad = offer_with(RID_EXTS, "a=simulcast:sideways a\n", "sendonly");
    assert!(SessionDescription::parse(&bad).is_err());
}
