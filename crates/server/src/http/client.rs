//! A small HTTP/1.1 client for the few requests the server makes itself: the auth hook's
//! question, and a relay's WHEP `POST` and `DELETE` toward its origin. Plain `http://` with
//! `Connection: close` (the peers are the site's own services and nodes, on the same
//! network); the response head is read by `httparse` (the parser hyper uses), the body by
//! `Content-Length` or to the end of the connection, both bounded.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes of a response head.
const MAX_HEAD: usize = 16 * 1024;

/// A URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {why}")]
pub struct BadUrl {
    url: String,
    why: &'static str,
}

/// Where requests go: `http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port`, as given (resolved on each call, so a name may move).
    pub authority: String,
    /// The `Host` header.
    pub host: String,
    /// Path and query (at least `/`).
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://HOST[:PORT][/PATH]`.
    pub fn parse(url: &str) -> Result<Self, BadUrl> {
        let bad = |why| BadUrl {
            url: url.to_owned(),
            why,
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() || host.contains('@') {
            return Err(bad("expected http://HOST[:PORT]/PATH"));
        }
        if !path_is_clean(path) {
            return Err(bad("the path may not hold spaces or control characters"));
        }
        let has_port = host.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':')
        });
        let authority = if has_port && !(host.starts_with('[') && host.ends_with(']')) {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Ok(Self {
            authority,
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The same server with `path` (absolute, or relative to this URL's path's folder, as a
    /// `Location` header may give it; RFC 9110 §10.2.2).
    pub fn with_path(&self, path: &str) -> Option<Self> {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            let base = self.path.rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{base}/{path}")
        };
        path_is_clean(&path).then(|| Self {
            path,
            ..self.clone()
        })
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.host, self.path)
    }
}

fn path_is_clean(path: &str) -> bool {
    !path.chars().any(|c| c.is_ascii_control() || c == ' ')
}

/// One request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'static str,
    /// `(Content-Type, body)`.
    pub body: Option<(&'static str, &'a [u8])>,
    /// `Authorization: Bearer …`.
    pub bearer: Option<&'a str>,
    /// Most bytes of the response body kept; more is an error.
    pub max_body: usize,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `Location`, if any.
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// Why a request got no usable response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {0}: {1}")]
    Connect(String, #[source] std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a malformed answer: {0}")]
    Malformed(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Sends `req` to `url` and reads the whole response, within `limit`.
pub async fn send(url: &HttpUrl, req: Request<'_>, limit: Duration) -> Result<Reply, ClientError> {
    tokio::time::timeout(limit, exchange(url, req))
        .await
        .map_err(|_| ClientError::Timeout(limit))?
}

async fn exchange(url: &HttpUrl, req: Request<'_>) -> Result<Reply, ClientError> {
    let mut tcp = TcpStream::connect(url.authority.as_str())
        .await
        .map_err(|e| ClientError::Connect(url.authority.clone(), e))?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        req.method, url.path, url.host
    );
    if let Some(token) = req.bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = match req.body {
        Some((content_type, body)) => {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
            body
        }
        None => {
            head.push_str("Content-Length: 0\r\n");
            &[]
        }
    };
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(body).await?;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let n = tcp.read(&mut chunk).await?;
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let parsed = parse_head(&buf)?;
        if let Some(head) = parsed {
            return read_body(&mut tcp, buf, head, req.max_body).await;
        }
        if n == 0 {
            return Err(ClientError::Malformed(
                "the answer has no complete head".into(),
            ));
        }
        if buf.len() > MAX_HEAD {
            return Err(ClientError::Malformed(
                "the answer's head is too long".into(),
            ));
        }
    }
}

/// A response head: its status, `Location`, `Content-Length` and its own length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub location: Option<String>,
    pub content_length: Option<usize>,
    pub len: usize,
}

/// The head once `buf` holds a whole one; `None` while it does not.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, ClientError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ClientError::Malformed(e.to_string())),
    };
    let status = res
        .code
        .ok_or_else(|| ClientError::Malformed("no status code".into()))?;
    let value = |name: &str| {
        res.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let content_length = match value("content-length") {
        Some(v) => Some(
            v.parse()
                .map_err(|_| ClientError::Malformed(format!("Content-Length {v:?}")))?,
        ),
        None => None,
    };
    if value("transfer-encoding").is_some() {
        return Err(ClientError::Malformed(
            "chunked answers are not read; send Content-Length".into(),
        ));
    }
    Ok(Some(Head {
        status,
        location: value("location").map(str::to_owned),
        content_length,
        len,
    }))
}

async fn read_body(
    tcp: &mut TcpStream,
    mut buf: Vec<u8>,
    head: Head,
    max_body: usize,
) -> Result<Reply, ClientError> {
    let mut body = buf.split_off(head.len.min(buf.len()));
    let too_long = || ClientError::Malformed(format!("a body over {max_body} bytes"));
    if head.content_length.is_some_and(|n| n > max_body) {
        return Err(too_long());
    }
    let mut chunk = [0u8; 4096];
    loop {
        if head.content_length.is_some_and(|n| body.len() >= n) {
            body.truncate(head.content_length.unwrap_or(body.len()));
            break;
        }
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            if head.content_length.is_some_and(|want| body.len() < want) {
                return Err(ClientError::Malformed("the body ended early".into()));
            }
            break;
        }
        body.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if body.len() > max_body {
            return Err(too_long());
        }
    }
    Ok(Reply {
        status: head.status,
        location: head.location,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let h = HttpUrl::parse("http://127.0.0.1:9000/auth?x=1").unwrap();
        assert_eq!(
            (h.authority.as_str(), h.path.as_str()),
            ("127.0.0.1:9000", "/auth?x=1")
        );
        let h = HttpUrl::parse("http://auth.internal").unwrap();
        assert_eq!(
            (h.authority.as_str(), h.path.as_str()),
            ("auth.internal:80", "/")
        );
        let h = HttpUrl::parse("http://[::1]:81/a").unwrap();
        assert_eq!(h.authority, "[::1]:81");
        assert!(HttpUrl::parse("https://example.org/").is_err());
        assert!(HttpUrl::parse("http:///x").is_err());
        assert!(HttpUrl::parse("http://h/a b").is_err());
    }

    #[test]
    fn locations_resolve_against_the_url() {
        let u = HttpUrl::parse("http://o:8080/whep/cam").unwrap();
        assert_eq!(u.with_path("/whep/cam/abc").unwrap().path, "/whep/cam/abc");
        assert_eq!(u.with_path("cam/abc").unwrap().path, "/whep/cam/abc");
        assert!(u.with_path("/a b").is_none());
    }

    #[test]
    fn heads() {
        let h = parse_head(
            b"HTTP/1.1 201 Created\r\nLocation: /whep/s/1\r\nContent-Length: 4\r\n\r\nv=0\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.status, 201);
        assert_eq!(h.location.as_deref(), Some("/whep/s/1"));
        assert_eq!(h.content_length, Some(4));
        assert_eq!(
            parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
                .unwrap()
                .unwrap()
                .status,
            204
        );
        assert!(
            parse_head(b"HTTP/1.1 403 Forbidden\r\nA: b\r\n")
                .unwrap()
                .is_none()
        );
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    /// The head parser takes any bytes without panicking (the server crate is a binary, so
    /// this stands in for a cargo-fuzz target: random bytes and mutations of a real head).
    #[test]
    fn any_bytes_are_a_head_an_error_or_partial() {
        let real = b"HTTP/1.1 201 Created\r\nLocation: /whep/s/1\r\nContent-Length: 4\r\n\r\n";
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                real.to_vec()
            } else {
                (0..next() % 200).map(|_| next() as u8).collect()
            };
            for _ in 0..next() % 8 {
                if bytes.is_empty() {
                    break;
                }
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            let cut = (next() as usize) % (bytes.len() + 1);
            let _ = parse_head(&bytes[..cut]);
        }
    }

    /// A whole exchange against a socket that answers as a server would, in pieces.
    #[tokio::test(flavor = "current_thread")]
    async fn a_request_gets_its_reply_and_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = vec![0u8; 4096];
            let mut got = 0;
            while !req[..got].ends_with(b"offer") {
                got += s.read(&mut req[got..]).await.unwrap();
            }
            let text = String::from_utf8_lossy(&req[..got]).to_string();
            s.write_all(b"HTTP/1.1 201 Created\r\nLocation: /whep/s/9\r\nContent-")
                .await
                .unwrap();
            s.write_all(b"Length: 6\r\n\r\nans").await.unwrap();
            s.write_all(b"wer").await.unwrap();
            text
        });
        let url = HttpUrl::parse(&format!("http://{addr}/whep/s")).unwrap();
        let req = Request {
            method: "POST",
            body: Some(("application/sdp", b"offer")),
            bearer: Some("t0k"),
            max_body: 1024,
        };
        let reply = send(&url, req, Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply.status, 201);
        assert_eq!(reply.location.as_deref(), Some("/whep/s/9"));
        assert_eq!(reply.body, b"answer");
        let sent = server.await.unwrap();
        assert!(sent.starts_with("POST /whep/s HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("Authorization: Bearer t0k\r\n"), "{sent}");
        assert!(sent.contains("Content-Length: 5\r\n"), "{sent}");
    }
}
