//! Passive ICE-TCP (RFC 6544) on shard 0's media thread: one listener (by default on the UDP
//! port's number), a table of connections, RFC 4571 frames in and out.
//!
//! Each connection's frames take the same path as UDP datagrams (the shard's
//! `handle_tcp_frame(now, from, local, bytes)`, which hands them to the session's shard like
//! datagrams), with the connection's peer address as `from`. Every shard's outbox then sets
//! datagrams to that address aside (`crate::sfu::tcp_route`), and they come back here, into
//! the connection's bounded buffer, instead of going to the UDP socket. The ICE agent, DTLS
//! and SRTP never learn the difference.
//!
//! **Bounds.** A connection is *untrusted* until one of its STUN checks is answered with
//! success (which the ICE agent only does for a check signed with a session's password).
//! Untrusted connections may only send STUN in frames of at most
//! [`conn::UNTRUSTED_MAX_FRAME`] bytes, must be trusted within [`AUTH_TIMEOUT`], are at most
//! [`MAX_UNTRUSTED_PER_IP`] per client IP, and at most [`MAX_UNTRUSTED`] in all (the oldest
//! makes room for a new one, as pending sessions do). Every connection closes after
//! [`IDLE_TIMEOUT`] without a byte received, and there are at most [`MAX_CONNECTIONS`].
//! Reading is budgeted per round, so one fast sender cannot starve the rest; writing never
//! blocks: media beyond a connection's bound is dropped (see [`conn::Conn::queue`]).

pub mod conn;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use self::conn::{Close, Conn, Queued};

/// A connection must have a check answered with success this soon after it opens.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that sends nothing for this long is closed: browsers send consent checks
/// every few seconds (RFC 7675), and the ICE agent gives up after the same 30 s.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections in all (each is a file descriptor).
pub const MAX_CONNECTIONS: usize = 4096;
/// Connections not trusted yet, in all.
pub const MAX_UNTRUSTED: usize = 1024;
/// Connections not trusted yet, per client IP.
pub const MAX_UNTRUSTED_PER_IP: usize = 16;
/// Bytes read from one connection per round before the others get their turn.
const READ_BUDGET: usize = 64 * 1024;
/// Connections accepted per round.
const ACCEPT_BUDGET: usize = 256;
/// How long sends to a closed connection's peer are swallowed rather than sent over UDP
/// (its session ends when ICE consent runs out, 30 s after its last check).
const TOMBSTONE: Duration = Duration::from_secs(40);
/// Timeouts are looked at this often.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// What was counted, for `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed at once: too many in all or from their IP.
    pub refused: u64,
    /// Connections closed, by why.
    pub closed_peer: u64,
    /// ... a length prefix past the limit, or a first frame that is not STUN.
    pub closed_bad_input: u64,
    /// ... no successful check in time (or evicted for a newer untrusted one).
    pub closed_unauthenticated: u64,
    /// ... nothing received for [`IDLE_TIMEOUT`].
    pub closed_idle: u64,
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received (with framing).
    pub rx_bytes: u64,
    /// Frames queued to send.
    pub tx_frames: u64,
    /// Media frames dropped because their connection's buffer was full.
    pub dropped_media: u64,
    /// Other frames (STUN, DTLS, RTCP) dropped for the same reason.
    pub dropped_control: u64,
}

/// Frames read in one round: their bytes, one after another, and where each came from.
#[derive(Debug, Default)]
pub struct Frames {
    bytes: Vec<u8>,
    index: Vec<(SocketAddr, SocketAddr, usize, usize)>,
}

impl Frames {
    /// How many.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Frame `i` as `(from, local, bytes)`.
    pub fn get_mut(&mut self, i: usize) -> Option<(SocketAddr, SocketAddr, &mut [u8])> {
        let (from, local, start, end) = *self.index.get(i)?;
        Some((from, local, self.bytes.get_mut(start..end)?))
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.index.clear();
        // A round that read a lot should not pin its memory.
        if self.bytes.capacity() > 4 << 20 {
            self.bytes = Vec::new();
        }
    }
}

/// The listener and every connection.
#[derive(Debug)]
pub struct Tcp {
    listener: TcpListener,
    local: SocketAddr,
    listener_token: Token,
    first_conn_token: usize,
    next_id: usize,
    conns: HashMap<usize, Conn>,
    by_remote: HashMap<SocketAddr, usize>,
    /// Untrusted connections, oldest first (entries of closed or trusted ones are skipped).
    untrusted: VecDeque<usize>,
    untrusted_count: usize,
    untrusted_per_ip: HashMap<IpAddr, usize>,
    /// Peers of closed trusted connections, until when their sends are swallowed.
    tombstones: HashMap<SocketAddr, Instant>,
    /// Peers whose datagrams may go over UDP again (their connection closed, and its
    /// tombstone, if any, expired), for the shards to forget.
    forgotten: Vec<SocketAddr>,
    /// Connections that may have bytes to read / to write.
    readable: HashSet<usize>,
    dirty: HashSet<usize>,
    listener_ready: bool,
    scratch: Vec<u8>,
    frames: Option<Frames>,
    next_sweep: Instant,
    /// The time of the last [`Tcp::receive`] (a round's start), for closes on the send path.
    now: Instant,
    stats: TcpStats,
}

impl Tcp {
    /// Takes over a bound, non-blocking `listener` (bound by the thread that starts the
    /// engine, so a busy port is an error at start). Connections get tokens from
    /// `first_token + 1` up; the listener has `first_token`. Tokens never repeat, so a late
    /// event of a closed connection finds none.
    pub fn new(
        listener: std::net::TcpListener,
        registry: &Registry,
        first_token: usize,
        now: Instant,
    ) -> io::Result<Self> {
        let mut listener = TcpListener::from_std(listener);
        let listener_token = Token(first_token);
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        let local = listener.local_addr()?;
        Ok(Self {
            listener,
            local,
            listener_token,
            first_conn_token: first_token + 1,
            next_id: 0,
            conns: HashMap::new(),
            by_remote: HashMap::new(),
            untrusted: VecDeque::new(),
            untrusted_count: 0,
            untrusted_per_ip: HashMap::new(),
            tombstones: HashMap::new(),
            forgotten: Vec::new(),
            readable: HashSet::new(),
            dirty: HashSet::new(),
            listener_ready: true,
            scratch: vec![0; READ_BUDGET],
            frames: Some(Frames::default()),
            next_sweep: now,
            now,
            stats: TcpStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> TcpStats {
        self.stats
    }

    /// Open connections, and how many of them are trusted.
    pub fn open(&self) -> (usize, usize) {
        (self.conns.len(), self.conns.len() - self.untrusted_count)
    }

    /// Notes what the poller reported for our tokens.
    pub fn on_events<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for event in events {
            let Token(t) = event.token();
            if event.token() == self.listener_token {
                self.listener_ready = true;
            } else if t >= self.first_conn_token {
                let id = t - self.first_conn_token;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.readable.insert(id);
                }
                if event.is_writable() {
                    self.dirty.insert(id);
                }
            }
        }
    }

    /// Whether work is left that needs no new event (a budget ran out).
    pub fn busy(&self) -> bool {
        self.listener_ready || !self.readable.is_empty()
    }

    /// Queues a frame to the connection of `to`; swallowed when it has none (it closed: the
    /// shards still send its session's datagrams here until [`Tcp::take_forgotten`] says
    /// so, rather than leak them onto UDP toward a peer that only speaks TCP). `media` marks
    /// SRTP, which a full buffer drops first.
    pub fn send(&mut self, to: SocketAddr, bytes: &[u8], media: bool) {
        let Some(&id) = self.by_remote.get(&to) else {
            return; // a closed connection's peer: swallowed
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match conn.queue(bytes, media) {
            Queued::Yes => {
                self.stats.tx_frames += 1;
                self.dirty.insert(id);
                if conn.trusted && conn.counted_untrusted {
                    self.uncount_untrusted(id);
                }
            }
            Queued::Dropped if media => self.stats.dropped_media += 1,
            Queued::Dropped => self.stats.dropped_control += 1,
        }
    }

    /// Accepts, reads and sweeps; returns the frames read, for the engine to handle like
    /// datagrams and give back with [`Tcp::recycle`].
    pub fn receive(&mut self, now: Instant, registry: &Registry) -> Frames {
        self.now = now;
        let mut frames = self.frames.take().unwrap_or_default();
        frames.clear();
        if self.listener_ready {
            self.accept(now, registry);
        }
        let ids: Vec<usize> = self.readable.iter().copied().collect();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(READ_BUDGET, 0);
        for id in ids {
            let Some(conn) = self.conns.get_mut(&id) else {
                self.readable.remove(&id);
                continue;
            };
            let (remote, local) = (conn.remote, conn.local);
            let result = conn.read(now, &mut scratch, READ_BUDGET, |frame| {
                let start = frames.bytes.len();
                frames.bytes.extend_from_slice(frame);
                frames
                    .index
                    .push((remote, local, start, frames.bytes.len()));
            });
            match result {
                Ok((n, more)) => {
                    self.stats.rx_bytes += n as u64;
                    if !more {
                        self.readable.remove(&id);
                    }
                }
                Err(why) => self.close(id, why, now, registry),
            }
        }
        self.scratch = scratch;
        self.stats.rx_frames += frames.len() as u64;
        if now >= self.next_sweep {
            self.sweep(now, registry);
            self.next_sweep = now + SWEEP_INTERVAL;
        }
        frames
    }

    /// Peers whose connections are gone for good since the last call: datagrams to them may
    /// go over UDP again.
    pub fn take_forgotten(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.forgotten)
    }

    /// Gives back the frames [`Tcp::receive`] returned (their memory is reused).
    pub fn recycle(&mut self, frames: Frames) {
        self.frames = Some(frames);
    }

    /// Writes what connections have queued.
    pub fn flush(&mut self, registry: &Registry) {
        let now = self.now;
        if self.dirty.is_empty() {
            return;
        }
        let ids: Vec<usize> = self.dirty.drain().collect();
        for id in ids {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            match conn.write() {
                Ok(true) => {}
                // The kernel's buffer is full: a WRITABLE event brings it back.
                Ok(false) => {}
                Err(why) => self.close(id, why, now, registry),
            }
        }
    }

    fn accept(&mut self, now: Instant, registry: &Registry) {
        for _ in 0..ACCEPT_BUDGET {
            let (mut stream, remote) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.listener_ready = false;
                    return;
                }
                // ECONNABORTED, EMFILE…: try again next round rather than spin now.
                Err(e) => {
                    tracing::debug!("ICE-TCP accept: {e}");
                    return;
                }
            };
            let ip = remote.ip();
            let per_ip = self.untrusted_per_ip.get(&ip).copied().unwrap_or(0);
            if per_ip >= MAX_UNTRUSTED_PER_IP || self.conns.len() >= MAX_CONNECTIONS {
                self.stats.refused += 1;
                continue; // dropping the stream closes it
            }
            if self.untrusted_count >= MAX_UNTRUSTED {
                self.evict_oldest_untrusted(now, registry);
            }
            let local = stream.local_addr().unwrap_or(self.local);
            let id = self.next_id;
            self.next_id += 1;
            if registry
                .register(
                    &mut stream,
                    Token(self.first_conn_token + id),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            // A new connection from the address of one that closed: its sends go here again.
            self.tombstones.remove(&remote);
            self.by_remote.insert(remote, id);
            self.conns.insert(id, Conn::new(stream, remote, local, now));
            if self.untrusted.len() >= 2 * MAX_UNTRUSTED {
                // Entries of connections trusted or closed since are skipped lazily; keep
                // the queue near its live size.
                let conns = &self.conns;
                self.untrusted
                    .retain(|u| conns.get(u).is_some_and(|c| c.counted_untrusted));
            }
            self.untrusted.push_back(id);
            self.untrusted_count += 1;
            *self.untrusted_per_ip.entry(ip).or_insert(0) += 1;
            // Data may have come with the handshake: read it this round.
            self.readable.insert(id);
            self.stats.accepted += 1;
        }
    }

    /// Takes connection `id` off the untrusted counts (it was trusted, or it closes).
    fn uncount_untrusted(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if !conn.counted_untrusted {
            return;
        }
        conn.counted_untrusted = false;
        let ip = conn.remote.ip();
        self.untrusted_count = self.untrusted_count.saturating_sub(1);
        if let Some(n) = self.untrusted_per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.untrusted_per_ip.remove(&ip);
            }
        }
    }

    fn evict_oldest_untrusted(&mut self, now: Instant, registry: &Registry) {
        while let Some(id) = self.untrusted.pop_front() {
            if self.conns.get(&id).is_some_and(|c| c.counted_untrusted) {
                self.close(id, Close::Evicted, now, registry);
                return;
            }
        }
    }

    /// Closes untrusted connections past [`AUTH_TIMEOUT`] and quiet ones past
    /// [`IDLE_TIMEOUT`]; forgets old tombstones.
    fn sweep(&mut self, now: Instant, registry: &Registry) {
        let mut due = Vec::new();
        for (&id, conn) in &self.conns {
            if !conn.trusted && now.saturating_duration_since(conn.opened) >= AUTH_TIMEOUT {
                due.push((id, Close::Unauthenticated));
            } else if now.saturating_duration_since(conn.last_rx) >= IDLE_TIMEOUT {
                due.push((id, Close::Idle));
            }
        }
        for (id, why) in due {
            self.close(id, why, now, registry);
        }
        let (by_remote, forgotten) = (&self.by_remote, &mut self.forgotten);
        self.tombstones.retain(|remote, until| {
            let keep = *until > now;
            if !keep && !by_remote.contains_key(remote) {
                forgotten.push(*remote);
            }
            keep
        });
        if self.tombstones.capacity() > 64 && self.tombstones.len() < self.tombstones.capacity() / 4
        {
            self.tombstones.shrink_to_fit();
        }
    }

    fn close(&mut self, id: usize, why: Close, now: Instant, registry: &Registry) {
        self.uncount_untrusted(id);
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        let _ = registry.deregister(conn.stream_mut());
        self.readable.remove(&id);
        self.dirty.remove(&id);
        if self.by_remote.get(&conn.remote) == Some(&id) {
            self.by_remote.remove(&conn.remote);
        }
        if conn.trusted {
            // Its session's sends must not leak onto UDP toward a TCP-only peer.
            self.tombstones.insert(conn.remote, now + TOMBSTONE);
        } else if !self.by_remote.contains_key(&conn.remote) {
            self.forgotten.push(conn.remote);
        }
        match why {
            Close::Peer => self.stats.closed_peer += 1,
            Close::Framing | Close::NotStun => self.stats.closed_bad_input += 1,
            Close::Unauthenticated | Close::Evicted => self.stats.closed_unauthenticated += 1,
            Close::Idle => self.stats.closed_idle += 1,
        }
        if conn.trusted {
            tracing::info!(remote = %conn.remote, reason = ?why, "ICE-TCP connection closed");
        } else {
            tracing::debug!(remote = %conn.remote, reason = ?why, "ICE-TCP connection closed");
        }
        if self.conns.capacity() > 64 && self.conns.len() < self.conns.capacity() / 4 {
            self.conns.shrink_to(self.conns.len() * 2);
            self.by_remote.shrink_to(self.by_remote.len() * 2);
            self.readable.shrink_to(self.readable.len() * 2);
        }
    }
}

/// ICE-TCP's lines of `/metrics` (`put(name, kind, help, value)`); `on_tcp` of `sessions`
/// have their selected pair on TCP.
pub fn metrics(
    s: TcpStats,
    (open, trusted): (usize, usize),
    on_tcp: u64,
    sessions: u64,
    put: &mut impl FnMut(&'static str, &'static str, &'static str, u64),
) {
    put(
        "sessions_tcp",
        "gauge",
        "Sessions whose selected ICE pair is ICE-TCP.",
        on_tcp,
    );
    put(
        "sessions_udp",
        "gauge",
        "Sessions whose selected ICE pair is UDP (or none yet).",
        sessions - on_tcp,
    );
    let lines: [(&'static str, &'static str, &'static str, u64); 13] = [
        (
            "tcp_connections",
            "gauge",
            "Open ICE-TCP connections.",
            open as u64,
        ),
        (
            "tcp_connections_trusted",
            "gauge",
            "Open ICE-TCP connections with a successful ICE check.",
            trusted as u64,
        ),
        (
            "tcp_accepted_total",
            "counter",
            "ICE-TCP connections accepted.",
            s.accepted,
        ),
        (
            "tcp_refused_total",
            "counter",
            "ICE-TCP connections closed at once (too many in all or from one IP).",
            s.refused,
        ),
        (
            "tcp_closed_peer_total",
            "counter",
            "ICE-TCP connections closed by the peer or an I/O error.",
            s.closed_peer,
        ),
        (
            "tcp_closed_bad_input_total",
            "counter",
            "ICE-TCP connections closed for an oversized frame or a first frame that is not STUN.",
            s.closed_bad_input,
        ),
        (
            "tcp_closed_unauthenticated_total",
            "counter",
            "ICE-TCP connections closed without a successful check in time (or evicted).",
            s.closed_unauthenticated,
        ),
        (
            "tcp_closed_idle_total",
            "counter",
            "ICE-TCP connections closed after receiving nothing for 30 s.",
            s.closed_idle,
        ),
        (
            "tcp_frames_received_total",
            "counter",
            "RFC 4571 frames received over ICE-TCP.",
            s.rx_frames,
        ),
        (
            "tcp_bytes_received_total",
            "counter",
            "Bytes received over ICE-TCP.",
            s.rx_bytes,
        ),
        (
            "tcp_frames_sent_total",
            "counter",
            "Frames queued to ICE-TCP connections.",
            s.tx_frames,
        ),
        (
            "tcp_media_dropped_total",
            "counter",
            "Media frames dropped: their ICE-TCP connection's send buffer was full.",
            s.dropped_media,
        ),
        (
            "tcp_control_dropped_total",
            "counter",
            "STUN/DTLS/RTCP frames dropped: their ICE-TCP connection's send buffer was far over its bound.",
            s.dropped_control,
        ),
    ];
    for (name, kind, help, value) in lines {
        put(name, kind, help, value);
    }
}
