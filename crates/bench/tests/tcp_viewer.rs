#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The load generator's ICE-TCP viewers (issue 13) against a real leanrtc on loopback: one
//! viewer plays the `sample` file stream over a TCP connection to the server's passive
//! candidate — ICE, DTLS, SRTP and RTCP all as RFC 4571 frames — and a UDP viewer next to it
//! is the control; then a small load run whose viewers all use TCP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bench::load::run::{self, Options, ViewerTransport};
use bench::load::scenario::Scenario;
use bench::load::server::{Server, ServerKind};
use bench::{Driver, Kind, ViewerConfig, http};
use rtc::sdp::Codec;

mod common;
use common::leanrtc_binary;

/// A gauge or counter of the server's `/metrics`.
fn metric(http_addr: SocketAddr, name: &str) -> f64 {
    let res = http::request(http_addr, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(res.status, 200);
    let text = res.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in:\n{text}"))
}

#[test]
fn a_tcp_viewer_plays_the_sample_over_ice_tcp() {
    let server = Server::start(ServerKind::Leanrtc, &leanrtc_binary()).expect("leanrtc starts");
    let mut d = Driver::new().unwrap();
    let codecs = [Codec::Vp8, Codec::Opus];
    let from = IpAddr::V4(Ipv4Addr::new(127, 1, 0, 7));
    let offer = d.offer(Kind::View, &codecs).unwrap().over_tcp(from);
    let session = offer
        .post(server.http, "sample", d.dtls().clone())
        .expect("WHEP POST answered, TCP connected");
    assert!(session.is_tcp());
    assert_eq!(session.local_addr().ip(), from);
    let tcp = d.add_viewer(session, ViewerConfig::default()).unwrap();
    // The control: a viewer of the same stream over UDP, on the same driver.
    let udp = d
        .view(server.http, "sample", ViewerConfig::default())
        .unwrap();
    assert!(!d.session(udp).unwrap().is_tcp());

    let start = Instant::now();
    let done = d.run_until(start + Duration::from_secs(15), |d| {
        [tcp, udp]
            .iter()
            .all(|&id| d.viewer(id).is_some_and(|v| v.frames().len() >= 60))
    });
    let v = d.viewer(tcp).unwrap();
    let s = d.session(tcp).unwrap();
    assert!(
        done,
        "TCP viewer: {} frames, session {:?}; UDP viewer: {} frames; log:\n{}",
        v.frames().len(),
        s.stats,
        d.viewer(udp).unwrap().frames().len(),
        server.log()
    );
    // ICE and DTLS completed over the connection, and SRTP decrypts: whole VP8 frames, the
    // first a keyframe, every one decodable; Opus too.
    assert!(s.connected_at.is_some() && s.closed.is_none() && !s.link_ended());
    let frames = v.frames();
    assert!(frames[0].keyframe, "{:?}", frames[0]);
    assert!(frames.iter().all(|f| f.decodable));
    assert!(v.ssrcs.len() >= 2, "video and audio: {:?}", v.ssrcs);
    let (media, frame) = (v.first_media_at.unwrap(), v.first_frame_at.unwrap());
    assert!(s.posted_at <= media && media <= frame);
    eprintln!(
        "over TCP: POST → first media {:?}, → end of the first frame {:?}",
        media - s.posted_at,
        frame - s.posted_at
    );
    assert_eq!(s.stats.send_failed, 0, "{:?}", s.stats);
    // The pair in use is our end of the TCP connection.
    assert_eq!(
        s.peer().path().map(|(_, local)| local),
        Some(s.local_addr())
    );
    // The server agrees: one session on TCP, the control on UDP, over one trusted
    // connection that carried the TCP viewer's media.
    assert_eq!(metric(server.http, "leanrtc_sessions_tcp"), 1.0);
    assert_eq!(metric(server.http, "leanrtc_tcp_connections_trusted"), 1.0);
    let frames_sent = metric(server.http, "leanrtc_tcp_frames_sent_total");
    assert!(frames_sent >= v.ssrcs.iter().map(|s| s.packets).sum::<u64>() as f64);
    // The file stream has no publisher session: the other one is the UDP control.
    assert_eq!(metric(server.http, "leanrtc_sessions_udp"), 1.0);

    // Closing: the close_notify goes out framed; the server then closes its end.
    let (closed, _) = d.close(tcp).unwrap();
    assert_eq!(closed.stats.send_failed, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(server.http, "leanrtc_sessions_tcp") != 0.0 {
        assert!(Instant::now() < deadline, "{}", server.log());
        d.run_for(Duration::from_millis(50));
    }
    drop(closed);
}

#[test]
fn a_load_run_over_tcp_has_every_viewer_receiving() {
    let server = Server::start(ServerKind::Leanrtc, &leanrtc_binary()).expect("leanrtc starts");
    let http_addr = server.http;
    let opts = Options {
        warmup: Duration::from_millis(300),
        measure: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(15),
        publisher_settle: Duration::ZERO,
        viewer_transport: ViewerTransport::Tcp,
        ..Options::default()
    };
    let scenario = Scenario::synthetic("tcp-1x20", 1, 20);
    let r = run::run(&scenario, server, &opts).expect("the run completes");
    assert_eq!(r.post_failures, 0, "{:?}", r.errors);
    assert_eq!(r.receiving, 20, "{r:?}");
    // 1.5 Mbit/s of ~1200-byte packets is ~150 packets/s to each viewer.
    assert!(r.received_pps > 20.0 * 100.0, "{r:?}");
    assert!(r.latency_samples > 0 && r.first_frame_ms.is_some(), "{r:?}");
    // What the server counts as sent includes the frames on its TCP connections: about
    // what the viewers received (RTCP and checks on top).
    let (viewers, server) = (r.per_cpu_viewers.unwrap(), r.per_cpu_server.unwrap());
    assert!(server >= viewers * 0.95, "{server} vs {viewers}");
    // The server is gone with the run: nothing answers any more.
    assert!(http::request(http_addr, "GET", "/metrics", &[], b"").is_err());
}
