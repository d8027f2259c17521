//! `docker://HOST[:PORT]/NAME[:TAG|@DIGEST]`: images in a registry, read over the OCI distribution API.
//!
//! A blocking client (ureq with rustls and ring) and a distribution layer of strata's own:
//! - **pull sources** (`pull.rs`, from registries.conf in `conf.rs`): a read tries the mirrors that serve
//!   the reference (`pull-from-mirror`, `mirror-by-digest-only`), then the registry's `location` (a prefix
//!   rewrite), each with its own `insecure` and its own credentials; the first that serves the top-level
//!   manifest serves every later read of the source; when none does, each endpoint's error is named. Writes
//!   ([`Repository`], destinations) go to the reference as named, never to a mirror;
//! - **ping** `/v2/` once per source: HTTPS; for insecure registries (`--tls-verify=false`, registries.conf
//!   `insecure = true`) HTTPS without certificate checks, then plain HTTP, as skopeo does;
//! - **auth**: `Basic`, and the `Bearer` token flow (realm, service, scope; anonymous, with credentials, or
//!   with an identity token), tokens cached until shortly before they expire, a new token asked for when the
//!   registry challenges for another scope (`insufficient_scope`); credentials from [`SourceOptions`] and
//!   the auth files, searched in containers/image's order;
//! - **manifests** fetched with the full Accept list (OCI index and manifest, Docker list and v2s2), at most
//!   4 MiB, verified against the digest asked for and the `Docker-Content-Digest` announced;
//! - **tags** from `tags/list`, following `Link` pagination;
//! - **blobs** streamed (a cut connection resumes with a Range request; the caller's stream verifies the
//!   digest and size) and read by range (206; a 200 is skipped into; 416 is the end);
//! - **writes** through [`Repository`] (`docker://HOST/NAME`, no HTTP type in its API): blob `HEAD`,
//!   monolithic uploads (`POST /blobs/uploads/`, then one `PUT` to its `Location`, absolute or relative,
//!   with `?digest=`; from memory, retried, or streamed from a reader, sent once), manifest `PUT`s by tag or
//!   digest with their media type as `Content-Type` (the registry's `Docker-Content-Digest` checked), Bearer
//!   tokens asked for with `repository:NAME:pull,push`;
//! - **referrers**: `GET /v2/NAME/referrers/DIGEST[?artifactType=…]` (pages followed, the filter applied
//!   again by strata), and on a registry without it (a 404: Distribution 2.8 answers a plain-text one) the
//!   referrers tag schema — the OCI index tagged `<alg>-<hex>` of the subject, read, extended and written
//!   back by [`Repository::add_to_referrers_tag`], keeping other clients' entries as they were, idempotent,
//!   and read again after writing to catch a concurrent writer (not every one: a tag has no
//!   compare-and-swap, so a write landing after that check can still drop the entry);
//! - **HTTP**: redirects followed by hand, never taking `Authorization` to another origin; retries with
//!   exponential backoff on 429/5xx and network failures, honouring `Retry-After` (bounded); timeouts on
//!   connecting and on every read; error bodies read bounded and shown cleaned.
//!
//! **Invariants:** nothing a registry sends is trusted: sizes are bounded before reading, digests are checked
//! on every manifest and blob, and no response can make strata panic or read without bound. No printing.

mod auth;
mod authfile;
mod client;
mod conf;
mod destination;
mod error;
mod fetch;
mod http;
mod options;
mod pull;
mod push;
mod repository;

use std::sync::{Arc, Mutex};

use serde::Serialize;
use strata_oci::{Digest, ImageReference, VerifyingReader};

pub use error::{ApiError, RegistryError, registry_error};
pub use fetch::fetch_url;
pub use options::{Credentials, DEFAULT_UPLOAD_CHUNK_SIZE, RetryPolicy, SourceOptions};
pub use repository::{
    BlobPush, ChunkedUpload, PushedManifest, PushedReferrer, Referrer, Referrers, ReferrersVia,
    Repository, referrers_tag,
};

use crate::{Blob, Error, ImageSource, RawManifest, Result};
use client::Client;
pub(crate) use destination::RegistryDestination;

/// A repository's tags as `skopeo list-tags` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RepositoryTags {
    /// `HOST[:PORT]/NAME`.
    pub repository: String,
    /// The tags, in the order the registry listed them.
    pub tags: Vec<String>,
}

/// Lists the tags of `name`: `docker://HOST[:PORT]/NAME`, with neither tag nor digest.
///
/// # Errors
/// When the name is not such a reference, or the registry cannot be asked.
pub fn list_tags(name: &str, options: &SourceOptions) -> Result<RepositoryTags> {
    let invalid = |reason: &str| Error::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = name
        .strip_prefix("docker:")
        .ok_or_else(|| invalid("list-tags takes docker://HOST/NAME"))?;
    let reference = parse_reference(rest).map_err(|r| invalid(&r))?;
    let path = rest.trim_start_matches('/');
    let last = path.rsplit('/').next().unwrap_or(path);
    if last.contains([':', '@']) {
        return Err(invalid(
            "a tag or digest is not allowed here: name the repository only",
        ));
    }
    let candidates = pull::candidates(&reference, options)?;
    let (_, tags) = pull::first_success(&candidates, |client| client.tags())?;
    Ok(RepositoryTags {
        repository: reference.name(),
        tags,
    })
}

/// Parses the part after `docker:`: `//HOST[:PORT]/NAME[:TAG|@DIGEST]`.
fn parse_reference(rest: &str) -> std::result::Result<ImageReference, String> {
    let Some(text) = rest.strip_prefix("//") else {
        return Err("expected docker://HOST[:PORT]/NAME[:TAG|@DIGEST]".into());
    };
    let reference = ImageReference::parse(text).map_err(|e| e.to_string())?;
    if reference.digest().is_some()
        && text
            .rsplit('/')
            .next()
            .is_some_and(|l| l.split('@').next().is_some_and(|n| n.contains(':')))
    {
        return Err("a reference with both a tag and a digest is not supported".into());
    }
    Ok(reference)
}

/// Opens `docker:REST` (`rest` = `//HOST[:PORT]/NAME[:TAG|@DIGEST]`). Nothing is fetched until asked for.
pub(crate) fn open(name: &str, rest: &str, options: &SourceOptions) -> Result<RegistrySource> {
    let reference = parse_reference(rest).map_err(|reason| Error::InvalidName {
        name: name.to_owned(),
        reason,
    })?;
    let candidates = pull::candidates(&reference, options)?;
    let last = rest.rsplit('/').next().unwrap_or(rest);
    Ok(RegistrySource {
        name: name.to_owned(),
        reference,
        tag_given: last.contains([':', '@']),
        candidates,
        chosen: Mutex::new(None),
    })
}

/// Whether `e` says the registry has no manifest of that reference in a repository it knows (404, and
/// not `NAME_UNKNOWN`, which is about the repository).
fn is_unknown_manifest(e: &RegistryError) -> bool {
    match e {
        RegistryError::Status {
            status: 404,
            errors,
            ..
        } => !errors.iter().any(|a| a.code == "NAME_UNKNOWN"),
        _ => false,
    }
}

/// An image in a registry, read from the first of its pull sources (registries.conf's mirrors, then its
/// location) that serves its manifest.
pub(crate) struct RegistrySource {
    name: String,
    reference: ImageReference,
    /// The name gave a tag or digest (otherwise the tag is `latest`).
    tag_given: bool,
    /// The endpoints to try, in order (one without mirrors).
    candidates: Vec<pull::Candidate>,
    /// The endpoint chosen and the top-level manifest it served, fetched once so every use of the source
    /// sees the same image from the same place.
    chosen: Mutex<Option<(Arc<Client>, RawManifest)>>,
}

impl RegistrySource {
    /// The endpoint every read goes to: the only one, or the first that served the top-level manifest.
    fn client(&self) -> Result<Arc<Client>> {
        if let [only] = self.candidates.as_slice()
            && let Ok(client) = &only.client
        {
            return Ok(Arc::clone(client));
        }
        Ok(self.choose()?.0)
    }

    /// Fetches the top-level manifest from the first endpoint that serves it (once), and remembers both.
    fn choose(&self) -> Result<(Arc<Client>, RawManifest)> {
        let mut guard = self.chosen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(chosen) = guard.as_ref() {
            return Ok(chosen.clone());
        }
        let (reference, expected) = match (self.reference.digest(), self.reference.tag()) {
            (Some(d), _) => (d.to_string(), Some(d)),
            (None, Some(t)) => (t.to_owned(), None),
            (None, None) => ("latest".to_owned(), None),
        };
        let fetched = match pull::first_success(&self.candidates, |client| {
            client.manifest(&reference, expected)
        }) {
            Ok(fetched) => fetched,
            // A tag the repository lacks: say which it has (as they were when asked); or that there is
            // no such repository (Distribution answers MANIFEST_UNKNOWN for both, NAME_UNKNOWN for tags).
            // With mirrors, every endpoint's error is reported instead.
            Err(e) if expected.is_none() && is_unknown_manifest(&e) => {
                let Some(Ok(client)) = self.candidates.first().map(|c| &c.client) else {
                    return Err(e.into());
                };
                return Err(match client.tags() {
                    Ok(tags) => Error::TagNotFound {
                        source_name: self.name.clone(),
                        tag: reference,
                        defaulted: !self.tag_given,
                        tags,
                    },
                    Err(tags_error) if tags_error.status() == Some(404) => tags_error.into(),
                    Err(_) => e.into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let (client, fetched) = fetched;
        let manifest = RawManifest {
            bytes: fetched.bytes,
            digest: fetched.digest,
            media_type: fetched.content_type,
        };
        *guard = Some((Arc::clone(&client), manifest.clone()));
        Ok((client, manifest))
    }
}

impl ImageSource for RegistrySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn docker_reference(&self) -> Option<&ImageReference> {
        Some(&self.reference)
    }

    fn top_manifest(&self) -> Result<RawManifest> {
        Ok(self.choose()?.1)
    }

    fn manifest(&self, digest: &Digest, media_type: Option<&str>) -> Result<RawManifest> {
        let fetched = self.client()?.manifest(&digest.to_string(), Some(digest))?;
        Ok(RawManifest {
            bytes: fetched.bytes,
            digest: fetched.digest,
            media_type: media_type.map(str::to_owned).or(fetched.content_type),
        })
    }

    fn open_blob(&self, digest: &Digest) -> Result<Blob> {
        let (size, stream) = self.client()?.open_blob(digest)?;
        Ok(Blob {
            size,
            reader: Box::new(VerifyingReader::new(stream, digest.clone(), Some(size))),
        })
    }

    fn read_blob_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize> {
        Ok(self.client()?.read_blob_at(digest, offset, buf)?)
    }

    fn repo_tags(&self) -> Result<Vec<String>> {
        Ok(self.client()?.tags()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = parse_reference("//127.0.0.1:5000/demo/hello:v1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "demo/hello");
        assert_eq!(r.tag(), Some("v1"));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = parse_reference(&format!("//localhost:5000/a@{d}")).unwrap();
        assert_eq!(r.digest().map(ToString::to_string).as_deref(), Some(d));
        assert!(parse_reference(&format!("//localhost:5000/a:t@{d}")).is_err());
        assert!(parse_reference("localhost:5000/a").is_err());
        assert!(parse_reference("//UPPER/a").is_err());
        let r = parse_reference("//debian").unwrap();
        assert_eq!(r.name(), "docker.io/library/debian");
    }

    #[test]
    fn list_tags_refuses_tags_and_digests() {
        let options = SourceOptions::default();
        for bad in [
            "docker://localhost:5000/a:t",
            "docker://localhost:5000/a@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "docker://debian:12",
            "oci:/x",
            "docker:localhost/a",
        ] {
            let err = list_tags(bad, &options).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err}");
        }
    }
}
