//! Random access to layers through the index's checkpoints: layers written to an OCI layout, indexed in one
//! pass, the index written and reopened, and every regular file read back through `LayerReader` and compared
//! with the tar; multi-member gzip (with every optional header field), gzip with several in-member
//! checkpoints, multi-frame zstd (with a skippable frame), plain tar; and hostile checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use strata_fixtures::{
    BuiltImage, Compression, Descriptor, ImageBuilder, LayerBuilder, LayoutWriter, media_types,
    sha256_digest,
};
use strata_index::{Checkpoint, Entry, EntryKind, IndexWriter, LayerIndex};
use strata_layer::{CHECKPOINT_SPAN, LayerReader, index_layer, layer_specs, read_entries};
use strata_oci::Platform;
use strata_source::ImageSource;

/// A small deterministic PRNG (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: [&[u8]; 8] = [
            b"layer ", b"strata ", b"gzip ", b"index\n", b"zstd ", b"tar ", b"0x7f ", b"ELF ",
        ];
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(WORDS[(self.next() % 8) as usize]);
        }
        out.truncate(n);
        out
    }
}

/// A layer of `files` files: a mix of text (compressible), random bytes (incompressible), empty files and
/// a few large ones, in a few directories.
fn layer(seed: u64, files: usize, large: usize) -> LayerBuilder {
    let mut rng = Rng(seed);
    let mut b = LayerBuilder::new();
    for d in 0..4 {
        b.dir(format!("d{d}/"));
    }
    for i in 0..files {
        let size = match i % 7 {
            0 => 0,
            1 => (rng.next() % 100) as usize,
            _ => (rng.next() % 40_000) as usize,
        };
        let content = if i % 3 == 0 {
            rng.bytes(size)
        } else {
            rng.text(size)
        };
        b.file(format!("d{}/f{i}", i % 4), content);
    }
    for i in 0..large {
        let content = if i % 2 == 0 {
            rng.bytes(3 << 20)
        } else {
            rng.text(3 << 20)
        };
        b.file(format!("big{i}"), content);
    }
    b.symlink("d0/link", "f1");
    b
}

/// The content of every regular file of `tar`, by path.
fn files_of(tar: &[u8]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    read_entries(tar, "test", &mut |entry, data| {
        if entry.kind == EntryKind::File {
            let mut content = Vec::new();
            data.read_to_end(&mut content).unwrap();
            out.insert(entry.path.clone(), content);
        }
        Ok(())
    })
    .unwrap();
    out
}

/// Makes a layer's blob from its tar.
type Rewrite<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// Replaces the blob of layer 0 of `image` by `blob`, fixing the manifest.
fn replace_blob(image: &mut BuiltImage, blob: Vec<u8>) {
    let layer = &mut image.layers[0];
    layer.digest = sha256_digest(&blob);
    layer.blob = blob;
    let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    manifest["layers"][0]["digest"] = layer.digest.clone().into();
    manifest["layers"][0]["size"] = (layer.blob.len() as u64).into();
    image.manifest = serde_json::to_vec(&manifest).unwrap();
    image.manifest_descriptor = Descriptor::for_bytes(media_types::MANIFEST, &image.manifest);
}

/// A one-layer image in an OCI layout at `dir`, its layer's blob rewritten by `rewrite` (given the tar).
fn write_image(
    dir: &Path,
    layer: LayerBuilder,
    compression: Compression,
    rewrite: Option<Rewrite<'_>>,
) -> BuiltImage {
    let mut image = ImageBuilder::new()
        .architecture("amd64")
        .os("linux")
        .layer(layer, compression)
        .build()
        .unwrap();
    if let Some(rewrite) = rewrite {
        let blob = rewrite(&image.layers[0].tar);
        replace_blob(&mut image, blob);
    }
    let mut layout = LayoutWriter::create(dir).unwrap();
    let descriptor = image.write_to(&mut layout).unwrap();
    layout.add_tagged(descriptor, "t");
    layout.finish().unwrap();
    image
}

/// What indexing a layer gave: the source, the reopened index and the layer's tar.
struct Indexed {
    source: Arc<dyn ImageSource>,
    index: LayerIndex,
    tar: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn index_image(
    layer: LayerBuilder,
    compression: Compression,
    rewrite: Option<Rewrite<'_>>,
) -> Indexed {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let image = write_image(&layout, layer, compression, rewrite);
    let source: Arc<dyn ImageSource> =
        Arc::from(strata_source::open(&format!("oci:{}:t", layout.display())).unwrap());
    let resolved =
        strata_source::resolve(&*source, &Platform::new("linux", "amd64", None)).unwrap();
    let specs = layer_specs(&resolved).unwrap();
    let indexed = index_layer(&*source, &specs[0]).unwrap();
    let path = dir.path().join("layer.idx");
    indexed.index.write(&path).unwrap();
    let index = LayerIndex::open(&path).unwrap();
    assert_eq!(
        index.checkpoints().count(),
        indexed.summary.checkpoints.len()
    );
    Indexed {
        source,
        index,
        tar: image.layers[0].tar.clone(),
        _dir: dir,
    }
}

/// Reads every regular file of the index through a `LayerReader`, in index (path) order, then in reverse,
/// and compares it with the tar; then random ranges of the tar stream.
fn check_every_file(indexed: &Indexed) -> usize {
    let expected = files_of(&indexed.tar);
    let reader = LayerReader::from_index(&*indexed.source, &indexed.index).unwrap();
    let entries: Vec<_> = indexed
        .index
        .iter()
        .map(|e| e.unwrap())
        .filter(|e| e.kind() == EntryKind::File)
        .collect();
    assert_eq!(entries.len(), expected.len());
    for pass in 0..2 {
        let order: Vec<_> = if pass == 0 {
            entries.iter().collect()
        } else {
            entries.iter().rev().collect()
        };
        for entry in order {
            let path = entry.path();
            let got = reader.read_file(entry).unwrap();
            assert!(
                got == expected[&path],
                "{}: {} bytes read, {} expected",
                String::from_utf8_lossy(&path),
                got.len(),
                expected[&path].len()
            );
        }
    }
    // Random ranges, some running past the end of the stream.
    let tar = &indexed.tar;
    let mut rng = Rng(0x1234_5678);
    for _ in 0..40 {
        let offset = rng.next() % (tar.len() as u64 + 100);
        let len = (rng.next() % 300_000) as usize;
        let mut buf = vec![0u8; len];
        let n = reader.read_at(offset, &mut buf).unwrap();
        let start = (offset as usize).min(tar.len());
        let end = (start + len).min(tar.len());
        assert_eq!(n, end - start, "read at {offset} of {len}");
        assert!(buf[..n] == tar[start..end], "bytes at {offset}");
    }
    // A range reader over the last file.
    let last = entries.last().unwrap();
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut reader.range(last.offset(), last.size()), &mut content)
        .unwrap();
    assert!(content == expected[&last.path()]);
    entries.len()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A gzip member with every optional header field: FEXTRA, FNAME, FCOMMENT and FHCRC.
fn gzip_with_all_fields(bytes: &[u8]) -> Vec<u8> {
    let mut header = vec![0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 255];
    header.extend_from_slice(&5u16.to_le_bytes());
    header.extend_from_slice(b"extra");
    header.extend_from_slice(b"layer.tar\0");
    header.extend_from_slice(b"a comment\0");
    let mut crc = flate2::Crc::new();
    crc.update(&header);
    header.extend_from_slice(&(crc.sum() as u16).to_le_bytes());
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(9));
    deflate.write_all(bytes).unwrap();
    header.extend_from_slice(&deflate.finish().unwrap());
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    header.extend_from_slice(&crc.sum().to_le_bytes());
    header.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    header
}

#[test]
fn multi_member_gzip() {
    // Members split at arbitrary (not tar-aligned) points, one empty, one with every header field.
    let rewrite = |tar: &[u8]| {
        let (a, rest) = tar.split_at(tar.len() / 3 + 17);
        let (b, c) = rest.split_at(rest.len() / 2 + 5);
        let mut blob = gzip(a);
        blob.extend(gzip(b""));
        blob.extend(gzip_with_all_fields(b));
        blob.extend(gzip(c));
        blob
    };
    let indexed = index_image(layer(1, 120, 0), Compression::Gzip, Some(&rewrite));
    let checkpoints: Vec<Checkpoint> = indexed
        .index
        .checkpoints()
        .map(|c| c.to_checkpoint())
        .collect();
    // One per member, empty windows, at the member boundaries.
    assert_eq!(checkpoints.len(), 4, "{:?}", offsets(&checkpoints));
    assert!(checkpoints.iter().all(|c| c.window.is_empty()));
    let third = indexed.tar.len() as u64 / 3 + 17;
    assert_eq!(
        checkpoints
            .iter()
            .map(|c| c.uncompressed_offset)
            .collect::<Vec<_>>()[..3],
        [0, third, third]
    );
    assert_eq!(checkpoints[0].compressed_bit_offset, 10 * 8);
    check_every_file(&indexed);
}

fn offsets(checkpoints: &[Checkpoint]) -> Vec<(u64, u64, usize)> {
    checkpoints
        .iter()
        .map(|c| {
            (
                c.compressed_bit_offset,
                c.uncompressed_offset,
                c.window.len(),
            )
        })
        .collect()
}

#[test]
fn large_gzip_has_checkpoints_within_the_member() {
    let indexed = index_image(layer(2, 300, 4), Compression::Gzip, None);
    let checkpoints: Vec<Checkpoint> = indexed
        .index
        .checkpoints()
        .map(|c| c.to_checkpoint())
        .collect();
    let tar_len = indexed.tar.len() as u64;
    assert!(tar_len > 12 << 20, "{tar_len}");
    // The member start, then one at the first block boundary past every span.
    assert!(
        checkpoints.len() as u64 >= tar_len / CHECKPOINT_SPAN,
        "{:?}",
        offsets(&checkpoints)
    );
    assert_eq!(checkpoints[0].uncompressed_offset, 0);
    assert!(checkpoints[0].window.is_empty());
    for pair in checkpoints.windows(2) {
        assert!(pair[1].uncompressed_offset - pair[0].uncompressed_offset >= CHECKPOINT_SPAN);
    }
    for c in &checkpoints[1..] {
        // A full window, equal to the tar bytes before the checkpoint.
        assert_eq!(c.window.len(), 32 << 10);
        let at = c.uncompressed_offset as usize;
        assert!(c.window[..] == indexed.tar[at - (32 << 10)..at]);
        assert!(c.compressed_bit_offset > checkpoints[0].compressed_bit_offset);
    }
    // Some checkpoints fall inside a byte (deflate blocks are bit-aligned), and reading from them works.
    assert!(
        checkpoints.iter().any(|c| c.compressed_bit_offset % 8 != 0),
        "{:?}",
        offsets(&checkpoints)
    );
    let n = check_every_file(&indexed);
    assert!(n > 300);
}

#[test]
fn multi_frame_zstd_with_a_skippable_frame() {
    let rewrite = |tar: &[u8]| {
        let (a, rest) = tar.split_at(tar.len() / 3 + 3);
        let (b, c) = rest.split_at(rest.len() / 2 + 1001);
        let mut blob = zstd::bulk::compress(a, 3).unwrap();
        // A skippable frame: magic 0x184D2A5?, length, bytes.
        blob.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
        blob.extend_from_slice(&7u32.to_le_bytes());
        blob.extend_from_slice(b"skipped");
        blob.extend(zstd::bulk::compress(b, 19).unwrap());
        blob.extend(zstd::bulk::compress(c, 1).unwrap());
        blob
    };
    let indexed = index_image(layer(3, 150, 1), Compression::Zstd, Some(&rewrite));
    let checkpoints: Vec<Checkpoint> = indexed
        .index
        .checkpoints()
        .map(|c| c.to_checkpoint())
        .collect();
    assert_eq!(checkpoints.len(), 4, "{:?}", offsets(&checkpoints));
    assert!(
        checkpoints
            .iter()
            .all(|c| c.window.is_empty() && c.compressed_bit_offset % 8 == 0)
    );
    let first = indexed.tar.len() as u64 / 3 + 3;
    assert_eq!(
        checkpoints
            .iter()
            .map(|c| c.uncompressed_offset)
            .collect::<Vec<_>>(),
        [
            0,
            first,
            first,
            first + (indexed.tar.len() as u64 - first) / 2 + 1001
        ]
    );
    check_every_file(&indexed);
}

#[test]
fn single_frame_zstd() {
    let indexed = index_image(layer(4, 60, 0), Compression::Zstd, None);
    assert_eq!(indexed.index.checkpoints().count(), 1);
    check_every_file(&indexed);
}

#[test]
fn plain_tar() {
    let indexed = index_image(layer(5, 80, 1), Compression::None, None);
    assert_eq!(indexed.index.checkpoints().count(), 0);
    check_every_file(&indexed);
}

#[test]
fn gzip_without_checkpoints_reads_from_the_start() {
    let indexed = index_image(layer(6, 40, 0), Compression::Gzip, None);
    let info = indexed.index.layer();
    let reader = LayerReader::new(
        Arc::clone(&indexed.source),
        strata_oci::Digest::parse(&info.blob_digest).unwrap(),
        strata_oci::media::Compression::Gzip,
        Vec::new(),
    );
    let tar = &indexed.tar;
    let mut buf = vec![0u8; 5000];
    let at = tar.len() as u64 - 3000;
    assert_eq!(reader.read_at(at, &mut buf).unwrap(), 3000);
    assert!(buf[..3000] == tar[tar.len() - 3000..]);
}

#[test]
fn concurrent_reads_share_one_reader() {
    let indexed = index_image(layer(7, 200, 2), Compression::Gzip, None);
    let reader = LayerReader::from_index(Arc::clone(&indexed.source), &indexed.index).unwrap();
    let reader = Arc::new(reader);
    let tar = Arc::new(indexed.tar.clone());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let reader = Arc::clone(&reader);
            let tar = Arc::clone(&tar);
            std::thread::spawn(move || {
                let mut rng = Rng(t + 99);
                for _ in 0..20 {
                    let offset = rng.next() % tar.len() as u64;
                    let mut buf = vec![0u8; 70_000];
                    let n = reader.read_at(offset, &mut buf).unwrap();
                    let end = (offset as usize + buf.len()).min(tar.len());
                    assert!(buf[..n] == tar[offset as usize..end]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Reads through a reader with the single checkpoint `bad`: an error or some bytes, never a panic.
fn read_with(indexed: &Indexed, compression: strata_oci::media::Compression, bad: Checkpoint) {
    let info = indexed.index.layer();
    let at = bad.uncompressed_offset;
    let reader = LayerReader::new(
        &*indexed.source,
        strata_oci::Digest::parse(&info.blob_digest).unwrap(),
        compression,
        vec![bad],
    );
    for (offset, len) in [(at, 70_000), (at.saturating_add(100), 10), (at, 3 << 20)] {
        let mut buf = vec![0u8; len];
        if let Ok(n) = reader.read_at(offset, &mut buf) {
            assert!(n <= len);
        }
    }
}

#[test]
fn corrupt_checkpoints_give_errors_or_wrong_bytes_never_panics() {
    let indexed = index_image(layer(8, 100, 4), Compression::Gzip, None);
    let good: Vec<Checkpoint> = indexed
        .index
        .checkpoints()
        .map(|c| c.to_checkpoint())
        .collect();
    let mid = good
        .iter()
        .find(|c| !c.window.is_empty())
        .expect("an in-member checkpoint")
        .clone();
    let gz = strata_oci::media::Compression::Gzip;
    let mut variants = Vec::new();
    for delta in [1u64, 3, 7, 8, 13, 1000] {
        let mut c = mid.clone();
        c.compressed_bit_offset += delta;
        variants.push(c.clone());
        c.compressed_bit_offset = mid.compressed_bit_offset - delta;
        variants.push(c);
    }
    let mut c = mid.clone();
    for b in c.window.iter_mut().step_by(7) {
        *b ^= 0x5a;
    }
    variants.push(c);
    let mut c = mid.clone();
    c.window = vec![0xff; 40_000];
    variants.push(c);
    let mut c = mid.clone();
    c.window.clear();
    variants.push(c);
    let mut c = mid.clone();
    c.compressed_bit_offset = u64::MAX;
    variants.push(c);
    let mut c = mid.clone();
    c.compressed_bit_offset = u64::MAX - 3;
    c.uncompressed_offset = u64::MAX - 10;
    variants.push(c);
    let mut c = mid.clone();
    c.uncompressed_offset += 12345;
    variants.push(c);
    // Offsets that overflow when the output is added.
    let mut c = mid.clone();
    c.uncompressed_offset = u64::MAX - 10;
    variants.push(c);
    let mut c = good[0].clone();
    c.uncompressed_offset = u64::MAX - 100_000;
    variants.push(c);
    // A member-start checkpoint pointing at the gzip header instead of the deflate data.
    variants.push(Checkpoint {
        compressed_bit_offset: 0,
        uncompressed_offset: 0,
        window: Vec::new(),
    });
    // Random bit offsets over the whole blob, with the window of another point.
    let blob_bits = indexed.index.layer().blob_size * 8;
    let mut rng = Rng(77);
    for _ in 0..150 {
        let mut c = mid.clone();
        c.compressed_bit_offset = rng.next() % blob_bits;
        variants.push(c);
    }
    for bad in variants {
        read_with(&indexed, gz, bad);
    }
    // zstd checkpoints inside a byte, or with a window, or mid-frame.
    let zst = index_image(layer(9, 60, 0), Compression::Zstd, None);
    let z = strata_oci::media::Compression::Zstd;
    for bad in [
        Checkpoint {
            compressed_bit_offset: 3,
            uncompressed_offset: 0,
            window: Vec::new(),
        },
        Checkpoint {
            compressed_bit_offset: 0,
            uncompressed_offset: 0,
            window: vec![1; 10],
        },
        Checkpoint {
            compressed_bit_offset: 800,
            uncompressed_offset: 0,
            window: Vec::new(),
        },
    ] {
        read_with(&zst, z, bad);
    }
    // Reads at or past the end of the stream read nothing.
    let reader = LayerReader::from_index(&*indexed.source, &indexed.index).unwrap();
    let mut buf = vec![0u8; 10];
    assert_eq!(reader.read_at(u64::MAX, &mut buf).unwrap(), 0);
    assert_eq!(
        reader.read_at(indexed.tar.len() as u64, &mut buf).unwrap(),
        0
    );
}

#[test]
fn hostile_entries_are_refused_not_allocated() {
    let indexed = index_image(layer(10, 20, 0), Compression::Gzip, None);
    let mut writer = IndexWriter::new();
    let entry = |path: &str, kind, size, offset| Entry {
        path: path.as_bytes().to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size,
        mtime: 0,
        mtime_nsec: 0,
        link: Vec::new(),
        dev_major: 0,
        dev_minor: 0,
        xattrs: Vec::new(),
        offset,
    };
    let tar_size = indexed.tar.len() as u64;
    writer.push(entry("huge", EntryKind::File, u64::MAX / 2, 512));
    writer.push(entry("past", EntryKind::File, 1000, tar_size - 10));
    writer.push(entry("wrap", EntryKind::File, 1000, u64::MAX - 10));
    writer.push(entry("dir", EntryKind::Dir, 0, 0));
    for c in indexed.index.checkpoints() {
        writer.add_checkpoint(c.to_checkpoint());
    }
    writer.set_layer(indexed.index.layer().clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.idx");
    writer.write(&path).unwrap();
    let index = LayerIndex::open(&path).unwrap();
    let reader = LayerReader::from_index(&*indexed.source, &index).unwrap();
    for name in ["huge", "past", "wrap", "dir"] {
        let e = index.lookup(name.as_bytes()).unwrap().unwrap();
        let err = reader.read_file(&e).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }
    // Without a tar size, a short stream is reported, not a short file.
    let info = index.layer();
    let no_size = LayerReader::new(
        &*indexed.source,
        strata_oci::Digest::parse(&info.blob_digest).unwrap(),
        strata_oci::media::Compression::Gzip,
        Vec::new(),
    );
    let past = index.lookup(b"past").unwrap().unwrap();
    assert!(no_size.read_file(&past).is_err());
    let huge = index.lookup(b"huge").unwrap().unwrap();
    assert!(no_size.read_file(&huge).is_err());
}
