//! Writing RTP packets (RFC 3550 §5.1) with RFC 8285 extensions.

use super::ext::Form;
use super::{FIXED_HEADER_LEN, PROFILE_ONE_BYTE, PROFILE_TWO_BYTE, RtpError};

/// The header of a packet to write. Extensions go out in the one-byte form when every element
/// fits it (ID 1–14, 1–16 bytes, RFC 8285 §4.2), in the two-byte form otherwise (§4.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpHeader<'b> {
    /// The M bit.
    pub marker: bool,
    /// Payload type, 0–127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Contributing sources, at most 15.
    pub csrcs: &'b [u32],
    /// Header extensions as `(id, value)`, written in this order.
    pub extensions: &'b [(u8, &'b [u8])],
}

impl RtpHeader<'_> {
    /// Which RFC 8285 form the extensions need, `None` without extensions.
    fn ext_form(&self) -> Result<Option<Form>, RtpError> {
        if self.extensions.is_empty() {
            return Ok(None);
        }
        let one_byte =
            |&(id, v): &(u8, &[u8])| (1..=14).contains(&id) && (1..=16).contains(&v.len());
        if self.extensions.iter().all(one_byte) {
            return Ok(Some(Form::OneByte));
        }
        match self
            .extensions
            .iter()
            .find(|(id, v)| *id == 0 || v.len() > 255)
        {
            Some(&(id, v)) => Err(RtpError::BadExtension { id, len: v.len() }),
            None => Ok(Some(Form::TwoByte)),
        }
    }

    /// Bytes of extension elements, before padding to a 32-bit word.
    fn ext_data_len(&self, form: Form) -> usize {
        let per = if form == Form::OneByte { 1 } else { 2 };
        self.extensions.iter().map(|(_, v)| per + v.len()).sum()
    }

    /// Length of fixed header, CSRCs and extension block; checks every field fits.
    pub fn header_len(&self) -> Result<usize, RtpError> {
        if self.csrcs.len() > 15 {
            return Err(RtpError::TooManyCsrcs(self.csrcs.len()));
        }
        if self.payload_type > 127 {
            return Err(RtpError::BadPayloadType(self.payload_type));
        }
        let mut len = FIXED_HEADER_LEN + 4 * self.csrcs.len();
        if let Some(form) = self.ext_form()? {
            let words = self.ext_data_len(form).div_ceil(4);
            if words > usize::from(u16::MAX) {
                return Err(RtpError::ExtensionTooLong(4 * words));
            }
            len += 4 + 4 * words;
        }
        Ok(len)
    }

    /// Writes header, `payload` and `padding` octets (0: none; otherwise the P bit is set and
    /// the last octet holds the count) into `out`. Returns the packet length.
    pub fn write(&self, payload: &[u8], padding: u8, out: &mut [u8]) -> Result<usize, RtpError> {
        let header_len = self.header_len()?;
        let need = header_len + payload.len() + usize::from(padding);
        if out.len() < need {
            return Err(RtpError::BufferTooSmall {
                need,
                have: out.len(),
            });
        }
        let form = self.ext_form()?;
        let mut w = Cursor { out, at: 0 };
        let flags = (u8::from(padding > 0) << 5) | (u8::from(form.is_some()) << 4);
        w.put(&[0x80 | flags | self.csrcs.len() as u8]);
        w.put(&[(u8::from(self.marker) << 7) | self.payload_type]);
        w.put(&self.sequence_number.to_be_bytes());
        w.put(&self.timestamp.to_be_bytes());
        w.put(&self.ssrc.to_be_bytes());
        for c in self.csrcs {
            w.put(&c.to_be_bytes());
        }
        if let Some(form) = form {
            self.write_extensions(form, header_len, &mut w);
        }
        w.put(payload);
        if padding > 0 {
            w.zeros(usize::from(padding) - 1);
            w.put(&[padding]);
        }
        Ok(w.at)
    }

    /// Like [`write`](Self::write), replacing the contents of a reused `Vec`.
    pub fn write_vec(
        &self,
        payload: &[u8],
        padding: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), RtpError> {
        out.clear();
        out.resize(self.header_len()? + payload.len() + usize::from(padding), 0);
        self.write(payload, padding, out).map(|_| ())
    }

    fn write_extensions(&self, form: Form, header_len: usize, w: &mut Cursor<'_>) {
        let words = (header_len - w.at - 4) / 4;
        let profile = if form == Form::OneByte {
            PROFILE_ONE_BYTE
        } else {
            PROFILE_TWO_BYTE
        };
        w.put(&profile.to_be_bytes());
        w.put(&(words as u16).to_be_bytes());
        for &(id, v) in self.extensions {
            match form {
                Form::OneByte => w.put(&[id << 4 | (v.len() as u8 - 1)]),
                Form::TwoByte => w.put(&[id, v.len() as u8]),
            }
            w.put(v);
        }
        w.zeros(header_len - w.at);
    }
}

/// A write position in a buffer already checked to be long enough.
struct Cursor<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, src: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + src.len()) {
            dst.copy_from_slice(src);
        }
        self.at += src.len();
    }
    fn zeros(&mut self, n: usize) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + n) {
            dst.fill(0);
        }
        self.at += n;
    }
}
