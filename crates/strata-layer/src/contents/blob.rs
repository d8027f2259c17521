//! [`BlobContents`]: file bytes decompressed from the layer blobs through their checkpoints, a span at a
//! time, into the shared piece cache ([`super::cache`]), read ahead by worker threads ([`super::ahead`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use strata_image::ImageSource;
use strata_index::LayerIndex;
use strata_oci::media::Compression;

use super::ahead::{Ahead, Job, MAX_AHEAD_CHUNKS};
use super::cache::{Busy, Piece, PieceCache, PieceData, lock};
use super::{CHUNK, ContentOptions, ContentStats, Contents, FileRef, truncated};
use crate::error::{Error, Result};
use crate::random::LayerReader;

/// File bytes read from the compressed layer blobs of an image source.
///
/// [`BlobContents`] reads through each layer's [`LayerReader`]. A layer's tar stream is cut at its
/// checkpoints into spans (about 4 MiB each) that can be decompressed independently, hence in parallel, and
/// each span into equal pieces of at most [`CHUNK`] bytes. Decompressed pieces go into a bounded,
/// least-recently-used cache shared by all requests: a small file next to one just read costs a copy, not a
/// decompression, whatever order files are read in. Under a page cache (a FUSE mount,
/// [`ContentOptions::page_cache_above`]), a piece that lies inside one file leaves the cache once all of it
/// was read (the kernel keeps the file's pages), its memory going to the next piece; without one (the
/// scanner), pieces stay until evicted, so a file read twice is decompressed once.
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
/// When a layer's index has span digests, every compressed span is fetched whole and checked against its
/// digest before a byte of it is decompressed (see [`LayerReader`]): a mismatch or a short read is
/// [`Error::Span`] naming the layer, the span and the file. Each span's reader then holds that span's
/// compressed bytes, at most 4 MiB + 1: checking adds that much per span reader alive (at most 12 kept,
/// plus any a thread still reads through after it was dropped), 1–2 MiB per span for a typical gzip layer.
///
/// Layers a store keeps unpacked are read by [`super::DirContents`] instead.
pub struct BlobContents {
    pub(super) inner: Arc<Inner>,
    /// Read-ahead jobs for the worker threads (which end when this is dropped).
    pub(super) jobs: mpsc::Sender<Job>,
    /// Files (layer, tar offset) whose tar header was found where the index puts them.
    headers_checked: Mutex<HashSet<(usize, u64)>>,
}

/// What the readers and the read-ahead workers share.
pub(super) struct Inner {
    pub(super) source: Arc<dyn ImageSource>,
    pub(super) layers: Vec<Layer>,
    pub(super) cache: PieceCache,
    /// The span decoders (see [`Inner::span_reader`]).
    pub(super) decoders: Mutex<Decoders>,
    pub(super) ahead: Mutex<Ahead>,
    /// Spans read ahead of a sequential reader; 0: no read-ahead at all (no workers).
    pub(super) window: usize,
    /// Most bytes of spans queued ahead of one reader.
    pub(super) ahead_bytes: u64,
    /// Most spans queued ahead of the one a reader is in (see [`super::ahead::Stream::ahead`]): enough to keep every
    /// worker busy behind a fast reader, few enough that a program reading only the start of a large file
    /// (`file`, a scanner looking at headers) does not have all of it decompressed.
    pub(super) ahead_spans: usize,
    /// Pieces read wholly inside one file are dropped once read (a page cache above keeps them).
    pub(super) retire_read: bool,
    /// Span readers kept ([`ContentOptions::decoders`]); the least recently used one is dropped.
    pub(super) max_decoders: usize,
    /// Spans a decoder started on from their checkpoint.
    pub(super) spans_decoded: AtomicU64,
    /// Pieces decompressed.
    pub(super) pieces_decoded: AtomicU64,
}

/// One layer: its reader, and where its checkpoints are.
pub(super) struct Layer {
    /// The blob's reader (no checkpoints: span readers start at the span's own, taken from `index`).
    pub(super) reader: LayerReader<'static>,
    /// The layer's index (its bytes shared, not copied): where span readers find their checkpoint.
    pub(super) index: LayerIndex,
    pub(super) compressed: bool,
    /// Uncompressed offsets of the checkpoints, ascending, starting with 0.
    pub(super) starts: Vec<u64>,
    pub(super) tar_size: u64,
}

/// Where a checkpoint span lies in the tar stream, and how it is cut into pieces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) pieces: u64,
    /// Length of every piece but the last (which may be shorter); at most [`CHUNK`].
    pub(super) piece_len: u64,
}

impl Span {
    /// Offset and length of piece `p`.
    pub(super) fn piece(&self, p: u64) -> (u64, usize) {
        let at = self
            .start
            .saturating_add(p.saturating_mul(self.piece_len))
            .min(self.end);
        let len = self.piece_len.min(self.end - at);
        // At most CHUNK.
        (at, usize::try_from(len).unwrap_or(CHUNK))
    }

    pub(super) fn len(&self) -> u64 {
        self.end - self.start
    }
}

impl Layer {
    /// Span `s`, if the layer has it.
    pub(super) fn span(&self, s: usize) -> Option<Span> {
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
    pub(super) fn locate(&self, pos: u64) -> Option<Place> {
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
pub(super) struct Place {
    pub(super) s: usize,
    pub(super) span: Span,
    pub(super) p: u64,
}

/// The span readers of [`Inner::span_reader`], by (layer, span), with when each was last used.
#[derive(Default)]
pub(super) struct Decoders {
    pub(super) map: HashMap<(usize, usize), (Arc<LayerReader<'static>>, u64)>,
    pub(super) tick: u64,
}

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
    /// Reads the layers `indexes` describe (bottom first) from `source`, caching up to
    /// `options.cache_bytes` of decompressed pieces (at least one [`CHUNK`]). Reads of compressed layers are
    /// read ahead by a few worker threads (one per CPU, at most 4), each decompressing a later checkpoint
    /// span, when the cache holds at least 16 chunks.
    pub fn new(
        source: Arc<dyn ImageSource>,
        indexes: &[LayerIndex],
        options: &ContentOptions,
    ) -> Result<BlobContents> {
        let cache_bytes = options.cache_bytes;
        let mut layers = Vec::with_capacity(indexes.len());
        for index in indexes {
            let reader = LayerReader::of_blob(Arc::clone(&source), index)?;
            let mut starts: Vec<u64> = std::iter::once(0)
                .chain(index.checkpoints().map(|c| c.uncompressed_offset))
                .collect();
            starts.sort_unstable();
            starts.dedup();
            layers.push(Layer {
                compressed: reader.compression() != Compression::None,
                reader,
                index: index.clone(),
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
            retire_read: options.page_cache_above,
            max_decoders: options.decoders.max(1),
            spans_decoded: AtomicU64::new(0),
            pieces_decoded: AtomicU64::new(0),
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
        Ok(BlobContents {
            inner,
            jobs: tx,
            headers_checked: Mutex::new(HashSet::new()),
        })
    }

    /// What was decompressed so far.
    pub fn stats(&self) -> ContentStats {
        ContentStats {
            spans_decoded: self.inner.spans_decoded.load(Ordering::Relaxed),
            pieces_decoded: self.inner.pieces_decoded.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    /// Piece `at` of layer `index`: from the cache, from the decoder already at work on the span (waiting
    /// for it), or decompressed here, together with the missing pieces from `unasked` on before it (a
    /// reader is about to ask for those: requests arrive out of order).
    pub(super) fn piece(
        &self,
        index: usize,
        layer: &Layer,
        at: &Place,
        unasked: u64,
    ) -> Result<Piece> {
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
    pub(super) fn decode(
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
        let final_piece = span.pieces.saturating_sub(1);
        let mut finished = false;
        for p in from..=until.min(final_piece) {
            let (at, len) = span.piece(p);
            let mut buf = self.cache.buffer(len);
            let n = reader.read_at(at, &mut buf)?;
            self.pieces_decoded.fetch_add(1, Ordering::Relaxed);
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
            if n < len || p == final_piece {
                // The stream or the span ends here.
                finished = true;
                break;
            }
        }
        if finished {
            // Its decoder has nothing more to give: its compressed span and window go now, not when
            // the reader is evicted (a piece evicted later is decoded again from the checkpoint).
            self.drop_span_reader(index, s, &reader);
        }
        Ok(last)
    }

    /// Forgets the reader of span `s` of layer `index` if it is still `reader`.
    fn drop_span_reader(&self, index: usize, s: usize, reader: &Arc<LayerReader<'static>>) {
        let mut decoders = lock(&self.decoders);
        if decoders
            .map
            .get(&(index, s))
            .is_some_and(|(kept, _)| Arc::ptr_eq(kept, reader))
        {
            decoders.map.remove(&(index, s));
        }
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
        let checkpoint = layer
            .index
            .checkpoint_for(span.start)
            .filter(|c| c.uncompressed_offset == span.start)
            .map(|c| c.to_checkpoint());
        let reader = Arc::new(
            LayerReader::new(
                Arc::clone(&self.source),
                layer.reader.digest().clone(),
                layer.reader.compression(),
                checkpoint.into_iter().collect(),
            )
            // The span's reader serves only the span: its decoder never needs the next span's bytes.
            .with_tar_size(span.end)
            // Checked span by span when the index has span digests.
            .with_spans(layer.reader.spans().cloned())
            // Pieces are cached here, and a span's decoder only goes forward: no history to keep.
            .with_history(0),
        );
        if decoders.map.len() >= self.max_decoders
            && let Some(oldest) = decoders
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
        {
            decoders.map.remove(&oldest);
        }
        decoders.map.insert((index, s), (Arc::clone(&reader), tick));
        self.spans_decoded.fetch_add(1, Ordering::Relaxed);
        reader
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
            if self.retire_read
                && file.start <= start
                && end <= file.end
                && piece.copied.fetch_add(n, Ordering::Relaxed) + n >= piece.bytes.len()
            {
                self.cache.retire((index, place.s, place.p), piece);
            }
        }
        Ok(())
    }
}

impl BlobContents {
    /// Checks, once per file, that the tar header just before `file`'s bytes is a regular file's of
    /// `file`'s size and name: an index that maps a path to another file's bytes (a lying published index,
    /// whose spans check out) is refused instead of serving them.
    fn check_header(&self, file: &FileRef<'_>) -> Result<()> {
        let key = (file.layer, file.offset);
        if lock(&self.headers_checked).contains(&key) {
            return Ok(());
        }
        let layer_digest = || {
            self.inner
                .layers
                .get(file.layer)
                .map_or_else(String::new, |l| l.reader.digest().to_string())
        };
        let refuse = |why: &str| Error::Format {
            layer: layer_digest(),
            reason: format!(
                "the index puts {} at byte {} of the tar, {why}",
                String::from_utf8_lossy(file.path),
                file.offset
            ),
        };
        let start = file
            .offset
            .checked_sub(TAR_BLOCK as u64)
            .ok_or_else(|| refuse("where no tar header fits before it"))?;
        let mut block = [0u8; TAR_BLOCK];
        self.inner.read_tar(
            file.layer,
            start,
            start..file.offset,
            &mut block,
            &self.jobs,
        )?;
        if let Err(why) = header_names(&block, file, None) {
            // The name may be in an extended header (PAX `path`, GNU long name) just before: read back.
            let back = start.min(EXTENDED_REACH);
            let mut before = vec![0u8; usize::try_from(back).unwrap_or(0)];
            if before.is_empty() {
                return Err(refuse(&why));
            }
            self.inner.read_tar(
                file.layer,
                start - back,
                start - back..file.offset,
                &mut before,
                &self.jobs,
            )?;
            let long = extended_name(&before).ok_or_else(|| refuse(&why))?;
            header_names(&block, file, Some(&long)).map_err(|why| refuse(&why))?;
        }
        lock(&self.headers_checked).insert(key);
        Ok(())
    }
}

/// A tar block.
const TAR_BLOCK: usize = 512;

/// How far before a file's header [`extended_name`] looks for the extended headers naming it.
const EXTENDED_REACH: u64 = 64 * TAR_BLOCK as u64;

/// `block` as a tar header with a valid checksum.
fn header_at(block: &[u8]) -> Option<&tar::Header> {
    let block: &[u8; TAR_BLOCK] = block.try_into().ok()?;
    let header = tar::Header::from_byte_slice(block);
    let stored = header.cksum().ok()?;
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| u32::from(if (148..156).contains(&i) { b' ' } else { b }))
        .sum();
    (sum == stored).then_some(header)
}

/// Whether `block` is the tar header of `file`: a valid checksum, a regular file, its size, its name
/// (`long`, the name an extended header gave it, where there is one; or, for a name the header's 100
/// bytes cut short, the start of it); why not, otherwise.
fn header_names(
    block: &[u8; TAR_BLOCK],
    file: &FileRef<'_>,
    long: Option<&[u8]>,
) -> std::result::Result<(), String> {
    let header = header_at(block).ok_or_else(|| "where there is no tar header".to_owned())?;
    if !matches!(
        header.entry_type(),
        tar::EntryType::Regular | tar::EntryType::Continuous
    ) {
        return Err("where the tar has no regular file".into());
    }
    // Sizes from 8 GiB on may be in a PAX record, the header's field then meaningless.
    if file.size < 0o77777777777 && header.entry_size().ok() != Some(file.size) {
        return Err(format!(
            "where the tar has a file of {} bytes, not {}",
            header.entry_size().unwrap_or(0),
            file.size
        ));
    }
    let raw = long.map_or_else(|| header.path_bytes().into_owned(), <[u8]>::to_vec);
    let name = strata_index::normalise_path(&raw)
        .ok()
        .flatten()
        .unwrap_or_default();
    let cut_short = long.is_none()
        && (!header.as_old().name.contains(&0)
            || header.as_ustar().is_some_and(|u| u.prefix[0] != 0));
    let named = name.as_slice() == file.path
        || raw.is_empty()
        || (cut_short && file.path.starts_with(&name));
    if !named {
        return Err(format!(
            "where the tar has {}",
            String::from_utf8_lossy(&raw)
        ));
    }
    Ok(())
}

/// The name the extended headers ending exactly at the end of `before` give the header after them: a
/// PAX `path` record or a GNU long name (`L`), found by walking back through the chain of extended
/// headers (`x`, `L`, `K`) each of whose data ends where the next header starts.
fn extended_name(before: &[u8]) -> Option<Vec<u8>> {
    let mut end = before.len();
    let mut name = None;
    while name.is_none() {
        let (header, data) = (TAR_BLOCK..=end).step_by(TAR_BLOCK).find_map(|len| {
            let at = end - len;
            let header = header_at(&before[at..at + TAR_BLOCK])?;
            let size = usize::try_from(header.entry_size().ok()?).ok()?;
            let padded = size.div_ceil(TAR_BLOCK).checked_mul(TAR_BLOCK)?;
            (at + TAR_BLOCK + padded == end)
                .then(|| (header, &before[at + TAR_BLOCK..at + TAR_BLOCK + size]))
        })?;
        name = match header.entry_type() {
            tar::EntryType::XHeader => tar::PaxExtensions::new(data)
                .filter_map(std::result::Result::ok)
                .find(|e| e.key_bytes() == b"path")
                .map(|e| e.value_bytes().to_vec()),
            tar::EntryType::GNULongName => {
                Some(data.split(|&b| b == 0).next().unwrap_or_default().to_vec())
            }
            tar::EntryType::GNULongLink => None,
            _ => return None,
        };
        end -= TAR_BLOCK + data.len().div_ceil(TAR_BLOCK) * TAR_BLOCK;
    }
    name
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
        self.check_header(file)
            .and_then(|()| {
                self.inner
                    .read_tar(file.layer, at, range, &mut buf[..want], &self.jobs)
            })
            .map_err(|e| match e {
                Error::Truncated { layer, .. } => truncated(layer, file.path),
                e => e.in_file(&String::from_utf8_lossy(file.path)),
            })?;
        Ok(want)
    }

    fn stats(&self) -> ContentStats {
        BlobContents::stats(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A tar of `extended` (built by the caller) then a regular file whose ustar name is `short`; the
    /// bytes before the file's header and the header itself.
    fn tar_with(
        extend: impl FnOnce(&mut tar::Builder<Vec<u8>>),
        short: &str,
    ) -> (Vec<u8>, [u8; 512]) {
        let mut builder = tar::Builder::new(Vec::new());
        extend(&mut builder);
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..short.len()].copy_from_slice(short.as_bytes());
        header.set_size(3);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let before = builder.get_ref().clone();
        (before, *header.as_bytes())
    }

    fn file(path: &[u8]) -> FileRef<'_> {
        FileRef {
            layer: 0,
            offset: 0,
            size: 3,
            path,
        }
    }

    #[test]
    fn a_pax_path_names_the_file_its_ustar_name_transliterates() {
        let (before, header) = tar_with(
            |b| {
                b.append_pax_extensions([("path", "srv/données.txt".as_bytes())])
                    .unwrap();
            },
            "srv/donnes.txt",
        );
        let path = "srv/données.txt".as_bytes();
        assert!(header_names(&header, &file(path), None).is_err());
        let long = extended_name(&before).unwrap();
        assert_eq!(long, path);
        header_names(&header, &file(path), Some(&long)).unwrap();
        // The PAX name is the file's name: the ustar one no longer passes.
        assert!(header_names(&header, &file(b"srv/donnes.txt"), Some(&long)).is_err());
    }

    #[test]
    fn a_gnu_long_name_is_found_behind_its_header() {
        let name = format!("{}/file", "d".repeat(120));
        let (before, header) = tar_with(
            |b| {
                let mut long = tar::Header::new_gnu();
                long.set_entry_type(tar::EntryType::GNULongName);
                long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
                long.set_size(name.len() as u64 + 1);
                long.set_cksum();
                let mut data = name.as_bytes().to_vec();
                data.push(0);
                b.append(&long, data.as_slice()).unwrap();
            },
            &name[..100],
        );
        let long = extended_name(&before).unwrap();
        assert_eq!(long, name.as_bytes());
        header_names(&header, &file(name.as_bytes()), Some(&long)).unwrap();
    }

    #[test]
    fn an_extended_header_not_ending_at_the_file_names_nothing() {
        let (mut before, _) = tar_with(
            |b| {
                b.append_pax_extensions([("path", b"elsewhere".as_slice())])
                    .unwrap();
            },
            "x",
        );
        before.extend_from_slice(&[0u8; 512]);
        assert_eq!(extended_name(&before), None);
        assert_eq!(extended_name(&[]), None);
    }
}
