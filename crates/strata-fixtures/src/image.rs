//! Image configs, manifests and indexes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::layer::{BuiltLayer, Compression, LayerBuilder};
use crate::layout::LayoutWriter;
use crate::{Result, sha256_digest};

/// `created` timestamp used for configs and history unless overridden
/// (the same instant as [`DEFAULT_MTIME`](crate::DEFAULT_MTIME)).
pub const DEFAULT_CREATED: &str = "2023-11-14T22:13:20Z";

/// OCI media types used by this crate.
pub mod media_types {
    /// Image manifest.
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// Image index.
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Image config.
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
}

/// A platform (`architecture`, `os`, optional `variant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// CPU architecture in Go's spelling (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v8` for arm64), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An OCI content descriptor, serialised in the field order
/// `mediaType, digest, size, platform, annotations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest string, normally `sha256:<hex>` (not checked).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform, for manifests listed in an index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations (sorted by key).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor without platform or annotations.
    pub fn new(media_type: &str, digest: &str, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: digest.to_owned(),
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    /// A descriptor for `bytes` (digest and size computed).
    pub fn for_bytes(media_type: &str, bytes: &[u8]) -> Self {
        Self::new(media_type, &sha256_digest(bytes), bytes.len() as u64)
    }

    /// Adds an annotation.
    pub fn with_annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the platform.
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    created: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<&'a str>,
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: RunConfig<'a>,
    rootfs: RootFs<'a>,
    history: Vec<History<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    env: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a [String]>,
    #[serde(rename = "WorkingDir", skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty_layer: bool,
}

#[derive(Serialize)]
struct ManifestJson<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct IndexJson<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: &'a [Descriptor],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// Serialises an image index (`schemaVersion` 2, OCI index media type)
/// listing `manifests`.
pub(crate) fn index_json(
    manifests: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&IndexJson {
        schema_version: 2,
        media_type: media_types::INDEX,
        manifests,
        annotations,
    })?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Layer {
        layer: LayerBuilder,
        compression: Compression,
        created_by: String,
    },
    EmptyHistory {
        created_by: String,
    },
    Built {
        layer: BuiltLayer,
    },
}

/// Builds one single-platform OCI image: layers, config and manifest.
///
/// Defaults: `linux/amd64`, created [`DEFAULT_CREATED`], no layers. Each
/// layer gets one history entry; [`empty_history`](Self::empty_history) adds
/// `empty_layer` entries in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBuilder {
    architecture: String,
    os: String,
    variant: Option<String>,
    created: String,
    author: Option<String>,
    labels: BTreeMap<String, String>,
    env: Vec<String>,
    user: Option<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    workdir: Option<String>,
    steps: Vec<Step>,
    manifest_annotations: BTreeMap<String, String>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl ImageBuilder {
    /// An empty `linux/amd64` image.
    pub fn new() -> Self {
        ImageBuilder {
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            variant: None,
            created: DEFAULT_CREATED.to_owned(),
            author: None,
            labels: BTreeMap::new(),
            env: Vec::new(),
            user: None,
            cmd: None,
            entrypoint: None,
            workdir: None,
            steps: Vec::new(),
            manifest_annotations: BTreeMap::new(),
        }
    }

    /// Sets the architecture (`amd64`, `arm64`, ...).
    pub fn architecture(mut self, architecture: &str) -> Self {
        self.architecture = architecture.to_owned();
        self
    }

    /// Sets the operating system.
    pub fn os(mut self, os: &str) -> Self {
        self.os = os.to_owned();
        self
    }

    /// Sets the CPU variant (`v8`, `v7`, ...).
    pub fn variant(mut self, variant: &str) -> Self {
        self.variant = Some(variant.to_owned());
        self
    }

    /// Sets the `created` timestamp of the config and its history entries.
    pub fn created(mut self, created: &str) -> Self {
        self.created = created.to_owned();
        self
    }

    /// Sets the author.
    pub fn author(mut self, author: &str) -> Self {
        self.author = Some(author.to_owned());
        self
    }

    /// Adds a config label (`config.Labels`).
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Appends an environment entry `KEY=value`.
    pub fn env(mut self, entry: &str) -> Self {
        self.env.push(entry.to_owned());
        self
    }

    /// Sets the user (`config.User`).
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// Sets `config.Cmd`.
    pub fn cmd(mut self, cmd: &[&str]) -> Self {
        self.cmd = Some(strings(cmd));
        self
    }

    /// Sets `config.Entrypoint`.
    pub fn entrypoint(mut self, entrypoint: &[&str]) -> Self {
        self.entrypoint = Some(strings(entrypoint));
        self
    }

    /// Sets `config.WorkingDir`.
    pub fn workdir(mut self, workdir: &str) -> Self {
        self.workdir = Some(workdir.to_owned());
        self
    }

    /// Adds a manifest annotation.
    pub fn manifest_annotation(mut self, key: &str, value: &str) -> Self {
        self.manifest_annotations
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Appends a layer; its history entry says `created_by: "strata-fixtures layer N"`.
    pub fn layer(self, layer: LayerBuilder, compression: Compression) -> Self {
        let n = self.layer_count() + 1;
        self.layer_with_history(layer, compression, &format!("strata-fixtures layer {n}"))
    }

    /// Appends a layer with the given history `created_by`.
    pub fn layer_with_history(
        mut self,
        layer: LayerBuilder,
        compression: Compression,
        created_by: &str,
    ) -> Self {
        self.steps.push(Step::Layer {
            layer,
            compression,
            created_by: created_by.to_owned(),
        });
        self
    }

    /// Appends a layer built elsewhere (a lazy format's, [`crate::TocLayer`]), as it is.
    pub fn built_layer(mut self, layer: BuiltLayer) -> Self {
        self.steps.push(Step::Built { layer });
        self
    }

    /// Appends a history entry with `empty_layer: true` (no layer).
    pub fn empty_history(mut self, created_by: &str) -> Self {
        self.steps.push(Step::EmptyHistory {
            created_by: created_by.to_owned(),
        });
        self
    }

    /// Number of layers added so far.
    pub fn layer_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Layer { .. } | Step::Built { .. }))
            .count()
    }

    /// The image's platform.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
        }
    }

    /// Builds every blob of the image in memory.
    pub fn build(&self) -> Result<BuiltImage> {
        let mut layers = Vec::new();
        let mut history = Vec::new();
        for step in &self.steps {
            match step {
                Step::Layer {
                    layer,
                    compression,
                    created_by,
                } => {
                    layers.push(layer.build(*compression)?);
                    history.push((created_by.as_str(), false));
                }
                Step::EmptyHistory { created_by } => history.push((created_by.as_str(), true)),
                Step::Built { layer } => {
                    layers.push(layer.clone());
                    history.push(("strata-fixtures built layer", false));
                }
            }
        }
        let config = ConfigJson {
            created: &self.created,
            author: self.author.as_deref(),
            architecture: &self.architecture,
            os: &self.os,
            variant: self.variant.as_deref(),
            config: RunConfig {
                user: self.user.as_deref(),
                env: &self.env,
                entrypoint: self.entrypoint.as_deref(),
                cmd: self.cmd.as_deref(),
                working_dir: self.workdir.as_deref(),
                labels: &self.labels,
            },
            rootfs: RootFs {
                kind: "layers",
                diff_ids: layers.iter().map(|l| l.diff_id.as_str()).collect(),
            },
            history: history
                .iter()
                .map(|&(created_by, empty_layer)| History {
                    created: &self.created,
                    created_by,
                    comment: None,
                    empty_layer,
                })
                .collect(),
        };
        let config = serde_json::to_vec(&config)?;
        let config_descriptor = Descriptor::for_bytes(media_types::CONFIG, &config);
        let manifest = serde_json::to_vec(&ManifestJson {
            schema_version: 2,
            media_type: media_types::MANIFEST,
            config: config_descriptor.clone(),
            layers: layers.iter().map(BuiltLayer::descriptor).collect(),
            annotations: &self.manifest_annotations,
        })?;
        let manifest_descriptor = Descriptor::for_bytes(media_types::MANIFEST, &manifest);
        Ok(BuiltImage {
            platform: self.platform(),
            layers,
            config,
            config_descriptor,
            manifest,
            manifest_descriptor,
        })
    }

    /// Writes all blobs into `layout` and returns the manifest descriptor
    /// (without platform or annotations; index.json is not touched).
    pub fn write_to(&self, layout: &mut LayoutWriter) -> Result<Descriptor> {
        self.build()?.write_to(layout)
    }

    /// Writes a complete OCI layout at `dir` with this image tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<Descriptor> {
        let mut layout = LayoutWriter::create(dir)?;
        let descriptor = self.write_to(&mut layout)?;
        layout.add_tagged(descriptor.clone(), tag);
        layout.finish()?;
        Ok(descriptor)
    }

    /// Writes an `oci-archive` tarball at `out` with this image tagged `tag`.
    pub fn write_oci_archive(&self, out: &Path, tag: &str) -> Result<Descriptor> {
        let dir = tempfile::tempdir()?;
        let descriptor = self.write_layout(dir.path(), tag)?;
        crate::write_oci_archive(dir.path(), out)?;
        Ok(descriptor)
    }
}

/// An image built in memory by [`ImageBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image's platform.
    pub platform: Platform,
    /// Layers, bottom first.
    pub layers: Vec<BuiltLayer>,
    /// Config JSON bytes.
    pub config: Vec<u8>,
    /// Descriptor of the config blob.
    pub config_descriptor: Descriptor,
    /// Manifest JSON bytes.
    pub manifest: Vec<u8>,
    /// Descriptor of the manifest blob (no platform, no annotations).
    pub manifest_descriptor: Descriptor,
}

impl BuiltImage {
    /// Writes the layer, config and manifest blobs into `layout`; returns the
    /// manifest descriptor.
    pub fn write_to(&self, layout: &mut LayoutWriter) -> Result<Descriptor> {
        for layer in &self.layers {
            layout.put_blob(&layer.blob)?;
        }
        layout.put_blob(&self.config)?;
        layout.put_blob(&self.manifest)?;
        Ok(self.manifest_descriptor.clone())
    }
}

/// Builds a multi-platform image: several [`ImageBuilder`]s under one OCI
/// image index whose entries carry `platform` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexBuilder {
    images: Vec<ImageBuilder>,
    annotations: BTreeMap<String, String>,
}

impl IndexBuilder {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a platform image (its platform comes from its config).
    pub fn image(mut self, image: ImageBuilder) -> Self {
        self.images.push(image);
        self
    }

    /// Adds an annotation on the index itself.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Builds every image and the index JSON in memory.
    pub fn build(&self) -> Result<BuiltIndex> {
        let images = self
            .images
            .iter()
            .map(ImageBuilder::build)
            .collect::<Result<Vec<_>>>()?;
        let manifests: Vec<Descriptor> = images
            .iter()
            .map(|i| {
                i.manifest_descriptor
                    .clone()
                    .with_platform(i.platform.clone())
            })
            .collect();
        let index = index_json(&manifests, &self.annotations)?;
        let index_descriptor = Descriptor::for_bytes(media_types::INDEX, &index);
        Ok(BuiltIndex {
            images,
            index,
            index_descriptor,
        })
    }

    /// Writes every blob (including the index blob) into `layout`; returns
    /// the index descriptor.
    pub fn write_to(&self, layout: &mut LayoutWriter) -> Result<Descriptor> {
        self.build()?.write_to(layout)
    }

    /// Writes a complete OCI layout at `dir` whose index.json lists the image
    /// index, tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<Descriptor> {
        let mut layout = LayoutWriter::create(dir)?;
        let descriptor = self.write_to(&mut layout)?;
        layout.add_tagged(descriptor.clone(), tag);
        layout.finish()?;
        Ok(descriptor)
    }

    /// Writes an `oci-archive` tarball at `out` with the index tagged `tag`.
    pub fn write_oci_archive(&self, out: &Path, tag: &str) -> Result<Descriptor> {
        let dir = tempfile::tempdir()?;
        let descriptor = self.write_layout(dir.path(), tag)?;
        crate::write_oci_archive(dir.path(), out)?;
        Ok(descriptor)
    }
}

/// An image index built in memory by [`IndexBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltIndex {
    /// The platform images, in the order added.
    pub images: Vec<BuiltImage>,
    /// Index JSON bytes (the blob, not index.json).
    pub index: Vec<u8>,
    /// Descriptor of the index blob.
    pub index_descriptor: Descriptor,
}

impl BuiltIndex {
    /// Writes every image's blobs and the index blob into `layout`; returns
    /// the index descriptor.
    pub fn write_to(&self, layout: &mut LayoutWriter) -> Result<Descriptor> {
        for image in &self.images {
            image.write_to(layout)?;
        }
        layout.put_blob(&self.index)?;
        Ok(self.index_descriptor.clone())
    }
}
