//! The media socket's I/O in two forms, so the baseline can be compared fairly (issue 16):
//!
//! * plain (the default): one `recvfrom` and one `sendto` per datagram, as str0m's examples
//!   do;
//! * batched (`--batched`), through [quinn-udp](https://crates.io/crates/quinn-udp): up to
//!   32 datagrams per `recvmmsg` (with UDP GRO), and sends held back until the loop has
//!   handled everything it read, then each viewer's datagrams of one size (the last may be
//!   shorter) given to the kernel in one `sendmsg` with UDP GSO (UDP_SEGMENT) — as leanrtc
//!   sends a frame's packets to a viewer. quinn-udp has no `sendmmsg`, so datagrams to
//!   different viewers still take a syscall each; leanrtc also batches those.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use mio::net::UdpSocket;
use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};

/// Largest datagram.
const MAX_DATAGRAM: usize = 2048;
/// Payload bytes one GSO send may carry (an IPv4 datagram's 65 535 less headers, rounded
/// down).
const GSO_MAX_BYTES: usize = 64_000;

/// Datagrams sent and refused by one call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams the kernel took.
    pub ok: u64,
    /// Datagrams it refused (a full socket buffer drops them, as in the plain form).
    pub failed: u64,
}

/// What one receive call read.
#[derive(Debug)]
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
    filled: usize,
}

impl RecvBatch {
    /// The datagrams read, each with its source; a GRO buffer is split at its stride.
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        (self.meta.iter().zip(&self.bufs))
            .take(self.filled)
            .flat_map(|(m, buf)| {
                let data = buf.get(..m.len).unwrap_or_default();
                data.chunks(m.stride.max(1)).map(move |d| (m.addr, d))
            })
    }
}

/// The batched form's state.
#[derive(Debug)]
struct Batched {
    state: UdpSocketState,
    /// Datagrams to send at the next flush, in the order the sessions gave them.
    queue: Vec<(SocketAddr, Vec<u8>)>,
    /// One GSO send's datagrams, back to back.
    gso: Vec<u8>,
}

/// The media socket.
#[derive(Debug)]
pub struct Io {
    socket: UdpSocket,
    batched: Option<Batched>,
}

impl Io {
    /// I/O on `socket`, batched or not.
    pub fn new(socket: UdpSocket, batched: bool) -> io::Result<Io> {
        let batched = match batched {
            true => Some(Batched {
                state: UdpSocketState::new(UdpSockRef::from(&socket))?,
                queue: Vec::new(),
                gso: Vec::with_capacity(GSO_MAX_BYTES),
            }),
            false => None,
        };
        Ok(Io { socket, batched })
    }

    /// The socket, to register it with the poll.
    pub fn socket_mut(&mut self) -> &mut UdpSocket {
        &mut self.socket
    }

    /// Buffers for [`Io::recv`]: one datagram's, or a batch of GRO-sized ones.
    pub fn recv_batch(&self) -> RecvBatch {
        let (slots, size) = match &self.batched {
            Some(b) => (BATCH_SIZE, MAX_DATAGRAM * b.state.gro_segments().max(1)),
            None => (1, MAX_DATAGRAM),
        };
        RecvBatch {
            bufs: vec![vec![0; size]; slots],
            meta: vec![RecvMeta::default(); slots],
            filled: 0,
        }
    }

    /// Reads what is waiting (one datagram, or one batch) into `rx`.
    pub fn recv(&mut self, rx: &mut RecvBatch) -> io::Result<()> {
        rx.filled = 0;
        match &self.batched {
            Some(b) => {
                let mut slices: Vec<IoSliceMut<'_>> =
                    rx.bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                let socket = UdpSockRef::from(&self.socket);
                rx.filled = b.state.recv(socket, &mut slices, &mut rx.meta)?;
            }
            None => {
                let (Some(buf), Some(meta)) = (rx.bufs.first_mut(), rx.meta.first_mut()) else {
                    return Ok(());
                };
                let (n, source) = self.socket.recv_from(buf)?;
                (meta.addr, meta.len, meta.stride) = (source, n, n);
                rx.filled = 1;
            }
        }
        Ok(())
    }

    /// Sends one datagram now (plain) or at the next [`Io::flush`] (batched).
    pub fn send(&mut self, to: SocketAddr, contents: Vec<u8>) -> Sent {
        if let Some(b) = self.batched.as_mut() {
            b.queue.push((to, contents));
            return Sent::default();
        }
        match self.socket.send_to(&contents, to) {
            Ok(_) => Sent { ok: 1, failed: 0 },
            Err(_) => Sent { ok: 0, failed: 1 },
        }
    }

    /// Sends what [`Io::send`] held back: each destination's datagrams in their order, runs
    /// of one size in one GSO send.
    pub fn flush(&mut self) -> Sent {
        let Some(b) = self.batched.as_mut() else {
            return Sent::default();
        };
        let mut sent = Sent::default();
        // Stable: a destination's datagrams keep their order.
        b.queue.sort_by_key(|(to, _)| *to);
        let max_segments = b.state.max_gso_segments().max(1);
        for run in b.queue.chunk_by(|a, b| a.0 == b.0) {
            for group in gso_groups(run, max_segments) {
                let (to, first) = (group[0].0, &group[0].1);
                let contents: &[u8] = if group.len() == 1 {
                    first
                } else {
                    b.gso.clear();
                    group.iter().for_each(|(_, d)| b.gso.extend_from_slice(d));
                    &b.gso
                };
                let transmit = Transmit {
                    destination: to,
                    ecn: None,
                    contents,
                    segment_size: (group.len() > 1).then_some(first.len()),
                    src_ip: None,
                };
                let n = group.len() as u64;
                match b.state.try_send(UdpSockRef::from(&self.socket), &transmit) {
                    Ok(()) => sent.ok += n,
                    Err(_) => sent.failed += n,
                }
            }
        }
        b.queue.clear();
        sent
    }
}

/// Splits one destination's datagrams into GSO sends: each a run of datagrams of the first
/// one's size, the last of which may be shorter (the kernel's rule for UDP_SEGMENT), at most
/// `max_segments` and [`GSO_MAX_BYTES`] long.
fn gso_groups<T>(run: &[(T, Vec<u8>)], max_segments: usize) -> Vec<&[(T, Vec<u8>)]> {
    let mut groups = Vec::new();
    let mut rest = run;
    while let Some((first, _)) = rest.split_first() {
        let size = first.1.len();
        let (mut n, mut bytes) = (1, size);
        for (_, d) in rest.get(1..).unwrap_or_default() {
            if n == max_segments || d.len() > size || bytes + d.len() > GSO_MAX_BYTES {
                break;
            }
            n += 1;
            bytes += d.len();
            if d.len() < size {
                break;
            }
        }
        let (group, tail) = rest.split_at(n);
        groups.push(group);
        rest = tail;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(groups: &[&[((), Vec<u8>)]]) -> Vec<Vec<usize>> {
        let len = |g: &&[((), Vec<u8>)]| g.iter().map(|(_, d)| d.len()).collect();
        groups.iter().map(len).collect()
    }

    fn run(lens: &[usize]) -> Vec<((), Vec<u8>)> {
        lens.iter().map(|&n| ((), vec![0; n])).collect()
    }

    #[test]
    fn groups_are_runs_of_one_size_ending_shorter() {
        let r = run(&[1200, 1200, 1200, 700, 1200, 1300, 1300, 90, 90]);
        assert_eq!(
            sizes(&gso_groups(&r, 64)),
            [
                vec![1200, 1200, 1200, 700],
                vec![1200],
                vec![1300, 1300, 90],
                vec![90]
            ]
        );
        assert_eq!(
            sizes(&gso_groups(&run(&[5, 5, 5, 5, 5]), 2)),
            [vec![5, 5], vec![5, 5], vec![5]]
        );
        assert!(gso_groups::<()>(&[], 64).is_empty());
    }

    #[test]
    fn a_group_stays_under_the_gso_byte_limit() {
        let r = run(&[1500; 60]);
        let groups = gso_groups(&r, 64);
        assert!(groups.iter().all(|g| g.len() * 1500 <= GSO_MAX_BYTES));
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 60);
        assert_eq!(groups[0].len(), GSO_MAX_BYTES / 1500);
    }

    #[test]
    fn batched_sends_arrive_in_order_per_destination() {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut io = Io::new(UdpSocket::from_std(std_socket), true).unwrap();
        let (a, b) = (
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        for (i, to) in [to_a, to_b, to_a, to_b, to_a].into_iter().enumerate() {
            let len = if i == 4 { 50 } else { 100 };
            assert_eq!(io.send(to, vec![i as u8; len]), Sent::default());
        }
        assert_eq!(io.flush(), Sent { ok: 5, failed: 0 });
        let mut buf = [0u8; 2048];
        for (socket, expected) in [
            (&a, &[(0u8, 100), (2, 100), (4, 50)][..]),
            (&b, &[(1, 100), (3, 100)]),
        ] {
            for &(byte, len) in expected {
                let n = socket.recv(&mut buf).unwrap();
                assert_eq!((buf[0], n), (byte, len));
            }
        }
        // And what comes back is read in one batch.
        let me = io.socket.local_addr().unwrap();
        for i in 0..3u8 {
            a.send_to(&[i; 10], me).unwrap();
        }
        let mut rx = io.recv_batch();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 3 && std::time::Instant::now() < deadline {
            if io.recv(&mut rx).is_ok() {
                got.extend(rx.datagrams().map(|(from, d)| (from, d.to_vec())));
            }
        }
        let expected: Vec<_> = (0..3u8).map(|i| (to_a, vec![i; 10])).collect();
        assert_eq!(got, expected);
    }
}
