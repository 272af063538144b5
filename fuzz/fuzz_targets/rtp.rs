#![no_main]
//! RTP parser: every accessor, a rebuild that must re-parse to the same values, and the SFU's
//! in-place rewrite (header fields and extension IDs) checked against the original.

use rtc::rtp::seq::{SeqUnwrapper, seq_diff, seq_newer};
use rtc::rtp::{ExtIdMap, RtpHeader, RtpPacket, RtpPacketMut, ext, simulcast};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(p) = RtpPacket::parse(data) else { return };
    let csrcs: Vec<u32> = p.csrcs().collect();
    let exts: Vec<(u8, &[u8])> = p.extensions().collect();
    for &(id, v) in &exts {
        assert!(p.extension(id).is_some());
        let _ = (ext::mid(v), ext::abs_send_time(v), ext::twcc_seq(v));
        if let Some(r) = simulcast::rid(v) {
            assert_eq!(r.as_bytes(), v);
        }
    }
    assert_eq!(p.header_len() + p.payload().len() + p.padding_len(), data.len());
    assert!(p.extension_data().len() <= p.header_len());
    // Stream ids read with every id present as MID, RID and RRID at once.
    if let Some(&(id, _)) = exts.first() {
        let ids = simulcast::StreamExtIds { mid: Some(id), rid: Some(id), rrid: Some(id) };
        let read = simulcast::StreamIds::read(&p, ids);
        let mut layers = simulcast::SimulcastSsrcs::new(["0", "1", "2"]);
        let _ = (layers.classify(p.ssrc(), &read), layers.ssrc_of(0));
    }
    rebuild(&p, &csrcs, &exts);
    rewrite(data, &p, &exts);
    let mut u = SeqUnwrapper::new();
    for pair in data.chunks_exact(2) {
        let s = u16::from_be_bytes([pair[0], pair[1]]);
        let before = u.last();
        let e = u.extend(s);
        assert_eq!(e as u16, s);
        if let Some(b) = before {
            assert_eq!(e - b, i64::from(seq_diff(s, b as u16)));
            assert_eq!(seq_newer(s, b as u16), e > b);
        }
    }
});

/// Writes the parsed packet again and checks it reads back the same.
fn rebuild(p: &RtpPacket<'_>, csrcs: &[u32], exts: &[(u8, &[u8])]) {
    let rfc8285 = matches!(p.extension_profile(), None | Some(0xbede | 0x1000..=0x100f));
    if !rfc8285 {
        return;
    }
    let h = RtpHeader {
        marker: p.marker(),
        payload_type: p.payload_type(),
        sequence_number: p.sequence_number(),
        timestamp: p.timestamp(),
        ssrc: p.ssrc(),
        csrcs,
        extensions: exts,
    };
    let mut out = Vec::new();
    let padding = u8::try_from(p.padding_len()).expect("padding count is one octet");
    h.write_vec(p.payload(), padding, &mut out).expect("what we parsed, we can write");
    let q = RtpPacket::parse(&out).expect("what we wrote parses");
    assert_eq!(q.marker(), p.marker());
    assert_eq!(q.payload_type(), p.payload_type());
    assert_eq!(q.sequence_number(), p.sequence_number());
    assert_eq!(q.timestamp(), p.timestamp());
    assert_eq!(q.ssrc(), p.ssrc());
    assert!(q.csrcs().eq(csrcs.iter().copied()));
    assert!(q.extensions().eq(exts.iter().copied()));
    assert_eq!(q.payload(), p.payload());
    assert_eq!(q.padding_len(), p.padding_len());
    assert_eq!(q.has_extension(), !exts.is_empty());
}

/// Rewrites a copy in place as the SFU does and checks what changed and what did not.
fn rewrite(data: &[u8], p: &RtpPacket<'_>, exts: &[(u8, &[u8])]) {
    let mut buf = data.to_vec();
    let mut m = RtpPacketMut::parse(&mut buf).expect("same bytes parse");
    let k = data.len() as u32;
    m.set_sequence_number(p.sequence_number().wrapping_add(k as u16));
    m.set_timestamp(p.timestamp() ^ k);
    m.set_ssrc(p.ssrc().rotate_left(7));
    m.set_payload_type(p.payload_type().wrapping_add(1));
    m.set_marker(!p.marker());
    let mut map = ExtIdMap::drop_all();
    for id in 1..=255u8 {
        map.set(id, id.wrapping_mul(k as u8 | 1).wrapping_add(k as u8));
    }
    m.remap_extensions(&map);
    let one_byte = p.extension_profile() == Some(0xbede);
    let want: Vec<(u8, &[u8])> = exts
        .iter()
        .map(|&(id, v)| (map.get(id), v))
        .filter(|&(to, _)| to != 0 && (!one_byte || to < 15))
        .collect();
    if let Some(&(id, v)) = want.first() {
        let slot = m.extension_mut(id).expect("a kept extension is found");
        assert_eq!(&*slot, v);
    }
    let q = m.as_packet();
    assert_eq!(q.sequence_number(), p.sequence_number().wrapping_add(k as u16));
    assert_eq!(q.timestamp(), p.timestamp() ^ k);
    assert_eq!(q.ssrc(), p.ssrc().rotate_left(7));
    assert_eq!(q.payload_type(), p.payload_type().wrapping_add(1) & 0x7f);
    assert_eq!(q.marker(), !p.marker());
    assert!(q.extensions().eq(want.iter().copied()));
    assert_eq!(q.payload(), p.payload());
    assert!(q.csrcs().eq(p.csrcs()));
}
