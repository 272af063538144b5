//! Handshake message reassembly (RFC 6347 §4.2.3): fragments from any number of records and
//! datagrams, in any order, overlapping or duplicated, with bounded memory.

use std::collections::BTreeMap;

use super::msgs::HandshakeHeader;

/// Largest handshake message we accept (certificates of WebRTC peers are ~0.5–2 KiB).
pub const MAX_MESSAGE_LEN: u32 = 64 * 1024;
/// How far ahead of the next expected message_seq we buffer.
const MAX_AHEAD: u32 = 8;
/// Total bytes held for incomplete or future messages.
const MAX_BUFFERED: usize = 128 * 1024;
/// A fragment that neither starts nor ends its message must carry at least this much: every
/// implementation fills whole datagrams in the middle of a message (ours at MTU ≥ 200), and
/// only a message's first fragment may be squeezed into the end of a datagram. Smaller ones
/// are an attack on the range bookkeeping (one byte each: thousands of ranges).
pub const MIN_FRAGMENT: usize = 64;
/// Handshake fragments one connection may send us in all, retransmissions and duplicates
/// included. A real handshake needs ~10–60 (our largest flight, up to 6 retransmissions).
pub const MAX_FRAGMENTS: u32 = 512;
/// Handshake bytes one connection may send us in all (a 10 KB certificate chain sent 7 times
/// fits several times over).
pub const MAX_FRAGMENT_BYTES: usize = 256 * 1024;

/// A complete handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// HandshakeType.
    pub msg_type: u8,
    /// message_seq.
    pub seq: u16,
    /// Epoch of the record that carried its first fragment.
    pub epoch: u16,
    /// The reassembled body.
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct Partial {
    msg: Message,
    /// Received byte ranges, start → end, disjoint and not touching: an interval set, so a
    /// fragment costs O(log n) however the peer overlaps or repeats them (RFC 6347 §4.2.3).
    ranges: BTreeMap<u32, u32>,
}

impl Partial {
    fn complete(&self) -> bool {
        self.ranges.len() == 1
            && self
                .ranges
                .first_key_value()
                .is_some_and(|(&s, &e)| s == 0 && e as usize == self.msg.body.len())
    }

    /// Adds `start..end`, merging it with the ranges it overlaps or touches. Each range is
    /// removed at most once after it was added, so this is O(log n) amortized.
    fn add(&mut self, mut start: u32, mut end: u32) {
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start
        {
            if e >= end {
                return; // nothing new
            }
            self.ranges.remove(&s);
            start = s;
        }
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            self.ranges.remove(&s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
    }
}

/// What became of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored (or already had it).
    Buffered,
    /// Belongs to a message we already processed: the peer is retransmitting (§4.2.4).
    Old {
        /// Its message_seq.
        seq: u16,
        /// Its fragment_offset.
        offset: u32,
    },
    /// Too far ahead, too large, inconsistent, too small, or over the memory bound or the
    /// connection's budget.
    Dropped,
}

/// Collects fragments until the next expected message is complete.
#[derive(Debug, Default)]
pub struct Reassembler {
    next_seq: u32,
    /// Before a server has verified a cookie it takes a ClientHello of any message_seq.
    any_seq: bool,
    pending: Vec<Partial>,
    /// Fragments and bytes taken so far, against [`MAX_FRAGMENTS`] and [`MAX_FRAGMENT_BYTES`].
    fragments: u32,
    bytes: usize,
}

impl Reassembler {
    /// Expects message_seq 0 first, or any message_seq when `any_seq` (a server before the
    /// cookie exchange, RFC 6347 §4.2.2).
    pub fn new(any_seq: bool) -> Self {
        Reassembler {
            next_seq: 0,
            any_seq,
            pending: Vec::new(),
            fragments: 0,
            bytes: 0,
        }
    }

    /// From now on, only `seq` and later are delivered.
    pub fn expect(&mut self, seq: u16) {
        self.any_seq = false;
        self.next_seq = u32::from(seq);
        let next = self.next_seq;
        self.pending.retain(|p| u32::from(p.msg.seq) >= next);
    }

    /// The message_seq expected next.
    pub fn next_seq(&self) -> u16 {
        self.next_seq as u16
    }

    fn buffered(&self) -> usize {
        self.pending.iter().map(|p| p.msg.body.len()).sum()
    }

    /// Received byte ranges held across all incomplete messages (the bookkeeping a peer's
    /// fragments cost us).
    pub fn ranges_kept(&self) -> usize {
        self.pending.iter().map(|p| p.ranges.len()).sum()
    }

    /// Handshake fragments taken so far (each counts against [`MAX_FRAGMENTS`]).
    pub fn fragments_taken(&self) -> u32 {
        self.fragments
    }

    /// Takes one fragment.
    pub fn insert(&mut self, epoch: u16, h: &HandshakeHeader, fragment: &[u8]) -> Inserted {
        // The budget counts everything, duplicates and retransmissions of old messages too:
        // each costs work, and an old one may make us repeat a whole flight.
        if self.fragments >= MAX_FRAGMENTS
            || self.bytes.saturating_add(fragment.len()) > MAX_FRAGMENT_BYTES
        {
            return Inserted::Dropped;
        }
        self.fragments += 1;
        self.bytes += fragment.len();
        let seq = u32::from(h.message_seq);
        if !self.any_seq && seq < self.next_seq {
            return Inserted::Old {
                seq: h.message_seq,
                offset: h.fragment_offset,
            };
        }
        let limit = if self.any_seq {
            16
        } else {
            self.next_seq + MAX_AHEAD
        };
        if seq >= limit || h.length > MAX_MESSAGE_LEN {
            return Inserted::Dropped;
        }
        let end = h.fragment_offset as usize + fragment.len();
        if h.fragment_offset != 0 && end < h.length as usize && fragment.len() < MIN_FRAGMENT {
            return Inserted::Dropped;
        }
        let idx = match self.pending.iter().position(|p| p.msg.seq == h.message_seq) {
            Some(i) => i,
            None => {
                if self.buffered() + h.length as usize > MAX_BUFFERED {
                    return Inserted::Dropped;
                }
                self.pending.push(Partial {
                    msg: Message {
                        msg_type: h.msg_type,
                        seq: h.message_seq,
                        epoch,
                        body: vec![0; h.length as usize],
                    },
                    ranges: BTreeMap::new(),
                });
                self.pending.len() - 1
            }
        };
        let Some(p) = self.pending.get_mut(idx) else {
            return Inserted::Dropped;
        };
        if p.msg.msg_type != h.msg_type || p.msg.body.len() != h.length as usize {
            return Inserted::Dropped;
        }
        let start = h.fragment_offset as usize;
        let Some(dst) = p.msg.body.get_mut(start..end) else {
            return Inserted::Dropped;
        };
        dst.copy_from_slice(fragment);
        if !fragment.is_empty() || h.length == 0 {
            p.add(h.fragment_offset, h.fragment_offset + fragment.len() as u32);
        }
        Inserted::Buffered
    }

    /// The next complete message in sequence, if any (in `any_seq` mode, any complete one).
    pub fn pop(&mut self) -> Option<Message> {
        let idx = self.pending.iter().position(|p| {
            p.complete() && (self.any_seq || u32::from(p.msg.seq) == self.next_seq)
        })?;
        let p = self.pending.swap_remove(idx);
        if !self.any_seq {
            self.next_seq += 1;
        }
        Some(p.msg)
    }
}
