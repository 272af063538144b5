//! `leanrtc-bench`: loads leanrtc and the str0m baseline (`str0m-sfu`) in turn with the same
//! WHIP publishers and WHEP viewers over loopback, and prints (and writes to
//! `bench/results/{UTC date-time}.md`) a Markdown table with the ratio leanrtc/baseline.
//!
//! ```text
//! cargo build --release -p leanrtc -p bench
//! target/release/leanrtc-bench                      # every scenario, both servers
//! target/release/leanrtc-bench --scenario a --viewers 100,500 --server leanrtc
//! target/release/leanrtc-bench --scenario b,c --duration 5
//! target/release/leanrtc-bench --scenario a-1000,c-storm --threads 1,2 \
//!     --server leanrtc,str0m,str0m-batched --perf
//! target/release/leanrtc-bench --scenario a-100 --server leanrtc --viewer-transport udp,tcp
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bench::load::report::{self, RunResult};
use bench::load::run::{self, Options, ViewerTransport};
use bench::load::scenario::Scenario;
use bench::load::server::{Server, ServerKind, ServerSpec, find_binary};
use bench::load::{BenchError, cluster, procfs};
use clap::Parser;

/// Load leanrtc and a str0m-based SFU with the same WHIP/WHEP clients; compare.
#[derive(Debug, Parser)]
#[command(name = "leanrtc-bench", version, about)]
struct Args {
    /// Scenarios, comma-separated: all, a (one per --viewers), a-N, b, c, c-idle (500
    /// viewers joining a silent stream as fast as they can), c-idle-N, c-storm (500 viewers
    /// join as fast as they can while 500 watch: the watchers' latency before and during),
    /// c-storm-W+S, d, custom-MxN (M publishers with N viewers each), cluster (issue 11:
    /// 1000 viewers over two edges relaying from an origin, against one node with 1000;
    /// leanrtc only), cluster-N.
    #[arg(long, visible_alias = "scenarios", default_value = "all")]
    scenario: String,
    /// Viewer counts of scenario (a), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,500,1000")]
    viewers: Vec<usize>,
    /// Servers to load in turn, comma-separated: leanrtc, str0m (the str0m-sfu baseline,
    /// one datagram per syscall), str0m-batched (str0m-sfu --batched: recvmmsg and UDP GSO
    /// through quinn-udp), both (leanrtc and str0m) or all (the three).
    #[arg(
        long,
        visible_alias = "servers",
        default_value = "both",
        value_delimiter = ','
    )]
    server: Vec<String>,
    /// leanrtc's media thread counts, comma-separated (e.g. 1,2): leanrtc runs once with
    /// each (env LEANRTC_THREADS), named leanrtc-tN, and the report gives each figure also
    /// as a ratio against the one-thread run, with each thread's share of the load.
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// What carries the viewers' sessions, comma-separated: udp, tcp (ICE-TCP to leanrtc's
    /// passive candidate, RFC 4571 framing). With a list, each server runs once with each,
    /// named SERVER-udp and SERVER-tcp, and the report adds the ratio tcp/udp.
    #[arg(long, value_delimiter = ',')]
    viewer_transport: Vec<String>,
    /// Profile the server over each measured window (`perf record -g`; the top entries of
    /// `perf report --no-children` go to the report). Costs the server a little CPU.
    #[arg(long)]
    perf: bool,
    /// The leanrtc binary (default: next to this one, else target/release/leanrtc).
    #[arg(long)]
    leanrtc: Option<PathBuf>,
    /// The str0m-sfu binary (default: next to this one, else target/release/str0m-sfu).
    #[arg(long, visible_alias = "str0m-sfu")]
    str0m: Option<PathBuf>,
    /// Load a server that runs already at this HTTP address (only one server kind then).
    #[arg(long)]
    attach: Option<SocketAddr>,
    /// The attached server's process id, for its CPU time and memory.
    #[arg(long, requires = "attach")]
    attach_pid: Option<u32>,
    /// Synthetic publishers' bitrate, bits/s.
    #[arg(long, default_value_t = 1_500_000)]
    bitrate: u32,
    /// Synthetic publishers' frame rate.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Seconds from every viewer receiving to the measurement window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds publishers send before the memory baseline for viewers is taken (the
    /// server's packet histories fill meanwhile).
    #[arg(long, default_value_t = 8.0)]
    settle: f64,
    /// Seconds measured.
    #[arg(long, visible_alias = "measure", default_value_t = 10.0)]
    duration: f64,
    /// Threads driving viewers (publishers always have their own).
    #[arg(long, default_value_t = 1)]
    viewer_threads: usize,
    /// Viewers decrypt one RTP packet in this many (for latency).
    #[arg(long, default_value_t = 7)]
    decrypt_one_in: u32,
    /// Seconds all viewers may take to receive media.
    #[arg(long, default_value_t = 30.0)]
    connect_timeout: f64,
    /// Where the results file goes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/results"))]
    out: PathBuf,
    /// Added to the results file's name (after the UTC date-time).
    #[arg(long)]
    name: Option<String>,
    /// Print only; write no results file.
    #[arg(long)]
    no_write: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = bench(&args) {
        eprintln!("leanrtc-bench: {e}");
        std::process::exit(1);
    }
}

fn specs(args: &Args) -> Result<Vec<ServerSpec>, BenchError> {
    let specs = ServerSpec::parse_list(&args.server, &args.threads)?;
    if args.attach.is_some() && specs.len() != 1 {
        return Err(BenchError::Usage(
            "--attach loads one server: name it with --server (and no --threads list)".into(),
        ));
    }
    Ok(specs)
}

fn binary(args: &Args, kind: ServerKind) -> Result<PathBuf, BenchError> {
    let given = match kind {
        ServerKind::Leanrtc => args.leanrtc.clone(),
        ServerKind::Str0m => args.str0m.clone(),
    };
    given.or_else(|| find_binary(kind)).ok_or_else(|| {
        BenchError::Usage(format!(
            "no {} binary: build it (cargo build --release -p leanrtc -p bench) or pass --{}",
            kind.name(),
            match kind {
                ServerKind::Leanrtc => "leanrtc",
                ServerKind::Str0m => "str0m",
            }
        ))
    })
}

/// The viewer transports asked for (none: UDP, and names without a suffix).
fn transports(args: &Args, specs: &[ServerSpec]) -> Result<Vec<ViewerTransport>, BenchError> {
    let list = (args.viewer_transport.iter())
        .map(|t| ViewerTransport::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    if list.contains(&ViewerTransport::Tcp) && specs.iter().any(|s| s.kind != ServerKind::Leanrtc) {
        return Err(BenchError::Usage(
            "--viewer-transport tcp needs ICE-TCP, which only leanrtc serves".into(),
        ));
    }
    Ok(list)
}

/// A run's name: the server's, with the viewers' transport when a list was given.
fn run_name(spec: &ServerSpec, transport: Option<ViewerTransport>) -> String {
    match transport {
        Some(t) => format!("{}-{}", spec.name, t.name()),
        None => spec.name.clone(),
    }
}

/// The ratio rows: the servers' pairs within each transport, and tcp/udp for each server.
fn ratio_pairs(specs: &[ServerSpec], transports: &[ViewerTransport]) -> Vec<(String, String)> {
    let pairs = ServerSpec::ratio_pairs(specs);
    if transports.is_empty() {
        return pairs;
    }
    let mut out = Vec::new();
    if transports.contains(&ViewerTransport::Tcp) && transports.contains(&ViewerTransport::Udp) {
        out.extend(specs.iter().map(|s| {
            (
                run_name(s, Some(ViewerTransport::Tcp)),
                run_name(s, Some(ViewerTransport::Udp)),
            )
        }));
    }
    for t in transports {
        let named = |n: &str| format!("{n}-{}", t.name());
        out.extend(pairs.iter().map(|(a, b)| (named(a), named(b))));
    }
    out
}

fn bench(args: &Args) -> Result<(), BenchError> {
    let scenarios = Scenario::parse_list(&args.scenario, &args.viewers)?;
    let specs = specs(args)?;
    let transports = transports(args, &specs)?;
    // No list: one run per server, over UDP, named as before.
    let runs: Vec<Option<ViewerTransport>> = if transports.is_empty() {
        vec![None]
    } else {
        transports.iter().copied().map(Some).collect()
    };
    let binaries = (specs.iter())
        .map(|s| {
            if args.attach.is_some() {
                Ok(PathBuf::new())
            } else {
                binary(args, s.kind)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nofile = procfs::raise_nofile()?;
    let needed = (scenarios.iter())
        .map(|s| s.viewers() + s.joiners)
        .max()
        .unwrap_or(0) as u64
        + 200;
    if nofile < needed {
        return Err(BenchError::Usage(format!(
            "the open-file limit is {nofile}, {needed} are needed (ulimit -Hn)"
        )));
    }
    let opts = Options {
        bitrate: args.bitrate,
        fps: args.fps,
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.duration),
        publisher_settle: Duration::from_secs_f64(args.settle),
        viewer_threads: args.viewer_threads,
        decrypt_one_in: args.decrypt_one_in,
        connect_timeout: Duration::from_secs_f64(args.connect_timeout),
        perf: args.perf,
        ..Options::default()
    };
    let load_at_start = procfs::load_average();
    let mut results: Vec<RunResult> = Vec::new();
    for scenario in &scenarios {
        if scenario.edges > 0 {
            results.extend(cluster_runs(args, scenario, &specs, &binaries, &opts)?);
            continue;
        }
        for (spec, path) in specs.iter().zip(&binaries) {
            for &transport in &runs {
                let name = run_name(spec, transport);
                eprintln!("leanrtc-bench: {} against {name} …", scenario.name);
                let server = match args.attach {
                    Some(http) => Server::attach(spec.kind, http, args.attach_pid),
                    None => Server::start_spec(spec, path)?,
                };
                let opts = Options {
                    viewer_transport: transport.unwrap_or_default(),
                    ..opts.clone()
                };
                let mut result = run::run(scenario, server, &opts)?;
                result.server = name.clone();
                eprintln!(
                    "leanrtc-bench: {name} receiving {}/{}, server CPU {}",
                    result.receiving,
                    result.viewers,
                    result
                        .server_cpu
                        .map_or("?".into(), |c| format!("{:.1} %", c * 100.0))
                );
                results.push(result);
                // Let sockets and the scheduler settle between runs.
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    let mut pairs = ratio_pairs(&specs, &transports);
    pairs.extend((specs.iter()).map(|s| {
        let (direct, relayed) = cluster::row_names(s);
        (relayed, direct)
    }));
    let mut table = report::table(&results, &pairs);
    if results.iter().any(|r| r.cluster.is_some()) {
        table += &format!("\n{}", cluster::tables(&results));
    }
    if !args.threads.is_empty() || results.iter().any(|r| !r.shards.is_empty()) {
        table += &format!(
            "\nPer-thread balance over each window (the server's per-shard `/metrics`; \
             \"–\": it exports none):\n\n{}",
            report::balance(&results)
        );
    }
    if results.iter().any(|r| r.storm.is_some()) {
        table += &format!(
            "\nJoin storms while viewers watch:\n\n{}",
            report::storms(&results)
        );
    }
    let mut notes = report::notes(&results);
    if results.iter().any(|r| r.profile.is_some()) {
        notes += &format!(
            "\nThe server's profile over each window (`perf record -g -F 999`, then \
             `perf report --no-children`: self time per function, top {}):\n\n{}",
            bench::load::perf::TOP,
            report::profiles(&results)
        );
    }
    println!("{table}\n{notes}");
    if !args.no_write {
        let names: Vec<String> = (specs.iter())
            .flat_map(|s| runs.iter().map(move |&t| run_name(s, t)))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let text = document(&names, &opts, load_at_start, &table, &notes);
        let path = report::write_results(&args.out, args.name.as_deref(), &text)?;
        eprintln!("leanrtc-bench: wrote {}", path.display());
    }
    Ok(())
}

/// The cluster scenario against each leanrtc of `specs` (it needs `--origin`, which the
/// baseline lacks, and starts its own processes).
fn cluster_runs(
    args: &Args,
    scenario: &Scenario,
    specs: &[ServerSpec],
    binaries: &[PathBuf],
    opts: &Options,
) -> Result<Vec<RunResult>, BenchError> {
    if args.attach.is_some() {
        return Err(BenchError::Usage(format!(
            "{} starts its own origin and edges: it cannot --attach",
            scenario.name
        )));
    }
    let mut out = Vec::new();
    for (spec, path) in specs.iter().zip(binaries) {
        if spec.kind != ServerKind::Leanrtc {
            eprintln!(
                "leanrtc-bench: {} needs relays (--origin): skipping {}",
                scenario.name, spec.name
            );
            continue;
        }
        eprintln!(
            "leanrtc-bench: {} with {}: one node, then an origin and {} edges, then one node \
             with {} viewers …",
            scenario.name, spec.name, scenario.edges, scenario.edges
        );
        let rows = cluster::run(scenario, spec, path, opts)?;
        for r in &rows {
            eprintln!(
                "leanrtc-bench: {} receiving {}/{}, CPU of all its processes {}",
                r.server,
                r.receiving,
                r.viewers,
                r.server_cpu
                    .map_or("?".into(), |c| format!("{:.1} %", c * 100.0))
            );
        }
        out.extend(rows);
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(out)
}

fn document(
    servers: &[&str],
    opts: &Options,
    load: Option<[f64; 3]>,
    table: &str,
    notes: &str,
) -> String {
    let command: Vec<String> = std::env::args().collect();
    let load = load.map_or("?".into(), |l| {
        format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
    });
    format!(
        "# leanrtc-bench, {date} UTC\n\n\
         * Machine: {machine}; load average before the first run: {load}\n\
         * Command: `{command}`\n\
         * Load: synthetic VP8-shaped RTP at {bitrate} bit/s, {fps} fps (≤ 1200-byte \
         payloads, a send stamp in each); warm-up {warmup:?}, window {measure:?}; viewers on \
         {threads} threads decrypting one packet in {decrypt}, publishers on their own thread\n\
         * Servers: {servers}\n\n\
         {table}\n\
         Columns: *viewers receiving*: viewers that got packets in the window. *server CPU*: \
         utime+stime of the server process over the window (100 % = one core). *fwd pkts / \
         CPU-s (viewers)*: RTP packets all viewers received per second of server CPU time; \
         *sent / CPU-s (server)*: the datagrams the server's own `/metrics` counter says it \
         sent, per CPU-second. *KiB / viewer*: (RSS at the end − RSS with only the publishers, \
         taken after they sent for {settle:?}) / viewers. *loss*: per viewer, 1 − distinct sequence numbers received / expected over \
         the window. *latency*: the kernel's receive time at the viewer's socket \
         (SO_TIMESTAMPNS) − the publisher's send stamp, from the packets decrypted; a frame's packets leave the publisher together, so this \
         includes the server's fan-out of the whole frame to every viewer. *connect*: \
         POST → first media packet. *first frame*: POST → the first video packet with the \
         marker bit (the end of the first frame, a keyframe from the server's cache). \
         *SERVER-udp / SERVER-tcp* (`--viewer-transport`): the viewers' sessions over UDP, \
         or over ICE-TCP (each viewer's own TCP connection to the server's passive candidate, \
         every datagram an RFC 4571 frame, from its own 127.1.x.y address); TCP has no \
         kernel receive stamps, so over TCP *latency*, *connect* and *first frame* end when \
         the viewers' thread read the bytes (the read delay of UDP runs, in the notes, shows \
         what that adds), and the *tcp/udp* row divides the TCP run's figures by the UDP \
         run's. *handshakes/s*: viewers connected (ICE + DTLS) / (last \
         connection − first POST); in a join storm it cannot exceed the POST rate (500 in 1 s). \
         *handshakes / CPU-s*: viewers receiving / the server's CPU time from the first viewer \
         POST until all receive (what the server could do with a whole core). *load gen CPU*: this process over the window. \
         *c-idle-N*: N viewers POSTed as fast as 32 threads can to a stream whose publisher is \
         connected but sends nothing, each done when its ICE + DTLS are up: *viewers \
         receiving* counts those connected, *connect* is POST → connected, *server CPU* and \
         *load gen CPU* are over the storm, and *handshakes / CPU-s* divides the viewers \
         connected by the server's CPU time from the first POST to the last connection, read to \
         the nanosecond from the process's CPU clock (all threads, ended ones included), so it \
         is the cost of a connection alone; *KiB / viewer* is then per idle viewer. \
         *c-storm-W+S*: W viewers watch, then S more are POSTed as fast as 32 threads can; \
         the row is the storm, from the first POST until every joiner receives media: \
         *latency* and *loss* are the watchers' (the joiners are driven by threads of their \
         own), *connect* and *handshakes/s* the joiners', and its own table sets the \
         watchers' latency during the storm against theirs in the window just before it. \
         The ratio rows divide each figure of one server by another's (CPU, memory, loss, \
         latency: lower is better; packets per CPU-second, handshakes/s: higher is better): \
         leanrtc / str0m-sfu; with `--threads`, leanrtc-tN (leanrtc run with \
         LEANRTC_THREADS=N media threads) / leanrtc-t1, and leanrtc-t1 / each baseline. \
         *str0m-sfu-batched* is the baseline with batched UDP I/O (quinn-udp: recvmmsg, and \
         a viewer's datagrams of one size in one GSO send), as leanrtc batches its own. The \
         server and this load generator share the machine's cores: with several server \
         threads, *load gen CPU* shows what the clients took from them. *Per-thread \
         balance*: each shard's sessions at the start and the end of the window, datagrams \
         it sent and handled per second, its share of all sent, and the share of the \
         window's wall time it spent working rather than waiting in poll.\n\n\
         {notes}",
        date = report::now_utc(),
        command = command.join(" "),
        machine = procfs::machine(),
        bitrate = opts.bitrate,
        fps = opts.fps,
        warmup = opts.warmup,
        measure = opts.measure,
        threads = opts.viewer_threads,
        settle = opts.publisher_settle,
        decrypt = opts.decrypt_one_in,
        servers = servers.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::parse_from(std::iter::once("leanrtc-bench").chain(list.iter().copied()))
    }

    #[test]
    fn transports_name_the_runs_and_pair_tcp_with_udp() {
        let a = args(&[
            "--server",
            "leanrtc",
            "--threads",
            "1,2",
            "--viewer-transport",
            "udp,tcp",
        ]);
        let list = specs(&a).unwrap();
        let t = transports(&a, &list).unwrap();
        assert_eq!(t, [ViewerTransport::Udp, ViewerTransport::Tcp]);
        let pairs = ratio_pairs(&list, &t);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (&**a, &**b)).collect();
        assert_eq!(
            pairs,
            [
                ("leanrtc-t1-tcp", "leanrtc-t1-udp"),
                ("leanrtc-t2-tcp", "leanrtc-t2-udp"),
                ("leanrtc-t2-udp", "leanrtc-t1-udp"),
                ("leanrtc-t2-tcp", "leanrtc-t1-tcp"),
            ]
        );
        // Without the option, runs and ratios are named as before.
        let a = args(&["--server", "leanrtc,str0m"]);
        let list = specs(&a).unwrap();
        assert!(transports(&a, &list).unwrap().is_empty());
        assert_eq!(ratio_pairs(&list, &[]), ServerSpec::ratio_pairs(&list));
        assert_eq!(run_name(&list[0], None), "leanrtc");
    }

    #[test]
    fn tcp_viewers_need_leanrtc() {
        let a = args(&["--server", "both", "--viewer-transport", "tcp"]);
        assert!(transports(&a, &specs(&a).unwrap()).is_err());
        let a = args(&["--server", "leanrtc", "--viewer-transport", "udp,quic"]);
        assert!(transports(&a, &specs(&a).unwrap()).is_err());
    }
}
