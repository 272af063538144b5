//! The offerer for our client role (load generator, server-to-server relay): a sendonly or
//! recvonly offer with `a=setup:actpass` (RFC 8829 §5.2.1), and the check of the answer.

use std::net::SocketAddr;

use super::attributes::{Direction, Group, Setup};
use super::codec::{Codec, HeaderExtension, MediaKind, RtcpFeedback};
use super::description::{Attribute, Line, MediaDescription, SessionDescription};
use super::h264::{H264Profile, ProfileLevelId, h264_answer_ok};
use super::negotiated::{
    DtlsRole, Negotiated, NegotiatedCodec, NegotiatedMedia, NegotiationError, RejectReason,
    Rejected, direction_of, remote_ssrcs, remote_transport,
};
use super::rtp_attributes::{ExtMap, Fmtp, RtpMap};
use super::write::{
    PROTO, default_address, push_candidates, push_sources, push_transport, session_lines,
};
use crate::rand::Rng;

/// What we put in an offer.
#[derive(Debug, Clone)]
pub struct OfferConfig {
    /// Our ICE username fragment.
    pub ice_ufrag: String,
    /// Our ICE password.
    pub ice_pwd: String,
    /// SHA-256 of our DTLS certificate.
    pub fingerprint: [u8; 32],
    /// Our UDP host candidates (all of them: we do not trickle).
    pub candidates: Vec<SocketAddr>,
    /// `SendOnly` to publish (WHIP), `RecvOnly` to play (WHEP).
    pub direction: Direction,
    /// Codecs to offer in order; one section per media kind, in order of first appearance.
    pub codecs: Vec<Codec>,
    /// The RTCP feedback we offer for video (audio gets transport-cc only).
    pub feedback: Vec<RtcpFeedback>,
    /// The header extensions we offer.
    pub extensions: Vec<HeaderExtension>,
    /// The MediaStream id of the tracks we send.
    pub stream_id: String,
}

impl OfferConfig {
    /// VP8 then H.264 Constrained Baseline video, and Opus audio, with every feedback and
    /// extension we know.
    pub fn new(
        ice_ufrag: &str,
        ice_pwd: &str,
        fingerprint: [u8; 32],
        candidates: Vec<SocketAddr>,
        direction: Direction,
    ) -> Self {
        Self {
            ice_ufrag: ice_ufrag.to_owned(),
            ice_pwd: ice_pwd.to_owned(),
            fingerprint,
            candidates,
            direction,
            codecs: vec![
                Codec::Vp8,
                Codec::H264(H264Profile::ConstrainedBaseline),
                Codec::Opus,
            ],
            feedback: RtcpFeedback::ALL.to_vec(),
            // The stream-id extensions only matter with simulcast, which we do not offer.
            extensions: vec![
                HeaderExtension::SdesMid,
                HeaderExtension::AbsSendTime,
                HeaderExtension::TransportWideCc,
            ],
            stream_id: "leanrtc".into(),
        }
    }
}

/// The format parameters we offer for a codec.
fn fmtp_for(codec: Codec) -> Option<String> {
    match codec {
        Codec::Vp8 => None,
        Codec::H264(profile) => {
            let id = ProfileLevelId { profile, level: 31 };
            Some(format!(
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={id}"
            ))
        }
        Codec::Opus => Some("minptime=10;useinbandfec=1".into()),
    }
}

/// Builds an offer: one BUNDLEd section per media kind with mids `0`, `1`, ...
pub fn create_offer(config: &OfferConfig, rng: &mut Rng) -> SessionDescription {
    let mut kinds: Vec<MediaKind> = Vec::new();
    for c in &config.codecs {
        if !kinds.contains(&c.kind()) {
            kinds.push(c.kind());
        }
    }
    let mut sdp = session_lines(rng.u64() >> 1);
    let mids: Vec<String> = (0..kinds.len()).map(|i| i.to_string()).collect();
    let bundle = Group {
        semantics: "BUNDLE".into(),
        mids: mids.clone(),
    };
    sdp.lines.push(Line::Attr(Attribute::new("group", bundle)));
    let cname = format!("{:016x}", rng.u64());
    let (port, connection) = default_address(&config.candidates);
    let mut next_video_pt = 96u8;
    for (kind, mid) in kinds.into_iter().zip(mids) {
        let mut pts = Vec::new();
        let mut codec_lines = Vec::new();
        let mut placed: Vec<Codec> = Vec::new();
        for &codec in config.codecs.iter().filter(|c| c.kind() == kind) {
            if placed.contains(&codec) || (kind == MediaKind::Audio && !placed.is_empty()) {
                continue; // one payload type per codec; Opus is our only audio codec
            }
            placed.push(codec);
            if next_video_pt > 126 {
                break; // RFC 3551 §6: dynamic payload types end at 127.
            }
            let (pt, rtx) = match kind {
                MediaKind::Audio => (111, None),
                MediaKind::Video => {
                    next_video_pt = next_video_pt.saturating_add(2);
                    (next_video_pt - 2, Some(next_video_pt - 1))
                }
            };
            pts.extend([Some(pt), rtx].into_iter().flatten().map(|p| p.to_string()));
            codec_lines.extend(codec_attributes(codec, pt, rtx, config));
        }
        let mut m = MediaDescription::new(kind.as_str(), port, PROTO, pts);
        m.lines.push(Line::Field('c', connection.clone()));
        m.push(Attribute::new("mid", &mid));
        push_transport(
            &mut m,
            &config.ice_ufrag,
            &config.ice_pwd,
            config.fingerprint,
            Setup::ActPass,
        );
        m.push(Attribute::flag(config.direction.as_str()));
        m.push(Attribute::flag("rtcp-mux"));
        for (i, ext) in config.extensions.iter().enumerate() {
            let id = u8::try_from(i + 1).unwrap_or(u8::MAX);
            let extmap = ExtMap {
                id,
                direction: None,
                uri: ext.uri().into(),
                attributes: None,
            };
            m.push(Attribute::new("extmap", extmap));
        }
        m.lines.extend(codec_lines.into_iter().map(Line::Attr));
        if config.direction.sends() {
            let mut nm = NegotiatedMedia::new(0, &mid, kind, config.direction);
            nm.local_ssrc = Some(rng.u32());
            nm.local_rtx_ssrc = (kind == MediaKind::Video).then(|| rng.u32());
            push_sources(&mut m, &nm, &config.stream_id, &cname);
        }
        push_candidates(&mut m, &config.candidates, &[]);
        sdp.media.push(m);
    }
    sdp
}

fn codec_attributes(codec: Codec, pt: u8, rtx: Option<u8>, config: &OfferConfig) -> Vec<Attribute> {
    let rtpmap = RtpMap {
        pt,
        name: codec.name().into(),
        clock_rate: codec.clock_rate(),
        channels: codec.channels(),
    };
    let mut out = vec![Attribute::new("rtpmap", rtpmap)];
    if let Some(params) = fmtp_for(codec) {
        out.push(Attribute::new("fmtp", Fmtp { pt, params }));
    }
    let video = codec.kind() == MediaKind::Video;
    for fb in &config.feedback {
        if video || *fb == RtcpFeedback::TransportCc {
            out.push(Attribute::new(
                "rtcp-fb",
                format_args!("{pt} {}", fb.as_str()),
            ));
        }
    }
    if let Some(rtx) = rtx {
        out.push(Attribute::new("rtpmap", format_args!("{rtx} rtx/90000")));
        out.push(Attribute::new("fmtp", format_args!("{rtx} apt={pt}")));
    }
    out
}

/// Checks a peer's answer to our `offer` and returns what it settled.
pub fn accept_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    use NegotiationError::AnswerMismatch as Mismatch;
    if offer.media.len() != answer.media.len() {
        return Err(Mismatch("a different number of m-lines"));
    }
    let group = answer.attrs().bundle_groups().next();
    let mut media = Vec::new();
    let mut rejected = Vec::new();
    let mut transport = None;
    for (index, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
        if o.kind != a.kind {
            return Err(Mismatch("an m-line changed its media type"));
        }
        let mid = o.attrs().mid().unwrap_or_default().to_owned();
        if a.port == 0 && !a.attrs().has("bundle-only") {
            let reason = RejectReason::RejectedByPeer;
            rejected.push(Rejected {
                index,
                mid: Some(mid),
                reason,
            });
            continue;
        }
        if !group.as_ref().is_some_and(|g| g.mids.contains(&mid)) {
            return Err(Mismatch("an accepted m-line is not in the BUNDLE group"));
        }
        if transport.is_none() {
            transport = Some(remote_transport(answer, a)?);
        }
        media.push(accept_section(index, mid, o, a, direction_of(answer, a))?);
    }
    let Some(remote) = transport else {
        return Err(NegotiationError::NoUsableMedia(rejected));
    };
    let dtls_role = match remote.setup {
        Some(Setup::Active) => DtlsRole::Server,
        Some(Setup::Passive) => DtlsRole::Client,
        Some(other) => return Err(NegotiationError::BadSetup(other)),
        None => return Err(Mismatch("no a=setup in the answer")),
    };
    Ok(Negotiated::new(remote, dtls_role, media, rejected))
}

/// Which of our codecs an offered format is.
fn codec_of(rtpmap: &RtpMap, fmtp: Option<&Fmtp>) -> Option<Codec> {
    let h264 = ProfileLevelId::from_fmtp(fmtp).map(|p| Codec::H264(p.profile));
    [Some(Codec::Vp8), Some(Codec::Opus), h264]
        .into_iter()
        .flatten()
        .find(|c| c.matches(rtpmap, fmtp))
}

fn accept_section(
    index: usize,
    mid: String,
    o: &MediaDescription,
    a: &MediaDescription,
    theirs: Direction,
) -> Result<NegotiatedMedia, NegotiationError> {
    use NegotiationError::AnswerMismatch as Mismatch;
    let (oa, aa) = (o.attrs(), a.attrs());
    let ours = oa.direction().unwrap_or(Direction::SendRecv);
    let direction = Direction::from_flags(
        ours.sends() && theirs.receives(),
        ours.receives() && theirs.sends(),
    );
    let mut codecs = Vec::new();
    for pt in a.formats.iter().filter_map(|f| f.parse::<u8>().ok()) {
        if !o.formats.iter().any(|f| f.parse() == Ok(pt)) {
            return Err(Mismatch("a payload type we did not offer"));
        }
        let Some(rtpmap) = oa.rtpmap(pt) else {
            continue;
        };
        let offered_fmtp = oa.fmtp(pt);
        let Some(codec) = codec_of(&rtpmap, offered_fmtp.as_ref()) else {
            continue;
        };
        if matches!(codec, Codec::H264(_))
            && !h264_answer_ok(offered_fmtp.as_ref(), aa.fmtp(pt).as_ref())
        {
            return Err(Mismatch(
                "an H.264 answer with another profile or a higher level",
            ));
        }
        let rtx_pt = a
            .formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .find(|&r| {
                let apt = oa
                    .fmtp(r)
                    .and_then(|f| f.param("apt").and_then(|v| v.parse().ok()));
                oa.rtpmap(r)
                    .is_some_and(|m| m.name.eq_ignore_ascii_case("rtx"))
                    && apt == Some(pt)
            });
        let offered_fb: Vec<_> = oa
            .rtcp_fbs(pt)
            .filter_map(|f| RtcpFeedback::from_value(&f.value))
            .collect();
        let feedback = aa
            .rtcp_fbs(pt)
            .filter_map(|f| RtcpFeedback::from_value(&f.value))
            .filter(|f| offered_fb.contains(f))
            .collect();
        let fmtp = aa.fmtp(pt).or(offered_fmtp).map(|f| f.params);
        codecs.push(NegotiatedCodec {
            codec,
            pt,
            fmtp,
            rtx_pt,
            feedback,
        });
    }
    if codecs.is_empty() {
        return Err(Mismatch("an accepted m-line without a codec we offered"));
    }
    let mut extensions = Vec::new();
    for ext in aa.extmaps() {
        if !oa.extmaps().any(|e| e.id == ext.id && e.uri == ext.uri) {
            return Err(Mismatch("a header extension id we did not offer"));
        }
        if let Some(known) = HeaderExtension::from_uri(&ext.uri) {
            extensions.push((ext.id, known));
        }
    }
    let ours_sources = remote_ssrcs(oa);
    let kind = MediaKind::from_name(&a.kind).ok_or(Mismatch("not audio or video"))?;
    Ok(NegotiatedMedia {
        index,
        mid,
        kind,
        direction,
        codecs,
        extensions,
        remote_ssrcs: remote_ssrcs(aa),
        local_ssrc: ours_sources.first().map(|s| s.ssrc),
        local_rtx_ssrc: ours_sources.first().and_then(|s| s.rtx),
        simulcast: Vec::new(),
    })
}
