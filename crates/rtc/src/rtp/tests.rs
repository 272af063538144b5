//! Hand-checked vectors (RFC 3550 §5.1 and RFC 8285 figures), builder round trips, rewrites.

use super::ext::{self, ExtIdMap};
use super::seq::{SeqUnwrapper, seq_diff, seq_newer};
use super::{RtpError, RtpHeader, RtpPacket, RtpPacketMut};

/// V=2 P=1 X=1 CC=1, one-byte extensions, payload of 3, padding of 2.
const ONE_BYTE: &[u8] = &[
    0xb1, // V=2 P=1 X=1 CC=1
    0xe0, // M=1 PT=96
    0x12, 0x34, // sequence number 0x1234
    0xde, 0xad, 0xbe, 0xef, // timestamp
    0x11, 0x22, 0x33, 0x44, // SSRC
    0xca, 0xfe, 0xba, 0xbe, // CSRC[0]
    0xbe, 0xde, 0x00, 0x03, // one-byte profile, 3 words of elements (RFC 8285 §4.2)
    0x10, b'0', // id 1 (mid), L=0: 1 byte "0"
    0x00, // a padding byte between elements (§4.1.1)
    0x22, 0x01, 0x02, 0x03, // id 2 (abs-send-time), L=2: 3 bytes
    0x31, 0xab, 0xcd, // id 3 (transport-cc), L=1: 2 bytes
    0x00, 0x00, // padding to the word boundary
    0x01, 0x02, 0x03, // payload
    0x00, 0x02, // RTP padding: 2 octets, the last one counts them (RFC 3550 §5.1)
];

#[test]
fn parses_one_byte_vector() {
    let p = RtpPacket::parse(ONE_BYTE).unwrap();
    assert!(p.has_padding() && p.has_extension() && p.marker());
    assert_eq!(p.payload_type(), 96);
    assert_eq!(p.sequence_number(), 0x1234);
    assert_eq!(p.timestamp(), 0xdead_beef);
    assert_eq!(p.ssrc(), 0x1122_3344);
    assert_eq!(p.csrcs().collect::<Vec<_>>(), [0xcafe_babe]);
    assert_eq!(p.extension_profile(), Some(0xbede));
    let exts: Vec<_> = p.extensions().collect();
    assert_eq!(
        exts,
        [(1, &b"0"[..]), (2, &[1, 2, 3][..]), (3, &[0xab, 0xcd][..])]
    );
    assert_eq!(ext::mid(p.extension(1).unwrap()), Some("0"));
    assert_eq!(ext::abs_send_time(p.extension(2).unwrap()), Some(0x010203));
    assert_eq!(ext::twcc_seq(p.extension(3).unwrap()), Some(0xabcd));
    assert_eq!(p.extension(4), None);
    assert_eq!(p.header_len(), 32);
    assert_eq!(p.payload(), [1, 2, 3]);
    assert_eq!(p.padding_len(), 2);
}

#[test]
fn parses_two_byte_vector() {
    let pkt = [
        0x90, 0x60, 0x00, 0x01, 0, 0, 0, 2, 0, 0, 0, 3, // V=2 X=1, PT=96, seq 1, ts 2, ssrc 3
        0x10, 0x07, 0x00, 0x02, // two-byte profile with appbits 7, 2 words (RFC 8285 §4.3)
        0x05, 0x00, // id 5, length 0 (allowed only in this form)
        0x00, // padding
        0x20, 0x02, 0xaa, 0xbb, // id 32, 2 bytes
        0x00, // padding
        0xff, // payload
    ];
    let p = RtpPacket::parse(&pkt).unwrap();
    let exts: Vec<_> = p.extensions().collect();
    assert_eq!(exts, [(5, &[][..]), (32, &[0xaa, 0xbb][..])]);
    assert_eq!(p.payload(), [0xff]);
}

#[test]
fn rejects_malformed() {
    let base = &ONE_BYTE[..12];
    assert_eq!(RtpPacket::parse(&[]), Err(RtpError::TooShort(0)));
    assert_eq!(RtpPacket::parse(&base[..11]), Err(RtpError::TooShort(11)));
    let mut v1 = ONE_BYTE.to_vec();
    v1[0] = 0x71;
    assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
    // CC=1 with no room for the CSRC; X=1 with no room for the extension header or body.
    assert_eq!(
        RtpPacket::parse(&[&[0x81], &base[1..]].concat()),
        Err(RtpError::HeaderOverrun)
    );
    assert_eq!(
        RtpPacket::parse(&[&[0x90], &base[1..]].concat()),
        Err(RtpError::HeaderOverrun)
    );
    let ext_long = [&[0x90], &base[1..], &[0xbe, 0xde, 0, 2, 0x10, 0]].concat();
    assert_eq!(RtpPacket::parse(&ext_long), Err(RtpError::HeaderOverrun));
    // Padding count 0, and padding count larger than the payload.
    let mut pad = ONE_BYTE.to_vec();
    *pad.last_mut().unwrap() = 0;
    assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding(0)));
    *pad.last_mut().unwrap() = 6;
    assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding(6)));
    // Exactly the whole payload is padding: fine.
    *pad.last_mut().unwrap() = 5;
    assert_eq!(RtpPacket::parse(&pad).unwrap().payload(), []);
}

#[test]
fn id_15_and_truncated_elements_stop_iteration() {
    let mut pkt = ONE_BYTE.to_vec();
    pkt[23] = 0xf2; // the abs-send-time element becomes ID 15: stop (RFC 8285 §4.2)
    let p = RtpPacket::parse(&pkt).unwrap();
    assert_eq!(p.extensions().map(|(id, _)| id).collect::<Vec<_>>(), [1]);
    pkt[23] = 0x2f; // 16 bytes would run past the block
    let p = RtpPacket::parse(&pkt).unwrap();
    assert_eq!(p.extensions().count(), 1);
    pkt[16] = 0x12; // an unknown profile: raw data only
    let p = RtpPacket::parse(&pkt).unwrap();
    assert_eq!(p.extensions().count(), 0);
    assert_eq!(p.extension_data().len(), 12);
}

#[test]
fn builder_writes_the_vector() {
    let exts: [(u8, &[u8]); 3] = [(1, b"0"), (2, &[1, 2, 3]), (3, &[0xab, 0xcd])];
    let h = RtpHeader {
        marker: true,
        payload_type: 96,
        sequence_number: 0x1234,
        timestamp: 0xdead_beef,
        ssrc: 0x1122_3344,
        csrcs: &[0xcafe_babe],
        extensions: &exts,
    };
    let mut out = Vec::new();
    h.write_vec(&[1, 2, 3], 2, &mut out).unwrap();
    // Same as the vector except that we put no padding byte between elements.
    let mut expect = ONE_BYTE.to_vec();
    expect.remove(22);
    expect.insert(30, 0);
    assert_eq!(out, expect);
    let mut small = [0u8; 10];
    assert_eq!(
        h.write(&[1], 0, &mut small),
        Err(RtpError::BufferTooSmall { need: 33, have: 10 })
    );
}

#[test]
fn builder_picks_two_byte_form_and_validates() {
    let big = [7u8; 17];
    let exts: [(u8, &[u8]); 3] = [(1, b"a"), (20, &[]), (2, &big)];
    let h = RtpHeader {
        payload_type: 111,
        extensions: &exts,
        ..Default::default()
    };
    let mut out = Vec::new();
    h.write_vec(b"payload", 0, &mut out).unwrap();
    let p = RtpPacket::parse(&out).unwrap();
    assert_eq!(p.extension_profile(), Some(0x1000));
    assert_eq!(p.extensions().collect::<Vec<_>>(), exts);
    assert_eq!(p.payload(), b"payload");
    let zero: [(u8, &[u8]); 2] = [(0, b"a"), (20, b"")];
    let bad = RtpHeader {
        extensions: &zero,
        ..h
    };
    assert_eq!(
        bad.write_vec(b"", 0, &mut out),
        Err(RtpError::BadExtension { id: 0, len: 1 })
    );
    let pt = RtpHeader {
        payload_type: 128,
        ..h
    };
    assert_eq!(pt.header_len(), Err(RtpError::BadPayloadType(128)));
    let cs = RtpHeader {
        csrcs: &[0; 16],
        ..h
    };
    assert_eq!(cs.header_len(), Err(RtpError::TooManyCsrcs(16)));
}

#[test]
fn rewrites_in_place() {
    let mut pkt = ONE_BYTE.to_vec();
    let mut m = RtpPacketMut::parse(&mut pkt).unwrap();
    m.set_sequence_number(7);
    m.set_timestamp(8);
    m.set_ssrc(9);
    m.set_payload_type(100);
    m.set_marker(false);
    let mut map = ExtIdMap::drop_all();
    map.set(1, 4); // mid -> 4
    map.set(3, 14); // transport-cc -> 14; abs-send-time (2) is dropped
    m.remap_extensions(&map);
    m.extension_mut(14).unwrap().copy_from_slice(&[0, 42]);
    let p = m.as_packet();
    assert_eq!((p.sequence_number(), p.timestamp(), p.ssrc()), (7, 8, 9));
    assert_eq!((p.payload_type(), p.marker()), (100, false));
    let exts: Vec<_> = p.extensions().collect();
    assert_eq!(exts, [(4, &b"0"[..]), (14, &[0, 42][..])]);
    assert_eq!(p.payload(), [1, 2, 3]);
    assert_eq!(pkt[23..27], [0; 4], "the dropped element became padding");
    // One-byte elements cannot carry IDs above 14: mapping there drops them.
    let mut m = RtpPacketMut::parse(&mut pkt).unwrap();
    let mut wide = ExtIdMap::identity();
    wide.set(4, 200);
    m.remap_extensions(&wide);
    assert_eq!(
        m.as_packet().extensions().map(|e| e.0).collect::<Vec<_>>(),
        [14]
    );
    assert!(m.extension_mut(4).is_none());
}

#[test]
fn remaps_two_byte_form() {
    let exts: [(u8, &[u8]); 2] = [(1, b"x"), (100, b"")];
    let h = RtpHeader {
        extensions: &exts,
        ..Default::default()
    };
    let mut out = Vec::new();
    h.write_vec(b"", 0, &mut out).unwrap();
    let mut m = RtpPacketMut::parse(&mut out).unwrap();
    let mut map = ExtIdMap::default();
    map.set(100, 255);
    m.remap_extensions(&map);
    assert_eq!(
        m.as_packet().extensions().collect::<Vec<_>>(),
        [(255, &b""[..])]
    );
}

#[test]
fn sequence_numbers_wrap() {
    assert!(seq_newer(1, 65535));
    assert!(!seq_newer(65535, 1));
    assert!(!seq_newer(5, 5));
    assert_eq!(seq_diff(2, 65534), 4);
    let mut u = SeqUnwrapper::new();
    assert_eq!(u.extend(65534), 65534);
    assert_eq!(u.extend(1), 65537);
    assert_eq!(u.extend(65535), 65535); // reordered across the wrap
    assert_eq!(u.extend(3), 65539);
    let mut u = SeqUnwrapper::new();
    assert_eq!(u.extend(2), 2);
    assert_eq!(u.extend(65533), -3); // from before the first packet and the wrap
    assert_eq!(u.peek(4), 4);
}

#[test]
fn abs_send_time_is_6_18_seconds() {
    assert_eq!(
        ext::abs_send_time_from_micros(1_500_000),
        [0x06, 0x00, 0x00]
    );
    assert_eq!(ext::abs_send_time_from_micros(64_000_000), [0, 0, 0]);
    assert_eq!(ext::abs_send_time_to_micros(0x060000), 1_500_000);
    assert_eq!(ext::abs_send_time(&[1, 2]), None);
    assert_eq!(ext::mid(b""), None);
}
