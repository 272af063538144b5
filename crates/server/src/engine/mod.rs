//! The media thread: owns the UDP socket, every peer and the router. HTTP talks to it only
//! through [`Command`]s; nothing on the packet path takes a lock.

mod budget;
mod hint;
mod media;
mod metrics;
mod net;
mod pending;
mod publish;
mod ratelimit;
mod routes;
mod session;
mod shutdown;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant, UNIX_EPOCH};

use mio::{Events, Poll, Token, Waker};
use rtc::dtls::{DtlsCertificate, DtlsConfig};
use rtc::peer::{DisconnectCause, PeerEvent, Received};
use rtc::rand::Rng;
use rtc::stun;

use self::budget::Budget;
use self::media::Tx;
use self::net::Net;
use self::pending::PendingTable;
use self::ratelimit::ErrorLimiter;
use self::routes::Routes;
use self::session::{OfferContext, OfferedTrack, Session, answer_offer};
use crate::config::Config;
use crate::control::{Command, Created, EngineError, EngineHandle, Patched, Role, StreamInfo};
use crate::recorder::{Limits, Recorder};
use crate::router::{Source, Stream};
use crate::sources::{self, FilePlayer};
use rtc::ice::{Credentials, DisconnectReason};
use rtc::sdp::Candidate;

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// ICE-TCP's listener; its connections take the tokens above it.
const TCP: usize = 2;
/// How often sessions' timers and reports are looked at. ICE and DTLS timers need no finer
/// grain; file pacing has its own, exact deadline.
const TICK: Duration = Duration::from_millis(10);
/// Sender Reports go out about once a second per session (RFC 3550 §6.2 allows far less
/// often, but browsers sync audio and video faster with frequent ones).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// A viewer's second Sender Report follows its first this soon: browsers map RTP to NTP time
/// only from two (libwebrtc's RtpToNtpEstimator), and audio/video sync waits for that.
const FIRST_REPORT_GAP: Duration = Duration::from_millis(200);
/// How long a live stream outlives a publisher that closed without DELETE, waiting for a new
/// publisher under the same name (its viewers stay connected meanwhile).
const PUBLISHER_GRACE: Duration = Duration::from_secs(10);
/// A bound on sessions past their first valid ICE check, so a flood of POSTs cannot exhaust
/// memory. Sessions before it are bounded apart ([`pending`]).
const MAX_SESSIONS: usize = 10_000;
/// Sessions that end before the allocator is asked to give free memory back to the kernel.
const TRIM_AFTER: usize = 256;
/// Commands HTTP may queue for the media thread; beyond that it answers 503 at once.
const COMMAND_QUEUE: usize = 256;

/// A started media thread.
#[derive(Debug)]
pub struct Engine {
    /// The handle HTTP uses.
    pub handle: EngineHandle,
    /// The UDP address actually bound (the port may have been 0).
    pub udp_addr: SocketAddr,
    /// The media thread; it ends (finishing recordings) once every handle is dropped.
    pub thread: std::thread::JoinHandle<()>,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The poller. (Each variant's message leaves its cause to the error chain, so the cause
    /// is printed once.)
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The media socket.
    #[error("cannot bind the UDP media socket to {addr} (--udp / LEANRTC_UDP)")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The ICE-TCP listener.
    #[error("cannot listen for ICE-TCP on {addr} (--tcp / LEANRTC_TCP; `--tcp off` turns it off)")]
    BindTcp {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A media file.
    #[error(transparent)]
    Media(#[from] sources::file::FileError),
    /// Our DTLS certificate.
    #[error("cannot make the DTLS certificate")]
    Certificate(#[from] rtc::dtls::DtlsError),
}

/// Loads the streams, binds the media socket and starts the media thread.
pub fn start(config: &Config) -> Result<Engine, StartError> {
    let files = match &config.media_dir {
        Some(dir) => sources::scan_media_dir(dir)?,
        None => sources::builtin_sample()?,
    };
    let recorder = match &config.record_dir {
        Some(dir) => {
            Recorder::check_dir(dir)?;
            tracing::info!(dir = %dir.display(), "recording published tracks");
            Some(Recorder::spawn(dir.clone(), Limits::default())?)
        }
        None => None,
    };
    let poll = Poll::new()?;
    let mut net = Net::bind(config.udp, poll.registry(), SOCKET, config.test_send_loss).map_err(
        |source| StartError::Bind {
            addr: config.udp,
            source,
        },
    )?;
    let udp_addr = net.local_addr();
    let candidates = net::candidates(udp_addr, &config.public_ip);
    // ICE-TCP (issue 13), by default on the UDP socket's own address and port number.
    let mut tcp_candidates = Vec::new();
    if let Some(addr) = config.tcp_addr(udp_addr) {
        let tcp = crate::tcp::Tcp::bind(addr, poll.registry(), TCP, Instant::now())
            .map_err(|source| StartError::BindTcp { addr, source })?;
        tcp_candidates = net::candidates(tcp.local_addr(), &config.public_ip);
        tracing::info!(tcp = %tcp.local_addr(), candidates = ?tcp_candidates, "ICE-TCP port ready");
        net.tcp = Some(tcp);
    }
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let mut rng = Rng::system();
    let certificate = DtlsCertificate::generate(&mut rng)?;
    let dtls = Arc::new(DtlsConfig::new(certificate, &mut rng));
    let now = Instant::now();
    let mut streams = BTreeMap::new();
    for (name, file) in files {
        for track in [&file.video, &file.audio].into_iter().flatten() {
            let (w, h) = track.size;
            tracing::info!(
                stream = %name, codec = track.codec.name(), frames = track.frames(),
                seconds = track.duration().as_secs_f32(), size = %format!("{w}x{h}"), "file track"
            );
        }
        let player = FilePlayer::start(file, now, &mut rng)?;
        streams.insert(name, Stream::file(player, now));
    }
    tracing::info!(udp = %udp_addr, candidates = ?candidates, "media port ready");
    let (tx, rx) = mpsc::sync_channel(COMMAND_QUEUE);
    let refused = Arc::new(AtomicU64::new(0));
    let wake = {
        let waker = Arc::clone(&waker);
        // A failed wake only delays the command until the next packet or tick.
        Arc::new(move || drop(waker.wake())) as Arc<dyn Fn() + Send + Sync>
    };
    let mut media = MediaLoop {
        poll,
        net,
        commands: rx,
        candidates,
        tcp_candidates,
        dtls,
        rng,
        streams,
        sessions: HashMap::new(),
        next_key: 1,
        routes: Routes::default(),
        pending: PendingTable::default(),
        removed_since_trim: 0,
        budget: Budget::default(),
        errors: ErrorLimiter::standard(now),
        limits: LimitCounters::default(),
        commands_refused: Arc::clone(&refused),
        by_id: HashMap::new(),
        ended: Vec::new(),
        out: Vec::with_capacity(2048),
        next_tick: now,
        dropped_unknown: 0,
        nacks: Vec::new(),
        keys: Vec::new(),
        congestion_feedback: !config.test_no_congestion_feedback,
        totals: metrics::Counters::default(),
        unknown_ssrc: 0,
        recorder,
    };
    let thread = std::thread::Builder::new()
        .name("media".into())
        .spawn(move || media.run())?;
    Ok(Engine {
        handle: EngineHandle::new(tx, wake).counting_refusals(refused),
        udp_addr,
        thread,
    })
}

/// What the limits turned away, for the metrics.
#[derive(Debug, Default, Clone, Copy)]
struct LimitCounters {
    /// Rounds that stopped at their budget with work left.
    rounds_budget_exhausted: u64,
    /// Most datagrams handled in one round.
    round_datagrams_max: u64,
    /// Pending sessions that had no valid check in time.
    pending_expired: u64,
    /// Pending sessions ended to make room for newer ones.
    pending_evicted: u64,
    /// Offers refused because their client had too many pending sessions.
    pending_client_full: u64,
    /// Offers refused because the connected sessions were at their bound.
    sessions_full: u64,
}

/// Everything the media thread owns.
struct MediaLoop {
    poll: Poll,
    net: Net,
    commands: Receiver<Command>,
    candidates: Vec<SocketAddr>,
    /// Our passive ICE-TCP candidates (empty with `--tcp off`).
    tcp_candidates: Vec<SocketAddr>,
    dtls: Arc<DtlsConfig>,
    rng: Rng,
    streams: BTreeMap<String, Stream>,
    sessions: HashMap<u64, Session>,
    next_key: u64,
    /// Which session a datagram goes to (by ufrag, by validated address).
    routes: Routes,
    /// Sessions without a valid ICE check yet: short-lived, capped apart.
    pending: PendingTable,
    /// Sessions removed since the allocator last gave free memory back.
    removed_since_trim: usize,
    /// Work per round.
    budget: Budget,
    /// STUN error responses per source and in total.
    errors: ErrorLimiter,
    limits: LimitCounters,
    /// Commands HTTP could not queue (the queue was full), counted by the handles.
    commands_refused: Arc<AtomicU64>,
    by_id: HashMap<String, u64>,
    /// Sessions to remove after this round, with why.
    ended: Vec<(u64, String)>,
    /// The send buffer every outgoing packet is built and protected in.
    out: Vec<u8>,
    next_tick: Instant,
    dropped_unknown: u64,
    /// Counters of ended sessions, and publisher RTP that matched no m-line.
    totals: metrics::Counters,
    unknown_ssrc: u64,
    /// Send publishers congestion-control feedback (off only for measurements).
    congestion_feedback: bool,
    /// Scratch lists reused every round: NACKed sequence numbers, session keys.
    nacks: Vec<u16>,
    keys: Vec<u64>,
    /// Writes published tracks to files (`--record-dir`), on its own thread.
    recorder: Option<Recorder>,
}

impl MediaLoop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            let deadline = self.next_deadline();
            // Work left over from a round cut short by its budget goes on at once.
            let tcp_busy = self.net.tcp.as_ref().is_some_and(crate::tcp::Tcp::busy);
            let timeout = if self.budget.unfinished() || tcp_busy {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(now)
            };
            self.budget.start_round();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!("media thread: poll failed: {e}");
                return;
            }
            let now = Instant::now();
            if let Some(tcp) = self.net.tcp.as_mut() {
                tcp.on_events(&events);
            }
            self.receive(now);
            self.receive_tcp(now);
            if !self.take_commands(now) {
                tracing::info!("media thread: every handle is gone, stopping");
                self.shutdown(now);
                return;
            }
            self.play_files(now);
            self.fan_out(now);
            if now >= self.next_tick {
                self.tick(now);
                self.trim_memory();
                self.next_tick = now + TICK;
            }
            self.remove_ended(now);
            self.net.flush(self.poll.registry());
            self.limits.rounds_budget_exhausted += u64::from(self.budget.unfinished());
        }
    }

    fn next_deadline(&self) -> Instant {
        let files = self.streams.values().filter_map(|s| match &s.source {
            Source::File(player) => Some(player.next_due()),
            Source::Live { .. } => None,
        });
        files.fold(self.next_tick, Instant::min)
    }

    /// Receives and handles datagrams, at most the round's budget of them (a flood must not
    /// starve commands and timers; what is left is read in the next round, at once).
    fn receive(&mut self, now: Instant) {
        let Some(mut batch) = self.net.recv.take() else {
            return;
        };
        let mut handled = 0;
        while self.budget.may_receive(net::RECV_BATCH) {
            let n = self.net.recv(&mut batch);
            if n == 0 {
                break;
            }
            for datagram in batch.iter_mut() {
                // The kernel's receive time, not this wake-up's: TWCC and jitter must not
                // measure our own queueing (issue 10).
                let (at, from, local) = (datagram.arrival, datagram.source, datagram.local);
                self.handle_datagram(at, from, local, datagram.bytes);
            }
            self.budget.spend_datagrams(n);
            handled += n as u64;
            self.fan_out(now);
        }
        self.limits.round_datagrams_max = self.limits.round_datagrams_max.max(handled);
        self.net.recv = Some(batch);
    }

    /// Handles the frames ICE-TCP connections brought (RFC 4571), each like a datagram.
    fn receive_tcp(&mut self, now: Instant) {
        let Some(tcp) = self.net.tcp.as_mut() else {
            return;
        };
        let mut frames = tcp.receive(now, self.poll.registry());
        for i in 0..frames.len() {
            if let Some((from, local, bytes)) = frames.get_mut(i) {
                self.handle_datagram(now, from, local, bytes);
            }
        }
        if let Some(tcp) = self.net.tcp.as_mut() {
            tcp.recycle(frames);
        }
    }

    /// Routes a datagram to its session: a STUN check by its USERNAME's ufrag (a reused
    /// address may belong to a new session), anything else by the address ICE validated.
    fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: SocketAddr,
        datagram: &mut [u8],
    ) {
        // RFC 7983: STUN starts with 0..=3; RTP, RTCP and DTLS never parse as STUN.
        let ufrag = datagram
            .first()
            .is_some_and(|b| *b < 4)
            .then(|| stun::username_ufrag(datagram))
            .flatten();
        let key = self.routes.route(from, ufrag);
        let Some(key) = key else {
            self.dropped_unknown += 1;
            return;
        };
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let viewer = session.role == Role::Play;
        match session.peer.handle_datagram(now, from, local, datagram) {
            Received::Rtp(packet) if !viewer => self.on_publisher_rtp(now, key, packet),
            Received::Rtcp(rtcp) if viewer => {
                let wants_keyframe = media::handle_rtcp(
                    session,
                    &self.streams,
                    rtcp,
                    &mut Tx {
                        now,
                        out: &mut self.out,
                        net: &mut self.net,
                    },
                );
                if wants_keyframe {
                    let name = session.stream.clone();
                    self.request_keyframe(now, &name);
                }
            }
            Received::Rtcp(rtcp) => self.on_publisher_rtcp(now, key, rtcp),
            // RTP from a viewer has nowhere to go.
            Received::Rtp(_) | Received::Nothing => {}
        }
        self.after_io(now, key);
    }

    /// Sends what a session's peer queued and acts on its events.
    fn after_io(&mut self, now: Instant, key: u64) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        while let Some(t) = session.peer.poll_transmit() {
            // STUN error responses (401 for a wrong MESSAGE-INTEGRITY…) are rate-limited:
            // a flood of bad checks must not turn into a flood of answers.
            if is_stun_error(&t.contents) && !self.errors.allow(now, t.destination.ip()) {
                continue;
            }
            self.net.send(&t.contents, t.destination, t.source, false);
        }
        let mut ask_keyframe = None;
        while let Some(event) = session.peer.poll_event() {
            match event {
                PeerEvent::AddressValidated { remote } => {
                    // A valid check: no longer a cheap pending session.
                    self.pending.remove(key);
                    self.routes.add_addr(key, remote);
                }
                PeerEvent::AddressRemoved { remote } => self.routes.remove_addr(key, remote),
                PeerEvent::IceConnected { remote, after } => {
                    session.remote = Some(remote);
                    session.ice_time = Some(after);
                    tracing::debug!(session = %session.id, %remote, ice_ms = after.as_millis(), "ICE connected");
                }
                PeerEvent::Connected { profile, after } => {
                    session.dtls_time = Some(after);
                    tracing::info!(
                        session = %session.id, stream = %session.stream, role = ?session.role,
                        remote = ?session.peer.path().map(|p| p.0), dtls_ms = after.as_millis(), srtp = ?profile,
                        transport = session.peer.path().map_or("-", |p| crate::tcp::transport(self.net.tcp.as_ref(), p.0)),
                        "connected"
                    );
                    session.next_report = Some(now);
                    if session.role == Role::Play
                        && let Some(stream) = self.streams.get(&session.stream)
                    {
                        let mut tx = Tx {
                            now,
                            out: &mut self.out,
                            net: &mut self.net,
                        };
                        let missing = media::start_viewer(session, stream, &mut tx);
                        // Sender Reports at once, so the viewer syncs audio and video from
                        // its first frames (it needs two; the second follows soon).
                        media::send_reports(session, &self.streams, &mut tx);
                        session.next_report = Some(now + FIRST_REPORT_GAP);
                        if missing {
                            // Nothing cached to start from: ask the publisher now, and let
                            // the viewer's own PLIs through.
                            ask_keyframe = Some(session.stream.clone());
                        } else {
                            // The viewer starts at a keyframe now; the PLI browsers send as
                            // soon as a stream starts must not replay it a second time.
                            session.last_keyframe_request = Some(now);
                        }
                    }
                }
                PeerEvent::ApplicationData(_) => {}
                // A publisher that closed without DELETE (a page reload, a restart) keeps its
                // stream and viewers for a grace period to come back under the same name.
                PeerEvent::Disconnected(DisconnectCause::ClosedByPeer)
                    if session.role == Role::Publish =>
                {
                    tracing::info!(session = %session.id, stream = %session.stream, grace_s = PUBLISHER_GRACE.as_secs(), "publisher closed without DELETE; its stream waits for it");
                    session.closed_at = Some(now);
                }
                PeerEvent::Disconnected(cause) => self.ended.push((key, describe(&cause))),
            }
        }
        session.timeout = session.peer.poll_timeout();
        if let Some(name) = ask_keyframe {
            self.request_keyframe(now, &name);
        }
    }

    fn take_commands(&mut self, now: Instant) -> bool {
        while self.budget.take_command() {
            match self.commands.try_recv() {
                Ok(cmd) => self.handle_command(now, cmd),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    fn handle_command(&mut self, now: Instant, cmd: Command) {
        // Replies go to an HTTP task that may have given up; a closed channel is fine.
        match cmd {
            Command::Create {
                role,
                stream,
                offer,
                client,
                reply,
            } => drop(reply.send(self.create(now, role, &stream, &offer, client))),
            Command::Patch {
                role,
                stream,
                session,
                if_match,
                fragment,
                reply,
            } => {
                let result = match self.lookup(role, &stream, &session) {
                    Some(_) => self.patch(now, &session, if_match.as_deref(), &fragment),
                    None => Err(EngineError::UnknownSession(session)),
                };
                drop(reply.send(result));
            }
            Command::Delete {
                role,
                stream,
                session,
                reply,
            } => {
                let result = match self.lookup(role, &stream, &session) {
                    Some(key) => {
                        self.ended.push((key, "DELETE".into()));
                        if let Some(s) = self.sessions.get_mut(&key) {
                            s.peer.close(now);
                        }
                        // Sends the close_notify.
                        self.after_io(now, key);
                        Ok(())
                    }
                    None => Err(EngineError::UnknownSession(session)),
                };
                drop(reply.send(result));
            }
            Command::Streams { reply } => drop(reply.send(self.stream_list(now))),
            Command::Metrics { reply } => drop(reply.send(self.metrics())),
        }
    }

    /// The session `id`, if it is of `role` and on `stream` (the path it was addressed by).
    fn lookup(&self, role: Role, stream: &str, id: &str) -> Option<u64> {
        let key = self.by_id.get(id).copied()?;
        let s = self.sessions.get(&key)?;
        (s.role == role && s.stream == stream).then_some(key)
    }

    fn create(
        &mut self,
        now: Instant,
        role: Role,
        name: &str,
        offer: &str,
        client: IpAddr,
    ) -> Result<Created, EngineError> {
        // Both checks come before any work on the offer: refusing must stay cheap.
        if self.pending.check(client).is_err() {
            self.limits.pending_client_full += 1;
            return Err(EngineError::Overloaded);
        }
        if self.sessions.len().saturating_sub(self.pending.len()) >= MAX_SESSIONS {
            self.limits.sessions_full += 1;
            return Err(EngineError::Overloaded);
        }
        let created = if role == Role::Publish {
            self.create_publisher(now, name, offer)
        } else {
            self.create_viewer(now, name, offer)
        }?;
        if let Some(&key) = self.by_id.get(&created.session)
            && let Some(old) = self.pending.insert(key, client, now)
        {
            self.limits.pending_evicted += 1;
            self.ended.push((
                old,
                "no ICE check yet, and newer offers need the room".into(),
            ));
        }
        Ok(created)
    }

    fn create_viewer(
        &mut self,
        now: Instant,
        name: &str,
        offer: &str,
    ) -> Result<Created, EngineError> {
        let stream = self
            .streams
            .get(name)
            .ok_or_else(|| EngineError::UnknownStream(name.to_owned()))?;
        let tracks: Vec<OfferedTrack> = stream
            .tracks
            .iter()
            .enumerate()
            .map(|(index, t)| OfferedTrack {
                index,
                codec: t.codec,
            })
            .collect();
        let cx = OfferContext {
            role: Role::Play,
            stream: name,
            tracks: &tracks,
            candidates: &self.candidates,
            tcp_candidates: &self.tcp_candidates,
            dtls: &self.dtls,
            congestion_feedback: self.congestion_feedback,
        };
        let (answer, mut session) = answer_offer(now, offer, &cx, &mut self.rng)?;
        let key = self.add_session(&mut session);
        if let Some(stream) = self.streams.get_mut(name) {
            stream.viewers.push(key);
        }
        let created = Created {
            session: session.id.clone(),
            answer,
            etag: session.etag.clone(),
        };
        self.sessions.insert(key, session);
        Ok(created)
    }

    /// Gives a new session its key and makes it reachable by ufrag and id.
    fn add_session(&mut self, session: &mut Session) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        session.timeout = session.peer.poll_timeout();
        self.routes
            .set_ufrag(key, &session.peer.local_credentials().ufrag);
        self.by_id.insert(session.id.clone(), key);
        tracing::info!(session = %session.id, stream = %session.stream, role = ?session.role, "session created");
        key
    }

    /// `PATCH` with an sdpfrag: trickle (nothing to do for ICE-lite) or an ICE restart.
    fn patch(
        &mut self,
        now: Instant,
        id: &str,
        if_match: Option<&str>,
        fragment: &str,
    ) -> Result<Patched, EngineError> {
        let unknown = || EngineError::UnknownSession(id.to_owned());
        let key = self.by_id.get(id).copied().ok_or_else(unknown)?;
        let session = self.sessions.get_mut(&key).ok_or_else(unknown)?;
        let value = |name: &str| {
            fragment
                .lines()
                .find_map(|l| l.trim_end().strip_prefix(name))
                .map(str::to_owned)
        };
        let (ufrag, pwd) = (value("a=ice-ufrag:"), value("a=ice-pwd:"));
        if ufrag.is_none() && pwd.is_none() {
            // An ICE-lite server learns the peer's addresses from its checks; trickled
            // candidates are accepted and need nothing more (RFC 9725 §4.3.1).
            return Ok(Patched::Trickled);
        }
        // RFC 9725 §4.3.2: an ICE restart must name the ETag of the ICE session it restarts.
        match if_match {
            None => return Err(EngineError::PreconditionRequired),
            Some(tag) if tag != "*" && tag != session.etag => {
                return Err(EngineError::PreconditionFailed);
            }
            Some(_) => {}
        }
        let (Some(ufrag), Some(pwd)) = (ufrag, pwd) else {
            return Err(EngineError::BadFragment(
                "an ICE restart needs both a=ice-ufrag and a=ice-pwd".into(),
            ));
        };
        let remote = Credentials::from_peer(&ufrag, &pwd)
            .map_err(|e| EngineError::BadFragment(e.to_string()))?;
        let local = Credentials::random(&mut self.rng);
        if !session.peer.restart_ice(now, local.clone(), &remote) {
            return Err(EngineError::Unanswerable(
                "this session cannot restart ICE".into(),
            ));
        }
        self.routes.set_ufrag(key, &local.ufrag);
        session.etag = format!("\"{:016x}\"", self.rng.u64());
        session.timeout = session.peer.poll_timeout();
        let mut answer = format!(
            "a=ice-lite\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
            local.ufrag, local.pwd
        );
        for (i, addr) in self.candidates.iter().enumerate() {
            answer.push_str(&Candidate::host(*addr, i as u16).to_line());
            answer.push_str("\r\n");
        }
        for (i, addr) in self.tcp_candidates.iter().enumerate() {
            let foundation = self.candidates.len() + i + 1;
            answer.push_str(&Candidate::tcp_passive(*addr, i as u16, foundation).to_line());
            answer.push_str("\r\n");
        }
        answer.push_str("a=end-of-candidates\r\n");
        tracing::info!(session = %session.id, "ICE restart");
        Ok(Patched::Restarted {
            fragment: answer,
            etag: session.etag.clone(),
        })
    }

    fn stream_list(&mut self, now: Instant) -> Vec<StreamInfo> {
        let mut list = Vec::new();
        for (name, stream) in &mut self.streams {
            list.push(StreamInfo {
                name: name.clone(),
                kind: stream.kind(),
                codecs: stream
                    .tracks
                    .iter()
                    .map(|t| t.codec.name().to_owned())
                    .collect(),
                viewers: stream.viewers.len(),
                bitrate: stream.bitrate(now),
                since: stream
                    .since
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            });
        }
        list
    }

    fn play_files(&mut self, now: Instant) {
        for stream in self.streams.values_mut() {
            media::play_file(stream, now);
        }
    }

    /// Sends every stream's new packets to its viewers (see [`media::flush`]).
    fn fan_out(&mut self, now: Instant) {
        let mut tx = Tx {
            now,
            out: &mut self.out,
            net: &mut self.net,
        };
        for stream in self.streams.values_mut() {
            media::flush(stream, &mut self.sessions, &mut tx);
        }
    }

    /// Timers of every session, and their Sender Reports.
    fn tick(&mut self, now: Instant) {
        let mut expired = std::mem::take(&mut self.keys);
        expired.clear();
        self.pending.expired(now, &mut expired);
        for key in expired.drain(..) {
            // Out of the table now, so the next tick does not count it again.
            self.pending.remove(key);
            self.limits.pending_expired += 1;
            // Every session is pending until its first valid check, so this, not ICE's
            // NotNominated 30 s later, is where a peer that never reached us ends: say why.
            if let Some(session) = self.sessions.get(&key) {
                let ended = hint::Ended {
                    cause: &DisconnectCause::Ice(DisconnectReason::NotNominated),
                    validated: session.remote.is_some(),
                    refused_checks: session.peer.stats().stun_rejected,
                    lived: now.saturating_duration_since(session.created),
                    candidates: &self.candidates,
                };
                if let Some(hint) = hint::never_reached(&ended) {
                    tracing::warn!(session = %session.id, stream = %session.stream, "{hint}");
                }
            }
            self.ended.push((
                key,
                format!(
                    "no valid ICE check within {} s",
                    pending::PENDING_TIMEOUT.as_secs()
                ),
            ));
        }
        self.keys = expired;
        let due: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.timeout.is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if let Some(session) = self.sessions.get_mut(&key) {
                session.peer.handle_timeout(now);
            }
            self.after_io(now, key);
        }
        let mut publishers = std::mem::take(&mut self.keys);
        publishers.clear();
        let mut tx = Tx {
            now,
            out: &mut self.out,
            net: &mut self.net,
        };
        for (key, session) in &mut self.sessions {
            if session.role == Role::Publish {
                publishers.push(*key);
                continue;
            }
            if session.outputs.iter().any(|o| o.replay.is_some()) {
                media::continue_replay(session, &self.streams, &mut tx);
            }
            if session.next_report.is_some_and(|t| t <= now) && session.peer.is_connected() {
                session.next_report = Some(now + REPORT_INTERVAL);
                media::send_reports(session, &self.streams, &mut tx);
            }
        }
        for &key in &publishers {
            if self
                .sessions
                .get(&key)
                .and_then(|s| s.closed_at)
                .is_some_and(|t| now.saturating_duration_since(t) >= PUBLISHER_GRACE)
            {
                self.ended.push((
                    key,
                    "closed by peer, no new publisher within the grace period".into(),
                ));
                continue;
            }
            // Receive streams release what a gap held back once it is given up; NACK retries
            // and congestion feedback are due on their own clocks.
            self.drain_publisher(now, key);
            let Some(session) = self.sessions.get_mut(&key) else {
                continue;
            };
            if session.next_report.is_some_and(|t| t <= now) && session.peer.is_connected() {
                session.next_report = Some(now + REPORT_INTERVAL);
                self.publisher_report(key, now);
            }
        }
        self.keys = publishers;
    }

    fn remove_ended(&mut self, now: Instant) {
        for (key, reason) in std::mem::take(&mut self.ended) {
            let Some(session) = self.sessions.remove(&key) else {
                continue;
            };
            self.by_id.remove(&session.id);
            // O(this session's addresses), not a scan of every route.
            self.routes.remove_session(key);
            self.pending.remove(key);
            if let (Role::Publish, Some(recorder)) = (session.role, &mut self.recorder) {
                recorder.end(key);
            }
            if session.role == Role::Publish
                && publish::is_current_publisher(&self.streams, key, &session)
            {
                self.end_stream(now, &session.stream);
            } else if let Some(stream) = self.streams.get_mut(&session.stream) {
                stream.viewers.retain(|k| *k != key);
            }
            self.totals.add_session(&session);
            self.removed_since_trim += 1;
            let stats = session.peer.stats();
            tracing::info!(
                session = %session.id, stream = %session.stream, role = ?session.role,
                remote = ?session.peer.path().map(|p| p.0), seconds = now.saturating_duration_since(session.created).as_secs(),
                transport = session.peer.path().map_or("-", |p| crate::tcp::transport(self.net.tcp.as_ref(), p.0)),
                reason = %reason, ice_ms = ?session.ice_time.map(|t| t.as_millis()),
                dtls_ms = ?session.dtls_time.map(|t| t.as_millis()), rtt_ms = ?session.rtt.map(|t| t.as_millis()),
                loss_pct = u32::from(session.fraction_lost) * 100 / 256, nacks = session.nacks,
                lost_packets = session.lost_packets(), keyframe_requests = session.keyframe_requests,
                srtp_failed = stats.srtp_failed, "session ended"
            );
        }
        // After a mass disconnect the tables give their memory back (a HashMap never
        // shrinks by itself), and so does the allocator: once many sessions have gone, and
        // only while no offers pour in (each trim walks the heap, ~1 ms).
        if self.sessions.capacity() > 64 && self.sessions.len() < self.sessions.capacity() / 4 {
            self.sessions.shrink_to(self.sessions.len() * 2);
            self.by_id.shrink_to(self.by_id.len() * 2);
        }
    }

    /// Gives free memory back to the kernel once [`TRIM_AFTER`] sessions have ended since
    /// the last time and no new pending session holds memory meanwhile (called each tick).
    fn trim_memory(&mut self) {
        if self.removed_since_trim >= TRIM_AFTER && self.pending.len() < TRIM_AFTER {
            self.removed_since_trim = 0;
            crate::udp::release_free_memory();
        }
    }
}

/// A STUN error response (RFC 8489 §5: class bits 0b11 in the message type).
fn is_stun_error(datagram: &[u8]) -> bool {
    matches!(datagram, [t0, t1, ..] if *t0 < 4 && t0 & 0x01 != 0 && t1 & 0x10 != 0)
}

fn describe(cause: &DisconnectCause) -> String {
    match cause {
        DisconnectCause::Ice(reason) => format!("ICE: {reason:?}"),
        DisconnectCause::Dtls(e) => format!("DTLS: {e}"),
        DisconnectCause::ClosedByPeer => "closed by peer".into(),
        DisconnectCause::ClosedLocally => "closed".into(),
    }
}

#[cfg(test)]
mod tests {
    use rtc::stun::{Class, MessageBuilder, Method, TransactionId};

    use super::is_stun_error;

    /// Only error responses are rate-limited: success responses, requests, DTLS and RTP pass.
    #[test]
    fn only_stun_error_responses_count_as_errors() {
        let message = |class| {
            let mut buf = Vec::new();
            MessageBuilder::new(&mut buf, class, Method::BINDING, TransactionId([7; 12]))
                .fingerprint();
            buf
        };
        assert!(is_stun_error(&message(Class::Error)));
        for class in [Class::Success, Class::Request, Class::Indication] {
            assert!(!is_stun_error(&message(class)), "{class:?}");
        }
        for other in [
            &[22u8, 0xfe, 0xfd][..],
            &[0x80, 0x60],
            &[0x81, 0xc9],
            &[0x01],
            &[],
        ] {
            assert!(!is_stun_error(other), "{other:?}");
        }
    }
}
