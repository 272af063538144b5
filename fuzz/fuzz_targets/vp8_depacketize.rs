#![no_main]
//! Arbitrary payload sequences through the VP8 depacketizer, descriptor parser and rewriters;
//! then the whole input as one frame through payloader and depacketizer, which must give it
//! back unchanged.
use media::RtpMeta;
use media::vp8::{self, Descriptor, PictureId, Vp8Depacketizer, Vp8Payloader};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Records of [control, length, payload]: control's low 2 bits step the sequence number
    // (0 duplicates, 2-3 lose packets), bit 2 moves the timestamp, bit 3 is the marker.
    let mut dep = Vp8Depacketizer::new();
    let (mut seq, mut timestamp) = (0u16, 0u32);
    let mut rest = data;
    while let [ctl, len, tail @ ..] = rest {
        let (payload, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        seq = seq.wrapping_add(u16::from(ctl & 3));
        timestamp = timestamp.wrapping_add(u32::from(ctl & 4) * 750);
        let meta = RtpMeta {
            seq,
            timestamp,
            marker: ctl & 8 != 0,
        };
        if let Ok(Some(frame)) = dep.push(meta, payload) {
            assert!(!frame.data.is_empty() && frame.timestamp == timestamp);
        }
        let _ = vp8::payload_starts_keyframe(payload);
        let Ok(d) = Descriptor::parse(payload) else {
            continue;
        };
        assert!(d.len < payload.len());
        let mut copy = payload.to_vec();
        if vp8::set_picture_id(&mut copy, 0x4321).is_ok() {
            assert_eq!(
                Descriptor::parse(&copy).unwrap().picture_id,
                Some(PictureId::Long(0x4321))
            );
        }
        if vp8::set_tl0picidx(&mut copy, 0x5a).is_ok() {
            assert_eq!(Descriptor::parse(&copy).unwrap().tl0picidx, Some(0x5a));
        }
        assert_eq!(Descriptor::parse(&copy).unwrap().len, d.len);
    }

    let Some((&size, frame)) = data.split_first() else {
        return;
    };
    let Ok(mut pay) = Vp8Payloader::new(5 + usize::from(size), u16::from(size) << 7) else {
        return;
    };
    let mut dep = Vp8Depacketizer::new();
    let mut got = None;
    let mut seq = 0u16;
    let result = pay.packetize(frame, |p, marker| {
        assert!(p.len() <= 5 + usize::from(size));
        let out = dep
            .push(
                RtpMeta {
                    seq,
                    timestamp: 9,
                    marker,
                },
                p,
            )
            .unwrap();
        assert_eq!(out.is_some(), marker);
        if let Some(f) = out {
            got = Some(f.data.to_vec());
        }
        seq = seq.wrapping_add(1);
    });
    if result.is_ok() {
        assert_eq!(got.as_deref(), Some(frame));
    }
});
