//! Simulcast layers of a stream (RFC 8853): which track of a group of layers is the top one
//! and how large each is. The offer's order of rids says nothing about the layers' sizes
//! (RFC 8853 §5.2 leaves it to the application), so each layer's resolution is read from its
//! own keyframes — the VP8 frame header (RFC 6386 §9.1) or the H.264 SPS (RFC 6184 §5.7.1:
//! alone or in a STAP-A) — and its bitrate measured.

use std::time::Instant;

use crate::router::{Stream, Track};
use crate::sources::Codec;

/// Width and height a keyframe's packet declares, if this packet carries them: VP8's first
/// packet of the frame, or an H.264 packet holding the SPS.
pub fn keyframe_size(codec: Codec, payload: &[u8]) -> Option<(u16, u16)> {
    match codec {
        Codec::Vp8 => {
            let d = media::vp8::Descriptor::parse(payload).ok()?;
            media::vp8::keyframe_size(payload.get(d.len..)?)
        }
        Codec::H264 => {
            use media::h264::types::{SPS, STAP_A};
            match payload.first()? & 0x1f {
                SPS => media::h264::sps_size(payload),
                // STAP-A: 16-bit sizes, each followed by a NAL unit (RFC 6184 §5.7.1).
                STAP_A => {
                    let mut rest = payload.get(1..)?;
                    while let [hi, lo, tail @ ..] = rest {
                        let n = usize::from(u16::from_be_bytes([*hi, *lo]));
                        let nal = tail.get(..n)?;
                        if let Some(size) = media::h264::sps_size(nal) {
                            return Some(size);
                        }
                        rest = tail.get(n..)?;
                    }
                    None
                }
                _ => None,
            }
        }
        Codec::Opus => None,
    }
}

/// Pixels of a layer, 0 while its size is unknown.
fn pixels(track: &Track) -> u32 {
    track
        .layer
        .as_ref()
        .and_then(|l| l.size)
        .map_or(0, |(w, h)| u32::from(w) * u32::from(h))
}

impl Stream {
    /// The layers of `group` (track indices), lowest first: by resolution, then bitrate.
    pub fn layers_of(&self, group: usize) -> impl Iterator<Item = usize> + '_ {
        let mut layers: Vec<usize> = self
            .tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.layer.as_ref().is_some_and(|l| l.group == group))
            .map(|(i, _)| i)
            .collect();
        layers.sort_by_key(|&i| (pixels(&self.tracks[i]), self.tracks[i].rate, i));
        layers.into_iter()
    }

    /// The layers of `group` as [`Stream::layers_of`] orders them, into `out` (at most its
    /// length; no allocation: this runs per viewer and tick). Returns how many.
    pub fn layers_into(&self, group: usize, out: &mut [usize]) -> usize {
        let of_group = |t: &Track| t.layer.as_ref().is_some_and(|l| l.group == group);
        let mut n = 0;
        for (i, _) in self.tracks.iter().enumerate().filter(|(_, t)| of_group(t)) {
            let Some(slot) = out.get_mut(n) else { break };
            *slot = i;
            n += 1;
        }
        let key = |i: usize| (pixels(&self.tracks[i]), self.tracks[i].rate, i);
        out[..n].sort_unstable_by_key(|&i| key(i));
        n
    }

    /// The bitrate of the tracks that are neither simulcast layers nor `track` (audio), bit/s.
    pub fn other_rate(&self, track: usize) -> u64 {
        self.tracks
            .iter()
            .enumerate()
            .filter(|&(i, t)| t.layer.is_none() && i != track)
            .map(|(_, t)| t.rate)
            .sum()
    }

    /// The top layer of `group` that is being received now: the largest, by its keyframes'
    /// size, then by bitrate.
    pub fn top_layer(&self, group: usize, now: Instant) -> Option<usize> {
        // As `layers_of` orders them, without its list: this runs per viewer and tick.
        let of_group = |t: &Track| t.layer.as_ref().is_some_and(|l| l.group == group);
        self.tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| of_group(t) && t.is_active(now))
            .max_by_key(|&(i, t)| (pixels(t), t.rate, i))
            .map(|(i, _)| i)
    }

    /// Whether every layer of `group` has shown its size: the top layer is then known for
    /// sure (a browser starts its upper layers only as its bandwidth estimate grows).
    pub fn layers_sized(&self, group: usize) -> bool {
        let mut layers = self.layers_of(group).map(|i| &self.tracks[i]).peekable();
        layers.peek().is_some() && layers.all(|t| pixels(t) > 0)
    }

    /// Updates every track's bitrate (from the tick).
    pub fn update_rates(&mut self, now: Instant) {
        for track in &mut self.tracks {
            track.update_rate(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sizes_from_vp8_and_h264_keyframes() {
        // VP8: descriptor (S = 1), then a keyframe header for 1280 × 720.
        let vp8 = [0x10, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02];
        assert_eq!(keyframe_size(Codec::Vp8, &vp8), None, "no frame tag");
        let vp8 = [
            0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02,
        ];
        assert_eq!(keyframe_size(Codec::Vp8, &vp8), Some((1280, 720)));
        // An interframe (P = 1) has no size.
        let inter = [
            0x10, 0x01, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02,
        ];
        assert_eq!(keyframe_size(Codec::Vp8, &inter), None);
        // H.264: the sample's SPS (640 × 360), alone and in a STAP-A.
        let data = include_bytes!("../../../../samples/sample-h264-640x360-10s.h264");
        let au = media::h264::AccessUnits::new(data).next().unwrap();
        let (sps, _) = media::h264::parameter_sets(au).unwrap();
        let size = keyframe_size(Codec::H264, sps);
        assert_eq!(size, Some((640, 360)));
        let mut stap = vec![0x78];
        stap.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        stap.extend_from_slice(sps);
        stap.extend_from_slice(&[0x00, 0x02, 0x68, 0xce]);
        assert_eq!(keyframe_size(Codec::H264, &stap), size);
        // A STAP-A whose size runs past its end is not read.
        assert_eq!(keyframe_size(Codec::H264, &[0x78, 0x00, 0x40, 0x67]), None);
        assert_eq!(keyframe_size(Codec::Opus, sps), None);
    }
}
