//! What the load generator reads from `/proc`: a process's (or one of our threads') CPU time,
//! its resident memory, the load average, the machine; and the open-file limit it raises.

use std::path::Path;
use std::time::Duration;

/// `/proc` counts CPU time in clock ticks of `sysconf(_SC_CLK_TCK)`, which Linux fixes at
/// 100 per second (USER_HZ) for every architecture it exposes `/proc` on.
const TICKS_PER_SECOND: u64 = 100;

/// utime + stime from a `stat` file (fields 14 and 15).
fn stat_cpu(path: &Path) -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string(path)?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the
    // last ')', with field 3 first.
    let rest = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .unwrap_or("");
    let mut fields = rest.split_whitespace().skip(11);
    let mut tick = || fields.next().and_then(|f| f.parse::<u64>().ok());
    match (tick(), tick()) {
        (Some(u), Some(s)) => Ok(Duration::from_millis((u + s) * 1000 / TICKS_PER_SECOND)),
        _ => Err(std::io::Error::other(format!(
            "{}: no utime/stime",
            path.display()
        ))),
    }
}

/// A process's CPU time (all its threads): utime + stime from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> std::io::Result<Duration> {
    stat_cpu(Path::new(&format!("/proc/{pid}/stat")))
}

/// The CPU time of one thread of this process, to the nanosecond (`schedstat`).
pub fn thread_cpu_time(tid: i32) -> std::io::Result<Duration> {
    schedstat_runtime(Path::new(&format!("/proc/self/task/{tid}/schedstat")))
}

/// The first field of a `schedstat` file: nanoseconds on a CPU.
fn schedstat_runtime(path: &Path) -> std::io::Result<Duration> {
    let text = std::fs::read_to_string(path)?;
    let run = text.split_whitespace().next().and_then(|f| f.parse().ok());
    run.map(Duration::from_nanos)
        .ok_or_else(|| std::io::Error::other(format!("{}: no runtime", path.display())))
}

/// A process's CPU time to the nanosecond: its CPU-time clock (`clock_getcpuclockid`), which
/// is the scheduler's runtime summed over all its threads, those that ended included (the
/// baseline's HTTP side runs a thread per request). Where that clock cannot be read, the
/// `/proc/PID/task/*/schedstat` sum of the threads alive now.
pub fn precise_cpu_time(pid: u32) -> std::io::Result<Duration> {
    use nix::time::{clock_getcpuclockid, clock_gettime};
    let pid_t = i32::try_from(pid).map_err(std::io::Error::other)?;
    match clock_getcpuclockid(nix::unistd::Pid::from_raw(pid_t)).and_then(clock_gettime) {
        Ok(t) => Ok(Duration::from(t)),
        Err(_) => schedstat_cpu_time(pid),
    }
}

/// The first field of `/proc/PID/task/*/schedstat` (ns on a CPU), summed over the threads
/// alive now.
pub fn schedstat_cpu_time(pid: u32) -> std::io::Result<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread may end between the listing and the read.
        if let Ok(run) = schedstat_runtime(&task?.path().join("schedstat")) {
            ns += run.as_nanos() as u64;
        }
    }
    Ok(Duration::from_nanos(ns))
}

/// The calling thread's id (for [`thread_cpu_time`]).
pub fn current_tid() -> i32 {
    nix::unistd::gettid().as_raw()
}

/// A process's resident memory (`VmRSS` of `/proc/PID/status`), in bytes.
pub fn rss(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::other("no VmRSS in /proc/PID/status"))
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// One line about the machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = (cpuinfo.lines())
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = (meminfo.lines())
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0.0, |kib| kib as f64 / (1024.0 * 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {mem_gib:.1} GiB RAM, Linux {}",
        kernel.trim()
    )
}

/// Raises the soft limit on open files to the hard limit (each client has its own socket);
/// returns the new soft limit.
pub fn raise_nofile() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        assert!(rss(pid).unwrap() > 0);
        // CPU time counts in 10 ms ticks, and a loaded machine may give us few: spin until
        // one shows (bounded).
        let spin = std::time::Instant::now();
        while cpu_time(pid).unwrap() == Duration::ZERO && spin.elapsed() < Duration::from_secs(5) {
            std::hint::black_box(0u64);
        }
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
        assert!(thread_cpu_time(current_tid()).is_ok());
        let (a, b) = (
            precise_cpu_time(pid).unwrap(),
            schedstat_cpu_time(pid).unwrap(),
        );
        assert!(a > Duration::ZERO && b > Duration::ZERO, "{a:?} {b:?}");
        // The clock counts threads that ended too, so it is never below the live sum by
        // more than the time between the two reads.
        assert!(a + Duration::from_millis(50) >= b, "{a:?} {b:?}");
        assert!(load_average().is_some());
        assert!(machine().contains("cores"));
    }
}
