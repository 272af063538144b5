//! The owned model of a session description and its line-by-line reader and writer
//! (RFC 8866 §5). Every line is kept in order, so unknown lines survive a round trip.

use std::fmt;

use super::accessors::Attrs;
use super::attributes::validate;
use super::{ParseError, ParseErrorKind};

/// An `a=` line: `a=<name>` or `a=<name>:<value>` (RFC 8866 §5.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name (before the first `:`).
    pub name: String,
    /// The value after the first `:`, if the line has one.
    pub value: Option<String>,
}

impl Attribute {
    /// A flag attribute such as `a=rtcp-mux`.
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: None,
        }
    }

    /// A value attribute such as `a=mid:0`.
    pub fn new(name: &str, value: impl fmt::Display) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.to_string()),
        }
    }
}

/// One line of a session or media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An `a=` line.
    Attr(Attribute),
    /// Any other `<type>=<value>` line (`o=`, `s=`, `c=`, `b=`, `t=`, ...), kept as text.
    Field(char, String),
}

/// A whole session description: the session-level lines (without the leading `v=0`, which
/// is implied) and the media sections in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// Session-level lines in order (`o=`, `s=`, `t=`, session attributes, ...).
    pub lines: Vec<Line>,
    /// The media sections (`m=` and the lines after it) in order.
    pub media: Vec<MediaDescription>,
}

/// One media section: the `m=` line's fields and the lines that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, ...
    pub kind: String,
    /// The transport port; 0 means disabled unless `a=bundle-only` (RFC 8843 §6).
    pub port: u16,
    /// The optional `/<number of ports>`.
    pub port_count: Option<u16>,
    /// The transport protocol, e.g. `UDP/TLS/RTP/SAVPF`.
    pub proto: String,
    /// The media formats (RTP payload types for RTP protocols).
    pub formats: Vec<String>,
    /// The lines after the `m=` line, in order.
    pub lines: Vec<Line>,
}

impl SessionDescription {
    /// Parses a description. Lines may end in CRLF or LF alone (RFC 8866 §5 asks for CRLF;
    /// hand-written descriptions often have LF). Empty lines are skipped.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut sdp = SessionDescription::default();
        let mut seen_version = false;
        for (index, raw) in text.split('\n').enumerate() {
            let number = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            let err = |kind| ParseError { line: number, kind };
            let (kind, value) = split_line(line).ok_or_else(|| err(ParseErrorKind::Malformed))?;
            if !seen_version {
                if kind != 'v' || value != "0" {
                    return Err(err(ParseErrorKind::NoVersion));
                }
                seen_version = true;
                continue;
            }
            if kind == 'm' {
                let media = MediaDescription::parse_m_line(value).map_err(err)?;
                sdp.media.push(media);
                continue;
            }
            let parsed = if kind == 'a' {
                Line::Attr(parse_attribute(value).map_err(err)?)
            } else {
                Line::Field(kind, value.to_owned())
            };
            match sdp.media.last_mut() {
                Some(media) => media.lines.push(parsed),
                None => sdp.lines.push(parsed),
            }
        }
        if !seen_version {
            return Err(ParseError {
                line: 0,
                kind: ParseErrorKind::NoVersion,
            });
        }
        for required in ['o', 's', 't'] {
            if !sdp
                .lines
                .iter()
                .any(|l| matches!(l, Line::Field(k, _) if *k == required))
            {
                return Err(ParseError {
                    line: 0,
                    kind: ParseErrorKind::Missing(required),
                });
            }
        }
        Ok(sdp)
    }

    /// Typed access to the session-level attributes.
    pub fn attrs(&self) -> Attrs<'_> {
        Attrs(&self.lines)
    }
}

impl MediaDescription {
    /// A media section with no lines yet.
    pub fn new(kind: &str, port: u16, proto: &str, formats: Vec<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats,
            lines: Vec::new(),
        }
    }

    /// Typed access to this section's attributes.
    pub fn attrs(&self) -> Attrs<'_> {
        Attrs(&self.lines)
    }

    /// Appends an attribute line.
    pub fn push(&mut self, attr: Attribute) {
        self.lines.push(Line::Attr(attr));
    }

    fn parse_m_line(value: &str) -> Result<Self, ParseErrorKind> {
        let mut parts = value.split_ascii_whitespace();
        let kind = parts
            .next()
            .ok_or(ParseErrorKind::BadMedia("no media type"))?;
        let port = parts.next().ok_or(ParseErrorKind::BadMedia("no port"))?;
        let proto = parts
            .next()
            .ok_or(ParseErrorKind::BadMedia("no protocol"))?;
        let (port, port_count) = match port.split_once('/') {
            Some((p, n)) => (p, Some(n.parse().map_err(|_| bad_port())?)),
            None => (port, None),
        };
        Ok(Self {
            kind: kind.to_owned(),
            port: port.parse().map_err(|_| bad_port())?,
            port_count,
            proto: proto.to_owned(),
            formats: parts.map(str::to_owned).collect(),
            lines: Vec::new(),
        })
    }
}

fn bad_port() -> ParseErrorKind {
    ParseErrorKind::BadMedia("port is not a number 0-65535")
}

/// Splits `x=value` into its type letter and value.
fn split_line(line: &str) -> Option<(char, &str)> {
    let value = line.get(2..)?;
    let mut chars = line.chars();
    let kind = chars.next()?;
    (kind.is_ascii_lowercase() && chars.next()? == '=').then_some((kind, value))
}

fn parse_attribute(value: &str) -> Result<Attribute, ParseErrorKind> {
    let attr = match value.split_once(':') {
        Some((name, v)) => Attribute {
            name: name.to_owned(),
            value: Some(v.to_owned()),
        },
        None => Attribute::flag(value),
    };
    if attr.name.is_empty() {
        return Err(ParseErrorKind::Malformed);
    }
    validate(&attr).map_err(|reason| ParseErrorKind::BadAttribute {
        name: attr.name.clone(),
        reason,
    })?;
    Ok(attr)
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{v}", self.name),
            None => write!(f, "a={}", self.name),
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Attr(a) => write!(f, "{a}\r\n"),
            Line::Field(kind, value) => write!(f, "{kind}={value}\r\n"),
        }
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        self.lines.iter().try_for_each(|l| l.fmt(f))
    }
}

/// Writes the description with CRLF line ends, starting with `v=0`.
impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=0\r\n")?;
        self.lines.iter().try_for_each(|l| l.fmt(f))?;
        self.media.iter().try_for_each(|m| m.fmt(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    #[test]
    fn round_trips_unknown_lines_in_order() {
        let text = format!(
            "{MINIMAL}a=x-foo:bar baz\r\nb=AS:30\r\nm=video 9/2 UDP/TLS/RTP/SAVPF 96 97\r\n\
             c=IN IP4 0.0.0.0\r\na=x-flag\r\na=mid:0\r\na=x-empty:\r\n"
        );
        let sdp = SessionDescription::parse(&text).unwrap();
        assert_eq!(sdp.to_string(), text);
        let m = &sdp.media[0];
        assert_eq!((m.port, m.port_count, m.formats.len()), (9, Some(2), 2));
        assert_eq!(m.lines[3], Line::Attr(Attribute::new("x-empty", "")));
    }

    #[test]
    fn tolerates_lf_and_blank_lines() {
        let sdp = SessionDescription::parse("v=0\no=- 1 2 IN IP4 0.0.0.0\n\ns=-\nt=0 0\n").unwrap();
        assert_eq!(sdp.to_string(), MINIMAL.replace("127.0.0.1", "0.0.0.0"));
    }

    #[test]
    fn errors_carry_line_numbers() {
        let e = |t: &str| SessionDescription::parse(t).unwrap_err();
        assert_eq!(e("o=- 1 1 IN IP4 x\r\n").kind, ParseErrorKind::NoVersion);
        assert_eq!(e("").kind, ParseErrorKind::NoVersion);
        let bad = e(&format!("{MINIMAL}m=video nine RTP/AVP 0\r\n"));
        assert_eq!(bad.line, 5);
        assert!(matches!(bad.kind, ParseErrorKind::BadMedia(_)));
        let bad = e(&format!("{MINIMAL}m=audio 9 RTP/AVP 0\r\nX=1\r\n"));
        assert_eq!((bad.line, bad.kind), (6, ParseErrorKind::Malformed));
        let bad = e(&format!("{MINIMAL}a=rtpmap:300 VP8/90000\r\n"));
        assert_eq!(bad.line, 5);
        assert!(bad.to_string().contains("a=rtpmap"), "{bad}");
        assert_eq!(
            e("v=0\r\ns=-\r\nt=0 0\r\n").kind,
            ParseErrorKind::Missing('o')
        );
        assert_eq!(
            e(&format!("{MINIMAL}a=\r\n")).kind,
            ParseErrorKind::Malformed
        );
    }
}
