//! Bad input from viewers, on the SFU path: a synthetic publisher of our client feeds three
//! well-behaved viewers and six others that
//!
//! 1. flood PLIs (200 a second each): every one is counted in `/metrics`, and the publisher
//!    is asked for a keyframe at most ~2 times a second however many arrive;
//! 2. flood NACKs (one of them, 8 500 sequence numbers a second, and some for an SSRC it
//!    does not receive): every sequence number is counted, the server answers from its
//!    history to that viewer only, and no more than its budget (a quarter of what it is
//!    sent, and a floor) — the rest is refused and counted.
//!
//! Meanwhile the well-behaved viewers keep ≥ 95 % of the packets and ≥ 90 % of the frame rate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bench::{ClientId, Transport};
use common::sfu::Setup;
use rtc::rtcp::RtcpWriter;

const WATCHED: usize = 3;
const NOISY: usize = 6;
const PHASE: Duration = Duration::from_secs(4);

#[test]
fn a_pli_flood_is_counted_and_aggregated_to_two_keyframe_requests_a_second() {
    let mut s = Setup::start(WATCHED + NOISY);
    let (watched, noisy) = s.viewers.split_at(WATCHED);
    let (watched, noisy): (Vec<ClientId>, Vec<ClientId>) = (watched.to_vec(), noisy.to_vec());
    let received0 = s.metric("leanrtc_rtcp_keyframe_requests_received_total");
    let sent_to_publisher0 = s.metric("leanrtc_keyframe_requests_sent_total");
    let asked0 = s.d.publisher(s.p).unwrap().stats.keyframe_requests.len();
    let started = Instant::now();
    let mut plis = 0u32;
    let mut rtcp = Vec::new();
    s.phase(PHASE, "a PLI flood", &watched, |d| {
        for &v in &noisy {
            let viewer = d.viewer(v).unwrap();
            let (sender, media) = (viewer.sender_ssrc(), viewer.video_ssrc().unwrap());
            rtcp.clear();
            RtcpWriter::new(&mut rtcp).pli(sender, media).unwrap();
            let session = d.session_mut(v).unwrap();
            for _ in 0..20 {
                plis += u32::from(session.send_rtcp(&rtcp));
            }
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let received = s.metric("leanrtc_rtcp_keyframe_requests_received_total") - received0;
    let sent_to_publisher = s.metric("leanrtc_keyframe_requests_sent_total") - sent_to_publisher0;
    let asked = s.d.publisher(s.p).unwrap().stats.keyframe_requests.len() - asked0;
    eprintln!(
        "{plis} PLIs sent by {NOISY} viewers in {secs:.1} s: {received} counted; the server sent \
         {sent_to_publisher} keyframe requests, the publisher got {asked}"
    );
    let plis = f64::from(plis);
    assert!(
        received >= 0.98 * plis && received <= plis,
        "{received} of {plis} PLIs counted"
    );
    assert!(
        (asked as f64) <= 2.0 * secs + 1.0,
        "the publisher was asked {asked} times in {secs:.1} s"
    );
    assert!(
        asked >= 2,
        "the requests were dropped instead of aggregated: {asked}"
    );
}

#[test]
fn a_nack_flood_is_counted_and_answered_within_a_budget_to_its_sender_only() {
    let mut s = Setup::start(WATCHED + 1);
    let (watched, noisy) = (s.viewers[..WATCHED].to_vec(), s.viewers[WATCHED]);
    let received0 = s.metric("leanrtc_rtcp_nacks_received_total");
    let resent0 = s.metric("leanrtc_nack_resent_total");
    let resent_bytes0 = s.metric("leanrtc_nack_resent_bytes_total");
    let refused0 = s.metric("leanrtc_nack_refused_budget_total")
        + s.metric("leanrtc_nack_refused_repeat_total");
    let video = |s: &Setup| {
        let v = s.d.viewer(noisy).unwrap().video().unwrap();
        (v.packets, v.bytes)
    };
    let video0 = video(&s);
    let started = Instant::now();
    // The server's retransmissions repeat SRTP indices the viewer has had, so its SRTP
    // replay check drops them: they show as replays.
    let replays = |s: &Setup, v: ClientId| s.d.session(v).unwrap().peer().stats().srtp_failed;
    let replays0 = replays(&s, noisy);
    let mut nacked = 0u64;
    let mut rtcp = Vec::new();
    s.phase(PHASE, "a NACK flood", &watched, |d| {
        let viewer = d.viewer(noisy).unwrap();
        let (sender, media) = (viewer.sender_ssrc(), viewer.video_ssrc().unwrap());
        let last = viewer.frames().last().unwrap().last_seq;
        let session = d.session_mut(noisy).unwrap();
        for i in 0..50u16 {
            // 17 sequence numbers a packet (PID and a full BLP), reaching 850 back.
            let pid = last.wrapping_sub(17 * i + 16);
            let lost: Vec<u16> = (0..17).map(|k| pid.wrapping_add(k)).collect();
            rtcp.clear();
            let mut w = RtcpWriter::new(&mut rtcp);
            w.nack(sender, media, &lost).unwrap();
            // And some for an SSRC this viewer does not receive.
            w.nack(sender, media ^ 1, &lost[..1]).unwrap();
            if session.send_rtcp(&rtcp) {
                nacked += 18;
            }
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let received = s.metric("leanrtc_rtcp_nacks_received_total") - received0;
    let resent = s.metric("leanrtc_nack_resent_total") - resent0;
    let resent_bytes = s.metric("leanrtc_nack_resent_bytes_total") - resent_bytes0;
    let refused = s.metric("leanrtc_nack_refused_budget_total")
        + s.metric("leanrtc_nack_refused_repeat_total")
        - refused0;
    let replayed = replays(&s, noisy) - replays0;
    let (packets, bytes) = (video(&s).0 - video0.0, video(&s).1 - video0.1);
    eprintln!(
        "NACK flood: {nacked} sequence numbers sent in {secs:.1} s, {received} counted, \
         {resent} packets ({resent_bytes} bytes) resent ({replayed} seen as replays by the \
         flooding viewer, which got {packets} video packets, {bytes} bytes), {refused} refused"
    );
    // Sequence numbers NACKed for an SSRC the viewer does not receive may or may not be
    // counted; the ones for its own must all be.
    assert!(
        received >= (nacked / 18 * 17) as f64 && received <= nacked as f64,
        "{received} counted of {nacked}"
    );
    // The budget: a quarter of the bytes sent in the window before, and 16 kB a window (of
    // 1 s); the window the phase starts in and the one before count too.
    let bound = bytes as f64 / 4.0 + 16_384.0 * (secs + 2.0);
    assert!(
        resent_bytes <= bound,
        "{resent_bytes} bytes resent for a flood, more than the budget's {bound:.0}"
    );
    assert!(
        resent >= 13.0,
        "the server answered only {resent} NACKed packets"
    );
    assert!(
        refused >= 10.0 * resent,
        "{refused} refused, {resent} resent"
    );
    assert!(
        replayed as f64 <= resent,
        "{replayed} replays, {resent} resent"
    );
    for (i, &v) in watched.iter().enumerate() {
        assert_eq!(replays(&s, v), 0, "watched viewer {i} got retransmissions");
    }
}
