//! Making signatures and writing them where podman and skopeo look for them.
//!
//! [`SigningKey::sign`] makes one signature for a manifest (its sha256 over the exact bytes) and an
//! identity (a docker reference with a tag or digest): simple signing through the user's `gpg`, with the
//! atomic payload skopeo writes, or sigstore with a cosign encrypted private key, with the payload
//! containers/image's sigstore signer writes (type `cosign container image signature`, the full tagged
//! reference, `creator` and `timestamp`), its signature in the `dev.cosignproject.cosign/signature`
//! annotation.
//!
//! [`SignatureStore`] writes them as containers/image's destinations do:
//! - a registry (`docker://`): simple signatures into the registries.d lookaside for writing
//!   (`lookaside-staging`, else `lookaside`; only `file://` can be written), sigstore signatures as layers of
//!   the cosign attachment `sha256-<hex>.sig` when `use-sigstore-attachments` is on (containers/image
//!   refuses them otherwise, and so does strata);
//! - `dir:`: `signature-N` files, `<hex>.signature-N` for an instance of an index, in the blob encoding of
//!   [`Signature::to_blob`].
//!
//! Unlike containers/image, which rewrites a destination's whole signature list, a signature is *added*:
//! it takes the next free `signature-N` (never replacing one, even against a concurrent writer: a file is
//! written under a temporary name beside it and renamed into place only if the name is free) or is appended to the
//! attachment's layers. [`SignatureStore::prepare`] checks that a kind of signature can be written before
//! anything is signed, so a refused destination leaves nothing behind.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use strata_oci::{Digest, ImageReference, Manifest, media};
use strata_policy::{MAX_LOOKASIDE_SIGNATURES, RegistriesD, SignatureLocation, lookaside_url};
use strata_signature::{
    GpgOptions, Payload, PayloadKind, PrivateKey, SIGSTORE_SIGNATURE_ANNOTATION,
    SIGSTORE_SIGNATURE_MIME_TYPE, Signature,
};
use strata_source::{RegistryError, Repository, registry_error};
use thiserror::Error;

use crate::gather::attachment_tag;

/// The `optional.creator` strata writes into the payloads it signs.
pub const CREATOR: &str = concat!("strata ", env!("CARGO_PKG_VERSION"));

/// The most signatures strata writes for one manifest: what containers/image (and strata's gather) read.
pub const MAX_WRITTEN_SIGNATURES: usize = MAX_LOOKASIDE_SIGNATURES;

/// The largest attachment config read back before it is rewritten (containers/image's config limit).
const MAX_ATTACHMENT_CONFIG_SIZE: u64 = 4 << 20;

/// What went wrong making or writing a signature; each names the key, file, reference or digest involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SignError {
    /// Making the signature failed (gpg, a key file, a passphrase).
    #[error("creating signature: {0}")]
    Sign(#[source] strata_signature::Error),
    /// A key or passphrase file could not be read.
    #[error("reading {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The identity to sign for has neither tag nor digest.
    #[error("reference {0} can't be signed, it has neither a tag nor a digest")]
    NameOnly(String),
    /// The manifest cannot be signed (a schema 1 manifest, whose digest is not of its bytes).
    #[error("manifest {digest}: {reason}")]
    Manifest {
        /// The manifest's digest (sha256 of its bytes).
        digest: Digest,
        /// Why.
        reason: String,
    },
    /// The destination keeps no signatures, or not of this kind, or not this way.
    #[error("{destination}: {reason}")]
    Unsupported {
        /// The destination (image name, lookaside URL).
        destination: String,
        /// Why, in containers/image's words where it has them.
        reason: String,
    },
    /// registries.d could not be used.
    #[error(transparent)]
    Registries(#[from] strata_policy::RegistriesError),
    /// Writing a signature file failed.
    #[error("writing signature {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The destination already has as many signatures as readers take.
    #[error(
        "{at}: already {limit} signatures, the most containers/image reads; not adding another"
    )]
    TooMany {
        /// Where.
        at: String,
        /// The limit.
        limit: usize,
    },
    /// The registry failed or refused.
    #[error("{at}: {source}")]
    Registry {
        /// The reference, blob or tag.
        at: String,
        /// The underlying error.
        #[source]
        source: Box<strata_image::Error>,
    },
    /// The existing cosign attachment is not what containers/image writes.
    #[error("{at}: {reason}")]
    Attachment {
        /// The attachment's reference.
        at: String,
        /// What is wrong.
        reason: String,
    },
}

/// The key a signature is made with.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// Simple signing through the user's `gpg` (`--sign-by FINGERPRINT`).
    Gpg {
        /// The key's fingerprint (or any name gpg's `--local-user` takes).
        fingerprint: String,
        /// gpg's home and the passphrase file.
        options: GpgOptions,
    },
    /// A sigstore signature with a decrypted cosign private key (`--sign-by-sigstore-private-key`).
    Sigstore(PrivateKey),
}

/// Reads a passphrase file as skopeo does: its first line, without the line break.
///
/// # Errors
/// When the file cannot be read.
pub fn read_passphrase_file(path: &Path) -> Result<String, SignError> {
    let bytes = read_small(path, 64 * 1024)?;
    let text = String::from_utf8_lossy(&bytes);
    let line = text.split('\n').next().unwrap_or_default();
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

fn read_small(path: &Path, limit: u64) -> Result<Vec<u8>, SignError> {
    use std::io::Read as _;
    let err = |source| SignError::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > limit {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        )));
    }
    Ok(bytes)
}

impl SigningKey {
    /// A gpg key: `fingerprint`, with the passphrase in the first line of `passphrase_file` when given.
    ///
    /// # Errors
    /// When the passphrase file cannot be read or its first line is not all of it that gpg would use.
    pub fn gpg(fingerprint: &str, passphrase_file: Option<&Path>) -> Result<SigningKey, SignError> {
        if let Some(path) = passphrase_file {
            // Read now, so an unreadable file fails before anything else; gpg reads its first line itself.
            read_passphrase_file(path)?;
        }
        Ok(SigningKey::Gpg {
            fingerprint: fingerprint.to_owned(),
            options: GpgOptions {
                gnupghome: None,
                passphrase_file: passphrase_file.map(Path::to_path_buf),
            },
        })
    }

    /// A cosign private key file (`ENCRYPTED COSIGN PRIVATE KEY` or `ENCRYPTED SIGSTORE PRIVATE KEY`),
    /// decrypted with the first line of `passphrase_file`.
    ///
    /// # Errors
    /// When a file cannot be read, the key is not a cosign key, or the passphrase is wrong.
    pub fn sigstore(key_file: &Path, passphrase_file: &Path) -> Result<SigningKey, SignError> {
        let passphrase = read_passphrase_file(passphrase_file)?;
        let pem = read_small(key_file, 1024 * 1024)?;
        let key = PrivateKey::from_encrypted_pem(&pem, passphrase.as_bytes()).map_err(|e| {
            SignError::Sign(match e {
                strata_signature::Error::Decrypt(reason) => {
                    strata_signature::Error::Decrypt(format!("{}: {reason}", key_file.display()))
                }
                strata_signature::Error::InvalidKey(reason) => {
                    strata_signature::Error::InvalidKey(format!("{}: {reason}", key_file.display()))
                }
                other => other,
            })
        })?;
        Ok(SigningKey::Sigstore(key))
    }

    /// The kind of payload this key signs.
    pub fn kind(&self) -> PayloadKind {
        match self {
            SigningKey::Gpg { .. } => PayloadKind::Atomic,
            SigningKey::Sigstore(_) => PayloadKind::Cosign,
        }
    }

    /// Signs `manifest` (exact bytes) for `identity` at `now`.
    ///
    /// # Errors
    /// When `identity` has neither tag nor digest, the manifest is schema 1, or signing fails (gpg's
    /// message, e.g. an unknown key or a wrong passphrase).
    pub fn sign(
        &self,
        manifest: &[u8],
        identity: &ImageReference,
        now: SystemTime,
    ) -> Result<Signature, SignError> {
        let payload = payload(self.kind(), manifest, identity, now)?;
        let bytes = payload.to_bytes();
        match self {
            SigningKey::Gpg {
                fingerprint,
                options,
            } => strata_signature::sign_with_gpg(fingerprint, &bytes, options)
                .map(Signature::SimpleSigning)
                .map_err(SignError::Sign),
            SigningKey::Sigstore(key) => {
                let signature = key.sign(&bytes).map_err(SignError::Sign)?;
                Ok(Signature::Sigstore {
                    mime_type: SIGSTORE_SIGNATURE_MIME_TYPE.to_owned(),
                    payload: bytes,
                    annotations: BTreeMap::from([(
                        SIGSTORE_SIGNATURE_ANNOTATION.to_owned(),
                        signature,
                    )]),
                })
            }
        }
    }
}

/// The digest a signature names for `manifest`: sha256 of its exact bytes, as containers/image computes
/// it (the only algorithm its verifier computes).
pub fn manifest_digest(manifest: &[u8]) -> Digest {
    Digest::sha256(manifest)
}

/// The payload strata signs for `manifest` and `identity`: `kind`'s type, the sha256 of the manifest, the
/// identity as written by containers/image (`HOST/REPO:TAG` or `…@DIGEST`), `creator` [`CREATOR`] and
/// `timestamp` `now` in unix seconds.
///
/// # Errors
/// When `identity` is name-only or the manifest is a signed schema 1 manifest.
pub fn payload(
    kind: PayloadKind,
    manifest: &[u8],
    identity: &ImageReference,
    now: SystemTime,
) -> Result<Payload, SignError> {
    if identity.is_name_only() {
        return Err(SignError::NameOnly(identity.to_string()));
    }
    let digest = manifest_digest(manifest);
    if let Ok(Manifest::Image { media_type, .. }) = Manifest::parse(manifest, None, "manifest")
        && (media_type == media::DOCKER_MANIFEST_V1_SIGNED
            || media_type == media::DOCKER_MANIFEST_V1)
    {
        return Err(SignError::Manifest {
            digest,
            reason: "schema 1 manifests are not signed by strata (convert the image first)".into(),
        });
    }
    let timestamp = now
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Ok(Payload {
        kind,
        docker_reference: identity.to_string(),
        manifest_digest: digest,
        creator: Some(CREATOR.to_owned()),
        timestamp: Some(timestamp),
    })
}

/// The message containers/image gives for destinations that keep no signatures, by transport name
/// (`oci`, `oci-archive`, `docker-archive`, `docker-daemon`), `None` for the others.
pub fn unsupported_transport(transport: &str) -> Option<&'static str> {
    match transport {
        "oci" | "oci-archive" => Some("Pushing signatures for OCI images is not supported"),
        "docker-archive" | "docker-daemon" => {
            Some("Storing signatures for docker tar files is not supported")
        }
        _ => None,
    }
}

/// Where a signature was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A lookaside or `dir:` file.
    File(PathBuf),
    /// A layer of a cosign attachment.
    Attachment {
        /// `HOST/REPO:sha256-<hex>.sig`.
        reference: String,
        /// The layer's position (from 0).
        layer: usize,
        /// The layer's digest (the payload's sha256).
        digest: Digest,
    },
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Written::File(path) => write!(f, "{}", path.display()),
            Written::Attachment {
                reference, layer, ..
            } => write!(f, "{reference} layer {layer}"),
        }
    }
}

/// A destination's signature storage.
#[derive(Debug)]
pub enum SignatureStore<'a> {
    /// A registry repository: the lookaside (simple signing) and cosign attachments (sigstore), as
    /// `registries` configures them for the repository's reference.
    Registry {
        /// The repository (its reference picks the registries.d sections).
        repository: &'a Repository,
        /// registries.d.
        registries: &'a RegistriesD,
    },
    /// A `dir:` image directory.
    Dir(PathBuf),
}

impl SignatureStore<'_> {
    fn name(&self) -> String {
        match self {
            SignatureStore::Registry { repository, .. } => {
                format!("docker://{}", repository.reference())
            }
            SignatureStore::Dir(path) => format!("dir:{}", path.display()),
        }
    }

    /// Checks, before anything is signed, that signatures of `kind` can be written here: for a registry,
    /// a `file://` lookaside for writing (simple signing) or `use-sigstore-attachments` (sigstore); for
    /// `dir:`, an existing directory.
    ///
    /// # Errors
    /// [`SignError::Unsupported`] saying why not, or registries.d's error.
    pub fn prepare(&self, kind: PayloadKind) -> Result<(), SignError> {
        match self {
            SignatureStore::Registry {
                repository,
                registries,
            } => {
                let reference = repository.reference();
                match kind {
                    PayloadKind::Atomic => {
                        let base = registries.lookaside_base(reference, true)?;
                        // Any digest: this only checks the base's scheme and the repository path.
                        let probe = Digest::sha256(b"");
                        match lookaside_url(&base, reference, &probe.to_string(), 0)? {
                            SignatureLocation::File(_) => Ok(()),
                            SignatureLocation::Http(_) => Err(SignError::Unsupported {
                                destination: base,
                                reason: format!(
                                    "writing directly to an http(s) lookaside is not supported; configure a \
                                     `lookaside-staging:` file:// location for {} in registries.d",
                                    reference.name()
                                ),
                            }),
                        }
                    }
                    PayloadKind::Cosign => {
                        if registries.use_sigstore_attachments(reference)? {
                            Ok(())
                        } else {
                            Err(SignError::Unsupported {
                                destination: self.name(),
                                reason: "writing sigstore attachments is disabled by configuration \
                                         (set `use-sigstore-attachments: true` for the repository in \
                                         registries.d)"
                                    .into(),
                            })
                        }
                    }
                }
            }
            SignatureStore::Dir(path) => {
                if path.join("manifest.json").is_file() {
                    Ok(())
                } else {
                    Err(SignError::Unsupported {
                        destination: self.name(),
                        reason: "not an image directory (no manifest.json)".into(),
                    })
                }
            }
        }
    }

    /// Adds `signature` for the manifest `manifest` (its digest); `instance` says it is an instance of the
    /// image's index rather than the top manifest (`dir:` names those `<hex>.signature-N`; a registry
    /// keeps every manifest's signatures by its digest alike).
    ///
    /// # Errors
    /// As [`SignatureStore::prepare`]; when a file cannot be written or the registry refuses.
    pub fn put(
        &self,
        manifest: &Digest,
        instance: bool,
        signature: &Signature,
    ) -> Result<Written, SignError> {
        match (self, signature) {
            (
                SignatureStore::Registry {
                    repository,
                    registries,
                },
                Signature::SimpleSigning(_),
            ) => {
                self.prepare(PayloadKind::Atomic)?;
                let reference = repository.reference();
                let base = registries.lookaside_base(reference, true)?;
                let path_of = |n: usize| -> Result<PathBuf, SignError> {
                    match lookaside_url(&base, reference, &manifest.to_string(), n)? {
                        SignatureLocation::File(path) => Ok(path),
                        SignatureLocation::Http(url) => Err(SignError::Unsupported {
                            destination: url,
                            reason: "not a file:// lookaside".into(),
                        }),
                    }
                };
                write_next(path_of, &signature.to_blob()).map(Written::File)
            }
            (
                SignatureStore::Registry {
                    repository,
                    registries: _,
                },
                Signature::Sigstore {
                    mime_type,
                    payload,
                    annotations,
                },
            ) => {
                self.prepare(PayloadKind::Cosign)?;
                put_attachment(repository, manifest, mime_type, payload, annotations)
            }
            (SignatureStore::Dir(dir), _) => {
                self.prepare(PayloadKind::Atomic)?;
                let prefix = if instance {
                    format!("{}.", manifest.hex())
                } else {
                    String::new()
                };
                let path_of = |n: usize| -> Result<PathBuf, SignError> {
                    Ok(dir.join(format!("{prefix}signature-{}", n + 1)))
                };
                write_next(path_of, &signature.to_blob()).map(Written::File)
            }
        }
    }
}

/// Writes `blob` as the first free of `path_of(0)`, `path_of(1)`, … (at most
/// [`MAX_WRITTEN_SIGNATURES`]): into a temporary file beside it, then renamed into place without
/// replacing a file another writer put there first.
fn write_next(
    path_of: impl Fn(usize) -> Result<PathBuf, SignError>,
    blob: &[u8],
) -> Result<PathBuf, SignError> {
    let first = path_of(0)?;
    let dir = first
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SignError::Write { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".strata-signature-")
        .tempfile_in(&dir)
        .map_err(write_err(&dir))?;
    temp.write_all(blob).map_err(write_err(temp.path()))?;
    temp.as_file().sync_all().map_err(write_err(temp.path()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(write_err(temp.path()))?;
    }
    for n in 0..MAX_WRITTEN_SIGNATURES {
        let path = path_of(n)?;
        if path.exists() {
            continue;
        }
        // Renamed into place only if the name is free (renameat2 NOREPLACE, or link and unlink).
        match temp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => temp = e.file,
            Err(e) => return Err(write_err(&path)(e.error)),
        }
    }
    Err(SignError::TooMany {
        at: dir.display().to_string(),
        limit: MAX_WRITTEN_SIGNATURES,
    })
}

/// Adds one sigstore signature to the cosign attachment of `manifest` in `repository`, as
/// containers/image does: the existing `sha256-<hex>.sig` OCI manifest (or a new one), the payload pushed
/// as a layer carrying the annotations (unless an identical layer is there), the config's
/// `rootfs.diff_ids` set to the layers' digests, config and manifest pushed, the tag moved.
fn put_attachment(
    repository: &Repository,
    manifest: &Digest,
    mime_type: &str,
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
) -> Result<Written, SignError> {
    let tag = attachment_tag(manifest);
    let reference = format!("{}:{tag}", repository.name());
    let registry = |at: String| {
        move |source| SignError::Registry {
            at,
            source: Box::new(source),
        }
    };
    let bad = |reason: String| SignError::Attachment {
        at: reference.clone(),
        reason,
    };

    let existing = match repository.manifest(&tag) {
        Ok(raw) => Some(raw),
        Err(e) if registry_error(&e).and_then(RegistryError::status) == Some(404) => None,
        Err(e) => return Err(registry(reference.clone())(e)),
    };
    let (mut oci, mut config) = match existing {
        None => (
            json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": {}, "layers": []}),
            json!({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}),
        ),
        Some(raw) => {
            match Manifest::parse(&raw.bytes, raw.media_type.as_deref(), &reference)
                .map_err(|e| bad(e.to_string()))?
            {
                Manifest::Image { media_type, .. } if media_type == media::OCI_MANIFEST => {}
                other => {
                    return Err(bad(format!(
                        "a signature attachment must be an OCI image manifest, not {}",
                        other.media_type()
                    )));
                }
            }
            let oci: Value = serde_json::from_slice(&raw.bytes).map_err(|e| bad(e.to_string()))?;
            let config_digest = oci
                .pointer("/config/digest")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no config digest".into()))
                .and_then(|d| Digest::parse(d).map_err(|e| bad(format!("config: {e}"))))?;
            let bytes = repository
                .read_blob(&config_digest, MAX_ATTACHMENT_CONFIG_SIZE)
                .map_err(registry(format!("{reference} config {config_digest}")))?;
            let config: Value = serde_json::from_slice(&bytes)
                .map_err(|e| bad(format!("config {config_digest}: {e}")))?;
            if !config.is_object() {
                return Err(bad(format!("config {config_digest} is not a JSON object")));
            }
            (oci, config)
        }
    };

    let layers = oci
        .get_mut("layers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| bad("no layers array".into()))?;
    let digest = Digest::sha256(payload);
    let wanted_annotations: Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let same = |layer: &Value| {
        layer.get("mediaType").and_then(Value::as_str) == Some(mime_type)
            && layer.get("size").and_then(Value::as_u64) == Some(payload.len() as u64)
            && layer.get("digest").and_then(Value::as_str) == Some(digest.to_string().as_str())
            && layer
                .get("annotations")
                .and_then(Value::as_object)
                .is_some_and(|a| *a == wanted_annotations)
    };
    if let Some(layer) = layers.iter().position(same) {
        return Ok(Written::Attachment {
            reference,
            layer,
            digest,
        });
    }
    if layers.len() >= MAX_WRITTEN_SIGNATURES {
        return Err(SignError::TooMany {
            at: reference,
            limit: MAX_WRITTEN_SIGNATURES,
        });
    }
    repository
        .push_blob(&digest, payload)
        .map_err(registry(format!("{reference} layer {digest}")))?;
    layers.push(json!({
        "mediaType": mime_type,
        "digest": digest.to_string(),
        "size": payload.len(),
        "annotations": wanted_annotations,
    }));
    let layer = layers.len() - 1;
    let diff_ids: Vec<Value> = layers
        .iter()
        .filter_map(|l| l.get("digest").cloned())
        .collect();

    let rootfs = config
        .as_object_mut()
        .ok_or_else(|| bad("config is not a JSON object".into()))?
        .entry("rootfs")
        .or_insert_with(|| json!({}));
    let rootfs = rootfs
        .as_object_mut()
        .ok_or_else(|| bad("config rootfs is not a JSON object".into()))?;
    rootfs
        .entry("type")
        .or_insert_with(|| Value::String("layers".into()));
    rootfs.insert("diff_ids".into(), Value::Array(diff_ids));
    let config_bytes = serde_json::to_vec(&config).map_err(|e| bad(e.to_string()))?;
    let config_digest = Digest::sha256(&config_bytes);
    repository
        .push_blob(&config_digest, &config_bytes)
        .map_err(registry(format!("{reference} config {config_digest}")))?;
    if let Some(object) = oci.as_object_mut() {
        object.insert(
            "config".into(),
            json!({
                "mediaType": media::OCI_CONFIG,
                "digest": config_digest.to_string(),
                "size": config_bytes.len(),
            }),
        );
    }
    let manifest_bytes = serde_json::to_vec(&oci).map_err(|e| bad(e.to_string()))?;
    repository
        .push_manifest(Some(&tag), media::OCI_MANIFEST, &manifest_bytes)
        .map_err(registry(reference.clone()))?;
    Ok(Written::Attachment {
        reference,
        layer,
        digest,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn reference(text: &str) -> ImageReference {
        ImageReference::parse_normalized_named(text).unwrap()
    }

    #[test]
    fn payloads_name_the_manifest_and_identity() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let p = payload(
            PayloadKind::Atomic,
            manifest,
            &reference("example.com/a/b:v1"),
            now,
        )
        .unwrap();
        let bytes = p.to_bytes();
        let expected = format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"example.com/a/b:v1\"}},\"image\":{{\"docker-manifest-digest\":\"{}\"}},\"type\":\"atomic container signature\"}},\"optional\":{{\"creator\":\"{CREATOR}\",\"timestamp\":1700000000}}}}",
            Digest::sha256(manifest)
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        let p = payload(PayloadKind::Cosign, manifest, &reference("busybox:1"), now).unwrap();
        assert_eq!(p.docker_reference, "docker.io/library/busybox:1");
        assert_eq!(
            Payload::parse(&p.to_bytes(), PayloadKind::Cosign).unwrap(),
            p
        );
    }

    #[test]
    fn name_only_identities_are_refused() {
        let e = payload(
            PayloadKind::Atomic,
            b"{}",
            &reference("example.com/a"),
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("neither a tag nor a digest"), "{e}");
    }

    #[test]
    fn dir_signatures_take_the_next_free_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manifest.json"), b"{}").unwrap();
        let store = SignatureStore::Dir(dir.path().to_path_buf());
        let digest = Digest::sha256(b"m");
        let sig = Signature::SimpleSigning(vec![0xa3, 1, 2]);
        std::fs::write(dir.path().join("signature-1"), b"old").unwrap();
        let w = store.put(&digest, false, &sig).unwrap();
        assert_eq!(w, Written::File(dir.path().join("signature-2")));
        assert_eq!(
            std::fs::read(dir.path().join("signature-1")).unwrap(),
            b"old"
        );
        let w = store.put(&digest, true, &sig).unwrap();
        assert_eq!(
            w,
            Written::File(dir.path().join(format!("{}.signature-1", digest.hex())))
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn dir_without_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SignatureStore::Dir(dir.path().to_path_buf());
        assert!(store.prepare(PayloadKind::Atomic).is_err());
    }

    #[test]
    fn passphrase_is_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, "secret\r\nmore\n").unwrap();
        assert_eq!(read_passphrase_file(&path).unwrap(), "secret");
    }

    #[test]
    fn unsupported_transports_use_containers_image_messages() {
        assert_eq!(
            unsupported_transport("oci"),
            Some("Pushing signatures for OCI images is not supported")
        );
        assert!(unsupported_transport("dir").is_none());
    }
}
