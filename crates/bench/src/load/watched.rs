//! The join storm while viewers watch (`c-storm-W+S`, issue 16): W viewers (the watchers)
//! watch one publisher; after a window of plain watching, S more viewers (the joiners) are
//! POSTed as fast as 32 threads can. What counts is how the watchers fare: their forwarding
//! latency during the storm — from its first POST until every joiner receives media —
//! against their own latency in the window just before it. Handshakes (DTLS crypto, SDP)
//! must not stall forwarding.
//!
//! Joiners live on client threads of their own, so the latencies the watchers' threads
//! report are the watchers' alone; latency is taken from the kernel's receive stamp, so it
//! does not count the time our threads take to read.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::load::BenchError;
use crate::load::clients::{ClientSnap, ClientThread, Handle};
use crate::load::perf::Profiler;
use crate::load::post::{Job, post_all};
use crate::load::procfs;
use crate::load::report::{RunResult, StormFigures};
use crate::load::run::{Options, Publishers, mark, start_publishers, summarize, wait_until};
use crate::load::scenario::Scenario;
use crate::load::server::Server;
use crate::load::stats;
use crate::{Kind, ViewerConfig};

/// Threads POSTing the joiners' offers at once.
const POSTERS: usize = 32;

/// Runs the watched join storm `scenario` against `server` (consumed: stopped at the end).
pub fn run_watched(
    scenario: &Scenario,
    mut server: Server,
    opts: &Options,
) -> Result<RunResult, BenchError> {
    let load_before = procfs::load_average();
    let Publishers {
        dtls,
        thread: publishers,
        streams,
    } = start_publishers(scenario, &mut server, opts, |p| &p.media)?;
    std::thread::sleep(opts.publisher_settle);
    let config = ViewerConfig {
        decrypt_one_in: opts.decrypt_one_in.max(1),
        ..ViewerConfig::counting()
    };
    let spawn = |what: &str| -> Result<Vec<ClientThread>, BenchError> {
        (0..opts.viewer_threads.max(1))
            .map(|i| ClientThread::spawn(&format!("{what}-{i}"), config.clone()))
            .collect()
    };
    let (watchers, joiners) = (spawn("watchers")?, spawn("joiners")?);
    let handles = |threads: &[ClientThread]| -> Vec<Handle> {
        threads.iter().map(ClientThread::handle).collect()
    };
    let jobs = |n: usize| -> Vec<Job> {
        (0..n)
            .map(|i| Job {
                kind: Kind::View,
                stream: streams[i % streams.len().max(1)].clone(),
                at: None,
                thread: i,
                publisher: None,
                tcp_from: opts.viewer_transport.source(i),
            })
            .collect()
    };
    // Viewers that receive media, or gave up, on `threads`.
    let settled = |threads: &[ClientThread]| -> usize {
        (threads.iter())
            .map(|t| {
                t.progress.media.load(Ordering::Relaxed) + t.progress.failed.load(Ordering::Relaxed)
            })
            .sum()
    };

    let (w, s) = (scenario.viewers(), scenario.joiners);
    let watching = post_all(
        jobs(w),
        server.http,
        &dtls,
        &handles(&watchers),
        opts.post_concurrency,
    );
    wait_until(opts.connect_timeout, || settled(&watchers) >= watching.ok);
    server.check_running()?;
    std::thread::sleep(opts.warmup);

    // The window before the storm, then the storm.
    let threads: Vec<&ClientThread> = std::iter::once(&publishers).chain(&watchers).collect();
    let first = mark(&server, &threads);
    std::thread::sleep(opts.measure);
    let calm = mark(&server, &threads);
    let profiler = Profiler::start_if(opts.perf, server.pid);
    let storm = post_all(jobs(s), server.http, &dtls, &handles(&joiners), POSTERS);
    wait_until(opts.connect_timeout, || settled(&joiners) >= storm.ok);
    let stormy = mark(&server, &threads);
    let profile = profiler.map(Profiler::finish);
    server.check_running()?;
    let joined: Vec<ClientSnap> = (joiners.iter())
        .map(ClientThread::snapshot)
        .filter_map(|rx| rx.recv_timeout(Duration::from_secs(10)).ok())
        .flat_map(|s| s.clients)
        .collect();
    let load_after = procfs::load_average();
    for t in watchers.into_iter().chain(joiners) {
        t.stop();
    }
    publishers.stop();
    drop(server);

    let before = summarize(scenario, &first, &calm, w);
    let mut result = summarize(scenario, &calm, &stormy, w);
    joiners_figures(&mut result, &joined);
    let seconds = {
        let first_post = joined.iter().map(|v| v.posted_at).min();
        let last_media = joined.iter().filter_map(|v| v.first_media_at).max();
        match (first_post, last_media) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        }
    };
    result.storm = Some(StormFigures {
        watchers: w,
        joiners: s,
        joined: joined.iter().filter(|v| v.first_media_at.is_some()).count(),
        before_ms: before.latency_ms,
        samples: (before.latency_samples, result.latency_samples),
        seconds,
    });
    let cpu = |r: &RunResult| {
        r.server_cpu
            .map_or("?".into(), |c| format!("{:.1} %", c * 100.0))
    };
    result.note = Some(format!(
        "the row is the storm (watchers' latency and loss, joiners' connect and handshakes/s); \
         before it, {:.1} s: server CPU {}, {:.0} pkts/s received, loss mean {:.2} %, \
         latency {}",
        before.window,
        cpu(&before),
        before.received_pps,
        before.loss_mean * 100.0,
        (before.latency_ms).map_or("–".into(), |(a, b)| format!("{a:.2} / {b:.2} ms")),
    ));
    result.load_average = [load_before, load_after];
    result.post_failures = watching.failed + storm.failed;
    result.errors = [watching.errors, storm.errors].concat();
    result.post_cpu = watching.cpu + storm.cpu;
    result.profile = profile;
    Ok(result)
}

/// The joiners' connect times (POST → first media) and handshake rate (connected viewers
/// over first POST → last connection) in place of the watchers'.
fn joiners_figures(result: &mut RunResult, joined: &[ClientSnap]) {
    let connects: Vec<f64> = (joined.iter())
        .filter_map(|v| Some(v.first_media_at?.saturating_duration_since(v.posted_at)))
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    result.connect_ms = stats::percentiles(&connects);
    let first_post = joined.iter().map(|v| v.posted_at).min();
    let last_up = joined.iter().filter_map(|v| v.connected_at).max();
    let up = joined.iter().filter(|v| v.connected_at.is_some()).count();
    result.handshakes_per_s = match (first_post, last_up) {
        (Some(a), Some(b)) if b > a => Some(up as f64 / (b - a).as_secs_f64()),
        _ => None,
    };
}
