//! The relays' keeper (issue 11, `--origin URL`): a WHEP request for a stream this node does
//! not have makes the node pull it from `URL/whep/{stream}` — one relay session per stream,
//! shared by every local viewer — and serve it like its own. Shard 0 holds the relay's
//! session (`crate::sfu::relay`); the keeper does the HTTP side: the WHEP POST of the
//! offer shard 0 makes, the DELETE when the relay closes, and once a second it looks at
//! every relay: one without viewers for [`RELAY_IDLE`] is closed, one that died or went
//! silent while viewers watch is pulled again (the new session takes the stream over; its
//! viewers do not notice).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cluster::{Directory, DirectoryDown};
use crate::control::{CallError, EngineError, EngineHandle, RelayCommand};
use crate::http::client::{self, HttpUrl, Request};

/// A relay without viewers this long is closed.
pub const RELAY_IDLE: Duration = Duration::from_secs(10);
/// A relay that brought no media this long while viewers watch is pulled again.
const RELAY_SILENT: Duration = Duration::from_secs(3);
/// How often the keeper looks at the relays.
const KEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How long the origin has to answer a WHEP request.
const ORIGIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new relay may take to connect (ICE and DTLS) before the viewer waiting for it
/// is told it failed.
const RELAY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a connecting relay is looked at.
const CONNECT_POLL: Duration = Duration::from_millis(20);
/// Most bytes of an SDP answer.
const MAX_ANSWER: usize = 64 * 1024;

/// Why a stream could not be pulled.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The origin has no such stream either.
    #[error("no stream named {0:?} here or at the origin")]
    NotAtOrigin(String),
    /// No node of the cluster holds it.
    #[error("no stream named {0:?} on any node of the cluster")]
    NotInCluster(String),
    /// The directory cannot say who holds it.
    #[error(transparent)]
    Directory(#[from] DirectoryDown),
    /// The origin could not be asked, or refused.
    #[error("the origin {origin}: {why}")]
    Origin { origin: String, why: String },
    /// Our own media thread refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Our own media thread did not answer.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Where streams are pulled from, and what is being pulled.
#[derive(Debug)]
pub struct Relays {
    engine: EngineHandle,
    /// `--origin`: where streams no node of the cluster holds are pulled from.
    origin: Option<HttpUrl>,
    /// `--cluster`: who holds which stream.
    directory: Option<Arc<Directory>>,
    /// The Bearer token the origin wants.
    token: Option<String>,
    /// One pull at a time per stream (later viewers wait for the first one's).
    pulling: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When each relay last had no viewers (gone once it has some again).
    idle_since: Mutex<HashMap<String, Instant>>,
    /// When each stream was last pulled again (at most every [`RELAY_SILENT`]).
    last_pull: Mutex<HashMap<String, Instant>>,
}

impl Relays {
    /// Pulls from the holder the `directory` names, else from `origin` (`http://HOST:PORT`),
    /// with `token` as the Bearer token.
    pub fn new(
        engine: EngineHandle,
        origin: Option<HttpUrl>,
        directory: Option<Arc<Directory>>,
        token: Option<String>,
    ) -> Self {
        Self {
            engine,
            origin,
            directory,
            token,
            pulling: Mutex::default(),
            idle_since: Mutex::default(),
            last_pull: Mutex::default(),
        }
    }

    /// Where `stream` is pulled from: the node the directory names, else the origin.
    async fn origin_for(&self, stream: &str) -> Result<HttpUrl, RelayError> {
        if let Some(directory) = &self.directory {
            match directory.holder(stream).await {
                // A claim of ours is a stream that ended here a moment ago.
                Ok(Some(node)) if node != directory.node() => {
                    return HttpUrl::parse(&node).map_err(|e| RelayError::Origin {
                        origin: node.clone(),
                        why: e.to_string(),
                    });
                }
                Ok(_) if self.origin.is_none() => {
                    return Err(RelayError::NotInCluster(stream.to_owned()));
                }
                Ok(_) => {}
                Err(e) if self.origin.is_none() => return Err(e.into()),
                // The static origin still answers for what the directory cannot.
                Err(_) => {}
            }
        }
        self.origin
            .clone()
            .ok_or_else(|| RelayError::NotAtOrigin(stream.to_owned()))
    }

    /// Makes sure `stream` is here: pulled from the origin unless it is published, played
    /// or relayed here already. Concurrent calls for one stream make one relay.
    pub async fn ensure(&self, stream: &str) -> Result<(), RelayError> {
        let lock = self.pull_lock(stream);
        let result = {
            let _pulling = lock.lock().await;
            self.ensure_locked(stream).await
        };
        self.drop_pull_lock(stream, lock);
        result
    }

    /// The lock that serialises pulls of `stream`.
    fn pull_lock(&self, stream: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut pulling = self.pulling.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(pulling.entry(stream.to_owned()).or_default())
    }

    /// Forgets `stream`'s lock once nobody else waits on it: requests for names that exist
    /// nowhere must not grow the table.
    fn drop_pull_lock(&self, stream: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut pulling = self.pulling.lock().unwrap_or_else(|e| e.into_inner());
        drop(lock);
        if pulling
            .get(stream)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            pulling.remove(stream);
        }
    }

    async fn ensure_locked(&self, stream: &str) -> Result<(), RelayError> {
        let exists = self
            .engine
            .streams()
            .await?
            .iter()
            .any(|s| s.name == stream);
        if exists {
            return Ok(());
        }
        self.pull(stream).await?;
        // The viewer is answered once media can flow, or told why it cannot.
        let deadline = Instant::now() + RELAY_CONNECT_TIMEOUT;
        loop {
            let relays = self
                .engine
                .call(|reply| RelayCommand::List { reply }.into())
                .await?;
            match relays.iter().find(|r| r.stream == stream) {
                Some(r) if r.connected => return Ok(()),
                Some(r) if r.alive && Instant::now() < deadline => {}
                // Published here meanwhile (the relay was dropped), or gone.
                None => return Ok(()),
                Some(r) => {
                    let origin = r.location.clone().unwrap_or_default();
                    self.forget(stream).await;
                    return Err(RelayError::Origin {
                        origin,
                        why: format!(
                            "answered, but its media did not connect within {} s (ICE and DTLS)",
                            RELAY_CONNECT_TIMEOUT.as_secs()
                        ),
                    });
                }
            }
            tokio::time::sleep(CONNECT_POLL).await;
        }
    }

    /// Opens a relay session for `stream` (a new one takes over from an old one).
    async fn pull(&self, stream: &str) -> Result<(), RelayError> {
        let offer = self
            .engine
            .call(|reply| {
                RelayCommand::Offer {
                    stream: stream.to_owned(),
                    reply,
                }
                .into()
            })
            .await??;
        let Some(offer) = offer else {
            return Ok(()); // published here meanwhile
        };
        let origin = match self.origin_for(stream).await {
            Ok(origin) => origin,
            Err(e) => {
                self.withdraw(stream).await;
                return Err(e);
            }
        };
        match self.post(&origin, stream, &offer).await {
            Ok((answer, location)) => {
                let answered = self
                    .engine
                    .call(|reply| {
                        RelayCommand::Answer {
                            stream: stream.to_owned(),
                            answer,
                            location: location.clone(),
                            reply,
                        }
                        .into()
                    })
                    .await?;
                match answered {
                    Ok(old) => {
                        if let Some(old) = old {
                            self.delete(&old).await;
                        }
                        Ok(())
                    }
                    Err(e) => {
                        self.delete(&location).await;
                        self.withdraw(stream).await;
                        Err(e.into())
                    }
                }
            }
            Err(e) => {
                self.withdraw(stream).await;
                Err(e)
            }
        }
    }

    /// The WHEP POST of `offer` to `origin`: the answer and the session's URL.
    async fn post(
        &self,
        origin: &HttpUrl,
        stream: &str,
        offer: &str,
    ) -> Result<(String, String), RelayError> {
        let fail = |why: String| RelayError::Origin {
            origin: origin.to_string(),
            why,
        };
        let path = format!(
            "{}/whep/{}",
            origin.path.trim_end_matches('/'),
            crate::http::encode_segment(stream)
        );
        let url = origin
            .with_path(&path)
            .ok_or_else(|| fail("the stream's URL is not usable".into()))?;
        let req = Request {
            method: "POST",
            body: Some(("application/sdp", offer.as_bytes())),
            bearer: self.token.as_deref(),
            max_body: MAX_ANSWER,
        };
        let reply = client::send(&url, req, ORIGIN_TIMEOUT)
            .await
            .map_err(|e| fail(e.to_string()))?;
        match reply.status {
            201 => {}
            404 => return Err(RelayError::NotAtOrigin(stream.to_owned())),
            status => {
                let text = String::from_utf8_lossy(&reply.body);
                let text: String = text.chars().take(200).collect();
                return Err(fail(format!("answered {status}: {}", text.trim())));
            }
        }
        let answer = String::from_utf8(reply.body)
            .map_err(|_| fail("the answer is not UTF-8 text".into()))?;
        let location = reply
            .location
            .and_then(|l| url.with_path(&l))
            .map(|u| u.to_string())
            .ok_or_else(|| fail("the 201 has no usable Location".into()))?;
        Ok((answer, location))
    }

    /// DELETEs the origin's session at `location` (a URL; best effort: the origin ends it
    /// anyway when our DTLS close_notify or consent stops).
    async fn delete(&self, location: &str) {
        let Ok(url) = HttpUrl::parse(location) else {
            return;
        };
        let req = Request {
            method: "DELETE",
            body: None,
            bearer: self.token.as_deref(),
            max_body: 4096,
        };
        if let Err(e) = client::send(&url, req, ORIGIN_TIMEOUT).await {
            tracing::debug!(%location, "relay: DELETE at the origin failed: {e}");
        }
    }

    /// Forgets the offer for `stream` (a relay already feeding it goes on).
    async fn withdraw(&self, stream: &str) {
        // A failed send only leaves the offer until the next one replaces it.
        let _ = self.engine.send(
            RelayCommand::Withdraw {
                stream: stream.to_owned(),
            }
            .into(),
        );
    }

    /// Drops shard 0's relay of `stream` (and its stream, if the relay feeds it); the
    /// origin's session is DELETEd.
    async fn forget(&self, stream: &str) {
        let closed = self
            .engine
            .call(|reply| {
                RelayCommand::Close {
                    stream: stream.to_owned(),
                    reply,
                }
                .into()
            })
            .await;
        if let Ok(Some(location)) = closed {
            self.delete(&location).await;
        }
    }

    /// Runs the keeper until the engine stops.
    pub async fn keep(self: Arc<Self>) {
        let mut interval = tokio::time::interval(KEEP_INTERVAL);
        loop {
            interval.tick().await;
            if let Err(CallError::Gone) = self.keep_once(Instant::now()).await {
                return;
            }
        }
    }

    /// One look at every relay.
    async fn keep_once(&self, now: Instant) -> Result<(), CallError> {
        let relays = self
            .engine
            .call(|reply| RelayCommand::List { reply }.into())
            .await?;
        if relays.is_empty() {
            return Ok(());
        }
        let viewers: HashMap<String, usize> = self
            .engine
            .streams()
            .await?
            .into_iter()
            .map(|s| (s.name, s.viewers))
            .collect();
        for relay in relays {
            let watched = viewers.get(&relay.stream).copied().unwrap_or(0) > 0;
            let idle_for = {
                let mut idle = self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
                if watched {
                    idle.remove(&relay.stream);
                    Duration::ZERO
                } else {
                    now.saturating_duration_since(*idle.entry(relay.stream.clone()).or_insert(now))
                }
            };
            if !watched && idle_for >= RELAY_IDLE {
                tracing::info!(stream = %relay.stream, "relay: no viewers for {}s, closing it", RELAY_IDLE.as_secs());
                self.idle_since
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&relay.stream);
                self.last_pull
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&relay.stream);
                self.forget(&relay.stream).await;
                continue;
            }
            let stale = !relay.alive || relay.silent_for >= RELAY_SILENT;
            if watched && stale && self.may_pull_again(&relay.stream, now) {
                tracing::info!(stream = %relay.stream, alive = relay.alive, silent_ms = relay.silent_for.as_millis(), "relay: pulling the stream again");
                let lock = self.pull_lock(&relay.stream);
                let pulled = {
                    let _pulling = lock.lock().await;
                    self.pull(&relay.stream).await
                };
                self.drop_pull_lock(&relay.stream, lock);
                if let Err(e) = pulled {
                    tracing::warn!(stream = %relay.stream, "relay: cannot pull the stream again: {e}");
                }
            }
        }
        Ok(())
    }

    fn may_pull_again(&self, stream: &str, now: Instant) -> bool {
        let mut last = self.last_pull.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(stream) {
            Some(&t) if now.saturating_duration_since(t) < RELAY_SILENT => false,
            _ => {
                last.insert(stream.to_owned(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pull locks of names nobody waits on any more are forgotten.
    #[test]
    fn pull_locks_do_not_pile_up() {
        let (tx, _rx) = std::sync::mpsc::sync_channel(1);
        let engine = EngineHandle::new(tx, Arc::new(|| {}));
        let relays = Relays::new(engine, None, None, None);
        let first = relays.pull_lock("a");
        let second = relays.pull_lock("a");
        relays.drop_pull_lock("a", first);
        assert_eq!(relays.pulling.lock().unwrap().len(), 1, "still waited on");
        relays.drop_pull_lock("a", second);
        for n in 0..100 {
            let name = format!("nowhere-{n}");
            let lock = relays.pull_lock(&name);
            relays.drop_pull_lock(&name, lock);
        }
        assert!(relays.pulling.lock().unwrap().is_empty());
    }
}
