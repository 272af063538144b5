//! Issue 11, `--origin`: an edge node pulls a stream it does not have from its origin over
//! WHEP, with one relay session however many viewers it has, and serves it like its own.
//! The publisher is our client; the viewers are str0m, an independent stack.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use bench::{Driver, PublisherConfig};
use common::http::request;
use common::server::Server;
use common::sfu::{await_publishing, sample_frame_index, sample_source};
use common::viewer::Viewer as Str0mViewer;
use serde_json::Value;

/// `GET /api/streams`, as (name → (kind, viewers)).
fn streams(server: &Server) -> Vec<(String, String, u64)> {
    let res = request(server.http, "GET", "/api/streams", &[], b"").unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    let list: Value = serde_json::from_str(&res.text()).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["kind"].as_str().unwrap().to_owned(),
                s["viewers"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn viewers_of(server: &Server, name: &str) -> Option<(String, u64)> {
    streams(server)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, kind, viewers)| (kind, viewers))
}

#[test]
fn an_edge_relays_a_stream_from_its_origin_with_one_session_for_all_its_viewers() {
    let (index, _) = sample_frame_index();
    let origin = Server::start(&[]);
    let edge = Server::start(&["--origin", &format!("http://{}", origin.http)]);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(origin.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher");

    // Three viewers of the edge at once: the first opens the relay, the others share it.
    let http = edge.http;
    let viewers: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let mut v = Str0mViewer::connect(http, "cam");
                v.run_for(Duration::from_secs(5));
                v
            })
        })
        .collect();
    // The publisher keeps sending meanwhile; halfway, both nodes are looked at.
    d.run_for(Duration::from_secs(3));
    let at_origin = viewers_of(&origin, "cam");
    let at_edge = viewers_of(&edge, "cam");
    let relays = common::http::metric(edge.http, "leanrtc_relays");
    let relayed = common::http::metric(edge.http, "leanrtc_relay_packets_received_total");
    d.run_for(Duration::from_secs(4));
    for v in viewers {
        let v = v
            .join()
            .unwrap_or_else(|_| panic!("a str0m viewer failed (see its panic above)"));
        assert!(
            v.frames.len() >= 60,
            "a viewer got {} frames",
            v.frames.len()
        );
        for f in &v.frames {
            assert!(
                index.contains_key(&bench::frame_hash(&f.data)),
                "a frame that is not the publisher's"
            );
        }
    }
    assert_eq!(
        at_origin,
        Some(("live".into(), 1)),
        "the origin sees one relay session"
    );
    assert_eq!(at_edge, Some(("relay".into(), 3)), "the edge's stream list");
    assert_eq!(relays, 1.0, "the edge's relay sessions");
    assert!(relayed > 100.0, "{relayed} packets relayed");
    // The edge's log says where the stream comes from.
    assert!(
        edge.log()
            .contains("relay: pulling the stream from its origin"),
        "{}",
        edge.log()
    );
}

#[test]
fn a_stream_neither_node_has_is_a_404_and_leaves_nothing_behind() {
    let origin = Server::start(&[]);
    let edge = Server::start(&["--origin", &format!("http://{}", origin.http)]);
    let offer = common::viewer::str0m_offer();
    let res = common::http::post_offer(edge.http, "nowhere", &offer);
    assert_eq!(res.status, 404, "{}", res.text());
    assert!(
        res.text().contains("here or at the origin"),
        "{}",
        res.text()
    );
    assert_eq!(viewers_of(&origin, "nowhere"), None);
    assert_eq!(viewers_of(&edge, "nowhere"), None);
}

/// An origin that is not a WHEP server: one that answers HTML, and one that never answers.
/// The viewer gets a 502 that says why (within the client's timeout), and the edge keeps
/// no relay.
#[test]
fn an_origin_that_is_not_leanrtc_or_never_answers_is_a_clear_502() {
    let html = TcpListener::bind("127.0.0.1:0").unwrap();
    let html_addr = html.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in html.incoming().take(4) {
            let Ok(mut conn) = conn else { continue };
            use std::io::{Read, Write};
            let mut buf = [0u8; 8192];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>",
            );
        }
    });
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let offer = common::viewer::str0m_offer();
    for (origin, says) in [
        (html_addr, "answered 200"),
        (silent_addr, "no answer within"),
    ] {
        let edge = Server::start(&["--origin", &format!("http://{origin}")]);
        let started = Instant::now();
        let res = common::http::post_offer(edge.http, "cam", &offer);
        assert_eq!(res.status, 502, "{}", res.text());
        assert!(res.text().contains(says), "{}", res.text());
        assert!(started.elapsed() < Duration::from_secs(8));
        assert_eq!(viewers_of(&edge, "cam"), None);
    }
    drop(silent);
}

/// A relay outlives its viewers by the idle period only: then it is closed, at the origin
/// too (its session there ends), and the edge forgets the stream.
#[test]
fn a_relay_closes_after_its_last_viewer_leaves() {
    let origin = Server::start(&[]);
    let edge = Server::start(&["--origin", &format!("http://{}", origin.http)]);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(origin.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher");
    let http = edge.http;
    let viewer = std::thread::spawn(move || {
        let mut v = Str0mViewer::connect(http, "cam");
        v.run_for(Duration::from_secs(2));
        assert_eq!(common::http::delete(http, &v.location), 200);
        v
    });
    d.run_for(Duration::from_secs(3));
    let v = viewer.join().unwrap();
    assert!(v.frames.len() >= 20, "{} frames", v.frames.len());
    let left = Instant::now();
    // Idle 10 s, looked at once a second, then the origin's DELETE or close_notify.
    let mut closed = None;
    while left.elapsed() < Duration::from_secs(16) {
        d.run_for(Duration::from_millis(250));
        if viewers_of(&origin, "cam") == Some(("live".into(), 0)) {
            closed = Some(left.elapsed());
            break;
        }
    }
    let closed = closed.unwrap_or_else(|| panic!("the origin still has the relay: {}", edge.log()));
    assert!(closed >= Duration::from_secs(9), "closed after {closed:?}");
    assert_eq!(viewers_of(&edge, "cam"), None, "the edge forgot the stream");
    assert!(
        edge.log().contains("relay: no viewers for 10s"),
        "{}",
        edge.log()
    );
}

/// A chain: a viewer of the second edge, whose origin is the first edge, whose origin has the
/// publisher. Each node has one session of the next one down.
#[test]
fn an_edge_of_an_edge_relays_too() {
    let origin = Server::start(&[]);
    let edge1 = Server::start(&["--origin", &format!("http://{}", origin.http)]);
    let edge2 = Server::start(&["--origin", &format!("http://{}", edge1.http)]);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(origin.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher");
    let http = edge2.http;
    let viewer = std::thread::spawn(move || {
        let mut v = Str0mViewer::connect(http, "cam");
        v.run_for(Duration::from_secs(4));
        v
    });
    d.run_for(Duration::from_secs(3));
    let seen = (
        viewers_of(&origin, "cam"),
        viewers_of(&edge1, "cam"),
        viewers_of(&edge2, "cam"),
    );
    d.run_for(Duration::from_secs(2));
    let v = viewer.join().unwrap();
    assert!(v.frames.len() >= 60, "{} frames", v.frames.len());
    assert_eq!(
        seen,
        (
            Some(("live".into(), 1)),
            Some(("relay".into(), 1)),
            Some(("relay".into(), 1))
        )
    );
}

/// The origin dies (SIGKILL) and comes back on the same address, and the stream is published
/// to it again: the edge pulls it again by itself and its viewer, on the same connection,
/// keeps decoding.
#[test]
fn an_edge_viewer_plays_on_across_an_origin_crash_and_republish() {
    let mut origin = Server::start(&[]);
    let edge = Server::start(&["--origin", &format!("http://{}", origin.http)]);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(origin.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher");
    let http = edge.http;
    let viewer = std::thread::spawn(move || {
        let mut v = Str0mViewer::connect(http, "cam");
        v.run_for(Duration::from_secs(16));
        v
    });
    d.run_for(Duration::from_secs(3));
    origin.kill();
    drop(d);
    let origin = origin.restart(&[]);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(origin.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher again");
    let republished = Instant::now();
    d.run_for(Duration::from_secs(11));
    let v = viewer.join().unwrap();
    let after = v.frames_since(republished + Duration::from_secs(4));
    assert!(
        after >= 60,
        "{after} frames in the last ~7 s after the republish; edge log:\n{}",
        edge.log()
    );
    assert!(!v.ice_disconnected(), "the viewer's connection went down");
    assert!(
        edge.log().contains("relay: pulling the stream again"),
        "{}",
        edge.log()
    );
}

/// Real browsers: Chromium publishes to the origin; a Chromium page plays from the edge while
/// two str0m viewers watch there too. The origin has one session of the edge's.
#[test]
fn chromium_plays_from_an_edge_what_chromium_publishes_to_the_origin() {
    let _one_browser = common::browser::browser_lock();
    let origin = Server::start(&[]);
    let edge = Server::start(&["--origin", &format!("http://{}", origin.http)]);
    let mut pages = common::publish::Pages::launch(&origin.base_url());
    pages.publish("pub", "cam", "vp8");
    let http = edge.http;
    let viewers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut v = Str0mViewer::connect(http, "cam");
                v.run_for(Duration::from_secs(10));
                v
            })
        })
        .collect();
    let playing = pages.play_from("view", &edge.base_url(), "cam");
    assert_eq!(playing["status"], 201, "{playing}");
    let pc = pages.poll_until("view", Duration::from_secs(15), |pc| {
        common::publish::num(&pc["inboundVideo"]["framesDecoded"]) >= 60.0
    });
    let decoded = common::publish::num(&pc["inboundVideo"]["framesDecoded"]);
    assert!(decoded >= 60.0, "Chromium decoded {decoded} frames: {pc}");
    assert_eq!(viewers_of(&origin, "cam"), Some(("live".into(), 1)));
    assert_eq!(viewers_of(&edge, "cam"), Some(("relay".into(), 3)));
    for v in viewers {
        let v = v.join().unwrap();
        assert!(
            v.frames.len() >= 60,
            "a str0m viewer got {} frames",
            v.frames.len()
        );
    }
    pages.quit();
}

/// Nodes authenticate to each other with the site's Bearer token: an edge that has it pulls
/// the stream; one with another token gets the origin's 401, passed on as a 502 that says so.
#[test]
fn an_edge_shows_the_origin_its_token() {
    let origin = Server::start(&["--watch-token", "s3cret"]);
    let good = Server::start(&[
        "--origin",
        &format!("http://{}", origin.http),
        "--cluster-token",
        "s3cret",
    ]);
    let bad = Server::start(&[
        "--origin",
        &format!("http://{}", origin.http),
        "--cluster-token",
        "wrong",
    ]);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(origin.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher");
    let offer = common::viewer::str0m_offer();
    let res = common::http::post_offer(good.http, "cam", &offer);
    assert_eq!(res.status, 201, "{}", res.text());
    let res = common::http::post_offer(bad.http, "cam", &offer);
    assert_eq!(res.status, 502, "{}", res.text());
    assert!(res.text().contains("answered 401"), "{}", res.text());
    d.run_for(Duration::from_secs(1));
}

/// An origin whose WHEP answer names a media address nothing answers on (here: a proxy in
/// front of a real origin that rewrites the answer's candidate ports). The relay never
/// connects: the viewer gets a 502 that says so within the relay's 5 s, and nothing stays
/// behind — no relay at the edge, no session at the origin once its ICE gives up.
#[test]
fn a_relay_that_never_connects_times_out_with_a_clear_error() {
    use std::io::{Read, Write};
    let origin = Server::start(&[]);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(origin.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher");
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let real = origin.http;
    let udp_port = origin.udp.port();
    std::thread::spawn(move || {
        for conn in proxy.incoming().take(8) {
            let Ok(mut conn) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 8192];
            // Head, then the body by Content-Length.
            let (head_len, body_len) = loop {
                let n = conn.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break (0, 0);
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len = text[..i]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    break (i + 4, len);
                }
            };
            while req.len() < head_len + body_len {
                let n = conn.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&req).to_string();
            let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let method = text.split_whitespace().next().unwrap_or("GET").to_owned();
            let body = &req[head_len.min(req.len())..];
            let res = request(
                real,
                &method,
                &path,
                &[("Content-Type", "application/sdp")],
                body,
            )
            .unwrap();
            let answer = res
                .text()
                .replace(&format!(" {udp_port} typ"), &format!(" {dead_port} typ"));
            let location = res.header("location").unwrap_or("/").to_owned();
            let _ = write!(
                conn,
                "HTTP/1.1 {} X\r\nLocation: {location}\r\nContent-Length: {}\r\n\r\n{answer}",
                res.status,
                answer.len()
            );
        }
    });
    let edge = Server::start(&["--origin", &format!("http://{proxy_addr}")]);
    let offer = common::viewer::str0m_offer();
    let started = Instant::now();
    let res = common::http::post_offer(edge.http, "cam", &offer);
    let took = started.elapsed();
    assert_eq!(res.status, 502, "{}", res.text());
    assert!(
        res.text().contains("did not connect within 5 s"),
        "{}",
        res.text()
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert_eq!(viewers_of(&edge, "cam"), None, "the edge keeps nothing");
    assert_eq!(common::http::metric(edge.http, "leanrtc_relays"), 0.0);
    // The origin's session for the relay ends when its ICE gives up (no check within 5 s
    // of the POST), or at once with the edge's DELETE.
    let deadline = Instant::now() + Duration::from_secs(8);
    while viewers_of(&origin, "cam") != Some(("live".into(), 0)) {
        assert!(
            Instant::now() < deadline,
            "the origin keeps the relay's session"
        );
        d.run_for(Duration::from_millis(200));
    }
}
