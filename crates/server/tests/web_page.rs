//! leanrtc's own web page (`/`, `crates/server/web/index.html`) in headless Chromium, driven
//! like a user: the stream list shows `sample`, a click plays it in the page's `<video>`;
//! "Publish my camera" (Chromium's fake camera) under a name makes a live stream that a
//! second page, opened before it, sees appear in its list by itself and plays; stopping the
//! publisher removes it from the list. Neither page may report an uncaught exception, a
//! console error or an HTTP status ≥ 400 at any point. The publisher sees a muted preview of
//! its own camera. The page publishes Chromium's 1280x720 fake camera as three simulcast
//! layers by default (its checkbox ticked), which `/api/streams` lists; the viewing page gets
//! the top one and its overlay names its size and layer.
//!
//! A server restart (SIGTERM, then the server back on the same ports) does not end what the
//! pages do: the player and the publisher, told by the server's close_notify, reconnect by
//! themselves with back-off.
//!
//! The pages run under `tests/browser/page-driver.js` (see `common/web.rs`); the browser is
//! killed when its guard drops. Runs in `./test.sh`'s network namespace (docs/TESTING.md);
//! one browser test at a time (a lock), as the machine has two cores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::http::request;
use common::server::Server;
use common::web::{WebBrowser, frames, n, states};
use serde_json::{Value, json};

/// A played stream must decode this many frames…
const MIN_FRAMES: f64 = 60.0;
/// …within this long of the click.
const WITHIN: Duration = Duration::from_secs(10);
/// The page refreshes its stream list every 2 s: a change shows within this long.
const LIST_UPDATE: Duration = Duration::from_secs(6);

/// The names in the page's stream list.
fn listed(view: &Value) -> Vec<String> {
    view["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `page`'s stream list satisfies `want`; returns the page's view.
fn wait_list(
    b: &mut WebBrowser,
    page: &str,
    what: &str,
    want: impl Fn(&[String]) -> bool,
) -> Value {
    let (view, ok) = b.poll(page, "view", json!({}), LIST_UPDATE, |v| want(&listed(v)));
    assert!(ok, "{page}'s stream list never showed {what}: {view}");
    view
}

/// The `sample` file's size.
const SAMPLE: (u64, u64) = (640, 360);
/// The size of the fake camera the page publishes (`getUserMedia` asks for 1280x720 ideally).
const CAMERA: (u64, u64) = (1280, 720);
/// A simulcast stream's top layer reaches a viewer within this long of its first 60 frames
/// (it may start lower while its bandwidth estimate grows).
const TOP_LAYER_WITHIN: Duration = Duration::from_secs(15);

/// `stream`'s entry in the server's `GET /api/streams`.
fn api_stream(server: &Server, stream: &str) -> Value {
    let res = request(server.http, "GET", "/api/streams", &[], b"").expect("GET /api/streams");
    let list: Value = serde_json::from_slice(&res.body).expect("JSON");
    list.as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stream))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The rids and widths of `stream`'s active layers per `/api/streams`.
fn active_layers(server: &Server, stream: &str) -> Vec<(String, u64)> {
    api_stream(server, stream)["layers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|l| l["active"] == true)
                .map(|l| {
                    let rid = l["rid"].as_str().unwrap_or_default().to_owned();
                    (rid, l["width"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Clicks `stream` in `page`'s list and requires the page's player to decode ≥ 60 frames
/// within 10 s of the click, at `size` (for a simulcast stream within 15 s more, as its
/// estimate grows); returns the player's stats.
fn click_and_play(b: &mut WebBrowser, page: &str, stream: &str, size: (u64, u64)) -> Value {
    let clicked = Instant::now();
    b.click(page, &format!("#streams button[data-name=\"{stream}\"]"));
    let (stats, _) = b.poll(page, "pageStats", json!({"which": "player"}), WITHIN, |s| {
        s["name"] == stream && frames(s) >= MIN_FRAMES
    });
    let took = clicked.elapsed();
    eprintln!("{page} plays {stream}: {took:?} to {MIN_FRAMES} frames; {stats}");
    assert_eq!(
        stats["name"], stream,
        "the page plays something else: {stats}"
    );
    if frames(&stats) < MIN_FRAMES || took > WITHIN + Duration::from_millis(500) {
        let view = b.view(page);
        let errors = b.errors(page);
        panic!(
            "{page} decoded {} frames of {stream} in {took:?}, want ≥ {MIN_FRAMES} within \
             {WITHIN:?}: {stats}\nthe page: {view}\nits errors: {errors:?}",
            frames(&stats)
        );
    }
    let (stats, _) = b.poll(
        page,
        "pageStats",
        json!({"which": "player"}),
        TOP_LAYER_WITHIN,
        |s| s["inboundVideo"]["frameWidth"] == size.0,
    );
    assert_eq!(stats["inboundVideo"]["frameWidth"], size.0, "{stats}");
    assert_eq!(stats["inboundVideo"]["frameHeight"], size.1, "{stats}");
    assert_eq!(stats["connectionState"], "connected", "{stats}");
    assert!(
        !states(&stats).iter().any(|s| s == "failed"),
        "the connection failed on the way: {stats}"
    );
    // What the user sees: the video element has the stream's size and runs, the status
    // line says so, the clicked entry is highlighted, and the overlay (refreshed every
    // second from getStats) shows the resolution.
    let shown = format!("{}x{}", size.0, size.1);
    let (view, ok) = b.poll(page, "view", json!({}), Duration::from_secs(3), |v| {
        v["overlay"].as_str().is_some_and(|o| o.starts_with(&shown))
    });
    assert!(ok, "the overlay never showed {shown}: {view}");
    assert_eq!(view["videoPlaying"]["width"], size.0, "{view}");
    assert_eq!(view["videoPlaying"]["paused"], false, "{view}");
    assert_eq!(
        view["status"],
        format!("playing {stream}: connected"),
        "{view}"
    );
    let on: Vec<&Value> = view["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter(|s| s["on"] == true)
        .collect();
    assert_eq!(on.len(), 1, "one highlighted entry: {view}");
    assert_eq!(on[0]["name"], stream, "{view}");
    stats
}

/// Requires that `page` reported no uncaught exception, console error or HTTP error.
fn assert_clean(b: &mut WebBrowser, page: &str, log: impl Fn() -> String) {
    let errors = b.errors(page);
    assert!(
        errors.is_empty(),
        "{page} reported errors:\n  {}\nserver log:\n{}",
        errors.join("\n  "),
        log()
    );
}

#[test]
fn chromium_user_plays_sample_publishes_camera_and_a_second_page_plays_it() {
    let _one_browser = browser_lock();
    let server = Server::start(&[]);
    let home = format!("{}/", server.base_url());
    let mut b = WebBrowser::launch("chromium");

    // The viewer's page: `sample` is listed (as a file stream) and plays on a click.
    b.open("viewer", &home);
    let view = wait_list(&mut b, "viewer", "sample", |l| {
        l.iter().any(|n| n == "sample")
    });
    assert_eq!(listed(&view), ["sample"], "{view}");
    assert!(
        view["streams"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("file") && t.contains("VP8")),
        "{view}"
    );
    assert_eq!(view["status"], "idle", "{view}");
    click_and_play(&mut b, "viewer", "sample", SAMPLE);

    // Another page publishes its camera under a name of the user's choosing, as simulcast
    // by default.
    b.open("publisher", &home);
    assert_eq!(b.view("publisher")["simulcast"], true, "ticked by default");
    b.fill("publisher", "#pubname", "my cam");
    b.click("publisher", "#publish");
    let (pubview, ok) = b.poll(
        "publisher",
        "view",
        json!({}),
        Duration::from_secs(10),
        |v| v["publisher"]["connectionState"] == "connected",
    );
    assert!(ok, "the camera never got published: {pubview}");
    assert_eq!(pubview["publishButton"], "Stop publishing", "{pubview}");
    assert_eq!(
        pubview["status"], "publishing my cam: connected",
        "{pubview}"
    );
    let sent = b.page_stats("publisher", "publisher");
    eprintln!("publisher: {sent}");
    // The publisher sees its own camera: a muted local preview that plays.
    let (pubview, ok) = b.poll(
        "publisher",
        "view",
        json!({}),
        Duration::from_secs(3),
        |v| v["preview"]["width"] == CAMERA.0 && v["preview"]["currentTime"].as_f64() > Some(0.0),
    );
    assert!(ok, "no local preview of the camera: {pubview}");
    assert_eq!(pubview["preview"]["hidden"], false, "{pubview}");
    assert_eq!(pubview["preview"]["muted"], true, "{pubview}");
    assert_eq!(pubview["preview"]["paused"], false, "{pubview}");
    assert_eq!(pubview["preview"]["height"], CAMERA.1, "{pubview}");
    // Three layers reach the server, each at its size: 1/4, 1/2 and full (Chromium starts
    // the upper ones as its bandwidth estimate grows).
    let want: Vec<(String, u64)> = [("q", 320), ("h", 640), ("f", 1280)]
        .iter()
        .map(|&(r, w)| (r.to_owned(), w))
        .collect();
    let t0 = Instant::now();
    let mut layers = active_layers(&server, "my cam");
    while layers != want && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(250));
        layers = active_layers(&server, "my cam");
    }
    eprintln!("my cam's layers after {:?}: {layers:?}", t0.elapsed());
    assert_eq!(
        layers,
        want,
        "the page's simulcast: {}",
        api_stream(&server, "my cam")
    );

    // The viewer's page, untouched since, lists the live stream by itself and plays it.
    let view = wait_list(&mut b, "viewer", "my cam", |l| {
        l.iter().any(|n| n == "my cam")
    });
    let entry = view["streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "my cam"))
        .cloned()
        .expect("listed");
    assert!(
        entry["text"].as_str().is_some_and(|t| t.contains("live")),
        "{view}"
    );
    click_and_play(&mut b, "viewer", "my cam", CAMERA);
    // The list says it has three layers, and the overlay (from `/api/streams`, refreshed
    // every 2 s) names the one this viewer gets: the top.
    let (view, ok) = b.poll("viewer", "view", json!({}), LIST_UPDATE, |v| {
        let text = v["listText"].as_str().unwrap_or_default();
        let overlay = v["overlay"].as_str().unwrap_or_default();
        text.contains("3 layers") && overlay.contains("layer f of q/h/f")
    });
    eprintln!("viewer's list and overlay while playing: {view}");
    assert!(ok, "no layer in the list or overlay: {view}");
    // Its codecs once each, though three tracks are VP8.
    let entry = view["streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "my cam"))
        .and_then(|s| s["text"].as_str())
        .unwrap_or_default();
    assert_eq!(entry.matches("VP8").count(), 1, "{view}");
    assert!(
        view["overlay"]
            .as_str()
            .is_some_and(|o| o.starts_with("1280x720")),
        "{view}"
    );

    // Stopping the publisher takes the stream off the list, again by itself.
    b.click("publisher", "#publish");
    let (pubview, ok) = b.poll(
        "publisher",
        "view",
        json!({}),
        Duration::from_secs(5),
        |v| v["publishButton"] == "Publish my camera",
    );
    assert!(ok, "the publish button never went back: {pubview}");
    assert!(pubview["publisher"].is_null(), "{pubview}");
    assert_eq!(pubview["preview"]["hidden"], true, "{pubview}");
    assert_eq!(pubview["preview"]["live"], false, "{pubview}");
    wait_list(&mut b, "viewer", "my cam gone", |l| {
        !l.iter().any(|n| n == "my cam")
    });

    assert_clean(&mut b, "viewer", || server.log());
    assert_clean(&mut b, "publisher", || server.log());
    b.quit();
    // Both sessions the pages ended themselves ended by their DELETE (the page sends it
    // before closing the connection).
    let log = server.log();
    let ended: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("session ended"))
        .collect();
    for role in ["stream=sample role=Play", "stream=my cam role=Publish"] {
        assert!(
            ended
                .iter()
                .any(|l| l.contains(role) && l.contains("reason=DELETE")),
            "no `{role}` session ended by DELETE:\n{}",
            ended.join("\n")
        );
    }
}

/// How long after the stop both pages must be connected again (a crash takes longest: the
/// browser first waits for ICE consent checks to go unanswered, ~5 s, then the page 4 s).
const BACK_WITHIN: Duration = Duration::from_secs(25);
/// How long the restarted server stays down.
const DOWNTIME: Duration = Duration::from_secs(3);

/// Errors a page may report while the server is down: the refused connections of its
/// reconnection attempts and of the stream list's refresh.
fn while_down(error: &str) -> bool {
    error.contains("ERR_CONNECTION_REFUSED")
}

#[test]
fn chromium_player_and_publisher_reconnect_after_a_server_restart() {
    reconnect_after_restart("chromium", "127.0.0.1:0", Stop::Term);
}

/// The same in Firefox, with the media port on every interface as by default (Firefox does
/// not use a loopback candidate: see `firefox.rs`).
#[test]
fn firefox_player_and_publisher_reconnect_after_a_server_restart() {
    reconnect_after_restart("firefox", "0.0.0.0:0", Stop::Term);
}

/// A crashed server says nothing: the pages notice the silence (ICE "disconnected" for 4 s)
/// and reconnect all the same.
#[test]
fn chromium_player_and_publisher_reconnect_after_a_server_crash() {
    reconnect_after_restart("chromium", "127.0.0.1:0", Stop::Kill);
}

/// How the server goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM: it ends every session itself.
    Term,
    /// SIGKILL.
    Kill,
}

/// A page plays `sample`, another publishes its camera; the server stops and comes back on
/// the same ports 3 s later; both pages must be connected again by themselves.
fn reconnect_after_restart(browser: &str, udp: &str, stop: Stop) {
    let _one_browser = browser_lock();
    let mut server = Server::start_on(udp, &[]);
    let home = format!("{}/", server.base_url());
    let mut b = WebBrowser::launch(browser);
    b.open("viewer", &home);
    wait_list(&mut b, "viewer", "sample", |l| {
        l.iter().any(|n| n == "sample")
    });
    click_and_play(&mut b, "viewer", "sample", SAMPLE);
    b.open("publisher", &home);
    b.fill("publisher", "#pubname", "cam");
    b.click("publisher", "#publish");
    let (pubview, ok) = b.poll(
        "publisher",
        "view",
        json!({}),
        Duration::from_secs(10),
        |v| v["publisher"]["connectionState"] == "connected",
    );
    assert!(ok, "the camera never got published: {pubview}");
    let played = b.view("viewer")["player"]["location"].clone();
    let published = pubview["publisher"]["location"].clone();

    // SIGTERM: the server ends both sessions itself (BYE, close_notify) and says so.
    let stopped = Instant::now();
    if stop == Stop::Kill {
        server.kill();
    } else {
        let status = server.terminate();
        assert!(status.success(), "exit status {status}\n{}", server.log());
        let log = server.log();
        for role in ["stream=sample role=Play", "stream=cam role=Publish"] {
            assert!(
                log.lines().any(|l| l.contains("session ended")
                    && l.contains(role)
                    && l.contains("reason=server shutting down")),
                "no `{role}` session ended by the shutdown:\n{log}"
            );
        }
    }
    // Down for 3 s, as in the report (issue 15): the pages' first attempts find nobody.
    std::thread::sleep(DOWNTIME);
    let again = server.restart(&[]);
    assert_eq!((again.http, again.udp), (server.http, server.udp));
    eprintln!("server back after {:?}", stopped.elapsed());

    // Both pages reconnect by themselves: new sessions, connected, the player decoding.
    let (stats, ok) = b.poll(
        "viewer",
        "pageStats",
        json!({"which": "player"}),
        BACK_WITHIN,
        |s| {
            s["location"] != played
                && s["connectionState"] == "connected"
                && frames(s) >= MIN_FRAMES
        },
    );
    let viewer_back = stopped.elapsed();
    assert!(
        ok,
        "the player did not come back: {stats}\nits page: {}\nserver log:\n{}",
        b.view("viewer"),
        again.log()
    );
    let (pubview, ok) = b.poll("publisher", "view", json!({}), BACK_WITHIN, |v| {
        v["publisher"]["location"] != published && v["publisher"]["connectionState"] == "connected"
    });
    let publisher_back = stopped.elapsed();
    assert!(
        ok,
        "the publisher did not come back: {pubview}\nserver log:\n{}",
        again.log()
    );
    eprintln!(
        "after {stop:?}: player decoding {MIN_FRAMES} frames again after {viewer_back:?}, \
         publisher connected again after {publisher_back:?}"
    );
    assert_eq!(pubview["status"], "publishing cam: connected", "{pubview}");
    assert_eq!(pubview["publishButton"], "Stop publishing", "{pubview}");
    assert_eq!(b.view("viewer")["status"], "playing sample: connected");
    let sent = b.page_stats("publisher", "publisher");
    assert!(
        n(&sent["outboundVideo"], "packetsSent") > 0.0,
        "the new publisher session sends no video: {sent}"
    );
    // The live stream is back for viewers too.
    wait_list(&mut b, "viewer", "cam back", |l| {
        l.iter().any(|n| n == "cam")
    });

    for page in ["viewer", "publisher"] {
        let errors: Vec<String> = b
            .errors(page)
            .into_iter()
            .filter(|e| !while_down(e))
            .collect();
        assert!(
            errors.is_empty(),
            "{page} reported errors:\n  {}",
            errors.join("\n  ")
        );
    }
    b.quit();
}
