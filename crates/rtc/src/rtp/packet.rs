//! The RTP packet view (RFC 3550 §5.1) and its in-place rewriting twin.

use super::ext::{self, ExtIdMap, Extensions, Form};
use super::{FIXED_HEADER_LEN, RtpError, be16, be32};

/// Where the variable parts of a validated packet are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Offset of the extension's "defined by profile" word; 0 when the X bit is clear.
    ext: usize,
    /// Fixed header + CSRCs + extension.
    header_len: usize,
    /// End of the payload: the packet length minus the padding.
    payload_end: usize,
}

impl Layout {
    /// Checks everything the accessors rely on (RFC 3550 §5.1, A.1).
    fn of(buf: &[u8]) -> Result<Self, RtpError> {
        let Some(&b0) = buf.first() else {
            return Err(RtpError::TooShort(0));
        };
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort(buf.len()));
        }
        if b0 >> 6 != 2 {
            return Err(RtpError::BadVersion(b0 >> 6));
        }
        let mut header_len = FIXED_HEADER_LEN + 4 * usize::from(b0 & 0x0f);
        let mut ext = 0;
        if b0 & 0x10 != 0 {
            if header_len + 4 > buf.len() {
                return Err(RtpError::HeaderOverrun);
            }
            ext = header_len;
            header_len += 4 + 4 * usize::from(be16(buf, ext + 2));
        }
        if header_len > buf.len() {
            return Err(RtpError::HeaderOverrun);
        }
        let mut payload_end = buf.len();
        if b0 & 0x20 != 0 {
            // The last octet counts the padding, itself included, so it is at least 1.
            let pad = buf.last().copied().unwrap_or(0);
            if pad == 0 || usize::from(pad) > buf.len() - header_len {
                return Err(RtpError::BadPadding(pad));
            }
            payload_end -= usize::from(pad);
        }
        Ok(Self {
            ext,
            header_len,
            payload_end,
        })
    }

    /// The extension form and the element bytes (after the 4-byte extension header).
    fn ext_block(self, buf: &[u8]) -> (Option<Form>, &[u8]) {
        if self.ext == 0 {
            return (None, &[]);
        }
        let data = buf.get(self.ext + 4..self.header_len).unwrap_or(&[]);
        (ext::form(be16(buf, self.ext)), data)
    }
}

/// A validated RTP packet borrowed from a datagram. Accessors never fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    l: Layout,
}

impl<'a> RtpPacket<'a> {
    /// Validates version, CSRC list, extension length and padding (RFC 3550 §5.1).
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        Ok(Self {
            buf,
            l: Layout::of(buf)?,
        })
    }

    /// The whole packet.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// The P bit.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }
    /// The X bit.
    pub fn has_extension(&self) -> bool {
        self.l.ext != 0
    }
    /// The M bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }
    /// The sequence number.
    pub fn sequence_number(&self) -> u16 {
        be16(self.buf, 2)
    }
    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }
    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }
    /// The contributing sources.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let n = usize::from(self.buf[0] & 0x0f);
        let list = self.buf.get(FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4 * n);
        list.unwrap_or(&[]).chunks_exact(4).map(|c| be32(c, 0))
    }
    /// The extension's "defined by profile" word, if the X bit is set.
    pub fn extension_profile(&self) -> Option<u16> {
        self.has_extension().then(|| be16(self.buf, self.l.ext))
    }
    /// The raw extension data after its 4-byte header (empty without extension).
    pub fn extension_data(&self) -> &'a [u8] {
        self.l.ext_block(self.buf).1
    }
    /// The RFC 8285 elements as `(id, value)`; empty for other profiles.
    pub fn extensions(&self) -> Extensions<'a> {
        let (form, data) = self.l.ext_block(self.buf);
        Extensions::new(form, data)
    }
    /// The value of extension `id`, if present.
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        self.extensions().find(|&(i, _)| i == id).map(|(_, v)| v)
    }
    /// Length of fixed header, CSRCs and extension: where the payload starts.
    pub fn header_len(&self) -> usize {
        self.l.header_len
    }
    /// The payload without padding.
    pub fn payload(&self) -> &'a [u8] {
        self.buf
            .get(self.l.header_len..self.l.payload_end)
            .unwrap_or(&[])
    }
    /// Number of padding octets at the end (0 when the P bit is clear).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.l.payload_end
    }
}

/// A validated RTP packet in a mutable buffer: the SFU rewrites each forwarded packet in place
/// for its viewer. Nothing here allocates or moves the payload.
#[derive(Debug, PartialEq, Eq)]
pub struct RtpPacketMut<'a> {
    buf: &'a mut [u8],
    l: Layout,
}

impl<'a> RtpPacketMut<'a> {
    /// Validates like [`RtpPacket::parse`].
    pub fn parse(buf: &'a mut [u8]) -> Result<Self, RtpError> {
        let l = Layout::of(buf)?;
        Ok(Self { buf, l })
    }

    /// A read-only view of the packet as it is now.
    pub fn as_packet(&self) -> RtpPacket<'_> {
        RtpPacket {
            buf: self.buf,
            l: self.l,
        }
    }
    /// Sets the M bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.buf[1] = (self.buf[1] & 0x7f) | (u8::from(marker) << 7);
    }
    /// Sets the payload type (only its low 7 bits are used).
    pub fn set_payload_type(&mut self, pt: u8) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt & 0x7f);
    }
    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        self.buf[2..4].copy_from_slice(&seq.to_be_bytes());
    }
    /// Sets the RTP timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }
    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    /// Rewrites every RFC 8285 element's ID through `map`, in place. An element whose ID maps
    /// to 0 — or to an ID its form cannot carry (above 14 in the one-byte form) — is dropped
    /// by overwriting it with zero bytes, which receivers skip as padding (RFC 8285 §4.1.1).
    /// Extensions IDs are negotiated per connection, so each viewer needs its own map.
    pub fn remap_extensions(&mut self, map: &ExtIdMap) {
        let (start, end) = (self.l.ext + 4, self.l.header_len);
        let Some(form) = self.ext_form() else { return };
        let Some(data) = self.buf.get_mut(start..end) else {
            return;
        };
        ext::remap(data, form, map);
    }

    /// The value of extension `id`, writable in place (e.g. our own transport-wide sequence
    /// number or abs-send-time for this viewer).
    pub fn extension_mut(&mut self, id: u8) -> Option<&mut [u8]> {
        let form = self.ext_form()?;
        let data = self.buf.get_mut(self.l.ext + 4..self.l.header_len)?;
        let range = Extensions::new(Some(form), data).find_range(id)?;
        data.get_mut(range)
    }

    fn ext_form(&self) -> Option<Form> {
        if self.l.ext == 0 {
            return None;
        }
        ext::form(be16(self.buf, self.l.ext))
    }
}
