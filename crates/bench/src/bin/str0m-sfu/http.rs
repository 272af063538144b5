//! The signalling side: a minimal blocking HTTP/1.1 server (one thread per connection, one
//! request per connection) for `POST /whip/{name}`, `POST /whep/{name}`, `DELETE` of a
//! session's `Location` and `GET /metrics`. The offer is answered here with str0m's SDP API
//! and the `Rtc` handed to the media loop, as str0m's chat example does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::crypto::CryptoProvider;
use str0m::crypto::dtls::DtlsCert;
use str0m::{Candidate, Rtc};

use crate::sfu::{Command, Counters, Role};

/// Largest request body (an SDP offer is a few KiB).
const MAX_BODY: usize = 64 * 1024;
/// How long one request may take to arrive.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What every request handler shares.
pub struct Signalling {
    /// Where media goes: the one UDP socket's address, our only candidate.
    pub udp: SocketAddr,
    /// One certificate for every session, as a server would have.
    pub cert: DtlsCert,
    /// The crypto provider (aws-lc-rs).
    pub crypto: Arc<CryptoProvider>,
    /// To the media loop.
    pub commands: Sender<Command>,
    /// Wakes the media loop after a command.
    pub waker: Arc<mio::Waker>,
    /// The media loop's counters, for `/metrics`.
    pub counters: Arc<Counters>,
    /// Session numbers.
    pub next_id: AtomicU64,
}

/// Accepts connections forever, each on a thread of its own.
pub fn serve(listener: TcpListener, signalling: Arc<Signalling>) {
    for stream in listener.incoming().flatten() {
        let s = Arc::clone(&signalling);
        std::thread::spawn(move || {
            let _ = handle(stream, &s);
        });
    }
}

struct Response {
    status: u16,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Self {
        Response {
            status,
            reason,
            headers: vec![("Content-Type", "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

fn handle(stream: TcpStream, s: &Signalling) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let response = if length > MAX_BODY {
        Response::text(413, "Payload Too Large", "body too large")
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        route(&method, &path, &body, s)
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        response.status,
        response.reason,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&response.body)?;
    out.flush()
}

fn route(method: &str, path: &str, body: &[u8], s: &Signalling) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["whip", name]) => offer(Role::Publish, name, body, s),
        ("POST", ["whep", name]) => offer(Role::View, name, body, s),
        ("DELETE", ["whip" | "whep", _, id]) => match id.parse() {
            Ok(id) => {
                let _ = s.commands.send(Command::Remove(id));
                let _ = s.waker.wake();
                Response::text(200, "OK", "")
            }
            Err(_) => Response::text(404, "Not Found", "no such session"),
        },
        ("GET", ["metrics"]) => Response {
            status: 200,
            reason: "OK",
            headers: vec![("Content-Type", "text/plain; version=0.0.4".into())],
            body: s.counters.prometheus().into_bytes(),
        },
        _ => Response::text(404, "Not Found", "no such endpoint"),
    }
}

fn offer(role: Role, name: &str, body: &[u8], s: &Signalling) -> Response {
    let Ok(text) = std::str::from_utf8(body) else {
        return Response::text(400, "Bad Request", "the offer is not UTF-8");
    };
    let offer = match SdpOffer::from_sdp_string(text) {
        Ok(o) => o,
        Err(e) => return Response::text(400, "Bad Request", &e.to_string()),
    };
    let mut rtc = Rtc::builder()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_dtls_cert(s.cert.clone())
        .set_crypto_provider(Arc::clone(&s.crypto))
        .build(Instant::now());
    let Ok(candidate) = Candidate::host(s.udp, "udp") else {
        return Response::text(500, "Internal Server Error", "no host candidate");
    };
    rtc.add_local_candidate(candidate);
    let answer = match rtc.sdp_api().accept_offer(offer) {
        Ok(a) => a,
        Err(e) => return Response::text(422, "Unprocessable Content", &e.to_string()),
    };
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    let added = Command::Add {
        id,
        rtc: Box::new(rtc),
        role,
        stream: name.to_owned(),
    };
    if s.commands.send(added).is_err() || s.waker.wake().is_err() {
        return Response::text(503, "Service Unavailable", "the media loop is gone");
    }
    let kind = match role {
        Role::Publish => "whip",
        Role::View => "whep",
    };
    Response {
        status: 201,
        reason: "Created",
        headers: vec![
            ("Content-Type", "application/sdp".into()),
            ("Location", format!("/{kind}/{name}/{id}")),
        ],
        body: answer.to_sdp_string().into_bytes(),
    }
}
