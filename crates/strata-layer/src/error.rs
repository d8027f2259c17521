use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors of the layer engine. Each names the layer (by digest) or the path involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The layer's bytes failed verification (compressed digest or size, or diff ID).
    #[error("layer {layer}: {error}")]
    Verify {
        /// The layer's blob digest.
        layer: String,
        /// The mismatch.
        #[source]
        error: strata_oci::Error,
    },
    /// The blob is not in the compression its media type declares, or is not a layer at all.
    #[error("layer {layer}: {reason}")]
    Format {
        /// The layer's blob digest.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// The image source failed (a missing blob, say).
    #[error(transparent)]
    Source(#[from] strata_image::Error),
    /// An entry or index error (unsafe names, bad index files).
    #[error(transparent)]
    Index(#[from] strata_index::Error),
    /// A tar stream that could not be read (truncated, corrupt, a member running past the end).
    #[error("layer {layer}: bad tar stream: {source}")]
    Tar {
        /// The layer's blob digest.
        layer: String,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// An entry that cannot be unpacked as asked (a hardlink to a missing target, an opaque marker on a
    /// non-directory, a name that is not a normalised relative path, a short file body), an unpack target
    /// that cannot be used safely (no `openat2(2)`), or a file of an unpacked layer's directory that does
    /// not match the layer's index.
    #[error("{}: {reason}", path.display())]
    Unpack {
        /// The entry's path under the target (or the target itself).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file's content lies outside its layer's tar stream (a corrupt or hostile index).
    #[error("layer {layer}: {path}: the content runs past the end of the layer")]
    Truncated {
        /// The layer's position in the image (0 = bottom).
        layer: usize,
        /// The file's path in the layer, lossily decoded.
        path: String,
    },
    /// A span of the compressed blob, read by range, does not match the span digest its index gives, or
    /// the source served it short (a truncated blob, a registry serving other bytes): none of its bytes were
    /// used.
    #[error("layer {layer}: {}span {span} (bytes {start}..{end} of the blob): {reason}", path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Span {
        /// The layer's blob digest.
        layer: String,
        /// The span's position in the index's span table.
        span: usize,
        /// The span's first byte in the blob.
        start: u64,
        /// The byte after its last.
        end: u64,
        /// The file being read, in-layer path lossily decoded, when known.
        path: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A [`LayerFinder`](crate::LayerFinder) or the [`Contents`](crate::Contents) it gave failed: a
    /// hostile table of contents or index, a chunk that does not match its digest. The error names the
    /// layer (and file).
    #[error(transparent)]
    Lazy(Box<dyn std::error::Error + Send + Sync>),
    /// An I/O error on a file strata reads or writes.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The same error, naming the file `path` was being read when it does not name one yet.
    pub(crate) fn in_file(self, path: &str) -> Error {
        match self {
            Error::Span {
                layer,
                span,
                start,
                end,
                path: None,
                reason,
            } => Error::Span {
                layer,
                span,
                start,
                end,
                path: Some(path.to_owned()),
                reason,
            },
            e => e,
        }
    }
}

/// Result with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
