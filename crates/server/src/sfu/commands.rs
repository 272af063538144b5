//! HTTP's commands: a session made from an offer (viewers here, publishers in
//! `publish.rs`), PATCH (trickle, ICE restart), DELETE, the stream list and the counters.

use std::net::IpAddr;
use std::time::{Instant, UNIX_EPOCH};

use rtc::ice::Credentials;
use rtc::sdp::Candidate;

use super::Shard;
use super::session::{OfferContext, OfferedTrack, Session, answer_offer};
use crate::control::{Command, Created, EngineError, Patched, Role, StreamInfo};
use crate::router::{Source, Stream};

impl Shard {
    /// A command from HTTP.
    pub fn handle_command(&mut self, now: Instant, cmd: Command) {
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
            Command::Relay(cmd) => self.handle_relay(now, cmd),
        }
    }

    /// The session `id`, if it is of `role` and on `stream` (the path it was addressed by).
    fn lookup(&self, role: Role, stream: &str, id: &str) -> Option<u64> {
        let key = self.by_id.get(id).copied()?;
        let s = self.sessions.get(&key)?;
        (s.role() == role && s.stream == stream).then_some(key)
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
        if self.sessions.len().saturating_sub(self.pending.len()) >= self.max_sessions {
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
                group: t.layer.as_ref().map(|l| l.group),
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
    pub(super) fn add_session(&mut self, session: &mut Session) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        session.timeout = session.peer.poll_timeout();
        // The id's first byte names this shard: HTTP sends its PATCH and DELETE here.
        session
            .id
            .replace_range(..2.min(session.id.len()), &format!("{:02x}", self.id % 256));
        let ufrag = session.peer.local_credentials().ufrag.clone();
        self.routes.set_ufrag(key, &ufrag);
        self.ufrag_routed(&ufrag, true);
        self.by_id.insert(session.id.clone(), key);
        tracing::info!(session = %session.id, stream = %session.stream, role = ?session.role(), "session created");
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
        let old = session.peer.local_credentials().ufrag.clone();
        if !session.peer.restart_ice(now, local.clone(), &remote) {
            return Err(EngineError::Unanswerable(
                "this session cannot restart ICE".into(),
            ));
        }
        self.routes.set_ufrag(key, &local.ufrag);
        self.ufrag_routed(&old, false);
        self.ufrag_routed(&local.ufrag, true);
        let Some(session) = self.sessions.get_mut(&key) else {
            return Err(unknown());
        };
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
            let relayed = match stream.source {
                Source::Live { publisher, .. } => {
                    self.relays.get(name).is_some_and(|r| r.feeds(publisher))
                }
                _ => false,
            };
            list.push(StreamInfo {
                name: name.clone(),
                kind: if relayed { "relay" } else { stream.kind() },
                codecs: codec_names(stream),
                viewers: stream.viewers.len(),
                bitrate: stream.bitrate(now),
                since: stream
                    .since
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                layers: super::simulcast::layer_info(stream, &self.sessions, now),
                watchers: super::simulcast::watchers(stream, &self.sessions),
            });
        }
        list
    }
}

/// The codecs of a stream's tracks, each once in track order: a simulcast stream's layers
/// share one codec and list it once (`["VP8", "opus"]`, not `["VP8", "VP8", "VP8", "opus"]`).
fn codec_names(stream: &Stream) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for track in &stream.tracks {
        let name = track.codec.name();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}
