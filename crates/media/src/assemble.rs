//! Frame reassembly shared by the video depacketizers: sequence continuity, timestamp change,
//! start and marker bits (RFC 3550 §5.1; RFC 7741 §4.5; RFC 6184 §5.1).
//!
//! Input is expected in sequence order (the server's reorder buffer comes first): any jump in
//! sequence numbers is loss.

use crate::RtpMeta;

/// The most bytes one frame may take; a peer that never sets the marker cannot grow the buffer
/// past this.
pub(crate) const MAX_FRAME: usize = 8 << 20;

/// A whole frame (VP8) or access unit (H.264, Annex B) reassembled from RTP payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The encoded frame.
    pub data: &'a [u8],
    /// RTP timestamp shared by the frame's packets.
    pub timestamp: u32,
    /// A decoder can start here.
    pub keyframe: bool,
    /// Packets were lost or frames dropped since the previous frame returned: unless this one
    /// is a keyframe, a decoder needs a keyframe before it (send a PLI).
    pub after_loss: bool,
}

/// Why a payload was not used. The packet is ignored; a frame it belonged to is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DepacketizeError {
    /// The payload is empty.
    #[error("empty payload")]
    Empty,
    /// A payload descriptor, aggregation unit or fragment header runs past the payload's end.
    #[error("payload truncated inside its header")]
    Truncated,
    /// An H.264 packet type this depacketizer does not take (STAP-B, MTAP, FU-B, reserved).
    #[error("unsupported H.264 packet type {0}")]
    Unsupported(u8),
    /// An H.264 FU-A that continues no fragmented NAL unit, or starts one while another is
    /// still open.
    #[error("FU-A fragment out of place")]
    BadFragment,
    /// The same sequence number as the packet before.
    #[error("duplicate packet")]
    Duplicate,
    /// The frame grew past the size limit without a marker.
    #[error("frame larger than {MAX_FRAME} bytes")]
    TooLarge,
}

/// Collects one frame's bytes in a reused buffer.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    pub buf: Vec<u8>,
    building: bool,
    ts: Option<u32>,
    last_seq: Option<u16>,
    after_loss: bool,
    dropped: u64,
}

impl Assembler {
    /// Takes a packet's header facts; returns whether its data belongs to the frame being built
    /// (the caller then appends it to `buf`). `start` is the payload's own start-of-frame flag
    /// (VP8's S bit with PID 0); `None` when a new timestamp is the only sign (H.264).
    pub fn begin(&mut self, m: RtpMeta, start: Option<bool>) -> Result<bool, DepacketizeError> {
        let gap = match self.last_seq {
            Some(last) if last == m.seq => return Err(DepacketizeError::Duplicate),
            Some(last) => m.seq != last.wrapping_add(1),
            None => false,
        };
        self.last_seq = Some(m.seq);
        self.after_loss |= gap;
        let new_ts = self.ts != Some(m.timestamp);
        // Without a start flag, a frame begun after a gap may miss its first packets.
        let starts = start.unwrap_or(new_ts && !gap);
        let continues = self.building && !gap && !new_ts;
        if starts || !continues {
            if self.building {
                self.abandon();
            }
            if new_ts && !starts {
                // A frame whose first packet we never saw.
                self.dropped += 1;
                self.after_loss = true;
            }
            self.ts = Some(m.timestamp);
        }
        if starts {
            self.buf.clear();
            self.building = true;
        }
        Ok(self.building)
    }

    /// Drops the frame being built (a packet of it was lost or malformed).
    pub fn abandon(&mut self) {
        if self.building {
            self.building = false;
            self.dropped += 1;
            self.after_loss = true;
        }
    }

    /// Checks the size limit after an append; drops the frame past it.
    pub fn check_size(&mut self) -> Result<(), DepacketizeError> {
        if self.buf.len() > MAX_FRAME {
            self.abandon();
            self.buf.clear();
            return Err(DepacketizeError::TooLarge);
        }
        Ok(())
    }

    /// Ends the frame at the marker: returns its timestamp and loss flag.
    pub fn complete(&mut self, marker: bool) -> Option<(u32, bool)> {
        if !(marker && self.building) {
            return None;
        }
        self.building = false;
        let after_loss = std::mem::take(&mut self.after_loss);
        Some((self.ts.unwrap_or(0), after_loss))
    }

    /// Frames dropped so far because packets were lost or malformed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: u16, timestamp: u32, marker: bool) -> RtpMeta {
        RtpMeta {
            seq,
            timestamp,
            marker,
        }
    }

    #[test]
    fn explicit_start_survives_gap_but_flags_loss() {
        let mut a = Assembler::default();
        assert_eq!(a.begin(meta(1, 10, false), Some(true)), Ok(true));
        assert_eq!(a.complete(false), None);
        // Packet 2 (the end of frame 10) is lost; 3 starts frame 20.
        assert_eq!(a.begin(meta(3, 20, true), Some(true)), Ok(true));
        assert_eq!(a.complete(true), Some((20, true)));
        assert_eq!(a.dropped(), 1);
        assert_eq!(a.begin(meta(4, 30, true), Some(true)), Ok(true));
        assert_eq!(a.complete(true), Some((30, false)));
    }

    #[test]
    fn implicit_start_after_gap_is_dropped() {
        let mut a = Assembler::default();
        assert_eq!(a.begin(meta(65535, 10, true), None), Ok(true));
        assert_eq!(a.complete(true), Some((10, false)));
        assert_eq!(a.begin(meta(0, 20, false), None), Ok(true));
        // 1 lost: the rest of frame 20 is skipped, frame 30 starts clean but flagged.
        assert_eq!(a.begin(meta(2, 20, true), None), Ok(false));
        assert_eq!(a.complete(true), None);
        assert_eq!(a.begin(meta(3, 30, true), None), Ok(true));
        assert_eq!(a.complete(true), Some((30, true)));
        assert_eq!(
            a.begin(meta(3, 30, true), None),
            Err(DepacketizeError::Duplicate)
        );
    }
}
