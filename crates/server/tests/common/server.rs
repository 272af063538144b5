//! The `leanrtc` binary as a child process on ephemeral ports, killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `leanrtc`. Its stderr (the log) is kept for assertions and printed when a
/// test fails while the guard is alive.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The HTTP address it listens on.
    pub http: SocketAddr,
    /// Its one UDP media address.
    pub udp: SocketAddr,
    log: Arc<Mutex<String>>,
    /// The thread that copies stderr into `log`.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The binary under test: `LEANRTC_BIN` if set (e.g. a release build for measurements),
/// else the one cargo built for these tests.
pub fn binary() -> PathBuf {
    std::env::var_os("LEANRTC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_leanrtc")))
}

impl Server {
    /// Starts the server with HTTP and UDP on OS-chosen loopback ports, plus `args`; waits
    /// for its ready line.
    pub fn start(args: &[&str]) -> Server {
        Self::start_on("127.0.0.1:0", args)
    }

    /// [`Server::start`] with the UDP media socket on `udp` (an `IP:PORT`) instead of an
    /// OS-chosen loopback port.
    pub fn start_on(udp: &str, args: &[&str]) -> Server {
        Self::start_at("127.0.0.1:0", udp, args)
    }

    /// The server again on the same HTTP and UDP addresses as `self` (after
    /// [`Server::terminate`]), as a restarted service would come back.
    pub fn restart(&self, args: &[&str]) -> Server {
        Self::start_at(&self.http.to_string(), &self.udp.to_string(), args)
    }

    /// [`Server::start`] with HTTP on `http` and the UDP media socket on `udp` (`IP:PORT`).
    pub fn start_at(http: &str, udp: &str, args: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .args(["--http", http, "--udp", udp])
            .args(args)
            .env("LEANRTC_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = channel();
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ready: open") {
                    let _ = ready_tx.send(line.clone());
                }
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Server {
            child,
            http: "0.0.0.0:0".parse().unwrap(),
            udp: "0.0.0.0:0".parse().unwrap(),
            log,
            reader: Some(reader),
        };
        let line = ready_rx.recv_timeout(READY_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "leanrtc printed no ready line within {READY_TIMEOUT:?} ({e}); log:\n{}",
                server.log()
            )
        });
        server.http = field(&line, "http=");
        server.udp = field(&line, "udp=");
        server
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The process id (for /proc/PID/stat).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("leanrtc exited ({status}); log:\n{}", self.log());
        }
    }

    /// Stops the server as a service manager does, with SIGTERM, and waits up to 10 s for it
    /// to exit; returns its exit status (and the log is complete).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.send_sigterm();
        self.wait_exit(Duration::from_secs(10))
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `limit` for the server to exit (panics if it does not); returns its exit
    /// status, with the log complete.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for leanrtc") {
                // The log reader ends at the pipe's EOF: wait for the last lines.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "leanrtc did not exit within {limit:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: a crash, no goodbye to anyone) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// The server's CPU time so far (see [`cpu_time_of`]).
    pub fn cpu_time(&self) -> Duration {
        cpu_time_of(self.pid())
    }

    /// `http://ADDR` for URLs.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http)
    }
}

/// The `KEY=ADDR` field of a log line.
fn field(line: &str, key: &str) -> SocketAddr {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}ADDR in the ready line: {line}"))
}

/// The CPU time a process has used: the sum over its threads of the nanosecond run time in
/// /proc/PID/task/TID/schedstat, or, where the kernel keeps no schedstat, utime + stime
/// from /proc/PID/stat (fields 14 and 15, in ticks of 1/100 s on Linux).
pub fn cpu_time_of(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc/PID/task");
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            return stat_cpu_time(pid);
        };
        nanos += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(nanos)
}

/// utime + stime of a process from /proc/PID/stat.
pub fn stat_cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The command name (field 2) may contain spaces; the fields after it start past ')'.
    let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field 14 is index 11.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- leanrtc log\n{}----", self.log());
        }
    }
}
