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
        let mut child = Command::new(binary)
            .args(["--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
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
        let res = http::request(self.http, "GET", "/metrics", &[], b"").ok()?;
        (res.status == 200).then_some(())?;
        let text = res.text();
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.split_once(' ')?;
            name.ends_with("udp_datagrams_sent_total")
                .then(|| value.trim().parse().ok())?
        })
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
