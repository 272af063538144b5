//! Rate limits for STUN error responses (401 for a wrong MESSAGE-INTEGRITY, 400, 420, 487).
//!
//! A check naming a session's ufrag with a wrong MESSAGE-INTEGRITY costs an HMAC and earns a
//! 401 (RFC 8489 §9.1.3). 100 000 such checks a second stalled the media thread, and the
//! answers made the server a reflector. A peer that really holds the password needs no more
//! than a few errors a second (a role conflict, a stale restart), so errors are limited per
//! source address and in total; the checks themselves are still handled (and counted).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Error responses per second to one source address, after a burst of as many.
pub const PER_SOURCE_PER_SECOND: u32 = 5;
/// Error responses per second in all, after a burst of as many.
pub const TOTAL_PER_SECOND: u32 = 500;
/// Slots for per-source buckets: a fixed table, so spoofed sources cannot grow it. A source
/// takes over the slot of another that hashes alike (with a fresh bucket); the total limit
/// holds whatever the sources do.
const SLOTS: usize = 1024;

/// A token bucket: `rate` tokens a second, at most `rate` saved.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// Up to when tokens have been added.
    refilled: Instant,
}

impl Bucket {
    fn full(now: Instant, rate: u32) -> Self {
        Self {
            tokens: rate,
            refilled: now,
        }
    }

    fn take(&mut self, now: Instant, rate: u32) -> bool {
        let rate = rate.max(1);
        let per_token = Duration::from_secs(1) / rate;
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned = (elapsed.as_nanos() / per_token.as_nanos().max(1)).min(u128::from(rate));
        if earned > 0 {
            self.tokens = (self.tokens + earned as u32).min(rate);
            // Whole tokens only; the remainder carries over unless the bucket is full.
            self.refilled = if self.tokens == rate {
                now
            } else {
                self.refilled + per_token * earned as u32
            };
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// Limits error responses per source address and in total.
#[derive(Debug)]
pub struct ErrorLimiter {
    per_source: u32,
    total_rate: u32,
    slots: Vec<Option<(IpAddr, Bucket)>>,
    total: Bucket,
    /// Error responses not sent.
    pub suppressed: u64,
}

impl ErrorLimiter {
    /// `per_source` and `total` error responses a second.
    pub fn new(now: Instant, per_source: u32, total: u32) -> Self {
        Self {
            per_source,
            total_rate: total,
            slots: vec![None; SLOTS],
            total: Bucket::full(now, total),
            suppressed: 0,
        }
    }

    /// Whether an error response may go to `to` now. Counts the ones that may not.
    pub fn allow(&mut self, now: Instant, to: IpAddr) -> bool {
        let mut h = DefaultHasher::new();
        to.hash(&mut h);
        let index = (h.finish() as usize) % SLOTS;
        let rate = self.per_source;
        let ok = match self.slots.get_mut(index) {
            Some(Some((ip, bucket))) if *ip == to => bucket.take(now, rate),
            Some(slot) => {
                // A new source (or one that shares the slot): a fresh bucket.
                let mut bucket = Bucket::full(now, rate);
                let ok = bucket.take(now, rate);
                *slot = Some((to, bucket));
                ok
            }
            None => false,
        } && self.total.take(now, self.total_rate);
        if !ok {
            self.suppressed += 1;
        }
        ok
    }
}

impl ErrorLimiter {
    /// The server's limits ([`PER_SOURCE_PER_SECOND`], [`TOTAL_PER_SECOND`]).
    pub fn standard(now: Instant) -> Self {
        Self::new(now, PER_SOURCE_PER_SECOND, TOTAL_PER_SECOND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    /// 170 000 bad checks in one second from one source earn 5 answers; the next second 5
    /// more; another source is not affected.
    #[test]
    fn one_source_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut l = ErrorLimiter::new(t0, 5, 500);
        let step = Duration::from_secs(1) / 170_000;
        let sent = (0..170_000u32)
            .filter(|i| l.allow(t0 + step * *i, ip(1)))
            .count();
        // The burst of 5, plus 5 earned during the second (one every 200 ms).
        assert_eq!(sent, 5 + 4);
        assert_eq!(l.suppressed, 170_000 - 9);
        assert!(l.allow(t0, ip(2)));
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!((0..100).filter(|_| l.allow(t1, ip(1))).count(), 5);
    }

    /// Spoofed sources each get a fresh bucket, but the total holds.
    #[test]
    fn many_sources_are_held_by_the_total() {
        let t0 = Instant::now();
        let mut l = ErrorLimiter::new(t0, 5, 500);
        let sent = (0..100_000u32).filter(|i| l.allow(t0, ip(*i))).count();
        assert_eq!(sent, 500);
        let t1 = t0 + Duration::from_millis(100);
        let sent = (0..100_000u32).filter(|i| l.allow(t1, ip(*i))).count();
        assert_eq!(sent, 50);
    }
}
