//! Where streams come from: files in `--media-dir` (or the built-in sample), and live
//! publishers (WHIP).

pub mod file;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rtc::rand::Rng;

use self::file::{FileError, FileTrack, Produced, TrackPlayer};

/// The codecs the server carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// VP8 video (RFC 7741).
    Vp8,
    /// H.264 video (RFC 6184), packetization-mode 1.
    H264,
    /// Opus audio (RFC 7587).
    Opus,
}

impl Codec {
    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Vp8 | Codec::H264 => 90_000,
            Codec::Opus => 48_000,
        }
    }

    /// True for video.
    pub fn is_video(self) -> bool {
        !matches!(self, Codec::Opus)
    }

    /// The payload type our own sources stamp (rewritten per viewer to the negotiated one).
    pub fn default_payload_type(self) -> u8 {
        match self {
            Codec::Vp8 => 96,
            Codec::H264 => 102,
            Codec::Opus => 111,
        }
    }

    /// The RTP timestamp step between two frames, used to continue a viewer's timeline
    /// across a source switch (30 fps video, 20 ms audio).
    pub fn frame_gap(self) -> u32 {
        if self.is_video() { 3000 } else { 960 }
    }

    /// The codec's name as SDP and the API write it.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "VP8",
            Codec::H264 => "H264",
            Codec::Opus => "opus",
        }
    }
}

/// The built-in `sample` stream: a VP8 test pattern with its frame number, and a two-tone
/// Opus signal (see samples/README.md for how they were made).
const SAMPLE_IVF: &[u8] = include_bytes!("../../../../samples/sample-vp8-640x360-30fps-10s.ivf");
const SAMPLE_OGG: &[u8] = include_bytes!("../../../../samples/sample-opus-48k-10s.ogg");

/// The tracks of one file stream, before playing (a clone shares the tracks' memory).
#[derive(Debug, Clone)]
pub struct FileStream {
    /// VP8 from `NAME.ivf`.
    pub video: Option<FileTrack>,
    /// Opus from `NAME.ogg`.
    pub audio: Option<FileTrack>,
}

/// The built-in `sample` stream.
pub fn builtin_sample() -> Result<BTreeMap<String, FileStream>, FileError> {
    let video = FileTrack::from_ivf(Path::new("<built-in sample.ivf>"), SAMPLE_IVF.to_vec())?;
    let audio = FileTrack::from_ogg(Path::new("<built-in sample.ogg>"), SAMPLE_OGG.to_vec())?;
    Ok(BTreeMap::from([(
        "sample".to_owned(),
        FileStream {
            video: Some(video),
            audio: Some(audio),
        },
    )]))
}

/// Frame rate for H.264 Annex B files, which carry no timing of their own.
const H264_FPS: u32 = 30;

/// Every `NAME.ivf` (VP8), `NAME.h264` (H.264 Annex B, 30 fps) and `NAME.ogg` (Opus) in
/// `dir`, grouped by stem. Any unreadable or broken file is
/// an error: better to refuse to start than to fail a viewer later.
pub fn scan_media_dir(dir: &Path) -> Result<BTreeMap<String, FileStream>, FileError> {
    let io = |source| FileError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut streams: BTreeMap<String, FileStream> = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let ext = ext.to_ascii_lowercase();
        if !matches!(ext.as_str(), "ivf" | "h264" | "264" | "ogg") {
            continue;
        }
        let data = std::fs::read(&path).map_err(|source| FileError::Io {
            path: path.clone(),
            source,
        })?;
        let stream = streams.entry(stem.to_owned()).or_insert(FileStream {
            video: None,
            audio: None,
        });
        if ext == "ivf" {
            stream.video = Some(FileTrack::from_ivf(&path, data)?);
        } else if ext == "h264" || ext == "264" {
            stream.video = Some(FileTrack::from_h264(&path, data, H264_FPS)?);
        } else {
            stream.audio = Some(FileTrack::from_ogg(&path, data)?);
        }
    }
    // An empty folder (or a wrong one) would start a server with nothing to play.
    if streams.is_empty() {
        return Err(FileError::Invalid {
            path: dir.to_owned(),
            reason: "holds no NAME.ivf, NAME.h264 or NAME.ogg file: no stream to serve".into(),
        });
    }
    Ok(streams)
}

/// A file stream being played: its tracks paced from one start instant.
#[derive(Debug)]
pub struct FilePlayer {
    start: Instant,
    /// The players, video first when there is one.
    pub tracks: Vec<TrackPlayer>,
}

impl FilePlayer {
    /// Starts playing `stream` at `now`, numbering each track from random values.
    pub fn start(stream: FileStream, now: Instant, rng: &mut Rng) -> Result<Self, FileError> {
        let loop_len = [&stream.video, &stream.audio]
            .into_iter()
            .flatten()
            .map(FileTrack::duration)
            .max()
            .unwrap_or(Duration::ZERO);
        let mut tracks = Vec::new();
        for track in [stream.video, stream.audio].into_iter().flatten() {
            tracks.push(TrackPlayer::new(
                track,
                loop_len,
                rng.u32(),
                rng.u32() as u16,
                rng.u32(),
                rng.u32() as u16,
            )?);
        }
        Ok(FilePlayer { start: now, tracks })
    }

    /// Produces every packet due by `now`, tagged with its track's index.
    pub fn play(&mut self, now: Instant, mut emit: impl FnMut(usize, Produced<'_>)) {
        let elapsed = now.saturating_duration_since(self.start);
        for (index, track) in self.tracks.iter_mut().enumerate() {
            track.play(elapsed, |p| emit(index, p));
        }
    }

    /// When the next packet of any track is due.
    pub fn next_due(&self) -> Instant {
        let next = self
            .tracks
            .iter()
            .map(TrackPlayer::next_due)
            .min()
            .unwrap_or(Duration::MAX);
        self.start
            .checked_add(next)
            .unwrap_or(self.start + Duration::from_secs(86_400))
    }

    /// The RTP timestamp track `index` would stamp at `now` (for Sender Reports).
    pub fn rtp_timestamp_at(&self, index: usize, now: Instant) -> Option<u32> {
        Some(
            self.tracks
                .get(index)?
                .rtp_timestamp_at(now.saturating_duration_since(self.start)),
        )
    }
}

#[cfg(test)]
mod tests;
