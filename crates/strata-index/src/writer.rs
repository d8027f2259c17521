//! Building an index file: [`IndexWriter`].

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use crate::entry::{Entry, EntryKind, normalise_path, split_parent};
use crate::error::{Error, Result};
use crate::format::{
    CHECKPOINT_SIZE, HEADER_SIZE_1_2, LAYER_INFO_SIZE, MAGIC, MAX_WINDOW, RECORD_SIZE,
    SECTION_ALIGN, SPAN_SIZE, VERSION_MAJOR, VERSION_MINOR, XATTR_SIZE, ckp, hdr, lay, put_u16,
    put_u32, put_u64, rec, seal, spn, xat,
};

/// A random-access point into a layer's compressed blob: decompression can restart here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Position in the compressed blob, in bits (deflate blocks need not start on a byte).
    pub compressed_bit_offset: u64,
    /// The matching position in the uncompressed tar stream, in bytes.
    pub uncompressed_offset: u64,
    /// The decompressor window (the up to 32 KiB of uncompressed data before this point); empty at zstd
    /// frame starts and for uncompressed layers.
    pub window: Vec<u8>,
}

/// A span of the compressed blob and the sha256 of its bytes (version 1.2): what a reader fetching the
/// span by range checks before decompressing a byte of it.
///
/// An index's spans cover the blob: the first starts at byte 0, the last ends at the blob's size, and each
/// starts where the one before ends, or one byte before when a checkpoint lies inside that byte (the byte
/// is then in both: the span before needs its low bits, the span after primes its inflater with its high
/// bits). Each is at most [`MAX_SPAN_BYTES`](crate::format::MAX_SPAN_BYTES) + 1 bytes long. The writer
/// cuts the blob at every checkpoint (bytes `⌊b/8⌋` to `⌈b'/8⌉` for checkpoints at bits `b` and `b'`) and
/// cuts longer runs every `MAX_SPAN_BYTES`; docs/FORMAT.md has the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanDigest {
    /// First byte of the span in the compressed blob.
    pub start: u64,
    /// The byte after the span's last.
    pub end: u64,
    /// sha256 of the blob's bytes `start..end`.
    pub sha256: [u8; 32],
}

impl SpanDigest {
    /// The span's length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span is empty (never, in a valid index).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the index says about the layer blob it describes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerInfo {
    /// Digest of the (compressed) blob, `sha256:<hex>`.
    pub blob_digest: String,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    /// The layer's media type as the manifest gives it.
    pub media_type: String,
    /// The blob's compression: [`LayerInfo::COMPRESSION_NONE`], [`LayerInfo::COMPRESSION_GZIP`] or
    /// [`LayerInfo::COMPRESSION_ZSTD`]. Readers keep unknown values as they are.
    pub compression: u8,
    /// Size of the blob, in bytes.
    pub blob_size: u64,
    /// Size of the uncompressed tar stream, in bytes.
    pub tar_size: u64,
}

impl LayerInfo {
    /// An uncompressed tar.
    pub const COMPRESSION_NONE: u8 = 0;
    /// A gzip-compressed tar.
    pub const COMPRESSION_GZIP: u8 = 1;
    /// A zstd-compressed tar.
    pub const COMPRESSION_ZSTD: u8 = 2;
}

/// Builds a layer index from a layer's entries, in tar order.
///
/// A later entry replaces an earlier one with the same path and the same class (real entries: files,
/// directories, links, devices, fifos; markers: whiteouts and opaque markers), so a path has at most one real
/// entry and one marker, as in a tar extracted in order. The layer's root directory (an entry with an empty
/// path, from `./` in the tar) is kept apart, in the root record; there too the last one wins.
#[derive(Debug, Default)]
pub struct IndexWriter {
    entries: Vec<Entry>,
    root: Option<Entry>,
    checkpoints: Vec<Checkpoint>,
    spans: Vec<SpanDigest>,
    layer: LayerInfo,
    /// The first entry refused by [`IndexWriter::push`]: its path, and why.
    rejected: Option<(String, &'static str)>,
}

/// Whether `kind` is a marker (sorts after the real entry of the same path).
pub(crate) fn class_of(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Whiteout | EntryKind::Opaque => 1,
        _ => 0,
    }
}

fn too_long(len: usize) -> bool {
    u32::try_from(len).is_err()
}

impl IndexWriter {
    /// An empty writer.
    pub fn new() -> IndexWriter {
        IndexWriter::default()
    }

    /// Adds an entry. An entry the format cannot hold (see [`IndexWriter::try_push`]) is left out, and
    /// remembered: [`IndexWriter::write`] and [`IndexWriter::try_to_bytes`] then fail.
    pub fn push(&mut self, entry: Entry) {
        if let Err(e) = self.try_push(entry)
            && self.rejected.is_none()
        {
            self.rejected = Some(match e {
                Error::UnsafePath { path, reason } | Error::Unrepresentable { path, reason } => {
                    (path, reason)
                }
                _ => (String::new(), "refused"),
            });
        }
    }

    /// Adds an entry, or says why the format cannot hold it: a path that is not normalised (see
    /// [`normalise_path`]), or a path, link, xattr name or value longer than `u32::MAX` bytes, or more than
    /// `u32::MAX` xattrs. An entry with an empty path is the layer's root directory: it must be a
    /// [`EntryKind::Dir`], and goes to the root record.
    pub fn try_push(&mut self, entry: Entry) -> Result<()> {
        let lossy = || String::from_utf8_lossy(&entry.path).into_owned();
        let root = entry.path.is_empty();
        if root && entry.kind != EntryKind::Dir {
            return Err(Error::UnsafePath {
                path: "./".into(),
                reason: "the layer root is not a directory",
            });
        }
        if !root && normalise_path(&entry.path).ok().flatten().as_deref() != Some(&entry.path[..]) {
            return Err(Error::UnsafePath {
                path: lossy(),
                reason: "is not a normalised path",
            });
        }
        let oversized = too_long(entry.path.len())
            || too_long(entry.link.len())
            || too_long(entry.xattrs.len())
            || entry
                .xattrs
                .iter()
                .any(|(n, v)| too_long(n.len()) || too_long(v.len()));
        if oversized {
            return Err(Error::Unrepresentable {
                path: lossy(),
                reason: "has a path, link, xattr or xattr count over 4 GiB",
            });
        }
        if root {
            self.root = Some(entry);
        } else {
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Adds a checkpoint (any order: they are sorted by uncompressed offset). A window longer than 32 KiB
    /// is cut to its last 32 KiB, which is all a decompressor can refer back to.
    pub fn add_checkpoint(&mut self, mut checkpoint: Checkpoint) {
        if checkpoint.window.len() > MAX_WINDOW {
            let cut = checkpoint.window.len() - MAX_WINDOW;
            checkpoint.window.drain(..cut);
        }
        self.checkpoints.push(checkpoint);
    }

    /// Sets the span digests (version 1.2), in blob order; none (the default) writes an index without
    /// them, whose range reads are not checked. They must cover the blob as [`SpanDigest`] says, or the
    /// index will not open.
    pub fn set_spans(&mut self, spans: Vec<SpanDigest>) {
        self.spans = spans;
    }

    /// Sets the layer info (empty strings and zeros if never set).
    pub fn set_layer(&mut self, layer: LayerInfo) {
        self.layer = layer;
    }

    /// The entries as the index will hold them: sorted by (parent, name, class), later duplicates winning.
    fn sorted_entries(&self) -> Vec<&Entry> {
        let mut sorted: Vec<&Entry> = self.entries.iter().collect();
        // Stable: among equal keys, tar order is kept, and the last one wins below.
        sorted.sort_by(|a, b| {
            let (ap, an) = split_parent(&a.path);
            let (bp, bn) = split_parent(&b.path);
            (ap, an, class_of(a.kind)).cmp(&(bp, bn, class_of(b.kind)))
        });
        let mut out: Vec<&Entry> = Vec::with_capacity(sorted.len());
        for e in sorted {
            match out.last_mut() {
                Some(last) if last.path == e.path && class_of(last.kind) == class_of(e.kind) => {
                    *last = e;
                }
                _ => out.push(e),
            }
        }
        out
    }

    /// The index file, or the error of the first entry [`IndexWriter::push`] refused.
    /// Also fails if the span digests do not cover the blob (see [`SpanDigest`]).
    pub fn try_to_bytes(&self) -> Result<Vec<u8>> {
        if let Some((path, reason)) = &self.rejected {
            return Err(Error::Unrepresentable {
                path: path.clone(),
                reason,
            });
        }
        if crate::reader::check_spans(self.spans.iter().copied(), self.layer.blob_size).is_err() {
            return Err(Error::Unrepresentable {
                path: self.layer.blob_digest.clone(),
                reason: "its span digests do not cover the blob",
            });
        }
        Ok(self.to_bytes())
    }

    /// The index file (without any entry [`IndexWriter::push`] refused).
    pub fn to_bytes(&self) -> Vec<u8> {
        let entries = self.sorted_entries();

        // String table, every string deduplicated; the empty string is (0, 0).
        let mut strings: Vec<u8> = Vec::new();
        let mut interned: HashMap<&[u8], u64> = HashMap::new();

        let mut records = vec![0u8; entries.len() * RECORD_SIZE];
        let mut xattrs: Vec<u8> = Vec::new();
        let mut xattr_count: u64 = 0;
        let mut tables = Tables {
            strings: &mut strings,
            interned: &mut interned,
            xattrs: &mut xattrs,
            xattr_count: &mut xattr_count,
        };
        for (record, e) in records.chunks_exact_mut(RECORD_SIZE).zip(&entries) {
            write_record(record, e, &mut tables);
        }
        let mut root = Vec::new();
        if let Some(e) = &self.root {
            root = vec![0u8; RECORD_SIZE];
            write_record(&mut root, e, &mut tables);
        }

        // Checkpoints, sorted by uncompressed offset (stable), and their windows.
        let mut checkpoints: Vec<&Checkpoint> = self.checkpoints.iter().collect();
        checkpoints.sort_by_key(|c| c.uncompressed_offset);
        let mut ckpt_table = vec![0u8; checkpoints.len() * CHECKPOINT_SIZE];
        let mut windows: Vec<u8> = Vec::new();
        for (i, c) in checkpoints.iter().enumerate() {
            let at = i * CHECKPOINT_SIZE;
            put_u64(
                &mut ckpt_table,
                at + ckp::COMPRESSED_BIT_OFFSET,
                c.compressed_bit_offset,
            );
            put_u64(
                &mut ckpt_table,
                at + ckp::UNCOMPRESSED_OFFSET,
                c.uncompressed_offset,
            );
            put_u64(&mut ckpt_table, at + ckp::WINDOW_OFF, windows.len() as u64);
            put_u32(&mut ckpt_table, at + ckp::WINDOW_LEN, len_u32(&c.window));
            windows.extend_from_slice(&c.window);
        }

        // Layer info.
        let l = &self.layer;
        let mut layer = vec![0u8; LAYER_INFO_SIZE];
        layer[lay::COMPRESSION] = l.compression;
        put_u64(&mut layer, lay::BLOB_SIZE, l.blob_size);
        put_u64(&mut layer, lay::TAR_SIZE, l.tar_size);
        put_u32(
            &mut layer,
            lay::DIGEST_LEN,
            len_u32(l.blob_digest.as_bytes()),
        );
        put_u32(&mut layer, lay::DIFF_ID_LEN, len_u32(l.diff_id.as_bytes()));
        put_u32(
            &mut layer,
            lay::MEDIA_TYPE_LEN,
            len_u32(l.media_type.as_bytes()),
        );
        layer.extend_from_slice(l.blob_digest.as_bytes());
        layer.extend_from_slice(l.diff_id.as_bytes());
        layer.extend_from_slice(l.media_type.as_bytes());

        // Span digests (version 1.2).
        let mut span_table = vec![0u8; self.spans.len() * SPAN_SIZE];
        for (r, span) in span_table.chunks_exact_mut(SPAN_SIZE).zip(&self.spans) {
            put_u64(r, spn::START, span.start);
            put_u64(r, spn::END, span.end);
            r[spn::SHA256..spn::SHA256 + 32].copy_from_slice(&span.sha256);
        }

        // Assemble: header, then each section 8-aligned.
        let sections: [&[u8]; hdr::SECTION_COUNT + 2] = [
            &records,
            &strings,
            &xattrs,
            &ckpt_table,
            &windows,
            &layer,
            &root,
            &span_table,
        ];
        let total: usize = HEADER_SIZE_1_2
            + sections
                .iter()
                .map(|s| s.len().next_multiple_of(SECTION_ALIGN))
                .sum::<usize>();
        let mut out = vec![0u8; HEADER_SIZE_1_2];
        out.reserve_exact(total - HEADER_SIZE_1_2);
        let mut placed = [(0u64, 0u64); hdr::SECTION_COUNT + 2];
        for (slot, s) in placed.iter_mut().zip(sections) {
            *slot = (out.len() as u64, s.len() as u64);
            out.extend_from_slice(s);
            out.resize(out.len().next_multiple_of(SECTION_ALIGN), 0);
        }
        out[..8].copy_from_slice(&MAGIC);
        put_u16(&mut out, hdr::MAJOR, VERSION_MAJOR);
        put_u16(&mut out, hdr::MINOR, VERSION_MINOR);
        put_u32(&mut out, hdr::FLAGS, 0);
        put_u32(&mut out, hdr::HEADER_SIZE, HEADER_SIZE_1_2 as u32);
        put_u32(&mut out, hdr::RECORD_SIZE, RECORD_SIZE as u32);
        put_u64(&mut out, hdr::ENTRY_COUNT, entries.len() as u64);
        put_u64(&mut out, hdr::XATTR_COUNT, xattr_count);
        put_u64(&mut out, hdr::CHECKPOINT_COUNT, checkpoints.len() as u64);
        let file_size = out.len() as u64;
        put_u64(&mut out, hdr::FILE_SIZE, file_size);
        // The six sections of version 1.0 in their table, the root record's (1.1) and the span table's
        // (1.2) after it.
        for (i, (off, len)) in placed.iter().enumerate() {
            put_u64(&mut out, hdr::SECTIONS + 16 * i, *off);
            put_u64(&mut out, hdr::SECTIONS + 16 * i + 8, *len);
        }
        debug_assert_eq!(hdr::SECTIONS + 16 * hdr::SECTION_COUNT, hdr::ROOT);
        debug_assert_eq!(hdr::ROOT + 16, hdr::SPANS);
        seal(&mut out);
        out
    }

    /// Writes the index to `path` atomically: a temporary file in the same directory, fsynced, renamed over
    /// `path`, and the directory fsynced. Fails, writing nothing, if [`IndexWriter::push`] refused an entry.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.try_to_bytes()?;
        write_atomic(path.as_ref(), &bytes)
    }
}

/// The string table and xattr table as records are written into them.
struct Tables<'a, 'b> {
    strings: &'a mut Vec<u8>,
    interned: &'a mut HashMap<&'b [u8], u64>,
    xattrs: &'a mut Vec<u8>,
    xattr_count: &'a mut u64,
}

/// Fills the entry record `r` (`RECORD_SIZE` bytes) for `e`, its strings and xattrs added to the tables.
fn write_record<'b>(r: &mut [u8], e: &'b Entry, t: &mut Tables<'_, 'b>) {
    let (parent, name) = split_parent(&e.path);
    let strs = [
        (rec::PARENT_OFF, rec::PARENT_LEN, parent),
        (rec::NAME_OFF, rec::NAME_LEN, name),
        (rec::LINK_OFF, rec::LINK_LEN, &e.link[..]),
    ];
    for (off_at, len_at, s) in strs {
        let off = intern_str(t.interned, t.strings, s);
        put_u64(r, off_at, off);
        put_u32(r, len_at, len_u32(s));
    }
    if let Some(kind) = r.get_mut(rec::KIND) {
        *kind = e.kind as u8;
    }
    put_u32(r, rec::MODE, e.mode);
    put_u32(r, rec::UID, e.uid);
    put_u32(r, rec::GID, e.gid);
    put_u32(r, rec::MTIME_NSEC, e.mtime_nsec);
    put_u64(r, rec::SIZE, e.size);
    put_u64(r, rec::MTIME, e.mtime as u64);
    put_u32(r, rec::DEV_MAJOR, e.dev_major);
    put_u32(r, rec::DEV_MINOR, e.dev_minor);
    put_u64(r, rec::XATTR_FIRST, *t.xattr_count);
    put_u32(r, rec::XATTR_COUNT, len_u32(&e.xattrs));
    put_u64(r, rec::DATA_OFFSET, e.offset);
    for (n, v) in &e.xattrs {
        let mut x = [0u8; XATTR_SIZE];
        put_u64(&mut x, xat::NAME_OFF, intern_str(t.interned, t.strings, n));
        put_u64(&mut x, xat::VALUE_OFF, intern_str(t.interned, t.strings, v));
        put_u32(&mut x, xat::NAME_LEN, len_u32(n));
        put_u32(&mut x, xat::VALUE_LEN, len_u32(v));
        t.xattrs.extend_from_slice(&x);
        *t.xattr_count += 1;
    }
}

fn len_u32<T>(s: &[T]) -> u32 {
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

fn intern_str<'a>(map: &mut HashMap<&'a [u8], u64>, strings: &mut Vec<u8>, s: &'a [u8]) -> u64 {
    if s.is_empty() {
        return 0;
    }
    *map.entry(s).or_insert_with(|| {
        let off = strings.len() as u64;
        strings.extend_from_slice(s);
        off
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io_err = |p: &Path, source: io::Error| Error::Io {
        path: p.to_path_buf(),
        source,
    };
    let Some(file_name) = path.file_name() else {
        return Err(io_err(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        ));
    };
    let dir: PathBuf = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, AtomicOrdering::Relaxed)
    ));
    let written = (|| -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(&dir, e))
}
