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

/// The contents [`tar_split_tar`] holds, by entry name (its other entries have none).
pub const TAR_SPLIT_FILES: [(&str, &[u8]); 3] = [
    ("etc/passwd", b"root:x:0:0::\n"),
    ("etc/pax name", b"pax\n"),
    (
        "usr/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
        &[7; 600],
    ),
];

/// A tar with what tar-split records differently (the store's and zstd:chunked's tests): a directory, a file
/// owned by UID 1000, a file named by a PAX `path`, one by a GNU long name (150-byte base), a hardlink, a
/// whiteout owned by UID 55, and 700 bytes after the end-of-archive blocks. File contents: [`TAR_SPLIT_FILES`].
///
/// # Errors
/// Only as `tar::Builder` writing to memory (never in practice).
pub fn tar_split_tar() -> std::io::Result<Vec<u8>> {
    let [(passwd, passwd_data), (pax, pax_data), (long, long_data)] = TAR_SPLIT_FILES;
    let mut b = tar::Builder::new(Vec::new());
    let ustar = |path: &str, kind: tar::EntryType, uid: u64, size: usize| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(path)?;
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(uid);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(size as u64);
        h.set_cksum();
        Ok::<_, std::io::Error>(h)
    };
    b.append(&ustar("etc/", tar::EntryType::Directory, 0, 0)?, &[][..])?;
    b.append(
        &ustar(passwd, tar::EntryType::Regular, 1000, passwd_data.len())?,
        passwd_data,
    )?;
    b.append_pax_extensions([("path", pax.as_bytes())])?;
    b.append(
        &ustar("etc/pax", tar::EntryType::Regular, 0, pax_data.len())?,
        pax_data,
    )?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(long_data.len() as u64);
    b.append_data(&mut h, long, long_data)?;
    let mut link = ustar("etc/passwd2", tar::EntryType::Link, 0, 0)?;
    link.set_link_name(passwd)?;
    link.set_cksum();
    b.append(&link, &[][..])?;
    b.append(
        &ustar("etc/.wh.gone", tar::EntryType::Regular, 55, 0)?,
        &[][..],
    )?;
    let mut out = b.into_inner()?;
    out.extend_from_slice(&[0u8; 700]);
    Ok(out)
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
