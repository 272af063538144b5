//! The auth hook: before a publisher or viewer is admitted, the server POSTs
//! `{"action":"publish"|"watch","stream":…,"token":…|null,"client":"IP:PORT"}` to the site's
//! URL. A 2xx answer admits; any other status refuses (403); no answer within
//! [`HOOK_TIMEOUT`] refuses too (503), so a dead hook locks everyone out rather than in.
//!
//! The client is plain HTTP/1.1 with `Connection: close`: the hook is expected on the same
//! host or network (`http://127.0.0.1:9000/auth`); only the status line is read, by
//! `httparse` (the parser hyper uses).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::access::Action;

/// How long the hook has to answer.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of the hook's answer read while looking for the status line.
const MAX_HEAD: usize = 8 * 1024;

/// An `--auth-url` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--auth-url {url}: {why}")]
pub struct BadHookUrl {
    url: String,
    why: &'static str,
}

/// What the hook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookVerdict {
    /// A 2xx.
    Allow,
    /// Any other status.
    Deny(u16),
    /// No usable answer in time.
    Unavailable(String),
}

/// Where the hook lives.
#[derive(Debug, Clone)]
pub struct AuthHook {
    /// `host:port`, as given (resolved on each call, so a name may move).
    authority: String,
    /// The `Host` header.
    host: String,
    /// Path and query.
    path: String,
}

#[derive(Serialize)]
struct Question<'a> {
    action: &'static str,
    stream: &'a str,
    token: Option<&'a str>,
    client: Option<String>,
}

impl AuthHook {
    /// Parses `http://HOST[:PORT][/PATH]`.
    pub fn new(url: &str) -> Result<Self, BadHookUrl> {
        let bad = |why| BadHookUrl {
            url: url.to_owned(),
            why,
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported (run the hook nearby)"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() || host.contains('@') {
            return Err(bad("expected http://HOST[:PORT]/PATH"));
        }
        if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
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

    /// Asks whether `action` on `stream` with `token` from `client` is allowed.
    pub async fn ask(
        &self,
        action: Action,
        stream: &str,
        token: Option<&str>,
        client: Option<SocketAddr>,
    ) -> HookVerdict {
        let question = Question {
            action: action.as_str(),
            stream,
            token,
            client: client.map(|c| c.to_string()),
        };
        let body = match serde_json::to_vec(&question) {
            Ok(b) => b,
            Err(e) => return HookVerdict::Unavailable(e.to_string()),
        };
        match tokio::time::timeout(HOOK_TIMEOUT, self.post(&body)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => HookVerdict::Allow,
            Ok(Ok(status)) => HookVerdict::Deny(status),
            Ok(Err(e)) => HookVerdict::Unavailable(e.to_string()),
            Err(_) => HookVerdict::Unavailable(format!("no answer within {HOOK_TIMEOUT:?}")),
        }
    }

    /// One POST; the answer's status code.
    async fn post(&self, body: &[u8]) -> std::io::Result<u16> {
        let mut tcp = TcpStream::connect(self.authority.as_str()).await?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            body.len()
        );
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(body).await?;
        let mut buf = Vec::with_capacity(1024);
        loop {
            let mut chunk = [0u8; 1024];
            let n = tcp.read(&mut chunk).await?;
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            if let Some(status) = status_of(&buf)? {
                return Ok(status);
            }
            if n == 0 || buf.len() > MAX_HEAD {
                return Err(std::io::Error::other(
                    "the answer has no complete status line",
                ));
            }
        }
    }
}

/// The status code once `buf` holds a whole response head; `None` while it does not.
fn status_of(buf: &[u8]) -> std::io::Result<Option<u16>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(_)) => Ok(res.code),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(std::io::Error::other(format!("a malformed answer: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let h = AuthHook::new("http://127.0.0.1:9000/auth?x=1").unwrap();
        assert_eq!(
            (h.authority.as_str(), h.path.as_str()),
            ("127.0.0.1:9000", "/auth?x=1")
        );
        let h = AuthHook::new("http://auth.internal").unwrap();
        assert_eq!(
            (h.authority.as_str(), h.path.as_str()),
            ("auth.internal:80", "/")
        );
        let h = AuthHook::new("http://[::1]:81/a").unwrap();
        assert_eq!(h.authority, "[::1]:81");
        assert!(AuthHook::new("https://example.org/").is_err());
        assert!(AuthHook::new("http:///x").is_err());
        assert!(AuthHook::new("http://h/a b").is_err());
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            status_of(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap(),
            Some(204)
        );
        assert_eq!(
            status_of(b"HTTP/1.1 403 Forbidden\r\nA: b\r\n").unwrap(),
            None
        );
        assert!(status_of(b"garbage\r\n\r\n").is_err());
    }
}
