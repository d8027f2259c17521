//! The index seam: the one way strata obtains the indexes of an image's layers, and where each layer's file
//! bytes are then read from.
//!
//! For each layer, in order: a layer the source keeps unpacked and indexed (a store's, through
//! [`ImageSource::kept_layer`]); an index kept in an [`IndexDir`] (as `strata index -o DIR` writes them);
//! otherwise the layer is read, verified and indexed (all such layers in parallel). Further origins (a
//! lazy format's table of contents, an index published to a registry, a local index cache) join here as
//! more [`IndexOrigin`]s.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use strata_image::{ImageSource, ResolvedImage};
use strata_index::{IndexWriter, LayerIndex};
use strata_oci::Digest;

use crate::dir::LayerDir;
use crate::error::{Error, Result};
use crate::image::{index_layers, source_layer_specs};
use crate::pipeline::LayerSpec;

/// Where a layer's index came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexOrigin {
    /// Built by reading and verifying the whole layer.
    Read,
    /// The source keeps the layer unpacked and indexed (a store): the index file named.
    Kept(PathBuf),
    /// Read from an [`IndexDir`]: the index file named.
    IndexDir(PathBuf),
}

/// One layer ready to be read: its index, and its directory when its files are read from one.
#[derive(Debug)]
pub struct ObtainedLayer {
    /// The layer's index.
    pub index: LayerIndex,
    /// The directory its files are read from (a layer kept unpacked); `None`: read from its blob.
    pub dir: Option<LayerDir>,
    /// Where the index came from.
    pub origin: IndexOrigin,
}

/// Where to look for layer indexes before reading the layers.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// A directory of indexes built earlier.
    pub index_dir: Option<IndexDir>,
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
/// `options.index_dir`, or built by reading the layer (those in parallel).
pub fn obtain_layers(
    source: &dyn ImageSource,
    image: &ResolvedImage,
    options: &IndexOptions,
) -> Result<Vec<ObtainedLayer>> {
    let specs = source_layer_specs(source, image)?;
    let mut found: Vec<Option<ObtainedLayer>> = Vec::with_capacity(specs.len());
    let mut to_read: Vec<LayerSpec> = Vec::new();
    for spec in &specs {
        let layer = obtain_without_reading(source, spec, options)?;
        if layer.is_none() {
            to_read.push(spec.clone());
        }
        found.push(layer);
    }
    let mut read = index_layers(source, &to_read)?.into_iter();
    found
        .into_iter()
        .map(|layer| match layer {
            Some(layer) => Ok(layer),
            None => {
                let built = read.next().ok_or_else(|| Error::Format {
                    layer: image.instance.digest.to_string(),
                    reason: "a layer was not indexed".into(),
                })?;
                Ok(ObtainedLayer {
                    index: LayerIndex::from_bytes(built.index.try_to_bytes()?)?,
                    dir: None,
                    origin: IndexOrigin::Read,
                })
            }
        })
        .collect()
}

/// The layer `spec` describes, if its index can be had without reading it.
fn obtain_without_reading(
    source: &dyn ImageSource,
    spec: &LayerSpec,
    options: &IndexOptions,
) -> Result<Option<ObtainedLayer>> {
    if let Some(diff_id) = &spec.diff_id
        && let Some(kept) = source.kept_layer(diff_id)?
    {
        return Ok(Some(ObtainedLayer {
            index: LayerIndex::open(&kept.index)?,
            dir: Some(LayerDir::open(&kept.dir)?),
            origin: IndexOrigin::Kept(kept.index),
        }));
    }
    if let Some(dir) = &options.index_dir
        && let Some(index) = dir.load(&spec.digest)?
    {
        return Ok(Some(ObtainedLayer {
            index,
            dir: None,
            origin: IndexOrigin::IndexDir(dir.index_path(&spec.digest)),
        }));
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
