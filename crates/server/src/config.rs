//! Command-line flags, each with an environment variable, and their defaults.
//!
//! `leanrtc` with no arguments must just work on a developer's machine: HTTP and media on
//! loopback, the built-in `sample` stream.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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

    /// Record each WHIP publish into this folder (created if missing), audio and video in
    /// one file from the first keyframe: `{stream}-{UTC time}.webm` (VP8/Opus) or `.mkv`
    /// (H.264).
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
}
