//! One streaming pass over a layer blob: verify → decompress → verify → parse, on three threads.
//!
//! A reading thread reads the blob through a [`VerifyingReader`] (digest and size of the blob) and hands the
//! compressed bytes over a bounded channel; the inflating thread sniffs and decompresses them and hands the
//! tar bytes over another; the calling thread hashes the tar bytes (the diff ID), parses them and runs the
//! caller's callback on each entry. Inflating, the slowest stage, thus does nothing else (hashing the blob
//! on the same thread made a one-layer pass 1.6x slower), and a slow source overlaps it. Memory stays
//! bounded by the channels: a few chunks whatever the layer's size.
//!
//! The same pass records the layer's random-access checkpoints (see [`crate::decode`]): gzip member starts and
//! deflate block boundaries every [`CHECKPOINT_SPAN`](crate::CHECKPOINT_SPAN), zstd frame starts; and the
//! sha256 of each checkpoint span's compressed bytes (the span digests, [`crate::spans`]), on a fourth
//! thread that gets the compressed chunks once the inflater is done with them and is told of each
//! checkpoint as it is recorded: the blob is read once, and no stage waits for it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use strata_index::{Checkpoint, Entry, SpanDigest};
use strata_oci::media::Compression;
use strata_oci::{Digest, DigestWriter, VerifyingReader, media};

use crate::decode::Decoder;
use crate::error::{Error, Result};
use crate::reader::read_entries;
use crate::spans::{SpanHasher, SpanMsg};

/// Size of the chunks handed from the inflating thread to the parsing thread.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the two threads.
const CHUNKS_IN_FLIGHT: usize = 8;

/// What the engine must know of a layer before reading it.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// The blob's digest (the manifest's layer descriptor).
    pub digest: Digest,
    /// The blob's size, when known.
    pub size: Option<u64>,
    /// The descriptor's media type.
    pub media_type: String,
    /// The expected digest of the uncompressed tar (the config's diff ID), when known.
    pub diff_id: Option<Digest>,
}

/// What reading a layer found.
#[derive(Debug, Clone)]
pub struct LayerSummary {
    /// The compression the blob turned out to have.
    pub compression: Compression,
    /// The blob's size in bytes.
    pub blob_size: u64,
    /// The digest of the uncompressed tar (verified against the spec's diff ID, when given).
    pub diff_id: Digest,
    /// The uncompressed tar's size in bytes.
    pub tar_size: u64,
    /// The number of entries (whiteouts and opaque markers included).
    pub entries: u64,
    /// Where decompression can restart, by uncompressed offset: for gzip, every member start and a deflate
    /// block boundary every [`CHECKPOINT_SPAN`](crate::CHECKPOINT_SPAN) of output; for zstd, every frame
    /// start; none for plain tar. For [`strata_index::IndexWriter::add_checkpoint`].
    pub checkpoints: Vec<Checkpoint>,
    /// The sha256 of each span of the compressed blob, the spans cut at the checkpoints (and every
    /// [`MAX_SPAN_BYTES`](strata_index::format::MAX_SPAN_BYTES)): see [`SpanDigest`]. Empty when checkpoints
    /// are not recorded, and for an empty blob. For [`strata_index::IndexWriter::set_spans`].
    pub spans: Vec<SpanDigest>,
}

/// Reads the layer `blob` described by `spec` in one pass, calling `on_entry` for every entry with a reader of
/// its content. Fails, naming the layer, if the blob's digest or size, its compression, its tar framing or
/// its diff ID is wrong, or if `on_entry` fails; the callback may have seen entries by then, so a caller that
/// writes must treat its output as incomplete on error.
pub fn read_layer(
    blob: Box<dyn Read + Send>,
    spec: &LayerSpec,
    on_entry: &mut dyn FnMut(&Entry, &mut dyn Read) -> Result<()>,
) -> Result<LayerSummary> {
    read_layer_with_tar(blob, spec, on_entry, &mut io::sink())
}

/// [`read_layer`], also handing every byte of the uncompressed tar stream to `tar` on the parsing thread, in
/// order and including whatever follows the end-of-archive blocks: exactly the bytes the diff ID hashes (what a
/// tar-split recorder needs). A write error from `tar` aborts the pass.
pub fn read_layer_with_tar(
    blob: Box<dyn Read + Send>,
    spec: &LayerSpec,
    on_entry: &mut dyn FnMut(&Entry, &mut dyn Read) -> Result<()>,
    tar: &mut dyn Write,
) -> Result<LayerSummary> {
    read_layer_as(blob, spec, on_entry, tar, true)
}

/// [`read_layer`] without checkpoints (an empty [`LayerSummary::checkpoints`]) when `checkpoints` is false:
/// for a pass whose index nobody keeps, such as an unpack. A gzip layer then inflates with ISA-L, faster
/// than the zlib-rs that recording needs.
pub(crate) fn read_layer_unindexed(
    blob: Box<dyn Read + Send>,
    spec: &LayerSpec,
    on_entry: &mut dyn FnMut(&Entry, &mut dyn Read) -> Result<()>,
) -> Result<LayerSummary> {
    read_layer_as(blob, spec, on_entry, &mut io::sink(), false)
}

fn read_layer_as(
    blob: Box<dyn Read + Send>,
    spec: &LayerSpec,
    on_entry: &mut dyn FnMut(&Entry, &mut dyn Read) -> Result<()>,
    tar: &mut dyn Write,
    checkpoints: bool,
) -> Result<LayerSummary> {
    let raw = tar;
    let layer = spec.digest.to_string();
    let declared =
        Compression::from_layer_media_type(&spec.media_type).ok_or_else(|| Error::Format {
            layer: layer.clone(),
            reason: format!("{:?} is not a layer media type", spec.media_type),
        })?;
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    // Chunks the parser is done with go back to the inflater, which fills them again (no allocation, no
    // zeroing, no fresh pages per chunk); the same between the reading thread and the inflater.
    let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
    let (blob_tx, blob_rx) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    let (blob_spare_tx, blob_spare_rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
    let verifying = VerifyingReader::new(blob, spec.digest.clone(), spec.size);
    let media_type = spec.media_type.clone();

    thread::scope(|scope| {
        scope.spawn(move || read_blob(verifying, &blob_tx, &blob_spare_rx));
        // With checkpoints, compressed chunks go from the inflater to the span hasher, and from there back
        // to the reading thread.
        let (compressed, spans, span_hasher) = if checkpoints {
            let (span_tx, span_rx) = sync_channel::<SpanMsg>(2 * CHUNKS_IN_FLIGHT);
            let span_hasher = scope.spawn(move || SpanHasher::run(&span_rx, &blob_spare_tx));
            let compressed = ChannelReader {
                release: Release::Spans(span_tx.clone()),
                ..ChannelReader::new(blob_rx)
            };
            (compressed, Some(span_tx), Some(span_hasher))
        } else {
            (ChannelReader::recycling(blob_rx, blob_spare_tx), None, None)
        };
        let inflater =
            scope.spawn(move || inflate(compressed, declared, &media_type, spans, tx, &spare_rx));
        let mut tar = HashingReader {
            rx: ChannelReader::recycling(rx, spare_tx),
            hasher: DigestWriter::new(strata_oci::Algorithm::Sha256),
            raw,
        };
        let parsed = read_entries(&mut tar, &layer, on_entry).and_then(|(entries, rest)| {
            // Whatever follows the end-of-archive blocks still counts towards the diff ID.
            io::copy(rest, &mut io::sink()).map_err(|source| Error::Tar {
                layer: layer.clone(),
                source,
            })?;
            Ok(entries)
        });
        let HashingReader { rx, hasher, .. } = tar;
        // Dropping the receiver stops an inflater that is still sending after parsing stopped early.
        drop(rx);
        let inflated = inflater
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the decompression thread failed")));
        let spans = match span_hasher.map(|h| h.join()) {
            None => Ok(Vec::new()),
            Some(Ok(Some(spans))) => spans,
            // The inflater stopped first (its error, if any, is reported).
            Some(Ok(None)) => Ok(Vec::new()),
            Some(Err(_)) => Err(io::Error::other("the span hashing thread failed")),
        };
        // A verification or decompression failure explains any parse failure it caused: report it first.
        let outcome = inflated.map_err(|e| stream_error(&layer, e))?;
        let entries = parsed?;
        let spans = spans.map_err(|e| Error::Format {
            layer: layer.clone(),
            reason: format!("span digests: {e}"),
        })?;
        let Some((compression, blob_size, checkpoints)) = outcome else {
            return Err(Error::Format {
                layer: layer.clone(),
                reason: "decompression stopped before the end of the tar stream".into(),
            });
        };
        let tar_size = hasher.len();
        let diff_id = hasher.finish();
        if let Some(expected) = spec.diff_id.as_ref().filter(|&e| e != &diff_id) {
            return Err(Error::Verify {
                layer: layer.clone(),
                error: strata_oci::Error::DigestMismatch {
                    expected: format!("diff ID {expected}"),
                    actual: diff_id.to_string(),
                },
            });
        }
        Ok(LayerSummary {
            compression,
            blob_size,
            diff_id,
            tar_size,
            entries,
            checkpoints,
            spans,
        })
    })
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// What the inflating thread found: the blob's compression and size, and the checkpoints.
type Inflated = (Compression, u64, Vec<Checkpoint>);

/// The reading thread: reads the blob (verifying its digest and size as it goes) in chunks into the channel,
/// reusing the `spare` ones, until its end, an error (sent on as the last chunk, a source's own error marked
/// as a [`BlobReadError`]) or the inflater hanging up.
fn read_blob(
    mut blob: VerifyingReader<Box<dyn Read + Send>>,
    tx: &SyncSender<io::Result<Vec<u8>>>,
    spare: &Receiver<Vec<u8>>,
) {
    loop {
        let mut chunk = spare.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let mut filled = 0;
        let end = loop {
            match blob.read(&mut chunk[filled..]) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    filled += n;
                    if filled == chunk.len() {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        chunk.truncate(filled);
        if filled > 0 && tx.send(Ok(chunk)).is_err() {
            return;
        }
        match end {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                let verification = e
                    .get_ref()
                    .is_some_and(|inner| inner.is::<strata_oci::Error>());
                let e = if verification {
                    e
                } else {
                    io::Error::new(e.kind(), BlobReadError(e))
                };
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}

/// A failure of the image source while reading a blob (a network error, a file cut short), as opposed to
/// bad bytes in it.
#[derive(Debug)]
struct BlobReadError(io::Error);

impl std::fmt::Display for BlobReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BlobReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The inflating thread: sniffs the compression, checks it against the media type, decompresses into the
/// channel (recording checkpoints, each told to the span hasher `spans`, when it is given) and reads the
/// blob to its end so that its digest and size are checked. `Ok(None)` when the parser hung up first.
fn inflate(
    blob: ChannelReader,
    declared: Compression,
    media_type: &str,
    spans: Option<SyncSender<SpanMsg>>,
    tx: SyncSender<io::Result<Vec<u8>>>,
    spare: &Receiver<Vec<u8>>,
) -> io::Result<Option<Inflated>> {
    let result = (|| {
        let mut input = BufReader::with_capacity(
            CHUNK,
            Counting {
                inner: blob,
                count: 0,
            },
        );
        let actual = Compression::sniff(input.fill_buf()?);
        // containers/image labels the plain layers of docker-archive as gzip; accept that one mismatch.
        let docker_archive_quirk = declared == Compression::Gzip
            && actual == Compression::None
            && media_type == media::DOCKER_LAYER_GZIP;
        if actual != declared && !docker_archive_quirk {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("media type {media_type} declares {declared:?} but the blob is {actual:?}"),
            ));
        }
        let mut decoder = Decoder::from_start(actual, spans.is_some())?;
        if let Some(spans) = &spans {
            let spans = spans.clone();
            decoder.on_checkpoint(Box::new(move |bit| {
                // A hasher gone means the pass failed; it is reported there.
                let _ = spans.send(SpanMsg::Cut(bit));
            }));
        }
        if !pump(&mut decoder, &mut input, &tx, spare)? {
            return Ok(None);
        }
        io::copy(&mut input, &mut io::sink())?;
        if let Some(spans) = &spans {
            // Every chunk was handed over (the reader's last one at the end of the stream).
            let _ = spans.send(SpanMsg::End);
        }
        Ok(Some((
            actual,
            input.get_ref().count,
            decoder.take_checkpoints(),
        )))
    })();
    if let Err(e) = &result {
        // Make sure the parser sees a failure, not a clean end of stream.
        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
    }
    result
}

/// Decodes `input` into the channel in chunks (reusing the `spare` ones); `false` when the receiver is gone.
fn pump(
    decoder: &mut Decoder,
    input: &mut dyn BufRead,
    tx: &SyncSender<io::Result<Vec<u8>>>,
    spare: &Receiver<Vec<u8>>,
) -> io::Result<bool> {
    loop {
        let mut chunk = spare.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let filled = decoder.decode(input, &mut chunk)?;
        if filled == 0 {
            return Ok(true);
        }
        chunk.truncate(filled);
        if tx.send(Ok(chunk)).is_err() {
            return Ok(false);
        }
    }
}

/// The receiving end of a channel of byte chunks as a reader: chunks are read in order, an `Err` chunk is
/// returned as the read error, and a closed channel is the end of the stream.
pub struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    release: Release,
}

/// Where a [`ChannelReader`] hands the chunks it is done with.
enum Release {
    /// Nowhere: they are dropped.
    Drop,
    /// Back to the sender, for reuse, when it has room.
    Spare(SyncSender<Vec<u8>>),
    /// To the span hasher (every chunk, in order, the last one at the end of the stream).
    Spans(SyncSender<SpanMsg>),
}

impl ChannelReader {
    /// A reader of the chunks `rx` receives.
    pub fn new(rx: Receiver<io::Result<Vec<u8>>>) -> ChannelReader {
        ChannelReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
            release: Release::Drop,
        }
    }

    /// A reader of the chunks `rx` receives that hands each chunk, once read, back to the sender through
    /// `spare` for reuse (when it has room; otherwise the chunk is dropped).
    pub fn recycling(
        rx: Receiver<io::Result<Vec<u8>>>,
        spare: SyncSender<Vec<u8>>,
    ) -> ChannelReader {
        ChannelReader {
            release: Release::Spare(spare),
            ..ChannelReader::new(rx)
        }
    }
}

impl ChannelReader {
    /// Hands `used`, read entirely, to where [`Release`] says.
    fn release(&mut self, used: Vec<u8>) {
        match &self.release {
            Release::Drop => {}
            Release::Spare(spare) => {
                if used.capacity() > 0 {
                    let _ = spare.try_send(used);
                }
            }
            Release::Spans(spans) => {
                if !used.is_empty() {
                    // A hasher gone means the pass failed; it is reported there.
                    let _ = spans.send(SpanMsg::Bytes(used));
                }
            }
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    let used = std::mem::replace(&mut self.chunk, chunk?);
                    self.pos = 0;
                    self.release(used);
                }
                Err(_) => {
                    let last = std::mem::take(&mut self.chunk);
                    self.pos = 0;
                    self.release(last);
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Hashes the tar stream on its way to the parser (the diff ID) and copies it to the caller's sink.
struct HashingReader<'w> {
    rx: ChannelReader,
    hasher: DigestWriter,
    raw: &'w mut dyn Write,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.rx.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.raw.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Maps a stream error: digest and size mismatches keep their type, the rest is a decompression error.
fn stream_error(layer: &str, e: io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<strata_oci::Error>())
    {
        Some(inner) => Error::Verify {
            layer: layer.to_owned(),
            error: match inner {
                strata_oci::Error::DigestMismatch { expected, actual } => {
                    strata_oci::Error::DigestMismatch {
                        expected: expected.clone(),
                        actual: actual.clone(),
                    }
                }
                strata_oci::Error::SizeMismatch {
                    digest,
                    expected,
                    actual,
                } => strata_oci::Error::SizeMismatch {
                    digest: digest.clone(),
                    expected: *expected,
                    actual: *actual,
                },
                other => strata_oci::Error::Invalid {
                    what: layer.to_owned(),
                    reason: other.to_string(),
                },
            },
        },
        None if e.get_ref().is_some_and(|inner| inner.is::<BlobReadError>()) => Error::Format {
            layer: layer.to_owned(),
            reason: format!("reading the blob: {e}"),
        },
        None => Error::Format {
            layer: layer.to_owned(),
            reason: format!("cannot decompress: {e}"),
        },
    }
}
