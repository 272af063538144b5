//! Recordings as a user would check them: a temporary `--record-dir`, the server's log
//! lines that say a file is finished, and `ffprobe` (Debian `ffmpeg`, an independent
//! demuxer and decoder) counting the frames it decodes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::server::Server;

/// A fresh directory under the system's temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// Creates `leanrtc-{what}-{pid}-{n}`.
    pub fn new(what: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("leanrtc-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir { path }
    }

    /// The path as a `&str` for command lines.
    pub fn as_str(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep the evidence of a failure.
            eprintln!("(kept {} for inspection)", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Waits at most `timeout` until the server has logged `count` finished recordings
/// (`recorded path=…`); returns their paths, in log order.
pub fn wait_recorded(server: &Server, count: usize, timeout: Duration) -> Vec<PathBuf> {
    let deadline = Instant::now() + timeout;
    loop {
        let log = server.log();
        let paths: Vec<PathBuf> = log
            .lines()
            .filter(|l| l.contains(" recorded "))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("path="))
                    .map(PathBuf::from)
            })
            .collect();
        if paths.len() >= count {
            return paths;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} recordings finished within {timeout:?}; log:\n{log}",
            paths.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The one recording among `paths` with extension `ext`.
pub fn with_ext<'a>(paths: &'a [PathBuf], ext: &str) -> &'a Path {
    let found: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert_eq!(found.len(), 1, "one .{ext} recording expected: {paths:?}");
    found[0]
}

/// What ffprobe makes of one stream of a file.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The stream's codec (`vp8`, `h264`, `opus`).
    pub codec: String,
    /// Video size (0 for audio).
    pub width: u64,
    pub height: u64,
    /// Frames ffprobe decoded (`-count_frames`).
    pub frames: u64,
    /// The container's duration in seconds, when it states one.
    pub duration: Option<f64>,
    /// What ffprobe reported at `-v error` (decoding errors), empty when clean.
    pub errors: String,
    /// Time of the stream's first and last packet (s).
    pub first: f64,
    pub last: f64,
}

/// Fails (never skips) with the package to install when ffprobe is missing.
pub fn check_ffprobe() {
    let ok = Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`ffprobe` is missing: install the Debian package `ffmpeg` (apt-get install -y ffmpeg); \
         see docs/TESTING.md"
    );
}

/// `ffprobe -count_frames` on `path`: decodes every frame of the first stream.
pub fn probe(path: &Path) -> Probe {
    probe_streams(path).swap_remove(0)
}

/// `ffprobe -count_frames` on `path`: decodes every frame of every stream, and reads the
/// time of every packet.
pub fn probe_streams(path: &Path) -> Vec<Probe> {
    check_ffprobe();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration:packet=stream_index,pts_time",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let errors = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ffprobe {} failed: {errors}",
        path.display()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let number = |x: &Value| {
        x.as_u64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0)
    };
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    assert!(!streams.is_empty(), "{}: no streams", path.display());
    let packets = v["packets"].as_array().cloned().unwrap_or_default();
    streams
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            let times: Vec<f64> = packets
                .iter()
                .filter(|p| p["stream_index"].as_u64() == Some(i as u64))
                .filter_map(|p| p["pts_time"].as_str().and_then(|s| s.parse().ok()))
                .collect();
            Probe {
                codec: stream["codec_name"].as_str().unwrap_or("").to_owned(),
                width: number(&stream["width"]),
                height: number(&stream["height"]),
                frames: number(&stream["nb_read_frames"]),
                duration: v["format"]["duration"]
                    .as_str()
                    .and_then(|s| s.parse().ok()),
                errors: errors.clone(),
                first: times.iter().copied().fold(f64::INFINITY, f64::min),
                last: times.iter().copied().fold(0.0, f64::max),
            }
        })
        .collect()
}

/// A publish's recording, as a user expects it: one file (`ext`) holding a `codec` video
/// stream at 640x360 that decodes to ≥ 90 % of the `frames_sent` the publisher reports and
/// an Opus stream, both running from the start to the end; the file's duration within 2 %
/// of the `publish_time` (s: how long the publisher published, or the media time it sent)
/// and no decoding errors. Returns the duration.
pub fn check_av_recording(
    paths: &[PathBuf],
    ext: &str,
    codec: &str,
    frames_sent: f64,
    publish_time: f64,
) -> f64 {
    assert_eq!(paths.len(), 1, "one recording per publish: {paths:?}");
    let path = with_ext(paths, ext);
    let streams = probe_streams(path);
    eprintln!(
        "{}: {streams:?}; the publisher sent {frames_sent} frames in {publish_time:.2} s",
        path.display()
    );
    let [video, audio] = &streams[..] else {
        panic!("two streams expected: {streams:?}");
    };
    assert_eq!(video.codec, codec, "{video:?}");
    assert_eq!((video.width, video.height), (640, 360), "{video:?}");
    assert_eq!(audio.codec, "opus", "{audio:?}");
    assert!(
        frames_sent >= 15.0 * publish_time,
        "the publisher sent only {frames_sent} frames in {publish_time:.1} s"
    );
    assert!(
        video.frames as f64 >= 0.9 * frames_sent,
        "{}: {} frames decode, want ≥ 90 % of the {frames_sent} sent: {video:?}",
        path.display(),
        video.frames
    );
    let duration = video.duration.expect("a Duration in the file");
    eprintln!(
        "recorded {duration:.3} s for {publish_time:.3} s of publishing ({:+.1} %); video {:.3}–{:.3} s, audio {:.3}–{:.3} s",
        (duration / publish_time - 1.0) * 100.0,
        video.first,
        video.last,
        audio.first,
        audio.last
    );
    assert!(
        (duration - publish_time).abs() <= 0.02 * publish_time,
        "the recording lasts {duration} s for {publish_time:.3} s of publishing"
    );
    // Both streams cover the file: audio and video start together and end together.
    for s in [video, audio] {
        assert!(
            s.first <= 0.5 && s.last >= duration - 0.5,
            "{} runs {:.3}–{:.3} s of {duration} s",
            s.codec,
            s.first,
            s.last
        );
    }
    assert!(
        audio.frames as f64 >= 0.9 * (audio.last - audio.first) / 0.020,
        "Opus: {} frames over {:.2} s",
        audio.frames,
        audio.last - audio.first
    );
    assert!(
        video.errors.is_empty(),
        "ffprobe reports errors: {}",
        video.errors
    );
    duration
}

/// Writes VP8 frames (with their 90 kHz timestamps) as an IVF file in libvpx's layout — a
/// 32-byte file header, then a 12-byte header per frame — so ffprobe can decode what a
/// viewer got.
pub fn write_ivf(path: &Path, width: u16, height: u16, frames: &[(&[u8], u64)]) {
    let mut out = Vec::new();
    out.extend_from_slice(b"DKIF");
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"VP80");
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&90_000u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (data, pts) in frames {
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&pts.to_le_bytes());
        out.extend_from_slice(data);
    }
    std::fs::write(path, out).expect("write the IVF file");
}

/// Plays `path` in a `<video>` element of headless Chromium for 3 s (`tests/browser/
/// play-file.js`, serving it over loopback HTTP) and checks what a user sees: its duration
/// (within 2 % of `duration`), the picture size, that it plays on (currentTime advances),
/// that a seek to 2 s before the end plays on from there, and that both the audio and the
/// video decoder get bytes.
pub fn check_plays_in_chromium(path: &Path, content_type: &str, duration: f64) {
    let file = path.to_str().expect("UTF-8 path");
    let mut node =
        super::browser::NodeScript::start("chromium", "play-file.js", &[file, content_type, "3"]);
    let r = node.next_json(Duration::from_secs(90));
    eprintln!("Chromium <video> plays {}: {r}", path.display());
    assert!(r["error"].is_null(), "{r}");
    let number = |k: &str| r[k].as_f64().unwrap_or(0.0);
    let d = number("duration");
    assert!(
        (d - duration).abs() <= 0.02 * duration,
        "<video>.duration {d} for a {duration} s recording: {r}"
    );
    assert_eq!(
        (number("videoWidth"), number("videoHeight")),
        (640.0, 360.0),
        "{r}"
    );
    assert!(number("currentTime") >= 2.0, "it does not play on: {r}");
    let target = number("seekTarget");
    assert!(
        number("afterSeek") >= target + 0.5,
        "after a seek to {target} s it does not play on: {r}"
    );
    assert!(
        number("audioBytes") > 0.0 && number("videoBytes") > 0.0,
        "{r}"
    );
}
