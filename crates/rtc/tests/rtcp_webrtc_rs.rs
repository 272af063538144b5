//! Cross-checks of `rtc::rtcp` against an independent implementation, webrtc-rs `rtcp`:
//! what we write, it parses to the same values; what it writes, we parse to the same values.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

use bytes::Bytes;
use rtc::rtcp::{
    ReportBlock, RtcpPacket, RtcpWriter, SdesItem, SenderInfo, TwccHeader, parse_compound,
};
use rtcp::goodbye::Goodbye;
use rtcp::packet::Packet;
use rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
    SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc,
};
use rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};

type Boxed = Box<dyn Packet + Send + Sync>;

fn theirs_parse(buf: &[u8]) -> Vec<Boxed> {
    rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(buf)).expect("webrtc-rs parses ours")
}

fn theirs_write(pkts: &[Boxed]) -> Vec<u8> {
    rtcp::packet::marshal(pkts)
        .expect("webrtc-rs marshals")
        .to_vec()
}

fn ours_parse(buf: &[u8]) -> Vec<RtcpPacket<'_>> {
    parse_compound(buf)
        .collect::<Result<_, _>>()
        .expect("we parse theirs")
}

fn cast<T: 'static>(p: &Boxed) -> &T {
    p.as_any()
        .downcast_ref::<T>()
        .expect("packet of the expected type")
}

fn block(i: u32) -> ReportBlock {
    ReportBlock {
        ssrc: 0x1000 + i,
        fraction_lost: 3 * i as u8,
        cumulative_lost: 1000 * i as i32,
        highest_seq: 0x0002_0000 + i,
        jitter: 40 + i,
        last_sr: 0xabcd_0000 + i,
        delay_since_last_sr: 65536 + i,
    }
}

fn their_block(b: &ReportBlock) -> ReceptionReport {
    ReceptionReport {
        ssrc: b.ssrc,
        fraction_lost: b.fraction_lost,
        total_lost: b.cumulative_lost as u32,
        last_sequence_number: b.highest_seq,
        jitter: b.jitter,
        last_sender_report: b.last_sr,
        delay: b.delay_since_last_sr,
    }
}

const INFO: SenderInfo = SenderInfo {
    ntp_time: 0xe8f0_1234_5678_9abc,
    rtp_time: 3_000_000_000,
    packet_count: 12_345,
    octet_count: 9_876_543,
};

/// Every packet kind we write, as one compound datagram.
fn ours_compound(twcc: &[Option<i64>]) -> Vec<u8> {
    let blocks = [block(1), block(2)];
    let items = [
        SdesItem {
            kind: 1,
            text: b"leanrtc@example",
        },
        SdesItem {
            kind: 2,
            text: b"Lean",
        },
    ];
    let twcc_h = TwccHeader {
        sender_ssrc: 5,
        media_ssrc: 6,
        base_seq: 65500,
        reference_time: 0x12_3456,
        fb_pkt_count: 200,
    };
    let mut out = Vec::new();
    RtcpWriter::new(&mut out)
        .sr(0x5555, &INFO, &blocks)
        .and_then(|w| w.rr(0x6666, &blocks[..1]))
        .and_then(|w| w.sdes(&[(0x5555, &items), (0x7777, &items[..1])]))
        .and_then(|w| w.bye(&[0x5555, 0x7777], Some(b"shutting down")))
        .and_then(|w| w.nack(1, 2, &[10, 11, 26, 27, 1000, 65535, 0]))
        .and_then(|w| w.pli(3, 4))
        .and_then(|w| w.fir(3, &[(4, 1), (8, 2)]))
        .and_then(|w| w.remb(3, 2_500_000, &[4, 8]))
        .and_then(|w| w.twcc(&twcc_h, twcc))
        .unwrap();
    out
}

/// A feedback pattern that uses every chunk type and delta size.
fn twcc_deltas() -> Vec<Option<i64>> {
    let mut d: Vec<Option<i64>> = vec![Some(12_000), None, Some(-500), Some(100_000)];
    d.extend((0..40).map(|i| (i % 3 != 0).then_some(250 * i)));
    d.extend(std::iter::repeat_n(None, 30));
    d.extend(std::iter::repeat_n(Some(5_000), 20));
    d
}

/// Expands webrtc-rs's chunk/delta lists into (seq, delta µs) like our iterator.
fn their_twcc_packets(t: &TransportLayerCc) -> Vec<(u16, Option<i64>)> {
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
    let mut seq = t.base_sequence_number;
    let mut out = Vec::new();
    for s in symbols {
        let d = match s {
            SymbolTypeTcc::PacketNotReceived => None,
            _ => Some(deltas.next().expect("a delta per received packet").delta),
        };
        out.push((seq, d));
        seq = seq.wrapping_add(1);
    }
    out
}

#[test]
fn ours_to_theirs_every_kind() {
    let deltas = twcc_deltas();
    let buf = ours_compound(&deltas);
    let theirs = theirs_parse(&buf);
    assert_eq!(theirs.len(), 9);

    let sr = cast::<SenderReport>(&theirs[0]);
    assert_eq!(
        (sr.ssrc, sr.ntp_time, sr.rtp_time),
        (0x5555, INFO.ntp_time, INFO.rtp_time)
    );
    assert_eq!(
        (sr.packet_count, sr.octet_count),
        (INFO.packet_count, INFO.octet_count)
    );
    assert_eq!(sr.reports, [their_block(&block(1)), their_block(&block(2))]);
    let rr = cast::<ReceiverReport>(&theirs[1]);
    assert_eq!(
        (rr.ssrc, &rr.reports[..]),
        (0x6666, &[their_block(&block(1))][..])
    );

    let sdes = cast::<SourceDescription>(&theirs[2]);
    let got: Vec<_> = sdes
        .chunks
        .iter()
        .map(|c| (c.source, c.items.len()))
        .collect();
    assert_eq!(got, [(0x5555, 2), (0x7777, 1)]);
    assert_eq!(sdes.chunks[0].items[0].sdes_type, SdesType::SdesCname);
    assert_eq!(&sdes.chunks[0].items[0].text[..], b"leanrtc@example");
    assert_eq!(sdes.chunks[0].items[1].sdes_type, SdesType::SdesName);

    let bye = cast::<Goodbye>(&theirs[3]);
    assert_eq!(
        (&bye.sources[..], &bye.reason[..]),
        (&[0x5555, 0x7777][..], &b"shutting down"[..])
    );

    let nack = cast::<TransportLayerNack>(&theirs[4]);
    let lost: Vec<u16> = nack.nacks.iter().flat_map(|p| p.packet_list()).collect();
    assert_eq!(lost, [10, 11, 26, 27, 1000, 65535, 0]);
    let pli = cast::<PictureLossIndication>(&theirs[5]);
    assert_eq!((pli.sender_ssrc, pli.media_ssrc), (3, 4));
    let fir = cast::<FullIntraRequest>(&theirs[6]);
    let entries: Vec<_> = fir
        .fir
        .iter()
        .map(|e| (e.ssrc, e.sequence_number))
        .collect();
    assert_eq!((fir.sender_ssrc, entries), (3, vec![(4, 1), (8, 2)]));
    let remb = cast::<ReceiverEstimatedMaximumBitrate>(&theirs[7]);
    assert_eq!(
        (remb.sender_ssrc, remb.bitrate, &remb.ssrcs[..]),
        (3, 2_500_000.0, &[4, 8][..])
    );

    let tcc = cast::<TransportLayerCc>(&theirs[8]);
    assert_eq!(
        (tcc.sender_ssrc, tcc.media_ssrc, tcc.base_sequence_number),
        (5, 6, 65500)
    );
    assert_eq!((tcc.reference_time, tcc.fb_pkt_count), (0x12_3456, 200));
    let expect: Vec<_> = (0..)
        .map(|i: u16| 65500u16.wrapping_add(i))
        .zip(deltas)
        .collect();
    assert_eq!(their_twcc_packets(tcc), expect);
}

#[test]
fn theirs_to_ours_reports_and_sdes() {
    let b = [block(1), block(7)];
    let pkts: Vec<Boxed> = vec![
        Box::new(SenderReport {
            ssrc: 0x5555,
            ntp_time: INFO.ntp_time,
            rtp_time: INFO.rtp_time,
            packet_count: INFO.packet_count,
            octet_count: INFO.octet_count,
            reports: b.iter().map(their_block).collect(),
            profile_extensions: Bytes::new(),
        }),
        Box::new(ReceiverReport {
            ssrc: 9,
            reports: vec![their_block(&b[1])],
            ..Default::default()
        }),
        Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: 0x5555,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: Bytes::from_static(b"{1b2c3d4e-cname}"),
                }],
            }],
        }),
        Box::new(Goodbye {
            sources: vec![1, 2, 3],
            reason: Bytes::from_static(b"bye!"),
        }),
    ];
    let buf = theirs_write(&pkts);
    let ours = ours_parse(&buf);
    let [
        RtcpPacket::Sr(sr),
        RtcpPacket::Rr(rr),
        RtcpPacket::Sdes(sdes),
        RtcpPacket::Bye(bye),
    ] = ours[..]
    else {
        panic!("{ours:?}")
    };
    assert_eq!((sr.ssrc(), sr.info()), (0x5555, INFO));
    assert_eq!(sr.reports().collect::<Vec<_>>(), b);
    assert_eq!(
        (rr.ssrc(), rr.reports().collect::<Vec<_>>()),
        (9, vec![b[1]])
    );
    let chunk = sdes.chunks().next().unwrap();
    assert_eq!(
        (chunk.ssrc(), chunk.cname()),
        (0x5555, Some("{1b2c3d4e-cname}"))
    );
    assert_eq!(bye.ssrcs().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(bye.reason(), Some(&b"bye!"[..]));
}

#[test]
fn theirs_to_ours_feedback() {
    let pkts: Vec<Boxed> = vec![
        Box::new(TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 2,
            nacks: vec![
                NackPair {
                    packet_id: 65530,
                    lost_packets: 0b1000_0000_0010_0001,
                },
                NackPair {
                    packet_id: 300,
                    lost_packets: 0,
                },
            ],
        }),
        Box::new(PictureLossIndication {
            sender_ssrc: 3,
            media_ssrc: 4,
        }),
        Box::new(FullIntraRequest {
            sender_ssrc: 3,
            media_ssrc: 0,
            fir: vec![FirEntry {
                ssrc: 4,
                sequence_number: 77,
            }],
        }),
        Box::new(ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 3,
            bitrate: 8_000_000.0,
            ssrcs: vec![4, 5, 6],
        }),
    ];
    let buf = theirs_write(&pkts);
    let ours = ours_parse(&buf);
    let [
        RtcpPacket::Nack(n),
        RtcpPacket::Pli(pli),
        RtcpPacket::Fir(fir),
        RtcpPacket::Remb(r),
    ] = ours[..]
    else {
        panic!("{ours:?}")
    };
    assert_eq!((n.sender_ssrc(), n.media_ssrc()), (1, 2));
    assert_eq!(
        n.lost().collect::<Vec<_>>(),
        [65530, 65531, 65536u32 as u16, 10, 300]
    );
    assert_eq!((pli.sender_ssrc, pli.media_ssrc), (3, 4));
    assert_eq!(
        (fir.sender_ssrc(), fir.entries().collect::<Vec<_>>()),
        (3, vec![(4, 77)])
    );
    assert_eq!((r.sender_ssrc(), r.bitrate()), (3, 8_000_000));
    assert_eq!(r.ssrcs().collect::<Vec<_>>(), [4, 5, 6]);
}

#[test]
fn theirs_to_ours_twcc_round_trip() {
    // What we write, webrtc-rs parses and marshals again; we parse its output.
    let deltas = twcc_deltas();
    let buf = ours_compound(&deltas);
    let theirs = theirs_parse(&buf);
    let again = theirs_write(&theirs[8..]);
    let [RtcpPacket::Twcc(t)] = ours_parse(&again)[..] else {
        panic!()
    };
    let got: Vec<_> = t.packets().map(|p| p.1).collect();
    assert_eq!(got, deltas);
    assert_eq!((t.reference_time(), t.fb_pkt_count()), (0x12_3456, 200));
}

#[test]
fn theirs_to_ours_twcc_hand_built() {
    use SymbolTypeTcc::PacketReceivedSmallDelta as Small;
    use SymbolTypeTcc::{PacketNotReceived as Lost, PacketReceivedLargeDelta as Large};
    let vector = |size, list: &[SymbolTypeTcc]| {
        PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
            type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
            symbol_size: size,
            symbol_list: list.to_vec(),
        })
    };
    let delta = |t, us| RecvDelta {
        type_tcc_packet: t,
        delta: us,
    };
    let tcc = TransportLayerCc {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_sequence_number: 1000,
        packet_status_count: 26,
        reference_time: 77,
        fb_pkt_count: 3,
        packet_chunks: vec![
            PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: Small,
                run_length: 5,
            }),
            vector(
                SymbolSizeTypeTcc::OneBit,
                &[
                    Lost, Small, Lost, Lost, Small, Lost, Lost, Lost, Lost, Lost, Lost, Lost, Lost,
                    Small,
                ],
            ),
            vector(
                SymbolSizeTypeTcc::TwoBit,
                &[Large, Lost, Small, Large, Lost, Lost, Lost],
            ),
        ],
        recv_deltas: [
            (Small, 250),
            (Small, 500),
            (Small, 0),
            (Small, 63_750),
            (Small, 1000),
        ]
        .into_iter()
        .chain([(Small, 2000), (Small, 750), (Small, 250)])
        .chain([(Large, -8_000_000), (Small, 1250), (Large, 70_000)])
        .map(|(t, us)| delta(t, us))
        .collect(),
    };
    let buf = theirs_write(&[Box::new(tcc.clone())]);
    let [RtcpPacket::Twcc(t)] = ours_parse(&buf)[..] else {
        panic!()
    };
    assert_eq!(
        (t.base_seq(), t.status_count(), t.reference_time()),
        (1000, 26, 77)
    );
    assert_eq!(t.packets().collect::<Vec<_>>(), their_twcc_packets(&tcc));
}
