//! A recording survives its server: Chromium publishes to a server with `--record-dir`, and
//! the server is killed (SIGKILL: the file must still play, missing at most its last second)
//! or stopped (SIGTERM: the file is finished, with its Duration). ffprobe (Debian ffmpeg)
//! reads what is left.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::publish::Pages;
use common::recording::{TempDir, probe_streams, wait_recorded};
use common::server::Server;

/// How long the publisher publishes before the signal.
const PUBLISH: Duration = Duration::from_secs(6);

/// Whether process `pid` has ended (gone, or a zombie its parent has not reaped yet).
fn ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

/// Publishes for [`PUBLISH`], sends `signal` to the server, waits for it to end; returns the
/// one file recorded and how long the publisher was connected.
fn publish_then(signal: &str, records: &TempDir) -> (PathBuf, f64) {
    let server = Server::start(&["--record-dir", records.as_str()]);
    let mut pages = Pages::launch(&server.base_url());
    pages.publish("pub", "cam", "vp8");
    let published_at = Instant::now();
    std::thread::sleep(PUBLISH);
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &server.pid().to_string()])
        .status()
        .expect("run kill");
    let published = published_at.elapsed().as_secs_f64();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ended(server.pid()) {
        assert!(
            Instant::now() < deadline,
            "leanrtc did not end on SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if signal == "TERM" {
        wait_recorded(&server, 1, Duration::from_secs(1));
    }
    pages.quit();
    let files: Vec<PathBuf> = std::fs::read_dir(&records.path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}\n{}", server.log());
    (files[0].clone(), published)
}

#[test]
fn killed_server_leaves_a_playable_recording_and_sigterm_finishes_it() {
    let _one_browser = browser_lock();

    let records = TempDir::new("record-kill");
    let (path, published) = publish_then("KILL", &records);
    let streams = probe_streams(&path);
    eprintln!("SIGKILL after {published:.2} s: {streams:?}");
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert_eq!(
        (streams[0].codec.as_str(), streams[1].codec.as_str()),
        ("vp8", "opus")
    );
    for s in &streams {
        assert!(s.errors.is_empty(), "{}", s.errors);
        assert!(
            s.last >= published - 1.0,
            "{} ends at {:.3} s of {published:.2} s published: more than 1 s lost",
            s.codec,
            s.last
        );
    }

    let records = TempDir::new("record-term");
    let (path, published) = publish_then("TERM", &records);
    let streams = probe_streams(&path);
    eprintln!("SIGTERM after {published:.2} s: {streams:?}");
    assert_eq!(streams.len(), 2, "{streams:?}");
    let duration = streams[0]
        .duration
        .expect("SIGTERM finishes the file: a Duration");
    assert!(
        (duration - published).abs() <= 0.02 * published + 0.1,
        "{duration} s recorded for {published:.2} s published"
    );
}
