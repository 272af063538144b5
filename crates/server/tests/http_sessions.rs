//! Session URLs against the real binary: a `Location` leads back to its session whatever the
//! stream's name, and a session's id reaches it only on its own kind and stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http::{Response, request};
use common::server::Server;

const SDP: (&str, &str) = ("Content-Type", "application/sdp");
const SDPFRAG: (&str, &str) = ("Content-Type", "application/trickle-ice-sdpfrag");

/// POSTs `offer` to `path`; the `Location` of the 201.
fn create(server: &Server, path: &str, offer: &str) -> String {
    let res = request(server.http, "POST", path, &[SDP], offer.as_bytes()).unwrap();
    assert_eq!(res.status, 201, "POST {path}: {}", res.text());
    res.header("location").expect("a Location").to_owned()
}

fn restart(server: &Server, path: &str) -> Response {
    let frag = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";
    request(
        server.http,
        "PATCH",
        path,
        &[SDPFRAG, ("If-Match", "*")],
        frag.as_bytes(),
    )
    .unwrap()
}

fn delete(server: &Server, path: &str) -> u16 {
    request(server.http, "DELETE", path, &[], b"")
        .unwrap()
        .status
}

/// `POST /whip/room%2F1` used to answer `Location: /whip/room/1/ID`, whose DELETE was a 404.
#[test]
fn location_of_a_name_with_a_slash_leads_back_to_the_session() {
    let server = Server::start(&[]);
    let location = create(
        &server,
        "/whip/room%2F1%20%C3%A9",
        &common::sdp_fixture("chromium-whip-vp8.sdp"),
    );
    assert!(
        location.starts_with("/whip/room%2F1%20%C3%A9/"),
        "Location: {location}"
    );
    assert_eq!(restart(&server, &location).status, 200, "PATCH {location}");
    assert_eq!(delete(&server, &location), 200, "DELETE {location}");
}

/// `PATCH /whep/x/<publisher id>` used to restart the publisher's ICE: only the id counted.
#[test]
fn a_session_id_on_another_kind_or_stream_is_not_found() {
    let server = Server::start(&[]);
    let publisher = create(
        &server,
        "/whip/cam",
        &common::sdp_fixture("chromium-whip-vp8.sdp"),
    );
    let viewer = create(
        &server,
        "/whep/sample",
        &common::sdp_fixture("chromium-whep.sdp"),
    );
    let id = |location: &str| location.rsplit('/').next().unwrap().to_owned();
    let (pid, vid) = (id(&publisher), id(&viewer));
    for wrong in [
        format!("/whep/cam/{pid}"),
        format!("/whep/sample/{pid}"),
        format!("/whip/sample/{vid}"),
        format!("/whep/cam/{vid}"),
    ] {
        let res = restart(&server, &wrong);
        assert_eq!(res.status, 404, "PATCH {wrong}: {}", res.text());
        assert_eq!(delete(&server, &wrong), 404, "DELETE {wrong}");
    }
    assert_eq!(restart(&server, &viewer).status, 200, "PATCH {viewer}");
    assert_eq!(delete(&server, &viewer), 200, "DELETE {viewer}");
    assert_eq!(delete(&server, &publisher), 200, "DELETE {publisher}");
}

/// A stream's key admits its publisher; a new keys file takes over on SIGHUP, and a broken
/// one leaves the keys in force.
#[test]
fn stream_keys_are_reloaded_on_sighup() {
    let file = std::env::temp_dir().join(format!("leanrtc-keys-test-{}", std::process::id()));
    std::fs::write(&file, "cam old-key\n").unwrap();
    let server = Server::start(&["--stream-keys", file.to_str().unwrap()]);
    let offer = common::sdp_fixture("chromium-whip-vp8.sdp");
    let publish = |key: &str| {
        let auth = format!("Bearer {key}");
        request(
            server.http,
            "POST",
            "/whip/cam",
            &[SDP, ("Authorization", &auth)],
            offer.as_bytes(),
        )
        .unwrap()
    };
    let hangup = || {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // One publisher at a time per stream: each is ended with its key before the next.
    let publish_and_end = |key: &str| {
        let res = publish(key);
        assert_eq!(res.status, 201, "{}", res.text());
        let location = res.header("location").unwrap().to_owned();
        let auth = format!("Bearer {key}");
        let res = request(
            server.http,
            "DELETE",
            &location,
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap();
        assert_eq!(res.status, 200, "{}", res.text());
    };
    publish_and_end("old-key");
    assert_eq!(publish("new-key").status, 401);
    let before = server.log().matches("stream keys reloaded").count();
    std::fs::write(&file, "cam new-key\n").unwrap();
    hangup();
    let wait_for_log = |what: &str, n: usize| {
        let start = std::time::Instant::now();
        while server.log().matches(what).count() < n {
            assert!(
                start.elapsed().as_secs() < 5,
                "no {what:?}:\n{}",
                server.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_for_log("stream keys reloaded", before + 1);
    assert_eq!(publish("old-key").status, 401, "the old key still works");
    publish_and_end("new-key");
    std::fs::write(&file, "cam\n").unwrap();
    hangup();
    wait_for_log("stream keys not reloaded", 1);
    publish_and_end("new-key");
    let _ = std::fs::remove_file(&file);
}
