//! Issue 13: passive ICE-TCP (RFC 6544, RFC 4571 framing) on the UDP port's number, seen from
//! a client of our own over a real TCP socket: the answer's `tcptype passive` candidates, an
//! ICE check over TCP answered like one over UDP, `--tcp off`, and bad input on TCP —
//! garbage, a length prefix promising 65 535 bytes and then silence, a frame begun and never
//! finished, thousands of idle connections from many addresses — bounded and closed while a
//! UDP viewer plays on undisturbed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::http::{metric, post_offer};
use common::server::Server;
use common::viewer::Viewer;
use rtc::stun::{self, Class, Key, MessageBuilder, Method, TransactionId};

/// The browser offer we answer; its ufrag is the one our checks name.
const OFFER: &str = "chromium-whep.sdp";
const OFFER_UFRAG: &str = "7WUO";

/// What an answer says about reaching us.
struct Answer {
    ufrag: String,
    pwd: String,
    udp: Vec<(SocketAddr, u32)>,
    tcp: Vec<(SocketAddr, u32)>,
    sdp: String,
}

fn answer(server: &Server) -> Answer {
    let res = post_offer(server.http, "sample", &common::sdp_fixture(OFFER));
    assert_eq!(res.status, 201, "{}", res.text());
    let sdp = res.text();
    let value = |name: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix(name))
            .expect(name)
            .trim()
            .to_owned()
    };
    let mut a = Answer {
        ufrag: value("a=ice-ufrag:"),
        pwd: value("a=ice-pwd:"),
        udp: Vec::new(),
        tcp: Vec::new(),
        sdp: sdp.clone(),
    };
    // Each m-line repeats them (BUNDLE): the first section's are enough.
    let first_section = sdp.split("m=").nth(1).expect("an m-line");
    for line in first_section.lines() {
        let Some(c) = line.strip_prefix("a=candidate:") else {
            continue;
        };
        let f: Vec<&str> = c.split_whitespace().collect();
        let addr = SocketAddr::new(f[4].parse().unwrap(), f[5].parse().unwrap());
        let priority: u32 = f[3].parse().unwrap();
        match f[2] {
            "udp" => a.udp.push((addr, priority)),
            "tcp" => {
                assert_eq!(&f[6..], ["typ", "host", "tcptype", "passive"], "{line}");
                a.tcp.push((addr, priority));
            }
            other => panic!("transport {other}: {line}"),
        }
    }
    a
}

/// A Binding request as a controlling browser sends it, signed with the session's password.
fn check(a: &Answer, tid: u8, pwd: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    MessageBuilder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([tid; 12]),
    )
    .username(format!("{}:{OFFER_UFRAG}", a.ufrag).as_bytes())
    .priority(1_518_280_447)
    .ice_controlling(7)
    .use_candidate()
    .message_integrity(&Key::new(pwd.as_bytes()))
    .fingerprint();
    buf
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Reads one RFC 4571 frame.
fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("a frame's length");
    let mut body = vec![0; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).expect("a frame's body");
    body
}

/// Waits until the server closes `s` (EOF or reset); returns how long that took.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("not closed within {limit:?}: {e}"),
        }
    }
}

/// Connects to `tcp` and gets a check answered with success: ICE works over TCP.
fn check_over_tcp(a: &Answer, tcp: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(tcp).expect("connect to the TCP candidate");
    s.write_all(&framed(&check(a, 1, &a.pwd))).unwrap();
    let response = read_frame(&mut s);
    let msg = stun::parse(&response).expect("a STUN response");
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.transaction_id(), TransactionId([1; 12]));
    assert_eq!(msg.xor_mapped_address(), Some(s.local_addr().unwrap()));
    msg.verify_integrity(&Key::new(a.pwd.as_bytes()))
        .expect("signed with the session's password");
    msg.verify_fingerprint().expect("fingerprint");
    s
}

#[test]
fn the_answer_offers_tcp_and_a_check_over_tcp_is_answered() {
    let server = Server::start(&[]);
    let a = answer(&server);
    assert!(!a.udp.is_empty(), "{}", a.sdp);
    // One passive TCP candidate per UDP one, same address and port number, lower priority.
    assert_eq!(a.udp.len(), a.tcp.len(), "{}", a.sdp);
    for ((udp, up), (tcp, tp)) in a.udp.iter().zip(&a.tcp) {
        assert_eq!(udp, tcp, "{}", a.sdp);
        assert!(tp < up, "TCP {tp} must rank below UDP {up}");
    }
    assert!(server.log().contains("ICE-TCP port ready"));

    // A check signed with the wrong password: 401, and the connection stays untrusted.
    let mut stranger = TcpStream::connect(a.tcp[0].0).unwrap();
    stranger
        .write_all(&framed(&check(&a, 2, "wrong-password-0123456789")))
        .unwrap();
    let refused = read_frame(&mut stranger);
    let msg = stun::parse(&refused).unwrap();
    assert_eq!(msg.class(), Class::Error);
    assert_eq!(msg.error_code().map(|e| e.code), Some(401));

    let s = check_over_tcp(&a, a.tcp[0].0);
    // The session's selected pair is the TCP one: the metrics say so.
    assert_eq!(metric(server.http, "leanrtc_tcp_connections_trusted"), 1.0);
    assert_eq!(metric(server.http, "leanrtc_tcp_connections"), 2.0);
    assert_eq!(metric(server.http, "leanrtc_sessions_tcp"), 1.0);
    assert_eq!(metric(server.http, "leanrtc_sessions_udp"), 0.0);
    drop(s);

    // The stranger never got a success: closed within the 5 s a connection has for that.
    let took = closed_within(&mut stranger, Duration::from_secs(8));
    assert!(took <= Duration::from_secs(6), "{took:?}");
    assert!(metric(server.http, "leanrtc_tcp_closed_unauthenticated_total") >= 1.0);
}

#[test]
fn tcp_off_announces_and_listens_on_nothing() {
    let server = Server::start(&["--tcp", "off"]);
    let a = answer(&server);
    assert!(a.tcp.is_empty(), "{}", a.sdp);
    assert!(
        TcpStream::connect(server.udp).is_err(),
        "a listener on {}",
        server.udp
    );
    assert!(!server.log().contains("ICE-TCP port ready"));
}

/// Opens `n` connections to `to`, `per_ip` from each of 127.1.0.1, 127.1.0.2, …; keeps the
/// ones that opened.
fn idle_connections(to: SocketAddr, n: usize, per_ip: usize) -> Vec<std::net::TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // In waves of 200: a burst past the listen backlog would have the kernel complete
    // handshakes the server never hears of (the client believes them open forever), which
    // tests the kernel, not us.
    rt.block_on(async {
        let mut open = Vec::new();
        for wave in (0..n).collect::<Vec<_>>().chunks(200) {
            let mut tasks = Vec::new();
            for &i in wave {
                let ip = (i / per_ip) as u32 + 1;
                let [_, _, c, d] = ip.to_be_bytes();
                let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 1, c, d)), 0);
                tasks.push(tokio::spawn(async move {
                    let socket = tokio::net::TcpSocket::new_v4().ok()?;
                    socket.bind(from).ok()?;
                    socket.connect(to).await.ok()?.into_std().ok()
                }));
            }
            for t in tasks {
                if let Ok(Some(s)) = t.await {
                    open.push(s);
                }
            }
        }
        open
    })
}

#[test]
fn bad_tcp_input_is_bounded_and_closed_while_a_udp_viewer_plays() {
    let server = Server::start(&[]);
    let a = answer(&server);
    let tcp = a.tcp[0].0;
    let mut viewer = Viewer::connect(server.http, "sample");
    viewer.run_for(Duration::from_secs(2));
    let since = Instant::now();

    let attack = std::thread::spawn(move || {
        // Garbage: a frame that is not STUN, and a length past what a stranger may send.
        let mut not_stun = TcpStream::connect(tcp).unwrap();
        not_stun.write_all(&framed(&[0xab; 16])).unwrap();
        let mut too_long = TcpStream::connect(tcp).unwrap();
        too_long.write_all(&[0x40, 0x00, 1, 2, 3]).unwrap();
        // 65 535 bytes promised, then silence.
        let mut promise = TcpStream::connect(tcp).unwrap();
        promise.write_all(&[0xff, 0xff]).unwrap();
        // A frame begun (100 bytes announced, 10 sent) and never finished.
        let mut half = TcpStream::connect(tcp).unwrap();
        half.write_all(&[0x00, 0x64, 0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0])
            .unwrap();
        for (name, s) in [
            ("not STUN", &mut not_stun),
            ("too long", &mut too_long),
            ("65535 promised", &mut promise),
        ] {
            let took = closed_within(s, Duration::from_secs(3));
            assert!(
                took < Duration::from_secs(1),
                "{name}: closed after {took:?}"
            );
        }
        let took = closed_within(&mut half, Duration::from_secs(8));
        assert!(took <= Duration::from_secs(6), "half a frame: {took:?}");

        // Thousands of idle connections from 150 addresses, 20 from each.
        let opened_at = Instant::now();
        let idle = idle_connections(tcp, 3000, 20);
        eprintln!(
            "{} idle connections opened in {:?}",
            idle.len(),
            opened_at.elapsed()
        );
        assert!(idle.len() >= 2900, "only {} connected", idle.len());
        idle
    });
    let mut idle = loop {
        viewer.run_for(Duration::from_millis(100));
        if attack.is_finished() {
            break attack.join().expect("the attack's checks");
        }
    };
    // Bounded: at most 16 per address and 1024 strangers in all are kept.
    viewer.run_for(Duration::from_millis(500));
    let open = metric(server.http, "leanrtc_tcp_connections");
    eprintln!("open at the server: {open}");
    assert!(open <= 1024.0, "{open} connections open");
    // The rest were refused at once (their address had 16 waiting) or made room.
    let refused = metric(server.http, "leanrtc_tcp_refused_total");
    let unauthenticated = metric(server.http, "leanrtc_tcp_closed_unauthenticated_total");
    eprintln!("refused {refused}, closed unauthenticated {unauthenticated}");
    assert!(refused > 0.0, "the per-address bound never struck");
    // Closed: every one of them, 5 s after the server accepted it. (The kernel completes
    // handshakes the accept queue had no room for later, after SYN-ACK retries: those are
    // accepted, and closed, a few seconds later; the clients cannot tell them apart.)
    let mut open: Vec<&mut std::net::TcpStream> = idle.iter_mut().collect();
    for s in &mut open {
        s.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(25);
    while !open.is_empty() && Instant::now() < deadline {
        open.retain_mut(|s| {
            let mut b = [0u8; 16];
            match s.read(&mut b) {
                Ok(0) => false,
                Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                Err(_) => false,
                Ok(_) => panic!("the server sent an idle stranger something"),
            }
        });
        viewer.run_for(Duration::from_millis(250));
    }
    assert!(
        open.is_empty(),
        "{} connections the server did not close",
        open.len()
    );
    assert_eq!(metric(server.http, "leanrtc_tcp_connections"), 0.0);
    drop(idle);
    let seconds = since.elapsed().as_secs();
    viewer.run_for(Duration::from_millis(200));
    // Nothing else disturbed: the UDP viewer played on, a new TCP client gets its answer.
    let frames = viewer.frames_since(since);
    let gap = viewer.longest_gap_since(since);
    eprintln!("viewer: {frames} frames in {seconds} s, longest gap {gap:?}");
    assert!(
        frames as u64 >= seconds * 30 * 8 / 10,
        "{frames} frames in {seconds} s"
    );
    assert!(
        gap < Duration::from_millis(500),
        "a {gap:?} hole in the video"
    );
    let b = answer(&server);
    drop(check_over_tcp(&b, b.tcp[0].0));
    assert!(metric(server.http, "leanrtc_tcp_closed_bad_input_total") >= 3.0);
}
