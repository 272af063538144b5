//! Opus in Ogg (RFC 7845): the `OpusHead` and `OpusTags` header packets, then one Opus packet
//! per Ogg packet, granule positions counting 48 kHz samples decoded (pre-skip included).

use crate::ogg::{self, OggError, PacketReader, Page};
use crate::opus::{self, OpusError};

/// Most samples a page holds before the writer starts a new one (0.5 s): what a recording
/// killed mid-way can lose.
pub const PAGE_SAMPLES: u32 = 24_000;
const VENDOR: &[u8] = b"leanrtc";

/// What is wrong with an Ogg Opus stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OggOpusError {
    /// The Ogg layer is damaged.
    #[error(transparent)]
    Ogg(#[from] OggError),
    /// The first packet is not an `OpusHead`.
    #[error("not an Ogg Opus stream (no OpusHead)")]
    NotOpus,
    /// An `OpusHead` with an unknown major version, no channels or a wrong length.
    #[error("malformed OpusHead")]
    BadHead,
    /// The second packet is not `OpusTags`.
    #[error("OpusTags header missing")]
    NoTags,
    /// Audio packet `index` (0-based) has bad Opus framing.
    #[error("Opus packet {index}: {error}")]
    Packet {
        /// Index of the audio packet.
        index: u64,
        /// What is wrong with it.
        error: OpusError,
    },
    /// A packet too large for one page (over 255 segments).
    #[error("Opus packet of {0} bytes too large for an Ogg page")]
    TooLarge(usize),
}

/// The identification header (RFC 7845 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    /// Output channel count.
    pub channels: u8,
    /// Samples (48 kHz) to drop from the start of the decoded audio.
    pub pre_skip: u16,
    /// Sample rate of the original input, for information only.
    pub input_sample_rate: u32,
    /// Gain in Q7.8 dB to apply on output.
    pub output_gain: i16,
    /// Channel mapping family (0: mono/stereo, no mapping table).
    pub mapping_family: u8,
}

impl OpusHead {
    /// Parses an `OpusHead` packet.
    pub fn parse(p: &[u8]) -> Result<Self, OggOpusError> {
        if !p.starts_with(b"OpusHead") {
            return Err(OggOpusError::NotOpus);
        }
        let h: &[u8; 19] = p
            .get(..19)
            .and_then(|h| h.try_into().ok())
            .ok_or(OggOpusError::BadHead)?;
        let head = OpusHead {
            channels: h[9],
            pre_skip: u16::from_le_bytes([h[10], h[11]]),
            input_sample_rate: u32::from_le_bytes([h[12], h[13], h[14], h[15]]),
            output_gain: i16::from_le_bytes([h[16], h[17]]),
            mapping_family: h[18],
        };
        // §5.1: a major version (high nibble) other than 0 is incompatible; family 0 allows
        // one or two channels and no table, other families add 2 + channels bytes.
        let table = if head.mapping_family == 0 {
            0
        } else {
            2 + usize::from(head.channels)
        };
        let ok = h[8] >> 4 == 0
            && head.channels != 0
            && (head.mapping_family != 0 || head.channels <= 2)
            && p.len() >= 19 + table;
        if !ok {
            return Err(OggOpusError::BadHead);
        }
        Ok(head)
    }

    /// The `OpusHead` packet for mapping family 0 (mono or stereo).
    pub fn to_bytes(&self) -> [u8; 19] {
        let mut h = [0u8; 19];
        h[..8].copy_from_slice(b"OpusHead");
        h[8] = 1;
        h[9] = self.channels;
        h[10..12].copy_from_slice(&self.pre_skip.to_le_bytes());
        h[12..16].copy_from_slice(&self.input_sample_rate.to_le_bytes());
        h[16..18].copy_from_slice(&self.output_gain.to_le_bytes());
        h
    }
}

/// One audio packet and its duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusPacket<'a> {
    /// The Opus packet.
    pub data: &'a [u8],
    /// Its duration in 48 kHz samples, from its TOC.
    pub samples: u32,
}

/// Reads the audio packets of an Ogg Opus stream held in memory.
#[derive(Debug)]
pub struct OggOpusReader<'a> {
    packets: PacketReader<'a>,
    index: u64,
}

impl<'a> OggOpusReader<'a> {
    /// Reads and checks the two header packets.
    pub fn new(data: &'a [u8]) -> Result<(OpusHead, Self), OggOpusError> {
        let mut packets = PacketReader::new(data);
        let head = OpusHead::parse(packets.next_packet()?.ok_or(OggOpusError::NotOpus)?.data)?;
        let tags = packets.next_packet()?.ok_or(OggOpusError::NoTags)?;
        if !tags.data.starts_with(b"OpusTags") {
            return Err(OggOpusError::NoTags);
        }
        Ok((head, OggOpusReader { packets, index: 0 }))
    }

    /// The next audio packet, `None` at the end.
    pub fn next_packet(&mut self) -> Result<Option<OpusPacket<'_>>, OggOpusError> {
        let index = self.index;
        let Some(p) = self.packets.next_packet()? else {
            return Ok(None);
        };
        let samples =
            opus::packet_samples(p.data).map_err(|error| OggOpusError::Packet { index, error })?;
        self.index += 1;
        Ok(Some(OpusPacket {
            data: p.data,
            samples,
        }))
    }
}

/// Writes an Ogg Opus stream into caller buffers. Packets are gathered into pages of up to
/// [`PAGE_SAMPLES`]; the last page waits for [`OggOpusWriter::finish`], which flags it
/// end-of-stream.
#[derive(Debug)]
pub struct OggOpusWriter {
    serial: u32,
    sequence: u32,
    granule: u64,
    packets: u64,
    page_samples: u32,
    lacing: Vec<u8>,
    body: Vec<u8>,
}

impl OggOpusWriter {
    /// Appends the two header pages (RFC 7845 §3: `OpusHead` alone on a BOS page, then
    /// `OpusTags` on its own page) to `out`. Writes mapping family 0, so takes only mono or
    /// stereo.
    pub fn new(serial: u32, head: &OpusHead, out: &mut Vec<u8>) -> Result<Self, OggOpusError> {
        if !(1..=2).contains(&head.channels) {
            return Err(OggOpusError::BadHead);
        }
        let mut w = OggOpusWriter {
            serial,
            sequence: 0,
            granule: 0,
            packets: 0,
            page_samples: 0,
            lacing: Vec::new(),
            body: Vec::new(),
        };
        w.add(&head.to_bytes());
        w.flush(ogg::BOS, 0, out);
        let len = (VENDOR.len() as u32).to_le_bytes();
        w.add(&[&b"OpusTags"[..], &len, VENDOR, &[0; 4]].concat());
        w.flush(0, 0, out);
        Ok(w)
    }

    /// Adds one Opus packet; may append a finished page to `out`.
    pub fn write_packet(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), OggOpusError> {
        let index = self.packets;
        let samples =
            opus::packet_samples(packet).map_err(|error| OggOpusError::Packet { index, error })?;
        let segments = packet.len() / 255 + 1;
        if segments > 255 {
            return Err(OggOpusError::TooLarge(packet.len()));
        }
        if !self.lacing.is_empty()
            && (self.lacing.len() + segments > 255 || self.page_samples >= PAGE_SAMPLES)
        {
            self.flush(0, self.granule, out);
        }
        self.granule += u64::from(samples);
        self.page_samples += samples;
        self.packets += 1;
        self.add(packet);
        Ok(())
    }

    /// Appends the last page, flagged end-of-stream, to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.flush(ogg::EOS, self.granule, out);
    }

    /// Total samples (48 kHz) written so far.
    pub fn samples(&self) -> u64 {
        self.granule
    }

    fn add(&mut self, packet: &[u8]) {
        ogg::push_lacing(packet.len(), &mut self.lacing);
        self.body.extend_from_slice(packet);
    }

    fn flush(&mut self, header_type: u8, granule: u64, out: &mut Vec<u8>) {
        let page = Page {
            header_type,
            granule,
            serial: self.serial,
            sequence: self.sequence,
            lacing: &self.lacing,
            body: &self.body,
        };
        page.write(out);
        self.sequence = self.sequence.wrapping_add(1);
        self.page_samples = 0;
        self.lacing.clear();
        self.body.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_written_by_ffmpeg() {
        // The first packet of samples/sample-opus-48k-10s.ogg (libopus via ffmpeg).
        let p = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
        let head = OpusHead::parse(p).unwrap();
        let want = OpusHead {
            channels: 2,
            pre_skip: 312,
            input_sample_rate: 48_000,
            output_gain: 0,
            mapping_family: 0,
        };
        assert_eq!(head, want);
        assert_eq!(&head.to_bytes(), p);
        assert_eq!(OpusHead::parse(&p[..18]), Err(OggOpusError::BadHead));
        let mut v2 = *p;
        v2[8] = 0x10;
        assert_eq!(OpusHead::parse(&v2), Err(OggOpusError::BadHead));
        let mut family1 = *p;
        family1[18] = 1;
        assert_eq!(OpusHead::parse(&family1), Err(OggOpusError::BadHead));
    }

    #[test]
    fn write_then_read() {
        let head = OpusHead {
            channels: 1,
            pre_skip: 0,
            input_sample_rate: 48_000,
            output_gain: 0,
            mapping_family: 0,
        };
        let mut out = Vec::new();
        let mut w = OggOpusWriter::new(7, &head, &mut out).unwrap();
        // 60 packets of 20 ms: pages of 25, 25 and 10 packets; one 600-byte packet.
        for i in 0..60u8 {
            let len = if i == 30 { 600 } else { 3 };
            w.write_packet(&[&[0xf8, i][..], &vec![i; len - 2]].concat(), &mut out)
                .unwrap();
        }
        assert_eq!(
            w.write_packet(&[], &mut out).unwrap_err(),
            OggOpusError::Packet {
                index: 60,
                error: OpusError::Empty
            }
        );
        w.finish(&mut out);
        let (got, mut r) = OggOpusReader::new(&out).unwrap();
        assert_eq!(got, head);
        let mut n = 0u8;
        while let Some(p) = r.next_packet().unwrap() {
            assert_eq!((p.data[1], p.samples), (n, 960));
            n += 1;
        }
        assert_eq!(n, 60);
        let mut pages = PacketReader::new(&out);
        let mut last = None;
        while let Some(p) = pages.next_packet().unwrap() {
            last = p.granule.map(|g| (g, p.eos)).or(last);
        }
        assert_eq!(last, Some((60 * 960, true)));
    }

    #[test]
    fn finish_without_packets() {
        // Fuzz regression: the empty end-of-stream page read as a truncated packet.
        let head = OpusHead::parse(b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00");
        let mut out = Vec::new();
        OggOpusWriter::new(1, &head.unwrap(), &mut out)
            .unwrap()
            .finish(&mut out);
        let (_, mut r) = OggOpusReader::new(&out).unwrap();
        assert_eq!(r.next_packet(), Ok(None));
    }
}
