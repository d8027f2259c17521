//! A whole image seen as one tree, without unpacking it: the merged view of its layer indexes, with file
//! contents read through each layer's checkpoints — or, for a layer a store keeps unpacked, from the file of
//! the same path in its directory. The mount and the scanner build on [`ImageView`].

use std::sync::Arc;

use strata_index::{EntryKind, EntryRef, LayerIndex, MergedView};
use strata_oci::Platform;
use strata_source::{ImageSource, ResolvedImage, resolve};

use crate::dir::LayerDir;
use crate::error::{Error, Result};
use crate::image::{index_layers, layer_specs};
use crate::random::LayerReader;

/// How many hardlinks a read follows before giving up (a hostile index could make a cycle).
const MAX_HARDLINK_HOPS: usize = 16;

/// An image as one merged tree: lookups and directory listings from the layer indexes, file contents from
/// the compressed blobs or the layers' directories. `Send + Sync`: reads may run concurrently.
pub struct ImageView {
    image: ResolvedImage,
    merged: MergedView,
    readers: Vec<LayerData>,
}

/// Where one layer's file contents are read from.
enum LayerData {
    /// The blob, through the index's offsets and checkpoints.
    Blob(LayerReader<'static>),
    /// The layer's directory, file by file.
    Dir(LayerDir),
}

impl std::fmt::Debug for ImageView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageView")
            .field("manifest", &self.image.instance.digest.to_string())
            .field("layers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

impl ImageView {
    /// Opens the image `source` designates for `platform`: resolves it, then reads, verifies and indexes
    /// every layer (in parallel, in memory).
    pub fn open(source: Arc<dyn ImageSource>, platform: &Platform) -> Result<ImageView> {
        let image = resolve(source.as_ref(), platform)?;
        let specs = layer_specs(&image)?;
        let indexed = index_layers(source.as_ref(), &specs)?;
        let mut indexes = Vec::with_capacity(indexed.len());
        for layer in indexed {
            let bytes = layer.index.try_to_bytes()?;
            indexes.push(LayerIndex::from_bytes(bytes)?);
        }
        ImageView::from_indexes(source, image, indexes)
    }

    /// A view over layer indexes built earlier (e.g. kept in a store), bottom layer first. Fails unless
    /// each index describes the matching layer of `image`.
    pub fn from_indexes(
        source: Arc<dyn ImageSource>,
        image: ResolvedImage,
        indexes: Vec<LayerIndex>,
    ) -> Result<ImageView> {
        let layers = image.manifest.layers();
        if layers.len() != indexes.len() {
            return Err(Error::Format {
                layer: image.instance.digest.to_string(),
                reason: format!(
                    "{} layer indexes for an image of {} layers",
                    indexes.len(),
                    layers.len()
                ),
            });
        }
        let mut readers = Vec::with_capacity(indexes.len());
        for (descriptor, index) in layers.iter().zip(&indexes) {
            if index.layer().blob_digest != descriptor.digest().to_string() {
                return Err(Error::Format {
                    layer: descriptor.digest().to_string(),
                    reason: format!(
                        "the index given for it describes {}",
                        index.layer().blob_digest
                    ),
                });
            }
            readers.push(LayerData::Blob(LayerReader::from_index(
                Arc::clone(&source),
                index,
            )?));
        }
        Ok(ImageView {
            image,
            merged: MergedView::new(indexes),
            readers,
        })
    }

    /// A view over layers kept unpacked (a store's `diff` directories), bottom layer first: `layers` pairs
    /// each layer's index with its directory, file contents are read from the directories. Fails unless each
    /// index describes the layer with the matching diff ID of `image`'s config.
    pub fn from_layer_dirs(
        image: ResolvedImage,
        layers: Vec<(LayerIndex, LayerDir)>,
    ) -> Result<ImageView> {
        let specs = layer_specs(&image)?;
        if specs.len() != layers.len() {
            return Err(Error::Format {
                layer: image.instance.digest.to_string(),
                reason: format!(
                    "{} layers given for an image of {} layers",
                    layers.len(),
                    specs.len()
                ),
            });
        }
        let mut indexes = Vec::with_capacity(layers.len());
        let mut readers = Vec::with_capacity(layers.len());
        for (spec, (index, dir)) in specs.iter().zip(layers) {
            let expected = spec.diff_id.as_ref().map(ToString::to_string);
            if expected.as_deref() != Some(index.layer().diff_id.as_str()) {
                return Err(Error::Format {
                    layer: spec.digest.to_string(),
                    reason: format!(
                        "the index given for it (in {}) describes diff ID {}",
                        dir.path().display(),
                        index.layer().diff_id
                    ),
                });
            }
            indexes.push(index);
            readers.push(LayerData::Dir(dir));
        }
        Ok(ImageView {
            image,
            merged: MergedView::new(indexes),
            readers,
        })
    }

    /// The resolved image (manifests and config).
    pub fn image(&self) -> &ResolvedImage {
        &self.image
    }

    /// The merged tree.
    pub fn merged(&self) -> &MergedView {
        &self.merged
    }

    /// The directory layer `layer` (0 = bottom) is read from, for a view over unpacked layers
    /// ([`ImageView::from_layer_dirs`]); `None` for a layer read from its blob.
    pub fn layer_dir(&self, layer: usize) -> Option<&LayerDir> {
        match self.readers.get(layer)? {
            LayerData::Dir(dir) => Some(dir),
            LayerData::Blob(_) => None,
        }
    }

    /// The entry whose bytes a regular file or hardlink at (`layer`, `entry`) has: the entry itself for a
    /// file, the hardlink's target (as seen from the hardlink's layer) for a hardlink.
    pub fn data_entry<'a>(
        &'a self,
        layer: usize,
        entry: EntryRef<'a>,
    ) -> Result<(usize, EntryRef<'a>)> {
        let (mut layer, mut entry) = (layer, entry);
        for _ in 0..MAX_HARDLINK_HOPS {
            match entry.kind() {
                EntryKind::File => return Ok((layer, entry)),
                EntryKind::Hardlink => {
                    let target = entry.link();
                    let Some(found) = self.merged.lookup_below(target, layer)? else {
                        return Err(Error::Format {
                            layer: self.layer_digest(layer),
                            reason: format!(
                                "hardlink {} points to {}, which does not exist",
                                String::from_utf8_lossy(&entry.path()),
                                String::from_utf8_lossy(target)
                            ),
                        });
                    };
                    (layer, entry) = found;
                }
                _ => {
                    return Err(Error::Format {
                        layer: self.layer_digest(layer),
                        reason: format!(
                            "{} is not a regular file",
                            String::from_utf8_lossy(&entry.path())
                        ),
                    });
                }
            }
        }
        Err(Error::Format {
            layer: self.layer_digest(layer),
            reason: "hardlinks nested too deep".into(),
        })
    }

    /// Reads up to `buf.len()` bytes of the file at (`layer`, `entry`) from `offset` within the file
    /// (hardlinks followed). Returns 0 at or past the file's end.
    pub fn read_at(
        &self,
        layer: usize,
        entry: EntryRef<'_>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let (layer, entry) = self.data_entry(layer, entry)?;
        let left = entry.size().saturating_sub(offset);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let reader = self.readers.get(layer).ok_or_else(|| Error::Format {
            layer: self.image.instance.digest.to_string(),
            reason: format!("no layer {layer}"),
        })?;
        let reader = match reader {
            LayerData::Blob(reader) => reader,
            LayerData::Dir(dir) => {
                let n = dir.read_at(&entry.path(), entry.size(), offset, &mut buf[..want])?;
                if n < want {
                    return Err(Error::Unpack {
                        path: dir
                            .path()
                            .join(String::from_utf8_lossy(&entry.path()).as_ref()),
                        reason: "shorter than the layer's index says".into(),
                    });
                }
                return Ok(n);
            }
        };
        let start = entry
            .offset()
            .checked_add(offset)
            .ok_or_else(|| Error::Format {
                layer: self.layer_digest(layer),
                reason: "file offset overflows".into(),
            })?;
        let mut done = 0;
        while done < want {
            let n = reader.read_at(start + done as u64, &mut buf[done..want])?;
            if n == 0 {
                return Err(Error::Format {
                    layer: self.layer_digest(layer),
                    reason: format!(
                        "{} runs past the end of the layer",
                        String::from_utf8_lossy(&entry.path())
                    ),
                });
            }
            done += n;
        }
        Ok(done)
    }

    /// The whole content of the file at `path` in the merged tree (hardlinks followed), refused when larger
    /// than `limit` bytes. `Ok(None)` when there is no such file.
    pub fn read_file(&self, path: &[u8], limit: u64) -> Result<Option<Vec<u8>>> {
        let Some((layer, entry)) = self.merged.lookup(path)? else {
            return Ok(None);
        };
        let (layer, entry) = self.data_entry(layer, entry)?;
        if entry.size() > limit {
            return Err(Error::Format {
                layer: self.layer_digest(layer),
                reason: format!(
                    "{} is {} bytes, over the {limit}-byte limit",
                    String::from_utf8_lossy(path),
                    entry.size()
                ),
            });
        }
        let mut out = vec![0u8; usize::try_from(entry.size()).unwrap_or(0)];
        self.read_at(layer, entry, 0, &mut out)?;
        Ok(Some(out))
    }

    fn layer_digest(&self, layer: usize) -> String {
        self.merged
            .layers()
            .get(layer)
            .map_or_else(String::new, |l| l.layer().blob_digest.clone())
    }
}
