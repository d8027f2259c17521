//! Whole images: the layer specs of a resolved image, and indexing or unpacking all its layers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use strata_image::{ImageSource, LayerBlobs, ResolvedImage};
use strata_index::{IndexWriter, LayerInfo};
use strata_oci::media::Compression;
use strata_oci::{Digest, media};

use crate::error::{Error, Result};
use crate::pipeline::{LayerSpec, LayerSummary, read_layer, read_layer_unindexed};
use crate::unpack::Unpacker;

/// The layers of `image`, bottom first, each with its descriptor and the diff ID its config records.
/// Fails if the manifest and the config disagree on the number of layers, or a layer is non-distributable
/// (its blob is not in the image).
pub fn layer_specs(image: &ResolvedImage) -> Result<Vec<LayerSpec>> {
    let layers = image.manifest.layers();
    let diff_ids = image.config.oci.rootfs().diff_ids();
    let manifest = image.instance.digest.to_string();
    if layers.len() != diff_ids.len() {
        return Err(Error::Format {
            layer: manifest,
            reason: format!(
                "the manifest lists {} layers but the config has {} diff IDs",
                layers.len(),
                diff_ids.len()
            ),
        });
    }
    layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            let digest = Digest::try_from(d.digest()).map_err(|error| Error::Verify {
                layer: d.digest().to_string(),
                error,
            })?;
            let media_type = d.media_type().to_string();
            if media::is_non_distributable(&media_type) {
                return Err(Error::Format {
                    layer: digest.to_string(),
                    reason: "non-distributable layers are not supported".into(),
                });
            }
            let diff_id = Digest::parse(diff_id).map_err(|error| Error::Verify {
                layer: digest.to_string(),
                error,
            })?;
            Ok(LayerSpec {
                digest,
                size: Some(d.size()),
                media_type,
                diff_id: Some(diff_id),
            })
        })
        .collect()
}

/// The layers of `image` as `source` serves them: [`layer_specs`], except that a source keeping layers
/// unpacked ([`LayerBlobs::ByDiffId`], a store) serves each layer by its diff ID, as uncompressed tar.
pub fn source_layer_specs(
    source: &dyn ImageSource,
    image: &ResolvedImage,
) -> Result<Vec<LayerSpec>> {
    let specs = layer_specs(image)?;
    Ok(match source.layer_blobs() {
        LayerBlobs::AsInManifest => specs,
        LayerBlobs::ByDiffId => specs
            .into_iter()
            .map(|s| LayerSpec {
                digest: s.diff_id.clone().unwrap_or(s.digest),
                size: None,
                media_type: media::OCI_LAYER.to_owned(),
                diff_id: s.diff_id,
            })
            .collect(),
    })
}

/// A layer read and indexed.
pub struct IndexedLayer {
    /// What was read.
    pub spec: LayerSpec,
    /// What reading it found.
    pub summary: LayerSummary,
    /// Its index, ready to be written.
    pub index: IndexWriter,
    /// How long reading and indexing took.
    pub elapsed: Duration,
}

/// Reads and verifies one layer of `source`, building its index.
pub fn index_layer(source: &dyn ImageSource, spec: &LayerSpec) -> Result<IndexedLayer> {
    let started = Instant::now();
    let blob = source.open_blob(&spec.digest)?;
    let mut index = IndexWriter::new();
    let summary = read_layer(blob.reader, spec, &mut |entry, _| {
        index.push(entry.clone());
        Ok(())
    })?;
    for checkpoint in &summary.checkpoints {
        index.add_checkpoint(checkpoint.clone());
    }
    index.set_spans(summary.spans.clone());
    index.set_layer(LayerInfo {
        blob_digest: spec.digest.to_string(),
        diff_id: summary.diff_id.to_string(),
        media_type: spec.media_type.clone(),
        compression: match summary.compression {
            Compression::None => LayerInfo::COMPRESSION_NONE,
            Compression::Gzip => LayerInfo::COMPRESSION_GZIP,
            Compression::Zstd => LayerInfo::COMPRESSION_ZSTD,
        },
        blob_size: summary.blob_size,
        tar_size: summary.tar_size,
    });
    Ok(IndexedLayer {
        spec: spec.clone(),
        summary,
        index,
        elapsed: started.elapsed(),
    })
}

/// Reads, verifies and indexes all `layers` of `source` at once, one task per layer on rayon's pool (each
/// layer pipelined over two threads). The result is in the order of `layers`.
///
/// The largest blobs are started first (longest-processing-time-first scheduling): the largest layer
/// bounds the whole, and small layers then fill in around it so that the threads finish together. Once a
/// layer fails, layers not yet started are skipped, and the error of the lowest failed layer is returned.
pub fn index_layers(source: &dyn ImageSource, layers: &[LayerSpec]) -> Result<Vec<IndexedLayer>> {
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(layers[i].size.unwrap_or(0)));
    let results: Vec<Mutex<Option<Result<IndexedLayer>>>> =
        layers.iter().map(|_| Mutex::new(None)).collect();
    let failed = AtomicBool::new(false);
    rayon::scope_fifo(|scope| {
        for &i in &order {
            let (results, failed) = (&results, &failed);
            scope.spawn_fifo(move |_| {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let r = index_layer(source, &layers[i]);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
            });
        }
    });
    let mut out = Vec::with_capacity(layers.len());
    let mut first_error = None;
    for r in results {
        match r.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(Ok(l)) => out.push(l),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Unpacks `layers` of `source`, bottom first, into `target` with `unpacker` (squashed or in overlay form).
/// Each layer is verified as it is applied; on error `target` holds a partial tree. No checkpoints are
/// recorded (the summaries have none): nothing keeps an index of this pass.
pub fn unpack_layers(
    source: &dyn ImageSource,
    layers: &[LayerSpec],
    unpacker: &mut Unpacker,
) -> Result<Vec<LayerSummary>> {
    let mut summaries = Vec::with_capacity(layers.len());
    for spec in layers {
        unpacker.begin_layer()?;
        let blob = source.open_blob(&spec.digest)?;
        summaries.push(read_layer_unindexed(
            blob.reader,
            spec,
            &mut |entry, data| unpacker.apply(entry, data),
        )?);
    }
    Ok(summaries)
}
