//! Where file bytes come from: the [`Contents`] trait, and [`BlobContents`], which reads them straight from
//! the compressed layer blobs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};

use strata_index::LayerIndex;
use strata_layer::LayerReader;
use strata_oci::media::Compression;
use strata_source::ImageSource;

use crate::error::{Error, Result};
use crate::tree::FileRef;

/// Largest decompressed piece [`BlobContents`] caches (each checkpoint span is cut into equal pieces of at
/// most this size).
pub const CHUNK: usize = 1 << 20;

/// Default budget of [`BlobContents`]' piece cache, in bytes.
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
/// [`BlobContents`] reads through each layer's [`LayerReader`]. A layer's tar stream is cut at its
/// checkpoints into spans (about 4 MiB each) that can be decompressed independently, hence in parallel, and
/// each span into equal pieces of at most [`CHUNK`] bytes. Decompressed pieces go into a bounded,
/// least-recently-used cache shared by all requests: a small file next to one just read costs a copy, not a
/// decompression, whatever order files are read in. A piece that lies inside one file leaves the cache
/// once all of it was read (the kernel keeps the file's pages), its memory going to the next piece.
///
/// A span has at most one decoder at a time, with its own open decompressor carrying on from one piece to
/// the next: whoever needs a piece of a span another thread is decoding waits for that piece (or for the
/// other decoder to finish, and then continues where it stopped) instead of decompressing the span's
/// beginning a second time.
///
/// Reads are read ahead on worker threads, each decompressing a span from its checkpoint: as soon as the
/// first read of a file arrives, the spans the rest of the file covers are queued, the rest of the one
/// being read included (one span ahead at first, doubling as the reader moves on, up to two per worker and
/// half the cache; sliding as it goes),
/// and a reader going through files in order also gets the next few spans queued. Queued spans no reader is heading for any
/// more (it went elsewhere) are dropped. Uncompressed layers are read directly.
///
/// Layers a store keeps unpacked are read by [`crate::DirContents`] instead.
pub struct BlobContents {
    inner: Arc<Inner>,
    /// Read-ahead jobs for the worker threads (which end when this is dropped).
    jobs: mpsc::Sender<Job>,
}

/// What the readers and the read-ahead workers share.
struct Inner {
    source: Arc<dyn ImageSource>,
    layers: Vec<Layer>,
    cache: PieceCache,
    /// The span decoders (see [`Inner::span_reader`]).
    decoders: Mutex<Decoders>,
    ahead: Mutex<Ahead>,
    /// Spans read ahead of a sequential reader; 0: no read-ahead at all (no workers).
    window: usize,
    /// Most bytes of spans queued ahead of one reader.
    ahead_bytes: u64,
    /// Most spans queued ahead of the one a reader is in (see [`Stream::ahead`]): enough to keep every
    /// worker busy behind a fast reader, few enough that a program reading only the start of a large file
    /// (`file`, a scanner looking at headers) does not have all of it decompressed.
    ahead_spans: usize,
}

/// One layer: its reader, and where its checkpoints are.
struct Layer {
    reader: LayerReader<'static>,
    compressed: bool,
    /// Uncompressed offsets of the checkpoints, ascending, starting with 0.
    starts: Vec<u64>,
    tar_size: u64,
}

/// Where a checkpoint span lies in the tar stream, and how it is cut into pieces.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
    pieces: u64,
    /// Length of every piece but the last (which may be shorter); at most [`CHUNK`].
    piece_len: u64,
}

impl Span {
    /// Offset and length of piece `p`.
    fn piece(&self, p: u64) -> (u64, usize) {
        let at = self
            .start
            .saturating_add(p.saturating_mul(self.piece_len))
            .min(self.end);
        let len = self.piece_len.min(self.end - at);
        // At most CHUNK.
        (at, usize::try_from(len).unwrap_or(CHUNK))
    }

    fn len(&self) -> u64 {
        self.end - self.start
    }
}

impl Layer {
    /// Span `s`, if the layer has it.
    fn span(&self, s: usize) -> Option<Span> {
        let start = (*self.starts.get(s)?).min(self.tar_size);
        let end = self
            .starts
            .get(s + 1)
            .copied()
            .unwrap_or(self.tar_size)
            .clamp(start, self.tar_size);
        let len = end - start;
        let pieces = len.div_ceil(CHUNK as u64);
        let piece_len = if pieces == 0 { 0 } else { len.div_ceil(pieces) };
        Some(Span {
            start,
            end,
            pieces,
            piece_len,
        })
    }

    /// The span and piece holding tar offset `pos`.
    fn locate(&self, pos: u64) -> Option<Place> {
        if pos >= self.tar_size {
            return None;
        }
        let s = self.starts.partition_point(|&x| x <= pos).checked_sub(1)?;
        let span = self.span(s)?;
        if pos < span.start || pos >= span.end || span.piece_len == 0 {
            return None;
        }
        Some(Place {
            s,
            span,
            p: (pos - span.start) / span.piece_len,
        })
    }
}

/// A piece of a layer's tar stream: piece `p` of span `s`.
#[derive(Debug, Clone, Copy)]
struct Place {
    s: usize,
    span: Span,
    p: u64,
}

/// A read-ahead job: decompress span `span` of layer `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Job {
    layer: usize,
    span: usize,
}

/// Read-ahead state: the streams of reads being followed.
#[derive(Default)]
struct Ahead {
    streams: Vec<Stream>,
    tick: u64,
}

/// A reader going forward through a layer (one file, or files in order): where it is, and how far its
/// spans were queued.
#[derive(Debug, Clone, Copy)]
struct Stream {
    layer: usize,
    /// The span it reads now (the furthest it has read).
    at: usize,
    /// The piece of the span it read last.
    piece: u64,
    /// The last span queued for it (`at` or below: none).
    queued: usize,
    /// Where the content of the file it read last ends.
    file_end: u64,
    /// It went from one file to another: it reads files in order.
    files: bool,
    /// Spans it may have queued past the one it reads: 1 at first, doubling each time it moves on to
    /// the next span, up to [`Inner::ahead_spans`] (as the kernel grows its read-ahead).
    ahead: usize,
    used: u64,
}

/// The span readers of [`Inner::span_reader`], by (layer, span), with when each was last used.
#[derive(Default)]
struct Decoders {
    map: HashMap<(usize, usize), (Arc<LayerReader<'static>>, u64)>,
    tick: u64,
}

/// Span readers kept (each with an open decoder: up to 1 MiB of output and the decompressor's state);
/// the least recently used one is dropped.
const MAX_DECODERS: usize = 12;

/// Streams followed at once; the least recently used one is forgotten.
const MAX_STREAMS: usize = 16;

/// The largest span (in pieces) read ahead: spans larger than this (a zstd layer in one frame) are read
/// only as asked, by the reader's own decoder.
const MAX_AHEAD_CHUNKS: u64 = 8;

/// A reader missing a piece also decodes up to this many missing pieces just before it that it has not
/// asked for yet (its decoder goes through them anyway): requests that arrive out of order find them.
const BACKFILL: u64 = 4;

impl std::fmt::Debug for BlobContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobContents")
            .field("layers", &self.inner.layers.len())
            .field("cache_bytes", &self.inner.cache.capacity)
            .field("window", &self.inner.window)
            .finish_non_exhaustive()
    }
}

impl BlobContents {
    /// Reads the layers `indexes` describe (bottom first) from `source`, caching up to `cache_bytes` of
    /// decompressed pieces (at least one [`CHUNK`]). Reads of compressed layers are read ahead by a few
    /// worker threads (one per CPU, at most 4), each decompressing a later checkpoint span, when the cache
    /// holds at least 16 chunks.
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
        let capacity = cache_bytes.max(CHUNK);
        let inner = Arc::new(Inner {
            source,
            layers,
            decoders: Mutex::new(Decoders::default()),
            cache: PieceCache::new(capacity as u64),
            ahead: Mutex::new(Ahead::default()),
            // Keep what is read ahead well inside the cache.
            window: workers.min(capacity / CHUNK / (2 * MAX_AHEAD_CHUNKS as usize)),
            ahead_bytes: (capacity / 2) as u64,
            ahead_spans: 2 * workers,
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
    /// Piece `at` of layer `index`: from the cache, from the decoder already at work on the span (waiting
    /// for it), or decompressed here, together with the missing pieces from `unasked` on before it (a
    /// reader is about to ask for those: requests arrive out of order).
    fn piece(&self, index: usize, layer: &Layer, at: &Place, unasked: u64) -> Result<Piece> {
        let Place { s, span, p } = *at;
        let mut state = self.cache.lock();
        let from = loop {
            if let Some(piece) = state.get(index, s, p) {
                return Ok(piece);
            }
            if state.busy.insert((index, s)) {
                // This thread decodes the span now; the missing pieces just before `p` too.
                let mut from = p;
                while from > unasked && p - from < BACKFILL && state.needed(&(index, s, from - 1)) {
                    from -= 1;
                }
                break from;
            }
            // Another thread is decoding this span: it may be decoding `p`, or will soon be done.
            state = self.cache.wait(state);
        };
        drop(state);
        self.decode(index, layer, s, &span, from, p)?
            .ok_or_else(|| truncated(index, b""))
    }

    /// Decodes pieces `from..=until` of span `s` of layer `index` into the cache, in order, with one
    /// decoder, and returns piece `until` (`None` if the stream ended before it). The caller has marked
    /// the span busy; this unmarks it.
    fn decode(
        &self,
        index: usize,
        layer: &Layer,
        s: usize,
        span: &Span,
        from: u64,
        until: u64,
    ) -> Result<Option<Piece>> {
        let _busy = Busy {
            cache: &self.cache,
            key: (index, s),
        };
        let reader = self.span_reader(index, layer, s, span);
        let mut last = None;
        for p in from..=until.min(span.pieces.saturating_sub(1)) {
            let (at, len) = span.piece(p);
            let mut buf = self.cache.buffer(len);
            let n = reader.read_at(at, &mut buf)?;
            buf.truncate(n);
            let piece = Arc::new(PieceData {
                bytes: buf,
                copied: AtomicUsize::new(0),
            });
            if p == until {
                self.cache.insert((index, s, p), Arc::clone(&piece));
                last = Some(piece);
            } else {
                // (A piece read already is only gone through.)
                self.cache.offer((index, s, p), piece);
            }
            if n < len {
                // The stream ends here.
                break;
            }
        }
        Ok(last)
    }

    /// The reader of span `s` of layer `index`: one that knows only the span's checkpoint, kept while the
    /// span is being read. Its open decoder carries on from one piece to the next (one per span: the
    /// layer's own reader keeps only a couple, which the decoders of several spans at once would take
    /// from each other, each then starting again from its checkpoint).
    fn span_reader(
        &self,
        index: usize,
        layer: &Layer,
        s: usize,
        span: &Span,
    ) -> Arc<LayerReader<'static>> {
        let mut decoders = lock(&self.decoders);
        decoders.tick += 1;
        let tick = decoders.tick;
        if let Some((reader, used)) = decoders.map.get_mut(&(index, s)) {
            *used = tick;
            return Arc::clone(reader);
        }
        let checkpoints = layer.reader.checkpoints();
        let checkpoint = checkpoints
            .binary_search_by_key(&span.start, |c| c.uncompressed_offset)
            .ok()
            .and_then(|i| checkpoints.get(i))
            .cloned();
        let reader = Arc::new(
            LayerReader::new(
                Arc::clone(&self.source),
                layer.reader.digest().clone(),
                layer.reader.compression(),
                checkpoint.into_iter().collect(),
            )
            .with_tar_size(layer.tar_size)
            // Pieces are cached here, and a span's decoder only goes forward: no history to keep.
            .with_history(0),
        );
        if decoders.map.len() >= MAX_DECODERS
            && let Some(oldest) = decoders
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
        {
            decoders.map.remove(&oldest);
        }
        decoders.map.insert((index, s), (Arc::clone(&reader), tick));
        reader
    }

    /// The first piece of `job`'s span a reader still heads for: the furthest it asked for if it is in the
    /// span, else 0; `None` if no reader heads for the span (any more).
    fn wanted(&self, job: Job) -> Option<u64> {
        lock(&self.ahead)
            .streams
            .iter()
            .filter(|st| st.layer == job.layer && (st.at..=st.queued).contains(&job.span))
            .map(|st| if st.at == job.span { st.piece } else { 0 })
            .min()
    }

    /// A read-ahead job: the span's pieces from the first one a reader still wants (see
    /// [`Inner::wanted`]) that is neither cached nor read already (see [`PieceCache::retire`]) to the last
    /// such one, by one decoder (errors are left for the readers to meet). Skipped when no reader is
    /// heading for the span any more.
    fn run(&self, job: Job) {
        let Some(layer) = self.layers.get(job.layer) else {
            return;
        };
        let Some(span) = layer.span(job.span) else {
            return;
        };
        if span.pieces == 0 {
            return;
        }
        let mut state = self.cache.lock();
        let (from, until) = loop {
            if !state.busy.contains(&(job.layer, job.span)) {
                // (Lock order: the cache's state, then the read-ahead state; never the other way.)
                let Some(wanted) = self.wanted(job) else {
                    return;
                };
                let needed = |p: &u64| state.needed(&(job.layer, job.span, *p));
                let from = (wanted..span.pieces).find(needed);
                let until = (wanted..span.pieces).rev().find(needed);
                match from.zip(until) {
                    Some(range) => {
                        state.busy.insert((job.layer, job.span));
                        break range;
                    }
                    None => return,
                }
            }
            // A reader is decoding a piece of it: take over when it is done.
            state = self.cache.wait(state);
        };
        drop(state);
        let _ = self.decode(job.layer, layer, job.span, &span, from, until);
    }

    /// Notes that piece `at` of layer `index` is being read for a file whose content ends at tar offset
    /// `file_end`, and queues the spans that the reader will want and are not queued yet: the rest of
    /// the span being read and the later spans the rest of the file covers, and, when the read
    /// continues a reader going through files in order, the next [`Inner::window`] spans; at most
    /// [`Stream::ahead`] spans past the one being read, and [`Inner::ahead_bytes`] of them. Returns the first piece of `at`'s span the reader has not asked
    /// for before this one (`at`'s own when there is none, or when it was asked for from elsewhere).
    fn read_ahead(
        &self,
        index: usize,
        layer: &Layer,
        at: &Place,
        file_end: u64,
        jobs: &mpsc::Sender<Job>,
    ) -> u64 {
        let Place { s, span, p } = *at;
        let mut ahead = lock(&self.ahead);
        ahead.tick += 1;
        let tick = ahead.tick;
        // The stream this read continues: one whose queued spans reach `s` (out-of-order requests may
        // come from just behind it).
        let found = ahead.streams.iter().position(|st| {
            st.layer == index && st.at.saturating_sub(1) <= s && s <= st.queued.saturating_add(1)
        });
        let stream = match found {
            Some(i) => &mut ahead.streams[i],
            None => {
                if ahead.streams.len() >= MAX_STREAMS
                    && let Some(i) = (0..ahead.streams.len()).min_by_key(|&i| ahead.streams[i].used)
                {
                    ahead.streams.swap_remove(i);
                }
                ahead.streams.push(Stream {
                    layer: index,
                    at: s,
                    piece: p,
                    queued: s,
                    file_end,
                    files: false,
                    ahead: 1,
                    used: tick,
                });
                let last = ahead.streams.len() - 1;
                let stream = &mut ahead.streams[last];
                // A file going on past this piece: the rest of the span too (a worker decodes it from
                // this piece on, or from the next one if the reader's decoder got there first).
                let piece_end = span.piece(p).0.saturating_add(span.piece_len);
                if p.saturating_add(1) < span.pieces && file_end > piece_end {
                    let _ = jobs.send(Job {
                        layer: index,
                        span: s,
                    });
                }
                stream
            }
        };
        let (was_at, was_piece) = (stream.at, stream.piece);
        let stepped = found.is_some()
            && ((was_at == s && was_piece.saturating_add(1) == p)
                || (was_at.saturating_add(1) == s && p == 0));
        let unasked = match found {
            Some(_) if was_at == s && was_piece < p => was_piece + 1,
            Some(_) if was_at < s => 0,
            _ => p,
        };
        stream.used = tick;
        if stream.file_end != file_end {
            stream.file_end = file_end;
            stream.files = true;
        }
        if s > stream.at || (s == stream.at && p > stream.piece) {
            if s > stream.at {
                stream.ahead = stream.ahead.saturating_mul(2).min(self.ahead_spans);
            }
            stream.at = s;
            stream.piece = p;
        }
        let mut end = file_end;
        if stepped && stream.files {
            // A reader of files in order: the next `window` spans too.
            let next = layer
                .starts
                .get(s.saturating_add(1 + self.window))
                .copied()
                .unwrap_or(layer.tar_size);
            end = end.max(next);
        }
        let mut bytes = 0u64;
        let mut next = s + 1;
        while end > span.end
            && next <= s.saturating_add(stream.ahead)
            && let Some(later) = layer.span(next)
        {
            if later.start >= end || later.pieces > MAX_AHEAD_CHUNKS || later.pieces == 0 {
                break;
            }
            bytes = bytes.saturating_add(later.len());
            if bytes > self.ahead_bytes {
                break;
            }
            if next > stream.queued {
                if jobs
                    .send(Job {
                        layer: index,
                        span: next,
                    })
                    .is_err()
                {
                    break;
                }
                stream.queued = next;
            }
            next += 1;
        }
        unasked
    }

    /// Reads the tar stream of layer `index` from `at` into `buf`, for the file whose content is
    /// `file` (tar offsets).
    fn read_tar(
        &self,
        index: usize,
        at: u64,
        file: std::ops::Range<u64>,
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
            let place = layer.locate(pos).ok_or_else(|| truncated(index, b""))?;
            let unasked = if self.window > 0 {
                self.read_ahead(index, layer, &place, file.end, jobs)
            } else {
                place.p
            };
            let piece = self.piece(index, layer, &place, unasked)?;
            let start = place.span.piece(place.p).0;
            // Within one piece: fits in usize.
            let within = usize::try_from(pos - start).unwrap_or(usize::MAX);
            let available = piece.bytes.get(within..).unwrap_or_default();
            if available.is_empty() {
                return Err(truncated(index, b""));
            }
            let n = available.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&available[..n]);
            done += n;
            // A piece inside one file is read once (the kernel keeps the file's pages): once all of it
            // was, its memory goes to the next piece decoded.
            let end = start.saturating_add(piece.bytes.len() as u64);
            if file.start <= start
                && end <= file.end
                && piece.copied.fetch_add(n, Ordering::Relaxed) + n >= piece.bytes.len()
            {
                self.cache.retire((index, place.s, place.p), piece);
            }
        }
        Ok(())
    }
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
        let range = file.offset..file.offset.saturating_add(file.size);
        self.inner
            .read_tar(file.layer, at, range, &mut buf[..want], &self.jobs)
            .map_err(|e| match e {
                Error::Truncated { layer, .. } => truncated(layer, file.path),
                e => e,
            })?;
        Ok(want)
    }
}

/// A decompressed piece.
type Piece = Arc<PieceData>;

struct PieceData {
    bytes: Vec<u8>,
    /// Bytes copied out of it so far (counted only for pieces inside one file).
    copied: AtomicUsize,
}

/// A piece's key: (layer, span, piece).
type Key = (usize, usize, u64);

/// The least-recently-used cache of decompressed pieces, and which spans are being decoded.
struct PieceCache {
    /// Budget, in bytes.
    capacity: u64,
    state: Mutex<CacheState>,
    /// Signalled when a piece arrives or a span's decoder finishes.
    changed: Condvar,
}

#[derive(Default)]
struct CacheState {
    pieces: HashMap<Key, (Piece, u64)>,
    bytes: u64,
    tick: u64,
    /// The spans (layer, span) a thread is decoding.
    busy: HashSet<(usize, usize)>,
    /// Buffers of evicted pieces, for the next ones.
    spare: Vec<Vec<u8>>,
    /// Pieces dropped once read (see [`PieceCache::retire`]), oldest first: read-ahead skips them.
    retired: HashSet<Key>,
    retired_order: VecDeque<Key>,
}

/// Buffers kept for reuse.
const MAX_SPARE: usize = 16;

/// Retired pieces remembered.
const MAX_RETIRED: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these structures inconsistent: use them anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CacheState {
    /// Whether piece `key` is neither cached nor read already.
    fn needed(&self, key: &Key) -> bool {
        !self.pieces.contains_key(key) && !self.retired.contains(key)
    }

    /// Keeps the buffer of a piece no longer cached, if nobody holds the piece any more.
    fn recycle(&mut self, piece: Piece) {
        if self.spare.len() < MAX_SPARE
            && let Ok(data) = Arc::try_unwrap(piece)
        {
            self.spare.push(data.bytes);
        }
    }

    fn get(&mut self, layer: usize, span: usize, piece: u64) -> Option<Piece> {
        self.tick += 1;
        let tick = self.tick;
        let (data, used) = self.pieces.get_mut(&(layer, span, piece))?;
        *used = tick;
        Some(Arc::clone(data))
    }
}

impl PieceCache {
    fn new(capacity: u64) -> PieceCache {
        PieceCache {
            capacity,
            state: Mutex::new(CacheState::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        lock(&self.state)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, CacheState>) -> MutexGuard<'a, CacheState> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer of `len` bytes to decode into (a spare one if there is one).
    fn buffer(&self, len: usize) -> Vec<u8> {
        let mut buf = lock(&self.state).spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Caches `piece` as `key` (replacing what was there), evicting the least recently used pieces beyond
    /// the budget, and wakes the threads waiting for pieces.
    fn insert(&self, key: Key, piece: Piece) {
        let mut state = self.lock();
        state.retired.remove(&key);
        self.put(state, key, piece);
    }

    /// Caches `piece` as `key` like [`PieceCache::insert`], unless it was read already (see
    /// [`PieceCache::retire`]): then its buffer goes to the next piece.
    fn offer(&self, key: Key, piece: Piece) {
        let mut state = self.lock();
        if state.retired.contains(&key) {
            state.recycle(piece);
            return;
        }
        self.put(state, key, piece);
    }

    fn put(&self, mut state: MutexGuard<'_, CacheState>, key: Key, piece: Piece) {
        state.tick += 1;
        let tick = state.tick;
        state.bytes = state.bytes.saturating_add(piece.bytes.len() as u64);
        if let Some((old, _)) = state.pieces.insert(key, (piece, tick)) {
            state.bytes = state.bytes.saturating_sub(old.bytes.len() as u64);
        }
        while state.bytes > self.capacity && state.pieces.len() > 1 {
            let Some(oldest) = state
                .pieces
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((old, _)) = state.pieces.remove(&oldest) {
                state.bytes = state.bytes.saturating_sub(old.bytes.len() as u64);
                state.recycle(old);
            }
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Drops `piece` (the one cached as `key`, if it still is) from the cache, once all of it was read
    /// for a file it lies within, and keeps its buffer for the next piece unless someone else still
    /// holds it. The kernel keeps the file's pages: read-ahead does not decompress it again (a reader
    /// asking for it again does).
    fn retire(&self, key: Key, piece: Piece) {
        let mut state = self.lock();
        if state.retired.insert(key) {
            state.retired_order.push_back(key);
            if state.retired_order.len() > MAX_RETIRED
                && let Some(old) = state.retired_order.pop_front()
            {
                state.retired.remove(&old);
            }
        }
        if state
            .pieces
            .get(&key)
            .is_some_and(|(p, _)| Arc::ptr_eq(p, &piece))
            && let Some((cached, _)) = state.pieces.remove(&key)
        {
            state.bytes = state.bytes.saturating_sub(cached.bytes.len() as u64);
            drop(cached);
            state.recycle(piece);
        }
    }
}

/// A span marked as being decoded; unmarked (and the waiting threads woken) when dropped, whatever
/// happened.
struct Busy<'a> {
    cache: &'a PieceCache,
    key: (usize, usize),
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.cache.lock().busy.remove(&self.key);
        self.cache.changed.notify_all();
    }
}
