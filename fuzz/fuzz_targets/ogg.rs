#![no_main]
//! Ogg pages, packet reassembly, Ogg Opus headers and Opus TOCs over arbitrary bytes; a parsed
//! page written back is byte-identical.
use media::ogg::{PacketReader, Page};
use media::oggopus::{OggOpusReader, OggOpusWriter, OpusHead};
use media::opus;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((page, len)) = Page::parse(data, 0) {
        let mut out = Vec::new();
        page.write(&mut out);
        assert_eq!(out, data[..len]);
    }
    let mut packets = PacketReader::new(data);
    while let Ok(Some(p)) = packets.next_packet() {
        let _ = opus::packet_samples(p.data);
    }
    let _ = OpusHead::parse(data);
    if let Ok((head, mut reader)) = OggOpusReader::new(data) {
        // Re-mux what was read; our reader must read it back the same.
        let mut out = Vec::new();
        let Ok(mut writer) = OggOpusWriter::new(1, &head, &mut out) else {
            return;
        };
        let mut read = Vec::new();
        while let Ok(Some(p)) = reader.next_packet() {
            if writer.write_packet(p.data, &mut out).is_ok() {
                read.push(p.data.to_vec());
            }
        }
        writer.finish(&mut out);
        let (again, mut reader) = OggOpusReader::new(&out).unwrap();
        assert_eq!(again.channels, head.channels);
        for want in read {
            assert_eq!(reader.next_packet().unwrap().unwrap().data, want);
        }
        assert_eq!(reader.next_packet().unwrap(), None);
    }
});
