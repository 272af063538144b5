//! Our readers against the sample files and ffprobe's view of them; our writers' files read
//! back by ffprobe (and the `ogg` crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use common::*;
use media::h264::{self, AccessUnits};
use media::ivf::{IvfError, IvfReader, IvfWriter};
use media::ogg::PacketReader;
use media::oggopus::{OggOpusReader, OggOpusWriter};
use media::vp8;

#[test]
fn ivf_samples_match_readme_and_ffprobe() {
    for (name, frames) in IVF_SAMPLES {
        let data = sample(name);
        let (header, reader) = IvfReader::new(&data).unwrap();
        let ours: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(ours.len(), frames, "{name}");
        assert_eq!(header.frame_count as usize, frames, "{name}");
        assert_eq!(&header.fourcc, b"VP80");
        let (codec, count, err) = ffprobe_count(&sample_path(name));
        assert_eq!(
            (codec.as_str(), count, err.as_str()),
            ("vp8", frames, ""),
            "{name}"
        );
        // Frame sizes and keyframes agree with ffmpeg's IVF demuxer, frame by frame; keyframe
        // sizes agree with the header.
        let theirs = ffprobe_packets(&sample_path(name));
        let mine: Vec<_> = ours
            .iter()
            .map(|f| (f.data.len(), vp8::keyframe_size(f.data).is_some()))
            .collect();
        assert_eq!(mine, theirs, "{name}");
        for f in &ours {
            if let Some(size) = vp8::keyframe_size(f.data) {
                assert_eq!(size, (header.width, header.height), "{name}");
            }
        }
    }
}

#[test]
fn ogg_sample_matches_readme_ffprobe_and_granules() {
    let data = sample(OGG_SAMPLE);
    let (head, mut reader) = OggOpusReader::new(&data).unwrap();
    assert_eq!(
        (head.channels, head.pre_skip, head.input_sample_rate),
        (2, 312, 48_000)
    );
    let mut samples = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        samples.push(u64::from(p.samples));
    }
    assert_eq!(samples.len(), 501);
    let (codec, count, err) = ffprobe_count(&sample_path(OGG_SAMPLE));
    assert_eq!((codec.as_str(), count, err.as_str()), ("opus", 501, ""));

    // Our TOC durations against the granule positions libopus/ffmpeg wrote: every page's
    // granule is the samples decoded up to its last packet; the last page may trim the end.
    let mut pages = PacketReader::new(&data);
    let (mut index, mut total, mut checked) = (0usize, 0u64, 0);
    while let Some(p) = pages.next_packet().unwrap() {
        index += 1;
        if index <= 2 {
            continue;
        }
        total += samples[index - 3];
        match p.granule {
            Some(g) if p.eos => assert!(g <= total && g + 960 > total, "{g} vs {total}"),
            Some(g) => {
                assert_eq!(g, total);
                checked += 1;
            }
            None => {}
        }
    }
    assert!(checked > 5);
}

#[test]
fn h264_sample_matches_readme_and_ffprobe() {
    let data = sample(H264_SAMPLE);
    let aus: Vec<_> = AccessUnits::new(&data).collect();
    assert_eq!(aus.len(), 300);
    let (codec, count, err) = ffprobe_count(&sample_path(H264_SAMPLE));
    assert_eq!((codec.as_str(), count, err.as_str()), ("h264", 300, ""));
    let theirs: Vec<bool> = ffprobe_packets(&sample_path(H264_SAMPLE))
        .iter()
        .map(|p| p.1)
        .collect();
    let mine: Vec<bool> = aus.iter().map(|au| h264::is_keyframe(au)).collect();
    assert_eq!(mine, theirs);
    // Constrained baseline (66, constraint_set1), level 3.1, as the README says.
    let sps = h264::NalUnits::new(&data)
        .find(|n| h264::nal_type(n) == 7)
        .unwrap();
    assert_eq!(h264::profile_level_id(sps), Some([0x42, 0xc0, 0x1f]));
}

#[test]
fn ivf_writer_output_is_read_by_ffprobe_even_unfinished() {
    let data = sample("small-vp8-160x120-2s.ivf");
    let (mut header, reader) = IvfReader::new(&data).unwrap();
    header.frame_count = 0; // as a recorder starts, not knowing the count
    let mut out = Vec::new();
    let mut w = IvfWriter::new(&header, &mut out);
    for f in reader {
        let f = f.unwrap();
        w.write_frame(f.timestamp, f.data, &mut out).unwrap();
    }
    // Killed before the count was patched: we and ffprobe still read every frame.
    let killed = out_path("killed.ivf");
    std::fs::write(&killed, &out).unwrap();
    assert_eq!(IvfReader::new(&out).unwrap().1.count(), 60);
    assert_eq!(ffprobe_count(&killed), ("vp8".into(), 60, String::new()));
    // Finished: the patched header says 60 and the bytes equal ffmpeg's file.
    let (offset, bytes) = w.frame_count_patch();
    out[offset as usize..offset as usize + 4].copy_from_slice(&bytes);
    assert_eq!(out, data);
    // Killed inside a frame: a clear error naming the frame (ffprobe passes the partial
    // frame to its decoder; a player of ours refuses the file at start).
    out.truncate(out.len() - 10);
    let last = IvfReader::new(&out).unwrap().1.last().unwrap();
    assert!(
        matches!(last, Err(IvfError::TruncatedFrame { index: 59, .. })),
        "{last:?}"
    );
    std::fs::remove_file(&killed).unwrap();
}

#[test]
fn ogg_writer_output_is_read_by_ffprobe_and_ogg_crate() {
    let data = sample(OGG_SAMPLE);
    let (head, mut reader) = OggOpusReader::new(&data).unwrap();
    let mut out = Vec::new();
    let mut w = OggOpusWriter::new(0x1234_5678, &head, &mut out).unwrap();
    let mut packets = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        w.write_packet(p.data, &mut out).unwrap();
        packets.push(p.data.to_vec());
    }
    w.finish(&mut out);
    let path = out_path("written.ogg");
    std::fs::write(&path, &out).unwrap();
    // ffmpeg checks every page's CRC ("CRC mismatch!") and drops bad pages.
    assert_eq!(ffprobe_count(&path), ("opus".into(), 501, String::new()));

    // The `ogg` crate verifies CRCs too, and sees our packets, granules and EOS.
    let mut r = ogg::PacketReader::new(std::io::Cursor::new(&out));
    let mut got = Vec::new();
    let mut last = None;
    while let Some(p) = r.read_packet().unwrap() {
        last = Some((p.absgp_page(), p.last_in_stream()));
        got.push(p.data);
    }
    assert_eq!(&got[0][..8], b"OpusHead");
    assert_eq!(&got[1][..8], b"OpusTags");
    assert_eq!(got[2..], packets[..]);
    assert_eq!(last, Some((501 * 960, true)));

    // A flipped bit makes ffmpeg complain: the check above is a real one.
    out[4000] ^= 0x10;
    std::fs::write(&path, &out).unwrap();
    let (_, count, err) = ffprobe_count(&path);
    assert!(count < 501 && err.contains("CRC"), "{count} {err}");
    std::fs::remove_file(&path).unwrap();
}
