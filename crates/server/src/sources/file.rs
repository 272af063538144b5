//! File streams: IVF/VP8 and Ogg/Opus read once at start, then paced by their timestamps
//! against a monotonic clock and looped forever with continuous RTP numbering.
//!
//! Pacing is computed from the stream's start instant and integer ticks (`media::pacing`), never
//! by sleeping per frame, so playback does not drift over hours. The video and audio of one
//! stream loop together: both use the longer of the two loop lengths, so they stay aligned.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use media::h264::{self, AccessUnits, H264Payloader};
use media::ivf::IvfReader;
use media::oggopus::OggOpusReader;
use media::pacing::Timeline;
use media::vp8::{self, Vp8Payloader};
use rtc::rtp::RtpHeader;

use super::Codec;

/// A file we cannot serve; reported at start so a bad file never fails later.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The IVF container is broken or truncated.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(path: &Path, reason: impl std::fmt::Display) -> FileError {
    FileError::Invalid {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// One frame (video) or packet (audio) of a file: where its bytes are and when it plays.
#[derive(Debug, Clone)]
struct Unit {
    ts: u64,
    bytes: Range<usize>,
    keyframe: bool,
}

/// The frames of one track of a file, in memory. Cloning shares the memory: every media
/// thread plays the same file from one copy.
#[derive(Debug, Clone)]
pub struct FileTrack {
    /// Its codec.
    pub codec: Codec,
    /// Video width × height from the first keyframe (0 × 0 for audio).
    pub size: (u16, u16),
    data: Arc<[u8]>,
    units: Arc<[Unit]>,
    /// Ticks per second = den / num.
    num: u32,
    den: u32,
    /// From the first to one past the last unit, in ticks.
    span: (u64, u64),
}

impl FileTrack {
    /// Reads every frame of an IVF/VP8 file, failing on anything broken.
    pub fn from_ivf(path: &Path, data: Vec<u8>) -> Result<Self, FileError> {
        let (header, reader) = IvfReader::new(&data).map_err(|e| invalid(path, e))?;
        if &header.fourcc != b"VP80" {
            return Err(invalid(
                path,
                format!(
                    "codec {:?} is not VP8",
                    String::from_utf8_lossy(&header.fourcc)
                ),
            ));
        }
        let mut units = Vec::new();
        let mut size = None;
        for frame in reader {
            let frame = frame.map_err(|e| invalid(path, e))?;
            let start = frame.data.as_ptr() as usize - data.as_ptr() as usize;
            let key = vp8::keyframe_size(frame.data);
            size = size.or(key);
            units.push(Unit {
                ts: frame.timestamp,
                bytes: start..start + frame.data.len(),
                keyframe: key.is_some(),
            });
        }
        if !units.first().is_some_and(|u| u.keyframe) {
            return Err(invalid(path, "the first frame is not a VP8 keyframe"));
        }
        let timestamps: Vec<u64> = units.iter().map(|u| u.ts).collect();
        let timeline =
            Timeline::from_timestamps(&timestamps, header.timebase_num, header.timebase_den)
                .map_err(|e| invalid(path, e))?;
        let first = timestamps.first().copied().unwrap_or(0);
        Ok(FileTrack {
            codec: Codec::Vp8,
            size: size.unwrap_or((header.width, header.height)),
            data: data.into(),
            units: units.into(),
            num: header.timebase_num,
            den: header.timebase_den,
            span: (first, first + timeline.loop_ticks()),
        })
    }

    /// Reads every access unit of an H.264 Annex B file. The format carries no timing, so
    /// frames are paced at `fps` (Annex B files from `ffmpeg -f h264` are usually 30).
    pub fn from_h264(path: &Path, data: Vec<u8>, fps: u32) -> Result<Self, FileError> {
        let mut units = Vec::new();
        for (i, au) in AccessUnits::new(&data).enumerate() {
            let start = au.as_ptr() as usize - data.as_ptr() as usize;
            let keyframe = h264::is_keyframe(au);
            units.push(Unit {
                ts: i as u64,
                bytes: start..start + au.len(),
                keyframe,
            });
        }
        if !units.first().is_some_and(|u| u.keyframe) {
            return Err(invalid(
                path,
                "not H.264 Annex B starting with a keyframe (IDR or SPS)",
            ));
        }
        let frames = units.len() as u64;
        Ok(FileTrack {
            codec: Codec::H264,
            size: (0, 0),
            data: data.into(),
            units: units.into(),
            num: 1,
            den: fps.max(1),
            span: (0, frames),
        })
    }

    /// Reads every packet of an Ogg/Opus file, failing on anything broken.
    pub fn from_ogg(path: &Path, data: Vec<u8>) -> Result<Self, FileError> {
        let (_head, mut reader) = OggOpusReader::new(&data).map_err(|e| invalid(path, e))?;
        let mut units = Vec::new();
        let mut ts = 0u64;
        while let Some(packet) = reader.next_packet().map_err(|e| invalid(path, e))? {
            let start = packet.data.as_ptr() as usize - data.as_ptr() as usize;
            units.push(Unit {
                ts,
                bytes: start..start + packet.data.len(),
                keyframe: true,
            });
            ts += u64::from(packet.samples);
        }
        if units.is_empty() {
            return Err(invalid(path, "no audio packets"));
        }
        Ok(FileTrack {
            codec: Codec::Opus,
            size: (0, 0),
            data: data.into(),
            units: units.into(),
            num: 1,
            den: 48_000,
            span: (0, ts),
        })
    }

    /// How long one pass over the file lasts.
    pub fn duration(&self) -> Duration {
        ticks_to_duration(self.span.1 - self.span.0, self.num, self.den)
    }

    /// Number of frames (or audio packets).
    pub fn frames(&self) -> usize {
        self.units.len()
    }
}

fn ticks_to_duration(ticks: u64, num: u32, den: u32) -> Duration {
    let nanos = u128::from(ticks) * u128::from(num) * 1_000_000_000 / u128::from(den);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// One RTP packet a player produced, in the player's own numbering.
#[derive(Debug)]
pub struct Produced<'a> {
    /// The RTP packet (header without extensions + payload).
    pub packet: &'a [u8],
    /// First packet of a keyframe: a viewer may start here.
    pub keyframe_start: bool,
}

/// Plays one track in a loop: packetizes each frame when it is due.
#[derive(Debug)]
pub struct TrackPlayer {
    track: FileTrack,
    timeline: Timeline,
    clock_rate: u32,
    next: usize,
    loop_index: u64,
    ssrc: u32,
    seq: u16,
    ts_base: u32,
    payloader: Payloader,
    buf: Vec<u8>,
}

/// Splits frames into RTP payloads.
#[derive(Debug)]
enum Payloader {
    Vp8(Vp8Payloader),
    H264(H264Payloader),
    /// One Opus packet per RTP packet (RFC 7587).
    Whole,
}

impl TrackPlayer {
    /// A player looping `track` every `loop_len` (≥ the track's own duration), numbering
    /// packets from random `ssrc`, `seq` and timestamp base.
    pub fn new(
        track: FileTrack,
        loop_len: Duration,
        ssrc: u32,
        seq: u16,
        ts_base: u32,
        picture_id: u16,
    ) -> Result<Self, FileError> {
        let loop_ticks = u64::try_from(
            loop_len.as_nanos() * u128::from(track.den) / (u128::from(track.num) * 1_000_000_000),
        )
        .unwrap_or(u64::MAX)
        .max(track.span.1 - track.span.0);
        let (first, _) = track.span;
        let timeline = Timeline::new(first, first + loop_ticks, track.num, track.den)
            .map_err(|e| invalid(Path::new("-"), e))?;
        let bad = |e: media::PacketizeError| invalid(Path::new("-"), e);
        let payloader = match track.codec {
            Codec::Vp8 => Payloader::Vp8(
                Vp8Payloader::new(media::DEFAULT_MAX_PAYLOAD, picture_id).map_err(bad)?,
            ),
            Codec::H264 => {
                Payloader::H264(H264Payloader::new(media::DEFAULT_MAX_PAYLOAD).map_err(bad)?)
            }
            Codec::Opus => Payloader::Whole,
        };
        Ok(TrackPlayer {
            clock_rate: track.codec.clock_rate(),
            track,
            timeline,
            next: 0,
            loop_index: 0,
            ssrc,
            seq,
            ts_base,
            payloader,
            buf: Vec::with_capacity(1500),
        })
    }

    /// The track being played.
    pub fn track(&self) -> &FileTrack {
        &self.track
    }

    /// When the next frame is due, from the stream's start.
    pub fn next_due(&self) -> Duration {
        self.unit_due(self.next)
    }

    fn unit_due(&self, index: usize) -> Duration {
        self.track.units.get(index).map_or(Duration::MAX, |u| {
            self.timeline.media_time(u.ts, self.loop_index)
        })
    }

    /// The RTP timestamp of `elapsed` since the stream's start (for Sender Reports).
    pub fn rtp_timestamp_at(&self, elapsed: Duration) -> u32 {
        let units = elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        self.ts_base.wrapping_add(units as u32)
    }

    /// Produces every packet due by `elapsed` (time since the stream started).
    pub fn play(&mut self, elapsed: Duration, mut emit: impl FnMut(Produced<'_>)) {
        while self.next_due() <= elapsed {
            self.emit_unit(&mut emit);
            self.next += 1;
            if self.next == self.track.units.len() {
                self.next = 0;
                self.loop_index += 1;
            }
        }
    }

    fn emit_unit(&mut self, emit: &mut impl FnMut(Produced<'_>)) {
        let Some(unit) = self.track.units.get(self.next) else {
            return;
        };
        let timestamp = self.ts_base.wrapping_add(self.timeline.rtp_timestamp(
            unit.ts,
            self.loop_index,
            self.clock_rate,
        ));
        let frame = &self.track.data[unit.bytes.clone()];
        let keyframe = unit.keyframe && self.track.codec.is_video();
        let mut header = RtpHeader {
            payload_type: self.track.codec.default_payload_type(),
            timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        let (buf, seq) = (&mut self.buf, &mut self.seq);
        let mut first = true;
        let mut send = |payload: &[u8], marker: bool| {
            header.marker = marker;
            header.sequence_number = *seq;
            *seq = seq.wrapping_add(1);
            buf.clear();
            // Writing into a Vec cannot fail; a header we built has no oversized extension.
            if header.write_vec(payload, 0, buf).is_ok() {
                emit(Produced {
                    packet: buf,
                    keyframe_start: keyframe && first,
                });
            }
            first = false;
        };
        // An empty frame is skipped: the readers accept it, but it carries nothing.
        match &mut self.payloader {
            Payloader::Vp8(p) => drop(p.packetize(frame, &mut send)),
            Payloader::H264(p) => drop(p.packetize(frame, &mut send)),
            Payloader::Whole => send(frame, false),
        }
    }
}
