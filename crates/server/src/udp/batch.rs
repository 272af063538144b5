//! The reused buffers of batched I/O: [`RecvBatch`] (what one `recvmmsg` filled) and
//! [`SendBatch`] (a queue of datagrams written in place, sent by `UdpIo::flush`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::sys::{self, RecvMeta};

/// Bytes reserved for one datagram, received or sent. WebRTC keeps datagrams under the path
/// MTU (~1200–1500 bytes); a longer received datagram is counted as truncated and skipped.
pub const SLOT: usize = 2048;

/// One received datagram, lent by [`RecvBatch::iter_mut`].
#[derive(Debug)]
pub struct Datagram<'a> {
    /// The sender.
    pub source: SocketAddr,
    /// The local address it arrived at (learned per packet on a wildcard bind): reply from
    /// here, and it is the local candidate ICE saw.
    pub local: SocketAddr,
    /// The payload, mutable so SRTP can be unprotected in place.
    pub bytes: &'a mut [u8],
    /// When the kernel received it (SO_TIMESTAMPNS), or when the batch was read if the
    /// kernel gave no stamp: what RTP arrival times (TWCC, jitter) must be measured from.
    pub arrival: Instant,
}

/// Reused receive buffers: up to `capacity` datagrams of [`SLOT`] bytes each.
#[derive(Debug)]
pub struct RecvBatch {
    pub(super) storage: Vec<u8>,
    pub(super) meta: Vec<RecvMeta>,
    /// Local addresses, parallel to `meta` (filled by `UdpIo`).
    pub(super) local: Vec<SocketAddr>,
    /// Arrival times, parallel to `meta` (filled by `UdpIo`).
    pub(super) arrival: Vec<Instant>,
    pub(super) len: usize,
}

impl RecvBatch {
    /// Buffers for `capacity` datagrams per call (clamped to 1..=64); 32 is a good default.
    pub fn new(capacity: usize) -> Self {
        let n = capacity.clamp(1, sys::MAX_MSGS);
        Self {
            storage: vec![0; n * SLOT],
            meta: vec![RecvMeta::EMPTY; n],
            local: vec![RecvMeta::EMPTY.source; n],
            arrival: vec![Instant::now(); n],
            len: 0,
        }
    }

    #[allow(dead_code)] // part of the batch API the tests and benches use
    /// How many datagrams the last receive read (truncated ones included, though
    /// [`RecvBatch::iter_mut`] skips them).
    pub fn len(&self) -> usize {
        self.len
    }

    #[allow(dead_code)] // part of the batch API the tests and benches use
    /// Whether the last receive read nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The datagrams of the last receive, in arrival order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = Datagram<'_>> {
        let items = self.meta.iter().zip(&self.local).zip(&self.arrival);
        self.storage
            .chunks_exact_mut(SLOT)
            .zip(items.take(self.len))
            .filter(|(_, ((m, _), _))| !m.truncated)
            .filter_map(|(buf, ((m, &local), &arrival))| {
                Some(Datagram {
                    source: m.source,
                    local,
                    bytes: buf.get_mut(..m.len)?,
                    arrival,
                })
            })
    }
}

/// A datagram queued in a [`SendBatch`]; its bytes are slot `i` for item `i`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Item {
    pub to: SocketAddr,
    pub from: Option<IpAddr>,
    pub len: u16,
    /// Push order, which loss injection hashes (so a retried flush decides the same).
    pub seq: u64,
}

/// A reused queue of outgoing datagrams. Push a copy, or write in place with
/// [`SendBatch::buf_mut`] and [`SendBatch::commit`]; then `UdpIo::flush`. Datagrams to one
/// destination with one size in a row (a video frame's packets to one viewer) leave in one
/// GSO send. What the socket cannot take now stays queued for the next flush; beyond `limit`
/// queued datagrams, new ones are dropped and counted.
#[derive(Debug)]
pub struct SendBatch {
    /// `items.len()` slots of [`SLOT`] bytes (grows to the high-water mark, never shrinks).
    data: Vec<u8>,
    pub(super) items: Vec<Item>,
    /// Items before this one are done (sent, lost or failed).
    pub(super) head: usize,
    limit: usize,
    next_seq: u64,
    /// Datagrams refused since the last `take_dropped`.
    dropped: u64,
}

impl SendBatch {
    /// A queue that holds at most `limit` datagrams (memory: up to `limit` × [`SLOT`]).
    pub fn new(limit: usize) -> Self {
        Self {
            data: Vec::new(),
            items: Vec::new(),
            head: 0,
            limit: limit.max(1),
            next_seq: 0,
            dropped: 0,
        }
    }

    /// Queues a copy of `bytes` to `to`, sent from local address `from` (the `local` of the
    /// datagram being answered; `None` lets the kernel choose). False if it was dropped:
    /// the queue is full, or `bytes` is empty or longer than [`SLOT`].
    pub fn push(&mut self, to: SocketAddr, from: Option<IpAddr>, bytes: &[u8]) -> bool {
        let Some(buf) = self.buf_mut() else {
            return false;
        };
        let Some(dst) = buf.get_mut(..bytes.len()) else {
            self.dropped += 1;
            return false;
        };
        dst.copy_from_slice(bytes);
        self.commit(to, from, bytes.len())
    }

    /// The next datagram's memory ([`SLOT`] bytes, old contents), to build and protect a
    /// packet in place; queue it with [`SendBatch::commit`]. `None` (counted as a drop) if
    /// the queue is full.
    pub fn buf_mut(&mut self) -> Option<&mut [u8]> {
        if self.items.len() >= self.limit && self.head > 0 {
            self.compact();
        }
        let i = self.items.len();
        if i >= self.limit {
            self.dropped += 1;
            return None;
        }
        if self.data.len() < (i + 1) * SLOT {
            self.data.resize((i + 1) * SLOT, 0);
        }
        self.data.get_mut(i * SLOT..(i + 1) * SLOT)
    }

    /// Queues the first `len` bytes last written through [`SendBatch::buf_mut`] (with no
    /// flush in between). False (a drop) if `len` is 0 or over [`SLOT`], or the queue is full.
    pub fn commit(&mut self, to: SocketAddr, from: Option<IpAddr>, len: usize) -> bool {
        let fits =
            self.items.len() < self.limit && self.data.len() >= (self.items.len() + 1) * SLOT;
        match u16::try_from(len) {
            Ok(len) if fits && len > 0 && usize::from(len) <= SLOT => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.items.push(Item { to, from, len, seq });
                true
            }
            _ => {
                self.dropped += 1;
                false
            }
        }
    }

    /// Whether datagrams wait to be sent (then wait for WRITABLE and flush again).
    pub fn has_pending(&self) -> bool {
        self.head < self.items.len()
    }

    /// How many datagrams are queued.
    pub fn len(&self) -> usize {
        self.items.len() - self.head
    }

    #[allow(dead_code)] // part of the batch API the tests and benches use
    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        !self.has_pending()
    }

    /// The bytes of queued item `i`.
    pub(super) fn bytes(&self, i: usize) -> &[u8] {
        let len = self.items.get(i).map_or(0, |it| usize::from(it.len));
        self.data.get(i * SLOT..i * SLOT + len).unwrap_or(&[])
    }

    /// Marks the next `n` queued items done; moves the rest to the front once they are at
    /// most half the queue, so each datagram is copied at most about once.
    pub(super) fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.items.len());
        if self.head == self.items.len() {
            self.head = 0;
            self.items.clear();
        } else if self.head * 2 >= self.items.len() {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let (head, len) = (self.head, self.items.len());
        self.data.copy_within(head * SLOT..len * SLOT, 0);
        self.items.drain(..head);
        self.head = 0;
    }

    /// Takes every queued datagram out, in order, as `(to, from, bytes)`: how a sink that
    /// does not send (a test's simulated network) empties it.
    #[cfg(test)]
    pub fn drain(&mut self, mut each: impl FnMut(SocketAddr, Option<IpAddr>, &[u8])) {
        for i in self.head..self.items.len() {
            if let Some(item) = self.items.get(i) {
                let (to, from) = (item.to, item.from);
                each(to, from, self.bytes(i));
            }
        }
        self.consume(self.items.len() - self.head);
    }

    /// Drops counted since the last call.
    pub(crate) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}
