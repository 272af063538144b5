//! ICE restart (RFC 9725 §4.3.2, draft-ietf-wish-whep) with real headless Chromium, as a
//! WHEP viewer and as a WHIP publisher: the page calls `pc.restartIce()`, makes a new offer,
//! and PATCHes its new ICE credentials as `application/trickle-ice-sdpfrag` with
//! `If-Match: <ETag>`; the server answers 200 with its own new credentials and candidates
//! and a new ETag, which the page applies as the new remote description. Media must keep
//! flowing over the new ICE session: the viewer's framesDecoded, and for the publisher its
//! framesSent and the frames an in-process str0m viewer (an independent stack) receives
//! through the server.
//!
//! From the browser, on the real server: a restart without If-Match gets 428, one naming
//! another ETag 412 (the HTTP unit tests cover the same with a fake engine).
//!
//! The page is a blank page on another origin than the server's, so every request is a
//! CORS request (PATCH with If-Match is preflighted). Pages run under
//! `tests/browser/page-driver.js` (`common/web.rs`); helpers in `tests/browser/page-fns.js`.
//! Runs in `./test.sh`'s network namespace; one browser test at a time (a lock).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::server::Server;
use common::viewer::Viewer;
use common::web::{WebBrowser, frames, n, states};
use serde_json::{Value, json};

/// How long media may take to show up (at first, and again after a restart).
const WITHIN: Duration = Duration::from_secs(10);
/// Frames that must be decoded after each restart.
const MIN_FRAMES: f64 = 60.0;

/// The page's session `id` from a `whep`/`whip` call that must have returned 201.
fn session_id(r: &Value) -> u64 {
    assert_eq!(r["status"], 201, "POST: {r}");
    assert!(
        r["etag"].as_str().is_some_and(|e| e.starts_with('"')),
        "no strong ETag readable from the page (CORS exposes it?): {r}"
    );
    r["id"].as_u64().expect("session id")
}

/// A browser with one blank page "p" that has POSTed a session to `path` of `server`
/// (`kind`: "whep" or "whip"): the browser, the session id and its ETag.
fn post_from_page(server: &Server, kind: &str, path: &str) -> (WebBrowser, u64, String) {
    let mut b = WebBrowser::launch("chromium");
    let blank = b.blank.clone();
    b.open("p", &blank);
    let posted = b.call(
        "p",
        kind,
        json!({"url": format!("{}{path}", server.base_url())}),
    );
    let id = session_id(&posted);
    let etag = posted["etag"].as_str().expect("etag").to_owned();
    (b, id, etag)
}

/// 428 without If-Match, 412 with another ETag: the server refuses the restart and the
/// session goes on as before.
fn assert_preconditions(b: &mut WebBrowser, id: u64) {
    let fragment = "a=ice-ufrag:fake\r\na=ice-pwd:fakefakefakefakefakefake\r\n";
    let none = b.call(
        "p",
        "patch",
        json!({"id": id, "body": fragment, "ifMatch": null}),
    );
    assert_eq!(none["status"], 428, "PATCH without If-Match: {none}");
    let wrong = b.call(
        "p",
        "patch",
        json!({"id": id, "body": fragment, "ifMatch": "\"not-the-etag\""}),
    );
    assert_eq!(wrong["status"], 412, "PATCH with another ETag: {wrong}");
}

/// One ICE restart of session `id` whose ETag is `etag`; checks the exchange and returns
/// (the new ETag, the browser's new ufrag, the server's new ufrag).
fn restart(b: &mut WebBrowser, id: u64, etag: &str) -> (String, String, String) {
    let r = b.call("p", "restart", json!({"id": id, "ifMatch": etag}));
    eprintln!("restart: {r}");
    assert_eq!(r["status"], 200, "ICE restart PATCH: {r}");
    assert!(r["error"].is_null(), "the browser refused our sdpfrag: {r}");
    assert_eq!(r["contentType"], "application/trickle-ice-sdpfrag", "{r}");
    let new_etag = r["etag"].as_str().expect("a new ETag").to_owned();
    assert_ne!(new_etag, etag, "the ETag did not change: {r}");
    let local = r["localUfrag"].as_str().expect("ufrag").to_owned();
    assert_ne!(
        r["localUfrag"], r["previousLocalUfrag"],
        "the browser's offer kept its ufrag (no restart?): {r}"
    );
    let body = r["body"].as_str().expect("sdpfrag");
    assert!(body.contains("a=candidate:"), "no candidate: {r}");
    assert!(body.contains("a=end-of-candidates"), "{r}");
    let remote = r["remoteUfrag"].as_str().expect("server ufrag").to_owned();
    assert_eq!(r["signalingState"], "stable", "{r}");
    (new_etag, local, remote)
}

/// Polls session `id`'s stats until `done`, at most `WITHIN`; while waiting, `between`
/// runs (drives an in-process viewer).
fn wait_stats(
    b: &mut WebBrowser,
    id: u64,
    mut between: impl FnMut(),
    done: impl Fn(&Value) -> bool,
) -> (Value, bool) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let s = b.call("p", "stats", json!({"id": id}));
        if done(&s) {
            return (s, true);
        }
        if Instant::now() >= deadline {
            return (s, false);
        }
        between();
    }
}

/// After a restart: the connection is on the new ICE session (the browser's transport
/// reports the new local ufrag) and never failed.
fn assert_on_new_session(s: &Value, local: &str, what: &str) {
    assert_eq!(s["connectionState"], "connected", "{what}: {s}");
    assert!(
        !states(s).iter().any(|x| x == "failed" || x == "closed"),
        "{what}: the connection failed on the way: {s}"
    );
    assert_eq!(
        s["transport"]["iceLocalUsernameFragment"], local,
        "{what}: the transport is not on the restarted ICE session: {s}"
    );
}

#[test]
fn chromium_whep_viewer_restarts_ice_and_keeps_decoding() {
    let _one_browser = browser_lock();
    let server = Server::start(&[]);
    let (mut b, id, mut etag) = post_from_page(&server, "whep", "/whep/sample");
    let (s, ok) = wait_stats(&mut b, id, || sleep_ms(100), |s| frames(s) >= 30.0);
    assert!(ok, "never played: {s}");

    assert_preconditions(&mut b, id);

    // Two restarts in a row: the second must name the ETag the first returned, and the
    // first's ETag is stale after it.
    for round in 1..=2 {
        let before = frames(&b.call("p", "stats", json!({"id": id})));
        let started = Instant::now();
        let (new_etag, local, remote) = restart(&mut b, id, &etag);
        let (s, ok) = wait_stats(
            &mut b,
            id,
            || sleep_ms(100),
            |s| {
                frames(s) >= before + MIN_FRAMES
                    && s["transport"]["iceLocalUsernameFragment"] == local.as_str()
            },
        );
        eprintln!(
            "restart {round}: {} frames decoded in {:?} after it: {s}",
            frames(&s) - before,
            started.elapsed()
        );
        assert!(
            ok,
            "restart {round}: {} frames decoded after it within {WITHIN:?} (want ≥ {MIN_FRAMES}): {s}\nserver log:\n{}",
            frames(&s) - before,
            server.log()
        );
        assert_on_new_session(&s, &local, &format!("restart {round}"));
        assert_eq!(
            s["pair"]["remote"]["usernameFragment"], remote,
            "restart {round}: the pair in use is not the server's new candidate: {s}"
        );
        let stale = b.call(
            "p",
            "patch",
            json!({"id": id, "body": "a=ice-ufrag:x\r\na=ice-pwd:xxxxxxxxxxxxxxxxxxxxxxxx\r\n", "ifMatch": etag}),
        );
        assert_eq!(
            stale["status"], 412,
            "the replaced ETag still works: {stale}"
        );
        etag = new_etag;
    }
    let closed = b.call("p", "close", json!({"id": id, "del": true}));
    assert_eq!(closed["deleteStatus"], 200, "{closed}");
    b.quit();
    let log = server.log();
    assert_eq!(log.matches("ICE restart").count(), 2, "{log}");
    assert!(log.contains("reason=DELETE"), "{log}");
}

#[test]
fn chromium_whip_publisher_restarts_ice_and_str0m_keeps_receiving() {
    let _one_browser = browser_lock();
    let server = Server::start(&[]);
    let (mut b, id, etag) = post_from_page(&server, "whip", "/whip/cam");

    // An independent viewer of the published stream, driven while the page is polled.
    let mut viewer = Viewer::connect(server.http, "cam");
    viewer.run_until(viewer.posted_at + WITHIN, |v| v.frames.len() >= 30);
    assert!(
        viewer.frames.len() >= 30,
        "str0m got {} frames of the published camera; ICE: {:?}",
        viewer.frames.len(),
        viewer.ice_states
    );

    assert_preconditions(&mut b, id);
    viewer.run_for(Duration::from_millis(50));

    let sent_before = n(
        &b.call("p", "stats", json!({"id": id}))["outboundVideo"],
        "framesSent",
    );
    let (_, local, _) = restart(&mut b, id, &etag);
    let restarted = Instant::now();
    let received_before = viewer.frames.len();
    let (s, ok) = wait_stats(
        &mut b,
        id,
        || viewer.run_for(Duration::from_millis(100)),
        |s| {
            n(&s["outboundVideo"], "framesSent") >= sent_before + MIN_FRAMES
                && s["transport"]["iceLocalUsernameFragment"] == local.as_str()
        },
    );
    let sent = n(&s["outboundVideo"], "framesSent") - sent_before;
    eprintln!(
        "after the restart: {sent} frames sent in {:?}: {s}",
        restarted.elapsed()
    );
    assert!(
        ok,
        "{sent} frames sent within {WITHIN:?} of the restart (want ≥ {MIN_FRAMES}): {s}\nserver log:\n{}",
        server.log()
    );
    assert_on_new_session(&s, &local, "publisher");
    // The server still forwards them: str0m keeps receiving (as many as were sent, less
    // those still in flight).
    viewer.run_until(Instant::now() + Duration::from_secs(3), |v| {
        v.frames.len() >= received_before + MIN_FRAMES as usize
    });
    let received = viewer.frames.len() - received_before;
    let after_restart = viewer.frames.iter().filter(|f| f.at > restarted).count();
    eprintln!(
        "str0m: {received} frames since the restart ({after_restart} arrived after the PATCH's answer)"
    );
    assert!(
        after_restart >= MIN_FRAMES as usize,
        "str0m received {after_restart} frames after the publisher's ICE restart, want ≥ {MIN_FRAMES}; \
         ICE: {:?}\nserver log:\n{}",
        viewer.ice_states,
        server.log()
    );
    let closed = b.call("p", "close", json!({"id": id, "del": true}));
    assert_eq!(closed["deleteStatus"], 200, "{closed}");
    b.quit();
    assert!(server.log().contains("ICE restart"), "{}", server.log());
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
