//! Encoded media in and out of containers and RTP payloads. Never decodes anything.
//!
//! Sans-IO like `rtc`: readers take byte slices, writers fill caller buffers; no files,
//! clocks or threads in here. Payloaders produce RTP *payloads* plus the facts the RTP header
//! needs (marker bit, timestamp increment); the server builds the headers.
//!
//! * [`ivf`]: IVF reader and writer (VP8 files).
//! * [`mkv`]: Matroska/WebM writer (recordings: audio and video in one file).
//! * [`ogg`], [`oggopus`]: Ogg pages and packets (RFC 3533), Opus in Ogg (RFC 7845).
//! * [`opus`]: TOC parsing and the RTP payload format (RFC 6716, RFC 7587).
//! * [`vp8`]: the RTP payload format (RFC 7741).
//! * [`h264`]: Annex B streams and the RTP payload format (RFC 6184).
//! * [`pacing`]: media time of each frame of a looped file.

mod assemble;
pub mod h264;
pub mod ivf;
pub mod mkv;
pub mod ogg;
pub mod oggopus;
pub mod opus;
pub mod pacing;
pub mod vp8;

pub use assemble::{DepacketizeError, Frame};

/// A payload size that keeps SRTP packets within 1200 bytes: 12 bytes of RTP header, 20 for
/// header extensions, 16 for the SRTP authentication tag (AES-GCM).
pub const DEFAULT_MAX_PAYLOAD: usize = 1200 - 12 - 20 - 16;

/// Why a payloader cannot make payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketizeError {
    /// The maximum payload size leaves no room for media after the payload headers.
    #[error("max payload size {0} too small")]
    MaxPayloadTooSmall(usize),
    /// A frame without bytes (or an access unit without NAL units).
    #[error("empty frame")]
    EmptyFrame,
}

/// RTP sequence number, timestamp and marker of a received packet: what a depacketizer needs
/// from the RTP header besides the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMeta {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (all packets of one video frame share it).
    pub timestamp: u32,
    /// RTP marker bit (last packet of a video frame).
    pub marker: bool,
}
