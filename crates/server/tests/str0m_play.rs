//! An independent WebRTC stack as the viewer: str0m (crates.io), in process, plays the
//! built-in `sample` stream over WHEP from `leanrtc` on loopback (ICE with our ICE-lite
//! server, DTLS 1.2, SRTP). The VP8 frames str0m reassembles from our RTP packets must be
//! byte-identical to the frames of the IVF file the stream was made from, and the Opus
//! packets identical to the Ogg file's packets — both files read here from their specs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::files::{SAMPLE_IVF, SAMPLE_OGG, is_vp8_keyframe, ivf_frames, ogg_opus_packets};
use common::http;
use common::server::Server;
use common::viewer::Viewer;

/// For each received item, its index in `reference` (None when it matches nothing).
fn indices(received: &[&[u8]], reference: &[Vec<u8>]) -> Vec<Option<usize>> {
    let mut by_bytes: HashMap<&[u8], usize> = HashMap::new();
    for (i, r) in reference.iter().enumerate() {
        by_bytes.entry(r.as_slice()).or_insert(i);
    }
    received.iter().map(|d| by_bytes.get(d).copied()).collect()
}

/// The longest run of received items that are consecutive items of `reference` (which
/// loops: after the last comes the first).
fn longest_consecutive_run(idx: &[Option<usize>], len: usize) -> usize {
    let (mut best, mut run) = (0, 0);
    let mut prev: Option<usize> = None;
    for &i in idx {
        run = match (prev, i) {
            (Some(p), Some(i)) if (p + 1) % len == i => run + 1,
            (_, Some(_)) => 1,
            (_, None) => 0,
        };
        best = best.max(run);
        prev = i;
    }
    best
}

#[test]
fn str0m_receives_the_ivf_frames_byte_identical() {
    let ivf = ivf_frames(SAMPLE_IVF);
    assert_eq!(ivf.len(), 300);
    let opus = ogg_opus_packets(SAMPLE_OGG);
    assert!(opus.len() > 400, "{} Opus packets", opus.len());

    let server = Server::start(&[]);
    let mut viewer = Viewer::connect(server.http, "sample");
    assert!(viewer.answer.contains("a=ice-lite"), "{}", viewer.answer);

    // 4 s of play at 30 fps is 120 frames; stop early once we have them, give up at 10 s.
    let deadline = viewer.posted_at + Duration::from_secs(10);
    viewer.run_until(deadline, |v| v.frames.len() >= 120 && v.audio.len() >= 100);
    let connected = viewer
        .connected_at
        .unwrap_or_else(|| panic!("str0m never connected; ICE: {:?}", viewer.ice_states));
    let first = viewer.frames.first().expect("no video frame at all");
    eprintln!(
        "str0m: connected {:?} and first frame {:?} after the POST; {} frames, {} audio packets",
        connected - viewer.posted_at,
        first.at - viewer.posted_at,
        viewer.frames.len(),
        viewer.audio.len()
    );

    // A joining viewer starts from a key frame (the GOP cache), not mid-GOP.
    assert!(
        is_vp8_keyframe(&first.data),
        "the first frame is not a key frame"
    );

    let data: Vec<&[u8]> = viewer.frames.iter().map(|f| &f.data[..]).collect();
    let idx = indices(&data, &ivf);
    let unmatched: Vec<usize> = (0..idx.len()).filter(|&i| idx[i].is_none()).collect();
    assert!(
        unmatched.is_empty(),
        "{} of {} received frames match no IVF frame (first at #{}, {} bytes)",
        unmatched.len(),
        idx.len(),
        unmatched[0],
        data[unmatched[0]].len()
    );
    let run = longest_consecutive_run(&idx, ivf.len());
    assert!(
        run >= 60,
        "longest run of consecutive IVF frames: {run}; indices {idx:?}"
    );
    // Every frame came in order, without gaps: the whole receipt is one run.
    assert_eq!(run, idx.len(), "indices {idx:?}");
    assert!(viewer.frames.iter().skip(1).all(|f| f.contiguous));
    // RTP timestamps advance by the file's 1/30 s per frame (90 kHz clock, RFC 7741 §4.1).
    for w in viewer.frames.windows(2) {
        assert_eq!(w[1].rtp_time - w[0].rtp_time, 3000, "frame timestamps");
    }

    let audio: Vec<&[u8]> = viewer.audio.iter().map(|(d, _)| &d[..]).collect();
    let aidx = indices(&audio, &opus);
    let arun = longest_consecutive_run(&aidx, opus.len());
    assert!(
        arun >= 50,
        "longest run of consecutive Ogg Opus packets: {arun} of {}; indices {aidx:?}",
        audio.len()
    );

    assert_eq!(http::delete(server.http, &viewer.location), 200);
    // A second DELETE finds nothing.
    assert_eq!(http::delete(server.http, &viewer.location), 404);
}

/// 5 % of the server's datagrams dropped (`--test-send-loss`): str0m negotiated RTX
/// (RFC 4588), so the server answers its NACKs on the RTX SSRC and payload type, and str0m
/// repairs the frames from them — every frame arrives, in order.
#[test]
fn str0m_gets_retransmissions_over_rtx_through_5_percent_loss() {
    let ivf = ivf_frames(SAMPLE_IVF);
    let server = Server::start(&["--test-send-loss", "5"]);
    let mut viewer = Viewer::connect_counting(server.http, "sample");
    let rtx_pt: u8 = viewer
        .answer
        .lines()
        .find_map(|l| {
            let (pt, codec) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
            codec.starts_with("rtx/").then(|| pt.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no RTX in the answer:\n{}", viewer.answer));
    assert!(
        viewer.answer.contains("a=ssrc-group:FID "),
        "{}",
        viewer.answer
    );
    viewer.run_until(viewer.posted_at + Duration::from_secs(10), |v| {
        v.frames.len() >= 150
    });
    let rtx = viewer.rtp_by_pt.get(&rtx_pt).copied().unwrap_or(0);
    let resent = http::metric(server.http, "leanrtc_nack_resent_total");
    eprintln!(
        "str0m: {} frames; RTP by payload type {:?}; the server resent {resent}",
        viewer.frames.len(),
        viewer.rtp_by_pt
    );
    assert!(viewer.frames.len() >= 150, "{} frames", viewer.frames.len());
    assert!(
        rtx > 0,
        "no RTX packet reached str0m: {:?}",
        viewer.rtp_by_pt
    );
    let data: Vec<&[u8]> = viewer.frames.iter().map(|f| &f.data[..]).collect();
    let idx = indices(&data, &ivf);
    assert!(
        idx.iter().all(Option::is_some),
        "frames that match no IVF frame"
    );
    // Repaired: most frames follow their predecessor (a retransmission lost too, 1 in 400,
    // or one past str0m's wait may leave a gap).
    let contiguous = viewer.frames.iter().filter(|f| f.contiguous).count();
    assert!(
        contiguous * 100 >= viewer.frames.len() * 95,
        "{contiguous} of {} frames contiguous",
        viewer.frames.len()
    );
    assert_eq!(http::delete(server.http, &viewer.location), 200);
}

/// Ten str0m viewers at once all play; also prints the server's CPU time per viewer over a
/// steady window (with `LEANRTC_BIN=target/release/leanrtc` that is the release figure;
/// tests/browser/first-frame.sh runs it so).
#[test]
fn ten_str0m_viewers_at_once() {
    const VIEWERS: u32 = 10;
    const WINDOW: Duration = Duration::from_secs(4);
    let server = Server::start(&[]);
    // The server's own cost with nobody watching (the file is paced either way).
    let (c0, t0) = (server.cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let idle = (server.cpu_time() - c0).as_secs_f64() / t0.elapsed().as_secs_f64();

    let http_addr = server.http;
    let end = Instant::now() + Duration::from_secs(14);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..VIEWERS)
        .map(|_| {
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                let mut v = Viewer::connect(http_addr, "sample");
                v.run_until(end, |v| v.frames.len() >= 10);
                let _ = ready_tx.send(());
                v.run_until(end, |_| false);
                v
            })
        })
        .collect();
    for i in 0..VIEWERS {
        ready
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("only {i} of {VIEWERS} viewers play ({e})"));
    }
    let (c1, t1) = (server.cpu_time(), Instant::now());
    std::thread::sleep(WINDOW);
    let busy = (server.cpu_time() - c1).as_secs_f64() / t1.elapsed().as_secs_f64();
    assert!(Instant::now() < end, "the window outlasted the viewers");
    eprintln!(
        "server CPU ({}): idle {:.2} % of a core; {VIEWERS} str0m viewers {:.2} %; \
         per viewer {:.3} % (/proc schedstat over {WINDOW:?})",
        common::server::binary().display(),
        idle * 100.0,
        busy * 100.0,
        (busy - idle).max(0.0) * 100.0 / f64::from(VIEWERS)
    );

    let viewers: Vec<Viewer> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, v) in viewers.iter().enumerate() {
        let since = v
            .connected_at
            .unwrap_or_else(|| panic!("viewer {i} never connected"));
        let frames = v.frames_since(since);
        let seconds = (end - since).as_secs_f64();
        // 30 fps; a loaded CI machine gets some slack.
        assert!(
            frames as f64 >= seconds * 30.0 * 0.8,
            "viewer {i}: {frames} frames in {seconds:.1} s"
        );
        assert!(!v.audio.is_empty(), "viewer {i}: no audio");
        assert_eq!(http::delete(http_addr, &v.location), 200);
    }
}
