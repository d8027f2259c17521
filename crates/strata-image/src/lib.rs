//! The image seam: what every image transport offers the rest of strata, and how a name becomes one image.
//!
//! This crate owns the [`ImageSource`] trait — an image's manifests and blobs, read whole, streamed or by
//! byte range, each verified against its digest — with the [`Error`](enum@Error) every transport reports
//! through, and [`resolve()`], which walks from a source's top-level manifest through indexes to the manifest
//! and config of one platform's image. The transports themselves live elsewhere (files and registries in
//! `strata-source`, the store's `containers-storage:` in `strata-store`); so does everything that reads
//! layers (`strata-layer`). [`ImageDestination`] is the other direction — where `strata copy` writes an image, blob
//! by blob, then its manifests, then a commit that makes it visible at once; destinations live beside their
//! sources, the copy itself in `strata-copy`.
//!
//! **Invariants:** a source never serves bytes from outside itself; every manifest, config and blob read
//! whole or streamed is verified against its digest (byte ranges cannot be, and are documented as such);
//! metadata reads are bounded ([`strata_oci::MAX_MANIFEST_SIZE`]).
//!
//! **Must not depend on:** any strata crate but `strata-oci`; no I/O library, HTTP, TLS or thread pool. It
//! never prints.

mod destination;
mod error;
mod resolve;

use std::io::Read;
use std::path::PathBuf;

use strata_oci::{Digest, ImageReference};

pub use destination::{BlobSink, BlobWrite, ImageDestination, LayerCompression, ManifestRole};
pub use error::{Error, LISTED_TAGS, Result, tag_listing};
pub use resolve::{
    MAX_INDEX_DEPTH, PlatformImage, ResolvedImage, check_size, resolve, resolve_all,
};

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

/// How a source serves an image's layer blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerBlobs {
    /// By the digests the manifest names, compressed as the manifest says (every transport but a store).
    AsInManifest,
    /// By diff ID, as uncompressed tar: the source keeps layers unpacked (a containers/storage store) and
    /// rebuilds each layer's tar on request.
    ByDiffId,
}

/// A layer a source keeps unpacked and indexed (a store's layer): its layer index file and its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptLayer {
    /// The layer's strata index file (docs/FORMAT.md).
    pub index: PathBuf,
    /// The directory holding the layer's files (a containers/storage `diff` directory).
    pub dir: PathBuf,
}

/// A place images are read from: one image name of one transport.
pub trait ImageSource: Send + Sync {
    /// The source as the user named it, `transport:path…`, for messages.
    fn name(&self) -> &str;

    /// The docker reference the source was opened with, if any (e.g. `docker-archive:F:repo:tag`).
    fn docker_reference(&self) -> Option<&ImageReference> {
        None
    }

    /// The names the source itself records for the image, as written there: a `docker-archive:`'s
    /// `RepoTags` (all of the chosen image's, or only the one the reference selected, as containers/image's
    /// `ManifestTagsForReference`). Empty for transports that record none.
    fn recorded_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// The top-level manifest the name designates (possibly an index).
    fn top_manifest(&self) -> Result<RawManifest>;

    /// The manifest with `digest`, verified; `media_type` is the type its descriptor declares.
    fn manifest(&self, digest: &Digest, media_type: Option<&str>) -> Result<RawManifest>;

    /// Opens the blob with `digest` for a verified sequential read.
    fn open_blob(&self, digest: &Digest) -> Result<Blob>;

    /// Opens the blob with `digest` for a sequential read that is not hashed on the way: only for a reader
    /// that checks the digest itself before anything relies on the bytes (a registry receiving a push
    /// refuses an upload whose bytes do not match the digest of its final `PUT`; see
    /// [`ImageDestination::verifies_blobs`]). The size is still the stored one. Local sources skip the
    /// hashing; the default is [`ImageSource::open_blob`].
    fn open_blob_unhashed(&self, digest: &Digest) -> Result<Blob> {
        self.open_blob(digest)
    }

    /// Reads up to `buf.len()` bytes of blob `digest` at `offset` (unverified: ranges cannot be hashed).
    /// Returns 0 at or past the end.
    fn read_blob_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize>;

    /// How layer blob `digest` is really compressed, when the source knows better than its descriptor's
    /// media type: a docker archive keeps uncompressed tars that its manifest (as containers/image
    /// presents it) types `tar.gzip`. `Ok(None)`, the default: the media type says it.
    fn stored_compression(
        &self,
        digest: &Digest,
    ) -> Result<Option<strata_oci::media::Compression>> {
        let _ = digest;
        Ok(None)
    }

    /// The tags of the image's repository, where the transport has a notion of them (empty otherwise).
    fn repo_tags(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// How this source serves layer blobs ([`LayerBlobs::AsInManifest`] unless it keeps layers unpacked).
    fn layer_blobs(&self) -> LayerBlobs {
        LayerBlobs::AsInManifest
    }

    /// The signatures the source itself keeps, each a signature blob in containers/image's encoding (raw
    /// OpenPGP for simple signing; `0x00`, a format name and `\n` before other formats): `dir:`'s
    /// `signature-N` files, a store's signature big-data. `instance` is `None` for the image the name
    /// designates, or the digest of one instance of its index. Registries keep signatures beside the image
    /// (lookaside servers, cosign attachments): those are found by strata-trust, not here. At most
    /// [`MAX_SIGNATURES`] of at most [`MAX_SIGNATURE_SIZE`] bytes each; more, or larger, is an error.
    fn signatures(&self, instance: Option<&Digest>) -> Result<Vec<Vec<u8>>> {
        let _ = instance;
        Ok(Vec::new())
    }

    /// The layer with diff ID `diff_id`, if this source keeps it unpacked and indexed (a store): then its
    /// files are read from its directory and nothing is read from its blob. `Ok(None)` otherwise.
    fn kept_layer(&self, diff_id: &Digest) -> Result<Option<KeptLayer>> {
        let _ = diff_id;
        Ok(None)
    }
}

/// The most signatures read for one image (containers/image's bound on lookaside signatures), wherever
/// they are kept.
pub const MAX_SIGNATURES: usize = 128;

/// The largest signature read, in bytes (containers/image's `MaxSignatureBodySize`).
pub const MAX_SIGNATURE_SIZE: u64 = 4 << 20;

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
