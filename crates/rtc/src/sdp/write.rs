//! Writing our side of a description: session lines, transport attributes, candidates and
//! sources, shared by the answerer and the offerer.

use std::net::SocketAddr;

use super::attributes::{Fingerprint, Msid, Setup};
use super::candidate::Candidate;
use super::description::{Attribute, Line, MediaDescription, SessionDescription};
use super::negotiated::NegotiatedMedia;

/// The only RTP profile we run: DTLS-SRTP with RTCP feedback over UDP (RFC 5764 §8).
pub(crate) const PROTO: &str = "UDP/TLS/RTP/SAVPF";

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
pub(crate) fn push_candidates(m: &mut MediaDescription, udp: &[SocketAddr], tcp: &[SocketAddr]) {
    for (i, addr) in udp.iter().enumerate() {
        let index = u16::try_from(i).unwrap_or(u16::MAX);
        m.push(Attribute::new("candidate", Candidate::host(*addr, index)));
    }
    // Foundations go on from the UDP ones: a foundation names base, type and transport
    // together (RFC 8445 §5.1.1.3), so a TCP candidate never shares one with a UDP candidate.
    for (i, addr) in tcp.iter().enumerate() {
        let index = u16::try_from(i).unwrap_or(u16::MAX);
        let foundation = udp.len().saturating_add(i).saturating_add(1);
        m.push(Attribute::new(
            "candidate",
            Candidate::tcp_passive(*addr, index, foundation),
        ));
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
