//! Package databases: dpkg, apk and rpm (sqlite), parsed from their bytes.

mod apk;
mod dpkg;
pub mod golang;
pub mod lang;
mod rpm;

use serde::Serialize;

pub use apk::parse_apk_installed;
pub use dpkg::parse_dpkg_status;
pub use rpm::{RPM_BDB_MAGIC, is_berkeley_db, parse_rpm_sqlite};

/// Which package manager a package list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// Debian's dpkg (`/var/lib/dpkg/status`, `status.d/`).
    Dpkg,
    /// Alpine's apk (`/lib/apk/db/installed`).
    Apk,
    /// rpm (`rpmdb.sqlite`).
    Rpm,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// The package name.
    pub name: String,
    /// The version as the manager prints it (dpkg: `[epoch:]upstream[-revision]`; rpm:
    /// `[epoch:]version-release`; apk: `version-rN`).
    pub version: String,
    /// The architecture (`amd64`, `x86_64`, `noarch`, …), when recorded.
    pub architecture: String,
    /// The source package (dpkg `Source`, rpm `SOURCERPM`, apk origin), when recorded.
    pub source: String,
    /// The licence, when the manager records one (apk, rpm).
    pub license: String,
    /// The manager's state for it (dpkg's `Status` want/flag/status; `installed` for the others).
    pub status: String,
    /// dpkg's `Multi-Arch` field (`same`, `foreign`, `allowed`), empty when absent or not dpkg.
    pub multi_arch: String,
    /// The manager.
    pub manager: Manager,
}

impl Package {
    /// The name as `dpkg-query`'s `${binary:Package}` prints it: `name:arch` for a `Multi-Arch: same`
    /// package and for one of an architecture other than `native_arch` (and `all`), the bare name otherwise.
    /// Other managers' packages keep their name.
    pub fn binary_package(&self, native_arch: &str) -> String {
        if self.manager != Manager::Dpkg || self.architecture.is_empty() {
            return self.name.clone();
        }
        let qualify = self.multi_arch == "same"
            || (self.architecture != native_arch && self.architecture != "all");
        if qualify {
            format!("{}:{}", self.name, self.architecture)
        } else {
            self.name.clone()
        }
    }
}

/// The architecture dpkg in an image was built for (its native one): the `Architecture` of the `dpkg`
/// package itself, if listed.
pub fn dpkg_native_arch(packages: &[Package]) -> Option<&str> {
    packages
        .iter()
        .find(|p| p.manager == Manager::Dpkg && p.name == "dpkg")
        .map(|p| p.architecture.as_str())
}

/// Errors from reading a package database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// The database is in a format strata does not read (e.g. rpm's BerkeleyDB `Packages`).
    #[error("{path}: {reason}")]
    Unsupported {
        /// The database file.
        path: String,
        /// What it is and why it is not read.
        reason: String,
    },
    /// The image has no package database strata knows (dpkg, apk, rpm).
    #[error("{image}: no package database (dpkg, apk or rpm) found")]
    NoDatabase {
        /// The image.
        image: String,
    },
    /// The database is damaged or not what its name says.
    #[error("{path}: malformed package database: {reason}")]
    Malformed {
        /// The database file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}
