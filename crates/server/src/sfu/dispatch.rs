//! Shard 0's table of which *other* shard owns a datagram's session: STUN checks by their
//! ufrag, everything else by the source address that session's ICE validated. The owners
//! report both ([`super::message::Message::Ufrag`], [`super::message::Message::Address`]);
//! shard 0 consults this only for datagrams none of its own sessions claims.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Addresses seen in checks routed by ufrag but not yet confirmed by their owner. They
/// carry the DTLS handshake that follows a check in the millisecond before the owner's
/// confirmation arrives; a flood of checks must not grow them without end.
const MAX_TENTATIVE: usize = 4096;

/// The routes to sessions of other shards.
#[derive(Debug, Default)]
pub struct Dispatch {
    ufrags: HashMap<String, usize>,
    addrs: HashMap<SocketAddr, usize>,
    tentative: HashMap<SocketAddr, usize>,
}

impl Dispatch {
    /// The shard a STUN check naming `ufrag` from `from` goes to.
    pub fn by_ufrag(&mut self, from: SocketAddr, ufrag: &[u8]) -> Option<usize> {
        let shard = std::str::from_utf8(ufrag)
            .ok()
            .and_then(|u| self.ufrags.get(u))
            .copied()?;
        // Never over a confirmed address: a check cannot steal a route by itself, the
        // owner's ICE agent must validate it first.
        if !self.addrs.contains_key(&from) {
            if self.tentative.len() >= MAX_TENTATIVE {
                self.tentative.clear();
            }
            self.tentative.insert(from, shard);
        }
        Some(shard)
    }

    /// The shard a datagram from `from` goes to by its address.
    pub fn by_addr(&self, from: SocketAddr) -> Option<usize> {
        self.addrs
            .get(&from)
            .or_else(|| self.tentative.get(&from))
            .copied()
    }

    /// The shard a datagram from `from` goes to (`ufrag`: a STUN check's, if it is one).
    #[cfg(test)]
    pub fn route(&mut self, from: SocketAddr, ufrag: Option<&[u8]>) -> Option<usize> {
        match ufrag.and_then(|u| self.by_ufrag(from, u)) {
            Some(shard) => Some(shard),
            None => self.by_addr(from),
        }
    }

    /// Checks naming `ufrag` go to `shard` (or, `None`, nowhere any more).
    pub fn set_ufrag(&mut self, ufrag: String, shard: Option<usize>) {
        match shard {
            Some(shard) => {
                self.ufrags.insert(ufrag, shard);
            }
            None => {
                self.ufrags.remove(&ufrag);
            }
        }
    }

    /// Datagrams from `addr` go to `shard` (its owner validated it), or no longer anywhere.
    pub fn set_addr(&mut self, addr: SocketAddr, shard: Option<usize>) {
        self.tentative.remove(&addr);
        match shard {
            Some(shard) => {
                self.addrs.insert(addr, shard);
            }
            None => {
                self.addrs.remove(&addr);
            }
        }
    }

    /// A session of shard 0 itself validated `addr`: it is no other shard's any more.
    pub fn forget_addr(&mut self, addr: SocketAddr) {
        self.tentative.remove(&addr);
        self.addrs.remove(&addr);
    }

    /// Routed addresses (for the metrics).
    pub fn addr_count(&self) -> usize {
        self.addrs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn checks_go_by_ufrag_and_what_follows_by_address() {
        let mut d = Dispatch::default();
        d.set_ufrag("abcd".into(), Some(1));
        assert_eq!(d.route(addr(1), Some(b"zzzz")), None);
        assert_eq!(d.route(addr(1), None), None);
        // A check names its session's shard; the DTLS after it follows the same way before
        // the owner confirms the address, and after.
        assert_eq!(d.route(addr(1), Some(b"abcd")), Some(1));
        assert_eq!(d.route(addr(1), None), Some(1));
        d.set_addr(addr(1), Some(1));
        assert_eq!(d.route(addr(1), None), Some(1));
        d.set_addr(addr(1), None);
        assert_eq!(d.route(addr(1), None), None);
    }

    #[test]
    fn a_check_does_not_take_a_confirmed_address() {
        let mut d = Dispatch::default();
        d.set_ufrag("mine".into(), Some(1));
        d.set_ufrag("evil".into(), Some(2));
        d.set_addr(addr(5), Some(1));
        // A spoofed check from the address reaches the shard its ufrag names (whose ICE
        // agent will refuse or validate it), but media from the address stays put.
        assert_eq!(d.route(addr(5), Some(b"evil")), Some(2));
        assert_eq!(d.route(addr(5), None), Some(1));
        d.forget_addr(addr(5));
        assert_eq!(d.route(addr(5), None), None);
    }

    #[test]
    fn unconfirmed_addresses_are_bounded() {
        let mut d = Dispatch::default();
        d.set_ufrag("u".into(), Some(1));
        for port in 0..=u16::MAX {
            d.route(addr(port), Some(b"u"));
        }
        assert!(d.tentative.len() <= MAX_TENTATIVE);
        d.set_ufrag("u".into(), None);
        assert_eq!(d.route(addr(9), Some(b"u")), None);
    }
}
