//! Recording file names: `{stream}-{UTC time}[-n].{ext}`, created without overwriting.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many `-n` suffixes are tried before giving up.
const MAX_SUFFIX: u32 = 1000;

/// Creates a new file for `stream` in `dir`; a name already taken (a second session under
/// the same name within one second) gets `-1`, `-2`, … instead of being overwritten.
pub fn create(dir: &Path, stream: &str, ext: &str, now: SystemTime) -> io::Result<(PathBuf, File)> {
    let base = format!("{}-{}", sanitize(stream), utc_stamp(now));
    for n in 0..=MAX_SUFFIX {
        let name = match n {
            0 => format!("{base}.{ext}"),
            _ => format!("{base}-{n}.{ext}"),
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{base}.{ext}: {MAX_SUFFIX} files of that name exist"),
    ))
}

/// The stream name as a safe file-name part: a name from a URL may hold `/` or `..`
/// (percent-encoded), which must not leave the record dir.
fn sanitize(stream: &str) -> String {
    let s: String = stream
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .take(100)
        .collect();
    match s.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None if s.is_empty() => "_".into(),
        None => s,
    }
}

/// `YYYYMMDDTHHMMSSZ` (ISO 8601 basic format, UTC) of `t`; times before 1970 read as 1970.
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01: years counted from March so
/// that the leap day ends the year, in 400-year eras of 146097 days.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year
    let mp = (5 * doy + 2) / 153; // month from March, 0..11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_stamps_of_known_dates() {
        // Expected values from GNU date: `date -u -d @SECS +%Y%m%dT%H%M%SZ`.
        let cases = [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (951_868_799, "20000229T235959Z"),
            (951_868_800, "20000301T000000Z"),
            (1_795_515_302, "20261124T101502Z"),
            (2_147_483_648, "20380119T031408Z"),
            (4_107_542_399, "21000228T235959Z"),
            (4_107_542_400, "21000301T000000Z"),
        ];
        for (secs, want) in cases {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(utc_stamp(t), want, "{secs}");
        }
    }

    #[test]
    fn names_stay_inside_the_dir() {
        assert_eq!(sanitize("cam-1_a.b"), "cam-1_a.b");
        assert_eq!(sanitize("../../etc/passwd"), "_._.._etc_passwd");
        assert_eq!(sanitize(".hidden"), "_hidden");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("é"), "_");
    }
}
