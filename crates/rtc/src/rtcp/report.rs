//! Sender and receiver reports (RFC 3550 §6.4).

use super::{PT_RR, PT_SR, RtcpError, RtcpWriter, be24, be32, check_count, need};

/// Length of one report block.
const BLOCK_LEN: usize = 24;

/// One reception report block (RFC 3550 §6.4.1), decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction of packets lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost: a signed 24-bit count (duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (LSR).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn read(b: &[u8]) -> Self {
        Self {
            ssrc: be32(b, 0),
            fraction_lost: b.get(4).copied().unwrap_or(0),
            // Sign-extend the 24-bit field.
            cumulative_lost: ((be24(b, 5) << 8) as i32) >> 8,
            highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }

    fn write(&self, w: &mut RtcpWriter<'_>) {
        // Clamp to the 24-bit signed range as RFC 3550 §A.3 does.
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        w.put32(self.ssrc);
        w.put32(u32::from(self.fraction_lost) << 24 | lost);
        for v in [
            self.highest_seq,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        ] {
            w.put32(v);
        }
    }
}

/// The sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp of the moment `rtp_time` refers to.
    pub ntp_time: u64,
    /// The RTP timestamp of the same moment, for lip sync.
    pub rtp_time: u32,
    /// Packets sent so far.
    pub packet_count: u32,
    /// Payload octets sent so far.
    pub octet_count: u32,
}

/// The `count` report blocks starting at `at`.
fn blocks(body: &[u8], at: usize, count: u8) -> impl ExactSizeIterator<Item = ReportBlock> + '_ {
    let end = at + BLOCK_LEN * usize::from(count);
    let list = body.get(at..end).unwrap_or(&[]);
    list.chunks_exact(BLOCK_LEN).map(ReportBlock::read)
}

/// A sender report: SSRC, sender info, report blocks, optional profile extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> SenderReport<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        need("SR", body, 24 + BLOCK_LEN * usize::from(count))?;
        Ok(Self { body, count })
    }
    /// The sender's SSRC.
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// NTP/RTP time and counters.
    pub fn info(&self) -> SenderInfo {
        SenderInfo {
            ntp_time: u64::from(be32(self.body, 4)) << 32 | u64::from(be32(self.body, 8)),
            rtp_time: be32(self.body, 12),
            packet_count: be32(self.body, 16),
            octet_count: be32(self.body, 20),
        }
    }
    /// The report blocks.
    pub fn reports(&self) -> impl ExactSizeIterator<Item = ReportBlock> + 'a {
        blocks(self.body, 24, self.count)
    }
    /// Profile-specific extension after the blocks (usually empty).
    pub fn extension(&self) -> &'a [u8] {
        let start = 24 + BLOCK_LEN * usize::from(self.count);
        self.body.get(start..).unwrap_or(&[])
    }
}

/// A receiver report: SSRC, report blocks, optional profile extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> ReceiverReport<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        need("RR", body, 4 + BLOCK_LEN * usize::from(count))?;
        Ok(Self { body, count })
    }
    /// The reporter's SSRC.
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// The report blocks.
    pub fn reports(&self) -> impl ExactSizeIterator<Item = ReportBlock> + 'a {
        blocks(self.body, 4, self.count)
    }
    /// Profile-specific extension after the blocks (usually empty).
    pub fn extension(&self) -> &'a [u8] {
        let start = 4 + BLOCK_LEN * usize::from(self.count);
        self.body.get(start..).unwrap_or(&[])
    }
}

impl RtcpWriter<'_> {
    /// Appends a sender report with up to 31 report blocks.
    pub fn sr(
        &mut self,
        ssrc: u32,
        info: &SenderInfo,
        reports: &[ReportBlock],
    ) -> Result<&mut Self, RtcpError> {
        check_count("report blocks", reports.len(), 31)?;
        let start = self.begin(reports.len() as u8, PT_SR);
        self.put32(ssrc);
        self.put(&info.ntp_time.to_be_bytes());
        for v in [info.rtp_time, info.packet_count, info.octet_count] {
            self.put32(v);
        }
        for r in reports {
            r.write(self);
        }
        self.finish(start, false)
    }

    /// Appends a receiver report with up to 31 report blocks (none is fine: RFC 3550 §6.4.2).
    pub fn rr(&mut self, ssrc: u32, reports: &[ReportBlock]) -> Result<&mut Self, RtcpError> {
        check_count("report blocks", reports.len(), 31)?;
        let start = self.begin(reports.len() as u8, PT_RR);
        self.put32(ssrc);
        for r in reports {
            r.write(self);
        }
        self.finish(start, false)
    }
}
