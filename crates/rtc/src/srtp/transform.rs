//! The per-packet cryptographic transforms, with keys built once per session.
//!
//! * AES_CM_128_HMAC_SHA1_80: AES-128 in counter mode (RFC 3711 §4.1.1) and HMAC-SHA1
//!   truncated to 80 bits (§4.2.1) over the packet and the ROC (RTP, §4.2) or the
//!   E-flag/index word (RTCP, §3.4).
//! * AEAD_AES_128_GCM: AES-128-GCM with the RTP header (RFC 7714 §8.2) or the RTCP header and
//!   E-flag/index word (§9.2, §9.3) as associated data, and a 16-byte tag.
//!
//! Every function works in place on the caller's buffer, `buf[..len]` being the packet. On an
//! error the bytes of the buffer are unspecified.

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

use super::kdf::SessionKeys;
use super::{SrtpError, SrtpProfile};

const CM_TAG: usize = 10;
const GCM_TAG: usize = 16;
/// Length of the RTCP header that stays in the clear: first word plus the sender's SSRC.
pub(crate) const RTCP_HEADER: usize = 8;
/// The E-flag of the E-flag/SRTCP-index word (RFC 3711 §3.4).
pub(crate) const E_FLAG: u32 = 0x8000_0000;

/// One direction's keys for SRTP or for SRTCP.
pub(crate) enum Transform {
    /// Boxed: the AES key schedule and the HMAC state are ~1.7 KB, GCM's key is a pointer.
    Cm(Box<CmKeys>),
    Gcm {
        key: LessSafeKey,
        salt: [u8; 12],
    },
}

/// AES-CM keys: the counter-mode cipher, the HMAC-SHA1 key and the 112-bit session salt.
pub(crate) struct CmKeys {
    cipher: EncryptingKey,
    auth: hmac::Key,
    salt: [u8; 14],
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transform::Cm(_) => "Transform::Cm",
            Transform::Gcm { .. } => "Transform::Gcm",
        })
    }
}

impl Transform {
    /// Builds the aws-lc key objects for `keys`; done once per session, never per packet.
    pub(crate) fn new(profile: SrtpProfile, keys: &SessionKeys) -> Result<Self, SrtpError> {
        Ok(match profile {
            SrtpProfile::Aes128CmSha1_80 => Transform::Cm(Box::new(CmKeys {
                cipher: EncryptingKey::ctr(UnboundCipherKey::new(&AES_128, &keys.key)?)?,
                auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &keys.auth),
                salt: keys.salt,
            })),
            SrtpProfile::AeadAes128Gcm => {
                let mut salt = [0; 12];
                salt.copy_from_slice(&keys.salt[..12]);
                Transform::Gcm {
                    key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &keys.key)?),
                    salt,
                }
            }
        })
    }

    fn tag_len(&self) -> usize {
        match self {
            Transform::Cm(_) => CM_TAG,
            Transform::Gcm { .. } => GCM_TAG,
        }
    }

    /// Encrypts and tags the RTP packet `buf[..len]` whose header is `hdr` bytes long and whose
    /// 48-bit index is `index`; returns the protected length.
    pub(crate) fn protect_rtp(
        &self,
        buf: &mut [u8],
        hdr: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        if hdr > len {
            return Err(SrtpError::TooShort);
        }
        let out_len = len + self.tag_len();
        let pkt = buf.get_mut(..out_len).ok_or(SrtpError::BufferTooSmall)?;
        match self {
            Transform::Cm(cm) => {
                let CmKeys { cipher, auth, salt } = &**cm;
                ctr(cipher, cm_iv(salt, ssrc, index), slice(pkt, hdr, len)?)?;
                let tag = hmac_sha1(auth, slice(pkt, 0, len)?, &roc_bytes(index));
                slice(pkt, len, out_len)?.copy_from_slice(&tag.as_ref()[..CM_TAG]);
            }
            Transform::Gcm { key, salt } => {
                let (head, rest) = split(pkt, hdr)?;
                let body = slice(rest, 0, len - hdr)?;
                let tag = key.seal_in_place_separate_tag(
                    gcm_nonce(salt, ssrc, index),
                    Aad::from(&*head),
                    body,
                )?;
                slice(rest, len - hdr, out_len - hdr)?.copy_from_slice(tag.as_ref());
            }
        }
        Ok(out_len)
    }

    /// Verifies and decrypts the SRTP packet `buf[..len]`; returns the plaintext length.
    pub(crate) fn unprotect_rtp(
        &self,
        buf: &mut [u8],
        hdr: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        let plain_len = len
            .checked_sub(self.tag_len())
            .filter(|&n| n >= hdr)
            .ok_or(SrtpError::TooShort)?;
        let pkt = buf.get_mut(..len).ok_or(SrtpError::TooShort)?;
        match self {
            Transform::Cm(cm) => {
                let CmKeys { cipher, auth, salt } = &**cm;
                let (authed, tag) = split(pkt, plain_len)?;
                let expected = hmac_sha1(auth, authed, &roc_bytes(index));
                verify_slices_are_equal(&expected.as_ref()[..CM_TAG], tag)
                    .map_err(|_| SrtpError::AuthFailed)?;
                ctr(
                    cipher,
                    cm_iv(salt, ssrc, index),
                    slice(pkt, hdr, plain_len)?,
                )?;
            }
            Transform::Gcm { key, salt } => {
                let (authed, tag) = split(pkt, plain_len)?;
                let (head, body) = split(authed, hdr)?;
                key.open_in_place_separate_tag(
                    gcm_nonce(salt, ssrc, index),
                    Aad::from(&*head),
                    tag,
                    body,
                )
                .map_err(|_| SrtpError::AuthFailed)?;
            }
        }
        Ok(plain_len)
    }

    /// Protects the RTCP packet `buf[..len]` with SRTCP index `index` (31 bits), encrypting
    /// it if `encrypt` (the E-flag); returns the protected length.
    pub(crate) fn protect_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
        encrypt: bool,
    ) -> Result<usize, SrtpError> {
        let word = (index | if encrypt { E_FLAG } else { 0 }).to_be_bytes();
        let out_len = len + self.tag_len() + 4;
        let pkt = buf.get_mut(..out_len).ok_or(SrtpError::BufferTooSmall)?;
        let index = u64::from(index);
        match self {
            Transform::Cm(cm) => {
                let CmKeys { cipher, auth, salt } = &**cm;
                // RFC 3711 §3.4: header | payload | E+index | tag.
                if encrypt {
                    ctr(
                        cipher,
                        cm_iv(salt, ssrc, index),
                        slice(pkt, RTCP_HEADER, len)?,
                    )?;
                }
                slice(pkt, len, len + 4)?.copy_from_slice(&word);
                let tag = hmac_sha1(auth, slice(pkt, 0, len + 4)?, &[]);
                slice(pkt, len + 4, out_len)?.copy_from_slice(&tag.as_ref()[..CM_TAG]);
            }
            Transform::Gcm { key, salt } => {
                // RFC 7714 §9: header | payload | tag | E+index.
                let nonce = gcm_nonce(salt, ssrc, index);
                let tag = if encrypt {
                    let aad = rtcp_aad(pkt, &word)?;
                    let body = slice(pkt, RTCP_HEADER, len)?;
                    key.seal_in_place_separate_tag(nonce, Aad::from(&aad), body)?
                } else {
                    // §9.3: the whole packet and the word are the AAD; nothing is encrypted.
                    slice(pkt, len, len + 4)?.copy_from_slice(&word);
                    let aad = slice(pkt, 0, len + 4)?;
                    key.seal_in_place_separate_tag(nonce, Aad::from(&*aad), &mut [])?
                };
                slice(pkt, len, len + GCM_TAG)?.copy_from_slice(tag.as_ref());
                slice(pkt, len + GCM_TAG, out_len)?.copy_from_slice(&word);
            }
        }
        Ok(out_len)
    }

    /// Reads the SSRC and the E-flag/index word of an SRTCP packet without verifying it.
    pub(crate) fn rtcp_trailer(&self, pkt: &[u8]) -> Result<(u32, u32), SrtpError> {
        let min = RTCP_HEADER + 4 + self.tag_len();
        if pkt.len() < min {
            return Err(SrtpError::TooShort);
        }
        let at = match self {
            Transform::Cm(_) => pkt.len() - CM_TAG - 4,
            Transform::Gcm { .. } => pkt.len() - 4,
        };
        Ok((be32(pkt, 4)?, be32(pkt, at)?))
    }

    /// Verifies (and if the E-flag says so, decrypts) the SRTCP packet `buf[..len]` with the
    /// `ssrc` and `word` read by [`Transform::rtcp_trailer`]; returns the RTCP length.
    pub(crate) fn unprotect_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        word: u32,
    ) -> Result<usize, SrtpError> {
        let plain_len = len
            .checked_sub(self.tag_len() + 4)
            .filter(|&n| n >= RTCP_HEADER)
            .ok_or(SrtpError::TooShort)?;
        let pkt = buf.get_mut(..len).ok_or(SrtpError::TooShort)?;
        let encrypted = word & E_FLAG != 0;
        let index = u64::from(word & !E_FLAG);
        let word = word.to_be_bytes();
        match self {
            Transform::Cm(cm) => {
                let CmKeys { cipher, auth, salt } = &**cm;
                let (authed, tag) = split(pkt, plain_len + 4)?;
                let expected = hmac_sha1(auth, authed, &[]);
                verify_slices_are_equal(&expected.as_ref()[..CM_TAG], tag)
                    .map_err(|_| SrtpError::AuthFailed)?;
                if encrypted {
                    let body = slice(pkt, RTCP_HEADER, plain_len)?;
                    ctr(cipher, cm_iv(salt, ssrc, index), body)?;
                }
            }
            Transform::Gcm { key, salt } => {
                let nonce = gcm_nonce(salt, ssrc, index);
                let mut tag = [0u8; GCM_TAG];
                tag.copy_from_slice(slice(pkt, plain_len, plain_len + GCM_TAG)?);
                let opened = if encrypted {
                    let aad = rtcp_aad(pkt, &word)?;
                    let body = slice(pkt, RTCP_HEADER, plain_len)?;
                    key.open_in_place_separate_tag(nonce, Aad::from(&aad), &tag, body)
                } else {
                    // §9.3: AAD is the packet followed by the word, which on the wire comes
                    // after the tag; move the word next to the packet to make it contiguous.
                    slice(pkt, plain_len, plain_len + 4)?.copy_from_slice(&word);
                    let aad = slice(pkt, 0, plain_len + 4)?;
                    key.open_in_place_separate_tag(nonce, Aad::from(&*aad), &tag, &mut [])
                };
                opened.map_err(|_| SrtpError::AuthFailed)?;
            }
        }
        Ok(plain_len)
    }
}

/// `buf[from..to]`, or `TooShort` instead of a panic.
fn slice(buf: &mut [u8], from: usize, to: usize) -> Result<&mut [u8], SrtpError> {
    buf.get_mut(from..to).ok_or(SrtpError::TooShort)
}

/// `buf.split_at_mut(at)`, or `TooShort` instead of a panic.
fn split(buf: &mut [u8], at: usize) -> Result<(&mut [u8], &mut [u8]), SrtpError> {
    buf.split_at_mut_checked(at).ok_or(SrtpError::TooShort)
}

/// The big-endian `u32` at `buf[at..at + 4]`.
pub(crate) fn be32(buf: &[u8], at: usize) -> Result<u32, SrtpError> {
    let b = buf.get(at..at + 4).ok_or(SrtpError::TooShort)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The ROC as the 32 bits appended to the authenticated portion (RFC 3711 §4.2).
fn roc_bytes(index: u64) -> [u8; 4] {
    ((index >> 16) as u32).to_be_bytes()
}

/// RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
pub(crate) fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[4..8].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..14].copy_from_slice(&index.to_be_bytes()[2..]);
    for (b, s) in iv.iter_mut().zip(salt) {
        *b ^= s;
    }
    iv
}

/// RFC 7714 §8.1 / §9.1: IV = (0x0000 || SSRC || 48-bit index) XOR salt, where the index is
/// ROC || SEQ for SRTP and 0x0000 || 0 || 31-bit SRTCP index for SRTCP.
fn gcm_nonce(salt: &[u8; 12], ssrc: u32, index: u64) -> Nonce {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
    for (b, s) in iv.iter_mut().zip(salt) {
        *b ^= s;
    }
    Nonce::assume_unique_for_key(iv)
}

/// RFC 7714 §9.2: the AAD of an encrypted SRTCP packet is its 8-byte header and the
/// E-flag/index word.
fn rtcp_aad(pkt: &[u8], word: &[u8; 4]) -> Result<[u8; 12], SrtpError> {
    let mut aad = [0u8; 12];
    aad[..8].copy_from_slice(pkt.get(..RTCP_HEADER).ok_or(SrtpError::TooShort)?);
    aad[8..].copy_from_slice(word);
    Ok(aad)
}

/// AES-CTR keystream XOR, in place, from the 128-bit counter block `iv`. aws-lc increments the
/// whole block; RFC 3711 increments the low 16 bits, which is the same below 2^16 blocks.
pub(crate) fn ctr(key: &EncryptingKey, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
    key.less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))?;
    Ok(())
}

fn hmac_sha1(key: &hmac::Key, data: &[u8], trailer: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(data);
    ctx.update(trailer);
    ctx.sign()
}
