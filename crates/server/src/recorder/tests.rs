//! The recorder against ffprobe (Debian ffmpeg): RTP made from the sample files with our
//! payloaders goes in, ffprobe decodes what comes out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use media::h264::{AccessUnits, H264Payloader};
use media::ivf::IvfReader;
use media::oggopus::OggOpusReader;
use media::vp8::Vp8Payloader;
use media::{DEFAULT_MAX_PAYLOAD, vp8};
use rtc::rtp::RtpHeader;

use super::*;

/// A fresh directory, removed at the end of the test (kept when `KEEP` is set, to look at).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("leanrtc-rec-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The one file with extension `ext`.
    fn file(&self, ext: &str) -> PathBuf {
        let found: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        assert_eq!(found.len(), 1, "{ext} files: {found:?}");
        found[0].clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP").is_some() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("ffprobe not runnable ({e}): apt-get install ffmpeg"));
    assert!(out.status.success(), "ffprobe {file:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `codec_name,width,height,nb_read_frames` as ffprobe decodes them.
fn probe(file: &Path) -> (String, u64) {
    let entries = "stream=codec_name,width,height,nb_read_frames";
    let line = ffprobe(
        &["-count_frames", "-show_entries", entries, "-of", "csv=p=0"],
        file,
    );
    let (desc, frames) = line.rsplit_once(',').unwrap();
    (desc.to_owned(), frames.parse().unwrap())
}

fn duration(file: &Path) -> f64 {
    let d = ffprobe(
        &["-show_entries", "format=duration", "-of", "csv=p=0"],
        file,
    );
    d.parse().unwrap()
}

/// The RTP payloads of one frame, with their marker bits.
type Payloads = Vec<(Vec<u8>, bool)>;

/// RTP packets of one track, each with the index of the frame it belongs to.
struct Rtp {
    packets: Vec<(usize, Vec<u8>)>,
    frames: usize,
}

impl Rtp {
    /// Packs `(payload, marker)` lists per frame into RTP packets from `seq`/`ts`.
    fn build(frames: Vec<(u32, Payloads)>, seq: u16, ts: u32) -> Self {
        let mut packets = Vec::new();
        let mut seq = seq;
        let mut rtp_ts = ts;
        for (i, (duration, payloads)) in frames.iter().enumerate() {
            for (payload, marker) in payloads {
                let header = RtpHeader {
                    marker: *marker,
                    payload_type: 96,
                    sequence_number: seq,
                    timestamp: rtp_ts,
                    ssrc: 0x1234_5678,
                    ..Default::default()
                };
                let mut p = Vec::new();
                header.write_vec(payload, 0, &mut p).unwrap();
                packets.push((i, p));
                seq = seq.wrapping_add(1);
            }
            rtp_ts = rtp_ts.wrapping_add(*duration);
        }
        Rtp {
            packets,
            frames: frames.len(),
        }
    }

    fn vp8(seq: u16, ts: u32) -> Self {
        let data = sample("sample-vp8-640x360-30fps-10s.ivf");
        let mut pay = Vp8Payloader::new(DEFAULT_MAX_PAYLOAD, 0).unwrap();
        let frames = IvfReader::new(&data).unwrap().1.map(|f| {
            let mut payloads = Vec::new();
            pay.packetize(f.unwrap().data, |p, m| payloads.push((p.to_vec(), m)))
                .unwrap();
            (3000, payloads)
        });
        Self::build(frames.collect(), seq, ts)
    }

    fn h264(seq: u16, ts: u32) -> Self {
        let data = sample("sample-h264-640x360-10s.h264");
        let mut pay = H264Payloader::new(DEFAULT_MAX_PAYLOAD).unwrap();
        let frames = AccessUnits::new(&data).map(|au| {
            let mut payloads = Vec::new();
            pay.packetize(au, |p, m| payloads.push((p.to_vec(), m)))
                .unwrap();
            (3000, payloads)
        });
        Self::build(frames.collect(), seq, ts)
    }

    fn opus(seq: u16, ts: u32) -> Self {
        let data = sample("sample-opus-48k-10s.ogg");
        let (_, mut r) = OggOpusReader::new(&data).unwrap();
        let mut frames = Vec::new();
        while let Some(p) = r.next_packet().unwrap() {
            frames.push((p.samples, vec![(p.data.to_vec(), false)]));
        }
        Self::build(frames, seq, ts)
    }

    /// Drops every twentieth packet (5 %) after the first frame (a recording starts at a
    /// keyframe: in the server a PLI asks for one); returns the rest and how many frames kept
    /// all their packets.
    fn lose_5_percent(self) -> (Self, usize) {
        let mut hit = vec![false; self.frames];
        let mut packets = Vec::new();
        for (n, (frame, p)) in self.packets.into_iter().enumerate() {
            if frame > 0 && n % 20 == 7 {
                hit[frame] = true;
            } else {
                packets.push((frame, p));
            }
        }
        let whole = hit.iter().filter(|h| !**h).count();
        let frames = self.frames;
        (Rtp { packets, frames }, whole)
    }

    fn send(&self, r: &mut Recorder, track: u64, frames: std::ops::Range<usize>) {
        for (_, p) in self.packets.iter().filter(|(f, _)| frames.contains(f)) {
            r.packet(track, p);
        }
    }
}

fn record_all(dir: &Path, tracks: &[(u64, RecordCodec, &Rtp)]) {
    let mut r = Recorder::spawn(dir.to_owned()).unwrap();
    for (id, codec, _) in tracks {
        r.start(*id, "cam", *codec);
    }
    for (id, _, rtp) in tracks {
        rtp.send(&mut r, *id, 0..rtp.frames);
        assert_eq!(r.dropped(*id), 0);
        r.end(*id);
    }
}

#[test]
fn whole_samples_decode_with_every_frame() {
    let dir = TempDir::new();
    let (vp8, h264, opus) = (Rtp::vp8(1, 7), Rtp::h264(2, 8), Rtp::opus(3, 9));
    assert_eq!((vp8.frames, h264.frames, opus.frames), (300, 300, 501));
    let tracks = [
        (1, RecordCodec::Vp8, &vp8),
        (2, RecordCodec::H264, &h264),
        (3, RecordCodec::Opus, &opus),
    ];
    record_all(&dir.0, &tracks);
    let ivf = dir.file("ivf");
    assert_eq!(probe(&ivf), ("vp8,640,360".into(), 300));
    let bytes = std::fs::read(&ivf).unwrap();
    assert_eq!(
        &bytes[24..28],
        &300u32.to_le_bytes(),
        "final IVF frame count"
    );
    assert_eq!(probe(&dir.file("h264")), ("h264,640,360".into(), 300));
    let ogg = dir.file("ogg");
    assert_eq!(probe(&ogg), ("opus".into(), 501));
    let d = duration(&ogg);
    assert!((d - 10.02).abs() < 0.005, "Ogg duration {d}");
    let name = ogg.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("cam-") && name.ends_with("Z.ogg"),
        "{name}"
    );
}

#[test]
fn five_percent_loss_still_decodes() {
    let dir = TempDir::new();
    let (vp8, vp8_whole) = Rtp::vp8(100, 0).lose_5_percent();
    let (h264, h264_whole) = Rtp::h264(200, 0).lose_5_percent();
    let (opus, _) = Rtp::opus(300, 0).lose_5_percent();
    let tracks = [
        (1, RecordCodec::Vp8, &vp8),
        (2, RecordCodec::H264, &h264),
        (3, RecordCodec::Opus, &opus),
    ];
    record_all(&dir.0, &tracks);
    // A video frame spans ~2.7 packets here, so 5 % packet loss costs ~13 % of frames; what
    // can be asked is that the frames that arrived whole decode.
    let (desc, vp8_n) = probe(&dir.file("ivf"));
    assert_eq!(desc, "vp8,640,360");
    assert!(
        vp8_n * 10 >= vp8_whole as u64 * 9,
        "VP8 {vp8_n} of {vp8_whole} whole"
    );
    let (desc, n) = probe(&dir.file("h264"));
    assert_eq!(desc, "h264,640,360");
    // ffmpeg withholds ~9 frames after each lost IDR until it recovers, and an access unit
    // whose first packet follows a gap is dropped (without a start bit, H.264 RTP cannot
    // tell it is whole): 212 of 253 here.
    assert!(
        n * 10 >= h264_whole as u64 * 8,
        "H.264 {n} of {h264_whole} whole"
    );
    eprintln!("of 300: VP8 {vp8_n} decoded, {vp8_whole} whole; H.264 {n}, {h264_whole}");
    // Audio: each lost packet is replaced by a concealment packet, so time keeps its length.
    let ogg = dir.file("ogg");
    let (_, n) = probe(&ogg);
    assert!(n * 10 >= 501 * 9, "Opus {n} of 501");
    let d = duration(&ogg);
    assert!((d - 10.02).abs() < 0.005, "Ogg duration {d} after loss");
    // The reference decoder (libopus) takes the concealment packets too: 10.02 s of stereo.
    let pcm = Command::new("ffmpeg")
        .args(["-v", "error", "-c:a", "libopus", "-i"])
        .arg(&ogg)
        .args(["-f", "s16le", "-"])
        .output()
        .unwrap();
    assert!(pcm.status.success() && pcm.stderr.is_empty(), "{pcm:?}");
    assert_eq!(pcm.stdout.len(), 501 * 960 * 2 * 2);
}

#[test]
fn killed_recording_is_playable() {
    let dir = TempDir::new();
    let (vp8, h264, opus) = (Rtp::vp8(1, 0), Rtp::h264(2, 0), Rtp::opus(3, 0));
    let mut r = Recorder::spawn(dir.0.clone()).unwrap();
    r.start(1, "live", RecordCodec::Vp8);
    r.start(2, "live", RecordCodec::H264);
    r.start(3, "live", RecordCodec::Opus);
    vp8.send(&mut r, 1, 0..150);
    h264.send(&mut r, 2, 0..150);
    opus.send(&mut r, 3, 0..400);
    // Once the thread has taken every packet, wait past a flush, then stop the thread dead:
    // no final write, frame count or page.
    for _ in 0..1000 {
        if r.queued.load(Ordering::Relaxed) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(FLUSH_EVERY * 2 + Duration::from_millis(100));
    r.abort();
    let ivf = dir.file("ivf");
    assert_eq!(probe(&ivf), ("vp8,640,360".into(), 150));
    let bytes = std::fs::read(&ivf).unwrap();
    assert_eq!(
        &bytes[24..28],
        &150u32.to_le_bytes(),
        "patched IVF frame count"
    );
    assert_eq!(probe(&dir.file("h264")), ("h264,640,360".into(), 150));
    // The open Ogg page (at most 0.5 s, 25 packets of 20 ms) is what a kill loses.
    let (_, n) = probe(&dir.file("ogg"));
    assert!((375..=400).contains(&n), "Opus {n} of 400");
}

#[test]
fn timestamp_wrap_keeps_time_monotonic() {
    let dir = TempDir::new();
    // RTP timestamps and sequence numbers both wrap about 5 s in.
    let vp8 = Rtp::vp8(65_000, u32::MAX - 5 * 90_000);
    let opus = Rtp::opus(65_300, u32::MAX - 5 * 48_000);
    record_all(
        &dir.0,
        &[(1, RecordCodec::Vp8, &vp8), (2, RecordCodec::Opus, &opus)],
    );
    let ivf = dir.file("ivf");
    let pts = ffprobe(&["-show_entries", "packet=pts", "-of", "csv=p=0"], &ivf);
    let pts: Vec<u64> = pts.lines().map(|l| l.parse().unwrap()).collect();
    let want: Vec<u64> = (0..300).map(|i| i * 3000).collect();
    assert_eq!(pts, want);
    let ogg = dir.file("ogg");
    assert_eq!(probe(&ogg).1, 501);
    let d = duration(&ogg);
    assert!(
        (d - 10.02).abs() < 0.005,
        "Ogg duration {d} across the wrap"
    );
}

#[test]
fn video_starts_at_the_first_keyframe() {
    let dir = TempDir::new();
    let vp8 = Rtp::vp8(1, 0);
    let h264 = Rtp::h264(1, 0);
    let mut r = Recorder::spawn(dir.0.clone()).unwrap();
    r.start(1, "late", RecordCodec::Vp8);
    r.start(2, "late", RecordCodec::H264);
    // Joining at frame 10: the samples have keyframes at 0, 60, 120, …
    vp8.send(&mut r, 1, 10..300);
    h264.send(&mut r, 2, 10..300);
    drop(r);
    assert_eq!(probe(&dir.file("ivf")).1, 240);
    assert_eq!(probe(&dir.file("h264")).1, 240);
    let data = sample("sample-vp8-640x360-30fps-10s.ivf");
    let frame = IvfReader::new(&data).unwrap().1.nth(60).unwrap().unwrap();
    assert!(vp8::keyframe_size(frame.data).is_some());
}

#[test]
fn same_name_in_the_same_second_is_not_overwritten() {
    let dir = TempDir::new();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_515_302);
    let names: Vec<_> = (0..3)
        .map(|_| name::create(&dir.0, "cam", "ivf", now).unwrap().0)
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    let want = ["", "-1", "-2"].map(|s| format!("cam-20261124T101502Z{s}.ivf"));
    assert_eq!(names, want);
}

#[test]
fn record_dir_is_created_or_refused_clearly() {
    let dir = TempDir::new();
    let nested = dir.0.join("a/b");
    Recorder::check_dir(&nested).unwrap();
    assert!(nested.is_dir());
    let file = dir.0.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let e = Recorder::check_dir(&file.join("sub")).unwrap_err();
    assert!(e.to_string().contains("cannot create it"), "{e}");
    // Not writable even for root (tests may run as root).
    let e = Recorder::check_dir(Path::new("/proc/self")).unwrap_err();
    assert!(e.to_string().contains("not writable"), "{e}");
}

#[test]
fn bad_dir_or_bad_packets_never_panic() {
    let dir = TempDir::new();
    let mut r = Recorder::spawn(dir.0.join("missing")).unwrap();
    r.start(1, "cam", RecordCodec::Vp8);
    r.packet(1, &[0x80, 0, 0]);
    r.packet(9, b"unknown track");
    drop(r);
    let mut r = Recorder::spawn(dir.0.clone()).unwrap();
    r.start(1, "junk", RecordCodec::Opus);
    for junk in [
        &[][..],
        &[0x80; 12],
        &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
    ] {
        r.packet(1, junk);
    }
    r.end(1);
    drop(r);
    // Nothing usable came: no file is left.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

#[test]
fn full_queue_drops_instead_of_blocking() {
    let dir = TempDir::new();
    let mut r = Recorder::spawn(dir.0.clone()).unwrap();
    r.queued.store(MAX_QUEUED, Ordering::Relaxed);
    r.packet(4, &[0x80; 20]);
    r.packet(4, &[0x80; 20]);
    assert_eq!(r.dropped(4), 2);
    r.queued.store(0, Ordering::Relaxed);
}
