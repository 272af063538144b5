//! Datagrams for peers reached over ICE-TCP (issue 13). The shard never touches a TCP
//! connection: the shell of shard 0 owns them all (`crate::tcp`). A shard learns which peer
//! addresses are TCP from the frames it is handed, and its outbox sets datagrams to those
//! addresses aside as [`TcpFrames`] instead of queueing them for the UDP socket. Shard 0's
//! shell writes its own into the connections; every other shard sends its frames to shard 0
//! as a message, in order with everything else it sends there.
//!
//! A learnt address is forgotten when shard 0 says its connection is gone for good (see
//! `crate::tcp::Tcp::take_forgotten`): until then, sends to it are swallowed by shard 0
//! rather than leaking onto UDP toward a peer that only speaks TCP.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::udp::SLOT;

/// Frames to ICE-TCP peers, one after another in one buffer: `(to, media, bytes)` each.
#[derive(Debug, Default, Clone)]
pub struct TcpFrames {
    data: Vec<u8>,
    items: Vec<FrameItem>,
}

#[derive(Debug, Clone, Copy)]
struct FrameItem {
    to: SocketAddr,
    /// SRTP: a full connection buffer drops it first.
    media: bool,
    end: usize,
}

impl TcpFrames {
    /// Adds one frame.
    pub fn push(&mut self, to: SocketAddr, media: bool, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        self.items.push(FrameItem {
            to,
            media,
            end: self.data.len(),
        });
    }

    /// Appends every frame of `other`, in order.
    pub fn append(&mut self, other: &TcpFrames) {
        other.for_each(|to, media, bytes| self.push(to, media, bytes));
    }

    /// How many it holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Each frame, in order: `(to, media, bytes)`.
    pub fn for_each(&self, mut each: impl FnMut(SocketAddr, bool, &[u8])) {
        let mut start = 0;
        for item in &self.items {
            if let Some(bytes) = self.data.get(start..item.end) {
                each(item.to, item.media, bytes);
            }
            start = item.end;
        }
    }

    /// Empties it, keeping its memory (unless a burst made it large).
    pub fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
        if self.data.capacity() > 4 << 20 {
            self.data = Vec::new();
        }
    }
}

/// The outbox's side track for ICE-TCP peers.
#[derive(Debug, Default)]
pub struct TcpRoute {
    /// Peer addresses whose datagrams go over TCP.
    peers: HashSet<SocketAddr>,
    frames: TcpFrames,
    /// Where a frame built in place is written before it is copied into `frames`.
    scratch: Vec<u8>,
}

impl TcpRoute {
    /// Whether datagrams to `to` go over TCP. Cheap when nobody uses TCP: every send asks.
    pub fn reaches(&self, to: SocketAddr) -> bool {
        !self.peers.is_empty() && self.peers.contains(&to)
    }

    /// From now on datagrams to `addr` go over TCP.
    pub fn learn(&mut self, addr: SocketAddr) {
        if !self.peers.contains(&addr) {
            self.peers.insert(addr);
        }
    }

    /// Datagrams to `addr` go over UDP again (its connection is gone).
    pub fn forget(&mut self, addr: SocketAddr) {
        self.peers.remove(&addr);
        if self.peers.capacity() > 64 && self.peers.len() < self.peers.capacity() / 4 {
            self.peers.shrink_to(self.peers.len() * 2);
        }
    }

    /// Sets a datagram aside for its TCP peer.
    pub fn push(&mut self, to: SocketAddr, media: bool, bytes: &[u8]) {
        self.frames.push(to, media, bytes);
    }

    /// Sets aside a datagram that `write` builds in a buffer of [`SLOT`] bytes (returning its
    /// length, or `None` to send nothing).
    pub fn push_with(
        &mut self,
        to: SocketAddr,
        media: bool,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) {
        if self.scratch.len() < SLOT {
            self.scratch.resize(SLOT, 0);
        }
        if let Some(frame) = write(&mut self.scratch).and_then(|n| self.scratch.get(..n)) {
            self.frames.push(to, media, frame);
        }
    }

    /// Appends frames another shard set aside (shard 0).
    pub fn append(&mut self, frames: &TcpFrames) {
        self.frames.append(frames);
    }

    /// The frames set aside, for the shell to write (and clear).
    pub fn frames_mut(&mut self) -> &mut TcpFrames {
        &mut self.frames
    }

    /// The frames set aside, taken whole (to send to shard 0).
    pub fn take_frames(&mut self) -> Option<TcpFrames> {
        (!self.frames.is_empty()).then(|| std::mem::take(&mut self.frames))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 7], port))
    }

    #[test]
    fn learnt_peers_are_reached_over_tcp_until_forgotten() {
        let mut route = TcpRoute::default();
        assert!(!route.reaches(addr(1)));
        route.learn(addr(1));
        route.learn(addr(1));
        assert!(route.reaches(addr(1)));
        assert!(!route.reaches(addr(2)));
        route.forget(addr(1));
        assert!(!route.reaches(addr(1)));
    }

    #[test]
    fn frames_keep_their_order_peer_and_kind() {
        let mut route = TcpRoute::default();
        route.push(addr(1), false, b"stun");
        route.push_with(addr(2), true, |buf| {
            buf[..4].copy_from_slice(b"srtp");
            Some(4)
        });
        route.push_with(addr(2), true, |_| None);
        let mut other = TcpFrames::default();
        other.push(addr(3), false, b"dtls");
        route.append(&other);
        let mut seen = Vec::new();
        route
            .frames_mut()
            .for_each(|to, media, bytes| seen.push((to, media, bytes.to_vec())));
        assert_eq!(
            seen,
            [
                (addr(1), false, b"stun".to_vec()),
                (addr(2), true, b"srtp".to_vec()),
                (addr(3), false, b"dtls".to_vec()),
            ]
        );
        let taken = route.take_frames().expect("frames");
        assert_eq!(taken.len(), 3);
        assert!(route.take_frames().is_none());
    }
}
