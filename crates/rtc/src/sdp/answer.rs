//! The answerer (RFC 8829 §5.3.1, JSEP initial answer) for a server that runs ICE-lite,
//! one BUNDLE transport (RFC 8843) with rtcp-mux, and DTLS-SRTP (RFC 5763, RFC 8842).

use std::net::SocketAddr;

use super::attributes::{Direction, Group, Setup};
use super::codec::{Codec, HeaderExtension, MediaKind, RtcpFeedback};
use super::description::{Attribute, Line, MediaDescription, SessionDescription};
use super::h264::H264Profile;
use super::negotiated::{
    DtlsRole, Negotiated, NegotiatedCodec, NegotiatedMedia, NegotiationError, RejectReason,
    Rejected, SimulcastLayer, direction_of, remote_ssrcs, remote_transport,
};
use super::rtp_attributes::{ExtMap, Fmtp, RtpMap};
use super::simulcast::{Rid, RidDirection, Simulcast, SimulcastId};
use super::write::{
    PROTO, default_address, push_candidates, push_sources, push_transport, session_lines,
};
use crate::rand::Rng;

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
    /// Our passive ICE-TCP addresses (RFC 6544), announced after the UDP ones and at a lower
    /// priority. Empty: UDP only.
    pub tcp_candidates: Vec<SocketAddr>,
    /// What we do with media: `SendOnly` for a WHEP viewer, `RecvOnly` for a WHIP publisher.
    pub direction: Direction,
    /// The codecs we take, in our order of preference (one payload type each).
    pub codecs: Vec<Codec>,
    /// The RTCP feedback we handle.
    pub feedback: Vec<RtcpFeedback>,
    /// The header extensions we handle. Simulcast (RFC 8853) is answered only where
    /// [`HeaderExtension::RtpStreamId`] is among them and offered.
    pub extensions: Vec<HeaderExtension>,
    /// How many sections of each kind we accept (WHIP/WHEP: one audio and one video).
    pub max_per_kind: usize,
    /// The MediaStream id for the tracks we send (`a=msid`).
    pub stream_id: String,
    /// Whether to accept RTX (RFC 4588) where offered. Off, retransmissions travel as plain
    /// copies of the original packets on the media SSRC, which browsers accept.
    pub rtx: bool,
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
            tcp_candidates: Vec::new(),
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
            rtx: true,
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
    let rejected = rejections(offer, &plans);
    // RFC 8843 §7.3.1: the transport is that of the first accepted bundled section.
    let Some((tagged, _)) = offer.media.iter().zip(&plans).find(|(_, p)| p.is_ok()) else {
        return Err(NegotiationError::NoUsableMedia(rejected));
    };
    let remote = remote_transport(offer, tagged)?;
    if remote.ice_lite {
        return Err(NegotiationError::BothIceLite);
    }
    let (setup, dtls_role) = answer_setup(remote.setup)?;

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
        let sends = plan.direction.sends();
        let mut nm = NegotiatedMedia::new(index, &plan.mid, plan.kind, plan.direction);
        nm.remote_ssrcs = remote_ssrcs(offered.attrs());
        nm.local_ssrc = sends.then(|| rng.u32());
        if sends && plan.codecs.iter().any(|c| c.rtx.is_some()) {
            nm.local_rtx_ssrc = Some(rng.u32());
        }
        sdp.media.push(accepted_section(
            offered, &plan, config, setup, &cname, &mut nm,
        ));
        media.push(nm);
    }
    Ok((sdp, Negotiated::new(remote, dtls_role, media, rejected)))
}

/// RFC 8842 §5.3: answer `passive` to `actpass` so the browser is the DTLS client
/// (RFC 4145 §4: no a=setup means `active`).
fn answer_setup(offered: Option<Setup>) -> Result<(Setup, DtlsRole), NegotiationError> {
    match offered.unwrap_or(Setup::Active) {
        Setup::ActPass | Setup::Active => Ok((Setup::Passive, DtlsRole::Server)),
        Setup::Passive => Ok((Setup::Active, DtlsRole::Client)),
        other @ Setup::HoldConn => Err(NegotiationError::BadSetup(other)),
    }
}

fn rejections(offer: &SessionDescription, plans: &[Result<Plan, RejectReason>]) -> Vec<Rejected> {
    let with_plans = offer.media.iter().zip(plans).enumerate();
    with_plans
        .filter_map(|(index, (m, p))| {
            let reason = *p.as_ref().err()?;
            Some(Rejected {
                index,
                mid: m.attrs().mid().map(str::to_owned),
                reason,
            })
        })
        .collect()
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
        let rtx = offered.iter().filter(|_| config.rtx).find_map(|&rtx_pt| {
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

/// RFC 8829 §5.3.1: a rejected section keeps its type, protocol and formats, with port 0.
fn rejected_section(offered: &MediaDescription) -> MediaDescription {
    // RFC 3264 §6: port 0 rejects the section; it keeps one offered format. Some stacks
    // (str0m) also want that format's a=rtpmap and exactly one direction attribute.
    let first = offered.formats.first().cloned().into_iter().collect();
    let mut m = MediaDescription::new(&offered.kind, 0, &offered.proto, first);
    m.lines.push(Line::Field('c', "IN IP4 0.0.0.0".into()));
    let attrs = offered.attrs();
    if let Some(mid) = attrs.mid() {
        m.push(Attribute::new("mid", mid));
    }
    let rtpmap = offered
        .formats
        .first()
        .and_then(|f| f.parse::<u8>().ok())
        .and_then(|pt| attrs.rtpmap(pt));
    if let Some(rtpmap) = rtpmap {
        m.push(Attribute::new("rtpmap", rtpmap));
    }
    m.push(Attribute::flag("inactive"));
    m
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
    push_extensions(&mut m, offered, config, nm);
    // draft-holmer-rmcat-transport-wide-cc-extensions §3: transport-cc feedback reports on
    // the transport-wide sequence numbers of that header extension; without it there is
    // nothing to report on, so the feedback is not answered either.
    let twcc = nm.extension_id(HeaderExtension::TransportWideCc).is_some();
    let usable = |fb: &&RtcpFeedback| twcc || **fb != RtcpFeedback::TransportCc;
    for c in &plan.codecs {
        let pt = c.rtpmap.pt;
        let feedback: Vec<RtcpFeedback> = c.feedback.iter().filter(usable).copied().collect();
        m.push(Attribute::new("rtpmap", &c.rtpmap));
        if let Some(f) = &c.fmtp {
            m.push(Attribute::new("fmtp", f));
        }
        for fb in &feedback {
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
            feedback,
        });
    }
    if plan.direction.receives() {
        push_simulcast(&mut m, offered, nm);
    }
    push_sources(&mut m, nm, &config.stream_id, cname);
    push_candidates(&mut m, &config.candidates, &config.tcp_candidates);
    m
}

/// Answers each offered extension we handle with the offerer's id (RFC 8285 §6).
fn push_extensions(
    m: &mut MediaDescription,
    offered: &MediaDescription,
    config: &AnswerConfig,
    nm: &mut NegotiatedMedia,
) {
    for ext in offered.attrs().extmaps() {
        let Some(known) = HeaderExtension::from_uri(&ext.uri) else {
            continue;
        };
        // RFC 8285 §5: one id per extension; a repeated URI keeps its first id.
        if config.extensions.contains(&known) && nm.extension_id(known).is_none() {
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
}

/// Receives every simulcast stream offered (RFC 8853 §5.3): `a=rid:<id> recv` for each and
/// `a=simulcast:recv <ids>`. Only with the RID header extension negotiated: without it a
/// packet cannot say which stream it belongs to (RFC 8852 §3), and the answer then has no
/// simulcast, which RFC 8853 §5.3 lets the offerer take as a single stream.
fn push_simulcast(m: &mut MediaDescription, offered: &MediaDescription, nm: &mut NegotiatedMedia) {
    if nm.extension_id(HeaderExtension::RtpStreamId).is_none() {
        return;
    }
    let attrs = offered.attrs();
    let Some(sc) = attrs.simulcast() else { return };
    let accepted: Vec<u8> = nm
        .codecs
        .iter()
        .flat_map(|c| [Some(c.pt), c.rtx_pt])
        .flatten()
        .collect();
    let declared: Vec<Rid> = attrs
        .rids()
        .filter(|r| r.direction == RidDirection::Send)
        .collect();
    let mut layers: Vec<SimulcastLayer> = Vec::new();
    for alternatives in &sc.send {
        // RFC 8853 §5.3.2: the answerer may drop alternatives; keep the first we can take.
        // A rid needs its `a=rid` line (§5.1), and when it lists formats, one we accepted
        // (RFC 8851 §4.2: a rid left with no format is removed).
        let pick = alternatives.iter().find_map(|id| {
            let rid = declared.iter().find(|r| r.id == id.rid)?;
            let pts: Vec<u8> = rid
                .pts
                .iter()
                .copied()
                .filter(|pt| accepted.contains(pt))
                .collect();
            let taken = layers.iter().any(|l| l.rid == id.rid);
            (!taken && (rid.pts.is_empty() || !pts.is_empty())).then(|| SimulcastLayer {
                rid: id.rid.clone(),
                paused: id.paused,
                pts,
            })
        });
        layers.extend(pick);
    }
    if layers.is_empty() {
        return;
    }
    let mut recv = Vec::new();
    for layer in &layers {
        let mut rid = Rid::new(&layer.rid, RidDirection::Recv);
        rid.pts.clone_from(&layer.pts);
        m.push(Attribute::new("rid", rid));
        recv.push(vec![SimulcastId {
            rid: layer.rid.clone(),
            paused: layer.paused,
        }]);
    }
    let answer = Simulcast {
        send: Vec::new(),
        recv,
    };
    m.push(Attribute::new("simulcast", answer));
    nm.simulcast = layers;
}
