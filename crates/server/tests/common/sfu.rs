//! Shorthands for the SFU tests, which drive publishers and viewers of our own client role
//! (`bench`) against the server.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bench::{ClientId, Driver, Source, frame_hash};

use super::files::{SAMPLE_IVF, ivf_frames};
use super::repo_root;

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
