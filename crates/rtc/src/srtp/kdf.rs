//! Session key derivation: RFC 3711 §4.3 with the AES-CM PRF (§4.3.3) and
//! key_derivation_rate 0, which is what DTLS-SRTP uses (RFC 5764 §4.1.2). RFC 7714 §11 keeps
//! the same PRF for AEAD_AES_128_GCM, with a 96-bit salt and no authentication key.

use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;

use super::{SrtpError, SrtpProfile};

/// Which packets a set of session keys protects; picks the labels of RFC 3711 §4.3.1/§4.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Rtp,
    Rtcp,
}

impl Stream {
    /// (encryption, authentication, salt) labels.
    fn labels(self) -> [u8; 3] {
        match self {
            Stream::Rtp => [0, 1, 2],
            Stream::Rtcp => [3, 4, 5],
        }
    }
}

/// Session keys for one of SRTP or SRTCP of one direction. Only the first
/// `profile.salt_len()` bytes of `salt` are used; `auth` is unused by GCM.
#[derive(Clone)]
pub(crate) struct SessionKeys {
    pub key: [u8; 16],
    pub salt: [u8; 14],
    pub auth: [u8; 20],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

/// Derives the session encryption key, salt and (for HMAC-SHA1) the 160-bit auth key.
pub(crate) fn derive(
    profile: SrtpProfile,
    master_key: &[u8],
    master_salt: &[u8],
    stream: Stream,
) -> Result<SessionKeys, SrtpError> {
    if master_key.len() != profile.key_len() || master_salt.len() != profile.salt_len() {
        return Err(SrtpError::BadKeyLength);
    }
    let prf_key = EncryptingKey::ctr(UnboundCipherKey::new(&AES_128, master_key)?)?;
    let [enc, auth, salt] = stream.labels();
    let mut keys = SessionKeys {
        key: [0; 16],
        salt: [0; 14],
        auth: [0; 20],
    };
    prf(&prf_key, master_salt, enc, &mut keys.key)?;
    let salt_len = profile.salt_len();
    prf(&prf_key, master_salt, salt, &mut keys.salt[..salt_len])?;
    if profile == SrtpProfile::Aes128CmSha1_80 {
        prf(&prf_key, master_salt, auth, &mut keys.auth)?;
    }
    Ok(keys)
}

/// The AES-CM PRF of RFC 3711 §4.3.1/§4.3.3: the keystream of AES-CTR under the master key,
/// starting from the counter `(label << 48 XOR master_salt) * 2^16`, where (index DIV kdr)
/// is zero. A 96-bit GCM salt fills the leftmost bytes of the 112-bit field (RFC 7714 §11;
/// libsrtp and webrtc-rs agree), so the label still lands in byte 7.
pub(crate) fn prf(
    master: &EncryptingKey,
    master_salt: &[u8],
    label: u8,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    let mut iv = [0u8; 16];
    iv.get_mut(..master_salt.len())
        .ok_or(SrtpError::BadKeyLength)?
        .copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    let ctx = EncryptionContext::Iv128(FixedLength::from(iv));
    master.less_safe_encrypt(out, ctx)?;
    Ok(())
}
