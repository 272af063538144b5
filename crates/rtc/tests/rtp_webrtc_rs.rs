//! Cross-checks of `rtc::rtp` against an independent implementation, webrtc-rs `rtp`:
//! what we write, it parses to the same values; what it writes, we parse to the same values.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

use bytes::Bytes;
use rtc::rtp::{ExtIdMap, RtpHeader, RtpPacket, RtpPacketMut};
use rtp::header::{Extension, Header};
use rtp::packet::Packet;
use webrtc_util::marshal::{Marshal, Unmarshal};

fn theirs_parse(buf: &[u8]) -> Packet {
    Packet::unmarshal(&mut Bytes::copy_from_slice(buf)).expect("webrtc-rs parses our packet")
}

fn assert_same(ours: &RtpPacket<'_>, theirs: &Packet) {
    let h = &theirs.header;
    assert_eq!(h.version, 2);
    assert_eq!(h.padding, ours.has_padding());
    assert_eq!(h.extension, ours.has_extension());
    assert_eq!(h.marker, ours.marker());
    assert_eq!(h.payload_type, ours.payload_type());
    assert_eq!(h.sequence_number, ours.sequence_number());
    assert_eq!(h.timestamp, ours.timestamp());
    assert_eq!(h.ssrc, ours.ssrc());
    assert_eq!(h.csrc, ours.csrcs().collect::<Vec<_>>());
    if ours.has_extension() {
        assert_eq!(Some(h.extension_profile), ours.extension_profile());
    }
    let theirs_ext: Vec<(u8, &[u8])> = h
        .extensions
        .iter()
        .map(|e| (e.id, &e.payload[..]))
        .collect();
    assert_eq!(theirs_ext, ours.extensions().collect::<Vec<_>>());
    assert_eq!(&theirs.payload[..], ours.payload());
}

fn ours_build(exts: &[(u8, &[u8])], padding: u8) -> Vec<u8> {
    let h = RtpHeader {
        marker: true,
        payload_type: 111,
        sequence_number: 65535,
        timestamp: 0x8000_0001,
        ssrc: 0xfeed_beef,
        csrcs: &[1, 2, 3],
        extensions: exts,
    };
    let mut out = Vec::new();
    h.write_vec(b"opus frame bytes", padding, &mut out).unwrap();
    out
}

#[test]
fn ours_to_theirs_one_byte_with_padding() {
    let exts: [(u8, &[u8]); 3] = [(1, b"audio"), (3, &[0x12, 0x34, 0x56]), (5, &[0, 7])];
    let buf = ours_build(&exts, 7);
    let ours = RtpPacket::parse(&buf).unwrap();
    assert_eq!(ours.extension_profile(), Some(0xbede));
    assert_same(&ours, &theirs_parse(&buf));
}

#[test]
fn ours_to_theirs_two_byte() {
    let long = [0x5a; 40];
    let exts: [(u8, &[u8]); 3] = [(1, b"video"), (17, &long), (200, &[])];
    let buf = ours_build(&exts, 0);
    let ours = RtpPacket::parse(&buf).unwrap();
    assert_eq!(ours.extension_profile(), Some(0x1000));
    assert_same(&ours, &theirs_parse(&buf));
}

fn their_packet(profile: u16, exts: &[(u8, &[u8])], padding: bool) -> Vec<u8> {
    let p = Packet {
        header: Header {
            version: 2,
            padding,
            extension: true,
            marker: false,
            payload_type: 96,
            sequence_number: 4242,
            timestamp: 90_000,
            ssrc: 0x0102_0304,
            csrc: vec![9],
            extension_profile: profile,
            extensions: exts
                .iter()
                .map(|&(id, v)| Extension {
                    id,
                    payload: Bytes::copy_from_slice(v),
                })
                .collect(),
            extensions_padding: 0,
        },
        payload: Bytes::from_static(b"vp8 payload, 23 bytes.."),
    };
    p.marshal().expect("webrtc-rs marshals").to_vec()
}

#[test]
fn theirs_to_ours_one_byte_with_padding() {
    let exts: [(u8, &[u8]); 2] = [(2, &[1, 2, 3]), (14, b"0123456789abcdef")];
    let buf = their_packet(0xbede, &exts, true);
    let ours = RtpPacket::parse(&buf).unwrap();
    assert!(ours.padding_len() > 0);
    assert_same(&ours, &theirs_parse(&buf));
    assert_eq!(ours.extensions().collect::<Vec<_>>(), exts);
}

#[test]
fn theirs_to_ours_two_byte() {
    let exts: [(u8, &[u8]); 2] = [(20, &[]), (255, &[9; 30])];
    let buf = their_packet(0x1000, &exts, false);
    let ours = RtpPacket::parse(&buf).unwrap();
    assert_same(&ours, &theirs_parse(&buf));
    assert_eq!(ours.extensions().collect::<Vec<_>>(), exts);
}

#[test]
fn our_in_place_rewrite_is_what_theirs_reads() {
    let exts: [(u8, &[u8]); 3] = [(1, b"audio"), (3, &[0x12, 0x34, 0x56]), (5, &[0, 7])];
    let mut buf = ours_build(&exts, 3);
    let mut m = RtpPacketMut::parse(&mut buf).unwrap();
    m.set_sequence_number(17);
    m.set_timestamp(0xffff_fff0);
    m.set_ssrc(0xabcd_ef01);
    m.set_payload_type(100);
    m.set_marker(false);
    let mut map = ExtIdMap::drop_all();
    map.set(1, 9);
    map.set(5, 2);
    m.remap_extensions(&map);
    let theirs = theirs_parse(&buf);
    let h = &theirs.header;
    assert_eq!(
        (h.sequence_number, h.timestamp, h.ssrc),
        (17, 0xffff_fff0, 0xabcd_ef01)
    );
    assert_eq!((h.payload_type, h.marker), (100, false));
    let got: Vec<(u8, &[u8])> = h
        .extensions
        .iter()
        .map(|e| (e.id, &e.payload[..]))
        .collect();
    assert_eq!(got, [(9, &b"audio"[..]), (2, &[0, 7][..])]);
    assert_eq!(&theirs.payload[..], b"opus frame bytes");
}
