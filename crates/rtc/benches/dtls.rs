//! Full DTLS handshakes against our in-process client: the server's CPU alone (client time
//! excluded with `iter_custom`) and whole client+server pairs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtc::dtls::{Dtls, DtlsCertificate, DtlsConfig, DtlsEvent};
use rtc::rand::Rng;

fn config(seed: u64) -> Arc<DtlsConfig> {
    let mut rng = Rng::seeded(seed);
    let cert = DtlsCertificate::generate(&mut rng).unwrap();
    Arc::new(DtlsConfig::new(cert, &mut rng))
}

/// One handshake; returns the time spent inside the server.
fn handshake(cc: &Arc<DtlsConfig>, sc: &Arc<DtlsConfig>) -> Duration {
    let now = Instant::now();
    let mut client = Dtls::new_client(
        cc.clone(),
        sc.certificate().fingerprint(),
        Rng::system(),
        now,
    );
    let mut server = Dtls::new_server(
        sc.clone(),
        cc.certificate().fingerprint(),
        b"peer",
        Rng::system(),
    );
    let mut in_server = Duration::ZERO;
    let mut connected = false;
    while !connected {
        let to_server: Vec<Vec<u8>> = std::iter::from_fn(|| client.poll_datagram()).collect();
        let t = Instant::now();
        for d in &to_server {
            server.handle_datagram(now, d);
        }
        let to_client: Vec<Vec<u8>> = std::iter::from_fn(|| server.poll_datagram()).collect();
        while let Some(e) = server.poll_event() {
            connected |= matches!(e, DtlsEvent::Connected { .. });
        }
        in_server += t.elapsed();
        for d in &to_client {
            client.handle_datagram(now, d);
        }
        assert!(
            !to_server.is_empty() || !to_client.is_empty(),
            "handshake stalled"
        );
    }
    in_server
}

fn bench(c: &mut Criterion) {
    let (cc, sc) = (config(1), config(2));
    let mut g = c.benchmark_group("dtls");
    g.throughput(Throughput::Elements(1));
    g.bench_function("server_handshake", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| handshake(&cc, &sc)).sum())
    });
    g.bench_function("handshake_pair", |b| b.iter(|| handshake(&cc, &sc)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
