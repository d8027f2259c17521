//! The other direction of the seam: a place images are written to, blob by blob, then manifest by manifest,
//! then committed as one.

use std::io::{Read, Write};

use strata_oci::{Digest, ImageReference};

use crate::{RawManifest, Result};

/// How a destination wants layer blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// As the source stores them (`dir:`, as containers/image's `PreserveOriginal`).
    AsStored,
    /// Compressed (`oci:`, `oci-archive:`, `docker://`, as containers/image's `Compress`): a layer the
    /// source stores as a plain tar under a compressed media type (a docker archive's) is compressed as its
    /// type says, never written as a plain tar under that type.
    Compressed,
    /// Uncompressed: the writer decompresses each compressed layer and hands over the tar, named by its diff
    /// ID (`docker save`'s format keeps layers as plain tars).
    Uncompressed,
}

/// Which manifest of the image [`ImageDestination::put_manifest`] is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestRole {
    /// One instance of an index, stored by its digest only.
    Instance,
    /// The manifest the destination's name designates (the index of a multi-image copy, else the one image
    /// manifest): the one that gets the name's tag. Given last.
    Top,
}

/// A blob to write: its digest and, when known, its size, with a stream of its bytes.
///
/// The stream verifies itself: it fails (an [`std::io::ErrorKind::InvalidData`] error at its end) when the
/// bytes do not hash to `digest` or do not have `size` bytes — or it is the caller's own spool of bytes it
/// hashed as it wrote them. A destination reads it to its end before
/// keeping anything, and keeps nothing of a stream that failed.
pub struct BlobWrite<'a> {
    /// The blob's digest.
    pub digest: &'a Digest,
    /// Its size, unless it is only known once read (a layer decompressed on the way).
    pub size: Option<u64>,
    /// It is the image's config (a docker archive names it `<hex>.json`, layers `<hex>.tar`).
    pub config: bool,
    /// Its bytes, verified as they are read.
    pub reader: &'a mut (dyn Read + Send),
}

/// Where a blob whose digest is known only once all its bytes are (a layer recompressed on the way) is
/// written: straight to the place the destination keeps blobs, hashed as it comes.
pub trait BlobSink: Write + Send {
    /// Keeps what was written under the digest it hashes to; returns that digest and the size. A sink
    /// dropped without it keeps nothing.
    fn keep(self: Box<Self>) -> Result<(Digest, u64)>;
}

/// A place images are written to: one image name of one transport, opened for writing.
///
/// A copy calls, in this order: [`reuse_blob`](ImageDestination::reuse_blob) then, for a blob not reused,
/// [`put_blob`](ImageDestination::put_blob), for every blob (from several threads at once, at most
/// [`max_parallel_blobs`](ImageDestination::max_parallel_blobs)); then
/// [`put_manifest`](ImageDestination::put_manifest) for each instance of an index and last for the top
/// manifest; then [`commit`](ImageDestination::commit). Until `commit` returns, the name designates what it
/// designated before: no tag is moved and no partial file is left where the image goes. After a failure the
/// caller calls [`abort`](ImageDestination::abort), which removes what was written where it can (a
/// registry keeps the blobs it was sent: they are unreachable without a manifest).
pub trait ImageDestination: Send + Sync {
    /// The destination as the user named it, `transport:path…`, for messages.
    fn name(&self) -> &str;

    /// How it wants layer blobs ([`LayerCompression::AsStored`] unless it keeps layers uncompressed).
    fn layer_compression(&self) -> LayerCompression {
        LayerCompression::AsStored
    }

    /// Whether it can store an index with its instances (not a docker archive, which holds single images).
    fn supports_indexes(&self) -> bool {
        true
    }

    /// Whether it can store a manifest of `media_type` as it is (an OCI layout takes only OCI types: a copy
    /// converts the others). Asked for every manifest, as it will be written, before anything is written.
    fn accepts_manifest_type(&self, media_type: &str) -> bool {
        let _ = media_type;
        true
    }

    /// How many blobs may be written at once.
    fn max_parallel_blobs(&self) -> usize {
        1
    }

    /// Whether the destination itself refuses a blob whose bytes do not match its digest, before it keeps
    /// it (a registry checks every upload against the digest of its final `PUT`): a copy then sends a
    /// source's stored bytes without hashing them ([`crate::ImageSource::open_blob_unhashed`]).
    fn verifies_blobs(&self) -> bool {
        false
    }

    /// Whether the destination has blob `digest` of `size` bytes already, or has just been made to have it
    /// without its bytes being sent: a registry mounts a blob from the repository `from` names when it is
    /// in the same registry. `false` means the blob must be written.
    fn reuse_blob(&self, digest: &Digest, size: u64, from: Option<&ImageReference>)
    -> Result<bool>;

    /// Writes one blob, reading `blob.reader` to its end; returns the bytes written.
    fn put_blob(&self, blob: BlobWrite<'_>) -> Result<u64>;

    /// A sink for a blob whose digest is not known yet, when the destination can write one in place (a
    /// directory: a temporary file beside its blobs, renamed to the digest the bytes hash to). `None`, the
    /// default, when it needs the digest first (a registry is told it before the bytes, an archive names
    /// its members by it): the caller then spools the blob, and calls
    /// [`reuse_blob`](ImageDestination::reuse_blob) and [`put_blob`](ImageDestination::put_blob).
    fn blob_sink(&self) -> Result<Option<Box<dyn BlobSink + '_>>> {
        Ok(None)
    }

    /// Writes manifest `manifest` (its `media_type` set) in `role`. The blobs it names have been written.
    fn put_manifest(&mut self, manifest: &RawManifest, role: ManifestRole) -> Result<()>;

    /// Makes the image visible under the destination's name: renames a staged file or directory into place,
    /// writes a layout's `index.json`. Nothing may be written after.
    fn commit(&mut self) -> Result<()>;

    /// Gives up: removes what was staged or added. Called after any failure; harmless after `commit`.
    fn abort(&mut self);
}
