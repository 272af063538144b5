//! The server's ICE-lite agent (RFC 8445 §2.5, responder side of §7.3).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::responder::{Reply, Responder};
use super::{CONSENT_TIMEOUT, Credentials, DisconnectReason, IceError, IceEvent};
use crate::Transmit;
use crate::rand::Rng;
use crate::stun::{self, Class, ErrorCode, Message, Method};

/// How long after creation the peer has to nominate a pair before the agent gives up.
pub const NOMINATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A nominated pair that has had no valid check for this long may be replaced by another
/// nominated pair that has (three of RFC 7675's 5-second consent intervals).
pub const PAIR_STALE_AFTER: Duration = Duration::from_secs(15);

/// Most address pairs remembered per agent. When a new one needs room, the pairs stale for
/// [`PAIR_STALE_AFTER`] go first, then the least recently checked; the selected pair stays.
pub const MAX_PAIRS: usize = 16;

/// An ICE-lite agent: always controlled (RFC 8445 §6.1.1), never sends a check.
///
/// Accepts a Binding request only with USERNAME `ours:theirs` (when the remote ufrag is
/// known; otherwise `ours:anything`, and learns it), a MESSAGE-INTEGRITY (or -SHA256) under
/// our password and a valid FINGERPRINT, and answers it with XOR-MAPPED-ADDRESS, the same
/// kind of integrity and FINGERPRINT. Every accepted check refreshes its pair; a check with
/// USE-CANDIDATE nominates it.
///
/// **Selection**: the nominated pair with the highest PRIORITY among those checked within
/// [`PAIR_STALE_AFTER`] is selected, and the selection only moves when a better pair is
/// nominated, a pair of equal PRIORITY is nominated later than the selected one was, or the
/// selected one goes quiet. This works for regular nomination (one USE-CANDIDATE),
/// aggressive nomination (USE-CANDIDATE on every check, RFC 5245 §8.1.1.2: "highest
/// priority nominated pair"; the time a pair was *first* nominated does not move, so two
/// equal pairs do not flap), for a browser that renominates after a network change (its old
/// pair goes quiet), and for a NAT rebinding: the peer's checks arrive from a new address
/// with the same PRIORITY, and the newly nominated pair wins at once rather than after the
/// old one has been quiet for [`PAIR_STALE_AFTER`].
///
/// **Bounds**: at most [`MAX_PAIRS`] pairs; each forgotten one is reported as
/// [`IceEvent::AddressRemoved`] so the I/O layer can forget its route too.
///
/// **Consent** (RFC 7675): a lite agent sends no checks, so consent is judged by the peer's
/// checks: none accepted from the selected pair for [`CONSENT_TIMEOUT`] → `Disconnected`.
#[derive(Debug)]
pub struct IceLite {
    responder: Responder,
    remote_ufrag: Option<Vec<u8>>,
    pairs: Vec<Pair>,
    selected: Option<(SocketAddr, SocketAddr)>,
    state: State,
    created: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<IceEvent>,
}

#[derive(Debug)]
struct Pair {
    remote: SocketAddr,
    local: SocketAddr,
    /// The PRIORITY of the peer's last check on this pair (RFC 8445 §7.1.1).
    priority: u32,
    /// When a check first nominated this pair (again after it had gone stale).
    nominated: Option<Instant>,
    last_check: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Connected,
    Disconnected,
}

impl IceLite {
    /// A new agent with fresh credentials for our SDP. `remote` is the peer's, from its SDP,
    /// when known; a lite agent only uses the ufrag (it signs its responses with its own
    /// password and never sends requests).
    pub fn new(now: Instant, rng: &mut Rng, remote: Option<&Credentials>) -> Self {
        Self::with_credentials(now, Credentials::random(rng), remote)
    }

    /// A new agent with given local credentials.
    pub fn with_credentials(
        now: Instant,
        local: Credentials,
        remote: Option<&Credentials>,
    ) -> Self {
        Self {
            responder: Responder::new(local),
            remote_ufrag: remote.map(|r| r.ufrag.as_bytes().to_vec()),
            pairs: Vec::new(),
            selected: None,
            state: State::Waiting,
            created: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our credentials, for `a=ice-ufrag` / `a=ice-pwd`.
    pub fn local_credentials(&self) -> &Credentials {
        self.responder.credentials()
    }

    /// The peer's ufrag, from its SDP or learned from its first valid check.
    pub fn remote_ufrag(&self) -> Option<&[u8]> {
        self.remote_ufrag.as_deref()
    }

    /// The selected pair as `(remote, local)`.
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.selected
    }

    /// Handles one datagram that arrived from `source` at our `local` address. `Err` says
    /// why it was not accepted (any error response is already queued). Never panics.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), IceError> {
        if self.state == State::Disconnected {
            return Err(IceError::Closed);
        }
        let msg = stun::parse(bytes)?;
        msg.verify_fingerprint()?;
        if msg.method() != Method::BINDING {
            return Err(IceError::NotBinding);
        }
        match msg.class() {
            Class::Request => self.handle_request(now, &msg, source, local),
            // RFC 8445 §11: Binding indications are keepalives; nothing to do.
            Class::Indication => Ok(()),
            // We never send requests, so no response can be ours.
            class => Err(IceError::UnexpectedClass(class)),
        }
    }

    /// RFC 8489 §6.3 order: authenticate (§9.1.3), then unknown attributes (§6.3.1), then
    /// the usage's checks (RFC 8445 §7.3.1).
    fn handle_request(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> Result<(), IceError> {
        let reply = Reply::to(msg, remote, local);
        let known = self.remote_ufrag.as_deref();
        let checked = self
            .responder
            .authenticate(msg, reply, known, &mut self.transmits)?;
        let kind = checked.kind;
        // RFC 8445 §7.3.1.1: a controlled agent that receives ICE-CONTROLLED switches to
        // controlling if its tie-breaker is >= the peer's, else answers 487. A lite agent can
        // never control (§6.1.1), so it acts as if its tie-breaker were 0, the least value:
        // the peer must take the controlling role, and is told so with 487.
        if msg.ice_controlled().is_some() {
            let (code, reason) = (ErrorCode::ROLE_CONFLICT, "Role Conflict");
            self.responder
                .error(reply, Some(kind), code, reason, &mut self.transmits);
            return Err(IceError::RoleConflict);
        }
        if self.remote_ufrag.is_none() {
            self.remote_ufrag = Some(checked.remote_ufrag.to_vec());
        }
        self.responder.success(reply, kind, &mut self.transmits);
        let priority = msg.priority().unwrap_or(0);
        self.on_valid_check(now, remote, local, priority, msg.use_candidate());
        Ok(())
    }

    fn on_valid_check(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: SocketAddr,
        priority: u32,
        nominate: bool,
    ) {
        let index = match self.pair_index((remote, local)) {
            Some(i) => i,
            None => {
                self.make_room(now);
                self.pairs.push(Pair {
                    remote,
                    local,
                    priority,
                    nominated: None,
                    last_check: now,
                });
                self.events
                    .push_back(IceEvent::AddressValidated { remote, local });
                self.pairs.len() - 1
            }
        };
        if let Some(pair) = self.pairs.get_mut(index) {
            let stale = now.saturating_duration_since(pair.last_check) >= PAIR_STALE_AFTER;
            if nominate && (pair.nominated.is_none() || stale) {
                pair.nominated = Some(now);
            }
            pair.priority = priority;
            pair.last_check = now;
        }
        self.reselect(now);
    }

    /// Before a new pair is added: forgets the stale pairs, or if none is, the least
    /// recently checked one — never the selected pair.
    fn make_room(&mut self, now: Instant) {
        if self.pairs.len() < MAX_PAIRS {
            return;
        }
        let selected = self.selected;
        let keep = |p: &Pair| {
            Some((p.remote, p.local)) == selected
                || now.saturating_duration_since(p.last_check) < PAIR_STALE_AFTER
        };
        let mut i = 0;
        while let Some(p) = self.pairs.get(i) {
            if keep(p) {
                i += 1;
            } else {
                let p = self.pairs.swap_remove(i);
                self.forget(p);
            }
        }
        if self.pairs.len() < MAX_PAIRS {
            return;
        }
        let oldest = (self.pairs.iter().enumerate())
            .filter(|(_, p)| Some((p.remote, p.local)) != selected)
            .min_by_key(|(_, p)| p.last_check)
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            let p = self.pairs.swap_remove(i);
            self.forget(p);
        }
    }

    fn forget(&mut self, p: Pair) {
        self.events.push_back(IceEvent::AddressRemoved {
            remote: p.remote,
            local: p.local,
        });
    }

    fn pair_index(&self, key: (SocketAddr, SocketAddr)) -> Option<usize> {
        self.pairs.iter().position(|p| (p.remote, p.local) == key)
    }

    fn reselect(&mut self, now: Instant) {
        let fresh = |p: &Pair| now.saturating_duration_since(p.last_check) < PAIR_STALE_AFTER;
        // Equal PRIORITY: the pair nominated last (a NAT rebinding's new address).
        let rank = |p: &Pair| (p.priority, p.nominated);
        let Some(best) = (self.pairs.iter())
            .filter(|p| p.nominated.is_some() && fresh(p))
            .max_by_key(|p| rank(p))
        else {
            return;
        };
        let current = self.selected.and_then(|k| self.pair_index(k));
        let switch = match current.and_then(|i| self.pairs.get(i)) {
            None => true,
            Some(c) => !fresh(c) || rank(best) > rank(c),
        };
        let key = (best.remote, best.local);
        if !switch || self.selected == Some(key) {
            return;
        }
        let (remote, local) = key;
        self.events.push_back(if self.selected.is_none() {
            IceEvent::Connected { remote, local }
        } else {
            IceEvent::SelectedPairChanged { remote, local }
        });
        self.selected = Some(key);
        self.state = State::Connected;
    }

    /// Advances timers: nomination deadline while waiting, consent once connected.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Waiting if now >= self.created + NOMINATION_TIMEOUT => {
                self.disconnect(DisconnectReason::NotNominated);
            }
            State::Connected => {
                self.reselect(now);
                if self.poll_timeout().is_some_and(|at| now >= at) {
                    self.disconnect(DisconnectReason::ConsentExpired);
                }
            }
            _ => {}
        }
    }

    fn disconnect(&mut self, reason: DisconnectReason) {
        self.state = State::Disconnected;
        self.transmits.clear();
        self.events.push_back(IceEvent::Disconnected { reason });
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting => Some(self.created + NOMINATION_TIMEOUT),
            State::Connected => {
                let pair = self.selected.and_then(|k| self.pair_index(k))?;
                Some(self.pairs.get(pair)?.last_check + CONSENT_TIMEOUT)
            }
            State::Disconnected => None,
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }
}
