//! Calendar dates (UTC), enough for advisory ages: no clock is read here.

use std::fmt;

/// A calendar date (proleptic Gregorian), as the date part of an OSV timestamp or the CLI's `--now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Days since 1970-01-01.
    days: i64,
}

/// A date that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("date {text:?}: expected YYYY-MM-DD, optionally followed by `T` and a time")]
pub struct DateError {
    /// The text as given.
    pub text: String,
}

impl Date {
    /// Parses `YYYY-MM-DD`, or an RFC 3339 timestamp whose date part is taken as written (the time and
    /// offset are not used: ages are counted in whole calendar days).
    ///
    /// # Errors
    /// [`DateError`] when the text is not such a date, or names a day that does not exist.
    pub fn parse(text: &str) -> Result<Self, DateError> {
        let bad = || DateError {
            text: text.to_owned(),
        };
        let b = text.as_bytes();
        let date = b.get(..10).ok_or_else(bad)?;
        match b.get(10) {
            None | Some(b'T' | b't' | b' ') => {}
            Some(_) => return Err(bad()),
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let s = date.get(r)?;
            if !s.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(s).ok()?.parse().ok()
        };
        if date.get(4) != Some(&b'-') || date.get(7) != Some(&b'-') {
            return Err(bad());
        }
        let (y, m, d) = (
            num(0..4).ok_or_else(bad)?,
            num(5..7).ok_or_else(bad)?,
            num(8..10).ok_or_else(bad)?,
        );
        Self::from_ymd(y, m, d).ok_or_else(bad)
    }

    /// The date of year, month and day; `None` for a day that does not exist.
    pub fn from_ymd(year: i64, month: i64, day: i64) -> Option<Self> {
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self {
            days: strata_oci::civil::days_from_civil(year, month, day),
        })
    }

    /// Year, month and day.
    pub fn ymd(self) -> (i64, i64, i64) {
        strata_oci::civil::civil_from_days(self.days)
    }

    /// Whole days from `earlier` to `self` (negative when `earlier` is later).
    pub fn days_since(self, earlier: Date) -> i64 {
        self.days - earlier.days
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_counts_days() {
        let a = Date::parse("2024-02-29T12:00:00Z").unwrap();
        assert_eq!(a.to_string(), "2024-02-29");
        let b = Date::parse("2025-03-01").unwrap();
        assert_eq!(b.days_since(a), 366);
        assert_eq!(Date::parse("1970-01-01").unwrap().days, 0);
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "20240101",
            "2024-01-01x",
            "",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
    }
}
