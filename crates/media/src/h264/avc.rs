//! H.264 the way MP4 and Matroska hold it (ISO/IEC 14496-15): NAL units behind 4-byte
//! lengths instead of start codes, and the SPS/PPS in a decoder configuration record.

use super::{NalUnits, nal_type, types};

/// The AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1) for one SPS and one PPS,
/// with 4-byte NAL unit lengths; `None` when the SPS is too short to give its profile.
pub fn avcc(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    let [_, profile, compat, level, ..] = *sps else {
        return None;
    };
    let (Ok(sps_len), Ok(pps_len)) = (u16::try_from(sps.len()), u16::try_from(pps.len())) else {
        return None;
    };
    let mut out = vec![1, profile, compat, level, 0xfc | 3, 0xe0 | 1];
    out.extend_from_slice(&sps_len.to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1);
    out.extend_from_slice(&pps_len.to_be_bytes());
    out.extend_from_slice(pps);
    Some(out)
}

/// The first SPS and PPS NAL units of an Annex B access unit, if it holds both.
pub fn parameter_sets(access_unit: &[u8]) -> Option<(&[u8], &[u8])> {
    let find = |t| NalUnits::new(access_unit).find(|n| nal_type(n) == t);
    Some((find(types::SPS)?, find(types::PPS)?))
}

/// Appends an Annex B access unit to `out` as length-prefixed NAL units (4-byte big-endian
/// lengths), leaving out access unit delimiters, which that form does not carry.
pub fn to_length_prefixed(access_unit: &[u8], out: &mut Vec<u8>) {
    for nal in NalUnits::new(access_unit).filter(|n| nal_type(n) != types::AUD) {
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
}
