//! An independent non-browser publisher: GStreamer's webrtcbin (Debian; libnice, OpenSSL
//! DTLS, libsrtp) publishes a `videotestsrc` in VP8 (vp8enc) or H.264 Constrained Baseline
//! (openh264enc) and an Opus tone with WHIP through `tests/gstreamer/whip_publish.py`.
//! A str0m viewer plays the VP8 stream, a Chromium page the H.264 one; the recordings
//! (one .webm or .mkv file per publish) are decoded by ffprobe.
//!
//! Needs Debian's python3-gst-1.0, gir1.2-gst-plugins-bad-1.0, gstreamer1.0-plugins-good,
//! gstreamer1.0-plugins-bad and gstreamer1.0-nice (docs/TESTING.md). Runs in `./test.sh`'s
//! network namespace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::process::Process;
use common::publish::{Pages, gstreamer_python, num, wait_publisher_connected};
use common::recording::{TempDir, check_av_recording, check_plays_in_chromium, wait_recorded};
use common::repo_root;
use common::server::Server;
use common::viewer::Viewer;
use serde_json::Value;

const MIN_FRAMES: usize = 60;
const WITHIN: Duration = Duration::from_secs(10);
/// Seconds the publisher publishes.
const SECONDS: u64 = 12;

fn start_gstreamer(server: &Server, stream: &str, codec: &str) -> Process {
    let python = gstreamer_python();
    Process::start(
        "gstreamer whip_publish.py",
        Command::new(python)
            .arg(repo_root().join("tests/gstreamer/whip_publish.py"))
            .arg(format!("{}/whip/{stream}", server.base_url()))
            .args(["--codec", codec, "--seconds", &SECONDS.to_string()])
            .current_dir(repo_root()),
    )
}

/// Waits for the publisher to end by itself (after DELETE) while `tick` keeps a viewer
/// going; returns its JSON result.
fn finish(publisher: Process, mut tick: impl FnMut()) -> Value {
    let mut publisher = publisher;
    let deadline = Instant::now() + Duration::from_secs(SECONDS + 30);
    while publisher.running() && Instant::now() < deadline {
        tick();
    }
    let done = publisher.wait(Duration::from_secs(10));
    let line = done.stdout.lines().last().unwrap_or("");
    let r: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "no JSON result from whip_publish.py ({e}): {}\n{}",
            done.stdout, done.stderr
        )
    });
    eprintln!("gstreamer: {r}");
    assert!(
        done.status.success() && r["error"].is_null(),
        "{r}\n{}",
        done.stderr
    );
    assert_eq!(r["deleteStatus"], 200, "{r}");
    r
}

/// The recording: one file (`ext`) with video (`codec`) and audio. Its duration is checked
/// against the audio GStreamer sent (20 ms packets): after connecting, webrtcbin also sends
/// what queued up while ICE and DTLS were being set up (0.3–0.5 s seen), with its earlier
/// timestamps, so the media spans more than the connected time.
fn check_recordings(paths: &[PathBuf], ext: &str, codec: &str, r: &Value) -> f64 {
    let sent = num(&r["framesAfterConnected"]);
    let connected = num(&r["connectedSeconds"]);
    let audio = num(&r["audioPacketsAfterConnected"]) * 0.020;
    eprintln!(
        "GStreamer encoded {sent} frames and {audio:.2} s of audio while connected for {connected} s"
    );
    assert!(
        sent >= 20.0 * SECONDS as f64,
        "GStreamer encoded only {sent} frames in {SECONDS} s"
    );
    let duration = check_av_recording(paths, ext, codec, sent, audio);
    assert!(
        duration >= connected - 0.5 && duration <= connected + 1.5,
        "the recording lasts {duration} s for {connected} s of publishing"
    );
    duration
}

#[test]
fn gstreamer_publishes_vp8_str0m_plays_and_the_recording_decodes() {
    // One media test at a time: the machine has two cores.
    let _one_at_a_time = browser_lock();
    let records = TempDir::new("publish-gst-vp8");
    let server = Server::start(&["--record-dir", records.as_str()]);
    let publisher = start_gstreamer(&server, "gst", "vp8");
    wait_publisher_connected(&server, "gst", Duration::from_secs(30));

    let mut viewer = Viewer::connect_and_play(server.http, "gst", MIN_FRAMES, WITHIN);

    let r = finish(publisher, || viewer.run_for(Duration::from_millis(100)));
    let paths = wait_recorded(&server, 1, Duration::from_secs(10));
    check_recordings(&paths, "webm", "vp8", &r);
}

#[test]
fn gstreamer_publishes_h264_chromium_plays_and_the_recording_decodes() {
    let _one_browser = browser_lock();
    let records = TempDir::new("publish-gst-h264");
    let server = Server::start(&["--record-dir", records.as_str()]);
    // The browser first: its start takes seconds of the publisher's time otherwise.
    let mut pages = Pages::launch(&server.base_url());
    let publisher = start_gstreamer(&server, "gst", "h264");
    wait_publisher_connected(&server, "gst", Duration::from_secs(30));

    pages.play("view", "gst");
    let view = pages.poll_until("view", WITHIN + Duration::from_secs(2), |pc| {
        pc["t60"].is_number()
    });
    eprintln!(
        "chromium viewer: {} {}",
        view["inboundVideo"], view["states"]
    );
    let t60 = view["t60"].as_f64().unwrap_or(f64::INFINITY);
    assert!(
        t60 <= WITHIN.as_millis() as f64,
        "Chromium decoded {MIN_FRAMES} H.264 frames only after {t60} ms (want ≤ {WITHIN:?}): {view}"
    );
    assert_eq!(view["inboundVideo"]["codec"], "video/H264", "{view}");
    assert_eq!(view["inboundVideo"]["frameWidth"], 640, "{view}");

    let r = finish(publisher, || std::thread::sleep(Duration::from_millis(100)));
    let paths = wait_recorded(&server, 1, Duration::from_secs(10));
    let duration = check_recordings(&paths, "mkv", "h264", &r);
    pages.quit();
    // Chromium's `<video>` plays Matroska with H.264 too.
    check_plays_in_chromium(&paths[0], "video/x-matroska", duration);
}
