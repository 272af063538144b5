//! What the HTTP side asks of the media thread, and what it answers.
//!
//! The media thread owns the socket, every peer and the router; HTTP never touches them.
//! Each request is a [`Command`] with a one-shot reply channel; sending it wakes the media
//! thread (see [`EngineHandle`]).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, TrySendError};

use serde::Serialize;
use tokio::sync::oneshot;

/// Identifies a WHIP or WHEP session (the last segment of its `Location`).
pub type SessionId = String;

/// Which side of a stream a session is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// WHIP: the peer sends media to us.
    Publish,
    /// WHEP: we send media to the peer.
    Play,
}

/// A request from HTTP to the media thread.
#[derive(Debug)]
pub enum Command {
    /// Start a session from an SDP offer.
    Create {
        role: Role,
        stream: String,
        offer: String,
        /// The HTTP client's address: pending sessions are capped per client.
        client: IpAddr,
        reply: oneshot::Sender<Result<Created, EngineError>>,
    },
    /// A trickle-ICE / ICE-restart PATCH (`application/trickle-ice-sdpfrag`).
    Patch {
        /// The kind and stream of the path it came on; a session of another kind or stream
        /// is not found (its id alone must not reach it).
        role: Role,
        stream: String,
        session: SessionId,
        if_match: Option<String>,
        fragment: String,
        reply: oneshot::Sender<Result<Patched, EngineError>>,
    },
    /// End a session.
    Delete {
        /// As for `Patch`: the path's kind and stream must be the session's.
        role: Role,
        stream: String,
        session: SessionId,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
    /// List the streams.
    Streams {
        reply: oneshot::Sender<Vec<StreamInfo>>,
    },
    /// The counters of the media thread it is sent to.
    Metrics {
        reply: oneshot::Sender<crate::sfu::MetricsPart>,
    },
    /// About the streams this node relays from another one (shard 0).
    Relay(RelayCommand),
}

/// What the relays' keeper (`crate::relay`) asks of shard 0, which holds every relay's
/// session: a WHEP client session toward the origin that feeds a local live stream like a
/// publisher (issue 11).
#[derive(Debug)]
pub enum RelayCommand {
    /// Make the WHEP offer to pull `stream` (`Ok(None)`: it is published or played here,
    /// nothing to relay).
    Offer {
        stream: String,
        reply: oneshot::Sender<Result<Option<String>, EngineError>>,
    },
    /// The origin answered the offer; `location` is its session's URL (for the DELETE).
    /// Replies with the URL of the relay session it replaces, if any.
    Answer {
        stream: String,
        answer: String,
        location: String,
        reply: oneshot::Sender<Result<Option<String>, EngineError>>,
    },
    /// The offer came to nothing (the origin refused, or could not be reached): forget it,
    /// and the relay if it has no session.
    Withdraw { stream: String },
    /// Forget the offer (the origin refused it) or close the relay, and end its stream if
    /// the relay feeds it; the origin session's URL, to DELETE it there.
    Close {
        stream: String,
        reply: oneshot::Sender<Option<String>>,
    },
    /// Every relay's state.
    List {
        reply: oneshot::Sender<Vec<RelayStatus>>,
    },
}

impl From<RelayCommand> for Command {
    fn from(cmd: RelayCommand) -> Self {
        Command::Relay(cmd)
    }
}

/// One relay's state, as shard 0 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatus {
    /// The stream.
    pub stream: String,
    /// The origin session's URL, once answered.
    pub location: Option<String>,
    /// Its session exists and has not closed (it may still be connecting).
    pub alive: bool,
    /// Its ICE and DTLS are up: media can flow.
    pub connected: bool,
    /// How long since media last came from the origin (or since it was answered).
    pub silent_for: std::time::Duration,
}

/// A session that was created.
#[derive(Debug, Clone)]
pub struct Created {
    /// Its id.
    pub session: SessionId,
    /// Our SDP answer, with all our candidates.
    pub answer: String,
    /// A strong entity tag for the ICE session (changes on ICE restart).
    pub etag: String,
}

/// What a PATCH did.
#[derive(Debug, Clone)]
pub enum Patched {
    /// Trickled candidates were taken (or ignored: an ICE-lite server needs none).
    Trickled,
    /// ICE restarted: our new credentials as an sdpfrag, and the new ETag.
    Restarted { fragment: String, etag: String },
}

/// One stream, as `GET /api/streams` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    /// The stream's name.
    pub name: String,
    /// `live` (published with WHIP), `file`, or `relay` (pulled from another node).
    pub kind: &'static str,
    /// Codec names, e.g. `["VP8", "opus"]`.
    pub codecs: Vec<String>,
    /// Current viewers.
    pub viewers: usize,
    /// Incoming bitrate over the last seconds, in bits per second.
    pub bitrate: u64,
    /// When it started, as seconds since the Unix epoch.
    pub since: u64,
    /// Simulcast: the video layers it receives, lowest first (empty without simulcast).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerInfo>,
    /// Its viewers with a bandwidth estimate or a layer choice (issue 12).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watchers: Vec<WatcherInfo>,
}

/// One viewer's estimate and layer, for `/api/streams`.
#[derive(Debug, Clone, Serialize)]
pub struct WatcherInfo {
    /// Its session id.
    pub session: String,
    /// Its bandwidth estimate, bit/s (from its transport-wide CC feedback or REMB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<u64>,
    /// The rid of the layer it is forwarded now (`None`: not simulcast, or paused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// The rid of the layer it switches to at that layer's next keyframe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switching_to: Option<String>,
    /// Video paused: not even the lowest layer fits its estimate.
    pub paused: bool,
}

/// One simulcast layer of a stream, for `/api/streams`.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Its rid (RFC 8851).
    pub rid: String,
    /// Width and height from its latest keyframe (0 until one came).
    pub width: u16,
    /// See `width`.
    pub height: u16,
    /// Its incoming bitrate, bits per second.
    pub bitrate: u64,
    /// Whether it is being received now.
    pub active: bool,
    /// Viewers on this shard forwarded this layer now.
    pub viewers: usize,
}

/// Why the media thread refused a request. Each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No file and no publisher by that name.
    #[error("no stream named {0:?}")]
    UnknownStream(String),
    /// Someone already publishes under that name.
    #[error("stream {0:?} is already being published")]
    StreamBusy(String),
    /// The SDP offer does not parse.
    #[error("malformed SDP offer: {0}")]
    BadOffer(String),
    /// A file is served under that name; publishing cannot replace it.
    #[error("stream {0:?} is a file served from --media-dir; publish under another name")]
    FileStream(String),
    /// The offer parses but we cannot answer it (no common codec, no BUNDLE, ...).
    #[error("cannot answer this offer: {0}")]
    Unanswerable(String),
    /// No such session.
    #[error("no session {0:?}")]
    UnknownSession(String),
    /// An ICE restart without `If-Match`.
    #[error("ICE restart needs If-Match with the session's ETag")]
    PreconditionRequired,
    /// `If-Match` named another ETag.
    #[error("If-Match does not match the session's ETag")]
    PreconditionFailed,
    /// The PATCH body is not a usable sdpfrag.
    #[error("bad sdpfrag: {0}")]
    BadFragment(String),
    /// Too many sessions.
    #[error("server is full")]
    Overloaded,
}

/// The HTTP side's handle on the media threads. Each thread's queue is bounded: when it is
/// behind, a request is refused at once ([`CallError::Busy`], a 503) instead of queueing
/// without end.
#[derive(Clone)]
pub struct EngineHandle {
    shards: Arc<[ShardHandle]>,
    refused: Arc<AtomicU64>,
}

/// The way to one media thread.
#[derive(Clone)]
pub struct ShardHandle {
    tx: mpsc::SyncSender<Command>,
    wake: Arc<dyn Fn() + Send + Sync>,
    /// Its sessions, as it last reported them (plus those sent to it since): new viewers go
    /// to the least loaded thread.
    load: Arc<AtomicUsize>,
}

impl ShardHandle {
    /// A thread reached through `tx`, woken by `wake`, reporting its load in `load`.
    pub fn new(
        tx: mpsc::SyncSender<Command>,
        wake: Arc<dyn Fn() + Send + Sync>,
        load: Arc<AtomicUsize>,
    ) -> Self {
        Self { tx, wake, load }
    }
}

impl fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EngineHandle({} threads)", self.shards.len())
    }
}

/// Why a command got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The media thread has stopped.
    #[error("the media thread is not running")]
    Gone,
    /// The media thread's queue is full (it is behind): try again shortly.
    #[error("the media thread is busy, try again")]
    Busy,
}

/// The media thread a session id names: its first byte, in hex (`Shard::add_session`).
pub fn shard_of(id: &str, shards: usize) -> usize {
    id.get(..2)
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .filter(|&k| k < shards)
        .unwrap_or(0)
}

impl EngineHandle {
    /// A handle on one media thread, sending on `tx` and calling `wake` after each command
    /// so the thread, which may be blocked in poll, looks at its queue.
    #[cfg(test)]
    pub fn new(tx: mpsc::SyncSender<Command>, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self::with_shards(vec![ShardHandle::new(tx, wake, Arc::default())])
    }

    /// A handle on several media threads; the first is shard 0 (publishers, the socket).
    pub fn with_shards(shards: Vec<ShardHandle>) -> Self {
        Self {
            shards: shards.into(),
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts commands refused for a full queue in `refused` (which the metrics read).
    pub fn counting_refusals(mut self, refused: Arc<AtomicU64>) -> Self {
        self.refused = refused;
        self
    }

    /// Which thread a command goes to: publishers to shard 0 (it has every source), a new
    /// viewer to the least loaded thread, anything about a session to the one its id names.
    fn shard_for(&self, cmd: &Command) -> usize {
        let n = self.shards.len();
        match cmd {
            Command::Create {
                role: Role::Play, ..
            } if n > 1 => {
                // Shard 0 also reads every datagram and carries the publishers: it takes
                // two viewers for every three another thread takes.
                let weight = |k: usize, load: usize| if k == 0 { load * 3 } else { load * 2 };
                let loads = self.shards.iter().map(|s| s.load.load(Ordering::Relaxed));
                let best = loads
                    .enumerate()
                    .min_by_key(|&(k, load)| (weight(k, load), k))
                    .map_or(0, |(k, _)| k);
                if let Some(s) = self.shards.get(best) {
                    // Counted now, so a burst of joins spreads before the thread reports.
                    s.load.fetch_add(1, Ordering::Relaxed);
                }
                best
            }
            Command::Patch { session, .. } | Command::Delete { session, .. } => {
                shard_of(session, n)
            }
            _ => 0,
        }
    }

    /// Sends the command `make` builds around a reply channel and waits for the reply.
    pub async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CallError> {
        let (reply, rx) = oneshot::channel();
        let cmd = make(reply);
        let k = self.shard_for(&cmd);
        self.send_to(k, cmd)?;
        rx.await.map_err(|_| CallError::Gone)
    }

    /// Sends a command that needs no reply to the thread it goes to.
    pub fn send(&self, cmd: Command) -> Result<(), CallError> {
        let k = self.shard_for(&cmd);
        self.send_to(k, cmd)
    }

    fn send_to(&self, k: usize, cmd: Command) -> Result<(), CallError> {
        let Some(shard) = self.shards.get(k) else {
            return Err(CallError::Gone);
        };
        match shard.tx.try_send(cmd) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                // It is behind, not asleep; still, make sure it looks at its queue.
                (shard.wake)();
                return Err(CallError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => return Err(CallError::Gone),
        }
        (shard.wake)();
        Ok(())
    }

    /// Asks every thread and waits for all the answers, in thread order.
    async fn gather<T>(
        &self,
        make: impl Fn(oneshot::Sender<T>) -> Command,
    ) -> Result<Vec<T>, CallError> {
        let mut waiting = Vec::with_capacity(self.shards.len());
        for k in 0..self.shards.len() {
            let (reply, rx) = oneshot::channel();
            self.send_to(k, make(reply))?;
            waiting.push(rx);
        }
        let mut out = Vec::with_capacity(waiting.len());
        for rx in waiting {
            out.push(rx.await.map_err(|_| CallError::Gone)?);
        }
        Ok(out)
    }

    /// Every stream, with its viewers on every thread.
    pub async fn streams(&self) -> Result<Vec<StreamInfo>, CallError> {
        let lists = self.gather(|reply| Command::Streams { reply }).await?;
        Ok(merge_streams(lists))
    }

    /// The counters of every thread, as Prometheus text.
    pub async fn metrics(&self) -> Result<String, CallError> {
        let parts = self.gather(|reply| Command::Metrics { reply }).await?;
        Ok(crate::sfu::render_metrics(&parts))
    }
}

/// One list from every thread's: shard 0's streams (it has every source) in its order, with
/// the viewers of each summed over the threads.
fn merge_streams(lists: Vec<Vec<StreamInfo>>) -> Vec<StreamInfo> {
    let mut lists = lists.into_iter();
    let mut merged = lists.next().unwrap_or_default();
    for list in lists {
        for info in list {
            match merged.iter_mut().find(|m| m.name == info.name) {
                Some(m) => {
                    m.viewers += info.viewers;
                    m.watchers.extend(info.watchers);
                    for other in &info.layers {
                        if let Some(l) = m.layers.iter_mut().find(|l| l.rid == other.rid) {
                            l.viewers += other.viewers;
                        }
                    }
                }
                None => merged.push(info),
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_names_its_thread() {
        assert_eq!(shard_of("01abcdef", 4), 1);
        assert_eq!(shard_of("03abcdef", 4), 3);
        // Out of range, not hex, too short: shard 0, which answers 404.
        assert_eq!(shard_of("07abcdef", 4), 0);
        assert_eq!(shard_of("zzabcdef", 4), 0);
        assert_eq!(shard_of("1", 4), 0);
    }

    #[test]
    fn stream_lists_sum_viewers_over_threads() {
        let info = |name: &str, viewers| StreamInfo {
            name: name.into(),
            kind: "live",
            codecs: vec![],
            viewers,
            bitrate: 0,
            since: 0,
            layers: Vec::new(),
            watchers: Vec::new(),
        };
        let merged = merge_streams(vec![
            vec![info("a", 1), info("b", 0)],
            vec![info("a", 2), info("c", 5)],
        ]);
        let got: Vec<_> = merged
            .iter()
            .map(|i| (i.name.as_str(), i.viewers))
            .collect();
        assert_eq!(got, [("a", 3), ("b", 0), ("c", 5)]);
    }
}
