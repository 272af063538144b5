//! A simulated network for the sans-IO SFU core: one or two [`Shard`]s and clients of our own
//! `rtc::peer` (controlling ICE agent, DTLS client, SRTP), all in one thread on explicit
//! `Instant`s (one `Instant::now()` at the start, then only added durations; nothing sleeps).
//! Each client reaches the server's one address over a [`Link`] of its own (loss, reordering,
//! duplication, delay, all seeded) behind a NAT whose mapping a test may change (rebinding).
//! The shards are driven as `crate::engine::shell` drives them: datagrams enter only through
//! shard 0 (the one socket), in budgeted batches; messages go to the other shard at once.

mod client;
mod independent;
mod pause;
mod simulcast;
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use rtc::dtls::{DtlsCertificate, DtlsConfig};
use rtc::rand::Rng;
use tokio::sync::oneshot;

use self::client::Client;
use self::independent::{Str0mOffer, Str0mViewer};
use super::message::Dest;
use super::outbox::capture::{self, Captured};
use super::{Shard, ShardConfig};
use crate::control::{Command, Created, EngineError, Role};

/// The server's one address (its only candidate).
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 3478);
/// Simulated time per step: finer than any timer the core or the clients keep.
const STEP: Duration = Duration::from_millis(1);
/// Datagrams per receive call, as the shell reads them.
const RECV_BATCH: usize = 32;
/// Datagrams the server's socket buffer holds; beyond that the "kernel" drops them.
const SOCKET_BUFFER: usize = 4096;

/// Deterministic randomness for links (xorshift64).
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Dice(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u32) -> bool {
        percent > 0 && self.next() % 100 < u64::from(percent)
    }
}

/// One direction of a client's path: what happens to each datagram on it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Link {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Share of datagrams lost, in percent.
    pub loss: u32,
    /// Share of datagrams held back by up to `reorder_by` (later ones overtake them).
    pub reorder: u32,
    pub reorder_by: Duration,
    /// Share of datagrams delivered twice.
    pub duplicate: u32,
    /// A bottleneck of this many bit/s (0: none): datagrams queue behind each other, and
    /// one that would wait longer than `queue_limit` is dropped (a tail-drop queue, as a
    /// `tc tbf` shaper).
    pub rate_bps: u64,
    pub queue_limit: Duration,
    /// When the bottleneck has sent what is queued.
    busy_until: Option<Instant>,
}

impl Link {
    /// A clean link of `delay`.
    pub fn clean(delay: Duration) -> Self {
        Link {
            delay,
            ..Link::default()
        }
    }

    /// A clean link of `delay` through a bottleneck of `rate_bps` with a 200 ms queue.
    pub fn shaped(delay: Duration, rate_bps: u64) -> Self {
        Link {
            delay,
            rate_bps,
            queue_limit: Duration::from_millis(200),
            ..Link::default()
        }
    }

    /// When copies of a datagram of `size` bytes sent at `now` arrive: none (lost), one, or
    /// two.
    fn arrivals(&mut self, now: Instant, size: usize, dice: &mut Dice) -> Vec<Instant> {
        if dice.percent(self.loss) {
            return Vec::new();
        }
        let mut at = now + self.delay;
        if let Some(micros) = ((size as u64 + 28) * 8 * 1_000_000).checked_div(self.rate_bps) {
            // IPv4 and UDP headers count on the wire.
            let start = self.busy_until.map_or(now, |b| b.max(now));
            if start.saturating_duration_since(now) > self.queue_limit {
                return Vec::new();
            }
            let done = start + Duration::from_micros(micros);
            self.busy_until = Some(done);
            at = done + self.delay;
        }
        if dice.percent(self.reorder) && !self.reorder_by.is_zero() {
            let extra = dice.next() % self.reorder_by.as_micros().max(1) as u64;
            at += Duration::from_micros(extra + 1);
        }
        let mut arrivals = vec![at];
        if dice.percent(self.duplicate) {
            arrivals.push(at + Duration::from_micros(100));
        }
        arrivals
    }
}

/// Where a datagram in flight goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Server,
    Client(usize),
    Str0m(usize),
}

#[derive(Debug)]
struct Flight {
    target: Target,
    /// Source address as the receiver sees it.
    from: SocketAddr,
    bytes: Vec<u8>,
    /// An RFC 4571 frame of an ICE-TCP connection, not a UDP datagram.
    tcp: bool,
}

/// Counters of the network itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetStats {
    /// Datagrams the server sent to an address no client has (any more).
    pub stray: u64,
    /// Datagrams the server's socket buffer had no room for.
    pub socket_dropped: u64,
}

/// The server's shards, the clients and everything in flight.
pub struct Net {
    pub now: Instant,
    pub shards: Vec<Shard>,
    sent: Vec<Captured>,
    pub clients: Vec<Client>,
    /// Viewers of another stack (str0m).
    pub str0ms: Vec<Str0mViewer>,
    /// In flight, by arrival time (then order of sending).
    flights: BTreeMap<(Instant, u64), Flight>,
    next_flight: u64,
    /// Datagrams arrived at the server and not read yet (its socket buffer).
    socket: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    client_dtls: Arc<DtlsConfig>,
    rng: Rng,
    pub stats: NetStats,
    /// Datagrams the server sent over UDP, per destination address.
    pub sent_to: HashMap<SocketAddr, u64>,
    /// Frames the server sent over ICE-TCP (shard 0's connections), per peer address.
    pub tcp_sent_to: HashMap<SocketAddr, u64>,
    /// Which clients reach the server over ICE-TCP (by client index).
    tcp_clients: Vec<bool>,
}

impl Net {
    /// A server of `shards` shards serving the built-in `sample` stream.
    pub fn new(shards: usize, seed: u64) -> Self {
        let now = Instant::now();
        let mut rng = Rng::seeded(seed);
        let server_dtls = dtls_config(&mut rng);
        let client_dtls = dtls_config(&mut rng);
        let files = crate::sources::builtin_sample().expect("the built-in sample");
        let mut sent = Vec::new();
        let pending_clients = crate::sfu::PendingClients::default();
        let shards = (0..shards)
            .map(|id| {
                let (outbox, captured) = capture::outbox();
                sent.push(captured);
                Shard::new(
                    ShardConfig {
                        id,
                        shards,
                        candidates: vec![SERVER],
                        tcp_candidates: Vec::new(),
                        dtls: Arc::clone(&server_dtls),
                        congestion_feedback: true,
                        recorder: None,
                        files: files.clone(),
                        commands_refused: Arc::new(AtomicU64::new(0)),
                        outbox,
                        pending_clients: pending_clients.clone(),
                    },
                    now,
                    Rng::seeded(rng.u64()),
                )
                .expect("a shard")
            })
            .collect();
        Net {
            now,
            shards,
            sent,
            clients: Vec::new(),
            str0ms: Vec::new(),
            flights: BTreeMap::new(),
            next_flight: 0,
            socket: VecDeque::new(),
            client_dtls,
            rng,
            stats: NetStats::default(),
            sent_to: HashMap::new(),
            tcp_sent_to: HashMap::new(),
            tcp_clients: Vec::new(),
        }
    }

    /// A client that POSTs its offer for `stream` to `shard` and starts connecting over
    /// `up` (client → server) and `down` links. Returns its index.
    pub fn join(
        &mut self,
        role: Role,
        stream: &str,
        shard: usize,
        up: Link,
        down: Link,
    ) -> Result<usize, EngineError> {
        self.join_with(role, stream, shard, (up, down), false, |o| o)
    }

    /// A client as [`Net::join`] makes it, its offer edited by `edit` first (simulcast).
    pub fn join_edited(
        &mut self,
        role: Role,
        stream: &str,
        shard: usize,
        (up, down): (Link, Link),
        edit: impl FnOnce(client::Offer) -> client::Offer,
    ) -> Result<usize, EngineError> {
        self.join_with(role, stream, shard, (up, down), false, edit)
    }

    /// [`Net::join`] for a client that reaches the server over ICE-TCP only: its datagrams
    /// arrive as frames of a connection to shard 0, and the server's must come back on it.
    pub fn join_over_tcp(
        &mut self,
        role: Role,
        stream: &str,
        shard: usize,
    ) -> Result<usize, EngineError> {
        let link = Link::clean(Duration::from_millis(10));
        self.join_with(role, stream, shard, (link, link), true, |o| o)
    }

    fn join_with(
        &mut self,
        role: Role,
        stream: &str,
        shard: usize,
        (up, down): (Link, Link),
        tcp: bool,
        edit: impl FnOnce(client::Offer) -> client::Offer,
    ) -> Result<usize, EngineError> {
        let i = self.clients.len();
        let ip = Ipv4Addr::new(192, 168, 1, u8::try_from(i + 2).unwrap_or(255));
        let local = SocketAddr::new(IpAddr::V4(ip), 50_000);
        let seed = self.rng.u64();
        let offer = edit(client::Offer::new(role, local, &self.client_dtls, seed));
        let created = self.command_create(shard, role, stream, offer.sdp.clone(), ip)?;
        // The NAT maps the client's socket to a public address of its own.
        let mapped = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, ip.octets()[3])),
            40_000,
        );
        let client = offer.accept(
            self.now,
            &created.answer,
            Arc::clone(&self.client_dtls),
            mapped,
            up,
            down,
            seed,
        );
        self.clients.push(client);
        self.tcp_clients.resize(i, false);
        self.tcp_clients.push(tcp);
        self.flush_client(i);
        Ok(i)
    }

    /// A str0m viewer of `stream` on `shard`, as [`Net::join`] makes ours. Returns its index
    /// in `str0ms`.
    pub fn join_str0m(
        &mut self,
        stream: &str,
        shard: usize,
        up: Link,
        down: Link,
    ) -> Result<usize, EngineError> {
        let i = self.str0ms.len();
        let ip = Ipv4Addr::new(192, 168, 2, u8::try_from(i + 2).unwrap_or(255));
        let local = SocketAddr::new(IpAddr::V4(ip), 50_000);
        let offer = Str0mOffer::new(self.now, local);
        let created = self.command_create(shard, Role::Play, stream, offer.sdp.clone(), ip)?;
        let mapped = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(203, 0, 114, ip.octets()[3])),
            40_000,
        );
        self.str0ms
            .push(offer.accept(&created.answer, mapped, up, down));
        self.flush_str0m(i);
        Ok(i)
    }

    fn flush_str0m(&mut self, i: usize) {
        let now = self.now;
        for bytes in self.str0ms[i].drain(now) {
            let c = &mut self.str0ms[i];
            let from = c.mapped;
            for at in c.up.arrivals(now, bytes.len(), &mut c.dice) {
                self.fly(at, Target::Server, from, bytes.clone(), false);
            }
        }
    }

    fn command_create(
        &mut self,
        shard: usize,
        role: Role,
        stream: &str,
        offer: String,
        client: Ipv4Addr,
    ) -> Result<Created, EngineError> {
        let (reply, mut rx) = oneshot::channel();
        self.shards[shard].handle_command(
            self.now,
            Command::Create {
                role,
                stream: stream.to_owned(),
                offer,
                client: IpAddr::V4(client),
                reply,
            },
        );
        self.exchange();
        self.flush_shards();
        rx.try_recv().expect("the shard answers at once")
    }

    /// Moves the shards' messages to their destinations until none are left.
    fn exchange(&mut self) {
        loop {
            let mut moved = Vec::new();
            for (k, shard) in self.shards.iter_mut().enumerate() {
                while let Some((dest, message)) = shard.poll_message() {
                    moved.push((k, dest, message));
                }
            }
            if moved.is_empty() {
                return;
            }
            let now = self.now;
            for (from, dest, message) in moved {
                match dest {
                    Dest::Shard(k) => {
                        if let Some(shard) = self.shards.get_mut(k) {
                            shard.handle_message(now, message);
                        }
                    }
                    Dest::Others => {
                        for (k, shard) in self.shards.iter_mut().enumerate() {
                            if k != from {
                                shard.handle_message(now, message.clone());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Puts what the shards sent on the wire, towards the client behind each address.
    fn flush_shards(&mut self) {
        for k in 0..self.shards.len() {
            self.shards[k].flush();
            let sent = std::mem::take(&mut *self.sent[k].lock().expect("capture lock"));
            for (to, _, bytes) in sent {
                *self.sent_to.entry(to).or_default() += 1;
                let (target, arrivals) =
                    if let Some(i) = self.clients.iter().position(|c| c.mapped == to) {
                        let c = &mut self.clients[i];
                        (
                            Target::Client(i),
                            c.down.arrivals(self.now, bytes.len(), &mut c.dice),
                        )
                    } else if let Some(i) = self.str0ms.iter().position(|c| c.mapped == to) {
                        let c = &mut self.str0ms[i];
                        (
                            Target::Str0m(i),
                            c.down.arrivals(self.now, bytes.len(), &mut c.dice),
                        )
                    } else {
                        self.stats.stray += 1;
                        continue;
                    };
                for at in arrivals {
                    self.fly(at, target, SERVER, bytes.clone(), false);
                }
            }
        }
        // Shard 0's shell writes every shard's ICE-TCP frames into its connections; the
        // stream delivers them in order (no loss on TCP).
        let mut frames = Vec::new();
        let tcp = self.shards[0].tcp_frames_mut();
        tcp.for_each(|to, _, bytes| frames.push((to, bytes.to_vec())));
        tcp.clear();
        for (to, bytes) in frames {
            *self.tcp_sent_to.entry(to).or_default() += 1;
            match self.clients.iter().position(|c| c.mapped == to) {
                Some(i) if self.tcp_clients.get(i) == Some(&true) => {
                    let at = self.now + self.clients[i].down.delay;
                    self.fly(at, Target::Client(i), SERVER, bytes, true);
                }
                _ => self.stats.stray += 1,
            }
        }
    }

    fn fly(&mut self, at: Instant, target: Target, from: SocketAddr, bytes: Vec<u8>, tcp: bool) {
        self.next_flight += 1;
        self.flights.insert(
            (at, self.next_flight),
            Flight {
                target,
                from,
                bytes,
                tcp,
            },
        );
    }

    /// Sends what client `i`'s peer queued (from its NAT mapping) and takes its events.
    fn flush_client(&mut self, i: usize) {
        let now = self.now;
        let out = self.clients[i].drain(now);
        for bytes in out {
            self.send_from_client(i, bytes);
        }
    }

    /// Puts a datagram of client `i` on its uplink, as from its current mapped address.
    pub fn send_from_client(&mut self, i: usize, bytes: Vec<u8>) {
        let tcp = self.tcp_clients.get(i) == Some(&true);
        let c = &mut self.clients[i];
        let from = c.mapped;
        if tcp {
            let at = self.now + c.up.delay;
            return self.fly(at, Target::Server, from, bytes, true);
        }
        let arrivals = c.up.arrivals(self.now, bytes.len(), &mut c.dice);
        for at in arrivals {
            self.fly(at, Target::Server, from, bytes.clone(), false);
        }
    }

    /// A datagram from anyone at `from` arriving at the server now (floods, forged checks).
    pub fn inject(&mut self, from: SocketAddr, bytes: Vec<u8>) {
        self.fly(self.now, Target::Server, from, bytes, false);
    }

    /// Client `i` protects and sends a plain RTP packet.
    pub fn send_rtp(&mut self, i: usize, packet: &[u8]) {
        if let Some(bytes) = self.clients[i].protect(packet, true) {
            self.send_from_client(i, bytes);
        }
    }

    /// Client `i` protects and sends a plain RTCP packet.
    pub fn send_rtcp(&mut self, i: usize, packet: &[u8]) {
        if let Some(bytes) = self.clients[i].protect(packet, false) {
            self.send_from_client(i, bytes);
        }
    }

    /// One step of simulated time.
    pub fn step(&mut self) {
        self.now += STEP;
        let now = self.now;
        // Datagrams due: into the server's socket buffer, or to their client.
        while let Some(entry) = self.flights.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, _), mut flight) = entry.remove_entry();
            match flight.target {
                // A connection's frames are read as they come (shard 0's shell reads TCP
                // after the socket, in the same round).
                Target::Server if flight.tcp => {
                    self.shards[0].handle_tcp_frame(at, flight.from, SERVER, &mut flight.bytes);
                    self.shards[0].fan_out(now);
                    self.exchange();
                }
                Target::Server if self.socket.len() < SOCKET_BUFFER => {
                    self.socket.push_back((at, flight.from, flight.bytes));
                }
                Target::Server => self.stats.socket_dropped += 1,
                Target::Client(i) => {
                    self.clients[i].receive(now, flight.from, flight.bytes);
                    self.flush_client(i);
                }
                Target::Str0m(i) => {
                    self.str0ms[i].receive(now, flight.from, &flight.bytes);
                    self.flush_str0m(i);
                }
            }
        }
        for shard in &mut self.shards {
            shard.start_round();
        }
        // Shard 0 reads the socket in batches while its round's budget lasts.
        let mut handled = 0u64;
        while !self.socket.is_empty() && self.shards[0].may_receive(RECV_BATCH) {
            let n = self.socket.len().min(RECV_BATCH);
            for (at, from, mut bytes) in self.socket.drain(..n) {
                self.shards[0].handle_datagram(at, from, SERVER, &mut bytes);
            }
            handled += n as u64;
            self.shards[0].spent_datagrams(n, handled);
            self.shards[0].fan_out(now);
            self.exchange();
        }
        self.exchange();
        for shard in &mut self.shards {
            if now >= shard.poll_timeout() {
                shard.handle_timeout(now);
            }
        }
        self.exchange();
        // What the exchange handed over (media from shard 0) goes out this round too.
        for shard in &mut self.shards {
            shard.fan_out(now);
            shard.end_round();
        }
        self.flush_shards();
        for i in 0..self.clients.len() {
            if self.clients[i].timeout().is_some_and(|t| t <= now) {
                self.clients[i].handle_timeout(now);
            }
            if let Some(feedback) = self.clients[i].poll_twcc(now) {
                self.send_rtcp(i, &feedback);
            }
            self.flush_client(i);
        }
        for i in 0..self.str0ms.len() {
            if self.str0ms[i].timeout().is_some_and(|t| t <= now) {
                self.str0ms[i].handle_timeout(now);
            }
            self.flush_str0m(i);
        }
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Runs until `done` holds or `limit` of simulated time has passed; whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }
}

/// PLIs client `i` (a publisher) has received.
#[cfg(test)]
pub fn plis(net: &Net, i: usize) -> usize {
    let rtcp = net.clients[i].rtcp.iter();
    rtcp.flat_map(|r| rtc::rtcp::parse_compound(r).flatten().collect::<Vec<_>>())
        .filter(|p| matches!(p, rtc::rtcp::RtcpPacket::Pli(_)))
        .count()
}

/// Runs until client `i` has connected (ICE and DTLS), at most 2 s, or fails the test.
#[cfg(test)]
pub fn connect(net: &mut Net, i: usize) {
    assert!(
        net.run_until(Duration::from_secs(2), |n| n.clients[i].connected.is_some()),
        "client {i} connects"
    );
}

fn dtls_config(rng: &mut Rng) -> Arc<DtlsConfig> {
    let certificate = DtlsCertificate::generate(rng).expect("a certificate");
    Arc::new(DtlsConfig::new(certificate, rng))
}
