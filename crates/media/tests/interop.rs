//! Payload round trips over every frame of every sample, through our depacketizers and
//! through webrtc-rs's (`rtp::codecs`), in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use bytes::Bytes;
use common::*;
use media::h264::{AccessUnits, H264Depacketizer, H264Payloader, NalUnits};
use media::ivf::IvfReader;
use media::oggopus::OggOpusReader;
use media::vp8::{self, Descriptor, PictureId, Vp8Depacketizer, Vp8Payloader};
use media::{DEFAULT_MAX_PAYLOAD, RtpMeta, opus};
use rtp::codecs::{h264::H264Packet, opus::OpusPacket, vp8::Vp8Packet};
use rtp::packetizer::{Depacketizer, Payloader};

/// One RTP packet's worth: header facts and payload.
type Packet = (RtpMeta, Vec<u8>);

fn vp8_frames(name: &str) -> Vec<Vec<u8>> {
    let data = sample(name);
    IvfReader::new(&data)
        .unwrap()
        .1
        .map(|f| f.unwrap().data.to_vec())
        .collect()
}

/// Numbers packets of consecutive frames (timestamp 3000 per frame, as 30 fps at 90 kHz).
fn number(frames: Vec<Vec<(Vec<u8>, bool)>>) -> Vec<Packet> {
    let mut seq = 65_000u16; // wraps during the run
    let mut out = Vec::new();
    for (i, payloads) in frames.into_iter().enumerate() {
        for (payload, marker) in payloads {
            out.push((
                RtpMeta {
                    seq,
                    timestamp: i as u32 * 3000,
                    marker,
                },
                payload,
            ));
            seq = seq.wrapping_add(1);
        }
    }
    out
}

fn ours_vp8(frames: &[Vec<u8>], max: usize) -> Vec<Packet> {
    let mut pay = Vp8Payloader::new(max, 0x7f00).unwrap();
    number(
        frames
            .iter()
            .map(|f| {
                let mut v = Vec::new();
                pay.packetize(f, |p, m| v.push((p.to_vec(), m))).unwrap();
                v
            })
            .collect(),
    )
}

fn depacketize_vp8(packets: &[Packet]) -> Vec<(Vec<u8>, bool)> {
    let mut dep = Vp8Depacketizer::new();
    let mut out = Vec::new();
    for (meta, p) in packets {
        if let Some(f) = dep.push(*meta, p).unwrap() {
            assert!(!f.after_loss);
            out.push((f.data.to_vec(), f.keyframe));
        }
    }
    assert_eq!(dep.dropped(), 0);
    out
}

#[test]
fn vp8_round_trip_ours_and_webrtc_rs() {
    for (name, count) in IVF_SAMPLES {
        let frames = vp8_frames(name);
        assert_eq!(frames.len(), count);
        let keyframes: Vec<bool> = frames
            .iter()
            .map(|f| vp8::keyframe_size(f).is_some())
            .collect();
        let packets = ours_vp8(&frames, DEFAULT_MAX_PAYLOAD);
        assert!(packets.iter().all(|(_, p)| p.len() <= DEFAULT_MAX_PAYLOAD));
        if name.starts_with("vp8-1280") {
            assert!(
                packets.len() > 3 * frames.len(),
                "large frames span many packets"
            );
        }

        // Ours -> ours.
        let got = depacketize_vp8(&packets);
        let want: Vec<_> = frames
            .iter()
            .cloned()
            .zip(keyframes.iter().copied())
            .collect();
        assert_eq!(got, want, "{name}");

        // Ours -> webrtc-rs: it parses our descriptor (15-bit PictureID counting frames, S on
        // each frame's first packet only) and its payloads concatenate to our frames.
        let mut theirs: Vec<Vec<u8>> = Vec::new();
        let mut current = Vec::new();
        for (meta, p) in &packets {
            let mut d = Vp8Packet::default();
            let data = d.depacketize(&Bytes::copy_from_slice(p)).unwrap();
            let frame_index = (meta.timestamp / 3000) as u16;
            assert_eq!(d.picture_id, (0x7f00 + frame_index) & 0x7fff);
            assert_eq!(d.s == 1, current.is_empty());
            assert_eq!(
                d.is_partition_head(&Bytes::copy_from_slice(p)),
                current.is_empty()
            );
            current.extend_from_slice(&data);
            if d.is_partition_tail(meta.marker, &Bytes::new()) {
                theirs.push(std::mem::take(&mut current));
            }
        }
        assert_eq!(theirs, frames, "{name}");

        // webrtc-rs -> ours: its payloader's 7-bit then 15-bit PictureIDs, our reassembly.
        let mut pay = rtp::codecs::vp8::Vp8Payloader::default();
        pay.enable_picture_id = true;
        let their_packets = number(
            frames
                .iter()
                .map(|f| {
                    let v = pay.payload(1000, &Bytes::copy_from_slice(f)).unwrap();
                    let n = v.len();
                    v.into_iter()
                        .enumerate()
                        .map(|(i, p)| (p.to_vec(), i + 1 == n))
                        .collect()
                })
                .collect(),
        );
        let short = their_packets.iter().any(|(_, p)| {
            matches!(
                Descriptor::parse(p).unwrap().picture_id,
                Some(PictureId::Short(_))
            )
        });
        assert!(short || frames.len() <= 128);
        assert_eq!(depacketize_vp8(&their_packets), want, "{name}");
    }
}

#[test]
fn vp8_loss_drops_exactly_the_damaged_frames() {
    let frames = vp8_frames("vp8-1280x720-5s.ivf");
    let mut packets = ours_vp8(&frames, DEFAULT_MAX_PAYLOAD);
    // Lose one packet from the middle of frame 10 and the last packet of frame 20.
    let of = |i: u32| {
        packets
            .iter()
            .position(|(m, _)| m.timestamp == i * 3000)
            .unwrap()
    };
    let mid = of(10) + 1;
    let end = of(21) - 1;
    packets.remove(end);
    packets.remove(mid);
    let mut dep = Vp8Depacketizer::new();
    let mut got = Vec::new();
    for (meta, p) in &packets {
        if let Some(f) = dep.push(*meta, p).unwrap() {
            got.push((f.timestamp / 3000, f.after_loss));
        }
    }
    assert_eq!(dep.dropped(), 2);
    assert_eq!(got.len(), frames.len() - 2);
    assert!(got.contains(&(11, true)) && got.contains(&(21, true)) && got.contains(&(12, false)));
    assert!(!got.iter().any(|&(i, _)| i == 10 || i == 20));
}

fn access_units() -> Vec<Vec<u8>> {
    AccessUnits::new(&sample(H264_SAMPLE))
        .map(<[u8]>::to_vec)
        .collect()
}

fn nal_list(annexb: &[u8]) -> Vec<Vec<u8>> {
    NalUnits::new(annexb).map(<[u8]>::to_vec).collect()
}

fn depacketize_h264(packets: &[Packet]) -> Vec<(Vec<Vec<u8>>, bool)> {
    let mut dep = H264Depacketizer::new();
    let mut out = Vec::new();
    for (meta, p) in packets {
        if let Some(f) = dep.push(*meta, p).unwrap() {
            assert!(!f.after_loss);
            out.push((nal_list(f.data), f.keyframe));
        }
    }
    assert_eq!(dep.dropped(), 0);
    out
}

#[test]
fn h264_round_trip_ours_and_webrtc_rs() {
    let aus = access_units();
    assert_eq!(aus.len(), 300);
    let want: Vec<_> = aus
        .iter()
        .map(|au| (nal_list(au), media::h264::is_keyframe(au)))
        .collect();
    let mut pay = H264Payloader::new(DEFAULT_MAX_PAYLOAD).unwrap();
    let packets = number(
        aus.iter()
            .map(|au| {
                let mut v = Vec::new();
                pay.packetize(au, |p, m| v.push((p.to_vec(), m))).unwrap();
                v
            })
            .collect(),
    );
    assert!(packets.iter().all(|(_, p)| p.len() <= DEFAULT_MAX_PAYLOAD));
    let kinds = |t: u8| packets.iter().filter(|(_, p)| p[0] & 0x1f == t).count();
    assert!(
        kinds(24) >= 5 && kinds(28) > 100,
        "STAP-A and FU-A both used"
    );

    // Ours -> ours.
    assert_eq!(depacketize_h264(&packets), want);

    // Ours -> webrtc-rs: its depacketizer's Annex B output holds the same NAL units.
    let mut d = H264Packet::default();
    let mut theirs = Vec::new();
    let mut current = Vec::new();
    for (meta, p) in &packets {
        current.extend_from_slice(&d.depacketize(&Bytes::copy_from_slice(p)).unwrap());
        if meta.marker {
            theirs.push(nal_list(&std::mem::take(&mut current)));
        }
    }
    assert_eq!(theirs, want.iter().map(|w| w.0.clone()).collect::<Vec<_>>());

    // webrtc-rs -> ours: its payloader (STAP-A of SPS + PPS, FU-A) through our depacketizer.
    let mut pay = rtp::codecs::h264::H264Payloader::default();
    let their_packets = number(
        aus.iter()
            .map(|au| {
                let v = pay.payload(1000, &Bytes::copy_from_slice(au)).unwrap();
                let n = v.len();
                v.into_iter()
                    .enumerate()
                    .map(|(i, p)| (p.to_vec(), i + 1 == n))
                    .collect()
            })
            .collect(),
    );
    assert_eq!(depacketize_h264(&their_packets), want);
}

#[test]
fn opus_round_trip_ours_and_webrtc_rs() {
    let data = sample(OGG_SAMPLE);
    let (_, mut reader) = OggOpusReader::new(&data).unwrap();
    let mut timestamp = 0u32;
    let mut count = 0;
    while let Some(p) = reader.next_packet().unwrap() {
        let rtp = opus::packetize(p.data).unwrap();
        assert_eq!(rtp.samples, 960); // 20 ms frames, as made
        let theirs = OpusPacket
            .depacketize(&Bytes::copy_from_slice(rtp.payload))
            .unwrap();
        assert_eq!(&theirs[..], p.data);
        let mut pay = rtp::codecs::opus::OpusPayloader;
        let their_payload = pay.payload(1200, &Bytes::copy_from_slice(p.data)).unwrap();
        assert_eq!(
            opus::depacketize(&their_payload[0]).unwrap().payload,
            p.data
        );
        timestamp = timestamp.wrapping_add(rtp.samples);
        count += 1;
    }
    assert_eq!((count, timestamp), (501, 501 * 960));
}

#[test]
fn vp8_descriptor_forms_agree_with_webrtc_rs() {
    // Every combination of the optional fields (RFC 7741 §4.2), parsed by both.
    for bits in 0..48u8 {
        let (pid_form, l, t, k) = (bits % 3, bits & 4 != 0, bits & 8 != 0, bits & 16 != 0);
        let n_s_pid = if bits & 32 != 0 { 0x35 } else { 0x10 };
        let mut p = vec![0x80 | n_s_pid, 0];
        match pid_form {
            1 => p.extend([0x80, 0x55]),
            2 => p.extend([0x80 | 0x2a, 0xbc]),
            _ => {}
        }
        if pid_form != 0 {
            p[1] |= 0x80;
        }
        if l {
            p[1] |= 0x40;
            p.push(0x9e);
        }
        if t || k {
            p[1] |= if t { 0x20 } else { 0 } | if k { 0x10 } else { 0 };
            p.push(0b1011_0110);
        }
        p.extend([0xde, 0xad]);
        let ours = Descriptor::parse(&p).unwrap();
        let mut theirs = Vp8Packet::default();
        let data = theirs.depacketize(&Bytes::copy_from_slice(&p)).unwrap();
        assert_eq!(&p[ours.len..], &data[..], "{bits}");
        let pid = match ours.picture_id {
            Some(PictureId::Short(v)) => u16::from(v),
            Some(PictureId::Long(v)) => v,
            None => 0,
        };
        assert_eq!(pid, theirs.picture_id, "{bits}");
        assert_eq!(ours.tl0picidx.unwrap_or(0), theirs.tl0_pic_idx, "{bits}");
        assert_eq!(
            ours.tid.map_or((0, 0), |(t, y)| (t, y as u8)),
            (theirs.tid, theirs.y)
        );
        assert_eq!(ours.keyidx.unwrap_or(0), theirs.key_idx, "{bits}");
        assert_eq!(
            (ours.start, ours.partition, ours.non_reference),
            (theirs.s == 1, theirs.pid, theirs.n == 1)
        );
    }
}
