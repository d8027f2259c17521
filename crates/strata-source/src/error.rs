use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors from opening and reading image sources.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The image name has a transport prefix strata does not know.
    #[error(
        "unknown transport {transport:?} (known: oci:, oci-archive:, docker-archive:, dir:, docker://)"
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
    /// The tag asked for is not in the source (a layout's `index.json`, an archive's `manifest.json`, a
    /// registry repository); the message lists the first [`LISTED_TAGS`] of those there are, sorted.
    #[error(
        "tag {tag:?} not found in {source_name}{}; {}",
        if *.defaulted { " (the name gives no tag, and latest is the default)" } else { "" },
        list_tags(.tags)
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
    /// A registry (`docker://`) could not be reached, refused a request or sent something wrong.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// How many tags an error lists, at most.
pub const LISTED_TAGS: usize = 10;

/// `the tags there: a, b, c (and 4 more)` (sorted), or `it has no tags`.
pub(crate) fn list_tags(tags: &[String]) -> String {
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
