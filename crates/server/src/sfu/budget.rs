//! How much work one wake-up of the media thread may do before it looks at everything else.
//!
//! Under a flood the socket never runs dry: a loop that drains it first starves the commands
//! from HTTP (DELETE, new sessions, `/api/streams`) and the timers (consent, Sender Reports).
//! Each round takes at most [`Budget::datagrams`] datagrams and [`Budget::commands`]
//! commands; whatever is left waits for the next round, which then starts without sleeping.

/// Datagrams handled per round: 32 receive batches, about 1–3 ms of work.
pub const DATAGRAMS_PER_ROUND: usize = 1024;
/// Commands handled per round: creating a session costs ~0.2 ms, so at most ~6 ms a round.
pub const COMMANDS_PER_ROUND: usize = 32;

/// One round's allowance, and whether anything was left over.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Datagrams allowed per round.
    pub datagrams: usize,
    /// Commands allowed per round.
    pub commands: usize,
    datagrams_left: usize,
    commands_left: usize,
    unfinished: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(DATAGRAMS_PER_ROUND, COMMANDS_PER_ROUND)
    }
}

impl Budget {
    /// A budget of `datagrams` and `commands` per round.
    pub fn new(datagrams: usize, commands: usize) -> Self {
        Self {
            datagrams,
            commands,
            datagrams_left: datagrams,
            commands_left: commands,
            unfinished: false,
        }
    }

    /// A new round: the allowance is whole again.
    pub fn start_round(&mut self) {
        self.datagrams_left = self.datagrams;
        self.commands_left = self.commands;
        self.unfinished = false;
    }

    /// Whether `batch` more datagrams may be received this round. When not, the socket may
    /// still hold some: the round is unfinished.
    pub fn may_receive(&mut self, batch: usize) -> bool {
        let ok = self.datagrams_left >= batch.max(1);
        self.unfinished |= !ok;
        ok
    }

    /// `n` datagrams were handled.
    pub fn spend_datagrams(&mut self, n: usize) {
        self.datagrams_left = self.datagrams_left.saturating_sub(n);
    }

    /// Takes one command's allowance; false (and the round unfinished) when none is left.
    pub fn take_command(&mut self) -> bool {
        if self.commands_left == 0 {
            self.unfinished = true;
            return false;
        }
        self.commands_left -= 1;
        true
    }

    /// True when the round stopped with work left: the next one must not sleep (and must not
    /// wait for a readiness event, which an edge-triggered poller does not repeat).
    pub fn unfinished(&self) -> bool {
        self.unfinished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood larger than the budget: each round takes at most the budget and says it left
    /// work, until the flood is drained.
    #[test]
    fn a_round_takes_at_most_its_budget() {
        let mut b = Budget::new(1024, 32);
        let (mut queued, batch) = (5000usize, 32usize);
        let mut rounds = Vec::new();
        loop {
            b.start_round();
            let mut handled = 0;
            while b.may_receive(batch) {
                let n = queued.min(batch);
                if n == 0 {
                    break;
                }
                queued -= n;
                handled += n;
                b.spend_datagrams(n);
            }
            rounds.push((handled, b.unfinished()));
            if queued == 0 && !b.unfinished() {
                break;
            }
        }
        assert!(rounds.iter().all(|(n, _)| *n <= 1024));
        assert_eq!(rounds.iter().map(|(n, _)| n).sum::<usize>(), 5000);
        // 1024 × 4 with work left each time, then 904 and done.
        assert_eq!(
            rounds,
            [
                (1024, true),
                (1024, true),
                (1024, true),
                (1024, true),
                (904, false)
            ]
        );
    }

    #[test]
    fn commands_are_budgeted_too() {
        let mut b = Budget::new(1024, 2);
        b.start_round();
        assert!(b.take_command() && b.take_command());
        assert!(!b.unfinished());
        assert!(!b.take_command());
        assert!(b.unfinished());
        b.start_round();
        assert!(b.take_command());
        assert!(!b.unfinished());
    }
}
