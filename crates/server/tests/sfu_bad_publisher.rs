//! Bad input from a publisher, on the SFU path: a synthetic publisher of our client feeds
//! three viewers while it also sends, through its own authenticated session,
//!
//! 1. RTP for an unknown SSRC with an unknown payload type,
//! 2. RTP for an unknown SSRC with the video payload type (interframes and a keyframe that
//!    claim to come from another source),
//! 3. SRTP that fails authentication: some of its real packets with a byte flipped after
//!    protection (the server must drop them, NACK, and accept the intact retransmission), and
//!    packets of a fresh SSRC with a byte flipped,
//! 4. a flood of PLIs and NACKs.
//!
//! Each is counted in `/metrics` where the server has a counter for it, dropped, and the
//! viewers keep ≥ 95 % of the packets and ≥ 90 % of the frame rate, with only the real
//! publisher's frames (the synthetic frames carry their origin's SSRC). One test per kind of
//! input, run one at a time (they measure rates).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bench::Transport;
use bench::synthetic::{self, Stamp};
use common::sfu::Setup;
use rtc::rtcp::RtcpWriter;
use rtc::rtp::RtpHeader;

const VIEWERS: usize = 3;
const PHASE: Duration = Duration::from_secs(3);
const FAKE_SSRC: u32 = 0x0bad_55c0;

/// A VP8-shaped RTP packet of `ssrc` with a synthetic frame stamped as coming from `ssrc`.
fn forged(ssrc: u32, pt: u8, seq: u16, keyframe: bool) -> Vec<u8> {
    let mut frame = Vec::new();
    let stamp = Stamp {
        sent_us: 0,
        origin: ssrc,
    };
    synthetic::write_frame(&mut frame, 600, keyframe, 1196, stamp);
    let mut payload = vec![0x90, 0x80, 0x80, 0x01];
    payload.extend_from_slice(&frame);
    let mut out = Vec::new();
    RtpHeader {
        marker: true,
        payload_type: pt,
        sequence_number: seq,
        timestamp: u32::from(seq) * 3000,
        ssrc,
        ..Default::default()
    }
    .write_vec(&payload, 0, &mut out)
    .unwrap();
    out
}

#[test]
fn rtp_of_an_unknown_ssrc_and_payload_type_is_counted_and_dropped() {
    let mut s = Setup::start(VIEWERS);
    let watched = s.viewers.clone();
    let p = s.p;
    let unknown0 = s.metric("leanrtc_rtp_unknown_ssrc_total");
    let (mut seq, mut sent) = (0u16, 0);
    s.phase(PHASE, "unknown SSRC and payload type", &watched, |d| {
        for _ in 0..10 {
            seq = seq.wrapping_add(1);
            let packet = forged(FAKE_SSRC, 100, seq, false);
            sent += u32::from(d.session_mut(p).unwrap().send_rtp(&packet));
        }
    });
    let counted = s.metric("leanrtc_rtp_unknown_ssrc_total") - unknown0;
    eprintln!("unknown SSRC and payload type: {sent} sent, {counted} counted");
    // Loopback may lose a datagram on a busy machine; none may go uncounted otherwise.
    let sent = f64::from(sent);
    assert!(
        sent >= 250.0 && counted >= 0.98 * sent && counted <= sent,
        "{sent} sent, {counted} counted"
    );
}

/// A publisher's stray packets under an SSRC it never announced, with its video payload type
/// (interframes, and once a keyframe), must not take its viewers away from its real SSRC.
#[test]
fn rtp_of_an_unknown_ssrc_with_the_video_payload_type_does_not_hijack_the_viewers() {
    let mut s = Setup::start(VIEWERS);
    let watched = s.viewers.clone();
    let (p, pt) = (s.p, s.video_pt());
    let (mut seq, mut n) = (0u16, 0);
    s.phase(PHASE, "unknown SSRC, video payload type", &watched, |d| {
        n += 1;
        seq = seq.wrapping_add(1);
        let packet = forged(FAKE_SSRC + 1, pt, seq, n == 15);
        d.session_mut(p).unwrap().send_rtp(&packet);
    });
}

/// One real packet in ~10 flipped after protection (the server must drop it, NACK it and
/// take the intact retransmission: a failed packet must not move its replay window), and
/// 30 protected packets of a fresh SSRC flipped per second.
#[test]
fn srtp_failing_authentication_is_counted_dropped_and_repaired() {
    let mut s = Setup::start(VIEWERS);
    let watched = s.viewers.clone();
    let (p, pt) = (s.p, s.video_pt());
    let failed0 = s.metric("leanrtc_srtp_unprotect_failed_total");
    let retransmitted0 = s.d.publisher(p).unwrap().stats.retransmitted;
    let mut seq = 0u16;
    s.phase(PHASE, "SRTP that fails authentication", &watched, |d| {
        let session = d.session_mut(p).unwrap();
        session.tamper_next_rtp(1);
        for _ in 0..3 {
            seq = seq.wrapping_add(1);
            let mut srtp = session
                .protect_rtp(&forged(FAKE_SSRC + 2, pt, seq, false))
                .unwrap();
            let last = srtp.len() - 1;
            srtp[last] ^= 0x80;
            session.send_raw(&srtp);
        }
    });
    let tampered = s.d.session(p).unwrap().stats.tampered;
    let failed = s.metric("leanrtc_srtp_unprotect_failed_total") - failed0;
    let retransmitted = s.d.publisher(p).unwrap().stats.retransmitted - retransmitted0;
    eprintln!(
        "SRTP auth failures: {tampered} real packets tampered + 90 forged, {failed} counted, \
         {retransmitted} retransmitted"
    );
    assert!(tampered >= 25, "{tampered} tampered");
    assert!(
        failed >= (tampered + 85) as f64,
        "{failed} SRTP failures counted for {tampered} + 90"
    );
    assert!(
        retransmitted + 3 >= tampered,
        "the server NACKed the tampered packets: {retransmitted} retransmitted"
    );
}

/// 500 PLIs and 500 NACKs a second from the publisher: ignored (the server has no counter
/// for feedback from publishers), nothing disturbed.
#[test]
fn a_publishers_pli_and_nack_flood_disturbs_nothing() {
    let mut s = Setup::start(VIEWERS);
    let watched = s.viewers.clone();
    let (p, origin) = (s.p, s.origin);
    let mut rtcp = Vec::new();
    s.phase(PHASE, "a publisher's PLI and NACK flood", &watched, |d| {
        let session = d.session_mut(p).unwrap();
        for i in 0..50u16 {
            rtcp.clear();
            let mut w = RtcpWriter::new(&mut rtcp);
            w.pli(origin, 1).unwrap();
            w.nack(origin, 1, &[i, i + 1, i + 40]).unwrap();
            session.send_rtcp(&rtcp);
        }
    });
    let asked = &s.d.publisher(p).unwrap().stats.keyframe_requests;
    assert!(
        asked.is_empty(),
        "the server asked for keyframes: {asked:?}"
    );
}
