//! [`SrtpSession`]: one direction's keys plus per-SSRC state, and the public
//! protect/unprotect calls.

use super::kdf::{self, SessionKeys, Stream};
use super::replay::{RtcpWindow, RtpWindow, estimate_index};
use super::transform::{E_FLAG, Transform, be32};
use super::{SrtpError, SrtpProfile};

/// At most this many SSRCs keep state per table; past it the oldest entry is forgotten. A
/// WebRTC session has a handful (audio, video, RTX, simulcast layers), and only packets that
/// authenticate create an entry, so only our keyed peer can fill the table.
const MAX_SSRCS: usize = 64;

/// The SRTP and SRTCP keys of one master key/salt (one direction of a DTLS-SRTP association)
/// and the state of every SSRC seen under them.
///
/// The same session can both protect (what we send with these keys) and unprotect (what the
/// peer sends with them); the two sides keep separate state. With DTLS-SRTP use
/// [`SrtpSession::from_dtls_keying_material`], which gives one session per direction.
///
/// Buffers: `protect_*` take the plaintext in `buf[..len]` and need
/// [`SrtpProfile::rtp_overhead`] / [`SrtpProfile::rtcp_overhead`] more bytes of room;
/// `unprotect_*` take exactly the received packet. On error the buffer's bytes are unspecified.
#[derive(Debug)]
pub struct SrtpSession {
    profile: SrtpProfile,
    rtp: Transform,
    rtcp: Transform,
    /// Highest SRTP packet index protected, per SSRC (the sender's ROC, RFC 3711 §3.3.1).
    sent: SsrcTable<u64>,
    /// Replay windows of received SRTP packets, per SSRC.
    received: SsrcTable<RtpWindow>,
    /// Replay windows of received SRTCP indices, per sender SSRC.
    received_rtcp: SsrcTable<RtcpWindow>,
    /// The next SRTCP index to send (RFC 3711 §3.4: starts at zero, 31 bits).
    rtcp_index: u32,
}

impl SrtpSession {
    /// A session from a master key and salt (RFC 3711 §4.3, key_derivation_rate 0). The key is
    /// 16 bytes; the salt 14 bytes for AES-CM, 12 for GCM ([`SrtpProfile::salt_len`]).
    pub fn new(
        profile: SrtpProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        let rtp = kdf::derive(profile, master_key, master_salt, Stream::Rtp)?;
        let rtcp = kdf::derive(profile, master_key, master_salt, Stream::Rtcp)?;
        Self::from_session_keys(profile, &rtp, &rtcp)
    }

    /// The (outbound, inbound) sessions for the keying material exported by DTLS
    /// (RFC 5764 §4.2: client key | server key | client salt | server salt). The DTLS client
    /// sends with the client key, the server with the server key.
    pub fn from_dtls_keying_material(
        profile: SrtpProfile,
        material: &[u8],
        local_is_dtls_client: bool,
    ) -> Result<(Self, Self), SrtpError> {
        if material.len() != profile.keying_material_len() {
            return Err(SrtpError::BadKeyLength);
        }
        let (keys, salts) = material.split_at(2 * profile.key_len());
        let (client_key, server_key) = keys.split_at(profile.key_len());
        let (client_salt, server_salt) = salts.split_at(profile.salt_len());
        let client = Self::new(profile, client_key, client_salt)?;
        let server = Self::new(profile, server_key, server_salt)?;
        Ok(if local_is_dtls_client {
            (client, server)
        } else {
            (server, client)
        })
    }

    /// A session from already derived session keys (RFC 7714 §16 gives its vectors so).
    pub(crate) fn from_session_keys(
        profile: SrtpProfile,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
    ) -> Result<Self, SrtpError> {
        Ok(Self {
            profile,
            rtp: Transform::new(profile, rtp)?,
            rtcp: Transform::new(profile, rtcp)?,
            sent: SsrcTable::new(),
            received: SsrcTable::new(),
            received_rtcp: SsrcTable::new(),
            rtcp_index: 0,
        })
    }

    /// The protection profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Encrypts and authenticates the RTP packet `buf[..len]` in place, appending the tag;
    /// returns the SRTP packet's length. The ROC follows the sequence numbers per SSRC, so a
    /// packet sent again (or late) keeps the index it had.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let (hdr, seq, ssrc) = rtp_header(buf.get(..len).ok_or(SrtpError::BufferTooSmall)?)?;
        let highest = self.sent.get_mut(ssrc);
        let index = match &highest {
            Some(h) => estimate_index(**h, seq),
            None => u64::from(seq),
        };
        if index >> 48 != 0 {
            return Err(SrtpError::IndexExhausted);
        }
        let out = self.rtp.protect_rtp(buf, hdr, len, ssrc, index)?;
        match highest {
            Some(h) => *h = (*h).max(index),
            None => self.sent.insert(ssrc, index),
        }
        Ok(out)
    }

    /// Verifies and decrypts the SRTP packet `buf` in place; returns the RTP packet's length
    /// (`buf[..n]`). ROC and replay window advance only once the packet has authenticated.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let authed = len
            .checked_sub(self.profile.rtp_overhead())
            .ok_or(SrtpError::TooShort)?;
        let (hdr, seq, ssrc) = rtp_header(buf.get(..authed).ok_or(SrtpError::TooShort)?)?;
        let window = self.received.get_mut(ssrc);
        let index = match &window {
            Some(w) => {
                let index = estimate_index(w.highest(), seq);
                w.check(index)?;
                index
            }
            None => u64::from(seq),
        };
        let out = self.rtp.unprotect_rtp(buf, hdr, len, ssrc, index)?;
        match window {
            Some(w) => w.accept(index),
            None => self.received.insert(ssrc, RtpWindow::new(index)),
        }
        Ok(out)
    }

    /// Encrypts and authenticates the (compound) RTCP packet `buf[..len]` in place, appending
    /// the E-flag/SRTCP index and the tag; returns the SRTCP packet's length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.protect_rtcp_with(buf, len, true)
    }

    /// [`SrtpSession::protect_rtcp`], optionally without encryption (E-flag clear). We never
    /// send that; the RFC vectors do.
    pub(crate) fn protect_rtcp_with(
        &mut self,
        buf: &mut [u8],
        len: usize,
        encrypt: bool,
    ) -> Result<usize, SrtpError> {
        let pkt = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        check_version(pkt)?;
        let ssrc = be32(pkt, 4)?;
        if self.rtcp_index & E_FLAG != 0 {
            return Err(SrtpError::IndexExhausted);
        }
        let out = self
            .rtcp
            .protect_rtcp(buf, len, ssrc, self.rtcp_index, encrypt)?;
        self.rtcp_index += 1;
        Ok(out)
    }

    /// Verifies (and decrypts, if its E-flag is set) the SRTCP packet `buf` in place; returns
    /// the RTCP packet's length (`buf[..n]`). Replays are refused per sender SSRC by index.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let (ssrc, word) = self.rtcp.rtcp_trailer(buf)?;
        check_version(buf)?;
        let index = u64::from(word & !E_FLAG);
        let window = self.received_rtcp.get_mut(ssrc);
        if let Some(w) = &window {
            w.check(index)?;
        }
        let len = buf.len();
        let out = self.rtcp.unprotect_rtcp(buf, len, ssrc, word)?;
        match window {
            Some(w) => w.accept(index),
            None => self.received_rtcp.insert(ssrc, RtcpWindow::new(index)),
        }
        Ok(out)
    }

    /// Sets the next SRTCP index to send (tests reproduce the RFC vectors' index).
    #[cfg(test)]
    pub(crate) fn set_rtcp_index(&mut self, index: u32) {
        self.rtcp_index = index;
    }
}

fn check_version(pkt: &[u8]) -> Result<(), SrtpError> {
    match pkt.first() {
        Some(b) if b >> 6 == 2 => Ok(()),
        Some(_) => Err(SrtpError::BadVersion),
        None => Err(SrtpError::TooShort),
    }
}

/// (header length, sequence number, SSRC) of an RTP packet (RFC 3550 §5.1): 12 bytes, the
/// CSRCs, and the header extension if the X bit is set (RFC 8285 keeps the §5.3.1 framing).
fn rtp_header(pkt: &[u8]) -> Result<(usize, u16, u32), SrtpError> {
    check_version(pkt)?;
    let b0 = pkt.first().copied().unwrap_or(0);
    let ssrc = be32(pkt, 8)?;
    let seq = be32(pkt, 0)? as u16;
    let mut hdr = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = be32(pkt, hdr)? & 0xffff;
        hdr += 4 + 4 * words as usize;
    }
    if hdr > pkt.len() {
        return Err(SrtpError::TooShort);
    }
    Ok((hdr, seq, ssrc))
}

/// Per-SSRC state in a short vector: a linear scan over a few entries beats hashing on the
/// per-packet path, and it allocates only when a new SSRC appears.
#[derive(Debug)]
struct SsrcTable<T> {
    entries: Vec<(u32, T)>,
}

impl<T> SsrcTable<T> {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    fn get_mut(&mut self, ssrc: u32) -> Option<&mut T> {
        self.entries
            .iter_mut()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, v)| v)
    }

    /// Adds an SSRC not yet in the table, forgetting the oldest one if it is full.
    fn insert(&mut self, ssrc: u32, value: T) {
        if self.entries.len() >= MAX_SSRCS {
            self.entries.remove(0);
        }
        self.entries.push((ssrc, value));
    }
}
