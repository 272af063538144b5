//! DTLS 1.3 (RFC 9147) and 1.2 (RFC 6347) for WebRTC, sans-IO: both roles, use_srtp,
//! stateless cookies, retransmission and fragmentation. 1.3: TLS_AES_128_GCM_SHA256 with
//! X25519MLKEM768, x25519 or P-256, record number encryption, ACKs. 1.2:
//! ECDHE-ECDSA-AES128-GCM-SHA256 with the extended master secret.
//!
//! Every connection starts in the 1.2 machinery, which receives (server) or sends (client)
//! the ClientHello; when the server chooses 1.3 from `supported_versions`, a 1.3 connection
//! (`v13`) takes over with what was queued.
//!
//! A [`Dtls`] is driven like every protocol object here: feed datagrams with
//! [`Dtls::handle_datagram`] and timeouts with [`Dtls::handle_timeout`], then drain
//! [`Dtls::poll_datagram`], [`Dtls::poll_event`] and [`Dtls::poll_timeout`].
//!
//! Layout: `codec`/`msgs`/`ext` are plain message types; `record` the record layer;
//! `reassembly` and `flight` the handshake's fragmentation both ways; `prf` the key schedule;
//! `cert` and `crypto` certificates and signatures; `server` and `client` the state machines.
//! For 1.3: `msgs13` messages, `record13` protected records, `schedule` the key schedule, `kx`
//! key shares, `conn13` records/flights/ACKs, `hello13` the stateless server hello,
//! `server13`/`client13`/`handshake13` the state machines, `v13` the dispatcher.

mod cert;
mod client;
mod client13;
pub mod codec;
mod conn;
mod conn13;
mod crypto;
mod error;
pub mod ext;
mod flight;
mod handshake;
mod handshake13;
mod hello13;
mod kx;
pub mod msgs;
pub mod msgs13;
pub mod prf;
pub mod reassembly;
pub mod record;
pub mod record13;
pub mod schedule;
mod server;
mod server13;
mod v13;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;

pub use cert::{DtlsCertificate, Fingerprint, PeerKey, peer_key};
pub use error::{DtlsError, alert};
pub use kx::group_name;

use codec::Reader;
use conn::{Conn, Phase, Upgrade};
use conn13::Conn13;
use msgs::HandshakeHeader;
use reassembly::Inserted;
use record::{Record, content_type};
use v13::{Role13, V13};

use crate::rand::Rng;
use crate::srtp::SrtpProfile;

/// The RFC 5764 §4.2 exporter label.
pub const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Which DTLS versions an endpoint speaks (`--dtls 1.2|1.3|auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsVersions {
    /// DTLS 1.3 when the peer offers it, else 1.2 (RFC 9147 §5.3 via supported_versions).
    #[default]
    Auto,
    /// DTLS 1.2 only, as before 1.3 existed (a 1.3 offer is answered with 1.2, unmarked).
    Only12,
    /// DTLS 1.3 only.
    Only13,
}

impl DtlsVersions {
    /// True if 1.2 may be negotiated.
    pub fn speaks_12(self) -> bool {
        self != DtlsVersions::Only13
    }

    /// True if 1.3 may be negotiated.
    pub fn speaks_13(self) -> bool {
        self != DtlsVersions::Only12
    }
}

impl std::str::FromStr for DtlsVersions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DtlsVersions::Auto),
            "1.2" => Ok(DtlsVersions::Only12),
            "1.3" => Ok(DtlsVersions::Only13),
            _ => Err(format!("unknown DTLS version {s:?} (1.2, 1.3 or auto)")),
        }
    }
}

/// The DTLS version a connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsVersion {
    /// RFC 6347.
    V12,
    /// RFC 9147.
    V13,
}

impl DtlsVersion {
    /// "1.2" or "1.3".
    pub fn as_str(self) -> &'static str {
        match self {
            DtlsVersion::V12 => "1.2",
            DtlsVersion::V13 => "1.3",
        }
    }
}

/// Settings shared by every connection of an endpoint.
pub struct DtlsConfig {
    certificate: DtlsCertificate,
    cookie_key: hmac::Key,
    /// Largest datagram we send (default 1200, the WebRTC-safe size).
    pub mtu: usize,
    /// SRTP profiles in our order of preference.
    pub srtp_profiles: Vec<SrtpProfile>,
    /// First retransmission timeout (RFC 6347 §4.2.4.1: 1 s).
    pub initial_rto: Duration,
    /// Retransmissions of one flight before giving up (1+2+…+32 s with the default 6).
    pub max_retransmits: u32,
    /// Versions spoken (default: both, 1.3 preferred).
    pub versions: DtlsVersions,
}

impl std::fmt::Debug for DtlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsConfig")
            .field("certificate", &self.certificate)
            .field("mtu", &self.mtu)
            .field("srtp_profiles", &self.srtp_profiles)
            .finish_non_exhaustive()
    }
}

impl DtlsConfig {
    /// A configuration with our certificate and a fresh cookie secret from `rng`.
    pub fn new(certificate: DtlsCertificate, rng: &mut Rng) -> Self {
        let secret: [u8; 32] = rng.bytes();
        DtlsConfig {
            certificate,
            cookie_key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            mtu: 1200,
            srtp_profiles: SrtpProfile::PREFERENCE.to_vec(),
            initial_rto: Duration::from_secs(1),
            max_retransmits: 6,
            versions: DtlsVersions::Auto,
        }
    }

    /// Sets the MTU (clamped to 200..=16384; our flights are packed to it).
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu.clamp(200, 16384);
        self
    }

    /// Sets the versions spoken.
    pub fn with_versions(mut self, versions: DtlsVersions) -> Self {
        self.versions = versions;
        self
    }

    /// Our certificate.
    pub fn certificate(&self) -> &DtlsCertificate {
        &self.certificate
    }
}

/// What a connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake completed and the peer proved the SDP fingerprint's key.
    Connected {
        /// The SRTP profile chosen through use_srtp.
        srtp_profile: SrtpProfile,
        /// RFC 5764 §4.2 keying material: client key, server key, client salt, server salt.
        keying_material: Vec<u8>,
        /// The peer certificate's SHA-256 fingerprint.
        peer_certificate_fingerprint: Fingerprint,
    },
    /// Application data (SCTP for data channels) from the peer.
    ApplicationData(Vec<u8>),
    /// close_notify was sent or received.
    Closed,
    /// The connection failed; no more events follow.
    Failed(DtlsError),
}

#[derive(Debug)]
enum Role {
    Server(server::State),
    Client(client::State),
}

/// One DTLS connection, client or server.
#[derive(Debug)]
pub struct Dtls {
    conn: Conn,
    role: Role,
    /// Set once DTLS 1.3 was chosen; from then on it handles everything.
    v13: Option<Box<V13>>,
}

impl Dtls {
    /// A server for one peer. `peer_id` (e.g. the peer's address bytes) binds our stateless
    /// cookie to it; until a ClientHello returns that cookie nothing is kept per handshake.
    /// `expected` is the peer's `a=fingerprint` from SDP.
    pub fn new_server(
        config: Arc<DtlsConfig>,
        expected: Fingerprint,
        peer_id: &[u8],
        rng: Rng,
    ) -> Self {
        Dtls {
            conn: Conn::new(config, rng, false, expected),
            role: Role::Server(server::State::AwaitClientHello {
                peer_id: peer_id.to_vec(),
            }),
            v13: None,
        }
    }

    /// A client; its first ClientHello is ready to send at once.
    pub fn new_client(
        config: Arc<DtlsConfig>,
        expected: Fingerprint,
        rng: Rng,
        now: Instant,
    ) -> Self {
        let mut conn = Conn::new(config, rng, true, expected);
        let state = client::start(&mut conn, now).unwrap_or_else(|e| {
            conn.fail(e);
            client::State::Done
        });
        Dtls {
            conn,
            role: Role::Client(state),
            v13: None,
        }
    }

    /// True for the client role.
    pub fn is_client(&self) -> bool {
        self.conn.is_client
    }

    /// True once connected (and not closed or failed).
    pub fn is_connected(&self) -> bool {
        match &self.v13 {
            Some(v) => v.conn.phase == Phase::Connected,
            None => self.conn.phase == Phase::Connected,
        }
    }

    /// The version negotiated (1.2 until the peer chose 1.3).
    pub fn version(&self) -> DtlsVersion {
        if self.v13.is_some() {
            DtlsVersion::V13
        } else {
            DtlsVersion::V12
        }
    }

    /// The key exchange group (NamedGroup) used, once known; see [`group_name`].
    pub fn group(&self) -> Option<u16> {
        match &self.v13 {
            Some(v) => (v.conn.group != 0).then_some(v.conn.group),
            None => self.conn.group,
        }
    }

    /// Feeds one received datagram (which may hold several records, RFC 6347 §4.1.1).
    /// Records that do not parse, authenticate or fit the replay window are dropped silently
    /// (§4.1.2.7); protocol violations end the connection with a [`DtlsEvent::Failed`].
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.conn.source_validated = false;
        self.handle_records(now, datagram);
    }

    /// [`Dtls::handle_datagram`] for a datagram from an address the caller has already
    /// proven to be the peer's: ICE received a STUN check from it carrying MESSAGE-INTEGRITY
    /// under the credentials of this session's SDP. The cookie exchange only proves that the
    /// ClientHello's source address is real (RFC 6347 §4.2.1), so a server answers such a
    /// ClientHello at once and saves the HelloVerifyRequest round trip; §4.2.1 lets a
    /// server omit it. Everything else, the reassembly budgets included, is the same.
    pub fn handle_validated_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.conn.source_validated = true;
        self.handle_records(now, datagram);
        self.conn.source_validated = false;
    }

    fn handle_records(&mut self, now: Instant, datagram: &[u8]) {
        if let Some(v) = &mut self.v13 {
            return v.handle_datagram(now, datagram);
        }
        let mut r = Reader::new(datagram, "record");
        while !r.is_empty() {
            if self.conn.upgrade.is_some() {
                // The rest of this datagram is the 1.3 connection's.
                self.switch_to_13(now);
                if let Some(v) = &mut self.v13 {
                    v.handle_datagram(now, r.rest());
                }
                return;
            }
            if !self.active() {
                return;
            }
            let before = r.clone();
            let Ok(rec) = Record::parse(&mut r) else {
                return;
            };
            let raw = before.clone().take(before.len() - r.len()).unwrap_or(&[]);
            self.handle_record(now, &rec, raw);
            // Records that arrived before their epoch's keys get their turn now.
            while self.conn.has_read_keys() && !self.conn.early.is_empty() && self.active() {
                let raw = self.conn.early.remove(0);
                if let Ok(rec) = Record::parse(&mut Reader::new(&raw, "record")) {
                    self.handle_record(now, &rec, &raw);
                }
            }
        }
        if self.conn.upgrade.is_some() {
            self.switch_to_13(now);
        }
    }

    /// The peer chose DTLS 1.3: a 1.3 connection takes over, with our queued datagrams and
    /// events and the next epoch-0 record number.
    fn switch_to_13(&mut self, now: Instant) {
        let Some(up) = self.conn.upgrade.take() else {
            return;
        };
        let c = &mut self.conn;
        let rng = std::mem::replace(&mut c.rng, crate::rand::Rng::seeded(0));
        let mut conn = Conn13::new(c.config.clone(), rng, c.is_client, c.expected_fingerprint);
        let (out, events) = c.take_queues();
        let epoch0_seq = if c.is_client {
            c.write_seq[0]
        } else {
            c.write_seq[0].max(c.peer_epoch0_seq + 1)
        };
        conn.adopt(out, events, epoch0_seq);
        conn.next_send_seq = c.next_send_seq;
        c.phase = Phase::Closed; // the 1.2 half is done with
        c.transcript = Vec::new();
        let role = match *up {
            Upgrade::Server(up) => match server13::start(&mut conn, now, up) {
                Ok(s) => Role13::Server(s),
                Err(e) => {
                    conn.fail(e);
                    Role13::Server(server13::State::Done)
                }
            },
            Upgrade::Client(offer, m) => Role13::Client(client13::start(&mut conn, now, offer, m)),
        };
        self.v13 = Some(Box::new(V13 { conn, role }));
    }

    fn active(&self) -> bool {
        matches!(self.conn.phase, Phase::Handshaking | Phase::Connected)
            && self.conn.upgrade.is_none()
    }

    fn handle_record(&mut self, now: Instant, rec: &Record<'_>, raw: &[u8]) {
        let plain = match rec.epoch {
            0 => {
                // A server before the cookie exchange keeps no state, so no replay window
                // either (some clients repeat their ClientHello with the same sequence number).
                let stateless = matches!(
                    self.role,
                    Role::Server(server::State::AwaitClientHello { .. })
                );
                if !stateless && !self.conn.replay[0].check(rec.seq) {
                    return;
                }
                self.conn.replay[0].mark(rec.seq);
                if rec.content_type == content_type::HANDSHAKE {
                    self.conn.peer_epoch0_seq = self.conn.peer_epoch0_seq.max(rec.seq);
                }
                rec.fragment.to_vec()
            }
            1 => match self.conn.open(rec, raw) {
                Some(p) => p,
                None => return,
            },
            _ => return,
        };
        let result = match rec.content_type {
            content_type::HANDSHAKE => self.handle_handshake(now, rec.epoch, &plain),
            content_type::ALERT => self.handle_alert(rec.epoch, &plain),
            content_type::APPLICATION_DATA => {
                if rec.epoch == 1 && self.conn.phase == Phase::Connected {
                    self.conn
                        .events
                        .push_back(DtlsEvent::ApplicationData(plain));
                }
                Ok(())
            }
            // ChangeCipherSpec only announces epoch 1, whose records we recognise anyway.
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.conn.fail(e);
        }
    }

    fn handle_handshake(
        &mut self,
        now: Instant,
        epoch: u16,
        plain: &[u8],
    ) -> Result<(), DtlsError> {
        // Once connected, epoch 0 is unauthenticated noise: a forged handshake message must
        // not end the connection. (The peer's retransmitted final flight ends in epoch 1.)
        if epoch == 0 && self.conn.phase == Phase::Connected {
            return Ok(());
        }
        let mut r = Reader::new(plain, "handshake fragment");
        while !r.is_empty() {
            let Ok((h, fragment)) = HandshakeHeader::parse(&mut r) else {
                return Ok(());
            };
            match self.conn.reassembler.insert(epoch, &h, fragment) {
                Inserted::Old { seq, offset } => {
                    // The peer repeats its last flight: ours was lost (RFC 6347 §4.2.4).
                    // A connected client has nothing to repeat: the server's flight was
                    // final, and answering its duplicates would ping-pong forever.
                    let holds_flight =
                        !self.conn.is_client || self.conn.phase == Phase::Handshaking;
                    if offset == 0 && self.conn.peer_flight_end == Some(seq) && holds_flight {
                        self.conn.transmit_flight();
                    }
                }
                Inserted::Buffered | Inserted::Dropped => {}
            }
            while let Some(msg) = self.conn.reassembler.pop() {
                match &mut self.role {
                    Role::Server(s) => server::handle(s, &mut self.conn, now, msg)?,
                    Role::Client(s) => client::handle(s, &mut self.conn, now, msg)?,
                }
                if !self.active() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn handle_alert(&mut self, epoch: u16, plain: &[u8]) -> Result<(), DtlsError> {
        let [level, desc] = plain else { return Ok(()) };
        // Once keys are in use, unprotected alerts are ignored: anyone could forge them.
        if epoch == 0 && self.conn.phase == Phase::Connected {
            return Ok(());
        }
        if *desc == alert::CLOSE_NOTIFY {
            self.conn.close(); // answer with our own close_notify (RFC 5246 §7.2.1)
        } else if *level == 2 {
            self.conn.phase = Phase::Failed;
            self.conn.timer.stop();
            self.conn
                .events
                .push_back(DtlsEvent::Failed(DtlsError::AlertReceived(*desc)));
        }
        Ok(())
    }

    /// Retransmits the current flight if its timer expired (RFC 6347 §4.2.4).
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.v13 {
            Some(v) => v.conn.handle_timeout(now),
            None => self.conn.handle_timeout(now),
        }
    }

    /// The next datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        match &mut self.v13 {
            Some(v) => v.conn.poll_datagram(),
            None => self.conn.poll_datagram(),
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        match &mut self.v13 {
            Some(v) => v.conn.events.pop_front(),
            None => self.conn.events.pop_front(),
        }
    }

    /// When [`Dtls::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.v13 {
            // A 1.3 client repeats its last flight until it is ACKed, connected or not.
            Some(v) if v.conn.active() => v.conn.timer.deadline,
            Some(_) => None,
            None => match self.conn.phase {
                Phase::Handshaking => self.conn.timer.deadline,
                _ => None,
            },
        }
    }

    /// Sends `data` as one application_data record (one SCTP packet per record).
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        if data.len() > 16384 {
            return Err(DtlsError::RecordTooLarge(data.len()));
        }
        if let Some(v) = &mut self.v13 {
            return v.conn.send_application_data(data);
        }
        if self.conn.phase != Phase::Connected {
            return Err(DtlsError::NotConnected);
        }
        if data.len() > 16384 {
            return Err(DtlsError::RecordTooLarge(data.len()));
        }
        self.conn.send_record(content_type::APPLICATION_DATA, data)
    }

    /// Sends close_notify; a [`DtlsEvent::Closed`] follows.
    pub fn close(&mut self) {
        match &mut self.v13 {
            Some(v) => v.conn.close(),
            None => self.conn.close(),
        }
    }

    /// RFC 5705 (1.2) or RFC 8446 §7.5 (1.3) keying material for any label (no context),
    /// once connected.
    pub fn export_keying_material(&self, label: &str, len: usize) -> Option<Vec<u8>> {
        if let Some(v) = &self.v13 {
            let exporter = v.conn.exporter.as_ref()?;
            return schedule::export(schedule::DTLS13, exporter, label.as_bytes(), &[], len).ok();
        }
        let (master, client_random, server_random) = self.conn.exporter.as_deref()?;
        Some(prf::export(
            master,
            label,
            client_random,
            server_random,
            len,
        ))
    }
}
