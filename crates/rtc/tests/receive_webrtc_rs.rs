//! Cross-checks of `rtc::receive` against an independent decoder, webrtc-rs `rtcp`: the TWCC
//! feedback, NACKs and receiver reports the receive path writes, it parses to the arrivals,
//! losses and statistics we fed in. And against an independent TWCC recorder, webrtc-rs
//! `interceptor`'s: on the same arrivals, the same feedback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::receive::{ReceiveConfig, ReceiveStream, TwccRecorder};
use rtc::rtcp::{RtcpWriter, SenderInfo};
use rtcp::packet::Packet;
use rtcp::receiver_report::ReceiverReport;
use rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

type Boxed = Box<dyn Packet + Send + Sync>;

fn theirs(buf: &[u8]) -> Boxed {
    let mut pkts = rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(buf)).expect("parses");
    assert_eq!(pkts.len(), 1);
    pkts.remove(0)
}

fn cast<T: 'static>(p: &Boxed) -> &T {
    p.as_any()
        .downcast_ref::<T>()
        .expect("packet of the expected type")
}

/// Small deterministic generator (xorshift) so the scenario is repeatable.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Every packet of a webrtc-rs-decoded feedback as (seq, absolute arrival µs or None).
fn decode(t: &TransportLayerCc) -> Vec<(u16, Option<i64>)> {
    let mut symbols = Vec::new();
    for c in &t.packet_chunks {
        match c {
            PacketStatusChunk::RunLengthChunk(r) => symbols.extend(std::iter::repeat_n(
                r.packet_status_symbol,
                r.run_length.into(),
            )),
            PacketStatusChunk::StatusVectorChunk(v) => symbols.extend(v.symbol_list.iter()),
        }
    }
    symbols.truncate(t.packet_status_count.into());
    let mut deltas = t.recv_deltas.iter();
    let mut at = i64::from(t.reference_time) * 64_000;
    let mut seq = t.base_sequence_number;
    let mut out = Vec::new();
    for s in symbols {
        let arrival = match s {
            SymbolTypeTcc::PacketNotReceived => None,
            _ => {
                at += deltas.next().expect("a delta per received packet").delta;
                Some(at)
            }
        };
        out.push((seq, arrival));
        seq = seq.wrapping_add(1);
    }
    assert!(deltas.next().is_none(), "no extra deltas");
    out
}

#[test]
fn twcc_feedback_decodes_to_the_arrivals_in_webrtc_rs() {
    let t = Instant::now();
    let mut rec = TwccRecorder::new();
    let mut rng = Lcg(0x9e37_79b9_7f4a_7c15);
    // What we fed in: seq -> arrival µs since the first arrival (the recorder's origin).
    let mut fed: BTreeMap<u16, i64> = BTreeMap::new();
    // What webrtc-rs read out: seq -> reported arrival, and every seq reported lost.
    let mut reported: BTreeMap<u16, i64> = BTreeMap::new();
    let (mut now_us, mut fb_count, mut feedbacks) = (0i64, 0u8, 0);
    let (mut rereported, mut reported_lost) = (0, 0);
    let mut next_poll = 100_000;
    let mut late: Vec<u16> = Vec::new();
    // 6000 packets from 63 000 (wrapping at 65 535): 4 % lost, neighbours swapped, some held
    // back until after their feedback, irregular spacing and one 9 s silence.
    let mut seq = 63_000u16;
    for i in 0..6000 {
        now_us += match i {
            3000 => 9_000_000,
            _ => rng.next(3000) as i64 + if rng.next(50) == 0 { 40_000 } else { 0 },
        };
        let mut batch = vec![];
        match rng.next(100) {
            0..=3 => {}
            4..=7 => late.push(seq),
            8..=15 => {
                batch.push(seq.wrapping_add(1));
                batch.push(seq);
                seq = seq.wrapping_add(1);
            }
            _ => batch.push(seq),
        }
        seq = seq.wrapping_add(1);
        if rng.next(10) == 0 {
            batch.append(&mut late);
        }
        for s in batch {
            let now = t + Duration::from_micros(now_us as u64);
            rec.record(now, s);
            fed.entry(s).or_insert(now_us);
        }
        while now_us >= next_poll {
            let now = t + Duration::from_micros(next_poll as u64);
            loop {
                let mut buf = Vec::new();
                if !rec
                    .poll_feedback(now, 0xaaaa, 0xbbbb, &mut RtcpWriter::new(&mut buf))
                    .unwrap()
                {
                    break;
                }
                assert!(buf.len() <= 1100, "{} bytes", buf.len());
                let p = theirs(&buf);
                let fb = cast::<TransportLayerCc>(&p);
                assert_eq!((fb.sender_ssrc, fb.media_ssrc), (0xaaaa, 0xbbbb));
                assert_eq!(fb.fb_pkt_count, fb_count);
                fb_count = fb_count.wrapping_add(1);
                feedbacks += 1;
                for (s, arrival) in decode(fb) {
                    match arrival {
                        Some(a) => {
                            let prev = reported.insert(s, a);
                            rereported += usize::from(prev.is_some());
                            assert!(prev.is_none() || prev == Some(a), "re-reported differently");
                        }
                        None => reported_lost += 1,
                    }
                }
            }
            next_poll += 100_000;
        }
    }
    // The origin is the first arrival.
    let origin = fed.values().copied().min().unwrap();
    eprintln!(
        "{feedbacks} feedbacks, {} fed, {} reported received, {rereported} again, {reported_lost} lost",
        fed.len(),
        reported.len()
    );
    assert!(feedbacks > 100 && rereported > 50 && reported_lost > 200);
    let mut checked = 0;
    for (s, a) in &reported {
        let want = fed
            .get(s)
            .expect("only packets that arrived are reported received")
            - origin;
        assert_eq!(
            *a,
            want / 250 * 250,
            "seq {s}: reported {a} µs, arrived at {want} µs"
        );
        checked += 1;
    }
    // Everything fed except what arrived after the last poll is reported.
    assert!(checked + 40 >= fed.len(), "{checked} of {}", fed.len());
    assert!(
        reported.contains_key(&63_000) && reported.keys().any(|&s| s < 1000),
        "wrapped"
    );
}

#[test]
fn nacks_decode_to_the_missing_numbers_in_webrtc_rs() {
    let t = Instant::now();
    let mut s = ReceiveStream::new(ReceiveConfig::new(0x5555, 90_000));
    let lost = [65_534u16, 3, 4, 5, 30, 47, 48];
    for seq in (65_530u16..=65_535).chain(0..60) {
        if !lost.contains(&seq) {
            s.push(t, seq, 0, &[0; 20]);
        }
    }
    let mut list = Vec::new();
    assert_eq!(
        s.poll_nacks(t + Duration::from_millis(5), &mut list),
        lost.len()
    );
    assert_eq!(list, lost);
    let mut buf = Vec::new();
    RtcpWriter::new(&mut buf).nack(1, s.ssrc(), &list).unwrap();
    let p = theirs(&buf);
    let nack = cast::<TransportLayerNack>(&p);
    assert_eq!((nack.sender_ssrc, nack.media_ssrc), (1, 0x5555));
    let theirs: Vec<u16> = nack.nacks.iter().flat_map(|n| n.packet_list()).collect();
    assert_eq!(theirs, lost);
}

#[test]
fn receiver_report_reads_back_in_webrtc_rs() {
    let t = Instant::now();
    let mut s = ReceiveStream::new(ReceiveConfig::new(0x7777, 48_000));
    // 100 packets of 20 ms from seq 65 500, every 10th lost, arrival jitter ±2 ms.
    for i in 0..100u32 {
        if i % 10 == 3 {
            continue;
        }
        let at = Duration::from_micros(u64::from(i) * 20_000 + u64::from(i % 3) * 2000);
        let seq = 65_500u16.wrapping_add(i as u16);
        s.push(t + at, seq, 960 * i, &[0; 40]);
        while s.poll_packet(t + at).is_some() {}
    }
    let info = SenderInfo {
        ntp_time: 0xe000_0001_8000_0000,
        ..SenderInfo::default()
    };
    s.on_sender_report(t + Duration::from_secs(1), &info);
    let now = t + Duration::from_secs(3);
    while s.poll_packet(now).is_some() {}
    let block = s.report_block(now);
    let mut buf = Vec::new();
    RtcpWriter::new(&mut buf).rr(1, &[block]).unwrap();
    let p = theirs(&buf);
    let rr = cast::<ReceiverReport>(&p);
    let r = &rr.reports[0];
    assert_eq!(r.ssrc, 0x7777);
    assert_eq!(r.total_lost, 10);
    assert_eq!(r.fraction_lost, (10 * 256 / 100) as u8);
    assert_eq!(r.last_sequence_number, 0x0001_0000 + (65_500 + 99 - 65_536));
    assert_eq!(r.last_sender_report, 0x0001_8000);
    assert_eq!(r.delay, 2 * 65_536);
    // Transit alternates 0, +2, +4 ms (0, 96, 192 units): |D| is 96 or 192, J settles near 128.
    assert!((100..=140).contains(&r.jitter), "jitter {}", r.jitter);
}

#[test]
fn twcc_feedback_matches_the_webrtc_rs_interceptor_recorder() {
    // Their recorder has no size limit, no late-packet rewind, and truncates each delta
    // without carrying the remainder: compare on what both handle the same way. Arrivals on
    // 250 µs multiples, losses, reordering within a feedback interval, a wrap, no duplicates.
    let t = Instant::now();
    let mut ours = TwccRecorder::new();
    let mut theirs_rec = interceptor::twcc::Recorder::new(0xaaaa);
    let mut rng = Lcg(0x1234_5678_9abc_def1);
    let (mut now_us, mut seq, mut compared) = (0i64, 65_000u16, 0);
    for interval in 1..=40 {
        let mut batch: Vec<u16> = Vec::new();
        for _ in 0..(20 + rng.next(30)) {
            if rng.next(20) != 0 {
                batch.push(seq);
            }
            seq = seq.wrapping_add(1);
        }
        for i in 1..batch.len() {
            if rng.next(8) == 0 {
                batch.swap(i - 1, i);
            }
        }
        for s in batch {
            ours.record(t + Duration::from_micros(now_us as u64), s);
            theirs_rec.record(0xbbbb, s, now_us);
            now_us += 250 * rng.next(12) as i64;
        }
        now_us = now_us.max(interval * 100_000);
        let now = t + Duration::from_micros(now_us as u64);
        let mut buf = Vec::new();
        assert!(
            ours.poll_feedback(now, 0xaaaa, 0xbbbb, &mut RtcpWriter::new(&mut buf))
                .unwrap()
        );
        assert!(
            !ours
                .poll_feedback(now, 0xaaaa, 0xbbbb, &mut RtcpWriter::new(&mut buf))
                .unwrap()
        );
        let mine = theirs(&buf);
        let mine = cast::<TransportLayerCc>(&mine);
        let built = theirs_rec.build_feedback_packet();
        assert_eq!(built.len(), 1);
        let wire = built[0].marshal().unwrap();
        let other = theirs(&wire);
        let other = cast::<TransportLayerCc>(&other);
        assert_eq!(
            (
                mine.base_sequence_number,
                mine.reference_time,
                mine.fb_pkt_count
            ),
            (
                other.base_sequence_number,
                other.reference_time,
                other.fb_pkt_count
            ),
        );
        assert_eq!(decode(mine), decode(other));
        compared += mine.packet_status_count;
    }
    assert!(compared > 1000);
}
