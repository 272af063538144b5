//! Loss on the publisher's link: our client publishes the sample IVF file and drops 5 % of
//! its RTP transmissions (retransmissions too, deterministically). The server must NACK the
//! gaps, the publisher resends from its history, and the viewers still decode ≥ 90 % of the
//! source's frame rate — counting frames that are complete and decodable (a keyframe, or every
//! frame since one arrived whole), each of them a frame of the IVF file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bench::{Driver, Loss, PublisherConfig};
use common::http::metric;
use common::server::Server;
use common::sfu::{await_publishing, sample_frame_index, sample_source, view_until_first_frame};

const VIEWERS: usize = 5;
const MEASURE: Duration = Duration::from_secs(10);

#[test]
fn five_percent_loss_on_the_publishers_link_is_repaired() {
    let (index, _) = sample_frame_index();
    let server = Server::start(&[]);
    let mut d = Driver::new().unwrap();
    let mut config = PublisherConfig::new(sample_source());
    config.loss = Some(Loss {
        percent: 5.0,
        seed: 0x5eed,
    });
    let publisher = d.publish(server.http, "lossy", config).unwrap();
    await_publishing(&mut d, publisher, "publisher");
    let viewers = view_until_first_frame(&mut d, &server, "lossy", VIEWERS);

    let frames_sent = |d: &Driver| d.publisher(publisher).unwrap().stats.frames;
    let s0 = frames_sent(&d);
    let f0: Vec<usize> = viewers
        .iter()
        .map(|&v| d.viewer(v).unwrap().frames().len())
        .collect();
    let nacks0 = metric(server.http, "leanrtc_nacks_sent_total");
    let t0 = Instant::now();
    d.run_for(MEASURE);
    let elapsed = t0.elapsed().as_secs_f64();
    let source_fps = (frames_sent(&d) - s0) as f64 / elapsed;
    let stats = &d.publisher(publisher).unwrap().stats;
    eprintln!("publisher: {source_fps:.1} fps; {stats:?}");
    assert!(source_fps > 25.0, "the source ran at {source_fps:.1} fps");
    assert!(
        stats.dropped > 20 && stats.retransmitted > 20,
        "loss was injected and repaired: {stats:?}"
    );
    let nacks = metric(server.http, "leanrtc_nacks_sent_total") - nacks0;
    assert!(nacks >= 20.0, "the server NACKed only {nacks} packets");

    for (i, &v) in viewers.iter().enumerate() {
        let viewer = d.viewer(v).unwrap();
        let window = &viewer.frames()[f0[i]..];
        let decodable = window.iter().filter(|f| f.decodable).count();
        let fps = decodable as f64 / elapsed;
        eprintln!(
            "viewer {i}: {fps:.1} decodable fps ({} frames, {} dropped by the depacketizer), \
             reorder (given up, late) {:?}, NACKed {}, PLIs {}",
            window.len(),
            viewer.frames_dropped(),
            viewer.reorder_counts(),
            viewer.nacks_sent,
            viewer.plis_sent
        );
        assert!(
            fps >= 0.9 * source_fps,
            "viewer {i} decoded {fps:.1} fps of the source's {source_fps:.1}"
        );
        for f in viewer.frames() {
            assert!(
                index.contains_key(&f.hash),
                "viewer {i}: a frame that is not in the file"
            );
        }
    }
}
