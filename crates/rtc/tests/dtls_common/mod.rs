//! Helpers for the DTLS tests: our endpoints behind a small trait, and a seeded in-memory
//! link that drops, duplicates and reorders datagrams under a fake clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::dtls::{Dtls, DtlsCertificate, DtlsConfig, DtlsEvent, DtlsVersions};
use rtc::rand::Rng;

/// One side of a simulated connection.
pub trait Endpoint {
    fn input(&mut self, now: Instant, datagram: &[u8]);
    fn timeout(&mut self, now: Instant);
    fn output(&mut self) -> Vec<Vec<u8>>;
    fn next_timeout(&self) -> Option<Instant>;
    /// Exported SRTP keying material once connected.
    fn keys(&self) -> Option<Vec<u8>>;
}

/// Our stack as an endpoint, remembering its events.
pub struct Ours {
    pub dtls: Dtls,
    pub events: Vec<DtlsEvent>,
}

impl Ours {
    pub fn drain(&mut self) {
        while let Some(e) = self.dtls.poll_event() {
            self.events.push(e);
        }
    }
}

impl Endpoint for Ours {
    fn input(&mut self, now: Instant, datagram: &[u8]) {
        self.dtls.handle_datagram(now, datagram);
        self.drain();
    }
    fn timeout(&mut self, now: Instant) {
        self.dtls.handle_timeout(now);
        self.drain();
    }
    fn output(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.dtls.poll_datagram()).collect()
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.dtls.poll_timeout()
    }
    fn keys(&self) -> Option<Vec<u8>> {
        self.events.iter().find_map(|e| match e {
            DtlsEvent::Connected {
                keying_material, ..
            } => Some(keying_material.clone()),
            _ => None,
        })
    }
}

/// Our server behind ICE: every datagram comes from an address ICE validated, so it skips
/// the cookie exchange ([`Dtls::handle_validated_datagram`]).
pub struct Validated(pub Ours);

impl Endpoint for Validated {
    fn input(&mut self, now: Instant, datagram: &[u8]) {
        self.0.dtls.handle_validated_datagram(now, datagram);
        self.0.drain();
    }
    fn timeout(&mut self, now: Instant) {
        self.0.timeout(now);
    }
    fn output(&mut self) -> Vec<Vec<u8>> {
        self.0.output()
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.0.next_timeout()
    }
    fn keys(&self) -> Option<Vec<u8>> {
        self.0.keys()
    }
}

/// The handshake type of a datagram's first record, if it is a plaintext handshake record.
pub fn first_handshake_type(d: &[u8]) -> Option<u8> {
    (d.first() == Some(&22) && d.get(3..5) == Some(&[0, 0])).then(|| d.get(13).copied())?
}

/// A config with a fresh certificate (both DTLS versions, 1.3 preferred).
pub fn config(seed: u64) -> Arc<DtlsConfig> {
    config_with(seed, DtlsVersions::Auto)
}

/// A config with a fresh certificate speaking `versions`.
pub fn config_with(seed: u64, versions: DtlsVersions) -> Arc<DtlsConfig> {
    let mut rng = Rng::seeded(seed);
    let cert = DtlsCertificate::generate(&mut rng).unwrap();
    Arc::new(DtlsConfig::new(cert, &mut rng).with_versions(versions))
}

/// Our client and server for each other (both DTLS versions, so 1.3).
pub fn pair(seed: u64, now: Instant) -> (Ours, Ours) {
    pair_with(seed, now, DtlsVersions::Auto, DtlsVersions::Auto)
}

/// Our client and server speaking the given versions.
pub fn pair_with(
    seed: u64,
    now: Instant,
    client: DtlsVersions,
    server: DtlsVersions,
) -> (Ours, Ours) {
    let (cc, sc) = (config_with(seed, client), config_with(seed + 1, server));
    let client = Dtls::new_client(
        cc.clone(),
        sc.certificate().fingerprint(),
        Rng::seeded(seed + 2),
        now,
    );
    let server = Dtls::new_server(
        sc,
        cc.certificate().fingerprint(),
        b"peer",
        Rng::seeded(seed + 3),
    );
    (
        Ours {
            dtls: client,
            events: vec![],
        },
        Ours {
            dtls: server,
            events: vec![],
        },
    )
}

/// A lossy link.
pub struct Link {
    state: u64,
    pub drop: f64,
    pub duplicate: f64,
    /// Extra random delay up to this, which reorders.
    pub jitter: Duration,
    pub delay: Duration,
    /// (deliver at, to side 0 or 1, datagram)
    queue: Vec<(Instant, usize, Vec<u8>)>,
    pub delivered: usize,
    pub dropped: usize,
    /// Print every datagram (set DTLS_TRACE=1).
    pub trace: bool,
}

/// A one-line summary of a datagram's records, for traces.
pub fn summary(d: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = d;
    while rest.len() >= 13 {
        let len = u16::from_be_bytes([rest[11], rest[12]]) as usize;
        let epoch = u16::from_be_bytes([rest[3], rest[4]]);
        let seq = u64::from_be_bytes([0, 0, rest[5], rest[6], rest[7], rest[8], rest[9], rest[10]]);
        out += &format!("[ct{} e{} s{} ", rest[0], epoch, seq);
        if rest[0] == 22 && epoch == 0 && rest.len() >= 25 {
            let b = &rest[13..];
            let mseq = u16::from_be_bytes([b[4], b[5]]);
            let off = u32::from_be_bytes([0, b[6], b[7], b[8]]);
            let flen = u32::from_be_bytes([0, b[9], b[10], b[11]]);
            out += &format!("hs{} m{} {}+{}", b[0], mseq, off, flen);
        }
        out += &format!(" len{}] ", len);
        rest = rest.get(13 + len..).unwrap_or(&[]);
    }
    out
}

impl Link {
    pub fn new(seed: u64, drop: f64) -> Self {
        Link {
            state: seed,
            drop,
            duplicate: 0.1,
            jitter: Duration::from_millis(30),
            delay: Duration::from_millis(10),
            queue: Vec::new(),
            delivered: 0,
            dropped: 0,
            trace: std::env::var("DTLS_TRACE").is_ok(),
        }
    }

    fn random(&mut self) -> f64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn send(&mut self, now: Instant, to: usize, d: Vec<u8>) {
        let copies = if self.random() < self.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            if self.random() < self.drop {
                if self.trace {
                    eprintln!("  dropped to {to}: {}", summary(&d));
                }
                self.dropped += 1;
                continue;
            }
            let at = now + self.delay + self.jitter.mul_f64(self.random());
            self.queue.push((at, to, d.clone()));
        }
    }

    /// Runs both sides until both export keys or `limit` of simulated time passes.
    /// Returns the simulated time taken.
    pub fn run(
        &mut self,
        start: Instant,
        a: &mut dyn Endpoint,
        b: &mut dyn Endpoint,
        limit: Duration,
    ) -> Option<Duration> {
        let mut now = start;
        for _ in 0..100_000 {
            for d in a.output() {
                self.send(now, 1, d);
            }
            for d in b.output() {
                self.send(now, 0, d);
            }
            if a.keys().is_some() && b.keys().is_some() && self.queue.is_empty() {
                return Some(now - start);
            }
            let next_delivery = self.queue.iter().map(|q| q.0).min();
            let next = [next_delivery, a.next_timeout(), b.next_timeout()]
                .into_iter()
                .flatten()
                .min()?;
            now = now.max(next);
            if now - start > limit {
                return None;
            }
            if let Some(i) = self.queue.iter().position(|q| q.0 <= now) {
                let (_, to, d) = self.queue.remove(i);
                self.delivered += 1;
                if self.trace {
                    eprintln!(
                        "{:>8.3} to {to}: {}",
                        (now - start).as_secs_f64(),
                        summary(&d)
                    );
                }
                if to == 0 {
                    a.input(now, &d)
                } else {
                    b.input(now, &d)
                }
            }
            a.timeout(now);
            b.timeout(now);
        }
        None
    }
}
