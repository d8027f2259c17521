//! Timestamps as Go's `time.Time` marshals them to JSON (RFC 3339 with up to nine fractional digits,
//! trailing zeros dropped), in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use strata_oci::civil::format_unix;

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
