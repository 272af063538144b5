#![no_main]
//! RTCP compound parser: every view walked (TWCC decoded), then each packet rebuilt with the
//! writer and re-parsed to the same values.

use std::collections::BTreeSet;

use rtc::rtcp::{
    Bye, Fir, Nack, Remb, RtcpPacket, RtcpWriter, Sdes, SdesItem, Twcc, TwccHeader,
    parse_compound,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for item in parse_compound(data) {
        let Ok(pkt) = item else { continue };
        check(pkt);
    }
});

/// Writes `f`'s packet into a fresh buffer and returns it parsed, or `None` if the writer
/// refused (only for limits such as the 16-bit length).
fn again(f: impl FnOnce(&mut RtcpWriter<'_>) -> bool, out: &mut Vec<u8>) -> Option<RtcpPacket<'_>> {
    out.clear();
    if !f(&mut RtcpWriter::new(out)) {
        return None;
    }
    let mut it = parse_compound(out);
    let p = it.next().expect("one packet").expect("what we wrote parses");
    assert!(it.next().is_none());
    Some(p)
}

fn check(pkt: RtcpPacket<'_>) {
    let mut out = Vec::new();
    match pkt {
        RtcpPacket::Sr(sr) => {
            let reports: Vec<_> = sr.reports().collect();
            let _ = sr.extension();
            let Some(RtcpPacket::Sr(q)) =
                again(|w| w.sr(sr.ssrc(), &sr.info(), &reports).is_ok(), &mut out)
            else {
                panic!("SR")
            };
            assert_eq!((q.ssrc(), q.info()), (sr.ssrc(), sr.info()));
            assert!(q.reports().eq(reports));
        }
        RtcpPacket::Rr(rr) => {
            let reports: Vec<_> = rr.reports().collect();
            let _ = rr.extension();
            let Some(RtcpPacket::Rr(q)) = again(|w| w.rr(rr.ssrc(), &reports).is_ok(), &mut out)
            else {
                panic!("RR")
            };
            assert!(q.ssrc() == rr.ssrc() && q.reports().eq(reports));
        }
        RtcpPacket::Sdes(s) => check_sdes(s, &mut out),
        RtcpPacket::Bye(b) => check_bye(b, &mut out),
        RtcpPacket::Nack(n) => check_nack(n, &mut out),
        RtcpPacket::Pli(p) => {
            let q = again(|w| w.pli(p.sender_ssrc, p.media_ssrc).is_ok(), &mut out);
            assert_eq!(q, Some(RtcpPacket::Pli(p)));
        }
        RtcpPacket::Fir(f) => check_fir(f, &mut out),
        RtcpPacket::Remb(r) => check_remb(r, &mut out),
        RtcpPacket::Twcc(t) => check_twcc(t, &mut out),
        RtcpPacket::Other(raw) => {
            let _ = (raw.count(), raw.packet_type(), raw.body(), raw.bytes());
        }
    }
}

fn check_sdes(s: Sdes<'_>, out: &mut Vec<u8>) {
    let chunks: Vec<(u32, Vec<SdesItem<'_>>)> =
        s.chunks().map(|c| (c.ssrc(), c.items().collect())).collect();
    for c in s.chunks() {
        let _ = c.cname();
    }
    let refs: Vec<(u32, &[SdesItem<'_>])> = chunks.iter().map(|(s, i)| (*s, &i[..])).collect();
    let Some(RtcpPacket::Sdes(q)) = again(|w| w.sdes(&refs).is_ok(), out) else {
        panic!("SDES")
    };
    let got: Vec<(u32, Vec<SdesItem<'_>>)> =
        q.chunks().map(|c| (c.ssrc(), c.items().collect())).collect();
    assert_eq!(got, chunks);
}

fn check_bye(b: Bye<'_>, out: &mut Vec<u8>) {
    let ssrcs: Vec<u32> = b.ssrcs().collect();
    let Some(RtcpPacket::Bye(q)) = again(|w| w.bye(&ssrcs, b.reason()).is_ok(), out) else {
        panic!("BYE")
    };
    assert!(q.ssrcs().eq(ssrcs) && q.reason() == b.reason());
}

fn check_nack(n: Nack<'_>, out: &mut Vec<u8>) {
    let _ = n.pairs().count();
    let lost: Vec<u16> = n.lost().collect();
    let q = again(|w| w.nack(n.sender_ssrc(), n.media_ssrc(), &lost).is_ok(), out);
    let Some(RtcpPacket::Nack(q)) = q else { return };
    assert_eq!((q.sender_ssrc(), q.media_ssrc()), (n.sender_ssrc(), n.media_ssrc()));
    let set = |it: &mut dyn Iterator<Item = u16>| it.collect::<BTreeSet<u16>>();
    assert_eq!(set(&mut q.lost()), set(&mut lost.into_iter()));
}

fn check_fir(f: Fir<'_>, out: &mut Vec<u8>) {
    let entries: Vec<(u32, u8)> = f.entries().collect();
    let Some(RtcpPacket::Fir(q)) = again(|w| w.fir(f.sender_ssrc(), &entries).is_ok(), out) else {
        panic!("FIR")
    };
    assert!(q.sender_ssrc() == f.sender_ssrc() && q.entries().eq(entries));
}

fn check_remb(r: Remb<'_>, out: &mut Vec<u8>) {
    let ssrcs: Vec<u32> = r.ssrcs().collect();
    let q = again(|w| w.remb(r.sender_ssrc(), r.bitrate(), &ssrcs).is_ok(), out);
    let Some(RtcpPacket::Remb(q)) = q else { panic!("REMB") };
    assert_eq!((q.sender_ssrc(), q.bitrate()), (r.sender_ssrc(), r.bitrate()));
    assert!(q.ssrcs().eq(ssrcs));
}

fn check_twcc(t: Twcc<'_>, out: &mut Vec<u8>) {
    let packets: Vec<(u16, Option<i64>)> = t.packets().collect();
    assert_eq!(packets.len(), usize::from(t.status_count()));
    let _ = (t.sender_ssrc(), t.media_ssrc(), t.reference_time_us());
    let h = TwccHeader {
        sender_ssrc: t.sender_ssrc(),
        media_ssrc: t.media_ssrc(),
        base_seq: t.base_seq(),
        reference_time: t.reference_time(),
        fb_pkt_count: t.fb_pkt_count(),
    };
    let deltas: Vec<Option<i64>> = packets.iter().map(|p| p.1).collect();
    let Some(RtcpPacket::Twcc(q)) = again(|w| w.twcc(&h, &deltas).is_ok(), out) else {
        panic!("TWCC")
    };
    assert_eq!((q.base_seq(), q.reference_time()), (t.base_seq(), t.reference_time()));
    assert_eq!(q.fb_pkt_count(), t.fb_pkt_count());
    assert!(q.packets().eq(packets));
}
