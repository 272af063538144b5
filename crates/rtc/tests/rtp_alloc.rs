//! The per-packet paths allocate nothing: RTP parse, lookup and in-place rewrite, RTP writing
//! into a reused buffer, and RTCP parsing and writing into a reused `Vec`.

#![allow(clippy::unwrap_used)]

use rtc::rtcp::{RtcpPacket, RtcpWriter, TwccHeader, parse_compound};
use rtc::rtp::{ExtIdMap, RtpHeader, RtpPacket, RtpPacketMut};

#[test]
fn rtp_and_rtcp_hot_paths_do_not_allocate() {
    let exts: [(u8, &[u8]); 3] = [(1, b"0"), (2, &[1, 2, 3]), (3, &[0, 9])];
    let payload = [0x5a; 1100];
    let mut buf = vec![0u8; 1500];
    let mut rtcp = Vec::with_capacity(1500);
    let mut map = ExtIdMap::drop_all();
    map.set(3, 7);
    let deltas = [Some(1000), None, Some(-250), Some(70_000)];
    let info = allocation_counter::measure(|| {
        for seq in 0..1000u16 {
            let h = RtpHeader {
                payload_type: 96,
                sequence_number: seq,
                ssrc: 1,
                extensions: &exts,
                ..Default::default()
            };
            let n = h.write(&payload, 0, &mut buf).unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            assert_eq!(p.extension(3), Some(&[0, 9][..]));
            let mut m = RtpPacketMut::parse(&mut buf[..n]).unwrap();
            m.set_sequence_number(seq ^ 0x5555);
            m.set_timestamp(u32::from(seq));
            m.set_ssrc(2);
            m.remap_extensions(&map);
            m.extension_mut(7)
                .unwrap()
                .copy_from_slice(&seq.to_be_bytes());

            rtcp.clear();
            let tw = TwccHeader {
                base_seq: seq,
                ..Default::default()
            };
            let mut w = RtcpWriter::new(&mut rtcp);
            w.rr(1, &[]).unwrap().cname(1, "cname").unwrap();
            w.nack(1, 2, &[seq, seq.wrapping_add(3)]).unwrap();
            w.pli(1, 2).unwrap().twcc(&tw, &deltas).unwrap();
            let mut lost = 0;
            for pkt in parse_compound(&rtcp) {
                match pkt.unwrap() {
                    RtcpPacket::Nack(n) => lost += n.lost().count(),
                    RtcpPacket::Twcc(t) => lost += t.packets().filter(|p| p.1.is_none()).count(),
                    _ => {}
                }
            }
            assert_eq!(lost, 3);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}
