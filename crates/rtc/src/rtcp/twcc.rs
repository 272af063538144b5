//! Transport-wide congestion control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): for a range of transport-wide
//! sequence numbers, which packets arrived and when, as 250 µs deltas.

use super::{PT_RTPFB, RtcpError, RtcpWriter, be16, be24, be32, check_count, need};

/// Sender SSRC, media SSRC, base sequence, status count, reference time, feedback count.
const FIXED: usize = 16;
/// Receive deltas count multiples of 250 µs (§3.1.5).
const TICK_US: i64 = 250;

/// Symbols covered by a chunk: a run length (§3.1.3), or 14 one-bit / 7 two-bit symbols
/// of a status vector (§3.1.4).
fn chunk_len(chunk: u16) -> usize {
    match chunk >> 14 {
        0 | 1 => usize::from(chunk & 0x1fff),
        2 => 14,
        _ => 7,
    }
}

/// Symbol `i` of a chunk (i < `chunk_len`): 0 not received, 1 small delta, 2 large or
/// negative delta, 3 reserved (§3.1.1).
fn chunk_symbol(chunk: u16, i: usize) -> u8 {
    let shift = match chunk >> 14 {
        0 | 1 => 13,
        2 => 13usize.saturating_sub(i),
        _ => 12usize.saturating_sub(2 * i),
    };
    let mask = if chunk >> 14 == 2 { 1 } else { 3 };
    (chunk >> shift & mask) as u8
}

/// Bytes of receive delta a symbol carries.
fn delta_len(symbol: u8) -> Result<usize, RtcpError> {
    match symbol {
        0..=2 => Ok(usize::from(symbol)),
        _ => Err(RtcpError::BadTwccSymbol),
    }
}

/// A transport-wide CC feedback packet, its chunks and deltas checked to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Twcc<'a> {
    body: &'a [u8],
    deltas_at: usize,
}

impl<'a> Twcc<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        need("TWCC", body, FIXED)?;
        let (mut at, mut left, mut deltas) = (FIXED, usize::from(be16(body, 10)), 0);
        while left > 0 {
            need("TWCC", body, at + 2)?;
            let chunk = be16(body, at);
            at += 2;
            let n = chunk_len(chunk).min(left);
            if chunk >> 15 == 0 && n > 0 {
                deltas += n * delta_len(chunk_symbol(chunk, 0))?;
            } else {
                for i in 0..n {
                    deltas += delta_len(chunk_symbol(chunk, i))?;
                }
            }
            left -= n;
        }
        need("TWCC", body, at + deltas)?;
        Ok(Self {
            body,
            deltas_at: at,
        })
    }
    /// Who sends the feedback.
    pub fn sender_ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// The media source field (browsers send the first SSRC of the stream or 0).
    pub fn media_ssrc(&self) -> u32 {
        be32(self.body, 4)
    }
    /// Transport-wide sequence number of the first packet described.
    pub fn base_seq(&self) -> u16 {
        be16(self.body, 8)
    }
    /// Number of packets described.
    pub fn status_count(&self) -> u16 {
        be16(self.body, 10)
    }
    /// Reference time in multiples of 64 ms (signed 24 bits, sender's own time base).
    pub fn reference_time(&self) -> i32 {
        ((be24(self.body, 12) << 8) as i32) >> 8
    }
    /// The reference time in microseconds.
    pub fn reference_time_us(&self) -> i64 {
        i64::from(self.reference_time()) * 64_000
    }
    /// Feedback packet count, to detect lost feedback.
    pub fn fb_pkt_count(&self) -> u8 {
        self.body.get(15).copied().unwrap_or(0)
    }
    /// Each packet described, in order: `(seq, Some(receive delta in µs))` when received
    /// (the first delta is from the reference time, each later one from the previous received
    /// packet), `(seq, None)` when not.
    pub fn packets(&self) -> TwccPackets<'a> {
        TwccPackets {
            body: self.body,
            chunk_at: FIXED,
            chunks_end: self.deltas_at,
            delta_at: self.deltas_at,
            chunk: 0,
            idx: 0,
            len: 0,
            left: usize::from(self.status_count()),
            seq: self.base_seq(),
        }
    }
}

/// Iterator over the packets of a [`Twcc`].
#[derive(Debug, Clone)]
pub struct TwccPackets<'a> {
    body: &'a [u8],
    chunk_at: usize,
    chunks_end: usize,
    delta_at: usize,
    chunk: u16,
    idx: usize,
    len: usize,
    left: usize,
    seq: u16,
}

impl Iterator for TwccPackets<'_> {
    type Item = (u16, Option<i64>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        while self.idx >= self.len {
            if self.chunk_at + 2 > self.chunks_end {
                return None;
            }
            self.chunk = be16(self.body, self.chunk_at);
            (self.chunk_at, self.idx) = (self.chunk_at + 2, 0);
            self.len = chunk_len(self.chunk);
        }
        let symbol = chunk_symbol(self.chunk, self.idx);
        self.idx += 1;
        self.left -= 1;
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let ticks = match symbol {
            1 => i64::from(*self.body.get(self.delta_at)?),
            2 => i64::from(be16(self.body, self.delta_at) as i16),
            _ => return Some((seq, None)),
        };
        self.delta_at += usize::from(symbol);
        Some((seq, Some(ticks * TICK_US)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// The fixed fields of a feedback packet to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TwccHeader {
    /// Our SSRC.
    pub sender_ssrc: u32,
    /// The media source (the first SSRC of the stream fed back on, or 0).
    pub media_ssrc: u32,
    /// Transport-wide sequence number of the first packet described.
    pub base_seq: u16,
    /// Reference time in multiples of 64 ms; only the low 24 bits are sent.
    pub reference_time: i32,
    /// Counts feedback packets sent, wrapping.
    pub fb_pkt_count: u8,
}

/// The symbol for a delta in µs (floored to 250 µs ticks) and its tick count.
fn delta_symbol(delta: Option<i64>) -> Result<(u8, i64), RtcpError> {
    let Some(us) = delta else { return Ok((0, 0)) };
    let ticks = us.div_euclid(TICK_US);
    match ticks {
        0..=255 => Ok((1, ticks)),
        -32768..=32767 => Ok((2, ticks)),
        _ => Err(RtcpError::TwccDeltaOutOfRange(us)),
    }
}

/// The next status chunk for `symbols[i..]` and how many symbols it covers: a run when 14 or
/// more repeat (or all the rest do), else a one-bit vector when the next 14 need no large
/// delta, else a run of 7 or more, else a two-bit vector.
fn next_chunk(symbols: impl Fn(usize) -> u8, i: usize, n: usize) -> (u16, usize) {
    let first = symbols(i);
    let run = (i..n)
        .take(0x1fff)
        .take_while(|&j| symbols(j) == first)
        .count();
    let window = (n - i).min(14);
    if run >= 14 || run == n - i {
        return (u16::from(first) << 13 | run as u16, run);
    }
    if (i..i + window).all(|j| symbols(j) <= 1) {
        let bits = (0..window).fold(0, |c, k| c | u16::from(symbols(i + k)) << (13 - k));
        return (0x8000 | bits, window);
    }
    if run >= 7 {
        return (u16::from(first) << 13 | run as u16, run);
    }
    let window = window.min(7);
    let bits = (0..window).fold(0, |c, k| c | u16::from(symbols(i + k)) << (12 - 2 * k));
    (0xc000 | bits, window)
}

impl RtcpWriter<'_> {
    /// Appends transport-wide CC feedback. `deltas[i]` describes packet `base_seq + i`: `None`
    /// if it did not arrive, else its receive delta in µs from the previous received packet
    /// (the first from the reference time). Deltas are floored to 250 µs; keep your running
    /// time in that rounded domain so errors do not add up. Padding uses the P bit, as
    /// libwebrtc does.
    pub fn twcc(&mut self, h: &TwccHeader, deltas: &[Option<i64>]) -> Result<&mut Self, RtcpError> {
        check_count("TWCC packets", deltas.len(), 0xffff)?;
        for d in deltas {
            delta_symbol(*d)?;
        }
        let symbol = |i: usize| {
            deltas
                .get(i)
                .map_or(0, |d| delta_symbol(*d).map_or(0, |s| s.0))
        };
        let start = self.begin(15, PT_RTPFB);
        self.put32(h.sender_ssrc);
        self.put32(h.media_ssrc);
        self.put(&h.base_seq.to_be_bytes());
        self.put(&(deltas.len() as u16).to_be_bytes());
        self.put32((h.reference_time as u32) << 8 | u32::from(h.fb_pkt_count));
        let mut i = 0;
        while i < deltas.len() {
            let (chunk, covered) = next_chunk(symbol, i, deltas.len());
            self.put(&chunk.to_be_bytes());
            i += covered;
        }
        for d in deltas {
            match delta_symbol(*d) {
                Ok((1, ticks)) => self.put(&[ticks as u8]),
                Ok((2, ticks)) => self.put(&(ticks as i16).to_be_bytes()),
                _ => {}
            }
        }
        self.finish(start, true)
    }
}
