//! A simulated WHIP/WHEP client: our own `rtc::peer` client role (controlling ICE agent,
//! DTLS, SRTP), made as the bench's `Offer::new`/`accept` make it, without a socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rtc::dtls::{DtlsConfig, Fingerprint};
use rtc::ice::Credentials;
use rtc::peer::{Peer, PeerEvent, PeerSetup, Received};
use rtc::rand::Rng;
use rtc::receive::TwccRecorder;
use rtc::rtcp::RtcpWriter;
use rtc::rtp::RtpPacket;
use rtc::sdp::{
    self, Codec, Direction, DtlsRole, MediaKind, Negotiated, OfferConfig, SessionDescription,
};

use super::{Dice, Link, SERVER};
use crate::control::Role;

/// The header-extension ids a simulcast offer gives the RID and repaired RID.
pub const RID_EXT: u8 = 13;
pub const RRID_EXT: u8 = 14;

/// Room after a packet for the SRTP tag and SRTCP index.
const TAG_ROOM: usize = 32;

/// An offer made and not yet answered.
pub struct Offer {
    pub sdp: String,
    description: SessionDescription,
    credentials: Credentials,
    local: SocketAddr,
}

impl Offer {
    /// An offer to publish (VP8 + Opus) or to play, with `local` as its one candidate.
    pub fn new(role: Role, local: SocketAddr, dtls: &DtlsConfig, seed: u64) -> Self {
        let mut rng = Rng::seeded(seed);
        let credentials = Credentials::random(&mut rng);
        let mut config = OfferConfig::new(
            &credentials.ufrag,
            &credentials.pwd,
            dtls.certificate().fingerprint().0,
            vec![local],
            match role {
                Role::Publish => Direction::SendOnly,
                Role::Play => Direction::RecvOnly,
            },
        );
        if role == Role::Publish {
            config.codecs = vec![Codec::Vp8, Codec::Opus];
        }
        let description = sdp::create_offer(&config, &mut rng);
        Offer {
            sdp: description.to_string(),
            description,
            credentials,
            local,
        }
    }

    /// The same offer sending simulcast layers `rids` (RFC 8853) on its video section, named
    /// by the RID and repaired-RID header extensions (ids [`RID_EXT`], [`RRID_EXT`]), as
    /// Chromium offers `sendEncodings`.
    pub fn simulcast(mut self, rids: &[&str]) -> Self {
        let mut text = String::new();
        let mut in_video = false;
        let video_lines = || {
            let mut lines = format!(
                "a=extmap:{RID_EXT} urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
                 a=extmap:{RRID_EXT} urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
            );
            for rid in rids {
                lines.push_str(&format!("a=rid:{rid} send\r\n"));
            }
            lines.push_str(&format!("a=simulcast:send {}\r\n", rids.join(";")));
            lines
        };
        for line in self.sdp.split_terminator("\r\n") {
            if line.starts_with("m=") && in_video {
                text.push_str(&video_lines());
            }
            if line.starts_with("m=") {
                in_video = line.starts_with("m=video");
            }
            text.push_str(line);
            text.push_str("\r\n");
        }
        if in_video {
            text.push_str(&video_lines());
        }
        self.description = SessionDescription::parse(&text).expect("the edited offer parses");
        self.sdp = text;
        self
    }

    /// The same offer without the transport-wide-cc header extension: the viewer then gets
    /// no estimate (and sends no feedback).
    pub fn without_transport_cc(mut self) -> Self {
        let text: String = self
            .sdp
            .split_terminator("\r\n")
            .filter(|l| !l.contains("transport-wide-cc"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        self.description = SessionDescription::parse(&text).expect("the edited offer parses");
        self.sdp = text;
        self
    }

    /// Accepts the server's answer and starts checking towards its candidate.
    #[allow(clippy::too_many_arguments)] // a client is made of each of these
    pub fn accept(
        self,
        now: Instant,
        answer: &str,
        dtls: Arc<DtlsConfig>,
        mapped: SocketAddr,
        up: Link,
        down: Link,
        seed: u64,
    ) -> Client {
        let parsed = SessionDescription::parse(answer).expect("the answer parses");
        let negotiated = sdp::accept_answer(&self.description, &parsed).expect("usable answer");
        let remotes: Vec<SocketAddr> = negotiated
            .remote_candidates
            .iter()
            .filter_map(|c| c.socket_addr())
            .collect();
        assert_eq!(remotes, [SERVER], "the answer's candidates");
        let fingerprint = negotiated
            .remote_fingerprints
            .iter()
            .find(|f| f.algorithm.eq_ignore_ascii_case("sha-256"))
            .and_then(|f| <[u8; 32]>::try_from(f.bytes.as_slice()).ok())
            .expect("a sha-256 fingerprint");
        let setup = PeerSetup {
            remote_fingerprint: Fingerprint(fingerprint),
            dtls_client: negotiated.dtls_role == DtlsRole::Client,
        };
        let remote = Credentials {
            ufrag: negotiated.remote_ice_ufrag.clone(),
            pwd: negotiated.remote_ice_pwd.clone(),
        };
        let peer = Peer::new_controlling(
            now,
            dtls,
            self.credentials.clone(),
            &remote,
            self.local,
            &remotes,
            &setup,
            Rng::seeded(seed ^ 0x5eed),
        );
        let twcc = negotiated
            .media
            .iter()
            .filter(|m| m.direction == Direction::RecvOnly)
            .find_map(|m| m.extension_id(sdp::HeaderExtension::TransportWideCc))
            .map(|id| (id, TwccRecorder::new()));
        Client {
            peer,
            negotiated,
            credentials: self.credentials,
            remote,
            local: self.local,
            mapped,
            up,
            down,
            dice: Dice::new(seed),
            connected: None,
            rtp: Vec::new(),
            rtcp: Vec::new(),
            twcc,
        }
    }
}

/// One RTP packet a client received, unprotected.
#[derive(Debug, Clone)]
pub struct Got {
    pub at: Instant,
    pub packet: Vec<u8>,
}

impl Got {
    pub fn view(&self) -> RtpPacket<'_> {
        RtpPacket::parse(&self.packet).expect("the server sends valid RTP")
    }
}

/// A simulated client.
pub struct Client {
    pub peer: Peer,
    pub negotiated: Negotiated,
    /// Our ICE credentials and the server's (for hand-made checks).
    pub credentials: Credentials,
    pub remote: Credentials,
    /// The address the client's socket has.
    pub local: SocketAddr,
    /// The address its NAT maps it to: what the server sees.
    pub mapped: SocketAddr,
    pub up: Link,
    pub down: Link,
    pub dice: Dice,
    /// When DTLS finished.
    pub connected: Option<Instant>,
    /// RTP received, in arrival order.
    pub rtp: Vec<Got>,
    /// RTCP received.
    pub rtcp: Vec<Vec<u8>>,
    /// A viewer's transport-wide CC feedback on what it receives, as a browser sends it
    /// (when the answer took the extension).
    pub twcc: Option<(u8, TwccRecorder)>,
}

impl Client {
    /// A datagram from the server.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, mut bytes: Vec<u8>) {
        match self.peer.handle_datagram(now, from, self.local, &mut bytes) {
            Received::Rtp(p) => {
                if let Some((id, recorder)) = &mut self.twcc
                    && let Ok(view) = RtpPacket::parse(p)
                    && let Some(seq) = view.extension(*id).and_then(rtc::rtp::ext::twcc_seq)
                {
                    recorder.record(now, seq);
                }
                self.rtp.push(Got {
                    at: now,
                    packet: p.to_vec(),
                });
            }
            Received::Rtcp(p) => self.rtcp.push(p.to_vec()),
            Received::Nothing => {}
        }
    }

    /// Transport-wide feedback due now, as a plain RTCP packet.
    pub fn poll_twcc(&mut self, now: Instant) -> Option<Vec<u8>> {
        let (_, recorder) = self.twcc.as_mut()?;
        let mut out = Vec::new();
        let mut w = RtcpWriter::new(&mut out);
        w.rr(7, &[]).ok()?;
        let before = w.len();
        while w.len() < 1000 && recorder.poll_feedback(now, 7, 0, &mut w).ok()? {}
        (w.len() > before).then_some(out)
    }

    pub fn timeout(&self) -> Option<Instant> {
        self.peer.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.peer.handle_timeout(now);
    }

    /// What the peer queued to send, and its events taken.
    pub fn drain(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.peer.poll_transmit() {
            out.push(t.contents.to_vec());
        }
        while let Some(event) = self.peer.poll_event() {
            if let PeerEvent::Connected { .. } = event {
                self.connected = Some(now);
            }
        }
        out
    }

    /// Protects a plain RTP (`rtp`) or RTCP packet.
    pub fn protect(&mut self, packet: &[u8], rtp: bool) -> Option<Vec<u8>> {
        let mut buf = packet.to_vec();
        buf.resize(packet.len() + TAG_ROOM, 0);
        let n = if rtp {
            self.peer.protect_rtp(&mut buf, packet.len())
        } else {
            self.peer.protect_rtcp(&mut buf, packet.len())
        }
        .ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// The payload types of the negotiated video codec and of its RTX.
    pub fn video_pts(&self) -> (u8, Option<u8>) {
        let codec = self
            .negotiated
            .media
            .iter()
            .filter(|m| m.kind == MediaKind::Video)
            .flat_map(|m| m.codecs.first())
            .next()
            .expect("a video codec");
        (codec.pt, codec.rtx_pt)
    }

    /// The payload type of the negotiated audio codec, if audio was negotiated.
    pub fn audio_pt(&self) -> Option<u8> {
        self.negotiated
            .media
            .iter()
            .filter(|m| m.kind == MediaKind::Audio)
            .flat_map(|m| m.codecs.first())
            .map(|c| c.pt)
            .next()
    }

    /// Audio packets received.
    pub fn audio(&self) -> impl Iterator<Item = &Got> {
        let pt = self.audio_pt();
        self.rtp
            .iter()
            .filter(move |g| Some(g.view().payload_type()) == pt)
    }

    /// Our sending SSRC of the first `kind` section (publishers).
    pub fn local_ssrc(&self, kind: MediaKind) -> u32 {
        self.negotiated
            .media
            .iter()
            .find(|m| m.kind == kind)
            .and_then(|m| m.local_ssrc)
            .expect("a sending SSRC")
    }

    /// Video packets received (not RTX).
    pub fn video(&self) -> impl Iterator<Item = &Got> {
        let (pt, _) = self.video_pts();
        self.rtp
            .iter()
            .filter(move |g| g.view().payload_type() == pt)
    }

    /// Video sequence numbers received, RTX resends unwrapped to the ones they carry.
    pub fn video_seqs(&self) -> Vec<u16> {
        let (pt, rtx) = self.video_pts();
        self.rtp
            .iter()
            .filter_map(|g| {
                let v = g.view();
                if v.payload_type() == pt {
                    Some(v.sequence_number())
                } else if Some(v.payload_type()) == rtx {
                    let p = v.payload();
                    Some(u16::from_be_bytes([*p.first()?, *p.get(1)?]))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The SSRC the server sends our video on.
    pub fn video_ssrc(&self) -> Option<u32> {
        self.video().next().map(|g| g.view().ssrc())
    }
}
