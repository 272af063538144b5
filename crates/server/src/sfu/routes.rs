//! Which session a datagram belongs to: by the ufrag of a STUN check's USERNAME, else by the
//! source address ICE validated for a session.
//!
//! Every session's addresses are kept with it, so removing a session costs its own few
//! addresses, not a scan of every route (a mass disconnect was O(N²)), and a session may
//! hold at most [`MAX_ADDRS`] (the ICE agent's own bound): valid checks from 300 000
//! addresses must not grow the table.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Most routed addresses per session, as many as the ICE agent keeps pairs
/// ([`rtc::ice::MAX_PAIRS`]); the agent reports the ones it forgets, this is the backstop.
pub const MAX_ADDRS: usize = rtc::ice::MAX_PAIRS;

/// The routing tables of the media thread.
#[derive(Debug, Default)]
pub struct Routes {
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<SocketAddr, u64>,
    sessions: HashMap<u64, SessionRoutes>,
}

/// What routes to one session.
#[derive(Debug, Default)]
struct SessionRoutes {
    ufrag: String,
    /// Oldest first.
    addrs: Vec<SocketAddr>,
}

impl Routes {
    /// Routes checks naming `ufrag` (our local ufrag) to session `key`, in place of any ufrag
    /// it had (an ICE restart changes it).
    pub fn set_ufrag(&mut self, key: u64, ufrag: &str) {
        let entry = self.sessions.entry(key).or_default();
        if !entry.ufrag.is_empty() && self.by_ufrag.get(&entry.ufrag) == Some(&key) {
            self.by_ufrag.remove(&entry.ufrag);
        }
        entry.ufrag = ufrag.to_owned();
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// Routes datagrams from `addr` to session `key` (ICE validated it). The address moves
    /// here if another session had it: a client that reconnects from the same port has
    /// proven with its new check that it is this session's. Returns the address dropped to
    /// keep the session within [`MAX_ADDRS`], if any.
    pub fn add_addr(&mut self, key: u64, addr: SocketAddr) -> Option<SocketAddr> {
        if let Some(old) = self.by_addr.insert(addr, key)
            && old != key
            && let Some(other) = self.sessions.get_mut(&old)
        {
            other.addrs.retain(|a| *a != addr);
        }
        let entry = self.sessions.entry(key).or_default();
        if entry.addrs.contains(&addr) {
            return None;
        }
        let evicted = (entry.addrs.len() >= MAX_ADDRS).then(|| entry.addrs.remove(0));
        entry.addrs.push(addr);
        if let Some(evicted) = evicted
            && self.by_addr.get(&evicted) == Some(&key)
        {
            self.by_addr.remove(&evicted);
        }
        evicted
    }

    /// Stops routing `addr` to session `key` (its ICE agent forgot it).
    pub fn remove_addr(&mut self, key: u64, addr: SocketAddr) {
        if let Some(entry) = self.sessions.get_mut(&key) {
            entry.addrs.retain(|a| *a != addr);
        }
        if self.by_addr.get(&addr) == Some(&key) {
            self.by_addr.remove(&addr);
        }
    }

    /// Forgets session `key`: O(its addresses). Routes another session took over stay.
    pub fn remove_session(&mut self, key: u64) {
        let Some(entry) = self.sessions.remove(&key) else {
            return;
        };
        if self.by_ufrag.get(&entry.ufrag) == Some(&key) {
            self.by_ufrag.remove(&entry.ufrag);
        }
        for addr in entry.addrs {
            if self.by_addr.get(&addr) == Some(&key) {
                self.by_addr.remove(&addr);
            }
        }
        self.shrink();
    }

    /// The session a datagram from `from` goes to. A STUN check's ufrag comes first: a
    /// reused 4-tuple (a client reconnecting from the same port, a NAT handing the port to
    /// someone else) must reach the session its check names, not the one that had the
    /// address before.
    pub fn route(&self, from: SocketAddr, ufrag: Option<&[u8]>) -> Option<u64> {
        let by_ufrag = ufrag
            .and_then(|u| std::str::from_utf8(u).ok())
            .and_then(|u| self.by_ufrag.get(u));
        by_ufrag.or_else(|| self.by_addr.get(&from)).copied()
    }

    /// The session a STUN check naming `ufrag` goes to.
    pub fn by_ufrag(&self, ufrag: &[u8]) -> Option<u64> {
        let ufrag = std::str::from_utf8(ufrag).ok()?;
        self.by_ufrag.get(ufrag).copied()
    }

    /// The session datagrams from `from` go to by their address.
    pub fn by_addr(&self, from: SocketAddr) -> Option<u64> {
        self.by_addr.get(&from).copied()
    }

    /// Routed addresses in all (for the metrics).
    pub fn addr_count(&self) -> usize {
        self.by_addr.len()
    }

    /// Addresses routed to session `key`.
    pub fn addrs_of(&self, key: u64) -> &[SocketAddr] {
        self.sessions.get(&key).map_or(&[], |e| e.addrs.as_slice())
    }

    /// Returns the memory of a table that was much larger (after a flood or mass
    /// disconnect): a HashMap never shrinks by itself.
    fn shrink(&mut self) {
        fn shrink<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
            if map.capacity() > 64 && map.len() < map.capacity() / 4 {
                map.shrink_to(map.len() * 2);
            }
        }
        shrink(&mut self.by_ufrag);
        shrink(&mut self.by_addr);
        shrink(&mut self.sessions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u32) -> SocketAddr {
        let [a, b, c, d] = n.to_be_bytes();
        SocketAddr::from(([10, a.wrapping_add(b), c, d], 5000))
    }

    #[test]
    fn routes_by_ufrag_first_then_address() {
        let mut r = Routes::default();
        r.set_ufrag(1, "aaaa");
        r.add_addr(1, addr(1));
        assert_eq!(r.route(addr(1), None), Some(1));
        assert_eq!(r.route(addr(2), Some(b"aaaa")), Some(1));
        assert_eq!(r.route(addr(2), Some(b"zzzz")), None);
        // A new session's check from the old session's address goes to the new session.
        r.set_ufrag(2, "bbbb");
        assert_eq!(r.route(addr(1), Some(b"bbbb")), Some(2));
        // Once it validated the address, everything from it goes there; the old session
        // no longer holds it.
        r.add_addr(2, addr(1));
        assert_eq!(r.route(addr(1), None), Some(2));
        assert!(r.addrs_of(1).is_empty());
        // Removing the old session does not take the new one's route.
        r.remove_session(1);
        assert_eq!(r.route(addr(1), None), Some(2));
        assert_eq!(r.route(addr(9), Some(b"aaaa")), None);
    }

    #[test]
    fn ice_restart_replaces_the_ufrag() {
        let mut r = Routes::default();
        r.set_ufrag(1, "old1");
        r.set_ufrag(1, "new1");
        assert_eq!(r.route(addr(5), Some(b"old1")), None);
        assert_eq!(r.route(addr(5), Some(b"new1")), Some(1));
        r.remove_session(1);
        assert_eq!(r.route(addr(5), Some(b"new1")), None);
    }

    /// Valid checks from 300 000 addresses for one session kept 22 MB before.
    #[test]
    fn a_session_holds_at_most_max_addrs() {
        let mut r = Routes::default();
        r.set_ufrag(1, "aaaa");
        let mut evicted = 0;
        for n in 0..300_000 {
            evicted += usize::from(r.add_addr(1, addr(n)).is_some());
        }
        assert_eq!(r.addr_count(), MAX_ADDRS);
        assert_eq!(r.addrs_of(1).len(), MAX_ADDRS);
        assert_eq!(evicted, 300_000 - MAX_ADDRS);
        // The newest stay.
        assert_eq!(r.route(addr(299_999), None), Some(1));
        assert_eq!(r.route(addr(0), None), None);
        r.remove_addr(1, addr(299_999));
        assert_eq!(r.route(addr(299_999), None), None);
        assert_eq!(r.addr_count(), MAX_ADDRS - 1);
    }

    /// Removal touches only the session's own entries: after a mass disconnect nothing is
    /// left, and the tables give their memory back.
    #[test]
    fn mass_removal_leaves_nothing_and_shrinks() {
        let mut r = Routes::default();
        for key in 0..10_000u64 {
            r.set_ufrag(key, &format!("u{key}"));
            r.add_addr(key, addr(key as u32 * 2));
            r.add_addr(key, addr(key as u32 * 2 + 1));
        }
        assert_eq!(r.addr_count(), 20_000);
        let big = r.by_addr.capacity();
        for key in 0..10_000u64 {
            r.remove_session(key);
        }
        assert_eq!(r.addr_count(), 0);
        assert!(r.by_ufrag.is_empty() && r.sessions.is_empty());
        assert!(r.by_addr.capacity() < big / 8, "{}", r.by_addr.capacity());
    }
}
