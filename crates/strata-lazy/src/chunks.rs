//! [`ChunkContents`]: a lazy layer's file bytes, fetched by range a run of chunks at a time, each chunk
//! decompressed and checked against its digest before a byte of it is served, and kept in a bounded cache
//! shared by the image's layers.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use strata_image::ImageSource;
use strata_layer::{Contents, FileRef};
use strata_oci::Digest;

use crate::error::{Error, Result};
use crate::toc::{MAX_CHUNK_SIZE, TocFormat, read_exact_at};

/// Most compressed bytes one chunk's range may span (its frame or member, and the tar headers that
/// follow it in the same one).
const MAX_CHUNK_RANGE: u64 = 2 * MAX_CHUNK_SIZE;

/// Compressed bytes fetched at once for a read that does not continue the previous one: the chunk read
/// and the chunks after it, up to this much.
const FIRST_WINDOW: u64 = 256 << 10;

/// The most compressed bytes fetched at once; the window doubles up to this while reads go on in order.
const MAX_WINDOW: u64 = 16 << 20;

/// One chunk of a regular file: where its bytes are in the layer's file data and in the blob.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    /// Position of its first byte in the layer's file data (files end to end, in table order).
    pub(crate) start: u64,
    /// Its length, decompressed.
    pub(crate) len: u64,
    /// Offset in the blob of the gzip member or zstd frame it starts in.
    pub(crate) offset: u64,
    /// Where the file's compressed data ends, when the table says (zstd:chunked's `endOffset`); 0 if not.
    pub(crate) end_offset: u64,
    /// Decompressed bytes before it in its member (eStargz's `innerOffset`).
    pub(crate) inner: u64,
    /// The sha256 of its decompressed bytes.
    pub(crate) digest: Digest,
    /// The file it belongs to (an index into the table's paths).
    pub(crate) file: usize,
    /// That file's size.
    pub(crate) file_size: u64,
}

/// The chunks of a layer, checked: ordered, inside the blob's data, each with the end of its
/// compressed range.
#[derive(Debug)]
pub(crate) struct ChunkTable {
    chunks: Vec<Chunk>,
    /// Per chunk, where its compressed range ends.
    ends: Vec<u64>,
    paths: Vec<String>,
}

impl ChunkTable {
    /// Checks `chunks` (in table order) against a blob whose file data ends at `data_end` of `blob_size`
    /// bytes, or says which file's chunk is wrong.
    pub(crate) fn new(
        chunks: Vec<Chunk>,
        paths: Vec<String>,
        data_end: u64,
        blob_size: u64,
    ) -> std::result::Result<ChunkTable, (String, String)> {
        let path = |c: &Chunk| paths.get(c.file).cloned().unwrap_or_default();
        if data_end > blob_size {
            return Err((
                String::new(),
                format!("the table starts past the blob's end ({data_end} > {blob_size})"),
            ));
        }
        let mut ends = vec![data_end; chunks.len()];
        // The next member or frame start after each chunk's, from the end.
        let mut next = data_end;
        for i in (0..chunks.len()).rev() {
            let c = &chunks[i];
            if c.offset >= data_end {
                return Err((
                    path(c),
                    format!(
                        "a chunk at byte {} of the blob, past its data (which ends at {data_end})",
                        c.offset
                    ),
                ));
            }
            if c.len > MAX_CHUNK_SIZE {
                return Err((
                    path(c),
                    format!(
                        "a chunk of {} bytes, over the {MAX_CHUNK_SIZE}-byte limit",
                        c.len
                    ),
                ));
            }
            if let Some(later) = chunks.get(i + 1) {
                let ordered =
                    later.offset > c.offset || (later.offset == c.offset && later.inner > c.inner);
                if !ordered {
                    return Err((
                        path(later),
                        format!(
                            "its chunk at byte {} of the blob overlaps or precedes the one before it (byte {})",
                            later.offset, c.offset
                        ),
                    ));
                }
            }
            let mut end = next;
            let last_of_file = chunks.get(i + 1).is_none_or(|n| n.file != c.file);
            if c.end_offset != 0 && last_of_file {
                if c.end_offset <= c.offset || c.end_offset > next {
                    return Err((
                        path(c),
                        format!(
                            "its data ends at byte {}, outside bytes {}..{next} of the blob",
                            c.end_offset, c.offset
                        ),
                    ));
                }
                end = c.end_offset;
            }
            if end - c.offset > MAX_CHUNK_RANGE {
                return Err((
                    path(c),
                    format!("a chunk spans {} compressed bytes", end - c.offset),
                ));
            }
            ends[i] = end;
            if c.inner == 0 {
                next = c.offset;
            }
        }
        Ok(ChunkTable {
            chunks,
            ends,
            paths,
        })
    }

    /// The chunk holding data position `pos`.
    fn locate(&self, pos: u64) -> Option<usize> {
        let i = self
            .chunks
            .partition_point(|c| c.start <= pos)
            .checked_sub(1)?;
        let c = self.chunks.get(i)?;
        (pos < c.start + c.len).then_some(i)
    }

    fn path(&self, i: usize) -> &str {
        self.chunks
            .get(i)
            .and_then(|c| self.paths.get(c.file))
            .map_or("", String::as_str)
    }
}

/// Verified chunks of several layers, by (layer, chunk), least recently used dropped first; at most one
/// fetch of a chunk at a time.
#[derive(Debug)]
pub(crate) struct ChunkCache {
    capacity: u64,
    state: Mutex<CacheState>,
    loaded: Condvar,
    next_layer: AtomicU64,
}

/// A chunk's key in the cache: (layer, chunk).
type Key = (u64, usize);

#[derive(Debug, Default)]
struct CacheState {
    /// Each chunk with when it was last used.
    map: HashMap<Key, (Arc<Vec<u8>>, u64)>,
    bytes: u64,
    tick: u64,
    loading: HashSet<Key>,
}

impl ChunkCache {
    /// A cache of at most `capacity` bytes (one chunk more while it is being handed out).
    pub(crate) fn new(capacity: u64) -> ChunkCache {
        ChunkCache {
            capacity,
            state: Mutex::new(CacheState::default()),
            loaded: Condvar::new(),
            next_layer: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, state: &mut CacheState, key: Key, data: Arc<Vec<u8>>) {
        state.tick += 1;
        let len = data.len() as u64;
        if let Some((old, _)) = state.map.insert(key, (data, state.tick)) {
            state.bytes -= old.len() as u64;
        }
        state.bytes += len;
        while state.bytes > self.capacity && state.map.len() > 1 {
            let Some(oldest) = state
                .map
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((old, _)) = state.map.remove(&oldest) {
                state.bytes -= old.len() as u64;
            }
        }
    }
}

/// Whether a fetch continues the last one, and how far the next one reaches.
#[derive(Debug)]
struct Window {
    /// The chunk after the last one fetched.
    next: usize,
    /// Compressed bytes the next fetch may cover.
    bytes: u64,
}

/// The file bytes of one lazily read layer (see the module docs). Serves reads for its own layer only.
pub(crate) struct ChunkContents {
    source: Arc<dyn ImageSource>,
    digest: Digest,
    format: TocFormat,
    table: ChunkTable,
    cache: Arc<ChunkCache>,
    id: u64,
    window: Mutex<Window>,
}

impl ChunkContents {
    /// The contents of layer `digest` of `source` in `format`, whose chunks `table` lists, caching in
    /// `cache`.
    pub(crate) fn new(
        source: Arc<dyn ImageSource>,
        digest: Digest,
        format: TocFormat,
        table: ChunkTable,
        cache: Arc<ChunkCache>,
    ) -> ChunkContents {
        let id = cache.next_layer.fetch_add(1, Ordering::Relaxed);
        ChunkContents {
            source,
            digest,
            format,
            table,
            cache,
            id,
            window: Mutex::new(Window {
                next: usize::MAX,
                bytes: FIRST_WINDOW,
            }),
        }
    }

    fn error(&self, i: usize, reason: String) -> Error {
        Error::Chunk {
            layer: self.digest.to_string(),
            path: self.table.path(i).to_owned(),
            reason,
        }
    }

    /// Chunk `i`, verified: from the cache, from another thread fetching it, or fetched here with the
    /// chunks after it that the window reaches.
    fn chunk(&self, i: usize) -> Result<Arc<Vec<u8>>> {
        let key = (self.id, i);
        let mut state = self.cache.lock();
        loop {
            let state_now = &mut *state;
            if let Some((data, used)) = state_now.map.get_mut(&key) {
                state_now.tick += 1;
                *used = state_now.tick;
                return Ok(Arc::clone(data));
            }
            if !state.loading.contains(&key) {
                break;
            }
            state = self
                .cache
                .loaded
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let last = self.run_end(i, &state);
        for k in i..last {
            state.loading.insert((self.id, k));
        }
        drop(state);
        let fetched = self.fetch(i, last);
        let mut state = self.cache.lock();
        for k in i..last {
            state.loading.remove(&(self.id, k));
        }
        let result = match fetched {
            Ok(chunks) => {
                let mut first = None;
                for (k, data) in (i..).zip(chunks) {
                    if k == i {
                        first = Some(Arc::clone(&data));
                    }
                    self.cache.insert(&mut state, (self.id, k), data);
                }
                first.ok_or_else(|| self.error(i, "the chunk was not fetched".into()))
            }
            Err(e) => Err(e),
        };
        drop(state);
        self.cache.loaded.notify_all();
        result
    }

    /// The end (exclusive) of the run of chunks fetched with chunk `i`: those after it whose compressed
    /// ranges follow on, none cached or being fetched, within the window.
    fn run_end(&self, i: usize, state: &CacheState) -> usize {
        let budget = {
            let mut w = self
                .window
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if w.next == i {
                w.bytes = (w.bytes * 2).min(MAX_WINDOW);
            } else {
                w.bytes = FIRST_WINDOW;
            }
            w.bytes
        };
        let start = self.table.chunks[i].offset;
        let mut end = i + 1;
        while let Some(c) = self.table.chunks.get(end) {
            let reach = self.table.ends[end];
            let key = (self.id, end);
            if reach - start > budget
                || c.offset > self.table.ends[end - 1]
                || state.map.contains_key(&key)
                || state.loading.contains(&key)
            {
                break;
            }
            end += 1;
        }
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.next = end;
        end
    }

    /// Fetches chunks `i..last` with one range request and verifies each.
    fn fetch(&self, i: usize, last: usize) -> Result<Vec<Arc<Vec<u8>>>> {
        let start = self.table.chunks[i].offset;
        let end = self.table.ends[last - 1].max(self.table.ends[i]);
        let bytes = read_exact_at(self.source.as_ref(), &self.digest, start, end - start)?;
        (i..last)
            .map(|k| {
                let c = &self.table.chunks[k];
                // Inside the fetched range: the table keeps offsets ordered and ends inside the data.
                let from = usize::try_from(c.offset - start).unwrap_or(usize::MAX);
                let to = usize::try_from(self.table.ends[k] - start).unwrap_or(usize::MAX);
                let range = bytes.get(from..to).ok_or_else(|| {
                    self.error(
                        k,
                        format!("chunk at byte {} lies outside the range fetched", c.offset),
                    )
                })?;
                self.decode(k, range).map(Arc::new)
            })
            .collect()
    }

    /// Decompresses chunk `k` from `compressed` (its member or frame onwards) and checks its digest.
    fn decode(&self, k: usize, compressed: &[u8]) -> Result<Vec<u8>> {
        let c = &self.table.chunks[k];
        let mut reader: Box<dyn Read> = match self.format {
            TocFormat::Estargz => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
            TocFormat::ZstdChunked => Box::new(
                zstd::stream::read::Decoder::with_buffer(compressed)
                    .map_err(|e| self.error(k, format!("zstd: {e}")))?,
            ),
        };
        let at = format!("the chunk at byte {} of the file", c.start);
        let skipped = io::copy(&mut (&mut reader).take(c.inner), &mut io::sink())
            .map_err(|e| self.error(k, format!("{at} does not decompress: {e}")))?;
        // At most MAX_CHUNK_SIZE (checked by the table).
        let mut data = Vec::with_capacity(usize::try_from(c.len).unwrap_or(0));
        reader
            .take(c.len)
            .read_to_end(&mut data)
            .map_err(|e| self.error(k, format!("{at} does not decompress: {e}")))?;
        if skipped != c.inner || data.len() as u64 != c.len {
            return Err(self.error(
                k,
                format!(
                    "{at} decompresses to fewer than the {} bytes the table says",
                    c.len
                ),
            ));
        }
        let actual = Digest::of(c.digest.algorithm(), &data);
        if actual != c.digest {
            return Err(self.error(
                k,
                format!("{at} has digest {actual}, the table says {}", c.digest),
            ));
        }
        Ok(data)
    }
}

impl Contents for ChunkContents {
    fn read_at(
        &self,
        file: &FileRef<'_>,
        offset: u64,
        buf: &mut [u8],
    ) -> strata_layer::Result<usize> {
        let left = file.size.saturating_sub(offset);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < want {
            let pos = file
                .offset
                .saturating_add(offset)
                .saturating_add(done as u64);
            let i = self.table.locate(pos).ok_or_else(|| Error::Chunk {
                layer: self.digest.to_string(),
                path: String::from_utf8_lossy(file.path).into_owned(),
                reason: format!("no chunk holds byte {} of the file", offset + done as u64),
            })?;
            let data = self.chunk(i)?;
            let c = &self.table.chunks[i];
            let within = usize::try_from(pos - c.start).unwrap_or(usize::MAX);
            let available = data.get(within..).unwrap_or_default();
            if available.is_empty() {
                return Err(self
                    .error(i, "a chunk shorter than the table says".into())
                    .into());
            }
            let n = available.len().min(want - done);
            buf[done..done + n].copy_from_slice(&available[..n]);
            done += n;
        }
        Ok(want)
    }
}
