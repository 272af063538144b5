//! Rate-limited logging of refusals: a client that is refused a thousand times a second must
//! not fill the disk, yet the operator must see that it happens.

use tokio::time::{Duration, Instant};

/// Lines allowed per window.
const BURST: u32 = 10;
/// The window.
const WINDOW: Duration = Duration::from_secs(10);

/// Allows [`BURST`] lines per [`WINDOW`] and counts the rest.
#[derive(Debug)]
pub struct RateLog {
    window_start: Option<Instant>,
    lines: u32,
    skipped: u64,
}

impl RateLog {
    pub fn new() -> Self {
        Self {
            window_start: None,
            lines: 0,
            skipped: 0,
        }
    }

    /// `Some(n)` if a line may be logged now, `n` being how many were skipped since the last
    /// one; `None` if this one is to be skipped.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= WINDOW)
        {
            self.window_start = Some(now);
            self.lines = 0;
        }
        if self.lines >= BURST {
            self.skipped += 1;
            return None;
        }
        self.lines += 1;
        Some(std::mem::take(&mut self.skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_lines_per_window_then_a_count_of_the_skipped() {
        let t0 = Instant::now();
        let mut log = RateLog::new();
        let allowed = (0..100).filter(|_| log.allow(t0).is_some()).count();
        assert_eq!(allowed, BURST as usize);
        assert_eq!(log.allow(t0 + WINDOW), Some(90));
        assert_eq!(log.allow(t0 + WINDOW), Some(0));
    }
}
