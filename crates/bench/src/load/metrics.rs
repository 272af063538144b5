//! What the load generator reads from a server's `GET /metrics` (the Prometheus text format,
//! version 0.0.4): the datagrams its media port sent, and — when the server is sharded
//! (issue 16) — each media thread's sessions, datagrams and busy time, so the report can
//! show how evenly the threads share the load.
//!
//! The text is our own servers' output, not a peer's, but it is still parsed without
//! trusting it: a line that does not look like `name{labels} value` is skipped.

/// Per-shard series, named as leanrtc names them (`{shard="K"}` labels).
const SHARD_SESSIONS: &str = "leanrtc_shard_sessions";
const SHARD_SENT: &str = "leanrtc_shard_datagrams_sent_total";
const SHARD_RECEIVED: &str = "leanrtc_shard_datagrams_received_total";
const SHARD_BUSY: &str = "leanrtc_shard_busy_seconds_total";
/// The process-wide counter both servers export (`leanrtc_…` or `str0m_sfu_…`).
const SENT_SUFFIX: &str = "udp_datagrams_sent_total";
/// leanrtc's frames queued to ICE-TCP connections (issue 13): sent, for a TCP viewer.
const TCP_SENT: &str = "leanrtc_tcp_frames_sent_total";

/// One media thread's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shard {
    /// Its label (`shard="K"`).
    pub id: String,
    /// Sessions it owns (a gauge).
    pub sessions: Option<f64>,
    /// Datagrams it sent.
    pub sent: Option<f64>,
    /// Datagrams it handled.
    pub received: Option<f64>,
    /// Seconds of wall time it spent working (not waiting in poll).
    pub busy_seconds: Option<f64>,
}

/// What one `/metrics` read says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// `*_udp_datagrams_sent_total`, plus `leanrtc_tcp_frames_sent_total` when exported
    /// (the datagrams that went out as RFC 4571 frames instead).
    pub sent: Option<u64>,
    /// Each shard, in the order the text first names it.
    pub shards: Vec<Shard>,
}

/// One sample line: its name, the value of its `shard` label if any, its value.
fn sample(line: &str) -> Option<(&str, Option<&str>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (series, rest) = match line.find('{') {
        Some(open) => {
            let close = open + line.get(open..)?.find('}')?;
            (line.get(..close + 1)?, line.get(close + 1..)?)
        }
        None => line.split_at(line.find(char::is_whitespace)?),
    };
    // A time stamp may follow the value.
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, labels)) => (name, labels.strip_suffix('}')),
        None => (series, None),
    };
    let shard = labels.and_then(|l| label(l, "shard"));
    Some((name, shard, value))
}

/// The value of label `key` in `a="1",b="2"` (values holding no escaped quotes).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then_some(())?;
        v.trim().strip_prefix('"')?.strip_suffix('"')
    })
}

/// Reads the figures the bench uses from `/metrics` text; anything else is ignored.
pub fn parse(text: &str) -> Metrics {
    let mut out = Metrics::default();
    // Counters are integers; a negative or fractional one is not ours.
    let count = |v: f64| (v >= 0.0 && v.fract() == 0.0).then_some(v as u64);
    let (mut udp, mut tcp) = (None, None);
    for (name, shard, value) in text.lines().filter_map(sample) {
        if udp.is_none() && shard.is_none() && name.ends_with(SENT_SUFFIX) {
            udp = Some(count(value));
            continue;
        }
        if tcp.is_none() && shard.is_none() && name == TCP_SENT {
            tcp = Some(count(value));
            continue;
        }
        let Some(id) = shard else { continue };
        let field: fn(&mut Shard) -> &mut Option<f64> = match name {
            SHARD_SESSIONS => |s| &mut s.sessions,
            SHARD_SENT => |s| &mut s.sent,
            SHARD_RECEIVED => |s| &mut s.received,
            SHARD_BUSY => |s| &mut s.busy_seconds,
            _ => continue,
        };
        let i = match out.shards.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                out.shards.push(Shard {
                    id: id.to_owned(),
                    ..Shard::default()
                });
                out.shards.len() - 1
            }
        };
        if let Some(s) = out.shards.get_mut(i) {
            *field(s) = Some(value);
        }
    }
    out.sent = match (udp, tcp) {
        (Some(Some(u)), None) => Some(u),
        (Some(Some(u)), Some(Some(t))) => Some(u + t),
        _ => None,
    };
    out
}

/// One shard over a window: from its counters at the start and at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardWindow {
    /// Its label.
    pub id: String,
    /// Sessions at the start and at the end of the window.
    pub sessions: (Option<f64>, Option<f64>),
    /// Datagrams sent per second over the window.
    pub sent_per_s: Option<f64>,
    /// Datagrams handled per second over the window.
    pub received_per_s: Option<f64>,
    /// Share of the window's wall time it was busy (1.0 = all of it).
    pub busy: Option<f64>,
}

/// Each shard of `last` against the same shard in `first`, over `wall` seconds. A shard
/// missing at the start (it did not exist yet) counts from zero.
pub fn window(first: &Metrics, last: &Metrics, wall: f64) -> Vec<ShardWindow> {
    let rate = |a: Option<f64>, b: Option<f64>| {
        let b = b?;
        (wall > 0.0).then(|| (b - a.unwrap_or(0.0)).max(0.0) / wall)
    };
    (last.shards.iter())
        .map(|end| {
            let start = first.shards.iter().find(|s| s.id == end.id);
            let at_start = |f: fn(&Shard) -> Option<f64>| start.and_then(f);
            ShardWindow {
                id: end.id.clone(),
                sessions: (at_start(|s| s.sessions), end.sessions),
                sent_per_s: rate(at_start(|s| s.sent), end.sent),
                received_per_s: rate(at_start(|s| s.received), end.received),
                busy: rate(at_start(|s| s.busy_seconds), end.busy_seconds),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARDED: &str = "\
# HELP leanrtc_udp_datagrams_sent_total Datagrams sent.
# TYPE leanrtc_udp_datagrams_sent_total counter
leanrtc_udp_datagrams_sent_total 1200
leanrtc_shard_sessions{shard=\"0\"} 3
leanrtc_shard_sessions{shard=\"1\"} 4
leanrtc_shard_datagrams_sent_total{shard=\"0\"} 500
leanrtc_shard_datagrams_sent_total{shard=\"1\"} 700
leanrtc_shard_datagrams_received_total{shard=\"1\",kind=\"all\"} 70 1700000000000
leanrtc_shard_busy_seconds_total{ shard = \"0\" } 0.25
leanrtc_shard_busy_seconds_total{shard=\"1\"} 1.5e-1
leanrtc_sessions 7
";

    #[test]
    fn reads_the_sent_counter_and_each_shard() {
        let m = parse(SHARDED);
        assert_eq!(m.sent, Some(1200));
        assert_eq!(m.shards.len(), 2);
        let (s0, s1) = (&m.shards[0], &m.shards[1]);
        assert_eq!(
            (s0.id.as_str(), s0.sessions, s0.sent),
            ("0", Some(3.0), Some(500.0))
        );
        assert_eq!((s0.received, s0.busy_seconds), (None, Some(0.25)));
        assert_eq!(
            (s1.id.as_str(), s1.received, s1.busy_seconds),
            ("1", Some(70.0), Some(0.15))
        );
    }

    #[test]
    fn frames_sent_over_ice_tcp_count_as_sent() {
        let text = "leanrtc_tcp_frames_sent_total 300\nleanrtc_udp_datagrams_sent_total 20\n";
        assert_eq!(parse(text).sent, Some(320));
        // Without the UDP counter, no total: the server is not one we know.
        assert_eq!(parse("leanrtc_tcp_frames_sent_total 300\n").sent, None);
        let bad = "leanrtc_udp_datagrams_sent_total 20\nleanrtc_tcp_frames_sent_total 1.5\n";
        assert_eq!(parse(bad).sent, None);
    }

    #[test]
    fn the_baseline_and_an_unsharded_server_have_no_shards() {
        let m = parse(
            "str0m_sfu_udp_datagrams_received_total 4\nstr0m_sfu_udp_datagrams_sent_total 9\n",
        );
        assert_eq!(
            m,
            Metrics {
                sent: Some(9),
                shards: Vec::new()
            }
        );
        assert_eq!(parse(""), Metrics::default());
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "leanrtc_udp_datagrams_sent_total\nleanrtc_udp_datagrams_sent_total -3\n\
                    leanrtc_shard_sessions{shard=\"0\" 5\nleanrtc_shard_sessions{shard=0} 5\n\
                    leanrtc_shard_sessions{shard=\"0\"} NaNx\n{}\n}{ 1\n\u{0}\u{ff}{\"\n\
                    leanrtc_udp_datagrams_sent_total 2.5\n";
        let m = parse(text);
        assert_eq!(m.sent, None, "{m:?}");
        assert!(m.shards.is_empty(), "{m:?}");
        // Whatever bytes come, parsing ends without a panic.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let line: String = (0..24)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b"{}\"=, 0.1e#shard_\n"
                        .get((x % 18) as usize)
                        .unwrap_or(&b'x') as char
                })
                .collect();
            let _ = parse(&line);
        }
    }

    #[test]
    fn a_window_gives_rates_and_busy_shares() {
        let first = parse(SHARDED);
        let mut last = first.clone();
        last.shards[0].sent = Some(2500.0);
        last.shards[0].busy_seconds = Some(1.25);
        last.shards[1].sessions = Some(9.0);
        last.shards.push(Shard {
            id: "2".into(),
            sent: Some(40.0),
            ..Shard::default()
        });
        let w = window(&first, &last, 2.0);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].sent_per_s, Some(1000.0));
        assert_eq!(w[0].busy, Some(0.5));
        assert_eq!(w[0].received_per_s, None);
        assert_eq!(w[1].sessions, (Some(4.0), Some(9.0)));
        assert_eq!(w[1].received_per_s, Some(0.0));
        assert_eq!((w[2].sessions, w[2].sent_per_s), ((None, None), Some(20.0)));
        assert!(window(&first, &last, 0.0).iter().all(|s| s.busy.is_none()));
    }
}
