//! One run: one scenario against one server. Publishers connect first, then the viewers
//! (POSTed from a few threads, driven by others); once every viewer receives media (or the
//! connect timeout passes), a warm-up, then the measurement window, bounded by snapshots of
//! the server's CPU time and counters, our own CPU time and every client's counts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rtc::dtls::{DtlsCertificate, DtlsConfig};
use rtc::rand::Rng;

use crate::load::clients::{ClientSnap, ClientThread, Progress, Snapshot};
use crate::load::metrics::{self, Metrics};
use crate::load::perf::Profiler;
use crate::load::post::{Job, PostReport, post_all};
use crate::load::procfs;
use crate::load::report::RunResult;
use crate::load::scenario::{Scenario, StreamMedia};
use crate::load::server::Server;
use crate::load::{BenchError, stats};
use crate::{Kind, PublisherConfig, Source, ViewerConfig};

/// How the load is made.
#[derive(Debug, Clone)]
pub struct Options {
    /// Synthetic publishers' bitrate, bits/s.
    pub bitrate: u32,
    /// Synthetic publishers' frame rate.
    pub fps: u32,
    /// From all viewers receiving to the measurement window.
    pub warmup: Duration,
    /// The measurement window.
    pub measure: Duration,
    /// Threads driving viewers.
    pub viewer_threads: usize,
    /// Viewers decrypt one RTP packet in this many (for latency); the rest are counted
    /// from their headers.
    pub decrypt_one_in: u32,
    /// How long all viewers may take to receive media.
    pub connect_timeout: Duration,
    /// Threads POSTing offers at once (a join storm uses at least 32).
    pub post_concurrency: usize,
    /// How long publishers send before the memory baseline for viewers is taken (leanrtc
    /// keeps the last 1024 packets of each video track: ~7 s at 1.5 Mbit/s).
    pub publisher_settle: Duration,
    /// The sample IVF file, for the baseline's (d).
    pub sample_ivf: PathBuf,
    /// Profile the server with `perf record` over the window (the top entries go to the
    /// report).
    pub perf: bool,
    /// What carries the viewers' media (publishers always use UDP).
    pub viewer_transport: ViewerTransport,
}

/// What carries a viewer's session: its own UDP socket, or its own ICE-TCP connection to
/// the server's passive candidate (RFC 6544, RFC 4571 framing; leanrtc only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ViewerTransport {
    /// UDP.
    #[default]
    Udp,
    /// ICE-TCP.
    Tcp,
}

impl ViewerTransport {
    /// Its name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ViewerTransport::Udp => "udp",
            ViewerTransport::Tcp => "tcp",
        }
    }

    /// Parses `udp` or `tcp`.
    pub fn parse(name: &str) -> Result<Self, BenchError> {
        match name.trim() {
            "udp" => Ok(ViewerTransport::Udp),
            "tcp" => Ok(ViewerTransport::Tcp),
            other => Err(BenchError::Usage(format!(
                "unknown viewer transport {other:?} (udp, tcp)"
            ))),
        }
    }

    /// Where viewer `i` connects from over TCP: 127.1.0.1, 127.1.0.2, … (250 per /24), so
    /// the server sees many hosts, as it would in use: it bounds the connections of one
    /// address that have not authenticated yet (16 for leanrtc), which a join storm from
    /// one address would hit. None over UDP.
    pub fn source(self, i: usize) -> Option<IpAddr> {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        let octet = |v: u32| u8::try_from(v % 250).unwrap_or(0);
        (self == ViewerTransport::Tcp).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                1 + octet(i / 62_500),
                octet(i / 250),
                octet(i) + 1,
            ))
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bitrate: 1_500_000,
            fps: 30,
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(10),
            viewer_threads: 1,
            decrypt_one_in: 7,
            connect_timeout: Duration::from_secs(30),
            post_concurrency: 8,
            publisher_settle: Duration::from_secs(8),
            sample_ivf: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../samples/sample-vp8-640x360-30fps-10s.ivf"),
            perf: false,
            viewer_transport: ViewerTransport::Udp,
        }
    }
}

/// What the runner reads at each end of the window.
pub(crate) struct Mark {
    at: Instant,
    server_cpu: Option<Duration>,
    metrics: Option<Metrics>,
    own_cpu: Duration,
    thread_cpu: Vec<Duration>,
    snapshots: Vec<Snapshot>,
}

/// Runs `scenario` against `server` (consumed: a server we started is stopped at the end).
pub fn run(
    scenario: &Scenario,
    mut server: Server,
    opts: &Options,
) -> Result<RunResult, BenchError> {
    if scenario.media == StreamMedia::Silent {
        return crate::load::storm::run_idle(scenario, server, opts);
    }
    if scenario.joiners > 0 {
        return crate::load::watched::run_watched(scenario, server, opts);
    }
    let load_before = procfs::load_average();
    let pid = server.pid;
    let rss_idle = pid.and_then(|p| procfs::rss(p).ok());
    let Publishers {
        dtls,
        thread: publishers,
        streams,
    } = start_publishers(scenario, &mut server, opts, |p| &p.media)?;
    // The server's per-track packet histories fill in their first seconds: the memory
    // baseline for viewers is taken once they are full, so it is not charged to viewers.
    std::thread::sleep(opts.publisher_settle);
    let rss_base = pid.and_then(|p| procfs::rss(p).ok());

    // Viewers, spread over their threads.
    let config = ViewerConfig {
        decrypt_one_in: opts.decrypt_one_in.max(1),
        ..ViewerConfig::counting()
    };
    let viewers: Vec<ClientThread> = (0..opts.viewer_threads.max(1))
        .map(|i| ClientThread::spawn(&format!("viewers-{i}"), config.clone()))
        .collect::<Result<_, _>>()?;
    let handles: Vec<_> = viewers.iter().map(ClientThread::handle).collect();
    let n = scenario.viewers();
    let start = Instant::now() + Duration::from_millis(100);
    let jobs: Vec<Job> = (0..n)
        .map(|i| Job {
            kind: Kind::View,
            stream: streams[i % streams.len().max(1)].clone(),
            at: (scenario.join_within).map(|w| start + w.mul_f64(i as f64 / n.max(1) as f64)),
            thread: i,
            publisher: None,
            tcp_from: opts.viewer_transport.source(i),
        })
        .collect();
    let concurrency = match scenario.join_within {
        Some(_) => opts.post_concurrency.max(32),
        None => opts.post_concurrency,
    };
    let join_cpu_start = pid.and_then(|p| procfs::cpu_time(p).ok());
    let posted = post_all(jobs, server.http, &dtls, &handles, concurrency);
    let receiving = || {
        (viewers.iter())
            .map(|t| t.progress.media.load(Ordering::Relaxed))
            .sum::<usize>()
    };
    wait_until(opts.connect_timeout, || receiving() >= posted.ok);
    // The server's CPU time for the joins (the forwarding to viewers already up included).
    let join_cpu = (join_cpu_start.zip(pid.and_then(|p| procfs::cpu_time(p).ok())))
        .map(|(a, b)| b.saturating_sub(a).as_secs_f64());
    let joined = receiving();
    server.check_running()?;

    // The window.
    std::thread::sleep(opts.warmup);
    let threads: Vec<&ClientThread> = std::iter::once(&publishers).chain(&viewers).collect();
    let first = mark(&server, &threads);
    let profiler = Profiler::start_if(opts.perf, pid);
    std::thread::sleep(opts.measure);
    let last = mark(&server, &threads);
    let profile = profiler.map(Profiler::finish);
    let rss_loaded = pid.and_then(|p| procfs::rss(p).ok());
    server.check_running()?;
    let load_after = procfs::load_average();

    for t in viewers {
        t.stop();
    }
    publishers.stop();
    drop(server);

    let mut result = summarize(scenario, &first, &last, n);
    result.load_average = [load_before, load_after];
    result.rss = rss_loaded;
    result.rss_idle = rss_idle;
    if let (Some(loaded), Some(base)) = (rss_loaded, rss_base) {
        result.rss_per_viewer = Some((loaded as f64 - base as f64) / n.max(1) as f64);
    }
    result.handshakes_per_cpu_s = join_cpu.filter(|&c| c > 0.0).map(|c| joined as f64 / c);
    result.post_failures = posted.failed;
    result.errors = posted.errors;
    result.post_cpu = posted.cpu;
    result.profile = profile;
    Ok(result)
}

/// What a run's viewers need from the publishers it starts first.
pub(crate) struct Publishers {
    /// The DTLS identity every client of the run uses.
    pub dtls: Arc<DtlsConfig>,
    /// The publishers, on a thread of their own.
    pub thread: ClientThread,
    /// The streams viewers join.
    pub streams: Vec<String>,
}

/// POSTs `scenario`'s publishers to `server` and waits (15 s at most) until the counter
/// `ready` picks from their thread's progress counts every one of them.
pub(crate) fn start_publishers(
    scenario: &Scenario,
    server: &mut Server,
    opts: &Options,
    ready: fn(&Progress) -> &AtomicUsize,
) -> Result<Publishers, BenchError> {
    let mut rng = Rng::system();
    let dtls = Arc::new(DtlsConfig::new(
        DtlsCertificate::generate(&mut rng)?,
        &mut rng,
    ));
    let thread = ClientThread::spawn("publishers", ViewerConfig::counting())?;
    let (streams, jobs) = publisher_jobs(scenario, server, opts)?;
    let expected = jobs.len();
    let report = post_all(jobs, server.http, &dtls, &[thread.handle()], 4);
    check_posts("publisher", &report, expected)?;
    wait_until(Duration::from_secs(15), || {
        ready(&thread.progress).load(Ordering::Relaxed) >= expected
    });
    server.check_running()?;
    Ok(Publishers {
        dtls,
        thread,
        streams,
    })
}

/// The streams viewers join, and the publisher sessions to make for them.
fn publisher_jobs(
    scenario: &Scenario,
    server: &Server,
    opts: &Options,
) -> Result<(Vec<String>, Vec<Job>), BenchError> {
    let source = match scenario.media {
        StreamMedia::Synthetic => Source::synthetic(opts.bitrate, opts.fps),
        StreamMedia::SampleFile => {
            let file = std::fs::read(&opts.sample_ivf)
                .map_err(|e| BenchError::Usage(format!("{}: {e}", opts.sample_ivf.display())))?;
            Source::ivf(&file)?
        }
        StreamMedia::Silent => Source::Silent,
    };
    let file_stream = scenario.media == StreamMedia::SampleFile && server.kind.has_sample_stream();
    let streams: Vec<String> = (0..scenario.rooms.max(1))
        .map(|r| match scenario.media {
            StreamMedia::SampleFile => "sample".to_owned(),
            StreamMedia::Synthetic | StreamMedia::Silent => format!("bench-{r}"),
        })
        .collect();
    let jobs = if file_stream {
        Vec::new()
    } else {
        (streams.iter())
            .map(|s| Job {
                kind: Kind::Publish,
                stream: s.clone(),
                at: None,
                thread: 0,
                publisher: Some(PublisherConfig::new(source.clone())),
                tcp_from: None,
            })
            .collect()
    };
    Ok((streams, jobs))
}

pub(crate) fn check_posts(
    what: &str,
    report: &PostReport,
    expected: usize,
) -> Result<(), BenchError> {
    if report.ok == expected {
        return Ok(());
    }
    Err(BenchError::Client(format!(
        "{} of {expected} {what} POSTs failed: {}",
        expected - report.ok,
        report.errors.join("; ")
    )))
}

/// Waits until `done` or `timeout`, looking every 20 ms.
pub(crate) fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Reads everything at one end of the window: the client threads are asked first (they
/// answer between two rounds of their loops), then the server and ourselves.
pub(crate) fn mark(server: &Server, threads: &[&ClientThread]) -> Mark {
    let asked: Vec<_> = threads.iter().map(|t| t.snapshot()).collect();
    let at = Instant::now();
    let server_cpu = server.pid.and_then(|p| procfs::cpu_time(p).ok());
    let own_cpu = procfs::cpu_time(std::process::id()).unwrap_or_default();
    let thread_cpu = (threads.iter())
        .map(|t| procfs::thread_cpu_time(t.tid).unwrap_or_default())
        .collect();
    let snapshots = (asked.into_iter())
        .map(|rx| rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default())
        .collect();
    let metrics = server.metrics();
    Mark {
        at,
        server_cpu,
        metrics,
        own_cpu,
        thread_cpu,
        snapshots,
    }
}

/// The figures of one run from the two marks (thread 0 is the publishers').
pub(crate) fn summarize(scenario: &Scenario, first: &Mark, last: &Mark, n: usize) -> RunResult {
    let wall = last.at.saturating_duration_since(first.at).as_secs_f64();
    let cpu = match (first.server_cpu, last.server_cpu) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
        _ => None,
    };
    // Client ids are per thread: (thread, id) names a viewer across the two marks.
    let viewers_of = |m: &Mark| -> HashMap<(usize, usize), ClientSnap> {
        (m.snapshots.iter().enumerate().skip(1))
            .flat_map(|(t, s)| s.clients.iter().map(move |c| ((t, c.id.0), c.clone())))
            .collect()
    };
    let (before, after) = (viewers_of(first), viewers_of(last));
    let mut received = 0u64;
    let mut receiving = 0;
    let mut losses = Vec::with_capacity(after.len());
    for (key, v) in &after {
        let b = before.get(key);
        let (p0, u0, e0) = b.map_or((0, 0, 0), |b| (b.packets, b.unique, b.expected));
        let got = v.packets.saturating_sub(p0);
        received += got;
        receiving += usize::from(got > 0);
        let (du, de) = (v.unique.saturating_sub(u0), v.expected.saturating_sub(e0));
        losses.push(if de == 0 {
            1.0
        } else {
            1.0 - (du.min(de) as f64 / de as f64)
        });
    }
    let after: Vec<ClientSnap> = after.into_values().collect();
    // Viewers that never made it count as losing everything.
    losses.resize(n.max(losses.len()), 1.0);
    let latencies: Vec<u32> = (last.snapshots.iter().skip(1))
        .flat_map(|s| s.latencies_us.iter().copied())
        .collect();
    let delays: Vec<u32> = (last.snapshots.iter().skip(1))
        .flat_map(|s| s.read_delays_us.iter().copied())
        .collect();
    let since_post = |at: fn(&ClientSnap) -> Option<Instant>| -> Vec<f64> {
        (after.iter())
            .filter_map(|v| Some(at(v)?.saturating_duration_since(v.posted_at)))
            .map(|d| d.as_secs_f64() * 1e3)
            .collect()
    };
    let connects = since_post(|v| v.first_media_at);
    let first_frames = since_post(|v| v.first_frame_at);
    let handshakes = {
        let first_post = after.iter().map(|v| v.posted_at).min();
        let last_up = after.iter().filter_map(|v| v.connected_at).max();
        let up = after.iter().filter(|v| v.connected_at.is_some()).count();
        match (first_post, last_up) {
            (Some(a), Some(b)) if b > a => Some(up as f64 / (b - a).as_secs_f64()),
            _ => None,
        }
    };
    let thread_cpu = |i: usize| {
        let a = first.thread_cpu.get(i).copied().unwrap_or_default();
        let b = last.thread_cpu.get(i).copied().unwrap_or_default();
        b.saturating_sub(a).as_secs_f64() / wall.max(1e-9)
    };
    let (m0, m1) = (first.metrics.as_ref(), last.metrics.as_ref());
    let sent = match (m0.and_then(|m| m.sent), m1.and_then(|m| m.sent)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let shards = match (m0, m1) {
        (Some(a), Some(b)) => metrics::window(a, b, wall),
        _ => Vec::new(),
    };
    RunResult {
        scenario: scenario.name.clone(),
        server: String::new(),
        viewers: n,
        receiving,
        window: wall,
        server_cpu: cpu.map(|c| c / wall.max(1e-9)),
        received_pps: received as f64 / wall.max(1e-9),
        per_cpu_viewers: cpu.filter(|&c| c > 0.0).map(|c| received as f64 / c),
        per_cpu_server: (cpu.zip(sent))
            .filter(|&(c, _)| c > 0.0)
            .map(|(c, s)| s as f64 / c),
        loss_mean: stats::mean(&losses),
        loss_max: losses.iter().copied().fold(0.0, f64::max),
        latency_ms: stats::percentiles_us(&latencies),
        latency_samples: latencies.len(),
        connect_ms: stats::percentiles(&connects),
        first_frame_ms: stats::percentiles(&first_frames),
        handshakes_per_s: handshakes,
        gen_cpu: (last.own_cpu.saturating_sub(first.own_cpu)).as_secs_f64() / wall.max(1e-9),
        gen_publisher_cpu: thread_cpu(0),
        gen_viewer_cpu: (1..last.thread_cpu.len()).map(thread_cpu).sum(),
        read_delay_ms: stats::percentiles_us(&delays),
        shards,
        ..RunResult::default()
    }
}
