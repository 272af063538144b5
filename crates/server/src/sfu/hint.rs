//! What to tell the operator when a session never connected: an ICE-lite server only ever
//! answers checks, so a browser that cannot reach any of our candidates shows up as nothing
//! at all: the session expires unvalidated (`engine::pending`, 5 s), as ICE's `NotNominated`
//! would 30 s later. The log then names the likely cause.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use rtc::ice::DisconnectReason;
use rtc::peer::DisconnectCause;

/// What we know about a session that ended.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    /// Why it ended.
    pub cause: &'a DisconnectCause,
    /// Whether any STUN check of the peer was valid (ICE validated an address).
    pub validated: bool,
    /// STUN checks that reached this session and were refused (bad credentials or integrity).
    pub refused_checks: u64,
    /// How long it lived.
    pub lived: Duration,
    /// The candidates our answer announced.
    pub candidates: &'a [SocketAddr],
}

/// A hint for a session that ICE gave up on before a single valid check arrived; `None` for
/// every other end (those are explained by their reason alone).
pub fn never_reached(ended: &Ended<'_>) -> Option<String> {
    if ended.validated || *ended.cause != DisconnectCause::Ice(DisconnectReason::NotNominated) {
        return None;
    }
    let list = ended
        .candidates
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let secs = ended.lived.as_secs();
    let mut hint = if ended.refused_checks > 0 {
        format!(
            "{} STUN checks arrived in {secs} s but all were refused (wrong ICE credentials: \
             did the client use the answer of another session?)",
            ended.refused_checks
        )
    } else {
        format!(
            "no STUN check arrived from the peer in {secs} s: it could not reach any of our \
             candidates [{list}]"
        )
    };
    if ended.refused_checks == 0 {
        if ended.candidates.iter().all(|c| c.ip().is_loopback()) {
            // Firefox's nICEr never pairs a loopback candidate with a non-loopback one, and it
            // gathers only non-loopback addresses.
            hint.push_str(
                "; they are all loopback, which Firefox never uses: bind --udp to 0.0.0.0:PORT \
                 (the default) or to an address of this machine",
            );
        } else {
            hint.push_str(
                "; if the browser is Firefox on this machine, it needs a candidate on one of \
                 its own interfaces (bind --udp to 0.0.0.0:PORT, the default)",
            );
        }
        let port = ended.candidates.first().map_or(0, SocketAddr::port);
        let _ = write!(
            hint,
            "; if the browser is on another machine or behind NAT, announce an address it can \
             reach with --public-ip and let UDP port {port} through the firewall"
        );
    }
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::dtls::DtlsError;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn ended<'a>(
        cause: &'a DisconnectCause,
        validated: bool,
        refused: u64,
        candidates: &'a [SocketAddr],
    ) -> Ended<'a> {
        Ended {
            cause,
            validated,
            refused_checks: refused,
            lived: Duration::from_secs(30),
            candidates,
        }
    }

    #[test]
    fn a_session_no_check_reached_names_the_candidates_and_the_likely_causes() {
        let not_nominated = DisconnectCause::Ice(DisconnectReason::NotNominated);
        let loopback = addrs(&["127.0.0.1:8189"]);
        let hint = never_reached(&ended(&not_nominated, false, 0, &loopback)).unwrap();
        assert!(
            hint.starts_with("no STUN check arrived from the peer in 30 s"),
            "{hint}"
        );
        assert!(hint.contains("[127.0.0.1:8189]"), "{hint}");
        assert!(
            hint.contains("all loopback, which Firefox never uses"),
            "{hint}"
        );
        assert!(hint.contains("--udp to 0.0.0.0:PORT"), "{hint}");
        assert!(hint.contains("--public-ip"), "{hint}");
        assert!(hint.contains("UDP port 8189"), "{hint}");

        let wildcard = addrs(&["10.99.0.1:8189", "127.0.0.1:8189"]);
        let hint = never_reached(&ended(&not_nominated, false, 0, &wildcard)).unwrap();
        assert!(hint.contains("[10.99.0.1:8189, 127.0.0.1:8189]"), "{hint}");
        assert!(!hint.contains("all loopback"), "{hint}");
        assert!(hint.contains("Firefox on this machine"), "{hint}");
        assert!(hint.contains("--public-ip"), "{hint}");
    }

    #[test]
    fn refused_checks_point_at_credentials_not_reachability() {
        let not_nominated = DisconnectCause::Ice(DisconnectReason::NotNominated);
        let c = addrs(&["127.0.0.1:8189"]);
        let hint = never_reached(&ended(&not_nominated, false, 3, &c)).unwrap();
        assert!(hint.starts_with("3 STUN checks arrived"), "{hint}");
        assert!(!hint.contains("--public-ip"), "{hint}");
    }

    #[test]
    fn other_ends_get_no_hint() {
        let c = addrs(&["127.0.0.1:8189"]);
        let not_nominated = DisconnectCause::Ice(DisconnectReason::NotNominated);
        // ICE validated the peer: it reached us, whatever went wrong next.
        assert_eq!(never_reached(&ended(&not_nominated, true, 0, &c)), None);
        for cause in [
            DisconnectCause::Ice(DisconnectReason::ConsentExpired),
            DisconnectCause::ClosedByPeer,
            DisconnectCause::ClosedLocally,
            DisconnectCause::Dtls(DtlsError::NoCertificate),
        ] {
            assert_eq!(
                never_reached(&ended(&cause, false, 0, &c)),
                None,
                "{cause:?}"
            );
        }
    }
}
