//! RTP hot-path costs: parsing a packet with header extensions, and the SFU's per-viewer
//! in-place rewrite (SSRC, sequence number, timestamp, extension IDs) of a 1200-byte packet.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rtc::rtp::{ExtIdMap, RtpHeader, RtpPacket, RtpPacketMut, ext};

/// A 1200-byte VP8-sized packet with mid, abs-send-time and transport-wide-cc extensions.
fn packet() -> Vec<u8> {
    let exts: [(u8, &[u8]); 3] = [(1, b"0"), (2, &[1, 2, 3]), (3, &[0, 9])];
    let h = RtpHeader {
        marker: false,
        payload_type: 96,
        sequence_number: 1000,
        timestamp: 90_000,
        ssrc: 0x1234_5678,
        csrcs: &[],
        extensions: &exts,
    };
    let mut out = Vec::new();
    let len = 1200 - h.header_len().unwrap();
    h.write_vec(&vec![0xab; len], 0, &mut out).unwrap();
    assert_eq!(out.len(), 1200);
    out
}

fn parse(c: &mut Criterion) {
    let pkt = packet();
    c.bench_function("rtp parse + read header and twcc ext", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&pkt)).unwrap();
            let twcc = p.extension(3).and_then(ext::twcc_seq);
            black_box((
                p.sequence_number(),
                p.timestamp(),
                p.ssrc(),
                twcc,
                p.payload().len(),
            ))
        })
    });
}

fn rewrite(c: &mut Criterion) {
    let mut pkt = packet();
    // Swaps 1<->4, 2<->5, 3<->6 so that every iteration does the same work.
    let mut map = ExtIdMap::drop_all();
    for (a, b) in [(1, 4), (2, 5), (3, 6)] {
        map.set(a, b);
        map.set(b, a);
    }
    let mut seq = 0u16;
    c.bench_function(
        "rtp rewrite 1200 B in place (seq/ts/ssrc + ext remap)",
        |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let mut m = RtpPacketMut::parse(black_box(&mut pkt)).unwrap();
                m.set_sequence_number(seq);
                m.set_timestamp(u32::from(seq) * 3000);
                m.set_ssrc(0xdead_beef);
                m.remap_extensions(&map);
            })
        },
    );
}

criterion_group!(benches, parse, rewrite);
criterion_main!(benches);
