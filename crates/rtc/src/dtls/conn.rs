//! What both roles share: the record layer in and out, the current flight and its timer,
//! the transcript, and the queues of datagrams and events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::cert::Fingerprint;
use super::error::{DtlsError, alert};
use super::flight::{Flight, FlightItem, Timer};
use super::msgs::{DTLS1_2, Handshake, full_message};
use super::prf::TrafficKeys;
use super::reassembly::Reassembler;
use super::record::{Cipher, MAX_SEQ, Record, ReplayWindow, content_type, write_plain};
use super::{DtlsConfig, DtlsEvent};
use crate::rand::Rng;

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Handshake in progress.
    Handshaking,
    /// Handshake done; application data flows.
    Connected,
    /// close_notify sent or received.
    Closed,
    /// Failed; nothing more happens.
    Failed,
}

/// Epoch-1 records that arrive before we have the keys (reordering: in practice the peer's
/// Finished) are kept, this many and this small.
const MAX_EARLY_RECORDS: usize = 8;
const MAX_EARLY_RECORD_LEN: usize = 256;

/// Master secret, client random, server random.
pub type Exporter = ([u8; 48], [u8; 32], [u8; 32]);

/// What the DTLS 1.2 machinery hands to DTLS 1.3 when the peer chose it.
#[derive(Debug)]
pub enum Upgrade {
    /// The server accepted a 1.3 ClientHello.
    Server(super::hello13::Upgrade13),
    /// The server answered our ClientHello with a 1.3 ServerHello or HelloRetryRequest.
    Client(super::client13::Offer, super::reassembly::Message),
}

/// State shared by client and server.
#[derive(Debug)]
pub struct Conn {
    pub config: Arc<DtlsConfig>,
    pub rng: Rng,
    pub is_client: bool,
    /// The peer certificate fingerprint announced in SDP.
    pub expected_fingerprint: Fingerprint,
    pub phase: Phase,
    /// Next record sequence number per epoch.
    pub write_seq: [u64; 2],
    write_cipher: Option<Cipher>,
    read_cipher: Option<Cipher>,
    /// Our ChangeCipherSpec went out: alerts and data go in epoch 1.
    sent_ccs: bool,
    pub replay: [ReplayWindow; 2],
    /// Protected records that came before their keys.
    pub early: Vec<Vec<u8>>,
    pub reassembler: Reassembler,
    /// message_seq of our next handshake message.
    pub next_send_seq: u16,
    /// Handshake messages so far, as RFC 6347 §4.2.6 hashes them.
    pub transcript: Vec<u8>,
    /// message_seq of the last message of the peer's latest complete flight: a retransmission
    /// of it means our answer was lost (§4.2.4).
    pub peer_flight_end: Option<u16>,
    /// Highest epoch-0 record sequence number received (RFC 6347 §4.2.1 echoes it).
    pub peer_epoch0_seq: u64,
    /// Master secret and randoms, once connected (RFC 5705 exporter).
    pub exporter: Option<Box<Exporter>>,
    /// The datagram being handled came from an address the caller validated (ICE): a server
    /// needs no cookie from it.
    pub source_validated: bool,
    /// The ECDHE group, once chosen.
    pub group: Option<u16>,
    /// Set when the peer chose DTLS 1.3: [`super::Dtls`] switches to it.
    pub upgrade: Option<Box<Upgrade>>,
    flight: Flight,
    pub timer: Timer,
    out: VecDeque<Vec<u8>>,
    pub events: VecDeque<DtlsEvent>,
    scratch: Vec<u8>,
}

impl Conn {
    pub fn new(
        config: Arc<DtlsConfig>,
        rng: Rng,
        is_client: bool,
        expected_fingerprint: Fingerprint,
    ) -> Self {
        let timer = Timer::new(config.initial_rto);
        Conn {
            config,
            rng,
            is_client,
            expected_fingerprint,
            phase: Phase::Handshaking,
            write_seq: [0; 2],
            write_cipher: None,
            read_cipher: None,
            sent_ccs: false,
            replay: Default::default(),
            early: Vec::new(),
            reassembler: Reassembler::new(!is_client),
            next_send_seq: 0,
            transcript: Vec::new(),
            peer_flight_end: None,
            peer_epoch0_seq: 0,
            exporter: None,
            source_validated: false,
            group: None,
            upgrade: None,
            flight: Flight::default(),
            timer,
            out: VecDeque::new(),
            events: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// Assigns the next message_seq to `msg`, adds it to the transcript and returns it as a
    /// flight item in `epoch`.
    pub fn message(&mut self, epoch: u16, msg: &Handshake) -> FlightItem {
        let seq = self.next_send_seq;
        self.next_send_seq = seq.wrapping_add(1);
        let mut body = Vec::new();
        msg.encode(&mut body);
        self.transcript
            .extend_from_slice(&full_message(msg.msg_type(), seq, &body));
        FlightItem::Handshake(epoch, msg.msg_type(), seq, body)
    }

    /// Adds a received message to the transcript.
    pub fn add_received(&mut self, msg_type: u8, seq: u16, body: &[u8]) {
        self.transcript
            .extend_from_slice(&full_message(msg_type, seq, body));
    }

    /// Sends a new flight, replacing the previous one. With `expects_reply` the timer runs
    /// until the peer's next flight arrives; a final flight is only repeated on demand.
    pub fn send_flight(&mut self, now: Instant, items: Vec<FlightItem>, expects_reply: bool) {
        if items
            .iter()
            .any(|i| matches!(i, FlightItem::ChangeCipherSpec))
        {
            self.sent_ccs = true;
        }
        self.flight = Flight::new(items, self.config.mtu);
        self.transmit_flight();
        if expects_reply {
            self.timer.start(now);
        } else {
            self.timer.stop();
        }
    }

    /// Sends the current flight again with fresh record sequence numbers.
    pub fn transmit_flight(&mut self) {
        let flight = std::mem::take(&mut self.flight);
        for datagram in &flight.datagrams {
            let mut buf = Vec::with_capacity(self.config.mtu);
            for rec in datagram {
                if self
                    .write_record(&mut buf, rec.content_type, rec.epoch, &rec.payload)
                    .is_err()
                {
                    return self.fail(DtlsError::Internal("record protection"));
                }
            }
            self.out.push_back(buf);
        }
        self.flight = flight;
    }

    /// Appends one record in `epoch` to `buf`.
    fn write_record(
        &mut self,
        buf: &mut Vec<u8>,
        ct: u8,
        epoch: u16,
        payload: &[u8],
    ) -> Result<(), DtlsError> {
        let idx = usize::from(epoch.min(1));
        let seq = self.write_seq[idx];
        if seq > MAX_SEQ {
            return Err(DtlsError::Internal("sequence numbers exhausted"));
        }
        self.write_seq[idx] = seq + 1;
        match (epoch, &self.write_cipher) {
            (0, _) => write_plain(buf, ct, DTLS1_2, seq, payload),
            (_, Some(c)) => c.seal(buf, ct, 1, seq, payload)?,
            (_, None) => return Err(DtlsError::Internal("no epoch 1 keys")),
        }
        Ok(())
    }

    /// Sends one record in its own datagram, in the current write epoch.
    pub fn send_record(&mut self, ct: u8, payload: &[u8]) -> Result<(), DtlsError> {
        let mut buf = Vec::with_capacity(payload.len() + 40);
        let epoch = u16::from(self.sent_ccs);
        self.write_record(&mut buf, ct, epoch, payload)?;
        self.out.push_back(buf);
        Ok(())
    }

    /// Queues a datagram built elsewhere (the stateless HelloVerifyRequest).
    pub fn queue(&mut self, datagram: Vec<u8>) {
        self.out.push_back(datagram);
    }

    /// Installs the epoch-1 keys for both directions.
    pub fn install_keys(&mut self, keys: &TrafficKeys) -> Result<(), DtlsError> {
        let client = Cipher::new(&keys.client_key, keys.client_iv)?;
        let server = Cipher::new(&keys.server_key, keys.server_iv)?;
        let (write, read) = if self.is_client {
            (client, server)
        } else {
            (server, client)
        };
        self.write_cipher = Some(write);
        self.read_cipher = Some(read);
        Ok(())
    }

    /// Authenticates and decrypts an epoch-1 record into the scratch buffer. `None`: drop it
    /// (no keys yet — it is then kept for later —, replayed, or forged).
    pub fn open(&mut self, rec: &Record<'_>, raw: &[u8]) -> Option<Vec<u8>> {
        let Some(cipher) = &self.read_cipher else {
            if self.early.len() < MAX_EARLY_RECORDS && raw.len() <= MAX_EARLY_RECORD_LEN {
                self.early.push(raw.to_vec());
            }
            return None;
        };
        if !self.replay[1].check(rec.seq) {
            return None;
        }
        let plain = cipher.open(rec, &mut self.scratch)?.to_vec();
        self.replay[1].mark(rec.seq);
        Some(plain)
    }

    /// True once we can read epoch 1.
    pub fn has_read_keys(&self) -> bool {
        self.read_cipher.is_some()
    }

    /// Ends the connection with `err`: sends its alert, reports it, stops everything.
    pub fn fail(&mut self, err: DtlsError) {
        if matches!(self.phase, Phase::Failed | Phase::Closed) {
            return;
        }
        if let Some(desc) = err.alert() {
            let _ = self.send_record(content_type::ALERT, &[2, desc]);
        }
        self.phase = Phase::Failed;
        self.timer.stop();
        self.events.push_back(DtlsEvent::Failed(err));
    }

    /// Sends close_notify (RFC 5246 §7.2.1) and reports Closed.
    pub fn close(&mut self) {
        if matches!(self.phase, Phase::Failed | Phase::Closed) {
            return;
        }
        let _ = self.send_record(content_type::ALERT, &[1, alert::CLOSE_NOTIFY]);
        self.phase = Phase::Closed;
        self.timer.stop();
        self.events.push_back(DtlsEvent::Closed);
    }

    /// Handles the retransmission timer (§4.2.4.1).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.timer.deadline else {
            return;
        };
        if now < deadline || self.phase != Phase::Handshaking {
            return;
        }
        if self.timer.count >= self.config.max_retransmits {
            return self.fail(DtlsError::Timeout(self.timer.count));
        }
        self.transmit_flight();
        self.timer.backoff(now);
    }

    /// Hands what is queued to the DTLS 1.3 connection that takes over.
    pub fn take_queues(&mut self) -> (VecDeque<Vec<u8>>, VecDeque<DtlsEvent>) {
        (
            std::mem::take(&mut self.out),
            std::mem::take(&mut self.events),
        )
    }

    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
}
