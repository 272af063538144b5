//! Slowloris against the real binary: connections that send nothing, half their headers or
//! half a body are closed within the timeouts, one client address cannot hold more than its
//! share of connections, and other clients are served meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::http::request;
use common::server::Server;

const PER_ADDRESS: usize = 4;
/// `--http-header-timeout` and `--http-body-timeout` in the test.
const TIMEOUT: Duration = Duration::from_secs(1);

/// A TCP connection to `server` from `from` (any 127/8 address is local on Linux), so the test
/// can play two clients. std cannot bind before connecting; tokio's `TcpSocket` can.
fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let from: IpAddr = from.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let tcp = rt
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(from, 0))?;
            socket.connect(server).await?.into_std()
        })
        .expect("connect");
    tcp.set_nonblocking(false).unwrap();
    tcp
}

/// Reads until the server closes the connection or `wait` passes; what came, and whether it
/// was closed.
fn until_closed(tcp: &mut TcpStream, wait: Duration) -> (String, bool) {
    tcp.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match tcp.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[test]
fn slowloris_is_closed_within_the_timeouts_and_others_are_served() {
    let per_address = PER_ADDRESS.to_string();
    let timeout = TIMEOUT.as_secs().to_string();
    let server = Server::start(&[
        "--http-header-timeout",
        &timeout,
        "--http-body-timeout",
        &timeout,
        "--http-idle-timeout",
        "60",
        "--http-max-per-address",
        &per_address,
    ]);
    let opened = Instant::now();
    // The attacker, from 127.0.0.2: a connection that sends nothing, one with half its headers,
    // one with its headers and half its body, one with half its headers sent a byte at a time.
    let mut slow: Vec<TcpStream> = (0..PER_ADDRESS)
        .map(|_| connect_from("127.0.0.2", server.http))
        .collect();
    slow[1]
        .write_all(b"GET /api/streams HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow[2]
        .write_all(
            b"POST /whep/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 100\r\n\r\nv=0\r\n",
        )
        .unwrap();
    slow[3].write_all(b"GET / HTTP/1.1\r\n").unwrap();

    // Its next connection is over the per-address cap: told so and closed at once.
    let mut over = connect_from("127.0.0.2", server.http);
    let (said, closed) = until_closed(&mut over, Duration::from_millis(500));
    assert!(closed, "a connection over the per-address cap stays open");
    assert!(said.starts_with("HTTP/1.1 503"), "over the cap: {said:?}");

    // Meanwhile another client is served.
    let res = request(server.http, "GET", "/api/streams", &[], b"").unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.text().contains("sample"), "{}", res.text());

    for (i, tcp) in slow.iter_mut().enumerate() {
        if i == 3 {
            // A byte now and then does not buy more time for the headers.
            let _ = tcp.write_all(b"H");
        }
        let (said, closed) = until_closed(tcp, 3 * TIMEOUT);
        let after = opened.elapsed();
        assert!(closed, "slow connection {i} still open after {after:?}");
        assert!(
            after < TIMEOUT + Duration::from_millis(1500),
            "slow connection {i} closed only after {after:?}"
        );
        if i == 2 {
            assert!(said.starts_with("HTTP/1.1 408"), "half a body: {said:?}");
        }
    }

    // Their slots are given back: the same address is served again.
    let mut again = connect_from("127.0.0.2", server.http);
    again
        .write_all(b"GET /api/streams HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (said, closed) = until_closed(&mut again, Duration::from_secs(5));
    assert!(closed && said.starts_with("HTTP/1.1 200"), "{said:?}");
}

/// A connection on which nothing moves is closed after `--http-idle-timeout`, even when the
/// header timeout is long.
#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(&["--http-header-timeout", "60", "--http-idle-timeout", "1"]);
    let opened = Instant::now();
    let mut silent = connect_from("127.0.0.1", server.http);
    let (_, closed) = until_closed(&mut silent, Duration::from_secs(5));
    let after = opened.elapsed();
    assert!(closed, "still open after {after:?}");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "closed after {after:?}"
    );
}

/// Started with a low soft open-file limit, the server raises it to the hard limit (a soft
/// 1024 let ~1 100 idle connections lock out every client).
#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
    let hard = |limits: &str| -> (String, String) {
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("Max open files");
        let f: Vec<&str> = line.split_whitespace().collect();
        (f[3].to_owned(), f[4].to_owned())
    };
    let mine = hard(&std::fs::read_to_string("/proc/self/limits").unwrap());
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 256 && exec {} --http 127.0.0.1:0 --udp 127.0.0.1:0",
            common::server::binary().display()
        ))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once it is ready (and so past `ulimit` and `exec`), its limits are read.
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let ready = std::io::BufRead::lines(stderr)
        .map_while(Result::ok)
        .any(|l| l.contains("ready: open"));
    let soft = hard(&std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap()).0;
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "the server did not start");
    assert_eq!(
        soft, mine.1,
        "soft limit not raised to the hard limit {}",
        mine.1
    );
}
