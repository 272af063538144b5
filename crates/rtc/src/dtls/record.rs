//! The DTLS 1.2 record layer (RFC 6347 §4.1): headers, AES-128-GCM protection (RFC 5288) and
//! the anti-replay window (§4.1.2.6).

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::codec::{Reader, put_u16, put_uint};
use super::error::DtlsError;

/// ContentType values (RFC 5246 §6.2.1).
pub mod content_type {
    #![allow(missing_docs)]
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
}

/// Record header length: type(1) version(2) epoch(2) sequence_number(6) length(2).
pub const HEADER_LEN: usize = 13;
/// Bytes GCM adds to a record: explicit nonce (8) and tag (16).
pub const AEAD_OVERHEAD: usize = 8 + 16;
/// Largest record fragment we accept (RFC 6347 §4.1: 2^14 + 2048 for ciphertext).
const MAX_FRAGMENT: usize = 16384 + 2048;
/// Largest 48-bit sequence number.
pub const MAX_SEQ: u64 = (1 << 48) - 1;

/// One record as found in a datagram; `fragment` borrows the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// ContentType.
    pub content_type: u8,
    /// ProtocolVersion of the record.
    pub version: u16,
    /// Epoch.
    pub epoch: u16,
    /// 48-bit sequence number.
    pub seq: u64,
    /// The (possibly protected) fragment.
    pub fragment: &'a [u8],
}

impl<'a> Record<'a> {
    /// Reads the next record from `r`. A datagram may carry several (RFC 6347 §4.1.1); on a
    /// malformed header the rest of the datagram is unusable and the caller drops it.
    pub fn parse(r: &mut Reader<'a>) -> Result<Self, DtlsError> {
        let content_type = r.u8()?;
        let version = r.u16()?;
        let epoch = r.u16()?;
        let seq = r.uint(6)?;
        let fragment = r.vec(2)?;
        if !(20..=23).contains(&content_type)
            || version >> 8 != 0xfe
            || fragment.len() > MAX_FRAGMENT
        {
            return Err(DtlsError::Decode("record header"));
        }
        Ok(Record {
            content_type,
            version,
            epoch,
            seq,
            fragment,
        })
    }
}

fn put_header(out: &mut Vec<u8>, content_type: u8, version: u16, epoch: u16, seq: u64, len: usize) {
    out.push(content_type);
    put_u16(out, version);
    put_u16(out, epoch);
    put_uint(out, seq, 6);
    put_u16(out, len as u16);
}

/// Appends an unprotected (epoch 0) record.
pub fn write_plain(out: &mut Vec<u8>, content_type: u8, version: u16, seq: u64, payload: &[u8]) {
    put_header(out, content_type, version, 0, seq, payload.len());
    out.extend_from_slice(payload);
}

/// AES-128-GCM protection for one direction of one epoch (RFC 5288 §3).
pub struct Cipher {
    key: LessSafeKey,
    salt: [u8; 4],
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(AES-128-GCM)")
    }
}

impl Cipher {
    /// A cipher from a write key and its 4-byte implicit salt.
    pub fn new(key: &[u8; 16], salt: [u8; 4]) -> Result<Self, DtlsError> {
        let key = UnboundKey::new(&AES_128_GCM, key).map_err(|_| DtlsError::Internal("AES key"))?;
        Ok(Cipher {
            key: LessSafeKey::new(key),
            salt,
        })
    }

    fn nonce(&self, explicit: &[u8; 8]) -> Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(explicit);
        Nonce::assume_unique_for_key(n)
    }

    fn aad(seq_num: &[u8; 8], content_type: u8, version: u16, len: usize) -> [u8; 13] {
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(seq_num);
        aad[8] = content_type;
        aad[9..11].copy_from_slice(&version.to_be_bytes());
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        aad
    }

    /// Appends a protected record. The explicit nonce is epoch|sequence_number, unique per key
    /// as RFC 6347 §4.1.2.1 guarantees sequence numbers are never reused in an epoch.
    pub fn seal(
        &self,
        out: &mut Vec<u8>,
        content_type: u8,
        epoch: u16,
        seq: u64,
        payload: &[u8],
    ) -> Result<(), DtlsError> {
        let version = super::msgs::DTLS1_2;
        let seq_num = ((u64::from(epoch) << 48) | seq).to_be_bytes();
        put_header(
            out,
            content_type,
            version,
            epoch,
            seq,
            payload.len() + AEAD_OVERHEAD,
        );
        out.extend_from_slice(&seq_num);
        let start = out.len();
        out.extend_from_slice(payload);
        let aad = Self::aad(&seq_num, content_type, version, payload.len());
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(&seq_num), Aad::from(aad), &mut out[start..])
            .map_err(|_| DtlsError::Internal("AES-GCM seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts a record's fragment into `buf` (reused); `None` if it does not authenticate,
    /// in which case the record is silently dropped (RFC 6347 §4.1.2.7).
    pub fn open<'b>(&self, rec: &Record<'_>, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
        let (explicit, ciphertext) = rec.fragment.split_first_chunk::<8>()?;
        let plain_len = ciphertext.len().checked_sub(16)?;
        let seq_num = ((u64::from(rec.epoch) << 48) | rec.seq).to_be_bytes();
        let aad = Self::aad(&seq_num, rec.content_type, rec.version, plain_len);
        buf.clear();
        buf.extend_from_slice(ciphertext);
        let plain = self
            .key
            .open_in_place(self.nonce(explicit), Aad::from(aad), buf)
            .ok()?;
        Some(plain)
    }
}

/// A sliding anti-replay window of 64 sequence numbers (RFC 6347 §4.1.2.6, RFC 4303 §3.4.3).
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Highest sequence number accepted so far, plus one (0 = nothing seen).
    next: u64,
    /// Bit i set: `next - 1 - i` was seen.
    bits: u64,
}

impl ReplayWindow {
    /// One past the highest sequence number accepted (the one expected next).
    pub fn next(&self) -> u64 {
        self.next
    }

    /// True if `seq` is new and not too old.
    pub fn check(&self, seq: u64) -> bool {
        if seq >= self.next {
            return true;
        }
        let age = self.next - 1 - seq;
        age < 64 && self.bits & (1 << age) == 0
    }

    /// Records `seq` as seen; call only after the record authenticated.
    pub fn mark(&mut self, seq: u64) {
        if seq >= self.next {
            let shift = seq + 1 - self.next;
            self.bits = if shift >= 64 { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.next = seq + 1;
        } else {
            let age = self.next - 1 - seq;
            if age < 64 {
                self.bits |= 1 << age;
            }
        }
    }
}
