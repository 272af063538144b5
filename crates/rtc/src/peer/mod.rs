//! One peer connection: ICE + DTLS + SRTP composed behind the sans-IO contract.
//!
//! Datagrams go in through [`Peer::handle_datagram`], classified by their first byte
//! (RFC 7983): STUN to ICE, DTLS records to DTLS, and SRTP/SRTCP unprotected in place and
//! handed straight back to the caller as a borrowed [`Received`] packet — the media path
//! allocates nothing. Everything else comes out of `poll_transmit`, `poll_event` and
//! `poll_timeout`. The server side is ICE-lite; the client side (a WHEP client, tests, the
//! load generator) runs a small full controlling agent, which also answers a full peer's
//! checks.

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::demux::{self, Class};
use crate::dtls::{Dtls, DtlsConfig, DtlsError, DtlsEvent, Fingerprint};
use crate::ice::{
    ControllingConfig, Credentials, DisconnectReason, IceControlling, IceEvent, IceLite,
};
use crate::net::Transmit;
use crate::rand::Rng;
use crate::srtp::{SrtpError, SrtpProfile, SrtpSession};

/// How many peer addresses we remember as validated by ICE; like the ICE agent's own bound,
/// a peer cannot make us keep more.
const MAX_VALIDATED: usize = 16;
/// DTLS datagrams kept while no path exists yet (a client's first flight before ICE connects).
const MAX_PENDING: usize = 32;

/// What offer/answer decided about the transport.
#[derive(Debug, Clone)]
pub struct PeerSetup {
    /// The peer's `a=fingerprint:sha-256`.
    pub remote_fingerprint: Fingerprint,
    /// True when we are the DTLS client (`a=setup:active` on our side).
    pub dtls_client: bool,
}

/// Why a peer connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectCause {
    /// ICE gave up (consent expired, never nominated, checks failed).
    Ice(DisconnectReason),
    /// The DTLS handshake or connection failed.
    Dtls(DtlsError),
    /// The peer sent close_notify.
    ClosedByPeer,
    /// We closed it.
    ClosedLocally,
}

/// What a peer connection tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// ICE validated a new address of this peer: the I/O layer may route datagrams from it
    /// here by address from now on.
    AddressValidated {
        /// The peer's address.
        remote: SocketAddr,
    },
    /// ICE forgot the last pair with this peer address: stop routing datagrams from it here.
    AddressRemoved {
        /// The peer's address.
        remote: SocketAddr,
    },
    /// ICE selected its first pair.
    IceConnected {
        /// The peer's address.
        remote: SocketAddr,
        /// How long after creation.
        after: Duration,
    },
    /// DTLS is done and SRTP keys are in place: media may flow.
    Connected {
        /// The SRTP profile DTLS negotiated.
        profile: SrtpProfile,
        /// How long after creation.
        after: Duration,
    },
    /// DTLS application data (SCTP for data channels).
    ApplicationData(Vec<u8>),
    /// The connection is over; nothing more will happen.
    Disconnected(DisconnectCause),
}

/// A packet that arrived and was unprotected in place.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// Nothing for the application (STUN, DTLS, dropped, or failed to unprotect).
    Nothing,
    /// A plain RTP packet.
    Rtp(&'a [u8]),
    /// A plain RTCP compound packet.
    Rtcp(&'a [u8]),
}

/// Why media could not be protected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// No SRTP keys yet (DTLS not done) or the connection is over.
    #[error("the peer connection is not connected")]
    NotConnected,
    /// SRTP refused the packet.
    #[error(transparent)]
    Srtp(#[from] SrtpError),
}

/// Counters about what a peer sent us that we dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// STUN datagrams the ICE agent refused.
    pub stun_rejected: u64,
    /// DTLS or SRTP datagrams from an address ICE has not validated.
    pub unvalidated: u64,
    /// SRTP/SRTCP packets that failed to unprotect (authentication, replay, too short).
    pub srtp_failed: u64,
    /// Datagrams that are none of STUN, DTLS, RTP or RTCP.
    pub unknown: u64,
}

#[derive(Debug)]
enum Ice {
    Lite(IceLite),
    Controlling(IceControlling),
}

/// One peer connection.
#[derive(Debug)]
pub struct Peer {
    ice: Ice,
    local_credentials: Credentials,
    dtls: Dtls,
    /// (outbound, inbound) once DTLS is done.
    srtp: Option<(SrtpSession, SrtpSession)>,
    /// Addresses ICE validated, as (remote, local).
    validated: Vec<(SocketAddr, SocketAddr)>,
    /// Where media and DTLS go: the selected pair, or before selection the last validated
    /// address DTLS came from.
    path: Option<(SocketAddr, SocketAddr)>,
    selected: bool,
    pending_dtls: VecDeque<Vec<u8>>,
    created: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PeerEvent>,
    /// We sent close_notify, so DTLS's `Closed` is ours, not the peer's.
    closing: bool,
    ended: bool,
    stats: PeerStats,
}

impl Peer {
    /// The server side: an ICE-lite agent with our `local` credentials (those we put in the
    /// answer) and the peer's from its offer.
    pub fn new_lite(
        now: Instant,
        dtls: Arc<DtlsConfig>,
        local: Credentials,
        remote: &Credentials,
        setup: &PeerSetup,
        rng: Rng,
    ) -> Self {
        let ice = IceLite::with_credentials(now, local.clone(), Some(remote));
        // The cookie binds to our ufrag: ICE has authenticated the address already, and
        // the peer's address is not known before its first check.
        let peer_id = local.ufrag.clone().into_bytes();
        Self::new(now, Ice::Lite(ice), local, dtls, setup, &peer_id, rng)
    }

    /// The client side: a controlling agent with our `credentials` (those in our offer)
    /// checking `local` → each of `remotes` (the candidates of the server's answer) with the
    /// server's credentials. The server may be lite or full ICE: the agent answers its
    /// checks and learns its peer-reflexive addresses from them.
    #[allow(clippy::too_many_arguments)]
    pub fn new_controlling(
        now: Instant,
        dtls: Arc<DtlsConfig>,
        credentials: Credentials,
        remote: &Credentials,
        local: SocketAddr,
        remotes: &[SocketAddr],
        setup: &PeerSetup,
        mut rng: Rng,
    ) -> Self {
        let ice_rng = Rng::seeded(rng.u64());
        let agent = IceControlling::with_credentials(
            now,
            ControllingConfig::default(),
            ice_rng,
            credentials.clone(),
            remote,
            local,
            remotes,
        );
        Self::new(
            now,
            Ice::Controlling(agent),
            credentials,
            dtls,
            setup,
            &[],
            rng,
        )
    }

    fn new(
        now: Instant,
        ice: Ice,
        local_credentials: Credentials,
        config: Arc<DtlsConfig>,
        setup: &PeerSetup,
        peer_id: &[u8],
        rng: Rng,
    ) -> Self {
        let dtls = if setup.dtls_client {
            Dtls::new_client(config, setup.remote_fingerprint, rng, now)
        } else {
            Dtls::new_server(config, setup.remote_fingerprint, peer_id, rng)
        };
        let mut peer = Peer {
            ice,
            local_credentials,
            dtls,
            srtp: None,
            validated: Vec::new(),
            path: None,
            selected: false,
            pending_dtls: VecDeque::new(),
            created: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            closing: false,
            ended: false,
            stats: PeerStats::default(),
        };
        peer.drain(now);
        peer
    }

    /// Our ICE credentials (for SDP, and for routing by ufrag).
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_credentials
    }

    /// Where media goes: `(remote, local)` of the selected pair, or before ICE nominated one,
    /// the validated pair DTLS ran on. Browsers often finish DTLS before they nominate
    /// (RFC 8445 §12 lets media use any valid pair meanwhile); waiting for the nomination
    /// would lose the first packets sent after connecting — a viewer's keyframe among them.
    pub fn path(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.path
    }

    /// True once SRTP keys are in place and the connection has not ended.
    pub fn is_connected(&self) -> bool {
        self.srtp.is_some() && !self.ended
    }

    /// The DTLS version negotiated (1.2 until the peer chose 1.3) and the key exchange group.
    pub fn dtls_version(&self) -> (crate::dtls::DtlsVersion, Option<u16>) {
        (self.dtls.version(), self.dtls.group())
    }

    /// Counters of dropped input.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }

    /// ICE restart (RFC 8445 §9; RFC 9725 §4.3.2): a lite agent starts over with new
    /// credentials on both sides, while DTLS and SRTP carry on. Media keeps flowing on the
    /// current path until the peer's checks under the new credentials select one. Returns
    /// false for the controlling side, which does not restart.
    pub fn restart_ice(&mut self, now: Instant, local: Credentials, remote: &Credentials) -> bool {
        if self.ended || !matches!(self.ice, Ice::Lite(_)) {
            return false;
        }
        self.ice = Ice::Lite(IceLite::with_credentials(now, local.clone(), Some(remote)));
        self.local_credentials = local;
        true
    }

    /// Handles a datagram from `source` to our `local` address. SRTP and SRTCP are
    /// unprotected in place in `buf` and returned as a view into it.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        buf: &'a mut [u8],
    ) -> Received<'a> {
        if self.ended {
            return Received::Nothing;
        }
        let class = demux::classify(buf);
        if class == Class::Stun {
            let accepted = match &mut self.ice {
                Ice::Lite(ice) => ice.handle_datagram(now, source, local, buf),
                Ice::Controlling(ice) => ice.handle_datagram(now, source, local, buf),
            };
            if accepted.is_err() {
                self.stats.stun_rejected += 1;
            }
            self.drain(now);
            return Received::Nothing;
        }
        if class == Class::Drop {
            self.stats.unknown += 1;
            return Received::Nothing;
        }
        if !self.validated.contains(&(source, local)) {
            self.stats.unvalidated += 1;
            return Received::Nothing;
        }
        match class {
            Class::Dtls => {
                if !self.selected {
                    self.path = Some((source, local));
                }
                // ICE validated the source (checked above), so no cookie round trip.
                self.dtls.handle_validated_datagram(now, buf);
                self.drain(now);
                Received::Nothing
            }
            Class::Rtp | Class::Rtcp => {
                let Some((_, inbound)) = &mut self.srtp else {
                    self.stats.srtp_failed += 1;
                    return Received::Nothing;
                };
                let result = if class == Class::Rtp {
                    inbound.unprotect_rtp(buf)
                } else {
                    inbound.unprotect_rtcp(buf)
                };
                match (result, class) {
                    (Ok(len), Class::Rtp) => Received::Rtp(&buf[..len]),
                    (Ok(len), _) => Received::Rtcp(&buf[..len]),
                    (Err(_), _) => {
                        self.stats.srtp_failed += 1;
                        Received::Nothing
                    }
                }
            }
            Class::Stun | Class::Drop => Received::Nothing,
        }
    }

    /// Drives timers (ICE retransmissions and consent, DTLS flights).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        match &mut self.ice {
            Ice::Lite(ice) => ice.handle_timeout(now),
            Ice::Controlling(ice) => ice.handle_timeout(now),
        }
        self.dtls.handle_timeout(now);
        self.drain(now);
    }

    /// When [`Peer::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let ice = match &self.ice {
            Ice::Lite(ice) => ice.poll_timeout(),
            Ice::Controlling(ice) => ice.poll_timeout(),
        };
        match (ice, self.dtls.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// Protects an RTP packet of `len` bytes in place; `buf` needs room for the SRTP tag
    /// ([`SrtpProfile::rtp_overhead`]). Returns the datagram length; send it to
    /// [`Peer::path`].
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, PeerError> {
        match &mut self.srtp {
            Some((outbound, _)) if !self.ended => Ok(outbound.protect_rtp(buf, len)?),
            _ => Err(PeerError::NotConnected),
        }
    }

    /// Protects an RTCP compound packet in place, as [`Peer::protect_rtp`] does RTP.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, PeerError> {
        match &mut self.srtp {
            Some((outbound, _)) if !self.ended => Ok(outbound.protect_rtcp(buf, len)?),
            _ => Err(PeerError::NotConnected),
        }
    }

    /// Sends DTLS application data (SCTP).
    pub fn send_application_data(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        self.dtls.send_application_data(data)?;
        self.drain(now);
        Ok(())
    }

    /// Ends the connection: close_notify goes out (RFC 5246 §7.2.1) and then nothing else.
    pub fn close(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        self.closing = true;
        self.dtls.close();
        self.drain(now);
        self.end(DisconnectCause::ClosedLocally);
    }

    /// Moves what ICE and DTLS produced into our queues, reacting to their events.
    fn drain(&mut self, now: Instant) {
        loop {
            let (transmit, event) = match &mut self.ice {
                Ice::Lite(ice) => (ice.poll_transmit(), ice.poll_event()),
                Ice::Controlling(ice) => (ice.poll_transmit(), ice.poll_event()),
            };
            if transmit.is_none() && event.is_none() {
                break;
            }
            self.transmits.extend(transmit);
            if let Some(event) = event {
                self.on_ice_event(now, event);
            }
        }
        while let Some(datagram) = self.dtls.poll_datagram() {
            match self.path {
                Some((remote, local)) => self.transmits.push_back(Transmit {
                    source: local,
                    destination: remote,
                    contents: datagram,
                }),
                None if self.pending_dtls.len() < MAX_PENDING => {
                    self.pending_dtls.push_back(datagram)
                }
                None => {}
            }
        }
        while let Some(event) = self.dtls.poll_event() {
            self.on_dtls_event(now, event);
        }
    }

    fn on_ice_event(&mut self, now: Instant, event: IceEvent) {
        match event {
            IceEvent::AddressValidated { remote, local } => {
                self.validate(remote, local);
            }
            IceEvent::AddressRemoved { remote, local } => self.invalidate(remote, local),
            IceEvent::Connected { remote, local } => {
                self.validate(remote, local);
                self.select(remote, local);
                self.events.push_back(PeerEvent::IceConnected {
                    remote,
                    after: now - self.created,
                });
            }
            IceEvent::SelectedPairChanged { remote, local } => {
                self.validate(remote, local);
                self.select(remote, local);
            }
            IceEvent::Disconnected { reason } => self.end(DisconnectCause::Ice(reason)),
        }
    }

    fn validate(&mut self, remote: SocketAddr, local: SocketAddr) {
        if self.validated.contains(&(remote, local)) {
            return;
        }
        // Full (only possible across an ICE restart, whose new agent starts its own list):
        // the oldest goes, never the path media uses.
        if self.validated.len() >= MAX_VALIDATED
            && let Some(i) = self.validated.iter().position(|v| Some(*v) != self.path)
        {
            let (old_remote, old_local) = self.validated.remove(i);
            self.invalidate(old_remote, old_local);
        }
        self.validated.push((remote, local));
        self.events
            .push_back(PeerEvent::AddressValidated { remote });
    }

    /// The agent forgot a pair; the selected path stays usable whatever the agent keeps.
    fn invalidate(&mut self, remote: SocketAddr, local: SocketAddr) {
        if self.selected && self.path == Some((remote, local)) {
            return;
        }
        self.validated.retain(|v| *v != (remote, local));
        if self.path == Some((remote, local)) {
            self.path = None;
        }
        if !self.validated.iter().any(|(r, _)| *r == remote) {
            self.events.push_back(PeerEvent::AddressRemoved { remote });
        }
    }

    fn select(&mut self, remote: SocketAddr, local: SocketAddr) {
        self.path = Some((remote, local));
        self.selected = true;
        for datagram in self.pending_dtls.drain(..) {
            self.transmits.push_back(Transmit {
                source: local,
                destination: remote,
                contents: datagram,
            });
        }
    }

    fn on_dtls_event(&mut self, now: Instant, event: DtlsEvent) {
        match event {
            DtlsEvent::Connected {
                srtp_profile,
                keying_material,
                ..
            } => {
                match SrtpSession::from_dtls_keying_material(
                    srtp_profile,
                    &keying_material,
                    self.dtls.is_client(),
                ) {
                    Ok(sessions) => {
                        self.srtp = Some(sessions);
                        self.events.push_back(PeerEvent::Connected {
                            profile: srtp_profile,
                            after: now - self.created,
                        });
                    }
                    // Cannot happen with a profile DTLS negotiated, but never trust it blindly.
                    Err(_) => self.end(DisconnectCause::Dtls(DtlsError::Internal(
                        "SRTP keying material has the wrong length",
                    ))),
                }
            }
            DtlsEvent::ApplicationData(data) => {
                self.events.push_back(PeerEvent::ApplicationData(data))
            }
            DtlsEvent::Closed if self.closing => self.end(DisconnectCause::ClosedLocally),
            DtlsEvent::Closed => self.end(DisconnectCause::ClosedByPeer),
            DtlsEvent::Failed(e) => self.end(DisconnectCause::Dtls(e)),
        }
    }

    fn end(&mut self, cause: DisconnectCause) {
        if !self.ended {
            self.ended = true;
            self.events.push_back(PeerEvent::Disconnected(cause));
        }
    }
}
