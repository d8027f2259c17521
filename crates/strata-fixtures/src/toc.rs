//! Lazy-format layers for tests: a tar stream rewritten as eStargz or zstd:chunked, the way their writers
//! lay them out (a gzip member or zstd frame per file chunk; the table of contents at the end, located
//! by a footer or by annotations), with the table kept as JSON so a test can alter it before the blob is
//! assembled ([`TocLayer::finish`]). zstd:chunked layers are strata's own writer's
//! (`strata_copy::chunked`), cut in two around the table; eStargz is written here.

use std::collections::BTreeMap;
use std::io::{Read, Write as _};

use serde_json::{Value, json};

use crate::layer::{BuiltLayer, Compression};
use crate::{Result, sha256_digest};

/// eStargz's table-of-contents digest annotation (sha256 of the uncompressed JSON).
pub const ESTARGZ_TOC_DIGEST: &str = "containerd.io/snapshot/stargz/toc.digest";
pub use strata_copy::chunked::{ZSTD_CHUNKED_CHECKSUM, ZSTD_CHUNKED_POSITION};

/// The zstd level of the fixtures' zstd:chunked frames (fast; the format does not depend on it).
const ZSTD_LEVEL: i32 = 3;

/// Which lazy format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TocKind {
    /// eStargz (gzip).
    Estargz,
    /// zstd:chunked, current containers/storage layout.
    ZstdChunked,
}

/// A lazy-format layer before its table is written: the compressed file data and the table's entries.
#[derive(Debug, Clone)]
pub struct TocLayer {
    /// The format.
    pub kind: TocKind,
    /// The compressed bytes before the table.
    pub data: Vec<u8>,
    /// The table of contents (`{"version": 1, "entries": [...]}`); tests may change it.
    pub toc: Value,
    /// eStargz: the size the table's tar header claims, if not its real one (a hostile layer).
    pub claimed_toc_size: Option<u64>,
    /// zstd:chunked: the tar-split's JSON lines (empty for eStargz).
    pub tar_split: Vec<u8>,
}

/// Where the bytes of one tar member are.
struct Member<'a> {
    header: &'a [u8],
    payload: &'a [u8],
    padding: &'a [u8],
    entry: Value,
}

impl TocLayer {
    /// `tar` rewritten as eStargz with files cut into `chunk`-byte chunks.
    pub fn estargz(tar: &[u8], chunk: usize) -> Result<TocLayer> {
        TocLayer::rewrite(TocKind::Estargz, tar, chunk)
    }

    /// `tar` rewritten as zstd:chunked with files cut into `chunk`-byte chunks.
    pub fn zstd_chunked(tar: &[u8], chunk: usize) -> Result<TocLayer> {
        TocLayer::rewrite(TocKind::ZstdChunked, tar, chunk)
    }

    fn rewrite(kind: TocKind, tar: &[u8], chunk: usize) -> Result<TocLayer> {
        let chunk = chunk.max(1);
        if kind == TocKind::ZstdChunked {
            let mut data = Vec::new();
            let parts =
                strata_copy::chunked::write_zstd_chunked_data(tar, &mut data, chunk, ZSTD_LEVEL)
                    .map_err(std::io::Error::other)?;
            return Ok(TocLayer {
                kind,
                data,
                toc: parts.toc,
                claimed_toc_size: None,
                tar_split: parts.tar_split,
            });
        }
        let mut data = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut entries = Vec::new();
        let flush = |data: &mut Vec<u8>, pending: &mut Vec<u8>| -> Result<()> {
            if !pending.is_empty() {
                data.extend_from_slice(&compress(kind, pending)?);
                pending.clear();
            }
            Ok(())
        };
        for m in members(tar)? {
            pending.extend_from_slice(m.header);
            let mut entry = m.entry;
            if m.payload.is_empty() {
                entries.push(entry);
                pending.extend_from_slice(m.padding);
                continue;
            }
            flush(&mut data, &mut pending)?;
            let pieces: Vec<&[u8]> = m.payload.chunks(chunk).collect();
            let many = pieces.len() > 1;
            let mut chunk_entries: Vec<Value> = Vec::new();
            let name = entry.get("name").cloned().unwrap_or(Value::Null);
            for (i, piece) in pieces.iter().enumerate() {
                let mut e = if i == 0 {
                    std::mem::take(&mut entry)
                } else {
                    json!({"type": "chunk", "name": name})
                };
                e["offset"] = json!(data.len());
                e["chunkOffset"] = json!(i * chunk);
                if many {
                    e["chunkSize"] = json!(piece.len());
                }
                e["chunkDigest"] = json!(sha256_digest(piece));
                pending.extend_from_slice(piece);
                // eStargz keeps a file's last member open for the headers that follow.
                if i + 1 < pieces.len() {
                    flush(&mut data, &mut pending)?;
                }
                chunk_entries.push(e);
            }
            entries.extend(chunk_entries);
            pending.extend_from_slice(m.padding);
        }
        flush(&mut data, &mut pending)?;
        Ok(TocLayer {
            kind,
            data,
            toc: json!({"version": 1, "entries": entries}),
            claimed_toc_size: None,
            tar_split: Vec::new(),
        })
    }

    /// The layer with its current table: the blob (data, table, footer), its digest and diff ID, and the
    /// annotations that locate and verify the table.
    pub fn finish(&self) -> Result<BuiltLayer> {
        let json = serde_json::to_vec(&self.toc)?;
        let mut blob = self.data.clone();
        let mut annotations = BTreeMap::new();
        let compression = match self.kind {
            TocKind::Estargz => {
                let toc_offset = blob.len();
                let mut member = Vec::new();
                let mut header = tar::Header::new_ustar();
                header.set_path("stargz.index.json")?;
                header.set_size(self.claimed_toc_size.unwrap_or(json.len() as u64));
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_cksum();
                member.extend_from_slice(header.as_bytes());
                member.extend_from_slice(&json);
                member.resize(member.len().next_multiple_of(512) + 1024, 0);
                blob.extend_from_slice(&compress(TocKind::Estargz, &member)?);
                blob.extend_from_slice(&estargz_footer(toc_offset as u64));
                annotations.insert(ESTARGZ_TOC_DIGEST.to_owned(), sha256_digest(&json));
                Compression::Gzip
            }
            TocKind::ZstdChunked => {
                let parts = strata_copy::chunked::ChunkedData {
                    len: blob.len() as u64,
                    toc: self.toc.clone(),
                    tar_split: self.tar_split.clone(),
                };
                let written =
                    strata_copy::chunked::write_zstd_chunked_tail(&mut blob, &parts, ZSTD_LEVEL)
                        .map_err(std::io::Error::other)?;
                annotations.extend(written.annotations);
                Compression::Zstd
            }
        };
        let tar = decompress(self.kind, &blob)?;
        Ok(BuiltLayer {
            diff_id: sha256_digest(&tar),
            digest: sha256_digest(&blob),
            tar,
            blob,
            compression,
            annotations,
        })
    }
}

/// The tar members of `tar` (up to its end-of-archive blocks) with their table entries.
fn members(tar: &[u8]) -> Result<Vec<Member<'_>>> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let header_at = entry.raw_header_position() as usize;
        let file_at = entry.raw_file_position() as usize;
        let h = entry.header();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            tar::EntryType::Char => "char",
            tar::EntryType::Block => "block",
            tar::EntryType::Fifo => "fifo",
            _ => "reg",
        };
        let size = if kind == "reg" {
            entry.size() as usize
        } else {
            0
        };
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut e = json!({
            "name": name,
            "type": kind,
            "mode": h.mode()?,
            "uid": h.uid()?,
            "gid": h.gid()?,
            "modtime": rfc3339(h.mtime()?),
        });
        if size > 0 {
            e["size"] = json!(size);
            e["digest"] = json!(sha256_digest(&tar[file_at..file_at + size]));
        }
        if let Some(link) = entry.link_name_bytes() {
            e["linkName"] = json!(String::from_utf8_lossy(&link));
        }
        if let Ok(Some(major)) = h.device_major() {
            e["devMajor"] = json!(major);
        }
        if let Ok(Some(minor)) = h.device_minor() {
            e["devMinor"] = json!(minor);
        }
        let padded = (entry.size() as usize).next_multiple_of(512);
        out.push(Member {
            header: &tar[header_at..file_at],
            payload: &tar[file_at..file_at + size],
            padding: &tar[file_at + size..file_at + padded],
            entry: e,
        });
    }
    Ok(out)
}

/// Seconds since the epoch as RFC 3339 (UTC).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// One gzip member of `bytes` (eStargz's).
fn compress(_kind: TocKind, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

fn decompress(kind: TocKind, blob: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match kind {
        TocKind::Estargz => {
            // The footer is an empty gzip member of its own.
            flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut out)?;
        }
        TocKind::ZstdChunked => {
            zstd::stream::read::Decoder::new(blob)?.read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// The 51-byte eStargz footer pointing at `toc_offset`.
pub fn estargz_footer(toc_offset: u64) -> Vec<u8> {
    let mut f = vec![
        0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 26, 0, b'S', b'G', 22, 0,
    ];
    f.extend_from_slice(format!("{toc_offset:016x}STARGZ").as_bytes());
    f.extend_from_slice(&[1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
    f
}
