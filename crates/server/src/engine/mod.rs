//! The media thread: owns the UDP socket, every peer and the router. HTTP talks to it only
//! through [`Command`]s; nothing on the packet path takes a lock.

mod media;
mod metrics;
mod net;
mod publish;
mod session;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant, UNIX_EPOCH};

use mio::{Events, Poll, Token, Waker};
use rtc::dtls::{DtlsCertificate, DtlsConfig};
use rtc::peer::{DisconnectCause, PeerEvent, Received};
use rtc::rand::Rng;
use rtc::stun;

use self::media::Tx;
use self::net::Net;
use self::session::{OfferContext, OfferedTrack, Session, answer_offer};
use crate::config::Config;
use crate::control::{Command, Created, EngineError, EngineHandle, Patched, Role, StreamInfo};
use crate::recorder::Recorder;
use crate::router::{Source, Stream};
use crate::sources::{self, FilePlayer};
use rtc::ice::Credentials;
use rtc::sdp::Candidate;

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// How often sessions' timers and reports are looked at. ICE and DTLS timers need no finer
/// grain; file pacing has its own, exact deadline.
const TICK: Duration = Duration::from_millis(10);
/// Sender Reports go out about once a second per session (RFC 3550 §6.2 allows far less
/// often, but browsers sync audio and video faster with frequent ones).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a live stream outlives a publisher that closed without DELETE, waiting for a new
/// publisher under the same name (its viewers stay connected meanwhile).
const PUBLISHER_GRACE: Duration = Duration::from_secs(10);
/// A bound on sessions, so a flood of POSTs cannot exhaust memory.
const MAX_SESSIONS: usize = 10_000;

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
            Some(Recorder::spawn(dir.clone())?)
        }
        None => None,
    };
    let poll = Poll::new()?;
    let net = Net::bind(config.udp, poll.registry(), SOCKET, config.test_send_loss).map_err(
        |source| StartError::Bind {
            addr: config.udp,
            source,
        },
    )?;
    let udp_addr = net.local_addr();
    let candidates = net::candidates(udp_addr, &config.public_ip);
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
    let (tx, rx) = mpsc::channel();
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
        dtls,
        rng,
        streams,
        sessions: HashMap::new(),
        next_key: 1,
        by_ufrag: HashMap::new(),
        by_addr: HashMap::new(),
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
        handle: EngineHandle::new(tx, wake),
        udp_addr,
        thread,
    })
}

/// Everything the media thread owns.
struct MediaLoop {
    poll: Poll,
    net: Net,
    commands: Receiver<Command>,
    candidates: Vec<SocketAddr>,
    dtls: Arc<DtlsConfig>,
    rng: Rng,
    streams: BTreeMap<String, Stream>,
    sessions: HashMap<u64, Session>,
    next_key: u64,
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<SocketAddr, u64>,
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
            let timeout = deadline.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!("media thread: poll failed: {e}");
                return;
            }
            let now = Instant::now();
            self.receive(now);
            if !self.take_commands(now) {
                tracing::info!("media thread: every handle is gone, stopping");
                return;
            }
            self.play_files(now);
            self.fan_out(now);
            if now >= self.next_tick {
                self.tick(now);
                self.next_tick = now + TICK;
            }
            self.remove_ended(now);
            self.net.flush(self.poll.registry());
        }
    }

    fn next_deadline(&self) -> Instant {
        let files = self.streams.values().filter_map(|s| match &s.source {
            Source::File(player) => Some(player.next_due()),
            Source::Live { .. } => None,
        });
        files.fold(self.next_tick, Instant::min)
    }

    fn receive(&mut self, now: Instant) {
        let Some(mut batch) = self.net.recv.take() else {
            return;
        };
        while self.net.recv(&mut batch) > 0 {
            for datagram in batch.iter_mut() {
                self.handle_datagram(now, datagram.source, datagram.local, datagram.bytes);
            }
            self.fan_out(now);
        }
        self.net.recv = Some(batch);
    }

    /// Routes a datagram to its session: by address once ICE validated it, otherwise (a
    /// first STUN check from a new address) by the USERNAME's ufrag.
    fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: SocketAddr,
        datagram: &mut [u8],
    ) {
        let key = self.by_addr.get(&from).copied().or_else(|| {
            let ufrag = stun::username_ufrag(datagram)?;
            self.by_ufrag.get(std::str::from_utf8(ufrag).ok()?).copied()
        });
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
            self.net.send(&t.contents, t.destination, t.source, false);
        }
        while let Some(event) = session.peer.poll_event() {
            match event {
                PeerEvent::AddressValidated { remote } => {
                    session.remote = Some(remote);
                    self.by_addr.insert(remote, key);
                }
                PeerEvent::IceConnected { remote, after } => {
                    session.ice_time = Some(after);
                    tracing::debug!(session = %session.id, %remote, ice_ms = after.as_millis(), "ICE connected");
                }
                PeerEvent::Connected { profile, after } => {
                    session.dtls_time = Some(after);
                    tracing::info!(
                        session = %session.id, stream = %session.stream, role = ?session.role,
                        remote = ?session.remote, dtls_ms = after.as_millis(), srtp = ?profile,
                        "connected"
                    );
                    session.next_report = Some(now);
                    // The viewer starts at a keyframe now; the PLI browsers send as soon as a
                    // stream starts must not replay it a second time.
                    session.last_keyframe_request = Some(now);
                    if session.role == Role::Play
                        && let Some(stream) = self.streams.get(&session.stream)
                    {
                        media::start_viewer(
                            session,
                            stream,
                            &mut Tx {
                                now,
                                out: &mut self.out,
                                net: &mut self.net,
                            },
                        );
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
    }

    fn take_commands(&mut self, now: Instant) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(cmd) => self.handle_command(now, cmd),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn handle_command(&mut self, now: Instant, cmd: Command) {
        // Replies go to an HTTP task that may have given up; a closed channel is fine.
        match cmd {
            Command::Create {
                role,
                stream,
                offer,
                reply,
            } => drop(reply.send(self.create(now, role, &stream, &offer))),
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
    ) -> Result<Created, EngineError> {
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(EngineError::Overloaded);
        }
        if role == Role::Publish {
            return self.create_publisher(now, name, offer);
        }
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
            role,
            stream: name,
            tracks: &tracks,
            candidates: &self.candidates,
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
        self.by_ufrag
            .insert(session.peer.local_credentials().ufrag.clone(), key);
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
        let local = Credentials::random(&mut self.rng);
        if !session
            .peer
            .restart_ice(now, local.clone(), &Credentials { ufrag, pwd })
        {
            return Err(EngineError::Unanswerable(
                "this session cannot restart ICE".into(),
            ));
        }
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_ufrag.insert(local.ufrag.clone(), key);
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
        for (key, session) in &mut self.sessions {
            if session.role == Role::Publish {
                publishers.push(*key);
            } else if session.next_report.is_some_and(|t| t <= now) && session.peer.is_connected() {
                session.next_report = Some(now + REPORT_INTERVAL);
                media::send_reports(
                    session,
                    &self.streams,
                    &mut Tx {
                        now,
                        out: &mut self.out,
                        net: &mut self.net,
                    },
                );
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
            self.by_ufrag
                .remove(&session.peer.local_credentials().ufrag);
            self.by_addr.retain(|_, k| *k != key);
            if let (Role::Publish, Some(recorder)) = (session.role, &mut self.recorder) {
                for i in 0..session.inputs.len() {
                    recorder.end(publish::recording_id(key, i));
                }
            }
            if session.role == Role::Publish
                && publish::is_current_publisher(&self.streams, key, &session)
            {
                self.end_stream(now, &session.stream);
            } else if let Some(stream) = self.streams.get_mut(&session.stream) {
                stream.viewers.retain(|k| *k != key);
            }
            self.totals.add_session(&session);
            let stats = session.peer.stats();
            tracing::info!(
                session = %session.id, stream = %session.stream, role = ?session.role,
                remote = ?session.remote, seconds = now.saturating_duration_since(session.created).as_secs(),
                reason = %reason, ice_ms = ?session.ice_time.map(|t| t.as_millis()),
                dtls_ms = ?session.dtls_time.map(|t| t.as_millis()), rtt_ms = ?session.rtt.map(|t| t.as_millis()),
                loss_pct = u32::from(session.fraction_lost) * 100 / 256, nacks = session.nacks,
                keyframe_requests = session.keyframe_requests, srtp_failed = stats.srtp_failed, "session ended"
            );
        }
    }
}

fn describe(cause: &DisconnectCause) -> String {
    match cause {
        DisconnectCause::Ice(reason) => format!("ICE: {reason:?}"),
        DisconnectCause::Dtls(e) => format!("DTLS: {e}"),
        DisconnectCause::ClosedByPeer => "closed by peer".into(),
        DisconnectCause::ClosedLocally => "closed".into(),
    }
}
