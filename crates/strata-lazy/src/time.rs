//! RFC 3339 times, as tables of contents and published artifacts carry them.

use std::time::{SystemTime, UNIX_EPOCH};

use strata_oci::civil::{days_from_civil, format_unix};

/// `time` as RFC 3339 in UTC, to the second: `2026-12-04T23:25:42Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_unix(secs, 0)
}

/// An RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `t`/`z`/space accepted) as nanoseconds
/// since the epoch; `None` if it is not one.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then_some(())?;
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos: i128 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let digits = text.get(start..at)?;
        if digits.is_empty() {
            return None;
        }
        let kept: String = digits.chars().take(9).collect();
        nanos = kept.parse::<i128>().ok()? * 10i128.pow(9 - kept.len() as u32);
    }
    let offset = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() && b.get(at + 3) == Some(&b':') => {
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            let minutes = h * 60 + m;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// An RFC 3339 date-time as seconds since the epoch and nanoseconds.
pub(crate) fn parse_rfc3339_parts(text: &str) -> Option<(i64, u32)> {
    let nanos = parse_rfc3339(text)?;
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let nsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    Some((secs, nsec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times() {
        assert_eq!(
            parse_rfc3339_parts("1969-12-31T23:59:59.5Z"),
            Some((-1, 500_000_000))
        );
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_340_342);
        assert_eq!(rfc3339(t), "2026-12-03T23:25:42Z");
        assert_eq!(
            parse_rfc3339("2026-12-03T23:25:42Z"),
            Some(1_796_340_342_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-04T01:25:42.5+02:00"),
            Some(1_796_340_342_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29t00:00:00z"),
            Some(951_782_400_000_000_000)
        );
        for bad in [
            "",
            "2026-12-03",
            "2026-13-03T00:00:00Z",
            "2026-12-03T00:00:00",
            "2026-12-03T00:00:00.Z",
            "2026-12-03T00:00:00+0200",
            "２０２６-12-03T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
