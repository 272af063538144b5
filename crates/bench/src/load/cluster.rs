//! The cluster scenario of issue 11 (`cluster-N`): one publisher on an origin node, N
//! viewers spread evenly over edge nodes started with `--origin` (each pulls the stream
//! over WHEP once, with one relay session, and fans it out to its own viewers), against one
//! node with the same N viewers in the same invocation. Three phases, one after the other
//! on fresh processes:
//!
//! 1. *direct*: one node, the publisher and N viewers;
//! 2. *relayed*: origin A with the publisher, edges B, C, … with N / edges viewers each;
//! 3. *reference*: one node with as many viewers as the cluster has edges, which is what
//!    the origin carries in phase 2 (one relay session per edge).
//!
//! Every phase publishes the same streams: the viewers' one and [`Scenario::probes`] more
//! with nobody watching. After the measurement window, while the viewers still watch, probe
//! viewers join one at a time on each edge: alternately the first viewer of a probe stream
//! there (the edge must open its relay: a WHEP POST to the origin, ICE and DTLS, before it
//! answers) and one more viewer of the watched stream (the relay exists). In phase 1 the
//! same number of probes join the one node's watched stream. Each probe's time runs from
//! just before its POST to the answer, to its first media packet (the kernel's receive
//! stamp) and to the end of its first video frame.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc::dtls::DtlsConfig;

use crate::load::BenchError;
use crate::load::clients::{ClientThread, Command};
use crate::load::post::{Job, offer_codecs, post_all};
use crate::load::procfs;
use crate::load::report::RunResult;
use crate::load::run::{Options, Publishers, mark, start_publishers, summarize, wait_until};
use crate::load::scenario::Scenario;
use crate::load::server::{Server, ServerSpec, StreamView};
use crate::load::stats;
use crate::{Kind, Offer, ViewerConfig};

/// How long a probe viewer may take to get its first packet.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rows' server names for `spec`: (one node, the cluster).
pub fn row_names(spec: &ServerSpec) -> (String, String) {
    (
        format!("{}-direct", spec.name),
        format!("{}-relayed", spec.name),
    )
}

/// One new viewer's times, in ms from just before its POST.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// To the 201 with the answer (at an edge without the relay, its opening included).
    pub answer_ms: Option<f64>,
    /// To its first media packet; None: none within [`PROBE_TIMEOUT`].
    pub first_packet_ms: Option<f64>,
    /// To the end of its first video frame.
    pub first_frame_ms: Option<f64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// One process over its phase's window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFigures {
    /// `A`, `B`, …; the one node of phases 1 and 3 is `1`.
    pub name: String,
    /// `one node`, `origin`, `edge`, `reference`.
    pub role: &'static str,
    /// Viewers the load generator POSTed to it (probes not counted).
    pub viewers: usize,
    /// The watched stream as its `GET /api/streams` shows it in the window.
    pub stream: Option<StreamView>,
    /// Its CPU time over the window, in cores (1.0 = one core busy).
    pub cpu: Option<f64>,
    /// Datagrams it says it sent (`/metrics`), per second.
    pub sent_per_s: Option<f64>,
}

/// What the cluster scenario reports besides its two rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFigures {
    /// Every process of the three phases: the one node, the origin, the edges, the
    /// reference node.
    pub nodes: Vec<NodeFigures>,
    /// Probes where the edge had no relay for the stream yet.
    pub cold: Vec<Probe>,
    /// Probes of the watched stream at an edge whose relay exists.
    pub warm: Vec<Probe>,
    /// Probes of the watched stream at the one node of phase 1.
    pub direct: Vec<Probe>,
}

impl ClusterFigures {
    /// The origin of the relayed phase.
    pub fn origin(&self) -> Option<&NodeFigures> {
        self.nodes.iter().find(|n| n.role == "origin")
    }

    /// The edges of the relayed phase.
    pub fn edges(&self) -> impl Iterator<Item = &NodeFigures> {
        self.nodes.iter().filter(|n| n.role == "edge")
    }

    /// The node of phase 3 (as many viewers as the cluster has edges).
    pub fn reference(&self) -> Option<&NodeFigures> {
        self.nodes.iter().find(|n| n.role == "reference")
    }
}

/// Runs the three phases of `scenario` with `spec`'s leanrtc from `binary`; returns the
/// one-node row and the cluster's row (which carries the [`ClusterFigures`]).
pub fn run(
    scenario: &Scenario,
    spec: &ServerSpec,
    binary: &Path,
    opts: &Options,
) -> Result<Vec<RunResult>, BenchError> {
    let n = scenario.viewers();
    let edges = scenario.edges.max(1);
    let (direct_name, relayed_name) = row_names(spec);

    let mut node = Server::start_spec(spec, binary)?;
    let mut direct = phase(scenario, &mut node, &mut [], n, opts, true)?;
    drop(node);
    std::thread::sleep(Duration::from_secs(1));

    let mut origin = Server::start_spec(spec, binary)?;
    let url = format!("http://{}", origin.http);
    let mut edge_servers = (0..edges)
        .map(|_| Server::start_spec_with(spec, binary, &["--origin".into(), url.clone()]))
        .collect::<Result<Vec<_>, _>>()?;
    let mut relayed = phase(scenario, &mut origin, &mut edge_servers, n, opts, true)?;
    drop(edge_servers);
    drop(origin);
    std::thread::sleep(Duration::from_secs(1));

    let mut node = Server::start_spec(spec, binary)?;
    let mut reference = phase(scenario, &mut node, &mut [], edges, opts, false)?;
    drop(node);

    for n in &mut reference.nodes {
        n.role = "reference";
    }
    let nodes = [direct.nodes, relayed.nodes, reference.nodes].concat();
    direct.result.server = direct_name;
    relayed.result.server = relayed_name;
    relayed.result.cluster = Some(Box::new(ClusterFigures {
        nodes,
        cold: relayed.cold,
        warm: relayed.warm,
        direct: direct.warm,
    }));
    Ok(vec![direct.result, relayed.result])
}

/// What one phase measured.
struct PhaseOut {
    result: RunResult,
    nodes: Vec<NodeFigures>,
    cold: Vec<Probe>,
    warm: Vec<Probe>,
}

/// One phase: the publishers to `origin`, `viewers` viewers spread over `edges` (none: on
/// the origin), the window, then (if `probe`) the probes.
fn phase(
    scenario: &Scenario,
    origin: &mut Server,
    edges: &mut [Server],
    viewers: usize,
    opts: &Options,
    probe: bool,
) -> Result<PhaseOut, BenchError> {
    let load_before = procfs::load_average();
    let published = Scenario::synthetic(&scenario.name, 1 + scenario.probes, 0);
    let Publishers {
        dtls,
        thread: publishers,
        streams,
    } = start_publishers(&published, origin, opts, |p| &p.media)?;
    std::thread::sleep(opts.publisher_settle);
    let watched = streams.first().cloned().unwrap_or_default();

    let config = ViewerConfig {
        decrypt_one_in: opts.decrypt_one_in.max(1),
        ..ViewerConfig::counting()
    };
    let threads: Vec<ClientThread> = (0..opts.viewer_threads.max(1))
        .map(|i| ClientThread::spawn(&format!("viewers-{i}"), config.clone()))
        .collect::<Result<_, _>>()?;
    let handles: Vec<_> = threads.iter().map(ClientThread::handle).collect();
    // The nodes viewers watch: the edges, else the origin.
    let targets: Vec<std::net::SocketAddr> = match edges.is_empty() {
        true => vec![origin.http],
        false => edges.iter().map(|e| e.http).collect(),
    };
    let (mut ok, mut failed, mut errors, mut post_cpu) = (0, 0, Vec::new(), Duration::ZERO);
    for (t, http) in targets.iter().enumerate() {
        let jobs: Vec<Job> = (0..viewers)
            .filter(|i| i % targets.len() == t)
            .map(|i| Job {
                kind: Kind::View,
                stream: watched.clone(),
                at: None,
                thread: i,
                publisher: None,
                tcp_from: None,
            })
            .collect();
        let report = post_all(jobs, *http, &dtls, &handles, opts.post_concurrency);
        ok += report.ok;
        failed += report.failed;
        errors.extend(report.errors);
        post_cpu += report.cpu;
    }
    let receiving = || {
        (threads.iter())
            .map(|t| t.progress.media.load(Ordering::Relaxed))
            .sum::<usize>()
    };
    wait_until(opts.connect_timeout, || receiving() >= ok);
    check_all(origin, edges)?;
    std::thread::sleep(opts.warmup);

    // The window: every process's CPU clock and sent counter at each end.
    let pids: Vec<Option<u32>> = std::iter::once(origin.pid)
        .chain(edges.iter().map(|e| e.pid))
        .collect();
    let counters = || -> (Instant, Vec<Option<Duration>>) {
        let cpu = (pids.iter())
            .map(|p| p.and_then(|p| procfs::precise_cpu_time(p).ok()))
            .collect();
        (Instant::now(), cpu)
    };
    let sent = |origin: &Server, edges: &[Server]| -> Vec<Option<u64>> {
        std::iter::once(origin)
            .chain(edges.iter())
            .map(Server::datagrams_sent)
            .collect()
    };
    let clients: Vec<&ClientThread> = std::iter::once(&publishers).chain(&threads).collect();
    let (sent0, first) = (sent(origin, edges), mark(origin, &clients));
    let (t0, cpu0) = counters();
    std::thread::sleep(opts.measure);
    let (t1, cpu1) = counters();
    let (last, sent1) = (mark(origin, &clients), sent(origin, edges));
    let wall = t1.saturating_duration_since(t0).as_secs_f64().max(1e-9);

    // Who watches what, as each node says, while only the viewers watch.
    let view = |s: &Server| -> Option<StreamView> {
        s.streams()
            .ok()
            .and_then(|list| list.into_iter().find(|v| v.name == watched))
    };
    let mut nodes: Vec<NodeFigures> = Vec::new();
    for (i, server) in std::iter::once(&*origin).chain(edges.iter()).enumerate() {
        let name = match edges.is_empty() {
            true => "1".to_owned(),
            false => char::from(b'A' + u8::try_from(i.min(25)).unwrap_or(0)).to_string(),
        };
        let role = match (edges.is_empty(), i) {
            (true, _) => "one node",
            (false, 0) => "origin",
            (false, _) => "edge",
        };
        let cpu = match (
            cpu0.get(i).copied().flatten(),
            cpu1.get(i).copied().flatten(),
        ) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64() / wall),
            _ => None,
        };
        let sent_per_s = match (
            sent0.get(i).copied().flatten(),
            sent1.get(i).copied().flatten(),
        ) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / wall),
            _ => None,
        };
        let viewers_here = match (edges.is_empty(), i) {
            (true, _) => viewers,
            (false, 0) => 0,
            (false, e) => (0..viewers).filter(|v| v % edges.len() == e - 1).count(),
        };
        nodes.push(NodeFigures {
            name,
            role,
            viewers: viewers_here,
            stream: view(server),
            cpu,
            sent_per_s,
        });
    }

    // The probes, one at a time, while the viewers watch.
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    if probe {
        let prober = ClientThread::spawn("probes", config.clone())?;
        let mut joined = 0;
        // As many probes at the one node as at all the edges together.
        let rounds = scenario.probes * scenario.edges.max(1) / targets.len();
        for http in &targets {
            for k in 0..rounds {
                if !edges.is_empty()
                    && let Some(stream) = streams.get(1 + k)
                {
                    joined += 1;
                    cold.push(probe_once(*http, stream, &dtls, &prober, joined));
                }
                joined += 1;
                warm.push(probe_once(*http, &watched, &dtls, &prober, joined));
            }
        }
        prober.stop();
    }
    check_all(origin, edges)?;
    let load_after = procfs::load_average();
    for t in threads {
        t.stop();
    }
    publishers.stop();

    let mut result = summarize(scenario, &first, &last, viewers);
    // The figures of every process together (one node: its own).
    let total = |f: fn(&NodeFigures) -> Option<f64>| -> Option<f64> {
        nodes.iter().map(f).sum::<Option<f64>>()
    };
    let cpu = total(|n| n.cpu);
    result.server_cpu = cpu;
    result.per_cpu_viewers = (cpu.filter(|&c| c > 0.0)).map(|c| result.received_pps / c);
    result.per_cpu_server = (total(|n| n.sent_per_s).zip(cpu))
        .filter(|&(_, c)| c > 0.0)
        .map(|(s, c)| s / c);
    result.shards = Vec::new();
    result.viewers = viewers;
    result.load_average = [load_before, load_after];
    result.post_failures = failed;
    result.errors = errors;
    result.post_cpu = post_cpu;
    result.note = Some(format!(
        "{} process(es): server CPU, RSS and sent / CPU-s are their sum",
        nodes.len()
    ));
    result.rss = (pids.iter())
        .map(|p| p.and_then(|p| procfs::rss(p).ok()))
        .sum::<Option<u64>>();
    Ok(PhaseOut {
        result,
        nodes,
        cold,
        warm,
    })
}

/// Fails if any of the phase's servers has exited.
fn check_all(origin: &mut Server, edges: &mut [Server]) -> Result<(), BenchError> {
    origin.check_running()?;
    edges.iter_mut().try_for_each(Server::check_running)
}

/// One new viewer of `stream` at `http`, driven by `prober` (its `nth` viewer); waits until
/// it receives media or [`PROBE_TIMEOUT`] passes.
fn probe_once(
    http: std::net::SocketAddr,
    stream: &str,
    dtls: &Arc<DtlsConfig>,
    prober: &ClientThread,
    nth: usize,
) -> Probe {
    let failed = |e: String| Probe {
        error: Some(e),
        ..Probe::default()
    };
    let offer = match Offer::new(
        Kind::View,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        offer_codecs(Kind::View),
        dtls,
    ) {
        Ok(o) => o,
        Err(e) => return failed(e.to_string()),
    };
    let session = match offer.post(http, stream, Arc::clone(dtls)) {
        Ok(s) => s,
        Err(e) => return failed(format!("POST /whep/{stream} to {http}: {e}")),
    };
    let posted_at = session.posted_at;
    let answer_ms = Some(posted_at.elapsed().as_secs_f64() * 1e3);
    if !prober.handle().send(Command::View(Box::new(session))) {
        return failed("the probe thread is gone".into());
    }
    wait_until(PROBE_TIMEOUT, || {
        prober.progress.media.load(Ordering::Relaxed)
            + prober.progress.failed.load(Ordering::Relaxed)
            >= nth
    });
    let snap = (prober.snapshot())
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    let Some(me) = snap.clients.iter().find(|c| c.posted_at == posted_at) else {
        return failed("the probe thread lost the viewer".into());
    };
    let since = |at: Option<Instant>| {
        at.map(|t| t.saturating_duration_since(posted_at).as_secs_f64() * 1e3)
    };
    Probe {
        answer_ms,
        first_packet_ms: since(me.first_media_at),
        first_frame_ms: since(me.first_frame_at),
        error: (me.first_media_at.is_none())
            .then(|| format!("no media within {PROBE_TIMEOUT:?} from {http}")),
    }
}

/// `values`' median and range as `p50 (min–max)`, ms.
fn spread(values: &[f64]) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // The nearest-rank median of an even count is the lower middle value.
    match stats::percentiles(values) {
        Some((p50, _)) => format!("{p50:.0} ({lo:.0}–{hi:.0})"),
        None => "–".into(),
    }
}

/// The cluster runs' own tables: each process over its window, and the probes.
pub fn tables(results: &[RunResult]) -> String {
    let mut out = String::from(
        "The cluster scenario (issue 11) runs three phases on fresh processes, each with the \
         same publishers on its first node (the watched stream and the probe streams): \
         *-direct*, one node with every viewer; *-relayed*, an origin A with the publishers \
         and edges B, C, … started with `--origin http://A`, the viewers spread evenly over \
         the edges (each edge pulls the stream once over WHEP and fans it out); and a \
         *reference* node with as many viewers as there are edges, which is what the origin \
         carries. In the main table the relayed row's *server CPU*, *RSS* and *sent / CPU-s* \
         are those of all its processes together, and its latency is publisher → origin → \
         edge → viewer. After each window, while the viewers still watch, probe viewers join \
         one at a time: at each edge, alternately the first viewer of a probe stream there \
         (the edge opens its relay before it answers) and one more viewer of the watched \
         stream (the relay is up); at the one node, as many of the watched stream.\n\n\
         Each process over its window (*stream*: the watched stream in its `GET /api/streams`: \
         kind and WHEP sessions):\n\n\
         | scenario | run | node | role | viewers | stream | CPU % | sent/s |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let pct = |v: Option<f64>| v.map_or("–".into(), |c| format!("{:.1}", c * 100.0));
    let mut probes = String::from(
        "A new viewer's times from its POST, ms, median (min–max) over the probes:\n\n\
         | scenario | run | where | probes | with media | → answer | → first packet | \
         → first frame |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut lines = String::new();
    for r in results {
        let Some(c) = &r.cluster else { continue };
        // The node rows come from all three runs: name each by its run.
        let spec = r.server.strip_suffix("-relayed").unwrap_or(&r.server);
        let run_of = |role: &str| match role {
            "one node" => format!("{spec}-direct"),
            "reference" => format!("{spec}-reference"),
            _ => r.server.clone(),
        };
        for n in &c.nodes {
            let stream =
                (n.stream.as_ref()).map_or("–".into(), |s| format!("{} {}", s.kind, s.viewers));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {stream} | {} | {} |",
                r.scenario,
                run_of(n.role),
                n.name,
                n.role,
                n.viewers,
                pct(n.cpu),
                n.sent_per_s.map_or("–".into(), |s| format!("{s:.0}")),
            );
        }
        let origin = c.origin().and_then(|o| o.cpu);
        let reference = c.reference().and_then(|o| o.cpu);
        let edges: Vec<String> = c.edges().map(|e| pct(e.cpu)).collect();
        let _ = writeln!(
            lines,
            "* {}: the origin's CPU {} % against {} % for one node with {} viewers (ratio {}); \
             the edges' {} %; the origin's WHEP sessions of the stream: {}",
            r.scenario,
            pct(origin),
            pct(reference),
            c.reference().map_or(0, |n| n.viewers),
            (origin.zip(reference))
                .filter(|&(_, b)| b > 0.0)
                .map_or("–".into(), |(a, b)| format!("{:.2}", a / b)),
            edges.join(" / "),
            (c.origin().and_then(|o| o.stream.as_ref()))
                .map_or("–".into(), |s| s.viewers.to_string()),
        );
        for (what, list) in [
            ("edge, no relay yet", &c.cold),
            ("edge, relay up", &c.warm),
            ("one node", &c.direct),
        ] {
            let pick =
                |f: fn(&Probe) -> Option<f64>| -> Vec<f64> { list.iter().filter_map(f).collect() };
            let _ = writeln!(
                probes,
                "| {} | {} | {what} | {} | {} | {} | {} | {} |",
                r.scenario,
                run_of(if what == "one node" {
                    "one node"
                } else {
                    "edge"
                }),
                list.len(),
                list.iter().filter(|p| p.first_packet_ms.is_some()).count(),
                spread(&pick(|p| p.answer_ms)),
                spread(&pick(|p| p.first_packet_ms)),
                spread(&pick(|p| p.first_frame_ms)),
            );
            let each: Vec<String> = (list.iter())
                .map(|p| match (p.answer_ms, p.first_packet_ms) {
                    (Some(a), Some(f)) => format!("{a:.0}/{f:.0}"),
                    _ => p.error.clone().unwrap_or_else(|| "?".into()),
                })
                .collect();
            let _ = writeln!(
                lines,
                "* {} {what}: answer/first packet ms of each probe: {}",
                r.scenario,
                each.join(", ")
            );
        }
    }
    format!("{out}\n{probes}\n{lines}")
}
