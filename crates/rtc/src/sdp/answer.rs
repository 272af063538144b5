//! The answerer (RFC 8829 §5.3.1, JSEP initial answer) for a server that runs ICE-lite,
//! one BUNDLE transport (RFC 8843) with rtcp-mux, and DTLS-SRTP (RFC 5763, RFC 8842).

use std::net::SocketAddr;

use super::attributes::{Direction, ExtMap, Fingerprint, Fmtp, Group, Msid, RtpMap, Setup};
use super::candidate::Candidate;
use super::codec::{Codec, HeaderExtension, MediaKind, RtcpFeedback};
use super::description::{Attribute, Line, MediaDescription, SessionDescription};
use super::h264::H264Profile;
use super::negotiated::{
    DtlsRole, Negotiated, NegotiatedCodec, NegotiatedMedia, NegotiationError, RejectReason,
    Rejected, direction_of, remote_ssrcs, remote_transport,
};
use crate::rand::Rng;

/// The only RTP profile we run: DTLS-SRTP with RTCP feedback over UDP (RFC 5764 §8).
pub(crate) const PROTO: &str = "UDP/TLS/RTP/SAVPF";

/// What we bring to an answer: our transport and what we can serve in this session.
#[derive(Debug, Clone)]
pub struct AnswerConfig {
    /// Our ICE username fragment (RFC 8839 §5.4).
    pub ice_ufrag: String,
    /// Our ICE password.
    pub ice_pwd: String,
    /// SHA-256 of our DTLS certificate (RFC 8122 §5).
    pub fingerprint: [u8; 32],
    /// Our UDP addresses, announced as host candidates. We do not trickle: these are all.
    pub candidates: Vec<SocketAddr>,
    /// What we do with media: `SendOnly` for a WHEP viewer, `RecvOnly` for a WHIP publisher.
    pub direction: Direction,
    /// The codecs we take, in our order of preference (one payload type each).
    pub codecs: Vec<Codec>,
    /// The RTCP feedback we handle.
    pub feedback: Vec<RtcpFeedback>,
    /// The header extensions we handle.
    pub extensions: Vec<HeaderExtension>,
    /// How many sections of each kind we accept (WHIP/WHEP: one audio and one video).
    pub max_per_kind: usize,
    /// The MediaStream id for the tracks we send (`a=msid`).
    pub stream_id: String,
}

impl AnswerConfig {
    /// A config with our defaults: VP8, H.264 Constrained Baseline and Opus; every feedback
    /// and extension we know; one section per kind.
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
            extensions: HeaderExtension::ALL.to_vec(),
            max_per_kind: 1,
            stream_id: "leanrtc".into(),
        }
    }
}

/// One codec picked from an offered section.
struct Choice {
    codec: Codec,
    rtpmap: RtpMap,
    fmtp: Option<Fmtp>,
    rtx: Option<(RtpMap, Option<Fmtp>)>,
    feedback: Vec<RtcpFeedback>,
}

/// What we will answer for an accepted section.
struct Plan {
    kind: MediaKind,
    mid: String,
    direction: Direction,
    codecs: Vec<Choice>,
}

/// Answers `offer`. Returns the answer and what it settled; fails only when nothing in the
/// offer can be answered (sections we cannot serve are rejected with port 0 instead).
pub fn answer(
    offer: &SessionDescription,
    config: &AnswerConfig,
    rng: &mut Rng,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let group = offer.attrs().bundle_groups().next();
    let mut plans: Vec<Result<Plan, RejectReason>> = Vec::new();
    for m in &offer.media {
        let plan = plan(offer, m, config, group.as_ref(), &plans);
        plans.push(plan);
    }
    let rejected: Vec<Rejected> = plans
        .iter()
        .enumerate()
        .filter_map(|(index, p)| {
            let reason = *p.as_ref().err()?;
            let mid = offer.media.get(index)?.attrs().mid().map(str::to_owned);
            Some(Rejected { index, mid, reason })
        })
        .collect();
    // RFC 8843 §7.3.1: the transport is that of the first accepted bundled section.
    let Some(first) = plans.iter().position(Result::is_ok) else {
        return Err(NegotiationError::NoUsableMedia(rejected));
    };
    let tagged = offer
        .media
        .get(first)
        .ok_or(NegotiationError::NoUsableMedia(Vec::new()))?;
    let remote = remote_transport(offer, tagged)?;
    if remote.ice_lite {
        return Err(NegotiationError::BothIceLite);
    }
    // RFC 8842 §5.3: answer `passive` to `actpass` so the browser is the DTLS client
    // (RFC 4145 §4: no a=setup means `active`).
    let (setup, dtls_role) = match remote.setup.unwrap_or(Setup::Active) {
        Setup::ActPass | Setup::Active => (Setup::Passive, DtlsRole::Server),
        Setup::Passive => (Setup::Active, DtlsRole::Client),
        other @ Setup::HoldConn => return Err(NegotiationError::BadSetup(other)),
    };

    let mut sdp = session_lines(rng.u64() >> 1);
    if let Some(g) = &group {
        let accepted = |mid: &&String| plans.iter().flatten().any(|p| &p.mid == *mid);
        let mids = g.mids.iter().filter(accepted).cloned().collect();
        let bundle = Group {
            semantics: "BUNDLE".into(),
            mids,
        };
        sdp.lines.push(Line::Attr(Attribute::new("group", bundle)));
    }
    sdp.lines.push(Line::Attr(Attribute::flag("ice-lite")));

    let cname = format!("{:016x}", rng.u64());
    let mut media = Vec::new();
    for (index, (offered, plan)) in offer.media.iter().zip(plans).enumerate() {
        let Ok(plan) = plan else {
            sdp.media.push(rejected_section(offered));
            continue;
        };
        let mut nm = NegotiatedMedia {
            index,
            mid: plan.mid.clone(),
            kind: plan.kind,
            direction: plan.direction,
            codecs: Vec::new(),
            extensions: Vec::new(),
            remote_ssrcs: remote_ssrcs(offered.attrs()),
            local_ssrc: None,
            local_rtx_ssrc: None,
        };
        if plan.direction.sends() {
            nm.local_ssrc = Some(rng.u32());
            let rtx = plan.codecs.iter().any(|c| c.rtx.is_some());
            nm.local_rtx_ssrc = rtx.then(|| rng.u32());
        }
        let section = accepted_section(offered, &plan, config, setup, &cname, &mut nm);
        sdp.media.push(section);
        media.push(nm);
    }
    let negotiated = Negotiated {
        remote_ice_ufrag: remote.ice_ufrag,
        remote_ice_pwd: remote.ice_pwd,
        remote_ice_lite: remote.ice_lite,
        remote_fingerprints: remote.fingerprints,
        remote_candidates: remote.candidates,
        dtls_role,
        media,
        rejected,
    };
    Ok((sdp, negotiated))
}

/// Decides whether we accept section `m`, and with what.
fn plan(
    offer: &SessionDescription,
    m: &MediaDescription,
    config: &AnswerConfig,
    group: Option<&Group>,
    earlier: &[Result<Plan, RejectReason>],
) -> Result<Plan, RejectReason> {
    let attrs = m.attrs();
    // RFC 8843 §6: port 0 with a=bundle-only is a bundled section, not a disabled one.
    if m.port == 0 && !attrs.has("bundle-only") {
        return Err(RejectReason::Disabled);
    }
    let kind = MediaKind::from_name(&m.kind).ok_or(RejectReason::UnsupportedMedia)?;
    if !m.proto.eq_ignore_ascii_case(PROTO) {
        return Err(RejectReason::UnsupportedProtocol);
    }
    let mid = attrs.mid().ok_or(RejectReason::NotBundled)?;
    let accepted = || earlier.iter().flatten();
    let bundled = match group {
        Some(g) => g.mids.iter().any(|m| m == mid),
        // Without a BUNDLE group every section would need its own transport: take one.
        None => accepted().next().is_none(),
    };
    if !bundled {
        return Err(RejectReason::NotBundled);
    }
    if !attrs.rtcp_mux() {
        return Err(RejectReason::NoRtcpMux);
    }
    // RFC 3264 §6.1: we send only if the offerer receives, and receive only if it sends.
    let theirs = direction_of(offer, m);
    let ours = config.direction;
    let direction = Direction::from_flags(
        theirs.receives() && ours.sends(),
        theirs.sends() && ours.receives(),
    );
    if direction == Direction::Inactive {
        return Err(RejectReason::Direction);
    }
    let codecs = choose_codecs(m, kind, config);
    if codecs.is_empty() {
        return Err(RejectReason::NoCommonCodec);
    }
    if accepted().filter(|p| p.kind == kind).count() >= config.max_per_kind {
        return Err(RejectReason::TooManyOfKind);
    }
    Ok(Plan {
        kind,
        mid: mid.to_owned(),
        direction,
        codecs,
    })
}

/// Picks one offered payload type per codec of ours, in our order of preference, with its
/// RTX payload type and the feedback we share.
fn choose_codecs(m: &MediaDescription, kind: MediaKind, config: &AnswerConfig) -> Vec<Choice> {
    let attrs = m.attrs();
    let offered: Vec<u8> = m.formats.iter().filter_map(|f| f.parse().ok()).collect();
    let mut out: Vec<Choice> = Vec::new();
    for &codec in config.codecs.iter().filter(|c| c.kind() == kind) {
        let found = offered.iter().find_map(|&pt| {
            let rtpmap = attrs.rtpmap(pt)?;
            let fmtp = attrs.fmtp(pt);
            let taken = out.iter().any(|c| c.rtpmap.pt == pt);
            (!taken && codec.matches(&rtpmap, fmtp.as_ref())).then_some((rtpmap, fmtp))
        });
        let Some((rtpmap, fmtp)) = found else {
            continue;
        };
        let pt = rtpmap.pt;
        // RFC 4588 §8.6: the RTX format names its original with apt=.
        let rtx = offered.iter().find_map(|&rtx_pt| {
            let r = attrs.rtpmap(rtx_pt)?;
            let f = attrs.fmtp(rtx_pt)?;
            let apt = f.param("apt")?.parse::<u8>().ok()?;
            (r.name.eq_ignore_ascii_case("rtx") && apt == pt).then_some((r, Some(f)))
        });
        let feedback = RtcpFeedback::ALL
            .into_iter()
            .filter(|fb| config.feedback.contains(fb))
            .filter(|fb| {
                attrs
                    .rtcp_fbs(pt)
                    .any(|o| RtcpFeedback::from_value(&o.value) == Some(*fb))
            })
            .collect();
        out.push(Choice {
            codec,
            rtpmap,
            fmtp,
            rtx,
            feedback,
        });
    }
    out
}

/// `v=`, `o=`, `s=`, `t=` of a description we write.
pub(crate) fn session_lines(session_id: u64) -> SessionDescription {
    let field = |k, v: &str| Line::Field(k, v.to_owned());
    SessionDescription {
        lines: vec![
            field('o', &format!("- {session_id} 2 IN IP4 127.0.0.1")),
            field('s', "-"),
            field('t', "0 0"),
        ],
        media: Vec::new(),
    }
}

/// RFC 8829 §5.3.1: a rejected section keeps its type, protocol and formats, with port 0.
fn rejected_section(offered: &MediaDescription) -> MediaDescription {
    let mut m = MediaDescription::new(&offered.kind, 0, &offered.proto, offered.formats.clone());
    m.lines.push(Line::Field('c', "IN IP4 0.0.0.0".into()));
    if let Some(mid) = offered.attrs().mid() {
        m.push(Attribute::new("mid", mid));
    }
    m
}

/// The `m=` port and `c=` line: our first candidate, else the JSEP placeholder (9, 0.0.0.0).
pub(crate) fn default_address(candidates: &[SocketAddr]) -> (u16, String) {
    match candidates.first() {
        Some(SocketAddr::V4(a)) => (a.port(), format!("IN IP4 {}", a.ip())),
        Some(SocketAddr::V6(a)) => (a.port(), format!("IN IP6 {}", a.ip())),
        None => (9, "IN IP4 0.0.0.0".into()),
    }
}

/// Writes our transport attributes: ICE, DTLS and rtcp-mux (RFC 8829 §5.3.1).
pub(crate) fn push_transport(
    m: &mut MediaDescription,
    ufrag: &str,
    pwd: &str,
    fingerprint: [u8; 32],
    setup: Setup,
) {
    m.push(Attribute::new("ice-ufrag", ufrag));
    m.push(Attribute::new("ice-pwd", pwd));
    m.push(Attribute::new(
        "fingerprint",
        Fingerprint::sha256(fingerprint),
    ));
    m.push(Attribute::new("setup", setup));
}

/// Writes our candidates and, since we never trickle, `a=end-of-candidates`.
pub(crate) fn push_candidates(m: &mut MediaDescription, candidates: &[SocketAddr]) {
    for (i, addr) in candidates.iter().enumerate() {
        let index = u16::try_from(i).unwrap_or(u16::MAX);
        m.push(Attribute::new("candidate", Candidate::host(*addr, index)));
    }
    m.push(Attribute::flag("end-of-candidates"));
}

/// Writes our sources (`a=msid`, `a=ssrc-group:FID`, `a=ssrc ... cname`) for a sending
/// section, so the browser's track gets its stream and its RTX pairing (RFC 8830, 5576).
pub(crate) fn push_sources(
    m: &mut MediaDescription,
    nm: &NegotiatedMedia,
    stream: &str,
    cname: &str,
) {
    let Some(ssrc) = nm.local_ssrc else { return };
    let track = format!("{stream}-{}", nm.mid);
    let msid = Msid {
        stream: stream.to_owned(),
        track: Some(track),
    };
    m.push(Attribute::new("msid", msid));
    if let Some(rtx) = nm.local_rtx_ssrc {
        m.push(Attribute::new(
            "ssrc-group",
            format_args!("FID {ssrc} {rtx}"),
        ));
    }
    for s in [Some(ssrc), nm.local_rtx_ssrc].into_iter().flatten() {
        m.push(Attribute::new("ssrc", format_args!("{s} cname:{cname}")));
    }
}

fn accepted_section(
    offered: &MediaDescription,
    plan: &Plan,
    config: &AnswerConfig,
    setup: Setup,
    cname: &str,
    nm: &mut NegotiatedMedia,
) -> MediaDescription {
    let formats = plan
        .codecs
        .iter()
        .flat_map(|c| [Some(c.rtpmap.pt), c.rtx.as_ref().map(|r| r.0.pt)])
        .flatten()
        .map(|pt| pt.to_string())
        .collect();
    let (port, connection) = default_address(&config.candidates);
    let mut m = MediaDescription::new(plan.kind.as_str(), port, PROTO, formats);
    m.lines.push(Line::Field('c', connection));
    m.push(Attribute::new("mid", &plan.mid));
    push_transport(
        &mut m,
        &config.ice_ufrag,
        &config.ice_pwd,
        config.fingerprint,
        setup,
    );
    m.push(Attribute::flag(plan.direction.as_str()));
    m.push(Attribute::flag("rtcp-mux"));
    for ext in offered.attrs().extmaps() {
        let Some(known) = HeaderExtension::from_uri(&ext.uri) else {
            continue;
        };
        if config.extensions.contains(&known) {
            let answer = ExtMap {
                id: ext.id,
                direction: ext.direction.map(Direction::reverse),
                uri: ext.uri,
                attributes: None,
            };
            m.push(Attribute::new("extmap", answer));
            nm.extensions.push((ext.id, known));
        }
    }
    for c in &plan.codecs {
        let pt = c.rtpmap.pt;
        m.push(Attribute::new("rtpmap", &c.rtpmap));
        if let Some(f) = &c.fmtp {
            m.push(Attribute::new("fmtp", f));
        }
        for fb in &c.feedback {
            m.push(Attribute::new(
                "rtcp-fb",
                format_args!("{pt} {}", fb.as_str()),
            ));
        }
        if let Some((rtx, rtx_fmtp)) = &c.rtx {
            m.push(Attribute::new("rtpmap", rtx));
            if let Some(f) = rtx_fmtp {
                m.push(Attribute::new("fmtp", f));
            }
        }
        nm.codecs.push(NegotiatedCodec {
            codec: c.codec,
            pt,
            fmtp: c.fmtp.as_ref().map(|f| f.params.clone()),
            rtx_pt: c.rtx.as_ref().map(|r| r.0.pt),
            feedback: c.feedback.clone(),
        });
    }
    push_sources(&mut m, nm, &config.stream_id, cname);
    push_candidates(&mut m, &config.candidates);
    m
}
