//! Which addresses our answers announce as ICE candidates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};

/// The addresses to put in our answers' candidates: `--public-ip` first (for 1:1 NAT), then
/// the bound address — or, bound to an unspecified address, the address of the default
/// route's interface (found by connecting a UDP socket, which sends nothing) and loopback.
pub fn candidates(bound: SocketAddr, public: &[IpAddr]) -> Vec<SocketAddr> {
    let port = bound.port();
    let mut out: Vec<SocketAddr> = public.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
    if bound.ip().is_unspecified() {
        let (any, probe, loopback) = if bound.is_ipv4() {
            ("0.0.0.0:0", "192.0.2.1:9", IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            ("[::]:0", "[2001:db8::1]:9", IpAddr::V6(Ipv6Addr::LOCALHOST))
        };
        let default =
            StdUdpSocket::bind(any).and_then(|s| s.connect(probe).and_then(|()| s.local_addr()));
        if let Ok(addr) = default {
            out.push(SocketAddr::new(addr.ip(), port));
        }
        out.push(SocketAddr::new(loopback, port));
    } else {
        out.push(bound);
    }
    // An address given twice (a --public-ip that is also the default route's) is announced
    // once, where it first appears.
    let mut seen = Vec::with_capacity(out.len());
    out.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_announced_alone_after_the_public_ones() {
        let bound: SocketAddr = "127.0.0.1:8189".parse().unwrap();
        assert_eq!(candidates(bound, &[]), [bound]);
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        // Each address once, where it first appears.
        assert_eq!(
            candidates(bound, &[public, other, public, bound.ip()]),
            [
                SocketAddr::new(public, 8189),
                SocketAddr::new(other, 8189),
                bound
            ]
        );
    }

    /// The default `--udp 0.0.0.0:8189`: the default route's address (when there is a
    /// default route: 10.99.0.1 in the tests' namespace) and loopback, on the bound port,
    /// never the unspecified address itself.
    #[test]
    fn an_unspecified_address_announces_the_default_route_and_loopback() {
        let bound: SocketAddr = crate::config::DEFAULT_UDP.parse().unwrap();
        assert!(bound.ip().is_unspecified());
        let list = candidates(bound, &[]);
        assert_eq!(list.last(), Some(&"127.0.0.1:8189".parse().unwrap()));
        assert!(list.len() <= 2, "{list:?}");
        for c in &list {
            assert_eq!(c.port(), 8189, "{list:?}");
            assert!(!c.ip().is_unspecified(), "{list:?}");
        }
        if let Some(first) = list.iter().find(|c| !c.ip().is_loopback()) {
            // Whatever the machine, the address a socket would send from by default.
            let probe = StdUdpSocket::bind("0.0.0.0:0").unwrap();
            probe.connect("192.0.2.1:9").unwrap();
            assert_eq!(first.ip(), probe.local_addr().unwrap().ip());
        }
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        let with_public = candidates(bound, &[public]);
        assert_eq!(with_public[0], SocketAddr::new(public, 8189));
        assert_eq!(&with_public[1..], &list[..]);
    }
}
