//! Random access to a layer's tar stream without reading the layer from its start: [`LayerReader`].
//!
//! A read at an uncompressed offset starts at the last checkpoint at or before it (see
//! [`CHECKPOINT_SPAN`](crate::CHECKPOINT_SPAN)), fetches the compressed bytes from there with
//! [`ImageSource::read_blob_at`] in [`READ_AHEAD`]-byte ranges, resumes decompression (gzip: primed with the
//! checkpoint's partial byte and window; zstd: a fresh frame decoder; plain tar: no decompression at all),
//! and skips to the offset. A few decoders stay open with the last [`HISTORY`] bytes they produced, so that
//! sequential reads continue where the last one stopped and nearby re-reads are served from memory.
//!
//! When the index has span digests (format 1.2, [`SpanDigest`]), every compressed byte is checked before it
//! is decompressed: the input fetches the whole span holding the next byte it needs (at most
//! [`MAX_SPAN_BYTES`](strata_index::format::MAX_SPAN_BYTES) + 1 bytes, the bound on what each open decoder
//! holds), checks its sha256 against the index, and only then hands its bytes over; a span that does not
//! match, or that the source serves short, is [`Error::Span`] naming the layer, the span and its range, and
//! no byte of it is served. Uncompressed layers are read through the same spans.
//!
//! Without span digests (indexes written before 1.2, or from a store's tar-split), range reads are not
//! verified (a range of a blob cannot be hashed): the blob is trusted as far as the index that was built from
//! it, by a verified pass. Corrupt data or checkpoints give errors or wrong bytes, never a panic, and a read
//! never decompresses more than the blob holds.

use std::fmt;
use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex, MutexGuard};

use strata_image::ImageSource;
use strata_index::{Checkpoint, EntryKind, EntryRef, LayerIndex, LayerInfo, SpanDigest};
use strata_oci::Digest;
use strata_oci::media::Compression;

use crate::decode::Decoder;
use crate::error::{Error, Result};
use crate::spans::{fetch_span, find_span, span_error};

/// Compressed bytes fetched from the source at a time.
pub const READ_AHEAD: usize = 256 << 10;
/// Decompressed bytes each open decoder keeps behind its position.
pub const HISTORY: usize = 512 << 10;
/// Open decoders kept per layer (least recently used ones are dropped).
const MAX_CURSORS: usize = 2;
/// Smallest amount decompressed at a time.
const MIN_STEP: usize = 64 << 10;

/// A span kept after it was read and checked: its position in the span table, and its bytes.
type KeptSpan = Option<(usize, Arc<Vec<u8>>)>;

/// The image source a [`LayerReader`] reads blob ranges from: borrowed or shared.
#[derive(Clone)]
pub enum SourceHandle<'s> {
    /// A borrowed source.
    Borrowed(&'s dyn ImageSource),
    /// A shared source (for readers that must outlive the caller's borrow, such as a mount's).
    Shared(Arc<dyn ImageSource>),
}

impl SourceHandle<'_> {
    fn get(&self) -> &dyn ImageSource {
        match self {
            SourceHandle::Borrowed(s) => *s,
            SourceHandle::Shared(s) => &**s,
        }
    }
}

impl<'s> From<&'s dyn ImageSource> for SourceHandle<'s> {
    fn from(source: &'s dyn ImageSource) -> Self {
        SourceHandle::Borrowed(source)
    }
}

impl From<Arc<dyn ImageSource>> for SourceHandle<'static> {
    fn from(source: Arc<dyn ImageSource>) -> Self {
        SourceHandle::Shared(source)
    }
}

/// Reads any range of a layer's uncompressed tar stream, through its checkpoints.
///
/// `Send + Sync`: reads may run concurrently; each takes an open decoder (or makes one) for its duration.
pub struct LayerReader<'s> {
    source: SourceHandle<'s>,
    digest: Digest,
    compression: Compression,
    /// Sorted by uncompressed offset.
    checkpoints: Vec<Checkpoint>,
    tar_size: Option<u64>,
    /// The index's span digests: every compressed byte is checked against them before use. `None`: range
    /// reads are not checked.
    spans: Option<Arc<[SpanDigest]>>,
    /// An uncompressed layer's last span read.
    plain: Mutex<KeptSpan>,
    /// Decompressed bytes each open decoder keeps behind its position.
    history: usize,
    cursors: Mutex<Cursors>,
}

impl fmt::Debug for LayerReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerReader")
            .field("source", &self.source.get().name())
            .field("digest", &self.digest.to_string())
            .field("compression", &self.compression)
            .field("checkpoints", &self.checkpoints.len())
            .field("tar_size", &self.tar_size)
            .field("spans", &self.spans.as_ref().map(|s| s.len()))
            .finish_non_exhaustive()
    }
}

impl<'s> LayerReader<'s> {
    /// A reader of blob `digest` of `source`, compressed as `compression`, with its `checkpoints` (any order).
    /// Without checkpoints a compressed layer is read from its start.
    pub fn new(
        source: impl Into<SourceHandle<'s>>,
        digest: Digest,
        compression: Compression,
        mut checkpoints: Vec<Checkpoint>,
    ) -> LayerReader<'s> {
        checkpoints.sort_by_key(|c| c.uncompressed_offset);
        LayerReader {
            source: source.into(),
            digest,
            compression,
            checkpoints,
            tar_size: None,
            spans: None,
            plain: Mutex::new(None),
            history: HISTORY,
            cursors: Mutex::new(Cursors::default()),
        }
    }

    /// A reader of the layer `index` describes: its blob digest, compression, tar size and checkpoints, and
    /// its span digests when it has them (every range read is then checked against them). Fails if the
    /// index names no valid digest or an unknown compression.
    pub fn from_index(
        source: impl Into<SourceHandle<'s>>,
        index: &LayerIndex,
    ) -> Result<LayerReader<'s>> {
        let reader = LayerReader::of_blob(source, index)?;
        let checkpoints = index.checkpoints().map(|c| c.to_checkpoint()).collect();
        Ok(LayerReader {
            checkpoints,
            ..reader
        })
    }

    /// A reader of the blob `index` describes, as [`LayerReader::from_index`] makes it but without the
    /// index's checkpoints (a compressed layer is then read from its start): for callers that start
    /// readers at checkpoints they take from the index themselves, without a copy of every window.
    pub(crate) fn of_blob(
        source: impl Into<SourceHandle<'s>>,
        index: &LayerIndex,
    ) -> Result<LayerReader<'s>> {
        let info = index.layer();
        let digest = Digest::parse(&info.blob_digest).map_err(|error| Error::Verify {
            layer: info.blob_digest.clone(),
            error,
        })?;
        let compression = match info.compression {
            LayerInfo::COMPRESSION_NONE => Compression::None,
            LayerInfo::COMPRESSION_GZIP => Compression::Gzip,
            LayerInfo::COMPRESSION_ZSTD => Compression::Zstd,
            other => {
                return Err(Error::Format {
                    layer: info.blob_digest.clone(),
                    reason: format!("the index gives an unknown compression ({other})"),
                });
            }
        };
        let spans: Option<Arc<[SpanDigest]>> =
            index.has_span_digests().then(|| index.spans().collect());
        Ok(LayerReader::new(source, digest, compression, Vec::new())
            .with_tar_size(info.tar_size)
            .with_spans(spans))
    }

    /// Checks every compressed byte against `spans` (the index's span digests, which cover the blob)
    /// before using it; `None` reads ranges unchecked.
    pub fn with_spans(mut self, spans: Option<Arc<[SpanDigest]>>) -> LayerReader<'s> {
        self.spans = spans;
        self
    }

    /// The span digests reads are checked against, if any.
    pub fn spans(&self) -> Option<&Arc<[SpanDigest]>> {
        self.spans.as_ref()
    }

    /// Sets the size of the tar stream: reads stop there.
    pub fn with_tar_size(mut self, tar_size: u64) -> LayerReader<'s> {
        self.tar_size = Some(tar_size);
        self
    }

    /// Sets how many decompressed bytes (at most [`HISTORY`], the default) each open decoder keeps behind
    /// its position, for re-reads from memory: 0 for a reader that only goes forward, which then
    /// decompresses large reads straight into the caller's buffer without copying them.
    pub fn with_history(mut self, bytes: usize) -> LayerReader<'s> {
        self.history = bytes.min(HISTORY);
        self
    }

    /// The blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The blob's compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The checkpoints, by uncompressed offset.
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// Reads the tar stream from `offset` into `buf`; returns the bytes read, fewer than `buf.len()` only at
    /// the end of the stream.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        // Offsets past u64::MAX (or the tar's end) do not exist.
        let end = self.tar_size.unwrap_or(u64::MAX);
        let left = usize::try_from(end.saturating_sub(offset)).unwrap_or(usize::MAX);
        let n = buf.len().min(left);
        let buf = &mut buf[..n];
        if buf.is_empty() {
            return Ok(0);
        }
        if self.compression == Compression::None {
            return self.read_plain(offset, buf);
        }
        let mut cursor = self.take_cursor(offset)?;
        let stop = self.tar_size.unwrap_or(u64::MAX);
        let read = cursor.read(&self.fetcher(), offset, buf, self.history, stop);
        match read {
            Ok(n) => {
                self.put_back(cursor);
                Ok(n)
            }
            Err(e) => Err(self.error(offset, e)),
        }
    }

    /// The whole content of the regular file `entry` (of this layer's index), in memory: for large files,
    /// [`LayerReader::range`] streams instead. Fails if `entry` is not a regular file or its content lies
    /// outside the tar stream.
    pub fn read_file(&self, entry: &EntryRef<'_>) -> Result<Vec<u8>> {
        let path = || String::from_utf8_lossy(&entry.path()).into_owned();
        if entry.kind() != EntryKind::File {
            return Err(self.format_error(format!("{} is not a regular file", path())));
        }
        let (offset, size) = (entry.offset(), entry.size());
        let beyond = match self.tar_size {
            Some(tar_size) => offset.checked_add(size).is_none_or(|end| end > tar_size),
            None => offset.checked_add(size).is_none(),
        };
        let len = usize::try_from(size)
            .ok()
            .filter(|_| !beyond)
            .ok_or_else(|| {
                self.format_error(format!(
                    "{} ({size} bytes at {offset}) lies outside the tar stream",
                    path()
                ))
            })?;
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| self.format_error(format!("{}: cannot allocate {size} bytes", path())))?;
        out.resize(len, 0);
        let n = self
            .read_at(offset, &mut out)
            .map_err(|e| e.in_file(&path()))?;
        if n < len {
            return Err(self.format_error(format!(
                "{}: the tar stream ends {} bytes into its {size} bytes",
                path(),
                n
            )));
        }
        Ok(out)
    }

    /// A reader of `len` bytes of the tar stream from `offset` (a file's content: [`EntryRef::offset`] and
    /// [`EntryRef::size`]). It fails with [`io::ErrorKind::UnexpectedEof`] if the stream ends first.
    pub fn range(&self, offset: u64, len: u64) -> RangeReader<'_, 's> {
        RangeReader {
            reader: self,
            pos: offset,
            end: offset.saturating_add(len),
        }
    }

    // ----- internals -----

    fn fetcher(&self) -> Fetcher<'_> {
        Fetcher {
            source: self.source.get(),
            digest: &self.digest,
            spans: self.spans.as_deref(),
        }
    }

    fn read_plain(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if let Some(spans) = &self.spans {
            return self
                .read_plain_checked(spans, offset, buf)
                .map_err(|e| self.error(offset, e));
        }
        let source = self.source.get();
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            let n = source.read_blob_at(&self.digest, at, &mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n.min(buf.len() - done);
        }
        Ok(done)
    }

    /// [`LayerReader::read_plain`] through the span digests: each span read whole and checked first (the
    /// last one kept for the next read).
    fn read_plain_checked(
        &self,
        spans: &[SpanDigest],
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            let Some((j, span)) = find_span(spans, at) else {
                break;
            };
            let kept = lock_plain(&self.plain)
                .as_ref()
                .filter(|(k, _)| *k == j)
                .map(|(_, bytes)| Arc::clone(bytes));
            let bytes = match kept {
                Some(bytes) => bytes,
                None => {
                    let mut bytes = Vec::new();
                    fetch_span(self.source.get(), &self.digest, spans, j, &mut bytes)?;
                    let bytes = Arc::new(bytes);
                    *lock_plain(&self.plain) = Some((j, Arc::clone(&bytes)));
                    bytes
                }
            };
            // Within the span: fits in usize.
            let from = usize::try_from(at - span.start).unwrap_or(usize::MAX);
            let available = bytes.get(from..).unwrap_or_default();
            if available.is_empty() {
                break;
            }
            let n = available.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&available[..n]);
            done += n;
        }
        Ok(done)
    }

    /// The last checkpoint at or before `offset`.
    fn checkpoint_for(&self, offset: u64) -> Option<&Checkpoint> {
        let i = self
            .checkpoints
            .partition_point(|c| c.uncompressed_offset <= offset);
        i.checked_sub(1).and_then(|i| self.checkpoints.get(i))
    }

    fn lock(&self) -> MutexGuard<'_, Cursors> {
        // A panic while holding the lock cannot leave the list inconsistent: take it anyway.
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An open decoder that can serve `offset` without more work than restarting from the checkpoint, or a
    /// new one at that checkpoint.
    fn take_cursor(&self, offset: u64) -> Result<Cursor> {
        let restart = self.checkpoint_for(offset);
        let restart_at = restart.map_or(0, |c| c.uncompressed_offset);
        {
            let mut cursors = self.lock();
            let best = cursors
                .list
                .iter()
                .enumerate()
                .filter(|(_, c)| c.start <= offset && c.end() >= restart_at)
                .filter(|(_, c)| offset < c.end() || !c.ended)
                .max_by_key(|(_, c)| c.end().min(offset))
                .map(|(i, _)| i);
            if let Some(i) = best {
                return Ok(cursors.list.swap_remove(i));
            }
        }
        let fetcher = self.fetcher();
        let mut input = BlobInput::new(restart.map_or(0, |c| c.compressed_bit_offset / 8));
        let decoder = match restart {
            Some(c) => Decoder::resume(self.compression, c, &mut input.with(&fetcher)),
            None => Decoder::from_start(self.compression, false),
        }
        .map_err(|e| self.error(offset, e))?;
        Ok(Cursor {
            decoder,
            input,
            buf: Vec::new(),
            start: restart_at,
            ended: false,
            used: 0,
        })
    }

    fn put_back(&self, mut cursor: Cursor) {
        let mut cursors = self.lock();
        cursors.tick += 1;
        cursor.used = cursors.tick;
        cursors.list.push(cursor);
        if cursors.list.len() > MAX_CURSORS
            && let Some((i, _)) = cursors.list.iter().enumerate().min_by_key(|(_, c)| c.used)
        {
            cursors.list.swap_remove(i);
        }
    }

    fn format_error(&self, reason: String) -> Error {
        Error::Format {
            layer: self.digest.to_string(),
            reason,
        }
    }

    /// Maps a decoding error; source errors and span failures keep their type.
    fn error(&self, offset: u64, e: io::Error) -> Error {
        span_error(&self.digest, e, |e| {
            format!("cannot decompress the tar stream at offset {offset}: {e}")
        })
    }
}

/// The open decoders of a layer.
#[derive(Default)]
struct Cursors {
    list: Vec<Cursor>,
    /// Use counter, for least-recently-used eviction.
    tick: u64,
}

/// An open decoder with the output it produced last.
struct Cursor {
    decoder: Decoder,
    input: BlobInput,
    /// The last bytes produced: `buf` holds the tar stream's bytes `start..start + buf.len()`.
    buf: Vec<u8>,
    start: u64,
    /// The stream is over: nothing follows `buf`.
    ended: bool,
    /// When it was last used.
    used: u64,
}

impl Cursor {
    fn end(&self) -> u64 {
        self.start.saturating_add(self.buf.len() as u64)
    }

    /// Copies the stream's bytes from `offset` into `out`, decoding as far as needed (never past `stop`, the
    /// end of what the reader serves), and keeps the last `history` bytes (or more, up to [`HISTORY`],
    /// after small reads) it decoded.
    fn read(
        &mut self,
        fetcher: &Fetcher<'_>,
        offset: u64,
        out: &mut [u8],
        history: usize,
        stop: u64,
    ) -> io::Result<usize> {
        let want_end = offset.saturating_add(out.len() as u64);
        let mut done = 0;
        loop {
            let pos = offset + done as u64;
            if pos >= self.start && pos < self.end() {
                let from = usize::try_from(pos - self.start).unwrap_or(usize::MAX);
                let n = (self.buf.len() - from).min(out.len() - done);
                out[done..done + n].copy_from_slice(&self.buf[from..from + n]);
                done += n;
            }
            if done == out.len() || self.ended {
                return Ok(done);
            }
            let rest = out.len() - done;
            if pos == self.end() && rest >= MIN_STEP {
                // Reading on from where the decoder is, a large read: straight into `out`, keeping only the
                // last `history` bytes of it.
                let n = self
                    .decoder
                    .decode(&mut self.input.with(fetcher), &mut out[done..])?;
                let keep = n.min(history);
                self.buf.clear();
                self.buf.extend_from_slice(&out[done + n - keep..done + n]);
                self.start = pos.saturating_add((n - keep) as u64);
                done += n;
                self.ended = n < rest;
                continue;
            }
            // Decode what is still wanted (at least MIN_STEP, at most HISTORY at a time), keeping the last
            // `history` bytes before it.
            let wanted = usize::try_from(want_end.saturating_sub(self.end())).unwrap_or(usize::MAX);
            // Not past `stop`: a span's reader then never needs the next span's bytes.
            let before_stop =
                usize::try_from(stop.saturating_sub(self.end())).unwrap_or(usize::MAX);
            let step = wanted.clamp(MIN_STEP, HISTORY).min(before_stop.max(1));
            if self.buf.len() + step > 2 * HISTORY {
                let keep = self.buf.len().min(history);
                let drop = self.buf.len() - keep;
                self.buf.copy_within(drop.., 0);
                self.buf.truncate(keep);
                self.start = self.start.saturating_add(drop as u64);
            }
            let filled = self.buf.len();
            self.buf.resize(filled + step, 0);
            let produced = self
                .decoder
                .decode(&mut self.input.with(fetcher), &mut self.buf[filled..]);
            let n = match produced {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(e);
                }
            };
            self.buf.truncate(filled + n);
            if n < step {
                self.ended = true;
            }
        }
    }
}

/// Fetches blob ranges: whole checked spans when there are span digests.
struct Fetcher<'a> {
    source: &'a dyn ImageSource,
    digest: &'a Digest,
    spans: Option<&'a [SpanDigest]>,
}

/// A buffered window on the blob, filled by range reads.
struct BlobInput {
    buf: Vec<u8>,
    pos: usize,
    /// Offset in the blob of the byte after `buf`.
    next: u64,
}

impl BlobInput {
    fn new(offset: u64) -> BlobInput {
        BlobInput {
            buf: Vec::new(),
            pos: 0,
            next: offset,
        }
    }

    fn with<'a>(&'a mut self, fetcher: &'a Fetcher<'a>) -> FetchingInput<'a> {
        FetchingInput {
            input: self,
            fetcher,
        }
    }
}

/// A [`BlobInput`] with its source: a [`BufRead`] over the blob from its offset.
struct FetchingInput<'a> {
    input: &'a mut BlobInput,
    fetcher: &'a Fetcher<'a>,
}

impl Read for FetchingInput<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for FetchingInput<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let input = &mut *self.input;
        if input.pos >= input.buf.len()
            && let Some(spans) = self.fetcher.spans
        {
            // The whole span holding the next byte, checked before any of it is used.
            let Some((j, span)) = find_span(spans, input.next) else {
                // Past the blob's end.
                input.buf.clear();
                input.pos = 0;
                return Ok(&[]);
            };
            fetch_span(
                self.fetcher.source,
                self.fetcher.digest,
                spans,
                j,
                &mut input.buf,
            )?;
            // Within the span: fits in usize.
            input.pos = usize::try_from(input.next - span.start).unwrap_or(usize::MAX);
            input.next = span.end;
        } else if input.pos >= input.buf.len() {
            input.buf.resize(READ_AHEAD, 0);
            let n = self
                .fetcher
                .source
                .read_blob_at(self.fetcher.digest, input.next, &mut input.buf)
                .map_err(io::Error::other)?;
            let n = n.min(READ_AHEAD);
            input.buf.truncate(n);
            input.pos = 0;
            input.next = input.next.saturating_add(n as u64);
        }
        Ok(input.buf.get(input.pos..).unwrap_or_default())
    }

    fn consume(&mut self, n: usize) {
        self.input.pos = self.input.pos.saturating_add(n).min(self.input.buf.len());
    }
}

/// A reader of a range of a layer's tar stream: see [`LayerReader::range`].
#[derive(Debug)]
pub struct RangeReader<'r, 's> {
    reader: &'r LayerReader<'s>,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let n = buf.len().min(left);
        if n == 0 {
            return Ok(0);
        }
        let got = self
            .reader
            .read_at(self.pos, &mut buf[..n])
            .map_err(io::Error::other)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the tar stream ends at {}, before {}", self.pos, self.end),
            ));
        }
        self.pos += got as u64;
        Ok(got)
    }
}

/// The lock of an uncompressed layer's kept span (a panic while holding it leaves it consistent).
fn lock_plain(m: &Mutex<KeptSpan>) -> MutexGuard<'_, KeptSpan> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<LayerReader<'static>>();
        check::<LayerReader<'_>>();
    }
}
