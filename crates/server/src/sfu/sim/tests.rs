//! The SFU core on the simulated network: connection, loss and NACK, rebinding, a live
//! stream across shards and its takeover, keyframe requests, floods.
#![cfg(test)]

use std::net::SocketAddr;
use std::time::Duration;

use rtc::rtcp::{RtcpPacket, RtcpWriter, parse_compound};
use rtc::rtp::RtpHeader;
use rtc::sdp::MediaKind;
use rtc::stun::{Class, Key, MessageBuilder, Method, TransactionId};

use super::{Link, Net};
use crate::control::Role;
use crate::sfu::budget::DATAGRAMS_PER_ROUND;
use crate::sfu::publish::TAKEOVER_AFTER;

const MS: Duration = Duration::from_millis(1);

fn clean() -> Link {
    Link::clean(10 * MS)
}

/// A viewer of `sample` on `shard` of `shards` connects and gets `sample`'s video.
fn viewer_gets_video(shards: usize, shard: usize) {
    let mut net = Net::new(shards, 1);
    let v = net
        .join(Role::Play, "sample", shard, clean(), clean())
        .unwrap();
    assert!(
        net.run_until(Duration::from_secs(2), |n| n.clients[v].connected.is_some()),
        "ICE and DTLS done"
    );
    let start = net.now;
    net.run_for(Duration::from_secs(2));
    let c = &net.clients[v];
    let video = c.video().filter(|g| g.at > start).count();
    // `sample` is ~30 fps, at least one packet a frame.
    assert!(video >= 50, "{video} video packets in 2 s");
    assert_eq!(c.peer.stats().srtp_failed, 0);
    assert_eq!(net.shards[shard].session_count(), 1);
    if shard != 0 {
        // Its every datagram came in through shard 0, which handed it over.
        assert!(net.shards[0].counters.datagrams_handed_over > 0);
        assert_eq!(net.shards[0].session_count(), 0);
    }
}

#[test]
fn viewer_on_one_shard_receives_srtp_video() {
    viewer_gets_video(1, 0);
}

#[test]
fn viewer_on_shard_1_of_2_receives_video_through_shard_0() {
    viewer_gets_video(2, 1);
}

/// Connects client `i`, or fails the test.
fn connect(net: &mut Net, i: usize) {
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.clients[i].connected.is_some()),
        "client {i} connects"
    );
}

/// Sequence numbers as offsets from the first one (they may wrap).
fn offsets(seqs: &[u16]) -> Vec<u16> {
    let first = seqs.first().copied().unwrap_or(0);
    seqs.iter()
        .map(|s| s.wrapping_sub(first))
        .filter(|o| *o < 0x8000)
        .collect()
}

/// Offsets below `upto` never received.
fn missing(received: &[u16], upto: u16) -> Vec<u16> {
    let mut have = vec![false; usize::from(upto)];
    for &o in received {
        if let Some(h) = have.get_mut(usize::from(o)) {
            *h = true;
        }
    }
    (0..upto).filter(|o| !have[usize::from(*o)]).collect()
}

/// 5 % loss, reordering and duplicates on the viewer's downlink: the NACKs it sends are
/// answered with resends, and every packet but the newest arrives in the end.
#[test]
fn nacks_on_a_lossy_reordering_link_recover_every_packet() {
    let mut net = Net::new(1, 2);
    let down = Link {
        delay: 10 * MS,
        loss: 5,
        reorder: 10,
        reorder_by: 15 * MS,
        duplicate: 2,
        ..Link::default()
    };
    let v = net.join(Role::Play, "sample", 0, clean(), down).unwrap();
    connect(&mut net, v);
    net.run_until(Duration::from_secs(1), |n| {
        n.clients[v].video_ssrc().is_some()
    });
    let ssrc = net.clients[v].video_ssrc().expect("video");
    // Every packet found missing at some point (the link must have lost some).
    let mut ever_missing = std::collections::BTreeSet::new();
    let mut buf = Vec::new();
    for _ in 0..30 {
        net.run_for(100 * MS);
        let seqs = net.clients[v].video_seqs();
        let got = offsets(&seqs);
        let newest = got.iter().copied().max().unwrap_or(0);
        // Only what reordering cannot explain any more.
        let lost = missing(&got, newest.saturating_sub(5));
        ever_missing.extend(lost.iter().copied());
        if lost.is_empty() {
            continue;
        }
        let first = seqs[0];
        let lost: Vec<u16> = lost.iter().map(|o| first.wrapping_add(*o)).collect();
        buf.clear();
        RtcpWriter::new(&mut buf).nack(1, ssrc, &lost).unwrap();
        net.send_rtcp(v, &buf);
    }
    net.run_for(200 * MS);
    let got = offsets(&net.clients[v].video_seqs());
    let newest = got.iter().copied().max().unwrap_or(0);
    assert!(newest > 150, "{newest} video packets");
    assert!(
        ever_missing.len() >= 3,
        "the link lost packets ({ever_missing:?})"
    );
    let lost = missing(&got, newest - 30);
    assert!(lost.is_empty(), "never resent: {lost:?}");
}

/// A STUN check as a browser's ICE agent renominates with (RFC 8445 §7.2.2: USERNAME is
/// the receiver's ufrag, then the sender's; the key is the receiver's password).
fn renominating_check(net: &Net, i: usize, tid: u8) -> Vec<u8> {
    let c = &net.clients[i];
    let username = format!("{}:{}", c.remote.ufrag, c.credentials.ufrag);
    let mut buf = Vec::new();
    MessageBuilder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([tid; 12]),
    )
    .username(username.as_bytes())
    // A peer-reflexive candidate's priority, as our controlling agent's checks have.
    .priority((110 << 24) | (65535 << 8) | 255)
    .ice_controlling(7)
    .use_candidate()
    .message_integrity(&Key::new(c.remote.pwd.as_bytes()))
    .fingerprint();
    buf
}

/// The viewer's NAT mapping changes mid-session: once a check from the new address
/// nominates it, media goes there and no longer to the old one.
#[test]
fn media_follows_an_address_rebinding() {
    let mut net = Net::new(1, 3);
    let v = net.join(Role::Play, "sample", 0, clean(), clean()).unwrap();
    connect(&mut net, v);
    net.run_for(Duration::from_secs(1));
    let old = net.clients[v].mapped;
    assert!(net.sent_to[&old] > 30);
    let new = SocketAddr::new(old.ip(), old.port() + 1);
    net.clients[v].mapped = new;
    // Media still goes to the old address until a check from the new one.
    net.run_for(200 * MS);
    assert_eq!(net.sent_to.get(&new), None);
    let check = renominating_check(&net, v, 9);
    net.send_from_client(v, check);
    net.run_for(200 * MS);
    let to_old = net.sent_to[&old];
    let before = net.clients[v].video().count();
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.sent_to[&old], to_old, "nothing more to the old address");
    let video = net.clients[v].video().count() - before;
    assert!(video >= 25, "{video} video packets after the rebinding");
    assert!(net.clients[v].peer.is_connected());
    // SRTCP from the new address is routed to the session too: a NACK gets its resend.
    let ssrc = net.clients[v].video_ssrc().expect("video");
    let seq = *net.clients[v].video_seqs().last().expect("video");
    let copies = |net: &Net| {
        net.clients[v]
            .video_seqs()
            .iter()
            .filter(|s| **s == seq)
            .count()
    };
    assert_eq!(copies(&net), 1);
    let mut buf = Vec::new();
    RtcpWriter::new(&mut buf).nack(1, ssrc, &[seq]).unwrap();
    net.send_rtcp(v, &buf);
    net.run_for(100 * MS);
    assert_eq!(
        copies(&net),
        2,
        "the NACK from the new address was answered"
    );
}

/// A live publisher: VP8 frames of one packet each, a keyframe every `gop` frames.
struct Publisher {
    i: usize,
    ssrc: u32,
    pt: u8,
    seq: u16,
    ts: u32,
    frame: u32,
    gop: u32,
}

impl Publisher {
    fn new(net: &Net, i: usize, seq: u16, ts: u32) -> Self {
        let c = &net.clients[i];
        Publisher {
            i,
            ssrc: c.local_ssrc(MediaKind::Video),
            pt: c.video_pts().0,
            seq,
            ts,
            frame: 0,
            gop: 30,
        }
    }

    /// Sends the next frame.
    fn send(&mut self, net: &mut Net) {
        // VP8 payload descriptor (RFC 7741 §4.2: S=1, partition 0), then the frame tag
        // whose lowest bit is 0 on a keyframe (RFC 6386 §9.1).
        let key = self.frame.is_multiple_of(self.gop);
        let mut payload = vec![0x10, u8::from(!key), 0, 0, 0x9d, 0x01, 0x2a];
        payload.resize(200, 0xab);
        let mut packet = Vec::new();
        RtpHeader {
            marker: true,
            payload_type: self.pt,
            sequence_number: self.seq,
            timestamp: self.ts,
            ssrc: self.ssrc,
            ..RtpHeader::default()
        }
        .write_vec(&payload, 0, &mut packet)
        .unwrap();
        net.send_rtp(self.i, &packet);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(3000);
        self.frame += 1;
    }

    /// Sends a frame every 33 ms for `frames` frames.
    fn run(&mut self, net: &mut Net, frames: u32) {
        for _ in 0..frames {
            self.send(net);
            net.run_for(33 * MS);
        }
    }
}

/// PLIs a client received, by media SSRC.
fn plis(net: &Net, i: usize) -> Vec<u32> {
    let mut found = Vec::new();
    for rtcp in &net.clients[i].rtcp {
        for packet in parse_compound(rtcp).flatten() {
            if let RtcpPacket::Pli(pli) = packet {
                found.push(pli.media_ssrc);
            }
        }
    }
    found
}

/// A publisher on shard 0 and a viewer on shard 1: the viewer gets the publisher's video;
/// a second publisher takes the stream over after the first went quiet, and the viewer's
/// sequence numbers run on without a gap.
#[test]
fn a_live_stream_crosses_shards_and_survives_a_takeover() {
    let mut net = Net::new(2, 4);
    let p = net
        .join(Role::Publish, "live", 0, clean(), clean())
        .unwrap();
    connect(&mut net, p);
    let mut first = Publisher::new(&net, p, 1000, 0);
    first.run(&mut net, 5);
    let v = net.join(Role::Play, "live", 1, clean(), clean()).unwrap();
    connect(&mut net, v);
    first.run(&mut net, 60);
    let got = net.clients[v].video().count();
    assert!(got >= 40, "{got} of the first publisher's packets");
    // The first publisher goes quiet; after the takeover silence a new one may publish.
    net.run_for(TAKEOVER_AFTER + 100 * MS);
    let q = net
        .join(Role::Publish, "live", 0, clean(), clean())
        .expect("the takeover is accepted");
    connect(&mut net, q);
    let mut second = Publisher::new(&net, q, 40_000, 123_456);
    second.run(&mut net, 60);
    let after = net.clients[v].video().count() - got;
    assert!(after >= 40, "{after} of the second publisher's packets");
    let seqs: Vec<u16> = net.clients[v]
        .video()
        .map(|g| g.view().sequence_number())
        .collect();
    for pair in seqs.windows(2) {
        assert_eq!(
            pair[1],
            pair[0].wrapping_add(1),
            "continuous numbering: {seqs:?}"
        );
    }
}

/// A viewer on shard 1 asks for a keyframe: shard 0 sends the publisher a PLI for its video.
#[test]
fn a_keyframe_request_on_shard_1_reaches_the_publisher_on_shard_0() {
    let mut net = Net::new(2, 5);
    let p = net
        .join(Role::Publish, "live", 0, clean(), clean())
        .unwrap();
    connect(&mut net, p);
    let mut publisher = Publisher::new(&net, p, 7, 0);
    publisher.gop = 1000;
    publisher.run(&mut net, 5);
    let v = net.join(Role::Play, "live", 1, clean(), clean()).unwrap();
    connect(&mut net, v);
    publisher.run(&mut net, 40);
    let ssrc = net.clients[v].video_ssrc().expect("the viewer gets video");
    // No request without one from the viewer (beyond those of its start).
    let before = plis(&net, p).len();
    publisher.run(&mut net, 20);
    assert_eq!(plis(&net, p).len(), before, "no PLI unasked");
    let mut buf = Vec::new();
    RtcpWriter::new(&mut buf).pli(1, ssrc).unwrap();
    net.send_rtcp(v, &buf);
    publisher.run(&mut net, 3);
    let found = plis(&net, p);
    assert_eq!(found.len(), before + 1, "one PLI for the viewer's");
    assert_eq!(found.last(), Some(&publisher.ssrc));
}

/// Garbage and forged checks flood shard 0 (steadily, and in one burst far larger than a
/// round's budget): the viewers' media goes on, each round handles at most its budget, and
/// the STUN error answers stay rate-limited.
#[test]
fn a_flood_does_not_stop_media() {
    let mut net = Net::new(2, 6);
    let a = net.join(Role::Play, "sample", 0, clean(), clean()).unwrap();
    let b = net.join(Role::Play, "sample", 1, clean(), clean()).unwrap();
    connect(&mut net, a);
    connect(&mut net, b);
    net.run_for(500 * MS);
    let before = [a, b].map(|i| net.clients[i].video().count());
    // 256 datagrams from as many sources, sent round and round: half garbage, half checks
    // for viewer b's session with a wrong password (each answered 401, rate-limited).
    let target = net.clients[b].remote.ufrag.clone();
    let mut dice = super::Dice::new(99);
    let datagrams: Vec<(SocketAddr, Vec<u8>)> = (0..256u64)
        .map(|k| {
            let r = dice.next();
            let from = SocketAddr::new(
                std::net::Ipv4Addr::new(198, 18, (k >> 8) as u8, k as u8).into(),
                1024 + (r % 60_000) as u16,
            );
            let bytes = if k % 2 == 0 {
                (0..100).map(|j| (r >> (j % 56)) as u8).collect()
            } else {
                let mut buf = Vec::new();
                let username = format!("{target}:x{r}");
                MessageBuilder::new(
                    &mut buf,
                    Class::Request,
                    Method::BINDING,
                    TransactionId([k as u8; 12]),
                )
                .username(username.as_bytes())
                .priority(1)
                .ice_controlling(r)
                .message_integrity(&Key::new(b"not the password"))
                .fingerprint();
                buf
            };
            (from, bytes)
        })
        .collect();
    let mut next = datagrams.iter().cycle();
    let mut flood = |net: &mut Net, n: usize| {
        for (from, bytes) in next.by_ref().take(n) {
            net.inject(*from, bytes.clone());
        }
    };
    for _ in 0..1500 {
        flood(&mut net, 10);
        net.step();
    }
    flood(&mut net, 3 * DATAGRAMS_PER_ROUND);
    net.run_for(500 * MS);
    for (k, i) in [a, b].into_iter().enumerate() {
        let video = net.clients[i].video().count() - before[k];
        assert!(
            video >= 60,
            "viewer {k}: {video} video packets during the flood"
        );
        assert!(net.clients[i].peer.is_connected());
    }
    let shard0 = &net.shards[0];
    assert!(shard0.limits.round_datagrams_max <= DATAGRAMS_PER_ROUND as u64);
    assert!(
        shard0.limits.rounds_budget_exhausted >= 2,
        "the burst took several rounds"
    );
    // Every flood datagram was read (none lost to a full socket) and none made a session.
    assert_eq!(net.stats.socket_dropped, 0);
    assert_eq!(
        net.shards[0].session_count() + net.shards[1].session_count(),
        2
    );
    // Answers to the flood: STUN errors, at most the limiter's total rate over 2 s.
    let answers: u64 = net
        .sent_to
        .iter()
        .filter(|(to, _)| matches!(to.ip(), std::net::IpAddr::V4(ip) if ip.octets()[0] == 198))
        .map(|(_, n)| n)
        .sum();
    assert!(answers <= 1500, "{answers} answers to the flood");
}

/// Another stack as the viewer: str0m on shard 1 of 2, over a link losing 3 % and
/// reordering, reassembles `sample`'s VP8 frames from its first keyframe on, gapless once
/// its own NACKs got their resends.
#[test]
fn str0m_viewer_on_a_lossy_link_gets_whole_frames() {
    let mut net = Net::new(2, 7);
    let down = Link {
        delay: 15 * MS,
        loss: 3,
        reorder: 5,
        reorder_by: 10 * MS,
        duplicate: 1,
        ..Link::default()
    };
    let s = net.join_str0m("sample", 1, clean(), down).unwrap();
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.str0ms[s].connected.is_some()),
        "str0m connects"
    );
    net.run_for(Duration::from_secs(3));
    let frames = &net.str0ms[s].frames;
    assert!(frames.len() >= 60, "{} frames in 3 s", frames.len());
    let first = &frames[0].data;
    assert_eq!(
        first.first().map(|b| b & 0x01),
        Some(0),
        "starts at a keyframe"
    );
    let broken = frames.iter().filter(|f| !f.contiguous).count();
    assert_eq!(broken, 0, "frames after a gap that no resend filled");
}

/// A shard fed by shard 0 spends its round's budget on the media it is handed, as on
/// datagrams it reads: after a budget's worth the round stops taking messages (and so gets
/// to HTTP's commands) instead of draining its whole inbox first.
#[test]
fn media_from_another_shard_spends_the_round_budget() {
    use crate::sfu::message::{MediaBatch, Message};
    use std::sync::Arc;
    let mut net = Net::new(2, 7);
    let now = net.now;
    let shard = &mut net.shards[1];
    shard.start_round();
    let mut batch = MediaBatch::default();
    for _ in 0..DATAGRAMS_PER_ROUND / 2 {
        batch.push("nothing", 0, &[0x80; 20], false, now);
    }
    let batch = Arc::new(batch);
    assert!(shard.may_receive(1));
    shard.handle_message(now, Message::Media(Arc::clone(&batch)));
    assert!(shard.may_receive(1), "half the budget left");
    shard.handle_message(now, Message::Media(batch));
    assert!(!shard.may_receive(1), "the round's budget is spent");
    assert!(shard.unfinished());
}

/// Issue 13: a viewer that reaches the server over ICE-TCP only (its frames come in on
/// shard 0's connection) gets its video back on that connection and never a datagram over
/// UDP, wherever its session lives.
fn viewer_over_tcp_gets_video(shards: usize, shard: usize) {
    let mut net = Net::new(shards, 3);
    let v = net.join_over_tcp(Role::Play, "sample", shard).unwrap();
    connect(&mut net, v);
    let start = net.now;
    net.run_for(Duration::from_secs(2));
    let c = &net.clients[v];
    let video = c.video().filter(|g| g.at > start).count();
    assert!(video >= 50, "{video} video packets in 2 s");
    assert_eq!(c.peer.stats().srtp_failed, 0);
    assert_eq!(net.shards[shard].session_count(), 1);
    let mapped = c.mapped;
    assert!(net.tcp_sent_to.get(&mapped).copied().unwrap_or(0) >= 50);
    assert_eq!(net.sent_to.get(&mapped), None, "nothing went over UDP");
    assert_eq!(net.stats.stray, 0);
    let session = &net.shards[shard].sessions.values().next().unwrap();
    let remote = session.peer.path().map(|p| p.0);
    assert_eq!(net.shards[shard].net.transport(remote), "tcp");
}

#[test]
fn viewer_over_tcp_on_one_shard_gets_video_on_its_connection() {
    viewer_over_tcp_gets_video(1, 0);
}

#[test]
fn viewer_over_tcp_on_shard_1_gets_video_through_shard_0s_connection() {
    viewer_over_tcp_gets_video(2, 1);
}

/// When shard 0 says a TCP peer's connection is gone for good, every shard sends to that
/// address over UDP again.
#[test]
fn a_forgotten_tcp_peer_is_sent_to_over_udp_again() {
    let mut net = Net::new(2, 4);
    let v = net.join_over_tcp(Role::Play, "sample", 1).unwrap();
    connect(&mut net, v);
    let mapped = net.clients[v].mapped;
    assert!(net.shards[1].net.is_tcp(mapped));
    net.shards[0].tcp_forget(vec![mapped]);
    net.exchange();
    assert!(!net.shards[0].net.is_tcp(mapped));
    assert!(!net.shards[1].net.is_tcp(mapped));
}
