//! Command-line flags, each with an environment variable, and their defaults.
//!
//! `leanrtc` with no arguments must just work on a developer's machine: HTTP and media on
//! loopback, the built-in `sample` stream.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// leanrtc: a small WebRTC media server (WHIP/WHEP, file playback, recording, SFU).
#[derive(Debug, Clone, Parser)]
#[command(name = "leanrtc", version, about)]
pub struct Config {
    /// Address for HTTP: WHIP/WHEP endpoints, the web page and the JSON API.
    #[arg(long, env = "LEANRTC_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,

    /// The one UDP address all media uses, for every peer. With an unspecified IP
    /// (0.0.0.0 or ::) every local address is announced as a candidate.
    #[arg(long, env = "LEANRTC_UDP", default_value = "127.0.0.1:8189")]
    pub udp: SocketAddr,

    /// IP to announce in ICE candidates (for 1:1 NAT, e.g. a cloud VM's public address).
    /// Repeat or comma-separate for several. Announced before the local addresses.
    #[arg(long, env = "LEANRTC_PUBLIC_IP", value_delimiter = ',')]
    pub public_ip: Vec<IpAddr>,

    /// Folder of files to serve: NAME.ivf (VP8) or NAME.h264 (H.264 Annex B, 30 fps), and/or
    /// NAME.ogg (Opus), become stream NAME.
    /// Without it, a built-in test stream named `sample` is served.
    #[arg(long, env = "LEANRTC_MEDIA_DIR")]
    pub media_dir: Option<PathBuf>,

    /// Record every track a WHIP publisher sends into this folder (created if missing):
    /// `{stream}-{UTC time}.ivf` (VP8), `.ogg` (Opus) or `.h264` (Annex B).
    #[arg(long, env = "LEANRTC_RECORD_DIR")]
    pub record_dir: Option<PathBuf>,

    /// Require `Authorization: Bearer TOKEN` on WHIP/WHEP requests.
    #[arg(long, env = "LEANRTC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Test only: send publishers no transport-wide congestion-control feedback (to measure
    /// the bitrate a browser reaches without it).
    #[arg(long, hide = true)]
    pub test_no_congestion_feedback: bool,

    /// STUN/TURN servers for clients, sent in WHIP/WHEP `Link` headers (RFC 9725 §4.6), e.g.
    /// `stun:stun.example.org:3478`. Repeat or comma-separate for several.
    #[arg(long, env = "LEANRTC_ICE_SERVER", value_delimiter = ',')]
    pub ice_server: Vec<String>,

    /// Test only: drop this percentage of outgoing media packets (to exercise NACK).
    #[arg(long, hide = true, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub test_send_loss: u32,

    /// Seconds a client has to send a request's headers, counted from when the connection
    /// opens or the previous response was sent (so also how long an idle connection stays).
    #[arg(long, env = "LEANRTC_HTTP_HEADER_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub http_header_timeout: Duration,

    /// Seconds a client has to send a request's body, once its headers are in.
    #[arg(long, env = "LEANRTC_HTTP_BODY_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub http_body_timeout: Duration,

    /// Seconds an HTTP connection may go without a byte moving either way before it is closed.
    #[arg(long, env = "LEANRTC_HTTP_IDLE_TIMEOUT", default_value = "30", value_parser = seconds)]
    pub http_idle_timeout: Duration,

    /// Most open HTTP connections in all (also kept below the open-file limit).
    #[arg(long, env = "LEANRTC_HTTP_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub http_max_connections: u32,

    /// Most open HTTP connections from one client IP address.
    #[arg(long, env = "LEANRTC_HTTP_MAX_PER_ADDRESS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub http_max_per_address: u32,
}

/// A positive number of seconds, fractions allowed (`0.5`).
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "{s} s is out of range (more than 0, at most 86400)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}
