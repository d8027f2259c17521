//! The eStargz writer, as stargz-snapshotter lays a layer out (docs/FORMAT.md "eStargz layers strata
//! writes"): a gzip tar in which every regular file's data (and every chunk of a large file) starts a gzip
//! member, a `.no.prefetch.landmark` file first, the table of contents `stargz.index.json` as the last
//! entry in a member of its own, and the 51-byte footer that locates it. The tar gains the landmark and the
//! table (and loses what followed its end), so its diff ID changes: the writer hashes the new tar.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::rc::Rc;

use serde_json::{Value, json};
use strata_oci::{Digest, DigestWriter};

use crate::chunked::{Recording, entry_of, read_chunk, rfc3339};

/// The table digest annotation: sha256 of the uncompressed JSON table.
pub const ESTARGZ_TOC_DIGEST: &str = "containerd.io/snapshot/stargz/toc.digest";
/// The annotation of the layer's uncompressed size (its new tar's).
pub const ESTARGZ_UNCOMPRESSED_SIZE: &str = "io.containers.estargz.uncompressed-size";
/// The table's name in the tar.
pub const TOC_NAME: &str = "stargz.index.json";
/// The landmark stargz-snapshotter adds when no file is to be prefetched.
pub const NO_PREFETCH_LANDMARK: &str = ".no.prefetch.landmark";
/// The landmark's one byte.
const LANDMARK_CONTENTS: u8 = 0xf;
/// The largest chunk of a file in one member (stargz-snapshotter's default).
pub const CHUNK_SIZE: usize = 4 << 20;
/// The default gzip level.
pub const DEFAULT_LEVEL: u32 = 6;

/// The first part of an eStargz blob, written: its length and the table (a test may change it before the
/// tail is written).
#[derive(Debug, Clone)]
pub struct EstargzData {
    /// Bytes written: where the table's member starts.
    pub len: u64,
    /// The table of contents, `{"version": 1, "entries": [...]}`.
    pub toc: Value,
}

/// What the tail wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The annotations that pin the table and give the uncompressed size.
    pub annotations: BTreeMap<String, String>,
}

/// Gzip members into a counted output; the uncompressed bytes hashed (the new diff ID).
struct Members<'a, W> {
    out: W,
    written: u64,
    level: u32,
    tar: &'a mut DigestWriter,
}

impl<W: Write> Members<'_, W> {
    /// `bytes` as one gzip member (nothing for none).
    fn member(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.tar.update(bytes);
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::new(self.level));
        gz.write_all(bytes)?;
        let compressed = gz.finish()?;
        self.out.write_all(&compressed)?;
        self.written += compressed.len() as u64;
        Ok(())
    }
}

/// The landmark's tar member (header and padded byte) and table entry.
fn landmark() -> io::Result<(Vec<u8>, Value)> {
    let mut h = tar::Header::new_ustar();
    h.set_path(NO_PREFETCH_LANDMARK)?;
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.push(LANDMARK_CONTENTS);
    bytes.resize(1024, 0);
    let entry = json!({
        "name": NO_PREFETCH_LANDMARK,
        "type": "reg",
        "size": 1,
        "mode": 0o644,
        "uid": 0,
        "gid": 0,
        "modtime": rfc3339(0),
    });
    Ok((bytes, entry))
}

/// Writes the tar read from `tar` to `out` as the first part of an eStargz blob (files cut into members of
/// at most `chunk` bytes), hashing the new tar's bytes into `new_tar`. `tar` is read to its end.
///
/// # Errors
/// When the tar cannot be read or parsed, or `out` cannot be written (the message says which).
pub fn write_estargz_data(
    tar: impl Read,
    out: impl Write,
    chunk: usize,
    level: u32,
    new_tar: &mut DigestWriter,
) -> Result<EstargzData, String> {
    let chunk = chunk.max(1);
    let io_error = |what: &str, e: io::Error| format!("{what}: {e}");
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut archive = tar::Archive::new(Recording {
        inner: tar,
        seen: Rc::clone(&seen),
    });
    let mut out = Members {
        out,
        written: 0,
        level,
        tar: new_tar,
    };
    let mut entries: Vec<Value> = Vec::new();
    // The landmark first: its header in the first member, its byte in one of its own.
    let (landmark, mut landmark_entry) = landmark().map_err(|e| io_error("the landmark", e))?;
    let (header, rest) = landmark.split_at(512);
    out.member(header).map_err(|e| io_error("writing", e))?;
    landmark_entry["offset"] = json!(out.written);
    landmark_entry["digest"] = json!(Digest::sha256(&[LANDMARK_CONTENTS]).to_string());
    landmark_entry["chunkDigest"] = landmark_entry["digest"].clone();
    entries.push(landmark_entry);
    // The open member: bytes waiting for the next file's data to start a new one.
    let mut pending: Vec<u8> = rest.to_vec();
    // The padding of the last entry read, kept when the end of the archive is dropped.
    let mut last_padding = 0usize;
    {
        let tar_entries = archive
            .entries()
            .map_err(|e| io_error("reading the tar", e))?;
        for item in tar_entries {
            let mut item = item.map_err(|e| io_error("reading the tar", e))?;
            let mut e = entry_of(&mut item).map_err(|e| io_error("a tar header", e))?;
            let size = item.size();
            last_padding = usize::try_from(size.next_multiple_of(512) - size).unwrap_or(0);
            pending.append(&mut seen.borrow_mut());
            let global = item.header().entry_type() == tar::EntryType::XGlobalHeader;
            if global || e["type"] != "reg" || size == 0 {
                let mut data = Vec::new();
                item.read_to_end(&mut data)
                    .map_err(|e| io_error("reading the tar", e))?;
                pending.append(&mut seen.borrow_mut());
                if size > 0 && !global {
                    e["size"] = json!(size);
                }
                if !global {
                    entries.push(e);
                }
                continue;
            }
            out.member(&pending).map_err(|e| io_error("writing", e))?;
            pending.clear();
            e["size"] = json!(size);
            let mut file_hash = DigestWriter::new(strata_oci::Algorithm::Sha256);
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
                // The previous chunk's member closes where this one's data starts.
                out.member(&pending).map_err(|e| io_error("writing", e))?;
                pending.clear();
                let mut c = if chunks.is_empty() {
                    e.clone()
                } else {
                    json!({"type": "chunk", "name": e["name"]})
                };
                c["offset"] = json!(out.written);
                c["chunkOffset"] = json!(chunk_offset);
                c["chunkSize"] = json!(piece.len());
                c["chunkDigest"] = json!(Digest::sha256(piece).to_string());
                pending.extend_from_slice(piece);
                chunk_offset += piece.len() as u64;
                chunks.push(c);
                if filled < buf.len() {
                    break;
                }
            }
            if let Some(first) = chunks.first_mut() {
                first["digest"] = json!(file_hash.finish().to_string());
                if chunk_offset <= chunk as u64
                    && let Some(o) = first.as_object_mut()
                {
                    o.remove("chunkSize");
                }
            }
            entries.extend(chunks);
        }
    }
    // The last entry's padding is kept; the end of the archive (and anything after) is not: the table's
    // member ends the tar anew. The input is still read to its end (its digest is checked there).
    let mut inner = archive.into_inner();
    io::copy(&mut inner, &mut io::sink()).map_err(|e| io_error("reading the tar", e))?;
    let tail = std::mem::take(&mut *seen.borrow_mut());
    pending.extend_from_slice(tail.get(..last_padding.min(tail.len())).unwrap_or_default());
    out.member(&pending).map_err(|e| io_error("writing", e))?;
    out.out.flush().map_err(|e| io_error("writing", e))?;
    Ok(EstargzData {
        len: out.written,
        toc: json!({"version": 1, "entries": entries}),
    })
}

/// The 51-byte footer pointing at the table's member at `toc_offset`: an empty gzip member whose extra
/// field `SG` holds the offset in hex and `STARGZ`.
pub fn estargz_footer(toc_offset: u64) -> Vec<u8> {
    let mut f = vec![
        0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 26, 0, b'S', b'G', 22, 0,
    ];
    f.extend_from_slice(format!("{toc_offset:016x}STARGZ").as_bytes());
    f.extend_from_slice(&[1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
    f
}

/// Writes the tail of an eStargz blob after `data`: the table's member (`stargz.index.json` and the end of
/// the archive; its tar header claiming `claimed_size` bytes if given, a hostile layer for tests) and the
/// footer, hashing the tar bytes into `new_tar`; gives the annotations (the uncompressed size is
/// `new_tar`'s length once done).
///
/// # Errors
/// When `out` cannot be written.
pub fn write_estargz_tail(
    out: impl Write,
    data: &EstargzData,
    level: u32,
    claimed_size: Option<u64>,
    new_tar: &mut DigestWriter,
) -> Result<Written, String> {
    let io_error = |what: &str, e: io::Error| format!("{what}: {e}");
    let json = serde_json::to_vec(&data.toc).map_err(|e| format!("the table: {e}"))?;
    let mut member = Vec::new();
    let mut header = tar::Header::new_ustar();
    header
        .set_path(TOC_NAME)
        .map_err(|e| io_error("the table's header", e))?;
    header.set_size(claimed_size.unwrap_or(json.len() as u64));
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    member.extend_from_slice(header.as_bytes());
    member.extend_from_slice(&json);
    member.resize(member.len().next_multiple_of(512) + 1024, 0);
    let mut out = Members {
        out,
        written: data.len,
        level,
        tar: new_tar,
    };
    out.member(&member).map_err(|e| io_error("writing", e))?;
    let footer = estargz_footer(data.len);
    out.out
        .write_all(&footer)
        .map_err(|e| io_error("writing", e))?;
    out.out.flush().map_err(|e| io_error("writing", e))?;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ESTARGZ_TOC_DIGEST.to_owned(),
        Digest::sha256(&json).to_string(),
    );
    annotations.insert(
        ESTARGZ_UNCOMPRESSED_SIZE.to_owned(),
        out.tar.len().to_string(),
    );
    Ok(Written { annotations })
}

/// Writes the tar read from `tar` to `out` as an eStargz blob; returns the annotations and the new tar's
/// digest (the layer's new diff ID).
///
/// # Errors
/// As [`write_estargz_data`].
pub fn write_estargz(
    tar: impl Read,
    mut out: impl Write,
    chunk: usize,
    level: u32,
) -> Result<(Written, Digest), String> {
    let mut new_tar = DigestWriter::new(strata_oci::Algorithm::Sha256);
    let data = write_estargz_data(tar, &mut out, chunk, level, &mut new_tar)?;
    let written = write_estargz_tail(out, &data, level, None, &mut new_tar)?;
    Ok((written, new_tar.finish()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_estargz_blob_is_a_gzip_tar_with_its_table_last() {
        let tar = crate::chunked::tests::small_tar();
        let mut blob = Vec::new();
        let (written, diff_id) = write_estargz(&tar[..], &mut blob, 4096, 6).unwrap();
        let mut new_tar = Vec::new();
        flate2::read::MultiGzDecoder::new(&blob[..])
            .read_to_end(&mut new_tar)
            .unwrap();
        assert_eq!(Digest::sha256(&new_tar), diff_id);
        assert_eq!(
            written.annotations[ESTARGZ_UNCOMPRESSED_SIZE],
            new_tar.len().to_string()
        );
        let names: Vec<String> = tar::Archive::new(&new_tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, [NO_PREFETCH_LANDMARK, "a", "big", "small", TOC_NAME]);
        // The footer points at the table's member.
        let footer = &blob[blob.len() - 51..];
        let offset =
            u64::from_str_radix(std::str::from_utf8(&footer[16..32]).unwrap(), 16).unwrap();
        let mut member = Vec::new();
        flate2::read::GzDecoder::new(&blob[offset as usize..])
            .read_to_end(&mut member)
            .unwrap();
        let toc: Value = serde_json::from_slice(
            &member[512..512 + member[512..].iter().position(|&b| b == 0).unwrap()],
        )
        .unwrap();
        assert_eq!(
            Digest::sha256(&member[512..512 + member[512..].iter().position(|&b| b == 0).unwrap()])
                .to_string(),
            written.annotations[ESTARGZ_TOC_DIGEST]
        );
        // Each chunk's member starts with its bytes.
        for c in toc["entries"].as_array().unwrap() {
            let Some(digest) = c["chunkDigest"].as_str() else {
                continue;
            };
            let start = c["offset"].as_u64().unwrap() as usize;
            let size = c["chunkSize"].as_u64().or(c["size"].as_u64()).unwrap() as usize;
            let mut bytes = vec![0u8; size];
            flate2::read::GzDecoder::new(&blob[start..])
                .read_exact(&mut bytes)
                .unwrap();
            assert_eq!(Digest::sha256(&bytes).to_string(), digest);
        }
    }
}
