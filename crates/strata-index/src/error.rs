use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors of layer entries and layer index files.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A tar entry whose name or link target could lead outside the layer root.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The name as found in the tar.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An entry the index format cannot hold (a field over the format's limits).
    #[error("cannot index {path:?}: {reason}")]
    Unrepresentable {
        /// The entry's path.
        path: String,
        /// Which limit it exceeds.
        reason: &'static str,
    },
    /// An I/O error on an index file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A layer index file that is not valid.
    #[error("layer index {}: {reason}", path.display())]
    BadIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
