//! Span digests: recorded by the one pass exactly as docs/FORMAT.md defines them, and checked on every range
//! read of a blob whose index has them.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Cursor, Read};

use sha2::{Digest as _, Sha256};
use strata_fixtures::{Compression, LayerBuilder, compress};
use strata_index::format::MAX_SPAN_BYTES;
use strata_index::{Checkpoint, SpanDigest};
use strata_layer::{LayerSpec, LayerSummary, read_layer};
use strata_oci::Digest;
use strata_oci::media;

/// Some compressible, some incompressible bytes.
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if (out.len() >> 16) % 3 == 0 {
            out.extend_from_slice(&state.to_le_bytes());
        } else {
            out.extend_from_slice(b"compressible text ");
        }
    }
    out.truncate(n);
    out
}

/// A tar of a few large files and small ones.
fn tar() -> Vec<u8> {
    let mut l = LayerBuilder::new();
    l.dir("etc/");
    l.file("etc/hosts", b"127.0.0.1 localhost\n");
    l.file("usr/lib/big.bin", data(9 << 20, 1));
    l.file("usr/lib/after", b"after the big one\n");
    l.file("usr/lib/other.bin", data(3 << 20, 2));
    l.tar_bytes().unwrap()
}

fn media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => media::OCI_LAYER,
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
    }
}

fn read(blob: &[u8], c: Compression) -> LayerSummary {
    let spec = LayerSpec {
        digest: Digest::sha256(blob),
        size: Some(blob.len() as u64),
        media_type: media_type(c).to_owned(),
        diff_id: None,
    };
    let reader: Box<dyn Read + Send> = Box::new(Cursor::new(blob.to_vec()));
    read_layer(reader, &spec, &mut |_, data| {
        std::io::copy(data, &mut std::io::sink()).unwrap();
        Ok(())
    })
    .unwrap()
}

/// docs/FORMAT.md's rule, computed here from the checkpoints and the blob alone.
fn by_the_rule(blob: &[u8], checkpoints: &[Checkpoint]) -> Vec<SpanDigest> {
    let mut bits: Vec<u64> = checkpoints
        .iter()
        .map(|c| c.compressed_bit_offset)
        .filter(|&b| b > 0)
        .collect();
    bits.sort_unstable();
    bits.push(blob.len() as u64 * 8);
    let mut spans = Vec::new();
    let mut start = 0u64;
    for b in bits {
        let (end, next) = (b.div_ceil(8), b / 8);
        while end - start > MAX_SPAN_BYTES && !(end - start == MAX_SPAN_BYTES + 1 && b % 8 != 0) {
            spans.push((start, start + MAX_SPAN_BYTES));
            start += MAX_SPAN_BYTES;
        }
        spans.push((start, end));
        start = next;
    }
    spans
        .into_iter()
        .map(|(s, e)| SpanDigest {
            start: s,
            end: e,
            sha256: Sha256::digest(&blob[s as usize..e as usize]).into(),
        })
        .collect()
}

#[test]
fn the_pass_records_span_digests_by_the_format_rule() {
    let tar = tar();
    // Two gzip members (a member start and deflate block boundaries inside bytes), zstd as one frame,
    // zstd as two, and plain.
    let mut two_members = compress(&tar[..5 << 20], Compression::Gzip).unwrap();
    two_members.extend(compress(&tar[5 << 20..], Compression::Gzip).unwrap());
    let mut two_frames = zstd::bulk::compress(&tar[..1 << 20], 3).unwrap();
    two_frames.extend(zstd::bulk::compress(&tar[1 << 20..], 3).unwrap());
    let blobs = [
        (
            Compression::Gzip,
            compress(&tar, Compression::Gzip).unwrap(),
        ),
        (Compression::Gzip, two_members),
        (
            Compression::Zstd,
            compress(&tar, Compression::Zstd).unwrap(),
        ),
        (Compression::Zstd, two_frames),
        (Compression::None, tar.clone()),
    ];
    for (i, (c, blob)) in blobs.iter().enumerate() {
        let summary = read(blob, *c);
        let want = by_the_rule(blob, &summary.checkpoints);
        assert_eq!(summary.spans, want, "blob {i} ({c:?})");
        assert!(summary.spans.iter().all(|s| s.len() <= MAX_SPAN_BYTES + 1));
        if i == 0 {
            assert!(
                summary
                    .checkpoints
                    .iter()
                    .any(|c| c.compressed_bit_offset % 8 != 0),
                "the test wants a checkpoint inside a byte"
            );
        }
    }
}

#[test]
fn a_pass_over_a_small_gzip_layer_has_one_span_per_checkpoint() {
    let mut l = LayerBuilder::new();
    l.file("a", b"hello");
    let blob = compress(&l.tar_bytes().unwrap(), Compression::Gzip).unwrap();
    let summary = read(&blob, Compression::Gzip);
    // The gzip header, then the one member's deflate data and trailer.
    assert_eq!(summary.checkpoints.len(), 1);
    assert_eq!(summary.spans.len(), 2);
    assert_eq!(summary.spans[0].start, 0);
    assert_eq!(
        summary.spans[0].end,
        summary.checkpoints[0].compressed_bit_offset / 8
    );
    assert_eq!(summary.spans[1].end, blob.len() as u64);
}
