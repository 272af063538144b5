//! The recorder against ffprobe (Debian ffmpeg): RTP made from the sample files with our
//! payloaders goes in, with arrival times as a real-time sender would give them; ffprobe
//! demuxes and decodes what comes out. The bounds are checked on the thread's state
//! ([`Recordings`]) and on a handle without a thread, so nothing depends on timing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

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

    fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    /// The one file with extension `ext`.
    fn file(&self, ext: &str) -> PathBuf {
        let found: Vec<_> = self
            .files()
            .into_iter()
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
    assert!(out.stderr.is_empty(), "ffprobe {file:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `codec_name,width,height,nb_read_frames` per stream, as ffprobe decodes them.
fn probe(file: &Path) -> Vec<String> {
    let entries = "stream=codec_name,width,height,nb_read_frames";
    let out = ffprobe(
        &["-count_frames", "-show_entries", entries, "-of", "csv=p=0"],
        file,
    );
    out.lines().map(str::to_owned).collect()
}

/// Frames ffprobe decodes of stream `index`.
fn frames(file: &Path, index: usize) -> u64 {
    let line = &probe(file)[index];
    line.rsplit_once(',').unwrap().1.parse().unwrap()
}

fn duration(file: &Path) -> f64 {
    let d = ffprobe(
        &["-show_entries", "format=duration", "-of", "csv=p=0"],
        file,
    );
    d.parse().unwrap()
}

/// Packet times (s) of stream `index`, in file order.
fn packet_times(file: &Path, index: usize) -> Vec<f64> {
    let select = format!("{index}");
    let out = ffprobe(
        &[
            "-select_streams",
            &select,
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    out.lines().map(|l| l.parse().unwrap()).collect()
}

/// The RTP payloads of one frame, with their marker bits.
type Payloads = Vec<(Vec<u8>, bool)>;

/// RTP packets of one track: each with the index of its frame and its RTP time (ticks from
/// the first packet), which gives its arrival time for a sender in real time.
struct Rtp {
    packets: Vec<(usize, u32, Vec<u8>)>,
    frames: usize,
    rate: u32,
}

impl Rtp {
    /// Packs `(duration, payloads)` per frame into RTP packets from `seq`/`ts`.
    fn build(frames: Vec<(u32, Payloads)>, seq: u16, ts: u32, rate: u32) -> Self {
        let mut packets = Vec::new();
        let mut seq = seq;
        let mut rel = 0u32;
        for (i, (duration, payloads)) in frames.iter().enumerate() {
            for (payload, marker) in payloads {
                let header = RtpHeader {
                    marker: *marker,
                    payload_type: 96,
                    sequence_number: seq,
                    timestamp: ts.wrapping_add(rel),
                    ssrc: 0x1234_5678,
                    ..Default::default()
                };
                let mut p = Vec::new();
                header.write_vec(payload, 0, &mut p).unwrap();
                packets.push((i, rel, p));
                seq = seq.wrapping_add(1);
            }
            rel += *duration;
        }
        Rtp {
            packets,
            frames: frames.len(),
            rate,
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
        Self::build(frames.collect(), seq, ts, 90_000)
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
        Self::build(frames.collect(), seq, ts, 90_000)
    }

    fn opus(seq: u16, ts: u32) -> Self {
        let data = sample("sample-opus-48k-10s.ogg");
        let (_, mut r) = OggOpusReader::new(&data).unwrap();
        let mut frames = Vec::new();
        while let Some(p) = r.next_packet().unwrap() {
            frames.push((p.samples, vec![(p.data.to_vec(), false)]));
        }
        Self::build(frames, seq, ts, 48_000)
    }

    /// Drops every twentieth packet (5 %) after the first frame (a recording starts at a
    /// keyframe: in the server a PLI asks for one); returns the rest and how many frames kept
    /// all their packets.
    fn lose_5_percent(self) -> (Self, usize) {
        let mut hit = vec![false; self.frames];
        let mut packets = Vec::new();
        for (n, (frame, rel, p)) in self.packets.into_iter().enumerate() {
            if frame > 0 && n % 20 == 7 {
                hit[frame] = true;
            } else {
                packets.push((frame, rel, p));
            }
        }
        let whole = hit.iter().filter(|h| !**h).count();
        let (frames, rate) = (self.frames, self.rate);
        (
            Rtp {
                packets,
                frames,
                rate,
            },
            whole,
        )
    }
}

/// One input of a session fed to the recorder: its index, its packets, the frames of them
/// to send, and when its first packet arrives.
struct Feed<'a> {
    input: usize,
    rtp: &'a Rtp,
    frames: std::ops::Range<usize>,
    start: Duration,
}

/// Every packet of `feeds` in arrival order (each at `t0` + its start + its RTP time): the
/// order a real-time publisher's packets reach the recorder.
fn arrivals<'a>(t0: Instant, feeds: &[Feed<'a>]) -> Vec<(usize, Instant, &'a [u8])> {
    let mut all = Vec::new();
    for f in feeds {
        let first = f.rtp.packets.iter().find(|p| f.frames.contains(&p.0));
        let Some(&(_, base, _)) = first else { continue };
        for (frame, rel, p) in &f.rtp.packets {
            if f.frames.contains(frame) {
                let after = Duration::from_secs_f64(f64::from(rel - base) / f64::from(f.rtp.rate));
                all.push((f.input, t0 + f.start + after, p.as_slice()));
            }
        }
    }
    all.sort_by_key(|a| a.1);
    all
}

/// Records `feeds` as session 1 of stream `cam` through the recorder thread.
fn record(dir: &Path, codecs: &[RecordCodec], feeds: &[Feed<'_>]) {
    let mut r = Recorder::spawn(dir.to_owned(), Limits::default()).unwrap();
    r.start(1, "cam", codecs);
    for (input, at, p) in arrivals(Instant::now(), feeds) {
        r.packet(1, input, at, p);
    }
    assert_eq!(r.active[&1], 0, "nothing dropped");
    r.end(1);
}

fn all(input: usize, rtp: &Rtp) -> Feed<'_> {
    Feed {
        input,
        rtp,
        frames: 0..rtp.frames,
        start: Duration::ZERO,
    }
}

#[test]
fn vp8_and_opus_make_one_webm_with_both_streams_and_their_duration() {
    let dir = TempDir::new();
    let (vp8, opus) = (Rtp::vp8(1, 7), Rtp::opus(3, 9));
    assert_eq!((vp8.frames, opus.frames), (300, 501));
    let codecs = [RecordCodec::Vp8, RecordCodec::Opus];
    record(&dir.0, &codecs, &[all(0, &vp8), all(1, &opus)]);
    assert_eq!(dir.files().len(), 1);
    let webm = dir.file("webm");
    assert_eq!(probe(&webm), ["vp8,640,360,300", "opus,501"]);
    // The last Opus packet starts at 10.000 s and lasts 20 ms.
    let d = duration(&webm);
    assert!((d - 10.02).abs() < 0.005, "WebM duration {d}");
    let name = webm.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("cam-") && name.ends_with("Z.webm"),
        "{name}"
    );
}

#[test]
fn h264_and_opus_make_one_mkv() {
    let dir = TempDir::new();
    let (h264, opus) = (Rtp::h264(2, 8), Rtp::opus(3, 9));
    let codecs = [RecordCodec::Opus, RecordCodec::H264];
    record(&dir.0, &codecs, &[all(1, &h264), all(0, &opus)]);
    let mkv = dir.file("mkv");
    // Video is the file's first track whatever the order of the inputs.
    assert_eq!(probe(&mkv), ["h264,640,360,300", "opus,501"]);
    let d = duration(&mkv);
    assert!((d - 10.02).abs() < 0.005, "Matroska duration {d}");
}

#[test]
fn audio_and_video_stay_in_sync_by_arrival_of_their_first_packets() {
    let dir = TempDir::new();
    // Audio starts 1.5 s after video (its RTP timestamps start anywhere): in the file its
    // first packet is at 1.5 s, and each one then at its own RTP time.
    let (vp8, opus) = (Rtp::vp8(1, 123_456), Rtp::opus(3, 4_000_000_000));
    let feeds = [
        all(0, &vp8),
        Feed {
            start: Duration::from_millis(1500),
            ..all(1, &opus)
        },
    ];
    record(&dir.0, &[RecordCodec::Vp8, RecordCodec::Opus], &feeds);
    let webm = dir.file("webm");
    let video = packet_times(&webm, 0);
    let want: Vec<f64> = (0..300).map(|i| (i * 1000 / 30) as f64 / 1000.0).collect();
    assert_eq!(video, want);
    let audio = packet_times(&webm, 1);
    assert_eq!(audio.len(), 501);
    for (i, t) in audio.iter().enumerate() {
        assert!(
            (t - (1.5 + i as f64 * 0.02)).abs() < 0.0011,
            "audio {i} at {t}"
        );
    }
    let d = duration(&webm);
    assert!((d - 11.52).abs() < 0.005, "duration {d}");
}

#[test]
fn no_file_before_the_first_keyframe() {
    let dir = TempDir::new();
    let (vp8, opus) = (Rtp::vp8(1, 0), Rtp::opus(3, 0));
    let mut r = Recordings::new(dir.0.clone(), 4);
    // A session that never sends anything, and one that sends no keyframe yet.
    r.start(7, "silent", &[RecordCodec::Vp8, RecordCodec::Opus]);
    r.start(1, "late", &[RecordCodec::Vp8, RecordCodec::Opus]);
    let t0 = Instant::now();
    // Joining at frame 10 (0.333 s into the sample), audio from its start; the sample's
    // keyframes are at frames 0, 60 (2 s), 120, …
    let feeds = [
        Feed {
            frames: 10..300,
            start: Duration::from_nanos(333_333_333),
            ..all(0, &vp8)
        },
        all(1, &opus),
    ];
    let packets = arrivals(t0, &feeds);
    let (before, after) =
        packets.split_at(packets.partition_point(|p| p.1 < t0 + Duration::from_secs(2)));
    for &(input, at, p) in before {
        r.packet(1, input, at, p);
    }
    assert_eq!(dir.files(), Vec::<PathBuf>::new(), "no keyframe, no file");
    assert_eq!(r.open(), 0);
    for &(input, at, p) in after {
        r.packet(1, input, at, p);
    }
    assert_eq!(r.open(), 1);
    r.end(7);
    r.end(1);
    assert_eq!(r.open(), 0);
    let webm = dir.file("webm");
    assert_eq!(dir.files().len(), 1, "the silent session left nothing");
    assert_eq!(probe(&webm), ["vp8,640,360,240", "opus,401"]);
    let d = duration(&webm);
    assert!((d - 8.02).abs() < 0.005, "duration {d} from the keyframe");
    let data = sample("sample-vp8-640x360-30fps-10s.ivf");
    let frame = IvfReader::new(&data).unwrap().1.nth(60).unwrap().unwrap();
    assert!(vp8::keyframe_size(frame.data).is_some());
}

#[test]
fn open_recordings_are_bounded() {
    let dir = TempDir::new();
    let vp8 = Rtp::vp8(1, 0);
    let mut r = Recordings::new(dir.0.clone(), 2);
    let t0 = Instant::now();
    let send = |r: &mut Recordings, id: u64, frames: std::ops::Range<usize>| {
        let feed = Feed {
            frames,
            ..all(0, &vp8)
        };
        for (input, at, p) in arrivals(t0, &[feed]) {
            r.packet(id, input, at, p);
        }
    };
    for id in 1..=3 {
        r.start(id, &format!("cam{id}"), &[RecordCodec::Vp8]);
        send(&mut r, id, 0..30);
    }
    assert_eq!((r.open(), r.refused()), (2, 1));
    assert_eq!(dir.files().len(), 2);
    // One ends: the third opens at its next keyframe (frame 60), not before.
    r.end(1);
    send(&mut r, 3, 30..60);
    assert_eq!((r.open(), dir.files().len()), (1, 2));
    send(&mut r, 3, 60..90);
    assert_eq!((r.open(), dir.files().len()), (2, 3));
    r.finish_all();
    assert_eq!(r.open(), 0);
    let names: Vec<String> = dir
        .files()
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap()[..4].to_owned())
        .collect();
    assert_eq!(names, ["cam1", "cam2", "cam3"]);
    assert_eq!(frames(&dir.files()[2], 0), 30);
}

#[test]
fn a_full_queue_drops_and_counts_and_never_blocks() {
    // A handle whose thread never takes anything: the queue stays full.
    let (tx, rx) = mpsc::channel();
    let (_free_tx, free) = mpsc::sync_channel(1);
    let limits = Limits {
        max_queued: 3,
        max_open: 1,
    };
    let mut r = Recorder::with(tx, Arc::new(AtomicUsize::new(0)), free, limits, None);
    let now = Instant::now();
    r.start(1, "cam", &[RecordCodec::Opus]);
    r.packet(1, 0, now, &[0x80; 20]);
    r.packet(1, 0, now, &[0x80; 20]);
    for _ in 0..1000 {
        r.packet(1, 0, now, &[0x80; 20]);
    }
    assert_eq!(r.active[&1], 1000, "dropped and counted");
    // A session started while the queue is full is not recorded at all; its end is not sent.
    r.start(2, "cam2", &[RecordCodec::Opus]);
    r.packet(2, 0, now, &[0x80; 20]);
    assert_eq!(r.refused, 1);
    r.end(2);
    r.end(1);
    let cmds: Vec<String> = rx
        .try_iter()
        .map(|c| match c {
            Cmd::Start(id, ..) => format!("start {id}"),
            Cmd::Packet(id, ..) => format!("packet {id}"),
            Cmd::End(id) => format!("end {id}"),
        })
        .collect();
    assert_eq!(cmds, ["start 1", "packet 1", "packet 1", "end 1"]);
    assert_eq!(r.queued.load(Ordering::Relaxed), 3);
}

#[test]
fn killed_recording_is_playable() {
    let dir = TempDir::new();
    let (vp8, opus) = (Rtp::vp8(1, 0), Rtp::opus(3, 0));
    let mut r = Recordings::new(dir.0.clone(), 4);
    r.start(1, "live", &[RecordCodec::Vp8, RecordCodec::Opus]);
    let feeds = [
        Feed {
            frames: 0..150,
            ..all(0, &vp8)
        },
        Feed {
            frames: 0..250,
            ..all(1, &opus)
        },
    ];
    for (input, at, p) in arrivals(Instant::now(), &feeds) {
        r.packet(1, input, at, p);
    }
    // The thread's periodic flush, then the process dies: no Duration, no sizes patched.
    r.flush();
    drop(r);
    let webm = dir.file("webm");
    assert_eq!(probe(&webm), ["vp8,640,360,150", "opus,250"]);
}

#[test]
fn five_percent_loss_still_decodes() {
    let dir = TempDir::new();
    let (vp8, vp8_whole) = Rtp::vp8(100, 0).lose_5_percent();
    let (opus, _) = Rtp::opus(300, 0).lose_5_percent();
    record(
        &dir.0,
        &[RecordCodec::Vp8, RecordCodec::Opus],
        &[all(0, &vp8), all(1, &opus)],
    );
    let webm = dir.file("webm");
    // A video frame spans ~2.7 packets here, so 5 % packet loss costs ~13 % of frames; what
    // can be asked is that the frames that arrived whole decode.
    let vp8_n = frames(&webm, 0);
    assert!(
        vp8_n * 10 >= vp8_whole as u64 * 9,
        "VP8 {vp8_n} of {vp8_whole} whole"
    );
    let opus_n = frames(&webm, 1);
    assert!(opus_n * 100 >= 501 * 94, "Opus {opus_n} of 501");
    // Lost audio is a gap in time, not a shorter file.
    let d = duration(&webm);
    assert!((d - 10.02).abs() < 0.005, "duration {d} after loss");

    let dir = TempDir::new();
    let (h264, h264_whole) = Rtp::h264(200, 0).lose_5_percent();
    record(&dir.0, &[RecordCodec::H264], &[all(0, &h264)]);
    // ffmpeg withholds frames after each lost IDR until it recovers, and an access unit
    // whose first packet follows a gap is dropped (without a start bit, H.264 RTP cannot
    // tell it is whole).
    let n = frames(&dir.file("mkv"), 0);
    assert!(
        n * 10 >= h264_whole as u64 * 8,
        "H.264 {n} of {h264_whole} whole"
    );
}

#[test]
fn timestamp_wrap_keeps_time_monotonic() {
    let dir = TempDir::new();
    // RTP timestamps and sequence numbers both wrap about 5 s in.
    let vp8 = Rtp::vp8(65_000, u32::MAX - 5 * 90_000);
    let opus = Rtp::opus(65_300, u32::MAX - 5 * 48_000);
    record(
        &dir.0,
        &[RecordCodec::Vp8, RecordCodec::Opus],
        &[all(0, &vp8), all(1, &opus)],
    );
    let webm = dir.file("webm");
    let want: Vec<f64> = (0..300).map(|i| (i * 1000 / 30) as f64 / 1000.0).collect();
    assert_eq!(packet_times(&webm, 0), want);
    let want: Vec<f64> = (0..501).map(|i| i as f64 * 0.02).collect();
    let got = packet_times(&webm, 1);
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6));
}

#[test]
fn same_name_in_the_same_second_is_not_overwritten() {
    let dir = TempDir::new();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_515_302);
    let names: Vec<_> = (0..3)
        .map(|_| name::create(&dir.0, "cam", "webm", now).unwrap().0)
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    let want = ["", "-1", "-2"].map(|s| format!("cam-20261124T101502Z{s}.webm"));
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
    let vp8 = Rtp::vp8(1, 0);
    let mut r = Recorder::spawn(dir.0.join("missing"), Limits::default()).unwrap();
    r.start(1, "cam", &[RecordCodec::Vp8]);
    r.packet(1, 0, Instant::now(), &[0x80, 0, 0]);
    // A keyframe that cannot be written: the directory is missing.
    for (_, _, p) in &vp8.packets[..20] {
        r.packet(1, 0, Instant::now(), p);
    }
    r.packet(1, 5, Instant::now(), &vp8.packets[0].2);
    r.packet(9, 0, Instant::now(), b"unknown session");
    drop(r);
    let mut r = Recorder::spawn(dir.0.clone(), Limits::default()).unwrap();
    r.start(1, "junk", &[RecordCodec::Opus, RecordCodec::Vp8]);
    for junk in [
        &[][..],
        &[0x80; 12],
        &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
    ] {
        r.packet(1, 0, Instant::now(), junk);
        r.packet(1, 1, Instant::now(), junk);
    }
    r.end(1);
    drop(r);
    // Nothing usable came: no file is left.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}
