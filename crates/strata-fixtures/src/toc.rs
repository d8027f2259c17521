//! Lazy-format layers for tests: a tar stream rewritten as eStargz or zstd:chunked by strata's own writers
//! (`strata_copy::estargz`, `strata_copy::chunked`), cut in two around the table of contents, which is
//! kept as JSON so a test can alter it before the blob is assembled ([`TocLayer::finish`]).

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;
use strata_copy::{chunked, estargz};

use crate::layer::{BuiltLayer, Compression};
use crate::{Result, sha256_digest};

pub use strata_copy::chunked::{ZSTD_CHUNKED_CHECKSUM, ZSTD_CHUNKED_POSITION};
pub use strata_copy::estargz::{ESTARGZ_TOC_DIGEST, estargz_footer};

/// The zstd level of the fixtures' zstd:chunked frames (fast; the format does not depend on it).
const ZSTD_LEVEL: i32 = 3;
/// The gzip level of the fixtures' eStargz members.
const GZIP_LEVEL: u32 = 6;

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

impl TocLayer {
    /// `tar` rewritten as eStargz with files cut into `chunk`-byte chunks.
    pub fn estargz(tar: &[u8], chunk: usize) -> Result<TocLayer> {
        let mut data = Vec::new();
        let mut new_tar = strata_oci::DigestWriter::new(strata_oci::Algorithm::Sha256);
        let parts = estargz::write_estargz_data(tar, &mut data, chunk, GZIP_LEVEL, &mut new_tar)
            .map_err(std::io::Error::other)?;
        Ok(TocLayer {
            kind: TocKind::Estargz,
            data,
            toc: parts.toc,
            claimed_toc_size: None,
            tar_split: Vec::new(),
        })
    }

    /// `tar` rewritten as zstd:chunked with files cut into `chunk`-byte chunks.
    pub fn zstd_chunked(tar: &[u8], chunk: usize) -> Result<TocLayer> {
        let mut data = Vec::new();
        let parts = chunked::write_zstd_chunked_data(tar, &mut data, chunk, ZSTD_LEVEL)
            .map_err(std::io::Error::other)?;
        Ok(TocLayer {
            kind: TocKind::ZstdChunked,
            data,
            toc: parts.toc,
            claimed_toc_size: None,
            tar_split: parts.tar_split,
        })
    }

    /// The layer with its current table: the blob (data, table, footer), its digest and diff ID, and the
    /// annotations that locate and verify the table.
    pub fn finish(&self) -> Result<BuiltLayer> {
        let mut blob = self.data.clone();
        let mut annotations = BTreeMap::new();
        let compression = match self.kind {
            TocKind::Estargz => {
                let parts = estargz::EstargzData {
                    len: blob.len() as u64,
                    toc: self.toc.clone(),
                };
                // The tail's hasher saw the table only: the uncompressed size is set below, from the tar.
                let mut new_tar = strata_oci::DigestWriter::new(strata_oci::Algorithm::Sha256);
                let written = estargz::write_estargz_tail(
                    &mut blob,
                    &parts,
                    GZIP_LEVEL,
                    self.claimed_toc_size,
                    &mut new_tar,
                )
                .map_err(std::io::Error::other)?;
                annotations.extend(
                    written
                        .annotations
                        .into_iter()
                        .filter(|(k, _)| k == ESTARGZ_TOC_DIGEST),
                );
                Compression::Gzip
            }
            TocKind::ZstdChunked => {
                let parts = chunked::ChunkedData {
                    len: blob.len() as u64,
                    toc: self.toc.clone(),
                    tar_split: self.tar_split.clone(),
                };
                let written = chunked::write_zstd_chunked_tail(&mut blob, &parts, ZSTD_LEVEL)
                    .map_err(std::io::Error::other)?;
                annotations.extend(written.annotations);
                Compression::Zstd
            }
        };
        let tar = decompress(self.kind, &blob)?;
        if self.kind == TocKind::Estargz {
            annotations.insert(
                estargz::ESTARGZ_UNCOMPRESSED_SIZE.to_owned(),
                tar.len().to_string(),
            );
        }
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
