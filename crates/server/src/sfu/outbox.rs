//! Where a shard's outgoing datagrams wait: a reused queue, written in place, that the shard
//! hands to its [`Sink`] whenever enough has gathered (and at the end of each round, when the
//! shell calls [`Outbox::flush`]). The shard never sees a socket: the shell installs a sink
//! that sends (the UDP socket, batched with sendmmsg/GSO), and tests install one that
//! collects, so the same code runs on a simulated network.

use std::net::SocketAddr;

use super::tcp_route::{TcpFrames, TcpRoute};
use crate::udp::{SendBatch, UdpStats};

/// Queued datagrams that make the outbox hand its queue to the sink at once: enough for many
/// GSO messages per sendmmsg call, few enough to keep latency in microseconds.
const FLUSH_AT: usize = 256;
/// Datagrams queued before new ones are refused (and counted).
const SEND_QUEUE: usize = 4096;

/// What sends a shard's datagrams.
pub trait Sink: Send {
    /// Sends what `batch` holds, as far as possible now; what cannot go stays queued
    /// ([`SendBatch::has_pending`]) for the next call.
    fn flush(&mut self, batch: &mut SendBatch);
    /// What it sent, refused and dropped so far.
    fn stats(&self) -> UdpStats;
}

/// A shard's queue of outgoing datagrams and the sink that sends them.
pub struct Outbox {
    send: SendBatch,
    sink: Box<dyn Sink>,
    /// Bound to a wildcard address: each datagram names the local address it leaves from
    /// (RFC 8445 §5.1.1.1: a reply leaves from the address the request came to).
    wildcard: bool,
    loss: Option<Loss>,
    /// Datagrams for ICE-TCP peers, set aside for shard 0's connections.
    tcp: TcpRoute,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("queued", &self.send.len())
            .finish_non_exhaustive()
    }
}

/// Test-only loss on the send path (`--test-send-loss`): drops that share of media packets,
/// deterministically, so tests can prove NACK works. (Only media: a lost handshake would
/// merely slow the test down.)
#[derive(Debug)]
struct Loss {
    percent: u32,
    state: u64,
}

impl Loss {
    fn drop_next(&mut self) -> bool {
        // xorshift64: repeatable, and plenty for spreading drops evenly.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % 100) < u64::from(self.percent)
    }
}

impl Outbox {
    /// An outbox sending through `sink`; `wildcard`: the server is bound to an unspecified
    /// address, so each datagram names its source address.
    pub fn new(sink: Box<dyn Sink>, wildcard: bool, loss_percent: u32) -> Self {
        Outbox {
            send: SendBatch::new(SEND_QUEUE),
            sink,
            wildcard,
            loss: (loss_percent > 0).then_some(Loss {
                percent: loss_percent.min(100),
                state: 0x9E37_79B9_7F4A_7C15,
            }),
            tcp: TcpRoute::default(),
        }
    }

    /// Queues one datagram to `to`, leaving from `from` (our local address it is a reply
    /// from). `media` marks SRTP, which the test-only loss may drop.
    pub fn send(&mut self, bytes: &[u8], to: SocketAddr, from: SocketAddr, media: bool) {
        if self.tcp.reaches(to) {
            return self.tcp.push(to, media, bytes);
        }
        if media && self.loss.as_mut().is_some_and(Loss::drop_next) {
            return;
        }
        let source = self.wildcard.then_some(from.ip());
        // A refused datagram is counted by the batch; the peer's retransmission covers it.
        let _ = self.send.push(to, source, bytes);
        self.flush_if_full();
    }

    /// Queues a datagram that `write` builds straight into the queue's memory (no copy): it
    /// gets a buffer of [`crate::udp::SLOT`] bytes and returns the datagram's length, or
    /// `None` to send nothing. `media` marks SRTP, which the test-only loss may drop.
    pub fn send_with(
        &mut self,
        to: SocketAddr,
        from: SocketAddr,
        media: bool,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) {
        if self.tcp.reaches(to) {
            return self.tcp.push_with(to, media, write);
        }
        let source = self.wildcard.then_some(from.ip());
        let Some(buf) = self.send.buf_mut() else {
            return;
        };
        let built = write(buf);
        // Injected loss strikes after the packet was built, as a real network's would: the
        // sender has recorded it and can answer the NACK.
        if media && self.loss.as_mut().is_some_and(Loss::drop_next) {
            return;
        }
        if let Some(len) = built {
            // A refused datagram is counted by the batch.
            let _ = self.send.commit(to, source, len);
        }
        self.flush_if_full();
    }

    fn flush_if_full(&mut self) {
        if self.send.len() >= FLUSH_AT {
            self.sink.flush(&mut self.send);
        }
    }

    /// Hands everything queued to the sink.
    pub fn flush(&mut self) {
        if self.send.has_pending() {
            self.sink.flush(&mut self.send);
        }
    }

    /// Whether datagrams wait to be sent (the sink could not take them all).
    pub fn has_pending(&self) -> bool {
        self.send.has_pending()
    }

    /// The sink's counters.
    pub fn stats(&self) -> UdpStats {
        self.sink.stats()
    }

    /// From now on datagrams to `addr` go over ICE-TCP (a frame came from it on TCP).
    pub fn learn_tcp(&mut self, addr: SocketAddr) {
        self.tcp.learn(addr);
    }

    /// Datagrams to `addr` go over UDP again.
    pub fn forget_tcp(&mut self, addr: SocketAddr) {
        self.tcp.forget(addr);
    }

    /// Whether datagrams to `addr` go over ICE-TCP.
    pub fn is_tcp(&self, addr: SocketAddr) -> bool {
        self.tcp.reaches(addr)
    }

    /// `"tcp"` or `"udp"` for a session's selected remote address, `"-"` for none yet (the
    /// session log and the metrics).
    pub fn transport(&self, remote: Option<SocketAddr>) -> &'static str {
        match remote {
            None => "-",
            Some(addr) if self.is_tcp(addr) => "tcp",
            Some(_) => "udp",
        }
    }

    /// Adds frames another shard set aside for ICE-TCP peers (shard 0).
    pub fn append_tcp(&mut self, frames: &TcpFrames) {
        self.tcp.append(frames);
    }

    /// The frames set aside for ICE-TCP peers, for shard 0's shell to write and clear.
    pub fn tcp_frames_mut(&mut self) -> &mut TcpFrames {
        self.tcp.frames_mut()
    }

    /// The frames set aside for ICE-TCP peers, taken whole (another shard sends them to
    /// shard 0).
    pub fn take_tcp_frames(&mut self) -> Option<TcpFrames> {
        self.tcp.take_frames()
    }
}

/// A sink for tests: what would have been sent, kept in a list the test reads.
#[cfg(test)]
pub mod capture {
    use std::net::{IpAddr, SocketAddr};
    use std::sync::{Arc, Mutex};

    use super::{Outbox, Sink};
    use crate::udp::{SendBatch, UdpStats};

    /// One datagram "sent": to, from (named source, on a wildcard bind), bytes.
    pub type Sent = (SocketAddr, Option<IpAddr>, Vec<u8>);

    /// What the outbox handed over so far.
    pub type Captured = Arc<Mutex<Vec<Sent>>>;

    struct Capture(Captured);

    impl Sink for Capture {
        fn flush(&mut self, batch: &mut SendBatch) {
            let mut sent = self.0.lock().unwrap();
            batch.drain(|to, from, bytes| sent.push((to, from, bytes.to_vec())));
        }

        fn stats(&self) -> UdpStats {
            UdpStats::default()
        }
    }

    /// An outbox whose datagrams end up in the returned list.
    pub fn outbox() -> (Outbox, Captured) {
        let sent = Captured::default();
        (
            Outbox::new(Box::new(Capture(Arc::clone(&sent))), false, 0),
            sent,
        )
    }
}
