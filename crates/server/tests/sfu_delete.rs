//! A publisher's DELETE ends its stream: every viewer (our client) receives an RTCP BYE for
//! the SSRCs it was receiving, then its DTLS connection is closed by the server
//! (close_notify), the stream no longer exists, and the viewers' sessions are gone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bench::{Driver, PublisherConfig};
use common::http;
use common::server::Server;
use common::sfu::{await_publishing, sample_source, view_until_first_frame, wait_for};
use rtc::peer::DisconnectCause;

const VIEWERS: usize = 3;

#[test]
fn a_publishers_delete_sends_bye_and_closes_its_viewers() {
    let server = Server::start(&[]);
    let mut d = Driver::new().unwrap();
    let publisher = d
        .publish(server.http, "brief", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, publisher, "publisher");
    let viewers = view_until_first_frame(&mut d, &server, "brief", VIEWERS);
    d.run_for(Duration::from_secs(1));

    let deleted = Instant::now();
    assert_eq!(d.delete(publisher).unwrap(), 200);
    wait_for(
        &mut d,
        Duration::from_secs(5),
        "BYE and close at every viewer",
        |d| {
            viewers.iter().all(|&v| {
                d.viewer(v).unwrap().bye.is_some() && d.session(v).unwrap().closed.is_some()
            })
        },
    );
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
            "viewer {i}: BYE {:?} and close_notify {:?} after the DELETE",
            bye_at - deleted,
            closed_at - deleted
        );
        // The server forgot the session.
        let status = http::delete(server.http, &session.location);
        assert_eq!(status, 404, "viewer {i}: DELETE of its ended session");
    }
    let res = http::request(
        server.http,
        "POST",
        "/whep/brief",
        &[("Content-Type", "application/sdp")],
        b"v=0\r\n",
    )
    .unwrap();
    assert_eq!(res.status, 404, "the stream is gone: {}", res.text());
}
