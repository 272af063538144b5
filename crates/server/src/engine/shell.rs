//! One media thread: a poller, its shard, and the channels to HTTP and the other threads.
//! It moves bytes and time and nothing else; every decision is the shard's.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Waker};

use super::SOCKET;
use crate::control::Command;
use crate::sfu::Shard;
use crate::sfu::message::{Dest, Message};
use crate::tcp::Tcp;
use crate::udp::{RecvBatch, UdpIo};

/// Datagrams per receive call.
const RECV_BATCH: usize = 32;
/// Messages from other threads taken per round (a round's media from shard 0 is one).
const MESSAGES_PER_ROUND: usize = 1024;
/// How long the last datagrams may wait for room in the socket's send buffer at shutdown.
const FLUSH_LIMIT: Duration = Duration::from_millis(500);

/// The way to another media thread.
pub struct Peer {
    /// Its inbox.
    pub tx: SyncSender<Message>,
    /// Wakes it.
    pub waker: Arc<Waker>,
}

/// A media thread's I/O.
pub struct Shell {
    shard: Shard,
    poll: Poll,
    /// Shard 0's handle on the socket, which it reads.
    receiving: Option<UdpIo>,
    /// Shard 0: the ICE-TCP listener and connections (issue 13).
    tcp: Option<Tcp>,
    recv: RecvBatch,
    /// A handle on the socket registered for WRITABLE while datagrams wait for room.
    writable: UdpIo,
    waiting_writable: bool,
    commands: Receiver<Command>,
    inbox: Receiver<Message>,
    peers: Arc<[Peer]>,
    /// Which peers got messages this round (woken once each).
    woken: Vec<bool>,
    load: Arc<AtomicUsize>,
}

impl Shell {
    #[allow(clippy::too_many_arguments)] // one of each thing a thread is made of
    pub fn new(
        shard: Shard,
        poll: Poll,
        mut receiving: Option<UdpIo>,
        tcp: Option<Tcp>,
        writable: UdpIo,
        commands: Receiver<Command>,
        inbox: Receiver<Message>,
        peers: Arc<[Peer]>,
        load: Arc<AtomicUsize>,
    ) -> io::Result<Self> {
        if let Some(io) = &mut receiving {
            poll.registry().register(io, SOCKET, Interest::READABLE)?;
        }
        let woken = vec![false; peers.len()];
        Ok(Shell {
            shard,
            poll,
            receiving,
            tcp,
            recv: RecvBatch::new(RECV_BATCH),
            writable,
            waiting_writable: false,
            commands,
            inbox,
            peers,
            woken,
            load,
        })
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            // Work left over from a round cut short by its budget goes on at once.
            let tcp_busy = self.tcp.as_ref().is_some_and(Tcp::busy);
            let timeout = if self.shard.unfinished() || tcp_busy {
                Duration::ZERO
            } else {
                self.shard.poll_timeout().saturating_duration_since(now)
            };
            self.shard.start_round();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(shard = self.shard.id(), "media thread: poll failed: {e}");
                return;
            }
            let start = Instant::now();
            if let Some(tcp) = self.tcp.as_mut() {
                tcp.on_events(&events);
            }
            self.take_messages(start);
            self.receive(start);
            self.receive_tcp(start);
            if !self.take_commands(start) {
                tracing::info!(
                    shard = self.shard.id(),
                    "media thread: every handle is gone, stopping"
                );
                self.shard.shutdown(start);
                self.send_messages();
                self.flush_all(start + FLUSH_LIMIT);
                return;
            }
            self.shard.handle_timeout(start);
            self.send_messages();
            self.flush();
            self.shard.end_round();
            self.load
                .store(self.shard.session_count(), Ordering::Relaxed);
            self.shard.add_busy(start.elapsed());
        }
    }

    /// Messages from the other threads, within the round's budget (each spends its share,
    /// see [`Shard::handle_message`]).
    fn take_messages(&mut self, now: Instant) {
        for _ in 0..MESSAGES_PER_ROUND {
            if !self.shard.may_receive(1) {
                return;
            }
            match self.inbox.try_recv() {
                Ok(message) => self.shard.handle_message(now, message),
                Err(_) => return,
            }
        }
    }

    /// Reads and hands datagrams to the shard, at most the round's budget of them (a flood
    /// must not starve commands and timers; what is left is read in the next round, at once).
    fn receive(&mut self, now: Instant) {
        let Some(mut io) = self.receiving.take() else {
            return;
        };
        let mut handled = 0;
        while self.shard.may_receive(RECV_BATCH) {
            let n = match io.recv_batch(&mut self.recv) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("media socket receive: {e}");
                    0
                }
            };
            if n == 0 {
                break;
            }
            for datagram in self.recv.iter_mut() {
                // The kernel's receive time, not this wake-up's: TWCC and jitter must not
                // measure our own queueing (issue 10).
                let (at, from, local) = (datagram.arrival, datagram.source, datagram.local);
                self.shard.handle_datagram(at, from, local, datagram.bytes);
            }
            handled += n as u64;
            self.shard.spent_datagrams(n, handled);
            self.shard.fan_out(now);
            // What other threads' viewers need leaves with each batch, not each round.
            self.send_messages();
        }
        self.receiving = Some(io);
    }

    /// Hands the frames ICE-TCP connections brought (RFC 4571) to the shard, each like a
    /// datagram.
    fn receive_tcp(&mut self, now: Instant) {
        let Some(tcp) = self.tcp.as_mut() else {
            return;
        };
        let mut frames = tcp.receive(now, self.poll.registry());
        for i in 0..frames.len() {
            if let Some((from, local, bytes)) = frames.get_mut(i) {
                self.shard.handle_tcp_frame(now, from, local, bytes);
            }
        }
        let any = frames.len() > 0;
        tcp.recycle(frames);
        // Connections gone for good: every shard sends to their peers over UDP again.
        self.shard.tcp_forget(tcp.take_forgotten());
        self.shard.set_tcp_stats(tcp.stats(), tcp.open());
        if any {
            self.shard.fan_out(now);
        }
        self.send_messages();
    }

    /// Commands from HTTP; false once every handle is gone.
    fn take_commands(&mut self, now: Instant) -> bool {
        while self.shard.may_take_command() {
            match self.commands.try_recv() {
                Ok(cmd) => self.shard.handle_command(now, cmd),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// Hands the shard's messages to the other threads, and wakes each once.
    fn send_messages(&mut self) {
        let me = self.shard.id();
        while let Some((dest, message)) = self.shard.poll_message() {
            match dest {
                Dest::Shard(k) => self.send_to(k, message),
                Dest::Others => {
                    // Clones for all but the last, which takes the message itself.
                    let last = (0..self.peers.len()).rev().find(|&k| k != me);
                    for k in (0..self.peers.len()).filter(|&k| k != me && Some(k) != last) {
                        self.send_to(k, message.clone());
                    }
                    if let Some(k) = last {
                        self.send_to(k, message);
                    }
                }
            }
        }
        for (k, woken) in self.woken.iter_mut().enumerate() {
            if std::mem::take(woken)
                && let Some(peer) = self.peers.get(k)
            {
                // A failed wake only delays the message until that thread's next tick.
                let _ = peer.waker.wake();
            }
        }
    }

    fn send_to(&mut self, k: usize, message: Message) {
        let Some(peer) = self.peers.get(k) else {
            return;
        };
        match peer.tx.try_send(message) {
            Ok(()) => {
                if let Some(w) = self.woken.get_mut(k) {
                    *w = true;
                }
            }
            // A thread that far behind loses media (its viewers' NACKs recover it); counted.
            Err(TrySendError::Full(_)) => self.shard.message_refused(),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Sends what the shard queued; waits for WRITABLE only while some could not go.
    fn flush(&mut self) {
        if let Some(tcp) = self.tcp.as_mut() {
            // What this shard and the others sent to ICE-TCP peers; each connection waits
            // for its own WRITABLE when the kernel takes less.
            let frames = self.shard.tcp_frames_mut();
            frames.for_each(|to, media, bytes| tcp.send(to, bytes, media));
            frames.clear();
            tcp.flush(self.poll.registry());
        }
        let pending = self.shard.flush();
        if pending == self.waiting_writable {
            return;
        }
        let registry = self.poll.registry();
        let done = match (pending, self.receiving.as_mut()) {
            // Shard 0's reading handle carries WRITABLE too while it is wanted.
            (true, Some(io)) => {
                registry.reregister(io, SOCKET, Interest::READABLE | Interest::WRITABLE)
            }
            (false, Some(io)) => registry.reregister(io, SOCKET, Interest::READABLE),
            (true, None) => registry.register(&mut self.writable, SOCKET, Interest::WRITABLE),
            (false, None) => registry.deregister(&mut self.writable),
        };
        if done.is_ok() {
            self.waiting_writable = pending;
        }
    }

    /// Sends everything queued, waiting for the socket to be writable until `deadline`.
    fn flush_all(&mut self, deadline: Instant) {
        let mut events = Events::with_capacity(4);
        loop {
            self.flush();
            let now = Instant::now();
            if !self.waiting_writable || now >= deadline {
                return;
            }
            // A failed poll only ends the wait early.
            if self.poll.poll(&mut events, Some(deadline - now)).is_err() {
                self.shard.flush();
                return;
            }
        }
    }
}
