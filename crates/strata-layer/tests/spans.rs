//! Span digests: recorded by the one pass exactly as docs/FORMAT.md defines them, and checked on every range
//! read of a blob whose index has them.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};
use strata_fixtures::{Compression, LayerBuilder, compress};
use strata_image::{Blob, ImageSource, RawManifest};
use strata_index::format::MAX_SPAN_BYTES;
use strata_index::{Checkpoint, EntryKind, IndexWriter, LayerIndex, LayerInfo, SpanDigest};
use strata_layer::{
    BlobContents, ContentOptions, Contents, Error, FileRef, LayerReader, LayerSpec, LayerSummary,
    read_layer,
};
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

// ----- reads checked against the span digests -----

/// One blob served from memory by range, as a registry would; it records what was asked.
struct Memory {
    blob: Vec<u8>,
    asked: Mutex<Vec<(u64, usize)>>,
}

impl Memory {
    fn new(blob: Vec<u8>) -> Arc<Memory> {
        Arc::new(Memory {
            blob,
            asked: Mutex::new(Vec::new()),
        })
    }

    fn none<T>(&self) -> strata_image::Result<T> {
        Err(strata_image::Error::NotFound {
            what: "anything but blob ranges".into(),
            source_name: self.name().into(),
        })
    }
}

impl ImageSource for Memory {
    fn name(&self) -> &str {
        "memory:"
    }
    fn top_manifest(&self) -> strata_image::Result<RawManifest> {
        self.none()
    }
    fn manifest(&self, _: &Digest, _: Option<&str>) -> strata_image::Result<RawManifest> {
        self.none()
    }
    fn open_blob(&self, _: &Digest) -> strata_image::Result<Blob> {
        self.none()
    }
    fn read_blob_at(&self, _: &Digest, offset: u64, buf: &mut [u8]) -> strata_image::Result<usize> {
        self.asked.lock().unwrap().push((offset, buf.len()));
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.blob.len());
        let n = buf.len().min(self.blob.len() - start);
        buf[..n].copy_from_slice(&self.blob[start..start + n]);
        Ok(n)
    }
}

/// The index the one pass builds for `blob` (with span digests), and the tar.
fn indexed(blob: &[u8], c: Compression) -> IndexWriter {
    let spec = LayerSpec {
        digest: Digest::sha256(blob),
        size: Some(blob.len() as u64),
        media_type: media_type(c).to_owned(),
        diff_id: None,
    };
    let mut w = IndexWriter::new();
    let reader: Box<dyn Read + Send> = Box::new(Cursor::new(blob.to_vec()));
    let summary = read_layer(reader, &spec, &mut |e, _| {
        w.push(e.clone());
        Ok(())
    })
    .unwrap();
    for c in &summary.checkpoints {
        w.add_checkpoint(c.clone());
    }
    w.set_spans(summary.spans.clone());
    w.set_layer(LayerInfo {
        blob_digest: spec.digest.to_string(),
        diff_id: summary.diff_id.to_string(),
        media_type: spec.media_type.clone(),
        compression: match c {
            Compression::None => LayerInfo::COMPRESSION_NONE,
            Compression::Gzip => LayerInfo::COMPRESSION_GZIP,
            Compression::Zstd => LayerInfo::COMPRESSION_ZSTD,
        },
        blob_size: summary.blob_size,
        tar_size: summary.tar_size,
    });
    w
}

fn open(w: &IndexWriter) -> LayerIndex {
    LayerIndex::from_bytes(w.try_to_bytes().unwrap()).unwrap()
}

/// The regular files of `index`: (path, tar offset, size).
fn files(index: &LayerIndex) -> Vec<(String, u64, u64)> {
    index
        .iter()
        .map(|e| e.unwrap())
        .filter(|e| e.kind() == EntryKind::File)
        .map(|e| {
            (
                String::from_utf8_lossy(&e.path()).into_owned(),
                e.offset(),
                e.size(),
            )
        })
        .collect()
}

/// Reads every file through `BlobContents` (the way views and mounts read): each file's bytes or error.
fn read_all(
    source: Arc<dyn ImageSource>,
    index: &LayerIndex,
) -> Vec<(String, Result<Vec<u8>, Error>)> {
    let contents = BlobContents::new(
        source,
        std::slice::from_ref(index),
        &ContentOptions::default(),
    )
    .unwrap();
    files(index)
        .into_iter()
        .map(|(path, offset, size)| {
            let mut buf = vec![0u8; size as usize];
            let file = FileRef {
                layer: 0,
                offset,
                size,
                path: path.as_bytes(),
            };
            let read = contents.read_at(&file, 0, &mut buf).map(|n| {
                buf.truncate(n);
                buf
            });
            (path, read)
        })
        .collect()
}

#[test]
fn checked_reads_serve_every_file_and_fetch_whole_spans() {
    let tar = tar();
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let blob = compress(&tar, c).unwrap();
        let index = open(&indexed(&blob, c));
        assert!(index.has_span_digests());
        let spans: Vec<SpanDigest> = index.spans().collect();
        let memory = Memory::new(blob.clone());
        for (path, read) in read_all(memory.clone(), &index) {
            let (_, offset, size) = files(&index).into_iter().find(|f| f.0 == path).unwrap();
            let want = &tar[offset as usize..(offset + size) as usize];
            assert!(read.unwrap() == want, "{c:?}: {path}");
        }
        // Every fetch was one whole span.
        for &(offset, len) in memory.asked.lock().unwrap().iter() {
            assert!(
                spans
                    .iter()
                    .any(|s| s.start == offset && s.len() == len as u64),
                "{c:?}: a fetch of {len} bytes at {offset} is not a span"
            );
            assert!(len as u64 <= MAX_SPAN_BYTES + 1);
        }
        // The layer reader too, file by file.
        let reader =
            LayerReader::from_index(memory.clone() as Arc<dyn ImageSource>, &index).unwrap();
        for e in index
            .iter()
            .map(|e| e.unwrap())
            .filter(|e| e.kind() == EntryKind::File)
        {
            let got = reader.read_file(&e).unwrap();
            assert!(got == tar[e.offset() as usize..(e.offset() + e.size()) as usize]);
        }
    }
}

/// The span of `index` holding blob byte `at`.
fn span_at(index: &LayerIndex, at: u64) -> (usize, SpanDigest) {
    index
        .spans()
        .enumerate()
        .filter(|(_, s)| s.start <= at && at < s.end)
        .last()
        .unwrap()
}

/// Checks that `e` is the span error for span `j` of layer `digest`, naming `path`.
fn assert_span_error(e: &Error, digest: &str, j: usize, path: &str, what: &str) {
    let text = e.to_string();
    match e {
        Error::Span {
            layer,
            span,
            path: Some(p),
            ..
        } => {
            assert_eq!(layer, digest, "{text}");
            assert_eq!(*span, j, "{text}");
            assert_eq!(p, path, "{text}");
        }
        other => panic!("not a span error: {other}"),
    }
    assert!(text.contains(what), "{text}");
    assert!(text.contains(&format!("span {j}")), "{text}");
}

#[test]
fn a_source_serving_other_bytes_in_one_span_is_caught_before_decompressing() {
    let tar = tar();
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let blob = compress(&tar, c).unwrap();
        let index = open(&indexed(&blob, c));
        let digest = index.layer().blob_digest.clone();
        // A lying registry: one byte changed in the middle of the blob.
        let mid = blob.len() as u64 / 2;
        let (j, _) = span_at(&index, mid);
        let mut lying = blob.clone();
        lying[mid as usize] ^= 0x55;
        let results = read_all(Memory::new(lying), &index);
        let mut failed = 0;
        for (path, read) in &results {
            match read {
                Ok(bytes) => {
                    // Whatever is served is the layer's own bytes.
                    let (_, offset, size) =
                        files(&index).into_iter().find(|f| &f.0 == path).unwrap();
                    assert!(
                        bytes[..] == tar[offset as usize..(offset + size) as usize],
                        "{c:?}: {path}"
                    );
                }
                Err(e) => {
                    failed += 1;
                    assert_span_error(e, &digest, j, path, "the index says");
                }
            }
        }
        assert!(failed > 0, "{c:?}: the changed span was read");
        if c == Compression::Gzip {
            assert!(
                results.iter().any(|(_, r)| r.is_ok()),
                "files in other spans are served"
            );
        }
    }
}

#[test]
fn wrong_span_digests_in_the_index_fail_the_reads_of_their_spans() {
    let tar = tar();
    let blob = compress(&tar, Compression::Gzip).unwrap();
    let mut w = indexed(&blob, Compression::Gzip);
    let mut spans: Vec<SpanDigest> = open(&w).spans().collect();
    // The span holding etc/hosts's bytes (the first file) gets a wrong digest.
    let index = open(&w);
    let (_, hosts_at, _) = files(&index)
        .into_iter()
        .find(|f| f.0 == "etc/hosts")
        .unwrap();
    let cp = index.checkpoint_for(hosts_at).unwrap();
    let (j, _) = span_at(&index, cp.compressed_bit_offset / 8);
    spans[j].sha256[0] ^= 1;
    w.set_spans(spans);
    let index = open(&w);
    let digest = index.layer().blob_digest.clone();
    let results = read_all(Memory::new(blob), &index);
    let (_, hosts) = results.iter().find(|(p, _)| p == "etc/hosts").unwrap();
    assert_span_error(
        hosts.as_ref().unwrap_err(),
        &digest,
        j,
        "etc/hosts",
        "sha256",
    );
    // The reader's own read_file names the file too.
    let reader = LayerReader::from_index(
        Memory::new(compress(&tar, Compression::Gzip).unwrap()) as Arc<dyn ImageSource>,
        &index,
    )
    .unwrap();
    let e = index.lookup(b"etc/hosts").unwrap().unwrap();
    assert_span_error(
        &reader.read_file(&e).unwrap_err(),
        &digest,
        j,
        "etc/hosts",
        "sha256",
    );
}

#[test]
fn a_truncated_blob_is_a_short_span_not_short_bytes() {
    let tar = tar();
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let blob = compress(&tar, c).unwrap();
        let index = open(&indexed(&blob, c));
        let digest = index.layer().blob_digest.clone();
        let cut = blob.len() - 1000;
        let last = index.span_count() - 1;
        let results = read_all(Memory::new(blob[..cut].to_vec()), &index);
        // The last file's bytes run into the last span, which the source serves short.
        let (path, read) = results
            .iter()
            .find(|(p, _)| p == "usr/lib/other.bin")
            .unwrap();
        let e = read.as_ref().unwrap_err();
        assert_span_error(e, &digest, last, path, "the blob is shorter");
    }
}
