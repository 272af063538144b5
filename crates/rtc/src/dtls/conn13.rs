//! What both DTLS 1.3 roles share: records in and out per epoch (0 clear, 2 handshake, 3
//! application; RFC 9147 §6.1), the current flight with per-record ACK state and its timer
//! (§7), the TLS 1.3-form transcript, and the queues of datagrams and events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::cert::Fingerprint;
use super::codec::Reader;
use super::conn::Phase;
use super::error::{DtlsError, alert};
use super::flight::{Flight, FlightItem, Timer};
use super::msgs::{DTLS1_2, HandshakeHeader};
use super::msgs13::{Handshake13, encode_ack, parse_ack, transcript_form};
use super::reassembly::{Inserted, Message, Reassembler};
use super::record::{MAX_SEQ, Record, ReplayWindow, content_type, write_plain};
use super::record13::{ACK, Cipher13, Ciphertext, is_unified};
use super::schedule::{Secret, TrafficKeys, hash};
use super::{DtlsConfig, DtlsEvent};
use crate::rand::Rng;

/// Protected records that arrive before their epoch's keys (reordering) are kept, this many.
const MAX_EARLY_RECORDS: usize = 8;
const MAX_EARLY_RECORD_LEN: usize = 1500;
/// Record numbers we remember to acknowledge (a client's final flight is a few records).
const MAX_ACKS: usize = 64;

/// State shared by the DTLS 1.3 client and server.
#[derive(Debug)]
pub struct Conn13 {
    pub config: Arc<DtlsConfig>,
    pub rng: Rng,
    pub is_client: bool,
    pub expected_fingerprint: Fingerprint,
    pub phase: Phase,
    /// Keys for epochs 2 and 3, each direction.
    write: [Option<Cipher13>; 2],
    read: [Option<Cipher13>; 2],
    /// Next sequence number per epoch 0..=3.
    write_seq: [u64; 4],
    replay: [ReplayWindow; 4],
    /// Epoch for alerts, ACKs and application data.
    write_epoch: u16,
    pub reassembler: Reassembler,
    /// message_seq of our next handshake message.
    pub next_send_seq: u16,
    /// Handshake messages so far in TLS 1.3 form (RFC 9147 §5.2).
    pub transcript: Vec<u8>,
    /// message_seq of the peer's last message of its latest flight: a retransmission of it
    /// means our answer was lost.
    pub peer_flight_end: Option<u16>,
    flight: Flight,
    /// Per record of `flight`: acknowledged by the peer (RFC 9147 §7.1).
    acked: Vec<Vec<bool>>,
    /// Record numbers of our latest transmission → (datagram, record) in `flight`.
    sent: Vec<(u16, u64, usize, usize)>,
    pub timer: Timer,
    out: VecDeque<Vec<u8>>,
    pub events: VecDeque<DtlsEvent>,
    /// Record numbers of the peer's protected handshake records, for our ACK.
    pub received: Vec<(u16, u64)>,
    /// exporter_master_secret once connected.
    pub exporter: Option<Secret>,
    /// The key exchange group used.
    pub group: u16,
    early: Vec<Vec<u8>>,
}

impl Conn13 {
    pub fn new(
        config: Arc<DtlsConfig>,
        rng: Rng,
        is_client: bool,
        expected_fingerprint: Fingerprint,
    ) -> Self {
        let timer = Timer::new(config.initial_rto);
        Conn13 {
            config,
            rng,
            is_client,
            expected_fingerprint,
            phase: Phase::Handshaking,
            write: [None, None],
            read: [None, None],
            write_seq: [0; 4],
            replay: Default::default(),
            write_epoch: 0,
            reassembler: Reassembler::new(false),
            next_send_seq: 0,
            transcript: Vec::new(),
            peer_flight_end: None,
            flight: Flight::default(),
            acked: Vec::new(),
            sent: Vec::new(),
            timer,
            out: VecDeque::new(),
            events: VecDeque::new(),
            received: Vec::new(),
            exporter: None,
            group: 0,
            early: Vec::new(),
        }
    }

    /// Adds a message to the transcript in TLS 1.3 form.
    pub fn add_to_transcript(&mut self, msg_type: u8, body: &[u8]) {
        self.transcript
            .extend_from_slice(&transcript_form(msg_type, body));
    }

    /// The hash of the transcript so far.
    pub fn transcript_hash(&self) -> Secret {
        hash(&self.transcript)
    }

    /// Assigns the next message_seq to `msg`, adds it to the transcript and returns it as a
    /// flight item in `epoch`.
    pub fn message(&mut self, epoch: u16, msg: &Handshake13) -> FlightItem {
        let seq = self.next_send_seq;
        self.next_send_seq = seq.wrapping_add(1);
        let mut body = Vec::new();
        msg.encode(&mut body);
        self.add_to_transcript(msg.msg_type(), &body);
        FlightItem::Handshake(epoch, msg.msg_type(), seq, body)
    }

    /// Installs keys for `epoch` (2 or 3) in one direction.
    pub fn install(
        &mut self,
        epoch: u16,
        write: bool,
        keys: &TrafficKeys,
    ) -> Result<(), DtlsError> {
        let cipher = Some(Cipher13::new(keys)?);
        let idx = usize::from(epoch.saturating_sub(2).min(1));
        if write {
            self.write[idx] = cipher;
            self.write_epoch = epoch;
        } else {
            self.read[idx] = cipher;
        }
        Ok(())
    }

    /// Sends a new flight, replacing the previous one. With `expects_reply` the timer runs
    /// until the peer's next flight (or an ACK) arrives; RFC 9147 §7 has the last flight of
    /// a handshake acknowledged explicitly, which the caller asks for with `expects_reply`.
    pub fn send_flight(&mut self, now: Instant, items: Vec<FlightItem>, expects_reply: bool) {
        self.flight = Flight::new(items, self.config.mtu);
        self.acked = self
            .flight
            .datagrams
            .iter()
            .map(|d| vec![false; d.len()])
            .collect();
        self.transmit_flight();
        if expects_reply {
            self.timer.start(now);
        } else {
            self.timer.stop();
        }
    }

    /// Makes `items` (already sent by the DTLS 1.2 machinery) the flight to repeat.
    pub fn arm_flight(&mut self, now: Instant, items: Vec<FlightItem>) {
        self.flight = Flight::new(items, self.config.mtu);
        self.acked = self
            .flight
            .datagrams
            .iter()
            .map(|d| vec![false; d.len()])
            .collect();
        self.timer.start(now);
    }

    /// Takes over what the DTLS 1.2 machinery queued before the switch to 1.3.
    pub fn adopt(&mut self, out: VecDeque<Vec<u8>>, events: VecDeque<DtlsEvent>, epoch0_seq: u64) {
        self.out = out;
        self.events = events;
        self.write_seq[0] = epoch0_seq;
    }

    /// Forgets our flight: the peer's answer proved it arrived (a connected server keeps
    /// nothing it will not send again).
    pub fn drop_flight(&mut self) {
        self.flight = Flight::default();
        self.acked = Vec::new();
        self.sent = Vec::new();
        self.timer.stop();
    }

    /// Sends the records of the current flight not acknowledged yet, with fresh record
    /// sequence numbers (RFC 9147 §7.1: only unacknowledged records are repeated).
    pub fn transmit_flight(&mut self) {
        let flight = std::mem::take(&mut self.flight);
        self.sent.clear();
        for (di, datagram) in flight.datagrams.iter().enumerate() {
            let mut buf = Vec::with_capacity(self.config.mtu);
            for (ri, rec) in datagram.iter().enumerate() {
                if self.acked.get(di).and_then(|a| a.get(ri)).copied() == Some(true) {
                    continue;
                }
                let seq = self.write_seq[usize::from(rec.epoch.min(3))];
                if self
                    .write_record(&mut buf, rec.content_type, rec.epoch, &rec.payload)
                    .is_err()
                {
                    self.flight = flight;
                    return self.fail(DtlsError::Internal("record protection"));
                }
                self.sent.push((rec.epoch, seq, di, ri));
            }
            if !buf.is_empty() {
                self.out.push_back(buf);
            }
        }
        self.flight = flight;
    }

    fn write_record(
        &mut self,
        buf: &mut Vec<u8>,
        ct: u8,
        epoch: u16,
        payload: &[u8],
    ) -> Result<(), DtlsError> {
        let e = usize::from(epoch.min(3));
        let seq = self.write_seq[e];
        // Record numbers of a protected epoch travel as 16 bits; 2^48 is the hard limit.
        if seq > MAX_SEQ {
            return Err(DtlsError::Internal("sequence numbers exhausted"));
        }
        self.write_seq[e] = seq + 1;
        if epoch == 0 {
            write_plain(buf, ct, DTLS1_2, seq, payload);
            return Ok(());
        }
        let idx = usize::from(epoch.saturating_sub(2).min(1));
        match &self.write[idx] {
            Some(c) => c.seal(buf, ct, epoch, seq, payload),
            None => Err(DtlsError::Internal("no keys for epoch")),
        }
    }

    /// Sends one record in its own datagram in the current write epoch.
    pub fn send_record(&mut self, ct: u8, payload: &[u8]) -> Result<(), DtlsError> {
        let mut buf = Vec::with_capacity(payload.len() + 32);
        self.write_record(&mut buf, ct, self.write_epoch, payload)?;
        self.out.push_back(buf);
        Ok(())
    }

    /// Acknowledges the peer's protected handshake records received so far (RFC 9147 §7).
    pub fn send_ack(&mut self) {
        if self.received.is_empty() {
            return;
        }
        let body = encode_ack(&self.received);
        if self.send_record(ACK, &body).is_err() {
            self.fail(DtlsError::Internal("record protection"));
        }
    }

    fn handle_ack(&mut self, body: &[u8]) {
        let Ok(list) = parse_ack(body) else { return };
        for (epoch, seq) in list {
            if let Some(&(_, _, di, ri)) = self.sent.iter().find(|s| s.0 == epoch && s.1 == seq)
                && let Some(a) = self.acked.get_mut(di).and_then(|d| d.get_mut(ri))
            {
                *a = true;
            }
        }
        // Everything acknowledged: the flight is done (§7.1), nothing more to repeat.
        if !self.acked.is_empty() && self.acked.iter().all(|d| d.iter().all(|&a| a)) {
            self.timer.stop();
            self.flight = Flight::default();
            self.acked.clear();
        }
    }

    /// Parses a datagram's records; returns the complete handshake messages in order. Alerts,
    /// ACKs and application data are handled here.
    pub fn read_datagram(&mut self, datagram: &[u8]) -> Vec<Message> {
        let mut messages = Vec::new();
        self.read_records(datagram, &mut messages, true);
        messages
    }

    fn read_records(&mut self, datagram: &[u8], messages: &mut Vec<Message>, keep_early: bool) {
        let mut r = Reader::new(datagram, "record");
        while !r.is_empty() && self.active() {
            let first = datagram.get(datagram.len() - r.len()).copied().unwrap_or(0);
            if is_unified(first) {
                let before = r.clone();
                let Ok(rec) = Ciphertext::parse(&mut r) else {
                    return;
                };
                let epoch = u16::from(rec.epoch_bits);
                if epoch < 2 {
                    continue; // epoch 1 is 0-RTT, which we never accept
                }
                let idx = usize::from(epoch - 2);
                let Some(cipher) = &self.read[idx] else {
                    let raw = before.clone().take(before.len() - r.len()).unwrap_or(&[]);
                    if keep_early
                        && self.early.len() < MAX_EARLY_RECORDS
                        && raw.len() <= MAX_EARLY_RECORD_LEN
                    {
                        self.early.push(raw.to_vec());
                    }
                    continue;
                };
                let e = usize::from(epoch);
                let Some(opened) = cipher.open(&rec, self.replay[e].next()) else {
                    continue;
                };
                if !self.replay[e].check(opened.seq) {
                    continue;
                }
                self.replay[e].mark(opened.seq);
                self.dispatch(
                    epoch,
                    opened.seq,
                    opened.content_type,
                    &opened.content,
                    messages,
                );
            } else {
                let Ok(rec) = Record::parse(&mut r) else {
                    return;
                };
                if rec.epoch != 0 {
                    continue;
                }
                if !self.replay[0].check(rec.seq) {
                    continue;
                }
                self.replay[0].mark(rec.seq);
                self.dispatch(0, rec.seq, rec.content_type, rec.fragment, messages);
            }
        }
    }

    /// Records that arrived before their keys get their turn once keys are installed.
    pub fn replay_early(&mut self) -> Vec<Message> {
        let mut messages = Vec::new();
        for raw in std::mem::take(&mut self.early) {
            self.read_records(&raw, &mut messages, false);
        }
        messages
    }

    fn dispatch(
        &mut self,
        epoch: u16,
        seq: u64,
        ct: u8,
        content: &[u8],
        messages: &mut Vec<Message>,
    ) {
        match ct {
            content_type::HANDSHAKE => {
                // Once connected, epoch 0 is unauthenticated noise.
                if epoch == 0 && self.phase == Phase::Connected {
                    return;
                }
                if epoch >= 2 && self.received.len() < MAX_ACKS {
                    self.received.push((epoch, seq));
                }
                self.handshake_fragments(epoch, content, messages);
            }
            content_type::ALERT => self.handle_alert(epoch, content),
            ACK if epoch >= 2 => self.handle_ack(content),
            content_type::APPLICATION_DATA if epoch == 3 && self.phase == Phase::Connected => {
                self.events
                    .push_back(DtlsEvent::ApplicationData(content.to_vec()));
            }
            _ => {}
        }
    }

    fn handshake_fragments(&mut self, epoch: u16, content: &[u8], messages: &mut Vec<Message>) {
        let mut r = Reader::new(content, "handshake fragment");
        while !r.is_empty() {
            let Ok((h, fragment)) = HandshakeHeader::parse(&mut r) else {
                return;
            };
            if let Inserted::Old { seq, offset } = self.reassembler.insert(epoch, &h, fragment)
                && offset == 0
                && self.peer_flight_end == Some(seq)
            {
                // The peer repeats its last flight: our answer (a flight, or the ACK that
                // ends a handshake) was lost (RFC 9147 §5.8, §7).
                if self.phase == Phase::Connected && !self.is_client {
                    self.send_ack();
                } else if self.phase == Phase::Handshaking || self.flight_pending() {
                    self.transmit_flight();
                }
            }
            while let Some(m) = self.reassembler.pop() {
                messages.push(m);
            }
        }
    }

    fn flight_pending(&self) -> bool {
        self.acked.iter().any(|d| d.iter().any(|&a| !a))
    }

    fn handle_alert(&mut self, epoch: u16, plain: &[u8]) {
        let [level, desc] = plain else { return };
        // Once keys are in use, unprotected alerts are ignored: anyone could forge them.
        if epoch == 0 && (self.phase == Phase::Connected || self.read[0].is_some()) {
            return;
        }
        if *desc == alert::CLOSE_NOTIFY {
            self.close();
        } else if *level == 2 || epoch > 0 {
            // RFC 8446 §6: in 1.3 every alert but close_notify and user_canceled is fatal.
            if *desc == 90 {
                return; // user_canceled, always followed by close_notify
            }
            self.phase = Phase::Failed;
            self.timer.stop();
            self.events
                .push_back(DtlsEvent::Failed(DtlsError::AlertReceived(*desc)));
        }
    }

    /// True while records may still be processed.
    pub fn active(&self) -> bool {
        matches!(self.phase, Phase::Handshaking | Phase::Connected)
    }

    /// True once epoch-2 read keys are in place (early records can be replayed).
    pub fn has_read_keys(&self) -> bool {
        self.read[0].is_some()
    }

    /// True if protected records wait for keys.
    pub fn has_early(&self) -> bool {
        !self.early.is_empty()
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

    /// Sends close_notify (RFC 8446 §6.1) and reports Closed.
    pub fn close(&mut self) {
        if matches!(self.phase, Phase::Failed | Phase::Closed) {
            return;
        }
        let _ = self.send_record(content_type::ALERT, &[1, alert::CLOSE_NOTIFY]);
        self.phase = Phase::Closed;
        self.timer.stop();
        self.events.push_back(DtlsEvent::Closed);
    }

    /// Retransmits the unacknowledged records of our flight when the timer expires (§5.8).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.timer.deadline else {
            return;
        };
        if now < deadline || !self.active() {
            return;
        }
        if self.timer.count >= self.config.max_retransmits {
            return self.fail(DtlsError::Timeout(self.timer.count));
        }
        self.transmit_flight();
        self.timer.backoff(now);
    }

    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Sends application data in epoch 3.
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        if self.phase != Phase::Connected || self.write_epoch != 3 {
            return Err(DtlsError::NotConnected);
        }
        self.send_record(content_type::APPLICATION_DATA, data)
    }
}
