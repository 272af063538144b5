//! SFU fan-out: our client publishes the sample IVF file over WHIP and 20 viewers of our
//! client, plus one str0m viewer (an independent stack), play it over WHEP at once. Over 10 s
//! each of our viewers receives ≥ 95 % of the packets the publisher sent, and every VP8 frame
//! any viewer reassembles is a frame of the IVF file (read here from its spec), in file order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bench::{Driver, FrameInfo, PublisherConfig, frame_hash};
use common::server::Server;
use common::sfu::{
    await_publishing, published, sample_frame_index, sample_source, video_unique,
    view_until_first_frame,
};
use common::viewer::Viewer as Str0mViewer;

const VIEWERS: usize = 20;
const MEASURE: Duration = Duration::from_secs(10);

/// Checks a viewer's frames against the file: each is a file frame, the first a keyframe,
/// and almost every frame follows the one before in the file (a PLI may make the publisher
/// skip ahead to a keyframe). Returns how many frames came.
fn check_frames(who: &str, hashes: &[u64], index: &HashMap<u64, usize>, len: usize) -> usize {
    let idx: Vec<usize> = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            *index
                .get(h)
                .unwrap_or_else(|| panic!("{who}: frame {i} is no frame of the IVF file"))
        })
        .collect();
    let first = *idx.first().unwrap_or_else(|| panic!("{who}: no frame"));
    assert_eq!(
        first % 60,
        0,
        "{who}: the first frame ({first}) is not a keyframe"
    );
    let in_order = idx.windows(2).filter(|w| (w[0] + 1) % len == w[1]).count();
    assert!(
        in_order + 3 >= idx.len(),
        "{who}: only {in_order} of {} frames follow their predecessor in the file",
        idx.len()
    );
    idx.len()
}

#[test]
fn twenty_viewers_get_the_publishers_packets_and_the_files_frames() {
    let (index, len) = sample_frame_index();
    let server = Server::start(&[]);
    let mut d = Driver::new().unwrap();
    let publisher = d
        .publish(server.http, "live", PublisherConfig::new(sample_source()))
        .unwrap();
    await_publishing(&mut d, publisher, "publisher");

    let http = server.http;
    let str0m = std::thread::spawn(move || {
        let mut v = Str0mViewer::connect_with(http, "live", false);
        v.run_for(MEASURE + Duration::from_secs(4));
        v
    });
    let viewers = view_until_first_frame(&mut d, &server, "live", VIEWERS);

    // Viewers are spread over every media thread (the default is one per CPU; CI also runs
    // this with LEANRTC_THREADS=1), so what is asserted below holds on each of them.
    let threads = match std::env::var("LEANRTC_THREADS") {
        Ok(n) => n.parse().unwrap(),
        Err(_) => std::thread::available_parallelism().unwrap().get(),
    };
    let shards: Vec<(String, f64)> = common::http::metrics(server.http)
        .into_iter()
        .filter(|(n, _)| n.starts_with("leanrtc_shard_sessions{"))
        .collect();
    eprintln!("sessions per media thread: {shards:?}");
    assert_eq!(shards.len(), threads, "{shards:?}");
    assert!(shards.iter().all(|(_, v)| *v >= 1.0), "{shards:?}");

    let p0 = published(&d, publisher);
    let v0: Vec<u64> = viewers.iter().map(|&v| video_unique(&d, v)).collect();
    let started = std::time::Instant::now();
    d.run_for(MEASURE);
    let p1 = published(&d, publisher);
    let sent = p1 - p0;
    eprintln!(
        "publisher: {sent} packets in {:?}, {:?}",
        started.elapsed(),
        d.publisher(publisher).unwrap().stats
    );
    assert!(sent > 500, "the publisher sent only {sent} packets");
    for (i, &v) in viewers.iter().enumerate() {
        let got = video_unique(&d, v) - v0[i];
        let viewer = d.viewer(v).unwrap();
        assert!(
            got as f64 >= 0.95 * sent as f64,
            "viewer {i} got {got} of {sent} packets; {:?}",
            viewer.video()
        );
        let hashes: Vec<u64> = viewer.frames().iter().map(|f| f.hash).collect();
        let frames = check_frames(&format!("viewer {i}"), &hashes, &index, len);
        assert!(frames >= 270, "viewer {i} reassembled only {frames} frames");
        assert!(viewer.frames().iter().all(|f: &FrameInfo| f.decodable));
    }
    let str0m = str0m.join().unwrap();
    let hashes: Vec<u64> = str0m.frames.iter().map(|f| frame_hash(&f.data)).collect();
    let frames = check_frames("str0m", &hashes, &index, len);
    assert!(frames >= 270, "str0m reassembled only {frames} frames");
    eprintln!(
        "str0m: {frames} frames; our viewers: {:?} frames",
        viewers
            .iter()
            .map(|&v| d.viewer(v).unwrap().frames().len())
            .collect::<Vec<_>>()
    );
}
