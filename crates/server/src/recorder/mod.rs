//! `--record-dir DIR`: each WHIP publish recorded as one file, audio and video together
//! (WebM for VP8 + Opus, Matroska `.mkv` for H.264), written on a thread of its own so that
//! a slow disk never stalls the media thread.
//!
//! The media thread holds a [`Recorder`] and hands it plain (decrypted, reordered) RTP
//! packets with their arrival time. The calls never block and never grow without bound:
//! packets and commands share one `std::sync::mpsc` channel, so they stay in order, and an
//! atomic count bounds the packets and starts in flight — those over it are dropped and
//! counted (a start dropped means that session is not recorded). An end is sent only for a
//! started recording, so ends are bounded by starts. Packet buffers come back through a
//! second channel for reuse.
//!
//! No file is opened before a recording's first keyframe ([`recording`]), and at most
//! [`Limits::max_open`] are open at once: a POST flood opens nothing, and many publishers
//! cannot exhaust the process's file descriptors.

mod name;
mod recording;
mod recordings;
mod track;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::recordings::Recordings;

/// Spare packet buffers kept for reuse; more than the steady state needs, few enough that a
/// burst does not pin megabytes.
const SPARE_BUFFERS: usize = 256;
/// How often buffered bytes are written out: the most a killed process loses.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The codec of a recorded input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCodec {
    /// VP8 video.
    Vp8,
    /// Opus audio.
    Opus,
    /// H.264 video.
    H264,
}

/// The recorder's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Packets (and starts) queued for the recorder thread at most (8192: about 10 MB of
    /// RTP): a disk stall longer than the queue covers loses packets, never stalls media.
    pub max_queued: usize,
    /// Recording files open at once at most; a recording whose first keyframe comes when
    /// this many are open waits for its next keyframe. Each open file is one descriptor.
    pub max_open: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_queued: 8192,
            max_open: 256,
        }
    }
}

#[derive(Debug)]
enum Cmd {
    Start(u64, String, Vec<RecordCodec>),
    Packet(u64, u8, Instant, Vec<u8>),
    End(u64),
}

/// The media thread's handle on the recorder thread. Dropping it finishes every open
/// recording and waits for the thread.
#[derive(Debug)]
pub struct Recorder {
    tx: Option<Sender<Cmd>>,
    /// Packets and starts sent and not yet taken by the thread.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    /// Packet buffers the thread is done with, reused so the hot path does not allocate.
    free: Receiver<Vec<u8>>,
    /// Recordings started and not ended, with the packets dropped for each because the
    /// recorder fell behind.
    active: HashMap<u64, u64>,
    /// Recordings not started because the queue was full.
    refused: u64,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Creates `dir` if needed and checks that files can be created in it; call at startup
    /// so that a bad `--record-dir` is an error before anything is published.
    pub fn check_dir(dir: &Path) -> io::Result<()> {
        let fail = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("record dir {}: {what}: {e}", dir.display()),
            )
        };
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create it", e))?;
        let probe = dir.join(format!(".leanrtc-write-test-{}", std::process::id()));
        std::fs::File::create(&probe).map_err(|e| fail("not writable", e))?;
        std::fs::remove_file(&probe).map_err(|e| fail("cannot remove a test file", e))
    }

    /// Starts the recorder thread writing into `dir`.
    pub fn spawn(dir: PathBuf, limits: Limits) -> io::Result<Recorder> {
        let (tx, rx) = mpsc::channel();
        let (free_tx, free) = mpsc::sync_channel(SPARE_BUFFERS);
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = queued.clone();
        let recordings = Recordings::new(dir, limits.max_open);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(recordings, &rx, &counter, &free_tx))?;
        Ok(Recorder::with(tx, queued, free, limits, Some(thread)))
    }

    fn with(
        tx: Sender<Cmd>,
        queued: Arc<AtomicUsize>,
        free: Receiver<Vec<u8>>,
        limits: Limits,
        thread: Option<JoinHandle<()>>,
    ) -> Recorder {
        Recorder {
            tx: Some(tx),
            queued,
            max_queued: limits.max_queued,
            free,
            active: HashMap::new(),
            refused: 0,
            thread,
        }
    }

    /// Begins recording publish session `id` of `stream`, whose inputs have these codecs.
    pub fn start(&mut self, id: u64, stream: &str, codecs: &[RecordCodec]) {
        if self.full() {
            self.refused += 1;
            if self.refused.is_power_of_two() {
                tracing::warn!(%stream, refused = self.refused, "recorder falls behind: publish not recorded");
            }
            return;
        }
        self.active.insert(id, 0);
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.send(Cmd::Start(id, stream.to_owned(), codecs.to_vec()));
    }

    /// Records one plain RTP packet of input `input` of a started session, given in
    /// sequence order, which arrived at `now`.
    pub fn packet(&mut self, id: u64, input: usize, now: Instant, rtp: &[u8]) {
        let full = self.full();
        let (Some(dropped), Ok(input)) = (self.active.get_mut(&id), u8::try_from(input)) else {
            return;
        };
        if full {
            if *dropped == 0 {
                tracing::warn!(id, "recorder falls behind: dropping packets");
            }
            *dropped += 1;
            return;
        }
        let mut buf = self.free.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(rtp);
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.send(Cmd::Packet(id, input, now, buf));
    }

    /// Finishes the recording of session `id`.
    pub fn end(&mut self, id: u64) {
        let Some(dropped) = self.active.remove(&id) else {
            return;
        };
        if dropped > 0 {
            tracing::warn!(id, dropped, "recording lost packets to a slow disk");
        }
        self.send(Cmd::End(id));
    }

    fn full(&self) -> bool {
        self.queued.load(Ordering::Relaxed) >= self.max_queued
    }

    fn send(&mut self, cmd: Cmd) {
        // An error means the thread is gone; it logged why, and recording simply stops.
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The recorder thread: commands in order, a flush of every file each [`FLUSH_EVERY`], and
/// every file finished when the handle is dropped.
fn run(
    mut recordings: Recordings,
    rx: &Receiver<Cmd>,
    queued: &AtomicUsize,
    free: &SyncSender<Vec<u8>>,
) {
    let mut next_flush = Instant::now() + FLUSH_EVERY;
    loop {
        match rx.recv_timeout(next_flush.saturating_duration_since(Instant::now())) {
            Ok(cmd) => take(&mut recordings, cmd, queued, free),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_flush {
            recordings.flush();
            next_flush = Instant::now() + FLUSH_EVERY;
        }
    }
    recordings.finish_all();
}

fn take(recordings: &mut Recordings, cmd: Cmd, queued: &AtomicUsize, free: &SyncSender<Vec<u8>>) {
    match cmd {
        Cmd::Start(id, stream, codecs) => {
            queued.fetch_sub(1, Ordering::Relaxed);
            recordings.start(id, &stream, &codecs);
        }
        Cmd::Packet(id, input, now, rtp) => {
            queued.fetch_sub(1, Ordering::Relaxed);
            recordings.packet(id, usize::from(input), now, &rtp);
            let _ = free.try_send(rtp);
        }
        Cmd::End(id) => recordings.end(id),
    }
}

#[cfg(test)]
mod tests;
