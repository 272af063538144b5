//! One recording: plain RTP packets of one track, depacketized and written to one file.
//!
//! * VP8 → IVF, timebase 1/90000, timestamps the unwrapped RTP timestamps relative to the
//!   first frame written, which is the first keyframe (its size goes in the header).
//! * H.264 → Annex B access units, from the first access unit holding an IDR slice or an SPS.
//! * Opus → Ogg (RFC 7845), stereo, 48 kHz, pre-skip 0 (see [`OPUS_HEAD`]). Granule positions
//!   follow the RTP clock: a timestamp gap (lost packets, DTX) is filled with packets whose
//!   frames are zero bytes long, which decoders conceal (RFC 7845 §4.1).
//!
//! Playable after a kill: the sans-IO writers fill `out`, which reaches the file at least
//! every flush interval (and whenever it grows past [`WRITE_AT`]), and the IVF frame count is
//! patched each time (ffmpeg ignores a stale one anyway). The Ogg writer holds its open page
//! (up to `PAGE_SAMPLES`, 0.5 s) until the page is full, so a kill loses at most that page
//! plus one flush interval of audio. `write()` alone survives a killed process (the kernel
//! has the bytes); `finish` also fsyncs, for a power cut after a clean end.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use media::h264::H264Depacketizer;
use media::ivf::{IvfHeader, IvfWriter};
use media::oggopus::{OggOpusWriter, OpusHead};
use media::vp8::{self, Vp8Depacketizer};
use media::{RtpMeta, opus};
use rtc::rtp::RtpPacket;

use super::{RecordCodec, name};

/// Buffered bytes past which they are written out before the next flush.
const WRITE_AT: usize = 256 << 10;
/// The longest timestamp gap filled with concealment packets (10 min); past it, a jump in
/// the sender's clock is assumed and the file's time simply goes on.
const MAX_GAP: i64 = 600 * 48_000;
/// Pre-skip 0: the first packet we record need not be the encoder's first (a track can start
/// after loss), and the sender's encoder delay is unknown, so trimming would cut real audio.
/// Keeping ~6.5 ms of encoder warm-up instead keeps granule 0 at the first RTP timestamp.
const OPUS_HEAD: OpusHead = OpusHead {
    channels: 2,
    pre_skip: 0,
    input_sample_rate: 48_000,
    output_gain: 0,
    mapping_family: 0,
};

enum Media {
    /// The IVF writer is made at the first keyframe; then the frame count last patched in.
    Vp8(Vp8Depacketizer, Option<IvfWriter>, u32),
    H264(H264Depacketizer),
    /// The writer is taken by `finish`.
    Opus(Option<OggOpusWriter>, Audio),
}

/// Where an Opus recording stands on the RTP clock.
#[derive(Debug, Default)]
struct Audio {
    /// Unwrapped RTP timestamp the next packet should have.
    next: Option<i64>,
    /// TOC byte of the last packet, the model of concealment packets.
    toc: u8,
    /// Concealment packets written.
    plc: u64,
}

/// A file being recorded.
pub struct Track {
    path: PathBuf,
    file: File,
    /// Bytes made by the writers and not yet written to the file.
    out: Vec<u8>,
    written: u64,
    media: Media,
    clock: Clock,
    /// Video: unwrapped timestamp of the first frame written, and the last frame's offset.
    first: Option<i64>,
    end: i64,
    frames: u64,
    /// Packets or frames not written: malformed, duplicate, or video before a keyframe.
    skipped: u64,
}

impl Track {
    /// Creates the file (see [`name::create`]); an Ogg file gets its header pages at once.
    pub fn create(
        dir: &Path,
        stream: &str,
        codec: RecordCodec,
        now: SystemTime,
    ) -> io::Result<Self> {
        let ext = match codec {
            RecordCodec::Vp8 => "ivf",
            RecordCodec::Opus => "ogg",
            RecordCodec::H264 => "h264",
        };
        let (path, file) = name::create(dir, stream, ext, now)?;
        let mut out = Vec::new();
        let media = match codec {
            RecordCodec::Vp8 => Media::Vp8(Vp8Depacketizer::new(), None, 0),
            RecordCodec::H264 => Media::H264(H264Depacketizer::new()),
            RecordCodec::Opus => {
                let serial = now
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.subsec_nanos());
                let ogg = OggOpusWriter::new(serial, &OPUS_HEAD, &mut out)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Media::Opus(Some(ogg), Audio::default())
            }
        };
        tracing::info!(path = %path.display(), "recording");
        Ok(Track {
            path,
            file,
            out,
            written: 0,
            media,
            clock: Clock::default(),
            first: None,
            end: 0,
            frames: 0,
            skipped: 0,
        })
    }

    /// Takes one plain RTP packet. An error (logged) means the recording has stopped.
    pub fn packet(&mut self, rtp: &[u8]) -> io::Result<()> {
        let Ok(p) = RtpPacket::parse(rtp) else {
            self.skipped += 1;
            return Ok(());
        };
        let meta = RtpMeta {
            seq: p.sequence_number(),
            timestamp: p.timestamp(),
            marker: p.marker(),
        };
        let written = match &mut self.media {
            Media::Vp8(depack, ivf, _) => {
                let Ok(Some(f)) = depack.push(meta, p.payload()) else {
                    return Ok(());
                };
                let ts = self.clock.extend(f.timestamp);
                if ivf.is_none() && f.keyframe {
                    *ivf = Some(IvfWriter::new(&ivf_header(f.data), &mut self.out));
                }
                ivf.as_mut().is_some_and(|w| {
                    let pts = pts(&mut self.first, &mut self.end, ts);
                    w.write_frame(pts, f.data, &mut self.out).is_ok()
                })
            }
            Media::H264(depack) => {
                let Ok(Some(au)) = depack.push(meta, p.payload()) else {
                    return Ok(());
                };
                let ts = self.clock.extend(au.timestamp);
                let start = self.first.is_some() || au.keyframe;
                if start {
                    pts(&mut self.first, &mut self.end, ts);
                    self.out.extend_from_slice(au.data);
                }
                start
            }
            Media::Opus(Some(ogg), audio) => {
                let ts = self.clock.extend(meta.timestamp);
                audio.write(ogg, ts, p.payload(), &mut self.out, &self.path)
            }
            Media::Opus(None, _) => false,
        };
        if written {
            self.frames += 1;
        } else {
            self.skipped += 1;
        }
        if self.out.len() >= WRITE_AT {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes buffered bytes to the file and patches the IVF frame count.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        if let Media::Vp8(_, Some(w), patched) = &mut self.media
            && w.frames() != *patched
        {
            let (offset, bytes) = w.frame_count_patch();
            self.file
                .write_all_at(&bytes, offset)
                .map_err(|e| fail(&self.path, e))?;
            *patched = w.frames();
        }
        Ok(())
    }

    /// Ends the file cleanly (final IVF count, Ogg end-of-stream page), syncs it to disk and
    /// logs what it holds. A file in which nothing could be written is removed.
    pub fn finish(mut self) {
        if let Media::Opus(ogg, _) = &mut self.media
            && let Some(w) = ogg.take()
        {
            self.end = w.samples() as i64;
            w.finish(&mut self.out);
        }
        if self.flush().is_err() {
            return;
        }
        if let Err(e) = self.file.sync_all() {
            fail(&self.path, e);
            return;
        }
        let path = self.path.display();
        if self.frames == 0 {
            let _ = std::fs::remove_file(&self.path);
            tracing::info!(%path, "recording empty (no keyframe or no packets): removed");
            return;
        }
        let (rate, incomplete, concealed) = match &self.media {
            Media::Vp8(depack, ..) => (90_000.0, depack.dropped(), 0),
            Media::H264(depack) => (90_000.0, depack.dropped(), 0),
            Media::Opus(_, audio) => (f64::from(opus::CLOCK_RATE), 0, audio.plc),
        };
        let (frames, bytes, skipped) = (self.frames, self.written, self.skipped);
        let duration_s = self.end as f64 / rate;
        tracing::info!(
            %path, frames, duration_s, bytes, incomplete, concealed, skipped, "recorded"
        );
    }

    fn write_out(&mut self) -> io::Result<()> {
        self.file
            .write_all(&self.out)
            .map_err(|e| fail(&self.path, e))?;
        self.written += self.out.len() as u64;
        self.out.clear();
        Ok(())
    }
}

impl Audio {
    /// Writes the Opus packet at unwrapped timestamp `ts`, concealment before it for a gap;
    /// false when it is malformed or a duplicate.
    fn write(
        &mut self,
        ogg: &mut OggOpusWriter,
        ts: i64,
        payload: &[u8],
        out: &mut Vec<u8>,
        path: &Path,
    ) -> bool {
        let (Ok(packet), Some(&toc)) = (opus::depacketize(payload), payload.first()) else {
            return false;
        };
        let gap = ts - self.next.unwrap_or(ts);
        if gap < 0 {
            // A duplicate, or overlapping what is written: granules cannot go back.
            return false;
        } else if gap > MAX_GAP {
            tracing::warn!(path = %path.display(), gap, "Opus timestamp jump not filled");
        } else if gap > 0 {
            self.plc += conceal(ogg, self.toc, gap, out);
        }
        if ogg.write_packet(packet.payload, out).is_err() {
            return false;
        }
        self.next = Some(ts + i64::from(packet.samples));
        self.toc = toc;
        true
    }
}

/// The IVF header for a stream whose first frame is `keyframe`.
fn ivf_header(keyframe: &[u8]) -> IvfHeader {
    let (width, height) = vp8::keyframe_size(keyframe).unwrap_or((0, 0));
    IvfHeader {
        fourcc: *b"VP80",
        width,
        height,
        timebase_num: 1,
        timebase_den: 90_000,
        frame_count: 0,
    }
}

/// Logs why a recording stops.
fn fail(path: &Path, e: io::Error) -> io::Error {
    tracing::error!(path = %path.display(), "recording stopped: {e}");
    e
}

/// The presentation time of a video frame at unwrapped timestamp `ts`: relative to the first
/// frame, and never going back (a sender's clock jumping backwards must not break the file).
fn pts(first: &mut Option<i64>, end: &mut i64, ts: i64) -> u64 {
    let rel = ts - *first.get_or_insert(ts);
    *end = rel.max(*end);
    *end as u64
}

/// Writes packets standing for `gap` samples of lost audio (RFC 7845 §4.1): like the previous
/// packet (TOC `toc`) but with zero-length frames, which a decoder conceals (RFC 6716
/// §3.2.1). Returns how many.
fn conceal(ogg: &mut OggOpusWriter, toc: u8, mut gap: i64, out: &mut Vec<u8>) -> u64 {
    let mut written = 0;
    let mut put = |packet: &[u8], out: &mut Vec<u8>| {
        written += u64::from(ogg.write_packet(packet, out).is_ok());
    };
    let frame = i64::from(opus::frame_samples(toc));
    while gap >= frame {
        // Code 3, constant bitrate, no padding: `count` frames of 0 bytes (RFC 6716 §3.2.5).
        let count = (gap / frame).min(i64::from(opus::MAX_PACKET_SAMPLES) / frame);
        put(&[toc | 0x03, count as u8], out);
        gap -= count * frame;
    }
    // The rest (frame sizes changed): CELT fullband frames of 10, 5 and 2.5 ms, code 0.
    for config in [30u8, 29, 28] {
        let tocc = config << 3 | (toc & 0x04);
        if gap >= i64::from(opus::frame_samples(tocc)) {
            put(&[tocc], out);
            gap -= i64::from(opus::frame_samples(tocc));
        }
    }
    written
}

/// Extends 32-bit RTP timestamps to a signed 64-bit count, each placed nearest the previous
/// one (RFC 3550 §5.1: the timestamp wraps).
#[derive(Debug, Default)]
struct Clock {
    last: Option<(u32, i64)>,
}

impl Clock {
    fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some((last, ext)) => ext + i64::from(ts.wrapping_sub(last) as i32),
        };
        self.last = Some((ts, ext));
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_stops_the_track_without_panic() {
        let dir = std::env::temp_dir().join(format!("leanrtc-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut t = Track::create(&dir, "full", RecordCodec::Opus, SystemTime::now()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        t.file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut rtp = Vec::new();
        let mut failed = false;
        for i in 0..20_000u16 {
            let header = rtc::rtp::RtpHeader {
                sequence_number: i,
                timestamp: u32::from(i) * 960,
                ..Default::default()
            };
            header.write_vec(&[0xfc; 100], 0, &mut rtp).unwrap();
            if t.packet(&rtp).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "writing to a full disk must fail");
        t.finish();
    }
}
