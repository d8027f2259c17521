//! Package databases: dpkg, apk and rpm (sqlite), parsed from their bytes.

mod apk;
mod dpkg;
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
    /// The manager.
    pub manager: Manager,
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
    /// The database is damaged or not what its name says.
    #[error("{path}: malformed package database: {reason}")]
    Malformed {
        /// The database file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}
