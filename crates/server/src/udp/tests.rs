//! Loopback tests (127.0.0.1 and ::1) of batched receive and send, against plain std sockets.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::*;

const IO: Token = Token(0);

/// A datagram's bytes: tag, index, then a pattern, so content and order can be checked.
fn payload(tag: u8, i: u16, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|j| (j as u8).wrapping_mul(31) ^ tag).collect();
    p[0] = tag;
    p[1..3].copy_from_slice(&i.to_be_bytes());
    p
}

fn index(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[1], bytes[2]])
}

/// A plain socket as the far end, blocking with a timeout.
fn peer(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).unwrap();
    // Room for a test's burst (capped by net.core.rmem_max; the tests stay well under).
    sys::set_opt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 1 << 20).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn to(io: &UdpIo, ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), io.local_addr().port())
}

fn registered(io: &mut UdpIo) -> Poll {
    let poll = Poll::new().unwrap();
    poll.registry()
        .register(io, IO, Interest::READABLE)
        .unwrap();
    poll
}

/// Receives exactly `n` datagrams through mio readiness, within 5 s.
fn recv_n(io: &mut UdpIo, poll: &mut Poll, n: usize) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    let mut batch = RecvBatch::new(32);
    let mut events = Events::with_capacity(8);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} datagrams",
            got.len()
        );
        while io.recv_batch(&mut batch).unwrap() > 0 {
            assert!(batch.len() <= 32 && !batch.is_empty());
            let items = batch
                .iter_mut()
                .map(|d: Datagram<'_>| (d.source, d.local, d.bytes.to_vec()));
            got.extend(items);
        }
        if got.len() < n {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
        }
    }
    assert_eq!(got.len(), n, "more datagrams than sent");
    got
}

/// Receives exactly `n` datagrams on a plain socket.
fn peer_recv_n(s: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 4096];
    (0..n)
        .map(|_| {
            let (len, from) = s.recv_from(&mut buf).unwrap();
            assert!(from.port() != 0);
            buf[..len].to_vec()
        })
        .collect()
}

fn assert_nothing_more(s: &UdpSocket) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert!(
        s.recv_from(&mut [0u8; 64]).is_err(),
        "an unexpected datagram"
    );
}

#[test]
fn batch_receive_from_several_senders_keeps_sources_and_order() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut poll = registered(&mut io);
    let senders: Vec<UdpSocket> = (0..4).map(|_| peer("127.0.0.1:0")).collect();
    let mut got = Vec::new();
    // Rounds of 4 × 25 keep well inside any receive buffer.
    for round in 0..4u16 {
        for (tag, s) in senders.iter().enumerate() {
            for i in 0..25 {
                let i = round * 25 + i;
                s.send_to(
                    &payload(tag as u8, i, 100 + usize::from(i)),
                    io.local_addr(),
                )
                .unwrap();
            }
        }
        got.extend(recv_n(&mut io, &mut poll, 100));
    }
    for (tag, s) in senders.iter().enumerate() {
        let mine: Vec<_> = got
            .iter()
            .filter(|(src, ..)| *src == s.local_addr().unwrap())
            .collect();
        assert_eq!(mine.len(), 100);
        for (i, (_, local, bytes)) in mine.iter().enumerate() {
            assert_eq!(*local, io.local_addr());
            assert_eq!(*bytes, payload(tag as u8, i as u16, 100 + i));
        }
    }
    let st = io.stats();
    assert_eq!(st.rx_datagrams, 400);
    assert_eq!(st.rx_bytes, 4 * (0..100).map(|i| 100 + i).sum::<u64>());
}

#[test]
fn wildcard_v4_learns_the_local_address_and_replies_from_it() {
    let mut io = UdpIo::bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let mut poll = registered(&mut io);
    let p = peer("127.0.0.1:0");
    // Another loopback address: the socket must tell which one each datagram came to.
    for ip in ["127.0.0.1", "127.0.0.2"] {
        p.send_to(b"\x00\x01ping", to(&io, ip)).unwrap();
        let got = recv_n(&mut io, &mut poll, 1);
        let (src, local, bytes) = &got[0];
        assert_eq!((*src, *local), (p.local_addr().unwrap(), to(&io, ip)));
        assert_eq!(bytes, b"\x00\x01ping");
        let mut out = SendBatch::new(8);
        assert!(out.push(*src, Some(local.ip()), b"pong"));
        assert_eq!(io.flush(&mut out), 1);
        let mut buf = [0u8; 16];
        let (n, from) = p.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"pong"[..], to(&io, ip)));
    }
}

#[test]
fn ipv6_loopback_and_dual_stack_wildcard() {
    let mut io = UdpIo::bind("[::1]:0".parse().unwrap()).unwrap();
    let mut poll = registered(&mut io);
    let p = peer("[::1]:0");
    p.send_to(b"six", io.local_addr()).unwrap();
    let got = recv_n(&mut io, &mut poll, 1);
    assert_eq!(
        (got[0].0, got[0].1),
        (p.local_addr().unwrap(), io.local_addr())
    );

    // `[::]` takes IPv6 and (dual-stack) IPv4; IPv4 peers come out as plain V4 addresses.
    let mut io = UdpIo::bind("[::]:0".parse().unwrap()).unwrap();
    let mut poll = registered(&mut io);
    let p4 = peer("127.0.0.1:0");
    for (p, ip) in [(&p, "::1"), (&p4, "127.0.0.1")] {
        p.send_to(b"hello", to(&io, ip)).unwrap();
        let got = recv_n(&mut io, &mut poll, 1);
        let (src, local, _) = &got[0];
        assert_eq!((*src, *local), (p.local_addr().unwrap(), to(&io, ip)));
        let mut out = SendBatch::new(8);
        // Two datagrams so the reply also goes through GSO on the dual-stack path.
        out.push(*src, Some(local.ip()), b"back");
        out.push(*src, Some(local.ip()), b"bac");
        assert_eq!(io.flush(&mut out), 2);
        let mut buf = [0u8; 16];
        let (n, from) = p.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"back"[..], to(&io, ip)));
        assert_eq!(p.recv_from(&mut buf).unwrap().0, 3);
    }
    assert_eq!(io.stats().send_errors, 0);
}

/// A frame of `n` packets of `size` bytes and a shorter last one.
fn push_frame(out: &mut SendBatch, dst: SocketAddr, tag: u8, n: u16, size: usize) {
    for i in 0..n {
        let len = if i + 1 == n { size / 3 } else { size };
        // In place, as the SRTP path will do.
        let buf = out.buf_mut().unwrap();
        buf[..len].copy_from_slice(&payload(tag, i, len));
        assert!(out.commit(dst, None, len));
    }
}

#[test]
fn gso_sends_a_frame_as_separate_datagrams() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(io.gso_segments() > 1, "UDP GSO (Linux >= 4.18) is missing");
    let p = peer("127.0.0.1:0");
    let mut out = SendBatch::new(64);
    push_frame(&mut out, p.local_addr().unwrap(), 7, 9, 1200);
    assert_eq!(io.flush(&mut out), 9);
    assert!(!out.has_pending() && out.is_empty());
    let got = peer_recv_n(&p, 9);
    for (i, bytes) in got.iter().enumerate() {
        let len = if i == 8 { 400 } else { 1200 };
        assert_eq!(*bytes, payload(7, i as u16, len));
    }
    assert_nothing_more(&p);
    let st = io.stats();
    assert_eq!(
        (st.tx_datagrams, st.tx_messages, st.tx_bytes),
        (9, 1, 8 * 1200 + 400)
    );
}

#[test]
fn gso_respects_the_segment_cap_and_mixed_destinations() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    io.set_gso_segments(4);
    let peers: Vec<UdpSocket> = (0..3).map(|_| peer("127.0.0.1:0")).collect();
    let dst: Vec<SocketAddr> = peers.iter().map(|p| p.local_addr().unwrap()).collect();
    let mut out = SendBatch::new(256);
    let mut sent = vec![Vec::new(); 3];
    // 0:aaaaaa 1:b 0:a 2:cc (sizes differ) 1:bbb — every switch of destination or size
    // starts a message, and runs split after 4 segments.
    let script: [(usize, usize, usize); 6] = [
        (0, 6, 1000),
        (1, 1, 300),
        (0, 1, 1000),
        (2, 1, 500),
        (2, 1, 600),
        (1, 3, 800),
    ];
    for (who, count, len) in script {
        for _ in 0..count {
            let i = sent[who].len() as u16;
            let p = payload(who as u8, i, len);
            assert!(out.push(dst[who], None, &p));
            sent[who].push(p);
        }
    }
    assert_eq!(io.flush(&mut out), 13);
    for (who, p) in peers.iter().enumerate() {
        assert_eq!(peer_recv_n(p, sent[who].len()), sent[who]);
        assert_nothing_more(p);
    }
    // 0:[4+2] 1:[1] 0:[1] 2:[1] 2:[1] 1:[3]
    assert_eq!(io.stats().tx_messages, 7);
}

#[test]
fn without_gso_every_datagram_is_its_own_message() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    io.set_gso_segments(1);
    let p = peer("127.0.0.1:0");
    let mut out = SendBatch::new(64);
    push_frame(&mut out, p.local_addr().unwrap(), 1, 9, 1200);
    assert_eq!(io.flush(&mut out), 9);
    assert_eq!(peer_recv_n(&p, 9)[8], payload(1, 8, 400));
    assert_eq!((io.stats().tx_messages, io.gso_segments()), (9, 1));
}

#[test]
fn gso_refused_at_send_time_falls_back_and_resends() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let p = peer("127.0.0.1:0");
    let mut out = SendBatch::new(64);
    push_frame(&mut out, p.local_addr().unwrap(), 2, 5, 1200);
    // What a device without checksum offload answers to UDP_SEGMENT.
    io.fake_errors.push_back(libc::EIO);
    assert_eq!(io.flush(&mut out), 5);
    assert_eq!(io.gso_segments(), 1);
    let got = peer_recv_n(&p, 5);
    assert_eq!(got[4], payload(2, 4, 400));
    let st = io.stats();
    assert_eq!((st.tx_messages, st.send_errors), (5, 0));
}

#[test]
fn would_block_keeps_everything_queued_until_writable() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    io.set_send_buffer(1).unwrap();
    io.set_gso_segments(1); // 200 messages: several sendmmsg rounds of 64.
    let p = peer("127.0.0.1:0");
    let dst = p.local_addr().unwrap();
    let mut out = SendBatch::new(1000);
    for i in 0..200 {
        assert!(out.push(dst, None, &payload(3, i, 100)));
    }
    // The first round goes out, the second finds the socket full.
    io.fake_errors.extend([0, libc::EAGAIN]);
    assert_eq!(io.flush(&mut out), 64);
    assert!(out.has_pending());
    assert_eq!(out.len(), 136);
    let mut got = peer_recv_n(&p, 64);
    // More arrives while blocked; it queues behind.
    for i in 200..210 {
        assert!(out.push(dst, None, &payload(3, i, 100)));
    }
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(&mut io, IO, Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(4);
    poll.poll(&mut events, Some(Duration::from_secs(2)))
        .unwrap();
    assert!(events.iter().any(|e| e.token() == IO && e.is_writable()));
    assert_eq!(io.flush(&mut out), 146);
    assert!(!out.has_pending());
    got.extend(peer_recv_n(&p, 146));
    for (i, bytes) in got.iter().enumerate() {
        assert_eq!(*bytes, payload(3, i as u16, 100));
    }
    let st = io.stats();
    assert_eq!((st.tx_datagrams, st.dropped, st.send_errors), (210, 0, 0));
}

#[test]
fn a_full_queue_drops_and_counts() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let p = peer("127.0.0.1:0");
    let dst = p.local_addr().unwrap();
    let mut out = SendBatch::new(10);
    let pushed = (0..15)
        .filter(|&i| out.push(dst, None, &payload(0, i, 50)))
        .count();
    assert_eq!(pushed, 10);
    assert!(out.buf_mut().is_none());
    assert!(!out.push(dst, None, &[0; SLOT + 1]));
    assert!(!out.push(dst, None, &[]));
    io.flush(&mut out);
    assert!(
        out.push(dst, None, &[1; SLOT]),
        "a flushed queue takes datagrams again"
    );
    io.flush(&mut out);
    peer_recv_n(&p, 11);
    let st = io.stats();
    assert_eq!((st.tx_datagrams, st.dropped), (11, 8));
}

#[test]
fn a_blocked_queue_makes_room_and_keeps_order() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    io.set_gso_segments(1);
    let p = peer("127.0.0.1:0");
    let dst = p.local_addr().unwrap();
    let mut out = SendBatch::new(100);
    let mut next = 0u16;
    let mut push = |out: &mut SendBatch, n: usize| {
        (0..n)
            .filter(|_| {
                let ok = out.push(dst, None, &payload(5, next, 80));
                next += u16::from(ok);
                ok
            })
            .count()
    };
    assert_eq!(push(&mut out, 100), 100);
    io.fake_errors.extend([0, libc::EAGAIN]);
    assert_eq!(io.flush(&mut out), 64);
    // The 36 left move to the front; the queue takes 64 more, then refuses.
    assert_eq!(push(&mut out, 70), 64);
    assert_eq!(out.len(), 100);
    assert_eq!(io.flush(&mut out), 100);
    let got = peer_recv_n(&p, 164);
    for (i, bytes) in got.iter().enumerate() {
        assert_eq!(*bytes, payload(5, i as u16, 80));
    }
    assert_eq!(io.stats().dropped, 6);
}

#[test]
fn send_errors_drop_only_the_bad_datagrams() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let p = peer("127.0.0.1:0");
    let mut out = SendBatch::new(10);
    out.push(p.local_addr().unwrap(), None, b"one");
    // An IPv6 destination on an IPv4 socket: the kernel refuses it.
    out.push("[::1]:9".parse().unwrap(), None, b"bad");
    out.push(p.local_addr().unwrap(), None, b"two");
    assert_eq!(io.flush(&mut out), 2);
    assert_eq!(peer_recv_n(&p, 2), [b"one".to_vec(), b"two".to_vec()]);
    let st = io.stats();
    assert_eq!(st.send_errors, 1);
    assert!(st.last_send_error.is_some());
}

/// Sends 3000 datagrams (frames of 6 to one peer, GSO on) with `percent` % injected loss;
/// returns the indices that arrived.
fn run_loss(percent: f64, seed: u64) -> (BTreeSet<u16>, UdpStats) {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    io.set_send_loss(percent, seed);
    let p = peer("127.0.0.1:0");
    let dst = p.local_addr().unwrap();
    let mut out = SendBatch::new(64);
    let mut got = BTreeSet::new();
    for chunk in 0..50u16 {
        for i in 0..60 {
            assert!(out.push(dst, None, &payload(9, chunk * 60 + i, 300)));
        }
        let before = io.stats().tx_datagrams;
        let sent = io.flush(&mut out);
        assert_eq!(io.stats().tx_datagrams - before, sent as u64);
        got.extend(peer_recv_n(&p, sent).iter().map(|b| index(b)));
    }
    assert_nothing_more(&p);
    (got, io.stats())
}

#[test]
fn injected_loss_drops_about_the_share_asked_and_repeats() {
    let (a, st) = run_loss(5.0, 42);
    let lost = 3000 - a.len() as u64;
    assert_eq!(st.lost_injected, lost);
    assert_eq!(st.tx_datagrams, a.len() as u64);
    // Binomial(3000, 5 %): mean 150, sd ~12.
    assert!((100..=200).contains(&lost), "lost {lost} of 3000 at 5 %");
    assert_eq!(run_loss(5.0, 42).0, a, "same seed, same losses");
    assert_ne!(run_loss(5.0, 43).0, a, "another seed, other losses");
    assert_eq!(run_loss(0.0, 42).0.len(), 3000);
    assert!(run_loss(100.0, 42).0.is_empty());
}

#[test]
fn a_frame_with_a_lost_packet_still_arrives_in_order() {
    // Loss inside a GSO run leaves the others of the run in one message, in order.
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    io.set_send_loss(30.0, 1);
    let p = peer("127.0.0.1:0");
    let mut out = SendBatch::new(64);
    push_frame(&mut out, p.local_addr().unwrap(), 4, 20, 1000);
    let sent = io.flush(&mut out);
    assert!((5..20).contains(&sent));
    let got: Vec<u16> = peer_recv_n(&p, sent).iter().map(|b| index(b)).collect();
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    let st = io.stats();
    assert_eq!(st.lost_injected as usize + sent, 20);
    assert!(
        st.tx_messages < sent as u64,
        "the survivors still share GSO messages"
    );
}

#[test]
fn oversized_datagrams_are_counted_and_skipped() {
    let mut io = UdpIo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut poll = registered(&mut io);
    let p = peer("127.0.0.1:0");
    p.send_to(&[1; SLOT + 100], io.local_addr()).unwrap();
    p.send_to(b"fits", io.local_addr()).unwrap();
    let mut batch = RecvBatch::new(4);
    let mut events = Events::with_capacity(4);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    while seen < 2 && Instant::now() < deadline {
        seen += io.recv_batch(&mut batch).unwrap();
        let ok: Vec<Vec<u8>> = batch.iter_mut().map(|d| d.bytes.to_vec()).collect();
        assert!(ok.iter().all(|b| b == b"fits"));
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
    }
    assert_eq!((io.stats().rx_datagrams, io.stats().rx_truncated), (2, 1));
}

#[test]
fn the_media_thread_can_own_it() {
    fn moves_to_a_thread<T: Send + 'static>() {}
    moves_to_a_thread::<UdpIo>();
    moves_to_a_thread::<RecvBatch>();
    moves_to_a_thread::<SendBatch>();
}

/// Issue 10: each datagram carries its kernel receive time, not the time we got round to
/// reading it. Three datagrams 30 ms apart, read 150 ms after the last: their stamps lie
/// before the read (by well over half the wait), in order, about 30 ms apart.
#[test]
fn arrival_is_the_kernel_receive_time_not_the_read() {
    for addr in ["127.0.0.1:0", "[::]:0"] {
        let mut io = UdpIo::bind(addr.parse().unwrap()).unwrap();
        let s = peer("127.0.0.1:0");
        let dst = to(&io, "127.0.0.1");
        let mut sent = Vec::new();
        for i in 0..3u16 {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(30));
            }
            sent.push(Instant::now());
            s.send_to(&payload(1, i, 100), dst).unwrap();
        }
        std::thread::sleep(Duration::from_millis(150));
        let read_at = Instant::now();
        let mut batch = RecvBatch::new(8);
        assert_eq!(io.recv_batch(&mut batch).unwrap(), 3, "{addr}");
        let arrivals: Vec<Instant> = batch.iter_mut().map(|d| d.arrival).collect();
        for (i, (&at, &sent_at)) in arrivals.iter().zip(&sent).enumerate() {
            assert!(
                at < read_at - Duration::from_millis(75),
                "{addr}: datagram {i} stamped {:?} before the read",
                read_at - at
            );
            // Loopback delivery is immediate; allow for clock granularity on both ends.
            assert!(
                at + Duration::from_millis(5) >= sent_at,
                "{addr}: {i} before sent"
            );
        }
        for w in arrivals.windows(2) {
            let gap = w[1].saturating_duration_since(w[0]);
            assert!(gap >= Duration::from_millis(20), "{addr}: gap {gap:?}");
        }
    }
}

/// The realtime-to-monotonic mapping: age on the wall clock, subtracted from now; no stamp,
/// a stamp from the future or one older than [`MAX_STAMP_AGE`] (a clock step) mean now.
#[test]
fn kernel_stamps_map_to_instants() {
    let now = Instant::now();
    let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let since = wall.duration_since(UNIX_EPOCH).unwrap();
    let ms = Duration::from_millis;
    assert_eq!(
        arrival_instant(Some(since - ms(40)), (wall, now)),
        now - ms(40)
    );
    assert_eq!(arrival_instant(Some(since), (wall, now)), now);
    assert_eq!(arrival_instant(None, (wall, now)), now);
    assert_eq!(arrival_instant(Some(since + ms(5)), (wall, now)), now);
    assert_eq!(arrival_instant(Some(since - ms(60_000)), (wall, now)), now);
}
