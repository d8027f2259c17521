//! Reading an index file in place: [`LayerIndex`] and [`EntryRef`].

use std::cmp::Ordering;
use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::entry::{Entry, EntryKind, split_parent};
use crate::error::{Error, Result};
use crate::format::{
    CHECKPOINT_SIZE, HEADER_SIZE, HEADER_SIZE_1_1, HEADER_SIZE_1_2, LAYER_INFO_SIZE, MAGIC,
    MAX_SPAN_BYTES, MAX_WINDOW, RECORD_SIZE, SPAN_SIZE, VERSION_MAJOR, XATTR_SIZE, ckp,
    compute_checksum, hdr, lay, le_u16, le_u32, le_u64, rec, spn, xat,
};
use crate::writer::{Checkpoint, LayerInfo, SpanDigest};

/// Mode of a directory the view synthesizes (an implicit parent).
pub const IMPLICIT_DIR_MODE: u32 = 0o755;

/// An index's bytes, shared by the clones of its [`LayerIndex`].
#[derive(Clone)]
enum Data {
    Map(Arc<Mmap>),
    Owned(Arc<Vec<u8>>),
}

impl Data {
    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Map(m) => m,
            Data::Owned(v) => v,
        }
    }
}

/// Maps an index file.
#[allow(unsafe_code)]
fn map_file(file: &File) -> io::Result<Mmap> {
    // SAFETY: a mapping is undefined behaviour if the file changes under it. Index files are private to
    // strata (in its own store), opened here read-only, written only through a temporary file renamed into
    // place (so an index is never modified or truncated once visible), and never truncated while mapped.
    unsafe { Mmap::map(file) }
}

/// One layer's index, memory-mapped (or in memory) and searched in place. Clones share the bytes.
///
/// Opening checks the header, the version, the section bounds, the checksum, the layer info, the xattr table
/// and the checkpoint table; entry records are checked as they are read. A corrupt or hostile index gives
/// [`Error::BadIndex`], never a panic or an out-of-bounds read.
#[derive(Clone)]
pub struct LayerIndex {
    data: Data,
    path: PathBuf,
    count: usize,
    stride: usize,
    entries: Range<usize>,
    strings: Range<usize>,
    xattrs: Range<usize>,
    checkpoints: Range<usize>,
    checkpoint_count: usize,
    windows: Range<usize>,
    layer: LayerInfo,
    /// The root record (version 1.1), empty when the layer has none.
    root: Range<usize>,
    /// The span table (version 1.2), empty when the index has no span digests.
    spans: Range<usize>,
}

impl fmt::Debug for LayerIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerIndex")
            .field("path", &self.path)
            .field("entries", &self.count)
            .field("checkpoints", &self.checkpoint_count)
            .field("spans", &self.span_count())
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// A real entry and a marker found at one path.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Probe<'a> {
    pub real: Option<EntryRef<'a>>,
    pub marker: Option<EntryRef<'a>>,
}

/// `s.cmp(a ‖ b)`, without building `a ‖ b`.
#[inline]
fn cmp_concat(s: &[u8], a: &[u8], b: &[u8]) -> Ordering {
    match s.strip_prefix(a) {
        Some(rest) => rest.cmp(b),
        None => s.cmp(a),
    }
}

/// Whether `s` starts with `a ‖ b`.
#[inline]
fn starts_with_concat(s: &[u8], a: &[u8], b: &[u8]) -> bool {
    s.strip_prefix(a).is_some_and(|rest| rest.starts_with(b))
}

type Rec = [u8; RECORD_SIZE];

impl LayerIndex {
    /// Opens and memory-maps the index file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<LayerIndex> {
        let path = path.as_ref();
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        if len < HEADER_SIZE as u64 {
            return Err(Error::BadIndex {
                path: path.to_path_buf(),
                reason: format!("{len} bytes: shorter than the header"),
            });
        }
        let map = map_file(&file).map_err(io_err)?;
        LayerIndex::parse(Data::Map(Arc::new(map)), path.to_path_buf())
    }

    /// Reads an index held in memory (errors name it `<memory>`).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<LayerIndex> {
        LayerIndex::parse(Data::Owned(Arc::new(bytes)), PathBuf::from("<memory>"))
    }

    fn parse(data: Data, path: PathBuf) -> Result<LayerIndex> {
        let bad = |reason: String| Error::BadIndex {
            path: path.clone(),
            reason,
        };
        let b = data.bytes();
        if b.len() < HEADER_SIZE {
            return Err(bad(format!("{} bytes: shorter than the header", b.len())));
        }
        if b.get(..8) != Some(&MAGIC[..]) {
            return Err(bad("not a strata layer index (bad magic)".into()));
        }
        let major = le_u16(b, hdr::MAJOR);
        let minor = le_u16(b, hdr::MINOR);
        if major != VERSION_MAJOR {
            return Err(bad(format!(
                "format version {major}.{minor}; this reader knows version {VERSION_MAJOR}"
            )));
        }
        let flags = le_u32(b, hdr::FLAGS);
        if flags != 0 {
            return Err(bad(format!("unknown flags {flags:#x}")));
        }
        let file_size = le_u64(b, hdr::FILE_SIZE);
        if file_size != b.len() as u64 {
            return Err(bad(format!(
                "{} bytes but the header says {file_size}: truncated or extended",
                b.len()
            )));
        }
        let stored = le_u32(b, hdr::CHECKSUM);
        let actual = compute_checksum(b);
        if stored != actual {
            return Err(bad(format!(
                "checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
            )));
        }
        let header_size = le_u32(b, hdr::HEADER_SIZE) as usize;
        if header_size < HEADER_SIZE || header_size > b.len() {
            return Err(bad(format!("bad header size {header_size}")));
        }
        let stride = le_u32(b, hdr::RECORD_SIZE) as usize;
        if stride < RECORD_SIZE {
            return Err(bad(format!("bad record size {stride}")));
        }
        let mut sections: [Range<usize>; hdr::SECTION_COUNT] = Default::default();
        for (i, s) in sections.iter_mut().enumerate() {
            let off = le_u64(b, hdr::SECTIONS + 16 * i);
            let len = le_u64(b, hdr::SECTIONS + 16 * i + 8);
            let end = off.checked_add(len);
            match end {
                Some(end) if off >= header_size as u64 && end <= file_size => {
                    // Both fit in usize: they are at most the length of a slice.
                    *s = off as usize..end as usize;
                }
                _ => {
                    return Err(bad(format!(
                        "section {i} ({off}, {len}) is outside the file"
                    )));
                }
            }
        }
        let [entries, strings, xattrs, checkpoints, windows, layer] = sections;
        // Version 1.1 headers add the root record's section; a 1.0 file has none.
        let mut root = 0..0;
        if header_size >= HEADER_SIZE_1_1 {
            let off = le_u64(b, hdr::ROOT);
            let len = le_u64(b, hdr::ROOT + 8);
            let fits = off
                .checked_add(len)
                .is_some_and(|end| off >= header_size as u64 && end <= file_size);
            if !fits || (len != 0 && len != stride as u64) {
                return Err(bad(format!(
                    "the root record ({off}, {len}) is outside the file or not one record"
                )));
            }
            // Both fit in usize: they are at most the length of a slice.
            if len != 0 {
                root = off as usize..(off + len) as usize;
            }
        }
        // Version 1.2 headers add the span table; 1.0 and 1.1 files have none.
        let mut spans = 0..0;
        if header_size >= HEADER_SIZE_1_2 {
            let off = le_u64(b, hdr::SPANS);
            let len = le_u64(b, hdr::SPANS + 8);
            let fits = off
                .checked_add(len)
                .is_some_and(|end| off >= header_size as u64 && end <= file_size);
            if !fits || !len.is_multiple_of(SPAN_SIZE as u64) {
                return Err(bad(format!(
                    "the span table ({off}, {len}) is outside the file or not whole records"
                )));
            }
            // Both fit in usize: they are at most the length of a slice.
            spans = off as usize..(off + len) as usize;
        }
        let table = |name: &str, count_at: usize, size: usize, r: &Range<usize>| {
            let count = le_u64(b, count_at);
            match usize::try_from(count)
                .ok()
                .and_then(|c| c.checked_mul(size))
            {
                Some(n) if n == r.len() => Ok(n / size),
                _ => Err(bad(format!(
                    "{name}: {count} records do not fill {} bytes",
                    r.len()
                ))),
            }
        };
        let count = table("entries", hdr::ENTRY_COUNT, stride, &entries)?;
        table("xattrs", hdr::XATTR_COUNT, XATTR_SIZE, &xattrs)?;
        let checkpoint_count = table(
            "checkpoints",
            hdr::CHECKPOINT_COUNT,
            CHECKPOINT_SIZE,
            &checkpoints,
        )?;

        let string_bytes = b.get(strings.clone()).unwrap_or_default();
        let in_strings = |off: u64, len: u32| {
            usize::try_from(off)
                .ok()
                .and_then(|o| o.checked_add(len as usize))
                .is_some_and(|end| end <= string_bytes.len())
        };
        // The xattr table is small: check it all now, so that entries' xattrs read infallibly.
        let xattr_bytes = b.get(xattrs.clone()).unwrap_or_default();
        for (i, x) in xattr_bytes.chunks_exact(XATTR_SIZE).enumerate() {
            let name_ok = in_strings(le_u64(x, xat::NAME_OFF), le_u32(x, xat::NAME_LEN));
            let value_ok = in_strings(le_u64(x, xat::VALUE_OFF), le_u32(x, xat::VALUE_LEN));
            if !(name_ok && value_ok) {
                return Err(bad(format!("xattr {i} points outside the string table")));
            }
        }
        // Checkpoints likewise (one per MiB or so of tar).
        let ckpt_bytes = b.get(checkpoints.clone()).unwrap_or_default();
        let mut last = 0u64;
        for (i, c) in ckpt_bytes.chunks_exact(CHECKPOINT_SIZE).enumerate() {
            let uncompressed = le_u64(c, ckp::UNCOMPRESSED_OFFSET);
            let off = le_u64(c, ckp::WINDOW_OFF);
            let len = le_u32(c, ckp::WINDOW_LEN);
            let in_blob = usize::try_from(off)
                .ok()
                .and_then(|o| o.checked_add(len as usize))
                .is_some_and(|end| end <= windows.len());
            if !in_blob || len as usize > MAX_WINDOW {
                return Err(bad(format!("checkpoint {i} has a bad window")));
            }
            if uncompressed < last {
                return Err(bad(format!("checkpoint {i} is out of order")));
            }
            last = uncompressed;
        }
        let layer = parse_layer(b.get(layer).unwrap_or_default()).map_err(bad)?;
        check_spans(
            b.get(spans.clone())
                .unwrap_or_default()
                .chunks_exact(SPAN_SIZE)
                .map(span_of),
            layer.blob_size,
        )
        .map_err(bad)?;

        Ok(LayerIndex {
            data,
            path,
            count,
            stride,
            entries,
            strings,
            xattrs,
            checkpoints,
            checkpoint_count,
            windows,
            layer,
            root,
            spans,
        })
    }

    /// The file this index was opened from (`<memory>` for [`LayerIndex::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records (real entries and markers).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the index has no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// What the index says about its layer blob.
    pub fn layer(&self) -> &LayerInfo {
        &self.layer
    }

    /// The real entry (not a whiteout or opaque marker) at the normalised `path`. The root (`b""`) is not an
    /// entry; paths that are not normalised are not found.
    pub fn lookup(&self, path: &[u8]) -> Result<Option<EntryRef<'_>>> {
        Ok(self.probe(path)?.real)
    }

    /// The marker at `path`: [`EntryKind::Whiteout`] (the layer deletes `path` from lower layers) or
    /// [`EntryKind::Opaque`] (the layer hides lower layers' contents of directory `path`).
    pub fn marker(&self, path: &[u8]) -> Result<Option<EntryKind>> {
        Ok(self.probe(path)?.marker.map(|m| m.kind()))
    }

    /// The layer's own entry for its root directory (`./` in its tar), with an empty name and parent; `None`
    /// when the layer has none (or the index predates version 1.1).
    pub fn root(&self) -> Result<Option<EntryRef<'_>>> {
        if self.root.is_empty() {
            return Ok(None);
        }
        let r = self
            .data
            .bytes()
            .get(self.root.start..self.root.start.saturating_add(RECORD_SIZE))
            .and_then(|s| <&Rec>::try_from(s).ok())
            .ok_or_else(|| self.bad("the root record is outside the file"))?;
        let e = self.entry_of(r, "the root record")?;
        if e.kind() != EntryKind::Dir || !e.parent().is_empty() || !e.name().is_empty() {
            return Err(self.bad("the root record is not an unnamed directory"));
        }
        Ok(Some(e))
    }

    /// The records whose parent is `dir` (`b""` for the root): real entries and markers, sorted by name (a
    /// real entry before the marker of the same name). Implicit subdirectories (records deeper down with no
    /// record for the directory itself) are not listed; [`crate::MergedView`] synthesizes them.
    pub fn readdir(&self, dir: &[u8]) -> Result<ReadDir<'_>> {
        let first = self.partition(0, self.count, |p, _, _| Ok(p < dir))?;
        let parent = match self.get_rec(first)? {
            Some(r) => {
                let p = self.parent_of(r)?;
                (p == dir).then_some(p)
            }
            None => None,
        };
        Ok(ReadDir {
            index: self,
            dir: parent.unwrap_or_default(),
            pos: first,
            done: parent.is_none(),
        })
    }

    /// Every record, in index order (by parent, then name, then real before marker).
    pub fn iter(&self) -> Entries<'_> {
        Entries {
            index: self,
            range: 0..self.count,
        }
    }

    /// The record at position `i` of [`LayerIndex::iter`]'s order.
    pub fn get(&self, i: usize) -> Result<Option<EntryRef<'_>>> {
        if i >= self.count {
            return Ok(None);
        }
        self.entry_at(i).map(Some)
    }

    /// The checkpoints, by uncompressed offset.
    pub fn checkpoints(&self) -> Checkpoints<'_> {
        Checkpoints {
            index: self,
            range: 0..self.checkpoint_count,
        }
    }

    /// The last checkpoint at or before `uncompressed_offset`, where decompression should start to read
    /// the tar stream from there.
    pub fn checkpoint_for(&self, uncompressed_offset: u64) -> Option<CheckpointRef<'_>> {
        let (mut lo, mut hi) = (0, self.checkpoint_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.checkpoint_at(mid) {
                Some(c) if c.uncompressed_offset <= uncompressed_offset => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|i| self.checkpoint_at(i))
    }

    /// Whether the index has span digests (version 1.2): range reads of its blob can then be checked
    /// span by span. Indexes written before 1.2, or without them, have none.
    pub fn has_span_digests(&self) -> bool {
        !self.spans.is_empty()
    }

    /// Number of span digests (0 without them).
    pub fn span_count(&self) -> usize {
        self.spans.len() / SPAN_SIZE
    }

    /// The span digests, in blob order (checked at open to cover the blob; see [`SpanDigest`]).
    pub fn spans(&self) -> impl ExactSizeIterator<Item = SpanDigest> + '_ {
        self.data
            .bytes()
            .get(self.spans.clone())
            .unwrap_or_default()
            .chunks_exact(SPAN_SIZE)
            .map(span_of)
    }

    fn checkpoint_at(&self, i: usize) -> Option<CheckpointRef<'_>> {
        let b = self.data.bytes();
        let table = b.get(self.checkpoints.clone())?;
        let at = i.checked_mul(CHECKPOINT_SIZE)?;
        let c = table.get(at..at.checked_add(CHECKPOINT_SIZE)?)?;
        let off = usize::try_from(le_u64(c, ckp::WINDOW_OFF)).ok()?;
        let len = le_u32(c, ckp::WINDOW_LEN) as usize;
        let window = b
            .get(self.windows.clone())?
            .get(off..off.checked_add(len)?)?;
        Some(CheckpointRef {
            compressed_bit_offset: le_u64(c, ckp::COMPRESSED_BIT_OFFSET),
            uncompressed_offset: le_u64(c, ckp::UNCOMPRESSED_OFFSET),
            window,
        })
    }

    // ----- internals -----

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadIndex {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    #[inline]
    fn strings(&self) -> &[u8] {
        self.data
            .bytes()
            .get(self.strings.clone())
            .unwrap_or_default()
    }

    /// Record `i`, if `i < len()`.
    #[inline]
    fn get_rec(&self, i: usize) -> Result<Option<&Rec>> {
        if i >= self.count {
            return Ok(None);
        }
        self.rec(i).map(Some)
    }

    /// Record `i` (< `len()`).
    #[inline]
    fn rec(&self, i: usize) -> Result<&Rec> {
        i.checked_mul(self.stride)
            .and_then(|o| o.checked_add(self.entries.start))
            .and_then(|start| {
                self.data
                    .bytes()
                    .get(start..start.checked_add(RECORD_SIZE)?)
            })
            .and_then(|s| <&Rec>::try_from(s).ok())
            .ok_or_else(|| self.bad(format!("record {i} is outside the file")))
    }

    #[inline]
    fn string(&self, off: u64, len: u32, what: &str) -> Result<&[u8]> {
        usize::try_from(off)
            .ok()
            .and_then(|o| self.strings().get(o..o.checked_add(len as usize)?))
            .ok_or_else(|| self.bad(format!("{what} ({off}, {len}) is outside the string table")))
    }

    #[inline]
    fn parent_of(&self, r: &Rec) -> Result<&[u8]> {
        self.string(
            le_u64(r, rec::PARENT_OFF),
            le_u32(r, rec::PARENT_LEN),
            "parent",
        )
    }

    #[inline]
    fn name_of(&self, r: &Rec) -> Result<&[u8]> {
        self.string(le_u64(r, rec::NAME_OFF), le_u32(r, rec::NAME_LEN), "name")
    }

    /// First position in `lo..hi` where `before(parent, record)` is false (records before it answer true).
    /// The predicate gets the record's parent, the record, and the index (to read its name lazily).
    #[inline]
    fn partition(
        &self,
        mut lo: usize,
        mut hi: usize,
        mut before: impl FnMut(&[u8], &Rec, &Self) -> Result<bool>,
    ) -> Result<usize> {
        hi = hi.min(self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = self.rec(mid)?;
            if before(self.parent_of(r)?, r, self)? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Builds the [`EntryRef`] of record `i`, checking everything it refers to.
    fn entry_at(&self, i: usize) -> Result<EntryRef<'_>> {
        self.entry_of(self.rec(i)?, &format!("record {i}"))
    }

    /// Builds the [`EntryRef`] of record `r` (named `what` in errors), checking everything it refers to.
    fn entry_of<'s>(&'s self, r: &'s Rec, what: &str) -> Result<EntryRef<'s>> {
        let kind_byte = r[rec::KIND];
        let kind = EntryKind::from_u8(kind_byte)
            .ok_or_else(|| self.bad(format!("{what} has unknown kind {kind_byte}")))?;
        let parent = self.parent_of(r)?;
        let name = self.name_of(r)?;
        let link = self.string(le_u64(r, rec::LINK_OFF), le_u32(r, rec::LINK_LEN), "link")?;
        let first = le_u64(r, rec::XATTR_FIRST);
        let n = le_u32(r, rec::XATTR_COUNT);
        let xattrs = usize::try_from(first)
            .ok()
            .and_then(|f| f.checked_mul(XATTR_SIZE))
            .and_then(|start| {
                let end = start.checked_add((n as usize).checked_mul(XATTR_SIZE)?)?;
                self.data.bytes().get(self.xattrs.clone())?.get(start..end)
            })
            .ok_or_else(|| self.bad(format!("{what} has xattrs outside the table")))?;
        Ok(EntryRef {
            rec: Some(r),
            parent,
            name,
            link,
            kind,
            xattrs,
            strings: self.strings(),
        })
    }

    /// The real entry and the marker at `path`: one binary search.
    pub(crate) fn probe(&self, path: &[u8]) -> Result<Probe<'_>> {
        let mut out = Probe::default();
        if path.is_empty() {
            return Ok(out);
        }
        let (parent, name) = split_parent(path);
        let i = self.partition(0, self.count, |p, r, s| {
            Ok(match p.cmp(parent) {
                Ordering::Less => true,
                Ordering::Greater => false,
                Ordering::Equal => s.name_of(r)? < name,
            })
        })?;
        for j in i..self.count.min(i + 2) {
            let r = self.rec(j)?;
            if self.parent_of(r)? != parent || self.name_of(r)? != name {
                break;
            }
            let e = self.entry_at(j)?;
            if e.is_marker() {
                out.marker.get_or_insert(e);
            } else {
                out.real.get_or_insert(e);
            }
        }
        Ok(out)
    }

    /// If the index has a record strictly below `path` (a record whose parent is `path` or lies under it),
    /// a slice of the string table equal to `path`.
    pub(crate) fn descendant_witness(&self, path: &[u8]) -> Result<Option<&[u8]>> {
        let i = self.partition(0, self.count, |p, _, _| Ok(p < path))?;
        let Some(r) = self.get_rec(i)? else {
            return Ok(None);
        };
        let p = self.parent_of(r)?;
        if p == path {
            return Ok(Some(p));
        }
        let j = self.partition(i, self.count, |p, _, _| {
            Ok(cmp_concat(p, path, b"/") == Ordering::Less)
        })?;
        if let Some(r) = self.get_rec(j)? {
            let p = self.parent_of(r)?;
            if starts_with_concat(p, path, b"/") {
                return Ok(p.get(..path.len()));
            }
        }
        Ok(None)
    }

    /// Sets `out` to the subdirectories of `dir` implied by deeper records, as (parent, name) slices of the
    /// string table, sorted by name and deduplicated. One binary search per subdirectory (not a scan of its tree).
    pub(crate) fn implied_subdirs<'a>(
        &'a self,
        dir: &[u8],
        out: &mut Vec<(&'a [u8], &'a [u8])>,
    ) -> Result<()> {
        let slash: &[u8] = if dir.is_empty() { b"" } else { b"/" };
        let plen = dir.len() + slash.len();
        out.clear();
        let mut pos = self.partition(0, self.count, |p, _, _| {
            Ok(if dir.is_empty() {
                p.is_empty()
            } else {
                cmp_concat(p, dir, b"/") == Ordering::Less
            })
        })?;
        while let Some(r) = self.get_rec(pos)? {
            let p = self.parent_of(r)?;
            if !starts_with_concat(p, dir, slash) {
                break;
            }
            let rest = p.get(plen..).unwrap_or_default();
            let clen = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
            let (Some(group), Some(parent), Some(name)) =
                (p.get(..plen + clen), p.get(..dir.len()), rest.get(..clen))
            else {
                break;
            };
            if clen == 0 {
                // Only in a corrupt index (an empty component).
                pos += 1;
                continue;
            }
            out.push((parent, name));
            let next = if clen == rest.len() {
                // Parent is exactly dir/name: skip the records of that directory.
                self.partition(pos, self.count, |q, _, _| Ok(q <= group))?
            } else {
                // Parent lies under dir/name/: skip that whole subtree.
                self.partition(pos, self.count, |q, _, _| {
                    Ok(cmp_concat(q, group, b"/") == Ordering::Less
                        || starts_with_concat(q, group, b"/"))
                })?
            };
            // Always progress, even over an unsorted (corrupt) index.
            pos = next.max(pos + 1);
        }
        out.sort_unstable_by(|a, b| a.1.cmp(b.1));
        out.dedup_by(|a, b| a.1 == b.1);
        Ok(())
    }
}

/// The span record `r` ([`SPAN_SIZE`] bytes).
fn span_of(r: &[u8]) -> SpanDigest {
    let mut sha256 = [0u8; 32];
    if let Some(h) = r.get(spn::SHA256..spn::SHA256 + 32) {
        sha256.copy_from_slice(h);
    }
    SpanDigest {
        start: le_u64(r, spn::START),
        end: le_u64(r, spn::END),
        sha256,
    }
}

/// Checks that `spans` (none, or the span table) cover a blob of `blob_size` bytes as [`SpanDigest`]
/// says: from byte 0 to `blob_size`, each starting where the one before ends or one byte before, each
/// non-empty, longer than the one before's start, and at most [`MAX_SPAN_BYTES`] + 1 bytes long.
pub(crate) fn check_spans(
    spans: impl Iterator<Item = SpanDigest>,
    blob_size: u64,
) -> std::result::Result<(), String> {
    let mut prev: Option<SpanDigest> = None;
    for (i, s) in spans.enumerate() {
        if s.start >= s.end || s.end - s.start > MAX_SPAN_BYTES + 1 || s.end > blob_size {
            return Err(format!(
                "span {i} ({}..{}) is empty, too long or past the blob's {blob_size} bytes",
                s.start, s.end
            ));
        }
        let follows = match prev {
            None => s.start == 0,
            Some(p) => {
                s.start > p.start && (s.start == p.end || s.start.checked_add(1) == Some(p.end))
            }
        };
        if !follows {
            return Err(format!(
                "span {i} ({}..{}) does not follow the span before it",
                s.start, s.end
            ));
        }
        prev = Some(s);
    }
    match prev {
        Some(p) if p.end != blob_size => Err(format!(
            "the spans end at byte {} but the blob has {blob_size}",
            p.end
        )),
        _ => Ok(()),
    }
}

fn parse_layer(b: &[u8]) -> std::result::Result<LayerInfo, String> {
    if b.len() < LAYER_INFO_SIZE {
        return Err("layer info is too short".into());
    }
    let lens = [
        le_u32(b, lay::DIGEST_LEN) as usize,
        le_u32(b, lay::DIFF_ID_LEN) as usize,
        le_u32(b, lay::MEDIA_TYPE_LEN) as usize,
    ];
    let mut at = LAYER_INFO_SIZE;
    let mut strs = Vec::with_capacity(3);
    for len in lens {
        let s = at
            .checked_add(len)
            .and_then(|end| b.get(at..end))
            .ok_or("layer info strings overrun the section")?;
        let s = std::str::from_utf8(s).map_err(|_| "layer info string is not UTF-8")?;
        strs.push(s.to_owned());
        at += len;
    }
    let mut strs = strs.into_iter();
    Ok(LayerInfo {
        blob_digest: strs.next().unwrap_or_default(),
        diff_id: strs.next().unwrap_or_default(),
        media_type: strs.next().unwrap_or_default(),
        compression: b.first().copied().unwrap_or_default(),
        blob_size: le_u64(b, lay::BLOB_SIZE),
        tar_size: le_u64(b, lay::TAR_SIZE),
    })
}

/// One record of an index, read in place (or a directory the merged view synthesizes, see
/// [`EntryRef::is_implicit`]). Every accessor is cheap; [`EntryRef::path`] and [`EntryRef::to_entry`]
/// allocate.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    /// `None` for a synthesized directory.
    rec: Option<&'a Rec>,
    parent: &'a [u8],
    name: &'a [u8],
    link: &'a [u8],
    kind: EntryKind,
    /// This entry's xattr records (checked at open to point inside `strings`).
    xattrs: &'a [u8],
    strings: &'a [u8],
}

impl<'a> EntryRef<'a> {
    /// A synthesized directory `parent/name`: mode 0755, owned by 0:0, everything else zero.
    pub(crate) fn implicit(parent: &'a [u8], name: &'a [u8]) -> EntryRef<'a> {
        EntryRef {
            rec: None,
            parent,
            name,
            link: &[],
            kind: EntryKind::Dir,
            xattrs: &[],
            strings: &[],
        }
    }

    #[inline]
    fn u32_field(&self, at: usize) -> u32 {
        self.rec.map_or(0, |r| le_u32(r, at))
    }

    #[inline]
    fn u64_field(&self, at: usize) -> u64 {
        self.rec.map_or(0, |r| le_u64(r, at))
    }

    /// The parent directory's path (`b""` for the root).
    pub fn parent(&self) -> &'a [u8] {
        self.parent
    }

    /// The last path component.
    pub fn name(&self) -> &'a [u8] {
        self.name
    }

    /// The full normalised path (`parent/name`).
    pub fn path(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.parent.len() + 1 + self.name.len());
        self.write_path(&mut out);
        out
    }

    /// Appends the full path to `out`.
    pub fn write_path(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.parent);
        if !self.parent.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(self.name);
    }

    /// What the entry is.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// Whether this is a whiteout or opaque marker rather than a real entry.
    pub fn is_marker(&self) -> bool {
        matches!(self.kind, EntryKind::Whiteout | EntryKind::Opaque)
    }

    /// Whether this directory was synthesized by the merged view (a parent no layer has an entry for).
    pub fn is_implicit(&self) -> bool {
        self.rec.is_none()
    }

    /// Permission bits (with setuid, setgid, sticky).
    pub fn mode(&self) -> u32 {
        match self.rec {
            Some(r) => le_u32(r, rec::MODE),
            None => IMPLICIT_DIR_MODE,
        }
    }

    /// Owner.
    pub fn uid(&self) -> u32 {
        self.u32_field(rec::UID)
    }

    /// Group.
    pub fn gid(&self) -> u32 {
        self.u32_field(rec::GID)
    }

    /// Size of a regular file's content (0 for anything else).
    pub fn size(&self) -> u64 {
        self.u64_field(rec::SIZE)
    }

    /// Modification time, seconds since the epoch.
    pub fn mtime(&self) -> i64 {
        self.u64_field(rec::MTIME) as i64
    }

    /// Nanoseconds of the modification time.
    pub fn mtime_nsec(&self) -> u32 {
        self.u32_field(rec::MTIME_NSEC)
    }

    /// Symlink target (verbatim) or hardlink target (normalised path); empty otherwise.
    pub fn link(&self) -> &'a [u8] {
        self.link
    }

    /// Device major number.
    pub fn dev_major(&self) -> u32 {
        self.u32_field(rec::DEV_MAJOR)
    }

    /// Device minor number.
    pub fn dev_minor(&self) -> u32 {
        self.u32_field(rec::DEV_MINOR)
    }

    /// Offset of the entry's content in the uncompressed tar stream (of its header for entries without
    /// content).
    pub fn offset(&self) -> u64 {
        self.u64_field(rec::DATA_OFFSET)
    }

    /// Number of extended attributes.
    pub fn xattr_count(&self) -> usize {
        self.xattrs.len() / XATTR_SIZE
    }

    /// The extended attributes, `(name, value)`, in tar order.
    pub fn xattrs(&self) -> Xattrs<'a> {
        Xattrs {
            records: self.xattrs.chunks_exact(XATTR_SIZE),
            strings: self.strings,
        }
    }

    /// The value of extended attribute `name`, if set (the last one, if set twice).
    pub fn xattr(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.xattrs()
            .filter(|(n, _)| *n == name)
            .last()
            .map(|(_, v)| v)
    }

    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry {
            path: self.path(),
            kind: self.kind,
            mode: self.mode(),
            uid: self.uid(),
            gid: self.gid(),
            size: self.size(),
            mtime: self.mtime(),
            mtime_nsec: self.mtime_nsec(),
            link: self.link.to_vec(),
            dev_major: self.dev_major(),
            dev_minor: self.dev_minor(),
            xattrs: self
                .xattrs()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect(),
            offset: self.offset(),
        }
    }
}

impl fmt::Debug for EntryRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryRef")
            .field("path", &String::from_utf8_lossy(&self.path()))
            .field("kind", &self.kind)
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("uid", &self.uid())
            .field("gid", &self.gid())
            .field("size", &self.size())
            .field("link", &String::from_utf8_lossy(self.link))
            .field("implicit", &self.is_implicit())
            .finish_non_exhaustive()
    }
}

/// The extended attributes of an [`EntryRef`].
#[derive(Debug, Clone)]
pub struct Xattrs<'a> {
    records: std::slice::ChunksExact<'a, u8>,
    strings: &'a [u8],
}

impl<'a> Iterator for Xattrs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let x = self.records.next()?;
        let get = |off_at: usize, len_at: usize| {
            let off = usize::try_from(le_u64(x, off_at)).ok()?;
            self.strings
                .get(off..off.checked_add(le_u32(x, len_at) as usize)?)
        };
        // Checked when the index was opened, so always Some.
        Some((
            get(xat::NAME_OFF, xat::NAME_LEN)?,
            get(xat::VALUE_OFF, xat::VALUE_LEN)?,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.records.size_hint()
    }
}

/// The records of one directory: see [`LayerIndex::readdir`].
#[derive(Debug)]
pub struct ReadDir<'a> {
    index: &'a LayerIndex,
    /// The directory, as a slice of the string table.
    dir: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for ReadDir<'a> {
    type Item = Result<EntryRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = (|| {
            let Some(r) = self.index.get_rec(self.pos)? else {
                return Ok(None);
            };
            if self.index.parent_of(r)? != self.dir {
                return Ok(None);
            }
            let e = self.index.entry_at(self.pos)?;
            self.pos += 1;
            Ok(Some(e))
        })();
        match step {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Every record of an index: see [`LayerIndex::iter`].
#[derive(Debug)]
pub struct Entries<'a> {
    index: &'a LayerIndex,
    range: Range<usize>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<EntryRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let i = self.range.next()?;
        Some(self.index.entry_at(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
}

impl ExactSizeIterator for Entries<'_> {}

impl DoubleEndedIterator for Entries<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let i = self.range.next_back()?;
        Some(self.index.entry_at(i))
    }
}

/// A checkpoint read in place: see [`Checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointRef<'a> {
    /// Position in the compressed blob, in bits.
    pub compressed_bit_offset: u64,
    /// Position in the uncompressed tar stream, in bytes.
    pub uncompressed_offset: u64,
    /// The decompressor window (≤ 32 KiB; empty at zstd frame starts).
    pub window: &'a [u8],
}

impl CheckpointRef<'_> {
    /// An owned copy.
    pub fn to_checkpoint(&self) -> Checkpoint {
        Checkpoint {
            compressed_bit_offset: self.compressed_bit_offset,
            uncompressed_offset: self.uncompressed_offset,
            window: self.window.to_vec(),
        }
    }
}

/// The checkpoints of an index: see [`LayerIndex::checkpoints`].
#[derive(Debug)]
pub struct Checkpoints<'a> {
    index: &'a LayerIndex,
    range: Range<usize>,
}

impl<'a> Iterator for Checkpoints<'a> {
    type Item = CheckpointRef<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Checked at open: always Some.
        self.range.find_map(|i| self.index.checkpoint_at(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.range.len()))
    }
}
