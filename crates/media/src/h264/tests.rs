use super::*;
use crate::h264::{AccessUnits, profile_level_id};

fn meta(seq: u16, timestamp: u32, marker: bool) -> RtpMeta {
    RtpMeta {
        seq,
        timestamp,
        marker,
    }
}

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

fn annexb(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| [&START_CODE[..], n].concat())
        .collect()
}

fn packetize(max: usize, au: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut pay = H264Payloader::new(max).unwrap();
    let mut out = Vec::new();
    pay.packetize(au, |p, m| out.push((p.to_vec(), m))).unwrap();
    out
}

#[test]
fn stap_a_then_fu_a() {
    let idr: Vec<u8> = [0x65].into_iter().chain(1..=20).collect();
    let au = annexb(&[SPS, PPS, &idr]);
    let got = packetize(16, &au);
    // RFC 6184 §5.7.1: STAP-A header (NRI = max of SPS/PPS = 3), 16-bit sizes.
    let stap = [&[0x78, 0, 5][..], SPS, &[0, 4], PPS].concat();
    assert_eq!(got[0], (stap, false));
    // §5.8: FU indicator 0x7c (NRI 3, type 28), FU header S/E + type 5, 14 bytes a piece.
    assert_eq!(got[1], ([&[0x7c, 0x85][..], &idr[1..15]].concat(), false));
    assert_eq!(got[2], ([&[0x7c, 0x45][..], &idr[15..]].concat(), true));
    assert_eq!(profile_level_id(SPS), Some([0x42, 0xc0, 0x1f]));
    assert_eq!(profile_level_id(PPS), None);

    let mut dep = H264Depacketizer::new();
    let mut frames = Vec::new();
    for (i, (p, m)) in got.iter().enumerate() {
        if let Some(f) = dep.push(meta(i as u16, 90, *m), p).unwrap() {
            frames.push((f.data.to_vec(), f.keyframe, f.after_loss));
        }
    }
    assert_eq!(frames, vec![(au, true, false)]);
}

#[test]
fn single_nal_units_when_nothing_fits_together() {
    let a: Vec<u8> = [0x41].into_iter().chain(1..=10).collect();
    let b: Vec<u8> = [0x01].into_iter().chain(1..=10).collect();
    let got = packetize(13, &annexb(&[&a, &b]));
    assert_eq!(got, vec![(a.clone(), false), (b.clone(), true)]);
    // Two small ones share a STAP-A: F and NRI merged from 0x41 and 0x01.
    let got = packetize(64, &annexb(&[&a, &b]));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0[0], 0x58);
    assert!(H264Payloader::new(2).is_err());
    let mut pay = H264Payloader::new(100).unwrap();
    assert_eq!(
        pay.packetize(&[0, 0, 1], |_, _| ()),
        Err(PacketizeError::EmptyFrame)
    );
}

#[test]
fn malformed_and_lost() {
    let mut dep = H264Depacketizer::new();
    assert_eq!(
        dep.push(meta(0, 0, true), &[]),
        Err(DepacketizeError::Empty)
    );
    assert_eq!(
        dep.push(meta(0, 0, true), &[0x19, 1]),
        Err(DepacketizeError::Unsupported(25))
    );
    assert_eq!(
        dep.push(meta(0, 0, true), &[0x78, 0, 5, 1]),
        Err(DepacketizeError::Truncated)
    );
    assert_eq!(
        dep.push(meta(0, 0, true), &[0x78, 0, 0]),
        Err(DepacketizeError::Truncated)
    );
    assert_eq!(
        dep.push(meta(0, 0, true), &[0x78, 0, 1, 0x41, 0]),
        Err(DepacketizeError::Truncated)
    );
    assert_eq!(
        dep.push(meta(0, 0, true), &[0x7c, 0xc5, 1]),
        Err(DepacketizeError::BadFragment)
    );
    // A middle fragment with no start.
    assert_eq!(
        dep.push(meta(1, 5, true), &[0x7c, 0x05, 1]),
        Err(DepacketizeError::BadFragment)
    );
    // FU-A start, then a lost middle: the end is skipped, the next access unit is flagged.
    assert_eq!(dep.push(meta(2, 10, false), &[0x7c, 0x85, 1]), Ok(None));
    assert_eq!(dep.push(meta(4, 10, true), &[0x7c, 0x45, 3]), Ok(None));
    let f = dep.push(meta(5, 20, true), &[0x41, 9]).unwrap().unwrap();
    assert_eq!(
        (f.data, f.keyframe, f.after_loss),
        (&[0, 0, 0, 1, 0x41, 9][..], false, true)
    );
    // Marker inside a fragmented NAL unit.
    assert_eq!(dep.push(meta(6, 30, false), &[0x7c, 0x85, 1]), Ok(None));
    assert_eq!(
        dep.push(meta(7, 30, true), &[0x7c, 0x05, 2]),
        Err(DepacketizeError::BadFragment)
    );
    assert!(dep.dropped() >= 2);
}

#[test]
fn access_units_survive_round_trip() {
    let au1 = annexb(&[SPS, PPS, &[0x65, 0x88, 1, 2, 3], &[0x65, 0x40, 4]]);
    let au2 = annexb(&[&[0x41, 0x9a, 5, 6]]);
    let stream = [au1.clone(), au2.clone()].concat();
    let aus: Vec<_> = AccessUnits::new(&stream).collect();
    assert_eq!(aus, vec![&au1[..], &au2[..]]);
}

#[test]
fn keyframe_starts_in_each_payload_form() {
    use crate::h264::payload_starts_keyframe as starts;
    assert!(starts(&[0x67, 0x42, 0xc0, 0x1f])); // single SPS
    assert!(starts(&[0x65, 0x88])); // single IDR slice
    assert!(!starts(&[0x41, 0x9a])); // single non-IDR slice
    assert!(starts(&[0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce])); // STAP-A: SPS, PPS
    assert!(!starts(&[0x18, 0, 2, 0x06, 0x05, 0, 2, 0x68, 0xce])); // STAP-A: SEI, PPS
    assert!(!starts(&[0x18, 0, 9, 0x67])); // STAP-A with a size past the end
    assert!(starts(&[0x7c, 0x85, 0x88])); // FU-A start of an IDR
    assert!(!starts(&[0x7c, 0x05, 0x88])); // FU-A continuation of an IDR
    assert!(!starts(&[0x7c, 0x81, 0x9a])); // FU-A start of a non-IDR slice
    assert!(!starts(&[]));
}
