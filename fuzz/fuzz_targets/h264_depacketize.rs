#![no_main]
//! Arbitrary payload sequences through the H.264 depacketizer; the input as an Annex B stream
//! through the NAL unit and access unit splitters; and each access unit through payloader and
//! depacketizer, which must give back the same NAL units.
use media::RtpMeta;
use media::h264::{self, AccessUnits, H264Depacketizer, H264Payloader, NalUnits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Records of [control, length, payload], as in the VP8 target.
    let mut dep = H264Depacketizer::new();
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
            assert!(frame.data.starts_with(&[0, 0, 0, 1]));
            let _ = h264::is_keyframe(frame.data);
        }
    }

    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let max = 3 + usize::from(size);
    let mut pay = H264Payloader::new(max).unwrap();
    let total: usize = NalUnits::new(stream).map(<[u8]>::len).sum();
    assert!(total <= stream.len());
    for (i, au) in AccessUnits::new(stream).enumerate() {
        let _ = NalUnits::new(au).map(h264::profile_level_id).count();
        let want: Vec<&[u8]> = NalUnits::new(au)
            .filter(|n| matches!(h264::nal_type(n), 1..=23))
            .collect();
        let mut dep = H264Depacketizer::new();
        let mut got = None;
        let mut seq = 0u16;
        let result = pay.packetize(au, |p, marker| {
            assert!(p.len() <= max);
            let meta = RtpMeta {
                seq,
                timestamp: i as u32,
                marker,
            };
            if let Some(f) = dep.push(meta, p).unwrap() {
                got = Some(f.data.to_vec());
            }
            seq = seq.wrapping_add(1);
        });
        if result.is_ok() {
            let got = got.expect("the marker packet completes the access unit");
            assert_eq!(NalUnits::new(&got).collect::<Vec<_>>(), want);
        } else {
            assert!(want.is_empty());
        }
    }
});
