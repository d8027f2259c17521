//! Where file bytes come from: the [`Contents`] trait, and [`BlobContents`], which reads them straight from
//! the compressed layer blobs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use strata_index::LayerIndex;
use strata_layer::LayerReader;
use strata_oci::media::Compression;
use strata_source::ImageSource;

use crate::error::{Error, Result};
use crate::tree::FileRef;

/// Size of the decompressed spans [`BlobContents`] caches.
pub const CHUNK: usize = 1 << 20;

/// Default budget of [`BlobContents`]' span cache, in bytes.
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

/// A provider of regular files' bytes. `Send + Sync`: the file system calls it from several threads at
/// once.
pub trait Contents: Send + Sync {
    /// Reads up to `buf.len()` bytes of `file` from `offset` within the file. Returns the number of bytes
    /// read: fewer than asked only at the file's end, 0 at or past it.
    fn read_at(&self, file: &FileRef<'_>, offset: u64, buf: &mut [u8]) -> Result<usize>;
}

/// File bytes read from the compressed layer blobs of an image source.
///
/// [`BlobContents`] reads through each layer's [`LayerReader`] (a checkpoint at most 4 MiB before any
/// offset, a couple of open decoders per layer) and keeps a bounded, least-recently-used cache of
/// decompressed [`CHUNK`]-byte spans of the tar streams, shared by all requests: a small file next to one
/// just read costs a copy, not a decompression, whatever order files are read in, and concurrent readers of
/// one span decompress it once. A reader going through a layer in order is read ahead: worker threads
/// decompress the next checkpoint spans, each from its own checkpoint, in parallel with it. Uncompressed
/// layers are read directly.
///
/// Layers a store keeps unpacked are read by [`crate::DirContents`] instead.
pub struct BlobContents {
    inner: Arc<Inner>,
    /// Read-ahead jobs for the worker threads (which end when this is dropped).
    jobs: mpsc::Sender<Job>,
}

/// What the readers and the read-ahead workers share.
struct Inner {
    layers: Vec<Layer>,
    cache: SpanCache,
    ahead: Mutex<Ahead>,
    /// Checkpoint spans read ahead of a sequential reader.
    window: usize,
}

/// One layer: its reader, and where its checkpoints are (the starts of the spans that can be decompressed
/// independently, hence in parallel).
struct Layer {
    reader: LayerReader<'static>,
    compressed: bool,
    /// Uncompressed offsets of the checkpoints, ascending, starting with 0.
    starts: Vec<u64>,
    tar_size: u64,
}

/// A read-ahead job: load the chunks of checkpoint span `span` of layer `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Job {
    layer: usize,
    span: usize,
}

/// Read-ahead state: the last chunk read per layer, and the jobs queued or running.
#[derive(Default)]
struct Ahead {
    last: HashMap<usize, u64>,
    queued: HashSet<Job>,
}

/// The largest span (in chunks) read ahead: spans larger than this (a zstd layer in one frame) are read
/// only as asked, by the reader's own decoder.
const MAX_AHEAD_CHUNKS: u64 = 8;

impl std::fmt::Debug for BlobContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobContents")
            .field("layers", &self.inner.layers.len())
            .field("cache_chunks", &self.inner.cache.capacity)
            .field("window", &self.inner.window)
            .finish_non_exhaustive()
    }
}

impl BlobContents {
    /// Reads the layers `indexes` describe (bottom first) from `source`, caching up to `cache_bytes` of
    /// decompressed spans (at least one [`CHUNK`]). Sequential reads of compressed layers are read ahead by
    /// a few worker threads (one per CPU, at most 4), each decompressing a later checkpoint span.
    pub fn new(
        source: Arc<dyn ImageSource>,
        indexes: &[LayerIndex],
        cache_bytes: usize,
    ) -> Result<BlobContents> {
        let mut layers = Vec::with_capacity(indexes.len());
        for index in indexes {
            let reader = LayerReader::from_index(Arc::clone(&source), index)?;
            let mut starts: Vec<u64> = std::iter::once(0)
                .chain(reader.checkpoints().iter().map(|c| c.uncompressed_offset))
                .collect();
            starts.sort_unstable();
            starts.dedup();
            layers.push(Layer {
                compressed: reader.compression() != Compression::None,
                reader,
                starts,
                tar_size: index.layer().tar_size,
            });
        }
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        let capacity = (cache_bytes / CHUNK).max(1);
        let inner = Arc::new(Inner {
            layers,
            cache: SpanCache::new(capacity),
            ahead: Mutex::new(Ahead::default()),
            // Keep what is read ahead well inside the cache.
            window: workers.min(capacity / (2 * MAX_AHEAD_CHUNKS as usize)),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        if inner.window > 0 {
            for i in 0..workers {
                let inner = Arc::clone(&inner);
                let rx = Arc::clone(&rx);
                // Without workers, reads are simply not read ahead.
                let _ = std::thread::Builder::new()
                    .name(format!("strata-ahead-{i}"))
                    .spawn(move || {
                        loop {
                            let job = lock(&rx).recv();
                            let Ok(job) = job else { break };
                            inner.run(job);
                        }
                    });
            }
        }
        Ok(BlobContents { inner, jobs: tx })
    }
}

impl Inner {
    /// The chunk-aligned range of chunks of span `span` of `layer`: the chunks whose first byte lies in it.
    fn span_chunks(&self, layer: &Layer, span: usize) -> Option<std::ops::Range<u64>> {
        let c = CHUNK as u64;
        let start = *layer.starts.get(span)?;
        let end = layer
            .starts
            .get(span + 1)
            .copied()
            .unwrap_or(layer.tar_size);
        Some(start.div_ceil(c)..end.div_ceil(c))
    }

    /// Loads chunk `chunk` of layer `layer` into the cache (or finds it there).
    fn chunk(&self, index: usize, layer: &Layer, chunk: u64) -> Result<Arc<[u8]>> {
        self.cache
            .get_or_load(index, chunk, || load_chunk(layer, chunk))
    }

    /// A read-ahead job: every chunk of the span, in order, by one decoder (errors are left for the reader
    /// to meet). All its chunks are claimed first, so that a reader who gets there before them waits for
    /// this decoder instead of starting a second one at the same checkpoint.
    fn run(&self, job: Job) {
        if let Some(layer) = self.layers.get(job.layer)
            && let Some(chunks) = self.span_chunks(layer, job.span)
        {
            let slots: Vec<(u64, Arc<Slot>)> =
                chunks.map(|c| (c, self.cache.slot(job.layer, c))).collect();
            let mut guards: Vec<_> = slots.iter().map(|(_, s)| lock(&s.data)).collect();
            for ((chunk, slot), mut guard) in slots.iter().zip(guards.drain(..)) {
                if guard.is_some() {
                    continue;
                }
                match load_chunk(layer, *chunk) {
                    Ok(data) => *guard = Some(data),
                    Err(_) => {
                        drop(guard);
                        self.cache.forget(job.layer, *chunk, slot);
                        break;
                    }
                }
            }
        }
        lock(&self.ahead).queued.remove(&job);
    }

    /// Notes that chunk `chunk` of `layer` is being read; when that continues a sequential read, queues the
    /// next spans that are not being read ahead yet.
    fn read_ahead(&self, index: usize, layer: &Layer, chunk: u64, jobs: &mpsc::Sender<Job>) {
        let c = CHUNK as u64;
        let mut ahead = lock(&self.ahead);
        let last = ahead.last.insert(index, chunk);
        if last.is_none_or(|l| l.saturating_add(1) != chunk) {
            return;
        }
        let span = layer
            .starts
            .partition_point(|&s| s <= chunk.saturating_mul(c))
            .saturating_sub(1);
        for next in span + 1..=span + self.window {
            let Some(chunks) = self.span_chunks(layer, next) else {
                break;
            };
            if chunks.end.saturating_sub(chunks.start) > MAX_AHEAD_CHUNKS {
                break;
            }
            let job = Job {
                layer: index,
                span: next,
            };
            if !chunks.is_empty() && ahead.queued.insert(job) && jobs.send(job).is_err() {
                ahead.queued.remove(&job);
            }
        }
    }

    fn read_tar(
        &self,
        index: usize,
        at: u64,
        buf: &mut [u8],
        jobs: &mpsc::Sender<Job>,
    ) -> Result<()> {
        let layer = self
            .layers
            .get(index)
            .ok_or_else(|| truncated(index, b""))?;
        if !layer.compressed {
            let n = layer.reader.read_at(at, buf)?;
            return if n == buf.len() {
                Ok(())
            } else {
                Err(truncated(index, b""))
            };
        }
        let mut done = 0;
        while done < buf.len() {
            let pos = at.saturating_add(done as u64);
            let chunk = pos / CHUNK as u64;
            if self.window > 0 {
                self.read_ahead(index, layer, chunk, jobs);
            }
            let span = self.chunk(index, layer, chunk)?;
            // Both fit in usize: within one chunk.
            let within = (pos % CHUNK as u64) as usize;
            let available = span.get(within..).unwrap_or_default();
            if available.is_empty() {
                return Err(truncated(index, b""));
            }
            let n = available.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&available[..n]);
            done += n;
        }
        Ok(())
    }
}

/// Decompresses chunk `chunk` of `layer` (shorter at the end of the tar stream).
fn load_chunk(layer: &Layer, chunk: u64) -> Result<Arc<[u8]>> {
    let mut data = vec![0u8; CHUNK];
    let n = layer
        .reader
        .read_at(chunk.saturating_mul(CHUNK as u64), &mut data)?;
    data.truncate(n);
    Ok(Arc::from(data))
}

fn truncated(layer: usize, path: &[u8]) -> Error {
    Error::Truncated {
        layer,
        path: String::from_utf8_lossy(path).into_owned(),
    }
}

impl Contents for BlobContents {
    fn read_at(&self, file: &FileRef<'_>, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let left = file.size.saturating_sub(offset);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let at = file
            .offset
            .checked_add(offset)
            .ok_or_else(|| truncated(file.layer, file.path))?;
        self.inner
            .read_tar(file.layer, at, &mut buf[..want], &self.jobs)
            .map_err(|e| match e {
                Error::Truncated { layer, .. } => truncated(layer, file.path),
                e => e,
            })?;
        Ok(want)
    }
}

/// One cached span: filled once, by the first reader that needs it, while the others wait.
#[derive(Default)]
struct Slot {
    data: Mutex<Option<Arc<[u8]>>>,
}

/// The least-recently-used cache of decompressed spans, keyed by (layer, chunk number).
struct SpanCache {
    capacity: usize,
    map: Mutex<CacheMap>,
}

#[derive(Default)]
struct CacheMap {
    slots: HashMap<(usize, u64), (Arc<Slot>, u64)>,
    tick: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these structures inconsistent: use them anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SpanCache {
    fn new(capacity: usize) -> SpanCache {
        SpanCache {
            capacity,
            map: Mutex::new(CacheMap::default()),
        }
    }

    /// The slot of (`layer`, `chunk`), made (evicting the least recently used one) if missing.
    fn slot(&self, layer: usize, chunk: u64) -> Arc<Slot> {
        let mut map = lock(&self.map);
        map.tick += 1;
        let tick = map.tick;
        if let Some((slot, used)) = map.slots.get_mut(&(layer, chunk)) {
            *used = tick;
            return Arc::clone(slot);
        }
        if map.slots.len() >= self.capacity
            && let Some(oldest) = map
                .slots
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
        {
            map.slots.remove(&oldest);
        }
        let slot = Arc::new(Slot::default());
        map.slots.insert((layer, chunk), (Arc::clone(&slot), tick));
        slot
    }

    /// Drops `slot` from the cache if it is still the one of (`layer`, `chunk`): a failed load is not kept.
    fn forget(&self, layer: usize, chunk: u64, slot: &Arc<Slot>) {
        let mut map = lock(&self.map);
        if map
            .slots
            .get(&(layer, chunk))
            .is_some_and(|(s, _)| Arc::ptr_eq(s, slot))
        {
            map.slots.remove(&(layer, chunk));
        }
    }

    fn get_or_load(
        &self,
        layer: usize,
        chunk: u64,
        load: impl FnOnce() -> Result<Arc<[u8]>>,
    ) -> Result<Arc<[u8]>> {
        let slot = self.slot(layer, chunk);
        let mut data = lock(&slot.data);
        if let Some(d) = &*data {
            return Ok(Arc::clone(d));
        }
        match load() {
            Ok(d) => {
                *data = Some(Arc::clone(&d));
                Ok(d)
            }
            Err(e) => {
                drop(data);
                self.forget(layer, chunk, &slot);
                Err(e)
            }
        }
    }
}
