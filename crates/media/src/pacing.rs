//! When each frame of a looped file is due, as media time from the stream's start.
//!
//! Every time is computed from the integer tick count (loop index × loop length + offset in
//! the loop), never accumulated, so hours of looping add no drift. The server compares these
//! times against a monotonic clock started with the stream; RTP timestamps come from the same
//! tick count so they stay in step with the media time.

use std::time::Duration;

/// Why the timestamps cannot be paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacingError {
    /// No frames.
    #[error("no frames to pace")]
    Empty,
    /// A timebase with a zero numerator or denominator.
    #[error("timebase {0}/{1} is not usable")]
    BadTimebase(u32, u32),
    /// Frame `index` has an earlier timestamp than the frame before it.
    #[error("timestamp of frame {0} goes backwards")]
    NotMonotonic(usize),
    /// The loop would last zero ticks.
    #[error("loop of zero length")]
    EmptyLoop,
}

/// The timing of a file played in a loop: its first timestamp, its loop length and its
/// timebase (a tick is `num / den` seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    first: u64,
    loop_ticks: u64,
    num: u32,
    den: u32,
}

impl Timeline {
    /// A loop running from timestamp `first` up to, not including, `end`.
    pub fn new(first: u64, end: u64, num: u32, den: u32) -> Result<Self, PacingError> {
        if num == 0 || den == 0 {
            return Err(PacingError::BadTimebase(num, den));
        }
        let loop_ticks = end
            .checked_sub(first)
            .filter(|&t| t > 0)
            .ok_or(PacingError::EmptyLoop)?;
        Ok(Timeline {
            first,
            loop_ticks,
            num,
            den,
        })
    }

    /// A loop over frames with these timestamps; it lasts from the first to the last plus one
    /// frame duration, taken as the last interval (one tick for a single frame).
    pub fn from_timestamps(timestamps: &[u64], num: u32, den: u32) -> Result<Self, PacingError> {
        let (&first, &last) = timestamps
            .first()
            .zip(timestamps.last())
            .ok_or(PacingError::Empty)?;
        if let Some(i) = timestamps.windows(2).position(|w| w[1] < w[0]) {
            return Err(PacingError::NotMonotonic(i + 1));
        }
        let before_last = timestamps
            .len()
            .checked_sub(2)
            .and_then(|i| timestamps.get(i));
        let frame = before_last.map_or(1, |&b| last - b).max(1);
        Self::new(first, last.saturating_add(frame), num, den)
    }

    /// Length of one loop in ticks.
    pub fn loop_ticks(&self) -> u64 {
        self.loop_ticks
    }

    /// Ticks from the stream's start to the frame with timestamp `ts` in loop `loop_index`
    /// (0 for the first pass).
    pub fn ticks(&self, ts: u64, loop_index: u64) -> u128 {
        u128::from(loop_index) * u128::from(self.loop_ticks)
            + u128::from(ts.saturating_sub(self.first))
    }

    /// When the frame is due, from the stream's start.
    pub fn media_time(&self, ts: u64, loop_index: u64) -> Duration {
        let nanos = self.ticks(ts, loop_index) * u128::from(self.num) * 1_000_000_000
            / u128::from(self.den);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The frame's RTP timestamp at `clock_rate` (90 000 for video, 48 000 for Opus), counted
    /// from 0 at the stream's start; add the stream's random offset (it wraps).
    pub fn rtp_timestamp(&self, ts: u64, loop_index: u64, clock_rate: u32) -> u32 {
        let units = self.ticks(ts, loop_index) * u128::from(self.num) * u128::from(clock_rate)
            / u128::from(self.den);
        units as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_without_drift() {
        // 30 fps, 300 frames: a 10 s loop.
        let ts: Vec<u64> = (0..300).collect();
        let t = Timeline::from_timestamps(&ts, 1, 30).unwrap();
        assert_eq!(t.loop_ticks(), 300);
        assert_eq!(t.media_time(0, 1), Duration::from_secs(10));
        assert_eq!(t.media_time(1, 0), Duration::from_nanos(33_333_333));
        // After 10 000 loops (over 27 hours) frame 1 is still exactly 1/30 s past the loop.
        assert_eq!(
            t.media_time(1, 10_000),
            Duration::from_nanos(100_000_033_333_333)
        );
        assert_eq!(t.rtp_timestamp(1, 0, 90_000), 3000);
        assert_eq!(t.rtp_timestamp(0, 1, 90_000), 900_000);
        // 90 kHz wraps 2^32 after ~13.25 h: still exact modulo 2^32.
        assert_eq!(
            t.rtp_timestamp(0, 5000, 90_000),
            (5000u64 * 900_000 % (1 << 32)) as u32
        );
    }

    #[test]
    fn opus_like_and_errors() {
        // Ogg Opus: timestamps in 48 kHz samples starting late; the end is explicit.
        let t = Timeline::new(960, 960 * 501, 1, 48_000).unwrap();
        assert_eq!(t.media_time(960 * 2, 0), Duration::from_millis(20));
        assert_eq!(t.media_time(960, 3), Duration::from_secs(30));
        assert_eq!(
            Timeline::from_timestamps(&[], 1, 30),
            Err(PacingError::Empty)
        );
        assert_eq!(
            Timeline::from_timestamps(&[0, 2, 1], 1, 30),
            Err(PacingError::NotMonotonic(2))
        );
        assert_eq!(Timeline::new(5, 5, 1, 30), Err(PacingError::EmptyLoop));
        assert_eq!(
            Timeline::new(0, 5, 1, 0),
            Err(PacingError::BadTimebase(1, 0))
        );
        assert_eq!(
            Timeline::from_timestamps(&[7], 1, 30).unwrap().loop_ticks(),
            1
        );
    }
}
