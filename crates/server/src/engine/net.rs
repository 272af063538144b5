//! The media socket as the media thread sees it: batched receive into reused buffers,
//! datagrams queued and sent in batches (sendmmsg, UDP GSO for a frame's packets to one
//! peer), and which addresses to announce as candidates.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};

use mio::{Interest, Registry, Token};

use crate::udp::{RecvBatch, SendBatch, UdpIo};

/// Datagrams per receive call.
pub const RECV_BATCH: usize = 32;
/// Queued datagrams that trigger a send: enough for many GSO messages per sendmmsg call,
/// few enough to keep latency in microseconds.
const FLUSH_AT: usize = 256;
/// Datagrams queued for sending before new ones are refused (and counted).
const SEND_QUEUE: usize = 4096;

/// The one UDP socket of the server.
#[derive(Debug)]
pub struct Net {
    io: UdpIo,
    /// Receive buffers, taken out while their datagrams are handled.
    pub recv: Option<RecvBatch>,
    send: SendBatch,
    /// The bound address; with a specific IP, replies need no source address.
    local: SocketAddr,
    loss: Option<Loss>,
    token: Token,
    writable: bool,
    /// ICE-TCP (issue 13): datagrams to a TCP peer go to its connection instead.
    pub tcp: Option<crate::tcp::Tcp>,
}

/// Test-only loss on the send path (`--test-send-loss`): drops that share of media packets,
/// deterministically, so tests can prove NACK works. (Only media: a lost handshake would
/// merely slow the test down.)
#[derive(Debug)]
struct Loss {
    percent: u32,
    state: u64,
}

impl Net {
    /// Binds `addr` and registers it for reading.
    pub fn bind(
        addr: SocketAddr,
        registry: &Registry,
        token: Token,
        loss_percent: u32,
    ) -> io::Result<Self> {
        let mut io = UdpIo::bind(addr)?;
        registry.register(&mut io, token, Interest::READABLE)?;
        let local = io.local_addr();
        let loss = (loss_percent > 0).then_some(Loss {
            percent: loss_percent.min(100),
            state: 0x9E37_79B9_7F4A_7C15,
        });
        Ok(Net {
            io,
            recv: Some(RecvBatch::new(RECV_BATCH)),
            send: SendBatch::new(SEND_QUEUE),
            local,
            loss,
            token,
            writable: false,
            tcp: None,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Receives the next batch into `batch`; 0 when there is nothing more now.
    pub fn recv(&mut self, batch: &mut RecvBatch) -> usize {
        match self.io.recv_batch(batch) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("media socket receive: {e}");
                0
            }
        }
    }

    /// Queues one datagram to `to`, leaving from `from` (our local address it is a reply
    /// from). `media` marks SRTP, which the test-only loss may drop.
    pub fn send(&mut self, bytes: &[u8], to: SocketAddr, from: SocketAddr, media: bool) {
        if let Some(tcp) = self.tcp.as_mut().filter(|t| t.owns(to)) {
            return tcp.send(to, bytes, media);
        }
        if media && self.loss.as_mut().is_some_and(Loss::drop_next) {
            return;
        }
        // Bound to one IP, the kernel picks it; on a wildcard bind we name it (IP_PKTINFO).
        let source = self.local.ip().is_unspecified().then_some(from.ip());
        // A refused datagram is counted by the batch; the peer's retransmission covers it.
        let _ = self.send.push(to, source, bytes);
        if self.send.len() >= FLUSH_AT {
            self.io.flush(&mut self.send);
        }
    }

    /// Whether datagrams wait to be sent.
    pub fn has_pending(&self) -> bool {
        self.send.has_pending()
    }

    /// The socket's counters.
    pub fn stats(&self) -> crate::udp::UdpStats {
        self.io.stats()
    }

    /// Queues a datagram that `write` builds straight into the send queue's memory (no copy):
    /// it gets a buffer of [`crate::udp::SLOT`] bytes and returns the datagram's length, or
    /// `None` to send nothing. `media` marks SRTP, which the test-only loss may drop.
    pub fn send_with(
        &mut self,
        to: SocketAddr,
        from: SocketAddr,
        media: bool,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) {
        if let Some(tcp) = self.tcp.as_mut().filter(|t| t.owns(to)) {
            return tcp.send_with(to, media, write);
        }
        let source = self.local.ip().is_unspecified().then_some(from.ip());
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
        if self.send.len() >= FLUSH_AT {
            self.io.flush(&mut self.send);
        }
    }

    /// Sends what is queued; keeps WRITABLE interest while anything is left.
    pub fn flush(&mut self, registry: &Registry) {
        if let Some(tcp) = self.tcp.as_mut() {
            tcp.flush(registry);
        }
        if self.send.has_pending() {
            self.io.flush(&mut self.send);
        }
        let want = self.send.has_pending();
        if want != self.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if registry
                .reregister(&mut self.io, self.token, interest)
                .is_ok()
            {
                self.writable = want;
            }
        }
    }
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

/// The addresses to put in our answers' candidates: `--public-ip` first (for 1:1 NAT), then
/// the bound address — or, bound to an unspecified address, the address of the default
/// route's interface (found by connecting a UDP socket, which sends nothing) and loopback.
pub fn candidates(bound: SocketAddr, public: &[IpAddr]) -> Vec<SocketAddr> {
    let port = bound.port();
    let mut out: Vec<SocketAddr> = public.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
    if bound.ip().is_unspecified() {
        let (any, probe, loopback) = if bound.is_ipv4() {
            ("0.0.0.0:0", "192.0.2.1:9", IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            ("[::]:0", "[2001:db8::1]:9", IpAddr::V6(Ipv6Addr::LOCALHOST))
        };
        let default =
            StdUdpSocket::bind(any).and_then(|s| s.connect(probe).and_then(|()| s.local_addr()));
        if let Ok(addr) = default {
            out.push(SocketAddr::new(addr.ip(), port));
        }
        out.push(SocketAddr::new(loopback, port));
    } else {
        out.push(bound);
    }
    // An address given twice (a --public-ip that is also the default route's) is announced
    // once, where it first appears.
    let mut seen = Vec::with_capacity(out.len());
    out.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_announced_alone_after_the_public_ones() {
        let bound: SocketAddr = "127.0.0.1:8189".parse().unwrap();
        assert_eq!(candidates(bound, &[]), [bound]);
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        // Each address once, where it first appears.
        assert_eq!(
            candidates(bound, &[public, other, public, bound.ip()]),
            [
                SocketAddr::new(public, 8189),
                SocketAddr::new(other, 8189),
                bound
            ]
        );
    }

    /// The default `--udp 0.0.0.0:8189`: the default route's address (when there is a
    /// default route: 10.99.0.1 in the tests' namespace) and loopback, on the bound port,
    /// never the unspecified address itself.
    #[test]
    fn an_unspecified_address_announces_the_default_route_and_loopback() {
        let bound: SocketAddr = crate::config::DEFAULT_UDP.parse().unwrap();
        assert!(bound.ip().is_unspecified());
        let list = candidates(bound, &[]);
        assert_eq!(list.last(), Some(&"127.0.0.1:8189".parse().unwrap()));
        assert!(list.len() <= 2, "{list:?}");
        for c in &list {
            assert_eq!(c.port(), 8189, "{list:?}");
            assert!(!c.ip().is_unspecified(), "{list:?}");
        }
        if let Some(first) = list.iter().find(|c| !c.ip().is_loopback()) {
            // Whatever the machine, the address a socket would send from by default.
            let probe = StdUdpSocket::bind("0.0.0.0:0").unwrap();
            probe.connect("192.0.2.1:9").unwrap();
            assert_eq!(first.ip(), probe.local_addr().unwrap().ip());
        }
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        let with_public = candidates(bound, &[public]);
        assert_eq!(with_public[0], SocketAddr::new(public, 8189));
        assert_eq!(&with_public[1..], &list[..]);
    }
}
