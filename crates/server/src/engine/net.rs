//! The media socket as the media thread sees it: receive into a reused buffer, send, and
//! which addresses to announce as candidates.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

/// Largest datagram we accept; WebRTC keeps to ~1200, so this leaves room.
const MAX_DATAGRAM: usize = 2048;

/// The one UDP socket of the server.
#[derive(Debug)]
pub struct Net {
    socket: UdpSocket,
    local: SocketAddr,
    /// The receive buffer (taken out while a datagram is being handled).
    pub recv_buf: Vec<u8>,
    loss: Option<Loss>,
    /// Datagrams dropped because the socket's send buffer was full.
    pub send_dropped: u64,
}

/// Test-only loss on the send path (`--test-send-loss`): drops that share of media packets,
/// deterministically, so tests can prove NACK works.
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
        let mut socket = UdpSocket::bind(addr)?;
        registry.register(&mut socket, token, Interest::READABLE)?;
        let local = socket.local_addr()?;
        let loss = (loss_percent > 0).then_some(Loss {
            percent: loss_percent.min(100),
            state: 0x9E37_79B9_7F4A_7C15,
        });
        Ok(Net {
            socket,
            local,
            recv_buf: vec![0; MAX_DATAGRAM],
            loss,
            send_dropped: 0,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next datagram, into `buf`; `None` when there is nothing more to read now.
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        loop {
            match self.socket.recv_from(buf) {
                Ok(got) => return Some(got),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                // ICMP errors from earlier sends surface here on Linux; they are not fatal.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => {
                    tracing::warn!("media socket receive: {e}");
                    return None;
                }
            }
        }
    }

    /// Sends one datagram. `media` marks SRTP, which the test-only loss may drop.
    pub fn send(&mut self, bytes: &[u8], to: SocketAddr, media: bool) {
        if media && self.loss.as_mut().is_some_and(Loss::drop_next) {
            return;
        }
        if let Err(e) = self.socket.send_to(bytes, to) {
            self.send_dropped += 1;
            if e.kind() != io::ErrorKind::WouldBlock {
                tracing::debug!(%to, "media socket send: {e}");
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
        let probe = if bound.is_ipv4() {
            "192.0.2.1:9"
        } else {
            "[2001:db8::1]:9"
        };
        let any = if bound.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let default =
            StdUdpSocket::bind(any).and_then(|s| s.connect(probe).and_then(|()| s.local_addr()));
        if let Ok(addr) = default {
            out.push(SocketAddr::new(addr.ip(), port));
        }
        let loopback = if bound.is_ipv4() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        };
        out.push(SocketAddr::new(loopback, port));
    } else {
        out.push(bound);
    }
    out.dedup();
    out
}
