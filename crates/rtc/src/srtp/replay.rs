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

/// SRTP packets within this many indices of the highest one are checked for replay; older
/// ones are refused. RFC 3711 §3.3.2 asks for at least 64; a late retransmission must still
/// fit (our receive streams wait for up to three NACK round trips, hundreds of packets into a
/// keyframe burst), so media gets libwebrtc's 1024.
pub(crate) type RtpWindow = ReplayWindow<16>;
/// SRTCP indices: a sender's RTCP packets come a few a second, never retransmitted.
pub(crate) type RtcpWindow = ReplayWindow<2>;

/// A sliding bitmap of the last `64 × WORDS` indices received, anchored at the highest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayWindow<const WORDS: usize> {
    highest: u64,
    /// Bit `d % 64` of word `d / 64` set: index `highest - d` was received.
    seen: [u64; WORDS],
}

impl<const WORDS: usize> ReplayWindow<WORDS> {
    /// Indices this far behind the highest or more are refused.
    pub(crate) const SIZE: u64 = 64 * WORDS as u64;

    /// A window whose first (authenticated) packet had `index`.
    pub(crate) fn new(index: u64) -> Self {
        let mut seen = [0; WORDS];
        if let Some(w) = seen.first_mut() {
            *w = 1;
        }
        Self {
            highest: index,
            seen,
        }
    }

    /// The highest index accepted so far.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    fn bit(&self, behind: u64) -> bool {
        let word = self.seen.get((behind / 64) as usize).copied().unwrap_or(0);
        word & (1 << (behind % 64)) != 0
    }

    /// May a packet with `index` be accepted? Checked before authentication, recorded with
    /// [`ReplayWindow::accept`] only after it.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(behind) = self.highest.checked_sub(index) else {
            return Ok(());
        };
        if behind >= Self::SIZE {
            Err(SrtpError::TooOld)
        } else if self.bit(behind) {
            Err(SrtpError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records an authenticated packet's index.
    pub(crate) fn accept(&mut self, index: u64) {
        match self.highest.checked_sub(index) {
            Some(behind) if behind < Self::SIZE => {
                if let Some(w) = self.seen.get_mut((behind / 64) as usize) {
                    *w |= 1 << (behind % 64);
                }
            }
            Some(_) => {}
            None => {
                let ahead = index - self.highest;
                self.shift(ahead);
                if let Some(w) = self.seen.first_mut() {
                    *w |= 1;
                }
                self.highest = index;
            }
        }
    }

    /// Moves every bit `by` places further behind (the highest index advanced by `by`).
    fn shift(&mut self, by: u64) {
        if by >= Self::SIZE {
            self.seen = [0; WORDS];
            return;
        }
        let (words, bits) = ((by / 64) as usize, (by % 64) as u32);
        for i in (0..WORDS).rev() {
            let from = |j: Option<usize>| j.and_then(|j| self.seen.get(j)).copied().unwrap_or(0);
            let high = from(i.checked_sub(words));
            let low = from(i.checked_sub(words + 1));
            let word = if bits == 0 {
                high
            } else {
                (high << bits) | (low >> (64 - bits))
            };
            if let Some(w) = self.seen.get_mut(i) {
                *w = word;
            }
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
    fn a_retransmission_300_packets_late_is_accepted_once() {
        // A keyframe burst: packet 1000 is lost, 300 more arrive, then its retransmission.
        let mut w = RtpWindow::new(999);
        for i in 1001..=1300 {
            assert_eq!(w.check(i), Ok(()));
            w.accept(i);
        }
        assert_eq!(w.check(1000), Ok(()), "a late retransmission is no replay");
        w.accept(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        for i in 1001..=1300 {
            assert_eq!(w.check(i), Err(SrtpError::Replayed), "{i}");
        }
        assert_eq!(w.check(999), Err(SrtpError::Replayed));
        assert_eq!(w.check(1300 - 1023), Ok(()));
        assert_eq!(w.check(1300 - 1024), Err(SrtpError::TooOld));
        // Bits move across words intact.
        w.accept(1300 + 70);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(1301), Ok(()));
        assert_eq!(w.check(1369), Ok(()));
        assert_eq!(w.check(1370), Err(SrtpError::Replayed));
    }

    #[test]
    fn window_refuses_replays_and_old_packets() {
        let mut w = RtcpWindow::new(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(999), Ok(()));
        w.accept(999);
        assert_eq!(w.check(999), Err(SrtpError::Replayed));
        w.accept(1200);
        assert_eq!(w.check(1000), Err(SrtpError::TooOld));
        assert_eq!(w.check(1200 - 127), Ok(()));
        assert_eq!(w.check(1200 - 128), Err(SrtpError::TooOld));
        w.accept(1201);
        w.accept(1190);
        assert_eq!(w.check(1190), Err(SrtpError::Replayed));
        assert_eq!(w.check(1200), Err(SrtpError::Replayed));
        assert_eq!(w.check(1199), Ok(()));
        assert_eq!(w.highest(), 1201);
        // A jump beyond the window forgets everything but the new index.
        w.accept(5000);
        assert_eq!(w.check(4999), Ok(()));
        assert_eq!(w.check(5000), Err(SrtpError::Replayed));
    }
}
