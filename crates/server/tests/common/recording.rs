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

/// What ffprobe makes of a file.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The first stream's codec (`vp8`, `h264`, `opus`).
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
    check_ffprobe();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration",
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
    let stream = &v["streams"][0];
    let number = |x: &Value| {
        x.as_u64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0)
    };
    Probe {
        codec: stream["codec_name"].as_str().unwrap_or("").to_owned(),
        width: number(&stream["width"]),
        height: number(&stream["height"]),
        frames: number(&stream["nb_read_frames"]),
        duration: v["format"]["duration"]
            .as_str()
            .and_then(|s| s.parse().ok()),
        errors,
    }
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
