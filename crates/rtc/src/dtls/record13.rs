//! The DTLS 1.3 protected record (RFC 9147 §4): the unified header, AES-128-GCM with the TLS 1.3
//! per-record nonce (RFC 8446 §5.3), the inner plaintext's content type and padding (§5.2 of
//! RFC 8446), and record number encryption (RFC 9147 §4.2.3). Epoch 0 keeps the DTLS 1.2
//! plaintext header of [`super::record`].

use aws_lc_rs::aead::quic::{AES_128, HeaderProtectionKey};
use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::codec::Reader;
use super::error::DtlsError;
use super::schedule::TrafficKeys;

/// ContentType ack (RFC 9147 §7).
pub const ACK: u8 = 26;
/// Bytes a protected record adds to its content: header (5), content type (1), tag (16).
pub const OVERHEAD: usize = 5 + 1 + 16;
/// Largest ciphertext we accept (RFC 8446 §5.2: 2^14 + 256).
const MAX_CIPHERTEXT: usize = 16384 + 256;

/// True if `first_byte` starts a unified header (0b001xxxxx, RFC 9147 §4).
pub fn is_unified(first_byte: u8) -> bool {
    first_byte & 0xe0 == 0x20
}

/// A protected record as found in a datagram, before record number decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciphertext<'a> {
    /// The header as received (its sequence number bytes still encrypted).
    pub header: &'a [u8],
    /// The low two bits of the epoch.
    pub epoch_bits: u8,
    /// 1 or 2 bytes of (encrypted) sequence number.
    pub seq_len: usize,
    /// encrypted_record.
    pub payload: &'a [u8],
}

impl<'a> Ciphertext<'a> {
    /// Reads one unified-header record. Without the length flag it runs to the end of the
    /// datagram. We never negotiate connection IDs, so a record with one is malformed.
    pub fn parse(r: &mut Reader<'a>) -> Result<Self, DtlsError> {
        let all = r.clone();
        let flags = r.u8()?;
        if !is_unified(flags) || flags & 0x10 != 0 {
            return Err(DtlsError::Decode("unified header"));
        }
        let seq_len = if flags & 0x08 != 0 { 2 } else { 1 };
        r.take(seq_len)?;
        let payload = if flags & 0x04 != 0 {
            r.vec(2)?
        } else {
            r.rest()
        };
        if payload.len() > MAX_CIPHERTEXT || payload.len() < 16 + 1 {
            return Err(DtlsError::Decode("protected record length"));
        }
        let header_len = 1 + seq_len + if flags & 0x04 != 0 { 2 } else { 0 };
        Ok(Ciphertext {
            header: all.clone().take(header_len)?,
            epoch_bits: flags & 0x03,
            seq_len,
            payload,
        })
    }
}

/// The full sequence number closest to `next` (the one expected) whose low `bits` bits are
/// `low` (RFC 9147 §4.2.2).
pub fn reconstruct_seq(next: u64, low: u64, bits: u32) -> u64 {
    let span = 1u64 << bits;
    let candidate = (next & !(span - 1)) | low;
    let half = span / 2;
    if candidate + half < next && candidate + span <= super::record::MAX_SEQ {
        candidate + span
    } else if candidate > next + half && candidate >= span {
        candidate - span
    } else {
        candidate
    }
}

/// A decrypted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Full sequence number.
    pub seq: u64,
    /// The real content type from the inner plaintext.
    pub content_type: u8,
    /// The content.
    pub content: Vec<u8>,
}

/// Protection for one direction of one epoch.
pub struct Cipher13 {
    key: LessSafeKey,
    iv: [u8; 12],
    sn: HeaderProtectionKey,
}

impl std::fmt::Debug for Cipher13 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher13(AES-128-GCM)")
    }
}

impl Cipher13 {
    /// A cipher from traffic keys.
    pub fn new(keys: &TrafficKeys) -> Result<Self, DtlsError> {
        let err = |_| DtlsError::Internal("AES key");
        Ok(Cipher13 {
            key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &keys.key).map_err(err)?),
            iv: keys.iv,
            sn: HeaderProtectionKey::new(&AES_128, &keys.sn).map_err(err)?,
        })
    }

    /// The per-record nonce: write_iv XOR the 64-bit sequence number (RFC 8446 §5.3; RFC 9147
    /// §4 uses the 48-bit sequence number without the epoch).
    fn nonce(&self, seq: u64) -> Nonce {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
            *b ^= s;
        }
        Nonce::assume_unique_for_key(n)
    }

    /// The record number mask: AES-ECB(sn_key, first 16 bytes of ciphertext) (§4.2.3).
    fn mask(&self, ciphertext: &[u8]) -> Option<[u8; 5]> {
        self.sn.new_mask(ciphertext.get(..16)?).ok()
    }

    /// Appends a protected record of `content_type` in `epoch` with sequence number `seq`:
    /// flags 001 C=0 S=1 L=1 and the epoch's low bits, a 16-bit sequence number, a length.
    pub fn seal(
        &self,
        out: &mut Vec<u8>,
        content_type: u8,
        epoch: u16,
        seq: u64,
        content: &[u8],
    ) -> Result<(), DtlsError> {
        let len = content.len() + 1 + 16;
        let header = [
            0x2c | (epoch & 3) as u8,
            (seq >> 8) as u8,
            seq as u8,
            (len >> 8) as u8,
            len as u8,
        ];
        let start = out.len();
        out.extend_from_slice(&header);
        out.extend_from_slice(content);
        out.push(content_type);
        let body = start + header.len();
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(seq), Aad::from(header), &mut out[body..])
            .map_err(|_| DtlsError::Internal("AES-GCM seal"))?;
        out.extend_from_slice(tag.as_ref());
        let mask = self
            .mask(&out[body..])
            .ok_or(DtlsError::Internal("record number mask"))?;
        out[start + 1] ^= mask[0];
        out[start + 2] ^= mask[1];
        Ok(())
    }

    /// Decrypts a record whose full sequence number is reconstructed against `next_seq`.
    /// `None` if it does not authenticate (dropped silently, RFC 9147 §4.5.2).
    pub fn open(&self, rec: &Ciphertext<'_>, next_seq: u64) -> Option<Opened> {
        let mask = self.mask(rec.payload)?;
        let mut header = rec.header.to_vec();
        let mut low = 0u64;
        let seq_bytes = header.get_mut(1..1 + rec.seq_len)?;
        for (b, m) in seq_bytes.iter_mut().zip(mask) {
            *b ^= m;
            low = (low << 8) | u64::from(*b);
        }
        let seq = reconstruct_seq(next_seq, low, 8 * rec.seq_len as u32);
        let mut buf = rec.payload.to_vec();
        let plain_len = self
            .key
            .open_in_place(self.nonce(seq), Aad::from(&header), &mut buf)
            .ok()?
            .len();
        buf.truncate(plain_len);
        // DTLSInnerPlaintext: content, type, zero padding (RFC 8446 §5.2).
        let type_at = buf.iter().rposition(|&b| b != 0)?;
        let content_type = buf[type_at];
        buf.truncate(type_at);
        Some(Opened {
            seq,
            content_type,
            content: buf,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(b: u8) -> TrafficKeys {
        TrafficKeys {
            key: [b; 16],
            iv: [b ^ 0x55; 12],
            sn: [b ^ 0xaa; 16],
        }
    }

    #[test]
    fn seal_open_round_trip_with_masked_sequence_numbers() {
        let c = Cipher13::new(&keys(1)).unwrap();
        for seq in [0u64, 1, 255, 256, 0x1_2345, 70_000] {
            let mut out = Vec::new();
            c.seal(&mut out, 22, 2, seq, b"hello").unwrap();
            assert_eq!(out[0], 0x2e);
            assert_eq!(out.len(), OVERHEAD + 5);
            let rec = Ciphertext::parse(&mut Reader::new(&out, "t")).unwrap();
            assert_eq!(rec.epoch_bits, 2);
            let opened = c.open(&rec, seq.saturating_sub(3)).unwrap();
            assert_eq!((opened.seq, opened.content_type), (seq, 22));
            assert_eq!(opened.content, b"hello");
            // A wrong key does not authenticate.
            assert!(Cipher13::new(&keys(2)).unwrap().open(&rec, seq).is_none());
        }
    }

    /// The sequence number on the wire is encrypted (§4.2.3): two records with consecutive
    /// numbers do not show them.
    #[test]
    fn sequence_numbers_are_encrypted() {
        let c = Cipher13::new(&keys(3)).unwrap();
        let masked: Vec<[u8; 2]> = (0..8u64)
            .map(|seq| {
                let mut out = Vec::new();
                c.seal(&mut out, 23, 3, seq, b"x").unwrap();
                [out[1], out[2]]
            })
            .collect();
        let plain = (0..8u16).map(|s| s.to_be_bytes()).collect::<Vec<_>>();
        assert_ne!(masked, plain);
    }

    #[test]
    fn reconstruction_picks_the_closest() {
        assert_eq!(reconstruct_seq(0, 5, 16), 5);
        assert_eq!(reconstruct_seq(0x1_0000, 0xffff, 16), 0xffff);
        assert_eq!(reconstruct_seq(0xfff0, 0x0002, 16), 0x1_0002);
        assert_eq!(reconstruct_seq(300, 0x2c, 8), 300);
        assert_eq!(reconstruct_seq(300, 0x20, 8), 288);
    }

    #[test]
    fn parse_rejects_connection_ids_and_short_records() {
        let mut rec = vec![0x3e, 0, 0, 0, 20];
        rec.extend([0; 20]);
        assert!(Ciphertext::parse(&mut Reader::new(&rec, "t")).is_err());
        let short = [0x2e, 0, 0, 0, 4, 1, 2, 3, 4];
        assert!(Ciphertext::parse(&mut Reader::new(&short, "t")).is_err());
        // Without L the record runs to the end of the datagram; with S=0 one sequence byte.
        let mut no_len = vec![0x22, 7];
        no_len.extend([9; 17]);
        let r = Ciphertext::parse(&mut Reader::new(&no_len, "t")).unwrap();
        assert_eq!((r.seq_len, r.payload.len(), r.header.len()), (1, 17, 2));
    }
}
