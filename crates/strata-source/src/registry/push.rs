//! The distribution API's writes and the referrers API, for one repository: blob existence (`HEAD`),
//! monolithic blob uploads (`POST` then `PUT ?digest=`), manifest `PUT`s, and `GET /referrers/`.
//!
//! Every request that writes asks for `repository:NAME:pull,push` when the registry wants Bearer tokens.

use std::io::{self, Read};

use strata_oci::{Digest, MAX_MANIFEST_SIZE, media};

use super::RegistryError;
use super::client::{Access, Client, announced_digest};
use super::http::{Body, Method, Response, encode_query, link_next, resolve_url};

/// What a chunked upload did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkedUpload {
    /// Chunks the registry took (`PATCH`es answered 202, or found whole on resumption).
    pub chunks: u32,
    /// Times a failed `PATCH` was resumed from what the registry said it held.
    pub resumed: u32,
}

/// An upload URL with `digest=` added to its query.
fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!(
        "{location}{sep}digest={}",
        encode_query(&digest.to_string())
    )
}

/// The upload `Location` an answer gives (resolved against its URL), else `current`.
fn next_location(resp: &Response, current: &str) -> Result<String, RegistryError> {
    match resp.header("location") {
        None => Ok(current.to_owned()),
        Some(l) => resolve_url(&resp.url, l)
            .map(|u| u.split('#').next().unwrap_or(&u).to_owned())
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: resp.url.clone(),
                reason: format!("unusable upload Location {l:?}"),
            }),
    }
}

/// The bytes an upload holds by its status's `Range: 0-LAST` (`LAST + 1`; `0-0` is read as none, which is
/// what Distribution answers for an empty upload); `None` for another form.
fn held_bytes(range: &str) -> Option<u64> {
    let (first, last) = range.trim().trim_start_matches("bytes=").split_once('-')?;
    if first.trim() != "0" {
        return None;
    }
    let last: u64 = last.trim().parse().ok()?;
    Some(if last == 0 { 0 } else { last + 1 })
}

/// Whether a failed chunk is worth resuming: the connection failed, or the registry answered 429 or 5xx.
fn is_transient(e: &RegistryError) -> bool {
    match e {
        RegistryError::Transport { .. } | RegistryError::RetriesExhausted { .. } => true,
        other => other.status().is_some_and(|s| s == 429 || s >= 500),
    }
}

/// The most pages of a referrers list followed.
const MAX_REFERRERS_PAGES: usize = 100;

/// What a manifest `PUT` told.
#[derive(Debug, Clone)]
pub(crate) struct PutManifest {
    /// The manifest's digest (of the bytes sent; the registry's `Docker-Content-Digest` agreed, if sent).
    pub digest: Digest,
    /// The registry answered with `OCI-Subject`: it processed the manifest's `subject` (its referrers API
    /// lists it).
    pub subject_processed: bool,
}

impl Client {
    /// The size of blob `digest` if the repository has it (`HEAD`), `None` on 404.
    pub(crate) fn blob_size(
        &self,
        digest: &Digest,
        access: Access,
    ) -> Result<Option<u64>, RegistryError> {
        let resp = self.send(
            Method::Head,
            &self.path(&format!("blobs/{digest}")),
            &[],
            None,
            access,
        )?;
        match resp.status {
            200 => {
                if let Some(announced) = announced_digest(&resp)?
                    && announced != *digest
                {
                    return Err(RegistryError::DigestMismatch {
                        url: resp.url.clone(),
                        expected: digest.to_string(),
                        actual: announced.to_string(),
                    });
                }
                let size = resp
                    .content_length()
                    .ok_or_else(|| RegistryError::InvalidResponse {
                        url: resp.url.clone(),
                        reason: "blob HEAD without Content-Length".into(),
                    })?;
                Ok(Some(size))
            }
            404 => Ok(None),
            _ => Err(resp.into_error(Method::Head)),
        }
    }

    /// Starts an upload (`POST /blobs/uploads/`, 202) and gives the absolute URL to `PUT` it to, with
    /// `digest=` added to its query.
    fn start_upload(&self, digest: &Digest) -> Result<String, RegistryError> {
        Ok(with_digest(&self.open_upload()?, digest))
    }

    /// Starts an upload (`POST /blobs/uploads/`, 202): the absolute URL of the upload (its `Location`).
    fn open_upload(&self) -> Result<String, RegistryError> {
        let resp = self.send(
            Method::Post,
            &self.path("blobs/uploads/"),
            &[],
            None,
            Access::Push,
        )?;
        if resp.status != 202 {
            return Err(resp.into_error(Method::Post));
        }
        let url = resp.url.clone();
        let location = resp
            .header("location")
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: url.clone(),
                reason: "upload started without a Location".into(),
            })?;
        let target = resolve_url(&url, location).ok_or_else(|| RegistryError::InvalidResponse {
            url: url.clone(),
            reason: format!("unusable upload Location {location:?}"),
        })?;
        resp.drain();
        Ok(target.split('#').next().unwrap_or(&target).to_owned())
    }

    /// Asks the registry to mount blob `digest` from repository `from` of the same registry
    /// (`POST /blobs/uploads/?mount=DIGEST&from=REPO`): `true` when it did (201). When it started an upload
    /// instead (202: it would not mount), that upload is cancelled and the answer is `false`.
    pub(crate) fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool, RegistryError> {
        let target = format!(
            "{}?mount={}&from={}",
            self.path("blobs/uploads/"),
            encode_query(&digest.to_string()),
            encode_query(from)
        );
        let resp = self.send(Method::Post, &target, &[], None, Access::Push)?;
        match resp.status {
            201 => {
                if let Some(announced) = announced_digest(&resp)?
                    && announced != *digest
                {
                    return Err(RegistryError::DigestMismatch {
                        url: resp.url.clone(),
                        expected: digest.to_string(),
                        actual: announced.to_string(),
                    });
                }
                resp.drain();
                Ok(true)
            }
            202 => {
                let url = resp.url.clone();
                let location = resp.header("location").and_then(|l| resolve_url(&url, l));
                resp.drain();
                if let Some(location) = location {
                    // Best effort: an upload left open expires on its own.
                    if let Ok(r) = self.send(Method::Delete, &location, &[], None, Access::Push) {
                        r.drain();
                    }
                }
                Ok(false)
            }
            _ => Err(resp.into_error(Method::Post)),
        }
    }

    /// Deletes manifest `digest` (`DELETE /manifests/DIGEST`, 202).
    pub(crate) fn delete_manifest(&self, digest: &Digest) -> Result<(), RegistryError> {
        let resp = self.send(
            Method::Delete,
            &self.path(&format!("manifests/{digest}")),
            &[],
            None,
            Access::Push,
        )?;
        if resp.status != 202 && resp.status != 200 {
            return Err(resp.into_error(Method::Delete));
        }
        resp.drain();
        Ok(())
    }

    /// Checks the answer to an upload's final `PUT`: 201, and the `Docker-Content-Digest` if sent.
    fn finish_upload(
        resp: super::http::Response,
        digest: &Digest,
        method: Method,
    ) -> Result<(), RegistryError> {
        if resp.status != 201 {
            return Err(resp.into_error(method));
        }
        if let Some(announced) = announced_digest(&resp)?
            && announced != *digest
        {
            return Err(RegistryError::DigestMismatch {
                url: resp.url.clone(),
                expected: digest.to_string(),
                actual: announced.to_string(),
            });
        }
        resp.drain();
        Ok(())
    }

    /// Uploads `bytes` as blob `digest` in one `PUT` (monolithic). The caller has checked the digest.
    pub(crate) fn upload_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), RegistryError> {
        let target = self.start_upload(digest)?;
        let body = Body {
            content_type: "application/octet-stream".into(),
            bytes: bytes.into(),
        };
        let resp = self.send(Method::Put, &target, &[], Some(&body), Access::Push)?;
        Self::finish_upload(resp, digest, Method::Put)
    }

    /// Uploads `size` bytes read from `reader` as blob `digest` in one streamed `PUT`. The body is read as it
    /// is sent, so that `PUT` is neither retried nor redirected; the registry checks the digest.
    pub(crate) fn upload_blob_from(
        &self,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), RegistryError> {
        let target = self.start_upload(digest)?;
        let resp = self.send_streaming(
            Method::Put,
            &target,
            "application/octet-stream",
            size,
            reader,
        )?;
        Self::finish_upload(resp, digest, Method::Put)
    }

    /// Uploads `size` bytes read from `reader` as blob `digest` in chunks of at most `chunk` bytes: a `POST`
    /// to start, a `PATCH` with `Content-Range: FIRST-LAST` per chunk, then a `PUT ?digest=` without a body.
    ///
    /// A chunk whose `PATCH` fails (the connection cut, a 5xx or 429) is resumed: the upload's `Location` is
    /// asked with `GET` how many bytes the registry holds (its `Range: 0-LAST`), and the chunk, held in
    /// memory, is sent on from there — at most the retry policy's number of times for the whole blob. When
    /// the registry can no longer say (Distribution 2.8 cancels an upload asked with a stale `Location`
    /// after a `PATCH` it took in part) or holds less than the chunk's start, the error is the `PATCH`'s, a
    /// transport error the caller may answer by uploading the blob again from its source.
    pub(crate) fn upload_blob_chunked(
        &self,
        digest: &Digest,
        size: u64,
        chunk: u64,
        reader: &mut dyn Read,
    ) -> Result<ChunkedUpload, RegistryError> {
        let chunk = chunk.max(1);
        let mut location = self.open_upload()?;
        let mut report = ChunkedUpload::default();
        let mut buf: Vec<u8> = Vec::new();
        let mut offset: u64 = 0;
        let mut retries_left = self.max_retries();
        while offset < size {
            let want = chunk.min(size - offset);
            buf.clear();
            reader
                .take(want)
                .read_to_end(&mut buf)
                .map_err(|e| RegistryError::Transport {
                    method: "PATCH",
                    url: location.clone(),
                    source: io::Error::new(
                        e.kind(),
                        format!("reading blob {digest} at byte {offset} from its source: {e}"),
                    ),
                })?;
            if (buf.len() as u64) < want {
                return Err(RegistryError::InvalidResponse {
                    url: location,
                    reason: format!(
                        "blob {digest}: the source ended at byte {} of {size}",
                        offset + buf.len() as u64
                    ),
                });
            }
            let mut sent: usize = 0;
            loop {
                let part = buf.get(sent..).unwrap_or_default();
                match self.patch_chunk(&location, offset + sent as u64, part) {
                    Ok(next) => {
                        location = next;
                        report.chunks += 1;
                        break;
                    }
                    Err(e) if retries_left > 0 && is_transient(&e) => {
                        let attempt = self.max_retries() - retries_left;
                        retries_left -= 1;
                        std::thread::sleep(self.backoff(attempt));
                        let Ok((next, held)) = self.upload_status(&location) else {
                            return Err(e);
                        };
                        let chunk_end = offset + buf.len() as u64;
                        if held < offset || held > chunk_end {
                            return Err(e);
                        }
                        sent = usize::try_from(held - offset).map_err(|_| e)?;
                        location = next;
                        report.resumed += 1;
                        if held == chunk_end {
                            report.chunks += 1;
                            break;
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            offset += buf.len() as u64;
        }
        let target = with_digest(&location, digest);
        let resp = self.send(Method::Put, &target, &[], None, Access::Push)?;
        Self::finish_upload(resp, digest, Method::Put)?;
        Ok(report)
    }

    /// Sends `bytes` as the upload's bytes from `first` on (`PATCH`, once); the upload's next `Location`.
    fn patch_chunk(
        &self,
        location: &str,
        first: u64,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        if bytes.is_empty() {
            return Ok(location.to_owned());
        }
        let last = first + bytes.len() as u64 - 1;
        let body = Body {
            content_type: "application/octet-stream".into(),
            bytes: bytes.into(),
        };
        let resp = self.send_with(
            Method::Patch,
            location,
            &[("Content-Range", format!("{first}-{last}"))],
            Some(&body),
            Access::Push,
            true,
        )?;
        if resp.status != 202 {
            return Err(resp.into_error(Method::Patch));
        }
        let next = next_location(&resp, location)?;
        resp.drain();
        Ok(next)
    }

    /// Asks an upload how many bytes the registry holds (`GET` its `Location`, 204 with `Range: 0-LAST`):
    /// the upload's next `Location` and that count. Distribution answers `0-0` for an empty upload too, which
    /// is read as 0 bytes.
    fn upload_status(&self, location: &str) -> Result<(String, u64), RegistryError> {
        let resp = self.send(Method::Get, location, &[], None, Access::Push)?;
        if resp.status != 204 && resp.status != 200 {
            return Err(resp.into_error(Method::Get));
        }
        let held = match resp.header("range") {
            None => 0,
            Some(range) => held_bytes(range).ok_or_else(|| RegistryError::InvalidResponse {
                url: resp.url.clone(),
                reason: format!("upload status with an unusable Range {range:?}"),
            })?,
        };
        let next = next_location(&resp, location)?;
        resp.drain();
        Ok((next, held))
    }

    /// `PUT`s manifest `bytes` under `reference` (a tag, or the bytes' digest) as `media_type`; the
    /// registry's `Docker-Content-Digest` must be the bytes' digest.
    pub(crate) fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PutManifest, RegistryError> {
        let digest = Digest::sha256(bytes);
        let body = Body {
            content_type: media_type.to_owned(),
            bytes: bytes.into(),
        };
        let resp = self.send(
            Method::Put,
            &self.path(&format!("manifests/{reference}")),
            &[],
            Some(&body),
            Access::Push,
        )?;
        if resp.status != 201 && resp.status != 200 {
            return Err(resp.into_error(Method::Put));
        }
        if let Some(announced) = announced_digest(&resp)? {
            let ours = Digest::of(announced.algorithm(), bytes);
            if announced != ours {
                return Err(RegistryError::DigestMismatch {
                    url: resp.url.clone(),
                    expected: ours.to_string(),
                    actual: announced.to_string(),
                });
            }
        }
        let subject_processed = resp.header("oci-subject").is_some();
        resp.drain();
        Ok(PutManifest {
            digest,
            subject_processed,
        })
    }

    /// The referrers API's index of `subject`'s referrers (every page, as JSON values of the `manifests`
    /// entries), filtered by `artifact_type` if the registry applies the filter; `None` when the registry
    /// answers 404, which a registry with the API never does (Distribution 2.8 answers a plain-text
    /// `404 page not found`).
    pub(crate) fn referrers_api(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<serde_json::Value>>, RegistryError> {
        let mut target = self.path(&format!("referrers/{subject}"));
        if let Some(t) = artifact_type {
            target.push_str(&format!("?artifactType={}", encode_query(t)));
        }
        let mut entries = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for page in 0..MAX_REFERRERS_PAGES {
            let resp = self.get(&target, &[("Accept", media::OCI_INDEX.into())])?;
            match resp.status {
                200 => {}
                404 if page == 0 => {
                    resp.drain();
                    return Ok(None);
                }
                _ => return Err(resp.into_error(Method::Get)),
            }
            let url = resp.url.clone();
            let next = resp.header("link").and_then(link_next).map(str::to_owned);
            let bytes = resp
                .read_limited(Method::Get, MAX_MANIFEST_SIZE)
                .map_err(|e| e.into_registry_error("referrers index", MAX_MANIFEST_SIZE))?;
            let index: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::InvalidResponse {
                    url: url.clone(),
                    reason: format!("malformed referrers index: {e}"),
                })?;
            match index.get("manifests") {
                Some(serde_json::Value::Array(list)) => entries.extend(list.iter().cloned()),
                None | Some(serde_json::Value::Null) => {}
                Some(_) => {
                    return Err(RegistryError::InvalidResponse {
                        url,
                        reason: "the referrers index's manifests is not a list".into(),
                    });
                }
            }
            let Some(next) = next else {
                return Ok(Some(entries));
            };
            let next_url =
                resolve_url(&url, &next).ok_or_else(|| RegistryError::InvalidResponse {
                    url: url.clone(),
                    reason: format!("unusable Link target {next:?}"),
                })?;
            if !seen.insert(next_url.clone()) {
                return Err(RegistryError::InvalidResponse {
                    url,
                    reason: "the referrers list's Link pagination loops".into(),
                });
            }
            target = next_url;
        }
        Err(RegistryError::InvalidResponse {
            url: target,
            reason: format!("more than {MAX_REFERRERS_PAGES} pages of referrers"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_status_ranges() {
        assert_eq!(held_bytes("0-0"), Some(0));
        assert_eq!(held_bytes("0-1048575"), Some(1 << 20));
        assert_eq!(held_bytes("bytes=0-9"), Some(10));
        assert_eq!(held_bytes("5-9"), None);
        assert_eq!(held_bytes("0-x"), None);
        assert_eq!(held_bytes("nonsense"), None);
    }

    #[test]
    fn digests_are_added_to_the_upload_query() {
        let d = Digest::sha256(b"");
        assert!(
            with_digest("http://r/v2/a/blobs/uploads/u?_state=x", &d).contains("&digest=sha256%3A")
        );
        assert!(with_digest("http://r/v2/a/blobs/uploads/u", &d).contains("u?digest="));
    }
}
