//! A small full agent for the client side of ICE (RFC 8445): it starts controlling, checks
//! and nominates, and answers the peer's own checks, so the peer may be lite or full.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::responder::{Reply, Responder};
use super::{
    CONSENT_TIMEOUT, Credentials, DisconnectReason, IceError, IceEvent, MAX_PAIRS,
    PEER_REFLEXIVE_PREFERENCE, candidate_priority,
};
use crate::Transmit;
use crate::rand::Rng;
use crate::stun::{self, Class, ErrorCode, Key, Message, MessageBuilder, Method, TransactionId};

/// Timers of [`IceControlling`]; the defaults are the RFCs'.
#[derive(Debug, Clone)]
pub struct ControllingConfig {
    /// Initial retransmission timeout, doubled after each transmission (RFC 8489 §6.2.1:
    /// 500 ms).
    pub rto: Duration,
    /// Transmissions per check, Rc (RFC 8489 §6.2.1: 7).
    pub max_transmits: u32,
    /// After the last transmission, wait `last_wait × rto` before the check fails, Rm
    /// (RFC 8489 §6.2.1: 16).
    pub last_wait: u32,
    /// Pacing between the first transmissions of new checks, Ta (RFC 8445 §14.2: 50 ms).
    pub pacing: Duration,
    /// Mean interval of consent checks, randomized to 0.8–1.2 × this (RFC 7675 §5.1: 5 s).
    pub consent_interval: Duration,
    /// Consent is lost without a successful check for this long (RFC 7675 §5.1: 30 s).
    pub consent_timeout: Duration,
}

impl Default for ControllingConfig {
    fn default() -> Self {
        Self {
            rto: Duration::from_millis(500),
            max_transmits: 7,
            last_wait: 16,
            pacing: Duration::from_millis(50),
            consent_interval: Duration::from_secs(5),
            consent_timeout: CONSENT_TIMEOUT,
        }
    }
}

/// A controlling ICE agent with one local address and a list of remote candidates.
///
/// Checks every pair (one new check per `pacing`, each retransmitted per RFC 8489 §6.2.1),
/// then uses **regular nomination** (RFC 8445 §8.1.1; aggressive nomination is deprecated):
/// the first pair whose check succeeds is checked again with USE-CANDIDATE, and when that
/// succeeds the pair is selected (`Connected`). Consent checks follow every 4–6 s on the
/// selected pair, each sent once (RFC 7675 §5.1); 30 s without a success → `Disconnected`.
///
/// **Answering** (RFC 8445 §7.3): a full peer checks too, and a full controlled peer
/// selects our nominated pair only once its own check on it has succeeded; after that it
/// sends consent checks of its own. So every Binding request authenticated with our
/// credentials is answered (the same responder as [`IceLite`](super::IceLite)'s, with its
/// 400/401/420 rules), a request from an address not in the list adds it as a
/// peer-reflexive candidate (§7.3.1.3) with a triggered check (§7.3.1.4), and answering
/// goes on after `Connected`. A lite peer sends no requests, so against one nothing changes.
///
/// **Roles** (§7.3.1.1, §7.2.5.1): a peer that also claims controlling is told 487 when our
/// tie-breaker is at least its own; otherwise we become controlled — our checks then carry
/// ICE-CONTROLLED and no USE-CANDIDATE, and the pair the peer nominates is selected once
/// our own check on it succeeds. A 487 answer to one of our checks switches the role too.
#[derive(Debug)]
pub struct IceControlling {
    config: ControllingConfig,
    rng: Rng,
    /// Our credentials; answers the peer's checks.
    responder: Responder,
    /// Boxed: an HMAC key pair is large, and with the responder's this agent would be twice
    /// the lite agent's size, which every server-side `Peer` would then pay for.
    remote_key: Box<Key>,
    /// The peer's ufrag, the `their-ufrag` half of the USERNAME its checks carry.
    remote_ufrag: Vec<u8>,
    /// `their-ufrag:our-ufrag` (RFC 8445 §7.2.2).
    username: Vec<u8>,
    tie_breaker: u64,
    role: Role,
    local: SocketAddr,
    pairs: Vec<Pair>,
    /// Pairs to check before the ordinary ones, oldest first (RFC 8445 §6.1.4.1).
    triggered: VecDeque<usize>,
    txns: Vec<Txn>,
    next_check: Instant,
    state: State,
    last_consent: Instant,
    next_consent: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<IceEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Controlling,
    Controlled,
}

#[derive(Debug)]
struct Pair {
    remote: SocketAddr,
    state: PairState,
    /// A check of the peer's on this pair carried USE-CANDIDATE while we were controlled.
    peer_nominated: bool,
    /// The peer's own check on this pair was answered.
    peer_checked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Checking,
    Nominating(usize),
    Connected(usize),
    Disconnected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Check,
    Nominate,
    Consent,
}

#[derive(Debug)]
struct Txn {
    id: TransactionId,
    pair: usize,
    kind: Kind,
    /// The role the request claimed (a 487 answer refers to it, RFC 8445 §7.2.5.1).
    role: Role,
    sends: u32,
    /// Next retransmission, or when the transaction fails.
    next: Instant,
    bytes: Vec<u8>,
}

impl IceControlling {
    /// An agent that will check `local` → each of `remotes` (only those of `local`'s address
    /// family) with the peer's `remote` credentials. It makes its own credentials and
    /// tie-breaker from `rng`.
    pub fn new(
        now: Instant,
        config: ControllingConfig,
        mut rng: Rng,
        remote: &Credentials,
        local: SocketAddr,
        remotes: &[SocketAddr],
    ) -> Self {
        let local_credentials = Credentials::random(&mut rng);
        Self::with_credentials(now, config, rng, local_credentials, remote, local, remotes)
    }

    /// As [`IceControlling::new`], with our credentials given (an offer already carries
    /// them when the agent is made from the answer).
    pub fn with_credentials(
        now: Instant,
        config: ControllingConfig,
        mut rng: Rng,
        local_credentials: Credentials,
        remote: &Credentials,
        local: SocketAddr,
        remotes: &[SocketAddr],
    ) -> Self {
        let username = format!("{}:{}", remote.ufrag, local_credentials.ufrag).into_bytes();
        let pairs: Vec<_> = (remotes.iter())
            .filter(|r| r.is_ipv4() == local.is_ipv4())
            .map(|&remote| Pair {
                remote,
                state: PairState::Waiting,
                peer_nominated: false,
                peer_checked: false,
            })
            .collect();
        let mut agent = Self {
            config,
            tie_breaker: rng.u64(),
            rng,
            responder: Responder::new(local_credentials),
            remote_key: Box::new(Key::new(remote.pwd.as_bytes())),
            remote_ufrag: remote.ufrag.as_bytes().to_vec(),
            username,
            role: Role::Controlling,
            local,
            pairs,
            triggered: VecDeque::new(),
            txns: Vec::new(),
            next_check: now,
            state: State::Checking,
            last_consent: now,
            next_consent: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        agent.fail_if_hopeless(now);
        agent
    }

    /// Our credentials, for the offer the peer sees.
    pub fn local_credentials(&self) -> &Credentials {
        self.responder.credentials()
    }

    /// Our ICE-CONTROLLING (or, after a role switch, ICE-CONTROLLED) tie-breaker.
    pub fn tie_breaker(&self) -> u64 {
        self.tie_breaker
    }

    /// False once a role conflict made us the controlled agent (RFC 8445 §7.3.1.1).
    pub fn is_controlling(&self) -> bool {
        self.role == Role::Controlling
    }

    /// The selected pair as `(remote, local)`.
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        match self.state {
            State::Connected(p) => Some((self.pairs.get(p)?.remote, self.local)),
            _ => None,
        }
    }

    /// Handles a datagram that arrived from `source` at our `local` address: the peer's
    /// checks and the responses to ours. `Err` says why it was not accepted (any error
    /// response is already queued). Never panics.
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
            Class::Success | Class::Error => self.handle_response(now, &msg, source, local),
        }
    }

    /// RFC 8445 §7.3: authenticate and answer (shared with the lite agent), after settling
    /// any role conflict; then learn from the check.
    fn handle_request(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> Result<(), IceError> {
        let reply = Reply::to(msg, remote, local);
        let known = Some(self.remote_ufrag.as_slice());
        let kind = self
            .responder
            .authenticate(msg, reply, known, &mut self.transmits)?
            .kind;
        if self.role_conflict(now, msg) {
            let (code, reason) = (ErrorCode::ROLE_CONFLICT, "Role Conflict");
            self.responder
                .error(reply, Some(kind), code, reason, &mut self.transmits);
            return Err(IceError::RoleConflict);
        }
        self.responder.success(reply, kind, &mut self.transmits);
        if local == self.local {
            self.on_valid_request(now, remote, msg.use_candidate());
        }
        Ok(())
    }

    /// RFC 8445 §7.3.1.1: true when the peer claims our role and keeps the worse claim, so
    /// the request is answered 487; switches our role when the peer's claim wins.
    fn role_conflict(&mut self, now: Instant, msg: &Message<'_>) -> bool {
        match self.role {
            // Both controlling: the larger tie-breaker keeps it (ours on a tie).
            Role::Controlling => match msg.ice_controlling() {
                Some(theirs) if self.tie_breaker >= theirs => true,
                Some(_) => {
                    self.switch_role(now, Role::Controlled);
                    false
                }
                None => false,
            },
            // Both controlled: the larger tie-breaker takes control (ours on a tie).
            Role::Controlled => match msg.ice_controlled() {
                Some(theirs) if self.tie_breaker < theirs => true,
                Some(_) => {
                    self.switch_role(now, Role::Controlling);
                    false
                }
                None => false,
            },
        }
    }

    /// A check of the peer's that we answered with success.
    fn on_valid_request(&mut self, now: Instant, remote: SocketAddr, use_candidate: bool) {
        // Once a pair is selected, the peer's checks are consent checks (RFC 7675): answering
        // them was all there was to do.
        if !matches!(self.state, State::Checking | State::Nominating(_)) {
            return;
        }
        let p = match self.pairs.iter().position(|p| p.remote == remote) {
            Some(p) => p,
            // RFC 8445 §7.3.1.3: a source address not in the list is a peer-reflexive
            // candidate (e.g. the peer's NAT mapping, which its answer could not know).
            // The list stays bounded: the peer has to know our password to get here, but
            // a NAT that keeps rebinding should not grow it without end.
            None if self.pairs.len() < MAX_PAIRS && remote.is_ipv4() == self.local.is_ipv4() => {
                self.pairs.push(Pair {
                    remote,
                    state: PairState::Waiting,
                    peer_nominated: false,
                    peer_checked: false,
                });
                self.pairs.len() - 1
            }
            None => return,
        };
        let role = self.role;
        let Some(pair) = self.pairs.get_mut(p) else {
            return;
        };
        if use_candidate && role == Role::Controlled {
            pair.peer_nominated = true;
        }
        if !pair.peer_checked {
            pair.peer_checked = true;
            if pair.state == PairState::Succeeded {
                self.report_valid(p);
            }
        }
        let Some(pair) = self.pairs.get_mut(p) else {
            return;
        };
        match pair.state {
            // RFC 8445 §7.3.1.4: a triggered check, ahead of the ordinary ones.
            PairState::Waiting | PairState::Failed => {
                pair.state = PairState::Waiting;
                self.trigger(p);
            }
            // Its retransmissions carry on; a second transaction would add nothing.
            PairState::InProgress => {}
            // §7.3.1.5: a controlled agent selects a nominated pair it has validated.
            PairState::Succeeded => self.select_if_nominated(now, p),
        }
    }

    /// A pair checked both ways: the peer's address, proven by its signed answer and its
    /// own check. A full peer that is the DTLS client may send its first flight as soon as
    /// its side of ICE is done, before our nomination is answered; the peer connection
    /// must not drop it as coming from an unknown address. (A lite peer never checks, so
    /// against one nothing is reported before `Connected`, as before.)
    fn report_valid(&mut self, pair: usize) {
        if let Some(p) = self.pairs.get(pair) {
            let (remote, local) = (p.remote, self.local);
            self.events
                .push_back(IceEvent::AddressValidated { remote, local });
        }
    }

    fn trigger(&mut self, pair: usize) {
        if !self.triggered.contains(&pair) {
            self.triggered.push_back(pair);
        }
    }

    /// Controlled: the peer nominated `pair` and our check on it succeeded → selected.
    fn select_if_nominated(&mut self, now: Instant, pair: usize) {
        let nominated = (self.pairs.get(pair))
            .is_some_and(|p| p.peer_nominated && p.state == PairState::Succeeded);
        if self.role == Role::Controlled && self.state == State::Checking && nominated {
            self.connect(now, pair);
        }
    }

    /// RFC 8445 §7.3.1.1 and §7.2.5.1: from now on we claim `role`. Checks in flight claim
    /// the old one, so they are dropped and their pairs checked again; a nomination in
    /// flight is dropped (the controlled side does not nominate, and a newly controlling
    /// one nominates afresh).
    fn switch_role(&mut self, now: Instant, role: Role) {
        if self.role == role {
            return;
        }
        self.role = role;
        let mut i = 0;
        while let Some(txn) = self.txns.get(i) {
            if txn.kind == Kind::Consent {
                i += 1;
                continue;
            }
            let txn = self.txns.swap_remove(i);
            if txn.kind == Kind::Check {
                self.set_pair(txn.pair, PairState::Waiting);
                self.trigger(txn.pair);
            }
        }
        if let State::Nominating(_) = self.state {
            self.state = State::Checking;
        }
        self.fail_if_hopeless(now);
    }

    /// Responses to our checks.
    fn handle_response(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        source: SocketAddr,
        local: SocketAddr,
    ) -> Result<(), IceError> {
        let class = msg.class();
        let index = (self.txns.iter())
            .position(|t| t.id == msg.transaction_id())
            .ok_or(IceError::UnknownTransaction)?;
        // A success must be signed with the peer's password (RFC 8445 §7.2.5.2); an error
        // response may lack integrity (400/401 do, RFC 8489 §9.1.3) but not carry a bad one.
        // Forged responses are dropped without touching the transaction.
        if (class == Class::Success || msg.integrity_kind().is_some())
            && msg.verify_integrity(&self.remote_key).is_err()
        {
            return Err(IceError::BadIntegrity);
        }
        let txn = self.txns.swap_remove(index);
        let remote = self.pairs.get(txn.pair).map(|p| p.remote);
        // RFC 8445 §7.2.5.2.1: the response must come back from where the check went.
        if remote != Some(source) || local != self.local {
            self.txn_failed(now, &txn);
            return Err(IceError::NonSymmetric);
        }
        // RFC 8445 §7.2.5.1: 487 means the peer keeps the role our check claimed; take the
        // other one and check the pair again. Only a signed 487 counts (verified above),
        // or anyone who saw a transaction ID could flip our role.
        let role_conflict = class == Class::Error
            && msg.integrity_kind().is_some()
            && msg.error_code().map(|e| e.code) == Some(ErrorCode::ROLE_CONFLICT);
        if role_conflict && txn.kind != Kind::Consent {
            if txn.kind == Kind::Check {
                self.set_pair(txn.pair, PairState::Waiting);
                self.trigger(txn.pair);
            }
            let other = match txn.role {
                Role::Controlling => Role::Controlled,
                Role::Controlled => Role::Controlling,
            };
            self.switch_role(now, other);
            return Ok(());
        }
        // RFC 8489 §6.3.3/§6.3.4: unknown comprehension-required attributes, or an error
        // response, fail the transaction.
        if class == Class::Error || msg.unknown_comprehension_required().next().is_some() {
            self.txn_failed(now, &txn);
            return Ok(());
        }
        self.txn_succeeded(now, &txn);
        Ok(())
    }

    fn txn_succeeded(&mut self, now: Instant, txn: &Txn) {
        match (txn.kind, self.state) {
            (Kind::Check, _) => {
                let Some(pair) = self.pairs.get(txn.pair) else {
                    return;
                };
                // A valid pair (RFC 8445 §7.2.5.3).
                let newly_checked_both_ways =
                    pair.state != PairState::Succeeded && pair.peer_checked;
                self.set_pair(txn.pair, PairState::Succeeded);
                if newly_checked_both_ways {
                    self.report_valid(txn.pair);
                }
                match self.role {
                    Role::Controlling if self.state == State::Checking => {
                        self.nominate(now, txn.pair)
                    }
                    Role::Controlling => {}
                    Role::Controlled => self.select_if_nominated(now, txn.pair),
                }
            }
            (Kind::Nominate, State::Nominating(p)) if p == txn.pair => self.connect(now, p),
            (Kind::Consent, State::Connected(p)) if p == txn.pair => self.last_consent = now,
            _ => {}
        }
    }

    fn connect(&mut self, now: Instant, pair: usize) {
        self.state = State::Connected(pair);
        self.txns.clear();
        self.triggered.clear();
        self.last_consent = now;
        self.next_consent = now + self.consent_jitter();
        if let Some(p) = self.pairs.get(pair) {
            let (remote, local) = (p.remote, self.local);
            self.events.push_back(IceEvent::Connected { remote, local });
        }
    }

    fn txn_failed(&mut self, now: Instant, txn: &Txn) {
        match txn.kind {
            Kind::Check => self.set_pair(txn.pair, PairState::Failed),
            Kind::Nominate => {
                self.set_pair(txn.pair, PairState::Failed);
                if self.state == State::Nominating(txn.pair) {
                    self.state = State::Checking;
                }
            }
            // RFC 7675: a lost or refused consent check just does not refresh consent.
            Kind::Consent => {}
        }
        self.fail_if_hopeless(now);
    }

    /// While checking: nominate (or, controlled, select) another succeeded pair, or give up
    /// if none can succeed.
    fn fail_if_hopeless(&mut self, now: Instant) {
        if self.state != State::Checking {
            return;
        }
        let succeeded = |p: &Pair| p.state == PairState::Succeeded;
        match self.role {
            Role::Controlling => {
                if let Some(p) = self.pairs.iter().position(succeeded) {
                    // A pair whose nomination was lost was marked failed, so this is
                    // another one.
                    self.state = State::Nominating(p);
                    self.txns.retain(|t| t.kind != Kind::Nominate);
                    return self.send_request(now, p, Kind::Nominate);
                }
            }
            Role::Controlled => {
                let nominated = |p: &Pair| succeeded(p) && p.peer_nominated;
                if let Some(p) = self.pairs.iter().position(nominated) {
                    return self.connect(now, p);
                }
                // Validated pairs wait for the peer's nomination.
                if self.pairs.iter().any(succeeded) {
                    return;
                }
            }
        }
        if self.pairs.iter().all(|p| p.state == PairState::Failed) {
            self.disconnect(DisconnectReason::ChecksFailed);
        }
    }

    fn nominate(&mut self, now: Instant, pair: usize) {
        self.state = State::Nominating(pair);
        self.send_request(now, pair, Kind::Nominate);
    }

    fn set_pair(&mut self, pair: usize, state: PairState) {
        if let Some(p) = self.pairs.get_mut(pair) {
            p.state = state;
        }
    }

    fn send_request(&mut self, now: Instant, pair: usize, kind: Kind) {
        let Some(remote) = self.pairs.get(pair).map(|p| p.remote) else {
            return;
        };
        let id = TransactionId::random(&mut self.rng);
        let mut bytes = Vec::with_capacity(112);
        let mut b = MessageBuilder::new(&mut bytes, Class::Request, Method::BINDING, id);
        // RFC 8445 §7.1.1: PRIORITY is what a peer-reflexive candidate of ours would get.
        b.username(&self.username).priority(candidate_priority(
            PEER_REFLEXIVE_PREFERENCE,
            65535,
            1,
        ));
        match self.role {
            Role::Controlling => b.ice_controlling(self.tie_breaker),
            Role::Controlled => b.ice_controlled(self.tie_breaker),
        };
        if kind == Kind::Nominate {
            b.use_candidate();
        }
        b.message_integrity(&self.remote_key).fingerprint();
        self.transmits.push_back(Transmit {
            source: self.local,
            destination: remote,
            contents: bytes.clone(),
        });
        let next = match kind {
            // Consent checks are sent once (RFC 7675 §5.1); the entry only lets a late
            // response still count, until consent would have expired anyway.
            Kind::Consent => now + self.config.consent_timeout,
            _ => now + self.config.rto,
        };
        self.txns.push(Txn {
            id,
            pair,
            kind,
            role: self.role,
            sends: 1,
            next,
            bytes,
        });
    }

    /// Advances timers: new checks, retransmissions, check failures, consent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Disconnected {
            return;
        }
        self.retransmit(now);
        if self.state == State::Checking
            && now >= self.next_check
            && let Some(p) = self.next_waiting()
        {
            self.set_pair(p, PairState::InProgress);
            self.send_request(now, p, Kind::Check);
            self.next_check = now + self.config.pacing;
        }
        if let State::Connected(p) = self.state {
            if now >= self.last_consent + self.config.consent_timeout {
                return self.disconnect(DisconnectReason::ConsentExpired);
            }
            if now >= self.next_consent {
                self.send_request(now, p, Kind::Consent);
                self.next_consent = now + self.consent_jitter();
            }
        }
    }

    /// The next pair to check: triggered ones first (RFC 8445 §6.1.4.2), then the list's.
    fn next_waiting(&mut self) -> Option<usize> {
        while let Some(p) = self.triggered.pop_front() {
            if self
                .pairs
                .get(p)
                .is_some_and(|p| p.state == PairState::Waiting)
            {
                return Some(p);
            }
        }
        self.pairs
            .iter()
            .position(|p| p.state == PairState::Waiting)
    }

    /// RFC 8489 §6.2.1: transmissions at 0, RTO, 3·RTO, 7·RTO, … (doubling), Rc in all;
    /// the transaction fails Rm·RTO after the last one.
    fn retransmit(&mut self, now: Instant) {
        let mut i = 0;
        while let Some(txn) = self.txns.get_mut(i) {
            if now < txn.next {
                i += 1;
                continue;
            }
            if txn.kind != Kind::Consent && txn.sends < self.config.max_transmits {
                txn.sends += 1;
                txn.next = now
                    + if txn.sends == self.config.max_transmits {
                        self.config.rto * self.config.last_wait
                    } else {
                        self.config.rto * 2u32.saturating_pow(txn.sends - 1)
                    };
                let contents = txn.bytes.clone();
                let destination = self.pairs.get(txn.pair).map(|p| p.remote);
                if let Some(destination) = destination {
                    let source = self.local;
                    self.transmits.push_back(Transmit {
                        source,
                        destination,
                        contents,
                    });
                }
                i += 1;
            } else {
                let txn = self.txns.swap_remove(i);
                self.txn_failed(now, &txn);
            }
        }
    }

    /// 0.8–1.2 × the consent interval, uniformly (RFC 7675 §5.1).
    fn consent_jitter(&mut self) -> Duration {
        let unit = f64::from(self.rng.u32()) / f64::from(u32::MAX);
        self.config.consent_interval.mul_f64(0.8 + 0.4 * unit)
    }

    fn disconnect(&mut self, reason: DisconnectReason) {
        self.state = State::Disconnected;
        self.txns.clear();
        self.transmits.clear();
        self.events.push_back(IceEvent::Disconnected { reason });
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let txns = self.txns.iter().map(|t| t.next).min();
        let own = match self.state {
            State::Checking if self.pairs.iter().any(|p| p.state == PairState::Waiting) => {
                Some(self.next_check)
            }
            State::Connected(_) => Some(
                self.next_consent
                    .min(self.last_consent + self.config.consent_timeout),
            ),
            State::Disconnected => return None,
            _ => None,
        };
        match (txns, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
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
