//! Image sources: where strata reads images from, behind one trait.
//!
//! This crate owns the [`ImageSource`] trait (resolve an image name to its manifest, read manifests, configs
//! and blobs — whole, streamed or by byte range) and its transports:
//! - `oci:DIR[:TAG|@DIGEST]` — an OCI image layout directory;
//! - `oci-archive:FILE[:TAG]` — a tar of an OCI layout, read in place (never extracted);
//! - `docker-archive:FILE[:REPO:TAG|:@N]` — `docker save` / `podman save` output, read in place;
//! - `dir:DIR` — skopeo's `dir:` format.
//!
//! On top of any source, [`resolve()`] picks the platform's manifest and config from an index, and
//! [`InspectReport`] gives skopeo's `inspect` view of the result.
//!
//! **Invariants:** nothing is read outside the source: directory sources are opened capability-style (no path
//! or symlink may lead out, via `cap-std`), archive members whose names climb out of the archive are never
//! served, and every digest is validated before it becomes a path. Every manifest, config and blob is verified
//! against its digest as it is read. Metadata reads are bounded (4 MiB).
//!
//! **Must not depend on:** the layer engine, the store, FUSE or the CLI. It never prints.

mod dir;
mod docker_archive;
mod error;
mod inspect;
mod layout;
mod member;
mod registry;
mod resolve;

use std::io::Read;
use std::path::Path;

use strata_oci::{Digest, ImageReference, MAX_MANIFEST_SIZE, VerifyingReader};

pub use error::{Error, LISTED_TAGS, Result};
pub use inspect::{InspectReport, LayerData};
pub use registry::{
    ApiError, Credentials, RegistryError, RepositoryTags, RetryPolicy, SourceOptions, list_tags,
};
pub use resolve::{MAX_INDEX_DEPTH, ResolvedImage, resolve};

use member::Member;

/// Manifest bytes exactly as the source stores them, with their digest and declared media type.
#[derive(Debug, Clone)]
pub struct RawManifest {
    /// The bytes, unchanged.
    pub bytes: Vec<u8>,
    /// The digest of the bytes.
    pub digest: Digest,
    /// The media type the source declared for it (a descriptor's or a `Content-Type`), if any.
    pub media_type: Option<String>,
}

/// A blob being read. The reader verifies the blob's digest and size: a mismatch surfaces as an
/// [`std::io::ErrorKind::InvalidData`] error at the end of the stream.
pub struct Blob {
    /// The blob's size in bytes.
    pub size: u64,
    /// The verified stream of its bytes.
    pub reader: Box<dyn Read + Send>,
}

/// A place images are read from.
pub trait ImageSource: Send + Sync {
    /// The source as the user named it, `transport:path…`, for messages.
    fn name(&self) -> &str;

    /// The docker reference the source was opened with, if any (e.g. `docker-archive:F:repo:tag`).
    fn docker_reference(&self) -> Option<&ImageReference> {
        None
    }

    /// The top-level manifest the name designates (possibly an index).
    fn top_manifest(&self) -> Result<RawManifest>;

    /// The manifest with `digest`, verified; `media_type` is the type its descriptor declares.
    fn manifest(&self, digest: &Digest, media_type: Option<&str>) -> Result<RawManifest>;

    /// Opens the blob with `digest` for a verified sequential read.
    fn open_blob(&self, digest: &Digest) -> Result<Blob>;

    /// Reads up to `buf.len()` bytes of blob `digest` at `offset` (unverified: ranges cannot be hashed).
    /// Returns 0 at or past the end.
    fn read_blob_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize>;

    /// The tags of the image's repository, where the transport has a notion of them (empty otherwise).
    fn repo_tags(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Reads a whole small blob (config, manifest), verified, refusing blobs over `limit` bytes.
pub fn read_blob(source: &dyn ImageSource, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
    let blob = source.open_blob(digest)?;
    if blob.size > limit {
        return Err(Error::oci(
            source.name(),
            strata_oci::Error::TooLarge {
                what: format!("blob {digest}"),
                size: blob.size,
                limit,
            },
        ));
    }
    let mut out = Vec::new();
    blob.reader
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| read_error(source.name(), digest, e))?;
    Ok(out)
}

/// Maps an error from a verified blob stream to a source error, keeping digest mismatches typed.
fn read_error(source_name: &str, digest: &Digest, e: std::io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<strata_oci::Error>())
    {
        Some(strata_oci::Error::DigestMismatch { expected, actual }) => Error::oci(
            source_name,
            strata_oci::Error::DigestMismatch {
                expected: expected.clone(),
                actual: actual.clone(),
            },
        ),
        _ => Error::io(format!("{source_name} blob {digest}"), e),
    }
}

/// Opens the image `name` (`transport:…`) with the default [`SourceOptions`].
pub fn open(name: &str) -> Result<Box<dyn ImageSource>> {
    open_with(name, &SourceOptions::default())
}

/// Opens the image `name` (`transport:…`); `options` apply to the transports that use them (`docker:`).
pub fn open_with(name: &str, options: &SourceOptions) -> Result<Box<dyn ImageSource>> {
    let Some((transport, rest)) = name.split_once(':') else {
        return Err(Error::InvalidName {
            name: name.to_owned(),
            reason: "no transport prefix (oci:, oci-archive:, docker-archive:, dir:, docker://)"
                .into(),
        });
    };
    let invalid = |reason: &str| Error::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    match transport {
        "oci" | "oci-archive" => {
            let (path, selector) = layout::parse_selector(rest).map_err(|r| invalid(&r))?;
            if path.is_empty() {
                return Err(invalid("empty path"));
            }
            let source = if transport == "oci" {
                layout::OciLayout::open_dir(name, Path::new(path), selector)?
            } else {
                layout::OciLayout::open_archive(name, Path::new(path), selector)?
            };
            Ok(Box::new(source))
        }
        "docker-archive" => {
            let (path, selector) = docker_archive::parse_selector(rest).map_err(|r| invalid(&r))?;
            if path.is_empty() {
                return Err(invalid("empty path"));
            }
            Ok(Box::new(docker_archive::DockerArchive::open(
                name,
                Path::new(path),
                selector,
            )?))
        }
        "dir" => {
            if rest.is_empty() {
                return Err(invalid("empty path"));
            }
            Ok(Box::new(dir::DirSource::open(name, Path::new(rest))?))
        }
        "docker" => Ok(Box::new(registry::open(name, rest, options)?)),
        _ => Err(Error::UnknownTransport {
            transport: transport.to_owned(),
        }),
    }
}

/// A blob member verified as it is read.
fn verified_blob(member: Member, digest: &Digest) -> Blob {
    let size = member.size();
    Blob {
        size,
        reader: Box::new(VerifyingReader::new(
            member.reader(),
            digest.clone(),
            Some(size),
        )),
    }
}

/// Reads a manifest member, verifying it against `digest`.
fn verified_manifest(
    source_name: &str,
    member: Member,
    digest: &Digest,
    media_type: Option<&str>,
) -> Result<RawManifest> {
    let bytes = member.read_all(MAX_MANIFEST_SIZE, source_name)?;
    digest
        .verify(&bytes)
        .map_err(|e| Error::oci(source_name, e))?;
    Ok(RawManifest {
        bytes,
        digest: digest.clone(),
        media_type: media_type.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_err(name: &str) -> String {
        match open(name) {
            Ok(_) => panic!("{name} opened"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert!(open_err("foo:bar").contains("unknown transport \"foo\""));
        assert!(open_err("nocolon").contains("no transport"));
        assert!(open_err("oci:").contains("empty path"));
        assert!(open_err("dir:").contains("empty path"));
        assert!(open_err("docker-archive:x.tar:UPPER/case:tag").contains("invalid"));
        assert!(open_err("oci:/nonexistent/x").contains("/nonexistent/x"));
    }
}
