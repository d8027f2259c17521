//! Layers read through their tables of contents, against the same layers read whole: eStargz and
//! zstd:chunked written by strata-fixtures' writers (the real tools' output is tested end to end in
//! `tests/lazy.rs`), and hostile tables, each refused with an error naming the layer and file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};
use strata_fixtures::{
    BuiltLayer, Compression, ESTARGZ_TOC_DIGEST, ImageBuilder, LayerBuilder, TocKind, TocLayer,
    ZSTD_CHUNKED_POSITION, estargz_footer,
};
use strata_image::{Blob, ImageSource, RawManifest};
use strata_index::EntryKind;
use strata_layer::{ImageView, IndexOptions, IndexOrigin, ViewOptions, obtain_layers};
use strata_oci::{Digest, Platform};

/// A layer with the shapes lazy reads must get right: small, empty and multi-chunk files, links, a
/// device, a whiteout and an opaque directory, eStargz's landmark.
fn layer() -> LayerBuilder {
    let mut layer = LayerBuilder::new();
    layer.dir("etc");
    layer.file("etc/os-release", b"ID=debian\nVERSION_ID=12\n");
    layer.file("etc/empty", b"");
    layer.file(".no.prefetch.landmark", [0x0f]);
    let big: Vec<u8> = (0..50_000u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    layer.file("usr/lib/big.bin", &big);
    layer.file("usr/lib/mid.txt", "hello lazy world\n".repeat(300));
    layer.symlink("usr/lib/link", "big.bin");
    layer.hardlink("usr/lib/hard", "usr/lib/mid.txt");
    layer.whiteout("var/gone");
    layer.opaque("opt");
    layer
}

fn tar() -> Vec<u8> {
    layer().tar_bytes().unwrap()
}

/// A lazily readable image with one layer, written to a temporary OCI layout.
struct Image {
    _dir: tempfile::TempDir,
    source: Arc<dyn ImageSource>,
}

fn image(layer: BuiltLayer) -> Image {
    let dir = tempfile::tempdir().unwrap();
    ImageBuilder::new()
        .built_layer(layer)
        .write_layout(dir.path(), "t")
        .unwrap();
    let name = format!("oci:{}:t", dir.path().display());
    let source: Arc<dyn ImageSource> = Arc::from(strata_source::open(&name).unwrap());
    Image { _dir: dir, source }
}

fn lazy_options() -> ViewOptions {
    ViewOptions {
        indexes: IndexOptions {
            finders: strata_lazy::finders(&strata_lazy::LazyOptions::default()),
            ..IndexOptions::default()
        },
        ..ViewOptions::default()
    }
}

fn platform() -> Platform {
    Platform::new("linux", "amd64", None)
}

/// Every visible path with what `ls -l` and `cat` would show.
fn listing(view: &ImageView) -> Vec<(String, EntryKind, u32, u64, Vec<u8>, Vec<u8>)> {
    view.merged()
        .walk()
        .map(|item| {
            let (path, me) = item.unwrap();
            let data = if matches!(me.entry.kind(), EntryKind::File | EntryKind::Hardlink) {
                view.read_file(&path, u64::MAX).unwrap().unwrap()
            } else {
                Vec::new()
            };
            (
                String::from_utf8_lossy(&path).into_owned(),
                me.entry.kind(),
                me.entry.mode(),
                me.entry.mtime() as u64,
                me.entry.link().to_vec(),
                data,
            )
        })
        .collect()
}

#[test]
fn lazy_layers_read_as_the_whole_layer_does() {
    let tar = tar();
    let whole = image(layer().build(Compression::Gzip).unwrap());
    let expected = listing(&ImageView::open(Arc::clone(&whole.source), &platform()).unwrap());
    assert!(expected.iter().any(|e| e.0 == "usr/lib/big.bin"));
    for kind in [TocKind::Estargz, TocKind::ZstdChunked] {
        for chunk in [4 << 20, 4096, 1000] {
            let layer = match kind {
                TocKind::Estargz => TocLayer::estargz(&tar, chunk),
                TocKind::ZstdChunked => TocLayer::zstd_chunked(&tar, chunk),
            }
            .unwrap()
            .finish()
            .unwrap();
            let img = image(layer);
            let view = ImageView::open_with(Arc::clone(&img.source), &platform(), &lazy_options())
                .unwrap();
            let mut got = listing(&view);
            // eStargz's own entries are hidden; in the whole read the landmark is a file.
            let mut want = expected.clone();
            if kind == TocKind::Estargz {
                want.retain(|e| e.0 != ".no.prefetch.landmark");
            } else {
                got.retain(|e| e.0 != ".no.prefetch.landmark");
                want.retain(|e| e.0 != ".no.prefetch.landmark");
            }
            assert_eq!(got, want, "{kind:?} with {chunk}-byte chunks");
            let image = strata_image::resolve(img.source.as_ref(), &platform()).unwrap();
            let options = lazy_options().indexes;
            let layers = obtain_layers(&img.source, &image, &options).unwrap();
            assert!(
                matches!(layers[0].origin, IndexOrigin::Toc(_)),
                "{:?}",
                layers[0].origin
            );
        }
    }
}

/// The error opening, or else reading every file of, an image whose one layer is `layer`.
fn failure(layer: BuiltLayer) -> String {
    let img = image(layer);
    let view = match ImageView::open_with(Arc::clone(&img.source), &platform(), &lazy_options()) {
        Ok(view) => view,
        Err(e) => return e.to_string(),
    };
    for item in view.merged().walk() {
        let (path, me) = item.unwrap();
        if me.entry.kind() == EntryKind::File
            && let Err(e) = view.read_file(&path, u64::MAX)
        {
            return e.to_string();
        }
    }
    panic!("the image read without an error")
}

/// A layer of `kind` with 1000-byte chunks whose table `edit` changed.
fn edited(kind: TocKind, edit: impl FnOnce(&mut Vec<Value>)) -> BuiltLayer {
    let tar = tar();
    let mut layer = match kind {
        TocKind::Estargz => TocLayer::estargz(&tar, 1000),
        TocKind::ZstdChunked => TocLayer::zstd_chunked(&tar, 1000),
    }
    .unwrap();
    edit(layer.toc["entries"].as_array_mut().unwrap());
    layer.finish().unwrap()
}

fn entry<'a>(entries: &'a mut [Value], name: &str) -> &'a mut Value {
    entries
        .iter_mut()
        .find(|e| e["name"] == name && e["type"] != "chunk")
        .unwrap()
}

fn assert_names(err: &str, layer: &BuiltLayer, words: &[&str]) {
    assert!(err.contains(&layer.digest), "no layer digest in: {err}");
    for w in words {
        assert!(err.contains(w), "{w:?} missing from: {err}");
    }
}

#[test]
fn hostile_tables_are_refused_naming_the_layer_and_file() {
    for kind in [TocKind::Estargz, TocKind::ZstdChunked] {
        let past = edited(kind, |e| {
            entry(e, "etc/os-release")["offset"] = json!(1u64 << 40)
        });
        assert_names(
            &failure(past.clone()),
            &past,
            &["etc/os-release", "past its data"],
        );

        let overlap = edited(kind, |e| {
            let first = entry(e, "etc/os-release")["offset"].clone();
            entry(e, "usr/lib/mid.txt")["offset"] = first;
        });
        assert_names(
            &failure(overlap.clone()),
            &overlap,
            &["usr/lib/mid.txt", "overlaps"],
        );

        // A chunk pointing into the middle of its compressed data: no wrong byte, an error.
        let inside = edited(kind, |e| {
            let at = entry(e, "usr/lib/mid.txt")["offset"].as_u64().unwrap();
            entry(e, "usr/lib/mid.txt")["offset"] = json!(at + 7);
        });
        assert_names(&failure(inside.clone()), &inside, &["usr/lib/mid.txt"]);

        let digest = edited(kind, |e| {
            entry(e, "etc/os-release")["chunkDigest"] = json!(format!("sha256:{}", "0".repeat(64)));
        });
        assert_names(
            &failure(digest.clone()),
            &digest,
            &["etc/os-release", "digest"],
        );

        let short = edited(kind, |e| entry(e, "etc/os-release")["size"] = json!(4000));
        assert_names(&failure(short.clone()), &short, &["etc/os-release"]);

        let climbing = edited(kind, |e| {
            entry(e, "etc/os-release")["name"] = json!("../../x")
        });
        assert_names(&failure(climbing.clone()), &climbing, &["../../x"]);

        let huge_chunk = edited(kind, |e| {
            let big = entry(e, "usr/lib/big.bin");
            big["size"] = json!(1u64 << 40);
            big["chunkSize"] = json!(1u64 << 40);
        });
        assert_names(
            &failure(huge_chunk.clone()),
            &huge_chunk,
            &["usr/lib/big.bin"],
        );
    }
}

#[test]
fn tables_that_do_not_match_the_manifest_or_footer_are_refused() {
    let tar = tar();
    let layer = TocLayer::estargz(&tar, 1000).unwrap().finish().unwrap();

    let mut wrong_digest = layer.clone();
    wrong_digest.annotations.insert(
        ESTARGZ_TOC_DIGEST.into(),
        format!("sha256:{}", "1".repeat(64)),
    );
    assert_names(
        &failure(wrong_digest.clone()),
        &wrong_digest,
        &["annotation", "digest"],
    );

    let mut garbage = layer.clone();
    let n = garbage.blob.len();
    garbage.blob[n - 51..].fill(b'x');
    garbage.digest = strata_fixtures::sha256_digest(&garbage.blob);
    assert_names(&failure(garbage.clone()), &garbage, &["footer"]);

    let mut beyond = layer.clone();
    let n = beyond.blob.len();
    beyond.blob.splice(n - 51.., estargz_footer(n as u64));
    beyond.digest = strata_fixtures::sha256_digest(&beyond.blob);
    assert_names(&failure(beyond.clone()), &beyond, &["footer"]);

    // A table claiming 1 GiB.
    let mut claim = TocLayer::estargz(&tar, 1000).unwrap();
    claim.claimed_toc_size = Some(1 << 30);
    let claim = claim.finish().unwrap();
    assert_names(&failure(claim.clone()), &claim, &["1073741824"]);

    let mut zstd = TocLayer::zstd_chunked(&tar, 1000)
        .unwrap()
        .finish()
        .unwrap();
    let position = zstd.annotations[ZSTD_CHUNKED_POSITION].clone();
    let mut fields: Vec<String> = position.split(':').map(str::to_owned).collect();
    fields[2] = (1u64 << 30).to_string();
    zstd.annotations
        .insert(ZSTD_CHUNKED_POSITION.into(), fields.join(":"));
    assert_names(&failure(zstd.clone()), &zstd, &["1073741824"]);
}

/// A source that serves other bytes for the blob ranges of one layer after `armed` is set, and counts
/// the bytes it served by range.
struct Lying {
    inner: Arc<dyn ImageSource>,
    armed: AtomicBool,
    ranged: AtomicU64,
}

impl ImageSource for Lying {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn top_manifest(&self) -> strata_image::Result<RawManifest> {
        self.inner.top_manifest()
    }
    fn manifest(
        &self,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> strata_image::Result<RawManifest> {
        self.inner.manifest(digest, media_type)
    }
    fn open_blob(&self, digest: &Digest) -> strata_image::Result<Blob> {
        self.inner.open_blob(digest)
    }
    fn read_blob_at(
        &self,
        digest: &Digest,
        offset: u64,
        buf: &mut [u8],
    ) -> strata_image::Result<usize> {
        let n = self.inner.read_blob_at(digest, offset, buf)?;
        self.ranged.fetch_add(n as u64, Ordering::Relaxed);
        if self.armed.load(Ordering::Relaxed) {
            for b in &mut buf[..n] {
                *b ^= 0x55;
            }
        }
        Ok(n)
    }
}

#[test]
fn a_registry_serving_other_bytes_gets_an_error_never_wrong_bytes() {
    for kind in [TocKind::Estargz, TocKind::ZstdChunked] {
        let tar = tar();
        let layer = match kind {
            TocKind::Estargz => TocLayer::estargz(&tar, 1000),
            TocKind::ZstdChunked => TocLayer::zstd_chunked(&tar, 1000),
        }
        .unwrap()
        .finish()
        .unwrap();
        let blob_size = layer.blob.len() as u64;
        let img = image(layer);
        let lying = Arc::new(Lying {
            inner: Arc::clone(&img.source),
            armed: AtomicBool::new(false),
            ranged: AtomicU64::new(0),
        });
        let source: Arc<dyn ImageSource> = lying.clone();
        let view = ImageView::open_with(source, &platform(), &lazy_options()).unwrap();
        lying.armed.store(true, Ordering::Relaxed);
        let err = view
            .read_file(b"usr/lib/mid.txt", u64::MAX)
            .unwrap_err()
            .to_string();
        assert!(err.contains("usr/lib/mid.txt"), "{err}");
        lying.armed.store(false, Ordering::Relaxed);
        let good = view
            .read_file(b"etc/os-release", u64::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(good, b"ID=debian\nVERSION_ID=12\n");
        assert!(
            lying.ranged.load(Ordering::Relaxed) <= blob_size * 2,
            "{kind:?}"
        );
    }
}
