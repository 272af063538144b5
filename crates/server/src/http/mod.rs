//! HTTP: WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) endpoints, the web page and the
//! JSON API. Runs on tokio; every media decision is the media thread's (see `control`).

mod access;
pub mod client;
mod hook;
mod names;
mod ratelog;
mod serve;
mod sessions;
mod ui;

use axum::Router;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::control::{CallError, EngineHandle};

pub use access::{Access, StreamKeys};
pub use hook::AuthHook;
pub use names::encode_segment;
pub use serve::{Limits, serve};

/// SDP offers are a few KiB; anything this large is not one.
const MAX_BODY: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The media thread.
    pub engine: EngineHandle,
    /// Tokens, stream keys and the auth hook.
    pub access: Arc<Access>,
    /// STUN/TURN URLs for clients, as `Link` headers (RFC 9725 §4.6).
    pub ice_servers: Vec<String>,
    /// Username and password for the `turn:`/`turns:` ones (`--ice-server-username`,
    /// `--ice-server-credential`).
    pub ice_credentials: Option<(String, String)>,
    /// How long a request's body may take to arrive.
    pub body_timeout: Duration,
    /// `--origin` or `--cluster`: pulls streams this node does not have.
    pub relays: Option<Arc<crate::relay::Relays>>,
    /// `--cluster`: who holds which stream.
    pub directory: Option<Arc<crate::cluster::Directory>>,
}

impl AppState {
    /// `Link: <url>; rel="ice-server"` for each configured server; a TURN server's with
    /// `username`, `credential` and `credential-type` (RFC 9725 §4.6), which a browser
    /// needs to allocate a relay.
    pub(crate) fn link_headers(&self) -> impl Iterator<Item = String> + '_ {
        self.ice_servers.iter().map(|url| {
            let turn = url.starts_with("turn:") || url.starts_with("turns:");
            match &self.ice_credentials {
                Some((user, pass)) if turn => format!(
                    "<{url}>; rel=\"ice-server\"; username=\"{user}\"; credential=\"{pass}\"; credential-type=\"password\""
                ),
                _ => format!("<{url}>; rel=\"ice-server\""),
            }
        })
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let endpoints = Router::new()
        .route(
            "/{role}/{stream}",
            post(sessions::create)
                .options(sessions::options_endpoint)
                .head(sessions::probe_endpoint),
        )
        .route(
            "/{role}/{stream}/{session}",
            axum::routing::patch(sessions::patch)
                .delete(sessions::delete)
                .options(sessions::options_session),
        );
    let api = Router::new()
        .route("/api/streams", get(ui::streams))
        .route("/metrics", get(ui::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_token,
        ));
    Router::new()
        .route("/", get(ui::index))
        .merge(api)
        .merge(endpoints)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .layer(middleware::from_fn(cors))
        .with_state(state)
}

/// `--api-token` for `/metrics` and `/api/streams` (open without it).
async fn require_api_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match state.access.check_api(req.headers()) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    }
}

/// The client's address, where the accept loop recorded it (not in in-process tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// Reads the whole request body within `body_timeout` before any handler runs, so a client
/// that sends half a body and stalls gets `408` instead of holding the connection.
async fn read_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(state.body_timeout, to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY} bytes or broken off"),
            );
        }
        Err(_) => {
            let mut res = error(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {:?}", state.body_timeout),
            );
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return res;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// CORS for pages served from other origins (RFC 9725 §4.5 advises it for browser clients).
async fn cors(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After"),
    );
    res
}

/// 503 when the media thread cannot answer: with `Retry-After` when it is only busy (its
/// command queue is full).
pub(crate) fn unavailable(e: CallError) -> Response {
    let mut res = error(StatusCode::SERVICE_UNAVAILABLE, e);
    if e == CallError::Busy {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

/// A plain-text error response; the reason goes in the body so users see what was wrong.
pub(crate) fn error(status: StatusCode, reason: impl std::fmt::Display) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
