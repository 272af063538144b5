//! The server under load: `leanrtc` or the `str0m-sfu` baseline as a child process on
//! OS-chosen loopback ports (killed on drop), or one already running; and its `/metrics`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http;
use crate::load::BenchError;
use crate::load::metrics::{self, Metrics};

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Log lines kept for error messages.
const LOG_LINES: usize = 200;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// leanrtc.
    Leanrtc,
    /// The str0m baseline (`str0m-sfu`).
    Str0m,
}

impl ServerKind {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Leanrtc => "leanrtc",
            ServerKind::Str0m => "str0m-sfu",
        }
    }

    /// Its binary's file name.
    pub fn binary_name(self) -> &'static str {
        self.name()
    }

    /// Whether it serves the built-in file stream `sample` (leanrtc does; the baseline gets
    /// a publisher of the same file instead).
    pub fn has_sample_stream(self) -> bool {
        self == ServerKind::Leanrtc
    }
}

/// One server to load, as the table names it: a kind, and how it is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Which binary.
    pub kind: ServerKind,
    /// Its name in tables: `leanrtc`, `leanrtc-t2`, `str0m-sfu`, `str0m-sfu-batched`.
    pub name: String,
    /// leanrtc's media threads (`LEANRTC_THREADS`); None: the server's default.
    pub threads: Option<usize>,
    /// The baseline with batched UDP I/O (`str0m-sfu --batched`).
    pub batched: bool,
}

impl ServerSpec {
    /// `kind` as it starts with no options.
    pub fn plain(kind: ServerKind) -> Self {
        ServerSpec {
            kind,
            name: kind.name().to_owned(),
            threads: None,
            batched: false,
        }
    }

    /// leanrtc with `n` media threads.
    pub fn leanrtc_threads(n: usize) -> Self {
        ServerSpec {
            name: format!("leanrtc-t{n}"),
            threads: Some(n),
            ..Self::plain(ServerKind::Leanrtc)
        }
    }

    /// The baseline with batched I/O.
    pub fn str0m_batched() -> Self {
        ServerSpec {
            name: "str0m-sfu-batched".into(),
            batched: true,
            ..Self::plain(ServerKind::Str0m)
        }
    }

    /// The servers of `--server` (leanrtc, str0m, str0m-batched, both, all) with leanrtc
    /// once per entry of `threads` (none: once, with its default thread count).
    pub fn parse_list(names: &[String], threads: &[usize]) -> Result<Vec<Self>, BenchError> {
        if threads.contains(&0) {
            return Err(BenchError::Usage("--threads: counts start at 1".into()));
        }
        let leanrtc = || -> Vec<Self> {
            match threads {
                [] => vec![Self::plain(ServerKind::Leanrtc)],
                _ => threads.iter().map(|&n| Self::leanrtc_threads(n)).collect(),
            }
        };
        let mut out: Vec<Self> = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let specs = match name {
                "leanrtc" => leanrtc(),
                "str0m-sfu" | "str0m" => vec![Self::plain(ServerKind::Str0m)],
                "str0m-sfu-batched" | "str0m-batched" => vec![Self::str0m_batched()],
                "both" => [leanrtc(), vec![Self::plain(ServerKind::Str0m)]].concat(),
                "all" => [
                    leanrtc(),
                    vec![Self::plain(ServerKind::Str0m), Self::str0m_batched()],
                ]
                .concat(),
                other => return Err(BenchError::Usage(format!("unknown server {other:?}"))),
            };
            for s in specs {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        if !threads.is_empty() && !out.iter().any(|s| s.kind == ServerKind::Leanrtc) {
            return Err(BenchError::Usage(
                "--threads sets leanrtc's media threads: name leanrtc in --server".into(),
            ));
        }
        if out.is_empty() {
            return Err(BenchError::Usage("no server given".into()));
        }
        Ok(out)
    }

    /// The pairs of names whose ratio the table shows: each leanrtc run with a thread count
    /// against the one-thread run (else the first leanrtc run), and the first of those
    /// against each baseline (which is single-threaded).
    pub fn ratio_pairs(specs: &[Self]) -> Vec<(String, String)> {
        let leanrtc: Vec<&Self> = (specs.iter())
            .filter(|s| s.kind == ServerKind::Leanrtc)
            .collect();
        let reference = (leanrtc.iter())
            .find(|s| s.threads == Some(1))
            .or(leanrtc.first());
        let Some(reference) = reference else {
            return Vec::new();
        };
        let mut pairs: Vec<(String, String)> = (leanrtc.iter())
            .filter(|s| s.name != reference.name)
            .map(|s| (s.name.clone(), reference.name.clone()))
            .collect();
        pairs.extend(
            (specs.iter())
                .filter(|s| s.kind == ServerKind::Str0m)
                .map(|s| (reference.name.clone(), s.name.clone())),
        );
        pairs
    }
}

/// Finds a server binary: next to our own executable (the same cargo profile), else in the
/// workspace's `target/release`.
pub fn find_binary(kind: ServerKind) -> Option<PathBuf> {
    let name = kind.binary_name();
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release");
    [sibling, Some(workspace.join(name))]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

/// One stream of leanrtc's `GET /api/streams` (the fields the bench reads).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StreamView {
    /// Its name.
    pub name: String,
    /// `live`, `file` or `relay`.
    pub kind: String,
    /// Its WHEP sessions (at an origin, an edge's relay counts as one).
    pub viewers: u64,
}

/// A server to load.
#[derive(Debug)]
pub struct Server {
    /// Which one.
    pub kind: ServerKind,
    /// Its HTTP address.
    pub http: SocketAddr,
    /// Its process, for CPU and memory (None: running elsewhere, not measured).
    pub pid: Option<u32>,
    child: Option<Child>,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    /// Starts `binary` on loopback ports the OS picks and waits for its ready line.
    pub fn start(kind: ServerKind, binary: &Path) -> Result<Server, BenchError> {
        Self::start_spec(&ServerSpec::plain(kind), binary)
    }

    /// Starts `spec`'s server from `binary` (its thread count in `LEANRTC_THREADS`, which a
    /// leanrtc without media threads ignores; the baseline's `--batched`).
    pub fn start_spec(spec: &ServerSpec, binary: &Path) -> Result<Server, BenchError> {
        Self::start_spec_with(spec, binary, &[])
    }

    /// Starts `spec`'s server from `binary` with `extra` arguments after the address ones
    /// (an edge's `--origin URL`).
    pub fn start_spec_with(
        spec: &ServerSpec,
        binary: &Path,
        extra: &[String],
    ) -> Result<Server, BenchError> {
        let kind = spec.kind;
        let mut command = Command::new(binary);
        command.args(["--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"]);
        command.args(extra);
        if spec.batched {
            command.arg("--batched");
        }
        if let Some(n) = spec.threads {
            command.env("LEANRTC_THREADS", n.to_string());
        }
        let mut child = command
            .env("LEANRTC_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::Server(format!("cannot start {}: {e}", binary.display())))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (ready_tx, ready_rx) = channel();
        let stderr = child.stderr.take();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let Some(stderr) = stderr else { return };
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ready: open") {
                    let _ = ready_tx.send(line.clone());
                }
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                if log.len() >= LOG_LINES {
                    log.pop_front();
                }
                log.push_back(line);
            }
        });
        let pid = child.id();
        let mut server = Server {
            kind,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid: Some(pid),
            child: Some(child),
            log,
        };
        let line = ready_rx.recv_timeout(READY_TIMEOUT).map_err(|_| {
            BenchError::Server(format!(
                "{} printed no ready line within {READY_TIMEOUT:?}; its log:\n{}",
                binary.display(),
                server.log()
            ))
        })?;
        server.http = (line.split_whitespace())
            .find_map(|w| w.strip_prefix("http="))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| BenchError::Server(format!("no http=ADDR in: {line}")))?;
        Ok(server)
    }

    /// A server running already at `http` (process `pid`, if known, for CPU and memory).
    pub fn attach(kind: ServerKind, http: SocketAddr, pid: Option<u32>) -> Server {
        Server {
            kind,
            http,
            pid,
            child: None,
            log: Arc::default(),
        }
    }

    /// Whether we started it (and so may expect an empty server).
    pub fn is_ours(&self) -> bool {
        self.child.is_some()
    }

    /// Fails if a server we started has exited.
    pub fn check_running(&mut self) -> Result<(), BenchError> {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(BenchError::Server(format!(
                "{} exited ({status}); its log:\n{}",
                self.kind.name(),
                self.log()
            )));
        }
        Ok(())
    }

    /// The last lines it logged.
    pub fn log(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Datagrams it says it sent from its media port (`*_udp_datagrams_sent_total` of
    /// `GET /metrics`), if it says.
    pub fn datagrams_sent(&self) -> Option<u64> {
        self.metrics()?.sent
    }

    /// Its streams as leanrtc's `GET /api/streams` lists them.
    pub fn streams(&self) -> Result<Vec<StreamView>, BenchError> {
        let res = http::request(self.http, "GET", "/api/streams", &[], b"")
            .map_err(|e| BenchError::Server(format!("GET /api/streams: {e}")))?;
        if res.status != 200 {
            return Err(BenchError::Server(format!(
                "GET /api/streams: {} {}",
                res.status,
                res.text()
            )));
        }
        serde_json::from_slice(&res.body)
            .map_err(|e| BenchError::Server(format!("GET /api/streams: {e}: {}", res.text())))
    }

    /// What its `GET /metrics` says (None: no answer).
    pub fn metrics(&self) -> Option<Metrics> {
        let res = http::request(self.http, "GET", "/metrics", &[], b"").ok()?;
        (res.status == 200).then_some(())?;
        Some(metrics::parse(&res.text()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(specs: &[ServerSpec]) -> Vec<&str> {
        specs.iter().map(|s| s.name.as_str()).collect()
    }

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn without_threads_the_servers_are_as_before() {
        let specs = ServerSpec::parse_list(&list(&["both"]), &[]).unwrap();
        assert_eq!(names(&specs), ["leanrtc", "str0m-sfu"]);
        assert!(specs.iter().all(|s| s.threads.is_none() && !s.batched));
        let pairs = ServerSpec::ratio_pairs(&specs);
        assert_eq!(pairs, [("leanrtc".into(), "str0m-sfu".into())]);
        let specs = ServerSpec::parse_list(&list(&["str0m", " leanrtc", "leanrtc"]), &[]).unwrap();
        assert_eq!(names(&specs), ["str0m-sfu", "leanrtc"]);
    }

    #[test]
    fn threads_make_one_leanrtc_each_and_ratios_against_one_thread() {
        let specs =
            ServerSpec::parse_list(&list(&["leanrtc", "str0m", "str0m-batched"]), &[2, 1, 4])
                .unwrap();
        assert_eq!(
            names(&specs),
            [
                "leanrtc-t2",
                "leanrtc-t1",
                "leanrtc-t4",
                "str0m-sfu",
                "str0m-sfu-batched"
            ]
        );
        assert_eq!(specs[0].threads, Some(2));
        assert!(specs[4].batched && specs[4].kind == ServerKind::Str0m);
        let pairs = ServerSpec::ratio_pairs(&specs);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (&**a, &**b)).collect();
        assert_eq!(
            pairs,
            [
                ("leanrtc-t2", "leanrtc-t1"),
                ("leanrtc-t4", "leanrtc-t1"),
                ("leanrtc-t1", "str0m-sfu"),
                ("leanrtc-t1", "str0m-sfu-batched"),
            ]
        );
        // Without a one-thread run the first leanrtc run is the reference.
        let specs = ServerSpec::parse_list(&list(&["all"]), &[2]).unwrap();
        assert_eq!(
            names(&specs),
            ["leanrtc-t2", "str0m-sfu", "str0m-sfu-batched"]
        );
        assert_eq!(ServerSpec::ratio_pairs(&specs).len(), 2);
        assert!(ServerSpec::ratio_pairs(&specs[1..]).is_empty());
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(ServerSpec::parse_list(&list(&["nginx"]), &[]).is_err());
        assert!(ServerSpec::parse_list(&list(&[""]), &[]).is_err());
        assert!(ServerSpec::parse_list(&list(&["str0m"]), &[2]).is_err());
        assert!(ServerSpec::parse_list(&list(&["leanrtc"]), &[0]).is_err());
    }
}
