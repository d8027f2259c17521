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
    /// The tag asked for is not in the source (a layout's `index.json`, an archive's `manifest.json`, a
    /// registry repository); the message lists the first [`LISTED_TAGS`] of those there are, sorted.
    #[error(
        "tag {tag:?} not found in {source_name}{}; {}",
        if *.defaulted { " (the name gives no tag, and latest is the default)" } else { "" },
        tag_listing(.tags)
    )]
    TagNotFound {
        /// The source, as named.
        source_name: String,
        /// The tag looked for.
        tag: String,
        /// The name gave no tag: `tag` is the default, `latest`.
        defaulted: bool,
        /// The tags the source has, in its order.
        tags: Vec<String>,
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
    /// The destination cannot store what is asked of it (an index in a docker archive, a format it does
    /// not hold).
    #[error("{destination}: {what}")]
    Unsupported {
        /// The destination, as named.
        destination: String,
        /// What it cannot do.
        what: String,
    },
    /// A transport's own error: a registry (`docker://`) that could not be reached, refused a request or
    /// sent something wrong; a store that could not be read. The transport's crate recovers its type (e.g.
    /// `strata_source::registry_error`).
    #[error(transparent)]
    Transport(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// How many tags an error lists, at most.
pub const LISTED_TAGS: usize = 10;

/// `the tags there: a, b, c (and 4 more)` (sorted), or `it has no tags`.
pub fn tag_listing(tags: &[String]) -> String {
    if tags.is_empty() {
        return "it has no tags".into();
    }
    let mut sorted: Vec<&str> = tags.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let shown = sorted.get(..LISTED_TAGS).unwrap_or(&sorted);
    let mut out = format!("the tags there: {}", shown.join(", "));
    if sorted.len() > shown.len() {
        out.push_str(&format!(" (and {} more)", sorted.len() - shown.len()));
    }
    out
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
