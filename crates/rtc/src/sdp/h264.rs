//! H.264 `profile-level-id` (RFC 6184 §8.1) and the offer/answer rules for it (§8.2.2):
//! the profile must match, and the level may be answered lower than offered.

use std::fmt;

use super::rtp_attributes::Fmtp;

/// The H.264 profiles WebRTC endpoints offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum H264Profile {
    /// Constrained Baseline (`42e0..`, `42c0..`, `4d80..`, `58c0..`): what every browser and
    /// OBS can send and decode.
    ConstrainedBaseline,
    /// Baseline (`4200..`).
    Baseline,
    /// Main (`4d00..`).
    Main,
    /// High (`6400..`).
    High,
    /// Constrained High (`640c..`), Safari's favourite.
    ConstrainedHigh,
    /// Predictive High 4:4:4 (`f400..`).
    PredictiveHigh444,
}

/// A parsed `profile-level-id`: profile and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileLevelId {
    /// The profile, from `profile_idc` and the constraint flags in `profile-iop`.
    pub profile: H264Profile,
    /// `level_idc`: 10 × the level number (31 is level 3.1); level 1b is written as 9.
    pub level: u8,
}

/// RFC 6184 §8.1: the default when an fmtp has no profile-level-id (Baseline, level 1.0).
const DEFAULT_PROFILE_LEVEL_ID: &str = "42000a";
/// Level 1b, as `level_idc` is written for it outside Baseline/Main/Extended (H.264 A.3.1).
const LEVEL_1B: u8 = 9;
const LEVELS: [u8; 17] = [
    9, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52,
];

/// (profile_idc, mask, value, profile): `profile-iop & mask == value` selects the profile.
/// profile-iop holds constraint_set0..5 in its top six bits and two reserved zero bits
/// (H.264 §7.3.2.1.1); the patterns are those of the profile definitions in H.264 Annex A.
const PATTERNS: [(u8, u8, u8, H264Profile); 9] = [
    (0x42, 0x4f, 0x40, H264Profile::ConstrainedBaseline), // x1xx0000
    (0x4d, 0x8f, 0x80, H264Profile::ConstrainedBaseline), // 1xxx0000
    (0x58, 0xcf, 0xc0, H264Profile::ConstrainedBaseline), // 11xx0000
    (0x42, 0x4f, 0x00, H264Profile::Baseline),            // x0xx0000
    (0x58, 0xcf, 0x80, H264Profile::Baseline),            // 10xx0000
    (0x4d, 0xaf, 0x00, H264Profile::Main),                // 0x0x0000
    (0x64, 0xff, 0x00, H264Profile::High),                // 00000000
    (0x64, 0xff, 0x0c, H264Profile::ConstrainedHigh),     // 00001100
    (0xf4, 0xff, 0x00, H264Profile::PredictiveHigh444),   // 00000000
];

impl ProfileLevelId {
    /// Parses the six hex digits of `profile-level-id`.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = u32::from_str_radix(s, 16).ok()?;
        let [_, idc, iop, level] = v.to_be_bytes();
        let profile = PATTERNS
            .iter()
            .find(|(i, mask, value, _)| *i == idc && iop & mask == *value)
            .map(|p| p.3)?;
        // Level 1b in Baseline/Main is level_idc 11 with constraint_set3 (H.264 A.3.1).
        let is_1b = level == 11
            && iop & 0x10 != 0
            && matches!(
                profile,
                H264Profile::Baseline | H264Profile::ConstrainedBaseline | H264Profile::Main
            );
        let level = if is_1b { LEVEL_1B } else { level };
        LEVELS.contains(&level).then_some(Self { profile, level })
    }

    /// The profile-level-id of an fmtp, or the RFC 6184 default when it has none.
    pub fn from_fmtp(fmtp: Option<&Fmtp>) -> Option<Self> {
        let text = fmtp.and_then(|f| f.param("profile-level-id"));
        Self::parse(text.unwrap_or(DEFAULT_PROFILE_LEVEL_ID))
    }

    /// Orders levels, with 1b between 1.0 and 1.1.
    fn level_rank(level: u8) -> u16 {
        if level == LEVEL_1B {
            105
        } else {
            u16::from(level) * 10
        }
    }
}

impl fmt::Display for ProfileLevelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (idc, mut iop) = match self.profile {
            H264Profile::ConstrainedBaseline => (0x42, 0xe0),
            H264Profile::Baseline => (0x42, 0x00),
            H264Profile::Main => (0x4d, 0x00),
            H264Profile::High => (0x64, 0x00),
            H264Profile::ConstrainedHigh => (0x64, 0x0c),
            H264Profile::PredictiveHigh444 => (0xf4, 0x00),
        };
        let mut level = self.level;
        if level == LEVEL_1B && matches!(idc, 0x42 | 0x4d) {
            iop |= 0x10;
            level = 11;
        }
        write!(f, "{idc:02x}{iop:02x}{level:02x}")
    }
}

/// RFC 6184 §8.1: `packetization-mode` (default 0). We only send and take mode 1
/// (FU-A/STAP-A): mode 0 caps a NAL unit at one packet.
pub(crate) fn packetization_mode(fmtp: Option<&Fmtp>) -> &str {
    fmtp.and_then(|f| f.param("packetization-mode"))
        .unwrap_or("0")
}

/// Whether an offered H.264 format is one we take for `profile`: mode 1 and that profile.
pub(crate) fn h264_matches(fmtp: Option<&Fmtp>, profile: H264Profile) -> bool {
    packetization_mode(fmtp) == "1"
        && ProfileLevelId::from_fmtp(fmtp).is_some_and(|p| p.profile == profile)
}

/// RFC 6184 §8.2.2, as the offerer checks an answer: same profile and packetization mode,
/// and a level no higher than offered unless both allow level asymmetry.
pub(crate) fn h264_answer_ok(offered: Option<&Fmtp>, answered: Option<&Fmtp>) -> bool {
    let (Some(o), Some(a)) = (
        ProfileLevelId::from_fmtp(offered),
        ProfileLevelId::from_fmtp(answered),
    ) else {
        return false;
    };
    let asymmetric =
        |f: Option<&Fmtp>| f.and_then(|f| f.param("level-asymmetry-allowed")) == Some("1");
    o.profile == a.profile
        && packetization_mode(offered) == packetization_mode(answered)
        && (ProfileLevelId::level_rank(a.level) <= ProfileLevelId::level_rank(o.level)
            || (asymmetric(offered) && asymmetric(answered)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use H264Profile::*;

    fn p(s: &str) -> Option<(H264Profile, u8)> {
        ProfileLevelId::parse(s).map(|p| (p.profile, p.level))
    }

    #[test]
    fn profiles_from_browser_offers() {
        assert_eq!(p("42e01f"), Some((ConstrainedBaseline, 31)));
        assert_eq!(p("42C01F"), Some((ConstrainedBaseline, 31)));
        assert_eq!(p("4d801f"), Some((ConstrainedBaseline, 31)));
        assert_eq!(p("42001f"), Some((Baseline, 31)));
        assert_eq!(p("4d001f"), Some((Main, 31)));
        assert_eq!(p("64001f"), Some((High, 31)));
        assert_eq!(p("640c34"), Some((ConstrainedHigh, 52)));
        assert_eq!(p("f4001f"), Some((PredictiveHigh444, 31)));
        assert_eq!(p("42f00b"), Some((ConstrainedBaseline, 9)));
        assert_eq!(p("42e00b"), Some((ConstrainedBaseline, 11)));
        assert_eq!(p("42e0ff"), None, "no such level");
        assert_eq!(p("43e01f"), None, "no such profile");
        assert_eq!(p("42e01"), None);
        assert_eq!(p("+2e01f"), None);
    }

    #[test]
    fn writes_what_it_reads() {
        for s in [
            "42e01f", "42001f", "4d0032", "64001f", "640c34", "42f00b", "640009",
        ] {
            assert_eq!(ProfileLevelId::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn offer_answer_rules() {
        let f = |s: &str| Fmtp::parse(s).unwrap();
        let cb31 = f("1 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f");
        let cb_mode0 = f("1 level-asymmetry-allowed=1;profile-level-id=42e01f");
        assert!(h264_matches(Some(&cb31), ConstrainedBaseline));
        assert!(!h264_matches(Some(&cb31), Baseline));
        assert!(!h264_matches(Some(&cb_mode0), ConstrainedBaseline));
        assert!(!h264_matches(None, Baseline), "default is mode 0");
        let cb20 = f("1 packetization-mode=1;profile-level-id=42e014");
        let cb40 = f("1 packetization-mode=1;profile-level-id=42e028");
        assert!(h264_answer_ok(Some(&cb31), Some(&cb20)));
        assert!(!h264_answer_ok(Some(&cb20), Some(&cb31)));
        assert!(h264_answer_ok(Some(&cb31), Some(&cb31)));
        assert!(!h264_answer_ok(
            Some(&cb31),
            Some(&f("1 packetization-mode=1"))
        ));
        let asym40 = f("1 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e028");
        assert!(h264_answer_ok(Some(&cb31), Some(&asym40)));
        assert!(!h264_answer_ok(Some(&cb31), Some(&cb40)));
    }
}
