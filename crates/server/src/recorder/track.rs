//! One track of a recording: plain RTP packets in, whole frames out, each with its time on
//! the recording's clock.
//!
//! The clock: each track's time is its own RTP timestamps (unwrapped, relative to its first
//! packet, at its clock rate), started at the moment its first packet reached the recorder
//! — counted from the first packet of any track of the recording. So audio and video keep
//! the sender's own spacing (no network jitter in the file), and they line up as well as
//! their first packets' arrival lines them up: to within the difference in the two tracks'
//! network and capture delays, typically a few tens of ms. (RTCP sender reports would tie
//! both clocks to the sender's wall clock exactly; the recorder does not see them.)

use std::time::Duration;

use media::h264::H264Depacketizer;
use media::vp8::Vp8Depacketizer;
use media::{RtpMeta, opus};
use rtc::rtp::RtpPacket;

use super::RecordCodec;

enum Depacketizer {
    Vp8(Vp8Depacketizer),
    H264(H264Depacketizer),
    Opus,
}

/// A frame ready for the file.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Nanoseconds since the recording's first packet (see the module documentation).
    pub time_ns: i64,
    /// A video keyframe (a decoder can start here); true for every audio frame.
    pub keyframe: bool,
    /// VP8 frame, H.264 access unit (Annex B) or Opus packet.
    pub data: &'a [u8],
}

/// Where a track stands.
pub struct Track {
    pub codec: RecordCodec,
    depacketizer: Depacketizer,
    clock: Clock,
    /// The first unwrapped RTP timestamp and when (since the recording's first packet) the
    /// packet that had it arrived.
    start: Option<(i64, Duration)>,
}

impl Track {
    pub fn new(codec: RecordCodec) -> Self {
        let depacketizer = match codec {
            RecordCodec::Vp8 => Depacketizer::Vp8(Vp8Depacketizer::new()),
            RecordCodec::H264 => Depacketizer::H264(H264Depacketizer::new()),
            RecordCodec::Opus => Depacketizer::Opus,
        };
        Track {
            codec,
            depacketizer,
            clock: Clock::default(),
            start: None,
        }
    }

    /// Takes one plain RTP packet that arrived `arrival` after the recording's first; returns
    /// the frame it completes, if any (nothing for a malformed packet or a broken frame).
    pub fn push<'a>(&'a mut self, rtp: &'a [u8], arrival: Duration) -> Option<Frame<'a>> {
        let p = RtpPacket::parse(rtp).ok()?;
        let meta = RtpMeta {
            seq: p.sequence_number(),
            timestamp: p.timestamp(),
            marker: p.marker(),
        };
        let ts = self.clock.extend(meta.timestamp);
        let (first, at) = *self.start.get_or_insert((ts, arrival));
        let rate = match self.codec {
            RecordCodec::Opus => i128::from(opus::CLOCK_RATE),
            _ => 90_000,
        };
        // In 128 bits: ticks × 10^9 overflows 64 bits after 28 h at 90 kHz.
        let time_ns = |ts: i64| {
            let ns = at.as_nanos() as i128 + i128::from(ts - first) * 1_000_000_000 / rate;
            i64::try_from(ns).unwrap_or(i64::MAX)
        };
        match &mut self.depacketizer {
            Depacketizer::Vp8(d) => {
                let f = d.push(meta, p.payload()).ok()??;
                let ts = self.clock.extend(f.timestamp);
                Some(Frame {
                    time_ns: time_ns(ts),
                    keyframe: f.keyframe,
                    data: f.data,
                })
            }
            Depacketizer::H264(d) => {
                let au = d.push(meta, p.payload()).ok()??;
                let ts = self.clock.extend(au.timestamp);
                Some(Frame {
                    time_ns: time_ns(ts),
                    keyframe: au.keyframe,
                    data: au.data,
                })
            }
            Depacketizer::Opus => {
                let packet = opus::depacketize(p.payload()).ok()?;
                Some(Frame {
                    time_ns: time_ns(ts),
                    keyframe: true,
                    data: packet.payload,
                })
            }
        }
    }

    /// Video frames dropped because packets were lost or malformed.
    pub fn incomplete(&self) -> u64 {
        match &self.depacketizer {
            Depacketizer::Vp8(d) => d.dropped(),
            Depacketizer::H264(d) => d.dropped(),
            Depacketizer::Opus => 0,
        }
    }
}

/// Extends 32-bit RTP timestamps to a signed 64-bit count, each placed nearest the previous
/// one (RFC 3550 §5.1: the timestamp wraps).
#[derive(Debug, Default)]
struct Clock {
    last: Option<(u32, i64)>,
}

impl Clock {
    fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some((last, ext)) => ext + i64::from(ts.wrapping_sub(last) as i32),
        };
        self.last = Some((ts, ext));
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Opus packet (one 20 ms CELT frame) with RTP timestamp `ts`.
    fn opus_rtp(seq: u16, ts: u32) -> Vec<u8> {
        let header = rtc::rtp::RtpHeader {
            sequence_number: seq,
            timestamp: ts,
            payload_type: 111,
            ..Default::default()
        };
        let mut p = Vec::new();
        header.write_vec(&[0xfc, 0xff, 0xfe], 0, &mut p).unwrap();
        p
    }

    #[test]
    fn times_hold_past_days_of_rtp_time() {
        // 2^30 ticks (6.2 h at 48 kHz) per packet, 12 packets: 75 h, past where ticks × 10^9
        // overflows 64 bits (53 h at 48 kHz).
        let mut t = Track::new(RecordCodec::Opus);
        let arrival = Duration::from_millis(250);
        for i in 0..12u32 {
            let rtp = opus_rtp(i as u16, 7u32.wrapping_add(i.wrapping_mul(1 << 30)));
            let f = t.push(&rtp, arrival).unwrap();
            let want = 250_000_000 + i128::from(i) * (1 << 30) * 1_000_000_000 / 48_000;
            assert_eq!(i128::from(f.time_ns), want, "packet {i}");
        }
    }
}
