//! The `udp` bench's cases measured *paired*: one round of each case in turn, 5000 times,
//! and the median round per case. On a shared machine, load drifts over a criterion run and
//! skews one case against another; interleaving rounds and taking medians cancels that, so
//! the ratios between cases are the figures to trust. 1200-byte datagrams, 64 per send round
//! (32 per receive round), loopback receivers that are never read on the send side.
//! Run: `cargo bench -p leanrtc --bench udp_paired`.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../src/udp/mod.rs"]
mod udp;

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use udp::{RecvBatch, SendBatch, UdpIo};

const SIZE: usize = 1200;
const ROUNDS: usize = 5000;
const CASES: [&str; 12] = [
    "std send_to, 1 dest",
    "ours sendmmsg 32/call, 1 dest",
    "ours sendmmsg, 64 dests x 1",
    "quinn-udp send, 64 dests x 1",
    "ours GSO 8, 1 dest",
    "quinn-udp GSO 8, 1 dest",
    "ours GSO 8, 8 dests x 8 (1 call)",
    "quinn-udp GSO 8, 8 dests x 8",
    "ours GSO 32, 1 dest",
    "std recv_from x 32",
    "ours recvmmsg 32/call",
    "quinn-udp recv 32/call",
];

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn ours(segments: usize) -> UdpIo {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    io.set_gso_segments(segments);
    assert_eq!(io.gso_segments(), segments, "GSO unavailable");
    io
}

fn transmit(destination: SocketAddr, contents: &[u8], segment: Option<usize>) -> Transmit<'_> {
    Transmit {
        destination,
        ecn: None,
        contents,
        segment_size: segment,
        src_ip: None,
    }
}

/// Queues `each` copies of `pkt` to every destination in turn.
fn push(out: &mut SendBatch, dsts: &[SocketAddr], each: usize, pkt: &[u8]) {
    for &d in dsts {
        for _ in 0..each {
            assert!(out.push(d, None, pkt));
        }
    }
}

fn main() {
    let sinks: Vec<UdpSocket> = (0..64).map(|_| bind()).collect();
    let to: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr().unwrap()).collect();
    let tx = bind();
    tx.set_nonblocking(true).unwrap();
    let quinn = UdpSocketState::new((&tx).into()).unwrap();
    let (mut plain, mut gso8, mut gso32) = (ours(1), ours(8), ours(32));
    let mut out = SendBatch::new(64);
    let (pkt, frame) = ([1u8; SIZE], vec![1u8; 8 * SIZE]);

    let rx = bind();
    rx.set_nonblocking(true).unwrap();
    let qrx = bind();
    let qstate = UdpSocketState::new((&qrx).into()).unwrap();
    let mut rio = ours(1);
    let mut fill = ours(1);
    let mut batch = RecvBatch::new(32);
    let mut storage = [[0u8; 2048]; 32];
    let mut meta = [RecvMeta::default(); 32];
    let mut fill_out = SendBatch::new(32);

    let mut per_datagram: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); CASES.len()];
    for _ in 0..ROUNDS {
        for (case, times) in per_datagram.iter_mut().enumerate() {
            if case >= 9 {
                let dst = [
                    rx.local_addr().unwrap(),
                    rio.local_addr(),
                    qrx.local_addr().unwrap(),
                ];
                for _ in 0..32 {
                    fill_out.push(dst[case - 9], None, &pkt);
                }
                assert_eq!(fill.flush(&mut fill_out), 32);
            }
            let start = Instant::now();
            let n = match case {
                0 => {
                    for _ in 0..64 {
                        tx.send_to(&pkt, to[0]).unwrap();
                    }
                    64
                }
                1 => {
                    let mut sent = 0;
                    for _ in 0..2 {
                        push(&mut out, &[to[0]], 32, &pkt);
                        sent += plain.flush(&mut out);
                    }
                    sent
                }
                2 => {
                    push(&mut out, &to, 1, &pkt);
                    plain.flush(&mut out)
                }
                3 => {
                    for &d in &to {
                        quinn
                            .try_send((&tx).into(), &transmit(d, &pkt, None))
                            .unwrap();
                    }
                    64
                }
                4 => {
                    push(&mut out, &[to[0]], 64, &pkt);
                    gso8.flush(&mut out)
                }
                5 | 7 => {
                    let dsts = if case == 5 {
                        [to[0]; 8]
                    } else {
                        [0, 1, 2, 3, 4, 5, 6, 7].map(|i| to[i])
                    };
                    for d in dsts {
                        let t = transmit(d, &frame, Some(SIZE));
                        quinn.try_send((&tx).into(), &t).unwrap();
                    }
                    64
                }
                6 => {
                    push(&mut out, &to[..8], 8, &pkt);
                    gso8.flush(&mut out)
                }
                8 => {
                    push(&mut out, &[to[0]], 64, &pkt);
                    gso32.flush(&mut out)
                }
                9 => {
                    for _ in 0..32 {
                        rx.recv_from(&mut storage[0]).unwrap();
                    }
                    32
                }
                10 => rio.recv_batch(&mut batch).unwrap(),
                _ => {
                    let mut bufs = storage.each_mut().map(|b| IoSliceMut::new(b));
                    let mut got = 0;
                    while got < 32 {
                        got += qstate
                            .recv((&qrx).into(), &mut bufs[got..], &mut meta[got..])
                            .unwrap();
                    }
                    got
                }
            };
            times.push(start.elapsed().as_secs_f64() / n as f64);
            assert_eq!(n, if case >= 9 { 32 } else { 64 }, "{}", CASES[case]);
        }
    }
    println!("| case | datagrams/s (median round) |\n|---|---|");
    for (name, times) in CASES.iter().zip(&mut per_datagram) {
        times.sort_by(f64::total_cmp);
        println!("| {name} | {:.0} k |", 1e-3 / times[times.len() / 2]);
    }
}
