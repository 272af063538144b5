//! Feedback messages (RFC 4585 §6): generic NACK, PLI, FIR (RFC 5104 §4.3.1) and REMB
//! (draft-alvestrand-rmcat-remb-03 §2.2). Each body starts with the sender's and the media
//! source's SSRC.

use super::{PT_PSFB, PT_RTPFB, RtcpError, RtcpWriter, be16, be24, be32, check_count, need};

/// A generic NACK (RFC 4585 §6.2.1): lost packets as PID + bitmask of the 16 following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack<'a> {
    body: &'a [u8],
}

impl<'a> Nack<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        // The FCI holds at least one PID/BLP pair.
        need("NACK", body, 12)?;
        Ok(Self { body })
    }
    /// Who sends the feedback.
    pub fn sender_ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// The stream whose packets were lost.
    pub fn media_ssrc(&self) -> u32 {
        be32(self.body, 4)
    }
    /// The FCI entries as `(PID, BLP)`.
    pub fn pairs(&self) -> impl Iterator<Item = (u16, u16)> + 'a {
        let fci = self.body.get(8..).unwrap_or(&[]);
        fci.chunks_exact(4).map(|c| (be16(c, 0), be16(c, 2)))
    }
    /// Every lost sequence number: each PID, then PID + i + 1 for each set bit i of its BLP.
    pub fn lost(&self) -> impl Iterator<Item = u16> + 'a {
        self.pairs().flat_map(|(pid, blp)| {
            let following = (0..16u16).filter(move |i| blp >> i & 1 == 1);
            std::iter::once(pid).chain(following.map(move |i| pid.wrapping_add(i + 1)))
        })
    }
}

/// A picture loss indication (RFC 4585 §6.3.1): "send me a keyframe".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pli {
    /// Who asks.
    pub sender_ssrc: u32,
    /// The video stream that needs a keyframe.
    pub media_ssrc: u32,
}

impl Pli {
    pub(super) fn parse(body: &[u8]) -> Result<Self, RtcpError> {
        need("PLI", body, 8)?;
        Ok(Self {
            sender_ssrc: be32(body, 0),
            media_ssrc: be32(body, 4),
        })
    }
}

/// A full intra request (RFC 5104 §4.3.1): `(SSRC, command sequence number)` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fir<'a> {
    body: &'a [u8],
}

impl<'a> Fir<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        need("FIR", body, 16)?;
        Ok(Self { body })
    }
    /// Who asks.
    pub fn sender_ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// The streams that need a keyframe, each with its request's sequence number: a repeated
    /// number is a retransmission of the same request (§4.3.1.2).
    pub fn entries(&self) -> impl Iterator<Item = (u32, u8)> + 'a {
        let fci = self.body.get(8..).unwrap_or(&[]);
        fci.chunks_exact(8)
            .map(|c| (be32(c, 0), c.get(4).copied().unwrap_or(0)))
    }
}

/// Receiver estimated maximum bitrate: a bitrate for a set of streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remb<'a> {
    body: &'a [u8],
    bitrate: u64,
}

impl<'a> Remb<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        need("REMB", body, 16)?;
        let count = usize::from(body.get(12).copied().unwrap_or(0));
        need("REMB", body, 16 + 4 * count)?;
        let (exp, mantissa) = (body[13] >> 2, u64::from(be24(body, 13) & 0x3_ffff));
        let bitrate = mantissa << exp;
        if bitrate >> exp != mantissa {
            return Err(RtcpError::BadRembBitrate);
        }
        Ok(Self { body, bitrate })
    }
    /// Who sends the estimate.
    pub fn sender_ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// The estimate in bits per second.
    pub fn bitrate(&self) -> u64 {
        self.bitrate
    }
    /// The streams it applies to.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let count = usize::from(self.body.get(12).copied().unwrap_or(0));
        let list = self.body.get(16..16 + 4 * count).unwrap_or(&[]);
        list.chunks_exact(4).map(|c| be32(c, 0))
    }
}

impl RtcpWriter<'_> {
    /// Appends a generic NACK for `lost` (best in increasing, wrap-aware order: numbers within
    /// 16 after a PID share its entry). Nothing is written when `lost` is empty.
    pub fn nack(&mut self, sender: u32, media: u32, lost: &[u16]) -> Result<&mut Self, RtcpError> {
        if lost.is_empty() {
            return Ok(self);
        }
        let start = self.begin(1, PT_RTPFB);
        self.put32(sender);
        self.put32(media);
        let mut entry: Option<(u16, u16)> = None;
        for &seq in lost {
            match entry {
                Some((pid, ref mut blp)) if (0..=16).contains(&seq.wrapping_sub(pid)) => {
                    if let Some(bit) = seq.wrapping_sub(pid).checked_sub(1) {
                        *blp |= 1 << bit;
                    }
                }
                _ => {
                    if let Some((pid, blp)) = entry {
                        self.put32(u32::from(pid) << 16 | u32::from(blp));
                    }
                    entry = Some((seq, 0));
                }
            }
        }
        if let Some((pid, blp)) = entry {
            self.put32(u32::from(pid) << 16 | u32::from(blp));
        }
        self.finish(start, false)
    }

    /// Appends a PLI.
    pub fn pli(&mut self, sender: u32, media: u32) -> Result<&mut Self, RtcpError> {
        let start = self.begin(1, PT_PSFB);
        self.put32(sender);
        self.put32(media);
        self.finish(start, false)
    }

    /// Appends a FIR with `(ssrc, sequence number)` entries; the media SSRC field is 0
    /// (RFC 5104 §4.3.1.2). Nothing is written when `entries` is empty.
    pub fn fir(&mut self, sender: u32, entries: &[(u32, u8)]) -> Result<&mut Self, RtcpError> {
        if entries.is_empty() {
            return Ok(self);
        }
        let start = self.begin(4, PT_PSFB);
        self.put32(sender);
        self.put32(0);
        for &(ssrc, seq) in entries {
            self.put32(ssrc);
            self.put(&[seq, 0, 0, 0]);
        }
        self.finish(start, false)
    }

    /// Appends a REMB of `bitrate` bits/s (rounded down to an 18-bit mantissa) for up to 255
    /// streams.
    pub fn remb(
        &mut self,
        sender: u32,
        bitrate: u64,
        ssrcs: &[u32],
    ) -> Result<&mut Self, RtcpError> {
        check_count("REMB sources", ssrcs.len(), 255)?;
        let exp = (64 - bitrate.leading_zeros()).saturating_sub(18);
        let mantissa = (bitrate >> exp) as u32;
        let start = self.begin(15, PT_PSFB);
        self.put32(sender);
        self.put32(0);
        self.put(b"REMB");
        self.put32((ssrcs.len() as u32) << 24 | exp << 18 | mantissa);
        for s in ssrcs {
            self.put32(*s);
        }
        self.finish(start, false)
    }
}
