//! What a copy writes: the manifests chosen from the source, and the blobs they name.

use std::collections::HashMap;
use std::sync::Arc;

use oci_spec::image::ImageManifest;
use strata_image::{
    ImageDestination, ImageSource, LayerCompression, ManifestRole, RawManifest, check_size,
    read_blob,
};
use strata_oci::media::{self, Compression};
use strata_oci::{Digest, ImageConfig, MAX_MANIFEST_SIZE, Manifest};

use crate::convert::{self, Descriptor, ManifestFormat};
use crate::{Copied, CopyOptions, Error, MultiArch, Result, dedup};

/// A layer as stored: its digest, size, compression and the annotations its descriptor takes.
type Stored = (
    String,
    u64,
    Compression,
    std::collections::BTreeMap<String, String>,
);

/// What a layer becomes on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Copied as it is.
    Keep,
    /// Decompressed (a destination keeping layers uncompressed), stored under its diff ID.
    Decompress,
    /// Decompressed and compressed again in `to`, at `level` (the encoder's default without one).
    Compress {
        /// The compression written.
        to: Compression,
        /// Its level.
        level: Option<i32>,
        /// As zstd:chunked.
        toc: bool,
    },
}

/// How many indexes deep a copy follows (as `strata_image::resolve`).
const MAX_DEPTH: usize = strata_image::MAX_INDEX_DEPTH;

/// One blob to copy.
#[derive(Debug, Clone)]
pub(crate) struct PlannedBlob {
    /// Its digest at the source.
    pub digest: Digest,
    /// Its size at the source.
    pub size: u64,
    /// It is a config.
    pub config: bool,
    /// How it is compressed (as its media type says).
    pub compression: Compression,
    /// Its diff ID, when it is changed on the way (checked while it is decompressed).
    pub diff_id: Option<Digest>,
    /// What it becomes.
    pub change: Change,
    /// Bytes written instead of the source's blob (a config converted to OCI), `digest` and `size` theirs.
    pub content: Option<Arc<Vec<u8>>>,
    /// A config whose diff IDs change with its layers (eStargz adds entries to their tars): these are its
    /// image's layers, in order; it is written after them, rewritten ([`Plan::rewrite_configs`]).
    pub deferred: Option<Vec<Digest>>,
}

/// One manifest to write.
struct Entry {
    manifest: RawManifest,
    role: ManifestRole,
    /// The format an image manifest is converted to.
    convert_to: Option<ManifestFormat>,
    /// The converted config's digest and size, when the config changes with the conversion.
    config: Option<(Digest, u64)>,
}

impl Entry {
    /// Whether it is an index.
    fn is_index(&self) -> bool {
        self.manifest
            .media_type
            .as_deref()
            .is_some_and(media::is_index)
    }

    /// The media type written.
    fn target_type(&self) -> Option<&str> {
        match self.convert_to {
            Some(format) if self.is_index() => Some(format.index_type()),
            Some(format) => Some(format.manifest_type()),
            None => self.manifest.media_type.as_deref(),
        }
    }
}

/// What the destination and the options ask of the layers and manifests.
pub(crate) struct Target<'a> {
    /// How the destination stores layers.
    pub layers: LayerCompression,
    /// Layers are recompressed to this (gzip or zstd; zstd:chunked) at this level.
    pub recompress: Option<(Compression, Option<i32>, bool)>,
    /// The manifest format asked for.
    pub format: Option<ManifestFormat>,
    /// The destination, asked which manifest types it takes.
    pub destination: &'a dyn ImageDestination,
}

impl<'a> Target<'a> {
    pub(crate) fn new(destination: &'a dyn ImageDestination, options: &CopyOptions) -> Self {
        Target {
            layers: destination.layer_compression(),
            recompress: options.compression.map(|c| (c.format, c.level, c.toc)),
            format: options.format,
            destination,
        }
    }

    /// Layers are stored uncompressed (a docker archive).
    pub(crate) fn uncompressed(&self) -> bool {
        self.layers == LayerCompression::Uncompressed
    }

    /// What becomes of a layer of `media_type` stored in `compression`.
    fn change(&self, media_type: &str, compression: Compression) -> Change {
        if self.uncompressed() {
            return if compression == Compression::None {
                Change::Keep
            } else {
                Change::Decompress
            };
        }
        let typed = convert::layer_compression(media_type);
        match self.recompress {
            // Foreign layers are not ours to rewrite; a layer already in the compression asked for is kept.
            Some((to, level, toc))
                if (to != compression || toc) && !convert::is_foreign(media_type) =>
            {
                Change::Compress { to, level, toc }
            }
            // A plain tar typed compressed (a docker archive's layers, as containers/image types them) is
            // compressed as its type says, as skopeo compresses it: never written under a type it is not.
            None if self.layers == LayerCompression::Compressed
                && compression == Compression::None
                && typed != Compression::None =>
            {
                Change::Compress {
                    to: typed,
                    level: None,
                    toc: false,
                }
            }
            _ => Change::Keep,
        }
    }

    /// The format an image manifest of `format` is written in, with layers in these compressions, as
    /// containers/image chooses: the one asked for, else the source's when the destination takes it and it
    /// can describe the layers, else the other.
    fn manifest_format(
        &self,
        format: ManifestFormat,
        compressions: &[Compression],
        digest: &Digest,
    ) -> std::result::Result<ManifestFormat, String> {
        let zstd = compressions.contains(&Compression::Zstd);
        // A table of contents is found through layer annotations, which a v2s2 manifest has not.
        let annotated = !self.uncompressed() && self.recompress.is_some_and(|(_, _, toc)| toc);
        let fits = |f: ManifestFormat| {
            (self.uncompressed() || self.destination.accepts_manifest_type(f.manifest_type()))
                && !((zstd || annotated) && f == ManifestFormat::DockerV2S2)
        };
        if let Some(asked) = self.format {
            if zstd && asked == ManifestFormat::DockerV2S2 {
                return Err(format!(
                    "manifest {digest}: zstd compression is not supported for docker images (--format v2s2)"
                ));
            }
            if annotated && asked == ManifestFormat::DockerV2S2 {
                return Err(format!(
                    "manifest {digest}: a v2s2 manifest has no layer annotations to find eStargz and \
                     zstd:chunked tables by (--format v2s2)"
                ));
            }
            if !fits(asked) {
                return Err(format!(
                    "it cannot hold a {} manifest",
                    asked.manifest_type()
                ));
            }
            return Ok(asked);
        }
        if fits(format) {
            Ok(format)
        } else if fits(format.other()) {
            Ok(format.other())
        } else {
            Err(format!(
                "it cannot hold manifest {digest} ({}), converted or not",
                format.manifest_type()
            ))
        }
    }
}

/// The copy's plan.
pub(crate) struct Plan {
    /// The source's top manifest.
    pub top: RawManifest,
    /// The instance chosen for the platform, when the top is an index copied as one image.
    pub chosen: Option<RawManifest>,
    /// The manifests to write, in order (the last is the top).
    entries: Vec<Entry>,
    /// The blobs, each once.
    pub blobs: Vec<PlannedBlob>,
    /// Configs rewritten for new diff IDs: old digest to new digest and size.
    config_changes: HashMap<String, (Digest, u64)>,
}

fn parse(source: &dyn ImageSource, manifest: &RawManifest) -> Result<Manifest> {
    Manifest::parse(
        &manifest.bytes,
        manifest.media_type.as_deref(),
        &format!("manifest {}", manifest.digest),
    )
    .map_err(|e| Error::Source(strata_image::Error::oci(source.name(), e)))
}

fn oci_error(source: &dyn ImageSource, e: strata_oci::Error) -> Error {
    Error::Source(strata_image::Error::oci(source.name(), e))
}

/// `manifest` with its effective media type recorded.
fn typed(mut manifest: RawManifest, parsed: &Manifest) -> RawManifest {
    manifest.media_type = Some(parsed.media_type().to_owned());
    manifest
}

impl Plan {
    pub(crate) fn make(
        source: &dyn ImageSource,
        options: &CopyOptions,
        target: &Target<'_>,
    ) -> Result<Plan> {
        let top = source.top_manifest()?;
        let parsed = parse(source, &top)?;
        let top = typed(top, &parsed);
        let mut plan = Plan {
            top: top.clone(),
            chosen: None,
            entries: Vec::new(),
            blobs: Vec::new(),
            config_changes: HashMap::new(),
        };
        match (&parsed, options.multi_arch) {
            (Manifest::Image { manifest, .. }, _) => {
                plan.add_image(source, top, manifest, ManifestRole::Top, target)?;
            }
            (Manifest::Index { .. }, MultiArch::System) => {
                let (chosen, manifest) = choose(source, &top, &parsed, options)?;
                plan.chosen = Some(chosen.clone());
                plan.add_image(source, chosen, &manifest, ManifestRole::Top, target)?;
            }
            (Manifest::Index { .. }, MultiArch::All) => {
                plan.add_instances(source, &parsed, target, 1)?;
                plan.add_index(top, ManifestRole::Top, target)?;
            }
            (Manifest::Index { .. }, MultiArch::IndexOnly) => {
                if target.format.is_some() {
                    return Err(Error::Unsupported {
                        destination: target.destination.name().to_owned(),
                        what: "--format with --multi-arch index-only: the instances at the \
                               destination would not be converted"
                            .into(),
                    });
                }
                plan.add_index(top, ManifestRole::Top, target)?;
            }
        }
        plan.blobs = dedup(std::mem::take(&mut plan.blobs));
        Ok(plan)
    }

    /// Whether an index is written.
    pub(crate) fn writes_index(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.target_type().is_some_and(media::is_index))
    }

    /// The media types of the manifests to write.
    pub(crate) fn manifest_types(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(Entry::target_type)
    }

    /// Whether the manifests written differ from the source's (a conversion, layers recompressed), which
    /// the source's signatures then do not sign. A docker archive's uncompressed layers do not count: it
    /// keeps no signatures.
    pub(crate) fn rewrites_manifests(&self, target: &Target<'_>) -> bool {
        self.entries.iter().any(|e| e.convert_to.is_some())
            || (!target.uncompressed()
                && self
                    .blobs
                    .iter()
                    .any(|b| matches!(b.change, Change::Compress { .. })))
    }

    /// An index: written as it is unless its instances change (then their descriptors are rewritten) or
    /// the destination or `--format` needs the other index type (then converted as containers/image does).
    fn add_index(
        &mut self,
        manifest: RawManifest,
        role: ManifestRole,
        target: &Target<'_>,
    ) -> Result<()> {
        let media_type = manifest.media_type.clone().unwrap_or_default();
        let unsupported = |what: String| Error::Unsupported {
            destination: target.destination.name().to_owned(),
            what,
        };
        let convert_to = match ManifestFormat::of_index_type(&media_type) {
            Some(format) => {
                let accepts = |f: ManifestFormat| {
                    target.uncompressed()
                        || target.destination.accepts_manifest_type(f.index_type())
                };
                let to = match target.format {
                    Some(asked) => asked,
                    None if accepts(format) => format,
                    None => format.other(),
                };
                if !accepts(to) {
                    return Err(unsupported(format!(
                        "it cannot hold a {} index",
                        to.index_type()
                    )));
                }
                (to != format).then_some(to)
            }
            None => None,
        };
        self.entries.push(Entry {
            manifest,
            role,
            convert_to,
            config: None,
        });
        Ok(())
    }

    /// The manifests to write, in order: instances, then the top.
    pub(crate) fn manifests(&self) -> Vec<(RawManifest, ManifestRole)> {
        self.entries
            .iter()
            .map(|e| (e.manifest.clone(), e.role))
            .collect()
    }

    /// Every instance of `index` (recursively, nested indexes after their own instances).
    fn add_instances(
        &mut self,
        source: &dyn ImageSource,
        index: &Manifest,
        target: &Target<'_>,
        depth: usize,
    ) -> Result<()> {
        let Manifest::Index { index, .. } = index else {
            return Ok(());
        };
        if depth > MAX_DEPTH {
            return Err(Error::Source(strata_image::Error::invalid(
                source.name(),
                format!("image indexes nested more than {MAX_DEPTH} deep"),
            )));
        }
        for d in index.manifests() {
            let digest = Digest::try_from(d.digest()).map_err(|e| oci_error(source, e))?;
            let media_type = d.media_type().to_string();
            let manifest = source.manifest(&digest, Some(&media_type))?;
            check_size(source.name(), &manifest, d.size())?;
            let parsed = parse(source, &manifest)?;
            let manifest = typed(manifest, &parsed);
            match &parsed {
                Manifest::Image {
                    manifest: image, ..
                } => {
                    self.add_image(source, manifest, image, ManifestRole::Instance, target)?;
                }
                Manifest::Index { .. } => {
                    self.add_instances(source, &parsed, target, depth + 1)?;
                    self.add_index(manifest, ManifestRole::Instance, target)?;
                }
            }
        }
        Ok(())
    }

    /// An image manifest and its blobs: layers first, then the config (as containers/image writes them).
    fn add_image(
        &mut self,
        source: &dyn ImageSource,
        raw: RawManifest,
        manifest: &ImageManifest,
        role: ManifestRole,
        target: &Target<'_>,
    ) -> Result<()> {
        let config = manifest.config();
        let config_digest = Digest::try_from(config.digest()).map_err(|e| oci_error(source, e))?;
        let layers = manifest.layers();
        let types: Vec<String> = layers.iter().map(|l| l.media_type().to_string()).collect();
        let digests: Vec<Digest> = layers
            .iter()
            .map(|l| Digest::try_from(l.digest()).map_err(|e| oci_error(source, e)))
            .collect::<Result<_>>()?;
        // How each layer is stored: as its type says, unless the source knows better.
        let mut stored: Vec<Compression> = Vec::with_capacity(layers.len());
        for (digest, t) in digests.iter().zip(&types) {
            stored.push(
                source
                    .stored_compression(digest)?
                    .unwrap_or_else(|| convert::layer_compression(t)),
            );
        }
        let changes: Vec<Change> = types
            .iter()
            .zip(&stored)
            .map(|(t, c)| target.change(t, *c))
            .collect();
        let written: Vec<Compression> = stored
            .iter()
            .zip(&changes)
            .map(|(s, c)| match c {
                Change::Keep => *s,
                Change::Decompress => Compression::None,
                Change::Compress { to, .. } => *to,
            })
            .collect();
        let media_type = raw.media_type.clone().unwrap_or_default();
        let unsupported = |what: String| Error::Unsupported {
            destination: target.destination.name().to_owned(),
            what,
        };
        let convert_to = match ManifestFormat::of_manifest_type(&media_type) {
            Some(format) => {
                let to = target
                    .manifest_format(format, &written, &raw.digest)
                    .map_err(unsupported)?;
                (to != format && !target.uncompressed()).then_some(to)
            }
            None => None,
        };
        let config_bytes = if changes.iter().any(|c| *c != Change::Keep)
            || convert_to == Some(ManifestFormat::Oci)
        {
            Some(read_blob(source, &config_digest, MAX_MANIFEST_SIZE)?)
        } else {
            None
        };
        let diff_ids: Vec<Digest> =
            match (&config_bytes, changes.iter().any(|c| *c != Change::Keep)) {
                (Some(bytes), true) => {
                    let config = ImageConfig::parse(bytes, &format!("config {config_digest}"))
                        .map_err(|e| oci_error(source, e))?;
                    let ids = config
                        .oci
                        .rootfs()
                        .diff_ids()
                        .iter()
                        .map(|d| Digest::parse(d).map_err(|e| oci_error(source, e)))
                        .collect::<Result<Vec<_>>>()?;
                    if ids.len() != layers.len() {
                        return Err(Error::Source(strata_image::Error::invalid(
                            source.name(),
                            format!(
                                "manifest {} has {} layers but its config {} diff IDs",
                                raw.digest,
                                layers.len(),
                                ids.len()
                            ),
                        )));
                    }
                    ids
                }
                _ => Vec::new(),
            };
        for (i, ((layer, digest), change)) in layers.iter().zip(&digests).zip(&changes).enumerate()
        {
            let digest = digest.clone();
            let compression = stored.get(i).copied().unwrap_or(Compression::None);
            self.blobs.push(PlannedBlob {
                digest,
                size: layer.size(),
                config: false,
                compression,
                diff_id: if *change == Change::Keep {
                    None
                } else {
                    diff_ids.get(i).cloned()
                },
                change: *change,
                content: None,
                deferred: None,
            });
        }
        // eStargz layers get new diff IDs: the config is written after them, rewritten.
        let deferred = if changes.iter().any(|c| {
            matches!(
                c,
                Change::Compress {
                    to: Compression::Gzip,
                    toc: true,
                    ..
                }
            )
        }) {
            Some(digests.clone())
        } else {
            None
        };
        let mut converted_config = None;
        match (convert_to, &config_bytes) {
            (Some(ManifestFormat::Oci), Some(bytes))
                if config.media_type().to_string() != media::OCI_CONFIG =>
            {
                let oci =
                    convert::oci_config_from_docker(bytes).map_err(|reason| Error::Convert {
                        digest: config_digest.to_string(),
                        reason: format!("config: {reason}"),
                    })?;
                let digest = Digest::sha256(&oci);
                let size = oci.len() as u64;
                converted_config = Some((digest.clone(), size));
                self.blobs.push(PlannedBlob {
                    digest,
                    size,
                    config: true,
                    compression: Compression::None,
                    diff_id: None,
                    change: Change::Keep,
                    content: Some(Arc::new(oci)),
                    deferred: deferred.clone(),
                });
            }
            (Some(ManifestFormat::DockerV2S2), _)
                if config.media_type().to_string() != media::OCI_CONFIG =>
            {
                return Err(Error::Convert {
                    digest: raw.digest.to_string(),
                    reason: format!(
                        "its config is {}, not an image's: an artifact has no Docker form",
                        config.media_type()
                    ),
                });
            }
            _ => {}
        }
        if converted_config.is_none() {
            self.blobs.push(PlannedBlob {
                digest: config_digest,
                size: config.size(),
                config: true,
                compression: Compression::None,
                diff_id: None,
                change: Change::Keep,
                content: if deferred.is_some() {
                    config_bytes.map(Arc::new)
                } else {
                    None
                },
                deferred,
            });
        }
        self.entries.push(Entry {
            manifest: raw,
            role,
            convert_to,
            config: converted_config,
        });
        Ok(())
    }

    /// The deferred configs given their layers' new diff IDs (from the layers copied so far, `copied`
    /// aligned with `blobs`): each becomes its rewritten bytes, digest and size, and is no longer deferred.
    pub(crate) fn rewrite_configs(&mut self, copied: &[Option<Copied>]) -> Result<()> {
        let new_ids: HashMap<Digest, Digest> = self
            .blobs
            .iter()
            .zip(copied)
            .filter_map(|(b, c)| {
                let diff_id = c.as_ref()?.stored.as_ref()?.diff_id.clone()?;
                Some((b.digest.clone(), diff_id))
            })
            .collect();
        for blob in &mut self.blobs {
            let (Some(layers), Some(content)) = (blob.deferred.take(), blob.content.take()) else {
                continue;
            };
            let error = |reason: String| Error::Convert {
                digest: blob.digest.to_string(),
                reason,
            };
            let mut value: serde_json::Value =
                serde_json::from_slice(&content).map_err(|e| error(format!("config: {e}")))?;
            let Some(ids) = value
                .get_mut("rootfs")
                .and_then(|r| r.get_mut("diff_ids"))
                .and_then(|d| d.as_array_mut())
            else {
                return Err(error("config: no rootfs.diff_ids".into()));
            };
            for (id, layer) in ids.iter_mut().zip(&layers) {
                if let Some(new) = new_ids.get(layer) {
                    *id = new.to_string().into();
                }
            }
            let bytes = serde_json::to_vec(&value).map_err(|e| error(format!("config: {e}")))?;
            let digest = Digest::sha256(&bytes);
            self.config_changes.insert(
                blob.digest.to_string(),
                (digest.clone(), bytes.len() as u64),
            );
            blob.digest = digest;
            blob.size = bytes.len() as u64;
            blob.content = Some(Arc::new(bytes));
        }
        Ok(())
    }

    /// Writes the manifests' final form once the blobs are copied: converted manifests in the format asked
    /// for, layer descriptors of changed layers rewritten (digest, size, media type), and an index's
    /// descriptors of instances that changed.
    pub(crate) fn finish(&mut self, copied: &[Copied]) -> Result<()> {
        let changed: HashMap<String, Stored> = self
            .blobs
            .iter()
            .zip(copied)
            .filter_map(|(b, c)| {
                let compression = match b.change {
                    Change::Keep => return None,
                    Change::Decompress => Compression::None,
                    Change::Compress { to, .. } => to,
                };
                c.stored.as_ref().map(|s| {
                    (
                        b.digest.to_string(),
                        (
                            s.digest.to_string(),
                            s.size,
                            compression,
                            s.annotations.clone(),
                        ),
                    )
                })
            })
            .collect();
        // Manifests whose bytes changed: old digest to (new digest, size, media type).
        let mut replaced: HashMap<String, (String, u64, String)> = HashMap::new();
        for entry in &mut self.entries {
            let old = entry.manifest.digest.to_string();
            let bytes = match entry.convert_to {
                Some(format) if entry.is_index() => {
                    Some(converted_index(entry, format, &replaced)?)
                }
                Some(format) => Some(converted(entry, format, &changed, &self.config_changes)?),
                None => rewritten(entry, &changed, &replaced, &self.config_changes)?,
            };
            let Some(bytes) = bytes else { continue };
            let media_type = entry.target_type().map(str::to_owned);
            entry.manifest = RawManifest {
                digest: Digest::sha256(&bytes),
                bytes,
                media_type: media_type.clone(),
            };
            replaced.insert(
                old,
                (
                    entry.manifest.digest.to_string(),
                    entry.manifest.bytes.len() as u64,
                    media_type.unwrap_or_default(),
                ),
            );
        }
        Ok(())
    }
}

fn manifest_json(entry: &Entry) -> Result<serde_json::Value> {
    serde_json::from_slice(&entry.manifest.bytes).map_err(|e| Error::Convert {
        digest: entry.manifest.digest.to_string(),
        reason: format!("manifest: {e}"),
    })
}

/// A manifest converted to `format`, with its layers as copied.
fn converted(
    entry: &Entry,
    format: ManifestFormat,
    changed: &HashMap<String, Stored>,
    configs: &HashMap<String, (Digest, u64)>,
) -> Result<Vec<u8>> {
    let error = |reason: String| Error::Convert {
        digest: entry.manifest.digest.to_string(),
        reason,
    };
    let value = manifest_json(entry)?;
    let mut config = Descriptor::from_json(&value["config"]).map_err(error)?;
    if let Some((digest, size)) = &entry.config {
        config.digest = digest.to_string();
        config.size = *size;
    }
    if let Some((digest, size)) = configs.get(&config.digest) {
        config.digest = digest.to_string();
        config.size = *size;
    }
    let mut layers = Vec::new();
    for layer in value["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let mut d = Descriptor::from_json(layer).map_err(error)?;
        let foreign = convert::is_foreign(&d.media_type);
        let known = convert::is_foreign(&d.media_type)
            || Compression::from_layer_media_type(&d.media_type).is_some();
        if !known {
            return Err(error(format!(
                "layer {} has media type {:?}, which has no {format:?} form",
                d.digest, d.media_type
            )));
        }
        let mut compression = convert::layer_compression(&d.media_type);
        if let Some((digest, size, c, annotations)) = changed.get(&d.digest) {
            d.digest.clone_from(digest);
            d.size = *size;
            compression = *c;
            if format == ManifestFormat::Oci {
                d.annotations.clone_from(annotations);
            }
        }
        d.media_type = convert::layer_type(format, compression, foreign)
            .ok_or_else(|| {
                error(format!(
                    "layer {}: zstd compression is not supported for docker images",
                    d.digest
                ))
            })?
            .to_owned();
        layers.push(d);
    }
    Ok(convert::write_manifest(format, &config, &layers))
}

/// An index converted to `format`, its instances' descriptors as written.
fn converted_index(
    entry: &Entry,
    format: ManifestFormat,
    replaced: &HashMap<String, (String, u64, String)>,
) -> Result<Vec<u8>> {
    let value = manifest_json(entry)?;
    let mut instances: Vec<serde_json::Value> =
        value["manifests"].as_array().cloned().unwrap_or_default();
    for instance in &mut instances {
        let Some(digest) = instance.get("digest").and_then(|d| d.as_str()) else {
            continue;
        };
        if let Some((new, size, media_type)) = replaced.get(digest) {
            instance["digest"] = new.clone().into();
            instance["size"] = (*size).into();
            instance["mediaType"] = media_type.clone().into();
        }
    }
    convert::write_index(format, &instances).map_err(|reason| Error::Convert {
        digest: entry.manifest.digest.to_string(),
        reason,
    })
}

/// A manifest kept in its format with the descriptors of changed layers (or instances) rewritten; `None`
/// when nothing in it changed.
fn rewritten(
    entry: &Entry,
    changed: &HashMap<String, Stored>,
    replaced: &HashMap<String, (String, u64, String)>,
    configs: &HashMap<String, (Digest, u64)>,
) -> Result<Option<Vec<u8>>> {
    let format = entry
        .manifest
        .media_type
        .as_deref()
        .and_then(ManifestFormat::of_manifest_type);
    let mut value = manifest_json(entry)?;
    let mut any = false;
    let config_digest = value
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(|d| d.as_str())
        .map(str::to_owned);
    if let Some((digest, size)) = config_digest.and_then(|d| configs.get(&d)) {
        any = true;
        value["config"]["digest"] = digest.to_string().into();
        value["config"]["size"] = (*size).into();
    }
    if let Some(layers) = value.get_mut("layers").and_then(|l| l.as_array_mut()) {
        for layer in layers {
            let Some(digest) = layer.get("digest").and_then(|d| d.as_str()) else {
                continue;
            };
            let Some((stored, size, compression, annotations)) = changed.get(digest) else {
                continue;
            };
            any = true;
            layer["digest"] = stored.clone().into();
            layer["size"] = (*size).into();
            if !annotations.is_empty() {
                if !layer.get("annotations").is_some_and(|a| a.is_object()) {
                    layer["annotations"] = serde_json::json!({});
                }
                for (k, v) in annotations {
                    layer["annotations"][k.as_str()] = v.clone().into();
                }
            }
            if let Some(mt) = layer.get("mediaType").and_then(|m| m.as_str()) {
                let foreign = convert::is_foreign(mt);
                let new = match format {
                    Some(format) => convert::layer_type(format, *compression, foreign),
                    None => None,
                }
                .map_or_else(|| uncompressed_type(mt).to_owned(), str::to_owned);
                layer["mediaType"] = new.into();
            }
        }
    }
    if let Some(manifests) = value.get_mut("manifests").and_then(|l| l.as_array_mut()) {
        for instance in manifests {
            let Some(digest) = instance.get("digest").and_then(|d| d.as_str()) else {
                continue;
            };
            let Some((new, size, media_type)) = replaced.get(digest) else {
                continue;
            };
            any = true;
            instance["digest"] = new.clone().into();
            instance["size"] = (*size).into();
            instance["mediaType"] = media_type.clone().into();
        }
    }
    if !any {
        return Ok(None);
    }
    serde_json::to_vec(&value)
        .map(Some)
        .map_err(|e| Error::Convert {
            digest: entry.manifest.digest.to_string(),
            reason: format!("manifest: {e}"),
        })
}

/// The media type of a layer type's uncompressed form.
fn uncompressed_type(media_type: &str) -> &str {
    match media_type {
        media::OCI_LAYER_GZIP | media::OCI_LAYER_ZSTD => media::OCI_LAYER,
        media::OCI_LAYER_NONDIST_GZIP | media::OCI_LAYER_NONDIST_ZSTD => media::OCI_LAYER_NONDIST,
        media::DOCKER_LAYER_GZIP | media::DOCKER_LAYER_ZSTD => media::DOCKER_LAYER,
        other => other,
    }
}

/// The image of index `top` for the platform of `options`, through nested indexes.
fn choose(
    source: &dyn ImageSource,
    top: &RawManifest,
    parsed: &Manifest,
    options: &CopyOptions,
) -> Result<(RawManifest, ImageManifest)> {
    let mut current = top.clone();
    let mut parsed_current = parsed.clone();
    for _ in 0..=MAX_DEPTH {
        match parsed_current {
            Manifest::Image { manifest, .. } => return Ok((current, *manifest)),
            Manifest::Index { index, .. } => {
                let chosen = options
                    .platform
                    .choose(index.manifests())
                    .map_err(|e| oci_error(source, e))?;
                let digest = Digest::try_from(chosen.digest()).map_err(|e| oci_error(source, e))?;
                let media_type = chosen.media_type().to_string();
                let next = source.manifest(&digest, Some(&media_type))?;
                check_size(source.name(), &next, chosen.size())?;
                parsed_current = parse(source, &next)?;
                current = typed(next, &parsed_current);
            }
        }
    }
    Err(Error::Source(strata_image::Error::invalid(
        source.name(),
        format!("image indexes nested more than {MAX_DEPTH} deep"),
    )))
}
