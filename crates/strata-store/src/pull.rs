//! Pulling an image into the store.
//!
//! 1. The image's layer IDs are computed from the config's diff IDs (no blob is read for that); layers the
//!    store already has are reused.
//! 2. The missing layers are unpacked **in parallel** (rayon, one task per layer), each in one pass of the
//!    layer engine straight into a staging directory's `diff/` in overlay form, while the same pass builds
//!    the layer's index and records its tar-split. No store lock is held meanwhile.
//! 3. Under the store's exclusive locks, each new layer is recorded with the `incomplete` flag, its `diff/`,
//!    tar-split and index are renamed into place (`overlay/<id>`, `overlay-layers/<id>.tar-split.gz`,
//!    `overlay-layers/<id>/strata.index`), the flags are cleared, and the image record and its big-data
//!    items (manifest, config, signatures) are written. A pull killed at any point leaves nothing visible
//!    after the next open: a staging directory is removed, an `incomplete` layer deleted.
//!
//! A hardlink to a file of a lower layer needs that layer's files; a layer whose parents are not all in the
//! store yet is first unpacked without them, and if that fails on such a link it is unpacked again once its
//! parents are staged, with their `diff/` directories as `lowers` (the target is copied, as containers/image
//! cannot do on overlay).
//!
//! The tar-split is recorded from a copy of the blob's bytes, decompressed a second time on a thread of its
//! own (the blob is read once). When the layer engine hands out the raw tar stream of its pass, the
//! [`TarSplitWriter`] takes that directly.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value, json};
use strata_image::{ImageSource, ResolvedImage};
use strata_index::{IndexWriter, LayerInfo as IndexLayerInfo};
use strata_layer::unpack::{Mode, UnpackOptions, Unpacker};
use strata_layer::{LayerSpec, LayerSummary, read_layer_with_tar, source_layer_specs};
use strata_oci::Digest;
use strata_oci::media::Compression;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{create_dir_mode, move_file, remove_all, write_atomic_mkdir};
use crate::ids::{chain_ids, is_link_id, new_link_id};
use crate::model::{INCOMPLETE_FLAG, ImageRecord, LayerRecord};
use crate::staging::Staging;
use crate::store::{Store, Txn};
use crate::tarsplit::{TarSplitSummary, TarSplitWriter};
use crate::time::rfc3339_nano;

/// The big-data key strata keeps each layer's index under (`overlay-layers/<id>/strata.index`).
pub const INDEX_BIG_DATA_KEY: &str = "strata.index";

/// How many times a pull goes back to unpack layers that vanished (another process removed them) between
/// its check and its commit.
const MAX_ROUNDS: usize = 4;

/// Options of [`Store::pull`].
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Names to give the image (full names, see [`crate::normalise_name`]), put in front of the names it
    /// already has (as containers/storage's `AddNames`); taken from other images that have them.
    pub names: Vec<String>,
    /// The source's signatures of the pulled manifest, as containers/image's signature blobs: kept as
    /// podman keeps them (big-data `signatures` and `signature-<hex>`, their sizes in the image's
    /// metadata), so that podman, skopeo and strata find them again in the store.
    pub signatures: Vec<Vec<u8>>,
}

/// Progress of a pull, for a display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// The layers are known: `missing` of `layers` must be unpacked.
    Planned {
        /// Layers of the image.
        layers: usize,
        /// Layers the store lacks.
        missing: usize,
    },
    /// Layer `index` (bottom = 0) started unpacking.
    LayerStarted {
        /// Position in the image.
        index: usize,
        /// The blob's digest.
        digest: String,
        /// The blob's size, when known.
        size: Option<u64>,
    },
    /// `bytes` of layer `index`'s blob have been read.
    LayerProgress {
        /// Position in the image.
        index: usize,
        /// Blob bytes read so far.
        bytes: u64,
    },
    /// Layer `index` is unpacked and waits to be committed.
    LayerDone {
        /// Position in the image.
        index: usize,
    },
    /// The new layers and the image are being recorded.
    Committing,
}

/// One layer of a [`PullReport`].
#[derive(Debug, Clone, Serialize)]
pub struct PulledLayer {
    /// The layer ID.
    pub id: String,
    /// The blob digest.
    pub digest: String,
    /// The diff ID.
    pub diff_id: String,
    /// Whether the store already had it.
    pub reused: bool,
    /// Entries written (0 when reused).
    pub entries: u64,
    /// Uncompressed tar size.
    pub tar_size: u64,
    /// Whether a tar-split was recorded (false for a tar with duplicate names, which no tar-split can
    /// describe).
    pub tar_split: bool,
    /// Seconds spent unpacking it.
    pub seconds: f64,
}

/// What [`Store::pull`] did.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// The image ID (the config digest's hex).
    pub image: String,
    /// The manifest digest.
    pub digest: String,
    /// The image's names after the pull.
    pub names: Vec<String>,
    /// The layers, bottom first.
    pub layers: Vec<PulledLayer>,
    /// Seconds in all.
    pub seconds: f64,
    /// Seconds spent under the store's exclusive locks.
    pub locked_seconds: f64,
}

/// A layer unpacked into its staging directory.
struct Staged {
    staging: Staging,
    summary: LayerSummary,
    tar_split: Option<TarSplitSummary>,
    entries: u64,
    elapsed: Duration,
}

impl Staged {
    fn diff(&self) -> PathBuf {
        self.staging.path().join("diff")
    }
}

impl Store {
    /// Pulls the resolved `image` of `source` into the store (docs/FORMAT.md, "The layer store"): layers in
    /// parallel, each unpacked, indexed and tar-split in one pass, then committed under the store's locks.
    /// `progress` is called from the worker threads.
    pub fn pull(
        &self,
        source: &dyn ImageSource,
        image: &ResolvedImage,
        options: &PullOptions,
        progress: &(dyn Fn(&PullEvent) + Sync),
    ) -> Result<PullReport> {
        let started = Instant::now();
        // A source that is itself a store serves its layers by diff ID.
        let specs = source_layer_specs(source, image)?;
        let diff_ids: Vec<Digest> = specs
            .iter()
            .map(|s| {
                s.diff_id.clone().ok_or_else(|| Error::Invalid {
                    what: s.digest.to_string(),
                    reason: "the config has no diff ID for this layer".into(),
                })
            })
            .collect::<Result<_>>()?;
        let ids = chain_ids(&diff_ids);
        let config_digest = Digest::try_from(image.manifest.config().digest())?;
        let image_id = config_digest.hex().to_owned();

        let mut staged: BTreeMap<usize, Staged> = BTreeMap::new();
        let mut locked = Duration::ZERO;
        for round in 0..MAX_ROUNDS {
            let present: Vec<bool> = {
                let tx = self.read()?;
                ids.iter()
                    .map(|id| tx.complete_layer(id).is_some())
                    .collect()
            };
            let missing: Vec<usize> = (0..ids.len())
                .filter(|i| !present[*i] && !staged.contains_key(i))
                .collect();
            if round == 0 {
                progress(&PullEvent::Planned {
                    layers: ids.len(),
                    missing: missing.len(),
                });
            }
            self.stage_all(
                source,
                &specs,
                &ids,
                &present,
                &missing,
                &mut staged,
                progress,
            )?;

            progress(&PullEvent::Committing);
            let lock_started = Instant::now();
            let mut tx = self.write()?;
            let gone: Vec<usize> = (0..ids.len())
                .filter(|&i| tx.complete_layer(&ids[i]).is_none() && !staged.contains_key(&i))
                .collect();
            if !gone.is_empty() {
                // Removed by someone else since we looked: unpack those too, then commit.
                drop(tx);
                locked += lock_started.elapsed();
                continue;
            }
            let reused: Vec<bool> = ids
                .iter()
                .map(|id| tx.complete_layer(id).is_some())
                .collect();
            let committed = self.commit_layers(&mut tx, &specs, &ids, &reused, &mut staged);
            let committed = match committed {
                Ok(c) => c,
                Err(e) => {
                    let new: Vec<String> = (0..ids.len())
                        .filter(|&i| !reused[i])
                        .map(|i| ids[i].clone())
                        .filter(|id| tx.layer(id).is_some_and(LayerRecord::is_incomplete))
                        .collect();
                    let _ = tx.delete_layers(&new);
                    return Err(e);
                }
            };
            let names = self.commit_image(&mut tx, image, &image_id, &ids, options)?;
            drop(tx);
            locked += lock_started.elapsed();
            let layers = (0..ids.len())
                .map(|i| {
                    let c = committed.get(&i);
                    PulledLayer {
                        id: ids[i].clone(),
                        digest: specs[i].digest.to_string(),
                        diff_id: diff_ids[i].to_string(),
                        reused: reused[i],
                        entries: c.map_or(0, |c| c.0),
                        tar_size: c.map_or(0, |c| c.1),
                        tar_split: c.is_none_or(|c| c.2),
                        seconds: c.map_or(0.0, |c| c.3),
                    }
                })
                .collect();
            return Ok(PullReport {
                image: image_id,
                digest: image.top.digest.to_string(),
                names,
                layers,
                seconds: started.elapsed().as_secs_f64(),
                locked_seconds: locked.as_secs_f64(),
            });
        }
        Err(Error::InUse {
            what: format!("image {image_id}"),
            reason: format!(
                "its layers kept disappearing while it was pulled ({MAX_ROUNDS} attempts); another process is \
                 removing them"
            ),
        })
    }

    /// Unpacks layers `missing` into staging directories, in parallel; see the module docs for hardlinks
    /// into lower layers.
    #[allow(clippy::too_many_arguments)]
    fn stage_all(
        &self,
        source: &dyn ImageSource,
        specs: &[LayerSpec],
        ids: &[String],
        present: &[bool],
        missing: &[usize],
        staged: &mut BTreeMap<usize, Staged>,
        progress: &(dyn Fn(&PullEvent) + Sync),
    ) -> Result<()> {
        if missing.is_empty() {
            return Ok(());
        }
        let layout = self.layout();
        // The store's diffs of all parents, nearest first, if they are all there; else none.
        let lowers_in_store = |i: usize| -> Vec<PathBuf> {
            if (0..i).all(|j| present[j]) {
                (0..i).rev().map(|j| layout.diff(&ids[j])).collect()
            } else {
                Vec::new()
            }
        };
        // The first layer to fail for good stops the others' downloads: the pull fails anyway.
        let abort = Arc::new(AtomicBool::new(false));
        let failed_first = AtomicUsize::new(usize::MAX);
        let retryable = |i: usize, e: &Error| {
            i > 0 && matches!(e, Error::Layer(strata_layer::Error::Unpack { .. }))
        };
        let results: Vec<(usize, Result<Staged>)> = missing
            .par_iter()
            .map(|&i| {
                let r = self.stage_layer(
                    source,
                    &specs[i],
                    i,
                    lowers_in_store(i),
                    progress,
                    Arc::clone(&abort),
                );
                if let Err(e) = &r
                    && !retryable(i, e)
                    && !abort.swap(true, Ordering::SeqCst)
                {
                    failed_first.store(i, Ordering::SeqCst);
                }
                (i, r)
            })
            .collect();
        let failed_first = failed_first.load(Ordering::SeqCst);
        let mut retry = Vec::new();
        let mut first_error = None;
        for (i, r) in results {
            match r {
                Ok(s) => {
                    staged.insert(i, s);
                }
                Err(e) if retryable(i, &e) => retry.push(i),
                // The layer that failed first, not those it stopped.
                Err(e) if i == failed_first => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // Layers that need files of lower layers: again, bottom first, with every parent's files.
        retry.sort_unstable();
        for i in retry {
            let lowers: Vec<PathBuf> = (0..i)
                .rev()
                .map(|j| {
                    staged
                        .get(&j)
                        .map_or_else(|| layout.diff(&ids[j]), Staged::diff)
                })
                .collect();
            let s = self.stage_layer(
                source,
                &specs[i],
                i,
                lowers,
                progress,
                Arc::new(AtomicBool::new(false)),
            )?;
            staged.insert(i, s);
        }
        Ok(())
    }

    /// Unpacks one layer into a fresh staging directory: `diff/` in overlay form, `strata.index`, and
    /// `tar-split.gz`, all from one read of the blob. Reading the blob stops with an error once `abort` is
    /// set (another layer of the pull failed).
    fn stage_layer(
        &self,
        source: &dyn ImageSource,
        spec: &LayerSpec,
        index: usize,
        lowers: Vec<PathBuf>,
        progress: &(dyn Fn(&PullEvent) + Sync),
        abort: Arc<AtomicBool>,
    ) -> Result<Staged> {
        let started = Instant::now();
        progress(&PullEvent::LayerStarted {
            index,
            digest: spec.digest.to_string(),
            size: spec.size,
        });
        let staging = Staging::create(self.layout())?;
        let diff = staging.path().join("diff");
        create_dir_mode(&diff, 0o755)?;
        let mut opts = UnpackOptions::new(Mode::Overlay);
        opts.lowers = lowers;
        let mut unpacker = Unpacker::new(&diff, opts)?;

        let blob = source.open_blob(&spec.digest)?;
        let ts_path = staging.path().join("tar-split.gz");
        let ts_file = File::create(&ts_path).at(&ts_path)?;
        let mut recorder = TarSplitWriter::new(flate2::write::GzEncoder::new(
            BufWriter::new(ts_file),
            flate2::Compression::fast(),
        ));
        let read = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: blob.reader,
            read: Arc::clone(&read),
            abort,
        };
        let mut writer = IndexWriter::new();
        let mut reported: u64 = 0;
        let mut entries: u64 = 0;
        let summary = read_layer_with_tar(
            Box::new(counting),
            spec,
            &mut |entry, data| {
                writer.push(entry.clone());
                entries += 1;
                let now = read.load(Ordering::Relaxed);
                if now >= reported + (1 << 20) {
                    reported = now;
                    progress(&PullEvent::LayerProgress { index, bytes: now });
                }
                unpacker.apply(entry, data)
            },
            &mut recorder,
        );
        let summary = summary?;
        let recorded = finish_tar_split(recorder);
        unpacker.finish()?;
        for checkpoint in &summary.checkpoints {
            writer.add_checkpoint(checkpoint.clone());
        }
        writer.set_spans(summary.spans.clone());
        writer.set_layer(IndexLayerInfo {
            blob_digest: spec.digest.to_string(),
            diff_id: summary.diff_id.to_string(),
            media_type: spec.media_type.clone(),
            compression: match summary.compression {
                Compression::None => IndexLayerInfo::COMPRESSION_NONE,
                Compression::Gzip => IndexLayerInfo::COMPRESSION_GZIP,
                Compression::Zstd => IndexLayerInfo::COMPRESSION_ZSTD,
            },
            blob_size: summary.blob_size,
            tar_size: summary.tar_size,
        });
        writer.write(staging.path().join(INDEX_BIG_DATA_KEY))?;
        // A tar-split that could not be recorded (a tar the recorder cannot follow, duplicate names) is left
        // out: containers/storage then re-creates the tar from the directory.
        let tar_split = match recorded {
            Ok(ts) if ts.duplicate.is_none() && ts.tar_size == summary.tar_size => Some(ts),
            _ => {
                remove_all(&ts_path)?;
                None
            }
        };
        progress(&PullEvent::LayerProgress {
            index,
            bytes: summary.blob_size,
        });
        progress(&PullEvent::LayerDone { index });
        Ok(Staged {
            staging,
            summary,
            tar_split,
            entries,
            elapsed: started.elapsed(),
        })
    }

    /// Records the staged layers and moves their files into place (module docs, step 3). Returns, per
    /// committed layer, (entries, tar size, tar-split recorded, seconds).
    fn commit_layers(
        &self,
        tx: &mut Txn<'_>,
        specs: &[LayerSpec],
        ids: &[String],
        reused: &[bool],
        staged: &mut BTreeMap<usize, Staged>,
    ) -> Result<BTreeMap<usize, (u64, u64, bool, f64)>> {
        let layout = self.layout();
        let now = rfc3339_nano(SystemTime::now());
        let mut done = BTreeMap::new();
        let new: Vec<usize> = (0..ids.len()).filter(|&i| !reused[i]).collect();
        if new.is_empty() {
            return Ok(done);
        }
        // 1. Records first, flagged incomplete, before any file is touched.
        for &i in &new {
            let Some(s) = staged.get(&i) else {
                return Err(Error::damaged(
                    &ids[i],
                    "internal error: a layer to commit was not staged",
                ));
            };
            let mut flags = Map::new();
            flags.insert(INCOMPLETE_FLAG.into(), Value::Bool(true));
            let (uids, gids) = s
                .tar_split
                .as_ref()
                .map(|t| {
                    (
                        t.uids.iter().copied().collect(),
                        t.gids.iter().copied().collect(),
                    )
                })
                .unwrap_or_default();
            tx.layers.retain(|l| l.id != ids[i]);
            tx.layers.push(LayerRecord {
                id: ids[i].clone(),
                parent: if i == 0 {
                    String::new()
                } else {
                    ids[i - 1].clone()
                },
                created: now.clone(),
                compressed_diff_digest: specs[i].digest.to_string(),
                compressed_size: s.summary.blob_size as i64,
                diff_digest: s.summary.diff_id.to_string(),
                diff_size: s.summary.tar_size as i64,
                compression: match s.summary.compression {
                    Compression::None => 0,
                    Compression::Gzip => 2,
                    Compression::Zstd => 4,
                },
                uids,
                gids,
                flags,
                big_data_names: vec![INDEX_BIG_DATA_KEY.to_owned()],
                ..LayerRecord::default()
            });
        }
        tx.save_layers()?;
        // 2. Files into place, bottom first (a child's `lower` names its parent's link).
        for &i in &new {
            let Some(s) = staged.remove(&i) else { continue };
            let id = &ids[i];
            let parent = (i > 0).then(|| ids[i - 1].as_str());
            let dir = layout.layer_dir(id);
            remove_all(&dir)?;
            create_dir_mode(&dir, 0o700)?;
            let diff = layout.diff(id);
            fs::rename(s.diff(), &diff).at(&diff)?;
            set_diff_root(&diff, parent.map(|p| layout.diff(p)))?;
            let link = loop {
                let l = new_link_id();
                if fs::symlink_metadata(layout.link(&l)).is_err() {
                    break l;
                }
            };
            write_atomic_mkdir(&dir.join("link"), link.as_bytes(), 0o644)?;
            std::os::unix::fs::symlink(format!("../{id}/diff"), layout.link(&link))
                .at(layout.link(&link))?;
            match parent {
                Some(p) => {
                    let lower = lower_of_child(layout, p)?;
                    write_atomic_mkdir(&dir.join("lower"), lower.as_bytes(), 0o644)?;
                }
                None => create_dir_mode(&dir.join("empty"), 0o700)?,
            }
            create_dir_mode(&dir.join("work"), 0o700)?;
            create_dir_mode(&dir.join("merged"), 0o700)?;
            let has_tar_split = s.tar_split.is_some();
            if has_tar_split {
                let ts = layout.tar_split(id);
                move_file(&s.staging.path().join("tar-split.gz"), &ts, 0o600)?;
            }
            let data = layout.layer_data_dir(id);
            create_dir_mode(&data, 0o700)?;
            let index = layout.layer_big_data(id, INDEX_BIG_DATA_KEY);
            move_file(&s.staging.path().join(INDEX_BIG_DATA_KEY), &index, 0o600)?;
            done.insert(
                i,
                (
                    s.entries,
                    s.summary.tar_size,
                    has_tar_split,
                    s.elapsed.as_secs_f64(),
                ),
            );
        }
        // 3. Complete.
        for l in tx.layers.iter_mut().filter(|l| ids.contains(&l.id)) {
            l.flags.remove(INCOMPLETE_FLAG);
        }
        tx.save_layers()?;
        Ok(done)
    }

    /// Creates or updates the image record and writes its big-data items, as containers/image does:
    /// the config under `sha256:<config digest>`, the manifest under `manifest-<digest>` and `manifest`
    /// (and the top-level index under `manifest-<its digest>`), the signatures under `signature-<hex>` (and
    /// `signatures`, when there are any).
    fn commit_image(
        &self,
        tx: &mut Txn<'_>,
        image: &ResolvedImage,
        image_id: &str,
        ids: &[String],
        options: &PullOptions,
    ) -> Result<Vec<String>> {
        let layout = self.layout();
        let instance = &image.instance;
        let mut items: Vec<(String, &[u8])> = Vec::new();
        if image.top.digest != instance.digest {
            items.push((format!("manifest-{}", image.top.digest), &image.top.bytes));
        }
        let config_key = format!("sha256:{image_id}");
        items.push((config_key.clone(), &image.config_bytes));
        items.push((format!("manifest-{}", instance.digest), &instance.bytes));
        items.push(("manifest".to_owned(), &instance.bytes));
        let signatures = options.signatures.concat();
        let signature_sizes: Vec<usize> = options.signatures.iter().map(Vec::len).collect();
        items.push((format!("signature-{}", instance.digest.hex()), &signatures));
        if !signatures.is_empty() {
            items.push(("signatures".to_owned(), &signatures));
        }
        // Files first: a crash before the record is saved leaves only files `prune` removes.
        for (key, data) in &items {
            write_atomic_mkdir(&layout.image_big_data(image_id, key), data, 0o600)?;
        }
        tx.take_names(image_id, &options.names);
        let pos = match tx.images.iter().position(|i| i.id == image_id) {
            Some(p) => p,
            None => {
                tx.images.push(ImageRecord {
                    id: image_id.to_owned(),
                    created: image
                        .config
                        .oci
                        .created()
                        .clone()
                        .unwrap_or_else(|| rfc3339_nano(SystemTime::now())),
                    ..ImageRecord::default()
                });
                tx.images.len() - 1
            }
        };
        let record = &mut tx.images[pos];
        record.top_layer = ids.last().cloned().unwrap_or_default();
        record.digest = image.top.digest.to_string();
        // containers/storage's `AddNames`: the new names first, then the image's others.
        let mut names = options.names.clone();
        names.extend(record.names.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        record.names = names;
        let mut history = options.names.clone();
        history.extend(record.names_history.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        history.retain(|n| seen.insert(n.clone()));
        record.names_history = history;
        for (key, data) in &items {
            if !record.big_data_names.contains(key) {
                record.big_data_names.push(key.clone());
            }
            record.big_data_sizes.insert(key.clone(), json!(data.len()));
            record
                .big_data_digests
                .insert(key.clone(), json!(Digest::sha256(data).to_string()));
        }
        let mut metadata: Map<String, Value> =
            serde_json::from_str(&record.metadata).unwrap_or_default();
        let sizes = metadata
            .entry("signatures-sizes")
            .or_insert_with(|| json!({}));
        if let Value::Object(m) = sizes {
            m.insert(instance.digest.to_string(), json!(signature_sizes));
        }
        if !signature_sizes.is_empty() {
            metadata.insert("signature-sizes".to_owned(), json!(signature_sizes));
        }
        record.metadata = Value::Object(metadata).to_string();
        let names = record.names.clone();
        tx.save_images()?;
        Ok(names)
    }
}

impl Store {
    /// The path of layer `id`'s index (big-data item [`INDEX_BIG_DATA_KEY`]), building it first if the
    /// layer has none (a layer another tool pulled): its tar is rebuilt from the tar-split and files,
    /// verified against the diff ID, and indexed (without random-access checkpoints: the store keeps no
    /// blob). The index is recorded like any layer big data, under the exclusive locks.
    pub fn layer_index(&self, id: &str) -> Result<PathBuf> {
        let layout = self.layout();
        let path = layout.layer_big_data(id, INDEX_BIG_DATA_KEY);
        let record = {
            let tx = self.read()?;
            let layer = tx.complete_layer(id).ok_or_else(|| Error::LayerUnknown {
                id: id.to_owned(),
                root: self.root().to_path_buf(),
            })?;
            if layer.big_data_names.iter().any(|k| k == INDEX_BIG_DATA_KEY) && path.is_file() {
                return Ok(path);
            }
            layer.clone()
        };
        let diff_id = Digest::parse(&record.diff_digest)?;
        let staging = Staging::create(layout)?;
        let tar = crate::source::assemble_stream(self.clone(), id.to_owned())?;
        let size = u64::try_from(record.diff_size).ok().filter(|&s| s > 0);
        let verified = strata_oci::VerifyingReader::new(tar, diff_id.clone(), size);
        let mut writer = IndexWriter::new();
        let (_, mut rest) = strata_layer::read_entries(verified, id, &mut |entry, _| {
            writer.push(entry.clone());
            Ok(())
        })?;
        io::copy(&mut rest, &mut io::sink())
            .map_err(|e| Error::damaged(id, format!("rebuilding its tar: {e}")))?;
        let (compression, media_type) = match record.compression {
            2 => (
                IndexLayerInfo::COMPRESSION_GZIP,
                strata_oci::media::OCI_LAYER_GZIP,
            ),
            4 => (
                IndexLayerInfo::COMPRESSION_ZSTD,
                strata_oci::media::OCI_LAYER_ZSTD,
            ),
            _ => (
                IndexLayerInfo::COMPRESSION_NONE,
                strata_oci::media::OCI_LAYER,
            ),
        };
        writer.set_layer(IndexLayerInfo {
            blob_digest: if record.compressed_diff_digest.is_empty() {
                record.diff_digest.clone()
            } else {
                record.compressed_diff_digest.clone()
            },
            diff_id: diff_id.to_string(),
            media_type: media_type.to_owned(),
            compression,
            blob_size: u64::try_from(record.compressed_size).unwrap_or(0),
            tar_size: u64::try_from(record.diff_size).unwrap_or(0),
        });
        let staged = staging.path().join(INDEX_BIG_DATA_KEY);
        writer.write(&staged)?;
        let mut tx = self.write()?;
        let Some(pos) = tx
            .layers
            .iter()
            .position(|l| l.id == id && !l.is_incomplete())
        else {
            return Err(Error::LayerUnknown {
                id: id.to_owned(),
                root: self.root().to_path_buf(),
            });
        };
        create_dir_mode(&layout.layer_data_dir(id), 0o700)?;
        move_file(&staged, &path, 0o600)?;
        if !tx.layers[pos]
            .big_data_names
            .iter()
            .any(|k| k == INDEX_BIG_DATA_KEY)
        {
            tx.layers[pos]
                .big_data_names
                .push(INDEX_BIG_DATA_KEY.to_owned());
            tx.save_layers()?;
        }
        Ok(path)
    }
}

/// Gives a layer's `diff/` root the mode and owner containers/storage gives it: `0555` root for a base
/// layer, the parent's for a child.
fn set_diff_root(diff: &std::path::Path, parent: Option<PathBuf>) -> Result<()> {
    let (mode, owner) = match parent {
        Some(p) => {
            let m = fs::metadata(&p).at(&p)?;
            (m.mode() & 0o7777, Some((m.uid(), m.gid())))
        }
        None => (0o555, None),
    };
    if rustix::process::geteuid().is_root() {
        let (uid, gid) = owner.unwrap_or((0, 0));
        std::os::unix::fs::lchown(diff, Some(uid), Some(gid)).at(diff)?;
    }
    fs::set_permissions(diff, fs::Permissions::from_mode(mode)).at(diff)
}

/// The `lower` file of a child of `parent`: `l/<parent's link>` followed by the parent's own lowers.
fn lower_of_child(layout: &crate::Layout, parent: &str) -> Result<String> {
    let link_path = layout.layer_dir(parent).join("link");
    let link = fs::read_to_string(&link_path).at(&link_path)?;
    let link = link.trim();
    if !is_link_id(link) {
        return Err(Error::damaged(
            parent,
            format!("bad link file {}", link_path.display()),
        ));
    }
    let mut lower = format!("l/{link}");
    let parent_lower = layout.layer_dir(parent).join("lower");
    if let Ok(more) = fs::read_to_string(&parent_lower) {
        let more = more.trim();
        if !more.is_empty() {
            lower.push(':');
            lower.push_str(more);
        }
    }
    Ok(lower)
}

/// Counts the compressed bytes read, for progress.
struct Counting {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
    /// Set when another layer of the pull failed: reading stops.
    abort: Arc<AtomicBool>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(io::Error::other(
                "stopped: another layer of the pull failed",
            ));
        }
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Closes a tar-split recorder: the gzip stream finished and the file synced.
fn finish_tar_split(
    recorder: TarSplitWriter<flate2::write::GzEncoder<BufWriter<File>>>,
) -> io::Result<TarSplitSummary> {
    let (gz, summary) = recorder.finish()?;
    let out = gz.finish()?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_data()?;
    Ok(summary)
}
