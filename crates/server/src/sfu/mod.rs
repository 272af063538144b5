//! The SFU core, sans-IO: no socket, no thread, no clock. A [`Shard`] is one media thread's
//! whole state; it takes datagrams, HTTP commands, other shards' messages and the time as
//! inputs, and its outputs (datagrams through its [`Outbox`], messages for other shards,
//! its next deadline) are polled by the shell in `crate::engine`. See docs/DESIGN.md, "The
//! engine, sharded".

mod budget;
mod commands;
mod dispatch;
mod exchange;
mod hint;
mod media;
pub mod message;
mod metrics;
pub mod outbox;
mod pacing;
mod pending;
mod publish;
mod ratelimit;
mod relay;
mod routes;
mod session;
mod shard;
mod shutdown;
#[cfg(test)]
mod sim;
mod simulcast;
pub mod tcp_route;

#[cfg(test)]
pub use self::metrics::Metric;
pub use self::metrics::{MetricsPart, render_metrics};
pub use self::outbox::{Outbox, Sink};
pub use self::pending::PendingClients;
pub use self::shard::{Shard, ShardConfig, ShardError};
