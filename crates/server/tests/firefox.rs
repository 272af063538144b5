//! Firefox ESR (Debian's, under puppeteer-core over WebDriver BiDi) against leanrtc: it plays
//! the built-in `sample` over WHEP, and publishes its fake camera and microphone
//! (`media.navigator.streams.fake`) over WHIP to an in-process str0m viewer (an independent
//! stack) that plays it through the server.
//!
//! **Why the server's media port is on 10.99.0.1 here, not 127.0.0.1**: Firefox cannot use a
//! loopback server. Its ICE agent (nICEr, `nr_ice_component_can_candidate_addr_pair`) never
//! pairs a loopback candidate with a non-loopback one, and in `./test.sh`'s network
//! namespace it gathers only the veth's 10.99.0.1 (with `media.peerconnection.ice.loopback`
//! set it still offers no 127.0.0.1 candidate, and without a non-loopback interface and a
//! default route it gathers nothing). Against leanrtc on 127.0.0.1 it therefore sends not a
//! single STUN check and fails after ~5 s (seen with tshark). So these tests bind the media
//! port to the namespace's own 10.99.0.1 — and refuse to run outside that namespace, where
//! the address would not be ours. One test instead uses the server's default, 0.0.0.0, which
//! announces the default route's address (10.99.0.1 here) besides loopback.
//!
//! Firefox negotiates AEAD_AES_128_GCM SRTP and offers DTLS 1.3 with a post-quantum key share
//! (docs/TESTING.md); both tests require DTLS 1.2. The page is a blank page on another
//! origin than the server's (CORS). Pages run under `tests/browser/page-driver.js`
//! (`common/web.rs`); one browser test at a time (a lock).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::browser::browser_lock;
use common::server::Server;
use common::viewer::Viewer;
use common::web::{WebBrowser, frames, n, states};
use serde_json::{Value, json};

/// Frames that must be decoded…
const MIN_FRAMES: f64 = 60.0;
/// …within this long of the POST.
const WITHIN: Duration = Duration::from_secs(10);

/// The veth address `./test.sh` gives its private network namespace.
const NAMESPACE_IP: &str = "10.99.0.1";

/// Starts leanrtc with its media port on the namespace's veth address, after checking that
/// this is `./test.sh`'s private namespace (interfaces lo, t0 and t1 only, 10.99.0.1 ours).
fn start_server() -> Server {
    require_namespace();
    Server::start_on(&format!("{NAMESPACE_IP}:0"), &[])
}

/// Panics unless this is `./test.sh`'s private namespace.
fn require_namespace() {
    // /proc/self/net/dev lists this network namespace's interfaces (/sys/class/net shows
    // the namespace /sys was mounted in).
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    let mut links: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(str::trim))
        .collect();
    links.sort();
    let ours = std::net::UdpSocket::bind((NAMESPACE_IP, 0)).is_ok();
    assert!(
        links == ["lo", "t0", "t1"] && ours,
        "the Firefox tests need ./test.sh's private network namespace (interfaces lo, t0, t1 \
         with {NAMESPACE_IP} on t0; here: {links:?}, {NAMESPACE_IP} local: {ours}): Firefox does \
         not use a server on 127.0.0.1 (see this file's header). Run ./test.sh, or wrap cargo \
         test as docs/TESTING.md shows"
    );
}

/// The `--udp` default `leanrtc --help` shows.
fn default_udp() -> std::net::SocketAddr {
    let help = std::process::Command::new(common::server::binary())
        .arg("--help")
        .output()
        .expect("leanrtc --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let udp = help.split("--udp <UDP>").nth(1).expect("--udp in --help");
    let default = udp
        .split("[default: ")
        .nth(1)
        .and_then(|d| d.split(']').next())
        .expect("a default for --udp");
    default.parse().expect("an IP:PORT default")
}

/// What both directions must show about the connection.
fn assert_connection(s: &Value) {
    assert_eq!(s["connectionState"], "connected", "{s}");
    assert!(
        !states(s).iter().any(|x| x == "failed"),
        "the connection failed on the way: {s}"
    );
}

#[test]
fn firefox_plays_sample_over_whep() {
    let _one_browser = browser_lock();
    let server = start_server();
    let mut b = WebBrowser::launch("firefox");
    let blank = b.blank.clone();
    b.open("p", &blank);
    let posted_at = Instant::now();
    let r = b.call(
        "p",
        "whep",
        json!({"url": format!("{}/whep/sample", server.base_url())}),
    );
    assert_eq!(r["status"], 201, "{r}");
    let id = r["id"].as_u64().expect("id");
    let (s, ok) = b.poll(
        "p",
        "stats",
        json!({"id": id}),
        WITHIN.saturating_sub(posted_at.elapsed()),
        |s| frames(s) >= MIN_FRAMES,
    );
    eprintln!("firefox after {:?}: {s}", posted_at.elapsed());
    assert!(
        ok,
        "Firefox decoded {} frames within {WITHIN:?} of the POST, want ≥ {MIN_FRAMES}: {s}\nserver log:\n{}",
        frames(&s),
        server.log()
    );
    assert_eq!(s["inboundVideo"]["frameWidth"], 640, "{s}");
    assert_eq!(s["inboundVideo"]["frameHeight"], 360, "{s}");
    assert_eq!(s["inboundVideo"]["codec"], "video/VP8", "{s}");
    assert_eq!(s["transport"]["tlsVersion"], "FEFC", "DTLS 1.3: {s}");
    assert!(
        common::http::dtls_handshakes(server.http, "1.3", "X25519MLKEM768") >= 1.0,
        "no DTLS 1.3 handshake with X25519MLKEM768 in /metrics"
    );
    assert!(
        n(&s["inboundAudio"], "bytesReceived") > 0.0,
        "no audio: {s}"
    );
    assert_connection(&s);
    let closed = b.call("p", "close", json!({"id": id, "del": true}));
    assert_eq!(closed["deleteStatus"], 200, "{closed}");
    b.quit();
    let log = server.log();
    assert!(log.contains("reason=DELETE"), "{log}");
}

#[test]
fn firefox_publishes_over_whip_and_str0m_plays_it() {
    let _one_browser = browser_lock();
    let server = start_server();
    let mut b = WebBrowser::launch("firefox");
    let blank = b.blank.clone();
    b.open("p", &blank);
    let r = b.call(
        "p",
        "whip",
        json!({"url": format!("{}/whip/fox", server.base_url())}),
    );
    assert_eq!(r["status"], 201, "{r}");
    let id = r["id"].as_u64().expect("id");

    let mut viewer = Viewer::connect(server.http, "fox");
    viewer.run_until(viewer.posted_at + WITHIN, |v| {
        v.frames.len() >= MIN_FRAMES as usize
    });
    let got = viewer.frames.len();
    let first = viewer.frames.first().map(|f| f.at - viewer.posted_at);
    eprintln!("str0m: {got} frames of Firefox's camera, the first {first:?} after its POST");
    let s = b.call("p", "stats", json!({"id": id}));
    eprintln!("firefox publisher: {s}");
    assert!(
        got >= MIN_FRAMES as usize,
        "str0m got {got} frames of Firefox's camera within {WITHIN:?}, want ≥ {MIN_FRAMES}; \
         ICE: {:?}\nFirefox: {s}\nserver log:\n{}",
        viewer.ice_states,
        server.log()
    );
    assert!(
        common::files::is_vp8_keyframe(&viewer.frames[0].data),
        "str0m's first frame is not a keyframe"
    );
    assert_eq!(s["outboundVideo"]["codec"], "video/VP8", "{s}");
    assert_eq!(s["transport"]["tlsVersion"], "FEFC", "DTLS 1.3: {s}");
    assert!(
        common::http::dtls_handshakes(server.http, "1.3", "X25519MLKEM768") >= 1.0,
        "no DTLS 1.3 handshake with X25519MLKEM768 in /metrics"
    );
    assert!(
        n(&s["outboundAudio"], "packetsSent") > 0.0,
        "no audio sent: {s}"
    );
    assert_connection(&s);
    let closed = b.call("p", "close", json!({"id": id, "del": true}));
    assert_eq!(closed["deleteStatus"], 200, "{closed}");
    b.quit();
}

/// The first run, in Firefox: leanrtc on its default media address (only the port is
/// changed, to 0, so tests never clash over 8189; the IP is the default's, read from
/// `--help`) plays to Firefox. Firefox gathers only the namespace's 10.99.0.1 and never pairs
/// it with a loopback candidate (this file's header): the default must therefore announce
/// an address of the machine, which the unspecified 0.0.0.0 does (the default route's
/// interface, 10.99.0.1 here, and loopback). With the old default, 127.0.0.1, Firefox sent
/// no check and the server logged only `NotNominated` 30 s later.
#[test]
fn firefox_plays_sample_on_the_default_udp_address() {
    let _one_browser = browser_lock();
    require_namespace();
    let mut udp = default_udp();
    udp.set_port(0);
    let server = Server::start_on(&udp.to_string(), &[]);
    let log = server.log();
    assert!(
        log.contains(&format!("{NAMESPACE_IP}:{}", server.udp.port())),
        "the default route's address is announced: {log}"
    );
    let mut b = WebBrowser::launch("firefox");
    let blank = b.blank.clone();
    b.open("p", &blank);
    let posted_at = Instant::now();
    let r = b.call(
        "p",
        "whep",
        json!({"url": format!("{}/whep/sample", server.base_url())}),
    );
    assert_eq!(r["status"], 201, "{r}");
    let id = r["id"].as_u64().expect("id");
    let (s, ok) = b.poll(
        "p",
        "stats",
        json!({"id": id}),
        WITHIN.saturating_sub(posted_at.elapsed()),
        |s| frames(s) >= MIN_FRAMES,
    );
    eprintln!(
        "firefox on the default --udp {udp} after {:?}: {s}",
        posted_at.elapsed()
    );
    assert!(
        ok,
        "Firefox decoded {} frames within {WITHIN:?} of the POST, want ≥ {MIN_FRAMES}: {s}\nserver log:\n{}",
        frames(&s),
        server.log()
    );
    assert_eq!(s["pair"]["remote"]["address"], NAMESPACE_IP, "{s}");
    assert_connection(&s);
    let closed = b.call("p", "close", json!({"id": id, "del": true}));
    assert_eq!(closed["deleteStatus"], 200, "{closed}");
    b.quit();
}
