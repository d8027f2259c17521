//! The zstd:chunked writer, in containers/storage's current layout (docs/FORMAT.md "zstd:chunked layers
//! strata writes"): the layer's tar, byte for byte, cut into zstd frames so that every regular file's data
//! starts a frame (and every chunk of a large file), then a skippable frame holding the zstd-compressed JSON
//! table of contents, one holding the zstd-compressed tar-split (the tar's headers and padding, for
//! rebuilding it from files), and one holding the 64-byte footer. The annotations locate and pin the
//! table and the tar-split. The tar is unchanged, so the layer's diff ID is the one it had. The tar-split is
//! recorded by the layer engine's writer ([`strata_layer::tarsplit`], the store's too) fed the tar's bytes as
//! they are read.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::rc::Rc;

use base64::Engine as _;
use serde_json::{Value, json};
use strata_layer::tarsplit::TarSplitWriter;
use strata_oci::Digest;

/// The table's checksum annotation: sha256 of the compressed table.
pub const ZSTD_CHUNKED_CHECKSUM: &str = "io.github.containers.zstd-chunked.manifest-checksum";
/// The table's position annotation: `offset:length:uncompressed length:1`.
pub const ZSTD_CHUNKED_POSITION: &str = "io.github.containers.zstd-chunked.manifest-position";
/// The tar-split's position annotation: `offset:length:uncompressed length`.
pub const ZSTD_CHUNKED_TARSPLIT_POSITION: &str =
    "io.github.containers.zstd-chunked.tarsplit-position";

/// The footer's magic.
const MAGIC: &[u8; 8] = b"GNUlInUx";
/// The table type of a JSON table ("CRFS").
const MANIFEST_TYPE_CRFS: u64 = 1;
/// zstd's skippable frame magic (the first of its sixteen).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// The largest chunk of a file in one frame (as eStargz cuts files).
pub const CHUNK_SIZE: usize = 4 << 20;
/// The default zstd level of containers/storage's zstd:chunked writer.
pub const DEFAULT_LEVEL: i32 = 10;

/// What was written: the annotations for the layer's descriptor.
#[derive(Debug, Clone)]
pub struct Written {
    /// The annotations that locate and pin the table and the tar-split.
    pub annotations: BTreeMap<String, String>,
}

/// Records every byte read through it, for the frames (the tar crate parses, this keeps the bytes).
pub(crate) struct Recording<R> {
    pub(crate) inner: R,
    pub(crate) seen: Rc<RefCell<Vec<u8>>>,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen
            .borrow_mut()
            .extend_from_slice(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// Counts the bytes written to the blob.
struct Out<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Out<W> {
    /// `bytes` as one zstd frame at `level`.
    fn frame(&mut self, bytes: &[u8], level: i32) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let compressed = zstd::bulk::compress(bytes, level)?;
        self.raw(&compressed)
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// `bytes` in a skippable frame; returns the offset of `bytes`.
    fn skippable(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| io::Error::other("a skippable frame over 4 GiB"))?;
        self.raw(&SKIPPABLE_MAGIC.to_le_bytes())?;
        self.raw(&len.to_le_bytes())?;
        let at = self.written;
        self.raw(bytes)?;
        Ok(at)
    }
}

/// Passes every byte read through it to the tar-split writer — the layer engine's, which the store records
/// with too (docs/FORMAT.md "tar-split") — so the tar-split is recorded from the very bytes the frames hold.
struct TarSplitTee<R> {
    inner: R,
    split: TarSplitWriter<Vec<u8>>,
}

impl<R: Read> Read for TarSplitTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.split.write_all(buf.get(..n).unwrap_or_default())?;
        Ok(n)
    }
}

/// Seconds since the epoch as RFC 3339 (UTC), as Go encodes a `time.Time` of whole seconds.
pub(crate) fn rfc3339(secs: u64) -> String {
    strata_oci::civil::format_unix(i64::try_from(secs).unwrap_or(0), 0)
}

/// A tar name as the tables give it (stargz's `cleanEntryName`: Go's `path.Clean("/" + name)` without
/// the leading slash): no `./`, no trailing `/`, no `..` above the root.
pub(crate) fn clean_name(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The table entry of a tar header (no offsets yet): type, name, mode, owner, time, link target, device
/// numbers of devices, and extended attributes (PAX `SCHILY.xattr.*`, values in base64).
pub(crate) fn entry_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Value> {
    let h = entry.header();
    let entry_type = h.entry_type();
    let kind = match entry_type {
        tar::EntryType::Directory => "dir",
        tar::EntryType::Symlink => "symlink",
        tar::EntryType::Link => "hardlink",
        tar::EntryType::Char => "char",
        tar::EntryType::Block => "block",
        tar::EntryType::Fifo => "fifo",
        _ => "reg",
    };
    let mut e = json!({
        "type": kind,
        "name": clean_name(&entry.path_bytes()),
        "mode": h.mode()?,
        "uid": h.uid()?,
        "gid": h.gid()?,
        "modtime": rfc3339(h.mtime()?),
    });
    if let Some(link) = entry.link_name_bytes() {
        e["linkName"] = if kind == "hardlink" {
            json!(clean_name(&link))
        } else {
            json!(String::from_utf8_lossy(&link))
        };
    }
    if matches!(kind, "char" | "block") {
        e["devMajor"] = json!(h.device_major()?.unwrap_or(0));
        e["devMinor"] = json!(h.device_minor()?.unwrap_or(0));
    }
    let mut xattrs = serde_json::Map::new();
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.".as_slice()) {
                xattrs.insert(
                    String::from_utf8_lossy(name).into_owned(),
                    json!(base64::engine::general_purpose::STANDARD.encode(ext.value_bytes())),
                );
            }
        }
    }
    if !xattrs.is_empty() {
        e["xattrs"] = Value::Object(xattrs);
    }
    Ok(e)
}

/// Whether a tar header's entry carries file data in the table (a regular file with bytes).
fn is_data(kind: &Value, size: u64) -> bool {
    kind == "reg" && size > 0
}

/// Writes the tar read from `tar` to `out` as a zstd:chunked blob: files cut into frames of at most
/// `chunk` bytes, each frame at `level`; then the table, the tar-split and the footer.
///
/// # Errors
/// When the tar cannot be read or parsed, or `out` cannot be written (the message says which).
pub fn write_zstd_chunked(
    tar: impl Read,
    mut out: impl Write,
    chunk: usize,
    level: i32,
) -> Result<Written, String> {
    let data = write_zstd_chunked_data(tar, &mut out, chunk, level)?;
    write_zstd_chunked_tail(out, &data, level)
}

/// The first part of a zstd:chunked blob, written: its length, the table (without `tarSplitDigest`, which
/// the tail adds) and the tar-split's JSON lines. A test may change the table before the tail is written.
#[derive(Debug, Clone)]
pub struct ChunkedData {
    /// Bytes written: where the tail starts.
    pub len: u64,
    /// The table of contents, `{"version": 1, "entries": [...]}`.
    pub toc: Value,
    /// The tar-split, uncompressed.
    pub tar_split: Vec<u8>,
}

/// Writes the frames of the tar read from `tar` to `out` (the first part of [`write_zstd_chunked`]).
///
/// # Errors
/// As [`write_zstd_chunked`].
pub fn write_zstd_chunked_data(
    tar: impl Read,
    out: impl Write,
    chunk: usize,
    level: i32,
) -> Result<ChunkedData, String> {
    let chunk = chunk.max(1);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut archive = tar::Archive::new(Recording {
        inner: TarSplitTee {
            inner: tar,
            split: TarSplitWriter::new(Vec::new()),
        },
        seen: Rc::clone(&seen),
    });
    let mut out = Out {
        inner: out,
        written: 0,
    };
    let mut entries: Vec<Value> = Vec::new();
    let io_error = |what: &str, e: io::Error| format!("{what}: {e}");
    {
        let tar_entries = archive
            .entries()
            .map_err(|e| io_error("reading the tar", e))?;
        for item in tar_entries {
            let mut item = item.map_err(|e| io_error("reading the tar", e))?;
            let mut e = entry_of(&mut item).map_err(|e| io_error("a tar header", e))?;
            let size = item.size();
            // Everything read so far (padding, extension headers, this header) closes the current frame:
            // the file's data starts a frame of its own.
            let head = std::mem::take(&mut *seen.borrow_mut());
            let global = item.header().entry_type() == tar::EntryType::XGlobalHeader;
            if global || !is_data(&e["type"], size) {
                out.frame(&head, level)
                    .map_err(|e| io_error("writing", e))?;
                // A header-only entry's data (a hardlink's, never in practice) is read through too.
                io::copy(&mut item, &mut io::sink()).map_err(|e| io_error("reading the tar", e))?;
                let data = std::mem::take(&mut *seen.borrow_mut());
                out.frame(&data, level)
                    .map_err(|e| io_error("writing", e))?;
                if size > 0 {
                    e["size"] = json!(size);
                }
                if !global {
                    entries.push(e);
                }
                continue;
            }
            out.frame(&head, level)
                .map_err(|e| io_error("writing", e))?;
            e["size"] = json!(size);
            let mut file_hash = strata_oci::DigestWriter::new(strata_oci::Algorithm::Sha256);
            let mut chunks: Vec<Value> = Vec::new();
            let mut chunk_offset: u64 = 0;
            let mut buf = vec![0u8; chunk];
            loop {
                let filled =
                    read_chunk(&mut item, &mut buf).map_err(|e| io_error("reading the tar", e))?;
                let piece = buf.get(..filled).unwrap_or_default();
                if piece.is_empty() {
                    break;
                }
                seen.borrow_mut().clear();
                file_hash.update(piece);
                let mut c = if chunks.is_empty() {
                    e.clone()
                } else {
                    json!({"type": "chunk", "name": e["name"]})
                };
                c["offset"] = json!(out.written);
                c["chunkOffset"] = json!(chunk_offset);
                c["chunkSize"] = json!(piece.len());
                c["chunkDigest"] = json!(Digest::sha256(piece).to_string());
                out.frame(piece, level)
                    .map_err(|e| io_error("writing", e))?;
                c["endOffset"] = json!(out.written);
                chunk_offset += piece.len() as u64;
                chunks.push(c);
                if filled < buf.len() {
                    break;
                }
            }
            let digest = file_hash.finish().to_string();
            if let Some(first) = chunks.first_mut() {
                first["digest"] = json!(digest);
                // A file's entry says where its last frame ends.
                first["endOffset"] = json!(out.written);
                if chunk_offset <= chunk as u64 {
                    // One chunk: the whole file.
                    if let Some(o) = first.as_object_mut() {
                        o.remove("chunkSize");
                    }
                }
            }
            entries.extend(chunks);
        }
    }
    // The end of the archive and anything after it, byte for byte.
    let mut inner = archive.into_inner();
    io::copy(&mut inner, &mut io::sink()).map_err(|e| io_error("reading the tar", e))?;
    let tail = std::mem::take(&mut *seen.borrow_mut());
    let (tar_split, _) = inner
        .inner
        .split
        .finish()
        .map_err(|e| io_error("the tar-split", e))?;
    out.frame(&tail, level)
        .map_err(|e| io_error("writing", e))?;

    out.inner.flush().map_err(|e| io_error("writing", e))?;
    Ok(ChunkedData {
        len: out.written,
        toc: json!({"version": 1, "entries": entries}),
        tar_split,
    })
}

/// Writes the tail of a zstd:chunked blob after `data` (the table, with the tar-split's digest; the
/// tar-split; the footer) and gives the annotations.
///
/// # Errors
/// When `out` cannot be written.
pub fn write_zstd_chunked_tail(
    out: impl Write,
    data: &ChunkedData,
    level: i32,
) -> Result<Written, String> {
    let io_error = |what: &str, e: io::Error| format!("{what}: {e}");
    let mut out = Out {
        inner: out,
        written: data.len,
    };
    let tar_split = zstd::bulk::compress(&data.tar_split, level)
        .map_err(|e| io_error("compressing the tar-split", e))?;
    let mut toc = data.toc.clone();
    if let Some(object) = toc.as_object_mut() {
        object.insert(
            "tarSplitDigest".into(),
            json!(Digest::sha256(&tar_split).to_string()),
        );
    }
    let toc_json = serde_json::to_vec(&toc).map_err(|e| format!("the table: {e}"))?;
    let toc_compressed =
        zstd::bulk::compress(&toc_json, level).map_err(|e| io_error("compressing the table", e))?;
    let toc_offset = out
        .skippable(&toc_compressed)
        .map_err(|e| io_error("writing", e))?;
    let split_offset = out
        .skippable(&tar_split)
        .map_err(|e| io_error("writing", e))?;
    let mut footer = Vec::with_capacity(64);
    for v in [
        toc_offset,
        toc_compressed.len() as u64,
        toc_json.len() as u64,
        MANIFEST_TYPE_CRFS,
        split_offset,
        tar_split.len() as u64,
        data.tar_split.len() as u64,
    ] {
        footer.extend_from_slice(&v.to_le_bytes());
    }
    footer.extend_from_slice(MAGIC);
    out.skippable(&footer).map_err(|e| io_error("writing", e))?;
    out.inner.flush().map_err(|e| io_error("writing", e))?;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ZSTD_CHUNKED_CHECKSUM.to_owned(),
        Digest::sha256(&toc_compressed).to_string(),
    );
    annotations.insert(
        ZSTD_CHUNKED_POSITION.to_owned(),
        format!(
            "{toc_offset}:{}:{}:{MANIFEST_TYPE_CRFS}",
            toc_compressed.len(),
            toc_json.len()
        ),
    );
    annotations.insert(
        ZSTD_CHUNKED_TARSPLIT_POSITION.to_owned(),
        format!(
            "{split_offset}:{}:{}",
            tar_split.len(),
            data.tar_split.len()
        ),
    );
    Ok(Written { annotations })
}

/// Reads from `reader` until `buf` is full or the stream ends; the bytes read (a chunk of a file: only the
/// last one is short).
pub(crate) fn read_chunk(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(space) = buf.get_mut(filled..).filter(|s| !s.is_empty()) {
        match reader.read(space) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A tar of three files (empty, 10,000 bytes, 3 bytes) for the writers' tests.
    pub(crate) fn small_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, size) in [("a", 0usize), ("big", 10_000), ("small", 3)] {
            let mut h = tar::Header::new_gnu();
            h.set_size(size as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            b.append_data(&mut h, name, &vec![7u8; size][..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn the_tar_is_kept_byte_for_byte() {
        let tar = small_tar();
        let mut blob = Vec::new();
        let written = write_zstd_chunked(&tar[..], &mut blob, 4096, 3).unwrap();
        assert_eq!(zstd::stream::decode_all(&blob[..]).unwrap(), tar);
        let position = &written.annotations[ZSTD_CHUNKED_POSITION];
        let fields: Vec<u64> = position.split(':').map(|f| f.parse().unwrap()).collect();
        let (offset, len) = (fields[0] as usize, fields[1] as usize);
        let toc_bytes = &blob[offset..offset + len];
        assert_eq!(
            Digest::sha256(toc_bytes).to_string(),
            written.annotations[ZSTD_CHUNKED_CHECKSUM]
        );
        let toc: Value =
            serde_json::from_slice(&zstd::stream::decode_all(toc_bytes).unwrap()).unwrap();
        let entries = toc["entries"].as_array().unwrap();
        // "big" is three chunks, each a frame of its own whose bytes are its chunk.
        let big: Vec<&Value> = entries.iter().filter(|e| e["name"] == "big").collect();
        assert_eq!(big.len(), 3);
        for c in big {
            let start = c["offset"].as_u64().unwrap() as usize;
            let mut bytes = Vec::new();
            zstd::stream::read::Decoder::new(&blob[start..])
                .unwrap()
                .single_frame()
                .read_to_end(&mut bytes)
                .unwrap();
            assert_eq!(Digest::sha256(&bytes).to_string(), c["chunkDigest"]);
        }
        assert_eq!(&blob[blob.len() - 8..], MAGIC);
    }

    /// The tar-split in the blob is the layer engine's record of the tar — PAX and GNU long names, a hardlink,
    /// the bytes after the end-of-archive blocks — as the store writes it for the same layer.
    #[test]
    fn the_tar_split_is_the_stores() {
        let tar = strata_fixtures::tar_split_tar().unwrap();
        let data = write_zstd_chunked_data(&tar[..], &mut Vec::new(), 256, 3).unwrap();
        let mut writer = TarSplitWriter::new(Vec::new());
        writer.write_all(&tar).unwrap();
        let (expected, summary) = writer.finish().unwrap();
        assert_eq!(summary.entries, 6);
        assert_eq!(
            String::from_utf8(data.tar_split).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
}
