//! Ogg pages and packets (RFC 3533).
//!
//! A page is a 27-byte header (`OggS`, version 0, header-type flags, granule position,
//! serial number, page sequence number, CRC-32, segment count), a segment table of lacing
//! values and the body. A packet is the concatenation of segments up to the first lacing value
//! below 255; it may continue over several pages (RFC 3533 §5-6).

/// Header-type flag: the page continues a packet from the previous page.
pub const CONTINUED: u8 = 0x01;
/// Header-type flag: first page of a logical bitstream.
pub const BOS: u8 = 0x02;
/// Header-type flag: last page of a logical bitstream.
pub const EOS: u8 = 0x04;
/// Granule position of a page on which no packet ends (RFC 3533 §6: -1).
pub const NO_GRANULE: u64 = u64::MAX;

const HEADER_LEN: usize = 27;

/// What is wrong with an Ogg stream. Offsets are byte offsets of the page in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OggError {
    /// The input ends inside a page.
    #[error("Ogg page at offset {0} truncated")]
    Truncated(usize),
    /// No `OggS` capture pattern where a page should start.
    #[error("no Ogg capture pattern at offset {0}")]
    BadCapture(usize),
    /// A stream structure version other than 0.
    #[error("unsupported Ogg version {0}")]
    UnsupportedVersion(u8),
    /// The page's CRC-32 does not match its bytes.
    #[error("Ogg page at offset {0} has a bad CRC")]
    BadCrc(usize),
    /// Page sequence numbers jump: a page is missing.
    #[error("Ogg page {found} follows page {}", expected.wrapping_sub(1))]
    PageLost {
        /// The sequence number that should have come.
        expected: u32,
        /// The one that came.
        found: u32,
    },
    /// A page continues a packet that no earlier page started, or does not continue one that
    /// was left open.
    #[error("Ogg page at offset {0} breaks packet continuation")]
    BadContinuation(usize),
    /// The stream ends inside a packet.
    #[error("Ogg stream ends inside a packet")]
    PacketTruncated,
}

/// One page, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page<'a> {
    /// Header-type flags ([`CONTINUED`], [`BOS`], [`EOS`]).
    pub header_type: u8,
    /// Codec-defined position of the last packet ending on this page, or [`NO_GRANULE`].
    pub granule: u64,
    /// Logical bitstream serial number.
    pub serial: u32,
    /// Page sequence number within the logical bitstream.
    pub sequence: u32,
    /// Segment table: one lacing value per segment.
    pub lacing: &'a [u8],
    /// The segments' bytes.
    pub body: &'a [u8],
}

impl<'a> Page<'a> {
    /// Parses and CRC-checks the page at the start of `data`; returns it and its length.
    /// `offset` only labels errors.
    pub fn parse(data: &'a [u8], offset: usize) -> Result<(Self, usize), OggError> {
        let h = data.get(..HEADER_LEN).ok_or(OggError::Truncated(offset))?;
        if &h[0..4] != b"OggS" {
            return Err(OggError::BadCapture(offset));
        }
        if h[4] != 0 {
            return Err(OggError::UnsupportedVersion(h[4]));
        }
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let n = usize::from(h[26]);
        let lacing = data
            .get(HEADER_LEN..HEADER_LEN + n)
            .ok_or(OggError::Truncated(offset))?;
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let end = HEADER_LEN + n + body_len;
        let body = data
            .get(HEADER_LEN + n..end)
            .ok_or(OggError::Truncated(offset))?;
        // RFC 3533 §6: the CRC covers the whole page with the CRC field set to zero.
        let crc = [&h[..22], &[0; 4], &h[26..], lacing, body]
            .iter()
            .fold(0, |c, b| crc32(c, b));
        if crc != u32_at(22) {
            return Err(OggError::BadCrc(offset));
        }
        let granule = u64::from_le_bytes([h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13]]);
        let page = Page {
            header_type: h[5],
            granule,
            serial: u32_at(14),
            sequence: u32_at(18),
            lacing,
            body,
        };
        Ok((page, end))
    }

    /// Appends the page's bytes, CRC included, to `out`. `lacing` must describe `body` and
    /// hold at most 255 values.
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(b"OggS\0");
        out.push(self.header_type);
        out.extend_from_slice(&self.granule.to_le_bytes());
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(self.lacing.len() as u8);
        out.extend_from_slice(self.lacing);
        out.extend_from_slice(self.body);
        let crc = out.get(start..).map_or(0, |page| crc32(0, page));
        if let Some(field) = out.get_mut(start + 22..start + 26) {
            field.copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// Appends the lacing values of a `len`-byte packet (RFC 3533 §5: 255s, then the rest,
/// which is 0 for a multiple of 255).
pub fn push_lacing(len: usize, lacing: &mut Vec<u8>) {
    lacing.extend(std::iter::repeat_n(255, len / 255));
    lacing.push((len % 255) as u8);
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04c1_1db7
            } else {
                c << 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// Ogg's CRC-32 (RFC 3533 §6: polynomial 0x04c11db7, initial 0, no reflection, no final
/// xor), continued from `crc` over `bytes`.
pub fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(crc, |c, &b| {
        (c << 8) ^ CRC_TABLE[usize::from((c >> 24) as u8 ^ b)]
    })
}

/// One packet, with the granule position of its page when it is the last packet ending there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The packet's bytes.
    pub data: &'a [u8],
    /// The page's granule position if this packet is the last to end on that page.
    pub granule: Option<u64>,
    /// The packet ends on a page flagged end-of-stream.
    pub eos: bool,
}

/// Reassembles the packets of the first logical bitstream in `data` (pages of other serial
/// numbers are skipped). Packets within one page are borrowed; packets spanning pages are
/// copied into a reused buffer.
#[derive(Debug)]
pub struct PacketReader<'a> {
    data: &'a [u8],
    pos: usize,
    page: Option<Page<'a>>,
    seg: usize,
    body_pos: usize,
    serial: Option<u32>,
    next_sequence: Option<u32>,
    partial: Vec<u8>,
    in_packet: bool,
}

impl<'a> PacketReader<'a> {
    /// A reader over a whole Ogg stream in memory.
    pub fn new(data: &'a [u8]) -> Self {
        PacketReader {
            data,
            pos: 0,
            page: None,
            seg: 0,
            body_pos: 0,
            serial: None,
            next_sequence: None,
            partial: Vec::new(),
            in_packet: false,
        }
    }

    /// The serial number of the logical bitstream read (known after the first page).
    pub fn serial(&self) -> Option<u32> {
        self.serial
    }

    /// The next packet, `None` at the end of the input.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, OggError> {
        if !self.in_packet {
            self.partial.clear();
        }
        loop {
            let page = match self.page {
                Some(p) if self.seg < p.lacing.len() => p,
                // A page may hold no segments at all (an empty end-of-stream page).
                _ => match self.next_page()? {
                    Some(_) => continue,
                    None if self.in_packet => return Err(OggError::PacketTruncated),
                    None => return Ok(None),
                },
            };
            // Segments up to and including the first lacing value below 255 end a packet.
            let rest = page.lacing.get(self.seg..).unwrap_or_default();
            let (count, ends) = match rest.iter().position(|&l| l < 255) {
                Some(i) => (i + 1, true),
                None => (rest.len(), false),
            };
            let len: usize = rest[..count].iter().map(|&l| usize::from(l)).sum();
            let chunk = page
                .body
                .get(self.body_pos..self.body_pos + len)
                .unwrap_or_default();
            self.seg += count;
            self.body_pos += len;
            if !ends {
                self.partial.extend_from_slice(chunk);
                self.in_packet = true;
                continue;
            }
            let last_on_page = page.lacing[self.seg..].iter().all(|&l| l == 255);
            let granule = last_on_page.then_some(page.granule);
            let eos = page.header_type & EOS != 0;
            let data = if self.in_packet {
                self.in_packet = false;
                self.partial.extend_from_slice(chunk);
                &self.partial[..]
            } else {
                chunk
            };
            return Ok(Some(Packet { data, granule, eos }));
        }
    }

    /// Parses pages until one of our bitstream; checks sequence and continuation.
    fn next_page(&mut self) -> Result<Option<Page<'a>>, OggError> {
        while let Some(rest) = self.data.get(self.pos..).filter(|r| !r.is_empty()) {
            let offset = self.pos;
            let (page, len) = Page::parse(rest, offset)?;
            self.pos += len;
            if *self.serial.get_or_insert(page.serial) != page.serial {
                continue;
            }
            if let Some(expected) = self.next_sequence.filter(|&e| e != page.sequence) {
                return Err(OggError::PageLost {
                    expected,
                    found: page.sequence,
                });
            }
            self.next_sequence = Some(page.sequence.wrapping_add(1));
            if (page.header_type & CONTINUED != 0) != self.in_packet {
                return Err(OggError::BadContinuation(offset));
            }
            self.page = Some(page);
            self.seg = 0;
            self.body_pos = 0;
            return Ok(Some(page));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(header_type: u8, sequence: u32, packets: &[&[u8]], open_end: usize) -> Vec<u8> {
        let (mut lacing, mut body) = (Vec::new(), Vec::new());
        for p in packets {
            push_lacing(p.len(), &mut lacing);
            body.extend_from_slice(p);
        }
        // A trailing packet part that continues on the next page: 255-byte segments only.
        lacing.extend(std::iter::repeat_n(255, open_end));
        body.extend(std::iter::repeat_n(7, open_end * 255));
        let p = Page {
            header_type,
            granule: 5,
            serial: 9,
            sequence,
            lacing: &lacing,
            body: &body,
        };
        let mut out = Vec::new();
        p.write(&mut out);
        out
    }

    #[test]
    fn crc_of_known_string() {
        // The catalogue of parametrised CRCs gives CRC-32/POSIX (poly 0x04c11db7, init 0,
        // unreflected, xorout 0xffffffff) the check value 0x765e7680 for "123456789";
        // Ogg's CRC is the same without the final xor.
        assert_eq!(crc32(0, b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn packets_across_pages() {
        let mut data = page(BOS, 0, &[b"head"], 0);
        data.extend(page(0, 1, &[b"a", b""], 2));
        data.extend(page(CONTINUED | EOS, 2, &[b"tail"], 0));
        let mut r = PacketReader::new(&data);
        assert_eq!(r.next_packet().unwrap().unwrap().data, b"head");
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!((p.data, p.granule), (&b"a"[..], None));
        assert_eq!(r.next_packet().unwrap().unwrap().data, b"");
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.data.len(), 2 * 255 + 4);
        assert_eq!((p.granule, p.eos), (Some(5), true));
        assert_eq!(r.next_packet(), Ok(None));
    }

    #[test]
    fn damage_is_reported() {
        let mut data = page(BOS, 0, &[b"head"], 0);
        data.extend(page(0, 2, &[b"x"], 0));
        let mut r = PacketReader::new(&data);
        r.next_packet().unwrap();
        assert_eq!(
            r.next_packet(),
            Err(OggError::PageLost {
                expected: 1,
                found: 2
            })
        );

        let mut data = page(BOS, 0, &[b"head"], 1);
        data[30] ^= 1;
        assert_eq!(
            PacketReader::new(&data).next_packet(),
            Err(OggError::BadCrc(0))
        );
        data[30] ^= 1;
        let mut r = PacketReader::new(&data);
        r.next_packet().unwrap();
        assert_eq!(r.next_packet(), Err(OggError::PacketTruncated));
        assert_eq!(
            PacketReader::new(&data[..40]).next_packet(),
            Err(OggError::Truncated(0))
        );
        let cont = page(CONTINUED, 0, &[b"x"], 0);
        assert_eq!(
            PacketReader::new(&cont).next_packet(),
            Err(OggError::BadContinuation(0))
        );
    }
}
