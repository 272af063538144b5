//! Which protocol a datagram on the shared port carries, by its first byte (RFC 7983 §7 with
//! the ranges of RFC 9443 §3), and RTP from RTCP by the second (RFC 5761 §4).

/// The class of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// STUN: first byte 0–3.
    Stun,
    /// DTLS: first byte 20–63.
    Dtls,
    /// RTP (SRTP): first byte 128–191, second byte outside 192–223.
    Rtp,
    /// RTCP (SRTCP): first byte 128–191, packet type 192–223.
    Rtcp,
    /// Anything else (ZRTP, TURN channels, QUIC, empty): not ours.
    Drop,
}

/// Classifies a datagram. With rtcp-mux, RTCP packet types 192–223 land where an RTP second
/// byte would be marker + payload type 64–95, which RFC 5761 §4 forbids RTP to use; so
/// 192–223 means RTCP.
pub fn classify(datagram: &[u8]) -> Class {
    match datagram {
        [0..=3, ..] => Class::Stun,
        [20..=63, ..] => Class::Dtls,
        [128..=191, 192..=223, ..] => Class::Rtcp,
        [128..=191, _, ..] => Class::Rtp,
        _ => Class::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::{Class, classify};

    #[test]
    fn classifies_every_first_byte() {
        for b in 0..=255u8 {
            let want = match b {
                0..=3 => Class::Stun,
                20..=63 => Class::Dtls,
                128..=191 => Class::Rtp,
                _ => Class::Drop,
            };
            assert_eq!(classify(&[b, 96, 0, 0]), want, "first byte {b}");
        }
    }

    #[test]
    fn rtcp_by_packet_type() {
        assert_eq!(classify(&[0x80, 200]), Class::Rtcp); // SR
        assert_eq!(classify(&[0x81, 205]), Class::Rtcp); // RTPFB
        assert_eq!(classify(&[0x80, 192]), Class::Rtcp);
        assert_eq!(classify(&[0x80, 223]), Class::Rtcp);
        assert_eq!(classify(&[0x80, 224]), Class::Rtp); // marker + PT 96
        assert_eq!(classify(&[0x80, 191]), Class::Rtp); // marker + PT 63
        assert_eq!(classify(&[0x80, 111]), Class::Rtp);
    }

    #[test]
    fn short_datagrams_drop() {
        assert_eq!(classify(&[]), Class::Drop);
        assert_eq!(classify(&[0x80]), Class::Drop);
        assert_eq!(classify(&[0]), Class::Stun);
        assert_eq!(classify(&[22]), Class::Dtls);
    }
}
