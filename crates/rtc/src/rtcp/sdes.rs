//! Source description (RFC 3550 §6.5) and goodbye (§6.6).

use super::{PT_BYE, PT_SDES, RtcpError, RtcpWriter, be32, check_count, need};

/// SDES item type of the canonical name (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;

/// One SDES item: its type (1 = CNAME … 8 = PRIV) and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type, 1–255.
    pub kind: u8,
    /// The item's value, up to 255 bytes.
    pub text: &'a [u8],
}

/// Checks the chunk at `at` (SSRC, items, null octet, padding to 32 bits) and returns where the
/// next chunk starts. Chunks start 32-bit aligned: the body begins after the 4-byte header.
fn chunk_end(body: &[u8], at: usize) -> Result<usize, RtcpError> {
    let mut pos = at + 4;
    loop {
        match body.get(pos) {
            None => return Err(RtcpError::BadSdes),
            Some(0) => break,
            Some(_) => {
                let len = *body.get(pos + 1).ok_or(RtcpError::BadSdes)?;
                pos += 2 + usize::from(len);
            }
        }
    }
    // The item list ends with one or more null octets up to the next 32-bit boundary.
    Ok((pos + 1).next_multiple_of(4).min(body.len()))
}

/// A source description packet: `count` chunks of items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> Sdes<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let mut at = 0;
        for _ in 0..count {
            at = chunk_end(body, at)?;
        }
        Ok(Self { body, count })
    }

    /// The chunks, one per source.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let body = self.body;
        let mut at = 0;
        (0..self.count).map_while(move |_| {
            let start = at;
            at = chunk_end(body, start).ok()?;
            Some(SdesChunk {
                ssrc: be32(body, start),
                items: body.get(start + 4..at)?,
            })
        })
    }
}

/// One SDES chunk: a source and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The source described.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }
    /// Its items, up to the null terminator.
    pub fn items(&self) -> impl Iterator<Item = SdesItem<'a>> + 'a {
        let data = self.items;
        let mut pos = 0;
        std::iter::from_fn(move || {
            let kind = *data.get(pos).filter(|&&k| k != 0)?;
            let len = usize::from(*data.get(pos + 1)?);
            let text = data.get(pos + 2..pos + 2 + len)?;
            pos += 2 + len;
            Some(SdesItem { kind, text })
        })
    }
    /// The CNAME, if present and UTF-8.
    pub fn cname(&self) -> Option<&'a str> {
        let item = self.items().find(|i| i.kind == SDES_CNAME)?;
        std::str::from_utf8(item.text).ok()
    }
}

/// A goodbye: the sources leaving and an optional reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> Bye<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let n = 4 * usize::from(count);
        need("BYE", body, n)?;
        if let Some(&len) = body.get(n) {
            body.get(n + 1..n + 1 + usize::from(len))
                .ok_or(RtcpError::BadByeReason)?;
        }
        Ok(Self { body, count })
    }
    /// The sources leaving.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let list = self.body.get(..4 * usize::from(self.count)).unwrap_or(&[]);
        list.chunks_exact(4).map(|c| be32(c, 0))
    }
    /// The reason for leaving, if one was given.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let n = 4 * usize::from(self.count);
        let len = usize::from(*self.body.get(n)?);
        self.body.get(n + 1..n + 1 + len)
    }
}

impl RtcpWriter<'_> {
    /// Appends an SDES packet: up to 31 chunks of `(ssrc, items)`.
    pub fn sdes(&mut self, chunks: &[(u32, &[SdesItem<'_>])]) -> Result<&mut Self, RtcpError> {
        check_count("SDES chunks", chunks.len(), 31)?;
        for item in chunks.iter().flat_map(|(_, items)| items.iter()) {
            check_count("SDES item bytes", item.text.len(), 255)?;
            if item.kind == 0 {
                return Err(RtcpError::BadSdes);
            }
        }
        let start = self.begin(chunks.len() as u8, PT_SDES);
        for (ssrc, items) in chunks {
            self.put32(*ssrc);
            let mut len = 0;
            for item in *items {
                self.put(&[item.kind, item.text.len() as u8]);
                self.put(item.text);
                len += 2 + item.text.len();
            }
            // Null terminator plus padding to the chunk's 32-bit boundary: 1 to 4 zeros.
            self.put(&[0; 4][..4 - len % 4]);
        }
        self.finish(start, false)
    }

    /// Appends an SDES packet with one CNAME, what every compound packet carries (§6.1).
    pub fn cname(&mut self, ssrc: u32, cname: &str) -> Result<&mut Self, RtcpError> {
        let item = SdesItem {
            kind: SDES_CNAME,
            text: cname.as_bytes(),
        };
        self.sdes(&[(ssrc, &[item])])
    }

    /// Appends a BYE for up to 31 sources with an optional reason of up to 255 bytes.
    pub fn bye(&mut self, ssrcs: &[u32], reason: Option<&[u8]>) -> Result<&mut Self, RtcpError> {
        check_count("BYE sources", ssrcs.len(), 31)?;
        check_count("BYE reason bytes", reason.map_or(0, <[u8]>::len), 255)?;
        let start = self.begin(ssrcs.len() as u8, PT_BYE);
        for s in ssrcs {
            self.put32(*s);
        }
        if let Some(r) = reason {
            self.put(&[r.len() as u8]);
            self.put(r);
        }
        self.finish(start, false)
    }
}
