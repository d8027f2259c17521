//! Published indexes: strata layer indexes pushed to the image's registry repository as an OCI artifact
//! whose `subject` is the image manifest, so that any machine can read the image's layers by range.
//!
//! The artifact (docs/FORMAT.md, "Published layer indexes"): an OCI image manifest with `artifactType`
//! [`ARTIFACT_TYPE`], the OCI empty config (`{}`), one layer per indexed image layer — the index file,
//! media type [`INDEX_MEDIA_TYPE`], annotated with the image layer's blob digest
//! ([`LAYER_DIGEST_ANNOTATION`]) — `subject` the image manifest, and its creation time
//! ([`CREATED_ANNOTATION`]).
//!
//! [`publish`] pushes it (the blobs first: Distribution refuses a manifest whose blobs it lacks) and makes
//! it findable from the image: through the registry's referrers API where the registry processes `subject`,
//! else through the `sha256-<hex>` referrers tag index. [`discover`] finds it again (the referrers API
//! first, then the tag index) and [`fetch_index`] reads one layer's index, verified against the blob
//! digest the artifact names and checked to describe the layer it is asked for. [`PublishedFinder`] is the
//! [`LayerFinder`] that uses them.
//!
//! The trust model is in docs/ARCHITECTURE.md ("Published indexes: who is trusted with what").

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use strata_image::{ImageSource, RawManifest, ResolvedImage};
use strata_index::LayerIndex;
use strata_layer::{FoundLayer, IndexOrigin, LayerFinder, LayerSpec};
use strata_oci::{Digest, Manifest, media};
use strata_source::{PushedReferrer, Referrer, Repository, SourceOptions};

use crate::error::{Error, Result};
use crate::time::{parse_rfc3339, rfc3339};

/// The artifact type of a published strata index (its manifest's `artifactType`).
pub const ARTIFACT_TYPE: &str = "application/vnd.strata.layer-index.v1";
/// The media type of one layer's index in the artifact: a strata layer index file (docs/FORMAT.md), byte
/// for byte what `strata index -o DIR` writes as `<blob hex>.idx`.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.strata.layer-index.v1.idx";
/// The annotation on each index's descriptor naming the image layer's blob digest it describes.
pub const LAYER_DIGEST_ANNOTATION: &str = "dev.strata.layer.digest";
/// The artifact manifest's creation time (RFC 3339, UTC), which [`discover`] goes by.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
/// The OCI empty descriptor's media type, the artifact's config.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The largest published index read (a layer of a million files with checkpoints fits well within).
pub const MAX_PUBLISHED_INDEX: u64 = 256 << 20;

/// The OCI empty blob.
const EMPTY_JSON: &[u8] = b"{}";

/// One layer's index in a published artifact: the index blob's descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedIndex {
    /// The index blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A published index artifact found for an image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The artifact manifest's digest.
    pub artifact: Digest,
    /// The index of each image layer it has one for, by the layer's blob digest.
    pub layers: BTreeMap<Digest, PublishedIndex>,
}

/// Publishes `indexes` — each an image layer's blob digest and its strata layer index file — as an artifact
/// about `image` (the image manifest, as fetched), created now. See [`publish_at`].
///
/// # Errors
/// As [`publish_at`].
pub fn publish(
    repo: &Repository,
    image: &RawManifest,
    indexes: &[(Digest, Vec<u8>)],
) -> Result<PushedReferrer> {
    publish_at(repo, image, indexes, SystemTime::now())
}

/// Publishes `indexes` as an artifact about `image`, its [`CREATED_ANNOTATION`] `created`: every index is
/// checked first (it must parse, have span digests, describe the blob it is given for, and that blob must be
/// one of the image's layers), then the empty config and the index blobs are uploaded (those the repository has are not sent
/// again), then the artifact manifest is pushed by digest and recorded as a referrer of `image` (the
/// referrers API, or the tag schema's index). The indexes are listed in the image's layer order. Publishing
/// the same indexes at the same time again writes nothing new.
///
/// # Errors
/// When `image` is not an image manifest, `indexes` is empty, an index does not parse, has no span digests
/// or describes another blob than the layer it is given for, a layer is given twice or is not the image's, or the registry
/// refuses (no push access, say).
pub fn publish_at(
    repo: &Repository,
    image: &RawManifest,
    indexes: &[(Digest, Vec<u8>)],
    created: SystemTime,
) -> Result<PushedReferrer> {
    let refuse = |reason: String| Error::Publish {
        image: image.digest.to_string(),
        reason,
    };
    let what = image.digest.to_string();
    let parsed = Manifest::parse(&image.bytes, image.media_type.as_deref(), &what)
        .map_err(|e| refuse(e.to_string()))?;
    let Manifest::Image {
        media_type,
        manifest,
    } = parsed
    else {
        return Err(refuse(
            "not an image manifest (publish for each platform's manifest)".into(),
        ));
    };
    if indexes.is_empty() {
        return Err(refuse("no layer index to publish".into()));
    }
    let image_layers: Vec<String> = manifest
        .layers()
        .iter()
        .map(|d| d.digest().to_string())
        .collect();
    let mut ordered: Vec<(usize, &Digest, &[u8])> = Vec::new();
    for (layer, bytes) in indexes {
        let Some(at) = image_layers.iter().position(|d| *d == layer.to_string()) else {
            return Err(refuse(format!("{layer} is not one of its layers")));
        };
        if ordered.iter().any(|(_, l, _)| *l == layer) {
            return Err(refuse(format!("two indexes for layer {layer}")));
        }
        let index = LayerIndex::from_bytes(bytes.clone())?;
        if !index.has_span_digests() {
            return Err(refuse(format!(
                "the index of layer {layer} has no span digests (format 1.2): its reads could not be checked"
            )));
        }
        let described = &index.layer().blob_digest;
        if *described != layer.to_string() {
            return Err(refuse(format!(
                "the index given for layer {layer} describes blob {described}"
            )));
        }
        ordered.push((at, layer, bytes));
    }
    ordered.sort_by_key(|(at, _, _)| *at);

    let empty = Digest::sha256(EMPTY_JSON);
    repo.push_blob(&empty, EMPTY_JSON)?;
    let mut layers = Vec::new();
    for (_, layer, bytes) in &ordered {
        let digest = Digest::sha256(bytes);
        repo.push_blob(&digest, bytes)?;
        layers.push(serde_json::json!({
            "mediaType": INDEX_MEDIA_TYPE,
            "digest": digest.to_string(),
            "size": bytes.len(),
            "annotations": { LAYER_DIGEST_ANNOTATION: layer.to_string() },
        }));
    }
    let artifact = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": empty.to_string(),
            "size": EMPTY_JSON.len(),
        },
        "layers": layers,
        "subject": {
            "mediaType": media_type,
            "digest": image.digest.to_string(),
            "size": image.bytes.len(),
        },
        "annotations": { CREATED_ANNOTATION: rfc3339(created) },
    });
    let bytes = serde_json::to_vec(&artifact).map_err(|e| refuse(e.to_string()))?;
    Ok(repo.push_referrer(None, media::OCI_MANIFEST, &bytes)?)
}

/// Finds the published index artifact of image manifest `image`: its referrers of [`ARTIFACT_TYPE`] (the
/// referrers API, else the `sha256-<hex>` tag index), the newest first — by [`CREATED_ANNOTATION`] as the
/// referrers list gives it (RFC 3339; a referrer without a readable one counts as older than any with one),
/// the one listed last among equals (a tag index lists in the order of publishing). The first whose
/// manifest is a usable strata index artifact about `image` is taken; `None` when there is no candidate.
///
/// Each candidate's manifest is fetched by digest and verified; one whose `subject` is not `image`, whose
/// `artifactType` differs, or that lists no index is passed over (a referrers list is written by anyone
/// with push access, and a tag index is kept by clients).
///
/// # Errors
/// When the registry cannot be asked, or every candidate was unusable (the newest one's reason).
pub fn discover(repo: &Repository, image: &Digest) -> Result<Option<Published>> {
    let referrers = repo.referrers(image, Some(ARTIFACT_TYPE))?;
    let mut candidates: Vec<(usize, &Referrer)> = referrers.referrers.iter().enumerate().collect();
    candidates.sort_by_key(|(at, r)| {
        let created = r
            .annotations
            .get(CREATED_ANNOTATION)
            .and_then(|t| parse_rfc3339(t));
        std::cmp::Reverse((created.is_some(), created.unwrap_or(i128::MIN), *at))
    });
    let mut first_error = None;
    for (_, referrer) in candidates {
        match read_artifact(repo, image, &referrer.digest) {
            Ok(found) => return Ok(Some(found)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Reads and checks artifact manifest `artifact`, a published index about `image`.
fn read_artifact(repo: &Repository, image: &Digest, artifact: &Digest) -> Result<Published> {
    let unusable = |reason: String| Error::Published {
        artifact: artifact.to_string(),
        reason,
    };
    let raw = repo.manifest(&artifact.to_string())?;
    let value: serde_json::Value =
        serde_json::from_slice(&raw.bytes).map_err(|e| unusable(format!("not JSON: {e}")))?;
    fn text<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
        v.get(key).and_then(|t| t.as_str())
    }
    if text(&value, "mediaType").is_some_and(|m| m != media::OCI_MANIFEST) {
        return Err(unusable("not an OCI image manifest".into()));
    }
    if text(&value, "artifactType") != Some(ARTIFACT_TYPE) {
        return Err(unusable(format!("artifactType is not {ARTIFACT_TYPE}")));
    }
    let subject = value.get("subject").and_then(|s| text(s, "digest"));
    if subject != Some(image.to_string().as_str()) {
        return Err(unusable(format!(
            "its subject is {}, not {image}",
            subject.unwrap_or("missing")
        )));
    }
    let mut layers = BTreeMap::new();
    let entries = value
        .get("layers")
        .and_then(|l| l.as_array())
        .ok_or_else(|| unusable("no layers".into()))?;
    for entry in entries {
        if text(entry, "mediaType") != Some(INDEX_MEDIA_TYPE) {
            continue;
        }
        let digest = text(entry, "digest")
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| unusable("an index without a valid digest".into()))?;
        let size = entry
            .get("size")
            .and_then(|s| s.as_u64())
            .ok_or_else(|| unusable(format!("index {digest} has no size")))?;
        let layer = entry
            .get("annotations")
            .and_then(|a| text(a, LAYER_DIGEST_ANNOTATION))
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| {
                unusable(format!(
                    "index {digest} has no valid {LAYER_DIGEST_ANNOTATION} annotation"
                ))
            })?;
        if layers
            .insert(layer.clone(), PublishedIndex { digest, size })
            .is_some()
        {
            return Err(unusable(format!("two indexes for layer {layer}")));
        }
    }
    if layers.is_empty() {
        return Err(unusable(format!("no layer of type {INDEX_MEDIA_TYPE}")));
    }
    Ok(Published {
        artifact: raw.digest,
        layers,
    })
}

/// Reads the published index of image layer `layer` (blob digest, `size` bytes when known): the blob is
/// fetched whole and verified against `index.digest` (at most [`MAX_PUBLISHED_INDEX`] bytes), must parse,
/// and must describe that very blob (its `blob_digest`, and its size when known).
///
/// # Errors
/// When the blob cannot be read or fails verification, does not parse, or describes another blob.
pub fn fetch_index(
    repo: &Repository,
    index: &PublishedIndex,
    layer: &Digest,
    size: Option<u64>,
) -> Result<LayerIndex> {
    let lying = |reason: String| Error::PublishedIndex {
        layer: layer.to_string(),
        index: index.digest.to_string(),
        reason,
    };
    if index.size > MAX_PUBLISHED_INDEX {
        return Err(lying(format!(
            "{} bytes, over the {MAX_PUBLISHED_INDEX}-byte limit",
            index.size
        )));
    }
    let bytes = repo.read_blob(&index.digest, MAX_PUBLISHED_INDEX)?;
    let parsed = LayerIndex::from_bytes(bytes).map_err(|e| lying(e.to_string()))?;
    let info = parsed.layer();
    if info.blob_digest != layer.to_string() {
        return Err(lying(format!("it describes blob {}", info.blob_digest)));
    }
    if let Some(size) = size
        && info.blob_size != size
    {
        return Err(lying(format!(
            "it says the blob has {} bytes, the manifest {size}",
            info.blob_size
        )));
    }
    Ok(parsed)
}

/// What [`PublishedFinder`] found for one image manifest.
struct Discovered {
    repo: Repository,
    published: Published,
}

/// The discovery of one image manifest, made once for all its layers (asked for in parallel).
type Discovery = Arc<OnceLock<Option<Arc<Discovered>>>>;

/// A [`LayerFinder`] for layers of `docker://` images that have a published index with span digests.
///
/// For each image manifest it is asked about, the published artifact is discovered once ([`discover`]); a
/// layer it lists an index for is then fetched ([`fetch_index`]: verified, and refused unless it describes
/// that very blob) and given as [`IndexOrigin::Published`] with no contents of its own, so the layer's blob
/// is read by range through the index's checkpoints, each span checked against the index's span digest.
///
/// Only indexes with span digests (format 1.2) are used: one without them could not have its range reads
/// checked, and its layer is left to the next finder or a full read. The checks themselves are
/// `BlobContents`' (strata-layer), which reads an index's blob through its checkpoints. A discovery that fails (the registry
/// cannot be asked for referrers, or every candidate artifact is unusable) finds nothing: a published index
/// only saves reading, so the layer is read another way. An index listed for the layer that is wrong is an
/// error naming the layer and the index.
///
/// What this trusts — the repository's push access, as to what the image contains — is in
/// docs/ARCHITECTURE.md ("Published indexes: what is checked, what is trusted").
pub struct PublishedFinder {
    options: SourceOptions,
    discovered: Mutex<HashMap<Digest, Discovery>>,
}

impl std::fmt::Debug for PublishedFinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedFinder").finish_non_exhaustive()
    }
}

impl PublishedFinder {
    /// A finder reaching registries with `options` (credentials, TLS), as the image source does.
    pub fn new(options: SourceOptions) -> PublishedFinder {
        PublishedFinder {
            options,
            discovered: Mutex::new(HashMap::new()),
        }
    }

    /// The published artifact of `image` in the repository `source` reads from, discovered once.
    fn discovered(&self, source: &dyn ImageSource, image: &Digest) -> Option<Arc<Discovered>> {
        if !source.name().starts_with("docker://") {
            return None;
        }
        let reference = source.docker_reference()?;
        // A name pinned by digest vouches for the image's bytes; a published index would add the trust of
        // everyone who can push to the repository (docs/ARCHITECTURE.md): such names are read without one.
        if reference.digest().is_some() {
            return None;
        }
        let slot = {
            let mut map = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(image.clone()).or_default())
        };
        slot.get_or_init(|| {
            let repo =
                Repository::open(&format!("docker://{}", reference.name()), &self.options).ok()?;
            let published = discover(&repo, image).ok()??;
            Some(Arc::new(Discovered { repo, published }))
        })
        .clone()
    }
}

impl LayerFinder for PublishedFinder {
    fn find(
        &self,
        source: &Arc<dyn ImageSource>,
        image: &ResolvedImage,
        _at: usize,
        spec: &LayerSpec,
    ) -> strata_layer::Result<Option<FoundLayer>> {
        let Some(found) = self.discovered(source.as_ref(), &image.instance.digest) else {
            return Ok(None);
        };
        let Some(entry) = found.published.layers.get(&spec.digest) else {
            return Ok(None);
        };
        let index = fetch_index(&found.repo, entry, &spec.digest, spec.size)?;
        if !index.has_span_digests() {
            return Ok(None);
        }
        Ok(Some(FoundLayer {
            index,
            contents: None,
            origin: IndexOrigin::Published(found.published.artifact.clone()),
        }))
    }
}
