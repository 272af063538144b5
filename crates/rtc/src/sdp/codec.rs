//! What leanrtc can carry: codecs, RTCP feedback and RTP header extensions, and how each
//! is matched against an `a=rtpmap`/`a=fmtp`, `a=rtcp-fb` or `a=extmap`.

use super::h264::{H264Profile, h264_matches};
use super::rtp_attributes::{Fmtp, RtpMap};

/// Audio or video: the media kinds we negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `m=audio`
    Audio,
    /// `m=video`
    Video,
}

impl MediaKind {
    /// Parses the `m=` media type.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        }
    }

    /// The `m=` media type.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// A codec we forward, record or play (we never decode it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// VP8 (RFC 7741), 90 kHz.
    Vp8,
    /// H.264 (RFC 6184), 90 kHz, packetization-mode 1, of one profile.
    H264(H264Profile),
    /// Opus (RFC 7587), 48 kHz, 2 channels in SDP.
    Opus,
}

impl Codec {
    /// The encoding name as written in `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "VP8",
            Codec::H264(_) => "H264",
            Codec::Opus => "opus",
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 90_000,
        }
    }

    /// The channel count written in `a=rtpmap` (RFC 7587 §7: always 2 for Opus).
    pub fn channels(self) -> Option<u16> {
        matches!(self, Codec::Opus).then_some(2)
    }

    /// Audio or video.
    pub fn kind(self) -> MediaKind {
        match self {
            Codec::Opus => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }

    /// Whether an offered format is this codec: name (case-insensitive), clock rate and
    /// channels (RFC 3264 §6.1), and for H.264 the profile and packetization mode.
    pub fn matches(self, rtpmap: &RtpMap, fmtp: Option<&Fmtp>) -> bool {
        let channels = rtpmap
            .channels
            .or(self.kind().eq(&MediaKind::Audio).then_some(1));
        let same = rtpmap.name.eq_ignore_ascii_case(self.name())
            && rtpmap.clock_rate == self.clock_rate()
            && channels == self.channels();
        match self {
            Codec::H264(profile) => same && h264_matches(fmtp, profile),
            _ => same,
        }
    }
}

/// RTCP feedback we handle (RFC 4585, RFC 5104, REMB, transport-wide CC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtcpFeedback {
    /// `nack`: generic NACK (RFC 4585 §6.2.1).
    Nack,
    /// `nack pli`: picture loss indication (RFC 4585 §6.3.1).
    Pli,
    /// `ccm fir`: full intra request (RFC 5104 §4.3.1).
    Fir,
    /// `goog-remb`: receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb).
    Remb,
    /// `transport-cc`: transport-wide congestion control feedback.
    TransportCc,
}

impl RtcpFeedback {
    /// Every kind, in the order we write them.
    pub const ALL: [RtcpFeedback; 5] = [
        RtcpFeedback::Nack,
        RtcpFeedback::Pli,
        RtcpFeedback::Fir,
        RtcpFeedback::Remb,
        RtcpFeedback::TransportCc,
    ];

    /// The `a=rtcp-fb` value after the payload type.
    pub fn as_str(self) -> &'static str {
        match self {
            RtcpFeedback::Nack => "nack",
            RtcpFeedback::Pli => "nack pli",
            RtcpFeedback::Fir => "ccm fir",
            RtcpFeedback::Remb => "goog-remb",
            RtcpFeedback::TransportCc => "transport-cc",
        }
    }

    /// The feedback an `a=rtcp-fb` value names, if we handle it.
    pub fn from_value(value: &str) -> Option<Self> {
        let words: Vec<&str> = value.split_ascii_whitespace().collect();
        Self::ALL
            .into_iter()
            .find(|fb| fb.as_str().split(' ').eq(words.iter().copied()))
    }
}

/// RTP header extensions we handle (RFC 8285 framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderExtension {
    /// The media section's mid in every packet (RFC 8843 §15.2): routes BUNDLEd media.
    SdesMid,
    /// abs-send-time (for REMB).
    AbsSendTime,
    /// Transport-wide sequence numbers (for transport-cc feedback).
    TransportWideCc,
    /// The RTP stream id (RFC 8852 §3.1): which `a=rid` (simulcast layer) a packet carries.
    RtpStreamId,
    /// The repaired RTP stream id (RFC 8852 §3.2): the rid an RTX packet repairs.
    RepairedRtpStreamId,
}

impl HeaderExtension {
    /// Every kind, in the order we offer them.
    pub const ALL: [HeaderExtension; 5] = [
        HeaderExtension::SdesMid,
        HeaderExtension::AbsSendTime,
        HeaderExtension::TransportWideCc,
        HeaderExtension::RtpStreamId,
        HeaderExtension::RepairedRtpStreamId,
    ];

    /// The extension's URI.
    pub fn uri(self) -> &'static str {
        match self {
            HeaderExtension::SdesMid => "urn:ietf:params:rtp-hdrext:sdes:mid",
            HeaderExtension::AbsSendTime => {
                "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
            }
            HeaderExtension::TransportWideCc => {
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
            }
            HeaderExtension::RtpStreamId => "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            HeaderExtension::RepairedRtpStreamId => {
                "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
            }
        }
    }

    /// The extension a URI names, if we handle it.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.uri() == uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_name_clock_and_channels() {
        let r = |s| RtpMap::parse(s).unwrap();
        assert!(Codec::Vp8.matches(&r("96 vp8/90000"), None));
        assert!(!Codec::Vp8.matches(&r("96 VP8/48000"), None));
        assert!(Codec::Opus.matches(&r("111 OPUS/48000/2"), None));
        assert!(
            !Codec::Opus.matches(&r("111 opus/48000"), None),
            "mono opus is not RFC 7587"
        );
        assert!(!Codec::Opus.matches(&r("111 opus/48000/1"), None));
        let fmtp = Fmtp::parse("102 packetization-mode=1;profile-level-id=42e01f").unwrap();
        let h264 = Codec::H264(H264Profile::ConstrainedBaseline);
        assert!(h264.matches(&r("102 H264/90000"), Some(&fmtp)));
        assert!(!h264.matches(&r("102 H264/90000"), None));
    }

    #[test]
    fn feedback_and_extension_names() {
        assert_eq!(
            RtcpFeedback::from_value("nack  pli"),
            Some(RtcpFeedback::Pli)
        );
        assert_eq!(RtcpFeedback::from_value("nack"), Some(RtcpFeedback::Nack));
        assert_eq!(RtcpFeedback::from_value("nack rpsi"), None);
        assert_eq!(RtcpFeedback::from_value("ccm tmmbr"), None);
        for e in HeaderExtension::ALL {
            assert_eq!(HeaderExtension::from_uri(e.uri()), Some(e));
        }
    }
}
