//! The per-packet work: a source's packet goes into its track's history once, then out to
//! each viewer — copied into one send buffer, rewritten for that viewer, protected with its
//! keys, queued. Also the viewers' RTCP: NACKs answered from history, PLI/FIR by replaying
//! from the latest keyframe (files) or asking the publisher for one (live), and Sender
//! Reports.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc::peer::Peer;
use rtc::rtcp::{RtcpPacket, RtcpWriter, SenderInfo, parse_compound};
use rtc::rtp::RtpPacket;

use super::net::Net;
use super::session::Session;
use crate::router::output::{Admit, Output};
use crate::router::resend::{MAX_FCIS, ResendBudget, read_fcis, repeat_gap};
use crate::router::{Pending, Source, Stream, Track};

/// Room after a packet for the SRTP tag (16 for GCM, 10 for HMAC-SHA1-80) or SRTCP trailer.
const TAG_ROOM: usize = 20;
/// A viewer's keyframe requests are acted on at most this often.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// The CNAME in our reports (RFC 7022 suggests a random one per session; one per server does
/// the same job for lip sync, which only needs the tracks of one stream to share it).
const CNAME: &str = "leanrtc";

/// What sending needs: the time, the one send buffer every packet is built in, the socket.
#[derive(Debug)]
pub struct Tx<'a> {
    /// Now.
    pub now: Instant,
    /// The send buffer.
    pub out: &'a mut Vec<u8>,
    /// The socket (its send queue).
    pub net: &'a mut Net,
}

/// Plays the file packets due now into the stream's tracks; [`flush`] sends them.
pub fn play_file(stream: &mut Stream, now: Instant) {
    let Stream {
        source: Source::File(player),
        tracks,
        pending,
        ..
    } = stream
    else {
        return;
    };
    player.play(now, |index, produced| {
        let Some(track) = tracks.get_mut(index) else {
            return;
        };
        let packet_index = track.history.push(produced.packet, produced.keyframe_start);
        track.bytes += produced.packet.len() as u64;
        pending.push(Pending {
            track: index,
            packet: packet_index,
            keyframe_start: produced.keyframe_start,
        });
    });
}

/// Stores a live packet in track `index` of `stream`; [`flush`] sends it.
pub fn forward_live(
    stream: &mut Stream,
    index: usize,
    packet: &[u8],
    keyframe_start: bool,
    now: Instant,
) {
    let Stream {
        tracks, pending, ..
    } = stream;
    let Some(track) = tracks.get_mut(index) else {
        return;
    };
    if let Ok(view) = RtpPacket::parse(packet) {
        track.last_rtp = Some((view.timestamp(), now));
    }
    let packet_index = track.history.push(packet, keyframe_start);
    track.bytes += packet.len() as u64;
    pending.push(Pending {
        track: index,
        packet: packet_index,
        keyframe_start,
    });
}

/// Sends the stream's new packets to every viewer, viewer by viewer: the packets of a frame
/// to one viewer are then consecutive in the send queue, and the UDP layer sends them as one
/// GSO message — one trip through the kernel for several packets (issue 6's main lever).
pub fn flush(stream: &mut Stream, sessions: &mut HashMap<u64, Session>, tx: &mut Tx<'_>) {
    let Stream {
        tracks,
        viewers,
        pending,
        ..
    } = stream;
    if pending.is_empty() {
        return;
    }
    for key in viewers.iter() {
        let Some(Session { peer, outputs, .. }) = sessions.get_mut(key) else {
            continue;
        };
        if !peer.is_connected() {
            continue;
        }
        for p in pending.iter() {
            let Some(track) = tracks.get(p.track) else {
                continue;
            };
            for output in outputs.iter_mut().filter(|o| o.track == p.track) {
                send_one(peer, output, track, p.packet, p.keyframe_start, tx);
            }
        }
    }
    pending.clear();
}

/// Sends packet `packet_index` of `track` to one viewer, if it may have it now: copied once
/// into the send queue's memory, rewritten and protected there.
fn send_one(
    peer: &mut Peer,
    output: &mut Output,
    track: &Track,
    packet_index: u64,
    keyframe_start: bool,
    tx: &mut Tx<'_>,
) {
    let Some(packet) = track.history.get(packet_index) else {
        return;
    };
    let Ok(view) = RtpPacket::parse(packet) else {
        return;
    };
    if output.admit(&view, keyframe_start, track.codec, tx.now) == Admit::Skip {
        return;
    }
    let Some((remote, local)) = peer.path() else {
        return;
    };
    tx.net.send_with(remote, local, true, |buf| {
        let len = packet.len();
        buf.get_mut(..len)?.copy_from_slice(packet);
        if !output.rewrite(buf.get_mut(..len)?, packet_index) {
            return None;
        }
        peer.protect_rtp(buf, len).ok()
    });
}

/// Answers one NACKed sequence number of `output` from the track's history, if we still
/// have the packet, did not resend it within `gap` and the viewer's budget allows (`sent`:
/// bytes sent to it so far).
fn answer_nack(
    peer: &mut Peer,
    output: &mut Output,
    track: &Track,
    seq: u16,
    gap: Duration,
    (budget, sent): (&mut ResendBudget, u64),
    tx: &mut Tx<'_>,
) {
    let Some((index, ts)) = output.source_of(seq, track.history.next_index()) else {
        return;
    };
    let Some(packet) = track.history.get(index) else {
        return;
    };
    if output.resent_within(seq, tx.now, gap) {
        budget.counts.refused_repeat += 1;
        return;
    }
    if !budget.take(tx.now, sent, packet.len()) {
        return;
    }
    output.mark_resent(seq, tx.now);
    resend(peer, output, packet, seq, ts, tx);
}

/// Sends a retransmission: the original as it went out (`seq`, `ts`), in an RTX packet of
/// its own if the viewer negotiated RTX, else as a byte-identical copy.
fn resend(peer: &mut Peer, output: &mut Output, packet: &[u8], seq: u16, ts: u32, tx: &mut Tx<'_>) {
    let Some((remote, local)) = peer.path() else {
        return;
    };
    tx.net.send_with(remote, local, true, |buf| {
        let mut len = packet.len();
        buf.get_mut(..len)?.copy_from_slice(packet);
        if !output.rewrite_resend(buf.get_mut(..len)?, seq, ts) {
            return None;
        }
        if let Some(rtx) = &mut output.rtx {
            len = rtx.wrap(buf, len)?;
        }
        peer.protect_rtp(buf, len).ok()
    });
}

/// A viewer just connected: every video output starts at once from the latest keyframe in
/// the track's history (the GOP cache), so the first frame needs no wait for the next
/// keyframe. Audio starts with the next packet.
pub fn start_viewer(session: &mut Session, stream: &Stream, tx: &mut Tx<'_>) {
    let Session { peer, outputs, .. } = session;
    for output in outputs.iter_mut() {
        if let Some(track) = stream.tracks.get(output.track) {
            replay_from_keyframe(peer, output, track, false, tx);
        }
    }
}

/// Sends the track's packets from its latest keyframe to now. With `rebase`, numbering is
/// shifted to follow what the viewer already got, so its time never goes backwards.
fn replay_from_keyframe(
    peer: &mut Peer,
    output: &mut Output,
    track: &Track,
    rebase: bool,
    tx: &mut Tx<'_>,
) {
    if !track.codec.is_video() {
        return;
    }
    let Some(start) = track.history.keyframe_start() else {
        return;
    };
    if rebase
        && let Some(first) = track
            .history
            .get(start)
            .and_then(|p| RtpPacket::parse(p).ok())
    {
        output.rebase(&first, track.codec.frame_gap());
    }
    for index in start..track.history.next_index() {
        send_one(peer, output, track, index, index == start, tx);
    }
}

/// A viewer's RTCP: receiver reports read, NACKs resent from history, PLI/FIR answered by
/// replaying a file's latest keyframe — or, returned as `true`, by asking a live stream's
/// publisher for one.
pub fn handle_rtcp(
    session: &mut Session,
    streams: &BTreeMap<String, Stream>,
    rtcp: &[u8],
    tx: &mut Tx<'_>,
) -> bool {
    let Some(stream) = streams.get(&session.stream) else {
        return false;
    };
    let live = matches!(stream.source, Source::Live { .. });
    let mut wants_keyframe = false;
    let Session {
        peer,
        outputs,
        nacks,
        resends,
        keyframe_requests,
        last_keyframe_request,
        rtt,
        fraction_lost,
        ..
    } = session;
    let mut fcis = MAX_FCIS;
    for packet in parse_compound(rtcp).flatten() {
        match packet {
            // Receiver reports about what we send: loss and, from our SR's NTP time echoed
            // back (RFC 3550 §6.4.1), the round trip.
            RtcpPacket::Rr(rr) => {
                for block in rr
                    .reports()
                    .filter(|b| outputs.iter().any(|o| o.ssrc == b.ssrc))
                {
                    *fraction_lost = block.fraction_lost;
                    *rtt = rtc::receive::rtt_from_report(ntp_now(), &block).or(*rtt);
                }
            }
            RtcpPacket::Nack(nack) => {
                let (read, named) = read_fcis(nack.pairs(), &mut fcis, &mut resends.counts);
                *nacks += named;
                let sent: u64 = outputs.iter().map(|o| o.bytes_sent).sum();
                let Some(output) = outputs.iter_mut().find(|o| o.ssrc == nack.media_ssrc()) else {
                    continue;
                };
                let Some(track) = stream.tracks.get(output.track) else {
                    continue;
                };
                let gap = repeat_gap(*rtt);
                for seq in nack.lost().take(read) {
                    answer_nack(peer, output, track, seq, gap, (resends, sent), tx);
                }
            }
            RtcpPacket::Pli(_) | RtcpPacket::Fir(_) => {
                *keyframe_requests += 1;
                if last_keyframe_request.is_some_and(|t| {
                    tx.now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL
                }) {
                    continue;
                }
                *last_keyframe_request = Some(tx.now);
                if live {
                    wants_keyframe = true;
                    continue;
                }
                for output in outputs.iter_mut() {
                    if let Some(track) = stream.tracks.get(output.track) {
                        replay_from_keyframe(peer, output, track, true, tx);
                    }
                }
            }
            _ => {}
        }
    }
    wants_keyframe
}

/// One compound RTCP packet with a Sender Report per output and their CNAMEs
/// (RFC 3550 §6.4.1): the NTP ↔ RTP mapping browsers use for lip sync.
pub fn send_reports(session: &mut Session, streams: &BTreeMap<String, Stream>, tx: &mut Tx<'_>) {
    let Some(stream) = streams.get(&session.stream) else {
        return;
    };
    let ntp = ntp_now();
    tx.out.clear();
    let mut writer = RtcpWriter::new(tx.out);
    for output in &session.outputs {
        let Some(source_ts) = stream.rtp_timestamp_at(output.track, tx.now) else {
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
    if writer.is_empty() {
        return;
    }
    for output in &session.outputs {
        if writer.cname(output.ssrc, CNAME).is_err() {
            return;
        }
    }
    send_rtcp(&mut session.peer, tx);
}

/// Protects the RTCP compound packet in the send buffer and queues it to the peer.
pub fn send_rtcp(peer: &mut Peer, tx: &mut Tx<'_>) {
    let Some((remote, local)) = peer.path() else {
        return;
    };
    let len = tx.out.len();
    tx.out.resize(len + TAG_ROOM, 0);
    if let Ok(n) = peer.protect_rtcp(tx.out, len)
        && let Some(datagram) = tx.out.get(..n)
    {
        tx.net.send(datagram, remote, local, false);
    }
}

/// RTCP BYE for every SSRC a viewer receives (RFC 3550 §6.6): the stream has ended.
pub fn send_bye(session: &mut Session, tx: &mut Tx<'_>) {
    let ssrcs: Vec<u32> = session.outputs.iter().map(|o| o.ssrc).collect();
    let Some(&first) = ssrcs.first() else { return };
    tx.out.clear();
    let mut writer = RtcpWriter::new(tx.out);
    // A compound packet starts with a report (RFC 3550 §6.1); an empty RR does.
    if writer
        .rr(first, &[])
        .and_then(|w| w.bye(&ssrcs, Some(b"stream ended")))
        .is_ok()
    {
        send_rtcp(&mut session.peer, tx);
    }
}

/// Now as a 64-bit NTP timestamp (RFC 5905 §6: seconds since 1900, 32.32 fixed point).
pub fn ntp_now() -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    ((since.as_secs() + UNIX_TO_NTP) << 32) | frac
}
