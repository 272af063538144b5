//! `a=candidate` (RFC 8839 §5.1): parse the peer's candidates, write ours.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One ICE candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation (1-32 ice-chars).
    pub foundation: String,
    /// Component id: 1 is RTP (the only one with rtcp-mux).
    pub component: u16,
    /// Transport as written (`udp`, `UDP`, `tcp`).
    pub transport: String,
    /// Priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// Connection address: an IP address or, from browsers hiding theirs, an mDNS name.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Candidate type: `host`, `srflx`, `prflx`, `relay`.
    pub typ: String,
    /// Related address, if given.
    pub raddr: Option<String>,
    /// Related port, if given.
    pub rport: Option<u16>,
    /// Extension attributes (`generation 0`, `ufrag ...`, `network-id ...`) in order.
    pub extensions: Vec<(String, String)>,
}

/// RFC 8445 §5.1.2.2: the recommended type preference of host candidates.
const HOST_TYPE_PREFERENCE: u32 = 126;

impl Candidate {
    /// Our UDP host candidate for `addr`. `index` orders several of ours: the first gets the
    /// highest local preference, and each address its own foundation (RFC 8445 §5.1.1.3).
    pub fn host(addr: SocketAddr, index: u16) -> Self {
        let local_preference = u32::from(u16::MAX - index);
        let component = 1;
        Self {
            foundation: (u32::from(index) + 1).to_string(),
            component,
            transport: "udp".into(),
            // RFC 8445 §5.1.2.1.
            priority: (HOST_TYPE_PREFERENCE << 24) | (local_preference << 8) | (256 - 1),
            address: addr.ip().to_string(),
            port: addr.port(),
            typ: "host".into(),
            raddr: None,
            rport: None,
            extensions: Vec::new(),
        }
    }

    /// Our passive ICE-TCP host candidate for `addr` (RFC 6544 §4.5: `tcptype passive`; the
    /// peer connects to it). Its priority is lower than every UDP host candidate's, so a peer
    /// that can reach us over UDP keeps using UDP: RFC 6544 §4.2 builds the local preference
    /// as `2^13 * direction-pref + other-pref`, with direction-pref 4 for a passive host
    /// candidate, so it is at most 40959, below the 65535 - index of our (few) UDP candidates.
    pub fn tcp_passive(addr: SocketAddr, index: u16, foundation: usize) -> Self {
        const PASSIVE_HOST_DIRECTION: u32 = 4;
        let other = 8191u32.saturating_sub(u32::from(index));
        let local_preference = (PASSIVE_HOST_DIRECTION << 13) | other;
        Self {
            foundation: foundation.to_string(),
            component: 1,
            transport: "tcp".into(),
            priority: (HOST_TYPE_PREFERENCE << 24) | (local_preference << 8) | (256 - 1),
            address: addr.ip().to_string(),
            port: addr.port(),
            typ: "host".into(),
            raddr: None,
            rport: None,
            extensions: vec![("tcptype".into(), "passive".into())],
        }
    }

    /// The whole SDP line, `a=candidate:...` (no line end).
    pub fn to_line(&self) -> String {
        format!("a=candidate:{self}")
    }

    /// The address as a socket address, when the connection address is an IP (not mDNS).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.address.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }

    /// Whether this is a UDP candidate.
    pub fn is_udp(&self) -> bool {
        self.transport.eq_ignore_ascii_case("udp")
    }

    /// Parses the attribute value (also accepts the `candidate:` prefix that trickle ICE
    /// and the browser's `RTCIceCandidate.candidate` carry).
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.strip_prefix("candidate:").unwrap_or(s);
        let mut p = s.split_ascii_whitespace();
        let mut next = |what| p.next().ok_or(what);
        let foundation = next("no foundation")?.to_owned();
        let component = next("no component")?.parse().map_err(|_| "bad component")?;
        let transport = next("no transport")?.to_owned();
        let priority = next("no priority")?.parse().map_err(|_| "bad priority")?;
        let address = next("no address")?.to_owned();
        let port = next("no port")?.parse().map_err(|_| "bad port")?;
        if next("no typ")? != "typ" {
            return Err("expected `typ`");
        }
        let typ = next("no candidate type")?.to_owned();
        let mut c = Self {
            foundation,
            component,
            transport,
            priority,
            address,
            port,
            typ,
            raddr: None,
            rport: None,
            extensions: Vec::new(),
        };
        while let Some(key) = p.next() {
            let value = p.next().ok_or("extension without value")?;
            match key {
                "raddr" => c.raddr = Some(value.to_owned()),
                "rport" => c.rport = Some(value.parse().map_err(|_| "bad rport")?),
                _ => c.extensions.push((key.to_owned(), value.to_owned())),
            }
        }
        Ok(c)
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.typ
        )?;
        if let Some(a) = &self.raddr {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.rport {
            write!(f, " rport {p}")?;
        }
        self.extensions
            .iter()
            .try_for_each(|(k, v)| write!(f, " {k} {v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_candidate_line() {
        let c = Candidate::host("127.0.0.1:40000".parse().unwrap(), 0);
        // RFC 8445 §5.1.2.1 with type preference 126, local preference 65535, component 1.
        assert_eq!(c.priority, 2_130_706_431);
        assert_eq!(
            c.to_line(),
            "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"
        );
        let v6 = Candidate::host("[::1]:9".parse().unwrap(), 1);
        assert_eq!(v6.to_string(), "2 1 udp 2130706175 ::1 9 typ host");
        assert_eq!(v6.socket_addr(), Some("[::1]:9".parse().unwrap()));
    }

    #[test]
    fn tcp_passive_candidates_rank_below_every_udp_host_candidate() {
        let addr = "10.0.0.1:8189".parse().unwrap();
        let tcp = Candidate::tcp_passive(addr, 0, 3);
        assert_eq!(
            tcp.to_line(),
            "a=candidate:3 1 tcp 2124414975 10.0.0.1 8189 typ host tcptype passive"
        );
        // Below the UDP candidates of any realistic list (their local preference is 65535 - index).
        assert!(tcp.priority < Candidate::host(addr, 1000).priority);
        assert!(Candidate::tcp_passive(addr, 1, 4).priority < tcp.priority);
        assert_eq!(Candidate::parse(&tcp.to_string()), Ok(tcp));
    }

    #[test]
    fn parses_browser_candidates() {
        let chrome = "candidate:2 1 udp 2122262783 7c1f.local 52000 typ host generation 0 \
                      network-cost 999";
        let c = Candidate::parse(chrome).unwrap();
        assert_eq!((c.port, c.socket_addr()), (52000, None));
        assert_eq!(c.to_string(), chrome.trim_start_matches("candidate:"));
        let srflx = "1 1 UDP 1 198.51.100.1 3 typ srflx raddr 10.0.0.1 rport 4";
        let c = Candidate::parse(srflx).unwrap();
        assert!(c.is_udp());
        assert_eq!((c.raddr.as_deref(), c.rport), (Some("10.0.0.1"), Some(4)));
        assert!(Candidate::parse("1 1 udp 1 1.2.3.4 5 host").is_err());
        assert!(Candidate::parse("1 1 udp 1 1.2.3.4 5 typ host dangling").is_err());
    }
}
