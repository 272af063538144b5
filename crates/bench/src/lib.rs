//! leanrtc's own client role, for the tests and the load generator: WHIP publishers and WHEP
//! viewers on our transport stack (`rtc`: offer/answer, controlling ICE, DTLS client, SRTP)
//! and our payload formats (`media`), many peers driven by one thread.
//!
//! * [`Driver`]: one `mio` loop owning every client. Each client has its own UDP socket (or
//!   ICE-TCP connection: [`Offer::over_tcp`]), so the server sees a distinct 5-tuple per peer.
//! * [`Offer`] / [`Session`]: the offer, the WHIP/WHEP POST, the answer, and the peer
//!   connection; [`Session`] also sends hand-made (or broken) packets for bad-input tests.
//! * [`Publisher`]: IVF frames or synthetic VP8-shaped frames, paced, packetized with
//!   [`media::vp8::Vp8Payloader`]; answers NACKs from a history and PLIs with a keyframe;
//!   optional deterministic loss on its send path.
//! * [`Viewer`]: counts packets per SSRC, reorders, NACKs gaps, reassembles VP8 frames with
//!   [`media::vp8::Vp8Depacketizer`], asks for a keyframe when a frame cannot be completed,
//!   and measures latency from the send time synthetic frames carry.
//! * [`http`]: the tiny blocking HTTP/1.1 client.
//! * [`load`]: the load generator of the `leanrtc-bench` binary (its baseline, a str0m SFU,
//!   is the `str0m-sfu` binary of this crate).

mod driver;
pub mod http;
mod jitter;
pub mod load;
mod publisher;
mod session;
pub mod synthetic;
mod tcp;
mod viewer;

pub use driver::{ClientId, Driver, Media};
pub use publisher::{IvfFrame, Loss, Publisher, PublisherConfig, PublisherStats, Source};
pub use session::{Kind, Offer, Session, SessionStats, Transport};
pub use viewer::{FrameInfo, SsrcStats, Viewer, ViewerConfig, frame_hash};

/// Why a client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket or HTTP connection failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered the POST with something other than 201.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// The server's answer is unusable: it does not parse or fit the offer, lacks a UDP
    /// candidate or a fingerprint, or the ICE agent's credentials differ from the offer's
    /// (see [`Offer::new`]); or the 201 lacks `Location`.
    #[error("unusable answer: {0}")]
    Answer(String),
    /// The answer accepted no media section we can send or play.
    #[error("no {0} media section was accepted")]
    NoMedia(&'static str),
    /// The IVF file cannot be read.
    #[error("IVF: {0}")]
    Ivf(#[from] media::ivf::IvfError),
    /// Our DTLS certificate could not be made.
    #[error("DTLS certificate: {0}")]
    Certificate(#[from] rtc::dtls::DtlsError),
    /// No client with this id (removed, or never added), or one made without HTTP.
    #[error("no such client, or it has no Location")]
    UnknownClient,
}
