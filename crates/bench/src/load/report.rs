//! A run's figures, the Markdown table of several runs (with a leanrtc/baseline ratio row
//! where a scenario ran against both), and the results file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::load::cluster::ClusterFigures;
use crate::load::metrics::ShardWindow;

/// The figures of one scenario against one server. Rates are per second of the window.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// The scenario's name.
    pub scenario: String,
    /// The server's name.
    pub server: String,
    /// Viewers asked for.
    pub viewers: usize,
    /// Viewers that received packets in the window.
    pub receiving: usize,
    /// The window's length, seconds.
    pub window: f64,
    /// Server CPU time over the window, in cores (1.0 = one core busy).
    pub server_cpu: Option<f64>,
    /// RTP packets all viewers received, per second.
    pub received_pps: f64,
    /// Packets the viewers received per second of server CPU time.
    pub per_cpu_viewers: Option<f64>,
    /// Datagrams the server says it sent (`/metrics`) per second of its CPU time.
    pub per_cpu_server: Option<f64>,
    /// Server RSS at the end of the window, bytes.
    pub rss: Option<u64>,
    /// Server RSS before any client, bytes.
    pub rss_idle: Option<u64>,
    /// (RSS at the end − RSS with only the publishers) / viewers, bytes.
    pub rss_per_viewer: Option<f64>,
    /// Mean over viewers of the fraction of packets lost in the window.
    pub loss_mean: f64,
    /// The worst viewer's fraction lost.
    pub loss_max: f64,
    /// Forwarding latency p50 and p99, ms (kernel receive stamp − publisher's send stamp).
    pub latency_ms: Option<(f64, f64)>,
    /// Latency samples (decrypted stamped packets).
    pub latency_samples: usize,
    /// POST → first media packet, p50 and p99, ms.
    pub connect_ms: Option<(f64, f64)>,
    /// POST → the end of the first video frame (its packet with the marker bit), p50 and
    /// p99, ms.
    pub first_frame_ms: Option<(f64, f64)>,
    /// Viewers connected (ICE + DTLS) per second, from the first POST to the last connection.
    pub handshakes_per_s: Option<f64>,
    /// Viewers receiving media per second of server CPU time spent while they joined (from
    /// the first viewer POST until all receive; forwarding to those already up included).
    pub handshakes_per_cpu_s: Option<f64>,
    /// The load generator's CPU time over the window, in cores.
    pub gen_cpu: f64,
    /// Of which the publishers' thread.
    pub gen_publisher_cpu: f64,
    /// Of which the viewers' threads.
    pub gen_viewer_cpu: f64,
    /// How long viewers' datagrams waited for their thread, p50 and p99, ms.
    pub read_delay_ms: Option<(f64, f64)>,
    /// The threads POSTing offers: their CPU time (before the window).
    pub post_cpu: Duration,
    /// Viewer POSTs that failed.
    pub post_failures: usize,
    /// The first errors.
    pub errors: Vec<String>,
    /// Load average (1, 5, 15 min) before and after.
    pub load_average: [Option<[f64; 3]>; 2],
    /// A run without media (the idle join storm): *receiving* counts viewers connected,
    /// *connect* is POST → connected, and the packet columns are empty.
    pub no_media: bool,
    /// A line of the run's own for the notes.
    pub note: Option<String>,
    /// Each media thread over the window, from the server's per-shard `/metrics` (empty:
    /// the server exports none).
    pub shards: Vec<ShardWindow>,
    /// A join storm while viewers watch (`c-storm-W+S`): how the watchers fared.
    pub storm: Option<StormFigures>,
    /// The profile's top entries over the window (`--perf`), or why there is none.
    pub profile: Option<Result<Vec<String>, String>>,
    /// The cluster scenario (issue 11): every process's share and the first-packet probes.
    pub cluster: Option<Box<ClusterFigures>>,
}

/// The watchers' side of a join storm: their forwarding latency in the window just before
/// the storm and during it (the run's `latency_ms`), and how long the storm took.
#[derive(Debug, Clone, Default)]
pub struct StormFigures {
    /// Viewers watching before the storm.
    pub watchers: usize,
    /// Viewers joining in the storm.
    pub joiners: usize,
    /// Of those, receiving media at its end.
    pub joined: usize,
    /// The watchers' latency p50 and p99 (ms) in the window before the storm.
    pub before_ms: Option<(f64, f64)>,
    /// Latency samples before and during.
    pub samples: (usize, usize),
    /// From the first joiner's POST to the last one receiving media, seconds.
    pub seconds: f64,
}

/// One table cell.
#[derive(Debug, Clone, Copy)]
enum Cell {
    One(Option<f64>, usize),
    Two(Option<(f64, f64)>, usize),
}

impl Cell {
    fn show(self) -> String {
        match self {
            Cell::One(Some(v), d) => number(v, d),
            Cell::Two(Some((a, b)), d) => format!("{} / {}", number(a, d), number(b, d)),
            _ => "–".into(),
        }
    }

    /// This cell divided by `other`'s (each half of a pair by its own).
    fn ratio(self, other: Cell) -> String {
        let r = |a: f64, b: f64| (b.abs() > 1e-12).then(|| format!("{:.2}", a / b));
        let or_dash = |s: Option<String>| s.unwrap_or_else(|| "–".into());
        match (self, other) {
            (Cell::One(Some(a), _), Cell::One(Some(b), _)) => or_dash(r(a, b)),
            (Cell::Two(Some((a1, a2)), _), Cell::Two(Some((b1, b2)), _)) => {
                format!("{} / {}", or_dash(r(a1, b1)), or_dash(r(a2, b2)))
            }
            _ => "–".into(),
        }
    }
}

/// `v` with `decimals`, thousands separated by thin spaces when large.
fn number(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && digits.len() > 4 {
            grouped.push('\u{2009}');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A column: its header and how a run fills its cell.
type Column = (&'static str, fn(&RunResult) -> Cell);

/// The table's columns after scenario and server: header and the cell of a run.
const COLUMNS: [Column; 14] = [
    ("viewers receiving", |r| {
        Cell::One(Some(r.receiving as f64), 0)
    }),
    ("server CPU %", |r| {
        Cell::One(r.server_cpu.map(|c| c * 100.0), 1)
    }),
    ("fwd pkts / CPU-s (viewers)", |r| {
        Cell::One(r.per_cpu_viewers, 0)
    }),
    ("sent / CPU-s (server)", |r| Cell::One(r.per_cpu_server, 0)),
    ("pkts/s received", |r| {
        Cell::One((!r.no_media).then_some(r.received_pps), 0)
    }),
    ("RSS MiB", |r| {
        Cell::One(r.rss.map(|b| b as f64 / 1048576.0), 1)
    }),
    ("KiB / viewer", |r| {
        Cell::One(r.rss_per_viewer.map(|b| b / 1024.0), 1)
    }),
    ("loss % mean / max", |r| {
        let loss = (r.loss_mean * 100.0, r.loss_max * 100.0);
        Cell::Two((!r.no_media).then_some(loss), 2)
    }),
    ("latency ms p50 / p99", |r| Cell::Two(r.latency_ms, 2)),
    ("connect ms p50 / p99", |r| Cell::Two(r.connect_ms, 0)),
    ("first frame ms p50 / p99", |r| {
        Cell::Two(r.first_frame_ms, 0)
    }),
    ("handshakes/s", |r| Cell::One(r.handshakes_per_s, 0)),
    ("handshakes / CPU-s", |r| {
        Cell::One(r.handshakes_per_cpu_s, 0)
    }),
    ("load gen CPU %", |r| Cell::One(Some(r.gen_cpu * 100.0), 0)),
];

/// The header cells of [`table`], in order.
pub fn column_names() -> Vec<&'static str> {
    let mut names = vec!["scenario", "server"];
    names.extend(COLUMNS.iter().map(|(h, _)| *h));
    names
}

/// The Markdown table of `results`: one row per run, and after the runs of a scenario, a
/// row of ratios for each pair `(a, b)` of `ratios` whose servers both ran it (a / b).
pub fn table(results: &[RunResult], ratios: &[(String, String)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", column_names().join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(COLUMNS.len() + 2));
    let mut scenarios: Vec<&str> = Vec::new();
    for r in results {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    for scenario in scenarios {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.scenario == scenario).collect();
        for r in &runs {
            let cells: Vec<String> = COLUMNS.iter().map(|(_, f)| f(r).show()).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                r.scenario,
                r.server,
                cells.join(" | ")
            );
        }
        let find = |name: &str| runs.iter().find(|r| r.server == name);
        for (reference, baseline) in ratios {
            let (Some(a), Some(b)) = (find(reference), find(baseline)) else {
                continue;
            };
            let cells: Vec<String> = (COLUMNS.iter())
                .skip(1)
                .map(|(_, f)| f(a).ratio(f(b)))
                .collect();
            let _ = writeln!(
                out,
                "| {scenario} | *{reference}/{baseline}* | | {} |",
                cells.join(" | ")
            );
        }
    }
    out
}

/// The per-thread balance of the runs with media: one row per shard of each run (its
/// sessions at the start and end of the window, datagrams it sent and handled per second,
/// its share of all sent, the share of the window it was busy), or one row of "–" for a
/// server that exports no per-shard metrics.
pub fn balance(results: &[RunResult]) -> String {
    let mut out = String::from(
        "| scenario | server | shard | sessions start → end | sent/s | share of sent % | \
         handled/s | busy % |\n|---|---|---|---|---|---|---|---|\n",
    );
    let dash = || "–".to_owned();
    let int = |v: Option<f64>| v.map_or_else(dash, |v| number(v, 0));
    for r in results.iter().filter(|r| !r.no_media) {
        if r.shards.is_empty() {
            let _ = writeln!(
                out,
                "| {} | {} | – | – | – | – | – | – |",
                r.scenario, r.server
            );
            continue;
        }
        let total: f64 = r.shards.iter().filter_map(|s| s.sent_per_s).sum();
        for s in &r.shards {
            let share = s
                .sent_per_s
                .filter(|_| total > 0.0)
                .map(|v| v / total * 100.0);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} → {} | {} | {} | {} | {} |",
                r.scenario,
                r.server,
                s.id,
                int(s.sessions.0),
                int(s.sessions.1),
                int(s.sent_per_s),
                share.map_or_else(dash, |v| number(v, 1)),
                int(s.received_per_s),
                s.busy.map_or_else(dash, |v| number(v * 100.0, 1)),
            );
        }
    }
    out
}

/// The join storms while viewers watch: the watchers' latency before and during each.
pub fn storms(results: &[RunResult]) -> String {
    let mut out = String::from(
        "| scenario | server | watchers' latency ms p50 / p99 before | during the storm | \
         p99 during / before | storm s | joiners receiving | joiners' connect ms p50 / p99 | \
         server CPU % during |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let Some(s) = &r.storm else { continue };
        let pair = |v: Option<(f64, f64)>| Cell::Two(v, 2).show();
        let p99 = |v: Option<(f64, f64)>| v.map(|(_, p)| p);
        let rise = Cell::One(p99(r.latency_ms), 2).ratio(Cell::One(p99(s.before_ms), 2));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {rise} | {:.2} | {}/{} | {} | {} |",
            r.scenario,
            r.server,
            pair(s.before_ms),
            pair(r.latency_ms),
            s.seconds,
            s.joined,
            s.joiners,
            Cell::Two(r.connect_ms, 0).show(),
            Cell::One(r.server_cpu.map(|c| c * 100.0), 1).show(),
        );
    }
    out
}

/// The profiles taken with `--perf`: each run's top entries as a code block.
pub fn profiles(results: &[RunResult]) -> String {
    let mut out = String::new();
    for r in results {
        let Some(profile) = &r.profile else { continue };
        let _ = writeln!(out, "{} against {}:\n", r.scenario, r.server);
        match profile {
            Ok(lines) => {
                let _ = writeln!(out, "```text\n{}\n```\n", lines.join("\n"));
            }
            Err(why) => {
                let _ = writeln!(out, "no profile: {why}\n");
            }
        }
    }
    out
}

/// Per-run details the table leaves out: where the load generator's CPU went, how late its
/// threads read, errors.
pub fn notes(results: &[RunResult]) -> String {
    let mut out = String::new();
    for r in results {
        let delay = (r.read_delay_ms).map_or("–".into(), |(a, b)| format!("{a:.2} / {b:.2} ms"));
        let load = |l: Option<[f64; 3]>| l.map_or("?".into(), |l| format!("{:.2}", l[0]));
        let rss_idle = (r.rss_idle).map_or("?".into(), |b| format!("{:.1}", b as f64 / 1048576.0));
        let (l0, l1) = (load(r.load_average[0]), load(r.load_average[1]));
        if r.no_media {
            let _ = write!(
                out,
                "* {} vs {}: the POSTing threads took {:.2} CPU-s; server RSS {rss_idle} MiB \
                 idle; load average {l0} → {l1}",
                r.scenario,
                r.server,
                r.post_cpu.as_secs_f64(),
            );
        } else {
            let _ = write!(
                out,
                "* {} vs {}: window {:.1} s; load generator {:.0} % of a core (publishers' \
                 thread {:.0} %, viewers' threads {:.0} %; POSTing took {:.2} CPU-s before the \
                 window); viewers' datagrams waited for their thread p50 / p99 {delay}; {} \
                 latency samples; server RSS {rss_idle} MiB idle; load average {l0} → {l1}",
                r.scenario,
                r.server,
                r.window,
                r.gen_cpu * 100.0,
                r.gen_publisher_cpu * 100.0,
                r.gen_viewer_cpu * 100.0,
                r.post_cpu.as_secs_f64(),
                r.latency_samples,
            );
        }
        if let Some(note) = &r.note {
            let _ = write!(out, "; {note}");
        }
        if r.post_failures > 0 {
            let _ = write!(
                out,
                "; **{} viewer POSTs failed**: {}",
                r.post_failures,
                r.errors.join("; ")
            );
        }
        out.push('\n');
    }
    out
}

/// Now (UTC) as `YYYY-MM-DD HH:MM:SS`.
pub fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (date, t) = (civil_date(secs / 86_400), secs % 86_400);
    format!("{date} {:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

/// Days since 1970-01-01 as YYYY-MM-DD (H. Hinnant's civil-from-days algorithm).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Writes `text` to `dir/{UTC date}T{time}Z[-{name}].md` (creating `dir`), returns the path.
pub fn write_results(dir: &Path, name: Option<&str>, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stamp = now_utc().replace(' ', "T").replace(':', "") + "Z";
    let file = match name {
        Some(n) => format!("{stamp}-{n}.md"),
        None => format!("{stamp}.md"),
    };
    let path = dir.join(file);
    std::fs::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(server: &str, cpu: f64) -> RunResult {
        RunResult {
            scenario: "a-1".into(),
            server: server.into(),
            viewers: 1,
            receiving: 1,
            server_cpu: Some(cpu),
            per_cpu_viewers: Some(1000.0 / cpu),
            latency_ms: Some((0.1, 0.4)),
            ..RunResult::default()
        }
    }

    #[test]
    fn the_table_has_a_ratio_row() {
        let t = table(
            &[run("x", 0.25), run("y", 0.5)],
            &[("x".into(), "y".into())],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].matches('|').count(), COLUMNS.len() + 3);
        assert!(lines[2].contains("| 25.0 |"), "{t}");
        assert!(
            lines[2].contains("| 4\u{2009}000 |") || lines[2].contains("| 4000 |"),
            "{t}"
        );
        assert!(
            lines[4].contains("*x/y*") && lines[4].contains("| 0.50 |"),
            "{t}"
        );
        assert!(lines[4].contains("| 1.00 / 1.00 |"), "{t}");
    }

    #[test]
    fn a_ratio_row_for_each_pair_that_ran() {
        let results = [
            run("t1", 0.5),
            run("t2", 0.25),
            run("s", 1.0),
            run("sb", 0.5),
        ];
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let t = table(
            &results,
            &pairs(&[("t2", "t1"), ("t1", "s"), ("t1", "sb"), ("t1", "absent")]),
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2 + 4 + 3, "{t}");
        assert!(
            lines[6].contains("*t2/t1*") && lines[6].contains("| 0.50 |"),
            "{t}"
        );
        assert!(
            lines[7].contains("*t1/s*") && lines[7].contains("| 0.50 |"),
            "{t}"
        );
        assert!(
            lines[8].contains("*t1/sb*") && lines[8].contains("| 1.00 |"),
            "{t}"
        );
        // Packets per CPU-second: twice as many for half the CPU.
        assert!(lines[6].contains("| 2.00 |"), "{t}");
    }

    #[test]
    fn balance_rows_per_shard_or_a_dash() {
        let mut sharded = run("leanrtc-t2", 1.0);
        sharded.shards = vec![
            ShardWindow {
                id: "0".into(),
                sessions: (Some(100.0), Some(101.0)),
                sent_per_s: Some(3000.0),
                received_per_s: Some(10.0),
                busy: Some(0.25),
            },
            ShardWindow {
                id: "1".into(),
                sessions: (None, Some(99.0)),
                sent_per_s: Some(1000.0),
                ..ShardWindow::default()
            },
        ];
        let mut idle = run("leanrtc", 1.0);
        idle.no_media = true;
        let t = balance(&[sharded, run("leanrtc-t1", 1.0), idle]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2 + 3, "{t}");
        assert_eq!(
            lines[2],
            "| a-1 | leanrtc-t2 | 0 | 100 → 101 | 3000 | 75.0 | 10 | 25.0 |"
        );
        assert_eq!(
            lines[3],
            "| a-1 | leanrtc-t2 | 1 | – → 99 | 1000 | 25.0 | – | – |"
        );
        assert_eq!(lines[4], "| a-1 | leanrtc-t1 | – | – | – | – | – | – |");
    }

    #[test]
    fn storm_rows_compare_during_with_before() {
        let mut r = run("leanrtc", 0.5);
        r.latency_ms = Some((1.0, 6.0));
        r.connect_ms = Some((40.0, 90.0));
        r.storm = Some(StormFigures {
            watchers: 5,
            joiners: 4,
            joined: 4,
            before_ms: Some((0.5, 2.0)),
            samples: (10, 10),
            seconds: 0.75,
        });
        let t = storms(&[r, run("other", 1.0)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert_eq!(
            lines[2],
            "| a-1 | leanrtc | 0.50 / 2.00 | 1.00 / 6.00 | 3.00 | 0.75 | 4/4 | 40 / 90 | 50.0 |"
        );
    }

    #[test]
    fn profiles_show_entries_or_why_not() {
        let mut a = run("a", 1.0);
        a.profile = Some(Ok(vec!["  12.00%  leanrtc  [.] seal".into()]));
        let mut b = run("b", 1.0);
        b.profile = Some(Err("perf: not found".into()));
        let t = profiles(&[a, b, run("c", 1.0)]);
        assert!(
            t.contains("a-1 against a:\n\n```text\n  12.00%  leanrtc  [.] seal\n```"),
            "{t}"
        );
        assert!(
            t.contains("a-1 against b:\n\nno profile: perf: not found"),
            "{t}"
        );
        assert!(!t.contains("against c"), "{t}");
    }

    #[test]
    fn numbers_and_dates() {
        assert_eq!(number(1234567.0, 0), "1\u{2009}234\u{2009}567");
        assert_eq!(number(1234.5, 1), "1234.5");
        assert_eq!(number(-0.5, 2), "-0.50");
        assert_eq!(now_utc().len(), 19);
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_782), "2024-02-29");
    }
}
