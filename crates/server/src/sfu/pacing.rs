//! What leaves for a viewer when (issue 12): its pacer, which spreads video over time at
//! its bandwidth estimate, and the padding probes that find headroom upward. The fan-out
//! and the replays in `media.rs` hand packets to [`deliver`]; the shard's pacing pass calls
//! [`drain_pacer`] for viewers whose pacer still holds something, and the tick calls
//! [`send_probes`].

use rtc::rtp::RtpHeader;

use super::media::{To, Tx, send_one};
use super::session::Session;
use crate::router::congestion::PADDING;
use crate::router::output::Output;
use crate::router::{Stream, Track};

/// A packet waiting in a viewer's pacer, packed into the pacer's id: which packet of the
/// track's history, which track, which of the viewer's outputs, and whether it starts a
/// keyframe. Nothing is copied while it waits — the history holds the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Paced {
    index: u64,
    track: usize,
    output: usize,
    keyframe_start: bool,
}

impl Paced {
    /// The id, if the numbers fit (48-bit packet index, 256 tracks, 128 outputs).
    fn id(self) -> Option<u64> {
        (self.index < 1 << 48 && self.track < 1 << 8 && self.output < 1 << 7).then(|| {
            self.index << 16
                | (self.track as u64) << 8
                | u64::from(self.keyframe_start) << 7
                | self.output as u64
        })
    }

    fn from_id(id: u64) -> Self {
        Paced {
            index: id >> 16,
            track: ((id >> 8) & 0xff) as usize,
            output: (id & 0x7f) as usize,
            keyframe_start: id & 0x80 != 0,
        }
    }
}

/// What a packet costs on the wire beyond its RTP bytes as stored: the transport-wide
/// number (8), the SRTP tag (16) and IP/UDP headers (28), rounded up.
pub(super) const WIRE_OVERHEAD: usize = 52;

/// Sends packet `packet_index` of `track` on output `o` of a viewer, or queues it in the
/// viewer's pacer when it has one (video only: audio is small, and late audio is heard,
/// so it goes at once and only spends the pacer's budget).
pub(super) fn deliver(
    to: &mut To<'_>,
    o: usize,
    output: &mut Output,
    track: &Track,
    packet_index: u64,
    keyframe_start: bool,
    tx: &mut Tx<'_>,
) {
    let size = track.history.get(packet_index).map_or(0, <[u8]>::len) + WIRE_OVERHEAD;
    let paced = Paced {
        index: packet_index,
        track: output.track,
        output: o,
        keyframe_start,
    };
    // Only a viewer whose feedback gave an estimate is paced: one that sends none (a relay,
    // a load generator) would be paced at a guess.
    if let Some(cc) = to.cc.as_mut() {
        match paced.id() {
            Some(id) if track.codec.is_video() && cc.has_feedback() => {
                if !cc.pacer.send_now(size, tx.now) {
                    cc.pacer.enqueue(id, size, tx.now);
                    return;
                }
            }
            _ => cc.pacer.on_sent_unpaced(size, tx.now),
        }
    }
    send_one(to, output, track, packet_index, keyframe_start, tx);
}

/// Sends what a viewer's pacer lets leave now, media first, then a probe's padding; true if
/// it has more to send later. A packet of a layer the output switched away from meanwhile
/// is dropped: the new layer starts at its own keyframe, and numbers are given at sending,
/// so the viewer sees no gap.
pub(super) fn drain(
    to: &mut To<'_>,
    outputs: &mut [Output],
    tracks: &[Track],
    tx: &mut Tx<'_>,
) -> bool {
    loop {
        let Some(cc) = to.cc.as_mut() else {
            return false;
        };
        let Some(id) = cc.pacer.poll_send(tx.now) else {
            if cc.pacer.queue_len() > 0 {
                return true;
            }
            if cc.pacer.probing().is_none() {
                return false;
            }
            pad(to, outputs, tx);
            return to
                .cc
                .as_ref()
                .is_some_and(|cc| cc.pacer.probing().is_some());
        };
        let p = Paced::from_id(id);
        let (Some(output), Some(track)) = (outputs.get_mut(p.output), tracks.get(p.track)) else {
            continue;
        };
        if output.track == p.track {
            send_one(to, output, track, p.index, p.keyframe_start, tx);
        }
    }
}

/// Sends what a viewer's pacer lets leave now (from the shard's pacing pass); true if
/// packets still wait.
pub fn drain_pacer(session: &mut Session, stream: &Stream, tx: &mut Tx<'_>) -> bool {
    let Some((peer, outputs, cc)) = session.sending() else {
        return false;
    };
    drain(&mut To { peer, cc }, outputs, &stream.tracks, tx)
}

/// Probes the path to a viewer upward when its estimator asks (from the tick): padding-only
/// packets (RFC 3550 §5.1 P bit) on the video's RTX stream — never on the media numbering,
/// which the viewer's jitter buffer would see as gaps — at the probe's rate, each with a
/// transport-wide number whose feedback tells whether the path carried that rate. Only
/// simulcast viewers below what their top layer `need`s, and viewers whose single-layer
/// video is paused, are probed; viewers without RTX are not: their estimate rises only as
/// fast as what they receive.
pub fn send_probes(session: &mut Session, need: u64, tx: &mut Tx<'_>) {
    let Some((peer, outputs, Some(cc))) = session.sending() else {
        return;
    };
    let now = tx.now;
    cc.restart_if_stale(now);
    if let Some(mut probe) = cc.bwe.poll_probe(now) {
        // No faster than twice what the top layer needs: more would only fill queues.
        probe.bps = probe.bps.min(2 * need);
        cc.pacer.start_probe(&probe);
    }
    cc.pacer.set_estimate(cc.bwe.estimate());
    pad(&mut To { peer, cc: Some(cc) }, outputs, tx);
}

/// Sends the padding a viewer's pacer wants now (a probe cluster in progress; the pacer
/// calls for it only once no media waits). Paused video is probed too: that is how it
/// finds its way back.
fn pad(to: &mut To<'_>, outputs: &mut [Output], tx: &mut Tx<'_>) {
    let now = tx.now;
    let (peer, Some(cc)) = (&mut *to.peer, to.cc.as_mut()) else {
        return;
    };
    // Padding goes on the video's RTX stream (RFC 4588 §4); without one, or without a path,
    // the probe is only the media sent meanwhile.
    let (Some(output), Some((remote, local))) =
        (outputs.iter_mut().find(|o| o.rtx.is_some()), peer.path())
    else {
        cc.pacer.cancel_probe();
        return;
    };
    // Padding is no media: any timestamp does before the video's first (paused from the start).
    let ts = output.last_timestamp().unwrap_or(0);
    while let Some((_, cluster)) = cc.pacer.poll_padding(now) {
        let (Some(cluster), Some(rtx)) = (cluster, output.rtx.as_mut()) else {
            break;
        };
        let (id, seq) = cc.next_seq();
        let twcc = seq.to_be_bytes();
        let header = RtpHeader {
            payload_type: rtx.payload_type,
            sequence_number: rtx.seq,
            timestamp: ts,
            ssrc: rtx.ssrc,
            extensions: &[(id, &twcc)],
            ..RtpHeader::default()
        };
        rtx.seq = rtx.seq.wrapping_add(1);
        tx.net.send_with(remote, local, true, |buf| {
            let len = header.write(&[], PADDING as u8, buf).ok()?;
            let n = peer.protect_rtp(buf, len).ok()?;
            cc.bwe.on_probe_sent(seq, n, cluster, now);
            cc.probes_sent += 1;
            Some(n)
        });
    }
}
