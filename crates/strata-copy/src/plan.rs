//! What a copy writes: the manifests chosen from the source, and the blobs they name.

use std::collections::HashMap;

use oci_spec::image::ImageManifest;
use strata_image::{ImageSource, ManifestRole, RawManifest, check_size, read_blob};
use strata_oci::media::{self, Compression};
use strata_oci::{Digest, ImageConfig, MAX_MANIFEST_SIZE, Manifest};

use crate::{Copied, CopyOptions, Error, MultiArch, Result, dedup};

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
    /// Stored decompressed, under this digest (its diff ID), for a destination wanting uncompressed layers.
    pub stored_as: Option<Digest>,
}

/// One manifest to write.
struct Entry {
    manifest: RawManifest,
    role: ManifestRole,
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
        uncompressed: bool,
    ) -> Result<Plan> {
        let top = source.top_manifest()?;
        let parsed = parse(source, &top)?;
        let top = typed(top, &parsed);
        let mut plan = Plan {
            top: top.clone(),
            chosen: None,
            entries: Vec::new(),
            blobs: Vec::new(),
        };
        match (&parsed, options.multi_arch) {
            (Manifest::Image { manifest, .. }, _) => {
                plan.add_image(source, top, manifest, ManifestRole::Top, uncompressed)?;
            }
            (Manifest::Index { .. }, MultiArch::System) => {
                let (chosen, manifest) = choose(source, &top, &parsed, options)?;
                plan.chosen = Some(chosen.clone());
                plan.add_image(source, chosen, &manifest, ManifestRole::Top, uncompressed)?;
            }
            (Manifest::Index { .. }, MultiArch::All) => {
                plan.add_instances(source, &parsed, uncompressed, 1)?;
                plan.entries.push(Entry {
                    manifest: top,
                    role: ManifestRole::Top,
                });
            }
            (Manifest::Index { .. }, MultiArch::IndexOnly) => plan.entries.push(Entry {
                manifest: top,
                role: ManifestRole::Top,
            }),
        }
        plan.blobs = dedup(std::mem::take(&mut plan.blobs));
        Ok(plan)
    }

    /// Whether an index is written.
    pub(crate) fn writes_index(&self) -> bool {
        self.entries.iter().any(|e| {
            e.manifest
                .media_type
                .as_deref()
                .is_some_and(media::is_index)
        })
    }

    /// The media types of the manifests to write.
    pub(crate) fn manifest_types(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter_map(|e| e.manifest.media_type.as_deref())
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
        uncompressed: bool,
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
                    self.add_image(
                        source,
                        manifest,
                        image,
                        ManifestRole::Instance,
                        uncompressed,
                    )?;
                }
                Manifest::Index { .. } => {
                    self.add_instances(source, &parsed, uncompressed, depth + 1)?;
                    self.entries.push(Entry {
                        manifest,
                        role: ManifestRole::Instance,
                    });
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
        uncompressed: bool,
    ) -> Result<()> {
        let config = manifest.config();
        let config_digest = Digest::try_from(config.digest()).map_err(|e| oci_error(source, e))?;
        let layers = manifest.layers();
        let compressions: Vec<Compression> = layers
            .iter()
            .map(|l| {
                Compression::from_layer_media_type(l.media_type().as_ref())
                    .unwrap_or(Compression::None)
            })
            .collect();
        let diff_ids: Vec<Digest> =
            if uncompressed && compressions.iter().any(|c| *c != Compression::None) {
                let bytes = read_blob(source, &config_digest, MAX_MANIFEST_SIZE)?;
                let config = ImageConfig::parse(&bytes, &format!("config {config_digest}"))
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
            } else {
                Vec::new()
            };
        for (i, (layer, compression)) in layers.iter().zip(compressions).enumerate() {
            let digest = Digest::try_from(layer.digest()).map_err(|e| oci_error(source, e))?;
            let stored_as = if uncompressed && compression != Compression::None {
                diff_ids.get(i).cloned()
            } else {
                None
            };
            self.blobs.push(PlannedBlob {
                digest,
                size: layer.size(),
                config: false,
                compression,
                stored_as,
            });
        }
        self.blobs.push(PlannedBlob {
            digest: config_digest,
            size: config.size(),
            config: true,
            compression: Compression::None,
            stored_as: None,
        });
        self.entries.push(Entry {
            manifest: raw,
            role,
        });
        Ok(())
    }

    /// Rewrites the layer descriptors of layers stored decompressed: their digest, size and media type.
    pub(crate) fn rewrite_layers(&mut self, copied: &[Copied]) -> Result<()> {
        let changed: HashMap<String, (String, u64)> = self
            .blobs
            .iter()
            .zip(copied)
            .filter_map(|(b, c)| {
                b.stored_as
                    .as_ref()
                    .map(|s| (b.digest.to_string(), (s.to_string(), c.written)))
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        for entry in &mut self.entries {
            let mut value: serde_json::Value = serde_json::from_slice(&entry.manifest.bytes)
                .map_err(|e| Error::Layer {
                    digest: entry.manifest.digest.to_string(),
                    reason: format!("manifest: {e}"),
                })?;
            let Some(layers) = value.get_mut("layers").and_then(|l| l.as_array_mut()) else {
                continue;
            };
            for layer in layers {
                let Some(digest) = layer.get("digest").and_then(|d| d.as_str()) else {
                    continue;
                };
                let Some((stored, size)) = changed.get(digest) else {
                    continue;
                };
                layer["digest"] = stored.clone().into();
                layer["size"] = (*size).into();
                if let Some(mt) = layer.get("mediaType").and_then(|m| m.as_str()) {
                    layer["mediaType"] = uncompressed_type(mt).into();
                }
            }
            let bytes = serde_json::to_vec(&value).map_err(|e| Error::Layer {
                digest: entry.manifest.digest.to_string(),
                reason: format!("manifest: {e}"),
            })?;
            entry.manifest = RawManifest {
                digest: Digest::sha256(&bytes),
                bytes,
                media_type: entry.manifest.media_type.clone(),
            };
        }
        Ok(())
    }
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
