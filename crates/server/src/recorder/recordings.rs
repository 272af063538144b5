//! The recorder thread's state: every recording by id, and the bound on open files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use super::RecordCodec;
use super::recording::{Outcome, Recording};

/// The recordings of one recorder.
pub struct Recordings {
    dir: PathBuf,
    max_open: usize,
    /// Recordings whose file is open.
    open: usize,
    map: HashMap<u64, Recording>,
    /// Recordings that could not open their file because `max_open` were open (each counted
    /// once; it tries again at its next keyframe).
    refused: u64,
}

impl Recordings {
    pub fn new(dir: PathBuf, max_open: usize) -> Self {
        Recordings {
            dir,
            max_open,
            open: 0,
            map: HashMap::new(),
            refused: 0,
        }
    }

    /// A new recording `id` of `stream` with these inputs; nothing is opened yet.
    pub fn start(&mut self, id: u64, stream: &str, codecs: &[RecordCodec]) {
        if let Some(old) = self.map.insert(id, Recording::new(stream, codecs)) {
            self.close(old);
        }
    }

    /// A plain RTP packet of input `input` of recording `id`, which arrived at `now`.
    pub fn packet(&mut self, id: u64, input: usize, now: Instant, rtp: &[u8]) {
        let Some(r) = self.map.get_mut(&id) else {
            return;
        };
        let was_open = r.is_open();
        let may_open = self.open < self.max_open;
        match r.packet(input, now, rtp, &self.dir, may_open) {
            Ok(Outcome::Ok) => self.open += usize::from(!was_open && r.is_open()),
            Ok(Outcome::Refused) => {
                self.refused += 1;
                // Logged at 1, 2, 4, 8, … refusals: a flood of publishers cannot flood the log.
                if self.refused.is_power_of_two() {
                    tracing::warn!(
                        id,
                        refused = self.refused,
                        "recording not started: {} recordings are open already",
                        self.max_open
                    );
                }
            }
            Err(_) => {
                // Stopped (logged): the file is closed as it is, which leaves it playable.
                self.map.remove(&id);
                self.open -= usize::from(was_open);
            }
        }
    }

    /// Ends recording `id`.
    pub fn end(&mut self, id: u64) {
        if let Some(r) = self.map.remove(&id) {
            self.close(r);
        }
    }

    /// Writes out what every open file has buffered; a file that fails stops.
    pub fn flush(&mut self) {
        let before = self.map.len();
        let mut failed = 0;
        self.map.retain(|_, r| {
            let ok = r.flush().is_ok();
            failed += usize::from(!ok && r.is_open());
            ok
        });
        debug_assert!(before - self.map.len() == failed);
        self.open -= failed;
    }

    /// Finishes every recording.
    pub fn finish_all(&mut self) {
        for (_, r) in std::mem::take(&mut self.map) {
            self.close(r);
        }
    }

    /// Files open now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open
    }

    /// Times a recording could not open its file for the bound.
    #[cfg(test)]
    pub fn refused(&self) -> u64 {
        self.refused
    }

    fn close(&mut self, r: Recording) {
        self.open -= usize::from(r.is_open());
        r.finish();
    }
}
