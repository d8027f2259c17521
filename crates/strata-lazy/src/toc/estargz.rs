//! eStargz: the 51-byte footer at the end of the blob gives the offset of the gzip member holding the
//! table of contents (a tar entry `stargz.index.json`), whose sha256 the layer's
//! `containerd.io/snapshot/stargz/toc.digest` annotation gives.

use std::collections::HashMap;
use std::io::Read;

use strata_oci::Digest;

use super::{FetchedToc, Layer, MAX_TOC_SIZE, STARGZ_TOC_DIGEST, TocFormat};
use crate::error::Result;

/// Size of the eStargz footer.
pub(crate) const FOOTER_SIZE: u64 = 51;

/// Bytes fetched from the end of the blob at first: the footer and, for most layers, the whole table,
/// in one request.
const TAIL_GUESS: u64 = 256 << 10;

/// The name of the table's tar entry.
const TOC_NAME: &[u8] = b"stargz.index.json";

/// The table of contents of the eStargz layer `layer`, if its descriptor has the annotation that
/// verifies one; fetched by range and checked against the annotation.
pub(super) fn fetch(
    layer: &Layer<'_>,
    annotations: &HashMap<String, String>,
) -> Result<Option<FetchedToc>> {
    let Some(expected) = annotations.get(STARGZ_TOC_DIGEST) else {
        return Ok(None);
    };
    let expected = Digest::parse(expected)
        .map_err(|e| layer.toc_error(format!("annotation {STARGZ_TOC_DIGEST}: {e}")))?;
    if layer.size < FOOTER_SIZE {
        return Err(layer.toc_error(format!(
            "a blob of {} bytes has no room for an eStargz footer",
            layer.size
        )));
    }
    let tail_len = layer.size.min(TAIL_GUESS);
    let tail_start = layer.size - tail_len;
    let tail = layer.read(tail_start, tail_len)?;
    let footer_at = tail.len() - FOOTER_SIZE as usize;
    let toc_offset = parse_footer(&tail[footer_at..])
        .ok_or_else(|| layer.toc_error("the blob does not end with an eStargz footer"))?;
    let toc_end = layer.size - FOOTER_SIZE;
    if toc_offset >= toc_end {
        return Err(layer.toc_error(format!(
            "the footer puts the table at byte {toc_offset}, at or past the footer (byte {toc_end})"
        )));
    }
    let compressed_len = toc_end - toc_offset;
    if compressed_len > MAX_TOC_SIZE {
        return Err(layer.toc_error(format!(
            "the table would be {compressed_len} compressed bytes, over the {MAX_TOC_SIZE}-byte limit"
        )));
    }
    let compressed = match toc_offset.checked_sub(tail_start) {
        // Within the tail: u64 offsets smaller than its length.
        Some(at) => tail[at as usize..footer_at].to_vec(),
        None => layer.read(toc_offset, compressed_len)?,
    };
    let json = unpack_toc(layer, &compressed)?;
    let actual = Digest::sha256(&json);
    if actual != expected {
        return Err(layer.toc_error(format!(
            "the table's digest is {actual}, the annotation {STARGZ_TOC_DIGEST} says {expected}"
        )));
    }
    Ok(Some(FetchedToc {
        json,
        data_end: toc_offset,
        format: TocFormat::Estargz,
        stargz_writer: true,
    }))
}

/// The offset of the table the footer `footer` gives: a gzip header whose extra field `SG` holds
/// `%016x` of the offset then `STARGZ`.
fn parse_footer(footer: &[u8]) -> Option<u64> {
    if footer.len() != FOOTER_SIZE as usize {
        return None;
    }
    let (head, rest) = footer.split_at(10);
    // ID1 ID2 CM=deflate FLG=FEXTRA.
    if head[..4] != [0x1f, 0x8b, 0x08, 0x04] {
        return None;
    }
    // XLEN = 26; subfield 'S' 'G' of 22 bytes.
    if rest[..6] != [26, 0, b'S', b'G', 22, 0] {
        return None;
    }
    let payload = &rest[6..28];
    if &payload[16..] != b"STARGZ" {
        return None;
    }
    let hex = std::str::from_utf8(&payload[..16]).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// The JSON of the table from its gzip member: a tar header named [`TOC_NAME`], then the JSON, at most
/// [`MAX_TOC_SIZE`] bytes.
fn unpack_toc(layer: &Layer<'_>, compressed: &[u8]) -> Result<Vec<u8>> {
    let bad = |what: String| layer.toc_error(what);
    let mut gz = flate2::read::MultiGzDecoder::new(compressed);
    let mut header = [0u8; 512];
    gz.read_exact(&mut header).map_err(|e| {
        bad(format!(
            "its gzip member does not start with a tar header: {e}"
        ))
    })?;
    let header = tar::Header::from_byte_slice(&header);
    if header.path_bytes().as_ref() != TOC_NAME {
        return Err(bad(format!(
            "its tar entry is named {:?}, not stargz.index.json",
            String::from_utf8_lossy(&header.path_bytes())
        )));
    }
    let size = header
        .size()
        .map_err(|e| bad(format!("unreadable tar size: {e}")))?;
    if size > MAX_TOC_SIZE {
        return Err(bad(format!(
            "it claims {size} bytes, over the {MAX_TOC_SIZE}-byte limit"
        )));
    }
    let mut json = Vec::new();
    gz.take(size)
        .read_to_end(&mut json)
        .map_err(|e| bad(format!("its gzip member is corrupt: {e}")))?;
    if json.len() as u64 != size {
        return Err(bad(format!(
            "it claims {size} bytes but holds {}",
            json.len()
        )));
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footer(offset: u64) -> Vec<u8> {
        let mut f = vec![
            0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 26, 0, b'S', b'G', 22, 0,
        ];
        f.extend_from_slice(format!("{offset:016x}STARGZ").as_bytes());
        f.extend_from_slice(&[1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
        f
    }

    #[test]
    fn footers() {
        assert_eq!(parse_footer(&footer(0x1234)), Some(0x1234));
        let mut bad = footer(7);
        bad[33] = b'X';
        assert_eq!(parse_footer(&bad), None, "wrong magic");
        let mut bad = footer(7);
        bad[16] = b'g';
        assert_eq!(parse_footer(&bad), None, "not hex");
        assert_eq!(parse_footer(&[0u8; 51]), None);
        assert_eq!(parse_footer(&footer(1)[1..]), None, "short");
    }
}
