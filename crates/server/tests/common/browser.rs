//! A node script under `tests/browser/` that drives a headless browser, as a guard: node runs
//! in its own process group, the script reports the browser's pids (the drivers start
//! browsers in groups of their own) as `{"pids":[..]}` on stderr, and dropping the guard
//! kills every one of those groups. A failing assertion therefore leaves no browser behind.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::repo_root;

/// Chromium tests must not run at once (they would share two cores and disturb each
/// other's timing): each holds this lock while its browser lives.
static CHROMIUM: Mutex<()> = Mutex::new(());

/// Takes the process-wide browser lock (a failed test elsewhere does not poison it for us).
pub fn browser_lock() -> MutexGuard<'static, ()> {
    CHROMIUM.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fails (never skips) with what to install when a tool the browser tests need is missing.
pub fn check_prerequisites(browser: &str) -> PathBuf {
    let (binary, package) = match browser {
        "firefox" => ("/usr/bin/firefox-esr", "firefox-esr"),
        _ => ("/usr/bin/chromium", "chromium"),
    };
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: install the Debian package `{package}` (apt-get install -y {package}); \
         see docs/TESTING.md"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "`node` is missing: install Node.js 20+ (apt-get install -y nodejs npm); see docs/TESTING.md"
    );
    let dir = repo_root().join("tests/browser");
    for module in ["playwright-core", "puppeteer-core"] {
        assert!(
            dir.join("node_modules").join(module).exists(),
            "tests/browser/node_modules/{module} is missing: run ./test.sh, or `npm ci` in tests/browser"
        );
    }
    dir
}

/// A running node script and the browsers it started.
#[derive(Debug)]
pub struct NodeScript {
    child: Child,
    /// The script's stdin, for scripts driven by commands ([`NodeScript::call`]).
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    groups: Arc<Mutex<Vec<u32>>>,
    stderr: Arc<Mutex<String>>,
}

impl NodeScript {
    /// Whether node has exited within `limit`.
    fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `node tests/browser/SCRIPT ARGS…` for `browser`.
    pub fn start(browser: &str, script: &str, args: &[&str]) -> NodeScript {
        Self::spawn(browser, script, args, false)
    }

    /// Starts a script that takes one JSON command per line on stdin and answers each with
    /// one JSON line (see [`NodeScript::call`]); closing stdin (on drop) ends it.
    pub fn start_interactive(browser: &str, script: &str, args: &[&str]) -> NodeScript {
        Self::spawn(browser, script, args, true)
    }

    /// Starts `WRAPPER… node tests/browser/SCRIPT ARGS…`: node under a program that execs it
    /// (e.g. `unshare -n sh -c '…; exec "$@"' sh`, a network namespace of its own), so the
    /// wrapper's pid is node's.
    pub fn start_wrapped(
        wrapper: &[&str],
        browser: &str,
        script: &str,
        args: &[&str],
    ) -> NodeScript {
        Self::spawn_with(wrapper, browser, script, args, false)
    }

    /// Node's pid (its process group's id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(browser: &str, script: &str, args: &[&str], interactive: bool) -> NodeScript {
        Self::spawn_with(&[], browser, script, args, interactive)
    }

    fn spawn_with(
        wrapper: &[&str],
        browser: &str,
        script: &str,
        args: &[&str],
        interactive: bool,
    ) -> NodeScript {
        let dir = check_prerequisites(browser);
        let (program, before) = match wrapper {
            [program, rest @ ..] => (*program, rest),
            [] => ("node", &[][..]),
        };
        let mut command = Command::new(program);
        command.args(before);
        if !wrapper.is_empty() {
            command.arg("node");
        }
        let mut child = command
            .arg(script)
            .args(args)
            .current_dir(&dir)
            .stdin(if interactive {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start node");
        let groups = Arc::new(Mutex::new(vec![child.id()]));
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr piped");
        let (g, text) = (Arc::clone(&groups), Arc::clone(&stderr_text));
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let pids = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("pids").and_then(Value::as_array).cloned());
                match pids {
                    Some(pids) => g
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(pids.iter().filter_map(Value::as_u64).map(|p| p as u32)),
                    None => {
                        let mut t = text.lock().unwrap_or_else(|e| e.into_inner());
                        t.push_str(&line);
                        t.push('\n');
                    }
                }
            }
        });
        NodeScript {
            stdin: child.stdin.take(),
            child,
            lines,
            groups,
            stderr: stderr_text,
        }
    }

    /// The next JSON line on the script's stdout, waiting at most `timeout`.
    pub fn next_json(&mut self, timeout: Duration) -> Value {
        let line = self.lines.recv_timeout(timeout).unwrap_or_else(|e| {
            panic!(
                "no line from node within {timeout:?} ({e}); its stderr:\n{}",
                self.stderr_text()
            )
        });
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends `command` as one line and returns the script's next JSON line, waiting at most
    /// `timeout`.
    pub fn call(&mut self, command: &Value, timeout: Duration) -> Value {
        let stdin = self.stdin.as_mut().expect("started with start_interactive");
        let sent = writeln!(stdin, "{command}").and_then(|()| stdin.flush());
        if let Err(e) = sent {
            panic!(
                "cannot send {command} to node ({e}); its stderr:\n{}",
                self.stderr_text()
            );
        }
        self.next_json(timeout)
    }

    /// What the script wrote to stderr (besides the pids).
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        // First let node close its browser itself (it does when its stdin closes, and on
        // SIGTERM): only then does Firefox's temporary profile get removed. A node that does
        // not end in time is killed with everything it started.
        self.stdin = None;
        let ended = self.wait_exit(Duration::from_secs(10)) || {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            self.wait_exit(Duration::from_secs(5))
        };
        if !ended {
            eprintln!("node did not end by itself: killing it and its browsers");
        }
        // Whether or not node closed its browser itself: kill every group we know of (a
        // group that is gone already makes `kill` fail harmlessly), then reap node.
        let groups = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for group in groups {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
