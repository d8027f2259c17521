//! strata-trust's errors: each names the file, URL, reference or source involved.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong finding or judging an image's signatures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A lookaside file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A lookaside server could not be read.
    #[error("reading signature {url}: {source}")]
    Fetch {
        /// The URL.
        url: String,
        /// The underlying error.
        #[source]
        source: strata_source::RegistryError,
    },
    /// A transport or registry failed.
    #[error("reading signatures from {at}: {source}")]
    Source {
        /// The source, reference or blob.
        at: String,
        /// The underlying error.
        #[source]
        source: Box<strata_image::Error>,
    },
    /// More signatures than strata reads for one image.
    #[error("{at}: more than {limit} signatures, refused as a misbehaving server would send")]
    TooMany {
        /// Where.
        at: String,
        /// The limit.
        limit: usize,
    },
    /// A signature larger than strata reads.
    #[error("{at}: a signature over {limit} bytes, refused")]
    TooLarge {
        /// Where.
        at: String,
        /// The limit.
        limit: u64,
    },
    /// Something found where signatures are kept is not what it must be.
    #[error("{at}: {reason}")]
    Invalid {
        /// Where.
        at: String,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with strata-trust's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
