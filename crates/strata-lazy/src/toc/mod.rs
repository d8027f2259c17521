//! Layers that carry their own table of contents: eStargz (`estargz.rs`) and zstd:chunked
//! (`zstd_chunked.rs`). [`TocFinder`] recognises them by their descriptor's annotations, fetches the table
//! by range, checks it against the digest the (verified) manifest gives, and turns it into a strata layer
//! index whose offsets are *data positions* (every entry in table order takes its size, at least one
//! position, so each entry's offset is its own, as a tar offset is) and a `ChunkContents` (`chunks.rs`) that reads those positions chunk by chunk.

mod estargz;
mod zstd_chunked;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use strata_image::{ImageSource, ResolvedImage};
use strata_index::{Entry, EntryKind, IndexWriter, LayerIndex, LayerInfo};
use strata_layer::{FoundLayer, IndexOrigin, LayerFinder, LayerSpec, entry_named};
use strata_oci::Digest;

use crate::chunks::{Chunk, ChunkCache, ChunkContents, ChunkTable};
use crate::error::{Error, Result};
use crate::time::parse_rfc3339_parts;

/// The largest table of contents read, compressed or not (containers/storage refuses larger ones too).
pub const MAX_TOC_SIZE: u64 = 50 << 20;

/// The largest chunk held in memory whole; larger data chunks are refused (eStargz cuts files at 4 MiB,
/// zstd:chunked at about 64 KiB).
pub const MAX_CHUNK_SIZE: u64 = 64 << 20;

/// The annotation eStargz (and stargz's zstd:chunked writer) put the table's digest in: sha256 of the
/// uncompressed JSON.
pub(crate) const STARGZ_TOC_DIGEST: &str = "containerd.io/snapshot/stargz/toc.digest";

/// Names of eStargz's own entries, hidden from every view (as stargz-snapshotter hides them).
const ESTARGZ_OWN: [&[u8]; 3] = [
    b"stargz.index.json",
    b".prefetch.landmark",
    b".no.prefetch.landmark",
];

/// Finds layers that carry a table of contents (eStargz, zstd:chunked) and reads them lazily.
///
/// One finder serves one opened image: its layers share one bounded cache of verified chunks.
#[derive(Debug)]
pub struct TocFinder {
    cache: Arc<ChunkCache>,
}

impl TocFinder {
    /// A finder whose layers share a cache of up to `cache_bytes` of verified, decompressed chunks.
    pub fn new(cache_bytes: u64) -> TocFinder {
        TocFinder {
            cache: Arc::new(ChunkCache::new(cache_bytes)),
        }
    }
}

/// The formats a table of contents comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TocFormat {
    /// eStargz: gzip members per file or chunk, `stargz.index.json` at the end, a 51-byte footer.
    Estargz,
    /// zstd:chunked: zstd frames per file or chunk, the table in a skippable frame its annotations locate.
    ZstdChunked,
}

impl TocFormat {
    /// The format's name, as `strata index` reports it.
    pub fn name(self) -> &'static str {
        match self {
            TocFormat::Estargz => "estargz",
            TocFormat::ZstdChunked => "zstd:chunked",
        }
    }
}

/// A table of contents fetched and checked: its JSON, where the layer's file data ends in the blob, and
/// the format.
pub(crate) struct FetchedToc {
    pub(crate) json: Vec<u8>,
    /// Offset of the table in the blob: no file's chunk reaches past it.
    pub(crate) data_end: u64,
    pub(crate) format: TocFormat,
    /// Written by stargz's writer (eStargz, or `ctr-remote`'s zstd:chunked): its own entries
    /// ([`ESTARGZ_OWN`]) are hidden.
    pub(crate) stargz_writer: bool,
}

impl LayerFinder for TocFinder {
    fn find(
        &self,
        source: &Arc<dyn ImageSource>,
        image: &ResolvedImage,
        at: usize,
        spec: &LayerSpec,
    ) -> strata_layer::Result<Option<FoundLayer>> {
        let Some(descriptor) = image.manifest.layers().get(at) else {
            return Ok(None);
        };
        let empty = std::collections::HashMap::new();
        let annotations = descriptor.annotations().as_ref().unwrap_or(&empty);
        let Some(size) = spec.size else {
            return Ok(None);
        };
        let layer = Layer {
            source: source.as_ref(),
            digest: &spec.digest,
            size,
        };
        // The annotations say which format, not the media type: `ctr-remote` 0.12 converts a zstd layer
        // to eStargz (gzip) and keeps its `+zstd` media type.
        let fetched = match zstd_chunked::fetch(&layer, annotations)? {
            Some(toc) => Some(toc),
            None => estargz::fetch(&layer, annotations)?,
        };
        let Some(fetched) = fetched else {
            return Ok(None);
        };
        let toc = parse(&spec.digest, &fetched.json)?;
        let built = build(&toc, spec, &fetched)?;
        let index = LayerIndex::from_bytes(built.writer.try_to_bytes()?)?;
        let contents = ChunkContents::new(
            Arc::clone(source),
            spec.digest.clone(),
            fetched.format,
            built.table,
            Arc::clone(&self.cache),
        );
        Ok(Some(FoundLayer {
            index,
            contents: Some(Arc::new(contents)),
            origin: IndexOrigin::Toc(fetched.format.name().to_owned()),
        }))
    }
}

/// A layer blob being looked at: its source, digest and size (from the verified manifest).
pub(crate) struct Layer<'a> {
    pub(crate) source: &'a dyn ImageSource,
    pub(crate) digest: &'a Digest,
    pub(crate) size: u64,
}

impl Layer<'_> {
    /// Exactly `len` bytes of the blob at `offset` (unverified: the caller checks them).
    pub(crate) fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        read_exact_at(self.source, self.digest, offset, len)
    }

    /// A table-of-contents error about this layer.
    pub(crate) fn toc_error(&self, reason: impl Into<String>) -> Error {
        Error::Toc {
            layer: self.digest.to_string(),
            reason: reason.into(),
        }
    }
}

/// Exactly `len` bytes of blob `digest` at `offset`, or an error naming the blob.
pub(crate) fn read_exact_at(
    source: &dyn ImageSource,
    digest: &Digest,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>> {
    let short = || Error::Toc {
        layer: digest.to_string(),
        reason: format!("the blob ends before byte {}", offset.saturating_add(len)),
    };
    let len = usize::try_from(len).map_err(|_| short())?;
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let n = source.read_blob_at(digest, offset + filled as u64, &mut buf[filled..])?;
        if n == 0 {
            return Err(short());
        }
        filled += n;
    }
    Ok(buf)
}

/// A table of contents, in the JSON both formats share (eStargz's field names; zstd:chunked adds
/// `endOffset` and `chunkType`). Unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct Toc {
    version: i64,
    entries: Vec<TocEntry>,
}

/// One entry of a table of contents.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TocEntry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    modtime: Option<String>,
    link_name: String,
    mode: u64,
    uid: u64,
    gid: u64,
    dev_major: u64,
    dev_minor: u64,
    xattrs: BTreeMap<String, String>,
    digest: String,
    offset: u64,
    end_offset: u64,
    chunk_offset: u64,
    chunk_size: u64,
    chunk_digest: String,
    inner_offset: u64,
}

fn parse(layer: &Digest, json: &[u8]) -> Result<Toc> {
    let toc: Toc = serde_json::from_slice(json).map_err(|e| Error::Toc {
        layer: layer.to_string(),
        reason: format!("not a table of contents: {e}"),
    })?;
    if toc.version != 1 {
        return Err(Error::Toc {
            layer: layer.to_string(),
            reason: format!("unsupported version {}", toc.version),
        });
    }
    Ok(toc)
}

/// A layer index and chunk table built from a table of contents.
struct Built {
    writer: IndexWriter,
    table: ChunkTable,
}

/// Turns `toc` into the layer's index and chunk table, checking that every file's chunks are whole,
/// in order, inside the blob's data and carry a digest.
fn build(toc: &Toc, spec: &LayerSpec, fetched: &FetchedToc) -> Result<Built> {
    let layer = spec.digest.to_string();
    let err = |name: &str, reason: String| Error::Chunk {
        layer: layer.clone(),
        path: name.to_owned(),
        reason,
    };
    let mut writer = IndexWriter::new();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    // The regular file the following `chunk` entries belong to: its number and the bytes its chunks
    // cover so far; and where the table says its compressed data ends (zstd:chunked's `endOffset`).
    let mut current: Option<(usize, u64)> = None;
    let mut file_end: u64 = 0;
    let mut file_start: u64 = 0;
    let mut data_pos: u64 = 0;
    for e in &toc.entries {
        if e.kind == "chunk" {
            let Some((file, covered)) = current.as_mut() else {
                return Err(err(&e.name, "a chunk without a file before it".into()));
            };
            let name = paths.get(*file).cloned().unwrap_or_default();
            let size = chunks.last().map_or(0, |c| c.file_size);
            add_chunk(
                &mut chunks,
                e,
                *file,
                size,
                covered,
                file_start,
                &name,
                &err,
            )?;
            continue;
        }
        close_file(&mut chunks, current.take(), file_end, &paths, &err)?;
        let kind = match e.kind.as_str() {
            "reg" => EntryKind::File,
            "dir" => EntryKind::Dir,
            "symlink" => EntryKind::Symlink,
            "hardlink" => EntryKind::Hardlink,
            "char" => EntryKind::CharDevice,
            "block" => EntryKind::BlockDevice,
            "fifo" => EntryKind::Fifo,
            other => return Err(err(&e.name, format!("unknown entry type {other:?}"))),
        };
        let (mtime, mtime_nsec) = match &e.modtime {
            Some(t) if !t.is_empty() => parse_rfc3339_parts(t)
                .ok_or_else(|| err(&e.name, format!("unreadable modification time {t:?}")))?,
            _ => (0, 0),
        };
        let id = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| err(&e.name, format!("{what} {v} out of range")))
        };
        let mut xattrs = Vec::with_capacity(e.xattrs.len());
        for (k, v) in &e.xattrs {
            let value = base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|_| err(&e.name, format!("xattr {k}: not base64")))?;
            xattrs.push((k.as_bytes().to_vec(), value));
        }
        let is_file = kind == EntryKind::File;
        let entry = Entry {
            path: Vec::new(),
            kind,
            mode: (e.mode & 0o7777) as u32,
            uid: id(e.uid, "uid")?,
            gid: id(e.gid, "gid")?,
            size: if is_file { e.size } else { 0 },
            mtime,
            mtime_nsec,
            link: Vec::new(),
            dev_major: id(e.dev_major, "device major")?,
            dev_minor: id(e.dev_minor, "device minor")?,
            xattrs,
            offset: data_pos,
        };
        let link = (!e.link_name.is_empty()).then(|| e.link_name.as_bytes().to_vec());
        let Some(entry) =
            entry_named(e.name.as_bytes(), link, entry).map_err(|x| err(&e.name, x.to_string()))?
        else {
            continue;
        };
        if fetched.stargz_writer && ESTARGZ_OWN.contains(&entry.path.as_slice()) {
            continue;
        }
        let is_file = entry.kind == EntryKind::File;
        if is_file && e.size > 0 {
            let file = paths.len();
            paths.push(e.name.clone());
            let mut covered = 0;
            add_chunk(
                &mut chunks,
                e,
                file,
                e.size,
                &mut covered,
                data_pos,
                &e.name,
                &err,
            )?;
            current = Some((file, covered));
            file_end = e.end_offset;
            file_start = data_pos;
        }
        // Every entry gets a position of its own (readers tell entries, and hardlinks' targets, apart
        // by it, as by a tar offset): a file's data, or one unit no chunk covers.
        let span = if is_file { e.size.max(1) } else { 1 };
        data_pos = data_pos
            .checked_add(span)
            .ok_or_else(|| err(&e.name, "sizes overflow".into()))?;
        writer.push(entry);
    }
    close_file(&mut chunks, current.take(), file_end, &paths, &err)?;
    let table = ChunkTable::new(chunks, paths, fetched.data_end, spec.size.unwrap_or(0))
        .map_err(|(path, reason)| err(&path, reason))?;
    writer.set_layer(LayerInfo {
        blob_digest: layer.clone(),
        diff_id: spec
            .diff_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        media_type: spec.media_type.clone(),
        compression: match fetched.format {
            TocFormat::Estargz => LayerInfo::COMPRESSION_GZIP,
            TocFormat::ZstdChunked => LayerInfo::COMPRESSION_ZSTD,
        },
        blob_size: spec.size.unwrap_or(0),
        tar_size: data_pos,
    });
    Ok(Built { writer, table })
}

/// Adds the chunk entry `e` describes to `chunks`, for file number `file` of `file_size` bytes, whose
/// first `covered` bytes earlier chunks hold; the file's data starts at `data_start`.
#[allow(clippy::too_many_arguments)]
fn add_chunk(
    chunks: &mut Vec<Chunk>,
    e: &TocEntry,
    file: usize,
    file_size: u64,
    covered: &mut u64,
    data_start: u64,
    name: &str,
    err: &dyn Fn(&str, String) -> Error,
) -> Result<()> {
    let first = *covered == 0;
    if e.chunk_offset != *covered {
        return Err(err(
            name,
            format!(
                "a chunk starts at byte {} of the file, where {} were described",
                e.chunk_offset, covered
            ),
        ));
    }
    let left = file_size - *covered;
    let len = if e.chunk_size == 0 {
        left
    } else {
        e.chunk_size
    };
    if len == 0 || len > left {
        return Err(err(
            name,
            format!("a chunk of {len} bytes at byte {covered} of a {file_size}-byte file"),
        ));
    }
    let digest_text = if !e.chunk_digest.is_empty() {
        &e.chunk_digest
    } else if first && len == file_size {
        &e.digest
    } else {
        ""
    };
    if digest_text.is_empty() {
        return Err(err(
            name,
            format!("the chunk at byte {covered} has no digest"),
        ));
    }
    let digest = Digest::parse(digest_text)
        .map_err(|x| err(name, format!("the chunk at byte {covered}: {x}")))?;
    chunks.push(Chunk {
        start: data_start + *covered,
        len,
        offset: e.offset,
        end_offset: 0,
        inner: e.inner_offset,
        digest,
        file,
        file_size,
    });
    *covered += len;
    Ok(())
}

/// Checks that the file being described (if any) was covered whole by its chunks, and gives its last
/// chunk the end of the file's compressed data, `file_end`, where the table says it (0: it does not).
fn close_file(
    chunks: &mut [Chunk],
    current: Option<(usize, u64)>,
    file_end: u64,
    paths: &[String],
    err: &dyn Fn(&str, String) -> Error,
) -> Result<()> {
    if let Some((file, covered)) = current {
        let size = chunks.last().map_or(0, |c| c.file_size);
        if covered != size {
            let name = paths.get(file).map_or("", String::as_str);
            return Err(err(
                name,
                format!("its chunks cover {covered} of its {size} bytes"),
            ));
        }
        if let Some(last) = chunks.last_mut() {
            last.end_offset = file_end;
        }
    }
    Ok(())
}
