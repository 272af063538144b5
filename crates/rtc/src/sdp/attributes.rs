//! Typed values of the attributes leanrtc interprets. Each parses from the text after
//! `a=<name>:` and writes back the same way (`Display`).

use std::fmt;

use super::candidate::Candidate;
use super::description::Attribute;
use super::rtp_attributes::{ExtMap, Fmtp, RtcpFb, RtpMap, Ssrc, SsrcGroup};
use super::simulcast::{Rid, Simulcast};

/// Checks the value of an attribute we interpret, so a bad one is reported with its line
/// number at parse time rather than silently ignored later.
pub(crate) fn validate(attr: &Attribute) -> Result<(), &'static str> {
    let value = attr.value.as_deref();
    let v = || value.ok_or("needs a value");
    match attr.name.as_str() {
        "rtpmap" => RtpMap::parse(v()?).map(drop),
        "fmtp" => Fmtp::parse(v()?).map(drop),
        "rtcp-fb" => RtcpFb::parse(v()?).map(drop),
        "extmap" => ExtMap::parse(v()?).map(drop),
        "fingerprint" => Fingerprint::parse(v()?).map(drop),
        "setup" => Setup::parse(v()?).map(drop),
        "candidate" => Candidate::parse(v()?).map(drop),
        "ssrc" => Ssrc::parse(v()?).map(drop),
        "ssrc-group" => SsrcGroup::parse(v()?).map(drop),
        "group" => Group::parse(v()?).map(drop),
        "msid" => Msid::parse(v()?).map(drop),
        "rid" => Rid::parse(v()?).map(drop),
        "simulcast" => Simulcast::parse(v()?).map(drop),
        "mid" if v()?.is_empty() => Err("empty value"),
        // RFC 8839 §5.4: a peer's credentials become the STUN USERNAME we match and the
        // MESSAGE-INTEGRITY key; refuse what no ICE agent may send.
        "ice-ufrag" => crate::ice::check_ufrag(v()?)
            .map_err(|_| "ice-ufrag must be 4 to 256 ice-chars (ALPHA / DIGIT / + / /)"),
        "ice-pwd" => crate::ice::check_pwd(v()?)
            .map_err(|_| "ice-pwd must be 22 to 256 ice-chars (ALPHA / DIGIT / + / /)"),
        _ => Ok(()),
    }
}

/// A media direction (RFC 8866 §6.7, RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default when none is given).
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::SendRecv,
            Self::SendOnly,
            Self::RecvOnly,
            Self::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str() == name)
    }

    /// The same flow seen from the other side: sendonly ↔ recvonly.
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether media flows from this side.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether media flows to this side.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction with the given send/receive flags.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

/// `a=setup` (RFC 4145 §4, RFC 8842 §5): who opens the DTLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// This side is the DTLS client.
    Active,
    /// This side is the DTLS server.
    Passive,
    /// Either; the answerer chooses (offers only).
    ActPass,
    /// No connection now.
    HoldConn,
}

impl Setup {
    /// Parses `active`, `passive`, `actpass` or `holdconn`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "active" => Ok(Setup::Active),
            "passive" => Ok(Setup::Passive),
            "actpass" => Ok(Setup::ActPass),
            "holdconn" => Ok(Setup::HoldConn),
            _ => Err("not active, passive, actpass or holdconn"),
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        })
    }
}

/// `a=fingerprint:<hash> <hex:hex:...>` (RFC 8122 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function, lowercase (`sha-256`, ...).
    pub algorithm: String,
    /// The digest bytes.
    pub bytes: Vec<u8>,
}

impl Fingerprint {
    /// A SHA-256 fingerprint.
    pub fn sha256(digest: [u8; 32]) -> Self {
        Self {
            algorithm: "sha-256".into(),
            bytes: digest.to_vec(),
        }
    }

    /// Parses `sha-256 AB:CD:...`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (algorithm, hex) = s.split_once(' ').ok_or("no hash value")?;
        let bytes = hex
            .split(':')
            .map(|b| match b.as_bytes() {
                [h, l] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    u8::from_str_radix(b, 16).map_err(|_| "bad hex")
                }
                _ => Err("bytes are not two hex digits"),
            })
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Self {
            algorithm: algorithm.to_ascii_lowercase(),
            bytes,
        })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.algorithm)?;
        for (i, b) in self.bytes.iter().enumerate() {
            write!(f, "{}{b:02X}", if i == 0 { ' ' } else { ':' })?;
        }
        Ok(())
    }
}

/// `a=group:<semantics> <mid>...` (RFC 5888 §5), e.g. `BUNDLE 0 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `BUNDLE`, `LS`, ...
    pub semantics: String,
    /// The identification tags (mids) in order.
    pub mids: Vec<String>,
}

impl Group {
    /// Parses `BUNDLE 0 1`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let mut parts = s.split_ascii_whitespace();
        let semantics = parts.next().ok_or("no semantics")?.to_owned();
        Ok(Self {
            semantics,
            mids: parts.map(str::to_owned).collect(),
        })
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantics)?;
        self.mids.iter().try_for_each(|m| write!(f, " {m}"))
    }
}

/// `a=msid:<stream id> [<track id>]` (RFC 8830 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msid {
    /// The MediaStream id (`-` for none).
    pub stream: String,
    /// The track id, if given.
    pub track: Option<String>,
}

impl Msid {
    /// Parses `stream track`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let mut parts = s.split_ascii_whitespace();
        let stream = parts.next().ok_or("no stream id")?.to_owned();
        Ok(Self {
            stream,
            track: parts.next().map(str::to_owned),
        })
    }
}

impl fmt::Display for Msid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stream)?;
        match &self.track {
            Some(t) => write!(f, " {t}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip() {
        let fp = Fingerprint::parse("SHA-256 0A:ff").unwrap();
        assert_eq!(
            (fp.algorithm.as_str(), fp.bytes.as_slice()),
            ("sha-256", &[10, 255][..])
        );
        assert_eq!(fp.to_string(), "sha-256 0A:FF");
        let group = Group::parse("BUNDLE 0  1").unwrap();
        assert_eq!(
            (group.to_string().as_str(), group.mids.len()),
            ("BUNDLE 0 1", 2)
        );
        assert_eq!(Msid::parse("s t").unwrap().to_string(), "s t");
        assert_eq!(Setup::parse("actpass").unwrap().to_string(), "actpass");
        assert_eq!(
            Direction::from_name("recvonly").map(Direction::reverse),
            Some(Direction::SendOnly)
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Fingerprint::parse("sha-256 ABC").is_err());
        assert!(Fingerprint::parse("sha-256 é1").is_err());
        assert!(Fingerprint::parse("sha-256 +1").is_err());
        assert!(Setup::parse("ACTIVE").is_err());
        assert!(validate(&Attribute::new("mid", "")).is_err());
        assert!(validate(&Attribute::flag("rtpmap")).is_err());
    }
}
