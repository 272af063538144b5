#![no_main]
//! Arbitrary bytes as an SPS NAL unit (the recorder reads the picture size from a publisher's
//! SPS for the Matroska track header), and as an access unit for the avcC and length-prefixed
//! conversions, which must keep every NAL unit but access unit delimiters.
use media::h264::{self, NalUnits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut sps = vec![0x67];
    sps.extend_from_slice(data);
    let _ = h264::sps_size(&sps);
    if let Some((sps, pps)) = h264::parameter_sets(data) {
        let _ = h264::avcc(sps, pps);
    }
    let mut out = Vec::new();
    h264::to_length_prefixed(data, &mut out);
    let kept = NalUnits::new(data).filter(|n| h264::nal_type(n) != 9);
    let total: usize = kept.map(|n| n.len() + 4).sum();
    assert_eq!(out.len(), total);
});
