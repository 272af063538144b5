//! The load generator's client threads. Each owns one [`Driver`] — the publishers' thread
//! only publishers, so their pacing never waits behind viewers; viewers are spread over
//! several threads — and takes commands over a channel, woken through the driver's poll:
//! sessions POSTed elsewhere to drive, snapshots of what its clients counted, stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::load::BenchError;
use crate::load::procfs;
use crate::{ClientId, Driver, PublisherConfig, Session, ViewerConfig};

/// How often a thread refreshes its [`Progress`].
const SCAN: Duration = Duration::from_millis(100);

/// What a client thread is asked.
#[derive(Debug)]
pub enum Command {
    /// Play this session.
    View(Box<Session>),
    /// Publish with this session.
    Publish(Box<Session>, Box<PublisherConfig>),
    /// Report every client's counts (and the latencies since the last snapshot).
    Snapshot(Sender<Snapshot>),
    /// Close every session (DTLS close_notify) and end.
    Stop,
}

/// Counts a thread keeps current (every 100 ms) for the runner to wait on.
#[derive(Debug, Default)]
pub struct Progress {
    /// Sessions handed to the thread.
    pub added: AtomicUsize,
    /// Of those, with ICE and DTLS up.
    pub connected: AtomicUsize,
    /// Viewers that received media; publishers that sent some.
    pub media: AtomicUsize,
    /// Sessions whose connection ended, or that could not be driven.
    pub failed: AtomicUsize,
}

/// One client's counts at a snapshot.
#[derive(Debug, Clone)]
pub struct ClientSnap {
    /// Which client of its thread.
    pub id: ClientId,
    /// A publisher (else a viewer).
    pub publisher: bool,
    /// When its offer was POSTed.
    pub posted_at: Instant,
    /// When ICE and DTLS were up.
    pub connected_at: Option<Instant>,
    /// Viewers: when the first media packet arrived (the kernel's stamp over UDP, the time
    /// it was read over TCP).
    pub first_media_at: Option<Instant>,
    /// Viewers: when the end of the first video frame arrived (as `first_media_at`).
    pub first_frame_at: Option<Instant>,
    /// Its connection ended.
    pub closed: bool,
    /// Viewers: RTP packets received; publishers: RTP packets sent.
    pub packets: u64,
    /// Viewers: distinct sequence numbers received, over every SSRC.
    pub unique: u64,
    /// Viewers: sequence numbers from the first to the highest, over every SSRC.
    pub expected: u64,
}

/// A thread's snapshot.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every client, in order.
    pub clients: Vec<ClientSnap>,
    /// Forwarding latencies (µs) of the stamped packets decrypted since the last snapshot.
    pub latencies_us: Vec<u32>,
    /// How long sampled datagrams waited in their socket for this thread (µs), since the
    /// last snapshot.
    pub read_delays_us: Vec<u32>,
}

/// Where to send a thread commands (cloneable, for the threads that POST).
#[derive(Debug, Clone)]
pub struct Handle {
    tx: Sender<Command>,
    waker: Arc<mio::Waker>,
}

impl Handle {
    /// Sends a command and wakes the thread; false if it is gone.
    pub fn send(&self, command: Command) -> bool {
        self.tx.send(command).is_ok() && self.waker.wake().is_ok()
    }
}

/// A client thread.
#[derive(Debug)]
pub struct ClientThread {
    handle: Handle,
    join: Option<JoinHandle<()>>,
    /// Its counts.
    pub progress: Arc<Progress>,
    /// Its thread id (for its CPU time).
    pub tid: i32,
}

impl ClientThread {
    /// Starts a thread whose viewers use `config`.
    pub fn spawn(name: &str, config: ViewerConfig) -> Result<ClientThread, BenchError> {
        let (tx, rx) = channel();
        let (ready_tx, ready_rx) = channel();
        let progress = Arc::new(Progress::default());
        let shared = Arc::clone(&progress);
        let join = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut driver = match Driver::new() {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                driver.use_kernel_timestamps();
                match driver.waker() {
                    Ok(w) => {
                        let _ = ready_tx.send(Ok((w, procfs::current_tid())));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                }
                run(driver, &rx, &config, &shared);
            })?;
        let (waker, tid) = ready_rx
            .recv()
            .map_err(|_| BenchError::Client("a client thread died at start".into()))?
            .map_err(BenchError::Client)?;
        Ok(ClientThread {
            handle: Handle { tx, waker },
            join: Some(join),
            progress,
            tid,
        })
    }

    /// Where to send it commands.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Asks for a snapshot; the answer comes on the returned channel.
    pub fn snapshot(&self) -> Receiver<Snapshot> {
        let (tx, rx) = channel();
        self.handle.send(Command::Snapshot(tx));
        rx
    }

    /// Closes its sessions and waits for the thread to end.
    pub fn stop(mut self) {
        self.handle.send(Command::Stop);
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

impl Drop for ClientThread {
    fn drop(&mut self) {
        if let Some(join) = self.join.take() {
            self.handle.send(Command::Stop);
            let _ = join.join();
        }
    }
}

/// The thread's loop: drive the clients, obey commands, refresh the progress counts.
fn run(mut d: Driver, rx: &Receiver<Command>, config: &ViewerConfig, progress: &Progress) {
    let mut pending = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut gone = false;
    let mut next_scan = Instant::now();
    loop {
        d.run_until(Instant::now() + SCAN, |_| {
            loop {
                match rx.try_recv() {
                    Ok(c) => pending.push(c),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            gone || !pending.is_empty()
        });
        for command in pending.drain(..) {
            match command {
                Command::View(session) => {
                    progress.added.fetch_add(1, Ordering::Relaxed);
                    if d.add_viewer(*session, config.clone()).is_err() {
                        progress.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Command::Publish(session, publisher) => {
                    progress.added.fetch_add(1, Ordering::Relaxed);
                    if d.add_publisher(*session, *publisher).is_err() {
                        progress.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Command::Snapshot(reply) => {
                    let _ = reply.send(snapshot(&mut d, &mut marks));
                }
                Command::Stop => gone = true,
            }
        }
        if gone {
            let ids: Vec<ClientId> = d.ids().collect();
            for id in ids {
                d.close(id);
            }
            return;
        }
        if Instant::now() >= next_scan {
            next_scan = Instant::now() + SCAN;
            scan(&d, progress);
        }
    }
}

fn scan(d: &Driver, progress: &Progress) {
    let (mut connected, mut media, mut closed) = (0, 0, 0);
    for id in d.ids() {
        let Some(session) = d.session(id) else {
            continue;
        };
        connected += usize::from(session.connected_at.is_some());
        closed += usize::from(session.closed.is_some() || session.link_ended());
        let has_media = match (d.viewer(id), d.publisher(id)) {
            (Some(v), _) => v.first_media_at.is_some(),
            (_, Some(p)) => p.stats.packets > 0,
            _ => false,
        };
        media += usize::from(has_media);
    }
    progress.connected.store(connected, Ordering::Relaxed);
    progress.media.store(media, Ordering::Relaxed);
    // `failed` also counts sessions the driver refused; closed ones add to those.
    let refused = progress.added.load(Ordering::Relaxed) - d.ids().count();
    progress.failed.store(refused + closed, Ordering::Relaxed);
}

fn snapshot(d: &mut Driver, marks: &mut Vec<usize>) -> Snapshot {
    let mut out = Snapshot {
        read_delays_us: d.take_read_delays(),
        ..Snapshot::default()
    };
    let ids: Vec<ClientId> = d.ids().collect();
    for id in ids {
        let Some(session) = d.session(id) else {
            continue;
        };
        let mut snap = ClientSnap {
            id,
            publisher: false,
            posted_at: session.posted_at,
            connected_at: session.connected_at,
            first_media_at: None,
            first_frame_at: None,
            closed: session.closed.is_some() || session.link_ended(),
            packets: 0,
            unique: 0,
            expected: 0,
        };
        if let Some(v) = d.viewer(id) {
            snap.first_media_at = v.first_media_at;
            snap.first_frame_at = v.first_frame_at;
            for s in &v.ssrcs {
                snap.packets += s.packets;
                snap.unique += s.unique;
                snap.expected += s.expected();
            }
            if marks.len() <= id.0 {
                marks.resize(id.0 + 1, 0);
            }
            if let Some(mark) = marks.get_mut(id.0) {
                out.latencies_us
                    .extend_from_slice(v.latencies_us.get(*mark..).unwrap_or_default());
                *mark = v.latencies_us.len();
            }
        } else if let Some(p) = d.publisher(id) {
            snap.publisher = true;
            snap.packets = p.stats.packets;
        }
        out.clients.push(snap);
    }
    out
}
