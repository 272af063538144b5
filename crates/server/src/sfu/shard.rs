//! One media thread's whole state, sans-IO: its sessions, the routing table, its copy of
//! every stream. The shell (`crate::engine`) drives it with datagrams, commands, messages
//! from other shards and the time, all passed in, and sends what it queues; tests drive it
//! the same way on a simulated network (`super::sim`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use rtc::dtls::DtlsConfig;
use rtc::peer::{DisconnectCause, PeerEvent, Received};
use rtc::rand::Rng;
use rtc::stun;

use super::budget::Budget;
use super::dispatch::Dispatch;
use super::media::{self, Tx};
use super::message::{Datagrams, Dest, Message};
use super::metrics;
use super::outbox::Outbox;
use super::pacing;
use super::pending::{self, PendingClients, PendingTable};
use super::ratelimit::ErrorLimiter;
use super::relay::Relay;
use super::routes::Routes;
use super::session::{Session, Side};
use super::tcp_route::TcpFrames;
use super::{hint, publish};
use crate::control::Role;
use crate::recorder::Recorder;
use crate::router::{Source, Stream};
use crate::sources::{FilePlayer, FileStream};
use crate::tcp::TcpStats;
use rtc::ice::DisconnectReason;

/// How often sessions' timers and reports are looked at. ICE and DTLS timers need no finer
/// grain; file pacing has its own, exact deadline.
const TICK: Duration = Duration::from_millis(10);
/// Sender Reports go out about once a second per session (RFC 3550 §6.2 allows far less
/// often, but browsers sync audio and video faster with frequent ones).
pub(super) const REPORT_INTERVAL: Duration = Duration::from_secs(1);
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

/// What a shard is made with.
pub struct ShardConfig {
    /// Its number: 0 receives every datagram and holds every stream's source.
    pub id: usize,
    /// How many shards there are.
    pub shards: usize,
    /// The addresses our answers announce.
    pub candidates: Vec<SocketAddr>,
    /// Our passive ICE-TCP candidates (none with `--tcp off`).
    pub tcp_candidates: Vec<SocketAddr>,
    /// Our DTLS certificate and cookie secret (shared by every shard).
    pub dtls: Arc<DtlsConfig>,
    /// Send publishers congestion-control feedback (off only for measurements).
    pub congestion_feedback: bool,
    /// Writes published tracks to files (shard 0 only: publishers live there).
    pub recorder: Option<Recorder>,
    /// The file streams; every shard plays its own copy (the memory is shared).
    pub files: BTreeMap<String, FileStream>,
    /// Commands HTTP could not queue, counted by the handles (for the metrics).
    pub commands_refused: Arc<AtomicU64>,
    /// Where the outgoing datagrams go.
    pub outbox: Outbox,
    /// Pending sessions per client address, counted over every shard.
    pub pending_clients: PendingClients,
}

/// Why a shard could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A media file.
    #[error(transparent)]
    Media(#[from] crate::sources::file::FileError),
}

/// What the limits turned away, for the metrics.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LimitCounters {
    /// Rounds that stopped at their budget with work left.
    pub rounds_budget_exhausted: u64,
    /// Most datagrams handled in one round.
    pub round_datagrams_max: u64,
    /// Pending sessions that had no valid check in time.
    pub pending_expired: u64,
    /// Pending sessions ended to make room for newer ones.
    pub pending_evicted: u64,
    /// Offers refused because their client had too many pending sessions.
    pub pending_client_full: u64,
    /// Offers refused because the connected sessions were at their bound.
    pub sessions_full: u64,
}

/// What a shard counts about itself (`/metrics`, per shard).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ShardCounters {
    /// Datagrams read from the socket (shard 0, or the one shard).
    pub socket_received: u64,
    /// Bytes of those.
    pub socket_bytes: u64,
    /// Datagrams handled (received here, or handed over by shard 0).
    pub datagrams_received: u64,
    /// Bytes of those.
    pub bytes_received: u64,
    /// Datagrams handed to other shards (shard 0).
    pub datagrams_handed_over: u64,
    /// Media packets handed to other shards (shard 0), counted once per packet.
    pub media_handed_over: u64,
    /// Messages another shard's queue refused (it was full).
    pub messages_refused: u64,
    /// Wall time spent working, not waiting (the shell reports it).
    pub busy: Duration,
}

/// One media thread's state.
pub struct Shard {
    pub(super) id: usize,
    pub(super) shards: usize,
    pub(super) net: Outbox,
    pub(super) candidates: Vec<SocketAddr>,
    pub(super) tcp_candidates: Vec<SocketAddr>,
    /// Shard 0: what ICE-TCP counted (the shell owns the connections), and how many are
    /// open and trusted.
    pub(super) tcp_stats: (TcpStats, (usize, usize)),
    pub(super) dtls: Arc<DtlsConfig>,
    pub(super) rng: Rng,
    pub(super) streams: BTreeMap<String, Stream>,
    pub(super) sessions: HashMap<u64, Session>,
    pub(super) next_key: u64,
    /// Which session a datagram goes to (by ufrag, by validated address).
    pub(super) routes: Routes,
    /// Shard 0: which other shard a datagram none of ours claims goes to.
    pub(super) dispatch: Dispatch,
    /// Datagrams for other shards, gathered over a round (by shard number).
    pub(super) forward: Vec<Datagrams>,
    /// Messages for other shards, in order.
    pub(super) outgoing: VecDeque<(Dest, Message)>,
    /// Sessions without a valid ICE check yet: short-lived, capped apart.
    pub(super) pending: PendingTable,
    /// This shard's share of [`MAX_SESSIONS`].
    pub(super) max_sessions: usize,
    /// Sessions removed since the allocator last gave free memory back.
    pub(super) removed_since_trim: usize,
    /// Work per round.
    pub(super) budget: Budget,
    /// STUN error responses per source and in total.
    pub(super) errors: ErrorLimiter,
    pub(super) limits: LimitCounters,
    pub(super) counters: ShardCounters,
    /// Commands HTTP could not queue (the queue was full), counted by the handles.
    pub(super) commands_refused: Arc<AtomicU64>,
    pub(super) by_id: HashMap<String, u64>,
    /// Sessions to remove after this round, with why.
    pub(super) ended: Vec<(u64, String)>,
    /// The send buffer every outgoing packet is built and protected in.
    pub(super) out: Vec<u8>,
    pub(super) next_tick: Instant,
    pub(super) dropped_unknown: u64,
    /// Counters of ended sessions, and publisher RTP that matched no m-line.
    pub(super) totals: metrics::Counters,
    pub(super) unknown_ssrc: u64,
    /// Media packets that relays brought from their origins (issue 11).
    pub(super) relay_packets: u64,
    /// Viewers whose pacer holds packets (issue 12), and when the first of those may leave.
    pub(super) paced: Vec<u64>,
    pub(super) next_pace: Option<Instant>,
    /// Send publishers congestion-control feedback (off only for measurements).
    pub(super) congestion_feedback: bool,
    /// Scratch lists reused every round: NACKed sequence numbers, session keys.
    pub(super) nacks: Vec<u16>,
    pub(super) keys: Vec<u64>,
    /// Writes published tracks to files (`--record-dir`), on its own thread.
    pub(super) recorder: Option<Recorder>,
    /// Shard 0: the streams pulled from other nodes (issue 11), by name.
    pub(super) relays: HashMap<String, Relay>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("id", &self.id)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// A shard with its file streams started at `now`.
    pub fn new(config: ShardConfig, now: Instant, mut rng: Rng) -> Result<Self, ShardError> {
        let mut streams = BTreeMap::new();
        for (name, file) in config.files {
            let player = FilePlayer::start(file, now, &mut rng)?;
            streams.insert(name, Stream::file(player, now));
        }
        let shards = config.shards.max(1);
        Ok(Shard {
            id: config.id,
            shards,
            net: config.outbox,
            candidates: config.candidates,
            tcp_candidates: config.tcp_candidates,
            tcp_stats: Default::default(),
            dtls: config.dtls,
            rng,
            streams,
            sessions: HashMap::new(),
            next_key: 1,
            routes: Routes::default(),
            dispatch: Dispatch::default(),
            forward: (0..shards).map(|_| Datagrams::default()).collect(),
            outgoing: VecDeque::new(),
            // The bounds are the server's: each of n shards holds an n-th of the totals
            // (viewers are spread evenly, so a flood fills them all before one refuses), and
            // the count per client is one for all.
            pending: PendingTable::new(
                pending::PENDING_TIMEOUT,
                (pending::MAX_PENDING / shards).max(1),
                pending::PER_CLIENT,
                config.pending_clients,
            ),
            max_sessions: (MAX_SESSIONS / shards).max(1),
            removed_since_trim: 0,
            budget: Budget::default(),
            errors: ErrorLimiter::standard(now),
            limits: LimitCounters::default(),
            counters: ShardCounters::default(),
            commands_refused: config.commands_refused,
            by_id: HashMap::new(),
            ended: Vec::new(),
            out: Vec::with_capacity(2048),
            next_tick: now,
            dropped_unknown: 0,
            totals: metrics::Counters::default(),
            unknown_ssrc: 0,
            relay_packets: 0,
            paced: Vec::new(),
            next_pace: None,
            congestion_feedback: config.congestion_feedback,
            nacks: Vec::new(),
            keys: Vec::new(),
            recorder: config.recorder,
            relays: HashMap::new(),
        })
    }

    /// Its number.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Sessions it owns (pending ones included).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// When [`Shard::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        let files = self.streams.values().filter_map(|s| match &s.source {
            Source::File(player) => Some(player.next_due()),
            Source::Live { .. } | Source::Mirror { .. } => None,
        });
        let next = files.fold(self.next_tick, Instant::min);
        self.next_pace.map_or(next, |p| p.min(next))
    }

    /// Starts a round of work: the budget of datagrams and commands is full again.
    pub fn start_round(&mut self) {
        self.budget.start_round();
    }

    /// Whether the last round stopped at its budget with work left (then the shell polls
    /// again without waiting).
    pub fn unfinished(&self) -> bool {
        self.budget.unfinished()
    }

    /// Whether the round may read another batch of `n` datagrams.
    pub fn may_receive(&mut self, n: usize) -> bool {
        self.budget.may_receive(n)
    }

    /// Records that `n` datagrams were read this round (`handled`: in all so far).
    pub fn spent_datagrams(&mut self, n: usize, handled: u64) {
        self.budget.spend_datagrams(n);
        self.limits.round_datagrams_max = self.limits.round_datagrams_max.max(handled);
    }

    /// Whether the round may take another command.
    pub fn may_take_command(&mut self) -> bool {
        self.budget.take_command()
    }

    /// The shell's measure of the time this shard spent working.
    pub fn add_busy(&mut self, busy: Duration) {
        self.counters.busy += busy;
    }

    /// Ends the round: counts a round cut short by its budget.
    pub fn end_round(&mut self) {
        self.limits.rounds_budget_exhausted += u64::from(self.budget.unfinished());
    }

    /// Hands everything queued to the sink; true if some could not go now (wait until the
    /// socket is writable and call again).
    pub fn flush(&mut self) -> bool {
        self.net.flush();
        self.net.has_pending()
    }

    /// Runs what is due at `now`: file packets, fan-out, sessions' timers and reports, and
    /// the removal of ended sessions.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.play_files(now);
        self.fan_out(now);
        if now >= self.next_tick {
            self.tick(now);
            self.trim_memory();
            self.next_tick = now + TICK;
        }
        self.remove_ended(now);
    }

    /// Receives `datagram`: shard 0 hands one no session of its own claims to the shard
    /// whose session does.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: SocketAddr,
        datagram: &mut [u8],
    ) {
        self.receive(now, from, local, datagram, false);
    }

    /// Receives one RFC 4571 frame of the ICE-TCP connection from `from` (shard 0), like a
    /// datagram; from now on what is sent to `from` goes back over that connection.
    pub fn handle_tcp_frame(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: SocketAddr,
        frame: &mut [u8],
    ) {
        self.net.learn_tcp(from);
        self.receive(now, from, local, frame, true);
    }

    /// Shard 0's shell: what ICE-TCP counted, for the metrics.
    pub fn set_tcp_stats(&mut self, stats: TcpStats, open: (usize, usize)) {
        self.tcp_stats = (stats, open);
    }

    /// Shard 0's shell: the frames set aside for ICE-TCP peers (by this shard and the
    /// others), to write into the connections and clear.
    pub fn tcp_frames_mut(&mut self) -> &mut TcpFrames {
        self.net.tcp_frames_mut()
    }

    fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: SocketAddr,
        datagram: &mut [u8],
        tcp: bool,
    ) {
        self.counters.socket_received += 1;
        self.counters.socket_bytes += datagram.len() as u64;
        if self.shards > 1
            && self.id == 0
            && let Some(shard) = self.elsewhere(from, stun_ufrag(datagram))
            && let Some(batch) = self.forward.get_mut(shard)
        {
            batch.push(now, from, local, datagram, tcp);
            return;
        }
        self.handle_owned_datagram(now, from, local, datagram);
    }

    /// Shard 0: the other shard a datagram goes to, if it is not one of ours. A check's
    /// ufrag decides first (a client reconnecting from the same port to a new session, on
    /// whichever shard, must reach that session), then the address.
    fn elsewhere(&mut self, from: SocketAddr, ufrag: Option<&[u8]>) -> Option<usize> {
        if let Some(ufrag) = ufrag {
            if self.routes.by_ufrag(ufrag).is_some() {
                return None;
            }
            if let Some(shard) = self.dispatch.by_ufrag(from, ufrag) {
                return (shard != self.id).then_some(shard);
            }
        }
        if self.routes.by_addr(from).is_some() {
            return None;
        }
        self.dispatch.by_addr(from).filter(|&s| s != self.id)
    }

    /// Sends every stream's new packets to its viewers (see [`media::flush`]); call after a
    /// batch of datagrams.
    pub fn fan_out(&mut self, now: Instant) {
        let mut tx = Tx {
            now,
            out: &mut self.out,
            net: &mut self.net,
        };
        for stream in self.streams.values_mut() {
            media::flush(stream, &mut self.sessions, &mut tx, &mut self.paced);
        }
        self.pace(now);
    }

    /// Sends what the viewers' pacers let leave now, and notes when the next packet may.
    pub(super) fn pace(&mut self, now: Instant) {
        if self.paced.is_empty() {
            self.next_pace = None;
            return;
        }
        self.paced.sort_unstable();
        self.paced.dedup();
        let mut tx = Tx {
            now,
            out: &mut self.out,
            net: &mut self.net,
        };
        let (sessions, streams) = (&mut self.sessions, &self.streams);
        let mut next: Option<Instant> = None;
        self.paced.retain(|key| {
            let Some(session) = sessions.get_mut(key) else {
                return false;
            };
            let Some(stream) = streams.get(&session.stream) else {
                return false;
            };
            if !pacing::drain_pacer(session, stream, &mut tx) {
                return false;
            }
            if let Some(at) = session.pacer_timeout(now) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            true
        });
        self.next_pace = next;
    }

    /// Routes a datagram to one of this shard's sessions: a STUN check by its USERNAME's
    /// ufrag (a reused address may belong to a new session), anything else by the address
    /// ICE validated.
    pub(super) fn handle_owned_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: SocketAddr,
        datagram: &mut [u8],
    ) {
        self.counters.datagrams_received += 1;
        self.counters.bytes_received += datagram.len() as u64;
        let key = self.routes.route(from, stun_ufrag(datagram));
        let Some(key) = key else {
            self.dropped_unknown += 1;
            return;
        };
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let viewer = session.viewer().is_some();
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
                if session.pacer_timeout(now).is_some() {
                    self.paced.push(key);
                }
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
    pub(super) fn after_io(&mut self, now: Instant, key: u64) {
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
        // Addresses routed here or no longer, for shard 0 (rare: no allocation otherwise).
        let mut routed = Vec::new();
        while let Some(event) = session.peer.poll_event() {
            match event {
                PeerEvent::AddressValidated { remote } => {
                    // A valid check: no longer a cheap pending session.
                    self.pending.remove(key);
                    if let Some(evicted) = self.routes.add_addr(key, remote) {
                        routed.push((evicted, false));
                    }
                    routed.push((remote, true));
                }
                PeerEvent::AddressRemoved { remote } => {
                    self.routes.remove_addr(key, remote);
                    routed.push((remote, false));
                }
                PeerEvent::IceConnected { remote, after } => {
                    session.remote = Some(remote);
                    session.ice_time = Some(after);
                    tracing::debug!(session = %session.id, %remote, ice_ms = after.as_millis(), "ICE connected");
                }
                PeerEvent::Connected { profile, after } => {
                    session.dtls_time = Some(after);
                    let (dtls, group) = session.peer.dtls_version();
                    self.totals.dtls.count(dtls, group);
                    tracing::info!(
                        session = %session.id, stream = %session.stream, role = ?session.role(),
                        remote = ?session.peer.path().map(|p| p.0), dtls_ms = after.as_millis(), srtp = ?profile,
                        dtls = %dtls.as_str(), group = %group.map_or("none", rtc::dtls::group_name),
                        transport = self.net.transport(session.peer.path().map(|p| p.0)),
                        "connected"
                    );
                    session.next_report = Some(now);
                    if session.viewer().is_some()
                        && let Some(stream) = self.streams.get(&session.stream)
                    {
                        let mut tx = Tx {
                            now,
                            out: &mut self.out,
                            net: &mut self.net,
                        };
                        let missing = media::start_viewer(session, stream, &mut tx);
                        if session.pacer_timeout(now).is_some() {
                            self.paced.push(key);
                        }
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
                    if let Side::Publisher(p) = &mut session.side =>
                {
                    tracing::info!(session = %session.id, stream = %session.stream, grace_s = PUBLISHER_GRACE.as_secs(), "publisher closed without DELETE; its stream waits for it");
                    p.closed_at = Some(now);
                }
                // A relay's session that ended leaves its stream waiting the same grace
                // period, while the relays' keeper pulls the stream again.
                PeerEvent::Disconnected(cause)
                    if let Side::Publisher(p) = &mut session.side
                        && self
                            .relays
                            .get(&session.stream)
                            .is_some_and(|r| r.feeds(key)) =>
                {
                    tracing::info!(session = %session.id, stream = %session.stream, cause = %describe(&cause), "relay session ended; its stream waits for a new one");
                    p.closed_at.get_or_insert(now);
                }
                PeerEvent::Disconnected(cause) => self.ended.push((key, describe(&cause))),
            }
        }
        session.timeout = session.peer.poll_timeout();
        for (addr, yes) in routed {
            self.address_routed(addr, yes);
        }
        if let Some(name) = ask_keyframe {
            self.request_keyframe(now, &name);
        }
    }

    fn play_files(&mut self, now: Instant) {
        for stream in self.streams.values_mut() {
            media::play_file(stream, now);
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
            let Some(viewer) = session.viewer() else {
                publishers.push(*key);
                continue;
            };
            if viewer.outputs.iter().any(|o| o.replay.is_some()) {
                media::continue_replay(session, &self.streams, &mut tx);
                if session.pacer_timeout(now).is_some() {
                    self.paced.push(*key);
                }
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
                .and_then(|s| s.publisher()?.closed_at)
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
        self.simulcast_tick(now);
    }

    pub(super) fn remove_ended(&mut self, now: Instant) {
        for (key, reason) in std::mem::take(&mut self.ended) {
            let Some(session) = self.sessions.remove(&key) else {
                continue;
            };
            self.by_id.remove(&session.id);
            if self.id != 0 {
                let addrs = self.routes.addrs_of(key).to_vec();
                for addr in addrs {
                    self.address_routed(addr, false);
                }
                let ufrag = session.peer.local_credentials().ufrag.clone();
                self.ufrag_routed(&ufrag, false);
            }
            // O(this session's addresses), not a scan of every route.
            self.routes.remove_session(key);
            self.pending.remove(key);
            if let (Role::Publish, Some(recorder)) = (session.role(), &mut self.recorder) {
                recorder.end(key);
            }
            if session.role() == Role::Publish
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
                session = %session.id, stream = %session.stream, role = ?session.role(),
                remote = ?session.peer.path().map(|p| p.0), seconds = now.saturating_duration_since(session.created).as_secs(),
                reason = %reason, ice_ms = ?session.ice_time.map(|t| t.as_millis()),
                dtls_ms = ?session.dtls_time.map(|t| t.as_millis()), rtt_ms = ?session.viewer().and_then(|v| v.rtt).map(|t| t.as_millis()),
                loss_pct = u32::from(session.fraction_lost) * 100 / 256, nacks = session.nacks,
                lost_packets = session.lost_packets(), keyframe_requests = session.keyframe_requests,
                srtp_failed = stats.srtp_failed, transport = self.net.transport(session.peer.path().map(|p| p.0)),
                "session ended"
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
    pub(super) fn trim_memory(&mut self) {
        if self.removed_since_trim >= TRIM_AFTER && self.pending.len() < TRIM_AFTER {
            self.removed_since_trim = 0;
            crate::udp::release_free_memory();
        }
    }
}

/// The ufrag of a STUN check's USERNAME. RFC 7983: STUN starts with 0..=3; RTP, RTCP and
/// DTLS never parse as STUN.
fn stun_ufrag(datagram: &[u8]) -> Option<&[u8]> {
    datagram
        .first()
        .is_some_and(|b| *b < 4)
        .then(|| stun::username_ufrag(datagram))
        .flatten()
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
