//! One ICE-TCP connection: RFC 4571 frames in, a bounded send buffer out.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

use mio::net::TcpStream;
use rtc::framing::{self, Deframer, FramingError};

/// Largest frame a connection may send before one of its checks was answered with success:
/// a Binding request is a few hundred bytes; a stranger gets no room for more.
pub const UNTRUSTED_MAX_FRAME: usize = 1500;
/// Bytes waiting to be sent beyond which media (SRTP) is dropped: about 0.25 s of a 2 Mbit/s
/// stream. A reader that falls further behind loses packets as it would over UDP, and NACKs
/// and keyframe requests repair what they can; the media thread never waits.
pub const MEDIA_BACKLOG: usize = 64 * 1024;
/// Beyond this, even STUN, DTLS and RTCP are dropped: a reader this far behind is gone.
pub const CONTROL_BACKLOG: usize = 256 * 1024;

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The peer closed it, or reading/writing failed.
    Peer,
    /// A length prefix beyond what the connection may send.
    Framing,
    /// A first frame that is not STUN: not an ICE-TCP client.
    NotStun,
    /// No check answered with success within the deadline.
    Unauthenticated,
    /// Nothing received for the idle timeout.
    Idle,
    /// Made room for a newer connection.
    Evicted,
}

/// What a send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// In the buffer.
    Yes,
    /// Dropped: the buffer is past its bound for this kind of packet.
    Dropped,
}

/// A connection's state.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// The peer's address: the ICE agent's remote address for everything on this connection.
    pub remote: SocketAddr,
    /// Our address it reached.
    pub local: SocketAddr,
    deframer: Deframer,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    written: usize,
    /// One of its checks was answered with success: it knows a session's credentials.
    pub trusted: bool,
    /// Still counted among the untrusted connections (the table's bookkeeping).
    pub counted_untrusted: bool,
    /// When it was accepted.
    pub opened: Instant,
    /// When a byte last arrived.
    pub last_rx: Instant,
}

impl Conn {
    /// A freshly accepted connection.
    pub fn new(stream: TcpStream, remote: SocketAddr, local: SocketAddr, now: Instant) -> Self {
        // Media is latency-bound: never wait to fill a segment (Nagle).
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            remote,
            local,
            deframer: Deframer::new(UNTRUSTED_MAX_FRAME),
            out: Vec::new(),
            written: 0,
            trusted: false,
            counted_untrusted: true,
            opened: now,
            last_rx: now,
        }
    }

    /// The socket, for (de)registration.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Bytes waiting to be written.
    pub fn backlog(&self) -> usize {
        self.out.len() - self.written
    }

    /// Reads at most `budget` bytes through `scratch`, handing each complete frame to
    /// `on_frame`. Returns the bytes read and whether the socket may hold more (the budget
    /// ran out before it said WouldBlock), or why the connection must close.
    pub fn read(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        budget: usize,
        mut on_frame: impl FnMut(&mut [u8]),
    ) -> Result<(usize, bool), Close> {
        let mut total = 0;
        while total < budget {
            let n = match self.stream.read(scratch) {
                Ok(0) => return Err(Close::Peer),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((total, false)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Close::Peer),
            };
            total += n;
            self.last_rx = now;
            let Some(bytes) = scratch.get_mut(..n) else {
                return Err(Close::Peer);
            };
            let mut not_stun = false;
            let trusted = self.trusted;
            let result = self.deframer.push(bytes, |frame| {
                // RFC 7983: STUN starts with 0..=3. Before a check of it succeeded, a
                // connection may send nothing else (no DTLS or SRTP from strangers).
                let stun = frame.first().is_some_and(|b| *b < 4);
                if !trusted && !stun {
                    not_stun = true;
                }
                if !not_stun {
                    on_frame(frame);
                }
            });
            match result {
                Err(FramingError::TooLong { .. }) => return Err(Close::Framing),
                Ok(()) if not_stun => return Err(Close::NotStun),
                Ok(()) => {}
            }
        }
        Ok((total, true))
    }

    /// Queues one frame. `media` (SRTP) is dropped once [`MEDIA_BACKLOG`] bytes wait,
    /// anything else once [`CONTROL_BACKLOG`] do; a frame is queued whole or not at all, so
    /// the stream's framing never breaks.
    pub fn queue(&mut self, frame: &[u8], media: bool) -> Queued {
        let limit = if media {
            MEDIA_BACKLOG
        } else {
            CONTROL_BACKLOG
        };
        let Some(prefix) = framing::prefix(frame.len()) else {
            return Queued::Dropped;
        };
        let room = |c: &Self| c.backlog() + framing::PREFIX_LEN + frame.len() <= limit;
        // Over the bound, first hand the kernel what it takes now (a burst within one round,
        // a keyframe, may fill the buffer before the round's flush); a write error is left
        // for that flush to find.
        if !room(self) && (self.write().is_err() || !room(self)) {
            return Queued::Dropped;
        }
        // RFC 8489 §6 / RFC 5389: a Binding success response (0x0101) goes only to a check
        // that passed MESSAGE-INTEGRITY under a session's password: from now on this
        // connection is a session's, and may send frames of any size.
        if !self.trusted && frame.starts_with(&[0x01, 0x01]) {
            self.trusted = true;
            self.deframer.set_max_frame(framing::MAX_FRAME);
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        self.out.extend_from_slice(&prefix);
        self.out.extend_from_slice(frame);
        Queued::Yes
    }

    /// Writes what it can without blocking. `Ok(true)`: everything is out.
    pub fn write(&mut self) -> Result<bool, Close> {
        while self.written < self.out.len() {
            let Some(pending) = self.out.get(self.written..) else {
                break;
            };
            match self.stream.write(pending) {
                Ok(0) => return Err(Close::Peer),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.compact();
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Close::Peer),
            }
        }
        self.out.clear();
        self.written = 0;
        // A burst once should not pin its memory for the connection's life.
        if self.out.capacity() > 2 * MEDIA_BACKLOG {
            self.out = Vec::new();
        }
        Ok(true)
    }

    /// Moves the unwritten bytes to the front once the written ones are most of the buffer.
    fn compact(&mut self) {
        if self.written > self.out.len() / 2 {
            self.out.drain(..self.written);
            self.written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose peer never reads: media stops being queued at its bound (the
    /// kernel's buffers full first), STUN/DTLS/RTCP still are until theirs, and queueing
    /// never blocks.
    #[test]
    fn a_reader_that_never_reads_costs_bounded_memory_and_never_blocks() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, remote) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let now = Instant::now();
        let local = ours.local_addr().unwrap();
        let mut conn = Conn::new(TcpStream::from_std(ours), remote, local, now);
        let started = Instant::now();
        let media = [0x80u8; 1200];
        let mut queued = 0usize;
        let mut dropped = 0;
        for _ in 0..20_000 {
            match conn.queue(&media, true) {
                Queued::Yes => queued += 1,
                Queued::Dropped => dropped += 1,
            }
        }
        // 24 MB offered: the kernel took some, we hold at most the media bound, the rest
        // was dropped; and all of it took no time worth speaking of.
        assert!(dropped > 10_000, "{dropped} dropped, {queued} queued");
        assert!(conn.backlog() <= MEDIA_BACKLOG, "{}", conn.backlog());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // Control traffic still goes in, up to its own bound.
        let rtcp = [0x81u8, 0xc8, 0, 6];
        assert_eq!(conn.queue(&rtcp, false), Queued::Yes);
        let mut control = 1;
        while conn.queue(&[0x17; 1000], false) == Queued::Yes {
            control += 1;
            assert!(control < 1000, "control is bounded too");
        }
        assert!(conn.backlog() <= CONTROL_BACKLOG);
        assert_eq!(conn.queue(&media, true), Queued::Dropped);
        assert_eq!(conn.write(), Ok(false), "the peer still reads nothing");
        drop(peer);
    }

    /// Only a Binding success response marks a connection trusted (and lets it send large
    /// frames).
    #[test]
    fn trust_comes_from_a_success_response_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, remote) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let local = ours.local_addr().unwrap();
        let now = Instant::now();
        let mut conn = Conn::new(TcpStream::from_std(ours), remote, local, now);
        let mut scratch = vec![0; 4096];
        // A 401 (0x0111) does not trust; a success (0x0101) does.
        assert_eq!(conn.queue(&[0x01, 0x11, 0, 0], false), Queued::Yes);
        assert!(!conn.trusted);
        assert_eq!(conn.queue(&[0x01, 0x01, 0, 0], false), Queued::Yes);
        assert!(conn.trusted);
        // Now a 3000-byte DTLS frame is fine.
        let mut frame = vec![0x0b, 0xb8];
        frame.extend_from_slice(&[0x16; 3000]);
        std::io::Write::write_all(&mut peer, &frame).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.is_empty() && Instant::now() < deadline {
            conn.read(now, &mut scratch, 1 << 20, |f| got.push(f.len()))
                .unwrap();
        }
        assert_eq!(got, [3000]);
    }
}
