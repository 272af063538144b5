//! The SFU's shape: streams, their tracks (with the packet history every viewer shares) and
//! who watches them. The media thread owns it; the per-packet work is in `engine::media`.

pub mod clock;
pub mod congestion;
pub mod history;
pub mod layers;
pub mod output;
pub mod replay;
pub mod resend;
pub mod simulcast;

use std::time::{Duration, Instant, SystemTime};

use self::clock::SourceClock;
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
    /// Live sources: the source's RTP clock, for Sender Reports.
    pub clock: SourceClock,
    /// Live sources: the newest frame seen, to mark it a keyframe from any of its packets.
    pub frame: Option<Frame>,
    /// Simulcast: the layer of a video source this track carries (`None`: not a layer).
    pub layer: Option<TrackLayer>,
    /// When the source last delivered a packet (a layer silent for a while is not chosen).
    pub last_packet: Option<Instant>,
    /// Bitrate measurement: when the window started and `bytes` then; the last rate (bit/s).
    rate_window: Option<(Instant, u64)>,
    /// The bitrate of the last complete window, in bits per second.
    pub rate: u64,
    /// The last [`RECENT`] windows' bitrates (a ring) and how many windows were measured.
    recent: [u64; RECENT],
    windows: usize,
}

/// Windows in [`Track::recent_rate`]: 2 s, so one keyframe of a GOP of 2 s or more does not
/// swing it as it swings one window's rate.
const RECENT: usize = 4;

/// One simulcast layer (RFC 8853) of a live video source, as a track of its own: its own
/// history, GOP cache and keyframes. The layers of one source share a `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackLayer {
    /// The index of the group's first track: what viewers' outputs name it by.
    pub group: usize,
    /// Its rid (RFC 8851), as the publisher named it.
    pub rid: String,
    /// Width and height from its latest keyframe, once one came.
    pub size: Option<(u16, u16)>,
}

/// The newest frame of a live track.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Its source SSRC and RTP timestamp.
    pub ssrc: u32,
    /// Its RTP timestamp.
    pub ts: u32,
    /// History index of its first packet to arrive.
    pub start: u64,
    /// Whether one of its packets showed it is a keyframe.
    pub keyframe: bool,
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
            clock: SourceClock::new(codec.clock_rate()),
            frame: None,
            layer: None,
            last_packet: None,
            rate_window: None,
            rate: 0,
            recent: [0; RECENT],
            windows: 0,
        }
    }

    /// A track for simulcast layer `rid` of group `group`.
    pub fn layer(codec: Codec, group: usize, rid: &str) -> Self {
        Track {
            layer: Some(TrackLayer {
                group,
                rid: rid.to_owned(),
                size: None,
            }),
            ..Track::new(codec)
        }
    }

    /// Updates [`Track::rate`] once a window of [`RATE_WINDOW`] is complete; a source
    /// silent for a window reads 0.
    pub fn update_rate(&mut self, now: Instant) {
        let (start, base) = *self.rate_window.get_or_insert((now, self.bytes));
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            let bits = (self.bytes - base) * 8;
            self.rate = bits * 1000 / (elapsed.as_millis().max(1) as u64);
            self.rate_window = Some((now, self.bytes));
            self.recent[self.windows % RECENT] = self.rate;
            self.windows += 1;
        }
    }

    /// The mean bitrate of the last [`RECENT`] windows (fewer at the start), bit/s.
    pub fn recent_rate(&self) -> u64 {
        let n = self.windows.min(RECENT);
        self.recent[..n].iter().sum::<u64>() / n.max(1) as u64
    }

    /// Whether its source sent anything within [`RATE_WINDOW`] × 2.
    pub fn is_active(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < RATE_WINDOW * 2)
    }
}

/// The window over which each track's bitrate is measured (layer choice, `/api/streams`).
pub const RATE_WINDOW: Duration = Duration::from_millis(500);

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
    /// Another shard's live stream, copied here for this shard's viewers: its packets and
    /// Sender Reports arrive as messages from the shard that has the publisher.
    Mirror {
        /// Last keyframe request passed on to that shard (rate-limited here too).
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
    /// Whether it shows its frame is a keyframe (first of its frame to do so).
    pub keyframe_start: bool,
    /// History index of the first packet of its frame to arrive: a viewer waiting for a
    /// keyframe starts there (an AUD, SEI or reordered packet may have come before this one).
    pub frame_start: u64,
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
    /// Live: our NTP time minus the publisher's, from its last Sender Report (RFC 5905
    /// 32.32, wrapping).
    ntp_offset: Option<u64>,
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

    /// This shard's copy of another shard's live stream.
    pub fn mirror(codecs: &[Codec], now: Instant) -> Self {
        let tracks = codecs.iter().map(|&c| Track::new(c)).collect();
        let source = Source::Mirror {
            last_keyframe_request: None,
        };
        Self::new(source, tracks, now)
    }

    /// Whether it is live (published here or on another shard), not a file.
    pub fn is_live(&self) -> bool {
        !matches!(self.source, Source::File(_))
    }

    fn new(source: Source, tracks: Vec<Track>, now: Instant) -> Self {
        Stream {
            source,
            tracks,
            viewers: Vec::new(),
            pending: Vec::new(),
            since: SystemTime::now(),
            ntp_offset: None,
            window: (now, 0, 0),
        }
    }

    /// `file` or `live`.
    pub fn kind(&self) -> &'static str {
        match self.source {
            Source::File(_) => "file",
            Source::Live { .. } | Source::Mirror { .. } => "live",
        }
    }

    /// The source RTP timestamp of track `index` at `now`, which is `ntp` on our NTP clock
    /// (for Sender Reports). Files have their own exact clock; a live track maps through its
    /// publisher's Sender Reports once it has them.
    pub fn rtp_timestamp_at(&self, index: usize, now: Instant, ntp: u64) -> Option<u32> {
        match &self.source {
            Source::File(player) => player.rtp_timestamp_at(index, now),
            Source::Live { .. } | Source::Mirror { .. } => {
                let publisher_ntp = self.ntp_offset.map(|o| ntp.wrapping_sub(o));
                self.tracks.get(index)?.clock.rtp_at(now, publisher_ntp)
            }
        }
    }

    /// A live packet from `ssrc` with RTP time `ts` arrived for track `index`.
    pub fn on_packet(&mut self, index: usize, ssrc: u32, ts: u32, now: Instant) {
        if let Some(track) = self.tracks.get_mut(index) {
            track.clock.on_packet(ssrc, ts, now);
        }
    }

    /// The publisher's Sender Report for track `index` (`ssrc` at its NTP time `ntp` was at
    /// RTP time `rtp`) arrived at `our_ntp`. One offset between the two NTP clocks serves
    /// every track, so the tracks' alignment is the publisher's own.
    pub fn on_sender_report(&mut self, index: usize, ssrc: u32, ntp: u64, rtp: u32, our_ntp: u64) {
        if let Some(track) = self.tracks.get_mut(index) {
            track.clock.on_sender_report(ssrc, ntp, rtp);
            self.ntp_offset = Some(our_ntp.wrapping_sub(ntp));
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
