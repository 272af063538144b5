//! Sessions that have not had a valid ICE check yet.
//!
//! A POST costs us an answer and a session, and nothing proves the client will ever use it:
//! 10 000 POSTs that never did ICE filled the session table and locked everyone out for
//! 28 s. Until its first valid check a session is *pending*: it lives at most
//! [`PENDING_TIMEOUT`], each client address may have [`PER_CLIENT`] of them, and they are
//! capped at [`MAX_PENDING`] in all apart from connected sessions — when that cap is reached
//! the oldest pending session makes room, so a flood of offers cannot keep a real client
//! out: its check arrives within milliseconds, long before a flood can push it out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a session may wait for its first valid ICE check.
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(5);
/// Pending sessions in all.
pub const MAX_PENDING: usize = 1000;
/// Pending sessions per client address.
pub const PER_CLIENT: usize = 16;

/// Pending sessions per client address, shared by every media thread's table: the bound is
/// the client's, wherever its sessions were placed. Locked only when a session is offered or
/// stops pending, never per packet.
#[derive(Debug, Clone, Default)]
pub struct PendingClients(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl PendingClients {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A panic elsewhere cannot leave a count half-written: use it as it is.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why a new pending session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFull;

/// The pending sessions: who made each and when, oldest first.
#[derive(Debug)]
pub struct PendingTable {
    timeout: Duration,
    max: usize,
    per_client: usize,
    entries: HashMap<u64, (IpAddr, Instant)>,
    /// Keys in creation order. Entries that left the table stay here until they reach the
    /// front (or the queue is compacted), so leaving costs O(1).
    order: VecDeque<(u64, Instant)>,
    clients: PendingClients,
}

impl Default for PendingTable {
    fn default() -> Self {
        Self::new(
            PENDING_TIMEOUT,
            MAX_PENDING,
            PER_CLIENT,
            PendingClients::default(),
        )
    }
}

impl PendingTable {
    /// A table with its limits.
    pub fn new(timeout: Duration, max: usize, per_client: usize, clients: PendingClients) -> Self {
        Self {
            timeout,
            max,
            per_client,
            entries: HashMap::new(),
            order: VecDeque::new(),
            clients,
        }
    }

    /// Pending sessions now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// May `client` open another pending session? Checked before any work on the offer.
    /// The host's own address is not capped: behind a reverse proxy on the same host every
    /// user comes from it, and so do local tools (the load generator, the tests' clients);
    /// the total cap still holds for them.
    pub fn check(&self, client: IpAddr) -> Result<(), ClientFull> {
        let host = client.is_unspecified()
            || client == IpAddr::from([127, 0, 0, 1])
            || client == IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
        if !host && self.clients.lock().get(&client).copied().unwrap_or(0) >= self.per_client {
            return Err(ClientFull);
        }
        Ok(())
    }

    /// Adds session `key` of `client`. Returns the pending session to end to make room (the
    /// oldest), if the table is full.
    pub fn insert(&mut self, key: u64, client: IpAddr, now: Instant) -> Option<u64> {
        let evicted = if self.entries.len() >= self.max {
            self.oldest()
        } else {
            None
        };
        if let Some(old) = evicted {
            self.remove(old);
        }
        self.entries.insert(key, (client, now));
        self.order.push_back((key, now));
        *self.clients.lock().entry(client).or_default() += 1;
        evicted
    }

    /// Session `key` is no longer pending (a valid check came, or it ended). O(1).
    pub fn remove(&mut self, key: u64) -> bool {
        let Some((client, _)) = self.entries.remove(&key) else {
            return false;
        };
        let mut clients = self.clients.lock();
        if let Some(n) = clients.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&client);
            }
        }
        drop(clients);
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(k, t)| entries.get(k).is_some_and(|(_, at)| at == t));
        }
        self.shrink();
        true
    }

    /// Whether session `key` is pending.
    #[cfg(test)]
    pub fn contains(&self, key: u64) -> bool {
        self.entries.contains_key(&key)
    }

    /// The pending sessions older than the timeout, in order; they stay in the table until
    /// removed.
    pub fn expired(&mut self, now: Instant, out: &mut Vec<u64>) {
        self.drop_stale_front();
        for &(key, created) in &self.order {
            if now.saturating_duration_since(created) < self.timeout {
                break;
            }
            if self.is_current(key, created) {
                out.push(key);
            }
        }
    }

    /// When the next pending session expires.
    #[cfg(test)]
    pub fn next_expiry(&mut self) -> Option<Instant> {
        self.drop_stale_front();
        self.order.front().map(|(_, t)| *t + self.timeout)
    }

    fn oldest(&mut self) -> Option<u64> {
        self.drop_stale_front();
        self.order.front().map(|(k, _)| *k)
    }

    fn is_current(&self, key: u64, created: Instant) -> bool {
        self.entries.get(&key).is_some_and(|(_, t)| *t == created)
    }

    fn drop_stale_front(&mut self) {
        while let Some(&(key, created)) = self.order.front() {
            if self.is_current(key, created) {
                break;
            }
            self.order.pop_front();
        }
    }

    /// After a flood the tables give their memory back: a HashMap never shrinks by itself.
    fn shrink(&mut self) {
        if self.entries.capacity() > 64 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
            let mut clients = self.clients.lock();
            let len = clients.len();
            clients.shrink_to(len * 2);
            self.order.shrink_to(self.order.len() * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn per_client_cap() {
        let t0 = Instant::now();
        let mut p = PendingTable::new(Duration::from_secs(5), 100, 3, PendingClients::default());
        for key in 0..3 {
            assert_eq!(p.check(ip(1)), Ok(()));
            assert_eq!(p.insert(key, ip(1), t0), None);
        }
        assert_eq!(p.check(ip(1)), Err(ClientFull));
        assert_eq!(p.check(ip(2)), Ok(()));
        // The host itself (a reverse proxy, local tools) is not capped.
        let host = IpAddr::from([127, 0, 0, 1]);
        for key in 10..20 {
            assert_eq!(p.check(host), Ok(()));
            p.insert(key, host, t0);
        }
        // One connects: room again.
        assert!(p.remove(1));
        assert_eq!(p.check(ip(1)), Ok(()));
    }

    /// A flood from many addresses fills the table; each new offer pushes out the oldest, so
    /// a real client's session lives until its check comes and then leaves the table.
    #[test]
    fn a_full_table_evicts_the_oldest_so_a_real_client_gets_in() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = PendingTable::new(Duration::from_secs(5), 1000, 16, PendingClients::default());
        let mut evicted = 0;
        // 1 000 offers a second from 1 000 addresses for 3 s, and one real client at 1.5 s.
        let real = 1_000_000;
        for i in 0..3000u64 {
            let now = t0 + ms(i);
            if i == 1500 {
                assert_eq!(p.check(ip(7)), Ok(()));
                evicted += usize::from(p.insert(real, ip(7), now).is_some());
            }
            if i == 1520 {
                // Its first valid check, 20 ms later.
                assert!(p.contains(real));
                assert!(p.remove(real));
            }
            let client = ip(100 + (i % 1000) as u32);
            assert_eq!(p.check(client), Ok(()));
            evicted += usize::from(p.insert(i, client, now).is_some());
            assert!(p.len() <= 1000);
        }
        assert_eq!(p.len(), 1000);
        assert_eq!(evicted, 3001 - 1000 - 1);
    }

    #[test]
    fn expiry_in_order_and_memory_comes_back() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = PendingTable::new(s(5), 100_000, 16, PendingClients::default());
        for key in 0..10_000u64 {
            p.insert(key, ip(key as u32 / 10), t0 + Duration::from_micros(key));
        }
        assert_eq!(p.next_expiry(), Some(t0 + s(5)));
        let mut out = Vec::new();
        p.expired(t0 + s(4), &mut out);
        assert!(out.is_empty());
        // Half connect in time.
        for key in (0..10_000u64).step_by(2) {
            p.remove(key);
        }
        p.expired(t0 + s(6), &mut out);
        assert_eq!(out.len(), 5_000);
        assert!(out.windows(2).all(|w| w[0] < w[1]));
        let big = p.entries.capacity();
        for key in out.drain(..) {
            p.remove(key);
        }
        assert_eq!(p.len(), 0);
        assert!(p.clients.lock().is_empty());
        assert!(p.entries.capacity() < big / 8);
        assert!(p.order.len() <= 64);
        assert_eq!(p.next_expiry(), None);
    }
}
