//! `strata copy`: an image from one transport to another, byte for byte or converted.
//!
//! This crate owns [`copy`]: it reads the source's top manifest, chooses what to copy as skopeo does
//! ([`MultiArch`]: one platform's image, every instance with the index, or the index alone), writes every
//! blob the destination lacks (asking it first: a registry has it, or mounts it from the source's
//! repository), several at once, streamed and verified against its digest, then the manifests — instances
//! before the index — and commits. A failure aborts the destination, which then shows what it showed
//! before. [`CopyHooks`] are the seams for the policy check, called once the source is resolved and before
//! any blob is written, and the signatures step, after the manifests are written and before the commit.
//!
//! It also owns conversion: manifests and configs between Docker v2s2 and OCI ([`ManifestFormat`], written
//! as containers/image writes them, byte for byte), and layers recompressed ([`Recompression`]) or
//! decompressed (a docker archive), each checked against the config's diff ID on the way, with the
//! manifest's layer descriptors rewritten to match; zstd:chunked layers are written by [`chunked`], eStargz
//! layers by [`estargz`] (which changes the tars: their configs are rewritten with the new diff IDs and
//! written after them). Without either, every blob and manifest is the source's.
//!
//! **Invariants:** every byte written was verified against its digest as it was read, and every layer
//! rewritten was checked against its diff ID; nothing is made visible at the destination before every blob and
//! manifest is there.
//!
//! **Must not depend on:** any transport (sources and destinations come as `ImageSource` and
//! `ImageDestination`), the layer engine beyond its `DecompressReader` (ISA-L's gzip inflater), the store,
//! the CLI. It never prints.

pub mod chunked;
mod convert;
mod error;
pub mod estargz;
mod plan;
mod recompress;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use strata_image::{BlobWrite, ImageDestination, ImageSource, ManifestRole, RawManifest};
use strata_oci::{Digest, Platform, VerifyingReader, media::Compression};

pub use convert::{ManifestFormat, oci_config_from_docker};
pub use error::{Error, Result};
use plan::{Change, Plan, PlannedBlob, Target};
pub use recompress::{MAX_GZIP_LEVEL, MAX_ZSTD_LEVEL, check_level};

/// Which images of a multi-image source are copied (skopeo's `--multi-arch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MultiArch {
    /// The image for the chosen platform only, written as the destination's one manifest.
    #[default]
    System,
    /// Every instance, and the index itself (`--all`): the index's digest is kept.
    All,
    /// The index alone (the destination must have its instances already).
    IndexOnly,
}

/// What happened during a copy, for a progress display. Called from the copying threads.
#[derive(Debug, Clone)]
pub enum CopyEvent {
    /// The copy is planned: this many blobs of this many bytes in all.
    Planned {
        /// Blobs to copy.
        blobs: usize,
        /// Their bytes (as stored at the source).
        bytes: u64,
    },
    /// A blob was found at the destination already (or mounted there): nothing was sent.
    BlobSkipped {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Bytes of a blob have been read and written.
    BlobProgress {
        /// The blob (as the source names it).
        digest: Digest,
        /// Bytes read from the source so far.
        read: u64,
        /// Its size at the source.
        size: u64,
    },
    /// A blob is written.
    BlobDone {
        /// The blob (as the source names it).
        digest: Digest,
    },
    /// A manifest is written.
    ManifestWritten {
        /// Its digest.
        digest: Digest,
    },
}

/// The seams other concerns plug into; every method does nothing by default.
pub trait CopyHooks: Sync {
    /// Called once the source's manifests are resolved (`top` as the source names it; `chosen`, the
    /// instance of an index chosen for the platform, if any) and before any blob is written: the
    /// policy check. `rewritten` says the manifests written will differ from the source's (converted,
    /// layers recompressed), so the source's signatures will not sign them. An error stops the copy with
    /// nothing written.
    fn check_source(
        &self,
        source: &dyn ImageSource,
        top: &RawManifest,
        chosen: Option<&RawManifest>,
        rewritten: bool,
    ) -> std::result::Result<(), String> {
        let _ = (source, top, chosen, rewritten);
        Ok(())
    }

    /// Called after every manifest is written and before the commit, with the manifests written in the
    /// order they were (the instances of an index copied with them, in the index's order, then the top
    /// one): the signatures step. An error aborts the copy.
    fn after_manifests(
        &self,
        source: &dyn ImageSource,
        destination: &mut dyn ImageDestination,
        written: &[(RawManifest, ManifestRole)],
    ) -> std::result::Result<(), String> {
        let _ = (source, destination, written);
        Ok(())
    }

    /// A progress event.
    fn event(&self, event: &CopyEvent) {
        let _ = event;
    }
}

/// Hooks that do nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl CopyHooks for NoHooks {}

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// The platform whose image is chosen from an index (without [`MultiArch::All`]).
    pub platform: Platform,
    /// Which images of an index are copied.
    pub multi_arch: MultiArch,
    /// How many more times a blob whose copy failed is copied again (from the start).
    pub blob_retries: u32,
    /// The manifest format to write (`--format`); without it, the source's, unless the destination or the
    /// layers' compression needs the other (a v2s2 image to an OCI layout, zstd layers).
    pub format: Option<ManifestFormat>,
    /// Layers recompressed (`--dest-compress-format`, `--dest-compress-level`).
    pub compression: Option<Recompression>,
    /// Fail rather than write a manifest other than the source's (`--preserve-digests`).
    pub preserve_digests: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            platform: Platform::host(),
            multi_arch: MultiArch::System,
            blob_retries: 0,
            format: None,
            compression: None,
            preserve_digests: false,
        }
    }
}

/// How layers are recompressed: every layer not already in `format` (foreign layers excepted) is
/// decompressed, checked against its diff ID and compressed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recompression {
    /// [`Compression::Gzip`] or [`Compression::Zstd`].
    pub format: Compression,
    /// With a table of contents, readable lazily: zstd:chunked with [`Compression::Zstd`]
    /// ([`chunked::write_zstd_chunked`]), eStargz with [`Compression::Gzip`] ([`estargz::write_estargz`],
    /// which changes the tars, so the config's diff IDs are rewritten). Every layer is rewritten, those
    /// already so compressed too, and its descriptor annotated.
    pub toc: bool,
    /// The level ([`check_level`] says which are valid); the encoder's default without one.
    pub level: Option<i32>,
}

/// One blob of a [`CopyReport`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopiedBlob {
    /// The blob's digest at the source.
    pub digest: String,
    /// Its size at the source.
    pub size: u64,
    /// The destination had it (or mounted it): nothing was sent.
    pub skipped: bool,
    /// Bytes written to the destination.
    pub written: u64,
    /// When the blob was stored under another digest (a layer decompressed, recompressed; a config
    /// converted): its digest there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_as: Option<String>,
}

/// One manifest of a [`CopyReport`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopiedManifest {
    /// Its digest, as written.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// The top manifest (the one the destination name designates), or an instance.
    pub top: bool,
}

/// What [`copy`] did.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The source, as named.
    pub source: String,
    /// The destination, as named.
    pub destination: String,
    /// The digest of the top manifest written.
    pub digest: String,
    /// The manifests written, instances first.
    pub manifests: Vec<CopiedManifest>,
    /// The blobs, in the order planned.
    pub blobs: Vec<CopiedBlob>,
    /// Bytes written to the destination, in all.
    pub bytes_written: u64,
    /// Blobs the destination had already.
    pub skipped: usize,
    /// Seconds in all.
    pub seconds: f64,
}

/// Copies the image `source` names to `destination` (see the crate documentation), then commits it; on
/// any failure the destination is aborted.
///
/// # Errors
/// When the source cannot be read or fails verification, the hooks refuse, the destination cannot hold
/// the image (an index in a docker archive) or cannot be written.
pub fn copy(
    source: &dyn ImageSource,
    destination: &mut dyn ImageDestination,
    options: &CopyOptions,
    hooks: &dyn CopyHooks,
) -> Result<CopyReport> {
    let result = copy_uncommitted(source, destination, options, hooks).and_then(|report| {
        destination.commit()?;
        Ok(report)
    });
    if result.is_err() {
        destination.abort();
    }
    result
}

fn copy_uncommitted(
    source: &dyn ImageSource,
    destination: &mut dyn ImageDestination,
    options: &CopyOptions,
    hooks: &dyn CopyHooks,
) -> Result<CopyReport> {
    let started = Instant::now();
    if let Some(Recompression { format, level, .. }) = options.compression {
        let check = match level {
            Some(level) => check_level(format, level),
            None if format == Compression::None => check_level(format, 0),
            None => Ok(()),
        };
        check.map_err(|what| Error::Unsupported {
            destination: destination.name().to_owned(),
            what,
        })?;
    }
    let target = Target::new(&*destination, options);
    let mut plan = Plan::make(source, options, &target)?;
    let rewritten = plan.rewrites_manifests(&target);
    if rewritten && options.preserve_digests {
        return Err(Error::Unsupported {
            destination: destination.name().to_owned(),
            what: "it needs the manifest converted, and digests are to be preserved (--preserve-digests)"
                .into(),
        });
    }
    if plan.writes_index() && !destination.supports_indexes() {
        return Err(Error::Unsupported {
            destination: destination.name().to_owned(),
            what: "it holds single images, not an index: copy one platform's image (without --all)"
                .into(),
        });
    }
    if let Some(media_type) = plan
        .manifest_types()
        .find(|t| !destination.accepts_manifest_type(t))
    {
        return Err(Error::Unsupported {
            destination: destination.name().to_owned(),
            what: format!("it cannot hold a {media_type} manifest"),
        });
    }
    hooks
        .check_source(source, &plan.top, plan.chosen.as_ref(), rewritten)
        .map_err(|reason| Error::Refused { reason })?;
    hooks.event(&CopyEvent::Planned {
        blobs: plan.blobs.len(),
        bytes: plan.blobs.iter().map(|b| b.size).sum(),
    });
    // Configs that depend on their layers' new diff IDs come once the layers are written.
    let (later, first): (Vec<usize>, Vec<usize>) = (0..plan.blobs.len())
        .partition(|&i| plan.blobs.get(i).is_some_and(|b| b.deferred.is_some()));
    let mut copied: Vec<Option<Copied>> = vec![None; plan.blobs.len()];
    for (phase, indices) in [first, later].into_iter().enumerate() {
        if indices.is_empty() {
            continue;
        }
        if phase == 1 {
            plan.rewrite_configs(&copied)?;
        }
        let batch: Vec<PlannedBlob> = indices
            .iter()
            .filter_map(|&i| plan.blobs.get(i).cloned())
            .collect();
        let done = copy_blobs(source, destination, &batch, options, hooks)?;
        for (i, c) in indices.into_iter().zip(done) {
            if let Some(slot) = copied.get_mut(i) {
                *slot = Some(c);
            }
        }
    }
    let copied: Vec<Copied> = copied.into_iter().map(Option::unwrap_or_default).collect();
    plan.finish(&copied)?;
    let mut manifests = Vec::new();
    for (manifest, role) in plan.manifests() {
        destination.put_manifest(&manifest, role)?;
        hooks.event(&CopyEvent::ManifestWritten {
            digest: manifest.digest.clone(),
        });
        manifests.push((manifest, role));
    }
    let Some((top, _)) = manifests.iter().find(|(_, r)| *r == ManifestRole::Top) else {
        return Err(Error::Unsupported {
            destination: destination.name().to_owned(),
            what: "nothing to copy".into(),
        });
    };
    hooks
        .after_manifests(source, destination, &manifests)
        .map_err(|reason| Error::Refused { reason })?;
    let blobs: Vec<CopiedBlob> = plan
        .blobs
        .iter()
        .zip(&copied)
        .map(|(p, c)| CopiedBlob {
            digest: p.digest.to_string(),
            size: p.size,
            skipped: c.skipped,
            written: c.written,
            stored_as: c.stored.as_ref().map(|s| s.digest.to_string()),
        })
        .collect();
    Ok(CopyReport {
        source: source.name().to_owned(),
        destination: destination.name().to_owned(),
        digest: top.digest.to_string(),
        manifests: manifests
            .iter()
            .map(|(m, role)| CopiedManifest {
                digest: m.digest.to_string(),
                media_type: m.media_type.clone().unwrap_or_default(),
                top: *role == ManifestRole::Top,
            })
            .collect(),
        bytes_written: blobs.iter().map(|b| b.written).sum(),
        skipped: blobs.iter().filter(|b| b.skipped).count(),
        blobs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A blob stored under another digest than the source's.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// Its digest.
    digest: Digest,
    /// Its size.
    size: u64,
    /// The annotations its descriptor takes (zstd:chunked's, eStargz's).
    annotations: BTreeMap<String, String>,
    /// Its new diff ID, when its tar changed (eStargz).
    diff_id: Option<Digest>,
}

/// What became of one planned blob.
#[derive(Debug, Clone, Default)]
pub(crate) struct Copied {
    skipped: bool,
    written: u64,
    /// Where it was stored, when not as the source has it (a layer decompressed or recompressed).
    stored: Option<Stored>,
}

/// Copies the planned blobs, several at once (at most the destination's limit), in plan order.
fn copy_blobs(
    source: &dyn ImageSource,
    destination: &dyn ImageDestination,
    blobs: &[PlannedBlob],
    options: &CopyOptions,
    hooks: &dyn CopyHooks,
) -> Result<Vec<Copied>> {
    let results: Vec<Mutex<Option<Result<Copied>>>> =
        blobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let writers = destination.max_parallel_blobs().clamp(1, 16);
    // Recompressing is work for every core; writing stays within the destination's limit.
    let recompressing = blobs
        .iter()
        .any(|b| matches!(b.change, Change::Compress { .. }));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = if recompressing {
        writers.max(cores.min(16))
    } else {
        writers
    }
    .min(blobs.len());
    let gate = Gate::new(writers);
    // With several writers, configs first: a config is tiny, and sent last it waits for a free writer and
    // then for a registry busy with the layers, a tail of round trips before the manifest can go. One
    // writer keeps the plan's order, which is the order a docker archive's members take (skopeo's).
    let first = |b: &PlannedBlob| writers == 1 || b.config;
    let order: Vec<usize> = (0..blobs.len())
        .filter(|&i| blobs.get(i).is_some_and(first))
        .chain((0..blobs.len()).filter(|&i| blobs.get(i).is_some_and(|b| !first(b))))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let (Some(blob), Some(slot)) = (blobs.get(i), results.get(i)) else {
                        return;
                    };
                    let mut attempt = 0;
                    let result = loop {
                        match copy_blob(source, destination, blob, hooks, &gate) {
                            Err(e) if attempt < options.blob_retries && e.is_retryable() => {
                                attempt += 1;
                            }
                            other => break other,
                        }
                    };
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(blobs.len());
    let mut first_error = None;
    for (slot, blob) in results.into_iter().zip(blobs) {
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(c)) => out.push(c),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {
                first_error.get_or_insert(Error::Interrupted {
                    digest: blob.digest.to_string(),
                });
            }
        }
    }
    match first_error {
        // An error of the blob that failed first is worth more than the "not copied" of those after.
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Counts the bytes read through it, for progress events.
struct Counting<'a, R> {
    inner: R,
    read: u64,
    size: u64,
    digest: &'a Digest,
    hooks: &'a dyn CopyHooks,
    reported: u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read - self.reported >= 1 << 20 || (n == 0 && self.read != self.reported) {
            self.reported = self.read;
            self.hooks.event(&CopyEvent::BlobProgress {
                digest: self.digest.clone(),
                read: self.read,
                size: self.size,
            });
        }
        Ok(n)
    }
}

/// At most so many holders at once (the destination's writers).
struct Gate {
    free: Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Gate {
    fn new(n: usize) -> Gate {
        Gate {
            free: Mutex::new(n),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Runs `f` once a place is free.
    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            while *free == 0 {
                free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
            }
            *free -= 1;
        }
        let out = f();
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.freed.notify_one();
        out
    }
}

fn copy_blob(
    source: &dyn ImageSource,
    destination: &dyn ImageDestination,
    blob: &PlannedBlob,
    hooks: &dyn CopyHooks,
    gate: &Gate,
) -> Result<Copied> {
    if let Some(content) = &blob.content {
        // A converted config: written from memory.
        if gate.with(|| destination.reuse_blob(&blob.digest, blob.size, None))? {
            hooks.event(&CopyEvent::BlobSkipped {
                digest: blob.digest.clone(),
                size: blob.size,
            });
            return Ok(Copied {
                skipped: true,
                written: 0,
                stored: None,
            });
        }
        let mut reader: &[u8] = content;
        let written = gate.with(|| {
            put(
                destination,
                &blob.digest,
                Some(blob.size),
                true,
                &mut reader,
            )
        })?;
        hooks.event(&CopyEvent::BlobDone {
            digest: blob.digest.clone(),
        });
        return Ok(Copied {
            skipped: false,
            written,
            stored: None,
        });
    }
    if blob.change == Change::Keep
        && gate
            .with(|| destination.reuse_blob(&blob.digest, blob.size, source.docker_reference()))?
    {
        hooks.event(&CopyEvent::BlobSkipped {
            digest: blob.digest.clone(),
            size: blob.size,
        });
        return Ok(Copied {
            skipped: true,
            written: 0,
            stored: None,
        });
    }
    // A blob copied as it is to a destination that checks digests itself is not hashed here too.
    let opened = if blob.change == Change::Keep && destination.verifies_blobs() {
        source.open_blob_unhashed(&blob.digest)?
    } else {
        source.open_blob(&blob.digest)?
    };
    if opened.size != blob.size {
        return Err(Error::Source(strata_image::Error::oci(
            source.name(),
            strata_oci::Error::SizeMismatch {
                digest: blob.digest.to_string(),
                expected: blob.size,
                actual: opened.size,
            },
        )));
    }
    let counting = Counting {
        inner: opened.reader,
        read: 0,
        size: blob.size,
        digest: &blob.digest,
        hooks,
        reported: 0,
    };
    let layer_error = |reason: String| Error::Layer {
        digest: blob.digest.to_string(),
        reason,
    };
    let (written, stored) = match (&blob.diff_id, blob.change, blob.compression) {
        (Some(diff_id), Change::Decompress, Compression::Gzip) => {
            let mut reader = VerifyingReader::new(
                flate2::read::MultiGzDecoder::new(counting),
                diff_id.clone(),
                None,
            );
            let n = gate.with(|| put(destination, diff_id, None, blob.config, &mut reader))?;
            (
                n,
                Some(Stored {
                    digest: diff_id.clone(),
                    size: n,
                    annotations: BTreeMap::new(),
                    diff_id: None,
                }),
            )
        }
        (Some(diff_id), Change::Decompress, Compression::Zstd) => {
            let decoder = zstd::stream::read::Decoder::new(counting)
                .map_err(|e| layer_error(e.to_string()))?;
            let mut reader = VerifyingReader::new(decoder, diff_id.clone(), None);
            let n = gate.with(|| put(destination, diff_id, None, blob.config, &mut reader))?;
            (
                n,
                Some(Stored {
                    digest: diff_id.clone(),
                    size: n,
                    annotations: BTreeMap::new(),
                    diff_id: None,
                }),
            )
        }
        (Some(diff_id), Change::Compress { to, level, toc }, from) => {
            let recompress = |sink: &mut dyn std::io::Write| {
                recompress::recompress(counting, from, to, level, toc, diff_id, sink)
            };
            // A destination that keeps blobs as files takes the bytes as they are made; the others are
            // given them from a spool once their digest is known. Recompressing is not writing: it runs
            // outside the writers' gate, on every worker.
            let (made, digest, size, n) = match destination.blob_sink()? {
                Some(mut sink) => {
                    let made = recompress(&mut sink).map_err(layer_error)?;
                    let (digest, size) = sink.keep()?;
                    (made, digest, size, size)
                }
                None => {
                    let (spooled, made) = recompress::spool(recompress).map_err(layer_error)?;
                    let recompress::Spooled {
                        mut file,
                        digest,
                        size,
                    } = spooled;
                    let reused = gate.with(|| {
                        destination.reuse_blob(&digest, size, source.docker_reference())
                    })?;
                    let n = if reused {
                        0
                    } else {
                        gate.with(|| put(destination, &digest, Some(size), false, &mut file))?
                    };
                    (made, digest, size, n)
                }
            };
            (
                n,
                Some(Stored {
                    digest,
                    size,
                    annotations: made.annotations,
                    diff_id: made.diff_id,
                }),
            )
        }
        (None, Change::Decompress | Change::Compress { .. }, _) => {
            return Err(layer_error(
                "no diff ID for a layer changed on the way".into(),
            ));
        }
        _ => {
            let mut reader = counting;
            let n = gate.with(|| {
                put(
                    destination,
                    &blob.digest,
                    Some(blob.size),
                    blob.config,
                    &mut reader,
                )
            })?;
            (n, None)
        }
    };
    hooks.event(&CopyEvent::BlobDone {
        digest: blob.digest.clone(),
    });
    Ok(Copied {
        skipped: false,
        written,
        stored,
    })
}

fn put(
    destination: &dyn ImageDestination,
    digest: &Digest,
    size: Option<u64>,
    config: bool,
    reader: &mut (dyn Read + Send),
) -> Result<u64> {
    Ok(destination.put_blob(BlobWrite {
        digest,
        size,
        config,
        reader,
    })?)
}

/// The distinct digests of `blobs`, in order (a blob shared by instances is copied once).
pub(crate) fn dedup(blobs: Vec<PlannedBlob>) -> Vec<PlannedBlob> {
    let mut seen = HashSet::new();
    blobs
        .into_iter()
        .filter(|b| seen.insert(b.digest.clone()))
        .collect()
}
