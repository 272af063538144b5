//! One publish session's recording: its audio and video in one Matroska file — WebM for
//! VP8 + Opus, `.mkv` when the video is H.264.
//!
//! The file is created at the first video keyframe (or the first audio packet when the
//! session has no video), never before: a WHIP POST that sends no media opens nothing. That
//! frame is the file's time 0; audio from before it is left out. One video and one audio
//! track are recorded (a WHIP session has no more); any further input is ignored.
//!
//! Playable after a kill: the writer's bytes reach the file at least every flush interval
//! (and whenever they pass [`WRITE_AT`]); sizes that are known only later (each Cluster's,
//! the Segment's) are "unknown" until patched, which Matroska readers accept, so a killed
//! process loses only what was not yet written. `finish` writes the Duration and the sizes
//! and fsyncs, for a power cut after a clean end.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use media::h264;
use media::mkv::{DocType, MkvTrack, MkvWriter};
use media::oggopus::OpusHead;
use media::vp8;

use super::RecordCodec;
use super::name;
use super::track::{Frame, Track};

/// Buffered bytes past which they are written out before the next flush.
const WRITE_AT: usize = 256 << 10;
/// Pre-skip 0: the first packet we record need not be the encoder's first, and the
/// sender's encoder delay is unknown, so trimming would cut real audio.
const OPUS_HEAD: OpusHead = OpusHead {
    channels: 2,
    pre_skip: 0,
    input_sample_rate: 48_000,
    output_gain: 0,
    mapping_family: 0,
};

/// An open file and its writer.
struct Open {
    path: PathBuf,
    file: File,
    writer: MkvWriter,
    /// Bytes made by the writer and not yet written to the file.
    out: Vec<u8>,
    /// Nanoseconds (on the tracks' clock) of the file's time 0.
    zero: i64,
}

/// What became of a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Taken (written, or not yet a frame, or skipped before the file opened).
    Ok,
    /// It would open the file, but the caller allowed no more open files.
    Refused,
}

/// A recording (see the module documentation).
pub struct Recording {
    stream: String,
    codecs: Vec<RecordCodec>,
    tracks: Vec<Track>,
    /// Index among the file's tracks of each input, `None` for an input not recorded.
    slots: Vec<Option<usize>>,
    /// The video input, if any: its keyframe opens the file.
    video: Option<usize>,
    /// When the first packet of any track arrived: the tracks' clock starts there.
    origin: Option<Instant>,
    open: Option<Open>,
    /// Frames written per file track.
    frames: [u64; 2],
    /// Frames not written: before the file opened, or out of order.
    skipped: u64,
    /// Reused for H.264 access units converted to length-prefixed NAL units.
    avc: Vec<u8>,
}

impl Recording {
    pub fn new(stream: &str, codecs: &[RecordCodec]) -> Self {
        let video = codecs.iter().position(|c| *c != RecordCodec::Opus);
        let audio = codecs.iter().position(|c| *c == RecordCodec::Opus);
        // The file's tracks: video first (if any), then audio.
        let slots = (0..codecs.len())
            .map(|i| match (Some(i) == video, Some(i) == audio) {
                (true, _) => Some(0),
                (_, true) => Some(usize::from(video.is_some())),
                _ => None,
            })
            .collect();
        Recording {
            stream: stream.to_owned(),
            codecs: codecs.to_vec(),
            tracks: codecs.iter().map(|c| Track::new(*c)).collect(),
            slots,
            video,
            origin: None,
            open: None,
            frames: [0; 2],
            skipped: 0,
            avc: Vec::new(),
        }
    }

    /// Whether the file is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Takes a plain RTP packet of input `input` that arrived at `now`. The file is created
    /// in `dir` when this packet completes the frame that starts it and `may_open` is true.
    /// An error (logged) means the file could not be written: the recording has stopped.
    pub fn packet(
        &mut self,
        input: usize,
        now: Instant,
        rtp: &[u8],
        dir: &Path,
        may_open: bool,
    ) -> io::Result<Outcome> {
        let (Some(track), Some(Some(slot))) = (self.tracks.get_mut(input), self.slots.get(input))
        else {
            return Ok(Outcome::Ok);
        };
        let codec = track.codec;
        let origin = *self.origin.get_or_insert(now);
        let Some(frame) = track.push(rtp, now.saturating_duration_since(origin)) else {
            return Ok(Outcome::Ok);
        };
        if self.open.is_none() {
            let starts = match self.video {
                Some(v) => v == input && frame.keyframe,
                None => true,
            };
            if !starts {
                self.skipped += 1;
                return Ok(Outcome::Ok);
            }
            if !may_open {
                self.skipped += 1;
                return Ok(Outcome::Refused);
            }
            let Some(open) = create(dir, &self.stream, &self.codecs, self.video, &frame) else {
                self.skipped += 1;
                return Ok(Outcome::Ok);
            };
            self.open = Some(open);
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(Outcome::Ok);
        };
        let Ok(time_ms) = u64::try_from((frame.time_ns - open.zero).div_euclid(1_000_000)) else {
            // Audio from before the first keyframe.
            self.skipped += 1;
            return Ok(Outcome::Ok);
        };
        let data = if codec == RecordCodec::H264 {
            self.avc.clear();
            h264::to_length_prefixed(frame.data, &mut self.avc);
            &self.avc
        } else {
            frame.data
        };
        match open
            .writer
            .write_block(*slot, time_ms, frame.keyframe, data, &mut open.out)
        {
            Ok(()) => self.frames[*slot] += 1,
            // The sender's clock went back: the file's time cannot.
            Err(_) => self.skipped += 1,
        }
        if open.out.len() >= WRITE_AT {
            self.flush()?;
        }
        Ok(Outcome::Ok)
    }

    /// Writes buffered bytes and the sizes that became known to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let result = open.file.write_all(&open.out).and_then(|()| {
            open.writer
                .take_patches()
                .iter()
                .try_for_each(|p| open.file.write_all_at(&p.bytes, p.offset))
        });
        open.out.clear();
        result.map_err(|e| {
            tracing::error!(path = %open.path.display(), "recording stopped: {e}");
            e
        })
    }

    /// Ends the file cleanly (Duration, sizes), syncs it to disk and logs what it holds.
    pub fn finish(mut self) {
        let Some(open) = self.open.as_mut() else {
            if self.origin.is_some() {
                tracing::info!(stream = %self.stream, skipped = self.skipped, "nothing recorded: no keyframe came");
            }
            return;
        };
        open.writer.finish(&mut open.out);
        if self.flush().is_err() {
            return;
        }
        let Some(open) = self.open.take() else {
            return;
        };
        if let Err(e) = open.file.sync_all() {
            tracing::error!(path = %open.path.display(), "recording not synced: {e}");
            return;
        }
        let path = open.path.display();
        let duration_s = open.writer.duration_ms() as f64 / 1000.0;
        let bytes = open.writer.len();
        let (video, audio) = match self.video {
            Some(_) => (self.frames[0], self.frames[1]),
            None => (0, self.frames[0]),
        };
        let incomplete: u64 = self.tracks.iter().map(Track::incomplete).sum();
        let skipped = self.skipped;
        tracing::info!(
            %path, duration_s, video, audio, bytes, incomplete, skipped, "recorded"
        );
    }
}

/// Creates the file whose first frame is `first` (a video keyframe, or audio for a session
/// without video); `None` (logged) when the keyframe lacks what the track header needs or the
/// file cannot be created.
fn create(
    dir: &Path,
    stream: &str,
    codecs: &[RecordCodec],
    video: Option<usize>,
    first: &Frame<'_>,
) -> Option<Open> {
    let mut specs = Vec::new();
    let mut doc = DocType::Webm;
    match video.map(|v| codecs[v]) {
        Some(RecordCodec::Vp8) => {
            let (width, height) = vp8::keyframe_size(first.data)?;
            specs.push(MkvTrack::Vp8 { width, height });
        }
        Some(RecordCodec::H264) => {
            // Browsers send SPS and PPS with every IDR; one without them cannot start.
            let (sps, pps) = h264::parameter_sets(first.data)?;
            let (width, height) = h264::sps_size(sps)?;
            let avcc = h264::avcc(sps, pps)?;
            specs.push(MkvTrack::Avc {
                width,
                height,
                avcc,
            });
            doc = DocType::Matroska;
        }
        _ => {}
    }
    if codecs.contains(&RecordCodec::Opus) {
        specs.push(MkvTrack::Opus {
            channels: OPUS_HEAD.channels,
            head: OPUS_HEAD.to_bytes(),
        });
    }
    let ext = match doc {
        DocType::Webm => "webm",
        DocType::Matroska => "mkv",
    };
    let (path, file) = match name::create(dir, stream, ext, SystemTime::now()) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(%stream, "cannot start recording: {e}");
            return None;
        }
    };
    tracing::info!(path = %path.display(), "recording");
    let mut out = Vec::new();
    let writer = MkvWriter::new(doc, &specs, &mut out);
    Some(Open {
        path,
        file,
        writer,
        out,
        zero: first.time_ns,
    })
}
