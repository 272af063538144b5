//! RTP stream identifiers and simulcast in SDP: `a=rid` (RFC 8851) and `a=simulcast`
//! (RFC 8853). Each parses from the text after `a=<name>:` and writes back the same way.

use std::fmt;

/// RFC 8851 §10: `rid-id = 1*(alpha-numeric / "-" / "_")`.
fn check_rid_id(id: &str) -> Result<(), &'static str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() {
        Err("empty rid-id")
    } else if !id.chars().all(ok) {
        Err("rid-id must be letters, digits, - and _")
    } else {
        Ok(())
    }
}

/// The direction of an `a=rid` line, from the side that wrote it (RFC 8851 §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RidDirection {
    /// `send`: the writer sends this RTP stream.
    Send,
    /// `recv`: the writer receives it.
    Recv,
}

impl RidDirection {
    /// The other side's view.
    pub fn reverse(self) -> Self {
        match self {
            RidDirection::Send => RidDirection::Recv,
            RidDirection::Recv => RidDirection::Send,
        }
    }

    fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "send" => Ok(RidDirection::Send),
            "recv" => Ok(RidDirection::Recv),
            _ => Err("direction is not send or recv"),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RidDirection::Send => "send",
            RidDirection::Recv => "recv",
        }
    }
}

/// `a=rid:<rid-id> <send|recv> [pt=<fmt>,...;][<restriction>;...]` (RFC 8851 §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rid {
    /// The RTP stream id, as carried in the RID header extension (RFC 8852).
    pub id: String,
    /// Whether the writer sends or receives this stream.
    pub direction: RidDirection,
    /// The payload types it may use (`pt=`); empty means every format of the section.
    pub pts: Vec<u8>,
    /// The other restrictions (`max-width=1280`, `depend=a`, ...) as written, in order.
    pub restrictions: Vec<(String, Option<String>)>,
}

impl Rid {
    /// A rid without restrictions.
    pub fn new(id: &str, direction: RidDirection) -> Self {
        Self {
            id: id.to_owned(),
            direction,
            pts: Vec::new(),
            restrictions: Vec::new(),
        }
    }

    /// Parses `f send`, `1 send pt=97,98;max-width=1280;max-height=720`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let mut parts = s.split_ascii_whitespace();
        let id = parts.next().ok_or("no rid-id")?;
        check_rid_id(id)?;
        let direction = RidDirection::parse(parts.next().ok_or("no direction")?)?;
        let mut rid = Rid::new(id, direction);
        if let Some(params) = parts.next() {
            for (i, param) in params.split(';').enumerate() {
                let (key, value) = match param.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (param, None),
                };
                // §10: `pt=` may only come first.
                if key == "pt" && i == 0 {
                    let list = value.ok_or("pt= needs payload types")?;
                    rid.pts = list
                        .split(',')
                        .map(|p| p.parse::<u8>().ok().filter(|pt| *pt < 128))
                        .collect::<Option<_>>()
                        .ok_or("pt= holds a bad payload type")?;
                    continue;
                }
                let name_ok =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !name_ok || key == "pt" {
                    return Err("bad rid restriction");
                }
                rid.restrictions
                    .push((key.to_owned(), value.map(str::to_owned)));
            }
        }
        if parts.next().is_some() {
            return Err("text after the rid restrictions");
        }
        Ok(rid)
    }
}

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id, self.direction.as_str())?;
        let mut sep = ' ';
        if !self.pts.is_empty() {
            f.write_str(" pt=")?;
            for (i, pt) in self.pts.iter().enumerate() {
                write!(f, "{}{pt}", if i == 0 { "" } else { "," })?;
            }
            sep = ';';
        }
        for (key, value) in &self.restrictions {
            write!(f, "{sep}{key}")?;
            if let Some(v) = value {
                write!(f, "={v}")?;
            }
            sep = ';';
        }
        Ok(())
    }
}

/// One simulcast stream's identifier in `a=simulcast`: a rid, maybe paused (`~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulcastId {
    /// The rid-id (an `a=rid` of the same section).
    pub rid: String,
    /// RFC 8853 §5.1: `~` marks a stream that starts paused.
    pub paused: bool,
}

impl fmt::Display for SimulcastId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tilde = if self.paused { "~" } else { "" };
        write!(f, "{tilde}{}", self.rid)
    }
}

/// `a=simulcast:[send <streams>] [recv <streams>]` (RFC 8853 §5.1). Each stream is a list of
/// alternative rids (`a,b`); streams are separated by `;`, in the writer's order of
/// preference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Simulcast {
    /// The streams the writer sends.
    pub send: Vec<Vec<SimulcastId>>,
    /// The streams the writer receives.
    pub recv: Vec<Vec<SimulcastId>>,
}

impl Simulcast {
    /// Parses `send q;h;f`, `recv 1;~2 send 3,4`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let mut sc = Simulcast::default();
        let mut parts = s.split_ascii_whitespace();
        while let Some(dir) = parts.next() {
            let list = parse_streams(parts.next().ok_or("no stream list")?)?;
            let slot = match RidDirection::parse(dir)? {
                RidDirection::Send => &mut sc.send,
                RidDirection::Recv => &mut sc.recv,
            };
            if !slot.is_empty() {
                return Err("a direction is given twice");
            }
            *slot = list;
        }
        if sc.send.is_empty() && sc.recv.is_empty() {
            return Err("no send or recv streams");
        }
        Ok(sc)
    }
}

/// `sc-str-list = sc-alt-list *(";" sc-alt-list)`, `sc-alt-list = sc-id *("," sc-id)`.
fn parse_streams(s: &str) -> Result<Vec<Vec<SimulcastId>>, &'static str> {
    s.split(';')
        .map(|alts| {
            alts.split(',')
                .map(|id| {
                    let (paused, rid) = match id.strip_prefix('~') {
                        Some(rest) => (true, rest),
                        None => (false, id),
                    };
                    check_rid_id(rid)?;
                    Ok(SimulcastId {
                        rid: rid.to_owned(),
                        paused,
                    })
                })
                .collect()
        })
        .collect()
}

fn write_streams(f: &mut fmt::Formatter<'_>, streams: &[Vec<SimulcastId>]) -> fmt::Result {
    for (i, alts) in streams.iter().enumerate() {
        if i > 0 {
            f.write_str(";")?;
        }
        for (j, id) in alts.iter().enumerate() {
            write!(f, "{}{id}", if j == 0 { "" } else { "," })?;
        }
    }
    Ok(())
}

impl fmt::Display for Simulcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, streams) in [("send", &self.send), ("recv", &self.recv)] {
            if streams.is_empty() {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(name)?;
            f.write_str(" ")?;
            write_streams(f, streams)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rid_round_trips() {
        for text in [
            "f send",
            "q recv",
            "1 send pt=97,98;max-width=1280;max-height=720",
            "hi_res-2 send max-fps=30;depend=lo",
            "x send pt=96",
            "y recv flag;max-br=64000",
        ] {
            let rid = Rid::parse(text).unwrap();
            assert_eq!(rid.to_string(), text);
        }
        let rid = Rid::parse("1 send pt=97,98;max-width=1280").unwrap();
        assert_eq!((rid.id.as_str(), rid.direction), ("1", RidDirection::Send));
        assert_eq!(rid.pts, [97, 98]);
        assert_eq!(
            rid.restrictions,
            [("max-width".to_owned(), Some("1280".to_owned()))]
        );
    }

    #[test]
    fn rid_rejects_what_the_grammar_does_not_allow() {
        for bad in [
            "",
            "f",
            "f sideways",
            "f! send",
            "f send pt=",
            "f send pt=128",
            "f send pt=9x",
            "f send max-width=1;pt=96",
            "f send =3",
            "f send a b",
            "é send",
        ] {
            assert!(Rid::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn simulcast_round_trips() {
        for text in ["send q;h;f", "recv 1;~2", "send 1,2;3 recv 4", "send ~a"] {
            let sc = Simulcast::parse(text).unwrap();
            assert_eq!(sc.to_string(), text);
        }
        let sc = Simulcast::parse("send 1,~2;3").unwrap();
        assert_eq!(sc.send.len(), 2);
        assert_eq!(sc.send[0][1].rid, "2");
        assert!(sc.send[0][1].paused && !sc.send[0][0].paused);
        // recv first is as valid (RFC 8853 §5.1: sc-recv [SP sc-send]) and is written back
        // send first.
        let sc = Simulcast::parse("recv a send b").unwrap();
        assert_eq!(sc.to_string(), "send b recv a");
    }

    #[test]
    fn simulcast_rejects_bad_lists() {
        for bad in [
            "",
            "send",
            "send ;",
            "send a;;b",
            "send a,",
            "both a",
            "send a send b",
            "send ~",
            "send a b",
        ] {
            assert!(Simulcast::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
