//! Our outgoing flights (RFC 6347 §4.2.4): fragmented and packed into datagrams once, so
//! every retransmission repeats the same fragment boundaries, and the retransmission timer.

use std::time::{Duration, Instant};

use super::msgs::HandshakeHeader;
use super::record::{AEAD_OVERHEAD, HEADER_LEN, content_type};

/// A record of a flight before protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainRecord {
    /// Epoch to send it in (0 = clear, 1 = protected).
    pub epoch: u16,
    /// ContentType.
    pub content_type: u8,
    /// Plaintext payload.
    pub payload: Vec<u8>,
}

/// One item of a flight.
#[derive(Debug, Clone)]
pub enum FlightItem {
    /// A handshake message: epoch, type, message_seq and body.
    Handshake(u16, u8, u16, Vec<u8>),
    /// ChangeCipherSpec (always epoch 0).
    ChangeCipherSpec,
}

/// A flight split into datagrams of records.
#[derive(Debug, Clone, Default)]
pub struct Flight {
    /// Each inner list is one datagram.
    pub datagrams: Vec<Vec<PlainRecord>>,
}

/// Bytes a record adds around its payload.
fn overhead(epoch: u16) -> usize {
    HEADER_LEN + if epoch == 0 { 0 } else { AEAD_OVERHEAD }
}

/// Smallest handshake fragment worth starting at the end of a datagram.
const MIN_FRAGMENT: usize = 64;

/// Packs records into datagrams of at most `mtu` bytes.
struct Packer {
    mtu: usize,
    used: usize,
    datagrams: Vec<Vec<PlainRecord>>,
    current: Vec<PlainRecord>,
}

impl Packer {
    fn flush(&mut self) {
        if !self.current.is_empty() {
            self.datagrams.push(std::mem::take(&mut self.current));
        }
        self.used = 0;
    }

    fn push(&mut self, rec: PlainRecord) {
        let size = overhead(rec.epoch) + rec.payload.len();
        if self.used + size > self.mtu {
            self.flush();
        }
        self.used += size;
        self.current.push(rec);
    }
}

impl Flight {
    /// Fragments and packs `items` into datagrams of at most `mtu` bytes (`mtu` ≥ 200).
    pub fn new(items: Vec<FlightItem>, mtu: usize) -> Self {
        let mut p = Packer {
            mtu,
            used: 0,
            datagrams: Vec::new(),
            current: Vec::new(),
        };
        for item in items {
            let (epoch, msg_type, seq, body) = match item {
                FlightItem::ChangeCipherSpec => {
                    p.push(PlainRecord {
                        epoch: 0,
                        content_type: content_type::CHANGE_CIPHER_SPEC,
                        payload: vec![1],
                    });
                    continue;
                }
                FlightItem::Handshake(epoch, msg_type, seq, body) => (epoch, msg_type, seq, body),
            };
            let per_record = overhead(epoch) + HandshakeHeader::LEN;
            let mut offset = 0;
            loop {
                let remaining = body.len() - offset;
                let space = mtu.saturating_sub(p.used + per_record);
                if space < remaining.min(MIN_FRAGMENT) && p.used > 0 {
                    p.flush();
                    continue;
                }
                let n = remaining.min(space.max(1));
                let mut payload = Vec::with_capacity(HandshakeHeader::LEN + n);
                HandshakeHeader {
                    msg_type,
                    length: body.len() as u32,
                    message_seq: seq,
                    fragment_offset: offset as u32,
                    fragment_length: n as u32,
                }
                .encode(&mut payload);
                payload.extend_from_slice(body.get(offset..offset + n).unwrap_or(&[]));
                p.push(PlainRecord {
                    epoch,
                    content_type: content_type::HANDSHAKE,
                    payload,
                });
                offset += n;
                if offset >= body.len() {
                    break;
                }
            }
        }
        p.flush();
        Flight {
            datagrams: p.datagrams,
        }
    }
}

/// The retransmission timer (RFC 6347 §4.2.4.1): 1 s initial, doubling, capped at 60 s.
#[derive(Debug, Clone)]
pub struct Timer {
    initial: Duration,
    rto: Duration,
    /// When to retransmit next, if armed.
    pub deadline: Option<Instant>,
    /// Retransmissions of the current flight so far.
    pub count: u32,
}

impl Timer {
    /// A disarmed timer starting at `initial`.
    pub fn new(initial: Duration) -> Self {
        Timer {
            initial,
            rto: initial,
            deadline: None,
            count: 0,
        }
    }

    /// Arms it for a new flight sent at `now`.
    pub fn start(&mut self, now: Instant) {
        self.rto = self.initial;
        self.count = 0;
        self.deadline = Some(now + self.rto);
    }

    /// Backs off after a retransmission at `now`.
    pub fn backoff(&mut self, now: Instant) {
        self.count += 1;
        self.rto = (self.rto * 2).min(Duration::from_secs(60));
        self.deadline = Some(now + self.rto);
    }

    /// Disarms it.
    pub fn stop(&mut self) {
        self.deadline = None;
    }
}
