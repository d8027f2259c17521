//! Debian package versions (`[epoch:]upstream[-revision]`), ordered as `dpkg --compare-versions` orders them.
//!
//! The rules are dpkg's (`lib/dpkg/version.c`, `lib/dpkg/parsehelp.c`): the epoch compares as a number; the
//! upstream version and then the revision compare part by part, a run of non-digits then a run of digits.
//! In a non-digit run `~` sorts before everything (even the end of the string), the end before any letter,
//! letters (ASCII order) before every other character; digit runs compare as numbers. A missing revision is
//! the empty one, which compares equal to `0`.
//!
//! Parsing is stricter than `dpkg --compare-versions`, which only warns on some malformed versions: what dpkg
//! warns about (an upstream version not starting with a digit, a character outside `[A-Za-z0-9.+~-:]` in it
//! or outside `[A-Za-z0-9.+~]` in the revision) is refused here too, as dpkg refuses such a version when it
//! builds or installs a package. An epoch is digits only.

use std::cmp::Ordering;

use crate::VersionError;

/// A parsed Debian version.
/// Equality is dpkg's: `1.0` equals `1.0-0` and `0:1.0`.
#[derive(Debug, Clone)]
pub struct Version {
    epoch: u32,
    upstream: String,
    revision: String,
    text: String,
}

impl Version {
    /// Parses `[epoch:]upstream[-revision]` as dpkg does; leading and trailing blanks are trimmed.
    ///
    /// # Errors
    /// [`VersionError`] naming the version and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let bad = |reason: &'static str| VersionError::new("dpkg", text, reason);
        let trimmed = text.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            return Err(bad("version string is empty"));
        }
        if trimmed.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(bad("version string has embedded spaces"));
        }
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((epoch, rest)) => {
                if epoch.is_empty() {
                    return Err(bad("epoch in version is empty"));
                }
                if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("epoch in version is not a number"));
                }
                let epoch = epoch
                    .parse::<u32>()
                    .ok()
                    .filter(|e| i32::try_from(*e).is_ok())
                    .ok_or_else(|| bad("epoch in version is too big"))?;
                if rest.is_empty() {
                    return Err(bad("nothing after colon in version number"));
                }
                (epoch, rest)
            }
            None => (0, trimmed),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(bad("revision number is empty")),
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(bad("version number is empty"));
        }
        if !upstream.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            return Err(bad("version number does not start with digit"));
        }
        if !upstream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+~:".contains(&b))
        {
            return Err(bad("invalid character in version number"));
        }
        if !revision
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b))
        {
            return Err(bad("invalid character in revision number"));
        }
        Ok(Self {
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
            text: trimmed.to_owned(),
        })
    }

    /// The epoch (0 when none is written).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision (empty when none is written).
    pub fn revision(&self) -> &str {
        &self.revision
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream.as_bytes(), other.upstream.as_bytes()))
            .then_with(|| verrevcmp(self.revision.as_bytes(), other.revision.as_bytes()))
    }
}

crate::version_traits!();

/// A character's weight in a non-digit run: `~` first, then the end of the string (and digits), then
/// letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's comparison of one upstream version or revision with another.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0usize, 0usize);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a.get(i).cmp(&b.get(j));
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}
