use super::*;
use crate::RtpMeta;

fn meta(seq: u16, timestamp: u32, marker: bool) -> RtpMeta {
    RtpMeta {
        seq,
        timestamp,
        marker,
    }
}

/// Start of a real 176x144 VP8 keyframe (GStreamer's rtpvp8pay test input).
const KEY: &[u8] = &[
    0x30, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0xb0, 0x00, 0x90, 0x00, 0x06, 0x47,
];

#[test]
fn descriptor_forms() {
    // mediasoup's test vector: X=1, R=1 (ignored), S=1, PID 0; I=1; 7-bit PictureID 17.
    let d = Descriptor::parse(&[0xd0, 0x80, 0x11, 0x00]).unwrap();
    assert_eq!(
        (d.start, d.partition, d.picture_id, d.len),
        (true, 0, Some(PictureId::Short(17)), 3)
    );
    // No extension: one byte; N=1, PID 3.
    let d = Descriptor::parse(&[0x23, 0xff]).unwrap();
    assert_eq!(
        (d.non_reference, d.start, d.partition, d.len),
        (true, false, 3, 1)
    );
    // All fields: 15-bit PictureID 0x1234, TL0PICIDX 5, TID 2 Y=1, KEYIDX 7.
    let d = Descriptor::parse(&[0x90, 0xf0, 0x92, 0x34, 0x05, 0xa7, 0xaa]).unwrap();
    assert_eq!(d.picture_id, Some(PictureId::Long(0x1234)));
    assert_eq!(
        (d.tl0picidx, d.tid, d.keyidx, d.len),
        (Some(5), Some((2, true)), Some(7), 6)
    );
    // K without T: KEYIDX only.
    let d = Descriptor::parse(&[0x80, 0x10, 0x3f, 0xaa]).unwrap();
    assert_eq!((d.tid, d.keyidx), (None, Some(31)));
    // Every prefix of a descriptor is truncated; so is a descriptor without data.
    let full = [0x90, 0xf0, 0x92, 0x34, 0x05, 0xa7, 0xaa];
    assert_eq!(Descriptor::parse(&[]), Err(DepacketizeError::Empty));
    for n in 1..full.len() {
        assert_eq!(
            Descriptor::parse(&full[..n]),
            Err(DepacketizeError::Truncated),
            "{n}"
        );
    }
}

#[test]
fn rewrite_in_place() {
    let mut p = [0x90, 0xc0, 0x92, 0x34, 0x05, 0xaa];
    set_picture_id(&mut p, 0x7ffe).unwrap();
    set_tl0picidx(&mut p, 9).unwrap();
    let d = Descriptor::parse(&p).unwrap();
    assert_eq!(
        (d.picture_id, d.tl0picidx),
        (Some(PictureId::Long(0x7ffe)), Some(9))
    );
    assert_eq!(p[5], 0xaa);
    let mut short = [0x90, 0xc0, 0x11, 0x05, 0xaa];
    assert_eq!(set_picture_id(&mut short, 1), Err(RewriteError::Absent));
    set_tl0picidx(&mut short, 6).unwrap();
    assert_eq!(short, [0x90, 0xc0, 0x11, 0x06, 0xaa]);
    let mut none = [0x10, 0xaa];
    assert_eq!(set_tl0picidx(&mut none, 1), Err(RewriteError::Absent));
    assert_eq!(
        set_picture_id(&mut [0x80], 1),
        Err(RewriteError::Malformed(DepacketizeError::Truncated))
    );
}

#[test]
fn keyframes() {
    assert_eq!(keyframe_size(KEY), Some((176, 144)));
    let mut inter = KEY.to_vec();
    inter[0] |= 1;
    assert_eq!(keyframe_size(&inter), None);
    assert!(payload_starts_keyframe(
        &[&[0x90, 0x80, 0x80, 0x01][..], KEY].concat()
    ));
    assert!(!payload_starts_keyframe(
        &[&[0x80, 0x80, 0x80, 0x01][..], KEY].concat()
    ));
    assert!(!payload_starts_keyframe(&[&[0x91][..], KEY].concat()));
}

#[test]
fn payloader_layout() {
    let mut pay = Vp8Payloader::new(8, 0x7fff).unwrap();
    let mut got = Vec::new();
    pay.packetize(KEY, |p, m| got.push((p.to_vec(), m)))
        .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0],
        ([&[0x90, 0x80, 0xff, 0xff][..], &KEY[..4]].concat(), false)
    );
    assert_eq!(
        got[2],
        ([&[0x80, 0x80, 0xff, 0xff][..], &KEY[8..]].concat(), true)
    );
    assert_eq!(pay.picture_id(), 0);
    assert!(Vp8Payloader::new(4, 0).is_err());
    assert_eq!(
        pay.packetize(&[], |_, _| ()),
        Err(crate::PacketizeError::EmptyFrame)
    );
}

#[test]
fn depacketizer_reports_loss() {
    let mut pay = Vp8Payloader::new(6, 0).unwrap();
    let mut packets = Vec::new();
    for ts in [0u32, 3000, 6000] {
        pay.packetize(KEY, |p, m| packets.push((ts, p.to_vec(), m)))
            .unwrap();
    }
    let mut dep = Vp8Depacketizer::new();
    let mut frames = Vec::new();
    for (seq, (ts, p, m)) in packets.iter().enumerate() {
        if seq == 7 {
            continue; // a middle packet of the second frame
        }
        if let Some(f) = dep.push(meta(seq as u16, *ts, *m), p).unwrap() {
            frames.push((f.timestamp, f.data.to_vec(), f.keyframe, f.after_loss));
        }
    }
    assert_eq!(
        frames,
        vec![
            (0, KEY.to_vec(), true, false),
            (6000, KEY.to_vec(), true, true)
        ]
    );
    assert_eq!(dep.dropped(), 1);
}
