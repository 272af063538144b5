//! What the estimator remembers: the packets we sent (to match feedback against) and the
//! bytes the peer received lately (the acked rate).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rtp::SeqUnwrapper;

/// Packets are forgotten after this long: feedback later than that is useless.
const KEEP: Duration = Duration::from_secs(2);
/// And there are never more than this many (2 s at ~80 Mbit/s of 1200-byte packets).
const MAX_PACKETS: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unreported,
    Received,
    Lost,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: i64,
    send: Instant,
    size: u32,
    state: State,
    cluster: Option<u32>,
}

/// What feedback newly said about one packet of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reported {
    /// It arrived (`arrival_us` in the peer's clock).
    Received {
        send: Instant,
        arrival_us: i64,
        size: u32,
        cluster: Option<u32>,
    },
    /// It did not (as far as this feedback knows).
    Lost { cluster: Option<u32> },
}

#[derive(Debug, Clone)]
pub(crate) struct SendHistory {
    sent: VecDeque<Sent>,
    unwrap: SeqUnwrapper,
    base: Option<Instant>,
}

impl SendHistory {
    pub fn new() -> Self {
        Self {
            sent: VecDeque::new(),
            unwrap: SeqUnwrapper::new(),
            base: None,
        }
    }

    pub fn on_sent(&mut self, seq: u16, size: usize, cluster: Option<u32>, now: Instant) {
        let seq = self.unwrap.extend(seq);
        self.base.get_or_insert(now);
        // Sequence numbers we did not send in order (a caller's bug) are not tracked.
        if self.sent.back().is_some_and(|last| last.seq >= seq) {
            return;
        }
        if self.sent.len() == MAX_PACKETS {
            self.sent.pop_front();
        }
        self.sent.push_back(Sent {
            seq,
            send: now,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            state: State::Unreported,
            cluster,
        });
    }

    /// Marks packet `seq` as feedback reports it. Returns what is new: a packet reported
    /// twice (feedback repeated or reordered) counts once, and a packet once received is
    /// never lost later; unknown or forgotten packets give `None`.
    pub fn report(&mut self, seq: u16, arrival_us: Option<i64>) -> Option<Reported> {
        let seq = self.unwrap.peek(seq);
        let i = self.sent.binary_search_by_key(&seq, |s| s.seq).ok()?;
        let p = self.sent.get_mut(i)?;
        match (arrival_us, p.state) {
            (Some(_), State::Received) | (None, State::Received | State::Lost) => None,
            (Some(arrival_us), _) => {
                p.state = State::Received;
                Some(Reported::Received {
                    send: p.send,
                    arrival_us,
                    size: p.size,
                    cluster: p.cluster,
                })
            }
            (None, State::Unreported) => {
                p.state = State::Lost;
                Some(Reported::Lost { cluster: p.cluster })
            }
        }
    }

    /// The send time of the first packet: send times are measured from it.
    pub fn base(&self) -> Option<Instant> {
        self.base
    }

    pub fn prune(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.send) > KEEP)
        {
            self.sent.pop_front();
        }
    }
}

/// The window the acked rate is measured over, in the peer's arrival time.
const ACKED_WINDOW_US: i64 = 500_000;
/// Less than this much arrival time says nothing reliable.
const ACKED_MIN_US: i64 = 150_000;

/// The rate at which the peer received our packets, from their arrival times.
#[derive(Debug, Clone)]
pub(crate) struct AckedRate {
    window: VecDeque<(i64, u32)>,
    bytes: u64,
    first_us: Option<i64>,
    last_us: i64,
}

impl AckedRate {
    pub fn new() -> Self {
        Self {
            window: VecDeque::new(),
            bytes: 0,
            first_us: None,
            last_us: i64::MIN,
        }
    }

    pub fn on_received(&mut self, arrival_us: i64, size: u32) {
        self.first_us.get_or_insert(arrival_us);
        self.last_us = self.last_us.max(arrival_us);
        self.window.push_back((arrival_us, size));
        self.bytes += u64::from(size);
        while let Some(&(at, size)) = self.window.front() {
            if at > self.last_us - ACKED_WINDOW_US {
                break;
            }
            self.window.pop_front();
            self.bytes -= u64::from(size);
        }
    }

    /// Bit/s over the last half second of arrivals, once 150 ms of them are known.
    pub fn rate(&self) -> Option<f64> {
        let first = self.first_us?;
        let span = (self.last_us - first).min(ACKED_WINDOW_US);
        (span >= ACKED_MIN_US).then(|| self.bytes as f64 * 8.0 / (span as f64 / 1e6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_count_once_and_received_beats_lost() {
        let t0 = Instant::now();
        let mut h = SendHistory::new();
        for seq in 65534..=65535u16 {
            h.on_sent(seq, 1000, None, t0);
        }
        h.on_sent(0, 1000, Some(3), t0 + Duration::from_millis(1));
        let lost = Some(Reported::Lost { cluster: None });
        assert_eq!(h.report(65535, None), lost);
        assert_eq!(h.report(65535, None), None, "lost twice counts once");
        let got = h.report(65535, Some(7));
        assert!(matches!(
            got,
            Some(Reported::Received {
                arrival_us: 7,
                size: 1000,
                ..
            })
        ));
        assert_eq!(h.report(65535, Some(9)), None, "received twice counts once");
        assert_eq!(h.report(65535, None), None, "received is never lost later");
        let got = h.report(0, Some(5));
        assert!(
            matches!(
                got,
                Some(Reported::Received {
                    cluster: Some(3),
                    ..
                })
            ),
            "across the wrap"
        );
        assert_eq!(h.report(100, Some(5)), None, "never sent");
        h.prune(t0 + Duration::from_secs(3));
        assert_eq!(h.report(65534, Some(1)), None, "forgotten");
    }

    #[test]
    fn acked_rate_over_half_a_second_of_arrivals() {
        let mut a = AckedRate::new();
        assert_eq!(a.rate(), None);
        // 1250 bytes every 10 ms: 1 Mbit/s.
        for i in 0..10 {
            a.on_received(i * 10_000, 1250);
        }
        assert_eq!(a.rate(), None, "90 ms of arrivals says nothing yet");
        for i in 10..200 {
            a.on_received(i * 10_000, 1250);
        }
        let r = a.rate().unwrap();
        assert!((r - 1e6).abs() < 30_000.0, "{r}");
    }
}
