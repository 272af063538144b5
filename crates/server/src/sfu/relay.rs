//! Relays (issue 11): this node watches a stream of another node (its origin) over WHEP and
//! serves it like one of its own. Shard 0 holds the relay's session: our controlling ICE
//! agent and a DTLS client toward the origin (`rtc::peer::Peer::new_controlling`), whose
//! packets feed a live stream exactly as a WHIP publisher's do — same receive streams,
//! NACKs, receiver reports and aggregated keyframe requests upstream, same GOP cache and
//! history for the local viewers, same mirrors on the other shards. The HTTP exchange with
//! the origin is the relays' keeper's (`crate::relay`); this module only makes the offer,
//! takes the answer, reports and closes.
//!
//! A relay whose session ends (the origin closed it, ICE consent ran out) leaves its stream
//! waiting for a grace period, as a publisher that closed without DELETE does; the keeper
//! opens a new relay meanwhile, which takes the stream over without its viewers noticing
//! (the takeover path: sequence numbers, timestamps and picture ids continue).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rtc::ice::Credentials;
use rtc::peer::Peer;
use rtc::rand::Rng;
use rtc::sdp::{self, Direction, OfferConfig, SessionDescription};

use super::Shard;
use super::session::{Session, peer_setup, relay_session};
use crate::control::{EngineError, RelayCommand, RelayStatus};
use crate::router::Source;

/// One relayed stream.
#[derive(Debug)]
pub struct Relay {
    /// Our offer, until the origin answers it.
    offer: Option<(SessionDescription, Credentials)>,
    /// The session feeding the stream, once answered.
    key: Option<u64>,
    /// The origin session's URL.
    location: Option<String>,
    /// When the answer came (a relay that never delivers media is as silent as its age).
    answered: Option<Instant>,
}

impl Relay {
    /// Whether session `key` is this relay's.
    pub fn feeds(&self, key: u64) -> bool {
        self.key == Some(key)
    }
}

impl Shard {
    /// A relay command from the keeper.
    pub(super) fn handle_relay(&mut self, now: Instant, cmd: RelayCommand) {
        // Replies go to a task that may have given up; a closed channel is fine.
        match cmd {
            RelayCommand::Offer { stream, reply } => drop(reply.send(self.relay_offer(&stream))),
            RelayCommand::Answer {
                stream,
                answer,
                location,
                reply,
            } => drop(reply.send(self.relay_answer(now, &stream, &answer, location))),
            RelayCommand::Withdraw { stream } => {
                if let Some(relay) = self.relays.get_mut(&stream) {
                    relay.offer = None;
                    if relay.key.is_none() {
                        self.relays.remove(&stream);
                    }
                }
            }
            RelayCommand::Close { stream, reply } => {
                drop(reply.send(self.relay_close(now, &stream)))
            }
            RelayCommand::List { reply } => drop(reply.send(self.relay_list(now))),
        }
    }

    /// Whether session `key` is the relay feeding its stream.
    pub(super) fn is_relay(&self, key: u64, stream: &str) -> bool {
        self.relays.get(stream).is_some_and(|r| r.feeds(key))
    }

    fn relay_offer(&mut self, name: &str) -> Result<Option<String>, EngineError> {
        // Published here (or played from a file): nothing to pull. A stream fed by a
        // relay of ours is pulled again (its session died or went silent).
        if let Some(stream) = self.streams.get(name) {
            let ours = match stream.source {
                Source::Live { publisher, .. } => self.is_relay(publisher, name),
                Source::File(_) | Source::Mirror { .. } => false,
            };
            if !ours {
                return Ok(None);
            }
        }
        if self.candidates.is_empty() {
            return Err(EngineError::Unanswerable(
                "this node has no address to relay from".into(),
            ));
        }
        let credentials = Credentials::random(&mut self.rng);
        let fingerprint = self.dtls.certificate().fingerprint().0;
        let config = OfferConfig::new(
            &credentials.ufrag,
            &credentials.pwd,
            fingerprint,
            self.candidates.clone(),
            Direction::RecvOnly,
        );
        let offer = sdp::create_offer(&config, &mut self.rng);
        let text = offer.to_string();
        let relay = self.relays.entry(name.to_owned()).or_insert(Relay {
            offer: None,
            key: None,
            location: None,
            answered: None,
        });
        relay.offer = Some((offer, credentials));
        Ok(Some(text))
    }

    fn relay_answer(
        &mut self,
        now: Instant,
        name: &str,
        answer: &str,
        location: String,
    ) -> Result<Option<String>, EngineError> {
        let Some((offer, credentials)) = self.relays.get_mut(name).and_then(|r| r.offer.take())
        else {
            return Err(EngineError::UnknownStream(name.to_owned()));
        };
        let parsed =
            SessionDescription::parse(answer).map_err(|e| EngineError::BadOffer(e.to_string()))?;
        let negotiated = sdp::accept_answer(&offer, &parsed)
            .map_err(|e| EngineError::Unanswerable(e.to_string()))?;
        let remotes: Vec<SocketAddr> = negotiated
            .remote_candidates
            .iter()
            .filter(|c| c.is_udp())
            .filter_map(|c| c.socket_addr())
            .collect();
        let (local, remotes) = pick_path(&self.candidates, &remotes).ok_or_else(|| {
            EngineError::Unanswerable(
                "the origin's answer has no UDP candidate we can reach".into(),
            )
        })?;
        let setup = peer_setup(&negotiated)?;
        let remote = Credentials {
            ufrag: negotiated.remote_ice_ufrag.clone(),
            pwd: negotiated.remote_ice_pwd.clone(),
        };
        let peer = Peer::new_controlling(
            now,
            Arc::clone(&self.dtls),
            credentials,
            &remote,
            local,
            &remotes,
            &setup,
            Rng::system(),
        );
        let session = relay_session(
            now,
            name,
            peer,
            &negotiated,
            self.congestion_feedback,
            &mut self.rng,
        )?;
        let previous = match self.streams.get(name).map(|s| &s.source) {
            Some(Source::Live { publisher, .. }) if self.is_relay(*publisher, name) => {
                Some(*publisher)
            }
            Some(_) => return Err(EngineError::StreamBusy(name.to_owned())),
            None => None,
        };
        let key = self.install_publisher(now, name, session, previous, false);
        // Its answers come from the origin's candidates before ICE validates any of them.
        for addr in remotes {
            self.routes.add_addr(key, addr);
        }
        let mut replaced = None;
        if let Some(relay) = self.relays.get_mut(name) {
            relay.key = Some(key);
            replaced = relay.location.replace(location);
            relay.answered = Some(now);
        }
        tracing::info!(stream = %name, %local, "relay: pulling the stream from its origin");
        self.after_io(now, key);
        Ok(replaced)
    }

    /// Closes the relay of `name` (and its stream, if the relay feeds it); the origin
    /// session's URL.
    fn relay_close(&mut self, now: Instant, name: &str) -> Option<String> {
        let relay = self.relays.remove(name)?;
        if let Some(key) = relay.key
            && let Some(session) = self.sessions.get_mut(&key)
        {
            session.peer.close(now);
            self.ended.push((key, "relay closed: no viewers".into()));
            self.after_io(now, key);
        }
        relay.location
    }

    fn relay_list(&self, now: Instant) -> Vec<RelayStatus> {
        let mut list = Vec::with_capacity(self.relays.len());
        for (name, relay) in &self.relays {
            let session = relay.key.and_then(|k| self.sessions.get(&k));
            let publisher = session.and_then(Session::publisher);
            let alive = publisher.is_some_and(|p| p.closed_at.is_none())
                && !relay
                    .key
                    .is_some_and(|k| self.ended.iter().any(|(e, _)| *e == k));
            let last = publisher
                .and_then(|p| p.last_media)
                .or(relay.answered)
                .unwrap_or(now);
            list.push(RelayStatus {
                stream: name.clone(),
                location: relay.location.clone(),
                alive,
                connected: alive && session.is_some_and(|s| s.peer.is_connected()),
                silent_for: now.saturating_duration_since(last),
            });
        }
        list
    }
}

/// Our local address and the origin's candidates we check from it: loopback to loopback
/// (nodes on one host), else our last non-loopback candidate (the interface's own address;
/// `--public-ip` ones come first and may not be local) to every other remote of its family.
fn pick_path(ours: &[SocketAddr], remotes: &[SocketAddr]) -> Option<(SocketAddr, Vec<SocketAddr>)> {
    for loopback in [true, false] {
        let local = ours.iter().rev().find(|a| a.ip().is_loopback() == loopback);
        let Some(&local) = local else {
            continue;
        };
        let reachable: Vec<SocketAddr> = remotes
            .iter()
            .copied()
            .filter(|r| r.ip().is_loopback() == loopback && r.is_ipv4() == local.is_ipv4())
            .collect();
        if !reachable.is_empty() {
            return Some((local, reachable));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_path_pairs_loopback_with_loopback_and_lan_with_lan() {
        let ours = [
            a("203.0.113.9:8189"),
            a("10.0.0.5:8189"),
            a("127.0.0.1:8189"),
        ];
        assert_eq!(
            pick_path(&ours, &[a("10.0.0.7:9000"), a("127.0.0.1:9000")]),
            Some((a("127.0.0.1:8189"), vec![a("127.0.0.1:9000")]))
        );
        assert_eq!(
            pick_path(&ours, &[a("10.0.0.7:9000")]),
            Some((a("10.0.0.5:8189"), vec![a("10.0.0.7:9000")]))
        );
        assert_eq!(pick_path(&ours, &[a("[2001:db8::1]:9000")]), None);
        assert_eq!(pick_path(&[a("127.0.0.1:1")], &[a("10.0.0.7:9000")]), None);
    }
}
