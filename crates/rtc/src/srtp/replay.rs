//! Packet index estimation (RFC 3711 §3.3.1, Appendix A) and the replay window (§3.3.2).

use super::SrtpError;

/// The 48-bit SRTP packet index `ROC * 2^16 + SEQ` that a sequence number most likely has,
/// given the highest index seen so far (RFC 3711 Appendix A). A packet from just before a
/// wrap (seq 65535 after 0 of the next ROC) gets ROC - 1; one from just after a wrap gets
/// ROC + 1. ROC - 1 of ROC 0 does not exist, so such a packet keeps ROC 0.
pub(crate) fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        if u32::from(seq) > u32::from(s_l) + 0x8000 {
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if u32::from(s_l) - 0x8000 > u32::from(seq) {
        roc + 1
    } else {
        roc
    };
    (v << 16) | u64::from(seq)
}

/// Packets within this many indices of the highest one are checked for replay; older ones are
/// refused. RFC 3711 §3.3.2 asks for at least 64; a retransmission (RFC 4588) of an early
/// packet of a large keyframe comes back several hundred packets behind at a few Mbit/s, so
/// we keep what libsrtp and libwebrtc allow: 1024.
pub(crate) const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// A sliding bitmap of the last [`WINDOW`] indices received, anchored at the highest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayWindow {
    highest: u64,
    /// Bit `d % 64` of word `d / 64` set: index `highest - d` was received.
    seen: [u64; WORDS],
}

impl ReplayWindow {
    /// A window whose first (authenticated) packet had `index`.
    pub(crate) fn new(index: u64) -> Self {
        let mut seen = [0; WORDS];
        seen[0] = 1;
        Self {
            highest: index,
            seen,
        }
    }

    /// The highest index accepted so far.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    fn bit(behind: u64) -> (usize, u64) {
        ((behind / 64) as usize, 1u64 << (behind % 64))
    }

    /// May a packet with `index` be accepted? Checked before authentication, recorded with
    /// [`ReplayWindow::accept`] only after it.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(behind) = self.highest.checked_sub(index) else {
            return Ok(());
        };
        if behind >= WINDOW {
            return Err(SrtpError::TooOld);
        }
        let (word, mask) = Self::bit(behind);
        if self.seen[word] & mask != 0 {
            Err(SrtpError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records an authenticated packet's index.
    pub(crate) fn accept(&mut self, index: u64) {
        match self.highest.checked_sub(index) {
            Some(behind) if behind < WINDOW => {
                let (word, mask) = Self::bit(behind);
                self.seen[word] |= mask;
            }
            Some(_) => {}
            None => {
                self.shift(index - self.highest);
                self.seen[0] |= 1;
                self.highest = index;
            }
        }
    }

    /// Moves every mark `ahead` places further behind; those past the window fall off.
    fn shift(&mut self, ahead: u64) {
        if ahead >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let words = (ahead / 64) as usize;
        let bits = (ahead % 64) as u32;
        for i in (0..WORDS).rev() {
            let hi = i.checked_sub(words).map_or(0, |j| self.seen[j]);
            let lo = i.checked_sub(words + 1).map_or(0, |j| self.seen[j]);
            self.seen[i] = if bits == 0 {
                hi
            } else {
                (hi << bits) | (lo >> (64 - bits))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_follow_rfc3711_appendix_a() {
        // In order, no wrap.
        assert_eq!(estimate_index(100, 101), 101);
        // Forward across a wrap: highest is ROC 0 / 65535, next is 0 of ROC 1.
        assert_eq!(estimate_index(0xffff, 0), 0x1_0000);
        assert_eq!(estimate_index(0xfff0, 5), 0x1_0005);
        // Reordered across a wrap: seq 65535 arrives after 0 of ROC 1 was seen.
        assert_eq!(estimate_index(0x1_0000, 0xffff), 0xffff);
        assert_eq!(estimate_index(0x5_0002, 0xfffe), 0x4_fffe);
        // Late packet well inside the same ROC.
        assert_eq!(estimate_index(0x3_9000, 0x8500), 0x3_8500);
        // No ROC below zero.
        assert_eq!(estimate_index(10, 0xfff0), 0xfff0);
    }

    #[test]
    fn window_refuses_replays_and_old_packets() {
        let mut w = ReplayWindow::new(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(999), Ok(()));
        w.accept(999);
        assert_eq!(w.check(999), Err(SrtpError::Replayed));
        w.accept(1000 + WINDOW);
        assert_eq!(w.check(1000), Err(SrtpError::TooOld));
        assert_eq!(w.check(1001), Ok(()));
        w.accept(3000);
        assert_eq!(w.check(3000 - (WINDOW - 1)), Ok(()));
        assert_eq!(w.check(3000 - WINDOW), Err(SrtpError::TooOld));
        w.accept(3001);
        w.accept(2990);
        assert_eq!(w.check(2990), Err(SrtpError::Replayed));
        assert_eq!(w.check(3000), Err(SrtpError::Replayed));
        assert_eq!(w.check(2999), Ok(()));
        assert_eq!(w.highest(), 3001);
        // A jump beyond the window forgets everything but the new index.
        w.accept(9000);
        assert_eq!(w.check(8999), Ok(()));
        assert_eq!(w.check(9000), Err(SrtpError::Replayed));
    }

    /// The retransmission of a keyframe's first packet, ~700 packets later (a 700 KB keyframe
    /// at 6 Mbit/s), is still inside the window: libsrtp and libwebrtc accept it too.
    #[test]
    fn window_takes_a_retransmission_700_packets_late() {
        let mut w = ReplayWindow::new(10_000);
        for i in 10_002..10_700 {
            w.accept(i);
        }
        assert_eq!(w.check(10_001), Ok(()));
        w.accept(10_001);
        assert_eq!(w.check(10_001), Err(SrtpError::Replayed));
        assert_eq!(w.check(10_000), Err(SrtpError::Replayed));
    }

    /// The word-wise shift against a set of every index seen, over jumps of every size.
    #[test]
    fn window_matches_a_model() {
        let mut w = ReplayWindow::new(0);
        let mut seen = std::collections::BTreeSet::from([0u64]);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let highest = w.highest();
            let index = match x % 4 {
                0 => highest + 1 + (x >> 8) % 130,
                1 => highest + (x >> 8) % 1100,
                _ => highest.saturating_sub((x >> 8) % 1100),
            };
            let expected = if index + WINDOW <= highest {
                Err(SrtpError::TooOld)
            } else if seen.contains(&index) {
                Err(SrtpError::Replayed)
            } else {
                Ok(())
            };
            assert_eq!(w.check(index), expected, "index {index} highest {highest}");
            if expected.is_ok() {
                w.accept(index);
                seen.insert(index);
            }
        }
    }
}
