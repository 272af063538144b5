//! Wrap-aware RTP sequence-number arithmetic (RFC 3550 §A.1 uses the same half-range rule).

/// Signed distance from `b` to `a`: positive when `a` is newer, within ±32767.
pub fn seq_diff(a: u16, b: u16) -> i16 {
    a.wrapping_sub(b) as i16
}

/// Whether `a` comes after `b`, treating the nearer direction around the wrap as right.
pub fn seq_newer(a: u16, b: u16) -> bool {
    seq_diff(a, b) > 0
}

/// Extends 16-bit sequence numbers to a monotonic 64-bit count (wrap cycles << 16 | seq).
///
/// Each number is placed in the cycle that puts it nearest to the previous one, so reordering
/// within half the sequence space across a wrap is handled. The first number starts cycle 0;
/// a reordered packet from before it *and* before a wrap would fall in cycle −1, so the value
/// is signed rather than clamped to a wrong number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqUnwrapper {
    last: Option<i64>,
}

impl SeqUnwrapper {
    /// An unwrapper that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended value of `seq`; it becomes the reference for the next call.
    pub fn extend(&mut self, seq: u16) -> i64 {
        let ext = self.peek(seq);
        self.last = Some(ext);
        ext
    }

    /// The extended value of `seq` without changing the reference.
    pub fn peek(&self, seq: u16) -> i64 {
        match self.last {
            None => i64::from(seq),
            Some(last) => last + i64::from(seq_diff(seq, last as u16)),
        }
    }

    /// The last value returned by [`extend`](Self::extend).
    pub fn last(&self) -> Option<i64> {
        self.last
    }
}
