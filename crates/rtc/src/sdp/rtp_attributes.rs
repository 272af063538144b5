//! Typed values of the media-level RTP attributes: `a=rtpmap`, `a=fmtp`, `a=rtcp-fb`,
//! `a=extmap`, `a=ssrc`, `a=ssrc-group`. Each parses from the text after `a=<name>:` and
//! writes back the same way (`Display`).

use std::fmt;

use super::attributes::Direction;

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
        assert!(Ssrc::parse("-1 cname:x").is_err());
    }
}
