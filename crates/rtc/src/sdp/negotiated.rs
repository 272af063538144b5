//! The outcome of an offer/answer exchange, as the transport needs it, and the errors that
//! stop one. Shared by the answerer (server) and the offerer (client).

use super::attributes::{Fingerprint, Setup};
use super::candidate::Candidate;
use super::codec::{Codec, HeaderExtension, MediaKind, RtcpFeedback};
use super::description::{MediaDescription, SessionDescription};
use super::{Attrs, Direction};

/// Our DTLS role on the negotiated transport (RFC 8842 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// We send the ClientHello (our `a=setup:active`).
    Client,
    /// We wait for it (our `a=setup:passive`).
    Server,
}

/// What an offer/answer exchange settled, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's ICE username fragment.
    pub remote_ice_ufrag: String,
    /// The peer's ICE password.
    pub remote_ice_pwd: String,
    /// Whether the peer is an ICE-lite agent.
    pub remote_ice_lite: bool,
    /// The peer's certificate fingerprints; its DTLS certificate must match one.
    pub remote_fingerprints: Vec<Fingerprint>,
    /// The peer's candidates (often none, or mDNS names: ICE-lite learns addresses from the
    /// checks it receives).
    pub remote_candidates: Vec<Candidate>,
    /// Our DTLS role.
    pub dtls_role: DtlsRole,
    /// The accepted media sections, in m-line order, all on one BUNDLE transport.
    pub media: Vec<NegotiatedMedia>,
    /// The media sections answered with port 0, and why.
    pub rejected: Vec<Rejected>,
}

/// One accepted media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// The m-line's index in the description.
    pub index: usize,
    /// `a=mid`.
    pub mid: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// Our direction (as in our own description).
    pub direction: Direction,
    /// Codecs in the answerer's order of preference, with the offerer's payload types.
    pub codecs: Vec<NegotiatedCodec>,
    /// Header extensions in use and their ids (the offerer's ids).
    pub extensions: Vec<(u8, HeaderExtension)>,
    /// The sources the peer announced (`a=ssrc`, `a=ssrc-group:FID`).
    pub remote_ssrcs: Vec<RemoteSsrc>,
    /// Our media SSRC when we send.
    pub local_ssrc: Option<u32>,
    /// Our RTX SSRC when we send and RTX was negotiated.
    pub local_rtx_ssrc: Option<u32>,
    /// The simulcast streams we receive (RFC 8853), in the offerer's order of preference
    /// (which says nothing about their resolution or bitrate); empty without simulcast.
    /// Packets name their layer with the RID header extension (RFC 8852).
    pub simulcast: Vec<SimulcastLayer>,
}

/// One simulcast stream the peer sends us, identified by its rid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulcastLayer {
    /// The rid-id, as carried in the RID header extension.
    pub rid: String,
    /// The offer marked it paused (`~`, RFC 8853 §5.1): no media until it resumes.
    pub paused: bool,
    /// The payload types it is restricted to (`pt=`, RFC 8851 §5); empty means any.
    pub pts: Vec<u8>,
}

impl Negotiated {
    pub(crate) fn new(
        remote: RemoteTransport,
        dtls_role: DtlsRole,
        media: Vec<NegotiatedMedia>,
        rejected: Vec<Rejected>,
    ) -> Self {
        Self {
            remote_ice_ufrag: remote.ice_ufrag,
            remote_ice_pwd: remote.ice_pwd,
            remote_ice_lite: remote.ice_lite,
            remote_fingerprints: remote.fingerprints,
            remote_candidates: remote.candidates,
            dtls_role,
            media,
            rejected,
        }
    }
}

impl NegotiatedMedia {
    pub(crate) fn new(index: usize, mid: &str, kind: MediaKind, direction: Direction) -> Self {
        Self {
            index,
            mid: mid.to_owned(),
            kind,
            direction,
            codecs: Vec::new(),
            extensions: Vec::new(),
            remote_ssrcs: Vec::new(),
            local_ssrc: None,
            local_rtx_ssrc: None,
            simulcast: Vec::new(),
        }
    }

    /// The payload type of the first negotiated codec `codec`.
    pub fn payload_type(&self, codec: Codec) -> Option<u8> {
        self.codecs.iter().find(|c| c.codec == codec).map(|c| c.pt)
    }

    /// The simulcast layer whose rid is `rid` (as read from a packet's RID extension).
    pub fn layer_index(&self, rid: &[u8]) -> Option<usize> {
        self.simulcast.iter().position(|l| l.rid.as_bytes() == rid)
    }

    /// The id of a header extension, if negotiated.
    pub fn extension_id(&self, ext: HeaderExtension) -> Option<u8> {
        self.extensions
            .iter()
            .find(|(_, e)| *e == ext)
            .map(|(id, _)| *id)
    }
}

/// One negotiated codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// Which codec.
    pub codec: Codec,
    /// Its payload type (the offerer's).
    pub pt: u8,
    /// Its `a=fmtp` parameters, if any.
    pub fmtp: Option<String>,
    /// The payload type of its RTX stream (RFC 4588), if negotiated.
    pub rtx_pt: Option<u8>,
    /// The RTCP feedback both sides use for it.
    pub feedback: Vec<RtcpFeedback>,
}

/// A source the peer announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteSsrc {
    /// The media SSRC.
    pub ssrc: u32,
    /// Its RTX SSRC, from `a=ssrc-group:FID <ssrc> <rtx>`.
    pub rtx: Option<u32>,
}

/// A media section answered with port 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The m-line's index.
    pub index: usize,
    /// Its `a=mid`, if it had one.
    pub mid: Option<String>,
    /// Why.
    pub reason: RejectReason,
}

/// Why a media section was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The offer itself disabled it (port 0 without `a=bundle-only`).
    #[error("disabled in the offer (port 0)")]
    Disabled,
    /// Not audio or video (data channels are not supported yet).
    #[error("media type not supported")]
    UnsupportedMedia,
    /// Not `UDP/TLS/RTP/SAVPF`.
    #[error("protocol is not UDP/TLS/RTP/SAVPF")]
    UnsupportedProtocol,
    /// No `a=mid`, or not in the BUNDLE group: we run one transport only.
    #[error("not in the BUNDLE group (or no a=mid)")]
    NotBundled,
    /// No `a=rtcp-mux` (RFC 8829 §5.1.3 requires it of us).
    #[error("no a=rtcp-mux")]
    NoRtcpMux,
    /// No offered codec is one we can carry.
    #[error("no codec in common")]
    NoCommonCodec,
    /// We cannot send or receive in any direction the offer allows.
    #[error("no direction we can serve")]
    Direction,
    /// One audio and one video section per session (RFC 9725 §4.2).
    #[error("more than one section of this kind")]
    TooManyOfKind,
    /// The peer's answer rejected it (offerer side).
    #[error("rejected by the peer")]
    RejectedByPeer,
}

/// Why an offer cannot be answered, or an answer cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// No media section could be accepted; each one's reason is listed.
    #[error("no media section can be accepted: {}", list(.0))]
    NoUsableMedia(Vec<Rejected>),
    /// The transport's section (or the session) lacks `a=ice-ufrag`/`a=ice-pwd`.
    #[error("no a=ice-ufrag/a=ice-pwd for the transport")]
    NoIceCredentials,
    /// Neither side would run full ICE (RFC 8445 §2.5: a lite agent needs a full peer).
    #[error("the peer is ICE-lite too; one side must run full ICE")]
    BothIceLite,
    /// No `a=fingerprint` for the transport (RFC 8842 §5 requires one).
    #[error("no a=fingerprint for the transport")]
    NoFingerprint,
    /// The DTLS role cannot be settled from `a=setup:<value>`.
    #[error("cannot settle the DTLS role from a=setup:{0}")]
    BadSetup(Setup),
    /// The answer does not fit the offer (offerer side).
    #[error("the answer does not fit the offer: {0}")]
    AnswerMismatch(&'static str),
}

fn list(rejected: &[Rejected]) -> String {
    let items: Vec<String> = rejected
        .iter()
        .map(|r| {
            format!(
                "m-line {} (mid {}): {}",
                r.index,
                r.mid.as_deref().unwrap_or("-"),
                r.reason
            )
        })
        .collect();
    items.join("; ")
}

/// The transport parameters the peer gave for the BUNDLE transport.
pub(crate) struct RemoteTransport {
    pub ice_ufrag: String,
    pub ice_pwd: String,
    pub ice_lite: bool,
    pub fingerprints: Vec<Fingerprint>,
    pub setup: Option<Setup>,
    pub candidates: Vec<Candidate>,
}

/// Reads the transport from media section `m` (the one that carries the BUNDLE transport),
/// falling back to session-level attributes as RFC 8839 §5.4 and RFC 8122 §5 allow.
pub(crate) fn remote_transport(
    sdp: &SessionDescription,
    m: &MediaDescription,
) -> Result<RemoteTransport, NegotiationError> {
    let (ma, sa) = (m.attrs(), sdp.attrs());
    let ice_ufrag = ma.ice_ufrag().or(sa.ice_ufrag());
    let ice_pwd = ma.ice_pwd().or(sa.ice_pwd());
    let (Some(ice_ufrag), Some(ice_pwd)) = (ice_ufrag, ice_pwd) else {
        return Err(NegotiationError::NoIceCredentials);
    };
    let mut fingerprints: Vec<Fingerprint> = ma.fingerprints().collect();
    if fingerprints.is_empty() {
        fingerprints = sa.fingerprints().collect();
    }
    if fingerprints.is_empty() {
        return Err(NegotiationError::NoFingerprint);
    }
    Ok(RemoteTransport {
        ice_ufrag: ice_ufrag.to_owned(),
        ice_pwd: ice_pwd.to_owned(),
        ice_lite: sa.ice_lite(),
        fingerprints,
        setup: ma.setup().or(sa.setup()),
        candidates: ma
            .candidates()
            .filter(|c| c.component == 1 && c.is_udp())
            .collect(),
    })
}

/// The peer's announced sources, pairing RTX to media SSRCs through `FID` groups.
pub(crate) fn remote_ssrcs(attrs: Attrs<'_>) -> Vec<RemoteSsrc> {
    let fids: Vec<(u32, u32)> = attrs
        .ssrc_groups()
        .filter(|g| g.semantics == "FID")
        .filter_map(|g| Some((*g.ssrcs.first()?, *g.ssrcs.get(1)?)))
        .collect();
    let mut out: Vec<RemoteSsrc> = Vec::new();
    for s in attrs.ssrcs() {
        let is_rtx = fids.iter().any(|(_, rtx)| *rtx == s.ssrc);
        if !is_rtx && !out.iter().any(|o| o.ssrc == s.ssrc) {
            let rtx = fids.iter().find(|(m, _)| *m == s.ssrc).map(|(_, r)| *r);
            out.push(RemoteSsrc { ssrc: s.ssrc, rtx });
        }
    }
    out
}

/// The direction of media section `m`: its own attribute, else the session's, else
/// `sendrecv` (RFC 8866 §6.7).
pub(crate) fn direction_of(sdp: &SessionDescription, m: &MediaDescription) -> Direction {
    m.attrs()
        .direction()
        .or(sdp.attrs().direction())
        .unwrap_or(Direction::SendRecv)
}
