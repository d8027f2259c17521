//! [`BlobContents`]' read-ahead of a large file: from its first read, the checkpoint spans ahead of the reader
//! are decompressed (a bounded window, sliding as the reader goes), and no span is decompressed twice when
//! requests come in from several threads at once, out of order (as the kernel's read-ahead sends them).

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
use strata_fuse::Tree;
use strata_layer::ImageView;
use strata_layer::{BlobContents, ContentOptions, Contents};
use strata_oci::{Digest, Platform};
use strata_source::{Blob, ImageSource, RawManifest};

/// An image source that counts the blob bytes read by range.
struct Counting {
    inner: Box<dyn ImageSource>,
    read: AtomicU64,
}

impl ImageSource for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn top_manifest(&self) -> strata_source::Result<RawManifest> {
        self.inner.top_manifest()
    }
    fn manifest(
        &self,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> strata_source::Result<RawManifest> {
        self.inner.manifest(digest, media_type)
    }
    fn open_blob(&self, digest: &Digest) -> strata_source::Result<Blob> {
        self.inner.open_blob(digest)
    }
    fn read_blob_at(
        &self,
        digest: &Digest,
        offset: u64,
        buf: &mut [u8],
    ) -> strata_source::Result<usize> {
        let n = self.inner.read_blob_at(digest, offset, buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Deterministic, compressible bytes (about 2:1 with gzip).
fn text(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'a' + (state >> 59) as u8
        })
        .collect()
}

const BIG: usize = 40 << 20;

/// One gzip layer: a small file, the 40 MiB file `big`, another small file. Returns the source (counting
/// range reads), the layer blob's size, the image's view and the file's bytes.
fn setup(dir: &Path) -> (Arc<Counting>, u64, ImageView, Vec<u8>) {
    let big = text(BIG, 5);
    let mut layer = LayerBuilder::new();
    layer.file("a", b"before\n");
    layer.file("big", big.clone());
    layer.file("z", b"after\n");
    let layout = dir.join("layout");
    ImageBuilder::new()
        .layer(layer, Compression::Gzip)
        .write_layout(&layout, "t")
        .unwrap();
    let name = format!("oci:{}:t", layout.display());
    let source = Arc::new(Counting {
        inner: strata_source::open(&name).unwrap(),
        read: AtomicU64::new(0),
    });
    let shared: Arc<dyn ImageSource> = source.clone();
    let view = ImageView::open(shared, &Platform::new("linux", "amd64", None)).unwrap();
    let blob = view.merged().layers()[0].layer().blob_size;
    (source, blob, view, big)
}

fn contents(source: &Arc<Counting>, view: &ImageView) -> Arc<BlobContents> {
    let shared: Arc<dyn ImageSource> = source.clone();
    // As a mount reads them: the kernel's page cache above.
    let options = ContentOptions::mount(32 << 20);
    Arc::new(BlobContents::new(shared, view.merged().layers(), &options).unwrap())
}

/// Reads all of `big` in `block`-byte reads, checking the bytes.
fn read_all(contents: &BlobContents, tree: &Tree, big: &[u8], block: usize) {
    let file = tree.file(tree.lookup_path(b"big").unwrap()).unwrap();
    let mut buf = vec![0u8; block];
    let mut offset = 0;
    while offset < big.len() {
        let n = contents.read_at(&file, offset as u64, &mut buf).unwrap();
        assert_eq!(buf[..n], big[offset..offset + n], "at {offset}");
        offset += n;
    }
}

#[test]
fn the_first_read_of_a_large_file_reads_ahead_a_bounded_window() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, blob, view, big) = setup(tmp.path());
    let tree = Tree::build(view.merged()).unwrap();
    let contents = contents(&source, &view);
    let file = tree.file(tree.lookup_path(b"big").unwrap()).unwrap();
    source.read.store(0, Ordering::Relaxed);

    // One small read at the start: the workers decompress the rest of its span and the next one (the window
    // grows only as the reader moves on), and then stop.
    let mut buf = vec![0u8; 4096];
    assert_eq!(contents.read_at(&file, 0, &mut buf).unwrap(), 4096);
    assert_eq!(buf, big[..4096]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, Instant::now());
    let ahead = loop {
        let read = source.read.load(Ordering::Relaxed);
        if read != last.0 {
            last = (read, Instant::now());
        } else if read > 0 && last.1.elapsed() > Duration::from_millis(500) {
            break read;
        }
        assert!(Instant::now() < deadline, "read ahead never settled");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Two spans, each a little over CHECKPOINT_SPAN, plus one range fetch past each span's end.
    let spans = 2;
    let span = strata_layer::CHECKPOINT_SPAN;
    let tar_bound = spans * (span + span / 8);
    let bound = blob * tar_bound / BIG as u64 + spans * strata_layer::random::READ_AHEAD as u64;
    eprintln!("a 4 KiB read read ahead {ahead} bytes of the {blob}-byte blob (bound {bound})");
    assert!(
        ahead > blob * span / BIG as u64,
        "read ahead only {ahead} of the blob's {blob} bytes"
    );
    assert!(
        ahead <= bound,
        "a 4 KiB read read ahead {ahead} of the blob's {blob} bytes (more than {bound})"
    );
    // A reader going on through the file finds the window growing and sliding ahead of it (up to two spans
    // per worker), and no span is decompressed twice.
    read_all(&contents, &tree, &big, 128 << 10);
    let read = source.read.load(Ordering::Relaxed);
    eprintln!("reading the whole file read {read} bytes of the {blob}-byte blob");
    assert!(
        read < blob + blob / 10,
        "reading the file read {read} bytes of the {blob}-byte blob"
    );
}

#[test]
fn out_of_order_readers_decompress_each_span_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, blob, view, big) = setup(tmp.path());
    let tree = Arc::new(Tree::build(view.merged()).unwrap());
    let big = Arc::new(big);
    let contents = contents(&source, &view);
    source.read.store(0, Ordering::Relaxed);
    // Two threads, each taking every other 256 KiB block, as the kernel's read-ahead hands them to two
    // FUSE threads; the second one starts one block ahead, so requests arrive out of order.
    let block = 256usize << 10;
    let threads: Vec<_> = (0..2usize)
        .map(|t| {
            let (contents, tree, big) =
                (Arc::clone(&contents), Arc::clone(&tree), Arc::clone(&big));
            std::thread::spawn(move || {
                let file = tree.file(tree.lookup_path(b"big").unwrap()).unwrap();
                let mut buf = vec![0u8; block];
                let mut at = (1 - t) * block;
                while at < big.len() {
                    let n = contents.read_at(&file, at as u64, &mut buf).unwrap();
                    assert_eq!(buf[..n], big[at..at + n], "at {at}");
                    at += 2 * block;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let read = source.read.load(Ordering::Relaxed);
    eprintln!("one pass over the file read {read} bytes of the {blob}-byte blob");
    // The blob once, plus what each span's decoder fetches past its end (256 KiB at most): 4% here (the
    // mount's reader before this decompressed a fifth of it twice).
    assert!(
        read < blob + blob / 10,
        "read {read} bytes of the {blob}-byte blob for one pass over the file"
    );
    // Read again from the same cache (pieces read once were given back: they are decompressed again).
    read_all(&contents, &tree, &big, 100_000);
}
