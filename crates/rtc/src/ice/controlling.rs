//! A small controlling agent: the client side of ICE against a lite peer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    CONSENT_TIMEOUT, Credentials, DisconnectReason, IceError, IceEvent, PEER_REFLEXIVE_PREFERENCE,
    candidate_priority,
};
use crate::Transmit;
use crate::rand::Rng;
use crate::stun::{self, Class, Key, MessageBuilder, Method, TransactionId};

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
/// It answers no checks, so it suits lite peers only. A 487 (role conflict) fails the pair
/// instead of switching roles: a lite peer never sends one to a controlling agent.
#[derive(Debug)]
pub struct IceControlling {
    config: ControllingConfig,
    rng: Rng,
    local_credentials: Credentials,
    remote_key: Key,
    /// `their-ufrag:our-ufrag` (RFC 8445 §7.2.2).
    username: Vec<u8>,
    tie_breaker: u64,
    local: SocketAddr,
    pairs: Vec<(SocketAddr, PairState)>,
    txns: Vec<Txn>,
    next_check: Instant,
    state: State,
    last_consent: Instant,
    next_consent: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<IceEvent>,
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
            .map(|&r| (r, PairState::Waiting))
            .collect();
        let mut agent = Self {
            config,
            tie_breaker: rng.u64(),
            rng,
            local_credentials,
            remote_key: Key::new(remote.pwd.as_bytes()),
            username,
            local,
            pairs,
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
        &self.local_credentials
    }

    /// The selected pair as `(remote, local)`.
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        match self.state {
            State::Connected(p) => Some((self.pairs.get(p)?.0, self.local)),
            _ => None,
        }
    }

    /// Handles a datagram that arrived from `source` at our `local` address: responses to
    /// our checks. `Err` says why it was not accepted. Never panics.
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
        let class = msg.class();
        if !matches!(class, Class::Success | Class::Error) {
            return Err(IceError::UnexpectedClass(class));
        }
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
        let remote = self.pairs.get(txn.pair).map(|p| p.0);
        // RFC 8445 §7.2.5.2.1: the response must come back from where the check went.
        if remote != Some(source) || local != self.local {
            self.txn_failed(now, &txn);
            return Err(IceError::NonSymmetric);
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
                self.set_pair(txn.pair, PairState::Succeeded);
                if self.state == State::Checking {
                    self.nominate(now, txn.pair);
                }
            }
            (Kind::Nominate, State::Nominating(p)) if p == txn.pair => {
                self.state = State::Connected(p);
                self.txns.clear();
                self.last_consent = now;
                self.next_consent = now + self.consent_jitter();
                if let Some(&(remote, _)) = self.pairs.get(p) {
                    let local = self.local;
                    self.events.push_back(IceEvent::Connected { remote, local });
                }
            }
            (Kind::Consent, State::Connected(p)) if p == txn.pair => self.last_consent = now,
            _ => {}
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

    /// While checking: nominate another succeeded pair, or give up if none can succeed.
    fn fail_if_hopeless(&mut self, now: Instant) {
        if self.state != State::Checking {
            return;
        }
        if let Some(p) = self.pairs.iter().position(|p| p.1 == PairState::Succeeded) {
            // A pair whose nomination was lost was marked failed, so this is another one.
            self.state = State::Nominating(p);
            self.txns.retain(|t| t.kind != Kind::Nominate);
            return self.send_request(now, p, Kind::Nominate);
        }
        if self.pairs.iter().all(|p| p.1 == PairState::Failed) {
            self.disconnect(DisconnectReason::ChecksFailed);
        }
    }

    fn nominate(&mut self, now: Instant, pair: usize) {
        self.state = State::Nominating(pair);
        self.send_request(now, pair, Kind::Nominate);
    }

    fn set_pair(&mut self, pair: usize, state: PairState) {
        if let Some(p) = self.pairs.get_mut(pair) {
            p.1 = state;
        }
    }

    fn send_request(&mut self, now: Instant, pair: usize, kind: Kind) {
        let Some(&(remote, _)) = self.pairs.get(pair) else {
            return;
        };
        let id = TransactionId::random(&mut self.rng);
        let mut bytes = Vec::with_capacity(112);
        let mut b = MessageBuilder::new(&mut bytes, Class::Request, Method::BINDING, id);
        // RFC 8445 §7.1.1: PRIORITY is what a peer-reflexive candidate of ours would get.
        b.username(&self.username)
            .priority(candidate_priority(PEER_REFLEXIVE_PREFERENCE, 65535, 1))
            .ice_controlling(self.tie_breaker);
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
            && let Some(p) = self.pairs.iter().position(|p| p.1 == PairState::Waiting)
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
                let destination = self.pairs.get(txn.pair).map(|p| p.0);
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
            State::Checking if self.pairs.iter().any(|p| p.1 == PairState::Waiting) => {
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
