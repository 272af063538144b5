//! The SRTP protection profiles we speak, as DTLS-SRTP names them (RFC 5764 §4.1.2,
//! RFC 7714 §14.2).

/// An SRTP protection profile negotiated through the DTLS `use_srtp` extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (RFC 5764): AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    Aes128CmSha1_80,
    /// SRTP_AEAD_AES_128_GCM (RFC 7714): AES-128-GCM, 128-bit tag.
    AeadAes128Gcm,
}

impl SrtpProfile {
    /// Our preference order when choosing from a peer's list: GCM is both stronger and,
    /// with AES-NI, cheaper per packet than CM + HMAC-SHA1.
    pub const PREFERENCE: [SrtpProfile; 2] =
        [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80];

    /// The two-byte SRTPProtectionProfile value on the wire.
    pub fn id(self) -> u16 {
        match self {
            SrtpProfile::Aes128CmSha1_80 => 0x0001,
            SrtpProfile::AeadAes128Gcm => 0x0007,
        }
    }

    /// The profile for a wire value, if we support it.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            0x0001 => Some(SrtpProfile::Aes128CmSha1_80),
            0x0007 => Some(SrtpProfile::AeadAes128Gcm),
            _ => None,
        }
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes (RFC 3711 uses 112 bits; RFC 7714 §12 uses 96).
    pub fn salt_len(self) -> usize {
        match self {
            SrtpProfile::Aes128CmSha1_80 => 14,
            SrtpProfile::AeadAes128Gcm => 12,
        }
    }

    /// Bytes the SRTP transform appends to an RTP packet: the authentication tag
    /// (RFC 3711 §4.2: HMAC-SHA1 truncated to 80 bits; RFC 7714 §13.2: the full GCM tag).
    pub fn rtp_overhead(self) -> usize {
        match self {
            SrtpProfile::Aes128CmSha1_80 => 10,
            SrtpProfile::AeadAes128Gcm => 16,
        }
    }

    /// Bytes the SRTCP transform appends to an RTCP packet: the tag plus the 4-byte
    /// E-flag/SRTCP-index word (RFC 3711 §3.4, RFC 7714 §9).
    pub fn rtcp_overhead(self) -> usize {
        self.rtp_overhead() + 4
    }

    /// How many bytes to export from DTLS (RFC 5764 §4.2): two keys and two salts.
    pub fn keying_material_len(self) -> usize {
        2 * (self.key_len() + self.salt_len())
    }
}
