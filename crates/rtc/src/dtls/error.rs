//! Typed DTLS errors; each one maps to the alert we send (RFC 5246 §7.2, RFC 6347 §4.1.2.7).

use super::cert::Fingerprint;

/// Alert descriptions we send or understand (RFC 5246 §7.2, RFC 5746, RFC 8446 §6).
pub mod alert {
    /// close_notify (warning).
    pub const CLOSE_NOTIFY: u8 = 0;
    /// unexpected_message.
    pub const UNEXPECTED_MESSAGE: u8 = 10;
    /// handshake_failure.
    pub const HANDSHAKE_FAILURE: u8 = 40;
    /// bad_certificate.
    pub const BAD_CERTIFICATE: u8 = 42;
    /// unsupported_certificate.
    pub const UNSUPPORTED_CERTIFICATE: u8 = 43;
    /// illegal_parameter.
    pub const ILLEGAL_PARAMETER: u8 = 47;
    /// decode_error.
    pub const DECODE_ERROR: u8 = 50;
    /// decrypt_error: a signature or Finished did not verify.
    pub const DECRYPT_ERROR: u8 = 51;
    /// protocol_version.
    pub const PROTOCOL_VERSION: u8 = 70;
    /// internal_error.
    pub const INTERNAL_ERROR: u8 = 80;
    /// no_renegotiation (warning, RFC 5746).
    pub const NO_RENEGOTIATION: u8 = 100;
}

/// Why a handshake or connection failed. Each variant says what the peer did wrong and maps
/// one-to-one to the fatal alert we send ([`DtlsError::alert`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    /// A handshake message did not parse.
    #[error("malformed {0}")]
    Decode(&'static str),
    /// A message arrived that the current handshake state does not allow.
    #[error("unexpected {got} while waiting for {expected}")]
    UnexpectedMessage {
        /// What we were waiting for.
        expected: &'static str,
        /// What came instead.
        got: &'static str,
    },
    /// The peer offers nothing we can agree on (suite, group, SRTP profile, ...).
    #[error("no common {0} with the peer")]
    NoCommon(&'static str),
    /// The peer did not offer or echo extended_master_secret (RFC 7627 §5.3 lets us refuse).
    #[error("peer does not support extended_master_secret (RFC 7627), which we require")]
    NoExtendedMasterSecret,
    /// The peer cannot speak DTLS 1.2.
    #[error("peer does not offer DTLS 1.2 (version {0:#06x})")]
    ProtocolVersion(u16),
    /// A parameter is syntactically valid but not allowed (e.g. a profile we did not offer).
    #[error("illegal parameter: {0}")]
    IllegalParameter(&'static str),
    /// The peer sent no certificate although we require one (WebRTC authenticates both ends).
    #[error("peer sent no certificate")]
    NoCertificate,
    /// The peer's certificate could not be parsed.
    #[error("bad peer certificate: {0}")]
    BadCertificate(&'static str),
    /// The peer's certificate uses a key type we cannot verify.
    #[error("unsupported peer certificate key: {0}")]
    UnsupportedCertificate(&'static str),
    /// The certificate is not the one the signalling (SDP a=fingerprint) announced.
    #[error("peer certificate fingerprint sha-256 {actual} does not match the expected {expected}")]
    FingerprintMismatch {
        /// From SDP.
        expected: Fingerprint,
        /// Of the certificate the peer sent.
        actual: Fingerprint,
    },
    /// A ServerKeyExchange/CertificateVerify signature or a Finished did not verify.
    #[error("{0} did not verify")]
    DecryptError(&'static str),
    /// The peer tried to renegotiate (we never do, RFC 5746).
    #[error("peer attempted renegotiation")]
    Renegotiation,
    /// The peer sent a fatal alert.
    #[error("peer sent fatal alert {0}")]
    AlertReceived(u8),
    /// The peer stopped answering: our flight was retransmitted the maximum number of times.
    #[error("handshake timed out after {0} retransmissions")]
    Timeout(u32),
    /// Application data before the handshake completed, or after close or failure.
    #[error("not connected")]
    NotConnected,
    /// Application data larger than one record may carry (2^14 bytes, RFC 5246 §6.2.1).
    #[error("application data of {0} bytes exceeds one record (16384)")]
    RecordTooLarge(usize),
    /// A local failure (crypto library refused a key, ...).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl DtlsError {
    /// The fatal alert to send for this error, or `None` when none is due (the peer already
    /// alerted us, or it has gone silent).
    pub fn alert(&self) -> Option<u8> {
        use DtlsError::*;
        Some(match self {
            Decode(_) => alert::DECODE_ERROR,
            UnexpectedMessage { .. } => alert::UNEXPECTED_MESSAGE,
            NoCommon(_) | NoExtendedMasterSecret | NoCertificate | Renegotiation => {
                alert::HANDSHAKE_FAILURE
            }
            ProtocolVersion(_) => alert::PROTOCOL_VERSION,
            IllegalParameter(_) => alert::ILLEGAL_PARAMETER,
            BadCertificate(_) | FingerprintMismatch { .. } => alert::BAD_CERTIFICATE,
            UnsupportedCertificate(_) => alert::UNSUPPORTED_CERTIFICATE,
            DecryptError(_) => alert::DECRYPT_ERROR,
            Internal(_) => alert::INTERNAL_ERROR,
            AlertReceived(_) | Timeout(_) | NotConnected | RecordTooLarge(_) => return None,
        })
    }
}
