//! Finding an image's signatures: a lookaside server or directory (registries.d), cosign attachments in the
//! registry (`sha256-<hex>.sig`), and what the transport itself keeps (`dir:`, a store).

use std::collections::BTreeMap;

use strata_image::{ImageSource, MAX_SIGNATURE_SIZE, MAX_SIGNATURES};
use strata_oci::{Digest, Manifest, media};
use strata_policy::SignatureLocation;
use strata_signature::Signature;
use strata_source::{RegistryError, Repository, SourceOptions, fetch_url, registry_error};

use crate::error::{Error, Result};

/// The media type of a cosign signature layer (a simple-signing payload).
pub const COSIGN_SIGNATURE_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// A signature as found, before any of it is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSignature {
    /// A signature blob in containers/image's encoding (a lookaside file, `dir:`'s `signature-N`, a
    /// store's big-data).
    Blob(Vec<u8>),
    /// One layer of a cosign `.sig` manifest: its media type, its payload (verified against the layer's
    /// digest) and the layer's annotations (the signature, certificates, Rekor bundle).
    Attachment {
        /// The layer's media type.
        media_type: String,
        /// The layer's bytes.
        payload: Vec<u8>,
        /// The layer's annotations.
        annotations: BTreeMap<String, String>,
    },
}

impl RawSignature {
    /// The signature, decoded: a blob as containers/image's signature blob encoding says (a blob that
    /// is no known encoding is kept as simple signing, its bytes unchanged, as containers/image keeps
    /// lookaside files: verifying it will fail, copying it keeps it as it was); an attachment as a
    /// sigstore signature.
    pub fn to_signature(&self) -> Signature {
        match self {
            RawSignature::Blob(bytes) => Signature::from_blob(bytes)
                .unwrap_or_else(|_| Signature::SimpleSigning(bytes.clone())),
            RawSignature::Attachment {
                media_type,
                payload,
                annotations,
            } => Signature::Sigstore {
                mime_type: media_type.clone(),
                payload: payload.clone(),
                annotations: annotations.clone(),
            },
        }
    }

    /// The signature in containers/image's signature blob encoding, as `dir:` and a store keep it: a
    /// blob as found, an attachment as a sigstore blob.
    pub fn to_blob(&self) -> Vec<u8> {
        match self {
            RawSignature::Blob(bytes) => bytes.clone(),
            attachment @ RawSignature::Attachment { .. } => attachment.to_signature().to_blob(),
        }
    }
}

/// Where a signature was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A lookaside file or URL.
    Lookaside(String),
    /// Layer `layer` (from 0) of the cosign attachment `reference` (`HOST/REPO:sha256-<hex>.sig`).
    Attachment {
        /// The attachment manifest's reference.
        reference: String,
        /// The layer's position.
        layer: usize,
    },
    /// Signature `index` (from 1) the transport `source` keeps.
    Stored {
        /// The source's name.
        source: String,
        /// The signature's position.
        index: usize,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Lookaside(at) => write!(f, "lookaside {at}"),
            Origin::Attachment { reference, layer } => {
                write!(f, "attachment {reference} layer {layer}")
            }
            Origin::Stored { source, index } => write!(f, "{source} signature {index}"),
        }
    }
}

/// A signature found, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where it was.
    pub origin: Origin,
    /// What it is.
    pub signature: RawSignature,
}

/// The signatures a lookaside store keeps for one manifest: `url_for(n)` is signature `n`'s file or URL
/// (`strata_policy::lookaside_url`), read from 1 until the first missing one.
///
/// # Errors
/// When a file or server cannot be read (other than missing), a signature is over
/// [`MAX_SIGNATURE_SIZE`], or there are more than [`MAX_SIGNATURES`].
pub fn lookaside(
    url_for: impl Fn(usize) -> Result<SignatureLocation>,
    options: &SourceOptions,
) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for n in 1.. {
        let (url, bytes) = match url_for(n)? {
            SignatureLocation::File(path) => {
                (format!("file://{}", path.display()), read_file(&path)?)
            }
            SignatureLocation::Http(url) => {
                let bytes = fetch_url(&url, MAX_SIGNATURE_SIZE, options).map_err(|source| {
                    Error::Fetch {
                        url: url.clone(),
                        source,
                    }
                })?;
                (url, bytes)
            }
        };
        let Some(bytes) = bytes else { break };
        if n > MAX_SIGNATURES {
            return Err(Error::TooMany {
                at: url,
                limit: MAX_SIGNATURES,
            });
        }
        found.push(Found {
            origin: Origin::Lookaside(url),
            signature: RawSignature::Blob(bytes),
        });
    }
    Ok(found)
}

/// A lookaside file's bytes, `None` if there is none, refusing one over [`MAX_SIGNATURE_SIZE`].
fn read_file(path: &std::path::Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_SIGNATURE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SIGNATURE_SIZE {
        return Err(Error::TooLarge {
            at: path.display().to_string(),
            limit: MAX_SIGNATURE_SIZE,
        });
    }
    Ok(Some(bytes))
}

/// The tag cosign attaches `manifest`'s signatures under: `sha256-<hex>.sig`.
pub fn attachment_tag(manifest: &Digest) -> String {
    format!("{}-{}.sig", manifest.algorithm().name(), manifest.hex())
}

/// The cosign signatures attached to `manifest` in `repository` (the `sha256-<hex>.sig` tag), as
/// containers/image reads them: none when the tag is missing; an error when it is anything but an OCI
/// image manifest, or the registry fails otherwise. Each layer's blob is read (at most
/// [`MAX_SIGNATURE_SIZE`]) and verified against its digest; at most [`MAX_SIGNATURES`] layers.
///
/// # Errors
/// As above.
pub fn attachments(repository: &Repository, manifest: &Digest) -> Result<Vec<Found>> {
    let tag = attachment_tag(manifest);
    let reference = format!("{}:{tag}", repository.name());
    let raw = match repository.manifest(&tag) {
        Ok(raw) => raw,
        Err(e) if registry_error(&e).and_then(RegistryError::status) == Some(404) => {
            return Ok(Vec::new());
        }
        Err(source) => {
            return Err(Error::Source {
                at: reference,
                source: Box::new(source),
            });
        }
    };
    let invalid = |reason: String| Error::Invalid {
        at: reference.clone(),
        reason,
    };
    let parsed = Manifest::parse(&raw.bytes, raw.media_type.as_deref(), &reference)
        .map_err(|e| invalid(e.to_string()))?;
    let manifest = match parsed {
        Manifest::Image {
            media_type,
            manifest,
        } if media_type == media::OCI_MANIFEST => manifest,
        other => {
            return Err(invalid(format!(
                "a signature attachment must be an OCI image manifest, not {}",
                other.media_type()
            )));
        }
    };
    let layers = manifest.layers();
    if layers.len() > MAX_SIGNATURES {
        return Err(Error::TooMany {
            at: reference,
            limit: MAX_SIGNATURES,
        });
    }
    let mut found = Vec::with_capacity(layers.len());
    for (layer, descriptor) in layers.iter().enumerate() {
        let digest = Digest::parse(descriptor.digest().as_ref())
            .map_err(|e| invalid(format!("layer {layer}: {e}")))?;
        if descriptor.size() > MAX_SIGNATURE_SIZE {
            return Err(Error::TooLarge {
                at: format!("{reference} layer {layer}"),
                limit: MAX_SIGNATURE_SIZE,
            });
        }
        let payload = repository
            .read_blob(&digest, MAX_SIGNATURE_SIZE)
            .map_err(|source| Error::Source {
                at: format!("{reference} layer {layer}"),
                source: Box::new(source),
            })?;
        found.push(Found {
            origin: Origin::Attachment {
                reference: reference.clone(),
                layer,
            },
            signature: RawSignature::Attachment {
                media_type: descriptor.media_type().to_string(),
                payload,
                annotations: descriptor
                    .annotations()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            },
        });
    }
    Ok(found)
}

/// The signatures `source` keeps itself ([`ImageSource::signatures`]) for its image (`instance` `None`)
/// or one instance of its index.
///
/// # Errors
/// When the source cannot read them.
pub fn stored(source: &dyn ImageSource, instance: Option<&Digest>) -> Result<Vec<Found>> {
    let blobs = source.signatures(instance).map_err(|e| Error::Source {
        at: source.name().to_owned(),
        source: Box::new(e),
    })?;
    Ok(blobs
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| Found {
            origin: Origin::Stored {
                source: source.name().to_owned(),
                index: i + 1,
            },
            signature: RawSignature::Blob(bytes),
        })
        .collect())
}
