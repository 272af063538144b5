//! A publisher reconnecting under the same name: publisher A (our client, the sample IVF)
//! vanishes without DELETE; while it was live a second POST got 409; after more than 2 s of
//! silence publisher B (new SSRC, sequence numbers, timestamps and PictureIDs of its own)
//! POSTs under the same name and is accepted. The viewers keep their PeerConnections — no new
//! POST, no BYE, one SSRC — and their frames go on: sequence numbers continue without a hole,
//! timestamps keep increasing, the first frame after the switch is a keyframe and its VP8
//! PictureID follows the last one before it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bench::{ClientError, ClientId, Driver, FrameInfo, PublisherConfig};
use common::server::Server;
use common::sfu::{
    await_publishing, connected, sample_frame_index, sample_source, view_until_first_frame,
    wait_for,
};

const VIEWERS: usize = 3;

fn publish(d: &mut Driver, server: &Server) -> Result<ClientId, ClientError> {
    d.publish(server.http, "show", PublisherConfig::new(sample_source()))
}

/// Checks that `b` follows `a` in the viewer's numbering.
fn follows(who: &str, a: &FrameInfo, b: &FrameInfo) {
    assert_eq!(
        b.first_seq,
        a.last_seq.wrapping_add(1),
        "{who}: sequence numbers jump from {} to {}",
        a.last_seq,
        b.first_seq
    );
    let step = b.rtp_timestamp.wrapping_sub(a.rtp_timestamp);
    assert!(
        (1..=900_000).contains(&step),
        "{who}: the timestamp moves by {step} from {} to {}",
        a.rtp_timestamp,
        b.rtp_timestamp
    );
    let (pa, pb) = (a.picture_id.unwrap(), b.picture_id.unwrap());
    assert_eq!(
        pb,
        (pa + 1) & 0x7fff,
        "{who}: PictureID jumps from {pa} to {pb}"
    );
}

#[test]
fn viewers_keep_playing_through_a_publisher_reconnecting_under_the_same_name() {
    let (index, _) = sample_frame_index();
    let server = Server::start(&[]);
    let mut d = Driver::new().unwrap();
    let a = publish(&mut d, &server).unwrap();
    await_publishing(&mut d, a, "publisher A");
    let viewers = view_until_first_frame(&mut d, &server, "show", VIEWERS);
    d.run_for(Duration::from_secs(2));

    // While A is live the name is taken.
    match publish(&mut d, &server) {
        Err(ClientError::Status { status: 409, .. }) => {}
        other => panic!("a second publisher while A is live: {other:?}"),
    }

    // A crashes: no DELETE, no close_notify, nothing more from it.
    let a_ssrc = d.publisher(a).unwrap().ssrc();
    let (a_session, _) = d.forget(a).unwrap();
    let vanished = Instant::now();
    d.run_for(Duration::from_millis(300));
    let before: Vec<usize> = viewers
        .iter()
        .map(|&v| d.viewer(v).unwrap().frames().len())
        .collect();
    d.run_until(vanished + Duration::from_millis(2500), |_| false);

    let b = publish(&mut d, &server).expect("B takes over the silent publisher's name");
    let b_ssrc = d.publisher(b).unwrap().ssrc();
    assert_ne!(a_ssrc, b_ssrc);
    wait_for(
        &mut d,
        Duration::from_secs(10),
        "publisher B connected",
        |d| connected(d, b),
    );
    d.run_for(Duration::from_secs(4));
    drop(a_session);

    for (i, &v) in viewers.iter().enumerate() {
        let who = format!("viewer {i}");
        let session = d.session(v).unwrap();
        assert!(
            session.closed.is_none(),
            "{who}: closed {:?}",
            session.closed
        );
        let viewer = d.viewer(v).unwrap();
        assert!(viewer.bye.is_none(), "{who} got a BYE");
        assert_eq!(viewer.ssrcs.len(), 1, "{who}: {:?}", viewer.ssrcs);
        let frames = viewer.frames();
        let (old, new) = frames.split_at(before[i]);
        assert!(
            new.len() >= 90,
            "{who}: {} frames in 4 s after the switch",
            new.len()
        );
        let (last, first) = (old.last().unwrap(), &new[0]);
        assert!(
            first.at - last.at >= Duration::from_secs(2),
            "{who}: the switch is not where A went silent"
        );
        assert!(first.keyframe, "{who}: the first frame of B is no keyframe");
        // RTP time across the switch follows the wall clock, so the viewer's jitter buffer
        // sees the silence as time passing, not as a burst of late frames.
        let step = f64::from(first.rtp_timestamp.wrapping_sub(last.rtp_timestamp));
        let wall = (first.at - last.at).as_secs_f64() * 90_000.0;
        assert!(
            step > wall * 0.8 && step < wall * 1.2 + 3000.0,
            "{who}: timestamps move {step} over {wall} of wall time at the switch"
        );
        assert_eq!(
            index.get(&first.hash),
            Some(&0),
            "{who}: B starts at frame 0"
        );
        for w in frames.windows(2) {
            follows(&who, &w[0], &w[1]);
        }
        assert!(
            frames
                .iter()
                .all(|f| f.decodable && index.contains_key(&f.hash))
        );
        eprintln!(
            "{who}: {} frames before, {} after; switch seq {} -> {}, ts {} -> {}, pid {:?} -> {:?}",
            old.len(),
            new.len(),
            last.last_seq,
            first.first_seq,
            last.rtp_timestamp,
            first.rtp_timestamp,
            last.picture_id,
            first.picture_id
        );
    }
}
