//! ICE-TCP from the client's side (RFC 6544): the viewer connects to the server's `tcptype
//! passive` candidate and the one connection carries every datagram of the session (STUN
//! checks, DTLS, SRTP, SRTCP) as an RFC 4571 frame — a 16-bit length, then the datagram.
//! Received frames go to the peer connection exactly as datagrams would; its datagrams are
//! framed on the way out.
//!
//! Writing never blocks the driver thread: what the kernel does not take at once waits in a
//! bounded buffer of whole frames and goes out when the socket says it is writable; a frame
//! that does not fit is dropped whole (a frame cut in the middle would desynchronise the
//! stream for good, RFC 4571 §2 having no way to find the next one).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

use mio::net::TcpStream;
use rtc::framing::{self, Deframer};

/// Framed bytes waiting for the socket, at most. A viewer sends little (checks, DTLS, RTCP
/// feedback), so this bound is only reached when the server stops reading.
pub(crate) const MAX_PENDING: usize = 64 * 1024;

/// The largest frame we accept from the server: RFC 4571 allows 65 535 bytes, and reading
/// them costs nothing more than reading smaller ones.
const MAX_FRAME: usize = framing::MAX_FRAME;

/// One ICE-TCP connection of a session.
#[derive(Debug)]
pub(crate) struct TcpLink {
    stream: TcpStream,
    /// The server's passive candidate.
    pub(crate) remote: SocketAddr,
    /// Taken out while its frames are handed to the peer ([`TcpLink::take_deframer`]).
    deframer: Option<Deframer>,
    /// Whole frames not written yet; `pending[written..]` is still to go.
    pending: Vec<u8>,
    written: usize,
    /// The connection is over: the server closed it, it failed, or its framing broke.
    pub(crate) ended: bool,
    /// Frames dropped because [`MAX_PENDING`] was reached.
    pub(crate) dropped: u64,
}

impl TcpLink {
    /// Connects from `from` (port chosen by the OS) to `remote`, blocking until the
    /// connection is up, and leaves the socket non-blocking. Binding first lets a load of many
    /// viewers come from many loopback addresses, as viewers on many hosts would: the server
    /// bounds connections not yet authenticated per client address.
    pub(crate) fn connect(from: IpAddr, remote: SocketAddr) -> io::Result<Self> {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, socket,
        };
        use std::os::fd::AsRawFd;
        let family = match remote {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
        bind(
            fd.as_raw_fd(),
            &SockaddrStorage::from(SocketAddr::new(from, 0)),
        )?;
        loop {
            match connect(fd.as_raw_fd(), &SockaddrStorage::from(remote)) {
                Ok(()) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let stream = std::net::TcpStream::from(fd);
        // STUN checks and DTLS flights are small and wait for an answer: Nagle's algorithm
        // would hold each one back for an ACK.
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(TcpLink {
            stream: TcpStream::from_std(stream),
            remote,
            deframer: Some(Deframer::new(MAX_FRAME)),
            pending: Vec::new(),
            written: 0,
            ended: false,
            dropped: 0,
        })
    }

    /// Our end's address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Framed bytes waiting for the socket.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len() - self.written
    }

    /// Queues `datagram` as one frame and writes what the socket takes. False when it is
    /// dropped: too long for a frame, the connection is over, or the buffer is full.
    pub(crate) fn send(&mut self, datagram: &[u8]) -> bool {
        let Some(prefix) = framing::prefix(datagram.len()) else {
            return false;
        };
        if self.ended {
            return false;
        }
        if self.pending() + prefix.len() + datagram.len() > MAX_PENDING {
            self.dropped += 1;
            return false;
        }
        self.pending.extend_from_slice(&prefix);
        self.pending.extend_from_slice(datagram);
        self.flush();
        !self.ended
    }

    /// Writes what waits until the socket takes no more (a partial write keeps the rest).
    pub(crate) fn flush(&mut self) {
        while self.written < self.pending.len() {
            let Some(rest) = self.pending.get(self.written..) else {
                break;
            };
            match self.stream.write(rest) {
                Ok(0) => {
                    self.ended = true;
                    break;
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.ended = true;
                    break;
                }
            }
        }
        if self.written == self.pending.len() {
            self.pending.clear();
            self.written = 0;
        } else if self.written > MAX_PENDING / 2 {
            // Keep the buffer from creeping: move the unwritten tail to the front.
            self.pending.drain(..self.written);
            self.written = 0;
        }
    }

    /// Reads from the socket into `buf`: `Ok(None)` when nothing more is waiting, `Ok(Some(0))`
    /// never (the end of the stream marks the link as ended and gives `Ok(None)`).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.ended {
            return None;
        }
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.ended = true;
                    return None;
                }
                Ok(n) => return Some(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    /// The deframer, to hand frames read into a buffer of the caller's to the peer while the
    /// link is borrowed elsewhere; give it back with [`TcpLink::put_deframer`].
    pub(crate) fn take_deframer(&mut self) -> Option<Deframer> {
        self.deframer.take()
    }

    /// Gives the deframer back.
    pub(crate) fn put_deframer(&mut self, deframer: Deframer) {
        self.deframer = Some(deframer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::net::{Ipv4Addr, TcpListener};
    use std::time::{Duration, Instant};

    /// A link to a listener on loopback, and the server's end of it.
    fn pair() -> (TcpLink, std::net::TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let link = TcpLink::connect(
            IpAddr::V4(Ipv4Addr::new(127, 3, 0, 1)),
            listener.local_addr().unwrap(),
        )
        .unwrap();
        let (server, from) = listener.accept().unwrap();
        assert_eq!(from, link.local_addr().unwrap());
        assert_eq!(from.ip(), IpAddr::V4(Ipv4Addr::new(127, 3, 0, 1)));
        (link, server)
    }

    /// Deframes everything `server` gets until `want` frames came (5 s at most).
    fn read_frames(server: &mut std::net::TcpStream, want: usize) -> Vec<Vec<u8>> {
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut d = Deframer::new(MAX_FRAME);
        let mut out = Vec::new();
        let mut buf = vec![0; 7000];
        while out.len() < want {
            let n = server.read(&mut buf).expect("frames");
            assert!(n > 0, "closed after {} frames", out.len());
            d.push(&mut buf[..n], |f| out.push(f.to_vec())).unwrap();
        }
        out
    }

    #[test]
    fn a_full_socket_keeps_whole_frames_and_drops_past_the_bound() {
        let (mut link, mut server) = pair();
        // The server does not read: the kernel's buffers fill, then ours, up to the bound.
        let frame: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut sent = 0usize;
        let deadline = Instant::now() + Duration::from_secs(10);
        while link.dropped == 0 {
            assert!(Instant::now() < deadline, "never full");
            let mut f = frame.clone();
            f[..8].copy_from_slice(&(sent as u64).to_be_bytes());
            if link.send(&f) {
                sent += 1;
            }
        }
        assert!(link.pending() > MAX_PENDING - 1002, "{}", link.pending());
        assert!(link.pending() <= MAX_PENDING);
        assert!(!link.send(&frame), "still full");
        assert_eq!(link.dropped, 2);
        // Reading everything on the other side, flushing as the socket drains: every frame
        // accepted arrives whole and in order, none that was dropped.
        let reader = std::thread::spawn(move || read_frames(&mut server, sent));
        let deadline = Instant::now() + Duration::from_secs(10);
        while link.pending() > 0 {
            assert!(Instant::now() < deadline, "never drained");
            link.flush();
            std::thread::sleep(Duration::from_millis(1));
        }
        let got = reader.join().unwrap();
        assert_eq!(got.len(), sent);
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f.len(), 1000);
            assert_eq!(f[..8], (i as u64).to_be_bytes(), "frame {i}");
            assert_eq!(f[8..], frame[8..]);
        }
        assert!(!link.ended);
    }

    #[test]
    fn frames_split_anywhere_are_read_whole_and_the_end_is_seen() {
        let (mut link, server) = pair();
        let frames: [&[u8]; 3] = [b"\x00\x01stun", &[0x80; 1200], b"\x81rtcp"];
        let mut stream = Vec::new();
        for f in frames {
            stream.extend_from_slice(&framing::prefix(f.len()).unwrap());
            stream.extend_from_slice(f);
        }
        // Written in pieces of 3 bytes: prefixes and bodies cut across reads.
        server.set_nodelay(true).unwrap();
        let mut writer = server.try_clone().unwrap();
        let writing = std::thread::spawn(move || {
            for piece in stream.chunks(3) {
                writer.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let mut got: Vec<Vec<u8>> = Vec::new();
        let (mut d, mut reads) = (link.take_deframer().unwrap(), 0);
        let mut buf = vec![0; 2048];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < frames.len() {
            assert!(Instant::now() < deadline, "got {got:?}");
            match link.read(&mut buf) {
                Some(n) => {
                    reads += 1;
                    d.push(&mut buf[..n], |f| got.push(f.to_vec())).unwrap();
                }
                None => std::thread::sleep(Duration::from_micros(100)),
            }
        }
        writing.join().unwrap();
        assert!(
            reads > frames.len(),
            "{reads} reads: the frames were not cut"
        );
        link.put_deframer(d);
        assert_eq!(got, frames.map(<[u8]>::to_vec));
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !link.ended {
            assert!(Instant::now() < deadline, "the end not seen");
            assert_eq!(link.read(&mut buf), None);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!link.send(b"late"));
    }
}
