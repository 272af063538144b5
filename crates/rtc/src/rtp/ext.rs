//! RFC 8285 header-extension elements, and the three extensions leanrtc reads or writes.

use std::ops::Range;

use super::{PROFILE_ONE_BYTE, PROFILE_TWO_BYTE};

/// `a=extmap` URI of the media identification extension (RFC 8843 §15.1, RFC 7941).
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// `a=extmap` URI of abs-send-time (webrtc.org).
pub const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
/// `a=extmap` URI of the transport-wide sequence number
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2).
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// The two element layouts of RFC 8285.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// §4.2: 4-bit ID, 4-bit length-minus-one.
    OneByte,
    /// §4.3: 8-bit ID, 8-bit length.
    TwoByte,
}

/// The form a "defined by profile" word announces, or `None` for a non-RFC 8285 extension.
pub(super) fn form(profile: u16) -> Option<Form> {
    match profile {
        PROFILE_ONE_BYTE => Some(Form::OneByte),
        p if p & 0xfff0 == PROFILE_TWO_BYTE => Some(Form::TwoByte),
        _ => None,
    }
}

/// One element: its ID, where its header starts, and where its value is.
struct Elem {
    id: u8,
    start: usize,
    value: Range<usize>,
}

/// Iterator over `(id, value)` of RFC 8285 elements. It stops at the first malformed element
/// (a value running past the block) and at ID 15 in the one-byte form (RFC 8285 §4.2).
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    data: &'a [u8],
    pos: usize,
    form: Option<Form>,
}

impl<'a> Extensions<'a> {
    pub(super) fn new(form: Option<Form>, data: &'a [u8]) -> Self {
        Self { data, pos: 0, form }
    }

    fn next_elem(&mut self) -> Option<Elem> {
        let form = self.form?;
        loop {
            let start = self.pos;
            let first = *self.data.get(start)?;
            let (id, len, value_at) = match form {
                // Padding bytes (ID 0) may sit between elements (RFC 8285 §4.1.1).
                Form::OneByte if first >> 4 == 0 => (0, 0, start + 1),
                Form::OneByte if first >> 4 == 15 => (15, 0, start),
                Form::OneByte => (first >> 4, usize::from(first & 0x0f) + 1, start + 1),
                Form::TwoByte if first == 0 => (0, 0, start + 1),
                Form::TwoByte => (first, usize::from(*self.data.get(start + 1)?), start + 2),
            };
            if id == 15 && form == Form::OneByte {
                self.form = None;
                return None;
            }
            let value = value_at..value_at + len;
            if value.end > self.data.len() {
                self.form = None;
                return None;
            }
            self.pos = value.end;
            if id != 0 {
                return Some(Elem { id, start, value });
            }
        }
    }

    /// Where the value of `id` lies in the extension data.
    pub(super) fn find_range(mut self, id: u8) -> Option<Range<usize>> {
        std::iter::from_fn(|| self.next_elem())
            .find(|e| e.id == id)
            .map(|e| e.value)
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let e = self.next_elem()?;
        Some((e.id, self.data.get(e.value)?))
    }
}

/// Rewrites or blanks the elements of one extension block in place.
pub(super) fn remap(data: &mut [u8], form: Form, map: &ExtIdMap) {
    let mut pos = 0;
    loop {
        let mut it = Extensions {
            data: &*data,
            pos,
            form: Some(form),
        };
        let Some(e) = it.next_elem() else { return };
        pos = it.pos;
        let to = map.get(e.id);
        let Some(first) = data.get_mut(e.start) else {
            return;
        };
        match form {
            Form::OneByte if to != 0 && to < 15 => *first = to << 4 | (*first & 0x0f),
            Form::TwoByte if to != 0 => *first = to,
            _ => {
                if let Some(bytes) = data.get_mut(e.start..e.value.end) {
                    bytes.fill(0);
                }
            }
        }
    }
}

/// A per-connection table from incoming extension IDs to outgoing ones; 0 means "drop".
#[derive(Clone, PartialEq, Eq)]
pub struct ExtIdMap([u8; 256]);

impl ExtIdMap {
    /// A map that drops every extension.
    pub fn drop_all() -> Self {
        Self([0; 256])
    }
    /// A map that keeps every ID as it is.
    pub fn identity() -> Self {
        let mut m = [0; 256];
        for (i, slot) in m.iter_mut().enumerate() {
            *slot = i as u8;
        }
        Self(m)
    }
    /// Maps `from` to `to` (0 drops `from`).
    pub fn set(&mut self, from: u8, to: u8) {
        self.0[usize::from(from)] = to;
    }
    /// Where `from` goes (0: dropped).
    pub fn get(&self, from: u8) -> u8 {
        self.0[usize::from(from)]
    }
}

impl Default for ExtIdMap {
    fn default() -> Self {
        Self::drop_all()
    }
}

impl std::fmt::Debug for ExtIdMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs = (0..=255u8)
            .map(|i| (i, self.get(i)))
            .filter(|&(_, to)| to != 0);
        f.debug_map().entries(pairs).finish()
    }
}

/// The MID carried by the sdes:mid extension (RFC 8843 §15.1): a non-empty token.
pub fn mid(value: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(value).ok()?;
    (!s.is_empty()).then_some(s)
}

/// abs-send-time: 24-bit 6.18 fixed-point seconds (6 bits of seconds, 18 of fraction).
pub fn abs_send_time(value: &[u8]) -> Option<u32> {
    let &[a, b, c] = value else { return None };
    Some(u32::from_be_bytes([0, a, b, c]))
}

/// Encodes a time in microseconds as abs-send-time's 6.18 seconds (wrapping every 64 s).
pub fn abs_send_time_from_micros(micros: u64) -> [u8; 3] {
    let v = ((u128::from(micros) << 18) / 1_000_000) as u32 & 0x00ff_ffff;
    let [_, a, b, c] = v.to_be_bytes();
    [a, b, c]
}

/// Decodes abs-send-time's 6.18 seconds to microseconds within its 64 s cycle.
pub fn abs_send_time_to_micros(v: u32) -> u64 {
    (u64::from(v & 0x00ff_ffff) * 1_000_000) >> 18
}

/// The transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2).
pub fn twcc_seq(value: &[u8]) -> Option<u16> {
    let &[a, b] = value else { return None };
    Some(u16::from_be_bytes([a, b]))
}
