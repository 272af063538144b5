//! leanrtc's WebRTC transport, sans-IO.
//!
//! Nothing in this crate opens a socket, reads a clock or starts a thread. Every protocol
//! object is driven the same way: bytes and the current time go in through `handle_*`
//! methods, and what it wants done comes out of `poll_*` methods (datagrams to send,
//! events for the application, the next time it wants to be woken). Randomness comes from an
//! injected [`rand::Rng`] so tests are repeatable.

pub mod cc;
pub mod demux;
pub mod dtls;
pub mod framing;
pub mod ice;
pub mod net;
pub mod peer;
pub mod rand;
pub mod receive;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod srtp;
pub mod stun;

pub use net::Transmit;
