//! Issue 12, paused video: headless Chromium publishes a single VP8 stream with audio (no
//! simulcast) and two Chromium pages watch it; one of them behind a 100 kbit/s link (`tc`
//! on its loopback port, `common::shaper`). Its audio keeps playing while its video pauses;
//! when the link recovers its video resumes, at a keyframe, within 10 s; the other viewer
//! notices nothing.
//!
//! The pages run under `tests/browser/publish-play.js`. Runs in `./test.sh`'s network
//! namespace (docs/TESTING.md), one browser test at a time (a lock).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::http::{metric, request};
use common::publish::{Pages, num};
use common::server::Server;
use common::shaper::{Shaper, wait_remote_port};
use serde_json::Value;

/// A viewer's entry in `/api/streams`' `watchers` (estimate, paused).
fn watcher(server: &Server, stream: &str, location: &str) -> Value {
    let id = location.rsplit('/').next().unwrap_or_default();
    let res = request(server.http, "GET", "/api/streams", &[], b"").expect("GET /api/streams");
    let list: Value = serde_json::from_slice(&res.body).expect("JSON");
    list.as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stream))
        .and_then(|s| s["watchers"].as_array())
        .and_then(|w| w.iter().find(|w| w["session"] == id).cloned())
        .unwrap_or(Value::Null)
}

/// Polls until the viewer's `paused` is `paused`; how long it took, or `None` after `limit`.
fn wait_paused(server: &Server, location: &str, paused: bool, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if watcher(server, "cam", location)["paused"] == paused {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn video(pc: &Value, field: &str) -> f64 {
    num(&pc["inboundVideo"][field])
}

fn audio(pc: &Value, field: &str) -> f64 {
    num(&pc["inboundAudio"][field])
}

#[test]
fn a_single_layer_viewer_on_100_kbit_s_keeps_its_audio_and_its_video_pauses_and_resumes() {
    let _one_browser = browser_lock();
    let server = Server::start(&[]);
    let mut pages = Pages::launch(&server.base_url());
    let published = pages.publish("pub", "cam", "vp8");
    eprintln!("published: {published}");
    pages.play("fast", "cam");
    let slow = pages.play("slow", "cam");
    let slow_at = slow["location"].as_str().unwrap_or_default().to_owned();
    let id = slow_at.rsplit('/').next().unwrap_or_default().to_owned();
    let port = wait_remote_port(&server, &id);
    for page in ["fast", "slow"] {
        let pc = pages.poll_until(page, Duration::from_secs(15), |pc| {
            video(pc, "framesDecoded") >= 90.0
        });
        assert!(video(&pc, "framesDecoded") >= 90.0, "{page}: {pc}");
    }
    let w = watcher(&server, "cam", &slow_at);
    let res = request(server.http, "GET", "/api/streams", &[], b"").expect("GET /api/streams");
    eprintln!("unthrottled: {w}; /api/streams: {}", res.text());
    assert_eq!(w["paused"], false, "{w}");
    assert!(w["estimate"].as_u64().is_some(), "an estimate: {w}");
    let plis_before = metric(server.http, "leanrtc_keyframe_requests_sent_total");
    let fast_start = pages.last_pc("fast");
    let fast_t0 = Instant::now();

    // 100 kbit/s: the video pauses.
    let shaper = Shaper::new(port, 100);
    let paused = wait_paused(&server, &slow_at, true, Duration::from_secs(10));
    eprintln!(
        "throttled: paused after {paused:?}: {}",
        watcher(&server, "cam", &slow_at)
    );
    assert!(paused.is_some(), "not paused within 10 s");
    assert_eq!(metric(server.http, "leanrtc_viewers_video_paused"), 1.0);
    // What was queued drains (10 kB at 100 kbit/s: under a second); then 10 s of audio and
    // no video, sampled every 2 s.
    std::thread::sleep(Duration::from_secs(2));
    let mut last = pages.last_pc("slow");
    let start = last.clone();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(2));
        let pc = pages.last_pc("slow");
        let packets = audio(&pc, "packetsReceived") - audio(&last, "packetsReceived");
        // (`totalSamplesReceived` stays 0: nothing plays the audio out in these pages.)
        let bytes = audio(&pc, "bytesReceived") - audio(&last, "bytesReceived");
        let frames = video(&pc, "framesDecoded") - video(&last, "framesDecoded");
        eprintln!("paused, 2 s: {packets} audio packets, {bytes} bytes, {frames} frames");
        assert!(
            packets >= 50.0,
            "audio goes on: {packets} packets in 2 s: {pc}"
        );
        assert!(bytes >= 2_000.0, "audio goes on: {bytes} bytes in 2 s");
        assert!(frames <= 2.0, "video paused: {frames} frames in 2 s: {pc}");
        last = pc;
    }
    assert_eq!(watcher(&server, "cam", &slow_at)["paused"], true);
    let frames_paused = video(&last, "framesDecoded");
    let keyframes_paused = video(&last, "keyFramesDecoded");
    eprintln!(
        "10 s paused: audio {:.0} kbit/s",
        (audio(&last, "bytesReceived") - audio(&start, "bytesReceived")) * 8.0 / 10_000.0
    );

    // Lifted: video again within 10 s, from a keyframe, and it keeps coming.
    shaper.set(100_000);
    let t0 = Instant::now();
    let pc = pages.poll_until("slow", Duration::from_secs(10), |pc| {
        video(pc, "framesDecoded") >= frames_paused + 30.0
    });
    let resumed = t0.elapsed();
    eprintln!(
        "lifted: 30 frames decoded after {resumed:?}: {}",
        watcher(&server, "cam", &slow_at)
    );
    assert!(
        video(&pc, "framesDecoded") >= frames_paused + 30.0,
        "video not resumed within 10 s: {pc}"
    );
    assert!(
        video(&pc, "keyFramesDecoded") > keyframes_paused,
        "resumed at a keyframe: {pc}"
    );
    assert_eq!(watcher(&server, "cam", &slow_at)["paused"], false);
    let before = video(&pc, "framesDecoded");
    std::thread::sleep(Duration::from_secs(3));
    let pc = pages.last_pc("slow");
    let frames = video(&pc, "framesDecoded") - before;
    assert!(
        frames >= 60.0,
        "{frames} frames in 3 s after the resume: {pc}"
    );
    assert_eq!(metric(server.http, "leanrtc_viewers_video_paused"), 0.0);
    drop(shaper);

    // The other viewer decoded on at full rate with little freezing, and the publisher was
    // not flooded with keyframe requests.
    let fast = pages.last_pc("fast");
    let secs = fast_t0.elapsed().as_secs_f64();
    let fps = (video(&fast, "framesDecoded") - video(&fast_start, "framesDecoded")) / secs;
    let frozen = video(&fast, "totalFreezesDuration") - video(&fast_start, "totalFreezesDuration");
    let plis = metric(server.http, "leanrtc_keyframe_requests_sent_total") - plis_before;
    eprintln!(
        "the other viewer: {fps:.1} fps over {secs:.0} s, frozen {frozen:.2} s; {plis} PLIs to the \
         publisher; slow viewer: frozen {:.2} s in all",
        video(&pc, "totalFreezesDuration")
    );
    assert!(fps >= 25.0, "the other viewer at {fps:.1} fps: {fast}");
    assert!(
        frozen <= 0.5,
        "the other viewer froze {frozen:.2} s: {fast}"
    );
    assert!(plis <= 20.0, "{plis} PLIs to the publisher");
    pages.quit();
}
