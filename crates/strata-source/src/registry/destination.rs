//! `docker://HOST[:PORT]/NAME[:TAG|@DIGEST]` as a destination: the distribution push protocol.
//!
//! Each blob is asked for first (`HEAD`), then mounted from the source's repository when the source is in
//! the same registry, then uploaded, streamed from the source with its known digest (several at once; a
//! blob over [`SourceOptions::upload_chunk_size`] in resumable chunks);
//! instance manifests are pushed by digest, and the top manifest last, under the tag — so a copy that fails
//! earlier never moves the tag. A name with a digest instead of a tag takes only that very manifest.

use strata_image::{BlobWrite, ImageDestination, ManifestRole};
use strata_oci::{Digest, ImageReference, media};

use super::{Repository, SourceOptions, parse_reference};
use crate::{Error, RawManifest, Result};

/// How many blobs go to a registry at once (skopeo's default too: containers/image copies six at a time).
const PARALLEL_UPLOADS: usize = 6;

/// An image being pushed to a registry repository.
pub(crate) struct RegistryDestination {
    name: String,
    repository: Repository,
    /// Blobs larger than this go in chunks of this size (0: never).
    chunk_size: u64,
}

impl RegistryDestination {
    pub(crate) fn open(name: &str, rest: &str, options: &SourceOptions) -> Result<Self> {
        parse_reference(rest).map_err(|reason| Error::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        Ok(RegistryDestination {
            name: name.to_owned(),
            repository: Repository::open(name, options)?,
            chunk_size: options.upload_chunk_size,
        })
    }
}

impl ImageDestination for RegistryDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_parallel_blobs(&self) -> usize {
        PARALLEL_UPLOADS
    }

    /// Distribution (and every registry following the distribution spec) checks an upload's bytes against
    /// the digest of its final `PUT`, answering `DIGEST_INVALID` on a mismatch.
    fn verifies_blobs(&self) -> bool {
        true
    }

    fn layer_compression(&self) -> strata_image::LayerCompression {
        strata_image::LayerCompression::Compressed
    }

    fn reuse_blob(
        &self,
        digest: &Digest,
        size: u64,
        from: Option<&ImageReference>,
    ) -> Result<bool> {
        if self.repository.blob_size(digest)? == Some(size) {
            return Ok(true);
        }
        let ours = self.repository.reference();
        match from {
            Some(from)
                if from.registry() == ours.registry() && from.repository() != ours.repository() =>
            {
                self.repository.mount_blob(digest, from.repository())
            }
            _ => Ok(false),
        }
    }

    fn put_blob(&self, blob: BlobWrite<'_>) -> Result<u64> {
        let Some(size) = blob.size else {
            return Err(Error::Unsupported {
                destination: self.name.clone(),
                what: format!("blob {} of unknown size", blob.digest),
            });
        };
        if self.chunk_size > 0 && size > self.chunk_size {
            self.repository
                .upload_blob_chunked(blob.digest, size, self.chunk_size, blob.reader)?;
        } else {
            self.repository
                .upload_blob_from(blob.digest, size, blob.reader)?;
        }
        Ok(size)
    }

    fn put_manifest(&mut self, manifest: &RawManifest, role: ManifestRole) -> Result<()> {
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
        let reference = self.repository.reference();
        let tag = match role {
            ManifestRole::Instance => None,
            ManifestRole::Top => match reference.digest() {
                Some(wanted) if *wanted != manifest.digest => {
                    return Err(Error::invalid(
                        &self.name,
                        format!(
                            "the name asks for {wanted} but the manifest copied is {}",
                            manifest.digest
                        ),
                    ));
                }
                Some(_) => None,
                None => Some(reference.tag().unwrap_or("latest").to_owned()),
            },
        };
        self.repository
            .push_manifest(tag.as_deref(), &media_type, &manifest.bytes)?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        Ok(())
    }

    fn abort(&mut self) {}
}
