#![no_main]
//! RFC 4571 deframer: the stream cut into pieces at places the input chooses must give the
//! same frames as the whole stream in one piece, each no longer than the limit, with no
//! more than one frame held back; after an error nothing more comes out.

use rtc::framing::{Deframer, MAX_FRAME, PREFIX_LEN};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [limit_hi, cut_seed, stream @ ..] = data else {
        return;
    };
    let max = (usize::from(*limit_hi) << 8) | 0xff;
    let whole = deframe(stream, max, &[stream.len()]);
    // Piece lengths from the seed: 1 to 16 bytes, or large.
    let mut cuts = Vec::new();
    let mut left = stream.len();
    let mut s = u32::from(*cut_seed) | 1;
    while left > 0 {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let n = if s % 7 == 0 { 1500 } else { (s % 16 + 1) as usize };
        let n = n.min(left);
        cuts.push(n);
        left -= n;
    }
    let pieces = deframe(stream, max, &cuts);
    assert_eq!(whole, pieces);
});

/// The frames (and whether the stream failed) when `stream` arrives in pieces of `cuts`.
fn deframe(stream: &[u8], max: usize, cuts: &[usize]) -> (Vec<Vec<u8>>, bool) {
    let mut d = Deframer::new(max);
    let mut frames = Vec::new();
    let mut at = 0;
    let mut failed = false;
    for &n in cuts {
        let Some(piece) = stream.get(at..at + n) else {
            break;
        };
        at += n;
        let mut piece = piece.to_vec();
        let r = d.push(&mut piece, |f| {
            assert!(!failed, "a frame after an error");
            assert!(!f.is_empty() && f.len() <= max.min(MAX_FRAME));
            frames.push(f.to_vec());
        });
        assert!(d.buffered() <= PREFIX_LEN + max.min(MAX_FRAME));
        if r.is_err() {
            failed = true;
            assert_eq!(d.buffered(), 0);
        }
    }
    (frames, failed)
}
