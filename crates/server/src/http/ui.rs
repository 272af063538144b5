//! The web page and the JSON API.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{AppState, error, unavailable};

/// The page: lists streams, plays one with WHEP, publishes the camera with WHIP.
pub async fn index() -> Html<&'static str> {
    Html(include_str!("../../web/index.html"))
}

/// `?scope=cluster`.
#[derive(Debug, Deserialize)]
pub struct Scope {
    scope: Option<String>,
}

/// `GET /api/streams`: every stream of this node as JSON; with `?scope=cluster`, every node
/// of the cluster with its load and streams, as the directory has them (`--cluster`).
pub async fn streams(State(state): State<AppState>, Query(scope): Query<Scope>) -> Response {
    match scope.scope.as_deref() {
        None | Some("node") => {}
        Some("cluster") => {
            let Some(directory) = &state.directory else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "scope=cluster needs a cluster (--cluster)",
                );
            };
            return match directory.nodes().await {
                Ok(nodes) => ([(header::CACHE_CONTROL, "no-store")], Json(nodes)).into_response(),
                Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
            };
        }
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("scope={other:?}: use node or cluster"),
            );
        }
    }
    match state.engine.streams().await {
        Ok(list) => ([(header::CACHE_CONTROL, "no-store")], Json(list)).into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /metrics`: the media threads' counters in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.engine.metrics().await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => unavailable(e),
    }
}
