//! Issue 5's browser ingest tests: headless Chromium (Debian's, under playwright-core)
//! publishes its fake camera (30 fps) and microphone to `leanrtc` with WHIP; a second
//! Chromium page and an in-process str0m viewer (an independent Rust stack) play it with
//! WHEP; the recordings are decoded by ffprobe (Debian ffmpeg). Then a publisher that goes
//! away without DELETE and comes back under the same name, while a viewer keeps playing.
//!
//! The pages run under `tests/browser/publish-play.js`, driven line by line from here; every
//! browser is killed when its guard drops. Runs in `./test.sh`'s network namespace
//! (docs/TESTING.md). One browser test at a time (a lock), as the machine has two cores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::files::is_vp8_keyframe;
use common::publish::{Pages, num};
use common::recording::{
    TempDir, check_av_recording, check_plays_in_chromium, probe, wait_recorded, write_ivf,
};
use common::server::Server;
use common::viewer::Viewer;
use serde_json::Value;

/// Viewers must decode this many frames…
const MIN_FRAMES: usize = 60;
/// …within this long of their WHEP POST.
const WITHIN: Duration = Duration::from_secs(10);
/// How long the publisher publishes in the recording test.
const PUBLISH: Duration = Duration::from_secs(12);

/// Publish, two viewers, recordings: the first test.
#[test]
fn chromium_publishes_chromium_and_str0m_play_and_the_recording_decodes() {
    let _one_browser = browser_lock();
    let records = TempDir::new("publish-chromium");
    let server = Server::start(&["--record-dir", records.as_str()]);
    let mut pages = Pages::launch(&server.base_url());

    let published = pages.publish("pub", "cam", "vp8");
    let published_at = Instant::now();
    eprintln!("published: {published}");

    // Both viewers at once: Chromium's page samples its own stats while str0m runs here.
    pages.play("view", "cam");
    let mut viewer = Viewer::connect(server.http, "cam");
    viewer.run_until(viewer.posted_at + WITHIN, |v| v.frames.len() >= MIN_FRAMES);
    let str0m_frames = viewer.frames.len();
    let first = viewer.frames.first().map(|f| f.at - viewer.posted_at);
    eprintln!("str0m: {str0m_frames} frames, the first {first:?} after the POST");
    assert!(
        str0m_frames >= MIN_FRAMES,
        "str0m got {str0m_frames} VP8 frames within {WITHIN:?}, want ≥ {MIN_FRAMES}; ICE: {:?}",
        viewer.ice_states
    );
    assert!(
        is_vp8_keyframe(&viewer.frames[0].data),
        "str0m's first frame is not a keyframe"
    );
    // The frames str0m reassembled are complete VP8: ffprobe decodes every one of them.
    let got = records.path.join("str0m-received.ivf");
    let frames: Vec<(&[u8], u64)> = viewer
        .frames
        .iter()
        .map(|f| {
            (
                &f.data[..],
                f.rtp_time.saturating_sub(viewer.frames[0].rtp_time),
            )
        })
        .collect();
    write_ivf(&got, 640, 360, &frames);
    let decoded = probe(&got);
    assert_eq!(
        decoded.frames as usize, str0m_frames,
        "ffprobe decodes {} of the {str0m_frames} frames str0m received: {decoded:?}",
        decoded.frames
    );
    assert_eq!((decoded.width, decoded.height), (640, 360), "{decoded:?}");

    // Chromium's page: ≥ 60 frames decoded within 10 s of its POST.
    let chromium = pages.poll_until("view", WITHIN + Duration::from_secs(2), |pc| {
        pc["t60"].is_number()
    });
    eprintln!(
        "chromium viewer: {} {}",
        chromium["inboundVideo"], chromium["states"]
    );
    let t60 = chromium["t60"].as_f64().unwrap_or(f64::INFINITY);
    assert!(
        t60 <= WITHIN.as_millis() as f64,
        "Chromium decoded {MIN_FRAMES} frames only after {t60} ms (want ≤ {WITHIN:?}): {chromium}"
    );
    assert_eq!(chromium["inboundVideo"]["frameWidth"], 640, "{chromium}");
    assert_eq!(chromium["connectionState"], "connected", "{chromium}");

    // Keep publishing (and str0m answering) until the publish time is reached, then stop.
    viewer.run_until(published_at + PUBLISH, |_| false);
    let publisher = pages.last_pc("pub");
    let unpublished = pages.unpublish("pub");
    let publish_time = published_at.elapsed().as_secs_f64();
    assert_eq!(unpublished["deleteStatus"], 200, "{unpublished}");
    eprintln!(
        "publisher before DELETE: {publisher}; RTX unwrapped {}, NACKed {}",
        common::http::metric(server.http, "leanrtc_rtx_unwrapped_total"),
        common::http::metric(server.http, "leanrtc_nacks_sent_total")
    );
    let video = &publisher["outboundVideo"];
    assert_eq!(video["codec"], "video/VP8", "{publisher}");
    assert_eq!(
        publisher["transport"]["tlsVersion"], "FEFC",
        "DTLS 1.3: {publisher}"
    );
    // getStats has no key exchange group; the server counts it.
    assert!(
        common::http::dtls_handshakes(server.http, "1.3", "X25519MLKEM768") >= 1.0,
        "no DTLS 1.3 handshake with X25519MLKEM768 in /metrics"
    );

    let paths = wait_recorded(&server, 1, Duration::from_secs(10));
    let duration = check_av_recording(
        &paths,
        "webm",
        "vp8",
        num(&video["framesSent"]),
        publish_time,
    );
    pages.quit();
    // What a user does with it: open it in a browser.
    check_plays_in_chromium(&paths[0], "video/webm", duration);
}

/// The viewer's connection states as strings.
fn states(pc: &Value) -> Vec<String> {
    pc["states"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// How long a viewer is watched after its publisher came back: long enough for a playout
/// clock that the switch broke to show (seen: Chromium's jitter-buffer delay climbing past
/// 0.9 s within 5 s when the RTP timestamps did not account for the time without media).
const WATCH: Duration = Duration::from_secs(8);

/// What a viewer must show across a publisher's reconnection: one POST, one
/// RTCPeerConnection, no renegotiation, still connected; ≥ 60 more frames decoded; and
/// frames decoded as they arrive (Chromium's jitter buffer does not hold them back).
/// `at_switch` is the viewer's stats taken when the new publisher was connected.
fn assert_viewer_kept_playing(pages: &mut Pages, at_switch: &Value, log: impl Fn() -> String) {
    let frames_before = num(&at_switch["inboundVideo"]["framesDecoded"]);
    let switch_t = at_switch["samples"]
        .as_array()
        .and_then(|s| s.last())
        .map_or(0.0, |s| num(&s["t"]));
    std::thread::sleep(WATCH);
    let all = pages.stats("view");
    let view = all["pcs"][0].clone();
    let samples: Vec<&Value> = view["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter(|s| num(&s["t"]) > switch_t)
        .collect();
    let timeline: Vec<String> = samples
        .iter()
        .map(|s| {
            format!(
                "t={} decoded={} received={} jitter={}ms",
                s["t"], s["framesDecoded"], s["framesReceived"], s["jitterMs"]
            )
        })
        .collect();
    eprintln!("viewer after the switch:\n  {}", timeline.join("\n  "));
    let decoded = num(&view["inboundVideo"]["framesDecoded"]) - frames_before;
    assert!(
        decoded >= MIN_FRAMES as f64,
        "the viewer decoded {decoded} frames in {WATCH:?} after the publisher came back (want ≥ {MIN_FRAMES}): \
         {view}\nserver log:\n{}",
        log()
    );
    assert_eq!(all["posts"], 1, "the viewer POSTed again: {all}");
    assert_eq!(all["pcs"].as_array().map(Vec::len), Some(1), "{all}");
    assert_eq!(view["negotiations"], 0, "the viewer renegotiated: {view}");
    assert_eq!(view["signalingState"], "stable", "{view}");
    assert_eq!(view["connectionState"], "connected", "{view}");
    let s = states(&view);
    assert!(
        !s.iter().any(|s| s == "failed" || s == "closed"),
        "viewer states {s:?}"
    );
    // Frames are decoded as they come: the jitter buffer does not hold them back, and the
    // decoder keeps up with what arrives.
    let worst = samples
        .iter()
        .map(|s| num(&s["jitterMs"]))
        .fold(0.0, f64::max);
    let behind =
        num(&view["inboundVideo"]["framesReceived"]) - num(&view["inboundVideo"]["framesDecoded"]);
    assert!(
        worst <= 250.0 && behind <= 10.0,
        "after the switch Chromium holds frames back: jitter-buffer delay up to {worst} ms, \
         {behind} frames received but not decoded (the RTP timestamps jump by one frame while \
         seconds passed without media?):\n  {}",
        timeline.join("\n  ")
    );
}

/// A publisher that closes its RTCPeerConnection without DELETE and publishes again under the
/// same name from a new one ~3 s later: the viewer keeps decoding and never renegotiates.
#[test]
fn chromium_publisher_closes_without_delete_and_comes_back_viewer_keeps_playing() {
    let _one_browser = browser_lock();
    let server = Server::start(&[]);
    let mut pages = Pages::launch(&server.base_url());
    pages.publish("pub", "cam", "vp8");
    pages.play("view", "cam");
    let before = pages.poll_until("view", WITHIN, |pc| {
        num(&pc["inboundVideo"]["framesDecoded"]) >= 30.0
    });
    assert!(
        num(&before["inboundVideo"]["framesDecoded"]) >= 30.0,
        "the viewer never played: {before}"
    );

    pages.close("pub");
    std::thread::sleep(Duration::from_secs(3));
    let republished = pages.publish("pub", "cam", "vp8");
    eprintln!("published again: {republished}");
    let at_switch = pages.last_pc("view");
    assert_viewer_kept_playing(&mut pages, &at_switch, || server.log());
    pages.quit();
}

/// A publisher whose browser dies (SIGKILL: no DELETE, no DTLS close_notify, nothing more on
/// the wire) and a new browser publishing under the same name 3 s later — the README's
/// "taking over after a crash": the viewer keeps decoding and never renegotiates.
#[test]
fn chromium_publisher_crashes_and_a_new_one_takes_over_viewer_keeps_playing() {
    let _one_browser = browser_lock();
    let server = Server::start(&[]);
    let mut viewer_browser = Pages::launch(&server.base_url());
    // Launched now, so that it publishes 3 s after the crash, not 3 s + a browser start.
    let mut second = Pages::launch(&server.base_url());
    {
        let mut crashing = Pages::launch(&server.base_url());
        crashing.publish("pub", "cam", "vp8");
        viewer_browser.play("view", "cam");
        let before = viewer_browser.poll_until("view", WITHIN, |pc| {
            num(&pc["inboundVideo"]["framesDecoded"]) >= 30.0
        });
        assert!(
            num(&before["inboundVideo"]["framesDecoded"]) >= 30.0,
            "the viewer never played: {before}"
        );
        // Dropping the guard SIGKILLs the publisher's browser.
    }
    std::thread::sleep(Duration::from_secs(3));
    let republished = second.publish("pub", "cam", "vp8");
    eprintln!("published again: {republished}");
    let at_switch = viewer_browser.last_pc("view");
    assert_viewer_kept_playing(&mut viewer_browser, &at_switch, || server.log());
    let log = server.log();
    assert!(
        log.contains("a new publisher takes over the stream"),
        "{log}"
    );
    second.quit();
    viewer_browser.quit();
}
