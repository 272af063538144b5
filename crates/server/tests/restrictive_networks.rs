//! Issue 13 in real browsers: viewers and publishers whose network blocks UDP reach us over
//! ICE-TCP, and clients that must use a TURN relay (Debian's coturn) get there through it.
//!
//! Each browser runs in a network namespace of its own, joined to the test's by a veth pair
//! the test makes (10.77.N.1 on our side, where the server and coturn listen; 10.77.N.2 on
//! the browser's). Where UDP is to be blocked, an nftables rule in the browser's namespace
//! drops every UDP datagram leaving it (toward the server, whichever of its addresses). The namespace, its rule and its end of the
//! pair go away with the browser's processes; our end is deleted by a guard.
//! `tests/browser/ice-transport.js` plays (WHEP) or publishes and plays back (WHIP) and
//! reports getStats' selected candidate pair.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use common::browser::{NodeScript, browser_lock};
use common::http::metric;
use common::process::Process;
use common::server::Server;
use serde_json::{Value, json};

/// Seconds of play, from the WHEP POST.
const SECONDS: u64 = 10;

static NEXT_NET: AtomicU8 = AtomicU8::new(1);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Our end of a veth pair; deleting it deletes the other end too.
struct Veth {
    ours: String,
    theirs: String,
    /// Our address (the server's), and the browser's.
    here: String,
    there: String,
}

impl Veth {
    fn new() -> Veth {
        let n = NEXT_NET.fetch_add(1, Ordering::Relaxed);
        let v = Veth {
            ours: format!("lrtc{n}a"),
            theirs: format!("lrtc{n}b"),
            here: format!("10.77.{n}.1"),
            there: format!("10.77.{n}.2"),
        };
        ip(&[
            "link", "add", &v.ours, "type", "veth", "peer", "name", &v.theirs,
        ]);
        ip(&["addr", "add", &format!("{}/24", v.here), "dev", &v.ours]);
        ip(&["link", "set", &v.ours, "up"]);
        v
    }

    /// Starts `ice-transport.js` with `opts` in a namespace of its own that gets the other
    /// end of the pair, and (`block_udp`) an nftables rule dropping all UDP out of it.
    fn browser(&self, opts: &Value, block_udp: bool) -> NodeScript {
        let name = opts["browser"].as_str().unwrap_or("chromium").to_owned();
        let nft = if block_udp {
            format!(
                "nft add table inet issue13 && \
                 nft add chain inet issue13 out '{{ type filter hook output priority 0; }}' && \
                 nft add rule inet issue13 out oifname {} meta l4proto udp drop",
                self.theirs
            )
        } else {
            "true".into()
        };
        // Waits (bounded) for the test to move the pair's end in, configures it, execs node.
        let setup = format!(
            "set -e; n=0; until ip link show {vb} >/dev/null 2>&1; do n=$((n+1)); \
             [ $n -lt 1200 ] || {{ echo 'no {vb} in the namespace:' >&2; ip -o link >&2; exit 9; }}; \
             sleep 0.05; done; \
             ip link set lo up; ip addr add {there}/24 dev {vb}; ip link set {vb} up; \
             ip route add default via {here}; {nft}; exec \"$@\"",
            vb = self.theirs,
            there = self.there,
            here = self.here,
        );
        let opts = opts.to_string();
        let node = NodeScript::start_wrapped(
            &["unshare", "-n", "sh", "-c", &setup, "sh"],
            &name,
            "ice-transport.js",
            &[&opts],
        );
        // `unshare` makes its namespace after it starts: a link moved before that stays in
        // ours (the move is a no-op) and the browser would wait for it in vain. So: wait
        // for the namespace to differ from ours, move, and check the link has left us.
        let pid = node.pid().to_string();
        let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let quiet = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        loop {
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net"));
            if theirs.is_ok_and(|n| n != ours)
                && quiet(&["link", "set", &self.theirs, "netns", &pid])
                && !quiet(&["link", "show", &self.theirs])
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "could not move {} into the browser's namespace",
                self.theirs
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        node
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.ours])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs the page and returns its result (which must not be an error).
fn run(node: &mut NodeScript) -> Value {
    let r = node.next_json(Duration::from_secs(2 * SECONDS + 90));
    assert!(
        r.get("error").is_none(),
        "the page failed: {r}\nnode stderr:\n{}",
        node.stderr_text()
    );
    eprintln!("result: {r}");
    r
}

/// A WHEP play that decoded ≥ 60 frames at 640x360 in 10 s, never failed, with its
/// selected pair's local candidate of `transport` ("tcp", "udp") and type `typ`.
#[track_caller]
fn assert_played(play: &Value, transport: &str, typ: &str) {
    let frames = play["framesDecoded"].as_u64().unwrap_or(0);
    assert!(
        frames >= 60,
        "{frames} frames decoded in {SECONDS} s: {play}"
    );
    assert_eq!(play["frameWidth"], 640, "{play}");
    assert_eq!(play["finalState"], "connected", "{play}");
    let states = play["states"].to_string();
    assert!(!states.contains("failed"), "{play}");
    assert_pair(&play["pair"], transport, typ);
}

/// `typ` "host": the browser's own address — its TCP connection's local end shows as
/// `prflx` (the port of an active TCP candidate is only known once it connects).
#[track_caller]
fn assert_pair(pair: &Value, transport: &str, typ: &str) {
    assert_eq!(
        pair["remote"]["protocol"], transport,
        "selected pair {pair}"
    );
    assert_eq!(
        pair["remote"]["candidateType"], "host",
        "selected pair {pair}"
    );
    let local = pair["local"]["candidateType"].as_str().unwrap_or("");
    if typ == "host" {
        assert!(["host", "prflx"].contains(&local), "selected pair {pair}");
        assert_eq!(pair["local"]["protocol"], transport, "selected pair {pair}");
    } else {
        assert_eq!(local, typ, "selected pair {pair}");
    }
    if transport == "tcp" {
        assert_eq!(pair["remote"]["tcpType"], "passive", "selected pair {pair}");
    }
}

fn start_server(net: &Veth, args: &[&str]) -> Server {
    let http = format!("{}:0", net.here);
    let udp = format!("{}:0", net.here);
    Server::start_at(&http, &udp, args)
}

#[test]
fn chromium_without_udp_plays_over_tcp() {
    let _one = browser_lock();
    let net = Veth::new();
    let server = start_server(&net, &[]);
    let base = format!("http://{}", server.http);
    let opts = json!({"browser": "chromium", "base": base, "mode": "play", "stream": "sample", "seconds": SECONDS});
    let mut node = net.browser(&opts, true);
    let r = run(&mut node);
    assert_played(&r["play"], "tcp", "host");
    assert_eq!(
        r["play"]["pair"]["remote"]["port"],
        server.udp.port(),
        "{r}"
    );
    // The server saw the session on TCP, and says so in its log and metrics.
    let log = server.log();
    assert!(log.contains("transport=\"tcp\""), "{log}");
    assert!(metric(server.http, "leanrtc_tcp_accepted_total") >= 1.0);
    assert!(metric(server.http, "leanrtc_tcp_frames_sent_total") > 1000.0);
}

#[test]
fn chromium_without_udp_publishes_over_tcp() {
    let _one = browser_lock();
    let net = Veth::new();
    let server = start_server(&net, &[]);
    let base = format!("http://{}", server.http);
    let opts = json!({"browser": "chromium", "base": base, "mode": "publish", "stream": "tcpcam", "seconds": SECONDS});
    let mut node = net.browser(&opts, true);
    let r = run(&mut node);
    let publish = &r["publish"];
    assert_eq!(publish["finalState"], "connected", "{r}");
    assert_pair(&publish["pair"], "tcp", "host");
    assert!(publish["framesSent"].as_u64().unwrap_or(0) >= 200, "{r}");
    // What it published came through: played back (also over TCP) at 640x360.
    assert_played(&r["play"], "tcp", "host");
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("role=Publish") && l.contains("transport=\"tcp\"")),
        "{log}"
    );
}

/// coturn on our side of the pair, one user, relaying from our address.
fn coturn(net: &Veth) -> (Process, u16) {
    assert!(
        std::path::Path::new("/usr/bin/turnserver").exists(),
        "/usr/bin/turnserver is missing: apt-get install -y coturn (./test.sh does)"
    );
    let port = std::net::UdpSocket::bind(format!("{}:0", net.here))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = Process::start(
        "coturn",
        Command::new("/usr/bin/turnserver").args([
            "-n",
            "--listening-ip",
            &net.here,
            "--listening-port",
            &port.to_string(),
            "--relay-ip",
            &net.here,
            "--min-port",
            "49200",
            "--max-port",
            "49300",
            "--lt-cred-mech",
            "--user",
            "issue13:relay-password",
            "--realm",
            "leanrtc.test",
            "--fingerprint",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--log-file",
            "stdout",
            "--simple-log",
            "--pidfile",
            "/dev/null",
        ]),
    );
    (p, port)
}

fn relay_server(net: &Veth, turn_port: u16) -> Server {
    let url = format!("turn:{}:{turn_port}?transport=udp", net.here);
    start_server(
        net,
        &[
            "--ice-server",
            &url,
            "--ice-server-username",
            "issue13",
            "--ice-server-credential",
            "relay-password",
        ],
    )
}

/// One browser (its namespace's end of the pair goes with it, and ours with that): it
/// publishes through the relay, and plays what it publishes back through the relay.
#[test]
fn chromium_forced_to_relay_publishes_and_plays_through_coturn() {
    let _one = browser_lock();
    let net = Veth::new();
    let (turn, turn_port) = coturn(&net);
    let server = relay_server(&net, turn_port);
    let base = format!("http://{}", server.http);
    let opts = json!({"browser": "chromium", "base": base, "mode": "publish", "stream": "relaycam",
                      "seconds": SECONDS, "relay": true});
    let mut node = net.browser(&opts, false);
    let r = run(&mut node);
    assert_eq!(r["publish"]["finalState"], "connected", "{r}");
    assert_pair(&r["publish"]["pair"], "udp", "relay");
    assert!(
        r["publish"]["framesSent"].as_u64().unwrap_or(0) >= 200,
        "{r}"
    );
    assert_played(&r["play"], "udp", "relay");
    // What the server saw: both sessions from coturn's relay ports on our address.
    let log = server.log();
    let relayed = log
        .lines()
        .filter(|l| l.contains("connected session=") && l.contains(&format!("{}:492", net.here)))
        .count();
    assert_eq!(
        relayed,
        2,
        "sessions through the relay\n{log}\ncoturn:\n{}",
        turn.stderr_text()
    );
}

/// Firefox ESR with UDP blocked: it gathers active ICE-TCP candidates too
/// (`media.peerconnection.ice.tcp`), so it plays over TCP like Chromium.
#[test]
fn firefox_without_udp_plays_over_tcp() {
    let _one = browser_lock();
    let net = Veth::new();
    let server = start_server(&net, &[]);
    let base = format!("http://{}", server.http);
    let opts = json!({"browser": "firefox", "base": base, "mode": "play", "stream": "sample", "seconds": SECONDS});
    let mut node = net.browser(&opts, true);
    let r = run(&mut node);
    assert_played(&r["play"], "tcp", "host");
    assert!(server.log().contains("transport=\"tcp\""));
}

/// Issue 13's figure: time to first frame over TCP vs UDP, in one run against one server
/// (two browser namespaces, one pair each; the server on every interface, announcing both
/// pairs' addresses with --public-ip).
#[test]
fn first_frame_over_tcp_and_over_udp() {
    let _one = browser_lock();
    let (a, b) = (Veth::new(), Veth::new());
    let public = format!("{},{}", a.here, b.here);
    let server = Server::start_at("0.0.0.0:0", "0.0.0.0:0", &["--public-ip", &public]);
    let mut first = Vec::new();
    for (net, block_udp, transport) in [(&a, false, "udp"), (&b, true, "tcp")] {
        let base = format!("http://{}:{}", net.here, server.http.port());
        let opts = json!({"browser": "chromium", "base": base, "mode": "play", "stream": "sample", "seconds": 5});
        let mut node = net.browser(&opts, block_udp);
        let r = run(&mut node);
        drop(node);
        let play = &r["play"];
        assert_pair(&play["pair"], transport, "host");
        assert!(play["framesDecoded"].as_u64().unwrap_or(0) >= 30, "{r}");
        first.push((
            transport,
            play["firstFrameMs"].as_f64().expect("a first frame"),
        ));
    }
    eprintln!("first frame after the POST: {first:?}");
    for (transport, ms) in &first {
        assert!(*ms < 3000.0, "{transport}: first frame after {ms} ms");
    }
}
