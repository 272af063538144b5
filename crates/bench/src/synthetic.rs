//! Synthetic VP8-shaped frames for load and latency: a real VP8 frame tag (RFC 6386 §9.1; a
//! keyframe has the start code and a size), zeros after it, and in every RTP packet's share of
//! the frame a *stamp*: a magic, the send time and the sending publisher's SSRC. A viewer reads
//! the stamp from any packet it receives, so latency needs no frame reassembly, and a frame's
//! origin tells which publisher made it (after a takeover, say).

use std::sync::OnceLock;
use std::time::Instant;

/// Marks a stamp.
pub const MAGIC: [u8; 4] = *b"LRTC";
/// Where the stamp starts in each packet's share of the frame (after the VP8 payload
/// descriptor): past a keyframe's 10-byte header.
pub const STAMP_AT: usize = 16;
/// Magic, 8 bytes of send time, 4 bytes of origin.
pub const STAMP_LEN: usize = 16;
/// The smallest synthetic frame.
pub const MIN_FRAME: usize = STAMP_AT + STAMP_LEN;

/// What a stamp says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// When the frame was made, in microseconds of [`micros`].
    pub sent_us: u64,
    /// The SSRC of the publisher that made it.
    pub origin: u32,
}

/// Microseconds of `at` since a process-wide epoch (the first call): publishers and viewers of
/// one process share the clock, so a stamp's age is a latency.
pub fn micros(at: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

/// Writes a frame of `size` bytes (at least [`MIN_FRAME`]) into `out`, with a stamp in each
/// `chunk`-byte share (the payloader's data per packet).
pub fn write_frame(out: &mut Vec<u8>, size: usize, keyframe: bool, chunk: usize, stamp: Stamp) {
    out.clear();
    out.resize(size.max(MIN_FRAME), 0);
    // Frame tag: show_frame = 1, version 0, P = 0 for a keyframe; then a keyframe's start
    // code and 640x360.
    let header: &[u8] = if keyframe {
        &[0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]
    } else {
        &[0x11, 0, 0]
    };
    if let Some(h) = out.get_mut(..header.len()) {
        h.copy_from_slice(header);
    }
    let mut bytes = [0u8; STAMP_LEN];
    bytes[..4].copy_from_slice(&MAGIC);
    bytes[4..12].copy_from_slice(&stamp.sent_us.to_be_bytes());
    bytes[12..].copy_from_slice(&stamp.origin.to_be_bytes());
    let mut at = STAMP_AT;
    while let Some(slot) = out.get_mut(at..at + STAMP_LEN) {
        slot.copy_from_slice(&bytes);
        at += chunk.max(MIN_FRAME);
    }
}

/// The stamp in one packet's share of a frame (the RTP payload after the VP8 descriptor).
pub fn read_stamp(data: &[u8]) -> Option<Stamp> {
    let s = data.get(STAMP_AT..STAMP_AT + STAMP_LEN)?;
    if s.get(..4)? != MAGIC {
        return None;
    }
    Some(Stamp {
        sent_us: u64::from_be_bytes(s.get(4..12)?.try_into().ok()?),
        origin: u32::from_be_bytes(s.get(12..16)?.try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::vp8::{Descriptor, Vp8Payloader, keyframe_size};

    #[test]
    fn every_packet_of_a_frame_carries_the_stamp() {
        let stamp = Stamp {
            sent_us: 123_456_789,
            origin: 0xfeed,
        };
        let max_payload = 1200;
        let chunk = max_payload - Vp8Payloader::DESCRIPTOR_LEN;
        let mut frame = Vec::new();
        write_frame(&mut frame, 5000, true, chunk, stamp);
        assert_eq!(keyframe_size(&frame), Some((640, 360)));
        let mut payloader = Vp8Payloader::new(max_payload, 7).unwrap();
        let mut packets = 0;
        payloader
            .packetize(&frame, |payload, _| {
                let d = Descriptor::parse(payload).unwrap();
                let data = &payload[d.len..];
                // The last share may be too short to hold one.
                if data.len() >= MIN_FRAME {
                    assert_eq!(read_stamp(data), Some(stamp));
                }
                packets += 1;
            })
            .unwrap();
        assert_eq!(packets, 5);
        write_frame(&mut frame, 10, false, chunk, stamp);
        assert_eq!(frame.len(), MIN_FRAME);
        assert_eq!(keyframe_size(&frame), None);
        assert_eq!(read_stamp(&frame), Some(stamp));
        assert_eq!(read_stamp(&[0; 40]), None);
    }
}
