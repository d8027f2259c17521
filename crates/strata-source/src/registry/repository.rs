//! [`Repository`]: one registry repository, read and written by digest and tag — blobs, manifests, and the
//! referrers of a manifest (the referrers API, else the referrers tag schema).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use strata_oci::{Digest, ImageReference, MAX_MANIFEST_SIZE, VerifyingReader, media};

use super::client::{Access, Client};
pub use super::push::ChunkedUpload;
use super::{RegistryError, SourceOptions, is_unknown_manifest, parse_reference};
use crate::{Blob, Error, RawManifest, Result};

/// How many times the referrers tag index is read, changed and written when another writer's change
/// keeps replacing it.
const MAX_TAG_ATTEMPTS: usize = 4;

/// A repository in a registry (`docker://HOST[:PORT]/NAME`), for reading and writing blobs and manifests
/// by digest and tag, and for finding and attaching the referrers of a manifest (OCI artifacts whose
/// `subject` is that manifest).
///
/// Authentication is the image source's (credentials from [`SourceOptions`] or the auth files; Basic, or
/// Bearer tokens, asked for with `repository:NAME:pull,push` for writes). Every blob and manifest read is
/// verified against its digest; every blob and manifest written is checked against the digest the registry
/// announces. Nothing here prints; errors name the URL and digest.
pub struct Repository {
    reference: ImageReference,
    client: Arc<Client>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("name", &self.reference.name())
            .finish()
    }
}

/// What [`Repository::push_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository had the blob already: nothing was sent.
    Existed,
    /// The blob was uploaded.
    Uploaded,
}

/// A manifest written by [`Repository::push_manifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    /// Its digest (sha256 of the bytes written).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The registry answered with `OCI-Subject`: it took note of the manifest's `subject` and lists the
    /// manifest in its referrers API. Without it, a referrer must be added to the referrers tag schema.
    pub subject_processed: bool,
}

/// Where a manifest's referrers were found or recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersVia {
    /// The registry's referrers API (`GET /v2/NAME/referrers/DIGEST`).
    Api,
    /// The referrers tag schema: an OCI index tagged [`referrers_tag`] of the subject, kept by clients.
    TagSchema,
}

/// One referrer of a manifest: an entry of a referrers index (the API's answer or the tag schema's index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// Its media type (an OCI image manifest, or an index).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its artifact type: the manifest's `artifactType`, else its config's media type.
    pub artifact_type: Option<String>,
    /// The manifest's annotations (string values only).
    pub annotations: BTreeMap<String, String>,
}

impl Referrer {
    /// The entry as a descriptor in a referrers index.
    fn to_json(&self) -> serde_json::Value {
        let mut d = serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.size,
        });
        if let Some(t) = &self.artifact_type {
            d["artifactType"] = t.clone().into();
        }
        if !self.annotations.is_empty() {
            d["annotations"] = serde_json::json!(self.annotations);
        }
        d
    }

    /// An entry of a referrers index; `None` for one without a valid digest (another client's garbage,
    /// which can be neither used nor trusted).
    fn from_json(value: &serde_json::Value) -> Option<Referrer> {
        let digest = Digest::parse(value.get("digest")?.as_str()?).ok()?;
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let annotations = value
            .get("annotations")
            .and_then(|a| a.as_object())
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Referrer {
            digest,
            media_type: text("mediaType").unwrap_or_default(),
            size: value.get("size").and_then(|s| s.as_u64()).unwrap_or(0),
            artifact_type: text("artifactType"),
            annotations,
        })
    }
}

/// The referrers of a manifest, and where they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    /// The API, or (on a registry without it) the tag schema.
    pub via: ReferrersVia,
    /// The referrers, in the order listed.
    pub referrers: Vec<Referrer>,
}

/// A referrer written by [`Repository::push_referrer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedReferrer {
    /// The manifest written.
    pub manifest: PushedManifest,
    /// How it is found from its subject: the registry's API, or the tag schema's index (updated).
    pub via: ReferrersVia,
}

/// The referrers tag schema's tag for `subject`: `<alg>-<hex>` (the algorithm cut to 32 characters and the
/// hex to 64, as the distribution spec says), e.g. `sha256-<64 hex digits>`.
pub fn referrers_tag(subject: &Digest) -> String {
    let alg: String = subject.algorithm().name().chars().take(32).collect();
    let hex: String = subject.hex().chars().take(64).collect();
    format!("{alg}-{hex}")
}

/// Whether `tag` is a valid tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl Repository {
    /// Opens `docker://HOST[:PORT]/NAME[:TAG|@DIGEST]` (a tag or digest is allowed, and kept in
    /// [`Repository::reference`], but every operation names its own). Nothing is fetched until asked for.
    ///
    /// # Errors
    /// When the name is not such a reference, registries.conf blocks the registry, or a configuration or
    /// credentials file cannot be read.
    pub fn open(name: &str, options: &SourceOptions) -> Result<Repository> {
        let invalid = |reason: String| Error::InvalidName {
            name: name.to_owned(),
            reason,
        };
        let rest = name
            .strip_prefix("docker:")
            .ok_or_else(|| invalid("expected docker://HOST[:PORT]/NAME".into()))?;
        let reference = parse_reference(rest).map_err(invalid)?;
        let client = Client::new(reference.registry(), reference.repository(), options)?;
        Ok(Repository {
            reference,
            client: Arc::new(client),
        })
    }

    /// The reference it was opened with.
    pub fn reference(&self) -> &ImageReference {
        &self.reference
    }

    /// `HOST[:PORT]/NAME`.
    pub fn name(&self) -> String {
        self.reference.name()
    }

    /// `HOST[:PORT]/NAME@DIGEST`, naming a blob or manifest in errors.
    fn at(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.reference.name())
    }

    /// The size of blob `digest` if the repository has it, `None` if not (`HEAD`).
    ///
    /// # Errors
    /// When the registry cannot be asked, or answers other than 200 or 404.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.client.blob_size(digest, Access::Pull)?)
    }

    /// Makes sure the repository has `bytes` as blob `digest`: nothing is sent if it has a blob of that
    /// digest and size already (`HEAD`), else the bytes are uploaded (`POST /blobs/uploads/`, then one `PUT`
    /// to its `Location` with `?digest=`).
    ///
    /// # Errors
    /// When `bytes` do not hash to `digest` (nothing is sent), or the registry refuses or announces another
    /// digest.
    pub fn push_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<BlobPush> {
        digest
            .verify(bytes)
            .map_err(|e| Error::oci(&self.at(digest), e))?;
        if self.client.blob_size(digest, Access::Push)? == Some(bytes.len() as u64) {
            return Ok(BlobPush::Existed);
        }
        self.client.upload_blob(digest, bytes)?;
        Ok(BlobPush::Uploaded)
    }

    /// Uploads blob `digest` of `size` bytes read from `reader` as it is sent, without asking first whether
    /// the repository has it (the caller did). The `PUT` is made once; the registry checks the digest.
    ///
    /// # Errors
    /// When the registry refuses (a digest or size that does not match included), or `reader` fails.
    pub fn upload_blob_from(
        &self,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<()> {
        Ok(self.client.upload_blob_from(digest, size, reader)?)
    }

    /// Uploads blob `digest` of `size` bytes read from `reader` in chunks of at most `chunk` bytes (`PATCH`
    /// with `Content-Range`, then `PUT ?digest=`), without asking first whether the repository has it. A
    /// chunk cut short is resumed from what the registry says it holds (`GET` of the upload), at most
    /// `--retry-times` times for the blob; the registry checks the digest.
    ///
    /// # Errors
    /// When the registry refuses, `reader` fails or ends early, or a failed chunk cannot be resumed (a
    /// transport error: the blob can be uploaded again from its source).
    pub fn upload_blob_chunked(
        &self,
        digest: &Digest,
        size: u64,
        chunk: u64,
        reader: &mut dyn Read,
    ) -> Result<ChunkedUpload> {
        Ok(self
            .client
            .upload_blob_chunked(digest, size, chunk, reader)?)
    }

    /// Like [`Repository::push_blob`] for a blob of `size` bytes read from `reader` as it is sent (a large
    /// layer). That `PUT` is made once, without retries; the registry checks the digest.
    ///
    /// # Errors
    /// When the registry refuses (a digest or size that does not match included), or `reader` fails.
    pub fn push_blob_from(
        &self,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<BlobPush> {
        if self.client.blob_size(digest, Access::Push)? == Some(size) {
            return Ok(BlobPush::Existed);
        }
        self.client.upload_blob_from(digest, size, reader)?;
        Ok(BlobPush::Uploaded)
    }

    /// Mounts blob `digest` from repository `from` (`NAME`, of the same registry) into this one without
    /// sending its bytes; `false` when the registry would not (it does not have the blob there, or the
    /// credentials cannot read `from`).
    ///
    /// # Errors
    /// When the registry cannot be asked or answers other than 201 or 202.
    pub fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool> {
        Ok(self.client.mount_blob(digest, from)?)
    }

    /// Deletes the manifest `reference` names (a tag is resolved to its digest first; the registry then
    /// forgets every tag of that manifest), as `skopeo delete` does. Returns the digest deleted.
    ///
    /// # Errors
    /// When there is no such manifest, or the registry refuses (Distribution answers 405 unless deletes are
    /// enabled).
    pub fn delete(&self, reference: &str) -> Result<Digest> {
        let digest = match Digest::parse(reference) {
            Ok(d) => d,
            Err(_) => self.manifest(reference)?.digest,
        };
        self.client.delete_manifest(&digest)?;
        Ok(digest)
    }

    /// Opens blob `digest` for reading; the reader verifies its digest and size (a mismatch is an
    /// [`std::io::ErrorKind::InvalidData`] error at the end of the stream).
    ///
    /// # Errors
    /// When the registry has no such blob or cannot be asked.
    pub fn open_blob(&self, digest: &Digest) -> Result<Blob> {
        let (size, stream) = self.client.open_blob(digest)?;
        Ok(Blob {
            size,
            reader: Box::new(VerifyingReader::new(stream, digest.clone(), Some(size))),
        })
    }

    /// Reads blob `digest` whole, verified, refusing one larger than `limit` bytes.
    ///
    /// # Errors
    /// As [`Repository::open_blob`]; a blob over `limit`, or whose bytes do not hash to `digest`.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let name = self.at(digest);
        let too_large = || RegistryError::TooLarge {
            url: name.clone(),
            what: "blob",
            limit,
        };
        let blob = self.open_blob(digest)?;
        if blob.size > limit {
            return Err(too_large().into());
        }
        let mut bytes = Vec::new();
        blob.reader
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Invalid {
                source_name: name.clone(),
                reason: e.to_string(),
            })?;
        Ok(bytes)
    }

    /// The manifest `reference` (a tag, or a digest) names, verified against the digest (when a digest is
    /// named) and the registry's `Docker-Content-Digest`; with the `Content-Type` it was served as.
    ///
    /// # Errors
    /// When `reference` is neither a tag nor a digest, there is no such manifest (a 404 status error), or it
    /// fails verification.
    pub fn manifest(&self, reference: &str) -> Result<RawManifest> {
        let expected = Digest::parse(reference).ok();
        if expected.is_none() && !valid_tag(reference) {
            return Err(Error::InvalidName {
                name: format!("{}:{reference}", self.reference.name()),
                reason: "neither a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}) nor a digest".into(),
            });
        }
        let fetched = self.client.manifest(reference, expected.as_ref())?;
        Ok(RawManifest {
            bytes: fetched.bytes,
            digest: fetched.digest,
            media_type: fetched.content_type,
        })
    }

    /// Writes manifest `bytes` as `media_type` (its `Content-Type`), under `tag`, or by its digest when
    /// `tag` is `None`. The blobs it names must be in the repository already (Distribution answers
    /// `MANIFEST_BLOB_UNKNOWN` otherwise).
    ///
    /// # Errors
    /// When `tag` is not a valid tag, the manifest is over 4 MiB, the registry refuses it, or announces
    /// another digest.
    pub fn push_manifest(
        &self,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PushedManifest> {
        let digest = Digest::sha256(bytes);
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(Error::Invalid {
                source_name: self.at(&digest),
                reason: format!("manifest larger than the {MAX_MANIFEST_SIZE}-byte limit"),
            });
        }
        let reference = match tag {
            Some(tag) if !valid_tag(tag) => {
                return Err(Error::InvalidName {
                    name: format!("{}:{tag}", self.reference.name()),
                    reason: "a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}".into(),
                });
            }
            Some(tag) => tag.to_owned(),
            None => digest.to_string(),
        };
        let put = self.client.put_manifest(&reference, media_type, bytes)?;
        Ok(PushedManifest {
            digest: put.digest,
            size: bytes.len() as u64,
            subject_processed: put.subject_processed,
        })
    }

    /// The referrers of manifest `subject`, only those of `artifact_type` when given: from the referrers
    /// API, or — on a registry without it (a 404, as Distribution 2.8 answers) — from the OCI index tagged
    /// [`referrers_tag`] of the subject (none when there is no such tag). Entries without a valid digest are
    /// left out.
    ///
    /// # Errors
    /// When the registry cannot be asked, or the tag holds something other than an OCI index.
    pub fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
        let (via, entries) = match self.client.referrers_api(subject, artifact_type)? {
            Some(entries) => (ReferrersVia::Api, entries),
            None => (
                ReferrersVia::TagSchema,
                self.tag_index(subject)?
                    .map(|(_, entries)| entries)
                    .unwrap_or_default(),
            ),
        };
        let referrers = entries
            .iter()
            .filter_map(Referrer::from_json)
            .filter(|r| artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t)))
            .collect();
        Ok(Referrers { via, referrers })
    }

    /// The referrers tag schema's index of `subject`, if the tag exists: the whole index (as JSON, to keep
    /// what others wrote) and its `manifests` entries.
    fn tag_index(
        &self,
        subject: &Digest,
    ) -> Result<Option<(serde_json::Value, Vec<serde_json::Value>)>> {
        let tag = referrers_tag(subject);
        let fetched = match self.client.manifest(&tag, None) {
            Ok(fetched) => fetched,
            Err(e) if is_unknown_manifest(&e) || e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let name = format!("{}:{tag}", self.reference.name());
        let bad = |reason: String| -> Error {
            RegistryError::ReferrersTag {
                name: name.clone(),
                reason,
            }
            .into()
        };
        let index: serde_json::Value =
            serde_json::from_slice(&fetched.bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let body_type = index.get("mediaType").and_then(|m| m.as_str());
        let served = fetched.content_type.as_deref();
        if body_type.or(served) != Some(media::OCI_INDEX) {
            return Err(bad(format!(
                "not an OCI index (media type {:?})",
                body_type.or(served).unwrap_or("none")
            )));
        }
        let entries = match index.get("manifests") {
            Some(serde_json::Value::Array(list)) => list.clone(),
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(_) => return Err(bad("its manifests is not a list".into())),
        };
        Ok(Some((index, entries)))
    }

    /// Adds `referrer` to the referrers tag schema's index of `subject` (read, add, write; the index is made
    /// if there is none). Entries already there — other clients' referrers, and any fields strata does not
    /// know — are kept as they were; a referrer listed already is not added again (`Ok(false)`). After
    /// writing, the tag is read again: if another writer replaced the index meanwhile without this entry,
    /// the change is made again (at most 4 times in all). That narrows the race with concurrent writers,
    /// it does not close it: the registry has no compare-and-swap on tags, so a writer that read the index
    /// before this write and writes after that check drops this entry (as it would with any client of the
    /// tag schema); adding it again restores it.
    ///
    /// # Errors
    /// When the tag holds something other than an OCI index, the registry refuses, or other writers keep
    /// replacing the index.
    pub fn add_to_referrers_tag(&self, subject: &Digest, referrer: &Referrer) -> Result<bool> {
        let tag = referrers_tag(subject);
        let listed = |entries: &[serde_json::Value]| {
            entries
                .iter()
                .filter_map(Referrer::from_json)
                .any(|r| r.digest == referrer.digest)
        };
        let mut added = false;
        for _ in 0..MAX_TAG_ATTEMPTS {
            let (mut index, entries) = match self.tag_index(subject)? {
                Some(found) => found,
                None => (
                    serde_json::json!({
                        "schemaVersion": 2,
                        "mediaType": media::OCI_INDEX,
                        "manifests": [],
                    }),
                    Vec::new(),
                ),
            };
            if listed(&entries) {
                return Ok(added);
            }
            let mut entries = entries;
            entries.push(referrer.to_json());
            index["manifests"] = serde_json::Value::Array(entries);
            let bytes = serde_json::to_vec(&index).map_err(|e| Error::Invalid {
                source_name: format!("{}:{tag}", self.reference.name()),
                reason: format!("encoding the referrers index: {e}"),
            })?;
            self.push_manifest(Some(&tag), media::OCI_INDEX, &bytes)?;
            added = true;
        }
        match self.tag_index(subject)? {
            Some((_, entries)) if listed(&entries) => Ok(true),
            _ => Err(RegistryError::ReferrersTag {
                name: format!("{}:{tag}", self.reference.name()),
                reason: format!(
                    "other writers replaced the index {MAX_TAG_ATTEMPTS} times without {}",
                    referrer.digest
                ),
            }
            .into()),
        }
    }

    /// Writes manifest `bytes` (an OCI image manifest or index with a `subject`) as `media_type`, by digest
    /// (or under `tag`), and makes it findable from its subject: when the registry does not answer with
    /// `OCI-Subject`, it is added to the subject's referrers tag index ([`Repository::add_to_referrers_tag`]),
    /// its descriptor carrying the manifest's `artifactType` (else its config's media type) and
    /// annotations. The blobs it names must be in the repository already.
    ///
    /// # Errors
    /// When `bytes` are not a manifest with a valid `subject` (nothing is sent), or as
    /// [`Repository::push_manifest`] and [`Repository::add_to_referrers_tag`].
    pub fn push_referrer(
        &self,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PushedReferrer> {
        let digest = Digest::sha256(bytes);
        let bad = |reason: String| -> Error {
            RegistryError::NotAReferrer {
                digest: digest.to_string(),
                reason,
            }
            .into()
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let subject = value
            .get("subject")
            .and_then(|s| s.get("digest"))
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("no subject digest".into()))?;
        let subject = Digest::parse(subject).map_err(|e| bad(format!("subject: {e}")))?;
        let artifact_type = value
            .get("artifactType")
            .or_else(|| value.get("config").and_then(|c| c.get("mediaType")))
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        let mut referrer = Referrer::from_json(&serde_json::json!({
            "digest": digest.to_string(),
            "mediaType": media_type,
            "size": bytes.len(),
            "annotations": value.get("annotations").cloned().unwrap_or_default(),
        }))
        .ok_or_else(|| bad("no descriptor".into()))?;
        referrer.artifact_type = artifact_type;
        let manifest = self.push_manifest(tag, media_type, bytes)?;
        if manifest.subject_processed {
            return Ok(PushedReferrer {
                manifest,
                via: ReferrersVia::Api,
            });
        }
        self.add_to_referrers_tag(&subject, &referrer)?;
        Ok(PushedReferrer {
            manifest,
            via: ReferrersVia::TagSchema,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        let d = Digest::sha256(b"");
        assert_eq!(
            referrers_tag(&d),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(valid_tag(&referrers_tag(&d)));
        assert!(valid_tag("v1.0_x-y"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag(""));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(!valid_tag("a/b"));
    }

    #[test]
    fn referrer_entries() {
        let d = Digest::sha256(b"x");
        let r = Referrer {
            digest: d.clone(),
            media_type: media::OCI_MANIFEST.into(),
            size: 3,
            artifact_type: Some("application/x".into()),
            annotations: [("a".to_owned(), "b".to_owned())].into(),
        };
        assert_eq!(Referrer::from_json(&r.to_json()), Some(r));
        assert_eq!(
            Referrer::from_json(&serde_json::json!({"digest": "sha256:zz"})),
            None
        );
        let lean = Referrer::from_json(&serde_json::json!({
            "digest": d.to_string(), "annotations": {"n": 1, "s": "t"}
        }));
        assert_eq!(lean.map(|r| r.annotations.len()), Some(1));
    }
}
