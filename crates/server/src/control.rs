//! What the HTTP side asks of the media thread, and what it answers.
//!
//! The media thread owns the socket, every peer and the router; HTTP never touches them.
//! Each request is a [`Command`] with a one-shot reply channel; sending it wakes the media
//! thread (see [`EngineHandle`]).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The counters, as Prometheus text.
    Metrics { reply: oneshot::Sender<String> },
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
    /// `live` (published with WHIP) or `file`.
    pub kind: &'static str,
    /// Codec names, e.g. `["VP8", "opus"]`.
    pub codecs: Vec<String>,
    /// Current viewers.
    pub viewers: usize,
    /// Incoming bitrate over the last seconds, in bits per second.
    pub bitrate: u64,
    /// When it started, as seconds since the Unix epoch.
    pub since: u64,
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

/// The HTTP side's handle on the media thread. Its queue is bounded: when the media thread
/// is behind, a request is refused at once ([`CallError::Busy`], a 503) instead of queueing
/// without end.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::SyncSender<Command>,
    wake: Arc<dyn Fn() + Send + Sync>,
    refused: Arc<AtomicU64>,
}

impl fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EngineHandle")
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

impl EngineHandle {
    /// A handle sending on `tx` and calling `wake` after each command so the media thread,
    /// which may be blocked in poll, looks at its queue.
    pub fn new(tx: mpsc::SyncSender<Command>, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self {
            tx,
            wake,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts commands refused for a full queue in `refused` (which the metrics read).
    pub fn counting_refusals(mut self, refused: Arc<AtomicU64>) -> Self {
        self.refused = refused;
        self
    }

    /// Sends the command `make` builds around a reply channel and waits for the reply.
    pub async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CallError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(make(reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                // It is behind, not asleep; still, make sure it looks at its queue.
                (self.wake)();
                return Err(CallError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => return Err(CallError::Gone),
        }
        (self.wake)();
        rx.await.map_err(|_| CallError::Gone)
    }
}
