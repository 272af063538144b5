//! The receive side of a media session, sans-IO: what the server does with RTP a publisher
//! sends it, besides forwarding.
//!
//! * [`ReceiveStream`] (one per remote media SSRC): a bounded reorder buffer that releases
//!   packets in sequence order, generic NACKs for gaps (RFC 4585 §6.2.1) with RTT-spaced,
//!   bounded retries, a keyframe request when a gap is given up, and the reception statistics
//!   of a receiver report block (RFC 3550 §6.4.1, Appendix A.1, A.3, A.8).
//! * [`TwccRecorder`] (one per session): arrival times of transport-wide sequence numbers,
//!   turned every ~100 ms into transport-wide CC feedback
//!   (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1), which is what makes a
//!   browser's encoder raise its bitrate.
//! * [`rtt_from_report`]: the round-trip time a report block about one of *our* SRs implies.
//!
//! Time is always an argument; nothing here reads a clock. No REMB: a REMB needs a bandwidth
//! estimate to be worth sending, and the publishers we serve that do congestion control
//! (Chromium, Firefox, GStreamer with `rtpgccbwe`) take transport-wide CC feedback.

mod nack;
mod stats;
mod stream;
mod twcc;

pub use stats::{compact_ntp, rtt_from_report};
pub use stream::{Pushed, ReceiveConfig, ReceiveCounters, ReceiveStream};
pub use twcc::TwccRecorder;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod twcc_tests;
