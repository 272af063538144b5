//! WHIP publishers: a live stream is made (or taken over) from an offer, the publisher's
//! packets feed its tracks, viewers' keyframe requests reach it, and its end ends the stream.

use std::time::{Duration, Instant};

use rtc::receive::{Pushed, ReceiveStream};
use rtc::rtcp::{RtcpPacket, RtcpWriter, parse_compound};
use rtc::rtp::{RtpPacket, rtx};

use super::Shard;
use super::media;
use super::media::Tx;
use super::message::{Dest, Message};
use super::session::{OfferContext, Session, Side, answer_offer};
use crate::control::{Created, EngineError, Role};
use crate::recorder::RecordCodec;
use crate::router::{Source, Stream};
use crate::sources::Codec;

/// A publisher silent this long may be replaced by a new one under the same name: that is how
/// a publisher that crashed or lost its network reconnects without waiting for ICE consent
/// (30 s) to expire.
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(2);
/// Keyframe requests to a publisher are aggregated over viewers and sent at most this often.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

impl Shard {
    /// `POST /whip/{name}`.
    pub(super) fn create_publisher(
        &mut self,
        now: Instant,
        name: &str,
        offer: &str,
    ) -> Result<Created, EngineError> {
        let previous = match self.streams.get(name).map(|s| &s.source) {
            Some(Source::File(_)) => return Err(EngineError::FileStream(name.to_owned())),
            Some(Source::Live { publisher, .. }) => Some(*publisher),
            // Publishers are all on shard 0, which has no copies of other shards' streams.
            Some(Source::Mirror { .. }) => return Err(EngineError::StreamBusy(name.to_owned())),
            None => None,
        };
        if let Some(session) = previous.and_then(|key| self.sessions.get(&key))
            && let Some(p) = session.publisher()
        {
            let last = p.last_media.unwrap_or(session.created);
            if p.closed_at.is_none() && now.saturating_duration_since(last) < TAKEOVER_AFTER {
                return Err(EngineError::StreamBusy(name.to_owned()));
            }
        }
        let cx = OfferContext {
            role: Role::Publish,
            stream: name,
            tracks: &[],
            candidates: &self.candidates,
            tcp_candidates: &self.tcp_candidates,
            dtls: &self.dtls,
            congestion_feedback: self.congestion_feedback,
        };
        let (answer, session) = answer_offer(now, offer, &cx, &mut self.rng)?;
        if session.publisher().is_none() {
            return Err(EngineError::Unanswerable("not a publisher's offer".into()));
        }
        let key = self.install_publisher(now, name, session, previous, true);
        let session = self
            .sessions
            .get(&key)
            .ok_or_else(|| EngineError::UnknownStream(name.to_owned()))?;
        Ok(Created {
            session: session.id.clone(),
            answer,
            etag: session.etag.clone(),
        })
    }

    /// Makes `session` (a WHIP publisher's, or a relay's) the source of the live stream
    /// `name`, taking it over from `previous`; `record`: the recorder (if any) gets it.
    /// Returns the session's key.
    pub(super) fn install_publisher(
        &mut self,
        now: Instant,
        name: &str,
        mut session: Session,
        previous: Option<u64>,
        record: bool,
    ) -> u64 {
        let key = self.next_key;
        let stream = self
            .streams
            .entry(name.to_owned())
            .or_insert_with(|| Stream::live(key, &[], now));
        if let Side::Publisher(publisher) = &mut session.side {
            // Inputs feed the stream's track of the same kind (a simulcast layer: of the
            // same rid); a kind or layer it lacks gets a new track.
            for input in &mut publisher.inputs {
                input.track = super::simulcast::track_for(stream, input);
                if let Some(track) = stream.tracks.get(input.track)
                    && track.codec != input.codec
                {
                    tracing::warn!(stream = %name, was = track.codec.name(), now = input.codec.name(), "publisher changed codec; viewers of the old one get nothing");
                }
            }
            // A simulcast publish is recorded once its layers' sizes say which is the top
            // one (`simulcast_tick`); a relay's is not recorded here at all.
            if !record {
                publisher.recorded = Some(vec![None; publisher.inputs.len()]);
            } else if publisher.simulcast.is_none() {
                publisher.recorded = Some((0..publisher.inputs.len()).map(Some).collect());
                if let Some(recorder) = &mut self.recorder {
                    let codecs: Vec<_> = publisher
                        .inputs
                        .iter()
                        .map(|i| record_codec(i.codec))
                        .collect();
                    recorder.start(key, name, &codecs);
                }
            }
        }
        stream.source = Source::Live {
            publisher: key,
            last_keyframe_request: None,
        };
        let added = self.add_session(&mut session);
        debug_assert_eq!(added, key);
        if let Some(old) = previous.filter(|old| *old != key) {
            tracing::info!(stream = %name, "a new publisher takes over the stream");
            self.ended
                .push((old, "taken over by a new publisher".into()));
            if let Some(s) = self.sessions.get_mut(&old) {
                s.peer.close(now);
            }
            self.after_io(now, old);
        }
        self.sessions.insert(key, session);
        self.announce(name);
        key
    }

    /// A plain RTP packet from publisher `key`: recorded for congestion feedback; an RTX
    /// packet (RFC 4588) is unwrapped to its original, which then goes on like any other.
    pub(super) fn on_publisher_rtp(&mut self, now: Instant, key: u64, packet: &[u8]) {
        let Ok(view) = RtpPacket::parse(packet) else {
            return;
        };
        let Some(Side::Publisher(publisher)) = self.sessions.get_mut(&key).map(|s| &mut s.side)
        else {
            return;
        };
        publisher.last_media = Some(now);
        if let Some((id, recorder)) = &mut publisher.twcc
            && let Some(seq) = view.extension(*id).and_then(rtc::rtp::ext::twcc_seq)
        {
            recorder.record(now, seq);
        }
        // A simulcast layer's packets name it (RID, or RRID for its RTX), or their SSRC
        // was learnt from earlier ones that did. Otherwise the RTX payload type says which
        // input a packet repairs (payload types are unique in a BUNDLE); the original's SSRC
        // is that input's current one.
        let pt = view.payload_type();
        let layer = publisher.simulcast.as_mut().and_then(|s| s.classify(&view));
        let repairs = match layer {
            Some((i, true)) => publisher.inputs.get(i),
            Some((_, false)) => None,
            None => publisher
                .inputs
                .iter()
                .find(|i| i.rtx_pt == Some(pt) && i.rid.is_none()),
        };
        let layer = layer.map(|(i, _)| i);
        let Some(input) = repairs else {
            self.on_publisher_media(now, key, view, layer);
            return;
        };
        let Some(ssrc) = input.receive.as_ref().map(ReceiveStream::ssrc) else {
            return; // nothing to repair yet
        };
        let media_pt = input.payload_type;
        let mut buf = std::mem::take(&mut publisher.rtx_unwrapped.0);
        // A padding-only bandwidth probe has no original.
        if rtx::unwrap(&view, ssrc, media_pt, &mut buf)
            && let Ok(original) = RtpPacket::parse(&buf)
        {
            publisher.rtx_unwrapped.1 += 1;
            self.on_publisher_media(now, key, original, layer);
        }
        if let Some(Side::Publisher(publisher)) = self.sessions.get_mut(&key).map(|s| &mut s.side) {
            publisher.rtx_unwrapped.0 = buf;
        }
    }

    /// A publisher's media packet (an RTX one unwrapped): put through its receive stream
    /// (loss detection, NACK), forwarded to viewers at once, and — in order — to the
    /// recorder. `layer`: the input of the simulcast layer it was found to carry.
    fn on_publisher_media(
        &mut self,
        now: Instant,
        key: u64,
        view: RtpPacket<'_>,
        layer: Option<usize>,
    ) {
        let packet = view.bytes();
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let Side::Publisher(publisher) = &mut session.side else {
            return;
        };
        let relay = publisher.relay;
        let mid = publisher.mid_extension.and_then(|id| view.extension(id));
        let input = match layer {
            Some(i) => {
                let mut input = publisher.inputs.get_mut(i);
                // Its SSRC now (the one keyframe requests name).
                if let Some(input) = &mut input
                    && input.ssrcs != [view.ssrc()]
                {
                    input.ssrcs.clear();
                    input.ssrcs.push(view.ssrc());
                }
                input
            }
            None => publisher.input_for(now, view.ssrc(), view.payload_type(), mid),
        };
        let Some(input) = input else {
            self.unknown_ssrc += 1;
            return;
        };
        if view.payload_type() != input.payload_type {
            self.unknown_ssrc += 1;
            return;
        }
        // One receive stream per input, for the SSRC it carries now (a new one restarts it).
        if input
            .receive
            .as_ref()
            .is_none_or(|r| r.ssrc() != view.ssrc())
        {
            input.receive = Some(ReceiveStream::new(input.receive_config(view.ssrc())));
        }
        let Some(receive) = input.receive.as_mut() else {
            return;
        };
        if receive.push(now, view.sequence_number(), view.timestamp(), packet) != Pushed::Accepted {
            // Duplicates, packets too late or too large, a restart's first packet: counted
            // by the stream, not forwarded.
            return;
        }
        input.last_packet = Some(now);
        self.relay_packets += u64::from(relay);
        // Any packet of a frame may show it is a keyframe: its first may come late
        // (reordering) or be an AUD or SEI; `forward_live` marks the frame from there.
        let shows_keyframe = match input.codec {
            Codec::Vp8 => ::media::vp8::payload_starts_keyframe(view.payload()),
            Codec::H264 => shows_h264_keyframe(view.payload()),
            Codec::Opus => false,
        };
        if shows_keyframe {
            tracing::debug!(
                key,
                ssrc = view.ssrc(),
                seq = view.sequence_number(),
                "keyframe from publisher"
            );
        }
        let track = input.track;
        let name = session.stream.clone();
        if let Some(stream) = self.streams.get_mut(&name)
            && matches!(stream.source, Source::Live { publisher, .. } if publisher == key)
        {
            media::forward_live(stream, track, packet, shows_keyframe, now);
            self.share_media(&name, track, packet, shows_keyframe, now);
        }
        self.drain_publisher(now, key);
    }

    /// What a publisher's receive streams have ready: packets in order for the recorder,
    /// NACKs and keyframe requests for the publisher, congestion feedback when due.
    pub(super) fn drain_publisher(&mut self, now: Instant, key: u64) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let Side::Publisher(publisher) = &mut session.side else {
            return;
        };
        let mut nacks = std::mem::take(&mut self.nacks);
        let mut keyframe = false;
        self.out.clear();
        let mut writer = RtcpWriter::new(&mut self.out);
        let mut ok = writer.rr(session.rtcp_ssrc, &[]).is_ok();
        let before = writer.len();
        for (i, input) in publisher.inputs.iter_mut().enumerate() {
            let Some(receive) = input.receive.as_mut() else {
                continue;
            };
            let recorded = publisher.recorded.as_ref().and_then(|r| *r.get(i)?);
            while let Some(packet) = receive.poll_packet(now) {
                if let (Some(recorder), Some(r)) = (&mut self.recorder, recorded) {
                    recorder.packet(key, r, now, packet);
                }
            }
            nacks.clear();
            if receive.poll_nacks(now, &mut nacks) > 0 {
                session.nacks += nacks.len() as u64;
                ok &= writer
                    .nack(session.rtcp_ssrc, receive.ssrc(), &nacks)
                    .is_ok();
            }
            keyframe |= receive.poll_keyframe_request(now);
        }
        if let Some((_, twcc)) = &mut publisher.twcc {
            let media_ssrc = publisher
                .inputs
                .iter()
                .find_map(|i| i.receive.as_ref().map(ReceiveStream::ssrc))
                .unwrap_or(0);
            while ok && writer.len() < 1000 {
                match twcc.poll_feedback(now, session.rtcp_ssrc, media_ssrc, &mut writer) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => ok = false,
                }
            }
        }
        if ok && writer.len() > before {
            media::send_rtcp(
                &mut session.peer,
                &mut Tx {
                    now,
                    out: &mut self.out,
                    net: &mut self.net,
                },
            );
        }
        self.nacks = nacks;
        if keyframe {
            let name = session.stream.clone();
            self.request_keyframe(now, &name);
        }
    }

    /// Receiver reports for each of a publisher's streams (RFC 3550 §6.4.2), about once a
    /// second: loss, jitter and the LSR/DLSR that let it measure the round trip.
    pub(super) fn publisher_report(&mut self, key: u64, now: Instant) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let blocks = session.report_blocks(now);
        self.out.clear();
        if RtcpWriter::new(&mut self.out)
            .rr(session.rtcp_ssrc, &blocks)
            .is_ok()
        {
            media::send_rtcp(
                &mut session.peer,
                &mut Tx {
                    now,
                    out: &mut self.out,
                    net: &mut self.net,
                },
            );
        }
    }

    /// A publisher's RTCP: its Sender Reports feed our receiver reports' LSR/DLSR, and the
    /// NTP ↔ RTP mapping our Sender Reports to its viewers carry on (lip sync).
    pub(super) fn on_publisher_rtcp(&mut self, now: Instant, key: u64, rtcp: &[u8]) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let mut stream = self
            .streams
            .get_mut(&session.stream)
            .filter(|s| matches!(s.source, Source::Live { publisher, .. } if publisher == key));
        let mut reports = Vec::new();
        for packet in parse_compound(rtcp).flatten() {
            if let RtcpPacket::Sr(sr) = packet {
                let info = sr.info();
                let Side::Publisher(publisher) = &mut session.side else {
                    continue;
                };
                for input in &mut publisher.inputs {
                    let Some(receive) = input.receive.as_mut().filter(|r| r.ssrc() == sr.ssrc())
                    else {
                        continue;
                    };
                    receive.on_sender_report(now, &info);
                    if let Some(stream) = stream.as_deref_mut() {
                        let our_ntp = media::ntp_now();
                        stream.on_sender_report(
                            input.track,
                            sr.ssrc(),
                            info.ntp_time,
                            info.rtp_time,
                            our_ntp,
                        );
                        reports.push(Message::SenderReport {
                            stream: session.stream.clone(),
                            track: input.track,
                            ssrc: sr.ssrc(),
                            ntp: info.ntp_time,
                            rtp: info.rtp_time,
                            our_ntp,
                        });
                    }
                }
            }
        }
        for report in reports {
            self.tell(Dest::Others, report);
        }
    }

    /// Asks the publisher of `name` for a keyframe (RFC 4585 §6.3.1 PLI on each video SSRC),
    /// at most every [`KEYFRAME_REQUEST_INTERVAL`].
    pub(super) fn request_keyframe(&mut self, now: Instant, name: &str) {
        // Another shard's stream: passed on to the shard with its publisher, which
        // aggregates the requests of every shard's viewers.
        if let Some(Stream {
            source: Source::Mirror {
                last_keyframe_request,
            },
            ..
        }) = self.streams.get_mut(name)
        {
            if last_keyframe_request
                .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_REQUEST_INTERVAL)
            {
                *last_keyframe_request = Some(now);
                let stream = name.to_owned();
                self.tell(Dest::Shard(0), Message::KeyframeRequest { stream });
            }
            return;
        }
        let Some(Stream {
            source:
                Source::Live {
                    publisher,
                    last_keyframe_request,
                },
            ..
        }) = self.streams.get_mut(name)
        else {
            return;
        };
        if last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return;
        }
        *last_keyframe_request = Some(now);
        let Some(session) = self.sessions.get_mut(publisher) else {
            return;
        };
        let Some(p) = session.publisher() else {
            return;
        };
        let ssrcs: Vec<u32> = p
            .inputs
            .iter()
            .filter(|i| i.codec.is_video())
            .flat_map(|i| i.ssrcs.iter().copied())
            .collect();
        if ssrcs.is_empty() {
            return;
        }
        self.out.clear();
        let mut writer = RtcpWriter::new(&mut self.out);
        let mut ok = writer.rr(1, &[]).is_ok();
        for ssrc in ssrcs {
            ok &= writer.pli(1, ssrc).is_ok();
        }
        if ok {
            session.keyframe_requests += 1;
            media::send_rtcp(
                &mut session.peer,
                &mut Tx {
                    now,
                    out: &mut self.out,
                    net: &mut self.net,
                },
            );
        }
    }

    /// The publisher of `name` is gone: viewers get RTCP BYE and are closed, the stream ends.
    pub(super) fn end_stream(&mut self, now: Instant, name: &str) {
        let Some(stream) = self.streams.remove(name) else {
            return;
        };
        if matches!(stream.source, Source::Live { .. }) {
            let stream = name.to_owned();
            self.tell(Dest::Others, Message::Ended { stream });
        }
        tracing::info!(stream = %name, viewers = stream.viewers.len(), shard = self.id, "live stream ended");
        for key in stream.viewers {
            self.close_with_bye(now, key, "the stream ended", b"stream ended");
        }
    }
}

/// Whether an H.264 RTP payload shows its frame is a keyframe: an SPS or IDR slice, whole,
/// aggregated, or any fragment of one (RFC 6184 §5.8) — not only the first.
fn shows_h264_keyframe(payload: &[u8]) -> bool {
    const FU_A: u8 = 28;
    const IDR: u8 = 5;
    match payload {
        [h, fu, ..] if h & 0x1f == FU_A => fu & 0x1f == IDR,
        _ => ::media::h264::payload_starts_keyframe(payload),
    }
}

#[cfg(test)]
pub(super) fn tests_shows_h264_keyframe(payload: &[u8]) -> bool {
    shows_h264_keyframe(payload)
}

pub(super) fn record_codec(codec: Codec) -> RecordCodec {
    match codec {
        Codec::Vp8 => RecordCodec::Vp8,
        Codec::H264 => RecordCodec::H264,
        Codec::Opus => RecordCodec::Opus,
    }
}

/// Whether a session is the current publisher of its stream.
pub(super) fn is_current_publisher(
    streams: &std::collections::BTreeMap<String, Stream>,
    key: u64,
    session: &Session,
) -> bool {
    matches!(streams.get(&session.stream).map(|s| &s.source), Some(Source::Live { publisher, .. }) if *publisher == key)
}
