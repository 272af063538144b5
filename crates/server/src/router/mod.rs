//! The SFU's shape: streams, their tracks (with the packet history every viewer shares) and
//! who watches them. The media thread owns it; the per-packet work is in `engine::media`.

pub mod history;
pub mod output;
pub mod resend;

use std::time::{Duration, Instant, SystemTime};

use self::history::History;
use crate::sources::{Codec, FilePlayer};

/// Enough packets for ≥ 1 s of 8 Mbit/s video (NACK history) and a 2 s GOP at 4 Mbit/s.
pub const VIDEO_HISTORY: usize = 1024;
/// Audio needs no GOP cache; 1 s of 20 ms packets is 50.
pub const AUDIO_HISTORY: usize = 128;

/// One track of a stream.
#[derive(Debug)]
pub struct Track {
    /// Its codec.
    pub codec: Codec,
    /// Its recent packets.
    pub history: History,
    /// Bytes received from the source, for the API's bitrate.
    pub bytes: u64,
    /// The last source RTP timestamp and when it arrived (live sources: Sender Reports
    /// extrapolate from it).
    pub last_rtp: Option<(u32, Instant)>,
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
            last_rtp: None,
        }
    }

    /// The source RTP timestamp now, extrapolated from the last packet (None before any).
    pub fn rtp_timestamp_at(&self, now: Instant) -> Option<u32> {
        let (ts, at) = self.last_rtp?;
        let elapsed = now.saturating_duration_since(at);
        let units = elapsed.as_micros() * u128::from(self.codec.clock_rate()) / 1_000_000;
        Some(ts.wrapping_add(units as u32))
    }
}

/// Where a stream's media comes from.
#[derive(Debug)]
pub enum Source {
    /// A file (or the built-in sample) played in a loop.
    File(FilePlayer),
    /// A WHIP publisher: its session.
    Live {
        /// The publishing session.
        publisher: u64,
        /// Last keyframe request sent to it (viewers' PLIs are aggregated and rate-limited).
        last_keyframe_request: Option<Instant>,
    },
}

/// A packet stored in a track's history and not yet sent to the viewers.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Its track.
    pub track: usize,
    /// Its index in the track's history.
    pub packet: u64,
    /// Whether it starts a keyframe.
    pub keyframe_start: bool,
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
    /// Packets received since the last fan-out (sent viewer by viewer in one go).
    pub pending: Vec<Pending>,
    /// When it started.
    pub since: SystemTime,
    /// Bitrate measurement: when the window started, bytes then, the last rate.
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
        Self::new(Source::File(player), tracks, now)
    }

    /// A live stream fed by session `publisher`.
    pub fn live(publisher: u64, codecs: &[Codec], now: Instant) -> Self {
        let tracks = codecs.iter().map(|&c| Track::new(c)).collect();
        Self::new(
            Source::Live {
                publisher,
                last_keyframe_request: None,
            },
            tracks,
            now,
        )
    }

    fn new(source: Source, tracks: Vec<Track>, now: Instant) -> Self {
        Stream {
            source,
            tracks,
            viewers: Vec::new(),
            pending: Vec::new(),
            since: SystemTime::now(),
            window: (now, 0, 0),
        }
    }

    /// `file` or `live`.
    pub fn kind(&self) -> &'static str {
        match self.source {
            Source::File(_) => "file",
            Source::Live { .. } => "live",
        }
    }

    /// The source RTP timestamp of track `index` now (for Sender Reports).
    pub fn rtp_timestamp_at(&self, index: usize, now: Instant) -> Option<u32> {
        match &self.source {
            Source::File(player) => player.rtp_timestamp_at(index, now),
            Source::Live { .. } => self.tracks.get(index)?.rtp_timestamp_at(now),
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
