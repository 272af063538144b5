//! Issue 12's first browser test: headless Chromium publishes its fake camera at 1280×720
//! as three simulcast layers (`sendEncodings` q, h, f at 1/4, 1/2 and full size, RFC 8853),
//! the server answers every layer and lists them in `/api/streams`, and a Chromium viewer on
//! an unthrottled link gets the top layer (frameWidth 1280) and stays there. The recording
//! holds the top layer too.
//!
//! The pages run under `tests/browser/publish-play.js`. Runs in `./test.sh`'s network
//! namespace (docs/TESTING.md), one browser test at a time (a lock).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::http::request;
use common::publish::Pages;
use common::recording::{TempDir, probe, wait_recorded};
use common::server::Server;
use serde_json::Value;

/// The stream's layers per `GET /api/streams`.
fn layers(server: &Server, stream: &str) -> Vec<Value> {
    stream_field(server, stream, "layers")
}

/// A list of the stream's entry in `GET /api/streams`.
fn stream_field(server: &Server, stream: &str, field: &str) -> Vec<Value> {
    let res = request(server.http, "GET", "/api/streams", &[], b"").expect("GET /api/streams");
    let list: Value = serde_json::from_slice(&res.body).expect("JSON");
    list.as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stream))
        .and_then(|s| s[field].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn chromium_publishes_three_layers_and_a_chromium_viewer_gets_the_top_one() {
    let _one_browser = browser_lock();
    let records = TempDir::new("simulcast-chromium");
    let server = Server::start(&["--record-dir", records.as_str()]);
    let mut pages = Pages::launch(&server.base_url());
    let published = pages.publish_simulcast("pub", "sc", "vp8", (1280, 720));
    eprintln!("published: {published}");

    // Every layer arrives, each with its own size (learnt from its keyframes). Chromium
    // starts the upper layers as its bandwidth estimate grows.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = layers(&server, "sc");
        let widths: Vec<_> = seen.iter().map(|l| l["width"].as_u64()).collect();
        if widths == [Some(320), Some(640), Some(1280)] && seen.iter().all(|l| l["active"] == true)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let rids: Vec<_> = seen.iter().map(|l| l["rid"].clone()).collect();
    let widths: Vec<_> = seen.iter().map(|l| l["width"].as_u64()).collect();
    assert_eq!(rids, ["q", "h", "f"], "{seen:?}");
    assert_eq!(widths, [Some(320), Some(640), Some(1280)], "{seen:?}");

    pages.play("view", "sc");
    let pc = pages.poll_until("view", Duration::from_secs(15), |pc| {
        pc["inboundVideo"]["frameWidth"] == 1280
    });
    assert_eq!(
        pc["inboundVideo"]["frameWidth"], 1280,
        "the top layer: {pc}"
    );
    // It stays there: sampled over 5 s, every sample decodes more frames at 1280.
    let mut decoded = pc["inboundVideo"]["framesDecoded"].as_u64().unwrap_or(0);
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        let pc = pages.last_pc("view");
        assert_eq!(pc["inboundVideo"]["frameWidth"], 1280, "{pc}");
        let now = pc["inboundVideo"]["framesDecoded"].as_u64().unwrap_or(0);
        assert!(
            now >= decoded + 10,
            "{now} frames decoded after {decoded}: {pc}"
        );
        decoded = now;
    }
    // Its estimate comes from its own transport-wide CC feedback.
    let watchers = stream_field(&server, "sc", "watchers");
    eprintln!("watchers: {watchers:?}");
    assert_eq!(watchers.len(), 1, "{watchers:?}");
    assert_eq!(watchers[0]["layer"], "f", "{watchers:?}");
    assert!(
        watchers[0]["estimate"]
            .as_u64()
            .is_some_and(|e| e > 1_000_000),
        "{watchers:?}"
    );
    let seen = layers(&server, "sc");
    assert_eq!(seen[2]["viewers"], 1, "the viewer is on f: {seen:?}");
    eprintln!("layers: {seen:?}");

    let unpublished = pages.unpublish("pub");
    assert_eq!(unpublished["deleteStatus"], 200, "{unpublished}");
    pages.quit();
    // The recording is of the top layer.
    let paths = wait_recorded(&server, 1, Duration::from_secs(10));
    let recorded = probe(&paths[0]);
    assert_eq!(
        (recorded.width, recorded.height),
        (1280, 720),
        "{recorded:?}"
    );
    assert!(recorded.frames > 30, "{recorded:?}");
}
