//! The HTTP surface against a scripted media thread: statuses, headers and reasons.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{Access, AppState, router};
use crate::control::{Command, Created, EngineError, EngineHandle, Patched, Role, StreamInfo};

/// The streams the fake media thread knows.
const STREAMS: [&str; 2] = ["cam", "room/1 é"];

/// A media thread that knows the [`STREAMS`] and one session, `s1` (ETag "e1"), a viewer of
/// `cam`. It counts the commands it gets in `count`.
fn fake_engine_counting(count: Arc<AtomicUsize>) -> EngineHandle {
    let (tx, rx) = mpsc::sync_channel::<Command>(16);
    std::thread::spawn(move || {
        for cmd in rx {
            count.fetch_add(1, Ordering::Relaxed);
            match cmd {
                Command::Create {
                    role,
                    stream,
                    offer,
                    reply,
                    ..
                } => {
                    let r = if !STREAMS.contains(&stream.as_str()) {
                        Err(EngineError::UnknownStream(stream))
                    } else if !offer.starts_with("v=0") {
                        Err(EngineError::BadOffer("line 1: expected v=0".into()))
                    } else if role == Role::Publish {
                        Err(EngineError::StreamBusy(stream))
                    } else {
                        Ok(Created {
                            session: "s1".into(),
                            answer: "v=0\r\n".into(),
                            etag: "\"e1\"".into(),
                        })
                    };
                    let _ = reply.send(r);
                }
                Command::Patch {
                    role,
                    stream,
                    session,
                    if_match,
                    fragment,
                    reply,
                } => {
                    let session = if (role, stream.as_str()) == (Role::Play, "cam") {
                        session
                    } else {
                        format!("{session} of another kind or stream")
                    };
                    let r = match (session.as_str(), if_match.as_deref()) {
                        ("s1", _) if !fragment.contains("ice-ufrag") => Ok(Patched::Trickled),
                        ("s1", None) => Err(EngineError::PreconditionRequired),
                        ("s1", Some("\"e1\"")) => Ok(Patched::Restarted {
                            fragment: "a=ice-ufrag:x\r\n".into(),
                            etag: "\"e2\"".into(),
                        }),
                        ("s1", Some(_)) => Err(EngineError::PreconditionFailed),
                        _ => Err(EngineError::UnknownSession(session)),
                    };
                    let _ = reply.send(r);
                }
                Command::Delete {
                    role,
                    stream,
                    session,
                    reply,
                } => {
                    let ours = (role, stream.as_str()) == (Role::Play, "cam");
                    let _ = reply.send(if ours && session == "s1" {
                        Ok(())
                    } else {
                        Err(EngineError::UnknownSession(session))
                    });
                }
                // No --origin in these tests.
                Command::Relay(_) => {}
                Command::Metrics { reply } => {
                    let _ = reply.send(crate::sfu::MetricsPart {
                        shard: 0,
                        values: vec![crate::sfu::Metric {
                            name: "streams",
                            kind: "gauge",
                            help: "Streams.",
                            value: 1,
                        }],
                        sessions: 0,
                        datagrams_received: 0,
                        datagrams_sent: 0,
                        datagrams_handed_over: 0,
                        media_handed_over: 0,
                        messages_refused: 0,
                        busy: std::time::Duration::ZERO,
                        dtls: Default::default(),
                    });
                }
                Command::Streams { reply } => {
                    let cam = StreamInfo {
                        name: "cam".into(),
                        kind: "live",
                        codecs: vec!["VP8".into()],
                        viewers: 0,
                        bitrate: 0,
                        layers: Vec::new(),
                        watchers: Vec::new(),
                        since: 0,
                    };
                    let _ = reply.send(vec![cam]);
                }
            }
        }
    });
    EngineHandle::new(tx, Arc::new(|| {}))
}

fn fake_engine() -> EngineHandle {
    fake_engine_counting(Arc::default())
}

async fn send(
    token: Option<&str>,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    send_to(fake_engine(), token, req).await
}

async fn send_to(
    engine: EngineHandle,
    token: Option<&str>,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    send_with(engine, Access::with_token(token.map(str::to_owned)), req).await
}

async fn send_with(
    engine: EngineHandle,
    access: Access,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let app = router(AppState {
        engine,
        access: Arc::new(access),
        ice_servers: vec![
            "stun:stun.example.org:3478".into(),
            "turn:turn.example.org:3478?transport=udp".into(),
        ],
        ice_credentials: Some(("user".into(), "pass".into())),
        body_timeout: std::time::Duration::from_secs(5),
        relays: None,
        directory: None,
    });
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, headers, body)
}

fn post(path: &str, content_type: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn whep_post_creates_a_session() {
    let (status, h, body) = send(None, post("/whep/cam", "application/sdp", "v=0\r\n")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(h[header::LOCATION], "/whep/cam/s1");
    assert_eq!(h[header::ETAG], "\"e1\"");
    assert_eq!(h[header::CONTENT_TYPE], "application/sdp");
    assert_eq!(h["accept-patch"], "application/trickle-ice-sdpfrag");
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    // One Link per server; a TURN server's carries the credentials (RFC 9725 §4.6).
    let links: Vec<_> = h.get_all(header::LINK).iter().collect();
    assert_eq!(
        links,
        [
            "<stun:stun.example.org:3478>; rel=\"ice-server\"",
            "<turn:turn.example.org:3478?transport=udp>; rel=\"ice-server\"; username=\"user\"; \
             credential=\"pass\"; credential-type=\"password\""
        ]
    );
    assert_eq!(body, "v=0\r\n");
}

#[tokio::test]
async fn refusals_map_to_statuses_with_reasons() {
    let cases = [
        (
            post("/whep/nope", "application/sdp", "v=0"),
            StatusCode::NOT_FOUND,
            "no stream named \"nope\"",
        ),
        (
            post("/whep/cam", "text/plain", "v=0"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/sdp",
        ),
        (
            post("/whep/cam", "application/sdp", "garbage"),
            StatusCode::BAD_REQUEST,
            "line 1",
        ),
        (
            post("/whip/cam", "application/sdp", "v=0"),
            StatusCode::CONFLICT,
            "already being published",
        ),
        (
            post("/what/cam", "application/sdp", "v=0"),
            StatusCode::NOT_FOUND,
            "use /whip or /whep",
        ),
    ];
    for (req, want, reason) in cases {
        let (status, _, body) = send(None, req).await;
        assert_eq!(status, want, "{body}");
        assert!(body.contains(reason), "{body:?} lacks {reason:?}");
    }
}

#[tokio::test]
async fn body_that_is_not_utf8_is_a_bad_request() {
    let req = Request::post("/whep/cam")
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(Body::from(vec![0xff, 0xfe]))
        .unwrap();
    assert_eq!(send(None, req).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn token_is_required_except_for_preflight() {
    let (status, h, _) = send(Some("sekret"), post("/whep/cam", "application/sdp", "v=0")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
    let mut req = post("/whep/cam", "application/sdp", "v=0");
    req.headers_mut()
        .insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
    assert_eq!(send(Some("sekret"), req).await.0, StatusCode::UNAUTHORIZED);
    let mut req = post("/whep/cam", "application/sdp", "v=0");
    req.headers_mut()
        .insert(header::AUTHORIZATION, "bearer sekret".parse().unwrap());
    assert_eq!(send(Some("sekret"), req).await.0, StatusCode::CREATED);
    let req = Request::options("/whip/cam").body(Body::empty()).unwrap();
    let (status, h, _) = send(Some("sekret"), req).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h["accept-post"], "application/sdp");
    assert!(
        h[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
}

#[tokio::test]
async fn patch_trickle_restart_and_preconditions() {
    let frag = "application/trickle-ice-sdpfrag";
    let patch = |if_match: Option<&str>, body: &str| {
        let mut b = Request::patch("/whep/cam/s1").header(header::CONTENT_TYPE, frag);
        if let Some(m) = if_match {
            b = b.header(header::IF_MATCH, m);
        }
        b.body(Body::from(body.to_owned())).unwrap()
    };
    assert_eq!(
        send(
            None,
            patch(None, "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n")
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let restart = "a=ice-ufrag:new\r\na=ice-pwd:newnewnewnewnewnewnewnew\r\n";
    assert_eq!(
        send(None, patch(None, restart)).await.0,
        StatusCode::PRECONDITION_REQUIRED
    );
    assert_eq!(
        send(None, patch(Some("\"old\""), restart)).await.0,
        StatusCode::PRECONDITION_FAILED
    );
    let (status, h, body) = send(None, patch(Some("\"e1\""), restart)).await;
    assert_eq!(
        (status, &h[header::ETAG], body.as_str()),
        (
            StatusCode::OK,
            &"\"e2\"".parse().unwrap(),
            "a=ice-ufrag:x\r\n"
        )
    );
    let wrong_type = Request::patch("/whep/cam/s1")
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(None, wrong_type).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn delete_and_head() {
    assert_eq!(
        send(
            None,
            Request::delete("/whep/cam/s1").body(Body::empty()).unwrap()
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        send(
            None,
            Request::delete("/whep/cam/zz").body(Body::empty()).unwrap()
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (status, h, _) = send(
        None,
        Request::head("/whep/cam").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (status, &h[header::CONTENT_TYPE]),
        (StatusCode::OK, &"application/sdp".parse().unwrap())
    );
    assert_eq!(
        send(
            None,
            Request::head("/whip/cam").body(Body::empty()).unwrap()
        )
        .await
        .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let (status, _, body) = send(
        None,
        Request::head("/whep/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        send(None, Request::get("/whip/cam").body(Body::empty()).unwrap())
            .await
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn page_and_api() {
    let (status, h, body) = send(None, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(body.contains("leanrtc"));
    let (status, _, body) = send(
        None,
        Request::get("/api/streams").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.starts_with("[{\"name\":\"cam\",\"kind\":\"live\""),
        "{body}"
    );
}

/// A media thread that is behind (its queue full): every route answers 503 with Retry-After
/// at once instead of queueing without bound.
#[tokio::test]
async fn a_full_command_queue_is_503_with_retry_after() {
    // A queue of no room whose receiver never takes anything.
    let (tx, _rx) = mpsc::sync_channel::<Command>(0);
    let app = router(AppState {
        engine: EngineHandle::new(tx, Arc::new(|| {})),
        access: Arc::new(Access::default()),
        ice_servers: Vec::new(),
        ice_credentials: None,
        body_timeout: std::time::Duration::from_secs(5),
        relays: None,
        directory: None,
    });
    let requests = [
        post("/whep/cam", "application/sdp", "v=0\r\n"),
        Request::get("/api/streams").body(Body::empty()).unwrap(),
        Request::delete("/whep/cam/s1").body(Body::empty()).unwrap(),
    ];
    for req in requests {
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    }
}

/// A name that would forge a log line (`%0A`) or is too long is refused with the rule, and the
/// media thread never hears of it: no session or stream is made for the request.
#[tokio::test]
async fn bad_stream_names_are_refused_before_anything_is_made() {
    let long = "x".repeat(super::names::MAX_NAME + 1);
    let cases = [
        ("POST", "/whip/a%0AINFO%20forged".to_owned(), "control"),
        ("POST", "/whep/a%1Bb".to_owned(), "control"),
        ("POST", "/whep/a%E2%80%AEb".to_owned(), "bidirectional"),
        ("POST", format!("/whip/{long}"), "at most 128"),
        ("HEAD", "/whep/a%0Ab".to_owned(), ""),
        ("DELETE", "/whep/a%0Ab/s1".to_owned(), "control"),
        ("PATCH", "/whep/a%0Ab/s1".to_owned(), "control"),
    ];
    for (method, path, rule) in cases {
        let count = Arc::new(AtomicUsize::new(0));
        let req = Request::builder()
            .method(method)
            .uri(&path)
            .header(header::CONTENT_TYPE, "application/sdp")
            .body(Body::from("v=0\r\n"))
            .unwrap();
        let (status, _, body) = send_to(fake_engine_counting(count.clone()), None, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
        assert!(
            body.contains(rule),
            "{method} {path}: {body:?} lacks {rule:?}"
        );
        assert_eq!(
            count.load(Ordering::Relaxed),
            0,
            "{method} {path} reached the engine"
        );
    }
}

/// `Location` names the stream percent-encoded, so a name with `/`, a space or non-ASCII
/// leads back to the same session (and the header holds only ASCII).
#[tokio::test]
async fn location_is_percent_encoded_and_leads_back() {
    let req = post("/whep/room%2F1%20%C3%A9", "application/sdp", "v=0\r\n");
    let (status, h, body) = send(None, req).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(h[header::LOCATION], "/whep/room%2F1%20%C3%A9/s1");
}

/// PATCH and DELETE reach a session only on its own kind and stream: a viewer's id on a WHIP
/// path or another stream's path is not found.
#[tokio::test]
async fn patch_and_delete_must_name_the_sessions_kind_and_stream() {
    let frag = "application/trickle-ice-sdpfrag";
    let restart = "a=ice-ufrag:new\r\na=ice-pwd:newnewnewnewnewnewnewnew\r\n";
    for path in ["/whip/cam/s1", "/whep/room%2F1%20%C3%A9/s1"] {
        let req = Request::patch(path)
            .header(header::CONTENT_TYPE, frag)
            .header(header::IF_MATCH, "*")
            .body(Body::from(restart))
            .unwrap();
        assert_eq!(
            send(None, req).await.0,
            StatusCode::NOT_FOUND,
            "PATCH {path}"
        );
        let req = Request::delete(path).body(Body::empty()).unwrap();
        assert_eq!(
            send(None, req).await.0,
            StatusCode::NOT_FOUND,
            "DELETE {path}"
        );
    }
    let req = Request::delete("/whep/cam/s1").body(Body::empty()).unwrap();
    assert_eq!(send(None, req).await.0, StatusCode::OK);
}

fn with_bearer(mut req: Request<Body>, token: &str) -> Request<Body> {
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    req
}

/// One token used to let any viewer publish. Now the watch token only watches, the publish
/// token does both, and a stream's key publishes that stream only.
#[tokio::test]
async fn publishing_and_watching_have_separate_keys() {
    let keys_file = std::env::temp_dir().join(format!("leanrtc-keys-{}", std::process::id()));
    std::fs::write(&keys_file, "cam cam-key\n").unwrap();
    let access = || Access {
        publish_token: Some("pub".into()),
        watch_token: Some("watch".into()),
        keys: Some(super::StreamKeys::load(&keys_file).unwrap()),
        ..Access::default()
    };
    // The fake engine answers every admitted WHIP POST on `cam` with 409 "already being
    // published", every admitted WHEP POST with 201.
    let cases = [
        ("/whip/cam", Some("watch"), StatusCode::UNAUTHORIZED),
        ("/whip/cam", None, StatusCode::UNAUTHORIZED),
        ("/whip/cam", Some("cam-key"), StatusCode::CONFLICT),
        ("/whip/cam", Some("pub"), StatusCode::CONFLICT),
        (
            "/whip/room%2F1%20%C3%A9",
            Some("cam-key"),
            StatusCode::UNAUTHORIZED,
        ),
        ("/whep/cam", None, StatusCode::UNAUTHORIZED),
        ("/whep/cam", Some("wrong"), StatusCode::UNAUTHORIZED),
        ("/whep/cam", Some("watch"), StatusCode::CREATED),
        ("/whep/cam", Some("pub"), StatusCode::CREATED),
    ];
    for (path, token, want) in cases {
        let mut req = post(path, "application/sdp", "v=0\r\n");
        if let Some(t) = token {
            req = with_bearer(req, t);
        }
        let (status, h, body) = send_with(fake_engine(), access(), req).await;
        assert_eq!(status, want, "POST {path} with {token:?}: {body}");
        if want == StatusCode::UNAUTHORIZED {
            assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
            assert!(body.contains("needs"), "{body}");
        }
    }
    // A viewer's token cannot end or restart a publisher's session either.
    let req = with_bearer(
        Request::delete("/whip/cam/s1").body(Body::empty()).unwrap(),
        "watch",
    );
    assert_eq!(
        send_with(fake_engine(), access(), req).await.0,
        StatusCode::UNAUTHORIZED
    );
    let _ = std::fs::remove_file(&keys_file);
}

/// `/metrics` and `/api/streams` are open by default and closed by `--api-token`.
#[tokio::test]
async fn api_token_closes_the_api() {
    for path in ["/metrics", "/api/streams"] {
        let get = || Request::get(path).body(Body::empty()).unwrap();
        assert_eq!(send(None, get()).await.0, StatusCode::OK, "{path}");
        let closed = || Access {
            api_token: Some("api".into()),
            ..Access::default()
        };
        assert_eq!(
            send_with(fake_engine(), closed(), get()).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            send_with(fake_engine(), closed(), with_bearer(get(), "api"))
                .await
                .0,
            StatusCode::OK,
            "{path}"
        );
    }
}

/// A hook on loopback that admits the token `good`, refuses others, and records what it was
/// asked. `mute` makes it accept connections and never answer.
fn hook_server(mute: bool) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&asked);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            if mute {
                held.push(tcp);
                continue;
            }
            let mut reader = BufReader::new(tcp);
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            let status = if body.contains("\"token\":\"good\"") {
                "200 OK"
            } else {
                "403 Forbidden"
            };
            record.lock().unwrap().push(body);
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (addr, asked)
}

/// The auth hook admits or refuses each publisher and viewer; a hook that does not answer
/// refuses with 503 after its 2 s, not never.
#[tokio::test]
async fn auth_hook_decides_and_a_silent_one_refuses() {
    let (addr, asked) = hook_server(false);
    let hooked = || Access {
        hook: Some(super::AuthHook::new(&format!("http://{addr}/auth")).unwrap()),
        ..Access::default()
    };
    let mut req = with_bearer(post("/whep/cam", "application/sdp", "v=0\r\n"), "good");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(
            "192.0.2.7:5000".parse().unwrap(),
        ));
    assert_eq!(
        send_with(fake_engine(), hooked(), req).await.0,
        StatusCode::CREATED
    );
    let req = with_bearer(post("/whip/cam", "application/sdp", "v=0\r\n"), "bad");
    let (status, _, body) = send_with(fake_engine(), hooked(), req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            r#"{"action":"watch","stream":"cam","token":"good","client":"192.0.2.7:5000"}"#,
            r#"{"action":"publish","stream":"cam","token":"bad","client":null}"#,
        ]
    );

    let (mute, _) = hook_server(true);
    let silent = Access {
        hook: Some(super::AuthHook::new(&format!("http://{mute}/auth")).unwrap()),
        ..Access::default()
    };
    let started = std::time::Instant::now();
    let (status, h, body) = send_with(
        fake_engine(),
        silent,
        post("/whep/cam", "application/sdp", "v=0\r\n"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(h.contains_key(header::RETRY_AFTER));
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}
