//! H.264: Annex B streams and the RTP payload format in packetization mode 1 (RFC 6184).
//!
//! Access units travel as Annex B bytes (NAL units behind start codes) both into the
//! payloader and out of the depacketizer, so files and recordings need no conversion.

mod annexb;
mod avc;
mod packetize;
mod sps;

pub use annexb::{AccessUnits, NalUnits};
pub use avc::{avcc, parameter_sets, to_length_prefixed};
pub use packetize::{H264Depacketizer, H264Payloader};
pub use sps::sps_size;

/// NAL unit types used here (ITU-T H.264 Table 7-1; RFC 6184 §5.2 for 24-29).
pub mod types {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// Coded slice of an IDR picture.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
    /// Single-time aggregation packet A.
    pub const STAP_A: u8 = 24;
    /// Fragmentation unit A.
    pub const FU_A: u8 = 28;
}

/// The type of a NAL unit from its header byte (0 for an empty slice).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

/// Whether an access unit (Annex B) is a point a decoder can start at: it holds an IDR slice
/// or a sequence parameter set.
pub fn is_keyframe(access_unit: &[u8]) -> bool {
    NalUnits::new(access_unit).any(|n| matches!(nal_type(n), types::IDR | types::SPS))
}

/// Whether an RTP payload (RFC 6184 §5.6–5.8) begins with or aggregates an SPS or an IDR
/// slice: the first packet of a keyframe access unit is such a packet. (The caller knows it
/// is the first packet of its access unit from the timestamp changing.)
pub fn payload_starts_keyframe(payload: &[u8]) -> bool {
    let key = |t: u8| matches!(t, types::IDR | types::SPS);
    match payload {
        [h, rest @ ..] if h & 0x1f == types::STAP_A => {
            // Aggregated NAL units, each with a 16-bit size (§5.7.1).
            let mut at = rest;
            while let [hi, lo, tail @ ..] = at {
                let size = usize::from(u16::from_be_bytes([*hi, *lo]));
                let Some((nal, next)) = (size <= tail.len()).then(|| tail.split_at(size)) else {
                    break;
                };
                if key(nal_type(nal)) {
                    return true;
                }
                at = next;
            }
            false
        }
        // FU-A: the start fragment (S bit) of an IDR slice (§5.8).
        [h, fu, ..] if h & 0x1f == types::FU_A => fu & 0x80 != 0 && key(fu & 0x1f),
        _ => key(nal_type(payload)),
    }
}

/// `profile-level-id` for SDP (RFC 6184 §8.1) from an SPS NAL unit: its profile_idc,
/// constraint flags and level_idc, the three bytes after the NAL header.
pub fn profile_level_id(sps: &[u8]) -> Option<[u8; 3]> {
    match sps {
        [h, p, c, l, ..] if h & 0x1f == types::SPS => Some([*p, *c, *l]),
        _ => None,
    }
}
