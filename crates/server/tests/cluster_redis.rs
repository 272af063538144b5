//! Issue 11, `--cluster redis://…`: nodes claim the streams published on them in a real Redis
//! (Debian's `redis-server`, started here on a loopback port) and serve a stream another node
//! holds by relaying from it. Publishers are Chromium and our client; viewers are Chromium
//! and str0m.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench::{Driver, PublisherConfig};
use common::http::request;
use common::server::Server;
use common::sfu::{await_publishing, sample_source};
use common::viewer::Viewer as Str0mViewer;
use serde_json::Value;

/// A `redis-server` on a loopback port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (Debian's redis-server package; test.sh installs it)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn node(redis: &Redis) -> Server {
    Server::start(&["--cluster", &redis.url()])
}

/// `GET /api/streams` of one node: name → (kind, viewers).
fn viewers_of(server: &Server, name: &str) -> Option<(String, u64)> {
    let res = request(server.http, "GET", "/api/streams", &[], b"").unwrap();
    let list: Value = serde_json::from_str(&res.text()).unwrap();
    list.as_array().unwrap().iter().find_map(|s| {
        (s["name"] == name).then(|| {
            (
                s["kind"].as_str().unwrap().to_owned(),
                s["viewers"].as_u64().unwrap(),
            )
        })
    })
}

/// Waits until `node`'s claims are in the directory (renewed once a second).
fn wait_claimed(node: &Server, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = request(node.http, "GET", "/api/streams?scope=cluster", &[], b"").unwrap();
        if res.status == 200 && res.text().contains(&format!("\"name\":\"{stream}\"")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stream} never claimed: {}",
            res.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three nodes and a Redis: Chromium publishes to A; a Chromium page plays from C, str0m
/// viewers from B; A holds one relay session per edge however many viewers the edges have;
/// `?scope=cluster` shows every node; a second publisher of the name on B gets 409.
#[test]
fn three_nodes_serve_one_stream_with_one_relay_per_edge() {
    let _one_browser = common::browser::browser_lock();
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let c = node(&redis);
    let mut pages = common::publish::Pages::launch(&a.base_url());
    pages.publish("pub", "cam", "vp8");
    wait_claimed(&a, "cam");

    let http = b.http;
    let viewers: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let mut v = Str0mViewer::connect(http, "cam");
                v.run_for(Duration::from_secs(10));
                v
            })
        })
        .collect();
    let playing = pages.play_from("view", &c.base_url(), "cam");
    assert_eq!(playing["status"], 201, "{playing}");
    let pc = pages.poll_until("view", Duration::from_secs(15), |pc| {
        common::publish::num(&pc["inboundVideo"]["framesDecoded"]) >= 60.0
    });
    let decoded = common::publish::num(&pc["inboundVideo"]["framesDecoded"]);
    assert!(
        decoded >= 60.0,
        "Chromium on C decoded {decoded} frames: {pc}"
    );
    assert_eq!(
        viewers_of(&a, "cam"),
        Some(("live".into(), 2)),
        "one relay per edge"
    );
    assert_eq!(viewers_of(&b, "cam"), Some(("relay".into(), 3)));
    assert_eq!(viewers_of(&c, "cam"), Some(("relay".into(), 1)));

    // A second publisher of the name, on another node.
    let mut d = Driver::new().unwrap();
    let refused = d.publish(b.http, "cam", PublisherConfig::new(sample_source()));
    let err = format!("{:?}", refused.expect_err("B refuses a second publisher"));
    assert!(err.contains("409"), "{err}");

    let res = request(c.http, "GET", "/api/streams?scope=cluster", &[], b"").unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    let nodes: Value = serde_json::from_str(&res.text()).unwrap();
    assert_eq!(nodes.as_array().unwrap().len(), 3, "{nodes}");
    for v in viewers {
        let v = v.join().unwrap();
        assert!(
            v.frames.len() >= 60,
            "a str0m viewer on B got {} frames",
            v.frames.len()
        );
    }
    pages.quit();
}

/// The holder dies (SIGKILL) and the stream is published to another node: the viewers of a
/// third node — a Chromium page and str0m — play on, on the same connection (no new
/// RTCPeerConnection), once the edge finds the new holder.
#[test]
fn a_viewer_plays_on_when_its_stream_moves_to_another_node() {
    let _one_browser = common::browser::browser_lock();
    let redis = Redis::start();
    let mut a = node(&redis);
    let b = node(&redis);
    let c = node(&redis);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(a.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher on A");
    wait_claimed(&a, "cam");
    let http = c.http;
    let viewer = std::thread::spawn(move || {
        let mut v = Str0mViewer::connect(http, "cam");
        v.run_for(Duration::from_secs(20));
        v
    });
    let mut pages = common::publish::Pages::launch(&c.base_url());
    let playing = pages.play("view", "cam");
    assert_eq!(playing["status"], 201, "{playing}");
    // The publisher is our client, driven by this thread: it sends while `d` runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = loop {
        d.run_for(Duration::from_millis(250));
        let pc = pages.last_pc("view");
        if common::publish::num(&pc["inboundVideo"]["framesDecoded"]) >= 30.0
            || Instant::now() >= deadline
        {
            break pc;
        }
    };
    let decoded_before = common::publish::num(&before["inboundVideo"]["framesDecoded"]);
    assert!(decoded_before >= 30.0, "Chromium before the move: {before}");
    a.kill();
    drop(d);
    // A's claim lives on for its TTL; the publisher retries as a reconnecting one would.
    let mut d = Driver::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let p = loop {
        match d.publish(b.http, "cam", PublisherConfig::new(sample_source())) {
            Ok(p) => break p,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "B never took the publisher: {e:?}"
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    };
    await_publishing(&mut d, p, "publisher on B");
    let republished = Instant::now();
    d.run_for(Duration::from_secs(11));
    let after = pages.last_pc("view");
    let decoded_after = common::publish::num(&after["inboundVideo"]["framesDecoded"]);
    assert!(
        decoded_after >= decoded_before + 120.0,
        "Chromium decoded {decoded_before} then {decoded_after}: {after}\nC's log:\n{}",
        c.log()
    );
    let stats = pages.stats("view");
    assert_eq!(
        stats["pcs"].as_array().map(Vec::len),
        Some(1),
        "a new RTCPeerConnection: {stats}"
    );
    let v = viewer.join().unwrap();
    let frames = v.frames_since(republished + Duration::from_secs(4));
    assert!(
        frames >= 60,
        "{frames} str0m frames on C in the ~7 s after the move"
    );
    assert!(
        !v.ice_disconnected(),
        "the str0m viewer's connection went down"
    );
    assert_eq!(viewers_of(&b, "cam"), Some(("live".into(), 1)));
    pages.quit();
}

/// Redis killed mid-run: local streams play on, a cross-node request is a 503 that says why
/// (and the log says so once); Redis back on its port: cross-node play works again.
#[test]
fn redis_down_keeps_local_streams_and_refuses_cross_node_requests_until_it_is_back() {
    let mut redis = Redis::start();
    let port = redis.port;
    let a = node(&redis);
    let b = node(&redis);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(a.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher on A");
    wait_claimed(&a, "cam");
    redis.kill();
    d.run_for(Duration::from_secs(2));

    // A's own viewer is served as ever.
    let http = a.http;
    let local = std::thread::spawn(move || {
        let mut v = Str0mViewer::connect(http, "cam");
        v.run_for(Duration::from_secs(3));
        v
    });
    d.run_for(Duration::from_secs(1));
    let offer = common::viewer::str0m_offer();
    let res = common::http::post_offer(b.http, "cam", &offer);
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(res.text().contains("Redis"), "{}", res.text());
    let res = common::http::post_offer(b.http, "cam", &offer);
    assert_eq!(res.status, 503, "{}", res.text());
    d.run_for(Duration::from_secs(3));
    let local = local.join().unwrap();
    assert!(
        local.frames.len() >= 60,
        "A's own viewer got {}",
        local.frames.len()
    );
    let warned = b.log().matches("Redis is unreachable").count();
    assert_eq!(warned, 1, "B says it once:\n{}", b.log());

    let _redis = Redis::start_on(port);
    let back = Instant::now();
    // A claims again within a second or two; B's client reconnects by itself.
    let http = b.http;
    let v = loop {
        d.run_for(Duration::from_millis(500));
        let res = common::http::post_offer(http, "cam", &offer);
        if res.status == 201 {
            let location = res.header("location").unwrap().to_owned();
            assert_eq!(common::http::delete(http, &location), 200);
            break std::thread::spawn(move || {
                let mut v = Str0mViewer::connect(http, "cam");
                v.run_for(Duration::from_secs(4));
                v
            });
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "B still refuses {} s after Redis came back: {}",
            back.elapsed().as_secs(),
            res.text()
        );
    };
    d.run_for(Duration::from_secs(5));
    let v = v.join().unwrap();
    assert!(
        v.frames.len() >= 60,
        "B's viewer got {} frames",
        v.frames.len()
    );
    assert!(b.log().contains("Redis is reachable again"), "{}", b.log());
}
