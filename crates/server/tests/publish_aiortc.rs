//! An independent non-browser publisher: aiortc (PyPI; OpenSSL DTLS, libsrtp, libvpx through
//! PyAV) publishes a synthetic VP8 track and an Opus tone with WHIP through
//! `tests/aiortc/whip_publish.py`; an in-process str0m viewer plays it and the recordings are
//! decoded by ffprobe. Then a publisher that dies and a new one that takes its name over.
//!
//! Needs `tests/aiortc/.venv` (`.ci/run` makes it; docs/TESTING.md). Runs in `./test.sh`'s
//! network namespace; aiortc gets no STUN server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::files::is_vp8_keyframe;
use common::process::Process;
use common::publish::{aiortc_python, num, wait_publisher_connected};
use common::recording::{TempDir, check_av_recording, probe, wait_recorded, write_ivf};
use common::repo_root;
use common::server::Server;
use common::viewer::Viewer;
use serde_json::Value;

const MIN_FRAMES: usize = 60;
const WITHIN: Duration = Duration::from_secs(10);

/// Starts `whip_publish.py` publishing to `stream` for `seconds` once connected.
fn start_aiortc(server: &Server, stream: &str, seconds: u64) -> Process {
    let python = aiortc_python();
    Process::start(
        "aiortc whip_publish.py",
        Command::new(python)
            .arg(repo_root().join("tests/aiortc/whip_publish.py"))
            .arg(format!("{}/whip/{stream}", server.base_url()))
            .args(["--seconds", &seconds.to_string()])
            .current_dir(repo_root()),
    )
}

/// The JSON line the script printed at its end.
fn result_of(stdout: &str, stderr: &str) -> Value {
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("no JSON result from whip_publish.py ({e}): {stdout}\n{stderr}"))
}

#[test]
fn aiortc_publishes_vp8_str0m_plays_and_the_recording_decodes() {
    // One media test at a time: the machine has two cores.
    let _one_at_a_time = browser_lock();
    let records = TempDir::new("publish-aiortc");
    let server = Server::start(&["--record-dir", records.as_str()]);
    let mut publisher = start_aiortc(&server, "synthetic", 12);
    wait_publisher_connected(&server, "synthetic", Duration::from_secs(30));

    let mut viewer = Viewer::connect_and_play(server.http, "synthetic", MIN_FRAMES, WITHIN);
    let got = records.path.join("str0m-received.ivf");
    let t0 = viewer.frames[0].rtp_time;
    let frames: Vec<(&[u8], u64)> = viewer
        .frames
        .iter()
        .map(|f| (&f.data[..], f.rtp_time.saturating_sub(t0)))
        .collect();
    write_ivf(&got, 640, 360, &frames);
    let decoded = probe(&got);
    assert_eq!(
        decoded.frames as usize,
        frames.len(),
        "ffprobe decodes what str0m got: {decoded:?}"
    );

    // Keep the viewer answering until the publisher stops by itself (DELETE).
    let deadline = Instant::now() + Duration::from_secs(30);
    while publisher.running() && Instant::now() < deadline {
        viewer.run_for(Duration::from_millis(100));
    }
    let done = publisher.wait(Duration::from_secs(10));
    let r = result_of(&done.stdout, &done.stderr);
    eprintln!("aiortc: {r}");
    assert!(
        done.status.success() && r["error"].is_null(),
        "{r}\n{}",
        done.stderr
    );
    assert_eq!(r["deleteStatus"], 200, "{r}");

    let paths = wait_recorded(&server, 1, Duration::from_secs(10));
    let sent = num(&r["videoFramesAfterConnected"]);
    let connected = num(&r["connectedSeconds"]);
    eprintln!("aiortc sent {sent} frames in {connected} s");
    check_av_recording(&paths, "webm", "vp8", sent, connected);
}

/// The rate of RTP time against arrival time over `samples` (rtp, at), by least squares:
/// 1.0 when the timestamps advance as fast as the wall clock.
fn rate(samples: &[(u64, Instant)], clock: f64) -> f64 {
    let t0 = samples[0].1;
    let r0 = samples[0].0;
    let xs: Vec<f64> = samples.iter().map(|s| (s.1 - t0).as_secs_f64()).collect();
    let ys: Vec<f64> = samples.iter().map(|s| (s.0 - r0) as f64 / clock).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    cov / var
}

/// The switch in `samples` (rtp, at): the longest silence. Returns the index of the first
/// sample after it, and the RTP time and the wall time that passed across it, in seconds.
fn switch_of(samples: &[(u64, Instant)], clock: f64) -> (usize, f64, f64) {
    let i = (1..samples.len())
        .max_by_key(|&i| samples[i].1 - samples[i - 1].1)
        .expect("samples");
    let rtp = (samples[i].0 as f64 - samples[i - 1].0 as f64) / clock;
    (i, rtp, (samples[i].1 - samples[i - 1].1).as_secs_f64())
}

/// A publisher that dies (SIGKILL: no DELETE, no DTLS alert) and a new one publishing under
/// the same name 3 s later: the viewer gets the new publisher's frames on the same
/// connection, its RTP timestamps keep running at 90 kHz / 48 kHz of wall time across the
/// switch (a receiver's playout clock stays valid), and it starts at a keyframe.
#[test]
fn aiortc_publisher_dies_a_new_one_takes_over_str0m_sees_real_time_timestamps() {
    // One media test at a time: the machine has two cores.
    let _one_at_a_time = browser_lock();
    let server = Server::start(&[]);
    let first = start_aiortc(&server, "relay", 60);
    wait_publisher_connected(&server, "relay", Duration::from_secs(30));
    let mut viewer = Viewer::connect_and_play(server.http, "relay", MIN_FRAMES, WITHIN);
    viewer.run_for(Duration::from_secs(2));
    drop(first);
    let killed_at = Instant::now();
    let frames_before = viewer.frames.len();
    viewer.run_until(killed_at + Duration::from_secs(3), |_| false);
    let second = start_aiortc(&server, "relay", 60);
    viewer.run_until(Instant::now() + Duration::from_secs(25), |v| {
        v.frames.len() >= frames_before + 300
    });
    drop(second);
    let after = viewer.frames.len() - frames_before;
    eprintln!("{} frames before the switch, {after} after", frames_before);
    assert!(
        after >= 300,
        "only {after} frames after the new publisher came; log:\n{}",
        server.log()
    );

    let video: Vec<(u64, Instant)> = viewer.frames.iter().map(|f| (f.rtp_time, f.at)).collect();
    let audio: Vec<(u64, Instant)> = viewer
        .audio_rtp_times
        .iter()
        .zip(&viewer.audio)
        .map(|(r, a)| (*r, a.1))
        .collect();
    let (v_at, rtp_gap, wall_gap) = switch_of(&video, 90_000.0);
    let (a_at, a_rtp_gap, a_wall_gap) = switch_of(&audio, 48_000.0);
    let before = rate(&video[..v_at], 90_000.0);
    let after_rate = rate(&video[v_at + 30..], 90_000.0);
    let audio_after = rate(&audio[a_at + 50..], 48_000.0);
    eprintln!(
        "video: rate {before:.3} before, {after_rate:.3} after; across the switch RTP +{rtp_gap:.3} s for {wall_gap:.3} s of wall time\n\
         audio: rate {audio_after:.3} after; across the switch RTP +{a_rtp_gap:.3} s for {a_wall_gap:.3} s"
    );
    assert!(
        is_vp8_keyframe(&viewer.frames[v_at].data),
        "the first frame after the switch is not a keyframe"
    );
    assert!(
        (after_rate - 1.0).abs() < 0.05,
        "video RTP time runs at {after_rate:.3}× wall time after the switch"
    );
    assert!(
        (audio_after - 1.0).abs() < 0.05,
        "audio RTP time runs at {audio_after:.3}× wall time after the switch"
    );
    // A receiver maps RTP time to its playout clock: seconds without media must show as
    // seconds of RTP time, or its frames look seconds late and its jitter buffer misbehaves
    // (Chromium's delay climbs to seconds: publish_chromium.rs).
    assert!(
        (rtp_gap - wall_gap).abs() <= 0.3,
        "video RTP time moves {rtp_gap:.3} s across the switch while {wall_gap:.3} s passed"
    );
    assert!(
        (a_rtp_gap - a_wall_gap).abs() <= 0.3,
        "audio RTP time moves {a_rtp_gap:.3} s across the switch while {a_wall_gap:.3} s passed"
    );
}
