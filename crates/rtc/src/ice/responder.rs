//! Answering Binding requests: what the lite and the controlling agent share (RFC 8445
//! §7.3, RFC 8489 §6.3 and §9.1.3). Each agent decides roles and pairs itself; this part
//! only authenticates a request, refuses a bad one with the right error response, and
//! builds the success response.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::{Credentials, IceError};
use crate::Transmit;
use crate::stun::{
    Class, ErrorCode, Integrity, Key, MAX_UNKNOWN, Message, MessageBuilder, Method, TransactionId,
};

/// Most datagrams queued when the caller does not poll; the oldest are dropped first.
const MAX_QUEUED: usize = 64;

/// Where a response goes: back the way the request came (RFC 8489 §6.3.1.2).
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply {
    pub tid: TransactionId,
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

impl Reply {
    pub fn to(msg: &Message<'_>, remote: SocketAddr, local: SocketAddr) -> Self {
        Self {
            tid: msg.transaction_id(),
            remote,
            local,
        }
    }
}

/// A request that passed authentication and the attribute check.
#[derive(Debug, Clone, Copy)]
pub(super) struct Authenticated<'m> {
    /// The integrity attribute the request used; the response uses the same one.
    pub kind: Integrity,
    /// The `their-ufrag` half of USERNAME.
    pub remote_ufrag: &'m [u8],
}

/// Our credentials and the HMAC key made from our password, which signs our responses.
#[derive(Debug)]
pub(super) struct Responder {
    local: Credentials,
    key: Key,
}

impl Responder {
    pub fn new(local: Credentials) -> Self {
        Self {
            key: Key::new(local.pwd.as_bytes()),
            local,
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.local
    }

    /// RFC 8489 §6.3 order: authenticate (§9.1.3: 400 without USERNAME or
    /// MESSAGE-INTEGRITY, 401 for a USERNAME not `ours:theirs` or an integrity that does not
    /// verify under our password), then unknown comprehension-required attributes (§6.3.1:
    /// 420). `remote_ufrag` is the peer's when known; otherwise any non-empty one passes.
    /// An error response is queued in `out` before `Err` is returned.
    pub fn authenticate<'m>(
        &self,
        msg: &Message<'m>,
        reply: Reply,
        remote_ufrag: Option<&[u8]>,
        out: &mut VecDeque<Transmit>,
    ) -> Result<Authenticated<'m>, IceError> {
        let Some(username) = msg.username().filter(|_| msg.integrity_kind().is_some()) else {
            self.error(reply, None, ErrorCode::BAD_REQUEST, "Bad Request", out);
            return Err(IceError::MissingCredentials);
        };
        let Some(remote_ufrag) = self.check_username(username, remote_ufrag) else {
            self.error(
                reply,
                None,
                ErrorCode::UNAUTHENTICATED,
                "Unauthenticated",
                out,
            );
            return Err(IceError::WrongUsername);
        };
        let Ok(kind) = msg.verify_integrity(&self.key) else {
            // §9.1.3: 401, without MESSAGE-INTEGRITY (we cannot sign for a key we doubt).
            self.error(
                reply,
                None,
                ErrorCode::UNAUTHENTICATED,
                "Unauthenticated",
                out,
            );
            return Err(IceError::BadIntegrity);
        };
        let mut unknown = [0u16; MAX_UNKNOWN];
        let mut n = 0;
        for (slot, typ) in unknown.iter_mut().zip(msg.unknown_comprehension_required()) {
            *slot = typ;
            n += 1;
        }
        if let Some(types) = unknown.get(..n).filter(|t| !t.is_empty()) {
            self.respond(reply, Class::Error, Some(kind), out, |b| {
                b.error_code(ErrorCode::UNKNOWN_ATTRIBUTE, "Unknown Attribute")
                    .unknown_attributes(types);
            });
            return Err(IceError::UnknownAttributes);
        }
        Ok(Authenticated { kind, remote_ufrag })
    }

    /// `ours:theirs` → `theirs`, if `ours` is our ufrag and `theirs` is the peer's (or,
    /// before we know the peer's, anything non-empty).
    fn check_username<'m>(&self, username: &'m [u8], known: Option<&[u8]>) -> Option<&'m [u8]> {
        let colon = username.iter().position(|&b| b == b':')?;
        let (ours, theirs) = (username.get(..colon)?, username.get(colon + 1..)?);
        let theirs_ok = match known {
            Some(known) => theirs == known,
            None => !theirs.is_empty(),
        };
        (ours == self.local.ufrag.as_bytes() && theirs_ok).then_some(theirs)
    }

    /// The success response (RFC 8445 §7.3.1.2, RFC 8489 §14.2): XOR-MAPPED-ADDRESS is the
    /// request's source, signed like the request was, then FINGERPRINT.
    pub fn success(&self, reply: Reply, kind: Integrity, out: &mut VecDeque<Transmit>) {
        self.respond(reply, Class::Success, Some(kind), out, |b| {
            b.xor_mapped_address(reply.remote);
        });
    }

    /// An error response, signed when `kind` is given.
    pub fn error(
        &self,
        reply: Reply,
        kind: Option<Integrity>,
        code: u16,
        reason: &str,
        out: &mut VecDeque<Transmit>,
    ) {
        self.respond(reply, Class::Error, kind, out, |b| {
            b.error_code(code, reason);
        });
    }

    fn respond(
        &self,
        r: Reply,
        class: Class,
        kind: Option<Integrity>,
        out: &mut VecDeque<Transmit>,
        attrs: impl FnOnce(&mut MessageBuilder<'_>),
    ) {
        let mut contents = Vec::with_capacity(96);
        let mut b = MessageBuilder::new(&mut contents, class, Method::BINDING, r.tid);
        attrs(&mut b);
        if let Some(kind) = kind {
            b.integrity(kind, &self.key);
        }
        b.fingerprint();
        if out.len() >= MAX_QUEUED {
            out.pop_front();
        }
        out.push_back(Transmit {
            source: r.local,
            destination: r.remote,
            contents,
        });
    }
}
