//! Stream names as they arrive in a URL path: what is allowed, and how one goes back into a
//! URL (`Location`).

use std::fmt::Write;

/// Longest stream name, in bytes of UTF-8. Names become file names when recording
/// (`{stream}-{time}.ivf`); most file systems stop at 255 bytes.
pub const MAX_NAME: usize = 128;

/// Why a stream name was refused; the message is sent as the body of a `400`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadName {
    #[error("the stream name is empty")]
    Empty,
    #[error("the stream name is {0} bytes long; at most {MAX_NAME} are allowed")]
    TooLong(usize),
    #[error(
        "the stream name may not hold control or bidirectional-formatting characters (found U+{0:04X})"
    )]
    Control(u32),
}

/// Checks a (percent-decoded) stream name before anything is made for it. Control characters
/// would forge log lines and break headers; bidi overrides make a name read as another one.
pub fn check(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(BadName::TooLong(name.len()));
    }
    match name.chars().find(|&c| c.is_control() || is_bidi_control(c)) {
        Some(c) => Err(BadName::Control(c as u32)),
        None => Ok(()),
    }
}

/// Unicode's explicit bidirectional formatting characters (UAX #9 §2).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// One path segment, percent-encoded (RFC 3986 §2.1): every byte that is not unreserved
/// (§2.3) becomes `%XX`, so `/`, `%`, spaces and non-ASCII survive the round trip.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_control_characters_or_too_long_are_refused() {
        assert_eq!(check("cam"), Ok(()));
        assert_eq!(check("room/1 café"), Ok(()));
        assert_eq!(check(""), Err(BadName::Empty));
        assert_eq!(check("a\nb"), Err(BadName::Control(0x0a)));
        assert_eq!(check("a\u{7f}"), Err(BadName::Control(0x7f)));
        assert_eq!(check("a\u{85}"), Err(BadName::Control(0x85)));
        assert_eq!(check("a\u{202e}b"), Err(BadName::Control(0x202e)));
        assert_eq!(check(&"x".repeat(MAX_NAME)), Ok(()));
        assert_eq!(
            check(&"x".repeat(MAX_NAME + 1)),
            Err(BadName::TooLong(MAX_NAME + 1))
        );
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("cam-1_a.b~"), "cam-1_a.b~");
        assert_eq!(encode_segment("room/1"), "room%2F1");
        assert_eq!(encode_segment("50% off"), "50%25%20off");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }
}
