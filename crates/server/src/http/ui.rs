//! The web page and the JSON API.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::{AppState, unavailable};

/// The page: lists streams, plays one with WHEP, publishes the camera with WHIP.
pub async fn index() -> Html<&'static str> {
    Html(include_str!("../../web/index.html"))
}

/// `GET /api/streams`: every stream as JSON.
pub async fn streams(State(state): State<AppState>) -> Response {
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
