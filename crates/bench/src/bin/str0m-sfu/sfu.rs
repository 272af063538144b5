//! The media loop: every session's `Rtc` on one thread and one UDP socket, as in str0m's
//! chat example, with what a real SFU adds to it — datagrams demultiplexed by source address
//! (a map, not a scan of every session), time driven only into sessions whose timeout is due
//! (a heap, not every session after every datagram), and forwarding in str0m's RTP mode:
//! each packet a publisher sends is decrypted once into an `Arc` payload and written with
//! `StreamTx::write_rtp` into each viewer's send stream (str0m rewrites the header and
//! protects it per viewer; it keeps the packet for NACKs).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite, SeqNo, Ssrc};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

use crate::io::{Io, RecvBatch, Sent};

/// The UDP socket's token.
pub const SOCKET: Token = Token(0);
/// The waker's token.
pub const WAKE: Token = Token(1);
/// Keyframe requests to a publisher at most this often.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

/// Publish (WHIP) or play (WHEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A WHIP publisher.
    Publish,
    /// A WHEP viewer.
    View,
}

/// What the signalling threads ask of the media loop.
pub enum Command {
    /// A new session, answered already.
    Add {
        /// Its number (in its Location).
        id: u64,
        /// Its peer connection.
        rtc: Box<Rtc>,
        /// Publisher or viewer.
        role: Role,
        /// The stream's name.
        stream: String,
    },
    /// `DELETE` of a session.
    Remove(u64),
}

/// Counters for `/metrics`, shared with the signalling threads.
#[derive(Debug, Default)]
pub struct Counters {
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    send_errors: AtomicU64,
    sessions: AtomicU64,
}

impl Counters {
    /// The counters in the Prometheus text format, named as leanrtc names its own.
    pub fn prometheus(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "str0m_sfu_udp_datagrams_received_total {}\nstr0m_sfu_udp_datagrams_sent_total {}\n\
             str0m_sfu_udp_send_errors_total {}\nstr0m_sfu_sessions {}\n",
            get(&self.datagrams_in),
            get(&self.datagrams_out),
            get(&self.send_errors),
            get(&self.sessions),
        )
    }
}

/// One session.
struct Client {
    id: u64,
    rtc: Rtc,
    role: Role,
    stream: usize,
    /// The timeout str0m asked for last (the heap entry that counts).
    timeout: Option<Instant>,
    /// Viewer: per publisher payload type, our send stream and payload type for it.
    routes: Vec<(Pt, Option<(Ssrc, Pt)>)>,
    /// Viewer: subtracted from the publisher's extended sequence numbers, so each viewer's
    /// stream starts with a rollover counter of 0 (str0m's `RtpWrite::new` asks for that).
    seq_base: Option<u64>,
    /// Publisher: when we last asked it for a keyframe.
    last_keyframe_request: Option<Instant>,
    /// Its m-lines, as str0m reported them (`Event::MediaAdded`).
    medias: Vec<(Mid, MediaKind)>,
}

struct Stream {
    publisher: Option<usize>,
    viewers: Vec<usize>,
}

/// The loop's state.
pub struct Sfu {
    io: Io,
    local: SocketAddr,
    poll: Poll,
    commands: Receiver<Command>,
    counters: Arc<Counters>,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    by_addr: HashMap<SocketAddr, usize>,
    by_id: HashMap<u64, usize>,
    names: HashMap<String, usize>,
    streams: Vec<Stream>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Packets a publisher's session gave out, to forward once it is drained.
    forward: Vec<RtpPacket>,
    /// Viewers that asked for a keyframe, by stream.
    keyframe_wanted: Vec<usize>,
}

impl Sfu {
    /// A loop over the socket of `io`, polled by `poll` (the caller made the waker on it).
    pub fn new(
        mut io: Io,
        poll: Poll,
        commands: Receiver<Command>,
        counters: Arc<Counters>,
    ) -> std::io::Result<Self> {
        let socket = io.socket_mut();
        poll.registry()
            .register(socket, SOCKET, Interest::READABLE)?;
        Ok(Sfu {
            local: socket.local_addr()?,
            io,
            poll,
            commands,
            counters,
            clients: Vec::new(),
            free: Vec::new(),
            by_addr: HashMap::new(),
            by_id: HashMap::new(),
            names: HashMap::new(),
            streams: Vec::new(),
            timers: BinaryHeap::new(),
            forward: Vec::new(),
            keyframe_wanted: Vec::new(),
        })
    }

    /// Runs until the signalling side is gone.
    pub fn run(&mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut rx = self.io.recv_batch();
        loop {
            if !self.take_commands() {
                return Ok(());
            }
            self.fire_timers(Instant::now());
            self.flush();
            let wait = (self.timers.peek())
                .map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, wait)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            self.read_all(&mut rx);
        }
    }

    /// Sends what the batched socket held back (nothing to do for the plain one).
    fn flush(&mut self) {
        let sent = self.io.flush();
        self.count(sent);
    }

    fn count(&self, sent: Sent) {
        let c = &self.counters;
        c.datagrams_out.fetch_add(sent.ok, Ordering::Relaxed);
        c.send_errors.fetch_add(sent.failed, Ordering::Relaxed);
    }

    /// Applies what signalling asked; false when it is gone.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add {
                    id,
                    rtc,
                    role,
                    stream,
                }) => self.add(id, *rtc, role, &stream),
                Ok(Command::Remove(id)) => {
                    if let Some(&i) = self.by_id.get(&id) {
                        self.remove(i);
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn add(&mut self, id: u64, rtc: Rtc, role: Role, name: &str) {
        let stream = match self.names.get(name) {
            Some(&s) => s,
            None => {
                self.streams.push(Stream {
                    publisher: None,
                    viewers: Vec::new(),
                });
                self.names.insert(name.to_owned(), self.streams.len() - 1);
                self.streams.len() - 1
            }
        };
        let client = Client {
            id,
            rtc,
            role,
            stream,
            timeout: None,
            routes: Vec::new(),
            seq_base: None,
            last_keyframe_request: None,
            medias: Vec::new(),
        };
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.clients.push(None);
                self.clients.len() - 1
            }
        };
        if let Some(slot) = self.clients.get_mut(i) {
            *slot = Some(client);
        }
        self.by_id.insert(id, i);
        if let Some(s) = self.streams.get_mut(stream) {
            match role {
                // A second publisher replaces the first (the bench never makes one).
                Role::Publish => s.publisher = Some(i),
                Role::View => s.viewers.push(i),
            }
        }
        self.counters.sessions.fetch_add(1, Ordering::Relaxed);
        self.drain(i, Instant::now());
    }

    fn remove(&mut self, i: usize) {
        let Some(mut client) = self.clients.get_mut(i).and_then(Option::take) else {
            return;
        };
        client.rtc.disconnect();
        self.by_id.remove(&client.id);
        self.by_addr.retain(|_, &mut c| c != i);
        if let Some(s) = self.streams.get_mut(client.stream) {
            if s.publisher == Some(i) {
                s.publisher = None;
            }
            s.viewers.retain(|&v| v != i);
        }
        self.free.push(i);
        self.counters.sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// Reads every datagram waiting on the socket; a batch's sends go out once the whole
    /// batch is handled.
    fn read_all(&mut self, rx: &mut RecvBatch) {
        loop {
            match self.io.recv(rx) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(_) => return,
            }
            for (source, data) in rx.datagrams() {
                self.counters.datagrams_in.fetch_add(1, Ordering::Relaxed);
                self.input(source, data);
            }
            self.flush();
        }
    }

    /// Hands one datagram to the session it belongs to.
    fn input(&mut self, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let now = Instant::now();
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let i = match self.by_addr.get(&source) {
            Some(&i) => i,
            None => {
                let found = (self.clients.iter().enumerate())
                    .find(|(_, c)| c.as_ref().is_some_and(|c| c.rtc.accepts(&input)));
                let Some((i, _)) = found else { return };
                self.by_addr.insert(source, i);
                i
            }
        };
        let Some(client) = self.clients.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if client.rtc.handle_input(input).is_err() {
            client.rtc.disconnect();
        }
        self.drain(i, now);
    }

    /// Runs the timeouts that are due.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                return;
            }
            self.timers.pop();
            let Some(client) = self.clients.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if client.timeout != Some(t) {
                continue; // superseded
            }
            client.timeout = None;
            if client.rtc.handle_input(Input::Timeout(now)).is_err() {
                client.rtc.disconnect();
            }
            self.drain(i, now);
        }
    }

    /// Polls session `i` until it wants a timeout: sends what it transmits, forwards the
    /// RTP a publisher sent, passes viewers' keyframe requests on.
    fn drain(&mut self, i: usize, now: Instant) {
        let Some(client) = self.clients.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let mut wants_keyframe = false;
        let timeout = loop {
            match client.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    let sent = self.io.send(t.destination, t.contents.into());
                    self.counters
                        .datagrams_out
                        .fetch_add(sent.ok, Ordering::Relaxed);
                    self.counters
                        .send_errors
                        .fetch_add(sent.failed, Ordering::Relaxed);
                }
                Ok(Output::Timeout(t)) => break Some(t),
                Ok(Output::Event(event)) => match event {
                    Event::RtpPacket(p) if client.role == Role::Publish => self.forward.push(p),
                    Event::KeyframeRequest(_) if client.role == Role::View => {
                        wants_keyframe = true;
                    }
                    Event::MediaAdded(m) => client.medias.push((m.mid, m.kind)),
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        client.rtc.disconnect();
                    }
                    _ => {}
                },
                Err(_) => {
                    client.rtc.disconnect();
                    break None;
                }
            }
        };
        let (alive, stream, role) = (client.rtc.is_alive(), client.stream, client.role);
        if alive {
            if let Some(t) = timeout
                && client.timeout != Some(t)
            {
                client.timeout = Some(t);
                self.timers.push(Reverse((t, i)));
            }
        } else {
            self.remove(i);
        }
        if wants_keyframe {
            self.keyframe_wanted.push(stream);
        }
        if role == Role::Publish && !self.forward.is_empty() {
            let packets = std::mem::take(&mut self.forward);
            self.fan_out(i, stream, &packets, now);
            self.forward = packets;
            self.forward.clear();
        }
        while let Some(s) = self.keyframe_wanted.pop() {
            self.request_keyframe(s, now);
        }
    }

    /// Writes each packet of publisher `from` into the send stream of every viewer of
    /// `stream`, and sends what that makes.
    fn fan_out(&mut self, from: usize, stream: usize, packets: &[RtpPacket], now: Instant) {
        let Some(codecs) = self.codecs_of(from, packets) else {
            return;
        };
        let viewers = match self.streams.get_mut(stream) {
            Some(s) => std::mem::take(&mut s.viewers),
            None => return,
        };
        for &v in &viewers {
            let Some(viewer) = self.clients.get_mut(v).and_then(Option::as_mut) else {
                continue;
            };
            if !viewer.rtc.is_connected() {
                continue;
            }
            for (p, codec) in packets.iter().zip(&codecs) {
                viewer.write(p, *codec);
            }
            self.drain(v, now);
        }
        if let Some(s) = self.streams.get_mut(stream) {
            // Viewers that joined meanwhile (none: commands wait for the loop) stay.
            let joined = std::mem::replace(&mut s.viewers, viewers);
            s.viewers.extend(joined);
        }
    }

    /// The codec and media kind of each packet, from the publisher's negotiated formats.
    fn codecs_of(
        &mut self,
        from: usize,
        packets: &[RtpPacket],
    ) -> Option<Vec<Option<(Pt, Codec, MediaKind)>>> {
        let publisher = self.clients.get_mut(from).and_then(Option::as_mut)?;
        let mut out = Vec::with_capacity(packets.len());
        for p in packets {
            let pt = p.header.payload_type;
            let codec = (publisher.rtc.codec_config().iter())
                .find(|c| c.pt() == pt)
                .map(|c| c.spec().codec);
            let mid = (publisher.rtc.direct_api().stream_rx(&p.header.ssrc)).map(|s| s.mid());
            let kind = (publisher.medias.iter())
                .find(|(m, _)| Some(*m) == mid)
                .map(|(_, k)| *k);
            out.push(codec.zip(kind).map(|(c, k)| (pt, c, k)));
        }
        Some(out)
    }

    /// Asks the publisher of `stream` for a keyframe (PLI), at most every 500 ms.
    fn request_keyframe(&mut self, stream: usize, now: Instant) {
        let Some(p) = self.streams.get(stream).and_then(|s| s.publisher) else {
            return;
        };
        let Some(publisher) = self.clients.get_mut(p).and_then(Option::as_mut) else {
            return;
        };
        if (publisher.last_keyframe_request).is_some_and(|t| now < t + KEYFRAME_INTERVAL) {
            return;
        }
        publisher.last_keyframe_request = Some(now);
        let video = publisher
            .medias
            .iter()
            .filter(|(_, k)| *k == MediaKind::Video);
        let mids: Vec<Mid> = video.map(|(m, _)| *m).collect();
        for mid in mids {
            if let Some(rx) = publisher.rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
            }
        }
        self.drain(p, now);
    }
}

impl Client {
    /// Writes one forwarded packet into this viewer's send stream for its media kind.
    fn write(&mut self, p: &RtpPacket, codec: Option<(Pt, Codec, MediaKind)>) {
        let Some((pt_in, codec, kind)) = codec else {
            return;
        };
        let route = match self.routes.iter().find(|(pt, _)| *pt == pt_in) {
            Some((_, route)) => *route,
            None => {
                let route = self.route(codec, kind);
                self.routes.push((pt_in, route));
                route
            }
        };
        let Some((ssrc, pt)) = route else {
            return;
        };
        let ext = *p.seq_no;
        let base = *self.seq_base.get_or_insert(ext & !0xffff);
        let seq: SeqNo = ext.wrapping_sub(base).into();
        let mut direct = self.rtc.direct_api();
        let Some(tx) = direct.stream_tx(&ssrc) else {
            return;
        };
        let write = RtpWrite::new(pt, seq, p.header.timestamp, p.timestamp, p.payload.clone())
            .marker(p.header.marker)
            .nackable(kind == MediaKind::Video);
        tx.write_rtp(write);
    }

    /// This viewer's send stream and payload type for `codec` of `kind`.
    fn route(&mut self, codec: Codec, kind: MediaKind) -> Option<(Ssrc, Pt)> {
        let config = self.rtc.codec_config().clone();
        let mids: Vec<Mid> = (self.medias.iter())
            .filter(|(_, k)| *k == kind)
            .map(|(m, _)| *m)
            .collect();
        for mid in mids {
            let Some(media) = self.rtc.media(mid) else {
                continue;
            };
            let pt = (config.iter())
                .filter(|c| media.remote_pts().contains(&c.pt()))
                .find(|c| c.spec().codec == codec)
                .map(|c| c.pt());
            let ssrc = (self.rtc.direct_api().stream_tx_by_mid(mid, None)).map(|s| s.ssrc());
            if let (Some(pt), Some(ssrc)) = (pt, ssrc) {
                return Some((ssrc, pt));
            }
        }
        None
    }
}
