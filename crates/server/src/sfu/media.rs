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

use super::outbox::Outbox;
use super::pacing::{WIRE_OVERHEAD, deliver, drain};
use super::session::{Session, Side, Viewer};
use super::simulcast::choose_layers;
use crate::router::congestion::ViewerCc;
use crate::router::output::{Admit, Output};
use crate::router::replay::Replay;
use crate::router::resend::{MAX_FCIS, ResendBudget, read_fcis, repeat_gap};
use crate::router::simulcast::keyframe_size;
use crate::router::{Frame, Pending, Source, Stream, Track};

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
    pub net: &'a mut Outbox,
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
            frame_start: packet_index,
        });
    });
}

/// Stores a live packet in track `index` of `stream`; [`flush`] sends it. `shows_keyframe`:
/// the packet shows its frame is a keyframe (whichever of the frame's packets arrives first,
/// the frame then starts at that one in the history).
pub fn forward_live(
    stream: &mut Stream,
    index: usize,
    packet: &[u8],
    shows_keyframe: bool,
    now: Instant,
) {
    let Ok(view) = RtpPacket::parse(packet) else {
        return;
    };
    let (ssrc, ts) = (view.ssrc(), view.timestamp());
    stream.on_packet(index, ssrc, ts, now);
    let Stream {
        tracks, pending, ..
    } = stream;
    let Some(track) = tracks.get_mut(index) else {
        return;
    };
    let packet_index = track.history.push(packet, false);
    track.bytes += packet.len() as u64;
    track.last_packet = Some(now);
    if shows_keyframe
        && let Some(layer) = &mut track.layer
        && let Some(size) = keyframe_size(track.codec, view.payload())
    {
        layer.size = Some(size);
    }
    // Only the newest frame is followed: a late packet of an older one marks nothing.
    let newer = track
        .frame
        .is_none_or(|f| f.ssrc != ssrc || (ts.wrapping_sub(f.ts) as i32) > 0);
    if newer {
        track.frame = Some(Frame {
            ssrc,
            ts,
            start: packet_index,
            keyframe: false,
        });
    }
    let mut keyframe_start = false;
    let mut frame_start = packet_index;
    if let Some(frame) = track
        .frame
        .as_mut()
        .filter(|f| f.ssrc == ssrc && f.ts == ts)
    {
        frame_start = frame.start;
        if shows_keyframe && !frame.keyframe {
            frame.keyframe = true;
            keyframe_start = true;
            track.history.mark_keyframe(frame.start);
        }
    }
    pending.push(Pending {
        track: index,
        packet: packet_index,
        keyframe_start,
        frame_start,
    });
}

/// Sends the stream's new packets to every viewer, viewer by viewer: the packets of a frame
/// to one viewer are then consecutive in the send queue, and the UDP layer sends them as one
/// GSO message — one trip through the kernel for several packets (issue 6's main lever).
///
/// A viewer with a bandwidth estimate gets its video through its pacer: what may not leave
/// now waits there, and its key is added to `paced` for the shard to come back to.
pub fn flush(
    stream: &mut Stream,
    sessions: &mut HashMap<u64, Session>,
    tx: &mut Tx<'_>,
    paced: &mut Vec<u64>,
) {
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
        let Some((peer, outputs, cc)) = sessions.get_mut(key).and_then(Session::sending) else {
            continue;
        };
        if !peer.is_connected() {
            continue;
        }
        let to = &mut To { peer, cc };
        for p in pending.iter() {
            let Some(track) = tracks.get(p.track) else {
                continue;
            };
            // A keyframe shown by a packet other than its frame's first to arrive: a viewer
            // waiting for one starts at the frame's first packet.
            let ssrc = (p.keyframe_start && p.frame_start < p.packet)
                .then(|| track.history.get(p.packet))
                .flatten()
                .and_then(|b| RtpPacket::parse(b).ok())
                .map(|v| v.ssrc());
            // A simulcast output waiting for this layer's keyframe switches to it here.
            if p.keyframe_start {
                for output in outputs
                    .iter_mut()
                    .filter(|o| o.layers.as_ref().is_some_and(|l| l.waits_for(p.track)))
                {
                    output.switch_layer(p.track);
                }
            }
            // An output replaying the GOP cache sends these when its cursor gets there.
            for (o, output) in outputs
                .iter_mut()
                .enumerate()
                .filter(|(_, o)| o.track == p.track && o.replay.is_none() && !o.is_paused())
            {
                if ssrc.is_some_and(|s| output.needs_keyframe(s)) {
                    for index in p.frame_start..p.packet {
                        deliver(to, o, output, track, index, index == p.frame_start, tx);
                    }
                }
                deliver(to, o, output, track, p.packet, p.keyframe_start, tx);
            }
        }
        if drain(to, outputs, tracks, tx) {
            paced.push(*key);
        }
    }
    pending.clear();
}

/// Sends packet `packet_index` of `track` to one viewer, if it may have it now: copied once
/// into the send queue's memory, rewritten and protected there.
pub(super) fn send_one(
    to: &mut To<'_>,
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
    let Some((remote, local)) = to.peer.path() else {
        return;
    };
    let now = tx.now;
    tx.net.send_with(remote, local, true, |buf| {
        buf.get_mut(..packet.len())?.copy_from_slice(packet);
        let twcc = to.cc.as_mut().map(|cc| cc.next_seq());
        let len = output.rewrite_cc(buf, packet.len(), packet_index, twcc)?;
        to.protect(buf, len, twcc, now)
    });
}

/// Where a viewer's packets go: its transport, and its transport-wide numbering and
/// estimate when it negotiated them.
pub(super) struct To<'a> {
    pub(super) peer: &'a mut Peer,
    pub(super) cc: Option<&'a mut ViewerCc>,
}

impl To<'_> {
    /// Protects the RTP packet in `buf[..len]`; one that carries transport-wide number
    /// `twcc` is recorded as sent for the estimate.
    pub(super) fn protect(
        &mut self,
        buf: &mut [u8],
        len: usize,
        twcc: Option<(u8, u16)>,
        now: Instant,
    ) -> Option<usize> {
        let n = self.peer.protect_rtp(buf, len).ok()?;
        if let (Some(cc), Some((_, seq))) = (self.cc.as_mut(), twcc) {
            cc.sent(seq, n, now);
        }
        Some(n)
    }
}

/// Answers one NACKed sequence number of `output` from the track's history, if we still
/// have the packet, did not resend it within `gap` and the viewer's budget allows (`sent`:
/// bytes sent to it so far).
fn answer_nack(
    to: &mut To<'_>,
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
    resend(to, output, packet, seq, ts, tx);
}

/// Sends a retransmission: the original as it went out (`seq`, `ts`), in an RTX packet of
/// its own if the viewer negotiated RTX, else as a byte-identical copy.
fn resend(to: &mut To<'_>, output: &mut Output, packet: &[u8], seq: u16, ts: u32, tx: &mut Tx<'_>) {
    let Some((remote, local)) = to.peer.path() else {
        return;
    };
    let now = tx.now;
    // A retransmission goes ahead of paced video (it is late already) but spends the budget.
    if let Some(cc) = to.cc.as_mut() {
        cc.pacer.on_sent_unpaced(packet.len() + WIRE_OVERHEAD, now);
    }
    tx.net.send_with(remote, local, true, |buf| {
        buf.get_mut(..packet.len())?.copy_from_slice(packet);
        let id = to.cc.as_ref().map(|cc| cc.id);
        if output.rtx.is_none() {
            // A plain copy carries the transport-wide number the original did: the same
            // bytes under the same SRTP index (RFC 7714 §8.4), and no new number to report.
            let original = id.zip(output.sent_twcc(seq));
            let len = output.rewrite_resend_cc(buf, packet.len(), seq, ts, original)?;
            return to.peer.protect_rtp(buf, len).ok();
        }
        // RTX is a packet of its own (RFC 4588 §4): a new number, counted as sent.
        let len = output.rewrite_resend(buf, packet.len(), seq, ts)?;
        let mut len = output.rtx.as_mut()?.wrap(buf, len)?;
        let twcc = to.cc.as_mut().map(|cc| cc.next_seq());
        if let Some((id, n)) = twcc {
            len = crate::router::output::put_twcc(buf, len, id, n)?;
        }
        to.protect(buf, len, twcc, now)
    });
}

/// A viewer just connected: every video output starts at once from the latest keyframe in
/// the track's history (the GOP cache), so the first frame needs no wait for the next
/// keyframe; the rest of the GOP follows paced ([`continue_replay`]). Audio starts with the
/// next packet. Returns whether a video track had no keyframe cached (a live stream's
/// publisher must then be asked for one at once).
pub fn start_viewer(session: &mut Session, stream: &Stream, tx: &mut Tx<'_>) -> bool {
    // A simulcast output starts on the top layer being received.
    choose_layers(session, stream, tx.now, true);
    let Some((peer, outputs, cc)) = session.sending() else {
        return false;
    };
    let to = &mut To { peer, cc };
    let mut missing = false;
    for (o, output) in outputs
        .iter_mut()
        .enumerate()
        .filter(|(_, o)| !o.is_paused())
    {
        if let Some(track) = stream.tracks.get(output.track) {
            missing |= !replay_from_keyframe(to, o, output, track, false, tx);
        }
    }
    drain(to, outputs, &stream.tracks, tx);
    missing
}

/// Sends the latest keyframe's packets now and starts a paced replay of the rest of the GOP.
/// With `rebase`, numbering is shifted to follow what the viewer already got, so its time
/// never goes backwards. False if the track is video and has no keyframe cached.
fn replay_from_keyframe(
    to: &mut To<'_>,
    o: usize,
    output: &mut Output,
    track: &Track,
    rebase: bool,
    tx: &mut Tx<'_>,
) -> bool {
    if !track.codec.is_video() {
        return true;
    }
    let Some((keyframe, replay)) = Replay::start(&track.history, track.codec.clock_rate(), tx.now)
    else {
        return false;
    };
    if rebase
        && let Some(first) = track
            .history
            .get(keyframe.start)
            .and_then(|p| RtpPacket::parse(p).ok())
    {
        output.rebase(&first, track.codec.frame_gap());
    }
    let start = keyframe.start;
    for index in keyframe {
        deliver(to, o, output, track, index, index == start, tx);
    }
    output.replay = replay;
    true
}

/// Sends what each of a viewer's GOP replays has due now (from the tick).
pub fn continue_replay(session: &mut Session, streams: &BTreeMap<String, Stream>, tx: &mut Tx<'_>) {
    let Some(stream) = streams.get(&session.stream) else {
        return;
    };
    let Some((peer, outputs, cc)) = session.sending() else {
        return;
    };
    let to = &mut To { peer, cc };
    for (o, output) in outputs.iter_mut().enumerate() {
        let (Some(mut replay), Some(track)) = (output.replay, stream.tracks.get(output.track))
        else {
            continue;
        };
        for index in replay.due(&track.history, tx.now) {
            deliver(to, o, output, track, index, false, tx);
        }
        output.replay = (!replay.is_done(&track.history)).then_some(replay);
    }
    drain(to, outputs, &stream.tracks, tx);
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
    let live = stream.is_live();
    let mut wants_keyframe = false;
    let Session {
        peer,
        side:
            Side::Viewer(Viewer {
                outputs,
                resends,
                rtt,
                cc,
            }),
        nacks,
        keyframe_requests,
        last_keyframe_request,
        fraction_lost,
        ..
    } = session
    else {
        return false;
    };
    let to = &mut To {
        peer,
        cc: cc.as_deref_mut(),
    };
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
                // Paused video resumes at a keyframe: resending what came before it would
                // spend the link that could not carry the video on frames shown late.
                let Some(output) = outputs
                    .iter_mut()
                    .find(|o| o.ssrc == nack.media_ssrc() && !o.is_paused())
                else {
                    continue;
                };
                let Some(track) = stream.tracks.get(output.track) else {
                    continue;
                };
                let gap = repeat_gap(*rtt);
                for seq in nack.lost().take(read) {
                    answer_nack(to, output, track, seq, gap, (resends, sent), tx);
                }
            }
            // The viewer's transport-wide feedback, or its own estimate: what the path
            // carries, for its layer choice.
            RtcpPacket::Twcc(fb) => {
                if let Some(cc) = to.cc.as_mut() {
                    cc.bwe.on_twcc(&fb, tx.now);
                    cc.on_feedback(tx.now);
                }
            }
            RtcpPacket::Remb(remb) => {
                if let Some(cc) = to.cc.as_mut() {
                    cc.bwe.on_remb(remb.bitrate(), tx.now);
                    cc.on_feedback(tx.now);
                }
            }
            // Paused video needs no keyframe until it resumes, which asks for its own.
            RtcpPacket::Pli(pli)
                if outputs
                    .iter()
                    .any(|o| o.ssrc == pli.media_ssrc && o.is_paused()) =>
            {
                *keyframe_requests += 1;
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
                // Paused video stays paused: a replay would send what its link cannot carry.
                for (o, output) in outputs
                    .iter_mut()
                    .enumerate()
                    .filter(|(_, o)| !o.is_paused())
                {
                    if let Some(track) = stream.tracks.get(output.track) {
                        replay_from_keyframe(to, o, output, track, true, tx);
                    }
                }
                drain(to, outputs, &stream.tracks, tx);
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
    let Some((peer, outputs, _)) = session.sending() else {
        return;
    };
    let ntp = ntp_now();
    tx.out.clear();
    let mut writer = RtcpWriter::new(tx.out);
    for output in outputs.iter() {
        let Some(source_ts) = stream.rtp_timestamp_at(output.track, tx.now, ntp) else {
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
    for output in outputs.iter() {
        if writer.cname(output.ssrc, CNAME).is_err() {
            return;
        }
    }
    send_rtcp(peer, tx);
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

/// RTCP BYE (RFC 3550 §6.6) for every SSRC a session sends from: a viewer's outputs, or a
/// publisher's own RTCP SSRC. No allocation: a BYE names at most 31 sources.
pub fn send_bye(session: &mut Session, reason: &[u8], tx: &mut Tx<'_>) {
    let mut ssrcs = [0u32; 31];
    let mut n = 0;
    let outputs = session.viewer().map_or(&[][..], |v| &v.outputs);
    for output in outputs.iter().take(ssrcs.len()) {
        ssrcs[n] = output.ssrc;
        n += 1;
    }
    if n == 0 {
        ssrcs[0] = session.rtcp_ssrc;
        n = 1;
    }
    let ssrcs = &ssrcs[..n];
    tx.out.clear();
    let mut writer = RtcpWriter::new(tx.out);
    // A compound packet starts with a report (RFC 3550 §6.1); an empty RR does.
    if writer
        .rr(ssrcs[0], &[])
        .and_then(|w| w.bye(ssrcs, Some(reason)))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use rtc::dtls::{DtlsCertificate, DtlsConfig};
    use rtc::rand::Rng;
    use rtc::rtp::RtpHeader;

    use super::{Tx, forward_live, start_viewer};
    use crate::control::Role;
    use crate::router::Stream;
    use crate::sfu::outbox::capture;
    use crate::sfu::session::{OfferContext, OfferedTrack, answer_offer};
    use crate::sources::Codec;

    fn rtp(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        RtpHeader {
            payload_type: 96,
            sequence_number: seq,
            timestamp: ts,
            ssrc: 5,
            ..Default::default()
        }
        .write_vec(payload, 0, &mut out)
        .unwrap();
        out
    }

    /// What `publish.rs` says of each packet, for H.264: an SPS or IDR anywhere in it.
    fn shows(payload: &[u8]) -> bool {
        super::super::publish::tests_shows_h264_keyframe(payload)
    }

    #[test]
    fn a_keyframe_is_marked_from_any_of_its_packets_at_its_first() {
        let now = Instant::now();
        // H.264: an AUD and an SEI come before the IDR's FU-A fragments.
        let mut stream = Stream::live(1, &[Codec::H264], now);
        let frame = [
            rtp(100, 3000, &[0x09, 0xf0]),             // AUD
            rtp(101, 3000, &[0x06, 0x05, 0x01]),       // SEI
            rtp(102, 3000, &[0x7c, 0x85, 0x88, 0x01]), // FU-A start of an IDR
            rtp(103, 3000, &[0x7c, 0x45, 0x02]),       // FU-A end
        ];
        for p in &frame {
            forward_live(&mut stream, 0, p, shows(&p[12..]), now);
        }
        assert_eq!(stream.tracks[0].history.keyframe_start(), Some(0));
        let marked: Vec<_> = stream
            .pending
            .iter()
            .map(|p| (p.keyframe_start, p.frame_start))
            .collect();
        assert_eq!(marked, [(false, 0), (false, 0), (true, 0), (false, 0)]);

        // Reordered: the IDR's end fragment arrives before its start.
        let mut stream = Stream::live(1, &[Codec::H264], now);
        forward_live(&mut stream, 0, &rtp(1, 9000, &[0x41, 0x9a]), false, now);
        for p in [
            rtp(3, 12_000, &[0x7c, 0x45, 0x02]),
            rtp(2, 12_000, &[0x7c, 0x85, 0x88]),
        ] {
            forward_live(&mut stream, 0, &p, shows(&p[12..]), now);
        }
        assert_eq!(
            stream.tracks[0].history.keyframe_start(),
            Some(1),
            "the frame starts at its first packet to arrive"
        );
        // A late packet of an older frame marks nothing.
        forward_live(&mut stream, 0, &rtp(0, 6000, &[0x65, 0x88]), true, now);
        assert_eq!(stream.tracks[0].history.keyframe_start(), Some(1));
    }

    #[test]
    fn a_viewer_joining_without_a_cached_keyframe_asks_for_one() {
        let now = Instant::now();
        let mut rng = Rng::system();
        let dtls = Arc::new(DtlsConfig::new(
            DtlsCertificate::generate(&mut rng).unwrap(),
            &mut rng,
        ));
        let mut stream = Stream::live(1, &[Codec::Vp8], now);
        let tracks = [OfferedTrack {
            index: 0,
            codec: Codec::Vp8,
            group: None,
        }];
        let cx = OfferContext {
            role: Role::Play,
            stream: "s",
            tracks: &tracks,
            candidates: &[],
            tcp_candidates: &[],
            dtls: &dtls,
            congestion_feedback: true,
        };
        let offer = include_str!("../../../rtc/tests/fixtures/sdp/chromium-whep.sdp");
        let (_, mut session) = answer_offer(now, offer, &cx, &mut rng).unwrap();
        let (mut net, _sent) = capture::outbox();
        let mut out = Vec::new();
        let mut tx = Tx {
            now,
            out: &mut out,
            net: &mut net,
        };
        // Delta frames only: nothing to start from, the publisher must be asked.
        forward_live(&mut stream, 0, &rtp(1, 0, &[0x10, 0x01]), false, now);
        assert!(start_viewer(&mut session, &stream, &mut tx));
        // VP8 keyframe (S = 1, PID 0, P = 0): a viewer starts from it.
        forward_live(&mut stream, 0, &rtp(2, 3000, &[0x10, 0x00]), true, now);
        assert!(!start_viewer(&mut session, &stream, &mut tx));
    }
}
