//! zstd:chunked: the layer's annotations locate the table of contents (a zstd frame inside a skippable
//! frame) and give the sha256 of its compressed bytes. Both key sets are read: containers/storage ≤ 1.43
//! (`io.containers.zstd-chunked.*`, as Debian's skopeo 1.9.3 and `ctr-remote` write them) and the current
//! one (`io.github.containers.zstd-chunked.*`). The footer is not read: containers/storage does not read
//! it either, and the annotations are what the verified manifest vouches for.

use std::collections::HashMap;
use std::io::Read;

use strata_oci::Digest;

use super::{FetchedToc, Layer, MAX_TOC_SIZE, STARGZ_TOC_DIGEST, TocFormat};
use crate::error::Result;

/// The (checksum, position) annotation keys, current first.
const KEYS: [(&str, &str); 2] = [
    (
        "io.github.containers.zstd-chunked.manifest-checksum",
        "io.github.containers.zstd-chunked.manifest-position",
    ),
    (
        "io.containers.zstd-chunked.manifest-checksum",
        "io.containers.zstd-chunked.manifest-position",
    ),
];

/// The manifest type of a JSON table of contents in the position annotation.
const MANIFEST_TYPE_CRFS: u64 = 1;

/// The table of contents of the zstd:chunked layer `layer`, if its annotations locate one; fetched by
/// range and checked against the checksum annotation (and, from stargz's writer, the eStargz one too).
pub(super) fn fetch(
    layer: &Layer<'_>,
    annotations: &HashMap<String, String>,
) -> Result<Option<FetchedToc>> {
    let Some((checksum_key, checksum, position_key, position)) = KEYS
        .iter()
        .find_map(|(c, p)| Some((*c, annotations.get(*c)?, *p, annotations.get(*p)?)))
    else {
        return Ok(None);
    };
    let checksum = Digest::parse(checksum)
        .map_err(|e| layer.toc_error(format!("annotation {checksum_key}: {e}")))?;
    let fields: Vec<u64> = position
        .split(':')
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            layer.toc_error(format!(
                "annotation {position_key} {position:?} is not numbers"
            ))
        })?;
    let &[offset, length, uncompressed, kind] = fields.as_slice() else {
        return Err(layer.toc_error(format!(
            "annotation {position_key} {position:?} is not offset:length:uncompressed:type"
        )));
    };
    if kind != MANIFEST_TYPE_CRFS {
        return Err(layer.toc_error(format!("unsupported table type {kind}")));
    }
    for (what, n) in [("compressed", length), ("uncompressed", uncompressed)] {
        if n > MAX_TOC_SIZE {
            return Err(layer.toc_error(format!(
                "the table claims {n} {what} bytes, over the {MAX_TOC_SIZE}-byte limit"
            )));
        }
    }
    if offset
        .checked_add(length)
        .is_none_or(|end| end > layer.size)
    {
        return Err(layer.toc_error(format!(
            "the table at bytes {offset}+{length} runs past the blob's {} bytes",
            layer.size
        )));
    }
    let compressed = layer.read(offset, length)?;
    let actual = Digest::sha256(&compressed);
    if actual != checksum {
        return Err(layer.toc_error(format!(
            "the table's digest is {actual}, the annotation {checksum_key} says {checksum}"
        )));
    }
    let mut json = Vec::new();
    zstd::stream::read::Decoder::new(compressed.as_slice())
        .and_then(|d| d.take(uncompressed + 1).read_to_end(&mut json))
        .map_err(|e| layer.toc_error(format!("the table does not decompress: {e}")))?;
    if json.len() as u64 != uncompressed {
        return Err(layer.toc_error(format!(
            "the table decompresses to {} bytes, the annotation says {uncompressed}",
            json.len()
        )));
    }
    let stargz_writer = match annotations.get(STARGZ_TOC_DIGEST) {
        Some(expected) => {
            let expected = Digest::parse(expected)
                .map_err(|e| layer.toc_error(format!("annotation {STARGZ_TOC_DIGEST}: {e}")))?;
            let actual = Digest::sha256(&json);
            if actual != expected {
                return Err(layer.toc_error(format!(
                    "the table's digest is {actual}, the annotation {STARGZ_TOC_DIGEST} says {expected}"
                )));
            }
            true
        }
        None => false,
    };
    Ok(Some(FetchedToc {
        json,
        data_end: offset,
        format: TocFormat::ZstdChunked,
        stargz_writer,
    }))
}
