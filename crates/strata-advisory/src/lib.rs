//! Offline security advisories for strata: version ordering, OSV feeds, findings and the Container Health
//! Index.
//!
//! This crate owns
//! - **version ordering** for the three package managers of container images, each a parsed `Version` type
//!   with a typed error and a `compare(a, b)`: [`dpkg`] (`dpkg --compare-versions`), [`rpm`] (`rpmvercmp`,
//!   `labelCompare`), [`apk`] (apk-tools' `version.c`); [`Scheme`] picks one;
//! - **OSV feeds** ([`Feed::open`]): a directory of OSV JSON files or an OSV ecosystem export's `all.zip`,
//!   read under [`Limits`] (a hostile feed is refused, never expanded), with advisories that cannot be used
//!   reported as [`FeedWarning`]s naming the file and advisory;
//! - **matching** installed packages ([`InstalledPackage`], on a [`Distribution`]) to advisories by
//!   ecosystem (`Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.19`, `Red Hat:…`, `AlmaLinux:9`,
//!   `Rocky Linux:9`) and name, with the ecosystem's own ordering ([`Feed::findings`] → [`Finding`]s);
//! - **severity** ([`Severity`], Red Hat's scale; [`cvss`] computes CVSS v3 base scores) and **the grade**:
//!   [`free_of_critical`] and [`health_index`] (the Container Health Index, [`Grade`]), from findings and a
//!   caller-given date ([`Date`]); [`Feed::assess`] gives all of it for one image as an [`Assessment`].
//!
//! ```no_run
//! use strata_advisory::{Date, Distribution, Feed, InstalledPackage, PackageManager};
//!
//! # fn main() -> Result<(), strata_advisory::Error> {
//! let feed = Feed::open(std::path::Path::new("debian-osv/all.zip"))?;
//! for warning in feed.warnings() {
//!     eprintln!("skipped: {warning}"); // the caller decides how to show these
//! }
//! let distribution = Distribution::new("debian", "12");
//! let packages = [InstalledPackage {
//!     manager: PackageManager::Dpkg,
//!     name: "libssl3".into(),
//!     source_name: Some("openssl".into()),
//!     version: "3.0.11-1~deb12u2".into(),
//! }];
//! let now = Date::parse("2026-01-01").expect("a date");
//! // Findings, grade and verdict at once (Unknown, with the reason, when the feed lacks the release) …
//! let assessment = feed.assess(&distribution, &packages, now)?;
//! println!("{}", serde_json::to_string_pretty(&assessment).expect("serializable"));
//! // … or piece by piece.
//! let findings = feed.findings(&distribution, &packages, now)?;
//! let grade = strata_advisory::health_index(&findings, now);
//! let free = strata_advisory::free_of_critical(&findings);
//! # Ok(())
//! # }
//! ```
//!
//! **Must not depend on:** any strata crate but `strata-oci` (for its calendar arithmetic; it knows nothing
//! of images: callers list the installed packages
//! and the distribution), the network, or the clock (`now` is always an input). It does no output.

/// What every module's `Version` shares: it shows as written, is equal and ordered by its `Ord`, and the
/// module's `compare(a, b)` parses and orders two strings.
macro_rules! version_traits {
    () => {
        impl std::fmt::Display for Version {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl PartialOrd for Version {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl PartialEq for Version {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == std::cmp::Ordering::Equal
            }
        }

        impl Eq for Version {}

        /// Parses and compares two versions by this module's rules.
        ///
        /// # Errors
        /// [`crate::VersionError`] when either version does not parse.
        pub fn compare(a: &str, b: &str) -> Result<std::cmp::Ordering, crate::VersionError> {
            Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
        }
    };
}
pub(crate) use version_traits;

pub mod apk;
pub mod cvss;
mod date;
pub mod dpkg;
mod error;
mod feed;
mod grade;
mod matching;
mod osv;
pub mod rpm;
mod severity;

use std::cmp::Ordering;

pub use date::{Date, DateError};
pub use error::{Error, VersionError};
pub use feed::{Feed, FeedWarning, Limits};
pub use grade::{Assessment, Grade, free_of_critical, health_index};
pub use matching::{Distribution, Finding, InstalledPackage, PackageManager};
pub use osv::{Advisory, Affected, Event, RangeEvents};
pub use severity::Severity;

/// A version ordering: the package manager whose rules compare versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Debian's (`dpkg --compare-versions`).
    Dpkg,
    /// rpm's (`rpm.labelCompare`).
    Rpm,
    /// apk-tools'.
    Apk,
}

/// A version parsed by its scheme's rules, ordered by them (versions of different schemes order by scheme,
/// which matching never does).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnyVersion {
    /// A Debian version.
    Dpkg(dpkg::Version),
    /// An rpm epoch-version-release.
    Rpm(rpm::Version),
    /// An apk version.
    Apk(apk::Version),
}

impl std::fmt::Display for AnyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dpkg(v) => v.fmt(f),
            Self::Rpm(v) => v.fmt(f),
            Self::Apk(v) => v.fmt(f),
        }
    }
}

impl Scheme {
    /// Parses `text` by this scheme's rules.
    ///
    /// # Errors
    /// [`VersionError`] when it does not parse.
    pub fn parse(self, text: &str) -> Result<AnyVersion, VersionError> {
        Ok(match self {
            Self::Dpkg => AnyVersion::Dpkg(dpkg::Version::parse(text)?),
            Self::Rpm => AnyVersion::Rpm(rpm::Version::parse(text)?),
            Self::Apk => AnyVersion::Apk(apk::Version::parse(text)?),
        })
    }

    /// Compares two versions by this scheme's rules.
    ///
    /// # Errors
    /// [`VersionError`] when either does not parse.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(self.parse(a)?.cmp(&self.parse(b)?))
    }
}
