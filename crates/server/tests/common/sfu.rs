//! Shorthands for the SFU tests, which drive publishers and viewers of our own client role
//! (`bench`) against the server.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bench::{ClientId, Driver, PublisherConfig, Source, ViewerConfig, frame_hash};

use super::files::{SAMPLE_IVF, ivf_frames};
use super::http::{metric, request};
use super::repo_root;
use super::server::Server;

/// The sample IVF file as a publisher's source.
pub fn sample_source() -> Source {
    let bytes = std::fs::read(repo_root().join(SAMPLE_IVF)).expect("read the sample IVF");
    Source::ivf(&bytes).expect("the sample IVF parses")
}

/// The sample IVF's frames (read from the spec, not with our `media` crate) by hash: index
/// in the file.
pub fn sample_frame_index() -> (HashMap<u64, usize>, usize) {
    let frames = ivf_frames(SAMPLE_IVF);
    let mut by_hash = HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        by_hash.entry(frame_hash(f)).or_insert(i);
    }
    (by_hash, frames.len())
}

/// Drives `d` until `done`, or panics after `limit` saying `what` did not happen.
pub fn wait_for(d: &mut Driver, limit: Duration, what: &str, done: impl FnMut(&Driver) -> bool) {
    if !d.run_until(Instant::now() + limit, done) {
        panic!("{what} did not happen within {limit:?}");
    }
}

/// Whether a client's peer connection is up.
pub fn connected(d: &Driver, id: ClientId) -> bool {
    d.session(id).is_some_and(|s| s.is_connected())
}

/// Distinct video packets a viewer has received.
pub fn video_unique(d: &Driver, id: ClientId) -> u64 {
    d.viewer(id).and_then(|v| v.video()).map_or(0, |s| s.unique)
}

/// RTP packets a publisher has made.
pub fn published(d: &Driver, id: ClientId) -> u64 {
    d.publisher(id).map_or(0, |p| p.stats.packets)
}

/// Waits (10 s at most) until publisher `p` is connected and has sent media.
pub fn await_publishing(d: &mut Driver, p: ClientId, who: &str) {
    wait_for(
        d,
        Duration::from_secs(10),
        &format!("{who} connected"),
        |d| connected(d, p) && published(d, p) > 0,
    );
}

/// Starts `n` viewers of `stream` and waits (10 s at most) until each has its first frame.
pub fn view_until_first_frame(
    d: &mut Driver,
    server: &Server,
    stream: &str,
    n: usize,
) -> Vec<ClientId> {
    let viewers: Vec<ClientId> = (0..n)
        .map(|_| {
            d.view(server.http, stream, ViewerConfig::default())
                .unwrap()
        })
        .collect();
    wait_for(
        d,
        Duration::from_secs(10),
        "every viewer's first frame",
        |d| {
            viewers
                .iter()
                .all(|&v| d.viewer(v).is_some_and(|v| !v.frames().is_empty()))
        },
    );
    viewers
}

/// Drives `d` for `total`, calling `act` every `every` (the first time at once).
pub fn during(d: &mut Driver, total: Duration, every: Duration, mut act: impl FnMut(&mut Driver)) {
    let end = Instant::now() + total;
    while Instant::now() < end {
        act(d);
        let next = (Instant::now() + every).min(end);
        d.run_until(next, |_| false);
    }
}

/// A snapshot of what a publisher sent and its viewers received, to compare two moments.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    published: u64,
    frames_sent: u64,
    unique: Vec<u64>,
    frames: Vec<usize>,
}

/// What each viewer got between two snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Reception {
    /// Distinct video packets received / packets the publisher made.
    pub packet_ratio: f64,
    /// Decodable frames per second.
    pub fps: f64,
    /// The publisher's frames per second.
    pub source_fps: f64,
}

impl Snapshot {
    /// Takes one.
    pub fn take(d: &Driver, publisher: ClientId, viewers: &[ClientId]) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            published: published(d, publisher),
            frames_sent: d.publisher(publisher).map_or(0, |p| p.stats.frames),
            unique: viewers.iter().map(|&v| video_unique(d, v)).collect(),
            frames: viewers
                .iter()
                .map(|&v| d.viewer(v).map_or(0, |v| v.frames().len()))
                .collect(),
        }
    }

    /// Each viewer's reception since the snapshot.
    pub fn since(&self, d: &Driver, publisher: ClientId, viewers: &[ClientId]) -> Vec<Reception> {
        let secs = self.at.elapsed().as_secs_f64();
        let sent = published(d, publisher)
            .saturating_sub(self.published)
            .max(1);
        let frames_sent = d.publisher(publisher).map_or(0, |p| p.stats.frames) - self.frames_sent;
        viewers
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let decodable = d.viewer(v).map_or(0, |v| {
                    v.frames()
                        .iter()
                        .skip(self.frames[i])
                        .filter(|f| f.decodable)
                        .count()
                });
                Reception {
                    packet_ratio: (video_unique(d, v) - self.unique[i]) as f64 / sent as f64,
                    fps: decodable as f64 / secs,
                    source_fps: frames_sent as f64 / secs,
                }
            })
            .collect()
    }
}

/// Asserts that every viewer got ≥ 95 % of the packets and ≥ 90 % of the frame rate.
pub fn assert_undisturbed(what: &str, got: &[Reception]) {
    for (i, r) in got.iter().enumerate() {
        assert!(
            r.packet_ratio >= 0.95 && r.fps >= 0.9 * r.source_fps,
            "{what}: viewer {i} got {:.1} % of the packets and {:.1} of {:.1} fps",
            100.0 * r.packet_ratio,
            r.fps,
            r.source_fps
        );
    }
}

/// The bad-input tests of one file run one at a time (they measure rates).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A server with a synthetic publisher of our client (600 kbit/s, 30 fps, a keyframe every
/// 2 s) on `target` and viewers that have their first frame: the stage of the bad-input tests.
#[derive(Debug)]
pub struct Setup {
    /// The server.
    pub server: Server,
    /// The clients.
    pub d: Driver,
    /// The publisher.
    pub p: ClientId,
    /// The viewers.
    pub viewers: Vec<ClientId>,
    /// The publisher's SSRC, which its synthetic frames carry.
    pub origin: u32,
    _lock: MutexGuard<'static, ()>,
}

impl Setup {
    /// Starts it all with `viewers` viewers and checks 2 s of undisturbed play.
    pub fn start(viewers: usize) -> Setup {
        let lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let server = Server::start(&[]);
        let mut d = Driver::new().unwrap();
        let source = Source::synthetic(600_000, 30);
        let p = d
            .publish(server.http, "target", PublisherConfig::new(source))
            .unwrap();
        await_publishing(&mut d, p, "publisher");
        let viewers = view_until_first_frame(&mut d, &server, "target", viewers);
        let origin = d.publisher(p).unwrap().ssrc();
        let base = Snapshot::take(&d, p, &viewers);
        d.run_for(Duration::from_secs(2));
        assert_undisturbed("baseline", &base.since(&d, p, &viewers));
        Setup {
            server,
            d,
            p,
            viewers,
            origin,
            _lock: lock,
        }
    }

    /// A counter of `GET /metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        metric(self.server.http, name)
    }

    /// The publisher's video payload type.
    pub fn video_pt(&self) -> u8 {
        self.d.session(self.p).unwrap().negotiated().media[0].codecs[0].pt
    }

    /// Runs `act` every 100 ms for `total`; asserts that the `watched` viewers were not
    /// disturbed and saw only the publisher's frames, and that the server still serves.
    pub fn phase(
        &mut self,
        total: Duration,
        what: &str,
        watched: &[ClientId],
        act: impl FnMut(&mut Driver),
    ) {
        let snap = Snapshot::take(&self.d, self.p, watched);
        during(&mut self.d, total, Duration::from_millis(100), act);
        let got = snap.since(&self.d, self.p, watched);
        eprintln!("{what}: {got:?}");
        assert_undisturbed(what, &got);
        only_from(&self.d, watched, self.origin, what);
        let res = request(self.server.http, "GET", "/api/streams", &[], b"");
        assert_eq!(res.unwrap().status, 200, "the server still serves");
    }
}

/// Every frame each viewer reassembled came from `origin` (by the stamp synthetic frames
/// carry), and each viewer saw one SSRC.
pub fn only_from(d: &Driver, viewers: &[ClientId], origin: u32, what: &str) {
    for (i, &v) in viewers.iter().enumerate() {
        let viewer = d.viewer(v).unwrap();
        let strangers = (viewer.frames().iter())
            .filter(|f| f.stamp.is_none_or(|s| s.origin != origin))
            .count();
        assert_eq!(
            strangers, 0,
            "{what}: viewer {i} shows frames of another source"
        );
        assert_eq!(
            viewer.ssrcs.len(),
            1,
            "{what}: viewer {i}: {:?}",
            viewer.ssrcs
        );
    }
}
