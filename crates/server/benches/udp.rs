//! Datagrams per second through the loopback stack, 1200-byte datagrams, one thread:
//! std `send_to` one by one, our `sendmmsg` (32 per call), our `sendmmsg` + UDP GSO (8
//! segments), quinn-udp's GSO transmit (8 segments per `sendmsg`), and on the receive side
//! std `recv_from` one by one, our `recvmmsg` (32 per call) and quinn-udp's `recv`.
//!
//! The send benches' receivers are never read: the kernel drops what overflows their queue
//! after the whole receive path ran, so the figures are the sender's cost of the full trip.
//! Run: `cargo bench -p leanrtc --bench udp`.

#![allow(clippy::unwrap_used)]

// The module under test, compiled into the bench (the server is a binary crate); the bench
// uses only part of its API.
#[allow(dead_code)]
#[path = "../src/udp/mod.rs"]
mod udp;

use std::hint::black_box;
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use udp::{RecvBatch, SendBatch, UdpIo};

const SIZE: usize = 1200;
/// Datagrams per measured iteration.
const N: usize = 64;
const LOCAL: &str = "127.0.0.1:0";

fn sink() -> UdpSocket {
    UdpSocket::bind(LOCAL).unwrap()
}

/// Our send path: `N` datagrams to `dsts` (in runs of `N / dsts.len()` per destination),
/// queued `per_flush` at a time, with `segments` per GSO send (1: plain sendmmsg).
fn ours(c: &mut Criterion, name: &str, segments: usize, dsts: usize, per_flush: usize) {
    let mut io = UdpIo::bind(LOCAL.parse().unwrap()).unwrap();
    io.set_gso_segments(segments);
    assert_eq!(io.gso_segments(), segments, "GSO unavailable");
    let sinks: Vec<UdpSocket> = (0..dsts).map(|_| sink()).collect();
    let to: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr().unwrap()).collect();
    let mut batch = SendBatch::new(N);
    let pkt = [0x5a; SIZE];
    let mut g = c.benchmark_group("udp send");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            for chunk in 0..N / per_flush {
                for i in 0..per_flush {
                    let dst = to[(chunk * per_flush + i) * dsts / N];
                    batch.push(dst, None, &pkt);
                }
                black_box(io.flush(&mut batch));
            }
        })
    });
    g.finish();
    let st = io.stats();
    assert_eq!((st.send_errors, st.dropped), (0, 0));
}

fn send(c: &mut Criterion) {
    let tx = UdpSocket::bind(LOCAL).unwrap();
    let rx = sink();
    let to = rx.local_addr().unwrap();
    let pkt = [0x5a; SIZE];
    let mut g = c.benchmark_group("udp send");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("std send_to, one by one", |b| {
        b.iter(|| {
            for _ in 0..N {
                black_box(tx.send_to(&pkt, to).unwrap());
            }
        })
    });

    let state = UdpSocketState::new((&tx).into()).unwrap();
    assert!(state.max_gso_segments() >= 8);
    let frame = vec![0x5a; 8 * SIZE];
    g.bench_function("quinn-udp send, GSO 8 segments", |b| {
        b.iter(|| {
            for _ in 0..N / 8 {
                let t = Transmit {
                    destination: to,
                    ecn: None,
                    contents: &frame,
                    segment_size: Some(SIZE),
                    src_ip: None,
                };
                state.try_send((&tx).into(), &t).unwrap();
            }
        })
    });
    let sinks: Vec<UdpSocket> = (0..8).map(|_| sink()).collect();
    let dsts: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr().unwrap()).collect();
    g.bench_function("quinn-udp send, GSO 8 segments, 8 destinations", |b| {
        b.iter(|| {
            for &destination in &dsts {
                let t = Transmit {
                    destination,
                    ecn: None,
                    contents: &frame,
                    segment_size: Some(SIZE),
                    src_ip: None,
                };
                state.try_send((&tx).into(), &t).unwrap();
            }
        })
    });
    g.bench_function("quinn-udp send, one by one", |b| {
        b.iter(|| {
            for _ in 0..N {
                let t = Transmit {
                    destination: to,
                    ecn: None,
                    contents: &pkt,
                    segment_size: None,
                    src_ip: None,
                };
                state.try_send((&tx).into(), &t).unwrap();
            }
        })
    });
    g.finish();

    ours(c, "ours sendmmsg, 32 per call", 1, 1, 32);
    ours(c, "ours sendmmsg, 64 per call, 64 destinations", 1, 64, 64);
    ours(c, "ours sendmmsg + GSO 8 segments", 8, 1, 64);
    ours(
        c,
        "ours sendmmsg + GSO 8 segments, 8 destinations",
        8,
        8,
        64,
    );
    ours(c, "ours sendmmsg + GSO 32 segments", 32, 1, 64);
}

/// Times `read` (which must take exactly `N / 2` datagrams) after an untimed fill.
fn timed_reads(iters: u64, fill: &mut UdpIo, to: SocketAddr, mut read: impl FnMut()) -> Duration {
    let mut batch = SendBatch::new(N);
    let pkt = [0xa5; SIZE];
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        for _ in 0..N / 2 {
            batch.push(to, None, &pkt);
        }
        assert_eq!(fill.flush(&mut batch), N / 2);
        let start = Instant::now();
        read();
        total += start.elapsed();
    }
    total
}

fn recv(c: &mut Criterion) {
    // Filled without GSO, so every datagram arrives as its own (no GRO on loopback).
    let mut fill = UdpIo::bind(LOCAL.parse().unwrap()).unwrap();
    fill.set_gso_segments(1);
    let mut g = c.benchmark_group("udp recv");
    g.throughput(Throughput::Elements(N as u64 / 2));

    let rx = sink();
    rx.set_nonblocking(true).unwrap();
    let to = rx.local_addr().unwrap();
    let mut buf = [0u8; 2048];
    g.bench_function("std recv_from, one by one", |b| {
        b.iter_custom(|iters| {
            timed_reads(iters, &mut fill, to, || {
                for _ in 0..N / 2 {
                    black_box(rx.recv_from(&mut buf).unwrap());
                }
            })
        })
    });

    let mut io = UdpIo::bind(LOCAL.parse().unwrap()).unwrap();
    let to = io.local_addr();
    let mut batch = RecvBatch::new(N / 2);
    g.bench_function("ours recvmmsg, 32 per call", |b| {
        b.iter_custom(|iters| {
            timed_reads(iters, &mut fill, to, || {
                assert_eq!(io.recv_batch(&mut batch).unwrap(), N / 2);
            })
        })
    });
    let mut wild = UdpIo::bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let to = SocketAddr::new([127, 0, 0, 1].into(), wild.local_addr().port());
    g.bench_function("ours recvmmsg + pktinfo (0.0.0.0), 32 per call", |b| {
        b.iter_custom(|iters| {
            timed_reads(iters, &mut fill, to, || {
                assert_eq!(wild.recv_batch(&mut batch).unwrap(), N / 2);
            })
        })
    });

    let qrx = sink();
    let state = UdpSocketState::new((&qrx).into()).unwrap();
    let to = qrx.local_addr().unwrap();
    let mut storage = [[0u8; 2048]; N / 2];
    let mut meta = vec![RecvMeta::default(); N / 2];
    g.bench_function("quinn-udp recv (recvmmsg), 32 per call", |b| {
        b.iter_custom(|iters| {
            timed_reads(iters, &mut fill, to, || {
                let mut bufs = storage.each_mut().map(|b| IoSliceMut::new(b));
                let mut got = 0;
                while got < N / 2 {
                    got += state
                        .recv((&qrx).into(), &mut bufs[got..], &mut meta[got..])
                        .unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = send, recv
}
criterion_main!(benches);
