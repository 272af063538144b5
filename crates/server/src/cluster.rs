//! The cluster's stream directory (issue 11, `--cluster redis://HOST:PORT`): which node holds
//! which stream, and each node's load, in Redis — a store sites already run, not one of ours.
//!
//! * `leanrtc:stream:{name}` → the holder's node URL, with a TTL of [`CLAIM_TTL`]. A node
//!   claims a stream when a publisher starts it (atomically: a name held by another node is
//!   a `409`), keeps the claim alive once a second while the stream lives, and drops it when
//!   the stream ends; a node that dies loses its claims within the TTL.
//! * `leanrtc:node:{url}` → the node's load and streams (JSON), with the same TTL; the set
//!   `leanrtc:nodes` lists the nodes ever seen (entries whose key expired are skipped).
//!
//! Redis down or unreachable: every node keeps serving its own streams; what needs the
//! directory (a stream held elsewhere) is a `503` saying why; the log says so once, and again
//! when Redis is back. The client reconnects by itself.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::control::{CallError, EngineHandle, StreamInfo};

/// How long a claim (and a node's load) lives without being renewed.
pub const CLAIM_TTL: Duration = Duration::from_secs(3);
/// How often claims and load are renewed.
const RENEW_INTERVAL: Duration = Duration::from_secs(1);
/// How long one Redis request may take before the directory counts as down.
const REDIS_TIMEOUT: Duration = Duration::from_millis(1000);

/// Claims `KEYS[1]` for `ARGV[1]` for `ARGV[2]` ms unless another holds it (then renews
/// nothing); returns the holder. One script, so two nodes cannot both win.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
";

/// Deletes `KEYS[1]` if `ARGV[1]` holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Why the directory could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the cluster directory (Redis) is unreachable: {0}")]
pub struct DirectoryDown(String);

/// A node as the directory shows it (`GET /api/streams?scope=cluster`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeReport {
    /// How other nodes reach its HTTP.
    pub node: String,
    /// Its sessions (publishers, viewers and relays).
    pub sessions: u64,
    /// Its viewers.
    pub viewers: u64,
    /// CPU it used over the last second, in percent of one core.
    pub cpu_percent: f64,
    /// Its streams.
    pub streams: Vec<NodeStream>,
}

/// One stream of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStream {
    pub name: String,
    /// `live`, `file` or `relay`.
    pub kind: String,
    pub viewers: u64,
}

/// This node's handle on the directory.
pub struct Directory {
    conn: ConnectionManager,
    /// This node's URL (`--node-url`).
    node: String,
    claim: redis::Script,
    release: redis::Script,
    /// Whether the last request failed (logged once per outage).
    down: AtomicBool,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn stream_key(name: &str) -> String {
    format!("leanrtc:stream:{name}")
}

fn node_key(node: &str) -> String {
    format!("leanrtc:node:{node}")
}

impl Directory {
    /// A directory in the Redis at `url` (`redis://HOST:PORT[/DB]`) for the node reached at
    /// `node`. Connects lazily: a node starts (and serves its own streams) with Redis down.
    pub fn new(url: &str, node: String) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("--cluster {url}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("--cluster {url}: {e}"))?;
        Ok(Self {
            conn,
            node,
            claim: redis::Script::new(CLAIM),
            release: redis::Script::new(RELEASE),
            down: AtomicBool::new(false),
        })
    }

    /// This node's URL.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Notes a request's outcome: the log says when Redis goes away and when it is back.
    fn noted<T>(&self, result: redis::RedisResult<T>) -> Result<T, DirectoryDown> {
        match result {
            Ok(v) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("cluster: Redis is reachable again");
                }
                Ok(v)
            }
            Err(e) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "cluster: Redis is unreachable ({e}); serving local streams only until it is back"
                    );
                }
                Err(DirectoryDown(e.to_string()))
            }
        }
    }

    async fn timed<T>(
        &self,
        request: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, DirectoryDown> {
        let result = match tokio::time::timeout(REDIS_TIMEOUT, request).await {
            Ok(r) => r,
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no answer in time",
            ))),
        };
        self.noted(result)
    }

    /// Claims `stream` for this node; the node that holds it (this one if the claim won).
    pub async fn claim(&self, stream: &str) -> Result<String, DirectoryDown> {
        let mut conn = self.conn.clone();
        let ttl = CLAIM_TTL.as_millis() as u64;
        let mut invocation = self.claim.key(stream_key(stream));
        invocation.arg(&self.node).arg(ttl);
        self.timed(invocation.invoke_async(&mut conn)).await
    }

    /// Drops this node's claim of `stream`.
    pub async fn release(&self, stream: &str) -> Result<(), DirectoryDown> {
        let mut conn = self.conn.clone();
        let mut invocation = self.release.key(stream_key(stream));
        invocation.arg(&self.node);
        self.timed(invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(drop)
    }

    /// The node holding `stream`, if any.
    pub async fn holder(&self, stream: &str) -> Result<Option<String>, DirectoryDown> {
        let mut conn = self.conn.clone();
        let key = stream_key(stream);
        self.timed(redis::cmd("GET").arg(key).query_async(&mut conn))
            .await
    }

    /// Writes this node's report.
    async fn report(&self, report: &NodeReport) -> Result<(), DirectoryDown> {
        let Ok(json) = serde_json::to_string(report) else {
            return Ok(());
        };
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(node_key(&self.node))
            .arg(json)
            .arg("PX")
            .arg(CLAIM_TTL.as_millis() as u64)
            .ignore()
            .cmd("SADD")
            .arg("leanrtc:nodes")
            .arg(&self.node)
            .ignore();
        self.timed(pipe.query_async::<()>(&mut conn)).await
    }

    /// Every live node's report.
    pub async fn nodes(&self) -> Result<Vec<NodeReport>, DirectoryDown> {
        let mut conn = self.conn.clone();
        let nodes: Vec<String> = self
            .timed(
                redis::cmd("SMEMBERS")
                    .arg("leanrtc:nodes")
                    .query_async(&mut conn),
            )
            .await?;
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = nodes.iter().map(|n| node_key(n)).collect();
        let values: Vec<Option<String>> = self
            .timed(redis::cmd("MGET").arg(keys).query_async(&mut conn))
            .await?;
        let mut reports: Vec<NodeReport> = values
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        reports.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(reports)
    }

    /// Keeps this node's claims and report current, once a second, until the engine stops:
    /// every stream published or played here is claimed (a file stream held elsewhere stays
    /// served here, unclaimed), claims of streams that ended are dropped.
    pub async fn keep(self: Arc<Self>, engine: EngineHandle) {
        let mut interval = tokio::time::interval(RENEW_INTERVAL);
        let mut claimed = BTreeSet::new();
        let mut cpu = CpuMeter::default();
        loop {
            interval.tick().await;
            let streams = match engine.streams().await {
                Ok(s) => s,
                Err(CallError::Gone) => break,
                Err(CallError::Busy) => continue,
            };
            let ours: BTreeSet<String> = streams
                .iter()
                .filter(|s| s.kind != "relay")
                .map(|s| s.name.clone())
                .collect();
            for name in &ours {
                match self.claim(name).await {
                    Ok(holder) if holder == self.node => {
                        claimed.insert(name.clone());
                    }
                    Ok(_) => {
                        claimed.remove(name);
                    }
                    Err(_) => break,
                }
            }
            let gone: Vec<String> = claimed.difference(&ours).cloned().collect();
            for name in gone {
                if self.release(&name).await.is_ok() {
                    claimed.remove(&name);
                }
            }
            let _ = self.report(&self.report_of(&streams, cpu.percent())).await;
        }
        // Shutting down: the streams end here; other nodes must not look for them.
        for name in claimed {
            let _ = self.release(&name).await;
        }
    }

    fn report_of(&self, streams: &[StreamInfo], cpu_percent: f64) -> NodeReport {
        let viewers: u64 = streams.iter().map(|s| s.viewers as u64).sum();
        let sources = streams.iter().filter(|s| s.kind != "file").count() as u64;
        NodeReport {
            node: self.node.clone(),
            sessions: viewers + sources,
            viewers,
            cpu_percent,
            streams: streams
                .iter()
                .map(|s| NodeStream {
                    name: s.name.clone(),
                    kind: s.kind.to_owned(),
                    viewers: s.viewers as u64,
                })
                .collect(),
        }
    }
}

/// This process's CPU use between two calls, from /proc/self/stat.
#[derive(Debug, Default)]
struct CpuMeter {
    last: Option<(Instant, Duration)>,
}

impl CpuMeter {
    fn percent(&mut self) -> f64 {
        let Some(used) = process_cpu_time() else {
            return 0.0;
        };
        let now = Instant::now();
        let percent = match self.last {
            Some((at, before)) => {
                let wall = now.saturating_duration_since(at).as_secs_f64();
                let cpu = used.saturating_sub(before).as_secs_f64();
                if wall > 0.0 { 100.0 * cpu / wall } else { 0.0 }
            }
            None => 0.0,
        };
        self.last = Some((now, used));
        (percent * 10.0).round() / 10.0
    }
}

/// User plus system CPU time of this process (all threads): fields 14 and 15 of
/// /proc/self/stat, in clock ticks of 1/100 s (USER_HZ, 100 on every Linux ABI we run on).
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it follow its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time() {
        let start = process_cpu_time().expect("/proc/self/stat");
        let mut x = 0u64;
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(process_cpu_time().expect("again") >= start);
    }
}
