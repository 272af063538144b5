//! A WHIP or WHEP session: its peer connection and what it sends or receives. Created from
//! an SDP offer by [`answer_offer`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rtc::dtls::{DtlsConfig, Fingerprint};
use rtc::ice::Credentials;
use rtc::peer::{Peer, PeerSetup};
use rtc::rand::Rng;
use rtc::sdp::{
    self, AnswerConfig, Direction, DtlsRole, MediaKind, Negotiated, SessionDescription,
};

use crate::control::{EngineError, Role};
use crate::router::output::Output;
use crate::sources::Codec;

/// One session.
#[derive(Debug)]
pub struct Session {
    /// Its id, the last segment of its `Location`.
    pub id: String,
    /// Publisher or viewer.
    pub role: Role,
    /// The stream it belongs to.
    pub stream: String,
    /// The transport.
    pub peer: Peer,
    /// What a viewer receives, one entry per track.
    pub outputs: Vec<Output>,
    /// Strong ETag of the ICE session (RFC 9725 §4.3).
    pub etag: String,
    /// When the offer came.
    pub created: Instant,
    /// The peer's address once ICE validated it.
    pub remote: Option<SocketAddr>,
    /// When `peer` wants `handle_timeout`.
    pub timeout: Option<Instant>,
    /// Next Sender Report.
    pub next_report: Option<Instant>,
    /// Last time a PLI/FIR was acted on, to rate-limit keyframe replays.
    pub last_keyframe_request: Option<Instant>,
    /// Counters for the end-of-session log line.
    pub nacks: u64,
    /// PLI/FIR received.
    pub keyframe_requests: u64,
}

/// A track a session can be offered: its codec and index in the stream.
#[derive(Debug, Clone, Copy)]
pub struct OfferedTrack {
    /// Index of the track in its stream.
    pub index: usize,
    /// Its codec.
    pub codec: Codec,
}

fn sdp_codec(codec: Codec) -> sdp::Codec {
    match codec {
        Codec::Vp8 => sdp::Codec::Vp8,
        Codec::H264 => sdp::Codec::H264(sdp::H264Profile::ConstrainedBaseline),
        Codec::Opus => sdp::Codec::Opus,
    }
}

/// Answers a WHEP offer for a stream with `tracks`: returns the answer text and a session
/// ready to receive the viewer's ICE checks.
#[allow(clippy::too_many_arguments)]
pub fn answer_offer(
    now: Instant,
    offer: &str,
    stream: &str,
    tracks: &[OfferedTrack],
    candidates: &[SocketAddr],
    dtls: &Arc<DtlsConfig>,
    rng: &mut Rng,
) -> Result<(String, Session), EngineError> {
    let offer =
        SessionDescription::parse(offer).map_err(|e| EngineError::BadOffer(e.to_string()))?;
    let credentials = Credentials::random(rng);
    let fingerprint = dtls.certificate().fingerprint().0;
    let mut config = AnswerConfig::new(
        &credentials.ufrag,
        &credentials.pwd,
        fingerprint,
        candidates.to_vec(),
        Direction::SendOnly,
    );
    config.codecs = tracks.iter().map(|t| sdp_codec(t.codec)).collect();
    // Only what we send is worth announcing; we add no header extensions to file media.
    config.extensions.clear();
    config.stream_id = stream.to_owned();
    // We retransmit plain copies on the media SSRC (see router::output); no RTX stream.
    config.rtx = false;
    let (answer, negotiated) =
        sdp::answer(&offer, &config, rng).map_err(|e| EngineError::Unanswerable(e.to_string()))?;
    let outputs = outputs(&negotiated, tracks, rng);
    if outputs.is_empty() {
        return Err(EngineError::Unanswerable(
            "the offer accepts none of this stream's tracks".into(),
        ));
    }
    let setup = peer_setup(&negotiated)?;
    let remote = Credentials {
        ufrag: negotiated.remote_ice_ufrag.clone(),
        pwd: negotiated.remote_ice_pwd.clone(),
    };
    let peer = Peer::new_lite(
        now,
        Arc::clone(dtls),
        credentials,
        &remote,
        &setup,
        Rng::system(),
    );
    let id = hex(&rng.bytes::<12>());
    let session = Session {
        id,
        role: Role::Play,
        stream: stream.to_owned(),
        peer,
        outputs,
        etag: format!("\"{}\"", hex(&rng.bytes::<8>())),
        created: now,
        remote: None,
        timeout: None,
        next_report: None,
        last_keyframe_request: None,
        nacks: 0,
        keyframe_requests: 0,
    };
    Ok((answer.to_string(), session))
}

/// One output per accepted m-line we can feed, with the viewer's payload type and the SSRC
/// our answer announced.
fn outputs(negotiated: &Negotiated, tracks: &[OfferedTrack], rng: &mut Rng) -> Vec<Output> {
    let mut outputs = Vec::new();
    for media in &negotiated.media {
        if !matches!(media.direction, Direction::SendOnly | Direction::SendRecv) {
            continue;
        }
        let video = media.kind == MediaKind::Video;
        let found = tracks.iter().find_map(|t| {
            let pt = media.payload_type(sdp_codec(t.codec))?;
            (t.codec.is_video() == video).then_some((t.index, pt))
        });
        if let (Some((index, pt)), Some(ssrc)) = (found, media.local_ssrc) {
            outputs.push(Output::new(
                index,
                pt,
                ssrc,
                rng.u32() as u16,
                rng.u32(),
                video,
            ));
        }
    }
    outputs
}

fn peer_setup(negotiated: &Negotiated) -> Result<PeerSetup, EngineError> {
    let fingerprint = negotiated
        .remote_fingerprints
        .iter()
        .find(|f| f.algorithm.eq_ignore_ascii_case("sha-256"))
        .and_then(|f| <[u8; 32]>::try_from(f.bytes.as_slice()).ok())
        .ok_or_else(|| {
            EngineError::Unanswerable("the offer has no sha-256 a=fingerprint".into())
        })?;
    Ok(PeerSetup {
        remote_fingerprint: Fingerprint(fingerprint),
        dtls_client: negotiated.dtls_role == DtlsRole::Client,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
