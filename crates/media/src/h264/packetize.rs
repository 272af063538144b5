//! H.264 access units to RTP payloads and back, packetization mode 1 (RFC 6184 §5.6-5.8,
//! §6.3): single NAL unit packets, STAP-A aggregation of small NAL units, FU-A fragments.

use super::{NalUnits, is_keyframe, nal_type, types};
use crate::assemble::Assembler;
use crate::{DepacketizeError, Frame, PacketizeError, RtpMeta};

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const FU_START: u8 = 0x80;
const FU_END: u8 = 0x40;

/// Splits access units (Annex B) into RTP payloads. Consecutive NAL units that fit together
/// (typically SPS + PPS before an IDR slice) share one STAP-A; a NAL unit larger than the
/// maximum payload is cut into FU-As; any other goes alone. NAL units of the unspecified
/// types 0 and 24-31 are left out.
#[derive(Debug)]
pub struct H264Payloader {
    max_payload: usize,
    /// The STAP-A being gathered: its header byte, then (length, NAL unit) pairs.
    stap: Vec<u8>,
    stap_units: usize,
    buf: Vec<u8>,
}

impl H264Payloader {
    /// A payloader making payloads of at most `max_payload` bytes (see
    /// [`crate::DEFAULT_MAX_PAYLOAD`]).
    pub fn new(max_payload: usize) -> Result<Self, PacketizeError> {
        if max_payload < 3 {
            return Err(PacketizeError::MaxPayloadTooSmall(max_payload));
        }
        Ok(H264Payloader {
            max_payload,
            stap: Vec::new(),
            stap_units: 0,
            buf: Vec::new(),
        })
    }

    /// Calls `emit(payload, marker)` for each RTP payload of one access unit, in order;
    /// `marker` is true on the last (RFC 6184 §5.1). All share the access unit's timestamp.
    pub fn packetize(
        &mut self,
        access_unit: &[u8],
        mut emit: impl FnMut(&[u8], bool),
    ) -> Result<(), PacketizeError> {
        // Types 0 and 24-31 are unspecified in H.264 and mean RTP packet types here (RFC 6184
        // §5.2): a receiver could not tell them apart, so they are not sent.
        let mut nals = NalUnits::new(access_unit)
            .filter(|n| matches!(nal_type(n), 1..=23))
            .peekable();
        if nals.peek().is_none() {
            return Err(PacketizeError::EmptyFrame);
        }
        self.stap.clear();
        self.stap_units = 0;
        while let Some(nal) = nals.next() {
            let last = nals.peek().is_none();
            if 3 + nal.len() <= self.max_payload {
                if !self.stap.is_empty() && self.stap.len() + 2 + nal.len() > self.max_payload {
                    self.flush(false, &mut emit);
                }
                self.aggregate(nal);
                if last {
                    self.flush(true, &mut emit);
                }
                continue;
            }
            self.flush(false, &mut emit);
            if nal.len() <= self.max_payload {
                emit(nal, last);
            } else {
                self.fragment(nal, last, &mut emit);
            }
        }
        Ok(())
    }

    fn aggregate(&mut self, nal: &[u8]) {
        // STAP-A header (RFC 6184 §5.7.1): F is the OR and NRI the maximum of the units'.
        let head = nal.first().copied().unwrap_or(0);
        match self.stap.first_mut() {
            None => self.stap.push(types::STAP_A | (head & 0xe0)),
            Some(h) => *h = ((*h | head) & 0x80) | (*h & 0x60).max(head & 0x60) | types::STAP_A,
        }
        self.stap
            .extend_from_slice(&(nal.len() as u16).to_be_bytes());
        self.stap.extend_from_slice(nal);
        self.stap_units += 1;
    }

    /// Emits the gathered NAL units: one alone as a single NAL unit packet, more as a STAP-A.
    fn flush(&mut self, marker: bool, emit: &mut impl FnMut(&[u8], bool)) {
        match self.stap_units {
            0 => {}
            1 => emit(self.stap.get(3..).unwrap_or_default(), marker),
            _ => emit(&self.stap, marker),
        }
        self.stap.clear();
        self.stap_units = 0;
    }

    /// FU-A (RFC 6184 §5.8): the NAL header's F and NRI go into the FU indicator, its type
    /// into the FU header with the start and end bits; the header byte itself is not sent.
    fn fragment(&mut self, nal: &[u8], last: bool, emit: &mut impl FnMut(&[u8], bool)) {
        let head = nal.first().copied().unwrap_or(0);
        let body = nal.get(1..).unwrap_or_default();
        let mut chunks = body.chunks(self.max_payload - 2).peekable();
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            let end = chunks.peek().is_none();
            let flags = if first { FU_START } else { 0 } | if end { FU_END } else { 0 };
            self.buf.clear();
            self.buf
                .extend_from_slice(&[(head & 0xe0) | types::FU_A, flags | (head & 0x1f)]);
            self.buf.extend_from_slice(chunk);
            emit(&self.buf, last && end);
            first = false;
        }
    }
}

/// Calls `f` on each NAL unit of a STAP-A payload; fails on a malformed one (before any call
/// when run once with a no-op `f`).
fn stap_a_units(payload: &[u8], mut f: impl FnMut(&[u8])) -> Result<(), DepacketizeError> {
    let mut rest = payload.get(1..).unwrap_or_default();
    if rest.is_empty() {
        return Err(DepacketizeError::Truncated);
    }
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let unit = tail
            .get(..len)
            .filter(|u| !u.is_empty())
            .ok_or(DepacketizeError::Truncated)?;
        f(unit);
        rest = tail.get(len..).unwrap_or_default();
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err(DepacketizeError::Truncated)
    }
}

/// Reassembles access units (Annex B, 4-byte start codes) from RTP payloads given in sequence
/// order: all packets of one timestamp up to the marker. A sequence gap drops the access unit
/// it falls in.
#[derive(Debug, Default)]
pub struct H264Depacketizer {
    asm: Assembler,
    /// An FU-A NAL unit has started and not ended.
    fu_open: bool,
}

impl H264Depacketizer {
    /// A depacketizer with nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one packet; returns an access unit when this packet completes one.
    pub fn push(
        &mut self,
        meta: RtpMeta,
        payload: &[u8],
    ) -> Result<Option<Frame<'_>>, DepacketizeError> {
        let kind = nal_type(payload);
        match kind {
            _ if payload.is_empty() => return Err(DepacketizeError::Empty),
            1..=23 => {}
            types::STAP_A => stap_a_units(payload, |_| ())?,
            types::FU_A if payload.len() < 3 => return Err(DepacketizeError::Truncated),
            types::FU_A => {}
            _ => return Err(DepacketizeError::Unsupported(kind)),
        }
        if !self.asm.begin(meta, None)? {
            self.fu_open = false;
            return Ok(None);
        }
        if self.asm.buf.is_empty() {
            self.fu_open = false;
        }
        if let Err(e) = self.append(kind, payload) {
            self.asm.abandon();
            self.fu_open = false;
            return Err(e);
        }
        self.asm.check_size()?;
        if meta.marker && self.fu_open {
            // The marker came inside a fragmented NAL unit.
            self.asm.abandon();
            self.fu_open = false;
            return Err(DepacketizeError::BadFragment);
        }
        Ok(self
            .asm
            .complete(meta.marker)
            .map(|(timestamp, after_loss)| Frame {
                data: &self.asm.buf,
                timestamp,
                keyframe: is_keyframe(&self.asm.buf),
                after_loss,
            }))
    }

    fn append(&mut self, kind: u8, payload: &[u8]) -> Result<(), DepacketizeError> {
        let buf = &mut self.asm.buf;
        match (kind, payload) {
            (types::FU_A, [indicator, header, body @ ..]) => {
                let (start, end) = (header & FU_START != 0, header & FU_END != 0);
                // RFC 6184 §5.8: S and E never both set; a fragment continues an open one.
                if (start && end) || start == self.fu_open {
                    return Err(DepacketizeError::BadFragment);
                }
                if start {
                    buf.extend_from_slice(&START_CODE);
                    buf.push((indicator & 0xe0) | (header & 0x1f));
                }
                buf.extend_from_slice(body);
                self.fu_open = !end;
            }
            _ if self.fu_open => return Err(DepacketizeError::BadFragment),
            (types::STAP_A, _) => stap_a_units(payload, |unit| {
                buf.extend_from_slice(&START_CODE);
                buf.extend_from_slice(unit);
            })?,
            _ => {
                buf.extend_from_slice(&START_CODE);
                buf.extend_from_slice(payload);
            }
        }
        Ok(())
    }

    /// Access units dropped so far because packets were lost or malformed.
    pub fn dropped(&self) -> u64 {
        self.asm.dropped()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
