//! The errors of lazy reads.

/// What went wrong reading a layer lazily. Each names the layer (its blob digest) and, where one is
/// involved, the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table of contents (or its footer) is malformed, inconsistent or does not match its digest.
    #[error("layer {layer}: table of contents: {reason}")]
    Toc {
        /// The layer's blob digest.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// A chunk of a file does not match the digest its table gives, or lies outside the blob.
    #[error("layer {layer}: {path}: {reason}")]
    Chunk {
        /// The layer's blob digest.
        layer: String,
        /// The file the chunk belongs to.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A set of layer indexes that cannot be published for an image (nothing was pushed).
    #[error("publishing indexes for image {image}: {reason}")]
    Publish {
        /// The image manifest's digest.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// A published index artifact that cannot be used (not about the image, malformed).
    #[error("published index artifact {artifact}: {reason}")]
    Published {
        /// The artifact manifest's digest.
        artifact: String,
        /// What is wrong.
        reason: String,
    },
    /// A published layer index that does not describe the layer it is listed for, or does not parse.
    #[error("layer {layer}: published index {index}: {reason}")]
    PublishedIndex {
        /// The layer's blob digest.
        layer: String,
        /// The index blob's digest.
        index: String,
        /// What is wrong.
        reason: String,
    },
    /// The local index cache's directory or one of its files could not be used.
    #[error("index cache {}: {source}", path.display())]
    Cache {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Reading from the image source failed.
    #[error(transparent)]
    Source(#[from] strata_image::Error),
    /// Building the layer's index failed.
    #[error(transparent)]
    Index(#[from] strata_index::Error),
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for strata_layer::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Source(e) => strata_layer::Error::Source(e),
            e => strata_layer::Error::Lazy(Box::new(e)),
        }
    }
}
