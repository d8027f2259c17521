use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors from opening and reading image sources.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The image name has a transport prefix strata does not know.
    #[error(
        "unknown transport {transport:?} (known: oci, oci-archive, docker-archive, dir, docker)"
    )]
    UnknownTransport {
        /// The prefix before the first `:`.
        transport: String,
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
    /// A registry (`docker://`) could not be reached, refused a request or sent something wrong.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// Result with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn oci(source_name: &str, error: strata_oci::Error) -> Self {
        Error::Oci {
            source_name: source_name.to_owned(),
            error,
        }
    }

    pub(crate) fn invalid(source_name: &str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            source_name: source_name.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(source_name: &str, what: impl Into<String>) -> Self {
        Error::NotFound {
            what: what.into(),
            source_name: source_name.to_owned(),
        }
    }
}
