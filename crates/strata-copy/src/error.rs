use thiserror::Error;

/// Errors of a copy.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the source or writing the destination failed (the error names which, and what).
    #[error(transparent)]
    Source(#[from] strata_image::Error),
    /// A hook refused the copy (the policy check, the signatures step).
    #[error("copy refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// The destination cannot hold what would be copied.
    #[error("{destination}: {what}")]
    Unsupported {
        /// The destination, as named.
        destination: String,
        /// What it cannot hold.
        what: String,
    },
    /// A layer could not be decompressed (for a destination that keeps layers uncompressed) or recompressed.
    #[error("layer {digest}: {reason}")]
    Layer {
        /// The layer's digest.
        digest: String,
        /// What went wrong.
        reason: String,
    },
    /// A manifest or config could not be converted to the format asked for.
    #[error("converting {digest}: {reason}")]
    Convert {
        /// The manifest's or config's digest.
        digest: String,
        /// What went wrong.
        reason: String,
    },
    /// A blob was not copied because another failed first.
    #[error("blob {digest} not copied: another blob's copy failed")]
    Interrupted {
        /// The blob's digest.
        digest: String,
    },
}

/// Result with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether copying the blob again may succeed: a transport's or an I/O failure (a registry that went
    /// away, a connection cut), not a digest that does not match or a destination that refuses.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Error::Source(strata_image::Error::Transport(_)) => true,
            Error::Source(strata_image::Error::Io { source, .. }) => {
                source.kind() != std::io::ErrorKind::InvalidData
            }
            _ => false,
        }
    }
}
