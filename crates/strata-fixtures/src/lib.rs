//! Deterministic generation of small container images for strata's tests and samples.
//!
//! This crate owns everything needed to *make* OCI images for testing: layer
//! tarballs built entry by entry ([`LayerBuilder`]), image configs, manifests
//! and indexes ([`ImageBuilder`], [`IndexBuilder`]), OCI image layout
//! directories ([`LayoutWriter`]), `oci-archive` tarballs
//! ([`write_oci_archive`]) and a handful of named fixtures ([`sample`],
//! [`multiarch`], [`minimal`]).
//!
//! It is a dev-dependency and a generator of the bundled sample image only;
//! strata never uses it at runtime.
//!
//! Everything it writes is byte-for-byte deterministic: fixed timestamps,
//! fixed compression settings, compact JSON in a fixed field order, sorted
//! archive entries. Building the same fixture twice gives the same bytes (for
//! a given version of the compression libraries).
//!
//! The builders deliberately do **not** validate what they are told to write:
//! entry names such as `../x` or `/abs`, digests that do not match their
//! content, or broken JSON can all be produced on purpose, so tests can
//! exercise strata's handling of hostile input.

pub mod elf;
mod fixtures;
mod image;
mod layer;
mod layout;
mod toc;

pub use fixtures::{FIXTURE_NAMES, Fixture, fixture, minimal, multiarch, sample};
pub use image::{
    BuiltImage, BuiltIndex, DEFAULT_CREATED, Descriptor, ImageBuilder, IndexBuilder, Platform,
    media_types,
};
pub use layer::{
    BuiltLayer, Compression, DEFAULT_MTIME, Entry, LayerBuilder, LongName, TarPath, compress,
};
pub use layout::{LayoutWriter, REF_NAME_ANNOTATION, write_oci_archive};
pub use toc::{
    ESTARGZ_TOC_DIGEST, TocKind, TocLayer, ZSTD_CHUNKED_CHECKSUM, ZSTD_CHUNKED_POSITION,
    estargz_footer,
};

use sha2::{Digest as _, Sha256};

/// Errors produced while building or writing fixtures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error while writing bytes, files or directories.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A JSON serialisation error.
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
    /// A tar entry could not be encoded as requested (e.g. a name that does
    /// not fit the chosen long-name style).
    #[error("invalid tar entry {name:?}: {reason}")]
    InvalidEntry {
        /// The entry name, lossily decoded.
        name: String,
        /// Why it could not be encoded.
        reason: String,
    },
    /// A digest string that cannot be used as a blob path.
    #[error("invalid digest {0:?}: expected ALGORITHM:ENCODED without path separators")]
    InvalidDigest(String),
    /// An archive source contained a file type that cannot be archived.
    #[error("unsupported file type in layout at {0}")]
    UnsupportedFileType(std::path::PathBuf),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Lower-case hex SHA-256 of `bytes` (64 characters, no algorithm prefix).
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// `len` deterministic pseudo-random bytes (xorshift from `seed`): content that does not compress, so a
/// file of it spans gzip checkpoints and a blob of it is large enough to cut mid-way.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// OCI digest string `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
