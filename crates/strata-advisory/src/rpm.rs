//! RPM versions (`[epoch:]version[-release]`), ordered as rpm's `rpmvercmp` and `labelCompare` order them.
//!
//! `rpmvercmp` (rpm's `rpmio/rpmvercmp.c`) splits a string into alphanumeric segments, skipping every other
//! character as a separator: a digit segment is greater than a letter segment; digit segments compare as
//! numbers (leading zeros ignored), letter segments as bytes. `~` sorts before everything, even the end of the
//! string (`1.0~rc1` < `1.0`); `^` sorts after the end but before any further segment (`1.0` < `1.0^git1` <
//! `1.0.1`). The epoch, version and release are compared in turn (`labelCompare`): a missing epoch is `0`;
//! a missing release is less than any present one, the empty one included (Python's
//! `rpm.labelCompare((e, v, None), (e, v, r))` is `-1`).
//!
//! Parsing: the epoch is digits only; the version and the release are non-empty and made of ASCII
//! alphanumerics and `._+~^` (rpm's build rules; `-` separates the release).

use std::cmp::Ordering;

use crate::VersionError;

/// A parsed RPM epoch-version-release.
///
/// Equality is rpm's: `1.01-1` equals `1.1-1`.
#[derive(Debug, Clone)]
pub struct Version {
    epoch: Option<String>,
    version: String,
    release: Option<String>,
    text: String,
}

impl Version {
    /// Parses `[epoch:]version[-release]`; the release is what follows the last `-`.
    ///
    /// # Errors
    /// [`VersionError`] naming the version and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let bad = |reason: &'static str| VersionError::new("rpm", text, reason);
        if text.is_empty() {
            return Err(bad("version string is empty"));
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest)) => {
                if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("epoch is not a number"));
                }
                (Some(epoch.to_owned()), rest)
            }
            None => (None, text),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(bad("release is empty")),
            Some((version, release)) => (version, Some(release)),
            None => (rest, None),
        };
        Self::from_parts(epoch.as_deref(), version, release)
            .map_err(|_| bad_of(text, version, release))
    }

    /// Builds a version from its parts as an rpm header holds them.
    ///
    /// # Errors
    /// [`VersionError`] when the epoch is not a number, or the version or release is empty or holds a
    /// character rpm does not allow.
    pub fn from_parts(
        epoch: Option<&str>,
        version: &str,
        release: Option<&str>,
    ) -> Result<Self, VersionError> {
        let mut text = String::new();
        if let Some(epoch) = epoch {
            text.push_str(epoch);
            text.push(':');
        }
        text.push_str(version);
        if let Some(release) = release {
            text.push('-');
            text.push_str(release);
        }
        let bad = |reason: &'static str| VersionError::new("rpm", &text, reason);
        if let Some(epoch) = epoch
            && (epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("epoch is not a number"));
        }
        if version.is_empty() {
            return Err(bad("version is empty"));
        }
        if !allowed(version) {
            return Err(bad("invalid character in version"));
        }
        if let Some(release) = release {
            if release.is_empty() {
                return Err(bad("release is empty"));
            }
            if !allowed(release) {
                return Err(bad("invalid character in release"));
            }
        }
        Ok(Self {
            epoch: epoch.map(str::to_owned),
            version: version.to_owned(),
            release: release.map(str::to_owned),
            text,
        })
    }

    /// The epoch as written, if any (a missing one compares as `0`).
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// The version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The release, if any.
    pub fn release(&self) -> Option<&str> {
        self.release.as_deref()
    }
}

/// The error for a version string whose parts `from_parts` refused: the reason of the first bad part.
fn bad_of(text: &str, version: &str, release: Option<&str>) -> VersionError {
    let reason = if version.is_empty() {
        "version is empty"
    } else if !allowed(version) {
        "invalid character in version"
    } else if release.is_some_and(|r| !allowed(r)) {
        "invalid character in release"
    } else {
        "epoch is not a number"
    };
    VersionError::new("rpm", text, reason)
}

/// Whether every character is one rpm allows in a version or release.
fn allowed(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._+~^".contains(&b))
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let epoch = |v: &Self| v.epoch.clone().unwrap_or_else(|| "0".to_owned());
        rpmvercmp(&epoch(self), &epoch(other))
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| match (&self.release, &other.release) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => rpmvercmp(a, b),
            })
    }
}

crate::version_traits!();

/// rpm's `rpmvercmp` on one version or release string (total: any bytes are accepted).
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let separator =
        |c: Option<&u8>| c.is_some_and(|&c| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^');
    loop {
        if i >= a.len() && j >= b.len() {
            break;
        }
        while separator(a.get(i)) {
            i += 1;
        }
        while separator(b.get(j)) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let end_a = i + a
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| class(c))
            .count();
        let end_b = j + b
            .get(j..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| class(c))
            .count();
        let seg_a = a.get(i..end_a).unwrap_or_default();
        let seg_b = b.get(j..end_b).unwrap_or_default();
        if seg_b.is_empty() {
            // The segments are of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric {
            let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
            let (na, nb) = (
                seg_a.get(strip(seg_a)..).unwrap_or_default(),
                seg_b.get(strip(seg_b)..).unwrap_or_default(),
            );
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            seg_a.cmp(seg_b)
        };
        if order != Ordering::Equal {
            return order;
        }
        i = end_a;
        j = end_b;
    }
    match (i < a.len(), j < b.len()) {
        (false, false) => Ordering::Equal,
        (true, _) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}
