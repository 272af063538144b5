//! Byte-level reading and writing for TLS presentation-language structures (RFC 5246 §4).

use super::error::DtlsError;

/// A cursor over borrowed bytes. Every read is bounds-checked and fails with
/// [`DtlsError::Decode`] naming the structure being read.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `buf`; errors name `what`.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn err(&self) -> DtlsError {
        DtlsError::Decode(self.what)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DtlsError> {
        if n > self.buf.len() {
            return Err(self.err());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A big-endian unsigned integer of `n` ≤ 8 bytes.
    pub fn uint(&mut self, n: usize) -> Result<u64, DtlsError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DtlsError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    /// Two bytes, big-endian.
    pub fn u16(&mut self) -> Result<u16, DtlsError> {
        Ok(self.uint(2)? as u16)
    }

    /// Three bytes, big-endian.
    pub fn u24(&mut self) -> Result<u32, DtlsError> {
        Ok(self.uint(3)? as u32)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DtlsError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A vector with a `len_bytes`-byte length prefix (`opaque x<0..2^8-1>` etc.).
    pub fn vec(&mut self, len_bytes: usize) -> Result<&'a [u8], DtlsError> {
        let n = self.uint(len_bytes)? as usize;
        self.take(n)
    }

    /// A length-prefixed vector read as a sub-reader.
    pub fn sub(&mut self, len_bytes: usize) -> Result<Reader<'a>, DtlsError> {
        Ok(Reader::new(self.vec(len_bytes)?, self.what))
    }

    /// A length-prefixed list of u16 values (cipher suites, groups, signature schemes).
    pub fn u16_list(&mut self, len_bytes: usize) -> Result<Vec<u16>, DtlsError> {
        let mut r = self.sub(len_bytes)?;
        let mut out = Vec::with_capacity(r.len() / 2);
        while !r.is_empty() {
            out.push(r.u16()?);
        }
        Ok(out)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Bytes left.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails if bytes are left over: trailing garbage is a decode error (RFC 5246 §7.4.1.4).
    pub fn finish(&self) -> Result<(), DtlsError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err())
        }
    }
}

/// Appends a big-endian integer of `n` bytes.
pub fn put_uint(out: &mut Vec<u8>, v: u64, n: usize) {
    out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
}

/// Appends a u16.
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a vector with a `len_bytes` length prefix written by `body`.
pub fn put_vec(out: &mut Vec<u8>, len_bytes: usize, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.resize(start + len_bytes, 0);
    body(out);
    let len = (out.len() - start - len_bytes) as u64;
    let be = len.to_be_bytes();
    if let Some(dst) = out.get_mut(start..start + len_bytes) {
        dst.copy_from_slice(&be[8 - len_bytes..]);
    }
}

/// Appends opaque bytes with a length prefix.
pub fn put_bytes(out: &mut Vec<u8>, len_bytes: usize, bytes: &[u8]) {
    put_vec(out, len_bytes, |o| o.extend_from_slice(bytes));
}

/// Appends a list of u16 with a length prefix.
pub fn put_u16_list(out: &mut Vec<u8>, len_bytes: usize, list: &[u16]) {
    put_vec(out, len_bytes, |o| list.iter().for_each(|v| put_u16(o, *v)));
}
