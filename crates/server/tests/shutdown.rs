//! Stopping the server (SIGTERM, as systemd or `docker stop` do) tells every peer at once:
//! each viewer gets an RTCP BYE for the SSRCs it receives and then the DTLS close_notify, a
//! publisher gets its close_notify, the process exits 0, and the log has one `session ended`
//! line per session saying why. Before, the sessions went silent and browsers noticed only
//! when ICE consent expired (~30 s), with nothing in the log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bench::{Driver, PublisherConfig};
use common::server::Server;
use common::sfu::{await_publishing, sample_source, view_until_first_frame, wait_for};
use rtc::peer::DisconnectCause;

#[test]
fn sigterm_sends_bye_and_close_notify_to_every_session_and_logs_them() {
    let mut server = Server::start(&[]);
    let mut d = Driver::new().unwrap();
    let publisher = d
        .publish(server.http, "live", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, publisher, "publisher");
    let mut viewers = view_until_first_frame(&mut d, &server, "live", 2);
    viewers.extend(view_until_first_frame(&mut d, &server, "sample", 1));
    d.run_for(Duration::from_millis(500));

    let stopped = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "exit status {status}\n{}", server.log());
    // What the server sent before exiting waits in our socket.
    wait_for(
        &mut d,
        Duration::from_secs(5),
        "BYE and close_notify at every viewer, close_notify at the publisher",
        |d| {
            d.session(publisher).unwrap().closed.is_some()
                && viewers.iter().all(|&v| {
                    d.viewer(v).unwrap().bye.is_some() && d.session(v).unwrap().closed.is_some()
                })
        },
    );
    let (_, cause) = d.session(publisher).unwrap().closed.clone().unwrap();
    assert_eq!(cause, DisconnectCause::ClosedByPeer, "publisher");
    for (i, &v) in viewers.iter().enumerate() {
        let viewer = d.viewer(v).unwrap();
        let session = d.session(v).unwrap();
        let (bye_at, ssrcs) = viewer.bye.clone().unwrap();
        let (closed_at, cause) = session.closed.clone().unwrap();
        let video = viewer.video_ssrc().unwrap();
        assert!(
            ssrcs.contains(&video),
            "viewer {i}: BYE for {ssrcs:?}, video is {video}"
        );
        assert_eq!(cause, DisconnectCause::ClosedByPeer, "viewer {i}");
        assert!(bye_at <= closed_at, "viewer {i}: closed before the BYE");
        eprintln!(
            "viewer {i}: BYE and close_notify read {:?} after SIGTERM",
            closed_at - stopped
        );
    }

    // One `session ended` line per session, naming the shutdown.
    let log = server.log();
    let ended: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("session ended"))
        .collect();
    for &id in viewers.iter().chain([&publisher]) {
        let location = &d.session(id).unwrap().location;
        let sid = location.rsplit('/').next().unwrap();
        assert!(
            ended.iter().any(|l| l.contains(&format!("session={sid} "))
                && l.contains("reason=server shutting down")),
            "no `session ended` line for {location} naming the shutdown:\n{log}"
        );
    }
    assert_eq!(ended.len(), 4, "one line per session:\n{log}");
}

/// A client that never finishes its request (here: a POST whose body never comes) cannot
/// hold up the shutdown: after a grace period the server closes its sessions and exits.
#[test]
fn a_request_left_open_does_not_hold_up_the_shutdown() {
    let mut server = Server::start(&[]);
    let mut d = Driver::new().unwrap();
    let viewers = view_until_first_frame(&mut d, &server, "sample", 1);
    let mut stuck = std::net::TcpStream::connect(server.http).unwrap();
    std::io::Write::write_all(
        &mut stuck,
        b"POST /whep/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n\
          Content-Length: 1000\r\n\r\nv=0\r\n",
    )
    .unwrap();
    // The request is being read when the signal comes.
    std::thread::sleep(Duration::from_millis(200));
    let stopped = Instant::now();
    server.send_sigterm();
    wait_for(
        &mut d,
        Duration::from_secs(10),
        "BYE and close_notify",
        |d| {
            d.viewer(viewers[0]).unwrap().bye.is_some()
                && d.session(viewers[0]).unwrap().closed.is_some()
        },
    );
    let closed = stopped.elapsed();
    let status = server.wait_exit(Duration::from_secs(5));
    let took = stopped.elapsed();
    assert!(status.success(), "exit status {status}\n{}", server.log());
    eprintln!("with a request open: sessions closed {closed:?} and exit {took:?} after SIGTERM");
    assert!(
        server
            .log()
            .contains("HTTP requests still open after the grace period"),
        "{}",
        server.log()
    );
    drop(stuck);
}
