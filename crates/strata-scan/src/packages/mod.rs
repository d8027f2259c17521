//! Package databases: dpkg, apk and rpm (sqlite), parsed from their bytes: the installed packages and
//! the files each installed, with what the database records about them ([`PackagedFile`]).

mod apk;
mod dpkg;
pub mod golang;
pub mod lang;
mod rpm;

use serde::Serialize;

pub use apk::{parse_apk_files, parse_apk_installed};
pub use dpkg::{dpkg_md5sums, parse_dpkg_conffiles, parse_dpkg_md5sums, parse_dpkg_status};
pub use rpm::{
    RPM_BDB_MAGIC, RpmPackage, is_berkeley_db, parse_rpm_sqlite, parse_rpm_sqlite_files,
};

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

/// A file digest algorithm a package database records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgorithm {
    /// MD5 (dpkg's md5sums; rpm's default before 4.6 and `FILEDIGESTALGO` 1).
    Md5,
    /// SHA-1 (apk's `Q1` checksums; rpm 2).
    Sha1,
    /// SHA-224 (rpm 11).
    Sha224,
    /// SHA-256 (rpm 8; what current rpmbuild writes).
    Sha256,
    /// SHA-384 (rpm 9).
    Sha384,
    /// SHA-512 (rpm 10).
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm of rpm's `FILEDIGESTALGO` value (the OpenPGP hash algorithm numbers).
    pub fn from_rpm(value: u32) -> Option<DigestAlgorithm> {
        Some(match value {
            1 => DigestAlgorithm::Md5,
            2 => DigestAlgorithm::Sha1,
            8 => DigestAlgorithm::Sha256,
            9 => DigestAlgorithm::Sha384,
            10 => DigestAlgorithm::Sha512,
            11 => DigestAlgorithm::Sha224,
            _ => return None,
        })
    }
}

/// A packaged file's recorded digest: the algorithm and the lowercase hex value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDigest {
    /// The algorithm.
    pub algorithm: DigestAlgorithm,
    /// The digest in lowercase hex.
    pub hex: String,
}

/// rpm's file flags (`FILEFLAGS`), as [`PackagedFile::flags`] holds them; dpkg conffiles are [`FILE_CONFIG`].
pub const FILE_CONFIG: u32 = 1 << 0;
/// `%doc`.
pub const FILE_DOC: u32 = 1 << 1;
/// `%config(missingok)`: a missing file is not a failure.
pub const FILE_MISSINGOK: u32 = 1 << 3;
/// `%config(noreplace)`.
pub const FILE_NOREPLACE: u32 = 1 << 4;
/// `%ghost`: not in the payload; its content is never checked, its absence never reported.
pub const FILE_GHOST: u32 = 1 << 6;
/// `%license`.
pub const FILE_LICENSE: u32 = 1 << 7;
/// `%readme`.
pub const FILE_README: u32 = 1 << 8;
/// `%artifact`.
pub const FILE_ARTIFACT: u32 = 1 << 12;

/// rpm's file states (`FILESTATES`): installed normally.
pub const STATE_NORMAL: u8 = 0;
/// Replaced by another package's file: only its existence is checked.
pub const STATE_REPLACED: u8 = 1;
/// Not installed (e.g. `--excludedocs`): not checked.
pub const STATE_NOT_INSTALLED: u8 = 2;
/// On a shared network file system: not checked.
pub const STATE_NETSHARED: u8 = 3;
/// Of another colour (multilib): content, size, mtime and device not checked.
pub const STATE_WRONG_COLOR: u8 = 4;

/// One file a package database says a package installed: what verification compares with the image.
/// Fields a database does not record are `None` (dpkg and apk record only a digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackagedFile {
    /// The absolute path.
    pub path: String,
    /// The recorded digest of a regular file's content.
    pub digest: Option<FileDigest>,
    /// The recorded size.
    pub size: Option<u64>,
    /// The recorded mode, file type included (`st_mode`).
    pub mode: Option<u32>,
    /// The owner's name.
    pub user: Option<String>,
    /// The group's name.
    pub group: Option<String>,
    /// A symlink's target.
    pub link: Option<String>,
    /// A device's number as rpm records it (16 bits).
    pub rdev: Option<u32>,
    /// The modification time, seconds since the epoch.
    pub mtime: Option<i64>,
    /// rpm's file flags ([`FILE_CONFIG`], [`FILE_GHOST`], …).
    pub flags: u32,
    /// rpm's verify flags (`FILEVERIFYFLAGS`: which attributes to check); all bits when not recorded.
    pub verify_flags: u32,
    /// rpm's file state ([`STATE_NORMAL`], …); [`STATE_NORMAL`] for dpkg and apk.
    pub state: u8,
}

impl PackagedFile {
    /// A file known only by path and digest (dpkg's md5sums, apk's checksums).
    pub fn with_digest(path: String, algorithm: DigestAlgorithm, hex: String, flags: u32) -> Self {
        PackagedFile {
            path,
            digest: Some(FileDigest { algorithm, hex }),
            size: None,
            mode: None,
            user: None,
            group: None,
            link: None,
            rdev: None,
            mtime: None,
            flags,
            verify_flags: u32::MAX,
            state: STATE_NORMAL,
        }
    }

    /// The attribute marker `rpm -V` prints before the path: the first of `d c s m n g l r a` the flags
    /// have (rpm's order), or a space.
    pub fn marker(&self) -> char {
        const ORDER: [(u32, char); 9] = [
            (FILE_DOC, 'd'),
            (FILE_CONFIG, 'c'),
            (1 << 5, 's'),
            (FILE_MISSINGOK, 'm'),
            (FILE_NOREPLACE, 'n'),
            (FILE_GHOST, 'g'),
            (FILE_LICENSE, 'l'),
            (FILE_README, 'r'),
            (FILE_ARTIFACT, 'a'),
        ];
        ORDER
            .iter()
            .find(|(bit, _)| self.flags & bit != 0)
            .map_or(' ', |(_, c)| *c)
    }
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
    /// A file list names a path that leaves the image's root (`../`, or a path that is not absolute where
    /// the format needs one).
    #[error("{path}: refused file name {name:?}: {reason}")]
    UnsafePath {
        /// The database file.
        path: String,
        /// The name.
        name: String,
        /// Why it is refused.
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
