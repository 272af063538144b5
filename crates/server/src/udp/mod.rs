//! The media thread's one UDP socket for every peer: batched, non-blocking I/O for `mio`.
//!
//! * Receive: [`UdpIo::recv_batch`] reads up to 64 datagrams per `recvmmsg` into a reused
//!   [`RecvBatch`]; on a wildcard bind (0.0.0.0 / ::) each datagram's local address is learned
//!   from IP_PKTINFO / IPV6_PKTINFO.
//! * Send: queue into a reused [`SendBatch`], then [`UdpIo::flush`]: one `sendmmsg` per up to
//!   64 messages, and consecutive datagrams to one destination with one size (the last may be
//!   shorter) share a message with UDP GSO (UDP_SEGMENT), so a frame's packets to a viewer cost
//!   one trip through the stack. What the socket refuses (WouldBlock) stays queued.
//!
//! Addresses are canonical: an IPv4 peer on a dual-stack `[::]` socket is a `SocketAddr::V4`
//! both ways. Linux only (recvmmsg, sendmmsg, UDP_SEGMENT: kernel ≥ 4.18).

mod batch;
mod sys;

/// Returns the allocator's free memory to the kernel (after many sessions ended).
pub fn release_free_memory() {
    sys::trim_heap();
}
#[cfg(test)]
mod tests;

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::event::Source;
use mio::{Interest, Registry, Token};

#[allow(unused_imports)] // `Datagram` is named by the tests and benches
pub use batch::{Datagram, RecvBatch, SLOT, SendBatch};
use sys::{MAX_IOVS, MAX_MSGS, OutMsg};

/// Raises the process's soft open-file limit to its hard limit; (old, new) soft limit. Lives
/// here because it needs libc's `setrlimit` and `sys.rs` is the one file allowed `unsafe`.
pub(crate) fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    sys::raise_nofile_limit()
}

/// The kernel's cap on segments per GSO send (UDP_MAX_SEGMENTS).
const GSO_MAX_SEGMENTS: usize = 64;
/// Payload bytes one GSO send may carry (an IPv4 datagram's 65535 less headers, rounded down).
const GSO_MAX_BYTES: usize = 65_000;
/// Socket buffer sizes asked for at bind (the kernel caps them at net.core.[rw]mem_max).
const SOCKET_BUFFER: i32 = 4 << 20;

/// What the socket did since it was bound.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams received (truncated ones included).
    pub rx_datagrams: u64,
    /// Payload bytes received.
    pub rx_bytes: u64,
    /// Datagrams longer than [`SLOT`], skipped.
    pub rx_truncated: u64,
    /// Datagrams the kernel accepted.
    pub tx_datagrams: u64,
    /// Payload bytes the kernel accepted.
    pub tx_bytes: u64,
    /// Messages (`mmsghdr`s) sent: fewer than `tx_datagrams` when GSO groups them.
    pub tx_messages: u64,
    /// Datagrams the kernel refused with an error other than WouldBlock (dropped).
    pub send_errors: u64,
    /// The last such error.
    pub last_send_error: Option<io::ErrorKind>,
    /// Datagrams dropped because the send queue was full.
    pub dropped: u64,
    /// Datagrams dropped on purpose by [`UdpIo::set_send_loss`].
    pub lost_injected: u64,
}

/// Deterministic send-path loss for tests: a datagram is lost when a hash of (seed, its push
/// order) falls under `threshold`.
#[derive(Debug, Clone, Copy)]
struct Loss {
    threshold: u64,
    seed: u64,
}

impl Loss {
    fn drops(&self, seq: u64) -> bool {
        // SplitMix64's finalizer: a well-mixed, repeatable coin per datagram.
        let mut z = self.seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) < self.threshold
    }
}

/// The UDP socket of the media thread. Register it with a `mio::Registry` (it is a
/// [`mio::event::Source`]); READABLE always, WRITABLE while a [`SendBatch`] has pending data.
#[derive(Debug)]
pub struct UdpIo {
    socket: mio::net::UdpSocket,
    local: SocketAddr,
    /// Bound to a wildcard address: learn the local address per datagram and set it on sends.
    wildcard: bool,
    v6: bool,
    /// Segments per GSO send; 1 = GSO off (unsupported, disabled, or failed once).
    gso_segments: usize,
    loss: Option<Loss>,
    stats: UdpStats,
    /// Test seam: the next send calls fail with these errnos (0: send for real). Loopback
    /// never returns WouldBlock (its packets leave the send buffer at once) nor refuses GSO.
    #[cfg(test)]
    pub(crate) fake_errors: std::collections::VecDeque<i32>,
}

impl UdpIo {
    /// Binds a non-blocking socket to `addr` (IPv4 or IPv6; port 0 picks one).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let std = std::net::UdpSocket::bind(addr)?;
        std.set_nonblocking(true)?;
        let local = std.local_addr()?;
        let fd = std.as_raw_fd();
        let (v6, wildcard) = (local.is_ipv6(), local.ip().is_unspecified());
        if wildcard {
            // RFC 8445 §5.1.1.1: a reply must leave from the address the request came to.
            match v6 {
                false => sys::set_opt(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?,
                true => sys::set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?,
            }
        }
        // Each datagram's kernel receive time, so a busy media thread does not pass its own
        // queueing off as network delay (TWCC arrival deltas, RR jitter); best effort.
        let _ = sys::set_opt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1);
        // Bigger buffers absorb bursts (a keyframe to many viewers); best effort.
        let _ = sys::set_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKET_BUFFER);
        let _ = sys::set_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, SOCKET_BUFFER);
        // GSO is there if the kernel knows the option (Linux ≥ 4.18); a device without
        // checksum offload may still refuse it at send time, see `flush`.
        let gso = sys::get_opt(fd, libc::SOL_UDP, libc::UDP_SEGMENT).is_ok();
        Ok(Self {
            socket: mio::net::UdpSocket::from_std(std),
            local,
            wildcard,
            v6,
            gso_segments: if gso { GSO_MAX_SEGMENTS } else { 1 },
            loss: None,
            stats: UdpStats::default(),
            #[cfg(test)]
            fake_errors: std::collections::VecDeque::new(),
        })
    }

    /// A second handle on the same socket (a duplicated descriptor), with counters of its
    /// own: each media thread sends through its own handle while one thread receives.
    pub fn try_clone(&self) -> io::Result<Self> {
        use std::os::fd::AsFd;
        let fd = self.socket.as_fd().try_clone_to_owned()?;
        let std = std::net::UdpSocket::from(fd);
        Ok(Self {
            socket: mio::net::UdpSocket::from_std(std),
            local: self.local,
            wildcard: self.wildcard,
            v6: self.v6,
            gso_segments: self.gso_segments,
            loss: self.loss,
            stats: UdpStats::default(),
            #[cfg(test)]
            fake_errors: std::collections::VecDeque::new(),
        })
    }

    /// The bound address (the port is the one actually bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    #[allow(dead_code)] // used by the tests and benches/udp*.rs, which compile this module on their own
    /// What the socket did so far.
    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    #[allow(dead_code)] // used by the tests and benches/udp*.rs, which compile this module on their own
    /// Segments per GSO send (1: GSO off).
    pub fn gso_segments(&self) -> usize {
        self.gso_segments
    }

    #[allow(dead_code)] // used by the tests and benches/udp*.rs, which compile this module on their own
    /// Caps segments per GSO send (1 turns GSO off); cannot raise it past what was detected.
    pub fn set_gso_segments(&mut self, segments: usize) {
        self.gso_segments = segments.clamp(1, self.gso_segments);
    }

    #[allow(dead_code)] // used by the tests and benches/udp*.rs, which compile this module on their own
    /// Sets SO_SNDBUF (the kernel doubles it and enforces a minimum).
    pub fn set_send_buffer(&self, bytes: usize) -> io::Result<()> {
        let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
        sys::set_opt(
            self.socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            bytes,
        )
    }

    #[allow(dead_code)] // used by the tests and benches/udp*.rs, which compile this module on their own
    /// Test hook: drops `percent` % of datagrams on the send path, chosen by a repeatable
    /// hash of `seed` and each datagram's push order (0 turns it off). Lost datagrams count
    /// in [`UdpStats::lost_injected`].
    pub fn set_send_loss(&mut self, percent: f64, seed: u64) {
        let share = (percent / 100.0).clamp(0.0, 1.0);
        self.loss = (share > 0.0).then_some(Loss {
            threshold: (share * u64::MAX as f64) as u64,
            seed,
        });
    }

    /// Reads up to the batch's capacity of datagrams with one `recvmmsg`. Returns how many
    /// (0: nothing is waiting, i.e. WouldBlock; read again after the next READABLE event).
    pub fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.len = 0;
        let fd = self.socket.as_raw_fd();
        let n = loop {
            match sys::recv_mmsg(fd, &mut batch.storage, SLOT, &mut batch.meta) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) => return Err(e),
            }
        };
        // One reading of both clocks per batch maps the kernel's realtime stamps to Instants.
        let clocks = (SystemTime::now(), Instant::now());
        let items = batch.meta.iter_mut().zip(&mut batch.local);
        for ((m, local), arrival) in items.zip(&mut batch.arrival).take(n) {
            *arrival = arrival_instant(m.stamp, clocks);
            m.source = canonical(m.source);
            let ip = m.dst.filter(|_| self.wildcard).unwrap_or(self.local.ip());
            *local = canonical(SocketAddr::new(ip, self.local.port()));
            self.stats.rx_datagrams += 1;
            self.stats.rx_bytes += m.len as u64;
            self.stats.rx_truncated += u64::from(m.truncated);
        }
        batch.len = n;
        Ok(n)
    }

    /// Sends what `batch` holds, as far as the socket takes it. Returns the datagrams sent.
    /// On WouldBlock the rest stays queued ([`SendBatch::has_pending`]): flush again on the
    /// next WRITABLE event. A datagram the kernel refuses otherwise is dropped and counted.
    pub fn flush(&mut self, batch: &mut SendBatch) -> usize {
        self.stats.dropped += batch.take_dropped();
        let (start, mut sent) = (batch.head, 0);
        let mut head = start;
        let mut plan = [Planned::default(); MAX_MSGS];
        let mut msgs = [const { OutMsg::EMPTY }; MAX_MSGS];
        while head < batch.items.len() {
            let mut iovs = [IoSlice::new(&[]); MAX_IOVS];
            let m = self.plan(batch, head, &mut iovs, &mut msgs, &mut plan);
            let (Some(msgs), Some(plan)) = (msgs.get(..m), plan.get(..m)) else {
                break;
            };
            let Some(last) = plan.last() else {
                // Everything left was lost on purpose.
                self.stats.lost_injected += (batch.items.len() - head) as u64;
                head = batch.items.len();
                break;
            };
            match self.send(&iovs, msgs) {
                Ok(k) => {
                    let done = plan.get(..k).unwrap_or(plan);
                    let end = done.last().map_or(last.end, |p| p.end);
                    let datagrams: usize = done.iter().map(|p| p.datagrams).sum();
                    sent += datagrams;
                    self.stats.tx_datagrams += datagrams as u64;
                    self.stats.tx_bytes += done.iter().map(|p| p.bytes as u64).sum::<u64>();
                    self.stats.tx_messages += done.len() as u64;
                    self.stats.lost_injected += (end - head - datagrams) as u64;
                    head = end;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if gso_refused(&e) && msgs.first().is_some_and(|m| m.segment > 0) => {
                    // The device cannot segment (no checksum offload): send one by one from
                    // now on; this round is planned again without GSO.
                    self.gso_segments = 1;
                }
                Err(e) => {
                    // sendmmsg reports the first message's error: drop it, go on.
                    let first = plan.first().copied().unwrap_or(*last);
                    self.stats.send_errors += first.datagrams as u64;
                    self.stats.last_send_error = Some(e.kind());
                    self.stats.lost_injected += (first.end - head - first.datagrams) as u64;
                    head = first.end;
                }
            }
        }
        batch.consume(head - start);
        sent
    }

    fn send(&mut self, iovs: &[IoSlice<'_>], msgs: &[OutMsg]) -> io::Result<usize> {
        #[cfg(test)]
        if let Some(errno) = self.fake_errors.pop_front().filter(|&e| e != 0) {
            return Err(io::Error::from_raw_os_error(errno));
        }
        match sys::send_mmsg(self.socket.as_raw_fd(), self.v6, iovs, msgs)? {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            k => Ok(k),
        }
    }

    /// Groups queued items from `head` into messages for one `sendmmsg`: a run of datagrams
    /// to one destination from one source with one size (the last may be shorter) becomes
    /// one GSO message. Items lost on purpose are skipped. Returns the messages planned.
    fn plan<'a>(
        &self,
        batch: &'a SendBatch,
        head: usize,
        iovs: &mut [IoSlice<'a>; MAX_IOVS],
        msgs: &mut [OutMsg; MAX_MSGS],
        plan: &mut [Planned; MAX_MSGS],
    ) -> usize {
        let items = &batch.items;
        let lost = |i: usize| {
            let seq = items.get(i).map_or(0, |it| it.seq);
            self.loss.is_some_and(|l| l.drops(seq))
        };
        let (mut i, mut k, mut m) = (head, 0, 0);
        while let (Some(first), Some(msg), Some(p)) =
            (items.get(i), msgs.get_mut(m), plan.get_mut(m))
        {
            if lost(i) {
                i += 1;
                continue;
            }
            if k >= MAX_IOVS {
                break;
            }
            let (seg, start) = (usize::from(first.len), k);
            let mut bytes = 0;
            while let (Some(it), Some(iov)) = (items.get(i), iovs.get_mut(k)) {
                let len = usize::from(it.len);
                if k > start {
                    if lost(i) {
                        i += 1;
                        continue;
                    }
                    let same = it.to == first.to && it.from == first.from;
                    if !same || len > seg || k - start >= self.gso_segments {
                        break;
                    }
                    if bytes + len > GSO_MAX_BYTES {
                        break;
                    }
                }
                *iov = IoSlice::new(batch.bytes(i));
                (k, i, bytes) = (k + 1, i + 1, bytes + len);
                if len < seg {
                    break; // A shorter datagram ends a GSO run.
                }
            }
            let count = k - start;
            *msg = OutMsg {
                to: first.to,
                from: first.from.filter(|_| self.wildcard),
                iovs: start..k,
                segment: if count > 1 { first.len } else { 0 },
            };
            *p = Planned {
                end: i,
                datagrams: count,
                bytes,
            };
            m += 1;
        }
        // Lost items after the last message are consumed with it.
        if let Some(p) = m.checked_sub(1).and_then(|l| plan.get_mut(l)) {
            while p.end < items.len() && lost(p.end) {
                p.end += 1;
            }
        }
        m
    }
}

impl Source for UdpIo {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket.register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket.reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.socket.deregister(registry)
    }
}

/// One planned message: the items it covers end before `end` (lost ones included).
#[derive(Debug, Default, Clone, Copy)]
struct Planned {
    end: usize,
    datagrams: usize,
    bytes: usize,
}

/// EIO (no checksum offload) or EINVAL (segment too big for the device) on a GSO send.
/// A stamp this much older than the batch is taken for a step of the realtime clock (NTP)
/// rather than for time spent in the socket buffer, and replaced by the batch's time.
const MAX_STAMP_AGE: Duration = Duration::from_secs(2);

/// The `Instant` a datagram arrived, from its kernel stamp (CLOCK_REALTIME since the epoch)
/// and one `(SystemTime, Instant)` pair read right after the batch was received. Linux stamps
/// received datagrams on the realtime clock only (SO_TIMESTAMPING included, short of a NIC's
/// own clock), so the stamp's age on that clock is subtracted from the monotonic now. Without
/// a stamp, or with one in the future or implausibly old (the clock was stepped), the
/// datagram arrived "now".
fn arrival_instant(stamp: Option<Duration>, (wall, now): (SystemTime, Instant)) -> Instant {
    let age = stamp.and_then(|s| wall.duration_since(UNIX_EPOCH).ok()?.checked_sub(s));
    age.filter(|a| *a <= MAX_STAMP_AGE)
        .and_then(|a| now.checked_sub(a))
        .unwrap_or(now)
}

fn gso_refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::EINVAL))
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
