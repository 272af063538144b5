//! One WHIP or WHEP session of the client role: the offer, the POST, the answer, and the peer
//! connection (controlling ICE agent, DTLS client, SRTP) on a UDP socket of its own, or on
//! an ICE-TCP connection of its own ([`Offer::over_tcp`], see [`crate::tcp`]).

use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use rtc::dtls::{DtlsConfig, Fingerprint};
use rtc::ice::Credentials;
use rtc::peer::{DisconnectCause, Peer, PeerEvent, PeerSetup, Received};
use rtc::rand::Rng;
use rtc::sdp::{self, Codec, Direction, DtlsRole, Negotiated, OfferConfig, SessionDescription};

use crate::tcp::TcpLink;
use crate::{ClientError, http};

/// Room after a packet for the SRTP tag (16 bytes for AES-GCM, 10 for HMAC-SHA1-80) and, for
/// SRTCP, the 4-byte index.
const TAG_ROOM: usize = 32;

/// Publish (WHIP) or play (WHEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /whip/{stream}` with a sendonly offer.
    Publish,
    /// `POST /whep/{stream}` with a recvonly offer.
    View,
}

impl Kind {
    /// The endpoint path for `stream`.
    pub fn path(self, stream: &str) -> String {
        match self {
            Kind::Publish => format!("/whip/{stream}"),
            Kind::View => format!("/whep/{stream}"),
        }
    }
}

/// Where the media layer sends packets: a [`Session`], or a recorder in unit tests.
pub trait Transport {
    /// Protects and sends one plain RTP packet; false if it could not go out.
    fn send_rtp(&mut self, packet: &[u8]) -> bool;
    /// Protects and sends one plain (compound) RTCP packet; false if it could not go out.
    fn send_rtcp(&mut self, packet: &[u8]) -> bool;
}

/// An offer made and not yet answered. Its socket is bound already: the offer carries the
/// socket's address as our one host candidate.
#[derive(Debug)]
pub struct Offer {
    /// The offer's SDP text, to POST.
    pub sdp: String,
    kind: Kind,
    description: SessionDescription,
    socket: std::net::UdpSocket,
    credentials: Credentials,
    /// Connect over ICE-TCP from this address once answered ([`Offer::over_tcp`]).
    tcp_from: Option<IpAddr>,
}

impl Offer {
    /// Binds a socket on `bind` (port chosen by the OS) and makes an offer of `codecs` with it.
    pub fn new(
        kind: Kind,
        bind: IpAddr,
        codecs: &[Codec],
        dtls: &DtlsConfig,
    ) -> Result<Self, ClientError> {
        let socket = std::net::UdpSocket::bind((bind, 0))?;
        let local = socket.local_addr()?;
        let mut rng = Rng::system();
        let credentials = Credentials::random(&mut rng);
        let mut config = OfferConfig::new(
            &credentials.ufrag,
            &credentials.pwd,
            dtls.certificate().fingerprint().0,
            vec![local],
            match kind {
                Kind::Publish => Direction::SendOnly,
                Kind::View => Direction::RecvOnly,
            },
        );
        config.codecs = codecs.to_vec();
        let description = sdp::create_offer(&config, &mut rng);
        Ok(Offer {
            sdp: description.to_string(),
            kind,
            description,
            socket,
            credentials,
            tcp_from: None,
        })
    }

    /// Once answered, run the session over ICE-TCP (RFC 6544) instead of UDP: connect from
    /// `from` (any port) to the answer's `tcptype passive` candidate and send every datagram
    /// as an RFC 4571 frame on that one connection. The offer itself is unchanged: a browser
    /// whose UDP is blocked still offers its UDP host candidates, and a lite server never
    /// sends to them. On loopback, a different `from` per viewer (127.x.y.z) makes them look
    /// like viewers on different hosts to the server's per-address bounds.
    pub fn over_tcp(mut self, from: IpAddr) -> Self {
        self.tcp_from = Some(from);
        self
    }

    /// POSTs the offer to `http` for `stream` (blocking) and accepts the answer.
    pub fn post(
        self,
        http_addr: SocketAddr,
        stream: &str,
        dtls: Arc<DtlsConfig>,
    ) -> Result<Session, ClientError> {
        let posted_at = Instant::now();
        let res = http::request(
            http_addr,
            "POST",
            &self.kind.path(stream),
            &[("Content-Type", "application/sdp")],
            self.sdp.as_bytes(),
        )?;
        if res.status != 201 {
            return Err(ClientError::Status {
                status: res.status,
                body: res.text(),
            });
        }
        let location = res
            .header("location")
            .ok_or_else(|| ClientError::Answer("no Location header".into()))?;
        let answer = res.text();
        let mut session = self.accept(Instant::now(), &answer, dtls)?;
        session.location = location.to_owned();
        session.http = Some(http_addr);
        session.posted_at = posted_at;
        Ok(session)
    }

    /// Accepts the server's answer: checks it against the offer and starts the peer
    /// connection towards its candidates. `location` and `http` stay unset (see
    /// [`Offer::post`]).
    pub fn accept(
        self,
        now: Instant,
        answer: &str,
        dtls: Arc<DtlsConfig>,
    ) -> Result<Session, ClientError> {
        let unusable = |e: &dyn std::fmt::Display| ClientError::Answer(e.to_string());
        let parsed = SessionDescription::parse(answer).map_err(|e| unusable(&e))?;
        let negotiated =
            sdp::accept_answer(&self.description, &parsed).map_err(|e| unusable(&e))?;
        let (link, local, remotes) = match self.tcp_from {
            None => {
                let local = self.socket.local_addr()?;
                let remotes: Vec<SocketAddr> = (negotiated.remote_candidates.iter())
                    .filter(|c| c.is_udp())
                    .filter_map(|c| c.socket_addr())
                    .filter(|a| a.is_ipv4() == local.is_ipv4())
                    .collect();
                if remotes.is_empty() {
                    return Err(ClientError::Answer("no UDP candidate".into()));
                }
                self.socket.set_nonblocking(true)?;
                let socket = UdpSocket::from_std(self.socket);
                (Link::Udp { socket, cmsg: None }, local, remotes)
            }
            Some(from) => {
                let remote = passive_tcp_candidate(&parsed, from.is_ipv4())
                    .ok_or_else(|| ClientError::Answer("no tcptype passive candidate".into()))?;
                let link = TcpLink::connect(from, remote)?;
                let local = link.local_addr()?;
                (Link::Tcp(link), local, vec![remote])
            }
        };
        let fingerprint = (negotiated.remote_fingerprints.iter())
            .find(|f| f.algorithm.eq_ignore_ascii_case("sha-256"))
            .and_then(|f| <[u8; 32]>::try_from(f.bytes.as_slice()).ok())
            .ok_or_else(|| ClientError::Answer("no sha-256 fingerprint".into()))?;
        let setup = PeerSetup {
            remote_fingerprint: Fingerprint(fingerprint),
            dtls_client: negotiated.dtls_role == DtlsRole::Client,
        };
        let remote = Credentials {
            ufrag: negotiated.remote_ice_ufrag.clone(),
            pwd: negotiated.remote_ice_pwd.clone(),
        };
        let peer = Peer::new_controlling(
            now,
            dtls,
            self.credentials,
            &remote,
            local,
            &remotes,
            &setup,
            Rng::system(),
        );
        Ok(Session {
            link,
            local,
            peer,
            negotiated,
            location: String::new(),
            http: None,
            posted_at: now,
            connected_at: None,
            closed: None,
            out: Vec::with_capacity(1500),
            tamper: 0,
            stats: SessionStats::default(),
        })
    }
}

/// Datagram counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Datagrams the socket refused (full buffer; over TCP: the bounded buffer of frames
    /// waiting for the socket was full, or the connection is over) or that could not be
    /// protected.
    pub send_failed: u64,
    /// SRTP packets sent with a byte flipped on purpose ([`Session::tamper_next_rtp`]).
    pub tampered: u64,
}

/// What carries a session's datagrams.
#[derive(Debug)]
enum Link {
    /// A UDP socket of its own.
    Udp {
        socket: UdpSocket,
        /// Room for the kernel's receive timestamp, once asked for.
        cmsg: Option<Vec<u8>>,
    },
    /// An ICE-TCP connection of its own.
    Tcp(TcpLink),
}

/// A session with its peer connection.
#[derive(Debug)]
pub struct Session {
    link: Link,
    local: SocketAddr,
    peer: Peer,
    negotiated: Negotiated,
    /// The session's URL path, from `Location` (empty when made by [`Offer::accept`]).
    pub location: String,
    /// The server's HTTP address, for DELETE.
    pub http: Option<SocketAddr>,
    /// When the offer was POSTed.
    pub posted_at: Instant,
    /// When DTLS finished and SRTP keys were in place.
    pub connected_at: Option<Instant>,
    /// When and why the connection ended.
    pub closed: Option<(Instant, DisconnectCause)>,
    out: Vec<u8>,
    tamper: u32,
    /// Datagram counters.
    pub stats: SessionStats,
}

impl Session {
    /// What offer and answer settled.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The peer connection (for its stats and path).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Our socket's address (over TCP, our end of the connection).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether the session runs over ICE-TCP ([`Offer::over_tcp`]).
    pub fn is_tcp(&self) -> bool {
        matches!(self.link, Link::Tcp(_))
    }

    /// Over TCP: the connection is over (closed by the server, failed). The peer connection
    /// learns of it only when ICE consent expires.
    pub fn link_ended(&self) -> bool {
        matches!(&self.link, Link::Tcp(t) if t.ended)
    }

    pub(crate) fn tcp_mut(&mut self) -> Option<&mut TcpLink> {
        match &mut self.link {
            Link::Tcp(t) => Some(t),
            Link::Udp { .. } => None,
        }
    }

    /// True once SRTP keys are in place and until the connection ends.
    pub fn is_connected(&self) -> bool {
        self.peer.is_connected()
    }

    /// Registers the socket with `registry`: a UDP socket for reading, a TCP connection
    /// also for writing (what the kernel did not take waits for it to become writable).
    pub(crate) fn register(&mut self, registry: &Registry, token: Token) -> std::io::Result<()> {
        match &mut self.link {
            Link::Udp { socket, .. } => registry.register(socket, token, Interest::READABLE),
            Link::Tcp(t) => registry.register(
                t.stream_mut(),
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
        }
    }

    pub(crate) fn deregister(&mut self, registry: &Registry) -> std::io::Result<()> {
        match &mut self.link {
            Link::Udp { socket, .. } => registry.deregister(socket),
            Link::Tcp(t) => registry.deregister(t.stream_mut()),
        }
    }

    /// Asks the kernel to stamp each datagram with its arrival time (`SO_TIMESTAMPNS`), so
    /// a busy client thread does not add its own delay to the latencies it measures. A TCP
    /// stream has no per-datagram stamps: over TCP this does nothing, and a frame's arrival
    /// is when it is read.
    pub(crate) fn enable_kernel_timestamps(&mut self) -> std::io::Result<()> {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        if let Link::Udp { socket, cmsg } = &mut self.link {
            setsockopt(&*socket, ReceiveTimestampns, &true).map_err(std::io::Error::from)?;
            *cmsg = Some(nix::cmsg_space!(nix::sys::time::TimeSpec));
        }
        Ok(())
    }

    /// Receives one datagram from the UDP socket into `buf`: `Ok(None)` when none is
    /// waiting (and always over TCP). The third field is when the kernel received it, if
    /// kernel timestamps are on.
    pub(crate) fn recv(
        &mut self,
        buf: &mut [u8],
    ) -> std::io::Result<Option<(usize, SocketAddr, Option<Instant>)>> {
        let Link::Udp { socket, cmsg } = &mut self.link else {
            return Ok(None);
        };
        loop {
            let got = match cmsg.as_mut() {
                Some(cmsg) => recv_stamped(socket, buf, cmsg),
                None => socket.recv_from(buf).map(|(n, from)| (n, from, None)),
            };
            match got {
                Ok((n, from, at)) => {
                    self.stats.datagrams_in += 1;
                    self.stats.bytes_in += n as u64;
                    return Ok(Some((n, from, at)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                // An ICMP error from an earlier send, reported on this socket: not ours to act on.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Hands a datagram to the peer connection; SRTP/SRTCP comes back unprotected in `buf`.
    pub(crate) fn receive<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &'a mut [u8],
    ) -> Received<'a> {
        self.peer.handle_datagram(now, from, self.local, buf)
    }

    /// Where media goes once connected: the server's address.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.peer.path().map(|(remote, _)| remote)
    }

    /// Sends what the peer queued and takes note of its events.
    pub(crate) fn flush(&mut self, now: Instant) {
        while let Some(t) = self.peer.poll_transmit() {
            self.send_raw_to(&t.contents, t.destination);
        }
        while let Some(event) = self.peer.poll_event() {
            match event {
                PeerEvent::Connected { .. } => self.connected_at = Some(now),
                PeerEvent::Disconnected(cause) => self.closed = Some((now, cause)),
                _ => {}
            }
        }
    }

    /// When the peer connection wants [`Session::handle_timeout`].
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.peer.poll_timeout()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.peer.handle_timeout(now);
        self.flush(now);
    }

    /// Ends the connection with a DTLS close_notify (no HTTP).
    pub fn close(&mut self, now: Instant) {
        self.peer.close(now);
        self.flush(now);
    }

    /// Protects a plain RTP packet and returns the SRTP datagram, without sending it (to
    /// break it on purpose before [`Session::send_raw`]).
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(packet.len() + TAG_ROOM);
        buf.extend_from_slice(packet);
        buf.resize(packet.len() + TAG_ROOM, 0);
        let n = self.peer.protect_rtp(&mut buf, packet.len()).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// The next `n` RTP packets sent through [`Transport::send_rtp`] get one byte of their
    /// authentication tag flipped after protection, so the server's SRTP check fails on them.
    pub fn tamper_next_rtp(&mut self, n: u32) {
        self.tamper = n;
    }

    /// Sends a datagram as is to the server (once a path exists).
    pub fn send_raw(&mut self, datagram: &[u8]) -> bool {
        match self.remote() {
            Some(remote) => self.send_raw_to(datagram, remote),
            None => false,
        }
    }

    fn send_raw_to(&mut self, datagram: &[u8], to: SocketAddr) -> bool {
        let sent = match &mut self.link {
            // A full socket buffer loses the datagram, as a network would.
            Link::Udp { socket, .. } => socket.send_to(datagram, to).is_ok(),
            // The connection goes to the one remote the agent checks.
            Link::Tcp(t) => to == t.remote && t.send(datagram),
        };
        if sent {
            self.stats.datagrams_out += 1;
            self.stats.bytes_out += datagram.len() as u64;
        } else {
            self.stats.send_failed += 1;
        }
        sent
    }

    /// Protects `packet` in the reused send buffer with `protect` and sends it.
    fn send_protected(&mut self, packet: &[u8], rtp: bool) -> bool {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend_from_slice(packet);
        out.resize(packet.len() + TAG_ROOM, 0);
        let protected = if rtp {
            self.peer.protect_rtp(&mut out, packet.len())
        } else {
            self.peer.protect_rtcp(&mut out, packet.len())
        };
        let sent = match protected {
            Ok(n) => {
                out.truncate(n);
                if rtp && self.tamper > 0 {
                    self.tamper -= 1;
                    self.stats.tampered += 1;
                    if let Some(last) = out.last_mut() {
                        *last ^= 0x01;
                    }
                }
                self.send_raw(&out)
            }
            Err(_) => {
                self.stats.send_failed += 1;
                false
            }
        };
        self.out = out;
        sent
    }
}

impl Transport for Session {
    fn send_rtp(&mut self, packet: &[u8]) -> bool {
        self.send_protected(packet, true)
    }

    fn send_rtcp(&mut self, packet: &[u8]) -> bool {
        self.send_protected(packet, false)
    }
}

/// The answer's `tcptype passive` host candidate of the family asked for (RFC 6544 §4.5), from
/// its first media section (all are bundled). The negotiated transport keeps UDP candidates
/// only, so the answer's own lines are read here.
fn passive_tcp_candidate(answer: &SessionDescription, ipv4: bool) -> Option<SocketAddr> {
    let first = answer.media.first()?;
    let passive = |c: &rtc::sdp::Candidate| {
        c.component == 1
            && c.transport.eq_ignore_ascii_case("tcp")
            && (c.extensions.iter()).any(|(k, v)| k == "tcptype" && v == "passive")
    };
    (first.attrs().candidates())
        .filter(passive)
        .filter_map(|c| c.socket_addr())
        .find(|a| a.is_ipv4() == ipv4)
}

/// `recvmsg` with the `SO_TIMESTAMPNS` control message, the stamp turned into an `Instant`.
fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<Instant>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    let mut iov = [IoSliceMut::new(buf)];
    let msg =
        recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(cmsg), MsgFlags::empty())
            .map_err(std::io::Error::from)?;
    let from = msg.address.as_ref().and_then(|a| {
        (a.as_sockaddr_in().map(|v4| SocketAddr::from(*v4)))
            .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
    });
    let from = from.ok_or_else(|| std::io::Error::other("a datagram without a source"))?;
    let stamp = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
            _ => None,
        })
    });
    let at = stamp.and_then(|ts| {
        let kernel = Duration::new(
            u64::try_from(ts.tv_sec()).ok()?,
            u32::try_from(ts.tv_nsec()).ok()?,
        );
        let (now, wall) = (
            Instant::now(),
            SystemTime::now().duration_since(UNIX_EPOCH).ok()?,
        );
        // The stamp is on the realtime clock: as an Instant, it lies as far before now.
        now.checked_sub(wall.saturating_sub(kernel))
    });
    Ok((msg.bytes, from, at))
}
