//! The per-packet work: a source's packet goes into its track's history once, then out to
//! each viewer — copied into one send buffer, rewritten for that viewer, protected with its
//! keys, sent. Also the viewers' RTCP: NACKs answered from history, PLI/FIR by replaying
//! from the latest keyframe, and Sender Reports.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc::rtcp::{RtcpPacket, RtcpWriter, SenderInfo, parse_compound};
use rtc::rtp::RtpPacket;

use super::net::Net;
use super::session::Session;
use crate::router::output::Output;
use crate::router::{Source, Stream, Track};

/// Room after a packet for the SRTP tag (16 for GCM, 10 for HMAC-SHA1-80) or SRTCP trailer.
const TAG_ROOM: usize = 20;
/// A viewer's keyframe requests are acted on at most this often.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// The timestamp step between a replayed keyframe and the last frame sent (one 30 fps frame).
const REPLAY_GAP: u32 = 3000;
/// The CNAME in our reports (RFC 7022 suggests a random one per session; one per server does
/// the same job for lip sync, which only needs tracks of one stream to share it).
const CNAME: &str = "leanrtc";

/// Plays the file packets due by `now` into the stream's tracks and out to its viewers.
pub fn play_file(
    now: Instant,
    stream: &mut Stream,
    sessions: &mut HashMap<u64, Session>,
    out: &mut Vec<u8>,
    net: &mut Net,
) {
    let Stream {
        source: Source::File(player),
        tracks,
        viewers,
        ..
    } = stream;
    player.play(now, |index, produced| {
        let Some(track) = tracks.get_mut(index) else {
            return;
        };
        track.bytes += produced.packet.len() as u64;
        let packet_index = track.history.push(produced.packet, produced.keyframe_start);
        for key in viewers.iter() {
            if let Some(session) = sessions.get_mut(key) {
                forward(
                    session,
                    track,
                    index,
                    packet_index,
                    produced.keyframe_start,
                    out,
                    net,
                );
            }
        }
    });
}

/// Sends one packet of `track` (number `track_index` in its stream) to one viewer.
fn forward(
    session: &mut Session,
    track: &Track,
    track_index: usize,
    packet_index: u64,
    keyframe_start: bool,
    out: &mut Vec<u8>,
    net: &mut Net,
) {
    if !session.peer.is_connected() {
        return;
    }
    let Session { peer, outputs, .. } = session;
    for output in outputs.iter_mut().filter(|o| o.track == track_index) {
        if output.waiting_for_keyframe {
            if !keyframe_start {
                continue;
            }
            output.waiting_for_keyframe = false;
        }
        let Some(packet) = track.history.get(packet_index) else {
            return;
        };
        out.clear();
        out.extend_from_slice(packet);
        if output.rewrite(out, packet_index) {
            protect_and_send(peer, out, net);
        }
    }
}

fn protect_and_send(peer: &mut rtc::peer::Peer, out: &mut Vec<u8>, net: &mut Net) {
    let Some((remote, _)) = peer.path() else {
        return;
    };
    let len = out.len();
    out.resize(len + TAG_ROOM, 0);
    if let Ok(n) = peer.protect_rtp(out, len)
        && let Some(datagram) = out.get(..n)
    {
        net.send(datagram, remote, true);
    }
}

/// A viewer just connected: every video output starts at once from the latest keyframe in
/// the track's history (the GOP cache), so the first frame needs no wait for the next
/// keyframe. Audio starts with the next packet.
pub fn start_viewer(session: &mut Session, stream: &Stream, out: &mut Vec<u8>, net: &mut Net) {
    let Session { peer, outputs, .. } = session;
    for output in outputs.iter_mut() {
        if let Some(track) = stream.tracks.get(output.track) {
            replay_from_keyframe(peer, output, track, false, out, net);
        }
    }
}

/// Sends the track's packets from its latest keyframe to now. With `rebase`, timestamps are
/// shifted to follow what the viewer already got, so its time never goes backwards.
fn replay_from_keyframe(
    peer: &mut rtc::peer::Peer,
    output: &mut Output,
    track: &Track,
    rebase: bool,
    out: &mut Vec<u8>,
    net: &mut Net,
) -> bool {
    if !track.codec.is_video() {
        return false;
    }
    let Some(start) = track.history.keyframe_start() else {
        return false;
    };
    if rebase {
        let Some(first) = track
            .history
            .get(start)
            .and_then(|p| RtpPacket::parse(p).ok())
        else {
            return false;
        };
        output.rebase(first.timestamp(), REPLAY_GAP);
    }
    output.waiting_for_keyframe = false;
    for index in start..track.history.next_index() {
        let Some(packet) = track.history.get(index) else {
            continue;
        };
        out.clear();
        out.extend_from_slice(packet);
        if output.rewrite(out, index) {
            protect_and_send(peer, out, net);
        }
    }
    true
}

/// A viewer's RTCP: NACKs resend from history; PLI/FIR replay from the latest keyframe.
pub fn handle_rtcp(
    now: Instant,
    session: &mut Session,
    streams: &BTreeMap<String, Stream>,
    rtcp: &[u8],
    out: &mut Vec<u8>,
    net: &mut Net,
) {
    let Some(stream) = streams.get(&session.stream) else {
        return;
    };
    let Session {
        peer,
        outputs,
        nacks,
        keyframe_requests,
        last_keyframe_request,
        ..
    } = session;
    for packet in parse_compound(rtcp).flatten() {
        match packet {
            RtcpPacket::Nack(nack) => {
                let Some(output) = outputs.iter().find(|o| o.ssrc == nack.media_ssrc()) else {
                    continue;
                };
                let Some(track) = stream.tracks.get(output.track) else {
                    continue;
                };
                for seq in nack.lost() {
                    *nacks += 1;
                    let Some((index, ts)) = output.source_of(seq) else {
                        continue;
                    };
                    let Some(packet) = track.history.get(index) else {
                        continue;
                    };
                    out.clear();
                    out.extend_from_slice(packet);
                    if output.rewrite_resend(out, seq, ts) {
                        protect_and_send(peer, out, net);
                    }
                }
            }
            RtcpPacket::Pli(_) | RtcpPacket::Fir(_) => {
                *keyframe_requests += 1;
                if last_keyframe_request
                    .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
                {
                    continue;
                }
                *last_keyframe_request = Some(now);
                for output in outputs.iter_mut() {
                    if let Some(track) = stream.tracks.get(output.track) {
                        replay_from_keyframe(peer, output, track, true, out, net);
                    }
                }
            }
            _ => {}
        }
    }
}

/// One compound RTCP packet with a Sender Report per output and their CNAMEs
/// (RFC 3550 §6.4.1): the NTP ↔ RTP mapping browsers use for lip sync.
pub fn send_reports(
    now: Instant,
    session: &mut Session,
    streams: &BTreeMap<String, Stream>,
    out: &mut Vec<u8>,
    net: &mut Net,
) {
    let Some(stream) = streams.get(&session.stream) else {
        return;
    };
    let Some((remote, _)) = session.peer.path() else {
        return;
    };
    let ntp = ntp_now();
    out.clear();
    let mut writer = RtcpWriter::new(out);
    for output in &session.outputs {
        let Source::File(player) = &stream.source;
        let Some(source_ts) = player.rtp_timestamp_at(output.track, now) else {
            continue;
        };
        let info = SenderInfo {
            ntp_time: ntp,
            rtp_time: output.timestamp(source_ts),
            packet_count: output.packets,
            octet_count: output.octets,
        };
        if writer.sr(output.ssrc, &info, &[]).is_err() {
            return;
        }
    }
    for output in &session.outputs {
        if writer.cname(output.ssrc, CNAME).is_err() {
            return;
        }
    }
    let len = out.len();
    out.resize(len + TAG_ROOM, 0);
    if let Ok(n) = session.peer.protect_rtcp(out, len)
        && let Some(datagram) = out.get(..n)
    {
        net.send(datagram, remote, false);
    }
}

/// Now as a 64-bit NTP timestamp (RFC 5905 §6: seconds since 1900, 32.32 fixed point).
fn ntp_now() -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    ((since.as_secs() + UNIX_TO_NTP) << 32) | frac
}
