//! ICE (RFC 8445) as a media server needs it.
//!
//! * [`IceLite`]: the server's agent. A lite implementation (§2.5) only answers
//!   connectivity checks: it authenticates them, learns the peer's addresses from them,
//!   selects the pair the controlling peer nominates, and watches consent (RFC 7675).
//! * [`IceControlling`]: a small full agent for the client side (a WHEP client, tests, the
//!   load generator): it sends checks with RFC 8489 retransmissions, nominates one pair and
//!   keeps consent fresh; it also answers the peer's checks (learning peer-reflexive
//!   candidates, settling role conflicts), so the peer may be lite or full.
//!
//! Both are sans-IO: datagrams and the time go in through `handle_*`, datagrams to send,
//! events and the next wake-up come out of `poll_*`.

mod controlling;
mod lite;
mod responder;

use std::net::SocketAddr;
use std::time::Duration;

pub use controlling::{ControllingConfig, IceControlling};
pub use lite::{IceLite, MAX_PAIRS, NOMINATION_TIMEOUT, PAIR_STALE_AFTER};

use crate::rand::Rng;
use crate::stun::{Class, StunError};

/// RFC 7675 §5.1: consent is lost when no check has succeeded for 30 seconds.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// One side's ICE credentials (RFC 8445 §5.3, RFC 8839 §5.4).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username fragment, `a=ice-ufrag`.
    pub ufrag: String,
    /// The password, `a=ice-pwd`. For short-term credentials it is the HMAC key.
    pub pwd: String,
}

impl Credentials {
    /// Fresh credentials of ice-chars (ALPHA / DIGIT / "+" / "/", RFC 8839 §5.4): an
    /// 8-character ufrag (at least 4 required; 48 bits, which the UDP layer routes by) and
    /// a 24-character password (at least 22 required; 144 bits).
    pub fn random(rng: &mut Rng) -> Self {
        Self {
            ufrag: ice_chars(rng, 8),
            pwd: ice_chars(rng, 24),
        }
    }
}

/// `ice-ufrag = 4*256ice-char` (RFC 8839 §5.4).
pub const UFRAG_LEN: std::ops::RangeInclusive<usize> = 4..=256;
/// `ice-pwd = 22*256ice-char` (RFC 8839 §5.4).
pub const PWD_LEN: std::ops::RangeInclusive<usize> = 22..=256;

/// Why a peer's `a=ice-ufrag` or `a=ice-pwd` is refused (RFC 8839 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Too short or too long.
    #[error("{name} must be {min} to {max} ice-chars long, not {len} (RFC 8839 §5.4)")]
    Length {
        /// `ice-ufrag` or `ice-pwd`.
        name: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The shortest allowed.
        min: usize,
        /// The longest allowed.
        max: usize,
    },
    /// Holds something other than ALPHA / DIGIT / "+" / "/".
    #[error("{name} may only hold ice-chars (ALPHA / DIGIT / \"+\" / \"/\", RFC 8839 §5.4)")]
    Char {
        /// `ice-ufrag` or `ice-pwd`.
        name: &'static str,
    },
}

fn check(
    name: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), CredentialError> {
    // Characters first: a multi-byte character would make the byte length misleading.
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Err(CredentialError::Char { name });
    }
    if !range.contains(&value.len()) {
        return Err(CredentialError::Length {
            name,
            len: value.len(),
            min: *range.start(),
            max: *range.end(),
        });
    }
    Ok(())
}

/// Checks a peer's `a=ice-ufrag` value: 4 to 256 ice-chars (RFC 8839 §5.4).
pub fn check_ufrag(ufrag: &str) -> Result<(), CredentialError> {
    check("ice-ufrag", ufrag, UFRAG_LEN)
}

/// Checks a peer's `a=ice-pwd` value: 22 to 256 ice-chars (RFC 8839 §5.4).
pub fn check_pwd(pwd: &str) -> Result<(), CredentialError> {
    check("ice-pwd", pwd, PWD_LEN)
}

impl Credentials {
    /// A peer's credentials, if both are well-formed (RFC 8839 §5.4): what an offer or an
    /// ICE-restart sdpfrag may carry. An empty or a 100 KB value would otherwise become the
    /// USERNAME we match and the key of every MESSAGE-INTEGRITY check.
    pub fn from_peer(ufrag: &str, pwd: &str) -> Result<Self, CredentialError> {
        check_ufrag(ufrag)?;
        check_pwd(pwd)?;
        Ok(Self {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        })
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

fn ice_chars(rng: &mut Rng, n: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes);
    // 256 is a multiple of 64, so masking keeps the choice uniform.
    bytes
        .iter()
        .map(|&b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

/// What an agent tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    /// Lite: a check from `remote` to our `local` was accepted for the first time: the
    /// address is the peer's (RFC 8445 §7.3.1.3 peer-reflexive learning), so the I/O layer
    /// may route other datagrams from it to this agent's session. Controlling: our check
    /// on this pair succeeded, and the peer checked it too.
    AddressValidated {
        /// The peer's address.
        remote: SocketAddr,
        /// Our address it reached.
        local: SocketAddr,
    },
    /// A pair validated before was forgotten (the agent keeps a bounded number, dropping
    /// stale ones first): the I/O layer should stop routing datagrams from `remote` here,
    /// unless another pair still has it. Lite agent only.
    AddressRemoved {
        /// The peer's address.
        remote: SocketAddr,
        /// Our address it reached.
        local: SocketAddr,
    },
    /// The first pair was selected: media may flow between these addresses.
    Connected {
        /// The peer's address.
        remote: SocketAddr,
        /// Our address.
        local: SocketAddr,
    },
    /// A different pair was selected; send from now on to this one.
    SelectedPairChanged {
        /// The peer's address.
        remote: SocketAddr,
        /// Our address.
        local: SocketAddr,
    },
    /// The agent has given up; it accepts nothing more.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Why an agent disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// No valid check (lite) or successful consent check (controlling) for
    /// [`CONSENT_TIMEOUT`] on the selected pair (RFC 7675 §5.1).
    ConsentExpired,
    /// Lite: the peer nominated no pair within [`NOMINATION_TIMEOUT`].
    NotNominated,
    /// Controlling: every pair failed its checks.
    ChecksFailed,
}

/// Why an agent did not accept a datagram. Where the RFC calls for an error response
/// (400, 401, 420, 487), it has been queued before this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceError {
    /// Not a well-formed STUN message, or its FINGERPRINT is missing or wrong (RFC 8445
    /// §7.2.2 requires FINGERPRINT; RFC 8489 §7 says to discard such messages silently).
    #[error("not a valid STUN message: {0}")]
    Stun(#[from] StunError),
    /// A STUN method other than Binding.
    #[error("not a Binding message")]
    NotBinding,
    /// A class this agent does not expect (e.g. a response sent to the lite agent).
    #[error("unexpected {0:?} message")]
    UnexpectedClass(Class),
    /// A request without USERNAME or MESSAGE-INTEGRITY (answered 400, RFC 8489 §9.1.3).
    #[error("check without USERNAME or MESSAGE-INTEGRITY")]
    MissingCredentials,
    /// USERNAME is not `our-ufrag:their-ufrag` (answered 401, RFC 8489 §9.1.3).
    #[error("USERNAME does not name this session")]
    WrongUsername,
    /// MESSAGE-INTEGRITY does not verify (a request is answered 401; a response is dropped).
    #[error("MESSAGE-INTEGRITY does not verify")]
    BadIntegrity,
    /// Unknown comprehension-required attributes (answered 420, RFC 8489 §6.3.1).
    #[error("unknown comprehension-required attributes")]
    UnknownAttributes,
    /// The peer claims our role and loses the tie-break: it is controlled too (always so
    /// for the lite agent, which cannot control), or controlling too with a smaller
    /// tie-breaker (answered 487, RFC 8445 §7.3.1.1).
    #[error("role conflict: the peer claims our role and keeps the worse claim")]
    RoleConflict,
    /// A response that matches no transaction in progress.
    #[error("response to no transaction in progress")]
    UnknownTransaction,
    /// A response from or to other addresses than its request (RFC 8445 §7.2.5.2.1).
    #[error("response addresses are not symmetric with the check")]
    NonSymmetric,
    /// The agent has disconnected and accepts nothing more.
    #[error("agent is disconnected")]
    Closed,
}

/// Candidate priority (RFC 8445 §5.1.2.1).
pub fn candidate_priority(type_preference: u8, local_preference: u16, component: u8) -> u32 {
    (u32::from(type_preference) << 24)
        | (u32::from(local_preference) << 8)
        | (256 - u32::from(component))
}

/// Type preference of a peer-reflexive candidate, which is what a check's PRIORITY
/// carries (RFC 8445 §5.1.2.2, §7.1.1).
pub const PEER_REFLEXIVE_PREFERENCE: u8 = 110;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_credentials_follow_rfc8839() {
        let pwd22 = "a".repeat(22);
        assert!(Credentials::from_peer("abcd", &pwd22).is_ok());
        assert!(Credentials::from_peer(&"U+/9".repeat(64), &"p".repeat(256)).is_ok());
        let cases = [
            (
                "",
                pwd22.clone(),
                "ice-ufrag must be 4 to 256 ice-chars long, not 0",
            ),
            ("abc", pwd22.clone(), "not 3"),
            (&*"u".repeat(100_000), pwd22.clone(), "not 100000"),
            (
                "abcd",
                String::new(),
                "ice-pwd must be 22 to 256 ice-chars long, not 0",
            ),
            ("abcd", "a".repeat(21), "not 21"),
            ("abcd", "a".repeat(257), "not 257"),
            ("ab d", pwd22.clone(), "ice-ufrag may only hold ice-chars"),
            (
                "abcd",
                format!("{pwd22}="),
                "ice-pwd may only hold ice-chars",
            ),
            ("abcdé", pwd22.clone(), "ice-ufrag may only hold ice-chars"),
            ("ab:cd", pwd22.clone(), "ice-ufrag may only hold ice-chars"),
        ];
        for (ufrag, pwd, reason) in cases {
            let err = Credentials::from_peer(ufrag, &pwd).unwrap_err().to_string();
            assert!(err.contains(reason), "{ufrag:.10} {pwd:.10}: {err}");
        }
    }

    #[test]
    fn credentials_are_ice_chars_of_the_right_length() {
        let mut rng = Rng::seeded(1);
        let c = Credentials::random(&mut rng);
        assert_eq!((c.ufrag.len(), c.pwd.len()), (8, 24));
        let ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        };
        assert!(ok(&c.ufrag) && ok(&c.pwd));
        assert_ne!(c, Credentials::random(&mut rng));
        assert!(!format!("{c:?}").contains(&c.pwd));
    }

    #[test]
    fn priority_formula() {
        // Host, local preference 65535, component 1: 2^24*126 + 2^8*65535 + 255.
        assert_eq!(candidate_priority(126, 65535, 1), 2_130_706_431);
    }
}
