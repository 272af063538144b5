//! Where a live track's RTP clock stands now, for the Sender Reports viewers sync audio and
//! video by (RFC 3550 §6.4.1). The publisher's own Sender Reports map its RTP time to its
//! NTP time; carried through unchanged (only shifted by each output's timestamp offset), they
//! keep its audio and video as aligned at the viewer as the publisher said they were. Packet
//! arrival times cannot: a frame that waited in a queue, or a late retransmission, would move
//! one track's mapping and not the other's.

use std::time::Instant;

/// The RTP clock of one live track's current source SSRC.
#[derive(Debug, Clone, Copy)]
pub struct SourceClock {
    clock_rate: u32,
    /// The source SSRC the mapping is about (a new one starts over).
    ssrc: Option<u32>,
    /// Fallback before the first Sender Report: the RTP time the packets so far imply at an
    /// instant — the latest of them, so it never goes backwards.
    latest: Option<(u32, Instant)>,
    /// The source's last Sender Report: its NTP time (RFC 5905 32.32) and RTP time.
    report: Option<(u64, u32)>,
}

impl SourceClock {
    /// A clock that knows nothing yet.
    pub fn new(clock_rate: u32) -> Self {
        SourceClock {
            clock_rate,
            ssrc: None,
            latest: None,
            report: None,
        }
    }

    fn follow(&mut self, ssrc: u32) {
        if self.ssrc != Some(ssrc) {
            *self = SourceClock {
                ssrc: Some(ssrc),
                ..SourceClock::new(self.clock_rate)
            };
        }
    }

    /// A packet with RTP time `ts` from `ssrc` arrived at `now`. An older time than the
    /// clock already implies (a retransmission, a reordered or delayed frame) is ignored.
    pub fn on_packet(&mut self, ssrc: u32, ts: u32, now: Instant) {
        self.follow(ssrc);
        let implied = self.extrapolate(now);
        if implied.is_none_or(|at| (ts.wrapping_sub(at) as i32) > 0) {
            self.latest = Some((ts, now));
        }
    }

    /// A Sender Report from `ssrc`: at its NTP time `ntp` its RTP time was `rtp`.
    pub fn on_sender_report(&mut self, ssrc: u32, ntp: u64, rtp: u32) {
        self.follow(ssrc);
        self.report = Some((ntp, rtp));
    }

    /// The source's RTP time at `now`, which is `publisher_ntp` on the publisher's NTP clock
    /// (None before any Sender Report of the stream).
    pub fn rtp_at(&self, now: Instant, publisher_ntp: Option<u64>) -> Option<u32> {
        if let (Some((ntp, rtp)), Some(at)) = (self.report, publisher_ntp) {
            // Signed: our estimate of the publisher's "now" may lie just before its report.
            let elapsed = i128::from(at.wrapping_sub(ntp) as i64);
            let units = (elapsed * i128::from(self.clock_rate)) >> 32;
            return Some(rtp.wrapping_add(units as u32));
        }
        self.extrapolate(now)
    }

    fn extrapolate(&self, now: Instant) -> Option<u32> {
        let (ts, at) = self.latest?;
        let elapsed = now.saturating_duration_since(at);
        let units = elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000;
        Some(ts.wrapping_add(units as u32))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::router::Stream;
    use crate::sources::Codec;

    const NTP_SECOND: u64 = 1 << 32;

    #[test]
    fn viewer_reports_keep_the_publishers_audio_video_alignment() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut stream = Stream::live(1, &[Codec::Vp8, Codec::Opus], t0);
        let (video, audio) = (0, 1);
        // The publisher says: at its NTP time N, video RTP 90 000 and audio RTP 48 000 were
        // the same instant.
        let n = 3_900_000_000 * NTP_SECOND;
        let (rv, ra) = (90_000u32, 48_000u32);
        // Packets: audio on time, video frames 40 ms late (an encoder/pacer queue), then a
        // late retransmission of an old video frame.
        for i in 0..10u32 {
            stream.on_packet(audio, 11, ra + i * 960, ms(u64::from(i) * 20));
            stream.on_packet(video, 22, rv + i * 1_800, ms(u64::from(i) * 20 + 40));
        }
        stream.on_packet(video, 22, rv, ms(300));
        // The reports arrive 5 ms apart on our clock, which is 1000 s ahead of the publisher's.
        let offset = 1000 * NTP_SECOND;
        stream.on_sender_report(audio, 11, n, ra, n + offset + NTP_SECOND / 1000);
        stream.on_sender_report(video, 22, n, rv, n + offset + 6 * NTP_SECOND / 1000);
        // Our report, 2 s later on our clock.
        let ours = n + offset + 2 * NTP_SECOND;
        let a = stream.rtp_timestamp_at(audio, ms(2000), ours).unwrap();
        let v = stream.rtp_timestamp_at(video, ms(2000), ours).unwrap();
        let a_ms = f64::from(a.wrapping_sub(ra)) / 48.0;
        let v_ms = f64::from(v.wrapping_sub(rv)) / 90.0;
        assert!(
            (a_ms - v_ms).abs() < 1.0,
            "audio {a_ms:.1} ms vs video {v_ms:.1} ms past the aligned instant"
        );
    }

    #[test]
    fn without_a_report_the_mapping_never_goes_backwards() {
        let t0 = Instant::now();
        let mut stream = Stream::live(1, &[Codec::Vp8], t0);
        stream.on_packet(0, 7, 90_000, t0);
        let before = stream.rtp_timestamp_at(0, t0 + Duration::from_millis(100), 0);
        assert_eq!(before, Some(99_000));
        // A retransmission of an older frame arrives late.
        stream.on_packet(0, 7, 81_000, t0 + Duration::from_millis(100));
        let after = stream.rtp_timestamp_at(0, t0 + Duration::from_millis(110), 0);
        assert_eq!(after, Some(99_900), "went backwards");
        // A newer packet moves it on.
        stream.on_packet(0, 7, 100_800, t0 + Duration::from_millis(110));
        let later = stream.rtp_timestamp_at(0, t0 + Duration::from_millis(110), 0);
        assert_eq!(later, Some(100_800));
        // A new source SSRC starts over.
        stream.on_packet(0, 8, 5, t0 + Duration::from_millis(120));
        let new = stream.rtp_timestamp_at(0, t0 + Duration::from_millis(120), 0);
        assert_eq!(new, Some(5));
    }
}
