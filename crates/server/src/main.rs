//! The `leanrtc` binary: flags, logging, the media thread and the HTTP server.

mod config;
mod control;
mod engine;
mod http;
mod recorder;
mod router;
mod sources;
mod udp;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::Config;
use crate::control::EngineHandle;

/// How long, after SIGTERM or Ctrl-C, open HTTP requests may take to finish.
const HTTP_GRACE: Duration = Duration::from_secs(3);

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LEANRTC_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let engine::Engine {
        handle,
        udp_addr,
        thread,
    } = engine::start(&config).context("cannot start the media engine")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    runtime.block_on(serve(config, handle, udp_addr))?;
    // Requests still open after the grace period hold engine handles in their tasks:
    // dropping the runtime drops them.
    drop(runtime);
    // The HTTP side held the last handles: the media thread now closes every session (BYE,
    // close_notify), finishes the recordings and ends. Wait for it, so no file is left
    // half-written.
    if thread.join().is_err() {
        tracing::error!("the media thread panicked");
    }
    Ok(())
}

async fn serve(config: Config, engine: EngineHandle, udp_addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http))?;
    tracing::info!(
        http = %listener.local_addr()?, udp = %udp_addr,
        "leanrtc {} ready: open http://{}/", env!("CARGO_PKG_VERSION"), listener.local_addr()?
    );
    let app = http::router(http::AppState {
        engine,
        token: config.token.clone(),
        ice_servers: config.ice_server.clone(),
    });
    // `into_make_service` readies the router once; served as a plain `Router`, axum rebuilds
    // its route table for every connection (`Router::with_state(())` in its
    // `Service<IncomingStream>`), ~3 % of the server's CPU in a WHEP join storm.
    let signalled = Arc::new(Notify::new());
    let graceful = axum::serve(listener, app.into_make_service()).with_graceful_shutdown({
        let signalled = Arc::clone(&signalled);
        async move {
            shutdown_signal().await;
            signalled.notify_one();
        }
    });
    // A client that keeps a request open (or a slow one) must not keep the media sessions
    // from being closed: after the grace period the server stops without it.
    let overdue = async {
        signalled.notified().await;
        tokio::time::sleep(HTTP_GRACE).await;
    };
    tokio::select! {
        served = graceful => served.context("HTTP server failed"),
        () = overdue => {
            tracing::warn!(grace_s = HTTP_GRACE.as_secs(), "HTTP requests still open after the grace period; stopping without them");
            Ok(())
        }
    }
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
