//! A viewer's reorder buffer for one video stream: packets are released in sequence order,
//! gaps are NACKed (RFC 4585 §6.2.1) a few times, and a gap that waited its hold time is given
//! up so the packets behind it go on (the depacketizer then sees the loss).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use media::RtpMeta;
use rtc::rtp::SeqUnwrapper;

/// A jump this far ahead starts the sequence over instead of waiting for the packets between.
const MAX_GAP: i64 = 512;
/// NACKs per missing packet.
const NACK_TRIES: u8 = 3;
/// Between NACKs of one packet.
const NACK_SPACING: Duration = Duration::from_millis(40);

#[derive(Debug)]
struct Held {
    meta: RtpMeta,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    since: Instant,
    nacked: Option<Instant>,
    tries: u8,
}

/// The reorder buffer.
#[derive(Debug)]
pub(crate) struct Jitter {
    unwrap: SeqUnwrapper,
    /// The extended sequence number to release next.
    next: Option<i64>,
    held: BTreeMap<i64, Held>,
    missing: BTreeMap<i64, Missing>,
    hold: Duration,
    /// Packets given up on.
    pub lost: u64,
    /// Packets that came after their number was released or given up (or twice).
    pub late: u64,
}

impl Jitter {
    /// A buffer that waits at most `hold` for a missing packet.
    pub fn new(hold: Duration) -> Self {
        Jitter {
            unwrap: SeqUnwrapper::new(),
            next: None,
            held: BTreeMap::new(),
            missing: BTreeMap::new(),
            hold,
            lost: 0,
            late: 0,
        }
    }

    /// Takes a packet; `release` gets it and every packet it frees, in sequence order.
    pub fn push(
        &mut self,
        now: Instant,
        meta: RtpMeta,
        payload: &[u8],
        mut release: impl FnMut(RtpMeta, &[u8]),
    ) {
        let ext = self.unwrap.extend(meta.seq);
        let mut next = *self.next.get_or_insert(ext);
        if ext < next || self.held.contains_key(&ext) {
            self.late += 1;
            return;
        }
        if ext - next > MAX_GAP {
            // A restart (or a long outage): what is held goes out, the rest is lost.
            self.lost += self.missing.len() as u64;
            self.missing.clear();
            for (_, h) in std::mem::take(&mut self.held) {
                release(h.meta, &h.payload);
            }
            next = ext;
        }
        if ext == next {
            release(meta, payload);
            self.missing.remove(&ext);
            self.next = Some(ext + 1);
            self.drain(&mut release);
            return;
        }
        // Ahead of a gap: numbers past everything seen so far are newly missing.
        let seen = self.held.last_key_value().map_or(next - 1, |(k, _)| *k);
        for e in (seen + 1).max(next)..ext {
            self.missing.entry(e).or_insert(Missing {
                since: now,
                nacked: None,
                tries: 0,
            });
        }
        self.missing.remove(&ext);
        self.held.insert(
            ext,
            Held {
                meta,
                payload: payload.to_vec(),
            },
        );
    }

    /// Releases held packets that follow on without a gap.
    fn drain(&mut self, release: &mut impl FnMut(RtpMeta, &[u8])) {
        let Some(mut next) = self.next else { return };
        while let Some(h) = self.held.remove(&next) {
            release(h.meta, &h.payload);
            self.missing.remove(&next);
            next += 1;
        }
        self.next = Some(next);
    }

    /// Gives up the gap at the head once it has waited the hold time.
    pub fn poll(&mut self, now: Instant, mut release: impl FnMut(RtpMeta, &[u8])) {
        while let (Some(next), Some((&first, _))) = (self.next, self.held.first_key_value()) {
            let waited = (self.missing.get(&next))
                .is_none_or(|m| now.saturating_duration_since(m.since) >= self.hold);
            if !waited {
                return;
            }
            self.lost += (first - next) as u64;
            self.missing.retain(|&e, _| e >= first);
            self.next = Some(first);
            self.drain(&mut release);
        }
    }

    /// Appends the sequence numbers to NACK now.
    pub fn nacks(&mut self, now: Instant, out: &mut Vec<u16>) {
        for (ext, m) in &mut self.missing {
            let due = m
                .nacked
                .is_none_or(|t| now.saturating_duration_since(t) >= NACK_SPACING);
            if m.tries < NACK_TRIES && due {
                out.push(*ext as u16);
                m.nacked = Some(now);
                m.tries += 1;
            }
        }
    }

    /// When [`Jitter::poll`] or [`Jitter::nacks`] next has something to do.
    pub fn next_wake(&self) -> Option<Instant> {
        let give_up = (self.next)
            .and_then(|n| self.missing.get(&n))
            .map(|m| m.since + self.hold);
        let retry = (self.missing.values())
            .filter(|m| m.tries < NACK_TRIES)
            .map(|m| m.nacked.map_or(m.since, |t| t + NACK_SPACING))
            .min();
        match (give_up, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: u16) -> RtpMeta {
        RtpMeta {
            seq,
            timestamp: 0,
            marker: false,
        }
    }

    fn push(j: &mut Jitter, now: Instant, seq: u16, got: &mut Vec<u16>) {
        j.push(now, meta(seq), &[seq as u8], |m, _| got.push(m.seq));
    }

    #[test]
    fn reorders_nacks_and_gives_up() {
        let t0 = Instant::now();
        let mut j = Jitter::new(Duration::from_millis(100));
        let mut got = Vec::new();
        for seq in [65534, 65535, 1, 3] {
            push(&mut j, t0, seq, &mut got);
        }
        assert_eq!(got, [65534, 65535], "0 and 2 are missing");
        let mut nacks = Vec::new();
        j.nacks(t0, &mut nacks);
        assert_eq!(nacks, [0, 2]);
        nacks.clear();
        j.nacks(t0 + Duration::from_millis(10), &mut nacks);
        assert!(nacks.is_empty(), "retries are spaced");
        assert_eq!(j.next_wake(), Some(t0 + NACK_SPACING));
        push(&mut j, t0, 0, &mut got);
        assert_eq!(got, [65534, 65535, 0, 1]);
        j.poll(t0 + Duration::from_millis(50), |m, _| got.push(m.seq));
        assert_eq!(got.len(), 4, "2 still has time");
        j.poll(t0 + Duration::from_millis(100), |m, _| got.push(m.seq));
        assert_eq!(got, [65534, 65535, 0, 1, 3]);
        assert_eq!((j.lost, j.late), (1, 0));
        push(&mut j, t0, 2, &mut got);
        assert_eq!(j.late, 1, "too late once given up");
        assert_eq!(j.next_wake(), None);
    }

    #[test]
    fn a_big_jump_starts_over() {
        let t0 = Instant::now();
        let mut j = Jitter::new(Duration::from_millis(100));
        let mut got = Vec::new();
        for seq in [10, 12, 2000, 2001] {
            push(&mut j, t0, seq, &mut got);
        }
        assert_eq!(got, [10, 12, 2000, 2001]);
        assert_eq!(j.lost, 1);
        let mut nacks = Vec::new();
        j.nacks(t0, &mut nacks);
        assert!(nacks.is_empty());
    }
}
