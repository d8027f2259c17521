use thiserror::Error;

/// Errors from parsing or validating image metadata.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A digest string is not `algorithm:hex` with a supported algorithm and exact hex length.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The offending text (possibly truncated).
        digest: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Content did not hash to the digest it was expected to have.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest that was asked for.
        expected: String,
        /// The digest of the bytes actually read.
        actual: String,
    },
    /// Content was not of the size its descriptor claims.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The digest of the content.
        digest: String,
        /// The size the descriptor claims.
        expected: u64,
        /// The size actually read.
        actual: u64,
    },
    /// An image reference could not be parsed.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The text that was parsed.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A manifest, index or config is larger than strata accepts.
    #[error("{what} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// What was being read.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// JSON that could not be decoded into the expected shape.
    #[error("malformed {what}: {source}")]
    Json {
        /// What was being decoded (e.g. `manifest sha256:…`).
        what: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest of a media type strata does not read.
    #[error("unsupported manifest media type {media_type:?}")]
    UnsupportedManifest {
        /// The media type found.
        media_type: String,
    },
    /// Structurally valid JSON with impossible content.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being checked.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// No entry of an index matches the wanted platform.
    #[error("no image found in image index for {wanted}; available: {available}")]
    NoMatchingPlatform {
        /// The platform that was asked for.
        wanted: String,
        /// The platforms the index offers, comma-separated.
        available: String,
    },
}

/// Result with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
