//! Typed values of the attributes leanrtc interprets. Each parses from the text after
//! `a=<name>:` and writes back the same way (`Display`).

use std::fmt;

use super::candidate::Candidate;
use super::description::Attribute;

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
        "mid" | "ice-ufrag" | "ice-pwd" if v()?.is_empty() => Err("empty value"),
        _ => Ok(()),
    }
}

fn num<T: std::str::FromStr>(s: Option<&str>, what: &'static str) -> Result<T, &'static str> {
    s.and_then(|s| s.parse().ok()).ok_or(what)
}

/// Payload type: 0..=127 (RFC 3550 §5.1, 7 bits).
fn payload_type(s: Option<&str>) -> Result<u8, &'static str> {
    num(s, "payload type is not a number").and_then(|pt: u8| {
        if pt < 128 {
            Ok(pt)
        } else {
            Err("payload type is over 127")
        }
    })
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

/// `a=rtpmap:<pt> <name>/<clock>[/<channels>]` (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub pt: u8,
    /// Encoding name as written (compare case-insensitively).
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (audio), if given.
    pub channels: Option<u16>,
}

impl RtpMap {
    /// Parses `96 VP8/90000` or `111 opus/48000/2`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (pt, rest) = s.split_once(' ').ok_or("no encoding")?;
        let mut parts = rest.trim().split('/');
        let name = parts
            .next()
            .filter(|n| !n.is_empty())
            .ok_or("no encoding name")?;
        Ok(Self {
            pt: payload_type(Some(pt))?,
            name: name.to_owned(),
            clock_rate: num(parts.next(), "bad clock rate")?,
            channels: parts
                .next()
                .map(|c| num(Some(c), "bad channels"))
                .transpose()?,
        })
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.pt, self.name, self.clock_rate)?;
        match self.channels {
            Some(c) => write!(f, "/{c}"),
            None => Ok(()),
        }
    }
}

/// `a=fmtp:<pt> <parameters>` (RFC 8866 §6.15); parameters are `key=value;...` for the
/// codecs we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// Payload type.
    pub pt: u8,
    /// The parameter text as written.
    pub params: String,
}

impl Fmtp {
    /// Parses `96 profile-level-id=42e01f;packetization-mode=1`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (pt, params) = s.split_once(' ').unwrap_or((s, ""));
        Ok(Self {
            pt: payload_type(Some(pt))?,
            params: params.trim().to_owned(),
        })
    }

    /// The value of parameter `key` (case-insensitive name), if present.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.split(';').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
        })
    }
}

impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pt, self.params)
    }
}

/// `a=rtcp-fb:<pt|*> <type> [<subtype>]` (RFC 4585 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// The payload type, or `None` for `*` (all).
    pub pt: Option<u8>,
    /// The feedback type and parameters, e.g. `nack pli`.
    pub value: String,
}

impl RtcpFb {
    /// Parses `96 nack pli` or `* ccm fir`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (pt, value) = s.split_once(' ').ok_or("no feedback type")?;
        let pt = if pt == "*" {
            None
        } else {
            Some(payload_type(Some(pt))?)
        };
        Ok(Self {
            pt,
            value: value.trim().to_owned(),
        })
    }
}

impl fmt::Display for RtcpFb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pt {
            Some(pt) => write!(f, "{pt} {}", self.value),
            None => write!(f, "* {}", self.value),
        }
    }
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtMap {
    /// The local identifier, 1-14 (one-byte) or 1-255 (two-byte headers).
    pub id: u8,
    /// The direction, if given.
    pub direction: Option<Direction>,
    /// The extension's URI.
    pub uri: String,
    /// Extension attributes, if any.
    pub attributes: Option<String>,
}

impl ExtMap {
    /// Parses `3 urn:ietf:params:rtp-hdrext:sdes:mid` or `2/recvonly <uri>`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (head, rest) = s.split_once(' ').ok_or("no URI")?;
        let (id, direction) = match head.split_once('/') {
            Some((id, d)) => (id, Some(Direction::from_name(d).ok_or("bad direction")?)),
            None => (head, None),
        };
        let id = num(Some(id), "bad id")?;
        if id == 0 {
            return Err("id 0 is reserved");
        }
        let (uri, attributes) = match rest.trim().split_once(' ') {
            Some((u, a)) => (u, Some(a.to_owned())),
            None => (rest.trim(), None),
        };
        if uri.is_empty() {
            return Err("no URI");
        }
        Ok(Self {
            id,
            direction,
            uri: uri.to_owned(),
            attributes,
        })
    }
}

impl fmt::Display for ExtMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if let Some(d) = self.direction {
            write!(f, "/{}", d.as_str())?;
        }
        write!(f, " {}", self.uri)?;
        match &self.attributes {
            Some(a) => write!(f, " {a}"),
            None => Ok(()),
        }
    }
}

/// `a=ssrc:<ssrc> <attribute>[:<value>]` (RFC 5576 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssrc {
    /// The SSRC.
    pub ssrc: u32,
    /// The source attribute name, e.g. `cname` or `msid`.
    pub attribute: String,
    /// Its value, if any.
    pub value: Option<String>,
}

impl Ssrc {
    /// Parses `1234 cname:abc`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (ssrc, rest) = s.split_once(' ').unwrap_or((s, ""));
        let (attribute, value) = match rest.split_once(':') {
            Some((a, v)) => (a, Some(v.to_owned())),
            None => (rest, None),
        };
        Ok(Self {
            ssrc: num(Some(ssrc), "bad ssrc")?,
            attribute: attribute.to_owned(),
            value,
        })
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.ssrc, self.attribute)?;
        match &self.value {
            Some(v) => write!(f, ":{v}"),
            None => Ok(()),
        }
    }
}

/// `a=ssrc-group:<semantics> <ssrc>...` (RFC 5576 §4.2), e.g. `FID` for RTX (RFC 4588).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    /// `FID`, `SIM`, ...
    pub semantics: String,
    /// The SSRCs in order.
    pub ssrcs: Vec<u32>,
}

impl SsrcGroup {
    /// Parses `FID 1234 5678`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let mut parts = s.split_ascii_whitespace();
        let semantics = parts.next().ok_or("no semantics")?.to_owned();
        let ssrcs = parts
            .map(|p| num(Some(p), "bad ssrc"))
            .collect::<Result<_, _>>()?;
        Ok(Self { semantics, ssrcs })
    }
}

impl fmt::Display for SsrcGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantics)?;
        self.ssrcs.iter().try_for_each(|s| write!(f, " {s}"))
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
        let rt = RtpMap::parse("111 opus/48000/2").unwrap();
        assert_eq!((rt.pt, rt.clock_rate, rt.channels), (111, 48000, Some(2)));
        assert_eq!(rt.to_string(), "111 opus/48000/2");
        let fmtp = Fmtp::parse("96 level-asymmetry-allowed=1;packetization-mode=1").unwrap();
        assert_eq!(fmtp.param("PACKETIZATION-MODE"), Some("1"));
        let fb = RtcpFb::parse("* ccm fir").unwrap();
        assert_eq!((fb.pt, fb.to_string().as_str()), (None, "* ccm fir"));
        let ext = ExtMap::parse("3/sendonly urn:x attr").unwrap();
        assert_eq!(ext.direction, Some(Direction::SendOnly));
        assert_eq!(ext.to_string(), "3/sendonly urn:x attr");
        let fp = Fingerprint::parse("SHA-256 0A:ff").unwrap();
        assert_eq!(
            (fp.algorithm.as_str(), fp.bytes.as_slice()),
            ("sha-256", &[10, 255][..])
        );
        assert_eq!(fp.to_string(), "sha-256 0A:FF");
        let ssrc = Ssrc::parse("42 msid:a b").unwrap();
        assert_eq!(ssrc.value.as_deref(), Some("a b"));
        assert_eq!(SsrcGroup::parse("FID 1 2").unwrap().ssrcs, [1, 2]);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(RtpMap::parse("128 VP8/90000").is_err());
        assert!(RtpMap::parse("96 VP8").is_err());
        assert!(ExtMap::parse("0 urn:x").is_err());
        assert!(ExtMap::parse("1/sideways urn:x").is_err());
        assert!(Fingerprint::parse("sha-256 ABC").is_err());
        assert!(Fingerprint::parse("sha-256 é1").is_err());
        assert!(Setup::parse("ACTIVE").is_err());
    }
}
