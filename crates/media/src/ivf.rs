//! IVF, the simple container libvpx and ffmpeg write VP8 into.
//!
//! A 32-byte little-endian file header (`DKIF`, version 0, header length, FourCC, width,
//! height, timebase denominator then numerator, frame count, unused), then frames, each a
//! 12-byte header (size u32, timestamp u64) and the frame bytes. Timestamps count timebase
//! units of `num/den` seconds.
//!
//! The reader ignores the frame-count field: a recording killed before it was patched stays
//! playable. The writer is sans-IO: it appends bytes to a `Vec` and says which 4 bytes at
//! which offset to overwrite to fix the count later.

/// Length of the file header we write (and the least a reader accepts).
pub const HEADER_LEN: usize = 32;
/// Length of each frame header.
pub const FRAME_HEADER_LEN: usize = 12;
/// Byte offset of the frame-count field, for patching it in place.
pub const FRAME_COUNT_OFFSET: u64 = 24;

/// What is wrong with an IVF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IvfError {
    /// Fewer bytes than a file header.
    #[error("IVF file shorter than its {HEADER_LEN}-byte header")]
    TruncatedHeader,
    /// The file does not start with `DKIF`.
    #[error("not an IVF file (no DKIF signature)")]
    BadSignature,
    /// A version other than 0.
    #[error("unsupported IVF version {0}")]
    UnsupportedVersion(u16),
    /// A header length below 32 or past the end of the file.
    #[error("bad IVF header length {0}")]
    BadHeaderLength(u16),
    /// Frame `index` (0-based) is cut short: the file holds `index` whole frames.
    #[error("IVF file truncated at frame {index} (offset {offset})")]
    TruncatedFrame {
        /// Index of the incomplete frame, which is also the number of whole frames before it.
        index: u32,
        /// Byte offset of its frame header.
        offset: usize,
    },
    /// A frame too large for the 32-bit size field.
    #[error("frame of {0} bytes does not fit IVF's 32-bit size field")]
    FrameTooLarge(usize),
}

/// The fields of an IVF file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfHeader {
    /// Codec FourCC, `VP80` for VP8.
    pub fourcc: [u8; 4],
    /// Width in pixels (keyframes may change it).
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Timebase numerator: a timestamp unit is `timebase_num / timebase_den` seconds.
    pub timebase_num: u32,
    /// Timebase denominator.
    pub timebase_den: u32,
    /// The frame-count field as written; not to be trusted (see the module docs).
    pub frame_count: u32,
}

impl IvfHeader {
    /// Parses the file header; returns it and the offset of the first frame.
    pub fn parse(data: &[u8]) -> Result<(Self, usize), IvfError> {
        let h: &[u8; HEADER_LEN] = data
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(IvfError::TruncatedHeader)?;
        if &h[0..4] != b"DKIF" {
            return Err(IvfError::BadSignature);
        }
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let version = u16_at(4);
        if version != 0 {
            return Err(IvfError::UnsupportedVersion(version));
        }
        let header_len = u16_at(6);
        if usize::from(header_len) < HEADER_LEN || usize::from(header_len) > data.len() {
            return Err(IvfError::BadHeaderLength(header_len));
        }
        let header = IvfHeader {
            fourcc: [h[8], h[9], h[10], h[11]],
            width: u16_at(12),
            height: u16_at(14),
            timebase_den: u32_at(16),
            timebase_num: u32_at(20),
            frame_count: u32_at(24),
        };
        Ok((header, usize::from(header_len)))
    }

    /// The 32 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(b"DKIF");
        h[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        h[8..12].copy_from_slice(&self.fourcc);
        h[12..14].copy_from_slice(&self.width.to_le_bytes());
        h[14..16].copy_from_slice(&self.height.to_le_bytes());
        h[16..20].copy_from_slice(&self.timebase_den.to_le_bytes());
        h[20..24].copy_from_slice(&self.timebase_num.to_le_bytes());
        h[24..28].copy_from_slice(&self.frame_count.to_le_bytes());
        h
    }
}

/// One frame, borrowed from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfFrame<'a> {
    /// Presentation time in timebase units.
    pub timestamp: u64,
    /// The encoded frame.
    pub data: &'a [u8],
}

/// Iterates the frames of an IVF file held in memory. Yields an error once (then stops) when
/// the last frame is cut short; collect into `Result<Vec<_>, _>` to check a file up front.
#[derive(Debug, Clone)]
pub struct IvfReader<'a> {
    data: &'a [u8],
    pos: usize,
    index: u32,
}

impl<'a> IvfReader<'a> {
    /// Parses the header and positions the reader at the first frame.
    pub fn new(data: &'a [u8]) -> Result<(IvfHeader, Self), IvfError> {
        let (header, pos) = IvfHeader::parse(data)?;
        Ok((
            header,
            IvfReader {
                data,
                pos,
                index: 0,
            },
        ))
    }
}

impl<'a> Iterator for IvfReader<'a> {
    type Item = Result<IvfFrame<'a>, IvfError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
        let truncated = IvfError::TruncatedFrame {
            index: self.index,
            offset: self.pos,
        };
        let frame = rest.get(..FRAME_HEADER_LEN).and_then(|h| {
            let size = u32::from_le_bytes(h[0..4].try_into().ok()?) as usize;
            let timestamp = u64::from_le_bytes(h[4..12].try_into().ok()?);
            let data = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN.checked_add(size)?)?;
            Some(IvfFrame { timestamp, data })
        });
        match frame {
            Some(frame) => {
                self.pos += FRAME_HEADER_LEN + frame.data.len();
                self.index = self.index.saturating_add(1);
                Some(Ok(frame))
            }
            None => {
                self.pos = self.data.len();
                Some(Err(truncated))
            }
        }
    }
}

/// Writes an IVF stream into caller buffers and counts its frames.
#[derive(Debug, Clone)]
pub struct IvfWriter {
    frames: u32,
}

impl IvfWriter {
    /// Appends the file header to `out` (its frame count as given: 0 when unknown).
    pub fn new(header: &IvfHeader, out: &mut Vec<u8>) -> Self {
        out.extend_from_slice(&header.to_bytes());
        IvfWriter { frames: 0 }
    }

    /// Appends one frame to `out`.
    pub fn write_frame(
        &mut self,
        timestamp: u64,
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), IvfError> {
        let size = u32::try_from(frame.len()).map_err(|_| IvfError::FrameTooLarge(frame.len()))?;
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&timestamp.to_le_bytes());
        out.extend_from_slice(frame);
        self.frames = self.frames.saturating_add(1);
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Where and what to write to make the header's frame count current: seek the file to
    /// the offset and write the 4 bytes (periodically, and once at the end).
    pub fn frame_count_patch(&self) -> (u64, [u8; 4]) {
        (FRAME_COUNT_OFFSET, self.frames.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> IvfHeader {
        IvfHeader {
            fourcc: *b"VP80",
            width: 160,
            height: 120,
            timebase_num: 1,
            timebase_den: 30,
            frame_count: 0,
        }
    }

    #[test]
    fn write_then_read_with_stale_count() {
        let mut out = Vec::new();
        let mut w = IvfWriter::new(&header(), &mut out);
        w.write_frame(0, b"abc", &mut out).unwrap();
        w.write_frame(1, b"", &mut out).unwrap();
        w.write_frame(2, b"z", &mut out).unwrap();
        let (h, r) = IvfReader::new(&out).unwrap();
        assert_eq!(h, header());
        let frames: Vec<_> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames[2],
            IvfFrame {
                timestamp: 2,
                data: b"z"
            }
        );
        let (off, bytes) = w.frame_count_patch();
        out[off as usize..off as usize + 4].copy_from_slice(&bytes);
        assert_eq!(IvfHeader::parse(&out).unwrap().0.frame_count, 3);
    }

    #[test]
    fn truncated_frame_is_reported_with_its_index() {
        let mut out = Vec::new();
        let mut w = IvfWriter::new(&header(), &mut out);
        w.write_frame(0, b"abc", &mut out).unwrap();
        w.write_frame(1, b"defg", &mut out).unwrap();
        out.pop();
        let (_, r) = IvfReader::new(&out).unwrap();
        let got: Vec<_> = r.collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Err(IvfError::TruncatedFrame {
                index: 1,
                offset: 47
            })
        );
    }

    #[test]
    fn bad_headers() {
        let good = header().to_bytes();
        assert_eq!(
            IvfHeader::parse(&good[..31]),
            Err(IvfError::TruncatedHeader)
        );
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(IvfHeader::parse(&bad), Err(IvfError::BadSignature));
        let mut bad = good;
        bad[4] = 1;
        assert_eq!(IvfHeader::parse(&bad), Err(IvfError::UnsupportedVersion(1)));
        let mut bad = good;
        bad[6] = 40;
        assert_eq!(IvfHeader::parse(&bad), Err(IvfError::BadHeaderLength(40)));
    }

    #[test]
    fn huge_frame_size_does_not_overflow() {
        let mut data = header().to_bytes().to_vec();
        data.extend_from_slice(&[0xff; 12]);
        let (_, mut r) = IvfReader::new(&data).unwrap();
        assert!(matches!(
            r.next(),
            Some(Err(IvfError::TruncatedFrame { index: 0, .. }))
        ));
        assert_eq!(r.next(), None);
    }
}
