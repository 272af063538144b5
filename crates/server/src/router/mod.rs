//! The SFU's shape: streams, their tracks (with the packet history every viewer shares) and
//! who watches them. The media thread owns it; the per-packet work is in `engine::media`.

pub mod history;
pub mod output;

use std::time::{Duration, Instant, SystemTime};

use self::history::History;
use crate::sources::{Codec, FilePlayer};

/// Enough packets for ≥ 1 s of 8 Mbit/s video (NACK history) and a 2 s GOP at 4 Mbit/s.
const VIDEO_HISTORY: usize = 1024;
/// Audio needs no GOP cache; 1 s of 20 ms packets is 50.
const AUDIO_HISTORY: usize = 128;

/// One track of a stream.
#[derive(Debug)]
pub struct Track {
    /// Its codec.
    pub codec: Codec,
    /// Its recent packets.
    pub history: History,
    /// Packets and bytes received from the source, for the API's bitrate.
    pub bytes: u64,
}

impl Track {
    /// An empty track.
    pub fn new(codec: Codec) -> Self {
        let capacity = if codec.is_video() {
            VIDEO_HISTORY
        } else {
            AUDIO_HISTORY
        };
        Track {
            codec,
            history: History::new(capacity),
            bytes: 0,
        }
    }
}

/// Where a stream's media comes from.
#[derive(Debug)]
pub enum Source {
    /// A file (or the built-in sample) played in a loop.
    File(FilePlayer),
}

/// A stream: a source, its tracks and its viewers.
#[derive(Debug)]
pub struct Stream {
    /// Where the media comes from.
    pub source: Source,
    /// Its tracks, in the source's order.
    pub tracks: Vec<Track>,
    /// Sessions watching it.
    pub viewers: Vec<u64>,
    /// When it started.
    pub since: SystemTime,
    /// Bitrate measurement: bytes at the start of the current window.
    window: (Instant, u64, u64),
}

impl Stream {
    /// A file stream.
    pub fn file(player: FilePlayer, now: Instant) -> Self {
        let tracks = player
            .tracks
            .iter()
            .map(|t| Track::new(t.track().codec))
            .collect();
        Stream {
            source: Source::File(player),
            tracks,
            viewers: Vec::new(),
            since: SystemTime::now(),
            window: (now, 0, 0),
        }
    }

    /// Incoming bits per second over the last few seconds.
    pub fn bitrate(&mut self, now: Instant) -> u64 {
        let total: u64 = self.tracks.iter().map(|t| t.bytes).sum();
        let (start, base, last) = self.window;
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= Duration::from_secs(2) {
            let rate = (total - base) * 8 * 1000 / elapsed.as_millis().max(1) as u64;
            self.window = (now, total, rate);
            rate
        } else {
            last
        }
    }
}
