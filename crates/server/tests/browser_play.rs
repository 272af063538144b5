//! Issue 4's browser tests: real headless Chromium (Debian's, under playwright-core) plays the
//! built-in `sample` stream from `leanrtc` over WHEP, first clean, then with 5 % of the
//! server's outgoing media packets dropped (`--test-send-loss 5`) so NACK must repair them.
//!
//! The page is `tests/browser/whep-play.js`; it POSTs the offer, polls getStats for 10 s from
//! the POST, DELETEs the session and prints one JSON line. Runs in `./test.sh`'s network
//! namespace (docs/TESTING.md). The two tests share a lock: one browser at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::browser::{NodeScript, browser_lock};
use common::server::Server;
use serde_json::Value;

/// Seconds of play, counted from the WHEP POST.
const PLAY_SECONDS: u64 = 10;

/// Plays `sample` for `seconds` in Chromium; returns whep-play.js's result.
fn play_in_chromium(server: &Server, seconds: u64) -> Value {
    let base = server.base_url();
    let seconds_arg = seconds.to_string();
    let mut node = NodeScript::start(
        "chromium",
        "whep-play.js",
        &["chromium", &base, "sample", &seconds_arg],
    );
    // Browser launch (a few s) + play + close, with room for a loaded machine.
    let result = node.next_json(Duration::from_secs(seconds + 60));
    assert!(
        result.get("error").is_none(),
        "the page failed: {result}\nnode stderr:\n{}",
        node.stderr_text()
    );
    eprintln!("chromium: {result}");
    result
}

/// What every play must show: frames decoded at full width, audio, a healthy connection
/// and a clean DELETE, over DTLS 1.3 (issue 14).
fn assert_played(r: &Value, min_frames: u64) {
    assert_played_over(r, min_frames, "FEFC");
}

/// [`assert_played`] over the DTLS version `tls_version` (getStats: FEFD 1.2, FEFC 1.3).
fn assert_played_over(r: &Value, min_frames: u64, tls_version: &str) {
    let video = &r["video"];
    let frames = video["framesDecoded"].as_u64().unwrap_or(0);
    assert!(
        frames >= min_frames,
        "{frames} frames decoded in {PLAY_SECONDS} s, want ≥ {min_frames}: {r}"
    );
    assert_eq!(video["frameWidth"], 640, "{r}");
    assert_eq!(video["frameHeight"], 360, "{r}");
    assert!(
        r["audio"]["bytesReceived"].as_u64().unwrap_or(0) > 0,
        "no audio: {r}"
    );
    let states: Vec<&str> = r["states"]
        .as_array()
        .expect("states")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(states.contains(&"connected"), "never connected: {states:?}");
    assert!(!states.contains(&"failed"), "connection failed: {states:?}");
    assert_eq!(r["finalState"], "connected", "{r}");
    assert_eq!(r["transport"]["dtlsState"], "connected", "{r}");
    assert_eq!(
        r["transport"]["tlsVersion"], tls_version,
        "DTLS version: {r}"
    );
    assert!(r["firstFrameMs"].is_number(), "no first frame: {r}");
    assert_eq!(r["deleteStatus"], 200, "DELETE: {r}");
}

#[test]
fn chromium_plays_sample() {
    let _one_browser = browser_lock();
    let server = Server::start(&[]);
    let r = play_in_chromium(&server, PLAY_SECONDS);
    assert_played(&r, 60);
    // getStats has no key exchange group; the server counts it: Chromium's hybrid share.
    assert_eq!(
        common::http::dtls_handshakes(server.http, "1.3", "X25519MLKEM768"),
        1.0,
        "{}",
        server.log()
    );
    // Loopback loses nothing by itself, and NACK repairs what a busy machine might drop
    // (packetsLost counts what never arrived, retransmissions included).
    let lost = r["video"]["packetsLost"].as_i64().unwrap_or(i64::MAX);
    assert!(
        lost <= 2,
        "{lost} packets lost on loopback without injected loss: {r}"
    );
    // The server saw the session start and end by DELETE.
    let log = server.log();
    assert!(
        log.contains("connected session=") && log.contains("role=Play"),
        "{log}"
    );
    assert!(log.contains("reason=DELETE"), "{log}");
    assert!(log.contains("dtls=1.3 group=X25519MLKEM768"), "{log}");
}

/// `--dtls 1.2` (for trouble-shooting) still serves Chromium, which offers 1.3: the server
/// answers 1.2 as a 1.2-only server would, and Chromium accepts it.
#[test]
fn chromium_plays_over_dtls12_when_told() {
    let _one_browser = browser_lock();
    let server = Server::start(&["--dtls", "1.2"]);
    let r = play_in_chromium(&server, 4);
    assert_played_over(&r, 20, "FEFD");
    assert_eq!(
        common::http::dtls_handshakes(server.http, "1.2", "x25519"),
        1.0
    );
    assert_eq!(
        common::http::dtls_handshakes(server.http, "1.3", "X25519MLKEM768"),
        0.0
    );
}

#[test]
fn chromium_plays_sample_through_5_percent_loss() {
    let _one_browser = browser_lock();
    let server = Server::start(&["--test-send-loss", "5"]);
    let r = play_in_chromium(&server, PLAY_SECONDS);
    assert_played(&r, 60);
    let nacks = r["video"]["nackCount"].as_u64().unwrap_or(0);
    assert!(nacks > 0, "5 % loss but Chromium sent no NACK: {r}");
    // Chromium offers RTX (RFC 4588) and counts what arrives on it: the NACKs were answered
    // there, not with plain copies.
    let rtx = r["video"]["retransmittedPacketsReceived"]
        .as_u64()
        .unwrap_or(0);
    assert!(rtx > 0, "5 % loss but no retransmission came over RTX: {r}");
}

/// The GOP cache's promise (issue 4): a joining viewer gets video at once from the latest
/// keyframe. The first frame Chromium assembles from RTP (seen through an encoded-frame
/// transform, before the decoder) must therefore be a keyframe, not a delta frame that
/// Chromium cannot decode and answers with a PLI.
#[test]
fn chromium_gets_a_keyframe_first() {
    let _one_browser = browser_lock();
    let server = Server::start(&[]);
    let r = play_in_chromium(&server, 3);
    let first = &r["firstFrames"][0];
    assert!(first.is_object(), "no encoded frame seen: {r}");
    assert_eq!(
        first["type"], "key",
        "the first frame Chromium got is not a keyframe; first frames: {}",
        r["firstFrames"]
    );
}
