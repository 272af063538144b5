#![no_main]
//! IVF reader over arbitrary bytes; whatever it reads, the writer writes back identically.
use media::ivf::{IvfReader, IvfWriter};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok((header, reader)) = IvfReader::new(data) else {
        return;
    };
    let mut out = Vec::new();
    let mut writer = IvfWriter::new(&header, &mut out);
    let mut frames = Vec::new();
    for frame in reader {
        let Ok(frame) = frame else { break };
        writer
            .write_frame(frame.timestamp, frame.data, &mut out)
            .unwrap();
        frames.push(frame);
    }
    let (again, reader) = IvfReader::new(&out).unwrap();
    assert_eq!(again, header);
    let reread: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(reread, frames);
});
