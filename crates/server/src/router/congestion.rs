//! A viewer's congestion control (issue 12): our own transport-wide sequence numbers on
//! everything we send it (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2: one
//! counter for the whole transport, not per stream), and the send-side estimate
//! (`rtc::cc`) its transport-cc feedback — or REMB — drives. The estimate chooses the
//! viewer's simulcast layer.

use std::time::Instant;

use rtc::cc::{BandwidthEstimator, BweConfig};

/// Where a viewer's estimate starts: enough for the top layer of a 720p Chromium simulcast,
/// so a viewer on a good link starts there; one on a weak link is brought down by its first
/// feedback (delay and loss), within a second or two.
pub const START_BPS: u64 = 2_500_000;

/// One viewer's transport-wide numbering and estimate.
#[derive(Debug, Clone)]
pub struct ViewerCc {
    /// The viewer's id for the transport-wide-cc header extension.
    pub id: u8,
    next: u16,
    /// The estimate of what the path to the viewer carries.
    pub bwe: BandwidthEstimator,
}

impl ViewerCc {
    /// For a viewer that negotiated the extension as `id`.
    pub fn new(id: u8) -> Self {
        Self {
            id,
            next: 0,
            bwe: BandwidthEstimator::new(BweConfig {
                start_bps: START_BPS,
                ..BweConfig::default()
            }),
        }
    }

    /// The extension id and the next transport-wide sequence number, taken.
    pub fn next_seq(&mut self) -> (u8, u16) {
        let n = self.next;
        self.next = n.wrapping_add(1);
        (self.id, n)
    }

    /// Packet `seq` left, `size` bytes protected.
    pub fn sent(&mut self, seq: u16, size: usize, now: Instant) {
        self.bwe.on_packet_sent(seq, size, now);
    }
}
