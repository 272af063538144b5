//! The load generator behind `leanrtc-bench` (issue 6): scenarios of WHIP publishers and
//! WHEP viewers over loopback against leanrtc and the `str0m-sfu` baseline, measured from
//! `/proc` (server CPU time and RSS), `/metrics` and the clients' own counts, reported as a
//! Markdown table.
//!
//! * [`scenario`]: what each scenario publishes and how many watch.
//! * [`server`]: the server as a child process (or one running already).
//! * [`clients`] / [`post`]: the client threads and the POSTing threads.
//! * [`run`]: one scenario against one server ([`storm`]: the join storm without media;
//!   [`watched`]: the join storm while viewers watch, issue 16); [`report`]: the tables.
//! * [`cluster`]: the cluster scenario (issue 11): an origin and edges that relay from it,
//!   against one node.
//! * [`metrics`]: the server's `/metrics` (per-shard balance); [`perf`]: its profile.

pub mod clients;
pub mod cluster;
pub mod metrics;
pub mod perf;
pub mod post;
pub mod procfs;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server;
pub mod stats;
pub mod storm;
pub mod watched;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad arguments or a missing file.
    #[error("{0}")]
    Usage(String),
    /// The server did not start, or died.
    #[error("server: {0}")]
    Server(String),
    /// Clients could not be set up.
    #[error("clients: {0}")]
    Client(String),
    /// A client of ours failed.
    #[error(transparent)]
    Setup(#[from] crate::ClientError),
    /// The operating system refused something.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Our DTLS certificate could not be made.
    #[error("DTLS certificate: {0}")]
    Certificate(#[from] rtc::dtls::DtlsError),
}
