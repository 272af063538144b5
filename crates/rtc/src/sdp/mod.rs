//! SDP (RFC 8866): parse and write session descriptions, and the offer/answer negotiation
//! leanrtc needs (JSEP, RFC 8829) for one BUNDLE transport with rtcp-mux, ICE-lite and DTLS.
//!
//! * [`SessionDescription`] keeps every line, known or not, in order, so a description
//!   written back is the one that was read (with CRLF line ends).
//! * [`Attrs`] gives typed access to the attributes we use, at session or media level.
//! * [`answer`] answers a browser's (or OBS's, or GStreamer's) offer; [`create_offer`] and
//!   [`accept_answer`] are the client side. Both produce the same [`Negotiated`] summary,
//!   which is all the transport needs: the text stays at the edge.

mod accessors;
mod answer;
mod attributes;
mod candidate;
mod codec;
mod description;
mod h264;
mod negotiated;
mod offer;
mod rtp_attributes;
mod simulcast;
mod write;

pub use accessors::Attrs;
pub use answer::{AnswerConfig, answer};
pub use attributes::{Direction, Fingerprint, Group, Msid, Setup};
pub use candidate::Candidate;
pub use codec::{Codec, HeaderExtension, MediaKind, RtcpFeedback};
pub use description::{Attribute, Line, MediaDescription, SessionDescription};
pub use h264::{H264Profile, ProfileLevelId};
pub use negotiated::{
    DtlsRole, Negotiated, NegotiatedCodec, NegotiatedMedia, NegotiationError, RejectReason,
    Rejected, RemoteSsrc, SimulcastLayer,
};
pub use offer::{OfferConfig, accept_answer, create_offer};
pub use rtp_attributes::{ExtMap, Fmtp, RtcpFb, RtpMap, Ssrc, SsrcGroup};
pub use simulcast::{Rid, RidDirection, Simulcast, SimulcastId};

/// What is wrong with a description, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {kind}")]
pub struct ParseError {
    /// The 1-based line number (0 when the problem is the description as a whole).
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// The kinds of [`ParseError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// RFC 8866 §5: a description starts with `v=0`.
    #[error("a session description must start with v=0")]
    NoVersion,
    /// A line that is not `<lowercase letter>=<value>`.
    #[error("not a `<type>=<value>` line")]
    Malformed,
    /// A required session line (`o=`, `s=`, `t=`) is missing.
    #[error("the session has no {0}= line")]
    Missing(char),
    /// An `m=` line that does not read `m=<media> <port>[/<count>] <proto> <fmt> ...`.
    #[error("bad m= line: {0}")]
    BadMedia(&'static str),
    /// An attribute we interpret whose value does not follow its grammar.
    #[error("bad a={name}: {reason}")]
    BadAttribute {
        /// The attribute name.
        name: String,
        /// What is wrong with its value.
        reason: &'static str,
    },
}
