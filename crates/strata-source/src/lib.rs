//! Image transports: where strata reads images from — files and registries — and the transport table.
//!
//! This crate implements [`ImageSource`] (from `strata-image`, the image seam) for these transports:
//! - `oci:DIR[:TAG|@DIGEST]` — an OCI image layout directory;
//! - `oci-archive:FILE[:TAG]` — a tar of an OCI layout, read in place (never extracted);
//! - `docker-archive:FILE[:REPO:TAG|:@N]` — `docker save` / `podman save` output, read in place;
//! - `dir:DIR` — skopeo's `dir:` format;
//! - `docker://HOST[:PORT]/NAME[:TAG|@DIGEST]` — a registry (the only network code: `registry/`).
//!
//! Each is also a destination ([`ImageDestination`], opened by [`open_destination`]): files are staged
//! and renamed into place at commit, registries get the distribution push protocol with the manifest last.
//!
//! [`Transports`] is the one place image names are dispatched to transports: [`Transports::builtin`] holds
//! this crate's, and other crates contribute theirs (the store's `containers-storage:`) with
//! [`Transports::with`]. [`InspectReport`] gives skopeo's `inspect` view of a resolved image.
//!
//! **Invariants:** nothing is read outside the source: directory sources are opened capability-style (no path
//! or symlink may lead out, via `cap-std`), archive members whose names climb out of the archive are never
//! served, and every digest is validated before it becomes a path. Every manifest, config and blob is verified
//! against its digest as it is read. Metadata reads are bounded (4 MiB).
//!
//! **Must not depend on:** the layer engine, the store, FUSE or the CLI. It never prints.

mod dest;
mod dir;
mod docker_archive;
mod docker_archive_dest;
mod inspect;
mod layout;
mod layout_dest;
mod member;
mod registry;
mod transport;

use strata_oci::{Digest, MAX_MANIFEST_SIZE, VerifyingReader};

pub use dest::{DESTINATION_FORMS, open_destination};
pub use inspect::{InspectReport, LayerData};
pub use registry::{
    ApiError, BlobPush, ChunkedUpload, Credentials, DEFAULT_UPLOAD_CHUNK_SIZE, PushedManifest,
    PushedReferrer, Referrer, Referrers, ReferrersVia, RegistryError, Repository, RepositoryTags,
    RetryPolicy, SourceOptions, fetch_url, list_tags, referrers_tag, registry_error,
};
pub use strata_image::{
    Blob, BlobWrite, Error, ImageDestination, ImageSource, LISTED_TAGS, LayerCompression,
    MAX_INDEX_DEPTH, MAX_SIGNATURE_SIZE, MAX_SIGNATURES, ManifestRole, RawManifest, ResolvedImage,
    Result, read_blob, resolve,
};
pub use transport::{OpenFn, Transport, Transports, local_path, open, open_with};

use member::Member;

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

/// A blob member as it is stored, not hashed (see `ImageSource::open_blob_unhashed`).
fn unhashed_blob(member: Member) -> Blob {
    Blob {
        size: member.size(),
        reader: Box::new(member.reader()),
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
