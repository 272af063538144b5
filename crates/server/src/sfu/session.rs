//! A WHIP or WHEP session: its peer connection and what it sends or receives. Created from
//! an SDP offer by [`answer_offer`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::dtls::{DtlsConfig, Fingerprint};
use rtc::ice::Credentials;
use rtc::peer::{Peer, PeerSetup};
use rtc::rand::Rng;
use rtc::receive::{ReceiveConfig, ReceiveStream, TwccRecorder};
use rtc::rtcp::ReportBlock;
use rtc::sdp::{
    self, AnswerConfig, Direction, DtlsRole, HeaderExtension, MediaKind, Negotiated, RtcpFeedback,
    SessionDescription,
};

use super::simulcast::Ingest;
use crate::control::{EngineError, Role};
use crate::router::congestion::ViewerCc;
use crate::router::output::{LayerChoice, Output};
use crate::router::resend::ResendBudget;
use crate::sources::Codec;
use rtc::rtp::rtx::RtxSender;

/// One session: what publishers and viewers share, and what only one of them has.
#[derive(Debug)]
pub struct Session {
    /// Its id, the last segment of its `Location`.
    pub id: String,
    /// The stream it belongs to.
    pub stream: String,
    /// The transport.
    pub peer: Peer,
    /// Publisher or viewer, with what only that side has.
    pub side: Side,
    /// Strong ETag of the ICE session (RFC 9725 §4.3).
    pub etag: String,
    /// When the offer came.
    pub created: Instant,
    /// The peer's address once ICE validated it.
    pub remote: Option<SocketAddr>,
    /// When `peer` wants `handle_timeout`.
    pub timeout: Option<Instant>,
    /// Next Sender (viewer) or Receiver (publisher) Report.
    pub next_report: Option<Instant>,
    /// Last time a PLI/FIR was acted on, to rate-limit keyframe replays.
    pub last_keyframe_request: Option<Instant>,
    /// NACKed packets (received from a viewer, or sent to a publisher).
    pub nacks: u64,
    /// PLI/FIR received (viewer) or sent (publisher).
    pub keyframe_requests: u64,
    /// The SSRC our own RTCP (receiver reports, NACK, PLI, feedback) is sent from.
    pub rtcp_ssrc: u32,
    /// How long after the offer ICE selected a pair and DTLS finished, for the logs.
    pub ice_time: Option<Duration>,
    /// DTLS finished (media may flow) this long after the offer.
    pub dtls_time: Option<Duration>,
    /// Fraction of packets lost in the last report interval, out of 256: what a viewer's
    /// receiver report said, or the worst of our own reports to a publisher.
    pub fraction_lost: u8,
}

/// What only one side of a session has: no `role ==` branches over fields that the other
/// side leaves empty.
#[derive(Debug)]
pub enum Side {
    /// WHIP: it sends us media.
    Publisher(Publisher),
    /// WHEP: we send it media.
    Viewer(Viewer),
}

/// A publisher's receive side.
#[derive(Debug)]
pub struct Publisher {
    /// What it sends, one entry per accepted m-line.
    pub inputs: Vec<Input>,
    /// Its `a=extmap` id for sdes:mid, to map new SSRCs to m-lines.
    pub mid_extension: Option<u8>,
    /// When media last arrived (a silent publisher may be taken over).
    pub last_media: Option<Instant>,
    /// The buffer an RTX packet is unwrapped into, and how many were.
    pub rtx_unwrapped: (Vec<u8>, u64),
    /// When it closed without DELETE; its stream waits a grace period for it.
    pub closed_at: Option<Instant>,
    /// Transport-wide CC feedback (the negotiated extension id and the arrival recorder),
    /// so the publisher's encoder can raise its bitrate.
    pub twcc: Option<(u8, TwccRecorder)>,
    /// Simulcast (RFC 8853): which input each layer's SSRCs feed, learnt from RID/RRID.
    pub simulcast: Option<Box<Ingest>>,
    /// The recorder's input number of each input (`None`: not recorded); `None` until the
    /// recording starts (a simulcast publish waits for its layers' sizes to pick the top).
    pub recorded: Option<Vec<Option<usize>>>,
    /// A relay's session (issue 11): our WHEP session toward another node, not a WHIP
    /// publisher.
    pub relay: bool,
}

/// A viewer's send side.
#[derive(Debug)]
pub struct Viewer {
    /// What it receives, one entry per track.
    pub outputs: Vec<Output>,
    /// How much its NACKs may make us resend, and what they did.
    pub resends: ResendBudget,
    /// The last round-trip time its receiver reports gave.
    pub rtt: Option<Duration>,
    /// Its transport-wide numbering and bandwidth estimate, when it negotiated the
    /// transport-wide-cc extension.
    pub cc: Option<Box<ViewerCc>>,
}

/// One m-line of a publisher.
#[derive(Debug)]
pub struct Input {
    /// `a=mid`.
    pub mid: String,
    /// The codec negotiated for it.
    pub codec: Codec,
    /// Its payload type.
    pub payload_type: u8,
    /// Whether generic NACK (`a=rtcp-fb:* nack`) was negotiated for its codec.
    pub nack: bool,
    /// The payload type of its RTX stream (RFC 4588), if negotiated.
    pub rtx_pt: Option<u8>,
    /// SSRCs seen on it (from `a=ssrc`, the mid extension or the payload type).
    pub ssrcs: Vec<u32>,
    /// Index of the stream track it feeds.
    pub track: usize,
    /// Reordering, NACKs, receiver reports for the SSRC it carries (made at its first packet).
    pub receive: Option<ReceiveStream>,
    /// When its current SSRC last delivered a packet.
    pub last_packet: Option<Instant>,
    /// The simulcast layer it carries (its rid), if the m-line is simulcast: each layer is
    /// an input of its own, with its own receive stream, feeding a track of its own.
    pub rid: Option<String>,
}

impl Input {
    /// How its SSRC `ssrc` is received: NACKs only where they were negotiated (RFC 4585
    /// §4.2), keyframe requests only for video — audio loss must not cost every viewer a
    /// keyframe.
    pub fn receive_config(&self, ssrc: u32) -> ReceiveConfig {
        ReceiveConfig {
            nack: self.nack,
            keyframe_requests: self.codec.is_video(),
            ..ReceiveConfig::new(ssrc, self.codec.clock_rate())
        }
    }
}

/// An input switches to a new SSRC only after its current one was silent this long.
const SSRC_QUIET: Duration = Duration::from_secs(2);

/// A track a viewer can be offered: its codec and index in the stream.
#[derive(Debug, Clone, Copy)]
pub struct OfferedTrack {
    /// Index of the track in its stream.
    pub index: usize,
    /// Its codec.
    pub codec: Codec,
    /// Simulcast: the group of layers it is one of (viewers get one layer of a group).
    pub group: Option<usize>,
}

fn sdp_codec(codec: Codec) -> sdp::Codec {
    match codec {
        Codec::Vp8 => sdp::Codec::Vp8,
        Codec::H264 => sdp::Codec::H264(sdp::H264Profile::ConstrainedBaseline),
        Codec::Opus => sdp::Codec::Opus,
    }
}

fn our_codec(codec: sdp::Codec) -> Option<Codec> {
    match codec {
        sdp::Codec::Vp8 => Some(Codec::Vp8),
        sdp::Codec::H264(_) => Some(Codec::H264),
        sdp::Codec::Opus => Some(Codec::Opus),
    }
}

/// What an offer is answered with and for.
#[derive(Debug)]
pub struct OfferContext<'a> {
    /// WHIP or WHEP.
    pub role: Role,
    /// The stream's name.
    pub stream: &'a str,
    /// Viewer: the stream's tracks.
    pub tracks: &'a [OfferedTrack],
    /// Our candidates.
    pub candidates: &'a [SocketAddr],
    /// Our passive ICE-TCP candidates.
    pub tcp_candidates: &'a [SocketAddr],
    /// Our DTLS certificate and settings.
    pub dtls: &'a Arc<DtlsConfig>,
    /// Publisher: whether to send transport-wide congestion-control feedback.
    pub congestion_feedback: bool,
}

/// Answers a WHIP or WHEP offer: returns the answer text and a session ready to receive
/// the peer's ICE checks. A publisher's inputs have `track` unset (0); the engine maps them.
pub fn answer_offer(
    now: Instant,
    offer: &str,
    cx: &OfferContext<'_>,
    rng: &mut Rng,
) -> Result<(String, Session), EngineError> {
    let offer =
        SessionDescription::parse(offer).map_err(|e| EngineError::BadOffer(e.to_string()))?;
    let credentials = Credentials::random(rng);
    let fingerprint = cx.dtls.certificate().fingerprint().0;
    let direction = if cx.role == Role::Play {
        Direction::SendOnly
    } else {
        Direction::RecvOnly
    };
    let mut config = AnswerConfig::new(
        &credentials.ufrag,
        &credentials.pwd,
        fingerprint,
        cx.candidates.to_vec(),
        direction,
    );
    config.tcp_candidates = cx.tcp_candidates.to_vec();
    if cx.role == Role::Play {
        config.codecs = cx.tracks.iter().map(|t| sdp_codec(t.codec)).collect();
        // The source's header extensions are stripped; we add our own transport-wide
        // sequence numbers, which the viewer's transport-cc feedback reports on (without the
        // extension the answer drops that feedback too).
        config.extensions = vec![HeaderExtension::TransportWideCc];
    } else {
        // sdes:mid maps SSRCs to m-lines; transport-cc and abs-send-time feed congestion
        // control feedback; the rid and repaired-rid extensions name simulcast layers
        // (RFC 8852 §3), without which the answer takes no simulcast.
        config.extensions = vec![
            HeaderExtension::SdesMid,
            HeaderExtension::TransportWideCc,
            HeaderExtension::AbsSendTime,
            HeaderExtension::RtpStreamId,
            HeaderExtension::RepairedRtpStreamId,
        ];
    }
    // We send transport-cc feedback, never REMB, so goog-remb is not answered.
    config.feedback.retain(|f| *f != RtcpFeedback::Remb);
    config.stream_id = msid_id(cx.stream);
    // RTX (RFC 4588) where the peer offers it: our retransmissions to a viewer get their own
    // SSRC and numbers, a publisher's are unwrapped to the originals. Peers that do not offer
    // it get and send plain copies on the media SSRC.
    config.rtx = true;
    let (answer, negotiated) =
        sdp::answer(&offer, &config, rng).map_err(|e| EngineError::Unanswerable(e.to_string()))?;
    let side = match cx.role {
        Role::Play => {
            let cc = negotiated
                .media
                .iter()
                .find_map(|m| m.extension_id(HeaderExtension::TransportWideCc))
                .map(|id| Box::new(ViewerCc::new(id)));
            Side::Viewer(Viewer {
                outputs: outputs(&negotiated, cx.tracks, cc.is_some(), rng),
                resends: ResendBudget::new(now),
                rtt: None,
                cc,
            })
        }
        Role::Publish => Side::Publisher(publisher_side(&negotiated, cx.congestion_feedback)),
    };
    let empty = match &side {
        Side::Viewer(v) => v.outputs.is_empty(),
        Side::Publisher(p) => p.inputs.is_empty(),
    };
    if empty {
        return Err(EngineError::Unanswerable(
            "no m-line carries media we can use".into(),
        ));
    }
    let setup = peer_setup(&negotiated)?;
    let remote = Credentials {
        ufrag: negotiated.remote_ice_ufrag.clone(),
        pwd: negotiated.remote_ice_pwd.clone(),
    };
    let peer = Peer::new_lite(
        now,
        Arc::clone(cx.dtls),
        credentials,
        &remote,
        &setup,
        Rng::system(),
    );
    Ok((
        answer.to_string(),
        new_session(now, cx.stream, peer, side, rng),
    ))
}

/// A relay's session (issue 11): our offer to the origin was answered with `negotiated`;
/// `peer` is the client side toward it. It receives like a WHIP publisher.
pub fn relay_session(
    now: Instant,
    stream: &str,
    peer: Peer,
    negotiated: &Negotiated,
    congestion_feedback: bool,
    rng: &mut Rng,
) -> Result<Session, EngineError> {
    let mut publisher = publisher_side(negotiated, congestion_feedback);
    publisher.relay = true;
    if publisher.inputs.is_empty() {
        return Err(EngineError::Unanswerable(
            "the origin sends nothing we can use".into(),
        ));
    }
    Ok(new_session(
        now,
        stream,
        peer,
        Side::Publisher(publisher),
        rng,
    ))
}

fn publisher_side(negotiated: &Negotiated, congestion_feedback: bool) -> Publisher {
    let inputs = inputs(negotiated);
    Publisher {
        simulcast: Ingest::new(negotiated, &inputs).map(Box::new),
        inputs,
        mid_extension: negotiated
            .media
            .iter()
            .find_map(|m| m.extension_id(HeaderExtension::SdesMid)),
        last_media: None,
        rtx_unwrapped: (Vec::new(), 0),
        closed_at: None,
        twcc: negotiated
            .media
            .iter()
            .find_map(|m| m.extension_id(HeaderExtension::TransportWideCc))
            .filter(|_| congestion_feedback)
            .map(|id| (id, TwccRecorder::new())),
        relay: false,
        recorded: None,
    }
}

fn new_session(now: Instant, stream: &str, peer: Peer, side: Side, rng: &mut Rng) -> Session {
    Session {
        id: hex(&rng.bytes::<12>()),
        stream: stream.to_owned(),
        peer,
        side,
        etag: format!("\"{}\"", hex(&rng.bytes::<8>())),
        created: now,
        remote: None,
        timeout: None,
        next_report: None,
        last_keyframe_request: None,
        nacks: 0,
        keyframe_requests: 0,
        rtcp_ssrc: rng.u32(),
        ice_time: None,
        dtls_time: None,
        fraction_lost: 0,
    }
}

/// One output per accepted m-line we can feed, with the viewer's payload type and the SSRC
/// our answer announced. A simulcast output chooses among its layers; with an `estimated`
/// viewer (transport-wide CC) a single-layer video output may be paused by the estimate.
fn outputs(
    negotiated: &Negotiated,
    tracks: &[OfferedTrack],
    estimated: bool,
    rng: &mut Rng,
) -> Vec<Output> {
    let mut outputs = Vec::new();
    for media in &negotiated.media {
        if !matches!(media.direction, Direction::SendOnly | Direction::SendRecv) {
            continue;
        }
        let video = media.kind == MediaKind::Video;
        let found = tracks.iter().find_map(|t| {
            let pt = media.payload_type(sdp_codec(t.codec))?;
            (t.codec.is_video() == video).then_some((t, pt))
        });
        if let (Some((track, pt)), Some(ssrc)) = (found, media.local_ssrc) {
            let (seq, offset) = (rng.u32() as u16, rng.u32());
            let mut output = Output::new(
                track.index,
                pt,
                ssrc,
                seq,
                offset,
                video,
                track.codec == Codec::Vp8,
            );
            output.layers = match track.group {
                Some(group) => Some(LayerChoice::new(group)),
                None => (video && estimated).then(LayerChoice::single),
            };
            let rtx_pt = media
                .codecs
                .iter()
                .find(|c| c.pt == pt)
                .and_then(|c| c.rtx_pt);
            if let (Some(ssrc), Some(payload_type)) = (media.local_rtx_ssrc, rtx_pt) {
                output.rtx = Some(RtxSender {
                    ssrc,
                    payload_type,
                    seq: rng.u32() as u16,
                });
            }
            outputs.push(output);
        }
    }
    outputs
}

/// One input per accepted m-line the publisher sends on, or per simulcast layer of one.
fn inputs(negotiated: &Negotiated) -> Vec<Input> {
    let receiving = negotiated
        .media
        .iter()
        .filter(|m| matches!(m.direction, Direction::RecvOnly | Direction::SendRecv));
    let mut inputs = Vec::new();
    for m in receiving {
        let Some(chosen) = m.codecs.first() else {
            continue;
        };
        let Some(codec) = our_codec(chosen.codec) else {
            continue;
        };
        let input = |rid: Option<&str>| Input {
            mid: m.mid.clone(),
            codec,
            payload_type: chosen.pt,
            nack: chosen.feedback.contains(&RtcpFeedback::Nack),
            rtx_pt: chosen.rtx_pt,
            // A layer's SSRCs are learnt from its packets' RID (RFC 8853 §5.2).
            ssrcs: match rid {
                Some(_) => Vec::new(),
                None => m.remote_ssrcs.iter().map(|s| s.ssrc).collect(),
            },
            track: 0,
            receive: None,
            last_packet: None,
            rid: rid.map(str::to_owned),
        };
        if m.simulcast.is_empty() {
            inputs.push(input(None));
        } else {
            inputs.extend(m.simulcast.iter().map(|l| input(Some(&l.rid))));
        }
    }
    inputs
}

pub fn peer_setup(negotiated: &Negotiated) -> Result<PeerSetup, EngineError> {
    let fingerprint = negotiated
        .remote_fingerprints
        .iter()
        .find(|f| f.algorithm.eq_ignore_ascii_case("sha-256"))
        .and_then(|f| <[u8; 32]>::try_from(f.bytes.as_slice()).ok())
        .ok_or_else(|| EngineError::Unanswerable("the SDP has no sha-256 a=fingerprint".into()))?;
    Ok(PeerSetup {
        remote_fingerprint: Fingerprint(fingerprint),
        dtls_client: negotiated.dtls_role == DtlsRole::Client,
    })
}

impl Session {
    /// Publish or play.
    pub fn role(&self) -> Role {
        match self.side {
            Side::Publisher(_) => Role::Publish,
            Side::Viewer(_) => Role::Play,
        }
    }

    /// Its publisher side, if it is one.
    pub fn publisher(&self) -> Option<&Publisher> {
        match &self.side {
            Side::Publisher(p) => Some(p),
            Side::Viewer(_) => None,
        }
    }

    /// A viewer's transport, outputs and congestion control, what sending to it needs
    /// (`None` for a publisher).
    pub fn sending(&mut self) -> Option<(&mut Peer, &mut Vec<Output>, Option<&mut ViewerCc>)> {
        match &mut self.side {
            Side::Viewer(v) => Some((&mut self.peer, &mut v.outputs, v.cc.as_deref_mut())),
            Side::Publisher(_) => None,
        }
    }

    /// When its pacer wants to send next, if packets wait in it or a probe is under way.
    pub fn pacer_timeout(&self, now: Instant) -> Option<Instant> {
        let pacer = &self.viewer()?.cc.as_ref()?.pacer;
        if pacer.queue_len() == 0 && pacer.probing().is_none() {
            return None;
        }
        pacer.poll_timeout(now)
    }

    /// Its viewer side, if it is one.
    pub fn viewer(&self) -> Option<&Viewer> {
        match &self.side {
            Side::Viewer(v) => Some(v),
            Side::Publisher(_) => None,
        }
    }

    /// A publisher's report blocks, one per receive stream, for our next receiver report
    /// (RFC 3550 §6.4.2); the worst fraction lost among them is the session's.
    pub fn report_blocks(&mut self, now: Instant) -> Vec<ReportBlock> {
        let Side::Publisher(p) = &mut self.side else {
            return Vec::new();
        };
        let blocks: Vec<ReportBlock> = p
            .inputs
            .iter_mut()
            .filter_map(|i| i.receive.as_mut())
            .map(|r| r.report_block(now))
            .collect();
        self.fraction_lost = blocks.iter().map(|b| b.fraction_lost).max().unwrap_or(0);
        blocks
    }

    /// A publisher's sequence numbers never received (given up on after NACKs) over the
    /// session, of all its receive streams now (0 for a viewer).
    pub fn lost_packets(&self) -> u64 {
        self.publisher().map_or(0, |p| {
            p.inputs
                .iter()
                .filter_map(|i| i.receive.as_ref())
                .map(|r| r.counters().lost)
                .sum()
        })
    }
}

impl Publisher {
    /// The input a publisher's packet belongs to: by an SSRC it announced or we learned,
    /// else by its mid header extension (RFC 8843 §9.2), else — only for an input that has
    /// no SSRC yet — by payload type. A new SSRC is adopted only while the input's current
    /// one is quiet: a stray must not take viewers off the real stream. Anything unmatched is
    /// dropped and counted by the caller.
    pub fn input_for(
        &mut self,
        now: Instant,
        ssrc: u32,
        payload_type: u8,
        mid: Option<&[u8]>,
    ) -> Option<&mut Input> {
        let known = self.inputs.iter().position(|i| i.ssrcs.contains(&ssrc));
        let index = known.or_else(|| {
            // A simulcast layer's SSRC is learnt from its RID only ([`Ingest`]).
            let by_mid = mid.and_then(|mid| {
                self.inputs
                    .iter()
                    .position(|i| i.mid.as_bytes() == mid && i.rid.is_none())
            });
            let found = by_mid.or_else(|| {
                self.inputs.iter().position(|i| {
                    i.payload_type == payload_type && i.ssrcs.is_empty() && i.rid.is_none()
                })
            })?;
            let input = self.inputs.get_mut(found)?;
            if input
                .last_packet
                .is_some_and(|t| now.saturating_duration_since(t) < SSRC_QUIET)
            {
                return None;
            }
            // Bounded: a publisher cannot make us remember SSRCs without limit.
            if input.ssrcs.len() < 8 {
                input.ssrcs.push(ssrc);
            }
            Some(found)
        })?;
        self.inputs.get_mut(index)
    }
}

/// The stream name as an `a=msid` stream id, which must be 1 to 64 token characters
/// (RFC 8830 §2, token-char of RFC 4566 §9): a name from a URL may hold spaces or any other
/// character (browsers reject the whole answer over one), and our track id adds `-{mid}` to
/// it, so other characters become `-` and the id keeps at most 56 of them.
fn msid_id(stream: &str) -> String {
    let token = |c: char| {
        c.is_ascii_graphic() && !matches!(c, '"' | '(' | ')' | ',' | '/' | ':'..='@' | '['..=']')
    };
    let id: String = stream
        .chars()
        .map(|c| if token(c) { c } else { '-' })
        .take(56)
        .collect();
    if id.is_empty() {
        "leanrtc".to_owned()
    } else {
        id
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rtc::dtls::{DtlsCertificate, DtlsConfig};
    use rtc::rand::Rng;
    use rtc::receive::{ReceiveConfig, ReceiveStream};

    use super::{Input, OfferContext, answer_offer, msid_id};
    use crate::control::Role;
    use crate::sources::Codec;

    #[test]
    fn a_publishers_loss_comes_from_our_receive_streams() {
        let now = Instant::now();
        let mut rng = Rng::system();
        let dtls = Arc::new(DtlsConfig::new(
            DtlsCertificate::generate(&mut rng).unwrap(),
            &mut rng,
        ));
        let cx = OfferContext {
            role: Role::Publish,
            stream: "s",
            tracks: &[],
            candidates: &[],
            tcp_candidates: &[],
            dtls: &dtls,
            congestion_feedback: true,
        };
        let offer = include_str!("../../../rtc/tests/fixtures/sdp/chromium-whip-vp8.sdp");
        let (_, mut session) = answer_offer(now, offer, &cx, &mut rng).unwrap();
        let super::Side::Publisher(p) = &mut session.side else {
            panic!("a publisher");
        };
        let input = p.inputs.first_mut().unwrap();
        let mut receive = ReceiveStream::new(ReceiveConfig::new(9, 90_000));
        // 100 packets of which 14 never come (not even after NACKs).
        for seq in (0..100u16).filter(|s| s % 7 != 3) {
            receive.push(now, seq, u32::from(seq) * 3000, &[0x80; 20]);
        }
        let later = now + Duration::from_secs(3);
        while receive.poll_packet(later).is_some() {}
        input.receive = Some(receive);
        let blocks = session.report_blocks(later);
        assert_eq!(blocks.len(), 1);
        // 14 of 100: 35 of 256.
        assert_eq!(session.fraction_lost, 35, "{blocks:?}");
        assert_eq!(session.lost_packets(), 14);
    }

    fn input(codec: Codec, nack: bool) -> Input {
        Input {
            mid: "0".into(),
            codec,
            payload_type: 111,
            nack,
            rtx_pt: None,
            ssrcs: vec![7],
            track: 0,
            receive: None,
            last_packet: None,
            rid: None,
        }
    }

    /// Every 50th packet lost for 10 s; returns (keyframe requests, NACKed numbers).
    fn lossy(input: &Input) -> (usize, usize) {
        let mut s = ReceiveStream::new(input.receive_config(7));
        let (t0, mut plis, mut nacks) = (Instant::now(), 0, Vec::new());
        for seq in 0..500u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(seq));
            if seq % 50 != 25 {
                s.push(now, seq, u32::from(seq) * 960, &[0x80; 20]);
            }
            while s.poll_packet(now).is_some() {}
            s.poll_nacks(now, &mut nacks);
            plis += usize::from(s.poll_keyframe_request(now));
        }
        (plis, nacks.len())
    }

    #[test]
    fn audio_loss_asks_for_no_keyframe_and_nacks_only_where_negotiated() {
        assert_eq!(lossy(&input(Codec::Opus, false)), (0, 0), "Opus, no nack");
        let (plis, nacks) = lossy(&input(Codec::Opus, true));
        assert_eq!((plis, nacks > 0), (0, true), "Opus with nack");
        let (plis, nacks) = lossy(&input(Codec::Vp8, true));
        assert!(plis > 0 && nacks > 0, "VP8: {plis} PLIs, {nacks} NACKs");
    }

    #[test]
    fn msid_ids_are_tokens_of_at_most_56_characters() {
        assert_eq!(msid_id("camera"), "camera");
        assert_eq!(msid_id("my cam"), "my-cam");
        assert_eq!(msid_id("a:b@c[d]é\"x\""), "a-b-c-d---x-");
        assert_eq!(msid_id("~^_`{|}!#$%&'*+-."), "~^_`{|}!#$%&'*+-.");
        assert_eq!(msid_id(&"x".repeat(100)).len(), 56);
        assert_eq!(msid_id(""), "leanrtc");
    }
}
