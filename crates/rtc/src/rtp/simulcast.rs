//! Simulcast on the receive side: reading a packet's stream identity from its header
//! extensions — MID (RFC 8843 §15), RID and repaired RID (RFC 8852 §3) — and learning which
//! simulcast layer each unsignalled SSRC carries (RFC 8853 §5.2: a browser announces no
//! SSRC per layer; the first packets of each carry its RID).

use super::RtpPacket;

/// The negotiated extension ids to read (from `NegotiatedMedia::extension_id`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamExtIds {
    /// `urn:ietf:params:rtp-hdrext:sdes:mid`.
    pub mid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`.
    pub rid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`.
    pub rrid: Option<u8>,
}

/// What one packet says about its stream; each only when present and well formed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamIds<'a> {
    /// The media section.
    pub mid: Option<&'a str>,
    /// The simulcast layer (rid) of a media packet.
    pub rid: Option<&'a str>,
    /// The layer an RTX packet repairs.
    pub rrid: Option<&'a str>,
}

/// RFC 8852 §3 / RFC 8851 §10: a rid is 1-255 bytes of letters, digits, `-` and `_`.
pub fn rid(value: &[u8]) -> Option<&str> {
    let ok = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    if value.is_empty() || value.len() > 255 || !value.iter().all(ok) {
        return None;
    }
    std::str::from_utf8(value).ok()
}

impl<'a> StreamIds<'a> {
    /// Reads the MID, RID and repaired RID of `packet`.
    pub fn read(packet: &RtpPacket<'a>, ids: StreamExtIds) -> Self {
        let get = |id: Option<u8>| id.and_then(|id| packet.extension(id));
        Self {
            mid: get(ids.mid).and_then(super::ext::mid),
            rid: get(ids.rid).and_then(rid),
            rrid: get(ids.rrid).and_then(rid),
        }
    }
}

/// Which layer a packet's SSRC carries, and whether it is that layer's RTX stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSsrc {
    /// Index into the negotiated layers (`NegotiatedMedia::simulcast`).
    pub layer: usize,
    /// An RTX (RFC 4588) stream repairing the layer (it named the layer in the RRID).
    pub repair: bool,
}

/// Learns SSRC → layer for one simulcast media section. Bounded: one media and one RTX
/// SSRC per layer; a new SSRC claiming a layer replaces the old one (a publisher that
/// restarted its encoder), so a peer cannot grow it.
#[derive(Debug, Clone)]
pub struct SimulcastSsrcs {
    rids: Vec<String>,
    /// `(ssrc, layer, repair)`.
    known: Vec<(u32, usize, bool)>,
}

impl SimulcastSsrcs {
    /// For the negotiated layers' rids, in their order.
    pub fn new<S: Into<String>>(rids: impl IntoIterator<Item = S>) -> Self {
        Self {
            rids: rids.into_iter().map(Into::into).collect(),
            known: Vec::new(),
        }
    }

    /// The layer of a packet from `ssrc` that carries `ids`. A packet's RID (or RRID)
    /// binds its SSRC to that layer; later packets without one (browsers stop sending it
    /// once RTCP flows) are mapped by SSRC. `None`: not known yet, or no such rid.
    pub fn classify(&mut self, ssrc: u32, ids: &StreamIds<'_>) -> Option<LayerSsrc> {
        let named = ids
            .rid
            .map(|r| (r, false))
            .or(ids.rrid.map(|r| (r, true)))
            .and_then(|(r, repair)| Some((self.rids.iter().position(|x| x == r)?, repair)));
        if let Some((layer, repair)) = named {
            self.known
                .retain(|&(s, l, r)| s != ssrc && !(l == layer && r == repair));
            self.known.push((ssrc, layer, repair));
            return Some(LayerSsrc { layer, repair });
        }
        self.known
            .iter()
            .find(|(s, ..)| *s == ssrc)
            .map(|&(_, layer, repair)| LayerSsrc { layer, repair })
    }

    /// The media SSRC learnt for `layer` (to send it PLI/FIR), if any yet.
    pub fn ssrc_of(&self, layer: usize) -> Option<u32> {
        self.known
            .iter()
            .find(|&&(_, l, repair)| l == layer && !repair)
            .map(|&(s, ..)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    fn packet(ssrc: u32, exts: &[(u8, &[u8])]) -> Vec<u8> {
        let mut buf = vec![0; 200];
        let h = RtpHeader {
            ssrc,
            payload_type: 96,
            extensions: exts,
            ..RtpHeader::default()
        };
        let n = h.write(b"payload", 0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    const IDS: StreamExtIds = StreamExtIds {
        mid: Some(4),
        rid: Some(10),
        rrid: Some(11),
    };

    #[test]
    fn reads_mid_rid_and_rrid() {
        let bytes = packet(1, &[(4, b"1"), (10, b"h"), (3, b"xx")]);
        let p = RtpPacket::parse(&bytes).unwrap();
        let ids = StreamIds::read(&p, IDS);
        assert_eq!((ids.mid, ids.rid, ids.rrid), (Some("1"), Some("h"), None));
        let bytes = packet(2, &[(11, b"f")]);
        let ids = StreamIds::read(&RtpPacket::parse(&bytes).unwrap(), IDS);
        assert_eq!(ids.rrid, Some("f"));
        // Not negotiated: not read, even if an element with that id is there.
        let none = StreamIds::read(&RtpPacket::parse(&bytes).unwrap(), StreamExtIds::default());
        assert_eq!(none, StreamIds::default());
        assert_eq!(rid(b"a b"), None);
        assert_eq!(rid(b""), None);
        assert_eq!(rid(&[b'a'; 256]), None);
        assert_eq!(rid(b"hi_res-2"), Some("hi_res-2"));
    }

    #[test]
    fn learns_unsignalled_ssrcs_by_rid_and_keeps_them_without_it() {
        let mut s = SimulcastSsrcs::new(["q", "h", "f"]);
        let with = |rid| StreamIds {
            rid: Some(rid),
            ..StreamIds::default()
        };
        let bare = StreamIds::default();
        assert_eq!(s.classify(100, &bare), None, "nothing known yet");
        let h = LayerSsrc {
            layer: 1,
            repair: false,
        };
        assert_eq!(s.classify(100, &with("h")), Some(h));
        assert_eq!(s.classify(100, &bare), Some(h), "RID no longer sent");
        assert_eq!(s.classify(300, &with("x")), None, "not a negotiated rid");
        let rtx = StreamIds {
            rrid: Some("h"),
            ..StreamIds::default()
        };
        let rh = LayerSsrc {
            layer: 1,
            repair: true,
        };
        assert_eq!(s.classify(101, &rtx), Some(rh));
        assert_eq!(s.classify(101, &bare), Some(rh));
        assert_eq!(s.ssrc_of(1), Some(100));
        assert_eq!(s.ssrc_of(2), None);
        // The encoder restarted with a new SSRC for `h`: it replaces 100.
        assert_eq!(s.classify(200, &with("h")), Some(h));
        assert_eq!(s.classify(100, &bare), None);
        assert_eq!(s.ssrc_of(1), Some(200));
        // Many SSRCs claiming layers keep the table at one media + one RTX per layer.
        for ssrc in 1000..2000 {
            let r = ["q", "h", "f"][ssrc as usize % 3];
            s.classify(ssrc, &with(r));
        }
        assert_eq!(s.known.len(), 4, "three media and h's RTX");
    }
}
