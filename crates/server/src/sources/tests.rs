use std::time::{Duration, Instant};

use media::RtpMeta;
use media::vp8::Vp8Depacketizer;
use rtc::rand::Rng;
use rtc::rtp::RtpPacket;

use super::*;

#[test]
fn sample_loads_with_the_documented_frame_counts() {
    let mut streams = builtin_sample().unwrap();
    let sample = streams.remove("sample").unwrap();
    let video = sample.video.unwrap();
    let audio = sample.audio.unwrap();
    assert_eq!(
        (video.frames(), video.size, video.codec),
        (300, (640, 360), Codec::Vp8)
    );
    assert_eq!((audio.frames(), audio.codec), (501, Codec::Opus));
    assert_eq!(video.duration(), Duration::from_secs(10));
    assert_eq!(audio.duration(), Duration::from_millis(10_020));
}

/// Plays the sample for 25 s of media time (crossing two loops) and checks pacing, continuous
/// numbering, and that the VP8 frames reassemble to the IVF file's frames.
#[test]
fn plays_paced_looped_and_continuous() {
    let sample = builtin_sample().unwrap().remove("sample").unwrap();
    let ivf_frames: Vec<Vec<u8>> = {
        let (_, reader) = media::ivf::IvfReader::new(super::SAMPLE_IVF).unwrap();
        reader.map(|f| f.unwrap().data.to_vec()).collect()
    };
    let start = Instant::now();
    let mut player = FilePlayer::start(sample, start, &mut Rng::seeded(5)).unwrap();
    let mut depack = Vp8Depacketizer::new();
    let (mut video_frames, mut audio_packets) = (Vec::new(), 0usize);
    let mut last_seq: [Option<u16>; 2] = [None, None];
    let mut last_ts: [Option<u32>; 2] = [None, None];
    let mut t = start;
    let mut produced: Vec<(usize, Vec<u8>)> = Vec::new();
    while t < start + Duration::from_secs(25) {
        player.play(t, |track, p| produced.push((track, p.packet.to_vec())));
        assert!(player.next_due() > t, "everything due by now was played");
        t += Duration::from_millis(5);
    }
    for (track, packet) in &produced {
        let track = *track;
        {
            let rtp = RtpPacket::parse(packet).unwrap();
            if let Some(prev) = last_seq[track] {
                assert_eq!(
                    rtp.sequence_number(),
                    prev.wrapping_add(1),
                    "continuous seq"
                );
            }
            if let Some(prev) = last_ts[track] {
                assert!(
                    rtp.timestamp().wrapping_sub(prev) < 1 << 31,
                    "timestamps never go back"
                );
            }
            last_seq[track] = Some(rtp.sequence_number());
            last_ts[track] = Some(rtp.timestamp());
            if track == 0 {
                let meta = RtpMeta {
                    seq: rtp.sequence_number(),
                    timestamp: rtp.timestamp(),
                    marker: rtp.marker(),
                };
                if let Some(frame) = depack.push(meta, rtp.payload()).unwrap() {
                    video_frames.push(frame.data.to_vec());
                }
            } else {
                audio_packets += 1;
            }
        }
    }
    // 25 s: two whole loops of 300 frames (each loop lasts 10.02 s, the audio's length) and
    // most of a third.
    assert!(
        (740..=752).contains(&video_frames.len()),
        "{}",
        video_frames.len()
    );
    for (i, frame) in video_frames.iter().enumerate() {
        assert_eq!(frame, &ivf_frames[i % 300], "frame {i}");
    }
    assert!((1245..=1252).contains(&audio_packets), "{audio_packets}");
}

#[test]
fn broken_files_fail_at_start_with_the_path() {
    let dir = std::env::temp_dir().join(format!("leanrtc-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truncated = &super::SAMPLE_IVF[..super::SAMPLE_IVF.len() - 100];
    std::fs::write(dir.join("cut.ivf"), truncated).unwrap();
    let err = scan_media_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("cut.ivf"), "{err}");
    std::fs::write(dir.join("cut.ivf"), super::SAMPLE_IVF).unwrap();
    std::fs::write(dir.join("cut.ogg"), b"OggS not really").unwrap();
    let err = scan_media_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("cut.ogg"), "{err}");
    std::fs::remove_file(dir.join("cut.ogg")).unwrap();
    std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
    let streams = scan_media_dir(&dir).unwrap();
    assert_eq!(streams.keys().collect::<Vec<_>>(), ["cut"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An H.264 Annex B file plays at 30 fps, each access unit packetized (RFC 6184 mode 1) and
/// reassembled to the same bytes by the depacketizer.
#[test]
fn h264_files_play_as_access_units() {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/sample-h264-640x360-10s.h264"
    ))
    .unwrap();
    let track = FileTrack::from_h264(std::path::Path::new("x.h264"), data.clone(), 30).unwrap();
    assert_eq!(
        (track.frames(), track.codec, track.duration()),
        (300, Codec::H264, Duration::from_secs(10))
    );
    let start = Instant::now();
    let mut player = FilePlayer::start(
        FileStream {
            video: Some(track),
            audio: None,
        },
        start,
        &mut Rng::seeded(1),
    )
    .unwrap();
    let mut packets = Vec::new();
    player.play(start + Duration::from_millis(1990), |_, p| {
        packets.push((p.packet.to_vec(), p.keyframe_start))
    });
    let mut depack = media::h264::H264Depacketizer::new();
    let mut units = Vec::new();
    for (packet, _) in &packets {
        let rtp = RtpPacket::parse(packet).unwrap();
        let meta = RtpMeta {
            seq: rtp.sequence_number(),
            timestamp: rtp.timestamp(),
            marker: rtp.marker(),
        };
        if let Some(frame) = depack.push(meta, rtp.payload()).unwrap() {
            units.push((frame.data.to_vec(), rtp.timestamp()));
        }
    }
    let originals: Vec<&[u8]> = media::h264::AccessUnits::new(&data).take(60).collect();
    assert_eq!(units.len(), 60, "frames due in the first 2 s at 30 fps");
    for (i, (unit, _)) in units.iter().enumerate() {
        let nals = |b: &[u8]| {
            media::h264::NalUnits::new(b)
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        assert_eq!(nals(unit), nals(originals[i]), "access unit {i}");
    }
    assert!(
        units
            .windows(2)
            .all(|w| w[1].1.wrapping_sub(w[0].1) == 3000),
        "90 kHz at 30 fps"
    );
    assert!(
        packets.first().is_some_and(|(_, key)| *key),
        "starts at a keyframe"
    );
}
