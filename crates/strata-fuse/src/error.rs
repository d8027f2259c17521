use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors of the FUSE file system, its mounts and its mount records. At the FUSE boundary every error
/// becomes an errno ([`Error::errno`]); elsewhere they carry the path or layer involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening, indexing or reading the image failed.
    #[error(transparent)]
    Layer(#[from] strata_layer::Error),
    /// An image could not be opened or resolved.
    #[error(transparent)]
    Image(#[from] strata_image::Error),
    /// The Additional Layer Store could not open an image it was asked about.
    #[error("{reference}: {reason}")]
    Source {
        /// The image reference.
        reference: String,
        /// What went wrong.
        reason: String,
    },
    /// The Additional Layer Store was asked for a layer the image does not have.
    #[error("{reference}: the image has no layer {digest}")]
    NoSuchLayer {
        /// The image reference.
        reference: String,
        /// The layer's compressed digest.
        digest: String,
    },
    /// A layer index could not be read.
    #[error(transparent)]
    Index(#[from] strata_index::Error),
    /// The image does not fit the inode table (more than 2^32 entries or 4 GiB of names).
    #[error("the image is too large to mount: {0}")]
    TooLarge(&'static str),
    /// A system call or file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The directory is not mounted (or not by strata).
    #[error("{}: not a strata FUSE mount", .0.display())]
    NotMounted(PathBuf),
    /// Mounting failed.
    #[error("{}: cannot mount: {reason}", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Unmounting failed.
    #[error("{}: cannot unmount: {reason}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A mount record could not be parsed.
    #[error("{}: bad mount record: {source}", path.display())]
    BadRecord {
        /// The record file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The `Io` variant for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The errno a FUSE request failing with this error answers: the OS error of an I/O failure where
    /// there is one, `EIO` otherwise (corrupt data, decompression errors, truncated layers).
    pub fn errno(&self) -> fuser::Errno {
        match self {
            Error::Io { source, .. } | Error::Layer(strata_layer::Error::Io { source, .. }) => {
                source
                    .raw_os_error()
                    .map_or(fuser::Errno::EIO, fuser::Errno::from_i32)
            }
            _ => fuser::Errno::EIO,
        }
    }
}
