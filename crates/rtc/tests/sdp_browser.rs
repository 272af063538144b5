//! The SDP answerer against real browsers (issue 2's done-when): for each kind of offer a
//! WHIP/WHEP client makes, a fresh offer from headless Chromium and Firefox is answered by
//! `rtc::sdp::answer`, and the browser must take the answer in `setRemoteDescription`.
//! Also the other way round: the browser answers our offer and `accept_answer` reads it.
//!
//! The browsers run under `tests/browser/sdp-check.js` (Debian's chromium/firefox-esr via
//! playwright-core/puppeteer-core). No media flows; the only packets are ICE checks towards
//! the 127.0.0.1 candidate of our answer. Run it as `./test.sh` does, in a private network
//! namespace (docs/TESTING.md).

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use rtc::rand::Rng;
use rtc::sdp::{
    AnswerConfig, Codec, Direction, DtlsRole, H264Profile, HeaderExtension, Line, MediaKind,
    OfferConfig, RejectReason, RtcpFeedback, SessionDescription, accept_answer, answer,
    create_offer,
};
use serde_json::{Value, json};

/// How long one step (launch, offer, answer) may take before the test fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// One browser under `sdp-check.js`, killed with its process groups when dropped.
struct Browser {
    name: &'static str,
    node: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Process-group leaders: node's, and each browser's (the drivers detach them).
    groups: Vec<u32>,
    clean_exit: bool,
    /// What the page reported for the last answer applied.
    last_result: Value,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails (never skips) with what to install when a tool the test needs is missing.
fn check_prerequisites(binary: &str, package: &str) -> PathBuf {
    let browser_dir = repo_root().join("tests/browser");
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: install the Debian package `{package}` (apt-get install -y {package}); \
         see docs/TESTING.md"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "`node` is missing: install Node.js 20+ (apt-get install -y nodejs npm); see docs/TESTING.md"
    );
    for module in ["playwright-core", "puppeteer-core"] {
        assert!(
            browser_dir.join("node_modules").join(module).exists(),
            "tests/browser/node_modules/{module} is missing: run ./test.sh, or `npm ci` in tests/browser"
        );
    }
    browser_dir
}

impl Browser {
    fn launch(name: &'static str) -> Self {
        let (binary, package) = match name {
            "chromium" => ("/usr/bin/chromium", "chromium"),
            _ => ("/usr/bin/firefox-esr", "firefox-esr"),
        };
        let dir = check_prerequisites(binary, package);
        let mut node = std::os::unix::process::CommandExt::process_group(
            Command::new("node")
                .arg("sdp-check.js")
                .arg(name)
                .current_dir(&dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
            0,
        )
        .spawn()
        .expect("start node");
        let (tx, lines) = channel();
        let stdout = node.stdout.take().expect("node stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = node.stdin.take();
        let mut browser = Browser {
            name,
            groups: vec![node.id()],
            node,
            stdin,
            lines,
            clean_exit: false,
            last_result: Value::Null,
        };
        let ready = browser.recv("ready");
        let pids = ready["pids"].as_array().expect("pids");
        browser
            .groups
            .extend(pids.iter().filter_map(Value::as_u64).map(|p| p as u32));
        browser
    }

    fn recv(&mut self, want: &str) -> Value {
        let line = self.lines.recv_timeout(STEP_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "{}: no `{want}` from sdp-check.js within {STEP_TIMEOUT:?} ({e})",
                self.name
            )
        });
        let v: Value = serde_json::from_str(&line).expect("JSON line from sdp-check.js");
        assert_eq!(v["type"], want, "{}: unexpected message {line}", self.name);
        v
    }

    fn send(&mut self, msg: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").expect("write to sdp-check.js");
    }

    /// Asks the browser for a fresh offer of `kind`: (id, SDP).
    fn offer(&mut self, kind: &str) -> (u64, String) {
        self.send(json!({"cmd": "offer", "kind": kind}));
        let v = self.recv("offer");
        (
            v["id"].as_u64().expect("id"),
            v["sdp"].as_str().expect("sdp").to_owned(),
        )
    }

    /// Gives the browser our answer to offer `id`; returns what the page saw.
    fn apply_answer(&mut self, id: u64, sdp: &str) -> Value {
        self.send(json!({"cmd": "answer", "id": id, "sdp": sdp}));
        self.last_result = self.recv("result");
        self.last_result.clone()
    }

    /// Asks the browser to answer our offer.
    fn answer_offer(&mut self, sdp: &str) -> Value {
        self.send(json!({"cmd": "answer-offer", "sdp": sdp}));
        self.recv("answer")
    }

    fn quit(mut self) {
        self.send(json!({"cmd": "quit"}));
        self.recv("bye");
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.node.try_wait() {
                self.clean_exit = status.success();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stdin = None;
        if self.clean_exit {
            return;
        }
        // The node script and both drivers start browsers in their own process groups:
        // kill every group we know of, then reap node.
        for group in &self.groups {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
        let _ = self.node.kill();
        let _ = self.node.wait();
    }
}

fn config(direction: Direction, codecs: Vec<Codec>) -> AnswerConfig {
    let mut c = AnswerConfig::new(
        "leanrtcUfrag",
        "leanrtcPasswordOf24Chars",
        [0xab; 32],
        vec!["127.0.0.1:9".parse().unwrap()],
        direction,
    );
    c.codecs = codecs;
    c
}

fn h264_first() -> Vec<Codec> {
    vec![
        Codec::H264(H264Profile::ConstrainedBaseline),
        Codec::Vp8,
        Codec::Opus,
    ]
}

/// Answers a fresh browser offer of `kind`; requires the browser to accept the answer and
/// the directions to come out as `browser_direction` on the browser's side.
fn answer_kind(
    b: &mut Browser,
    kind: &str,
    cfg: &AnswerConfig,
    browser_direction: &str,
) -> rtc::sdp::Negotiated {
    let (id, offer_text) = b.offer(kind);
    let offer = SessionDescription::parse(&offer_text)
        .unwrap_or_else(|e| panic!("{} {kind}: offer does not parse: {e}\n{offer_text}", b.name));
    let (answer_sdp, negotiated) = answer(&offer, cfg, &mut Rng::seeded(7))
        .unwrap_or_else(|e| panic!("{} {kind}: cannot answer: {e}\n{offer_text}", b.name));
    let answer_text = answer_sdp.to_string();
    let result = b.apply_answer(id, &answer_text);
    assert_eq!(
        result["ok"], true,
        "{} rejected our answer to its {kind} offer: {}\n--- offer\n{offer_text}\n--- answer\n{answer_text}",
        b.name, result["error"]
    );
    assert_eq!(result["signalingState"], "stable", "{} {kind}", b.name);
    for t in result["transceivers"].as_array().expect("transceivers") {
        assert_eq!(
            t["currentDirection"], browser_direction,
            "{} {kind}: {t}",
            b.name
        );
    }
    assert_eq!(
        negotiated.dtls_role,
        DtlsRole::Server,
        "the browser must be the DTLS client"
    );
    negotiated
}

fn video_codec(n: &rtc::sdp::Negotiated) -> Codec {
    let video = n
        .media
        .iter()
        .find(|m| m.kind == MediaKind::Video)
        .expect("video accepted");
    video.codecs[0].codec
}

fn run(name: &'static str) {
    let mut b = Browser::launch(name);

    let whep = answer_kind(
        &mut b,
        "whep",
        &config(Direction::SendOnly, vec![Codec::Vp8, Codec::Opus]),
        "recvonly",
    );
    assert_eq!(whep.media.len(), 2);
    assert!(whep.media.iter().all(|m| m.local_ssrc.is_some()));

    // A control: the harness must see a browser refuse a broken answer (no ICE password).
    let (id, offer_text) = b.offer("whep");
    let offer = SessionDescription::parse(&offer_text).expect("offer parses");
    let cfg = config(Direction::SendOnly, vec![Codec::Vp8, Codec::Opus]);
    let (mut broken, _) = answer(&offer, &cfg, &mut Rng::seeded(2)).expect("answer");
    for m in &mut broken.media {
        m.lines
            .retain(|l| !matches!(l, Line::Attr(a) if a.name == "ice-pwd"));
    }
    let result = b.apply_answer(id, &broken.to_string());
    assert_eq!(
        result["ok"], false,
        "{name} took an answer without a=ice-pwd"
    );

    let whip = answer_kind(
        &mut b,
        "whip-vp8",
        &config(Direction::RecvOnly, vec![Codec::Vp8, Codec::Opus]),
        "sendonly",
    );
    assert_eq!(video_codec(&whip), Codec::Vp8);
    assert!(
        whip.media.iter().all(|m| !m.remote_ssrcs.is_empty()),
        "browsers announce their SSRCs"
    );

    // Firefox has no H.264 without the OpenH264 plugin, which it cannot download here: then
    // the answer falls back to VP8, and the browser must still take it.
    let (id, offer_text) = b.offer("whip-h264");
    let offers_h264 = offer_text.contains("packetization-mode=1");
    let h264 = config(Direction::RecvOnly, h264_first());
    let answer_text = {
        let offer = SessionDescription::parse(&offer_text).expect("offer parses");
        let (sdp, n) = answer(&offer, &h264, &mut Rng::seeded(1)).expect("answer");
        let want = if offers_h264 {
            Codec::H264(H264Profile::ConstrainedBaseline)
        } else {
            Codec::Vp8
        };
        assert_eq!(video_codec(&n), want, "{name} whip-h264");
        sdp.to_string()
    };
    let result = b.apply_answer(id, &answer_text);
    assert_eq!(
        result["ok"], true,
        "{name} rejected our H.264 answer: {}\n{answer_text}",
        result["error"]
    );
    if name == "chromium" {
        assert!(offers_h264, "Debian's Chromium offers H.264");
    }

    // Simulcast (RFC 8853): three sendEncodings are answered with every layer, and the
    // browser keeps all three (it drops the layers an answer leaves out).
    let n = answer_kind(
        &mut b,
        "whip-simulcast",
        &config(Direction::RecvOnly, vec![Codec::Vp8, Codec::Opus]),
        "sendonly",
    );
    let video = n.media.iter().find(|m| m.kind == MediaKind::Video).unwrap();
    let rids: Vec<&str> = video.simulcast.iter().map(|l| l.rid.as_str()).collect();
    assert_eq!(rids, ["q", "h", "f"], "{name} simulcast layers");
    assert!(video.extension_id(HeaderExtension::RtpStreamId).is_some());
    let kept = &b.last_result["transceivers"];
    let video_rids = kept
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "video")
        .map(|t| t["rids"].clone());
    assert_eq!(
        video_rids,
        Some(json!(["q", "h", "f"])),
        "{name} kept every simulcast encoding: {kept}"
    );
    // The control: an answer without a=simulcast leaves the browser one encoding.
    let (id, offer_text) = b.offer("whip-simulcast");
    let offer = SessionDescription::parse(&offer_text).expect("offer parses");
    let mut cfg = config(Direction::RecvOnly, vec![Codec::Vp8, Codec::Opus]);
    cfg.extensions
        .retain(|e| *e != HeaderExtension::RtpStreamId);
    let (single, _) = answer(&offer, &cfg, &mut Rng::seeded(4)).expect("answer");
    let result = b.apply_answer(id, &single.to_string());
    assert_eq!(result["ok"], true, "{name}: {}", result["error"]);
    let video = result["transceivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "video")
        .cloned()
        .unwrap();
    assert!(
        video["rids"].as_array().unwrap().len() <= 1,
        "{name} kept layers the answer did not take: {video}"
    );

    // A viewer's transport-wide CC: the header extension and the feedback, answered
    // together, are taken.
    let mut viewer = config(Direction::SendOnly, vec![Codec::Vp8, Codec::Opus]);
    viewer.extensions = vec![HeaderExtension::TransportWideCc];
    let n = answer_kind(&mut b, "whep", &viewer, "recvonly");
    // (Firefox 140 offers neither on audio: then neither is answered.)
    for m in &n.media {
        let ext = m.extension_id(HeaderExtension::TransportWideCc).is_some();
        let fb = m.codecs[0].feedback.contains(&RtcpFeedback::TransportCc);
        assert_eq!(
            ext, fb,
            "{name} {:?}: extension and feedback together",
            m.kind
        );
        assert!(
            ext || m.kind == MediaKind::Audio,
            "{name}: video takes transport-cc"
        );
    }

    let dc = answer_kind(
        &mut b,
        "datachannel",
        &config(Direction::SendOnly, vec![Codec::Vp8, Codec::Opus]),
        "recvonly",
    );
    assert_eq!(
        dc.rejected.len(),
        1,
        "{name}: the data channel section is rejected"
    );
    assert_eq!(dc.rejected[0].reason, RejectReason::UnsupportedMedia);

    let sendrecv = config(Direction::RecvOnly, vec![Codec::Vp8, Codec::Opus]);
    let n = answer_kind(&mut b, "sendrecv", &sendrecv, "sendonly");
    assert!(n.media.iter().all(|m| m.direction == Direction::RecvOnly));

    // The other way round: the browser answers our (publishing) offer.
    let ours = OfferConfig::new(
        "leanrtcUfrag",
        "leanrtcPasswordOf24Chars",
        [0xcd; 32],
        vec!["127.0.0.1:9".parse().unwrap()],
        Direction::SendOnly,
    );
    let offer = create_offer(&ours, &mut Rng::seeded(3));
    let reply = b.answer_offer(&offer.to_string());
    assert_eq!(
        reply["ok"], true,
        "{name} rejected our offer: {}\n{offer}",
        reply["error"]
    );
    let answer_text = reply["sdp"].as_str().expect("answer sdp");
    let browser_answer = SessionDescription::parse(answer_text).expect("browser answer parses");
    let n = accept_answer(&offer, &browser_answer)
        .unwrap_or_else(|e| panic!("{name}'s answer to our offer: {e}\n{answer_text}"));
    assert_eq!(n.media.len(), 2, "{name} accepted audio and video");
    assert_eq!(
        n.dtls_role,
        DtlsRole::Server,
        "{name} answers actpass with active"
    );
    assert!(
        n.media
            .iter()
            .all(|m| m.direction == Direction::SendOnly && m.local_ssrc.is_some())
    );
    assert!(video_codec(&n) == Codec::Vp8 || matches!(video_codec(&n), Codec::H264(_)));

    b.quit();
}

#[test]
fn chromium_takes_our_answers() {
    run("chromium");
}

#[test]
fn firefox_takes_our_answers() {
    run("firefox");
}
