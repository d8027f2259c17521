//! Timestamps as Go's `time.Time` marshals them to JSON (RFC 3339 with up to nine fractional digits,
//! trailing zeros dropped), in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// `now` as Go's JSON encoding of a UTC `time.Time`: `2026-11-23T12:11:31.468937964Z`.
pub fn rfc3339_nano(now: SystemTime) -> String {
    let (secs, nanos) = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let mut secs = -(d.as_secs() as i64);
            let mut nanos = d.subsec_nanos();
            if nanos > 0 {
                secs -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            (secs, nanos)
        }
    };
    format_unix(secs, nanos)
}

/// Formats seconds and nanoseconds since the epoch.
pub fn format_unix(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(format_unix(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_unix(1_795_436_291, 468_937_964),
            "2026-11-23T12:18:11.468937964Z"
        );
        assert_eq!(
            format_unix(1_704_067_200, 500_000_000),
            "2024-01-01T00:00:00.5Z"
        );
        assert_eq!(format_unix(951_782_400, 0), "2000-02-29T00:00:00Z");
    }
}
