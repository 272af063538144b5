//! One ICE-TCP connection: RFC 4571 frames in, a bounded send buffer out.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
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
