//! VP8 frames to RTP payloads and back (RFC 7741 §4.2-4.5).

use super::{Descriptor, keyframe_size};
use crate::assemble::Assembler;
use crate::{DepacketizeError, Frame, PacketizeError, RtpMeta};

/// Splits VP8 frames into RTP payloads, each with a 4-byte descriptor: X = 1, I = 1 and a
/// 15-bit PictureID (M = 1) that counts frames, S = 1 on a frame's first payload, PID 0.
/// The 15-bit PictureID is what lets an SFU rewrite it in place.
#[derive(Debug)]
pub struct Vp8Payloader {
    max_payload: usize,
    picture_id: u16,
    buf: Vec<u8>,
}

impl Vp8Payloader {
    /// Length of the descriptor this payloader writes.
    pub const DESCRIPTOR_LEN: usize = 4;

    /// A payloader making payloads of at most `max_payload` bytes (see
    /// [`crate::DEFAULT_MAX_PAYLOAD`]), numbering pictures from `first_picture_id` (taken
    /// modulo 2^15; RFC 7741 §4.2 suggests a random start).
    pub fn new(max_payload: usize, first_picture_id: u16) -> Result<Self, PacketizeError> {
        if max_payload <= Self::DESCRIPTOR_LEN {
            return Err(PacketizeError::MaxPayloadTooSmall(max_payload));
        }
        Ok(Vp8Payloader {
            max_payload,
            picture_id: first_picture_id & 0x7fff,
            buf: Vec::new(),
        })
    }

    /// The PictureID the next frame gets.
    pub fn picture_id(&self) -> u16 {
        self.picture_id
    }

    /// Calls `emit(payload, marker)` for each RTP payload of `frame`, in order; `marker` is
    /// true on the last (RFC 7741 §4.1). All of a frame's packets share its RTP timestamp.
    pub fn packetize(
        &mut self,
        frame: &[u8],
        mut emit: impl FnMut(&[u8], bool),
    ) -> Result<(), PacketizeError> {
        if frame.is_empty() {
            return Err(PacketizeError::EmptyFrame);
        }
        let [hi, lo] = (0x8000 | self.picture_id).to_be_bytes();
        let mut chunks = frame
            .chunks(self.max_payload - Self::DESCRIPTOR_LEN)
            .peekable();
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            self.buf.clear();
            self.buf
                .extend_from_slice(&[if first { 0x90 } else { 0x80 }, 0x80, hi, lo]);
            self.buf.extend_from_slice(chunk);
            emit(&self.buf, chunks.peek().is_none());
            first = false;
        }
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        Ok(())
    }
}

/// Reassembles VP8 frames from RTP payloads given in sequence order: a frame starts at S = 1
/// with PID 0 and ends at the marker; a sequence gap or a timestamp change drops the frame
/// being built (RFC 7741 §4.5).
#[derive(Debug, Default)]
pub struct Vp8Depacketizer {
    asm: Assembler,
}

impl Vp8Depacketizer {
    /// A depacketizer with nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one packet; returns a frame when this packet completes one.
    pub fn push(
        &mut self,
        meta: RtpMeta,
        payload: &[u8],
    ) -> Result<Option<Frame<'_>>, DepacketizeError> {
        let d = Descriptor::parse(payload)?;
        if self.asm.begin(meta, Some(d.starts_frame()))? {
            self.asm
                .buf
                .extend_from_slice(payload.get(d.len..).unwrap_or_default());
            self.asm.check_size()?;
        }
        Ok(self
            .asm
            .complete(meta.marker)
            .map(|(timestamp, after_loss)| Frame {
                data: &self.asm.buf,
                timestamp,
                keyframe: keyframe_size(&self.asm.buf).is_some(),
                after_loss,
            }))
    }

    /// Frames dropped so far because packets were lost or malformed.
    pub fn dropped(&self) -> u64 {
        self.asm.dropped()
    }
}
