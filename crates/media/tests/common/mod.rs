//! Helpers shared by the integration tests: the sample files and ffprobe.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The VP8 samples and their frame counts (samples/README.md).
pub const IVF_SAMPLES: [(&str, usize); 3] = [
    ("sample-vp8-640x360-30fps-10s.ivf", 300),
    ("small-vp8-160x120-2s.ivf", 60),
    ("vp8-1280x720-5s.ivf", 150),
];
pub const OGG_SAMPLE: &str = "sample-opus-48k-10s.ogg";
pub const H264_SAMPLE: &str = "sample-h264-640x360-10s.h264";

pub fn sample_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples")
        .join(name)
}

pub fn sample(name: &str) -> Vec<u8> {
    let path = sample_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A file path for test output, unique per test name.
pub fn out_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("media-{}-{name}", std::process::id()))
}

/// Runs ffprobe with `args` on `path`; returns stdout and stderr. ffprobe is required: these
/// tests check our files with a tool we did not write.
pub fn ffprobe(path: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("ffprobe is required for these tests (apt-get install ffmpeg): {e}")
        });
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {:?}",
        path.display(),
        out
    );
    (
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `codec_name,nb_read_frames` of the file's first stream, and ffprobe's complaints.
pub fn ffprobe_count(path: &Path) -> (String, usize, String) {
    let (out, err) = ffprobe(
        path,
        &[
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
            "-of",
            "csv=p=0",
        ],
    );
    let line = out.lines().next().unwrap_or_default().to_owned();
    let (codec, count) = line
        .split_once(',')
        .unwrap_or_else(|| panic!("ffprobe said {out:?}"));
    (codec.to_owned(), count.trim().parse().unwrap(), err)
}

/// Per packet (frame or access unit) as ffprobe's demuxer sees it: size and keyframe flag.
pub fn ffprobe_packets(path: &Path) -> Vec<(usize, bool)> {
    let (out, err) = ffprobe(
        path,
        &["-show_entries", "packet=size,flags", "-of", "csv=p=0"],
    );
    assert!(err.is_empty(), "ffprobe complained: {err}");
    out.lines()
        .map(|l| {
            let (size, flags) = l.split_once(',').unwrap();
            (size.parse().unwrap(), flags.starts_with('K'))
        })
        .collect()
}
