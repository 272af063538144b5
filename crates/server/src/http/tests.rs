//! The HTTP surface against a scripted media thread: statuses, headers and reasons.

use std::sync::{Arc, mpsc};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{AppState, router};
use crate::control::{Command, Created, EngineError, EngineHandle, Patched, Role, StreamInfo};

/// A media thread that knows one stream, `cam`, and one session, `s1` (ETag "e1").
fn fake_engine() -> EngineHandle {
    let (tx, rx) = mpsc::sync_channel::<Command>(16);
    std::thread::spawn(move || {
        for cmd in rx {
            match cmd {
                Command::Create {
                    role,
                    stream,
                    offer,
                    reply,
                    ..
                } => {
                    let r = if stream != "cam" {
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
                    session,
                    if_match,
                    fragment,
                    reply,
                } => {
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
                Command::Delete { session, reply } => {
                    let _ = reply.send(if session == "s1" {
                        Ok(())
                    } else {
                        Err(EngineError::UnknownSession(session))
                    });
                }
                Command::Metrics { reply } => {
                    let _ = reply.send("leanrtc_streams 1\n".into());
                }
                Command::Streams { reply } => {
                    let cam = StreamInfo {
                        name: "cam".into(),
                        kind: "live",
                        codecs: vec!["VP8".into()],
                        viewers: 0,
                        bitrate: 0,
                        since: 0,
                    };
                    let _ = reply.send(vec![cam]);
                }
            }
        }
    });
    EngineHandle::new(tx, Arc::new(|| {}))
}

async fn send(
    token: Option<&str>,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let app = router(AppState {
        engine: fake_engine(),
        token: token.map(str::to_owned),
        ice_servers: vec!["stun:stun.example.org:3478".into()],
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
    assert_eq!(
        h[header::LINK],
        "<stun:stun.example.org:3478>; rel=\"ice-server\""
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
        let mut b = Request::patch("/whip/cam/s1").header(header::CONTENT_TYPE, frag);
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
    let wrong_type = Request::patch("/whip/cam/s1")
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
        token: None,
        ice_servers: Vec::new(),
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
