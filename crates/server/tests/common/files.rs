//! The sample files, read here from their formats' specs rather than with our `media` crate,
//! so a test comparing what the server sent with these frames does not trust our own reader.

use super::repo_root;

/// The built-in `sample` stream's files.
pub const SAMPLE_IVF: &str = "samples/sample-vp8-640x360-30fps-10s.ivf";
pub const SAMPLE_OGG: &str = "samples/sample-opus-48k-10s.ogg";

/// The frames of an IVF file: a 32-byte file header (its length at offset 6), then per
/// frame a 12-byte header (size u32 LE, timestamp u64 LE) and the frame.
pub fn ivf_frames(path: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(repo_root().join(path)).expect("read the IVF file");
    assert_eq!(&data[..4], b"DKIF", "{path} is not IVF");
    let mut at = u16::from_le_bytes([data[6], data[7]]) as usize;
    let mut frames = Vec::new();
    while at + 12 <= data.len() {
        let size = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        at += 12;
        frames.push(data[at..at + size].to_vec());
        at += size;
    }
    assert_eq!(at, data.len(), "{path}: trailing bytes");
    frames
}

/// The Opus packets of an Ogg file (RFC 3533 pages, RFC 7845 mapping), without the
/// OpusHead and OpusTags header packets.
pub fn ogg_opus_packets(path: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(repo_root().join(path)).expect("read the Ogg file");
    let mut packets = Vec::new();
    let mut packet = Vec::new();
    let mut at = 0;
    while at < data.len() {
        assert_eq!(&data[at..at + 4], b"OggS", "{path}: no page at {at}");
        let segments = data[at + 26] as usize;
        let table = &data[at + 27..at + 27 + segments];
        let mut body = at + 27 + segments;
        for &lacing in table {
            packet.extend_from_slice(&data[body..body + lacing as usize]);
            body += lacing as usize;
            // A lacing value below 255 ends the packet (RFC 3533 §5).
            if lacing < 255 {
                packets.push(std::mem::take(&mut packet));
            }
        }
        at = body;
    }
    assert!(packets[0].starts_with(b"OpusHead") && packets[1].starts_with(b"OpusTags"));
    packets.split_off(2)
}

/// True for a VP8 key frame: bit 0 of the frame tag is 0 (RFC 6386 §9.1).
pub fn is_vp8_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}
