//! Hand-checked vectors laid out as in the RFC figures, round trips, and malformed input.

use super::*;

fn one(buf: &[u8]) -> RtcpPacket<'_> {
    let mut it = parse_compound(buf);
    let p = it.next().unwrap().unwrap();
    assert!(it.next().is_none());
    p
}

/// A sender report with one report block (RFC 3550 §6.4.1).
const SR: &[u8] = &[
    0x81, 200, 0x00, 0x0c, // V=2 P=0 RC=1, PT=SR, length 12 words
    0x90, 0x2f, 0x9e, 0x2e, // SSRC of sender
    0xda, 0x8b, 0xd1, 0xfc, 0xdd, 0xdd, 0xa0, 0x5a, // NTP timestamp
    0xaa, 0xf4, 0xed, 0xd5, // RTP timestamp
    0x00, 0x00, 0x00, 0x01, // sender's packet count
    0x00, 0x00, 0x00, 0x02, // sender's octet count
    0xbc, 0x5e, 0x9a, 0x40, // report block: SSRC_1
    0x10, 0xff, 0xff,
    0xfe, // fraction lost 16/256, cumulative lost -2 (24-bit two's complement)
    0x00, 0x01, 0x46, 0x5b, // extended highest sequence number: cycle 1, seq 0x465b
    0x00, 0x00, 0x00, 0x26, // interarrival jitter
    0x12, 0x34, 0x56, 0x78, // LSR
    0x00, 0x01, 0x80, 0x00, // DLSR: 1.5 s in 1/65536 s
];

const BLOCK: ReportBlock = ReportBlock {
    ssrc: 0xbc5e_9a40,
    fraction_lost: 16,
    cumulative_lost: -2,
    highest_seq: 0x0001_465b,
    jitter: 0x26,
    last_sr: 0x1234_5678,
    delay_since_last_sr: 0x0001_8000,
};

#[test]
fn sender_report_vector() {
    let RtcpPacket::Sr(sr) = one(SR) else {
        panic!()
    };
    assert_eq!(sr.ssrc(), 0x902f_9e2e);
    let info = SenderInfo {
        ntp_time: 0xda8b_d1fc_dddd_a05a,
        rtp_time: 0xaaf4_edd5,
        packet_count: 1,
        octet_count: 2,
    };
    assert_eq!(sr.info(), info);
    assert_eq!(sr.reports().collect::<Vec<_>>(), [BLOCK]);
    assert!(sr.extension().is_empty());
    let mut out = Vec::new();
    RtcpWriter::new(&mut out)
        .sr(0x902f_9e2e, &info, &[BLOCK])
        .unwrap();
    assert_eq!(out, SR);
}

/// What a browser sends: RR without blocks + SDES CNAME, as one compound packet.
const RR_SDES: &[u8] = &[
    0x80, 201, 0x00, 0x01, // V=2 RC=0, PT=RR, length 1
    0x00, 0x00, 0x00, 0x01, // reporter SSRC
    0x81, 202, 0x00, 0x03, // V=2 SC=1, PT=SDES, length 3
    0x00, 0x00, 0x00, 0x01, // chunk SSRC
    0x01, 0x05, b'a', b'b', b'c', b'd', b'e', // CNAME, 5 octets
    0x00, // null item ends the list (and pads to the word)
];

#[test]
fn compound_rr_sdes_vector() {
    let pkts: Vec<_> = parse_compound(RR_SDES).map(Result::unwrap).collect();
    let [RtcpPacket::Rr(rr), RtcpPacket::Sdes(sdes)] = pkts[..] else {
        panic!("{pkts:?}")
    };
    assert_eq!((rr.ssrc(), rr.reports().len()), (1, 0));
    let chunks: Vec<_> = sdes.chunks().collect();
    assert_eq!((chunks.len(), chunks[0].ssrc()), (1, 1));
    assert_eq!(chunks[0].cname(), Some("abcde"));
    let mut out = Vec::new();
    RtcpWriter::new(&mut out)
        .rr(1, &[])
        .unwrap()
        .cname(1, "abcde")
        .unwrap();
    assert_eq!(out, RR_SDES);
}

#[test]
fn sdes_multi_chunk_round_trip() {
    let items = [
        SdesItem {
            kind: 1,
            text: b"user@host",
        },
        SdesItem {
            kind: 6,
            text: b"leanrtc",
        },
    ];
    let mut out = Vec::new();
    let mut w = RtcpWriter::new(&mut out);
    w.sdes(&[(7, &items), (8, &items[..1]), (9, &[])]).unwrap();
    let RtcpPacket::Sdes(s) = one(&out) else {
        panic!()
    };
    let got: Vec<_> = s
        .chunks()
        .map(|c| (c.ssrc(), c.items().collect::<Vec<_>>()))
        .collect();
    assert_eq!(
        got,
        [(7, items.to_vec()), (8, items[..1].to_vec()), (9, vec![])]
    );
    // A missing null terminator is malformed (RFC 3550 §6.5).
    let bad = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'];
    assert_eq!(one_err(&bad), RtcpError::BadSdes);
}

fn one_err(buf: &[u8]) -> RtcpError {
    parse_compound(buf).next().unwrap().unwrap_err()
}

#[test]
fn bye_vector() {
    let bye = [
        0x82, 203, 0x00, 0x04, // V=2 SC=2, PT=BYE, length 4
        0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x0b, // two SSRCs
        0x04, b'd', b'o', b'n', b'e', 0x00, 0x00, 0x00, // reason "done", zero padding
    ];
    let RtcpPacket::Bye(b) = one(&bye) else {
        panic!()
    };
    assert_eq!(b.ssrcs().collect::<Vec<_>>(), [10, 11]);
    assert_eq!(b.reason(), Some(&b"done"[..]));
    let mut out = Vec::new();
    RtcpWriter::new(&mut out)
        .bye(&[10, 11], Some(b"done"))
        .unwrap();
    assert_eq!(out, bye);
    let mut short = bye;
    short[12] = 9; // the reason would run past the packet
    assert_eq!(one_err(&short), RtcpError::BadByeReason);
}

#[test]
fn nack_vector() {
    let nack = [
        0x81, 205, 0x00, 0x04, // V=2 FMT=1, PT=RTPFB, length 4
        0x00, 0x00, 0x00, 0x01, // sender SSRC
        0x00, 0x00, 0x00, 0x02, // media SSRC
        0x00, 0x64, 0x00, 0x05, // PID 100, BLP bits 0 and 2: 101 and 103 lost too
        0xff, 0xff, 0x80, 0x00, // PID 65535, BLP bit 15: 65535 + 16 wraps to 15
    ];
    let RtcpPacket::Nack(n) = one(&nack) else {
        panic!()
    };
    assert_eq!((n.sender_ssrc(), n.media_ssrc()), (1, 2));
    assert_eq!(n.lost().collect::<Vec<_>>(), [100, 101, 103, 65535, 15]);
    let mut out = Vec::new();
    RtcpWriter::new(&mut out)
        .nack(1, 2, &[100, 101, 103, 65535, 15])
        .unwrap();
    assert_eq!(out, nack);
    // Packing: duplicates fold in, 17 apart starts a new pair, empty writes nothing.
    out.clear();
    let mut w = RtcpWriter::new(&mut out);
    w.nack(1, 2, &[]).unwrap();
    assert!(w.is_empty());
    w.nack(1, 2, &[5, 5, 21, 22]).unwrap();
    let RtcpPacket::Nack(n) = one(&out) else {
        panic!()
    };
    assert_eq!(n.pairs().collect::<Vec<_>>(), [(5, 0x8000), (22, 0)]);
}

#[test]
fn pli_fir_vectors() {
    let pli = [0x81, 206, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2];
    assert_eq!(
        one(&pli),
        RtcpPacket::Pli(Pli {
            sender_ssrc: 1,
            media_ssrc: 2
        })
    );
    let mut out = Vec::new();
    RtcpWriter::new(&mut out).pli(1, 2).unwrap();
    assert_eq!(out, pli);
    let fir = [
        0x84, 206, 0x00, 0x04, // V=2 FMT=4, PT=PSFB, length 4
        0x00, 0x00, 0x00, 0x01, // sender SSRC
        0x00, 0x00, 0x00, 0x00, // media SSRC: unused, 0 (RFC 5104 §4.3.1.2)
        0x00, 0x00, 0x00, 0x09, // FCI: SSRC 9
        0x2a, 0x00, 0x00, 0x00, // seq nr 42, reserved
    ];
    let RtcpPacket::Fir(f) = one(&fir) else {
        panic!()
    };
    assert_eq!(
        (f.sender_ssrc(), f.entries().collect::<Vec<_>>()),
        (1, vec![(9, 42)])
    );
    out.clear();
    RtcpWriter::new(&mut out).fir(1, &[(9, 42)]).unwrap();
    assert_eq!(out, fir);
}

#[test]
fn remb_vector() {
    let remb = [
        0x8f, 206, 0x00, 0x05, // V=2 FMT=15, PT=PSFB, length 5
        0x00, 0x00, 0x00, 0x01, // sender SSRC
        0x00, 0x00, 0x00, 0x00, // media SSRC 0
        b'R', b'E', b'M', b'B', // unique identifier
        0x01, 0x0b, 0xd0, 0x90, // 1 SSRC; exp 2, mantissa 250000: 1 000 000 bit/s
        0x00, 0x00, 0x00, 0x07, // SSRC feedback
    ];
    let RtcpPacket::Remb(r) = one(&remb) else {
        panic!()
    };
    assert_eq!((r.sender_ssrc(), r.bitrate()), (1, 1_000_000));
    assert_eq!(r.ssrcs().collect::<Vec<_>>(), [7]);
    let mut out = Vec::new();
    RtcpWriter::new(&mut out).remb(1, 1_000_000, &[7]).unwrap();
    assert_eq!(out, remb);
    // Rounds down to 18 bits of mantissa; huge exponents that overflow are rejected.
    out.clear();
    RtcpWriter::new(&mut out).remb(1, u64::MAX, &[]).unwrap();
    let RtcpPacket::Remb(r) = one(&out) else {
        panic!()
    };
    assert_eq!(r.bitrate(), 0x3ffff << 46);
    let mut over = remb;
    over[17] = 0xff; // exponent 63
    assert_eq!(one_err(&over), RtcpError::BadRembBitrate);
    // PSFB FMT 15 without "REMB" is some other application message: passed through.
    over[12] = b'X';
    assert!(matches!(one(&over), RtcpPacket::Other(r) if r.packet_type() == 206));
}

/// Feedback for 10 packets from 65534, wrapping: a two-bit vector chunk, a run-length chunk,
/// small, large and negative deltas, and P-bit padding.
const TWCC: &[u8] = &[
    0xaf, 205, 0x00, 0x08, // V=2 P=1 FMT=15, PT=RTPFB, length 8
    0x00, 0x00, 0x00, 0x01, // sender SSRC
    0x00, 0x00, 0x00, 0x02, // media SSRC
    0xff, 0xfe, 0x00, 0x0a, // base sequence 65534, status count 10
    0xff, 0xff, 0xff, 0x05, // reference time -1 (x 64 ms), feedback packet count 5
    0xd2, 0x95, // status vector, 2-bit: small, lost, large, large, small, small, small
    0x20, 0x03, // run length: small x 3
    0x01, // 65534: +250 µs
    0x03, 0xe8, // 0: +250 ms (large)
    0xff, 0xfc, // 1: -1 ms (negative)
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, // 2..=7: 0 to 1.25 ms
    0x01, // padding: one octet, counted by itself
];

fn twcc_expected() -> Vec<(u16, Option<i64>)> {
    let mut v = vec![
        (65534, Some(250)),
        (65535, None),
        (0, Some(250_000)),
        (1, Some(-1000)),
    ];
    v.extend((2..8).map(|s| (s, Some(250 * (i64::from(s) - 2)))));
    v
}

#[test]
fn twcc_vector() {
    let RtcpPacket::Twcc(t) = one(TWCC) else {
        panic!()
    };
    assert_eq!(
        (t.sender_ssrc(), t.media_ssrc(), t.base_seq()),
        (1, 2, 65534)
    );
    assert_eq!(
        (t.status_count(), t.reference_time(), t.fb_pkt_count()),
        (10, -1, 5)
    );
    assert_eq!(t.reference_time_us(), -64_000);
    assert_eq!(t.packets().collect::<Vec<_>>(), twcc_expected());
    let h = TwccHeader {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_seq: 65534,
        reference_time: -1,
        fb_pkt_count: 5,
    };
    let deltas: Vec<_> = twcc_expected().into_iter().map(|p| p.1).collect();
    let mut out = Vec::new();
    RtcpWriter::new(&mut out).twcc(&h, &deltas).unwrap();
    assert_eq!(out, TWCC);
}

#[test]
fn twcc_chunk_choices_round_trip() {
    // 20 lost, then small/lost alternating (one-bit vectors), then 9000 small (two runs).
    let mut deltas = vec![None; 20];
    deltas.extend((0..30).map(|i| (i % 2 == 0).then_some(1000)));
    deltas.extend(std::iter::repeat_n(Some(500), 9000));
    deltas.push(Some(-250));
    let h = TwccHeader {
        base_seq: 100,
        ..Default::default()
    };
    let mut out = Vec::new();
    RtcpWriter::new(&mut out).twcc(&h, &deltas).unwrap();
    let RtcpPacket::Twcc(t) = one(&out) else {
        panic!()
    };
    let got: Vec<_> = t.packets().map(|p| p.1).collect();
    assert_eq!(got, deltas);
    let chunks: Vec<u16> = out[20..32]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(chunks[0], 20, "run of 20 lost");
    assert_eq!(chunks[1] >> 14, 0b10, "one-bit vector");
    // Out of range deltas are refused and leave the buffer alone.
    out.clear();
    let err = RtcpWriter::new(&mut out)
        .twcc(&h, &[Some(8_192_000)])
        .unwrap_err();
    assert_eq!(
        (err, out.len()),
        (RtcpError::TwccDeltaOutOfRange(8_192_000), 0)
    );
}

#[test]
fn twcc_malformed() {
    let mut reserved = TWCC.to_vec();
    reserved[22] = 0xff; // a two-bit vector with symbol 11
    assert_eq!(one_err(&reserved), RtcpError::BadTwccSymbol);
    let mut short = TWCC.to_vec();
    short[15] = 40; // 40 packets: more chunks than the packet holds
    assert!(matches!(
        one_err(&short),
        RtcpError::ShortBody { kind: "TWCC", .. }
    ));
}

#[test]
fn framing_errors() {
    assert_eq!(one_err(&[0x80, 200, 0]), RtcpError::Truncated(3));
    assert_eq!(one_err(&[0x40, 200, 0, 0]), RtcpError::BadVersion(1));
    let overrun = RtcpError::LengthOverrun { length: 8, have: 4 };
    assert_eq!(one_err(&[0x80, 200, 0, 1]), overrun);
    assert_eq!(
        one_err(&[0xa0, 201, 0, 1, 0, 0, 0, 0]),
        RtcpError::BadPadding(0)
    );
    assert_eq!(
        one_err(&[0xa0, 201, 0, 1, 0, 0, 0, 5]),
        RtcpError::BadPadding(5)
    );
    // A malformed SR (RC=1 without its block) is reported; the next packet still parses.
    let mut two = vec![0x81, 200, 0, 6];
    two.extend_from_slice(&[0; 24]);
    two.extend_from_slice(&[0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
    let got: Vec<_> = parse_compound(&two).collect();
    assert!(matches!(
        got[0],
        Err(RtcpError::ShortBody {
            kind: "SR",
            len: 24
        })
    ));
    assert!(matches!(got[1], Ok(RtcpPacket::Pli(_))));
    // A broken header ends the walk.
    let got: Vec<_> = parse_compound(&[0x80, 201, 0, 1, 0, 0, 0, 1, 0x80]).collect();
    assert_eq!(got.len(), 2);
    assert!(got[1].is_err());
}

#[test]
fn unknown_types_pass_through() {
    let app = [0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e'];
    let RtcpPacket::Other(raw) = one(&app) else {
        panic!()
    };
    assert_eq!(
        (raw.packet_type(), raw.count(), raw.bytes()),
        (204, 0, &app[..])
    );
    assert_eq!(raw.body(), &app[4..]);
}

#[test]
fn writer_limits() {
    let mut out = Vec::new();
    let mut w = RtcpWriter::new(&mut out);
    let err = w.rr(1, &[BLOCK; 32]).unwrap_err();
    assert_eq!(
        err,
        RtcpError::TooMany {
            what: "report blocks",
            n: 32
        }
    );
    assert!(w.bye(&[1], Some(&[b'x'; 256])).is_err());
    assert!(w.is_empty());
    // 70 000 lost packets 17 apart: more than the 16-bit length can count.
    let lost: Vec<u16> = (0..70_000u32).map(|i| (i * 17) as u16).collect();
    assert!(matches!(w.nack(1, 2, &lost), Err(RtcpError::TooLong(_))));
    assert!(w.is_empty());
}
