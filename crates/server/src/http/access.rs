//! Who may publish, who may watch, who may read the API.
//!
//! Publishing and watching have separate Bearer tokens (RFC 6750); a stream can have a key of
//! its own (a file of `stream key` lines, reloaded on SIGHUP) that admits its publisher and
//! no other; and a site can plug in its own users with an auth hook, an HTTP endpoint asked
//! before each publisher or viewer is admitted (see [`super::hook`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tokio::time::Instant;

use super::hook::{AuthHook, HookVerdict};
use super::names;
use super::ratelog::RateLog;

/// What a request wants to do with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Watch,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Watch => "watch",
        }
    }
}

/// A stream-keys file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{file}:{line}: {what}")]
    Bad {
        file: PathBuf,
        line: usize,
        what: String,
    },
}

/// Per-stream publishing keys, from a file of `STREAM KEY` lines.
#[derive(Debug)]
pub struct StreamKeys {
    path: PathBuf,
    keys: RwLock<HashMap<String, String>>,
}

impl StreamKeys {
    /// Reads `path`; an unreadable or malformed file is an error (the server does not start).
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        Ok(Self {
            path: path.to_owned(),
            keys: RwLock::new(read_keys(path)?),
        })
    }

    /// Reads the file again (on SIGHUP). On error the keys in force stay.
    pub fn reload(&self) -> Result<usize, KeysError> {
        let fresh = read_keys(&self.path)?;
        let n = fresh.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(n)
    }

    fn key_of(&self, stream: &str) -> Option<String> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    /// How many streams have a key.
    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Parses a keys file: one `STREAM KEY` per line (the key is the last word, so a name may hold
/// spaces); blank lines and lines starting with `#` are skipped.
fn read_keys(path: &Path) -> Result<HashMap<String, String>, KeysError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeysError::Read(path.to_owned(), e))?;
    let mut keys = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |what: String| KeysError::Bad {
            file: path.to_owned(),
            line: i + 1,
            what,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((stream, key)) = line.rsplit_once(char::is_whitespace) else {
            return Err(bad("expected `STREAM KEY`".into()));
        };
        let stream = stream.trim_end();
        names::check(stream).map_err(|e| bad(e.to_string()))?;
        if keys.insert(stream.to_owned(), key.to_owned()).is_some() {
            return Err(bad(format!("stream {stream:?} has a second key")));
        }
    }
    Ok(keys)
}

/// Everything that decides whether a request is let in.
#[derive(Debug, Default)]
pub struct Access {
    /// Admits publishing to any stream (and watching).
    pub publish_token: Option<String>,
    /// Admits watching any stream.
    pub watch_token: Option<String>,
    /// Guards `/metrics` and `/api/streams`.
    pub api_token: Option<String>,
    /// Per-stream publishing keys.
    pub keys: Option<StreamKeys>,
    /// Asked before a publisher or viewer is admitted.
    pub hook: Option<AuthHook>,
    /// Refusals are logged, but not a thousand a second.
    pub refused_log: Mutex<Option<RateLog>>,
}

/// The Bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, given) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(given.trim())
}

/// Constant-time comparison, so a token cannot be guessed byte by byte from timings.
fn same(given: Option<&str>, want: &str) -> bool {
    given.is_some_and(|g| {
        let (a, b) = (g.as_bytes(), want.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    })
}

impl Access {
    /// Only `--token`: one token for everything, as before keys were scoped.
    pub fn with_token(token: Option<String>) -> Self {
        Self {
            publish_token: token.clone(),
            watch_token: token,
            ..Self::default()
        }
    }

    /// The static rules (tokens and keys): `Err(reason)` if they refuse.
    fn static_check(
        &self,
        action: Action,
        stream: &str,
        token: Option<&str>,
    ) -> Result<(), String> {
        let publish = self.publish_token.as_deref();
        let key = self.keys.as_ref().and_then(|k| k.key_of(stream));
        let by_key = key.as_deref().is_some_and(|k| same(token, k));
        let by_publish = publish.is_some_and(|p| same(token, p));
        match action {
            Action::Publish => {
                if (publish.is_none() && self.keys.is_none()) || by_publish || by_key {
                    return Ok(());
                }
                Err(match (publish.is_some(), key.is_some()) {
                    (_, true) => format!("publishing {stream:?} needs its stream key"),
                    (true, false) => "publishing needs the publish token".to_owned(),
                    (false, false) => {
                        format!("stream {stream:?} has no key, so no one may publish it")
                    }
                })
            }
            Action::Watch => match self.watch_token.as_deref() {
                None => Ok(()),
                Some(w) if same(token, w) || by_publish || by_key => Ok(()),
                Some(_) => Err("watching needs the watch token".to_owned()),
            },
        }
    }

    /// Decides whether `action` on `stream` is let in; `Some(response)` is the refusal.
    /// `ask_hook` is set when a publisher or viewer is being admitted (POST); PATCH and DELETE
    /// on a session it already admitted only need the static rules.
    pub async fn check(
        &self,
        action: Action,
        stream: &str,
        headers: &HeaderMap,
        client: Option<SocketAddr>,
        ask_hook: bool,
    ) -> Option<Response> {
        let token = bearer(headers);
        if let Err(reason) = self.static_check(action, stream, token) {
            self.log_refusal(action, stream, client, &reason);
            return Some(unauthorized(&reason));
        }
        let hook = self.hook.as_ref().filter(|_| ask_hook)?;
        match hook.ask(action, stream, token, client).await {
            HookVerdict::Allow => None,
            HookVerdict::Deny(status) => {
                let reason = format!("the auth hook refused ({status})");
                self.log_refusal(action, stream, client, &reason);
                Some(super::error(StatusCode::FORBIDDEN, reason))
            }
            HookVerdict::Unavailable(why) => {
                let reason = format!("the auth hook did not answer: {why}");
                self.log_refusal(action, stream, client, &reason);
                let mut res = super::error(StatusCode::SERVICE_UNAVAILABLE, reason);
                res.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
                Some(res)
            }
        }
    }

    /// `/metrics` and `/api/streams`: open unless `--api-token` is set.
    pub fn check_api(&self, headers: &HeaderMap) -> Option<Response> {
        let want = self.api_token.as_deref()?;
        (!same(bearer(headers), want)).then(|| unauthorized("this needs the API token"))
    }

    /// One line per refusal, at most a burst per window (see [`RateLog`]). The stream name is
    /// escaped (`?`): it came from the client.
    fn log_refusal(&self, action: Action, stream: &str, client: Option<SocketAddr>, reason: &str) {
        let mut log = self
            .refused_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(skipped) = log.get_or_insert_with(RateLog::new).allow(Instant::now()) {
            let client = client.map_or_else(|| "-".to_owned(), |c| c.to_string());
            tracing::warn!(%client, action = action.as_str(), stream = ?stream, skipped, "refused: {}", reason.escape_debug());
        }
    }
}

/// `401` with `WWW-Authenticate: Bearer` (RFC 6750 §3) and the reason.
fn unauthorized(reason: &str) -> Response {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, "Bearer")
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!("{reason}\n")))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Result<HashMap<String, String>, KeysError> {
        let path = std::env::temp_dir().join(format!(
            "leanrtc-keys-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        let r = read_keys(&path);
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn keys_file_lines() {
        let k = keys("# comment\n\ncam k1\nroom 1\t k2 \n").unwrap();
        assert_eq!(k.get("cam").map(String::as_str), Some("k1"));
        assert_eq!(k.get("room 1").map(String::as_str), Some("k2"));
        assert!(matches!(keys("cam\n"), Err(KeysError::Bad { line: 1, .. })));
        assert!(matches!(
            keys("a k\na j\n"),
            Err(KeysError::Bad { line: 2, .. })
        ));
    }

    #[test]
    fn publish_and_watch_are_separate() {
        let a = Access {
            publish_token: Some("pub".into()),
            watch_token: Some("watch".into()),
            ..Access::default()
        };
        assert!(a.static_check(Action::Publish, "x", Some("pub")).is_ok());
        assert!(a.static_check(Action::Publish, "x", Some("watch")).is_err());
        assert!(a.static_check(Action::Publish, "x", None).is_err());
        assert!(a.static_check(Action::Watch, "x", Some("watch")).is_ok());
        assert!(a.static_check(Action::Watch, "x", Some("pub")).is_ok());
        assert!(a.static_check(Action::Watch, "x", Some("nope")).is_err());
        let only_publish = Access {
            publish_token: Some("pub".into()),
            ..Access::default()
        };
        assert!(only_publish.static_check(Action::Watch, "x", None).is_ok());
        assert!(
            only_publish
                .static_check(Action::Publish, "x", None)
                .is_err()
        );
    }
}
