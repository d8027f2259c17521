//! The crate's errors.

use std::path::PathBuf;

/// A version string that does not parse in its ecosystem's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scheme} version {version:?}: {reason}")]
pub struct VersionError {
    /// `dpkg`, `rpm` or `apk`.
    pub scheme: &'static str,
    /// The version as given.
    pub version: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl VersionError {
    /// An error for `version` in `scheme`.
    pub(crate) fn new(scheme: &'static str, version: &str, reason: &'static str) -> Self {
        Self {
            scheme,
            version: version.to_owned(),
            reason,
        }
    }
}

/// An error reading a feed: the feed as a whole is refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the feed could not be read.
    #[error("advisory feed {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An OSV file (or zip entry) is larger than [`crate::Limits::max_file_size`]; it was not read.
    #[error(
        "advisory feed {path}: {size} bytes or more, over the limit of {limit} bytes per OSV file"
    )]
    FileTooLarge {
        /// The file, or `ZIP!ENTRY` for a zip entry.
        path: String,
        /// Its size (declared, or read so far).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A zip has more entries than [`crate::Limits::max_zip_entries`].
    #[error("advisory feed {path}: {entries} zip entries, over the limit of {limit}")]
    TooManyEntries {
        /// The zip.
        path: PathBuf,
        /// Its entry count.
        entries: u64,
        /// The limit.
        limit: u64,
    },
    /// A zip's entries uncompress to more than [`crate::Limits::max_total_size`] (a zip bomb, or a feed too
    /// large to hold).
    #[error(
        "advisory feed {path}: entries uncompress to {size} bytes or more, over the limit of {limit}"
    )]
    TotalTooLarge {
        /// The zip.
        path: PathBuf,
        /// The bytes declared or read when the limit was passed.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The zip archive itself is unreadable.
    #[error("advisory feed {path}: not a readable zip: {source}")]
    Zip {
        /// The zip.
        path: PathBuf,
        /// The zip reader's error.
        source: zip::result::ZipError,
    },
    /// An OSV file is not JSON, or not an OSV record (a list of records is accepted too).
    #[error("advisory feed {path}: not an OSV record: {source}")]
    Json {
        /// The file, or `ZIP!ENTRY`.
        path: String,
        /// The JSON error (with line and column).
        source: serde_json::Error,
    },
    /// A directory tree deeper than [`crate::Limits::max_depth`].
    #[error("advisory feed {path}: directories nested deeper than {limit}")]
    TooDeep {
        /// The directory.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// An installed package's version does not parse in its package manager's grammar.
    #[error("installed package {package}: {source}")]
    InstalledVersion {
        /// The package.
        package: String,
        /// The version error.
        source: VersionError,
    },
}
