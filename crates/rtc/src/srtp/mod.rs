//! SRTP and SRTCP (RFC 3711, RFC 7714) for the two profiles WebRTC negotiates:
//! AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM.
//!
//! An [`SrtpSession`] holds the keys of one direction of a DTLS-SRTP association (one master
//! key and salt) and the per-SSRC state that goes with them: the rollover counter, the highest
//! sequence number and a 1024-packet replay window (128 for SRTCP). Packets are protected and unprotected in
//! place in the caller's buffer; nothing is allocated per packet.
//!
//! ```text
//! kdf        RFC 3711 §4.3 key derivation (AES-CM PRF), RFC 7714 §11
//! transform  the per-packet ciphers: AES-CTR + HMAC-SHA1-80, AES-GCM
//! replay     RFC 3711 §3.3.1 index estimation and §3.3.2 replay window
//! session    SrtpSession: per-SSRC state and the public protect/unprotect calls
//! ```

mod kdf;
mod profile;
mod replay;
mod session;
mod transform;

#[cfg(test)]
mod tests;

pub use profile::SrtpProfile;
pub use session::SrtpSession;

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The packet is shorter than its own header plus the SRTP trailer.
    #[error("packet too short for its header and SRTP trailer")]
    TooShort,
    /// The first byte does not say RTP/RTCP version 2.
    #[error("not an RTP/RTCP version 2 packet")]
    BadVersion,
    /// The caller's buffer has no room for the tag (and SRTCP index) to be appended.
    #[error("buffer has no room for the SRTP trailer")]
    BufferTooSmall,
    /// The authentication tag does not verify: wrong key, corrupted or forged packet.
    #[error("authentication failed")]
    AuthFailed,
    /// The packet's index was already received (RFC 3711 §3.3.2).
    #[error("replayed packet")]
    Replayed,
    /// The packet's index is behind the replay window, so it cannot be checked.
    #[error("packet too old for the replay window")]
    TooOld,
    /// The 31-bit SRTCP index (or the 48-bit SRTP index) is used up: the keys must change.
    #[error("SRTP/SRTCP index exhausted: rekey")]
    IndexExhausted,
    /// Master key or salt of the wrong length for the profile.
    #[error("master key or salt has the wrong length for the profile")]
    BadKeyLength,
    /// The crypto library refused an operation it should not refuse.
    #[error("crypto library failure")]
    Crypto,
}

impl From<aws_lc_rs::error::Unspecified> for SrtpError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        SrtpError::Crypto
    }
}
