//! Reception statistics of one source for its report block: loss (RFC 3550 §A.3), interarrival
//! jitter (§A.8), and LSR/DLSR from the last sender report (§6.4.1).

use std::time::{Duration, Instant};

use crate::rtcp::ReportBlock;

/// What a report block needs to know about the packets of one source.
#[derive(Debug, Clone)]
pub(super) struct Stats {
    clock_rate: u32,
    /// Extended sequence number of the first packet (§A.1 `base_seq`).
    base: i64,
    /// Distinct packets received since `base` (duplicates are not counted).
    received: u64,
    expected_prior: i64,
    received_prior: u64,
    /// Jitter × 16, the integer form of §A.8.
    jitter16: u64,
    /// The previous in-order packet's transit time in RTP units, if any.
    last_transit: Option<u32>,
    /// Where arrival times in RTP units count from.
    epoch: Option<Instant>,
    /// Middle 32 bits of the last SR's NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl Stats {
    pub(super) fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            base: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter16: 0,
            last_transit: None,
            epoch: None,
            last_sr: None,
        }
    }

    /// Starts counting at `base` (§A.1 `init_seq`), keeping the clock and the last SR.
    pub(super) fn restart(&mut self, base: i64) {
        *self = Self {
            base,
            epoch: self.epoch,
            last_sr: self.last_sr,
            ..Self::new(self.clock_rate)
        };
    }

    /// Counts a distinct packet received.
    pub(super) fn count(&mut self) {
        self.received += 1;
    }

    /// Feeds the jitter with a packet that raised the highest sequence number. Only those, as
    /// libwebrtc does, so retransmissions and reordered packets do not inflate it.
    pub(super) fn on_in_order(&mut self, now: Instant, rtp_timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let elapsed = now.saturating_duration_since(epoch).as_nanos();
        // Arrival in RTP units, wrapping like the timestamps do (§A.8).
        let arrival = (elapsed * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        let transit = arrival.wrapping_sub(rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            // J += (|D| - J) / 16, kept ×16 with rounding: §A.8's integer form.
            self.jitter16 = (self.jitter16 + d).saturating_sub((self.jitter16 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Records a sender report's NTP time (§6.4.1 LSR).
    pub(super) fn on_sender_report(&mut self, now: Instant, ntp: u64) {
        self.last_sr = Some((compact_ntp(ntp), now));
    }

    /// The interarrival jitter in RTP timestamp units.
    pub(super) fn jitter(&self) -> u32 {
        u32::try_from(self.jitter16 >> 4).unwrap_or(u32::MAX)
    }

    /// A report block for `ssrc` with `highest` the extended highest sequence number received;
    /// starts a new interval for the fraction lost (§A.3).
    pub(super) fn report(&mut self, now: Instant, ssrc: u32, highest: i64) -> ReportBlock {
        let expected = highest - self.base + 1;
        let received = i64::try_from(self.received).unwrap_or(i64::MAX);
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        let lost_interval = expected_interval - i64::try_from(received_interval).unwrap_or(0);
        (self.expected_prior, self.received_prior) = (expected, self.received);
        let fraction_lost = if expected_interval <= 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = self.last_sr.map_or((0, 0), |(lsr, at)| {
            (lsr, to_ntp_short(now.saturating_duration_since(at)))
        });
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: (expected - received).clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: highest as u32,
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// The middle 32 bits of a 64-bit NTP timestamp, the form LSR and DLSR use (§6.4.1).
pub fn compact_ntp(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A duration in units of 1/65536 s, saturating.
fn to_ntp_short(d: Duration) -> u32 {
    u32::try_from(d.as_micros() * 65_536 / 1_000_000).unwrap_or(u32::MAX)
}

/// The round-trip time a report block about one of our SRs implies (RFC 3550 §6.4.1:
/// A − LSR − DLSR), where `now_ntp` is our NTP clock when the report arrived, in the same
/// time base as the SRs we sent. `None` when the block has no LSR (the peer has not seen an
/// SR from us) or the result is negative (clocks disagree).
pub fn rtt_from_report(now_ntp: u64, block: &ReportBlock) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let rtt = compact_ntp(now_ntp)
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    let rtt = u64::try_from(rtt as i32).ok()?;
    Some(Duration::from_micros(rtt * 1_000_000 / 65_536))
}
