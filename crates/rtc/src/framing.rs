//! RFC 4571 framing: datagrams (STUN, DTLS, SRTP) over a byte stream, each preceded by its
//! length as a 16-bit big-endian number. ICE-TCP (RFC 6544 §3) carries every packet of a
//! WebRTC session this way, so a TCP connection becomes a sequence of datagram-like frames
//! that take the same path as UDP datagrams.
//!
//! [`Deframer`] is sans-IO: bytes go in as they arrive, in pieces of any size, and whole
//! frames come out. Frames that arrive whole in one piece are handed out in place (no copy);
//! only a frame split across pieces is gathered in the deframer's own buffer, which never
//! holds more than one frame, so its memory is bounded by the largest frame allowed.

/// The largest frame the length prefix can announce (RFC 4571 §2: 16 bits).
pub const MAX_FRAME: usize = u16::MAX as usize;

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 2;

/// Why a stream cannot be deframed any further. The connection should be closed: RFC 4571
/// has no way to find the next frame once one is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A length prefix announced more than this stream is allowed to send in one frame.
    #[error("a frame of {len} bytes announced, at most {max} allowed")]
    TooLong {
        /// The announced length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
}

/// Splits a byte stream into RFC 4571 frames.
#[derive(Debug)]
pub struct Deframer {
    /// A frame begun in an earlier piece: its prefix (up to 2 bytes) and then its body.
    partial: Vec<u8>,
    max_frame: usize,
    /// The error that ended the stream, if one did.
    failed: Option<FramingError>,
}

impl Deframer {
    /// A deframer that refuses frames longer than `max_frame` bytes (at most [`MAX_FRAME`]).
    pub fn new(max_frame: usize) -> Self {
        Self {
            partial: Vec::new(),
            max_frame: max_frame.min(MAX_FRAME),
            failed: None,
        }
    }

    /// Changes the limit for frames whose prefix has not been read yet (a connection that
    /// proved who it is may send larger frames than a stranger).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame.min(MAX_FRAME);
    }

    /// Bytes held back for a frame not complete yet.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feeds the next piece of the stream; calls `on_frame` with each frame it completes, in
    /// order (empty frames are skipped: they carry no datagram). After an error nothing more
    /// is delivered, now or later.
    pub fn push(
        &mut self,
        mut bytes: &mut [u8],
        mut on_frame: impl FnMut(&mut [u8]),
    ) -> Result<(), FramingError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if !self.partial.is_empty() {
            bytes = self.continue_partial(bytes, &mut on_frame)?;
        }
        while let [a, b, ..] = *bytes {
            let len = usize::from(u16::from_be_bytes([a, b]));
            self.check(len)?;
            if bytes.len() < PREFIX_LEN + len {
                break;
            }
            let (frame, rest) = bytes.split_at_mut(PREFIX_LEN + len);
            if let Some(body) = frame.get_mut(PREFIX_LEN..).filter(|b| !b.is_empty()) {
                on_frame(body);
            }
            bytes = rest;
        }
        // What is left is the start of a frame: keep it for the next piece.
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    /// Completes the frame held back, if `bytes` hold the rest of it; returns what follows.
    fn continue_partial<'b>(
        &mut self,
        bytes: &'b mut [u8],
        on_frame: &mut impl FnMut(&mut [u8]),
    ) -> Result<&'b mut [u8], FramingError> {
        let mut bytes = bytes;
        if self.partial.len() < PREFIX_LEN {
            let take = (PREFIX_LEN - self.partial.len()).min(bytes.len());
            let (head, rest) = bytes.split_at_mut(take);
            self.partial.extend_from_slice(head);
            bytes = rest;
            let [a, b] = *self.partial.as_slice() else {
                return Ok(bytes);
            };
            self.check(usize::from(u16::from_be_bytes([a, b])))?;
        }
        let [a, b, ..] = *self.partial.as_slice() else {
            return Ok(bytes);
        };
        let want = PREFIX_LEN + usize::from(u16::from_be_bytes([a, b]));
        let take = want.saturating_sub(self.partial.len()).min(bytes.len());
        let (body, rest) = bytes.split_at_mut(take);
        self.partial.extend_from_slice(body);
        if self.partial.len() == want {
            if let Some(frame) = self.partial.get_mut(PREFIX_LEN..).filter(|f| !f.is_empty()) {
                on_frame(frame);
            }
            self.partial.clear();
            // A connection that once sent a large frame should not keep its memory forever.
            if self.partial.capacity() > 4096 {
                self.partial = Vec::new();
            }
        }
        Ok(rest)
    }

    fn check(&mut self, len: usize) -> Result<(), FramingError> {
        let max = self.max_frame;
        if len > max {
            // No later byte can be trusted to start a frame: the stream is over.
            let e = FramingError::TooLong { len, max };
            self.failed = Some(e);
            self.partial = Vec::new();
            return Err(e);
        }
        Ok(())
    }
}

/// The prefix for a frame of `len` bytes, or `None` when RFC 4571 cannot carry it.
pub fn prefix(len: usize) -> Option<[u8; PREFIX_LEN]> {
    u16::try_from(len).ok().map(u16::to_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            out.extend_from_slice(&prefix(f.len()).unwrap());
            out.extend_from_slice(f);
        }
        out
    }

    fn deframe_in_pieces(stream: &[u8], piece: usize, max: usize) -> (Vec<Vec<u8>>, bool) {
        let mut d = Deframer::new(max);
        let mut out = Vec::new();
        let mut failed = false;
        for chunk in stream.chunks(piece.max(1)) {
            let mut chunk = chunk.to_vec();
            if d.push(&mut chunk, |f| out.push(f.to_vec())).is_err() {
                failed = true;
                break;
            }
        }
        (out, failed)
    }

    #[test]
    fn frames_come_out_whole_however_the_stream_is_cut() {
        let big = vec![7u8; 1500];
        let frames: [&[u8]; 5] = [b"\x00\x01stun", b"", &big, b"\x80rtp", b"x"];
        let stream = framed(&frames);
        let want: Vec<Vec<u8>> = frames
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| f.to_vec())
            .collect();
        for piece in [1, 2, 3, 5, 100, 1501, 1502, 1503, stream.len()] {
            let (got, failed) = deframe_in_pieces(&stream, piece, MAX_FRAME);
            assert!(!failed, "piece {piece}");
            assert_eq!(got, want, "piece {piece}");
        }
    }

    #[test]
    fn an_oversized_prefix_is_refused_at_once_and_poisons_the_stream() {
        // 65535 promised (the prefix alone, then silence): refused before any body arrives.
        let mut d = Deframer::new(2048);
        let mut prefix_only = [0xff, 0xff];
        let err = d
            .push(&mut prefix_only, |_| panic!("no frame"))
            .unwrap_err();
        assert_eq!(
            err,
            FramingError::TooLong {
                len: 65535,
                max: 2048
            }
        );
        // Nothing after it is delivered, and nothing is kept.
        let mut more = framed(&[b"ok"]);
        assert!(d.push(&mut more, |_| panic!("poisoned")).is_err());
        assert_eq!(d.buffered(), 0);
        // Split across pieces, the same.
        let mut d = Deframer::new(2048);
        d.push(&mut [0x08], |_| panic!()).unwrap();
        assert!(d.push(&mut [0x01, 0, 0], |_| panic!()).is_err());
    }

    #[test]
    fn a_raised_limit_admits_larger_frames() {
        let body = vec![1u8; 4000];
        let stream = framed(&[&body]);
        let mut d = Deframer::new(2048);
        d.set_max_frame(MAX_FRAME);
        let mut n = 0;
        for chunk in stream.chunks(1000) {
            d.push(&mut chunk.to_vec(), |f| {
                assert_eq!(f.len(), 4000);
                n += 1;
            })
            .unwrap();
        }
        assert_eq!((n, d.buffered()), (1, 0));
        assert_eq!(prefix(65536), None);
        assert_eq!(prefix(65535), Some([0xff, 0xff]));
    }
}
