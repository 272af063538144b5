//! The tiny HTTP/1.1 client lives in the `bench` crate (the load generator uses it too); these
//! are the tests' shorthands around it, which panic instead of returning errors.

use std::net::SocketAddr;

pub use bench::http::{Response, request};

/// POSTs an SDP offer to `/whep/{stream}`.
pub fn post_offer(addr: SocketAddr, stream: &str, sdp: &str) -> Response {
    request(
        addr,
        "POST",
        &format!("/whep/{stream}"),
        &[("Content-Type", "application/sdp")],
        sdp.as_bytes(),
    )
    .expect("POST the offer")
}

/// DELETEs a session; returns the status.
pub fn delete(addr: SocketAddr, location: &str) -> u16 {
    request(addr, "DELETE", location, &[], b"")
        .expect("DELETE the session")
        .status
}

/// `GET /metrics` as (name, value) pairs of the Prometheus text format.
pub fn metrics(addr: SocketAddr) -> Vec<(String, f64)> {
    let res = request(addr, "GET", "/metrics", &[], b"").expect("GET /metrics");
    assert_eq!(res.status, 200, "GET /metrics: {}", res.text());
    res.text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(n, v)| Some((n.to_owned(), v.trim().parse().ok()?)))
        .collect()
}

/// Completed DTLS handshakes of `version` ("1.2", "1.3") with `group` ("X25519MLKEM768",
/// "x25519", ...) per `GET /metrics` (0 when there were none).
pub fn dtls_handshakes(addr: SocketAddr, version: &str, group: &str) -> f64 {
    let name = format!("leanrtc_dtls_handshakes_total{{version=\"{version}\",group=\"{group}\"}}");
    metrics(addr)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or(0.0, |(_, v)| v)
}

/// One counter of `GET /metrics`; panics if the server does not export it.
pub fn metric(addr: SocketAddr, name: &str) -> f64 {
    metrics(addr)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("/metrics has no {name}"))
}
