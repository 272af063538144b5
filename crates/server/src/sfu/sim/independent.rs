//! An independent WebRTC stack as a simulated viewer: str0m (sans-IO), fed the simulated
//! network's datagrams and times. It sends its own RTCP (receiver reports, NACKs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use super::{Dice, Link};

/// One VP8 frame str0m reassembled.
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Arc<[u8]>,
    /// False when str0m saw a gap in sequence numbers before it.
    pub contiguous: bool,
}

/// A str0m viewer's offer, not yet answered.
pub struct Str0mOffer {
    pub sdp: String,
    rtc: Rtc,
    pending: str0m::change::SdpPendingOffer,
    video: Mid,
    local: SocketAddr,
}

impl Str0mOffer {
    /// A recvonly VP8 + Opus offer from `local`.
    pub fn new(now: Instant, local: SocketAddr) -> Self {
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("host candidate"));
        let mut change = rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        Str0mOffer {
            sdp: offer.to_sdp_string(),
            rtc,
            pending,
            video,
            local,
        }
    }

    /// Applies our answer.
    pub fn accept(mut self, answer: &str, mapped: SocketAddr, up: Link, down: Link) -> Str0mViewer {
        let parsed = str0m::change::SdpAnswer::from_sdp_string(answer)
            .unwrap_or_else(|e| panic!("str0m cannot parse our answer: {e}\n{answer}"));
        self.rtc
            .sdp_api()
            .accept_answer(self.pending, parsed)
            .unwrap_or_else(|e| panic!("str0m refuses our answer: {e}\n{answer}"));
        Str0mViewer {
            rtc: self.rtc,
            video: self.video,
            local: self.local,
            mapped,
            up,
            down,
            dice: Dice::new(u64::from(mapped.port()) ^ 0x57_0e),
            timeout: None,
            connected: None,
            frames: Vec::new(),
        }
    }
}

/// A str0m viewer on the simulated network.
pub struct Str0mViewer {
    rtc: Rtc,
    video: Mid,
    local: SocketAddr,
    /// The address its NAT maps it to.
    pub mapped: SocketAddr,
    pub up: Link,
    pub down: Link,
    pub dice: Dice,
    timeout: Option<Instant>,
    pub connected: Option<Instant>,
    pub frames: Vec<Frame>,
}

impl Str0mViewer {
    pub fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(contents) = bytes.try_into() else {
            return;
        };
        let receive = Receive {
            proto: Protocol::Udp,
            source: from,
            destination: self.local,
            contents,
        };
        self.rtc
            .handle_input(Input::Receive(now, receive))
            .unwrap_or_else(|e| panic!("str0m handle_input: {e}"));
    }

    pub fn timeout(&self) -> Option<Instant> {
        self.timeout
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.rtc
            .handle_input(Input::Timeout(now))
            .unwrap_or_else(|e| panic!("str0m timeout: {e}"));
    }

    /// What str0m wants sent; its events taken.
    pub fn drain(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match self.rtc.poll_output().expect("str0m poll_output") {
                Output::Timeout(at) => {
                    self.timeout = Some(at);
                    return out;
                }
                Output::Transmit(t) => out.push(t.contents.to_vec()),
                Output::Event(Event::Connected) => self.connected = Some(now),
                Output::Event(Event::MediaData(m)) if m.mid == self.video => {
                    self.frames.push(Frame {
                        data: m.data,
                        contiguous: m.contiguous,
                    });
                }
                Output::Event(_) => {}
            }
        }
    }
}
