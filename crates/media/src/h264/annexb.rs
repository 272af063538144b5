//! H.264 Annex B byte streams: NAL units behind 3- or 4-byte start codes, grouped into
//! access units (ITU-T H.264 §7.4.1.2.3, simplified).

use super::{nal_type, types};

/// A NAL unit and where it sits in the stream.
#[derive(Debug, Clone, Copy)]
struct Located<'a> {
    /// Offset of its start code (of the leading zero byte for a 4-byte one).
    start: usize,
    /// Offset just past its last byte.
    end: usize,
    nal: &'a [u8],
}

#[derive(Debug, Clone)]
struct Locator<'a> {
    data: &'a [u8],
    /// Offset of the next `00 00 01`, if any.
    next: Option<usize>,
}

fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let rest = data.get(from..)?;
    rest.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| from + i)
}

impl<'a> Locator<'a> {
    fn new(data: &'a [u8]) -> Self {
        Locator {
            data,
            next: find_start_code(data, 0),
        }
    }
}

impl<'a> Iterator for Locator<'a> {
    type Item = Located<'a>;

    fn next(&mut self) -> Option<Located<'a>> {
        loop {
            let sc = self.next?;
            let begin = sc + 3;
            self.next = find_start_code(self.data, begin);
            let mut end = self.next.unwrap_or(self.data.len());
            // A NAL unit ends in a non-zero byte; zeros before the next start code are
            // trailing_zero_8bits or its zero_byte (§B.1.1).
            while end > begin && self.data.get(end - 1) == Some(&0) {
                end -= 1;
            }
            let start = if sc > 0 && self.data.get(sc - 1) == Some(&0) {
                sc - 1
            } else {
                sc
            };
            match self.data.get(begin..end) {
                Some(nal) if !nal.is_empty() => return Some(Located { start, end, nal }),
                _ => continue,
            }
        }
    }
}

/// Iterates the NAL units of an Annex B stream (bytes before the first start code and empty
/// NAL units are skipped).
#[derive(Debug, Clone)]
pub struct NalUnits<'a>(Locator<'a>);

impl<'a> NalUnits<'a> {
    /// NAL units of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        NalUnits(Locator::new(data))
    }
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next().map(|l| l.nal)
    }
}

/// Whether a NAL unit begins a new access unit once the current one holds a slice: an access
/// unit delimiter, SPS, PPS, SEI, prefix/subset NAL units (types 14-18), or a slice whose
/// first_mb_in_slice is 0 (ue(v) of 0 is the single bit 1, the first after the header).
fn starts_access_unit(nal: &[u8]) -> bool {
    match nal_type(nal) {
        types::SEI | types::SPS | types::PPS | types::AUD | 14..=18 => true,
        types::SLICE | types::IDR => nal.get(1).is_some_and(|b| b & 0x80 != 0),
        _ => false,
    }
}

/// Iterates the access units of an Annex B stream, each as the Annex B bytes from its first
/// start code to the end of its last NAL unit.
#[derive(Debug, Clone)]
pub struct AccessUnits<'a> {
    nals: Locator<'a>,
    held: Option<Located<'a>>,
}

impl<'a> AccessUnits<'a> {
    /// Access units of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        AccessUnits {
            nals: Locator::new(data),
            held: None,
        }
    }
}

impl<'a> Iterator for AccessUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let first = self.held.take().or_else(|| self.nals.next())?;
        let (start, mut end) = (first.start, first.end);
        let mut has_slice = matches!(nal_type(first.nal), types::SLICE | types::IDR);
        for n in self.nals.by_ref() {
            if has_slice && starts_access_unit(n.nal) {
                self.held = Some(n);
                break;
            }
            has_slice |= matches!(nal_type(n.nal), types::SLICE | types::IDR);
            end = n.end;
        }
        self.nals.data.get(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nal_units_and_access_units() {
        let stream = [
            &[0xff, 0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f][..], // junk, then SPS (4-byte code)
            &[0, 0, 1, 0x68, 0xce, 0, 0][..],                // PPS with trailing zeros
            &[0, 0, 1, 0x65, 0x88, 0x84][..],                // IDR, first_mb 0
            &[0, 0, 1, 0x65, 0x40, 0x01][..],                // IDR, first_mb 1: same picture
            &[0, 0, 1][..],                                  // empty NAL unit
            &[0, 0, 0, 1, 0x41, 0x9a, 0x02][..],             // slice, first_mb 0: new AU
        ]
        .concat();
        let nals: Vec<_> = NalUnits::new(&stream).map(nal_type).collect();
        assert_eq!(nals, [7, 8, 5, 5, 1]);
        let aus: Vec<_> = AccessUnits::new(&stream).collect();
        assert_eq!(aus.len(), 2);
        assert_eq!(aus[0], &stream[1..28]);
        assert_eq!(aus[1], &[0, 0, 0, 1, 0x41, 0x9a, 0x02]);
        assert_eq!(AccessUnits::new(&[0, 0, 1]).count(), 0);
    }
}
