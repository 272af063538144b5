//! The `leanrtc` binary: flags, logging, the media thread and the HTTP server.

mod cluster;
mod config;
mod control;
mod engine;
mod http;
mod recorder;
mod relay;
mod router;
mod sfu;
mod sources;
mod tcp;
mod udp;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::control::EngineHandle;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LEANRTC_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let fd_limit = raise_open_file_limit();
    let engine::Engine {
        handle,
        udp_addr,
        threads,
    } = engine::start(&config).context("cannot start the media engine")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    let served = runtime.block_on(serve(config, handle, udp_addr, fd_limit));
    // Requests still open after the grace period hold engine handles in their tasks:
    // dropping the runtime drops them.
    drop(runtime);
    served?;
    // The HTTP side held the last handles: the media thread now closes every session (BYE,
    // close_notify), finishes the recordings and ends. Wait for it, so no file is left
    // half-written.
    for thread in threads {
        if thread.join().is_err() {
            tracing::error!("a media thread panicked");
        }
    }
    Ok(())
}

/// `fd_limit`: the open-file limit in force, which caps the HTTP connections.
async fn serve(
    config: Config,
    engine: EngineHandle,
    udp_addr: SocketAddr,
    fd_limit: Option<u64>,
) -> anyhow::Result<()> {
    let access = Arc::new(access(&config)?);
    if access.keys.is_some() {
        tokio::spawn(reload_keys_on_hangup(Arc::clone(&access)));
    }
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http))?;
    let directory = directory(&config, listener.local_addr()?, &engine)?;
    tracing::info!(
        http = %listener.local_addr()?, udp = %udp_addr,
        "leanrtc {} ready: open http://{}/", env!("CARGO_PKG_VERSION"), listener.local_addr()?
    );
    let relays = relays(&config, &engine, directory.clone());
    let app = http::router(http::AppState {
        engine,
        access,
        ice_servers: config.ice_server.clone(),
        ice_credentials: config
            .ice_server_username
            .clone()
            .zip(config.ice_server_credential.clone()),
        body_timeout: config.http_body_timeout,
        relays,
        directory,
    });
    let limits = http::Limits {
        header_timeout: config.http_header_timeout,
        idle_timeout: config.http_idle_timeout,
        max_connections: connection_cap(config.http_max_connections as usize, fd_limit),
        max_per_address: config.http_max_per_address as usize,
    };
    // `serve` waits at most a short grace period for requests still open at the signal: a
    // client that keeps one open must not keep the media sessions from being closed.
    http::serve(listener, app, limits, shutdown_signal())
        .await
        .context("HTTP server failed")
}

/// With `--origin` or `--cluster`, the relays' keeper (started here) that pulls streams
/// this node does not have.
fn relays(
    config: &Config,
    engine: &EngineHandle,
    directory: Option<Arc<cluster::Directory>>,
) -> Option<Arc<relay::Relays>> {
    if config.origin.is_none() && directory.is_none() {
        return None;
    }
    if let Some(origin) = &config.origin {
        tracing::info!(%origin, "streams not found here are pulled from the origin");
    }
    let relays = Arc::new(relay::Relays::new(
        engine.clone(),
        config.origin.clone(),
        directory,
        config.token_for_origin(),
    ));
    tokio::spawn(Arc::clone(&relays).keep());
    Some(relays)
}

/// With `--cluster`, the stream directory in Redis and its keeper (started here).
fn directory(
    config: &Config,
    http: SocketAddr,
    engine: &EngineHandle,
) -> anyhow::Result<Option<Arc<cluster::Directory>>> {
    let Some(url) = &config.cluster else {
        return Ok(None);
    };
    let node = match &config.node_url {
        Some(node) => node.to_string(),
        None if !http.ip().is_unspecified() => format!("http://{http}"),
        None => anyhow::bail!(
            "--cluster needs --node-url (how the other nodes reach this one's HTTP) when --http listens on every address"
        ),
    };
    let directory = Arc::new(cluster::Directory::new(url, node).map_err(anyhow::Error::msg)?);
    tracing::info!(node = %directory.node(), "cluster: streams are claimed in and looked up from Redis");
    tokio::spawn(Arc::clone(&directory).keep(engine.clone()));
    Ok(Some(directory))
}

/// The access rules from the flags; a keys file or hook URL that cannot be used stops the start.
fn access(config: &Config) -> anyhow::Result<http::Access> {
    let mut access = http::Access::with_token(config.token.clone());
    if let Some(t) = &config.publish_token {
        access.publish_token = Some(t.clone());
    }
    if let Some(t) = &config.watch_token {
        access.watch_token = Some(t.clone());
    }
    access.api_token.clone_from(&config.api_token);
    if let Some(path) = &config.stream_keys {
        let keys = http::StreamKeys::load(path)?;
        tracing::info!(streams = keys.len(), file = %path.display(), "stream keys loaded");
        access.keys = Some(keys);
    }
    if let Some(url) = &config.auth_url {
        access.hook = Some(http::AuthHook::new(url)?);
    }
    Ok(access)
}

/// SIGHUP reads the stream-keys file again; a broken file keeps the keys in force.
async fn reload_keys_on_hangup(access: Arc<http::Access>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot catch SIGHUP: the stream keys will not be reloaded");
        return;
    };
    while hup.recv().await.is_some() {
        let Some(keys) = &access.keys else { return };
        match keys.reload() {
            Ok(n) => tracing::info!(streams = n, "stream keys reloaded"),
            Err(e) => tracing::error!("stream keys not reloaded, the old ones stay: {e}"),
        }
    }
}

/// Descriptors kept free for everything that is not an HTTP connection: the UDP socket, the
/// listener, recordings, media files, the poll and wake descriptors.
const RESERVED_FDS: usize = 64;

/// Each HTTP connection is a file descriptor; most systems start a process with a soft limit
/// of 1024 and a far higher hard limit. Returns the limit now in force, if it could be read.
fn raise_open_file_limit() -> Option<u64> {
    match udp::raise_nofile_limit() {
        Ok((old, new)) => {
            if old != new {
                tracing::info!("open-file limit raised from {old} to {new}");
            }
            Some(new)
        }
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit: {e}");
            None
        }
    }
}

/// `--http-max-connections`, lowered below the open-file limit if need be (past it, accept
/// fails and every client times out).
fn connection_cap(wanted: usize, fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else {
        return wanted;
    };
    let room = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED_FDS)
        .max(1);
    if wanted > room {
        tracing::warn!(
            "--http-max-connections {wanted} is lowered to {room}: the open-file limit is {limit}"
        );
    }
    wanted.min(room)
}

/// Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => drop(sig.recv().await),
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
