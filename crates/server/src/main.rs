//! The `leanrtc` binary: flags, logging, the media thread and the HTTP server.

mod config;
mod control;
mod engine;
mod http;
mod recorder;
mod router;
mod sources;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LEANRTC_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let engine = engine::start(&config)
        .with_context(|| format!("cannot bind the media port {}", config.udp))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    runtime.block_on(serve(config, engine))
}

async fn serve(config: Config, engine: engine::Engine) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http))?;
    tracing::info!(
        http = %listener.local_addr()?, udp = %engine.udp_addr,
        "leanrtc {} ready: open http://{}/", env!("CARGO_PKG_VERSION"), listener.local_addr()?
    );
    let app = http::router(http::AppState {
        engine: engine.handle.clone(),
        token: config.token.clone(),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // Ctrl-C or SIGTERM ends the server; sessions simply stop.
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await
        .context("HTTP server failed")
}
