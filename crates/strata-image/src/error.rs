use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors from opening and reading image sources, whatever their transport.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The image name has a transport prefix strata does not know.
    #[error("unknown transport {transport:?} (known: {known})")]
    UnknownTransport {
        /// The prefix before the first `:`.
        transport: String,
        /// The transports that are known, as `oci, oci-archive, …`.
        known: String,
    },
    /// The image name is malformed for its transport.
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file of the source could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (for archives, `ARCHIVE/MEMBER`).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The tag, index entry or image asked for is not in the source.
    #[error("{what} not found in {source_name}")]
    NotFound {
        /// What was looked for.
        what: String,
        /// The source, as `transport:path`.
        source_name: String,
    },
    /// The source is not a well-formed layout or archive.
    #[error("{source_name}: {reason}")]
    Invalid {
        /// The source, as `transport:path`.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// Metadata (manifest, config, digest) that failed to parse or verify.
    #[error("{source_name}: {error}")]
    Oci {
        /// The source, as `transport:path`.
        source_name: String,
        /// The model's error.
        #[source]
        error: strata_oci::Error,
    },
    /// A transport's own error: a registry (`docker://`) that could not be reached, refused a request or
    /// sent something wrong; a store that could not be read. The transport's crate recovers its type (e.g.
    /// `strata_source::registry_error`).
    #[error(transparent)]
    Transport(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Result with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A file of the source (for archives, `ARCHIVE/MEMBER`) that could not be read.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Metadata of source `source_name` that failed to parse or verify.
    pub fn oci(source_name: &str, error: strata_oci::Error) -> Self {
        Error::Oci {
            source_name: source_name.to_owned(),
            error,
        }
    }

    /// Source `source_name` is not well formed: `reason`.
    pub fn invalid(source_name: &str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            source_name: source_name.to_owned(),
            reason: reason.into(),
        }
    }

    /// `what` is not in source `source_name`.
    pub fn not_found(source_name: &str, what: impl Into<String>) -> Self {
        Error::NotFound {
            what: what.into(),
            source_name: source_name.to_owned(),
        }
    }
}
