//! A viewer's start from the GOP cache (and a file's replay after a PLI), paced: the
//! keyframe's packets go at once, so the first frame is not queued behind the whole GOP; the
//! rest of the GOP follows from the tick at a few times the stream's own rate, so it neither
//! arrives as one 100–200 KB burst that overflows a client's socket buffer nor falls behind
//! the live packets. A replay is a cursor into the track's history: nothing is copied or
//! allocated per packet.

use std::ops::Range;
use std::time::{Duration, Instant};

use rtc::rtp::RtpPacket;

use super::history::History;

/// The rest of the GOP goes at this many times the rate it was produced at.
const SPEEDUP: u64 = 4;
/// But at least this many bytes a second (1 Mbit/s), however slow the stream.
const MIN_RATE: u64 = 125_000;
/// A GOP's span is taken as at least this (a keyframe alone has none).
const MIN_SPAN: Duration = Duration::from_millis(100);

/// A replay in progress: the next history index to send and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    next: u64,
    started: Instant,
    /// Bytes a second.
    rate: u64,
    /// Bytes sent since `started`.
    sent: u64,
}

fn timestamp(history: &History, index: u64) -> Option<u32> {
    Some(RtpPacket::parse(history.get(index)?).ok()?.timestamp())
}

impl Replay {
    /// Plans a replay of `history` from its latest keyframe: the indices of the keyframe's
    /// packets, to send at once, and a cursor for the rest (None if nothing follows). None if
    /// no keyframe is cached.
    pub fn start(
        history: &History,
        clock_rate: u32,
        now: Instant,
    ) -> Option<(Range<u64>, Option<Replay>)> {
        let start = history.keyframe_start()?;
        let end = history.next_index();
        let key_ts = timestamp(history, start);
        let mut key_end = start + 1;
        while key_end < end && timestamp(history, key_end) == key_ts {
            key_end += 1;
        }
        if key_end == end {
            return Some((start..end, None));
        }
        let bytes: u64 = (start..end)
            .filter_map(|i| history.get(i))
            .map(|p| p.len() as u64)
            .sum();
        let last_ts = (start..end).rev().find_map(|i| timestamp(history, i));
        let ticks = match (key_ts, last_ts) {
            (Some(a), Some(b)) => u64::from(b.wrapping_sub(a)),
            _ => 0,
        };
        let span =
            Duration::from_micros(ticks * 1_000_000 / u64::from(clock_rate.max(1))).max(MIN_SPAN);
        let rate = (SPEEDUP * bytes * 1_000_000 / span.as_micros().max(1) as u64).max(MIN_RATE);
        let replay = Replay {
            next: key_end,
            started: now,
            rate,
            sent: 0,
        };
        Some((start..key_end, Some(replay)))
    }

    /// The indices due by `now`, which the caller sends; the cursor moves past them.
    pub fn due(&mut self, history: &History, now: Instant) -> Range<u64> {
        let elapsed = now.saturating_duration_since(self.started).as_micros();
        let allowed = (u128::from(self.rate) * elapsed / 1_000_000) as u64;
        let (from, end) = (self.next, history.next_index());
        while self.next < end && self.sent < allowed {
            self.sent += history.get(self.next).map_or(0, |p| p.len() as u64);
            self.next += 1;
        }
        from..self.next
    }

    /// Whether the cursor has caught up with the history (live packets take over).
    pub fn is_done(&self, history: &History) -> bool {
        self.next >= history.next_index()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rtc::rtp::RtpHeader;

    use super::Replay;
    use crate::router::history::History;

    fn packet(seq: u16, ts: u32, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        RtpHeader {
            payload_type: 96,
            sequence_number: seq,
            timestamp: ts,
            ssrc: 1,
            ..Default::default()
        }
        .write_vec(&vec![0u8; len], 0, &mut out)
        .unwrap();
        out
    }

    #[test]
    fn the_keyframe_goes_at_once_and_the_rest_of_the_gop_is_paced() {
        // A 1 s GOP at 30 fps: a 10-packet keyframe, then 29 frames of 3 packets.
        let mut h = History::new(1024);
        let mut seq = 0u16;
        for _ in 0..5 {
            h.push(&packet(seq, 0, 1000), false); // an older GOP's tail
            seq += 1;
        }
        for i in 0..10 {
            h.push(&packet(seq, 3000, 1100), i == 0);
            seq += 1;
        }
        for frame in 1..30u32 {
            for _ in 0..3 {
                h.push(&packet(seq, 3000 + frame * 3000, 1000), false);
                seq += 1;
            }
        }
        let t0 = Instant::now();
        let (key, replay) = Replay::start(&h, 90_000, t0).unwrap();
        assert_eq!(key, 5..15, "the keyframe's packets lead, all of them");
        let mut replay = replay.unwrap();
        // Then the tick, every 10 ms: never more than a few packets at a time, all in order.
        let mut next = 15;
        let mut per_tick = Vec::new();
        let mut t = t0;
        while !replay.is_done(&h) {
            t += Duration::from_millis(10);
            let due = replay.due(&h, t);
            assert_eq!(due.start, next);
            next = due.end;
            per_tick.push(due.end - due.start);
        }
        assert_eq!(next, h.next_index());
        let most = per_tick.iter().max().copied().unwrap();
        assert!(most <= 6, "a burst of {most} packets: {per_tick:?}");
        // ~4× the GOP's own rate: 87 KB of a 1 s GOP in about a quarter second.
        assert!(
            (20..=30).contains(&per_tick.len()),
            "{} ticks: {per_tick:?}",
            per_tick.len()
        );
        // Caught up, a later packet is due at once.
        h.push(&packet(seq, 99_000, 1000), false);
        assert!(!replay.is_done(&h));
        assert_eq!(replay.due(&h, t + Duration::from_millis(10)).count(), 1);
    }

    #[test]
    fn no_keyframe_no_replay_and_a_lone_keyframe_needs_no_cursor() {
        let mut h = History::new(16);
        let t0 = Instant::now();
        h.push(&packet(1, 0, 100), false);
        assert_eq!(Replay::start(&h, 90_000, t0), None);
        h.push(&packet(2, 3000, 100), true);
        h.push(&packet(3, 3000, 100), false);
        assert_eq!(Replay::start(&h, 90_000, t0), Some((1..3, None)));
    }
}
