//! What a newcomer sees when the server cannot start, or refuses a name: the message names
//! the flag and the address, and says each cause once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::request;
use common::server::{Server, binary};

/// Runs the binary with `args`; it must fail. Its stderr.
fn fails(args: &[&str]) -> String {
    let mut child = Command::new(binary())
        .args(["--http", "127.0.0.1:0"])
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A server that starts anyway is stopped after a while, and that is the failure.
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "{args:?} started:\n{err}"
    );
    // anyhow prints the chain one cause a line; none may repeat the line before it, nor may
    // a cause's text appear twice.
    let lines: Vec<&str> = err
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == ':')
                .trim()
        })
        .filter(|l| !l.is_empty() && *l != "Caused by:")
        .collect();
    for (i, l) in lines.iter().enumerate() {
        assert!(
            !lines[i + 1..]
                .iter()
                .any(|m| m.contains(l) || l.ends_with(m)),
            "{l:?} is said twice:\n{err}"
        );
    }
    err
}

#[test]
fn udp_bind_error_names_the_address_and_the_flag() {
    let err = fails(&["--udp", "192.0.2.1:5"]);
    assert!(
        err.contains("192.0.2.1:5") && err.contains("--udp"),
        "{err}"
    );
}

#[test]
fn an_empty_or_wrong_media_dir_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("leanrtc-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = fails(&["--udp", "127.0.0.1:0", "--media-dir", dir.to_str().unwrap()]);
    assert!(err.contains("no stream to serve"), "{err}");
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = fails(&[
        "--udp",
        "127.0.0.1:0",
        "--media-dir",
        file.to_str().unwrap(),
    ]);
    assert!(
        err.contains("not-a-dir") && err.contains("Not a directory"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn publishing_to_a_file_streams_name_says_it_is_a_file() {
    let server = Server::start(&[]);
    let offer = common::sdp_fixture("chromium-whip-vp8.sdp");
    let res = request(
        server.http,
        "POST",
        "/whip/sample",
        &[("Content-Type", "application/sdp")],
        offer.as_bytes(),
    )
    .unwrap();
    assert_eq!(res.status, 409, "{}", res.text());
    assert!(res.text().contains("is a file"), "{}", res.text());
}
