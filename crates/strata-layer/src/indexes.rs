//! The index seam: the one way strata obtains the indexes of an image's layers, and where each layer's file
//! bytes are then read from.
//!
//! For each layer, in order: a layer the source keeps unpacked and indexed (a store's, through
//! [`ImageSource::kept_layer`]); an index kept in an [`IndexDir`] (as `strata index -o DIR` writes them);
//! then each [`LayerFinder`] given (a lazy format's table of contents, an index published to a registry, a
//! local index cache: `strata-lazy` implements them, the layer engine only asks); otherwise the layer is
//! read, verified and indexed (all such layers in parallel).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_image::{ImageSource, ResolvedImage};
use strata_index::{IndexWriter, LayerIndex};
use strata_oci::Digest;

#[cfg(doc)]
use crate::contents::BlobContents;
use crate::contents::Contents;
use crate::dir::LayerDir;
use crate::error::{Error, Result};
use crate::image::{index_layers, source_layer_specs};
use crate::pipeline::LayerSpec;

/// Most layers looked up at once (each lookup on its own thread, waiting on the source).
const LOOKUP_THREADS: usize = 16;

/// Where a layer's index came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexOrigin {
    /// Built by reading and verifying the whole layer.
    Read,
    /// The source keeps the layer unpacked and indexed (a store): the index file named.
    Kept(PathBuf),
    /// Read from an [`IndexDir`]: the index file named.
    IndexDir(PathBuf),
    /// Built from the layer's own table of contents (a lazy format: `estargz`, `zstd:chunked`), fetched
    /// by range; the format named.
    Toc(String),
    /// An index published to the registry for the image (an OCI artifact): the artifact manifest's digest.
    Published(Digest),
    /// Kept in the local index cache after an earlier full read: the cache file named.
    Cache(PathBuf),
}

impl IndexOrigin {
    /// A word for reports: `read`, `kept`, `index-dir`, `toc`, `published`, `cache`.
    pub fn kind(&self) -> &'static str {
        match self {
            IndexOrigin::Read => "read",
            IndexOrigin::Kept(_) => "kept",
            IndexOrigin::IndexDir(_) => "index-dir",
            IndexOrigin::Toc(_) => "toc",
            IndexOrigin::Published(_) => "published",
            IndexOrigin::Cache(_) => "cache",
        }
    }
}

/// A layer a [`LayerFinder`] found: its index and the provider its file bytes are read through.
pub struct FoundLayer {
    /// The layer's index. Its file offsets are in whatever coordinates `contents` reads.
    pub index: LayerIndex,
    /// Reads the layer's files (by range, each read checked against a digest the finder trusts); `None`:
    /// the index is a strata layer index whose checkpoints the blob is read through ([`BlobContents`],
    /// which checks each span against the index's span digests).
    ///
    /// A provider serves one layer: it gets reads for this layer only, whatever their
    /// [`FileRef::layer`](crate::FileRef::layer).
    pub contents: Option<Arc<dyn Contents>>,
    /// Where the index came from.
    pub origin: IndexOrigin,
}

/// A way to have a layer's index (and its files' bytes) without reading the whole layer: implemented
/// outside the layer engine (`strata-lazy`: lazy formats' tables of contents, published indexes, the local
/// cache), asked by [`obtain_layers`] in the order given, for all layers at once.
pub trait LayerFinder: Send + Sync {
    /// Layer `at` (0 = bottom) of `image`, whose blob `spec` describes (the descriptor is
    /// `image.manifest.layers()[at]`), if this finder has it; `Ok(None)` lets the next finder (or a full
    /// read) have it. An error means the layer is there but wrong (a hostile table, a lying index): the
    /// open fails naming it.
    fn find(
        &self,
        source: &Arc<dyn ImageSource>,
        image: &ResolvedImage,
        at: usize,
        spec: &LayerSpec,
    ) -> Result<Option<FoundLayer>>;

    /// Layer `spec` was just read whole and verified, giving `index`: a cache may keep it.
    fn layer_read(&self, spec: &LayerSpec, index: &IndexWriter) -> Result<()> {
        let _ = (spec, index);
        Ok(())
    }
}

/// One layer ready to be read: its index, and where its files are read from.
pub struct ObtainedLayer {
    /// The layer's index.
    pub index: LayerIndex,
    /// The directory its files are read from (a layer kept unpacked).
    pub dir: Option<LayerDir>,
    /// The provider its files are read through (a layer a [`LayerFinder`] found). With neither this nor
    /// `dir`, files are read from the blob through the index's checkpoints.
    pub contents: Option<Arc<dyn Contents>>,
    /// Where the index came from.
    pub origin: IndexOrigin,
}

impl std::fmt::Debug for ObtainedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObtainedLayer")
            .field("blob", &self.index.layer().blob_digest)
            .field("dir", &self.dir)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Where to look for layer indexes before reading the layers.
#[derive(Clone, Default)]
pub struct IndexOptions {
    /// A directory of indexes built earlier.
    pub index_dir: Option<IndexDir>,
    /// Finders asked, in order, for layers neither the source nor `index_dir` keeps.
    pub finders: Vec<Arc<dyn LayerFinder>>,
}

impl std::fmt::Debug for IndexOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexOptions")
            .field("index_dir", &self.index_dir)
            .field("finders", &self.finders.len())
            .finish()
    }
}

/// A directory of layer indexes, one file per layer named `<blob hex>.idx` after the layer's blob digest:
/// the one owner of that naming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDir {
    path: PathBuf,
}

impl IndexDir {
    /// The index directory at `path`, which must exist.
    pub fn open(path: &Path) -> Result<IndexDir> {
        let meta = fs::metadata(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: io::Error::from(io::ErrorKind::NotADirectory),
            });
        }
        Ok(IndexDir {
            path: path.to_path_buf(),
        })
    }

    /// The index directory at `path`, created if missing.
    pub fn create(path: &Path) -> Result<IndexDir> {
        fs::create_dir_all(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        IndexDir::open(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the index of the layer whose blob is `blob` is kept.
    pub fn index_path(&self, blob: &Digest) -> PathBuf {
        self.path.join(format!("{}.idx", blob.hex()))
    }

    /// The index of the layer whose blob is `blob`, if the directory has one.
    pub fn load(&self, blob: &Digest) -> Result<Option<LayerIndex>> {
        let path = self.index_path(blob);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(LayerIndex::from_bytes(bytes)?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Keeps `index` as the index of the layer whose blob is `blob`; returns the file written.
    pub fn save(&self, blob: &Digest, index: &IndexWriter) -> Result<PathBuf> {
        let path = self.index_path(blob);
        index.write(&path)?;
        Ok(path)
    }
}

/// The layers of `image` (from `source`), bottom first, each with its index: kept by the source, kept in
/// `options.index_dir`, found by one of `options.finders`, or built by reading the layer. Layers are looked
/// up, and then read, in parallel.
pub fn obtain_layers(
    source: &Arc<dyn ImageSource>,
    image: &ResolvedImage,
    options: &IndexOptions,
) -> Result<Vec<ObtainedLayer>> {
    let specs = source_layer_specs(source.as_ref(), image)?;
    // Lookups wait on the network (a table of contents, a published index), not on CPUs: a thread per
    // layer (at most LOOKUP_THREADS at once), not the CPU-sized pool.
    let mut found: Vec<Option<ObtainedLayer>> = Vec::with_capacity(specs.len());
    for (batch, group) in specs.chunks(LOOKUP_THREADS).enumerate() {
        let looked: Vec<Result<Option<ObtainedLayer>>> = std::thread::scope(|scope| {
            let lookups: Vec<_> = group
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    let at = batch * LOOKUP_THREADS + i;
                    scope.spawn(move || obtain_without_reading(source, image, at, spec, options))
                })
                .collect();
            lookups
                .into_iter()
                .map(|lookup| {
                    lookup.join().unwrap_or_else(|_| {
                        Err(Error::Format {
                            layer: image.instance.digest.to_string(),
                            reason: "a layer lookup panicked".into(),
                        })
                    })
                })
                .collect()
        });
        for layer in looked {
            found.push(layer?);
        }
    }
    let to_read: Vec<LayerSpec> = specs
        .iter()
        .zip(&found)
        .filter(|(_, layer)| layer.is_none())
        .map(|(spec, _)| spec.clone())
        .collect();
    let mut read = index_layers(source.as_ref(), &to_read)?.into_iter();
    found
        .into_iter()
        .map(|layer| match layer {
            Some(layer) => Ok(layer),
            None => {
                let built = read.next().ok_or_else(|| Error::Format {
                    layer: image.instance.digest.to_string(),
                    reason: "a layer was not indexed".into(),
                })?;
                for finder in &options.finders {
                    finder.layer_read(&built.spec, &built.index)?;
                }
                Ok(ObtainedLayer {
                    index: LayerIndex::from_bytes(built.index.try_to_bytes()?)?,
                    dir: None,
                    contents: None,
                    origin: IndexOrigin::Read,
                })
            }
        })
        .collect()
}

/// Layer `at` (0 = bottom) of `image` alone, as [`obtain_layers`] obtains each: kept by the source, kept in
/// `options.index_dir`, found by one of `options.finders`, or else read whole, verified (blob digest and diff
/// ID) and indexed, the finders then told of the index ([`LayerFinder::layer_read`]: a cache keeps it).
/// For a reader of one layer at a time (the Additional Layer Store), where the image's other layers are
/// not wanted.
pub fn obtain_layer(
    source: &Arc<dyn ImageSource>,
    image: &ResolvedImage,
    at: usize,
    options: &IndexOptions,
) -> Result<ObtainedLayer> {
    let specs = source_layer_specs(source.as_ref(), image)?;
    let spec = specs.get(at).ok_or_else(|| Error::Format {
        layer: image.instance.digest.to_string(),
        reason: format!("the image has no layer {at} ({} layers)", specs.len()),
    })?;
    if let Some(layer) = obtain_without_reading(source, image, at, spec, options)? {
        return Ok(layer);
    }
    let built = index_layers(source.as_ref(), std::slice::from_ref(spec))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Format {
            layer: spec.digest.to_string(),
            reason: "the layer was not indexed".into(),
        })?;
    for finder in &options.finders {
        finder.layer_read(&built.spec, &built.index)?;
    }
    Ok(ObtainedLayer {
        index: LayerIndex::from_bytes(built.index.try_to_bytes()?)?,
        dir: None,
        contents: None,
        origin: IndexOrigin::Read,
    })
}

/// Layer `at` of `image` (blob `spec`), if its index can be had without reading it whole.
fn obtain_without_reading(
    source: &Arc<dyn ImageSource>,
    image: &ResolvedImage,
    at: usize,
    spec: &LayerSpec,
    options: &IndexOptions,
) -> Result<Option<ObtainedLayer>> {
    if let Some(diff_id) = &spec.diff_id
        && let Some(kept) = source.kept_layer(diff_id)?
    {
        return Ok(Some(ObtainedLayer {
            index: LayerIndex::open(&kept.index)?,
            dir: Some(LayerDir::open(&kept.dir)?),
            contents: None,
            origin: IndexOrigin::Kept(kept.index),
        }));
    }
    if let Some(dir) = &options.index_dir
        && let Some(index) = dir.load(&spec.digest)?
    {
        return Ok(Some(ObtainedLayer {
            index,
            dir: None,
            contents: None,
            origin: IndexOrigin::IndexDir(dir.index_path(&spec.digest)),
        }));
    }
    for finder in &options.finders {
        if let Some(found) = finder.find(source, image, at, spec)? {
            return Ok(Some(ObtainedLayer {
                index: found.index,
                dir: None,
                contents: found.contents,
                origin: found.origin,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_index_dir_names_indexes_by_blob_and_must_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing");
        let err = IndexDir::open(&missing).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        let dir = IndexDir::create(&missing).unwrap();
        let blob = Digest::sha256(b"blob");
        assert_eq!(
            dir.index_path(&blob),
            missing.join(format!("{}.idx", blob.hex()))
        );
        assert!(dir.load(&blob).unwrap().is_none());
        fs::write(dir.index_path(&blob), b"not an index").unwrap();
        assert!(dir.load(&blob).is_err(), "a corrupt index is an error");
    }
}
