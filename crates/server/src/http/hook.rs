//! The auth hook: before a publisher or viewer is admitted, the server POSTs
//! `{"action":"publish"|"watch","stream":…,"token":…|null,"client":"IP:PORT"}` to the site's
//! URL. A 2xx answer admits; any other status refuses (403); no answer within
//! [`HOOK_TIMEOUT`] refuses too (503), so a dead hook locks everyone out rather than in.
//!
//! The hook is expected on the same host or network (`http://127.0.0.1:9000/auth`): it is
//! asked with the small client of [`super::client`].

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::access::Action;
use super::client::{self, HttpUrl, Request};

/// How long the hook has to answer.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// An `--auth-url` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--auth-url {0}")]
pub struct BadHookUrl(#[from] client::BadUrl);

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
    url: HttpUrl,
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
        Ok(Self {
            url: HttpUrl::parse(url)?,
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
        let req = Request {
            method: "POST",
            body: Some(("application/json", &body)),
            bearer: None,
            max_body: 64 * 1024,
        };
        match client::send(&self.url, req, HOOK_TIMEOUT).await {
            Ok(reply) if (200..300).contains(&reply.status) => HookVerdict::Allow,
            Ok(reply) => HookVerdict::Deny(reply.status),
            Err(e) => HookVerdict::Unavailable(e.to_string()),
        }
    }
}
