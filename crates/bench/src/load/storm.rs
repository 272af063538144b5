//! The join storm without media (`c-idle-N`): what one connection costs the server and
//! nothing else. One publisher connects and stays silent, so the stream exists but nothing
//! is forwarded and no newcomer gets a keyframe burst; then every viewer is POSTed as fast
//! as the POSTing threads can, and a viewer is done when its ICE and DTLS are up.
//!
//! The server's CPU time is read to the nanosecond ([`procfs::precise_cpu_time`]) every
//! few milliseconds during the storm; the storm ends at the last viewer's connection, and
//! the sample just after it closes the account.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::load::clients::{ClientSnap, ClientThread};
use crate::load::post::{Job, PostReport, post_all};
use crate::load::report::RunResult;
use crate::load::run::{Options, Publishers, start_publishers};
use crate::load::scenario::Scenario;
use crate::load::server::Server;
use crate::load::{BenchError, procfs, stats};
use crate::{Kind, ViewerConfig};

/// How often the server's CPU time is sampled during the storm.
const SAMPLE: Duration = Duration::from_millis(5);
/// Threads POSTing offers at once.
const POSTERS: usize = 32;

/// One reading: when, the server's CPU time, ours.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    server: Duration,
    own: Duration,
}

fn sample(pid: u32) -> Sample {
    Sample {
        at: Instant::now(),
        server: procfs::precise_cpu_time(pid).unwrap_or_default(),
        own: procfs::precise_cpu_time(std::process::id()).unwrap_or_default(),
    }
}

/// Runs the idle join storm `scenario` against `server` (consumed: stopped at the end).
pub fn run_idle(
    scenario: &Scenario,
    mut server: Server,
    opts: &Options,
) -> Result<RunResult, BenchError> {
    let load_before = procfs::load_average();
    let pid = server.pid.ok_or_else(|| {
        BenchError::Usage(format!(
            "{} needs the server's process id (--attach-pid)",
            scenario.name
        ))
    })?;
    let rss_idle = procfs::rss(pid).ok();
    // The publisher sends nothing: connected is all it will be.
    let Publishers {
        dtls,
        thread: publishers,
        streams,
    } = start_publishers(scenario, &mut server, opts, |p| &p.connected)?;
    let rss_base = procfs::rss(pid).ok();

    let viewers: Vec<ClientThread> = (0..opts.viewer_threads.max(1))
        .map(|i| ClientThread::spawn(&format!("viewers-{i}"), ViewerConfig::counting()))
        .collect::<Result<_, _>>()?;
    let handles: Vec<_> = viewers.iter().map(ClientThread::handle).collect();
    let n = scenario.viewers();
    let jobs: Vec<Job> = (0..n)
        .map(|i| Job {
            kind: Kind::View,
            stream: streams[i % streams.len().max(1)].clone(),
            at: None,
            thread: i,
            publisher: None,
            tcp_from: opts.viewer_transport.source(i),
        })
        .collect();
    let count = |what: fn(&crate::load::clients::Progress) -> usize| {
        viewers.iter().map(|t| what(&t.progress)).sum::<usize>()
    };
    let connected = || count(|p| p.connected.load(Ordering::Relaxed));
    let failed = || count(|p| p.failed.load(Ordering::Relaxed));

    let mut samples = vec![sample(pid)];
    let posted: PostReport = std::thread::scope(|s| {
        let posting = s.spawn(|| post_all(jobs, server.http, &dtls, &handles, POSTERS));
        while !posting.is_finished() {
            std::thread::sleep(SAMPLE);
            samples.push(sample(pid));
        }
        posting.join().unwrap_or_default()
    });
    let deadline = Instant::now() + opts.connect_timeout;
    while connected() + failed() < posted.ok && Instant::now() < deadline {
        std::thread::sleep(SAMPLE);
        samples.push(sample(pid));
    }
    // The threads refresh their counts every 100 ms: one more sample after the last.
    samples.push(sample(pid));
    server.check_running()?;
    let rss_loaded = procfs::rss(pid).ok();

    let snaps: Vec<ClientSnap> = (viewers.iter())
        .map(ClientThread::snapshot)
        .filter_map(|rx| rx.recv_timeout(Duration::from_secs(10)).ok())
        .flat_map(|s| s.clients)
        .collect();
    let load_after = procfs::load_average();
    for t in viewers {
        t.stop();
    }
    publishers.stop();
    drop(server);

    let mut result = account(scenario, &snaps, &samples);
    result.load_average = [load_before, load_after];
    result.rss = rss_loaded;
    result.rss_idle = rss_idle;
    if let (Some(loaded), Some(base)) = (rss_loaded, rss_base) {
        result.rss_per_viewer = Some((loaded as f64 - base as f64) / n.max(1) as f64);
    }
    result.post_failures = posted.failed;
    result.errors = posted.errors;
    result.post_cpu = posted.cpu;
    Ok(result)
}

/// The figures from the viewers' times and the CPU samples: the storm runs from the first
/// POST to the last connection, and is charged the CPU time up to the first sample at or
/// after that connection.
fn account(scenario: &Scenario, viewers: &[ClientSnap], samples: &[Sample]) -> RunResult {
    let first_post = viewers.iter().map(|v| v.posted_at).min();
    let last_up = viewers.iter().filter_map(|v| v.connected_at).max();
    let up = viewers.iter().filter(|v| v.connected_at.is_some()).count();
    let connects: Vec<f64> = (viewers.iter())
        .filter_map(|v| Some(v.connected_at?.saturating_duration_since(v.posted_at)))
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    let start = samples.first().copied();
    let end = last_up.and_then(|t| samples.iter().find(|s| s.at >= t).copied());
    let end = end.or_else(|| samples.last().copied());
    let (wall, server_cpu, own_cpu) = match (start, end) {
        (Some(a), Some(b)) => (
            b.at.saturating_duration_since(a.at).as_secs_f64(),
            b.server.saturating_sub(a.server).as_secs_f64(),
            b.own.saturating_sub(a.own).as_secs_f64(),
        ),
        _ => (0.0, 0.0, 0.0),
    };
    let storm = match (first_post, last_up) {
        (Some(a), Some(b)) if b > a => Some((b - a).as_secs_f64()),
        _ => None,
    };
    let per = |cpu: f64| (up > 0).then(|| cpu / up as f64 * 1e6);
    let us = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0} µs"));
    let note = format!(
        "storm {} s (first POST → last connected), accounted {wall:.3} s; server CPU {server_cpu:.3} s \
         = {} per handshake; load generator CPU {own_cpu:.3} s = {} per handshake",
        storm.map_or("–".into(), |s| format!("{s:.3}")),
        us(per(server_cpu)),
        us(per(own_cpu)),
    );
    RunResult {
        scenario: scenario.name.clone(),
        viewers: scenario.viewers(),
        receiving: up,
        window: wall,
        server_cpu: (wall > 0.0).then(|| server_cpu / wall),
        connect_ms: stats::percentiles(&connects),
        handshakes_per_s: storm.map(|s| up as f64 / s),
        handshakes_per_cpu_s: (server_cpu > 0.0).then(|| up as f64 / server_cpu),
        gen_cpu: if wall > 0.0 { own_cpu / wall } else { 0.0 },
        no_media: true,
        note: Some(note),
        ..RunResult::default()
    }
}
