//! The WHIP and WHEP resources: `POST /{whip|whep}/{stream}` makes a session,
//! `PATCH`/`DELETE /{whip|whep}/{stream}/{session}` change and end it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::access::Action;
use super::{AppState, Client, error, names, unavailable};
use crate::control::{Command, EngineError, Patched, Role};

const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

fn role_of(segment: &str) -> Option<Role> {
    match segment {
        "whip" => Some(Role::Publish),
        "whep" => Some(Role::Play),
        _ => None,
    }
}

/// What a session of `role` does with its stream, for the access rules.
fn action_of(role: Role) -> Action {
    match role {
        Role::Publish => Action::Publish,
        Role::Play => Action::Watch,
    }
}

/// True when the request's Content-Type is `want` (parameters such as charset ignored).
fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

/// The HTTP status for each refusal of the media thread.
fn status_of(e: &EngineError) -> StatusCode {
    match e {
        EngineError::UnknownStream(_) | EngineError::UnknownSession(_) => StatusCode::NOT_FOUND,
        EngineError::StreamBusy(_) | EngineError::FileStream(_) => StatusCode::CONFLICT,
        EngineError::BadOffer(_) | EngineError::BadFragment(_) => StatusCode::BAD_REQUEST,
        EngineError::Unanswerable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        EngineError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        EngineError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        EngineError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn refused(e: &EngineError) -> Response {
    let mut res = error(status_of(e), e);
    if matches!(e, EngineError::Overloaded) {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    res
}

/// Times a viewer of a just-relayed stream is made again while its thread has not heard
/// of the stream yet, and the wait between.
const RELAY_RETRIES: usize = 20;
const RELAY_RETRY_GAP: std::time::Duration = std::time::Duration::from_millis(25);

/// The answer when a stream could not be pulled from the origin.
fn relay_refused(e: &crate::relay::RelayError) -> Response {
    use crate::relay::RelayError;
    match e {
        RelayError::NotAtOrigin(_) | RelayError::NotInCluster(_) => error(StatusCode::NOT_FOUND, e),
        RelayError::Directory(_) => {
            let mut res = error(StatusCode::SERVICE_UNAVAILABLE, e);
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            res
        }
        RelayError::Engine(engine) => refused(engine),
        RelayError::Call(call) => unavailable(*call),
        RelayError::Origin { .. } => error(StatusCode::BAD_GATEWAY, e),
    }
}

/// The 404 for a path segment that is neither `whip` nor `whep`.
fn no_endpoint(segment: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint /{}: use /whip or /whep",
            segment.escape_debug()
        ),
    )
}

/// The 400 for a stream name [`names::check`] refused.
fn bad_name(e: names::BadName) -> Response {
    error(StatusCode::BAD_REQUEST, e)
}

/// What every session request checks first, in this order: the endpoint, the stream name
/// (before anything is made or logged), then the token, key or hook (`ask_hook` on POST only).
async fn admit(
    state: &AppState,
    segment: &str,
    stream: &str,
    headers: &HeaderMap,
    client: Option<SocketAddr>,
    ask_hook: bool,
) -> Result<Role, Response> {
    let role = role_of(segment).ok_or_else(|| no_endpoint(segment))?;
    names::check(stream).map_err(bad_name)?;
    match state
        .access
        .check(action_of(role), stream, headers, client, ask_hook)
        .await
    {
        Some(refusal) => Err(refusal),
        None => Ok(role),
    }
}

/// `POST /{whip|whep}/{stream}` with an SDP offer → `201 Created` with the answer.
pub async fn create(
    State(state): State<AppState>,
    Path((segment, stream)): Path<(String, String)>,
    Client(client): Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let role = match admit(&state, &segment, &stream, &headers, client, true).await {
        Ok(role) => role,
        Err(refused) => return refused,
    };
    if !content_type_is(&headers, SDP) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the offer must be sent as Content-Type: {SDP}"),
        );
    }
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "the offer is not UTF-8 text");
    };
    // The Location's stream part is made before the session, so nothing is created for a
    // request whose answer could not be sent.
    let location = format!("/{segment}/{}/", names::encode_segment(&stream));
    let stream_name = stream.clone();
    // Served without connect info (in-process tests), every client is one.
    let client = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    // In a cluster a name is published on one node at a time: claimed before the session is
    // made. With Redis down this node still takes its own publishers (claimed once it is
    // back); the directory's log says so.
    if role == Role::Publish
        && let Some(directory) = &state.directory
        && let Ok(holder) = directory.claim(&stream).await
        && holder != directory.node()
    {
        return error(
            StatusCode::CONFLICT,
            format!("stream {stream:?} is being published on {holder}"),
        );
    }
    let create = |offer: String| {
        let stream = stream.clone();
        state.engine.call(move |reply| Command::Create {
            role,
            stream,
            offer,
            client,
            reply,
        })
    };
    let mut reply = create(offer.clone()).await;
    // A stream this node does not have is pulled from the origin (`--origin`), then the
    // viewer is made again. Its thread may learn of the new stream a moment after shard 0.
    if role == Role::Play
        && matches!(reply, Ok(Err(EngineError::UnknownStream(_))))
        && let Some(relays) = &state.relays
    {
        if let Err(e) = relays.ensure(&stream).await {
            tracing::info!(stream = %stream, "cannot relay: {e}");
            return relay_refused(&e);
        }
        for _ in 0..RELAY_RETRIES {
            reply = create(offer.clone()).await;
            if !matches!(reply, Ok(Err(EngineError::UnknownStream(_)))) {
                break;
            }
            tokio::time::sleep(RELAY_RETRY_GAP).await;
        }
    }
    let created = match reply {
        Ok(Ok(created)) => created,
        Ok(Err(e)) => return refused(&e),
        Err(e) => return unavailable(e),
    };
    let mut response = Response::builder().status(StatusCode::CREATED);
    for link in state.link_headers() {
        response = response.header(header::LINK, link);
    }
    let session = created.session.clone();
    match response
        .header(header::CONTENT_TYPE, SDP)
        .header(
            header::LOCATION,
            format!("{location}{}", names::encode_segment(&created.session)),
        )
        .header(header::ETAG, created.etag)
        .header("Accept-Patch", SDPFRAG)
        .body(Body::from(created.answer))
    {
        Ok(res) => res,
        Err(e) => {
            // Cannot happen with the engine's ids and ETags; if it ever does, the client never
            // learns the session, so it must not linger.
            let _ = state
                .engine
                .call(|reply| Command::Delete {
                    role,
                    stream: stream_name,
                    session,
                    reply,
                })
                .await;
            error(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

/// `OPTIONS` on an endpoint: CORS preflight, and what may be POSTed (RFC 9725 §4.2).
pub async fn options_endpoint(State(state): State<AppState>) -> Response {
    let mut response = Response::builder().status(StatusCode::NO_CONTENT);
    for link in state.link_headers() {
        response = response.header(header::LINK, link);
    }
    response
        .header("Accept-Post", SDP)
        .body(Body::empty())
        .unwrap_or_default()
}

/// `OPTIONS` on a session: CORS preflight for PATCH/DELETE.
pub async fn options_session() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header("Accept-Patch", SDPFRAG)
        .body(Body::empty())
        .unwrap_or_default()
}

/// `HEAD` on an endpoint. WHEP players may probe with it; RFC 9725 §4.2 reserves GET/HEAD
/// on WHIP endpoints (405).
pub async fn probe_endpoint(
    State(state): State<AppState>,
    Path((segment, stream)): Path<(String, String)>,
    Client(client): Client,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = names::check(&stream) {
        return bad_name(e);
    }
    match role_of(&segment) {
        Some(Role::Play) => {
            if let Some(refusal) = state
                .access
                .check(Action::Watch, &stream, &headers, client, false)
                .await
            {
                return refusal;
            }
            let streams = match state.engine.streams().await {
                Ok(streams) => streams,
                Err(e) => return unavailable(e),
            };
            if !streams.iter().any(|s| s.name == stream) {
                return error(StatusCode::NOT_FOUND, format!("no stream named {stream:?}"));
            }
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, SDP)
                .body(Body::empty())
                .unwrap_or_default()
        }
        Some(Role::Publish) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "WHIP endpoints take POST and OPTIONS",
        ),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no endpoint /{}", segment.escape_debug()),
        ),
    }
}

/// `PATCH` a session with an sdpfrag: trickle (204) or ICE restart (200 + new sdpfrag).
pub async fn patch(
    State(state): State<AppState>,
    Path((segment, stream, session)): Path<(String, String, String)>,
    Client(client): Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let role = match admit(&state, &segment, &stream, &headers, client, false).await {
        Ok(role) => role,
        Err(refused) => return refused,
    };
    if !content_type_is(&headers, SDPFRAG) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("PATCH takes Content-Type: {SDPFRAG}"),
        );
    }
    let Ok(fragment) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "the sdpfrag is not UTF-8 text");
    };
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match state
        .engine
        .call(|reply| Command::Patch {
            role,
            stream,
            session,
            if_match,
            fragment,
            reply,
        })
        .await
    {
        Ok(Ok(Patched::Trickled)) => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())
            .unwrap_or_default(),
        Ok(Ok(Patched::Restarted { fragment, etag })) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, SDPFRAG)
            .header(header::ETAG, etag)
            .body(Body::from(fragment))
            .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e)),
        Ok(Err(e)) => refused(&e),
        Err(e) => unavailable(e),
    }
}

/// `DELETE` a session → 200.
pub async fn delete(
    State(state): State<AppState>,
    Path((segment, stream, session)): Path<(String, String, String)>,
    Client(client): Client,
    headers: HeaderMap,
) -> Response {
    let role = match admit(&state, &segment, &stream, &headers, client, false).await {
        Ok(role) => role,
        Err(refused) => return refused,
    };
    match state
        .engine
        .call(|reply| Command::Delete {
            role,
            stream,
            session,
            reply,
        })
        .await
    {
        Ok(Ok(())) => Response::builder()
            .status(StatusCode::OK)
            .body(Body::empty())
            .unwrap_or_default(),
        Ok(Err(e)) => refused(&e),
        Err(e) => unavailable(e),
    }
}
