//! str0m, an independent stack, plays a live stream the way it plays the file stream: with
//! its usual offer of a video and an audio section. The stream (published by our client) has
//! video only, so the server must reject the audio section in a way str0m accepts — and then
//! str0m must get the publisher's frames.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bench::{Driver, PublisherConfig};
use common::server::Server;
use common::sfu::{await_publishing, sample_frame_index, sample_source};
use common::viewer::Viewer as Str0mViewer;

#[test]
fn str0m_offering_audio_and_video_plays_a_video_only_live_stream() {
    let (index, _) = sample_frame_index();
    let server = Server::start(&[]);
    let mut d = Driver::new().unwrap();
    let p = d
        .publish(server.http, "cam", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, p, "publisher");
    let http = server.http;
    let str0m = std::thread::spawn(move || {
        // Panics (in this thread) if str0m refuses the answer.
        let mut v = Str0mViewer::connect(http, "cam");
        v.run_for(Duration::from_secs(4));
        v
    });
    d.run_for(Duration::from_secs(5));
    let v = str0m
        .join()
        .unwrap_or_else(|_| panic!("the str0m viewer failed (see its panic above)"));
    assert!(v.frames.len() >= 60, "str0m got {} frames", v.frames.len());
    for f in &v.frames {
        assert!(index.contains_key(&bench::frame_hash(&f.data)));
    }
}
