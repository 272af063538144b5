//! An independent WebRTC stack as a WHEP viewer, in process: str0m (sans-IO) driven with a
//! std `UdpSocket` on 127.0.0.1 and the real clock. It offers recvonly VP8 video and Opus
//! audio, POSTs the offer with our HTTP client, and keeps every frame str0m reassembles.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use super::http;

/// One video frame as str0m depacketized it (RFC 7741 descriptors removed).
#[derive(Debug, Clone)]
pub struct VideoFrame {
    /// The VP8 frame.
    pub data: Arc<[u8]>,
    /// RTP timestamp, extended to 64 bits.
    pub rtp_time: u64,
    /// False when str0m saw a gap in sequence numbers before it.
    pub contiguous: bool,
    /// When str0m emitted it.
    pub at: Instant,
}

/// A str0m viewer of one WHEP session.
#[derive(Debug)]
pub struct Viewer {
    rtc: Rtc,
    socket: UdpSocket,
    buf: Vec<u8>,
    video_mid: Mid,
    audio_mid: Option<Mid>,
    /// The session's URL path, from `Location`.
    pub location: String,
    /// The offer str0m made.
    pub offer: String,
    /// The server's answer.
    pub answer: String,
    /// When the offer was POSTed.
    pub posted_at: Instant,
    /// When str0m reported ICE + DTLS up.
    pub connected_at: Option<Instant>,
    /// ICE state changes, in order.
    pub ice_states: Vec<IceConnectionState>,
    /// Every video frame received.
    pub frames: Vec<VideoFrame>,
    /// Every audio packet received (Opus payloads) and when.
    pub audio: Vec<(Arc<[u8]>, Instant)>,
    /// The RTP timestamp (extended to 64 bits) of each of `audio`.
    pub audio_rtp_times: Vec<u64>,
    /// RTP packets received by payload type, as sent (RTX ones under the RTX payload type);
    /// counted only by a viewer made with [`Viewer::connect_counting`].
    pub rtp_by_pt: HashMap<u8, u64>,
}

/// A WHEP offer of str0m's (video and audio, receive only), for tests that only look at the
/// HTTP answer.
#[allow(dead_code)] // not every test binary uses it
pub fn str0m_offer() -> String {
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(Instant::now());
    let local: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    rtc.add_local_candidate(Candidate::host(local, "udp").expect("host candidate"));
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, _) = change.apply().expect("an offer");
    offer.to_sdp_string()
}

impl Viewer {
    /// Makes the offer, POSTs it to `/whep/{stream}`, requires `201` and applies the answer.
    pub fn connect(http_addr: SocketAddr, stream: &str) -> Viewer {
        Self::connect_with(http_addr, stream, true)
    }

    /// [`Viewer::connect`], then requires `min` VP8 frames within `within` of the POST, the
    /// first of them a keyframe (a viewer must start where a decoder can).
    pub fn connect_and_play(
        http_addr: SocketAddr,
        stream: &str,
        min: usize,
        within: Duration,
    ) -> Viewer {
        let mut viewer = Self::connect(http_addr, stream);
        viewer.run_until(viewer.posted_at + within, |v| v.frames.len() >= min);
        let n = viewer.frames.len();
        assert!(
            n >= min,
            "str0m got {n} VP8 frames within {within:?}, want ≥ {min}; ICE: {:?}",
            viewer.ice_states
        );
        assert!(
            super::files::is_vp8_keyframe(&viewer.frames[0].data),
            "str0m's first frame is not a keyframe"
        );
        viewer
    }

    /// [`Viewer::connect`], offering an audio section only with `audio`.
    pub fn connect_with(http_addr: SocketAddr, stream: &str, audio: bool) -> Viewer {
        Self::connect_opts("127.0.0.1:0", http_addr, stream, audio, false)
    }

    /// [`Viewer::connect_with`] from the UDP address `bind` (e.g. the port of a viewer that
    /// went away, as a client reconnecting from the same port).
    pub fn connect_from(bind: &str, http_addr: SocketAddr, stream: &str, audio: bool) -> Viewer {
        Self::connect_opts(bind, http_addr, stream, audio, false)
    }

    /// [`Viewer::connect`], counting the RTP packets str0m receives by payload type
    /// (`rtp_by_pt`; costs a copy of each).
    pub fn connect_counting(http_addr: SocketAddr, stream: &str) -> Viewer {
        Self::connect_opts("127.0.0.1:0", http_addr, stream, true, true)
    }

    fn connect_opts(
        bind: &str,
        http_addr: SocketAddr,
        stream: &str,
        audio: bool,
        raw: bool,
    ) -> Viewer {
        let now = Instant::now();
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .enable_raw_packets(raw)
            .build(now);
        let socket = UdpSocket::bind(bind).expect("bind the viewer's UDP socket");
        let local = socket.local_addr().expect("local addr");
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("host candidate"));
        let mut change = rtc.sdp_api();
        let video_mid = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let audio_mid = audio
            .then(|| change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None));
        let (offer, pending) = change.apply().expect("an offer");
        let offer = offer.to_sdp_string();
        let posted_at = Instant::now();
        let res = http::post_offer(http_addr, stream, &offer);
        assert_eq!(res.status, 201, "POST /whep/{stream}: {}", res.text());
        let location = res
            .header("location")
            .expect("201 carries Location")
            .to_owned();
        let answer = res.text();
        let parsed = str0m::change::SdpAnswer::from_sdp_string(&answer)
            .unwrap_or_else(|e| panic!("str0m cannot parse our answer: {e}\n{answer}"));
        rtc.sdp_api()
            .accept_answer(pending, parsed)
            .unwrap_or_else(|e| panic!("str0m refuses our answer: {e}\n{answer}"));
        Viewer {
            rtc,
            socket,
            buf: vec![0; 2000],
            video_mid,
            audio_mid,
            location,
            offer,
            answer,
            posted_at,
            connected_at: None,
            ice_states: Vec::new(),
            frames: Vec::new(),
            audio: Vec::new(),
            audio_rtp_times: Vec::new(),
            rtp_by_pt: HashMap::new(),
        }
    }

    /// The viewer's UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local addr")
    }

    /// Sends `bytes` from the viewer's own socket, behind str0m's back (for bad-input tests:
    /// the server sees them on the session's 5-tuple).
    pub fn send_raw(&self, to: SocketAddr, bytes: &[u8]) {
        let _ = self.socket.send_to(bytes, to);
    }

    /// Drives str0m until `deadline`, or until `done` says so (checked after each input).
    /// Datagrams already queued at the deadline are still fed in, so a caller that calls
    /// this in small steps never starves the viewer.
    pub fn run_until(&mut self, deadline: Instant, mut done: impl FnMut(&Viewer) -> bool) {
        loop {
            let timeout = self.drain();
            if done(self) {
                return;
            }
            let now = Instant::now();
            if timeout <= now {
                self.input(Input::Timeout(now));
                continue;
            }
            let wait = timeout.min(deadline).saturating_duration_since(now);
            match self.recv(wait) {
                Some(source) => {
                    let destination = self.local_addr();
                    let Ok(contents) = self.buf.as_slice().try_into() else {
                        // Not something str0m demultiplexes: ignore it.
                        continue;
                    };
                    let receive = Receive {
                        proto: Protocol::Udp,
                        source,
                        destination,
                        contents,
                    };
                    let input = Input::Receive(Instant::now(), receive);
                    self.rtc
                        .handle_input(input)
                        .unwrap_or_else(|e| panic!("str0m handle_input: {e}"));
                }
                None if now >= deadline => return,
                None => {}
            }
        }
    }

    fn input(&mut self, input: Input<'_>) {
        self.rtc
            .handle_input(input)
            .unwrap_or_else(|e| panic!("str0m handle_input: {e}"));
    }

    /// Receives one datagram into `buf`, waiting at most `wait` (not at all when zero).
    fn recv(&mut self, wait: Duration) -> Option<SocketAddr> {
        self.buf.resize(2000, 0);
        let nonblocking = wait.is_zero();
        if nonblocking {
            self.socket.set_nonblocking(true).expect("nonblocking");
        } else {
            self.socket.set_read_timeout(Some(wait)).expect("timeout");
        }
        let got = self.socket.recv_from(&mut self.buf);
        if nonblocking {
            self.socket.set_nonblocking(false).expect("blocking");
        }
        match got {
            Ok((n, source)) => {
                self.buf.truncate(n);
                Some(source)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            // Loopback reports an ICMP "port unreachable" as ECONNREFUSED on the next read.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => None,
            Err(e) => panic!("viewer socket: {e}"),
        }
    }

    /// Drives str0m for `d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(Instant::now() + d, |_| false);
    }

    /// Drains str0m's output; returns when it next wants a timeout.
    fn drain(&mut self) -> Instant {
        loop {
            match self
                .rtc
                .poll_output()
                .unwrap_or_else(|e| panic!("str0m poll_output: {e}"))
            {
                Output::Timeout(at) => return at,
                Output::Transmit(t) => {
                    // A full socket buffer just loses the packet, as a network would.
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => self.connected_at = Some(Instant::now()),
            Event::IceConnectionStateChange(s) => self.ice_states.push(s),
            Event::MediaData(m) if m.mid == self.video_mid => self.frames.push(VideoFrame {
                data: m.data,
                rtp_time: m.time.numer(),
                contiguous: m.contiguous,
                at: Instant::now(),
            }),
            Event::MediaData(m) if Some(m.mid) == self.audio_mid => {
                self.audio_rtp_times.push(m.time.numer());
                self.audio.push((m.data, Instant::now()));
            }
            Event::RawPacket(raw) => {
                if let str0m::rtp::RawPacket::RtpRx(header, _) = *raw {
                    *self.rtp_by_pt.entry(*header.payload_type).or_default() += 1;
                }
            }
            _ => {}
        }
    }

    /// Frames received since `since`.
    pub fn frames_since(&self, since: Instant) -> usize {
        self.frames.iter().filter(|f| f.at >= since).count()
    }

    /// The longest time between two consecutive video frames received after `since`.
    pub fn longest_gap_since(&self, since: Instant) -> Duration {
        let times: Vec<Instant> = self
            .frames
            .iter()
            .map(|f| f.at)
            .filter(|&t| t >= since)
            .collect();
        times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(Duration::MAX)
    }

    /// True while ICE has not gone to Disconnected since connecting.
    pub fn ice_disconnected(&self) -> bool {
        self.ice_states
            .iter()
            .any(|s| matches!(s, IceConnectionState::Disconnected))
    }
}
