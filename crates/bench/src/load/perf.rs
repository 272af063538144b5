//! `--perf`: the server's profile over the measured window, for the closing note of a
//! change. `perf record -g` attaches to the server's process for the window and
//! `perf report --stdio --no-children` lists where its CPU went, function by function (self
//! time). Linux `perf` (Debian: `apt-get install linux-perf`), as root or with
//! `kernel.perf_event_paranoid` ≤ 1. Sampling costs the server some CPU (at 999 Hz, a few
//! per cent), so a profiled run's figures are not quite those of an unprofiled one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Samples per second and thread.
const FREQUENCY: &str = "999";
/// Entries kept for the report.
pub const TOP: usize = 15;
/// Entries below this share (per cent) are left out.
const PERCENT_LIMIT: &str = "0.5";

/// `perf record` attached to a server for a window.
#[derive(Debug)]
pub struct Profiler {
    child: Child,
    data: PathBuf,
}

impl Profiler {
    /// Attaches to `pid` when `wanted` and there is one; an error is kept as the profile.
    pub fn start_if(wanted: bool, pid: Option<u32>) -> Option<Result<Profiler, String>> {
        if !wanted {
            return None;
        }
        Some(match pid {
            Some(pid) => Self::start(pid),
            None => Err("the server's process id is unknown (--attach-pid)".into()),
        })
    }

    /// Starts `perf record -g` on every thread of process `pid`.
    pub fn start(pid: u32) -> Result<Profiler, String> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let data = std::env::temp_dir().join(format!("leanrtc-bench-{pid}-{stamp}.perf"));
        let child = Command::new("perf")
            .args(["record", "-g", "-q", "-F", FREQUENCY, "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run perf ({e}): apt-get install linux-perf; without it, \
                     valgrind --tool=callgrind on a server started by hand (far slower)"
                )
            })?;
        Ok(Profiler { child, data })
    }

    /// Stops the recording (SIGINT, as Ctrl-C does) and returns the top entries.
    pub fn finish(started: Result<Profiler, String>) -> Result<Vec<String>, String> {
        let p = started?;
        let pid = i32::try_from(p.child.id()).map_err(|e| e.to_string())?;
        let stopped =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGINT);
        let output = p.child.wait_with_output();
        let result = match (stopped, output) {
            (Err(e), _) => Err(format!("cannot stop perf record: {e}")),
            (_, Err(e)) => Err(format!("perf record: {e}")),
            (Ok(()), Ok(out)) if !p.data.is_file() => Err(format!(
                "perf record wrote nothing ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            (Ok(()), Ok(_)) => report(&p.data),
        };
        let _ = std::fs::remove_file(&p.data);
        result
    }
}

/// `perf report` of `data`: self time per function, no call graphs.
fn report(data: &std::path::Path) -> Result<Vec<String>, String> {
    let out = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "-g", "none"])
        .args(["--percent-limit", PERCENT_LIMIT, "-i"])
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("perf report: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let top = top_entries(&text, TOP);
    if top.is_empty() {
        return Err(format!(
            "perf report gave no entries ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(top)
}

/// The first `n` entries of `perf report --stdio` text: its lines that start with a share
/// (`  12.34%  leanrtc  leanrtc  [.] symbol`), trailing spaces trimmed.
pub fn top_entries(text: &str, n: usize) -> Vec<String> {
    (text.lines())
        .filter(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            first
                .strip_suffix('%')
                .is_some_and(|v| v.parse::<f64>().is_ok())
        })
        .map(|l| l.trim_end().to_owned())
        .take(n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_entries_are_the_lines_with_a_share() {
        let text = "\
# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 9K of event 'cpu-clock:ppp'
# Overhead  Command  Shared Object      Symbol
# ........  .......  .................  ..................
#
    21.50%  media-0  leanrtc            [.] aws_lc_0_39_aes_gcm_enc_kernel   
     7.25%  media-1  [kernel.kallsyms]  [k] __lock_text_start
     0.51%  http     libc.so.6          [.] memcpy

#
# (Tip: use --percent-limit)
";
        let top = top_entries(text, 2);
        assert_eq!(
            top,
            [
                "    21.50%  media-0  leanrtc            [.] aws_lc_0_39_aes_gcm_enc_kernel",
                "     7.25%  media-1  [kernel.kallsyms]  [k] __lock_text_start",
            ]
        );
        assert_eq!(top_entries(text, 10).len(), 3);
        assert!(top_entries("", 5).is_empty());
        assert!(top_entries("%\n x% y\n100 %\n", 5).is_empty());
    }

    #[test]
    fn not_wanted_means_no_profiler() {
        assert!(Profiler::start_if(false, Some(1)).is_none());
        let err = Profiler::start_if(true, None).map(Profiler::finish);
        assert!(matches!(err, Some(Err(e)) if e.contains("process id")));
    }
}
