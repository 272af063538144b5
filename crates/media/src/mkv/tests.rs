//! The writer's files read back by a small EBML reader written for this test, and by
//! ffprobe (Debian ffmpeg, an independent demuxer) when it is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::h264::{AccessUnits, avcc, parameter_sets, sps_size, to_length_prefixed};
use crate::ivf::IvfReader;
use crate::oggopus::OggOpusReader;
use crate::vp8;

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One element as read back: ID, data range, and whether its size was "unknown".
#[derive(Debug, Clone, Copy)]
struct El {
    id: u32,
    start: usize,
    data: usize,
    end: usize,
    unknown: bool,
}

/// A VINT at `at`: its value without the length marker, its length, all value bits set.
fn vint(b: &[u8], at: usize) -> (u64, usize, bool) {
    let len = b[at].leading_zeros() as usize + 1;
    assert!(len <= 8, "VINT at {at}");
    let mut v = u64::from(b[at]) & (0xff >> len);
    for i in 1..len {
        v = v << 8 | u64::from(b[at + i]);
    }
    (v, len, v == (1 << (7 * len)) - 1)
}

/// The elements in `b[from..to]`; an unknown size runs to `to`, except that a Cluster of
/// unknown size ends where the next Cluster begins (as in a live file).
fn children(b: &[u8], from: usize, to: usize) -> Vec<El> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let id_len = b[at].leading_zeros() as usize + 1;
        let id = b[at..at + id_len]
            .iter()
            .fold(0u32, |v, x| v << 8 | u32::from(*x));
        let (size, size_len, unknown) = vint(b, at + id_len);
        let data = at + id_len + size_len;
        let end = if unknown {
            let next = (data..to.saturating_sub(3))
                .find(|&p| id == id::CLUSTER && b[p..p + 4] == [0x1f, 0x43, 0xb6, 0x75]);
            next.unwrap_or(to)
        } else {
            data + size as usize
        };
        assert!(end <= to, "element {id:x} at {at} overruns its parent");
        out.push(El {
            id,
            start: at,
            data,
            end,
            unknown,
        });
        at = end;
    }
    out
}

fn find(b: &[u8], parent: El, id: u32) -> El {
    *children(b, parent.data, parent.end)
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no {id:x} in {parent:?}"))
}

fn uint(b: &[u8], e: El) -> u64 {
    b[e.data..e.end]
        .iter()
        .fold(0, |v, x| v << 8 | u64::from(*x))
}

/// A frame to mux: track, time (ms), keyframe, data.
type Block = (usize, u64, bool, Vec<u8>);

/// VP8 frames of the sample at 30 fps and Opus packets at their durations, in time order.
fn vp8_and_opus() -> (Vec<MkvTrack>, Vec<Block>) {
    let ivf = sample("sample-vp8-640x360-30fps-10s.ivf");
    let mut blocks: Vec<Block> = IvfReader::new(&ivf)
        .unwrap()
        .1
        .enumerate()
        .map(|(i, f)| {
            let f = f.unwrap();
            let key = vp8::keyframe_size(f.data).is_some();
            (0, i as u64 * 1000 / 30, key, f.data.to_vec())
        })
        .collect();
    let ogg = sample("sample-opus-48k-10s.ogg");
    let (head, mut r) = OggOpusReader::new(&ogg).unwrap();
    let mut t = 0;
    while let Some(p) = r.next_packet().unwrap() {
        blocks.push((1, t / 48, true, p.data.to_vec()));
        t += u64::from(p.samples);
    }
    blocks.sort_by_key(|b| b.1);
    let tracks = vec![
        MkvTrack::Vp8 {
            width: 640,
            height: 360,
        },
        MkvTrack::Opus {
            channels: head.channels,
            head: head.to_bytes(),
        },
    ];
    (tracks, blocks)
}

fn h264_blocks() -> (Vec<MkvTrack>, Vec<Block>) {
    let data = sample("sample-h264-640x360-10s.h264");
    let (sps, pps) = parameter_sets(AccessUnits::new(&data).next().unwrap()).unwrap();
    let (width, height) = sps_size(sps).unwrap();
    let track = MkvTrack::Avc {
        width,
        height,
        avcc: avcc(sps, pps).unwrap(),
    };
    let blocks = AccessUnits::new(&data)
        .enumerate()
        .map(|(i, au)| {
            let mut b = Vec::new();
            to_length_prefixed(au, &mut b);
            (0, i as u64 * 1000 / 30, crate::h264::is_keyframe(au), b)
        })
        .collect();
    (vec![track], blocks)
}

/// Muxes `blocks`; with `finish`, applies the patches as a file writer would.
fn mux(doc: DocType, tracks: &[MkvTrack], blocks: &[Block], finish: bool) -> Vec<u8> {
    let mut file = Vec::new();
    let mut out = Vec::new();
    let mut w = MkvWriter::new(doc, tracks, &mut out);
    let patch = |file: &mut Vec<u8>, w: &mut MkvWriter| {
        for p in w.take_patches() {
            let at = p.offset as usize;
            file[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
        }
    };
    for (track, time, key, data) in blocks {
        w.write_block(*track, *time, *key, data, &mut out).unwrap();
        // Drain now and then, as the recorder does, so offsets must survive it.
        if out.len() > 50_000 {
            file.append(&mut out);
            patch(&mut file, &mut w);
        }
    }
    if finish {
        w.finish(&mut out);
    }
    file.append(&mut out);
    assert_eq!(file.len() as u64, w.len());
    patch(&mut file, &mut w);
    file
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("leanrtc-mkv-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `ffprobe -count_frames` per stream: `codec,width,height,frames` lines, and the duration;
/// `None` when ffprobe is not installed (the EBML checks still run).
fn ffprobe(bytes: &[u8], name: &str) -> Option<(Vec<String>, String)> {
    let path = temp_file(name, bytes);
    let run = |args: &[&str]| {
        let out = Command::new("ffprobe")
            .args(["-v", "error"])
            .args(args)
            .arg(&path)
            .output()
            .ok()?;
        assert!(out.status.success(), "{out:?}");
        assert!(out.stderr.is_empty(), "ffprobe errors: {out:?}");
        Some(String::from_utf8(out.stdout).unwrap())
    };
    let streams = run(&[
        "-count_frames",
        "-show_entries",
        "stream=codec_name,width,height,nb_read_frames",
        "-of",
        "csv=p=0",
    ]);
    let duration = run(&["-show_entries", "format=duration", "-of", "csv=p=0"]);
    let _ = std::fs::remove_file(&path);
    let lines = streams?.lines().map(str::to_owned).collect();
    Some((lines, duration?.trim().to_owned()))
}

#[test]
fn webm_reads_back_with_known_sizes_duration_and_every_block() {
    let (tracks, blocks) = vp8_and_opus();
    let keyframes = blocks.iter().filter(|b| b.0 == 0 && b.2).count();
    assert_eq!(keyframes, 5, "the sample's keyframes: every 2 s");
    let file = mux(DocType::Webm, &tracks, &blocks, true);
    let top = children(&file, 0, file.len());
    assert_eq!(top.len(), 2);
    let ebml = top[0];
    let doc = find(&file, ebml, id::DOC_TYPE);
    assert_eq!(&file[doc.data..doc.end], b"webm");
    let segment = top[1];
    assert!(!segment.unknown, "finish patches the Segment size");
    assert_eq!(segment.end, file.len());
    let info = find(&file, segment, id::INFO);
    assert_eq!(
        uint(&file, find(&file, info, id::TIMESTAMP_SCALE)),
        1_000_000
    );
    let d = find(&file, info, id::DURATION);
    let d = f64::from_be_bytes(file[d.data..d.end].try_into().unwrap());
    // The last Opus packet starts at 10 000 ms and lasts 20.
    assert_eq!(d, 10_020.0);
    let entries = children(&file, find(&file, segment, id::TRACKS).data, {
        find(&file, segment, id::TRACKS).end
    });
    let codec = |e: El| {
        let c = find(&file, e, id::CODEC_ID);
        String::from_utf8(file[c.data..c.end].to_vec()).unwrap()
    };
    assert_eq!(codec(entries[0]), "V_VP8");
    assert_eq!(codec(entries[1]), "A_OPUS");
    let head = find(&file, entries[1], id::CODEC_PRIVATE);
    assert_eq!(&file[head.data..head.data + 8], b"OpusHead");

    let clusters: Vec<El> = children(&file, segment.data, segment.end)
        .into_iter()
        .filter(|e| e.id == id::CLUSTER)
        .collect();
    assert_eq!(clusters.len(), 5, "one Cluster per keyframe");
    let mut got: Vec<(usize, u64, bool, usize)> = Vec::new();
    for c in &clusters {
        assert!(!c.unknown, "every Cluster size is patched");
        let elements = children(&file, c.data, c.end);
        let time = uint(&file, elements[0]);
        for b in elements.iter().filter(|e| e.id == id::SIMPLE_BLOCK) {
            let (track, n, _) = vint(&file, b.data);
            let rel = i16::from_be_bytes([file[b.data + n], file[b.data + n + 1]]);
            let flags = file[b.data + n + 2];
            let len = b.end - b.data - n - 3;
            got.push((
                track as usize - 1,
                (time as i64 + i64::from(rel)) as u64,
                flags & 0x80 != 0,
                len,
            ));
        }
        // A video keyframe opens each Cluster.
        let first = elements[1];
        assert_eq!(file[first.data], 0x81);
        assert_eq!(file[first.data + 3] & 0x80, 0x80);
    }
    let want: Vec<_> = blocks
        .iter()
        .map(|(t, time, key, d)| (*t, *time, *key, d.len()))
        .collect();
    assert_eq!(got, want);

    // Cues: one point per Cluster (each begins at a video keyframe), at its time and
    // position; the SeekHead points at the Cues. Positions count from the Segment's data.
    let cues = find(&file, segment, id::CUES);
    let points = children(&file, cues.data, cues.end);
    assert_eq!(points.len(), clusters.len());
    for (p, c) in points.iter().zip(&clusters) {
        let time = uint(&file, find(&file, *p, id::CUE_TIME));
        let cluster_time = uint(&file, children(&file, c.data, c.end)[0]);
        assert_eq!(time, cluster_time);
        let pos = find(&file, *p, id::CUE_TRACK_POSITIONS);
        assert_eq!(uint(&file, find(&file, pos, id::CUE_TRACK)), 1);
        let at = uint(&file, find(&file, pos, id::CUE_CLUSTER_POSITION)) as usize;
        assert_eq!(segment.data + at, c.start);
    }
    let seek = find(&file, find(&file, segment, id::SEEK_HEAD), id::SEEK);
    let target = find(&file, seek, id::SEEK_ID);
    assert_eq!(&file[target.data..target.end], &id::CUES.to_be_bytes());
    let at = uint(&file, find(&file, seek, id::SEEK_POSITION)) as usize;
    assert_eq!(segment.data + at, cues.start);
}

#[test]
fn ffprobe_reads_webm_and_matroska() {
    let (tracks, blocks) = vp8_and_opus();
    let file = mux(DocType::Webm, &tracks, &blocks, true);
    let Some((streams, duration)) = ffprobe(&file, "a.webm") else {
        eprintln!("ffprobe not installed: skipped the ffprobe half");
        return;
    };
    assert_eq!(streams, ["vp8,640,360,300", "opus,501"]);
    assert_eq!(duration, "10.020000");

    let (tracks, blocks) = h264_blocks();
    let file = mux(DocType::Matroska, &tracks, &blocks, true);
    let (streams, duration) = ffprobe(&file, "b.mkv").unwrap();
    assert_eq!(streams, ["h264,640,360,300"]);
    // The 300th frame at 9 966 ms (times truncated to ms) plus the last step, 33 ms.
    assert_eq!(duration, "9.999000");
}

#[test]
fn killed_file_without_patches_still_plays() {
    let (tracks, blocks) = vp8_and_opus();
    // Stop mid-way, without finish or patches: unknown sizes, no Duration.
    let file = mux(DocType::Webm, &tracks, &blocks[..400], false);
    let top = children(&file, 0, file.len());
    assert!(top[1].unknown);
    let video = blocks[..400].iter().filter(|b| b.0 == 0).count();
    let audio = 400 - video;
    let Some((streams, _)) = ffprobe(&file, "killed.webm") else {
        return;
    };
    assert_eq!(
        streams,
        [format!("vp8,640,360,{video}"), format!("opus,{audio}")]
    );
}

#[test]
fn blocks_keep_order_per_track_and_clusters_stay_short() {
    let mut out = Vec::new();
    let tracks = [MkvTrack::Opus {
        channels: 2,
        head: crate::oggopus::OpusHead {
            channels: 2,
            pre_skip: 0,
            input_sample_rate: 48_000,
            output_gain: 0,
            mapping_family: 0,
        }
        .to_bytes(),
    }];
    let mut w = MkvWriter::new(DocType::Webm, &tracks, &mut out);
    w.write_block(0, 100, true, b"a", &mut out).unwrap();
    assert_eq!(
        w.write_block(0, 99, true, b"b", &mut out),
        Err(MkvError::Backwards {
            time: 99,
            last: 100
        })
    );
    assert_eq!(
        w.write_block(1, 100, true, b"b", &mut out),
        Err(MkvError::NoTrack(1))
    );
    // Audio only: a new Cluster every 5 s all the same, and across a long gap.
    for t in [4_000, 5_099, 5_100, 60_000] {
        w.write_block(0, t, true, b"c", &mut out).unwrap();
    }
    assert_eq!(w.take_patches().len(), 2, "two Clusters closed");
    w.finish(&mut out);
    let patches = w.take_patches();
    assert_eq!(
        patches.len(),
        4,
        "last Cluster, SeekHead, Duration, Segment"
    );
    assert_eq!(
        w.write_block(0, 70_000, true, b"d", &mut out),
        Err(MkvError::Finished)
    );
    // The file ends with the last block plus the last step that was a frame's length (1 ms
    // from 5 099 to 5 100), not the 55 s gap before it.
    assert_eq!(w.duration_ms(), 60_001);
}

#[test]
fn sps_sizes() {
    let data = sample("sample-h264-640x360-10s.h264");
    let (sps, pps) = parameter_sets(AccessUnits::new(&data).next().unwrap()).unwrap();
    assert_eq!(sps_size(sps), Some((640, 360)));
    assert_eq!(sps_size(pps), None);
    for n in 0..sps.len() - 1 {
        // Cut short: no size, and no panic.
        let _ = sps_size(&sps[..n]);
    }
    // 1920x1080 from a Baseline SPS as libx264 writes it: 120x68 macroblocks, cropped 8 rows.
    let sps_1080 = [
        0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00,
        0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20,
    ];
    assert_eq!(sps_size(&sps_1080), Some((1920, 1080)));
    let avcc = avcc(sps, pps).unwrap();
    assert_eq!(&avcc[..5], &[1, sps[1], sps[2], sps[3], 0xff]);
}
