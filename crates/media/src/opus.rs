//! Opus packets: duration from the TOC byte (RFC 6716 §3.1-3.2) and the RTP payload format
//! (RFC 7587), which is one Opus packet per RTP payload with the RTP timestamp counted in
//! 48 kHz samples whatever the audio's real rate.

/// RTP clock rate of Opus (RFC 7587 §4.1).
pub const CLOCK_RATE: u32 = 48_000;
/// The longest packet allowed: 120 ms (RFC 6716 §3.2.5).
pub const MAX_PACKET_SAMPLES: u32 = 5760;

/// What is wrong with an Opus packet's framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpusError {
    /// A zero-length packet (RFC 6716 §3.4 R1).
    #[error("empty Opus packet")]
    Empty,
    /// Code 3 without its frame-count byte.
    #[error("Opus code 3 packet without frame count byte")]
    MissingFrameCount,
    /// Code 3 with a frame count of zero (RFC 6716 §3.2.5).
    #[error("Opus code 3 packet with zero frames")]
    ZeroFrames,
    /// More than 120 ms of audio in one packet (RFC 6716 §3.2.5).
    #[error("Opus packet of {0} samples exceeds 120 ms")]
    TooLong(u32),
}

/// Samples at 48 kHz in one frame of the TOC's configuration (RFC 6716 §3.1, Table 2):
/// SILK 10/20/40/60 ms, hybrid 10/20 ms, CELT 2.5/5/10/20 ms.
pub fn frame_samples(toc: u8) -> u32 {
    let config = toc >> 3;
    match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// Duration of an Opus packet in 48 kHz samples (RFC 6716 §3.2: code 0 holds one frame,
/// codes 1 and 2 two, code 3 the count in the low 6 bits of the second byte).
pub fn packet_samples(packet: &[u8]) -> Result<u32, OpusError> {
    let toc = *packet.first().ok_or(OpusError::Empty)?;
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let count = packet.get(1).ok_or(OpusError::MissingFrameCount)? & 0x3f;
            if count == 0 {
                return Err(OpusError::ZeroFrames);
            }
            u32::from(count)
        }
    };
    let samples = frames * frame_samples(toc);
    if samples > MAX_PACKET_SAMPLES {
        return Err(OpusError::TooLong(samples));
    }
    Ok(samples)
}

/// An Opus packet as an RTP payload, with what the RTP header needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusRtp<'a> {
    /// The RTP payload, which is the Opus packet unchanged (RFC 7587 §4.2).
    pub payload: &'a [u8],
    /// The packet's duration: the next packet's RTP timestamp is this much later.
    pub samples: u32,
}

/// Makes the RTP payload of one Opus packet (RFC 7587 §4.2: exactly one packet per payload).
/// The marker bit stays 0: it flags the first packet after a DTX pause (RFC 7587 §4.1),
/// which a file player that sends every packet never has.
pub fn packetize(packet: &[u8]) -> Result<OpusRtp<'_>, OpusError> {
    Ok(OpusRtp {
        payload: packet,
        samples: packet_samples(packet)?,
    })
}

/// Takes the Opus packet out of an RTP payload and checks its framing.
pub fn depacketize(payload: &[u8]) -> Result<OpusRtp<'_>, OpusError> {
    packetize(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_from_toc() {
        // RFC 6716 Table 2, one config of each mode and size, code 0.
        let cases = [
            (0, 480),
            (1, 960),
            (2, 1920),
            (3, 2880),
            (11, 2880),
            (12, 480),
        ];
        let more = [(15, 960), (16, 120), (17, 240), (18, 480), (31, 960)];
        for (config, samples) in cases.into_iter().chain(more) {
            assert_eq!(
                packet_samples(&[config << 3]),
                Ok(samples),
                "config {config}"
            );
        }
        // Code 1 and 2: two frames; stereo bit ignored.
        assert_eq!(packet_samples(&[(31 << 3) | 0x04 | 1, 0]), Ok(1920));
        assert_eq!(packet_samples(&[(1 << 3) | 2, 0]), Ok(1920));
        // Code 3: six 20 ms frames = 120 ms is the limit; seven is too long.
        assert_eq!(packet_samples(&[(31 << 3) | 3, 0x86]), Ok(5760));
        assert_eq!(
            packet_samples(&[(31 << 3) | 3, 7]),
            Err(OpusError::TooLong(6720))
        );
        assert_eq!(
            packet_samples(&[(31 << 3) | 3, 0x80]),
            Err(OpusError::ZeroFrames)
        );
        assert_eq!(packet_samples(&[3]), Err(OpusError::MissingFrameCount));
        assert_eq!(packet_samples(&[]), Err(OpusError::Empty));
    }
}
