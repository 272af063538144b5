//! A Matroska writer (RFC 9559), and its WebM subset (VP8 + Opus), for recordings.
//!
//! Sans-IO: every call appends bytes to the caller's `Vec`; the caller writes them out in
//! order and may drain the `Vec` between calls. What can only be known later — the Segment's
//! size, each Cluster's size, the Duration — is first written as "unknown" (or a Void
//! placeholder) and handed back as [`Patch`]es: bytes to write at an absolute file offset,
//! once the bytes before them are out. A file that never gets its patches (the process was
//! killed) is still a valid live-style Matroska file, like what a browser's MediaRecorder
//! writes: an unknown-size Segment whose unknown-size last Cluster ends where the file ends.
//!
//! Layout: EBML header; Segment { Info (1 ms timestamps, Duration), SeekHead, Tracks,
//! Cluster*, Cues }. A Cluster begins at each video keyframe (so a player can start at any
//! Cluster) and at least every [`CLUSTER_MS`]; blocks are SimpleBlocks (§10.2), one frame
//! each, no lacing. `finish` appends Cues (a seek index: one entry per Cluster that starts
//! with a keyframe) and fills the SeekHead placeholder with their position; a killed file
//! has neither, and players find its Clusters by scanning.

mod ebml;

use ebml::{id, put_bytes, put_float, put_id, put_master, put_size, put_uint};

/// The longest a Cluster runs without a video keyframe, in milliseconds. (A block's time is
/// a signed 16-bit offset from its Cluster's, so it must stay under 32.768 s.)
pub const CLUSTER_MS: u64 = 5_000;
/// The longest step between two blocks of a track taken as a frame's duration (ms).
const MAX_STEP_MS: u64 = 1_000;
/// Nanoseconds per timestamp unit: 1 ms, the usual WebM scale (§11.1.8 TimestampScale).
const TIMESTAMP_SCALE: u64 = 1_000_000;
/// The Void placeholder for the Duration: a Duration element with an 8-byte float is
/// 2 (ID) + 1 (size) + 8 bytes; the Void is 1 (ID) + 1 (size) + 9 bytes.
const DURATION_LEN: usize = 11;
/// The Void placeholder for the SeekHead: SeekHead (4 + 1) { Seek (2 + 1) { SeekID (2 + 1 +
/// 4), SeekPosition (2 + 1 + 8) } }.
const SEEK_HEAD_LEN: usize = 26;

/// Which document type the file declares: WebM allows only VP8/VP9/AV1 and Opus/Vorbis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocType {
    /// `webm`: VP8 and Opus.
    Webm,
    /// `matroska`: anything else (H.264 here).
    Matroska,
}

/// A track of the file and what a decoder needs to know before its first block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MkvTrack {
    /// VP8 video (`V_VP8`) of the size in its first keyframe.
    Vp8 {
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
    },
    /// H.264 video (`V_MPEG4/ISO/AVC`): blocks are access units of NAL units behind 4-byte
    /// lengths, and `avcc` is the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4).
    Avc {
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
        /// The decoder configuration record ([`crate::h264::avcc`]).
        avcc: Vec<u8>,
    },
    /// Opus audio (`A_OPUS`), 48 kHz; `head` is the OpusHead (RFC 7845 §5.1).
    Opus {
        /// Channel count, as in `head`.
        channels: u8,
        /// The 19-byte OpusHead packet.
        head: [u8; 19],
    },
}

impl MkvTrack {
    fn is_video(&self) -> bool {
        !matches!(self, MkvTrack::Opus { .. })
    }
}

/// Bytes to write at `offset` of the file, after everything before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Absolute offset from the start of the file.
    pub offset: u64,
    /// What goes there (overwriting what the writer put there first, of the same length).
    pub bytes: Vec<u8>,
}

/// Why a block was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MkvError {
    /// No track of that index.
    #[error("no track {0}")]
    NoTrack(usize),
    /// A block earlier than the previous one of the same track.
    #[error("block at {time} ms is before the previous one ({last} ms) of its track")]
    Backwards {
        /// The block's time.
        time: u64,
        /// The previous block's time.
        last: u64,
    },
    /// The writer was finished.
    #[error("the file is finished")]
    Finished,
}

#[derive(Debug, Clone, Copy)]
struct Cluster {
    /// Its timestamp (ms).
    time: u64,
    /// Offset of its 8-byte size field, and of its first data byte.
    size_at: u64,
    data_at: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct TrackTime {
    video: bool,
    /// Time of the last block and the step from the one before it (ms).
    last: Option<u64>,
    step: u64,
}

/// Writes one Matroska file, block by block (see the module documentation).
#[derive(Debug)]
pub struct MkvWriter {
    /// Bytes appended so far: the absolute offset of the next byte.
    written: u64,
    segment_size_at: u64,
    segment_data_at: u64,
    duration_at: u64,
    seek_head_at: u64,
    cluster: Option<Cluster>,
    /// Cue points: time (ms) and position (from the Segment's data) of each Cluster that
    /// begins with a keyframe; and the track they are of.
    cues: Vec<(u64, u64)>,
    cue_track: u64,
    tracks: Vec<TrackTime>,
    /// Where the last block ends, the last block's time plus its track's last step (ms).
    end: u64,
    blocks: u64,
    patches: Vec<Patch>,
    finished: bool,
}

impl MkvWriter {
    /// Appends the EBML header, the start of the Segment, Info and Tracks. Track `i` of
    /// `tracks` is written as TrackNumber `i + 1`.
    pub fn new(doc: DocType, tracks: &[MkvTrack], out: &mut Vec<u8>) -> Self {
        let start = out.len();
        put_master(out, id::EBML, |b| {
            put_uint(b, id::EBML_VERSION, 1);
            put_uint(b, id::EBML_READ_VERSION, 1);
            put_uint(b, id::EBML_MAX_ID_LENGTH, 4);
            put_uint(b, id::EBML_MAX_SIZE_LENGTH, 8);
            let name = match doc {
                DocType::Webm => "webm",
                DocType::Matroska => "matroska",
            };
            put_bytes(b, id::DOC_TYPE, name.as_bytes());
            put_uint(b, id::DOC_TYPE_VERSION, 4);
            // SimpleBlock needs a reader of version 2 (RFC 9559 §5.1.3.5.2).
            put_uint(b, id::DOC_TYPE_READ_VERSION, 2);
        });
        put_id(out, id::SEGMENT);
        let segment_size_at = out.len();
        out.extend_from_slice(&ebml::UNKNOWN_SIZE);
        let segment_data_at = out.len();

        let mut info = Vec::new();
        put_uint(&mut info, id::TIMESTAMP_SCALE, TIMESTAMP_SCALE);
        put_bytes(&mut info, id::MUXING_APP, b"leanrtc");
        put_bytes(&mut info, id::WRITING_APP, b"leanrtc");
        let void_in_info = info.len();
        put_id(&mut info, id::VOID);
        put_size(&mut info, DURATION_LEN as u64 - 2);
        info.resize(void_in_info + DURATION_LEN, 0);
        put_bytes(out, id::INFO, &info);
        let duration_at = out.len() - info.len() + void_in_info;
        let seek_head_at = out.len();
        put_id(out, id::VOID);
        put_size(out, SEEK_HEAD_LEN as u64 - 2);
        out.resize(seek_head_at + SEEK_HEAD_LEN, 0);

        put_master(out, id::TRACKS, |b| {
            for (i, t) in tracks.iter().enumerate() {
                put_master(b, id::TRACK_ENTRY, |e| track_entry(e, i as u64 + 1, t));
            }
        });
        let tracks: Vec<TrackTime> = tracks
            .iter()
            .map(|t| TrackTime {
                video: t.is_video(),
                ..TrackTime::default()
            })
            .collect();
        let at = |p: usize| (p - start) as u64;
        // The video track is the one to seek by; an audio-only file seeks by its first.
        let cue_track = tracks
            .iter()
            .position(|t| t.video)
            .map_or(1, |i| i as u64 + 1);
        MkvWriter {
            written: at(out.len()),
            segment_size_at: at(segment_size_at),
            segment_data_at: at(segment_data_at),
            duration_at: at(duration_at),
            seek_head_at: at(seek_head_at),
            cluster: None,
            cues: Vec::new(),
            cue_track,
            tracks,
            end: 0,
            blocks: 0,
            patches: Vec::new(),
            finished: false,
        }
    }

    /// Appends one frame of track `track` (an index into the `tracks` given to `new`) at
    /// `time` ms from the start of the file. Video keyframes and long stretches begin a new
    /// Cluster. Blocks of one track must not go back in time; across tracks they may a
    /// little (a block's time is relative to its Cluster's and may be negative).
    pub fn write_block(
        &mut self,
        track: usize,
        time: u64,
        keyframe: bool,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), MkvError> {
        if self.finished {
            return Err(MkvError::Finished);
        }
        let t = self.tracks.get_mut(track).ok_or(MkvError::NoTrack(track))?;
        if let Some(last) = t.last {
            if time < last {
                return Err(MkvError::Backwards { time, last });
            }
            // A frame's duration is taken to be the step before it; a step over a second is
            // a gap (lost packets, silence), not a frame's length, and is not taken.
            if time - last <= MAX_STEP_MS {
                t.step = time - last;
            }
        }
        t.last = Some(time);
        self.end = self.end.max(time + t.step);
        let video = t.video;
        let fits = |c: &Cluster| time + 32_768 > c.time && time < c.time + CLUSTER_MS;
        match self.cluster {
            Some(c) if !(video && keyframe) && fits(&c) => {}
            _ => {
                // Audio frames are all keyframes: an audio-only file cues every Cluster.
                let all_audio = self.tracks.iter().all(|t| !t.video);
                self.begin_cluster(time, video && keyframe || all_audio, out);
            }
        }
        let cluster_time = self.cluster.map_or(time, |c| c.time);
        let relative = (time as i64 - cluster_time as i64) as i16;
        let start = out.len();
        put_id(out, id::SIMPLE_BLOCK);
        // Track number (a 1-byte VINT up to 126), timestamp, flags (§10.2).
        let track_number = track as u64 + 1;
        let mut head = Vec::new();
        put_size(&mut head, track_number);
        put_size(out, (head.len() + 3 + data.len()) as u64);
        out.extend_from_slice(&head);
        out.extend_from_slice(&relative.to_be_bytes());
        // Audio frames are all decodable on their own: "keyframe" for Opus too.
        out.push(if keyframe || !video { 0x80 } else { 0 });
        out.extend_from_slice(data);
        self.written += (out.len() - start) as u64;
        self.blocks += 1;
        Ok(())
    }

    /// Ends the file: appends the Cues; the last Cluster's size, the Segment's size, the
    /// Duration and the SeekHead become patches (take them with
    /// [`MkvWriter::take_patches`]).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.close_cluster();
        if !self.cues.is_empty() {
            let cues_at = self.written - self.segment_data_at;
            let start = out.len();
            put_master(out, id::CUES, |c| {
                for (time, position) in &self.cues {
                    put_master(c, id::CUE_POINT, |p| {
                        put_uint(p, id::CUE_TIME, *time);
                        put_master(p, id::CUE_TRACK_POSITIONS, |t| {
                            put_uint(t, id::CUE_TRACK, self.cue_track);
                            put_uint(t, id::CUE_CLUSTER_POSITION, *position);
                        });
                    });
                }
            });
            self.written += (out.len() - start) as u64;
            let mut seek_head = Vec::with_capacity(SEEK_HEAD_LEN);
            put_master(&mut seek_head, id::SEEK_HEAD, |h| {
                put_master(h, id::SEEK, |s| {
                    put_bytes(s, id::SEEK_ID, &id::CUES.to_be_bytes());
                    // Fixed 8 bytes, so the SeekHead fills its placeholder exactly.
                    put_bytes(s, id::SEEK_POSITION, &cues_at.to_be_bytes());
                });
            });
            debug_assert_eq!(seek_head.len(), SEEK_HEAD_LEN);
            self.patches.push(Patch {
                offset: self.seek_head_at,
                bytes: seek_head,
            });
        }
        let mut duration = Vec::with_capacity(DURATION_LEN);
        put_float(&mut duration, id::DURATION, self.end as f64);
        self.patches.push(Patch {
            offset: self.duration_at,
            bytes: duration,
        });
        self.patches.push(Patch {
            offset: self.segment_size_at,
            bytes: ebml::size8(self.written - self.segment_data_at).to_vec(),
        });
    }

    /// Patches due so far (the sizes of closed Clusters; after `finish`, the rest).
    pub fn take_patches(&mut self) -> Vec<Patch> {
        std::mem::take(&mut self.patches)
    }

    /// Where the last block ends (ms): the Duration `finish` writes.
    pub fn duration_ms(&self) -> u64 {
        self.end
    }

    /// Blocks written.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was appended (never: `new` writes the headers).
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    fn begin_cluster(&mut self, time: u64, cue: bool, out: &mut Vec<u8>) {
        self.close_cluster();
        if cue {
            self.cues.push((time, self.written - self.segment_data_at));
        }
        let start = out.len();
        put_id(out, id::CLUSTER);
        let size_at = self.written + (out.len() - start) as u64;
        // Unknown until the next Cluster begins: a killed file ends inside this one.
        out.extend_from_slice(&ebml::UNKNOWN_SIZE);
        let data_at = self.written + (out.len() - start) as u64;
        put_uint(out, id::TIMESTAMP, time);
        self.written += (out.len() - start) as u64;
        self.cluster = Some(Cluster {
            time,
            size_at,
            data_at,
        });
    }

    fn close_cluster(&mut self) {
        if let Some(c) = self.cluster.take() {
            self.patches.push(Patch {
                offset: c.size_at,
                bytes: ebml::size8(self.written - c.data_at).to_vec(),
            });
        }
    }
}

/// The children of one TrackEntry (RFC 9559 §5.1.4.1; Opus: the Matroska codec mapping).
fn track_entry(e: &mut Vec<u8>, number: u64, t: &MkvTrack) {
    put_uint(e, id::TRACK_NUMBER, number);
    put_uint(e, id::TRACK_UID, number);
    put_uint(e, id::TRACK_TYPE, if t.is_video() { 1 } else { 2 });
    put_uint(e, id::FLAG_LACING, 0);
    match t {
        MkvTrack::Vp8 { width, height } => {
            put_bytes(e, id::CODEC_ID, b"V_VP8");
            video(e, *width, *height);
        }
        MkvTrack::Avc {
            width,
            height,
            avcc,
        } => {
            put_bytes(e, id::CODEC_ID, b"V_MPEG4/ISO/AVC");
            put_bytes(e, id::CODEC_PRIVATE, avcc);
            video(e, *width, *height);
        }
        MkvTrack::Opus { channels, head } => {
            put_bytes(e, id::CODEC_ID, b"A_OPUS");
            put_bytes(e, id::CODEC_PRIVATE, head);
            // CodecDelay is the pre-skip in ns; SeekPreRoll 80 ms, as RFC 7845 §4.6 advises
            // decoding before a seek target.
            let pre_skip = u64::from(u16::from_le_bytes([head[10], head[11]]));
            put_uint(e, id::CODEC_DELAY, pre_skip * 1_000_000_000 / 48_000);
            put_uint(e, id::SEEK_PRE_ROLL, 80_000_000);
            put_master(e, id::AUDIO, |a| {
                put_float(a, id::SAMPLING_FREQUENCY, 48_000.0);
                put_uint(a, id::CHANNELS, u64::from(*channels));
            });
        }
    }
}

fn video(e: &mut Vec<u8>, width: u16, height: u16) {
    put_master(e, id::VIDEO, |v| {
        put_uint(v, id::PIXEL_WIDTH, u64::from(width));
        put_uint(v, id::PIXEL_HEIGHT, u64::from(height));
    });
}

#[cfg(test)]
mod tests;
