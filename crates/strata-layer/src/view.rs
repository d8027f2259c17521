//! A whole image seen as one tree, without unpacking it: the merged view of its layer indexes (obtained
//! through the index seam, [`crate::indexes`]), with file contents read through the shared
//! `Contents` providers — the compressed blobs through their checkpoints, or,
//! for a layer a store keeps unpacked, the file of the same path in its directory. The mount and the
//! scanner build on [`ImageView`].

use std::sync::Arc;

use strata_image::{ImageSource, ResolvedImage, resolve};
use strata_index::{EntryKind, EntryRef, LayerIndex, MergedView};
use strata_oci::Platform;

use crate::contents::{
    BlobContents, ContentOptions, ContentStats, Contents, DirContents, FileRef, LayeredContents,
};
use crate::dir::LayerDir;
use crate::error::{Error, Result};
use crate::image::source_layer_specs;
use crate::indexes::{IndexOptions, ObtainedLayer, obtain_layers};

/// How many hardlinks a read follows before giving up (a hostile index could make a cycle).
const MAX_HARDLINK_HOPS: usize = 16;

/// An image as one merged tree: lookups and directory listings from the layer indexes, file contents from
/// the compressed blobs or the layers' directories. `Send + Sync`: reads may run concurrently.
pub struct ImageView {
    image: ResolvedImage,
    merged: MergedView,
    contents: Arc<dyn Contents>,
    /// Per layer: the directory its files are read from, if any.
    dirs: Vec<Option<LayerDir>>,
}

/// How [`ImageView::open_with`] obtains indexes and reads contents.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// Where indexes are looked for before layers are read.
    pub indexes: IndexOptions,
    /// How blob contents are cached.
    pub contents: ContentOptions,
}

impl std::fmt::Debug for ImageView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageView")
            .field("manifest", &self.image.instance.digest.to_string())
            .field("layers", &self.dirs.len())
            .finish_non_exhaustive()
    }
}

impl ImageView {
    /// Opens the image `source` designates for `platform` with the default [`ViewOptions`]: resolves it,
    /// then obtains every layer's index (see [`obtain_layers`]: layers the source keeps unpacked are read
    /// from their directories; the others are read, verified and indexed, in parallel, in memory).
    pub fn open(source: Arc<dyn ImageSource>, platform: &Platform) -> Result<ImageView> {
        ImageView::open_with(source, platform, &ViewOptions::default())
    }

    /// Opens the image `source` designates for `platform`, as [`ImageView::open`], with `options`.
    pub fn open_with(
        source: Arc<dyn ImageSource>,
        platform: &Platform,
        options: &ViewOptions,
    ) -> Result<ImageView> {
        let image = resolve(source.as_ref(), platform)?;
        let layers = obtain_layers(&source, &image, &options.indexes)?;
        ImageView::from_layers(source, image, layers, &options.contents)
    }

    /// A view over `layers` (bottom first) of `image`: each layer with a directory is read from it and must
    /// describe the layer with the matching diff ID; each other layer is read from its blob in `source` and
    /// must describe that blob.
    pub fn from_layers(
        source: Arc<dyn ImageSource>,
        image: ResolvedImage,
        layers: Vec<ObtainedLayer>,
        options: &ContentOptions,
    ) -> Result<ImageView> {
        let specs = source_layer_specs(source.as_ref(), &image)?;
        if specs.len() != layers.len() {
            return Err(Error::Format {
                layer: image.instance.digest.to_string(),
                reason: format!(
                    "{} layer indexes for an image of {} layers",
                    layers.len(),
                    specs.len()
                ),
            });
        }
        let mut indexes = Vec::with_capacity(layers.len());
        let mut dirs = Vec::with_capacity(layers.len());
        let mut found = Vec::with_capacity(layers.len());
        for (spec, layer) in specs.iter().zip(layers) {
            let info = layer.index.layer();
            match &layer.dir {
                Some(dir) => {
                    let expected = spec.diff_id.as_ref().map(ToString::to_string);
                    if expected.as_deref() != Some(info.diff_id.as_str()) {
                        return Err(Error::Format {
                            layer: spec.digest.to_string(),
                            reason: format!(
                                "the index given for it (in {}) describes diff ID {}",
                                dir.path().display(),
                                info.diff_id
                            ),
                        });
                    }
                }
                None => {
                    if info.blob_digest != spec.digest.to_string() {
                        return Err(Error::Format {
                            layer: spec.digest.to_string(),
                            reason: format!(
                                "the index given for it describes {}",
                                info.blob_digest
                            ),
                        });
                    }
                }
            }
            indexes.push(layer.index);
            dirs.push(layer.dir);
            found.push(layer.contents);
        }
        let contents = contents_for(source, &indexes, &dirs, found, options)?;
        Ok(ImageView {
            image,
            merged: MergedView::new(indexes),
            contents,
            dirs,
        })
    }

    /// The image as its bottom `layers` layers alone show it (all of it when `layers` is the layer count or
    /// more): a base image's tree, sharing this view's indexes and contents (nothing read again).
    pub fn bottom(&self, layers: usize) -> ImageView {
        let all = self.merged.layers();
        let n = layers.min(all.len());
        ImageView {
            image: self.image.clone(),
            merged: MergedView::new(all.get(..n).unwrap_or_default().to_vec()),
            contents: Arc::clone(&self.contents),
            dirs: self.dirs.get(..n).unwrap_or_default().to_vec(),
        }
    }

    /// The resolved image (manifests and config).
    pub fn image(&self) -> &ResolvedImage {
        &self.image
    }

    /// The merged tree.
    pub fn merged(&self) -> &MergedView {
        &self.merged
    }

    /// The directory layer `layer` (0 = bottom) is read from, for a layer its source keeps unpacked (a
    /// store's); `None` for a layer read from its blob.
    pub fn layer_dir(&self, layer: usize) -> Option<&LayerDir> {
        self.dirs.get(layer)?.as_ref()
    }

    /// The provider of file bytes every read of this view goes through (shared with a mount of it).
    pub fn contents(&self) -> &Arc<dyn Contents> {
        &self.contents
    }

    /// What was decompressed to read files so far.
    pub fn content_stats(&self) -> ContentStats {
        self.contents.stats()
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
        let path = entry.path();
        let file = FileRef {
            layer,
            offset: entry.offset(),
            size: entry.size(),
            path: &path,
        };
        let left = entry.size().saturating_sub(offset);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < want {
            let n = self
                .contents
                .read_at(&file, offset + done as u64, &mut buf[done..want])?;
            if n == 0 {
                return Err(Error::Truncated {
                    layer,
                    path: String::from_utf8_lossy(&path).into_owned(),
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

/// The contents provider for layers `indexes` (bottom first): the provider a finder gave in `found`, else
/// the directory in `dirs`, else the blobs of `source`.
fn contents_for(
    source: Arc<dyn ImageSource>,
    indexes: &[LayerIndex],
    dirs: &[Option<LayerDir>],
    found: Vec<Option<Arc<dyn Contents>>>,
    options: &ContentOptions,
) -> Result<Arc<dyn Contents>> {
    let from_dirs = dirs.iter().any(Option::is_some);
    let from_blobs = dirs
        .iter()
        .zip(&found)
        .any(|(d, f)| d.is_none() && f.is_none());
    let dir_contents: Option<Arc<dyn Contents>> =
        from_dirs.then(|| Arc::new(DirContents::new(dirs.to_vec())) as Arc<dyn Contents>);
    let blobs: Option<Arc<dyn Contents>> = if from_blobs {
        Some(Arc::new(BlobContents::new(source, indexes, options)?))
    } else {
        None
    };
    let mut layers = Vec::with_capacity(dirs.len());
    for (dir, provider) in dirs.iter().zip(found) {
        let chosen = match (provider, dir, &dir_contents, &blobs) {
            (Some(provider), _, _, _) => provider,
            (None, Some(_), Some(d), _) => Arc::clone(d),
            (None, None, _, Some(b)) => Arc::clone(b),
            _ => {
                return Err(Error::Format {
                    layer: String::new(),
                    reason: "a layer has no contents provider".into(),
                });
            }
        };
        layers.push(chosen);
    }
    // One provider for every layer needs no dispatch.
    if let Some(first) = layers.first()
        && layers.iter().all(|l| Arc::ptr_eq(l, first))
    {
        return Ok(Arc::clone(first));
    }
    Ok(Arc::new(LayeredContents { layers }))
}
