//! `--record-dir DIR`: every track a WHIP publisher sends, written to a file on a thread of
//! its own so that a slow disk never stalls the media thread.
//!
//! The media thread holds a [`Recorder`] and hands it plain (decrypted, reordered) RTP
//! packets. The calls never block. Packets and commands share one `std::sync::mpsc` channel,
//! so they stay in order; instead of a `sync_channel` (whose `try_send` would drop a `start`
//! or `end` as readily as a packet), an atomic count bounds the packets in flight, and those
//! over it are dropped and counted. `start` and `end` are never dropped, so a recording
//! always begins and ends cleanly. Packet buffers come back through a second channel for
//! reuse.
//!
//! Files are `{stream}-{UTC time}.ivf` (VP8), `.ogg` (Opus) or `.h264` (Annex B); see
//! [`track`] for what goes in them and what a killed process leaves behind.

mod name;
mod track;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use self::track::Track;

/// Packets queued for the recorder thread at most (about 10 MB of RTP): a disk stall longer
/// than the queue covers loses packets, never stalls the media thread.
const MAX_QUEUED: usize = 8192;
/// Spare packet buffers kept for reuse; more than the steady state needs, few enough that a
/// burst does not pin megabytes.
const SPARE_BUFFERS: usize = 256;
/// How often buffered bytes are written out and the IVF frame count patched: the most a
/// killed process loses besides the open Ogg page.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The codec of a recorded track, which decides the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCodec {
    /// VP8 into IVF.
    Vp8,
    /// Opus into Ogg.
    Opus,
    /// H.264 into an Annex B byte stream.
    H264,
}

#[derive(Debug)]
enum Cmd {
    Start(u64, String, RecordCodec),
    Packet(u64, Vec<u8>),
    End(u64),
    /// Test only: stop at once without finishing anything, as a killed process would.
    #[cfg(test)]
    Abort,
}

/// The media thread's handle on the recorder thread. Dropping it finishes every open
/// recording and waits for the thread.
#[derive(Debug)]
pub struct Recorder {
    tx: Option<Sender<Cmd>>,
    /// Packets sent and not yet taken by the thread.
    queued: Arc<AtomicUsize>,
    /// Packet buffers the thread is done with, reused so the hot path does not allocate.
    free: Receiver<Vec<u8>>,
    /// Packets dropped per track because the recorder fell behind.
    dropped: HashMap<u64, u64>,
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
    pub fn spawn(dir: PathBuf) -> io::Result<Recorder> {
        let (tx, rx) = mpsc::channel();
        let (free_tx, free) = mpsc::sync_channel(SPARE_BUFFERS);
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = queued.clone();
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(&dir, &rx, &counter, &free_tx))?;
        Ok(Recorder {
            tx: Some(tx),
            queued,
            free,
            dropped: HashMap::new(),
            thread: Some(thread),
        })
    }

    /// Begins recording track `track_id` of `stream` into a new file.
    pub fn start(&mut self, track_id: u64, stream: &str, codec: RecordCodec) {
        self.send(Cmd::Start(track_id, stream.to_owned(), codec));
    }

    /// Records one plain RTP packet of a started track, given in sequence order.
    pub fn packet(&mut self, track_id: u64, rtp: &[u8]) {
        if self.queued.load(Ordering::Relaxed) >= MAX_QUEUED {
            let n = self.dropped.entry(track_id).or_default();
            if *n == 0 {
                tracing::warn!(track_id, "recorder falls behind: dropping packets");
            }
            *n += 1;
            return;
        }
        let mut buf = self.free.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(rtp);
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.send(Cmd::Packet(track_id, buf));
    }

    /// Finishes the recording of `track_id`.
    pub fn end(&mut self, track_id: u64) {
        if let Some(n) = self.dropped.remove(&track_id) {
            tracing::warn!(
                track_id,
                dropped = n,
                "recording lost packets to a slow disk"
            );
        }
        self.send(Cmd::End(track_id));
    }

    #[cfg(test)]
    /// Packets of `track_id` dropped so far because the recorder fell behind.
    pub fn dropped(&self, track_id: u64) -> u64 {
        self.dropped.get(&track_id).copied().unwrap_or(0)
    }

    /// Test only: makes the thread stop without finishing any file, like a killed process.
    #[cfg(test)]
    fn abort(mut self) {
        self.send(Cmd::Abort);
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
fn run(dir: &Path, rx: &Receiver<Cmd>, queued: &AtomicUsize, free: &SyncSender<Vec<u8>>) {
    let mut tracks: HashMap<u64, Track> = HashMap::new();
    let mut next_flush = Instant::now() + FLUSH_EVERY;
    loop {
        match rx.recv_timeout(next_flush.saturating_duration_since(Instant::now())) {
            Ok(Cmd::Start(id, stream, codec)) => {
                match Track::create(dir, &stream, codec, SystemTime::now()) {
                    Ok(t) => tracks.insert(id, t).map_or((), Track::finish),
                    Err(e) => tracing::error!(%stream, "cannot start recording: {e}"),
                }
            }
            Ok(Cmd::Packet(id, rtp)) => {
                queued.fetch_sub(1, Ordering::Relaxed);
                if let Some(t) = tracks.get_mut(&id)
                    && t.packet(&rtp).is_err()
                {
                    tracks.remove(&id);
                }
                let _ = free.try_send(rtp);
            }
            Ok(Cmd::End(id)) => tracks.remove(&id).map_or((), Track::finish),
            // Open files are closed without their pending bytes or final patches.
            #[cfg(test)]
            Ok(Cmd::Abort) => return,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_flush {
            tracks.retain(|_, t| t.flush().is_ok());
            next_flush = Instant::now() + FLUSH_EVERY;
        }
    }
    tracks.into_values().for_each(Track::finish);
}

#[cfg(test)]
mod tests;
