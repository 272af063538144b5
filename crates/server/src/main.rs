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
    // The HTTP side held the last handles: the media thread now finishes the recordings and
    // ends. Wait for it, so no file is left half-written.
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
    // `Service<IncomingStream>`), ~3 % of the server's CPU in a WHEP join storm. The client's
    // address goes with each request: pending sessions are capped per client.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("HTTP server failed")
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
