//! The VP8 RTP payload format (RFC 7741): the payload descriptor, keyframe detection, and
//! in-place rewriting of PictureID / TL0PICIDX for forwarding.
//!
//! ```text
//!      0 1 2 3 4 5 6 7
//!     +-+-+-+-+-+-+-+-+
//!     |X|R|N|S|R| PID | (REQUIRED)
//!     +-+-+-+-+-+-+-+-+
//! X:  |I|L|T|K| RSV   | (OPTIONAL)
//!     +-+-+-+-+-+-+-+-+
//! I:  |M| PictureID   | (OPTIONAL, a second byte when M = 1)
//!     +-+-+-+-+-+-+-+-+
//! L:  |   TL0PICIDX   | (OPTIONAL)
//!     +-+-+-+-+-+-+-+-+
//! T/K:|TID|Y| KEYIDX  | (OPTIONAL)
//!     +-+-+-+-+-+-+-+-+
//! ```

mod packetize;

pub use packetize::{Vp8Depacketizer, Vp8Payloader};

use crate::DepacketizeError;

/// PictureID as carried: 7 bits (M = 0) or 15 bits (M = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureId {
    /// One byte, 7 bits.
    Short(u8),
    /// Two bytes, 15 bits.
    Long(u16),
}

/// A parsed payload descriptor (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// N: the frame can be discarded without affecting others.
    pub non_reference: bool,
    /// S: the payload starts a VP8 partition.
    pub start: bool,
    /// PID: the partition index.
    pub partition: u8,
    /// I: PictureID.
    pub picture_id: Option<PictureId>,
    /// L: TL0PICIDX.
    pub tl0picidx: Option<u8>,
    /// T: temporal layer index and layer sync bit Y.
    pub tid: Option<(u8, bool)>,
    /// K: temporal key frame index.
    pub keyidx: Option<u8>,
    /// Descriptor length: the VP8 data starts at this offset.
    pub len: usize,
}

impl Descriptor {
    /// Parses the descriptor at the start of an RTP payload, which must carry VP8 data after it.
    pub fn parse(p: &[u8]) -> Result<Self, DepacketizeError> {
        let byte = |i: usize| p.get(i).copied().ok_or(DepacketizeError::Truncated);
        let b0 = *p.first().ok_or(DepacketizeError::Empty)?;
        let mut d = Descriptor {
            non_reference: b0 & 0x20 != 0,
            start: b0 & 0x10 != 0,
            partition: b0 & 0x07,
            picture_id: None,
            tl0picidx: None,
            tid: None,
            keyidx: None,
            len: 1,
        };
        if b0 & 0x80 != 0 {
            let x = byte(1)?;
            d.len = 2;
            if x & 0x80 != 0 {
                let m = byte(2)?;
                d.picture_id = Some(if m & 0x80 != 0 {
                    d.len = 4;
                    PictureId::Long(u16::from(m & 0x7f) << 8 | u16::from(byte(3)?))
                } else {
                    d.len = 3;
                    PictureId::Short(m)
                });
            }
            if x & 0x40 != 0 {
                d.tl0picidx = Some(byte(d.len)?);
                d.len += 1;
            }
            if x & 0x30 != 0 {
                let tk = byte(d.len)?;
                d.len += 1;
                d.tid = (x & 0x20 != 0).then_some((tk >> 6, tk & 0x20 != 0));
                d.keyidx = (x & 0x10 != 0).then_some(tk & 0x1f);
            }
        }
        if d.len >= p.len() {
            return Err(DepacketizeError::Truncated);
        }
        Ok(d)
    }

    /// The payload starts a frame: S = 1 and PID = 0 (RFC 7741 §4.2).
    pub fn starts_frame(&self) -> bool {
        self.start && self.partition == 0
    }
}

/// Why a descriptor field cannot be rewritten in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The payload's descriptor is malformed.
    #[error("malformed VP8 payload descriptor: {0}")]
    Malformed(#[from] DepacketizeError),
    /// The field is absent (or PictureID is only 7 bits: widening it would move the data).
    #[error("field absent from the VP8 payload descriptor")]
    Absent,
}

/// Overwrites the 15-bit PictureID of a payload (for an SFU keeping a viewer's PictureIDs
/// continuous across publishers).
pub fn set_picture_id(payload: &mut [u8], id: u16) -> Result<(), RewriteError> {
    let d = Descriptor::parse(payload)?;
    let Some(PictureId::Long(_)) = d.picture_id else {
        return Err(RewriteError::Absent);
    };
    let field = payload.get_mut(2..4).ok_or(RewriteError::Absent)?;
    field.copy_from_slice(&(0x8000 | (id & 0x7fff)).to_be_bytes());
    Ok(())
}

/// Overwrites the TL0PICIDX of a payload.
pub fn set_tl0picidx(payload: &mut [u8], value: u8) -> Result<(), RewriteError> {
    let d = Descriptor::parse(payload)?;
    d.tl0picidx.ok_or(RewriteError::Absent)?;
    let at = match d.picture_id {
        None => 2,
        Some(PictureId::Short(_)) => 3,
        Some(PictureId::Long(_)) => 4,
    };
    *payload.get_mut(at).ok_or(RewriteError::Absent)? = value;
    Ok(())
}

/// Width and height of a VP8 keyframe, or `None` for an interframe or a malformed header
/// (RFC 6386 §9.1: frame tag with P = 0, start code 9d 01 2a, then 14-bit width and height
/// each with 2 bits of scaling).
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    match frame {
        [tag, _, _, 0x9d, 0x01, 0x2a, w0, w1, h0, h1, ..] if tag & 0x01 == 0 => Some((
            u16::from_le_bytes([*w0, *w1]) & 0x3fff,
            u16::from_le_bytes([*h0, *h1]) & 0x3fff,
        )),
        _ => None,
    }
}

/// Whether an RTP payload starts a keyframe (RFC 7741 §4.3: S = 1, PID = 0 and the P bit of
/// the VP8 payload header is 0), without waiting for the whole frame.
pub fn payload_starts_keyframe(payload: &[u8]) -> bool {
    Descriptor::parse(payload).is_ok_and(|d| {
        d.starts_frame() && payload.get(d.len).is_some_and(|first| first & 0x01 == 0)
    })
}

#[cfg(test)]
mod tests;
