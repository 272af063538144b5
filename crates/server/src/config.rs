//! Command-line flags, each with an environment variable, and their defaults.
//!
//! `leanrtc` with no arguments must just work on a developer's machine, in every browser:
//! HTTP on loopback, media on every interface (announcing the default route's address and
//! loopback — Firefox never pairs a loopback candidate with its own addresses), the built-in
//! `sample` stream.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The default media address: every interface, so that a browser on this machine that
/// ignores loopback candidates (Firefox) reaches us on the default route's address.
pub const DEFAULT_UDP: &str = "0.0.0.0:8189";

/// leanrtc: a small WebRTC media server (WHIP/WHEP, file playback, recording, SFU).
#[derive(Debug, Clone, Parser)]
#[command(name = "leanrtc", version, about)]
pub struct Config {
    /// Address for HTTP: WHIP/WHEP endpoints, the web page and the JSON API. `IP:PORT`,
    /// `HOST:PORT` (e.g. localhost:8080) or `:PORT` (every address).
    #[arg(long, env = "LEANRTC_HTTP", default_value = "127.0.0.1:8080", value_parser = http_addr)]
    pub http: SocketAddr,

    /// The one UDP address all media uses, for every peer. With an unspecified IP
    /// (0.0.0.0 or ::) the address of the default route's interface and loopback are
    /// announced as candidates; with a specific IP, that address alone.
    #[arg(long, env = "LEANRTC_UDP", default_value = DEFAULT_UDP)]
    pub udp: SocketAddr,

    /// Media threads: each forwards to its own share of the viewers, all on the one UDP port.
    /// Default: the number of CPUs this process may run on.
    #[arg(long, env = "LEANRTC_THREADS", value_parser = clap::value_parser!(u16).range(1..=255))]
    pub threads: Option<u16>,
    /// Passive ICE-TCP (RFC 6544) for clients whose networks block UDP: `IP:PORT` to listen
    /// on, or `off`. By default the --udp address and port number (TCP and UDP ports are
    /// separate, so both can be 8189). Announced as `tcptype passive` candidates at a lower
    /// priority than UDP.
    #[arg(long, env = "LEANRTC_TCP", value_parser = tcp_setting)]
    pub tcp: Option<TcpSetting>,

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

    /// Require `Authorization: Bearer TOKEN` on WHIP/WHEP requests: the publish and the watch
    /// token at once, where --publish-token / --watch-token do not set them apart.
    #[arg(long, env = "LEANRTC_TOKEN", hide_env_values = true, value_parser = non_empty)]
    pub token: Option<String>,

    /// Bearer token that admits publishing (WHIP) to any stream, and watching.
    #[arg(long, env = "LEANRTC_PUBLISH_TOKEN", hide_env_values = true, value_parser = non_empty)]
    pub publish_token: Option<String>,

    /// Bearer token that admits watching (WHEP) any stream. Without it (and --token) watching
    /// is open.
    #[arg(long, env = "LEANRTC_WATCH_TOKEN", hide_env_values = true, value_parser = non_empty)]
    pub watch_token: Option<String>,

    /// Pull streams this node does not have from another WHEP server, `http://HOST:PORT`
    /// (issue 11): a viewer's request for such a stream opens one relay session to
    /// `URL/whep/{stream}`, shared by every local viewer and closed 10 s after the last
    /// leaves.
    #[arg(long, env = "LEANRTC_ORIGIN", value_parser = origin_url)]
    pub origin: Option<crate::http::client::HttpUrl>,

    /// Join a cluster whose stream directory is this Redis, `redis://HOST:PORT[/DB]`
    /// (issue 11): streams published here are claimed there (a second publisher of a name
    /// on any node gets 409), and a viewer's request for a stream another node holds is
    /// served by relaying from it.
    #[arg(long, env = "LEANRTC_CLUSTER")]
    pub cluster: Option<String>,

    /// How the other nodes of the cluster reach this node's HTTP, `http://HOST:PORT`
    /// (default: the --http address, when it names one).
    #[arg(long, env = "LEANRTC_NODE_URL", value_parser = origin_url)]
    pub node_url: Option<crate::http::client::HttpUrl>,

    /// Bearer token this node presents to its origin and to the other nodes of its cluster
    /// (default: --token, else --watch-token: nodes of one site share them).
    #[arg(long, env = "LEANRTC_CLUSTER_TOKEN", hide_env_values = true, value_parser = non_empty)]
    pub cluster_token: Option<String>,

    /// File of `STREAM KEY` lines: publishing STREAM needs its KEY as the Bearer token (or the
    /// publish token); streams not listed need the publish token. Reloaded on SIGHUP.
    #[arg(long, env = "LEANRTC_STREAM_KEYS")]
    pub stream_keys: Option<PathBuf>,

    /// Ask this http:// URL before admitting each publisher or viewer: a POST of JSON
    /// {action, stream, token, client}; 2xx admits, anything else refuses (403), no answer
    /// within 2 s refuses (503).
    #[arg(long, env = "LEANRTC_AUTH_URL")]
    pub auth_url: Option<String>,

    /// Require `Authorization: Bearer TOKEN` on /metrics and /api/streams (open without it).
    #[arg(long, env = "LEANRTC_API_TOKEN", hide_env_values = true, value_parser = non_empty)]
    pub api_token: Option<String>,

    /// Test only: send publishers no transport-wide congestion-control feedback (to measure
    /// the bitrate a browser reaches without it).
    #[arg(long, hide = true)]
    pub test_no_congestion_feedback: bool,

    /// STUN/TURN servers for clients, sent in WHIP/WHEP `Link` headers (RFC 9725 §4.6), e.g.
    /// `stun:stun.example.org:3478`. Repeat or comma-separate for several.
    #[arg(long, env = "LEANRTC_ICE_SERVER", value_delimiter = ',')]
    pub ice_server: Vec<String>,

    /// Username for the `turn:`/`turns:` servers of --ice-server, handed to clients with
    /// them (a TURN server admits no one without credentials). Needs --ice-server-credential.
    #[arg(long, env = "LEANRTC_ICE_SERVER_USERNAME", value_parser = link_param, requires = "ice_server_credential")]
    pub ice_server_username: Option<String>,

    /// Password for the `turn:`/`turns:` servers of --ice-server (see --ice-server-username).
    #[arg(long, env = "LEANRTC_ICE_SERVER_CREDENTIAL", hide_env_values = true, value_parser = link_param, requires = "ice_server_username")]
    pub ice_server_credential: Option<String>,

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

    /// DTLS versions spoken: `auto` (1.3 when the peer offers it, else 1.2), `1.2` or `1.3`.
    #[arg(long, env = "LEANRTC_DTLS", default_value = "auto", value_parser = dtls_versions)]
    pub dtls: rtc::dtls::DtlsVersions,
}

fn dtls_versions(s: &str) -> Result<rtc::dtls::DtlsVersions, String> {
    s.parse()
}

impl Config {
    /// The media threads to run: `--threads`, else one per CPU this process may use (its
    /// affinity mask, which containers and `taskset` narrow).
    pub fn media_threads(&self) -> usize {
        match self.threads {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, |n| n.get().min(255)),
        }
    }
}

/// Where ICE-TCP listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpSetting {
    /// Not at all.
    Off,
    /// On this address.
    Addr(SocketAddr),
}

impl Config {
    /// The ICE-TCP address for a UDP socket bound to `udp` (its real port, when --udp asked
    /// for port 0), or `None` when TCP is off.
    pub fn tcp_addr(&self, udp: SocketAddr) -> Option<SocketAddr> {
        match self.tcp {
            None => Some(udp),
            Some(TcpSetting::Addr(addr)) => Some(addr),
            Some(TcpSetting::Off) => None,
        }
    }
}

/// `http://HOST[:PORT][/PATH]`.
fn origin_url(s: &str) -> Result<crate::http::client::HttpUrl, String> {
    crate::http::client::HttpUrl::parse(s).map_err(|e| e.to_string())
}

impl Config {
    /// The token this node shows other nodes.
    pub fn token_for_origin(&self) -> Option<String> {
        (self.cluster_token.as_ref())
            .or(self.token.as_ref())
            .or(self.watch_token.as_ref())
            .cloned()
    }
}

/// `off`, or `IP:PORT`.
fn tcp_setting(s: &str) -> Result<TcpSetting, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(TcpSetting::Off);
    }
    s.parse()
        .map(TcpSetting::Addr)
        .map_err(|_| format!("{s:?} is neither IP:PORT nor `off`"))
}

/// `IP:PORT`, `HOST:PORT` (resolved now; IPv4 preferred) or `:PORT` (all IPv4 addresses).
fn http_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| format!("{s:?}: bad port"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(s)
        .map_err(|e| format!("{s:?} is not IP:PORT, HOST:PORT or :PORT ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// A token that is not empty (an empty `--token ""` would be a lock without a key, or, worse,
/// read by some clients as "no token").
fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("a token may not be empty".into());
    }
    if s.chars().any(|c| c.is_control() || c == ' ') {
        return Err("a token may not hold spaces or control characters".into());
    }
    Ok(s.to_owned())
}

/// A value that goes into a quoted `Link` parameter (RFC 8288 §3): no quote, backslash or
/// control character, not empty.
fn link_param(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err("may not be empty or hold quotes, backslashes or control characters".into());
    }
    Ok(s.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_takes_host_names_and_a_bare_port() {
        let http = |v: &str| Config::try_parse_from(["leanrtc", "--http", v]).map(|c| c.http);
        assert_eq!(
            http("localhost:8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(http(":8080").unwrap(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(http("[::1]:81").unwrap(), "[::1]:81".parse().unwrap());
        assert!(http("localhost").is_err());
        assert!(http(":x").is_err());
    }

    #[test]
    fn threads_default_to_the_cpus_and_take_1_to_255() {
        let parse = |args: &[&str]| Config::try_parse_from(args).map(|c| c.media_threads());
        // The environment may choose (CI runs the suite once with LEANRTC_THREADS=1).
        let default = match std::env::var("LEANRTC_THREADS") {
            Ok(n) => n.parse().unwrap(),
            Err(_) => std::thread::available_parallelism().unwrap().get().min(255),
        };
        assert_eq!(parse(&["leanrtc"]).unwrap(), default);
        assert_eq!(parse(&["leanrtc", "--threads", "1"]).unwrap(), 1);
        assert_eq!(parse(&["leanrtc", "--threads", "3"]).unwrap(), 3);
        assert!(parse(&["leanrtc", "--threads", "0"]).is_err());
        assert!(parse(&["leanrtc", "--threads", "256"]).is_err());
    }

    #[test]
    fn dtls_versions_flag() {
        use rtc::dtls::DtlsVersions;
        let dtls =
            |v: &[&str]| Config::try_parse_from([&["leanrtc"][..], v].concat()).map(|c| c.dtls);
        assert_eq!(dtls(&[]).unwrap(), DtlsVersions::Auto);
        assert_eq!(dtls(&["--dtls", "1.2"]).unwrap(), DtlsVersions::Only12);
        assert_eq!(dtls(&["--dtls", "1.3"]).unwrap(), DtlsVersions::Only13);
        assert!(dtls(&["--dtls", "1.0"]).is_err());
    }

    #[test]
    fn tcp_follows_udp_unless_told_otherwise() {
        let udp: SocketAddr = "0.0.0.0:40000".parse().unwrap();
        let tcp = |args: &[&str]| {
            let mut all = vec!["leanrtc"];
            all.extend_from_slice(args);
            Config::try_parse_from(all).map(|c| c.tcp_addr(udp))
        };
        assert_eq!(tcp(&[]).unwrap(), Some(udp));
        assert_eq!(tcp(&["--tcp", "off"]).unwrap(), None);
        assert_eq!(tcp(&["--tcp", "OFF"]).unwrap(), None);
        assert_eq!(
            tcp(&["--tcp", "127.0.0.1:443"]).unwrap(),
            Some("127.0.0.1:443".parse().unwrap())
        );
        let err = tcp(&["--tcp", "yes"]).unwrap_err().to_string();
        assert!(err.contains("neither IP:PORT nor `off`"), "{err}");
    }

    #[test]
    fn empty_tokens_are_refused_at_start() {
        for flag in ["--token", "--publish-token", "--watch-token", "--api-token"] {
            let err = Config::try_parse_from(["leanrtc", flag, ""]).unwrap_err();
            assert!(
                err.to_string().contains("may not be empty"),
                "{flag}: {err}"
            );
            assert!(
                Config::try_parse_from(["leanrtc", flag, "t0k"]).is_ok(),
                "{flag}"
            );
        }
    }
}
