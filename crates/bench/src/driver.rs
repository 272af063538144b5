//! One thread drives every client: a `mio` poll over their sockets (each client has its own,
//! so the server sees one 5-tuple per peer; a UDP socket, or an ICE-TCP connection) and a
//! timer heap for their wake-ups.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use rtc::demux::{self, Class};
use rtc::dtls::{DtlsCertificate, DtlsConfig};
use rtc::peer::Received;
use rtc::rand::Rng;
use rtc::sdp::Codec;

use crate::publisher::{Publisher, PublisherConfig};
use crate::session::{Kind, Offer, Session};
use crate::viewer::{Viewer, ViewerConfig};
use crate::{ClientError, http};

/// What one read takes: a UDP datagram (at most 2 KiB from a server), or what an ICE-TCP
/// connection holds, many frames at once.
const READ_BUF: usize = 64 * 1024;
/// The token of the [`Driver::waker`] (never a client's index).
const WAKE: Token = Token(usize::MAX);
/// One datagram in this many has its read delay sampled ([`Driver::take_read_delays`]).
const DELAY_SAMPLE: u64 = 64;

/// Which client, as the [`Driver`] numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub usize);

/// What a client does with its session.
#[derive(Debug)]
pub enum Media {
    /// Sends media (WHIP).
    Publisher(Publisher),
    /// Receives media (WHEP).
    Viewer(Viewer),
}

#[derive(Debug)]
struct Client {
    session: Session,
    media: Media,
    started: bool,
    /// The wake-up in the heap that counts (others are stale).
    wake: Option<Instant>,
}

impl Client {
    /// A datagram read at `now` that arrived at `arrival` (the kernel's stamp, or `now`):
    /// viewers count media at its arrival, everything else runs at `now`.
    fn on_datagram(&mut self, now: Instant, arrival: Instant, from: SocketAddr, buf: &mut [u8]) {
        if let Media::Viewer(v) = &mut self.media
            && demux::classify(buf) == Class::Rtp
            && self.session.is_connected()
            && v.skip_decrypt()
        {
            v.on_srtp_header(arrival, buf);
            return;
        }
        match (self.session.receive(now, from, buf), &mut self.media) {
            (Received::Rtp(p), Media::Viewer(v)) => v.on_rtp(arrival, p),
            (Received::Rtcp(p), Media::Viewer(v)) => v.on_rtcp(now, p),
            (Received::Rtcp(p), Media::Publisher(pb)) => pb.on_rtcp(p, now, &mut self.session),
            _ => {}
        }
        self.after_io(now);
    }

    /// Writes what waits on the client's ICE-TCP connection (the event may be that it became
    /// writable), then reads until nothing is waiting and hands each whole RFC 4571 frame to
    /// the peer as a datagram. A TCP stream has no kernel receive stamps: a frame's arrival
    /// is when it was read.
    fn read_tcp(&mut self, buf: &mut [u8]) {
        let Some(link) = self.session.tcp_mut() else {
            return;
        };
        link.flush();
        let remote = link.remote;
        let Some(mut deframer) = link.take_deframer() else {
            return;
        };
        while let Some(n) = self.session.tcp_mut().and_then(|l| l.read(buf)) {
            let now = Instant::now();
            let Some(bytes) = buf.get_mut(..n) else {
                break;
            };
            let pushed = deframer.push(bytes, |frame| {
                self.session.stats.datagrams_in += 1;
                self.session.stats.bytes_in += frame.len() as u64;
                self.on_datagram(now, now, remote, frame);
            });
            if pushed.is_err() {
                if let Some(l) = self.session.tcp_mut() {
                    l.ended = true;
                }
                break;
            }
        }
        if let Some(l) = self.session.tcp_mut() {
            l.put_deframer(deframer);
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        self.after_io(now);
        match &mut self.media {
            Media::Publisher(p) => p.on_timeout(now, &mut self.session),
            Media::Viewer(v) => v.on_timeout(now, &mut self.session),
        }
    }

    fn after_io(&mut self, now: Instant) {
        self.session.flush(now);
        if !self.started && self.session.is_connected() {
            self.started = true;
            if let Media::Publisher(p) = &mut self.media {
                p.start(now);
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let media = match &self.media {
            Media::Publisher(p) if self.session.is_connected() => p.next_wake(),
            Media::Viewer(v) if self.session.is_connected() => v.next_wake(),
            _ => None,
        };
        match (self.session.poll_timeout(), media) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Every client, on one thread.
#[derive(Debug)]
pub struct Driver {
    poll: Poll,
    events: Events,
    dtls: Arc<DtlsConfig>,
    bind: IpAddr,
    clients: Vec<Option<Client>>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    buf: Vec<u8>,
    rng: Rng,
    kernel_timestamps: bool,
    stamped: u64,
    read_delays_us: Vec<u32>,
}

impl Driver {
    /// A driver whose clients bind to 127.0.0.1, with one fresh DTLS certificate for all.
    pub fn new() -> Result<Self, ClientError> {
        Self::bound_to(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A driver whose clients bind to `bind`. Its clients offer DTLS 1.3 and 1.2, or what
    /// `LEANRTC_BENCH_DTLS` (`1.2`, `1.3`, `auto`) says, to compare the two.
    pub fn bound_to(bind: IpAddr) -> Result<Self, ClientError> {
        let mut rng = Rng::system();
        let cert = DtlsCertificate::generate(&mut rng)?;
        let versions = std::env::var("LEANRTC_BENCH_DTLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        Ok(Driver {
            poll: Poll::new()?,
            events: Events::with_capacity(256),
            dtls: Arc::new(DtlsConfig::new(cert, &mut rng).with_versions(versions)),
            bind,
            clients: Vec::new(),
            timers: BinaryHeap::new(),
            buf: vec![0; READ_BUF],
            rng,
            kernel_timestamps: false,
            stamped: 0,
            read_delays_us: Vec::new(),
        })
    }

    /// The DTLS settings clients share (for offers made outside [`Driver::publish`] and
    /// [`Driver::view`]).
    pub fn dtls(&self) -> &Arc<DtlsConfig> {
        &self.dtls
    }

    /// A new offer (for callers that POST it themselves, say from many threads at once).
    pub fn offer(&self, kind: Kind, codecs: &[Codec]) -> Result<Offer, ClientError> {
        Offer::new(kind, self.bind, codecs, &self.dtls)
    }

    fn post(
        &self,
        kind: Kind,
        codecs: &[Codec],
        http_addr: SocketAddr,
        stream: &str,
    ) -> Result<Session, ClientError> {
        let offer = self.offer(kind, codecs)?;
        offer.post(http_addr, stream, Arc::clone(&self.dtls))
    }

    /// Publishes `stream` on the server at `http` (blocking POST), VP8 only.
    pub fn publish(
        &mut self,
        http_addr: SocketAddr,
        stream: &str,
        config: PublisherConfig,
    ) -> Result<ClientId, ClientError> {
        let session = self.post(Kind::Publish, &[Codec::Vp8], http_addr, stream)?;
        let publisher = Publisher::new(config, session.negotiated(), self.rng.u64())?;
        self.add(session, Media::Publisher(publisher))
    }

    /// Plays `stream` from the server at `http` (blocking POST), offering VP8, H.264 and Opus.
    pub fn view(
        &mut self,
        http_addr: SocketAddr,
        stream: &str,
        config: ViewerConfig,
    ) -> Result<ClientId, ClientError> {
        let codecs = [
            Codec::Vp8,
            Codec::H264(rtc::sdp::H264Profile::ConstrainedBaseline),
            Codec::Opus,
        ];
        let session = self.post(Kind::View, &codecs, http_addr, stream)?;
        let viewer = Viewer::new(config, session.negotiated(), self.rng.u64());
        self.add(session, Media::Viewer(viewer))
    }

    /// From now on, clients added later take each datagram's arrival time from the kernel
    /// (`SO_TIMESTAMPNS`) for what viewers measure (first packet, latency), so the time a
    /// busy driver thread takes to get to a socket is not counted as the server's.
    pub fn use_kernel_timestamps(&mut self) {
        self.kernel_timestamps = true;
    }

    /// A handle that wakes [`Driver::run_until`] from another thread (its `done` is then
    /// asked again), e.g. to hand it new sessions.
    pub fn waker(&self) -> Result<Arc<mio::Waker>, ClientError> {
        Ok(Arc::new(mio::Waker::new(self.poll.registry(), WAKE)?))
    }

    /// How long datagrams waited in their socket before this thread read them, in µs, for
    /// one kernel-stamped datagram in 64 since the last call: what the driver thread's own
    /// lag adds to latencies measured without kernel timestamps.
    pub fn take_read_delays(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.read_delays_us)
    }

    /// Plays a session set up elsewhere (say POSTed on another thread) as a viewer.
    pub fn add_viewer(
        &mut self,
        session: Session,
        config: ViewerConfig,
    ) -> Result<ClientId, ClientError> {
        let viewer = Viewer::new(config, session.negotiated(), self.rng.u64());
        self.add(session, Media::Viewer(viewer))
    }

    /// Publishes with a session set up elsewhere.
    pub fn add_publisher(
        &mut self,
        session: Session,
        config: PublisherConfig,
    ) -> Result<ClientId, ClientError> {
        let publisher = Publisher::new(config, session.negotiated(), self.rng.u64())?;
        self.add(session, Media::Publisher(publisher))
    }

    /// Takes a session set up elsewhere and drives it from now on.
    pub fn add(&mut self, mut session: Session, media: Media) -> Result<ClientId, ClientError> {
        let id = self.clients.len();
        if self.kernel_timestamps {
            session.enable_kernel_timestamps()?;
        }
        session.register(self.poll.registry(), Token(id))?;
        let mut client = Client {
            session,
            media,
            started: false,
            wake: None,
        };
        client.after_io(Instant::now());
        self.clients.push(Some(client));
        self.schedule(id);
        Ok(ClientId(id))
    }

    /// Every client's id, in order of addition.
    pub fn ids(&self) -> impl Iterator<Item = ClientId> + '_ {
        (self.clients.iter().enumerate())
            .filter(|(_, c)| c.is_some())
            .map(|(i, _)| ClientId(i))
    }

    fn client(&self, id: ClientId) -> Option<&Client> {
        self.clients.get(id.0).and_then(Option::as_ref)
    }

    fn client_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        self.clients.get_mut(id.0).and_then(Option::as_mut)
    }

    /// A client's session.
    pub fn session(&self, id: ClientId) -> Option<&Session> {
        self.client(id).map(|c| &c.session)
    }

    /// A client's session, to send packets of one's own through it.
    pub fn session_mut(&mut self, id: ClientId) -> Option<&mut Session> {
        self.client_mut(id).map(|c| &mut c.session)
    }

    /// A publisher's state.
    pub fn publisher(&self, id: ClientId) -> Option<&Publisher> {
        match self.client(id).map(|c| &c.media) {
            Some(Media::Publisher(p)) => Some(p),
            _ => None,
        }
    }

    /// A viewer's state.
    pub fn viewer(&self, id: ClientId) -> Option<&Viewer> {
        match self.client(id).map(|c| &c.media) {
            Some(Media::Viewer(v)) => Some(v),
            _ => None,
        }
    }

    /// Ends a session as a client should: `DELETE` its `Location` (blocking), then close the
    /// peer connection. Returns the DELETE's status.
    pub fn delete(&mut self, id: ClientId) -> Result<u16, ClientError> {
        let session = self.session(id).ok_or(ClientError::UnknownClient)?;
        let http_addr = session.http.ok_or(ClientError::UnknownClient)?;
        let res = http::request(http_addr, "DELETE", &session.location, &[], b"")?;
        self.close(id);
        Ok(res.status)
    }

    /// Closes a client's peer connection (DTLS close_notify) and stops driving it.
    pub fn close(&mut self, id: ClientId) -> Option<(Session, Media)> {
        let (mut session, media) = self.forget(id)?;
        session.close(Instant::now());
        Some((session, media))
    }

    /// Stops driving a client without a word to the server, as if it crashed; its socket
    /// closes when the returned session is dropped.
    pub fn forget(&mut self, id: ClientId) -> Option<(Session, Media)> {
        let mut client = self.clients.get_mut(id.0)?.take()?;
        let _ = client.session.deregister(self.poll.registry());
        Some((client.session, client.media))
    }

    /// Drives every client for `d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(Instant::now() + d, |_| false);
    }

    /// Drives every client until `done` says so (checked between rounds; returns true) or
    /// until `deadline` (returns false).
    pub fn run_until(&mut self, deadline: Instant, mut done: impl FnMut(&Driver) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.fire_timers(now);
            let next = self
                .timers
                .peek()
                .map_or(deadline, |Reverse((t, _))| *t)
                .min(deadline);
            let wait = next.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut self.events, Some(wait))
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                return false;
            }
            let ready: Vec<usize> = (self.events.iter())
                .map(|e| e.token())
                .filter(|&t| t != WAKE)
                .map(|t| t.0)
                .collect();
            for id in ready {
                self.read(id);
            }
        }
    }

    /// Runs the wake-ups that are due.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > now {
                return;
            }
            self.timers.pop();
            let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
                continue;
            };
            if client.wake != Some(t) {
                continue; // superseded
            }
            client.wake = None;
            client.on_timeout(now);
            self.schedule(id);
        }
    }

    /// Reads every datagram waiting on client `id`'s socket.
    fn read(&mut self, id: usize) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if client.session.is_tcp() {
            client.read_tcp(&mut self.buf);
            self.schedule(id);
            return;
        }
        while let Ok(Some((n, from, stamp))) = client.session.recv(&mut self.buf) {
            let now = Instant::now();
            if let Some(at) = stamp {
                self.stamped += 1;
                if self.stamped.is_multiple_of(DELAY_SAMPLE) {
                    let delay = now.saturating_duration_since(at).as_micros();
                    self.read_delays_us
                        .push(u32::try_from(delay).unwrap_or(u32::MAX));
                }
            }
            if let Some(datagram) = self.buf.get_mut(..n) {
                client.on_datagram(now, stamp.unwrap_or(now).min(now), from, datagram);
            }
        }
        self.schedule(id);
    }

    /// Puts client `id`'s next wake-up in the heap if it changed.
    fn schedule(&mut self, id: usize) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let wake = client.next_wake();
        if wake != client.wake {
            client.wake = wake;
            if let Some(t) = wake {
                self.timers.push(Reverse((t, id)));
            }
        }
    }
}
