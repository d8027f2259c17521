//! An image read through its merged view (indexes + checkpoints, nothing unpacked) gives exactly the tree
//! that unpacking it writes: every file's bytes, every link target, every kind.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
use strata_index::EntryKind;
use strata_layer::unpack::{Mode, UnpackOptions, Unpacker};
use strata_layer::{ImageView, layer_specs, unpack_layers};
use strata_oci::Platform;

fn check(name: &str) {
    let source: Arc<dyn strata_source::ImageSource> = Arc::from(strata_source::open(name).unwrap());
    let platform = Platform::new("linux", "amd64", None);
    let view = ImageView::open(Arc::clone(&source), &platform).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    fs::create_dir(&root).unwrap();
    let specs = layer_specs(view.image()).unwrap();
    let mut unpacker = Unpacker::new(&root, UnpackOptions::new(Mode::Squash)).unwrap();
    unpack_layers(source.as_ref(), &specs, &mut unpacker).unwrap();
    unpacker.finish().unwrap();

    let mut seen = BTreeSet::new();
    let mut files = 0;
    for item in view.merged().walk() {
        let (path, merged) = item.unwrap();
        let on_disk = root.join(std::ffi::OsStr::from_bytes(&path));
        let meta =
            fs::symlink_metadata(&on_disk).unwrap_or_else(|e| panic!("{}: {e}", on_disk.display()));
        let entry = merged.entry;
        match entry.kind() {
            EntryKind::File | EntryKind::Hardlink => {
                assert!(meta.is_file(), "{}", on_disk.display());
                let bytes = view.read_file(&path, 1 << 30).unwrap().unwrap();
                assert_eq!(bytes, fs::read(&on_disk).unwrap(), "{}", on_disk.display());
                files += 1;
            }
            EntryKind::Dir => assert!(meta.is_dir(), "{}", on_disk.display()),
            EntryKind::Symlink => assert_eq!(
                fs::read_link(&on_disk).unwrap().as_os_str().as_bytes(),
                entry.link()
            ),
            _ => {}
        }
        seen.insert(path);
    }
    // Nothing on disk that the view does not show.
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            assert!(seen.contains(&rel), "{} is not in the view", p.display());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    assert!(files > 0);
}

#[test]
fn the_sample_reads_the_same_through_its_view() {
    check(&format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    ));
}

#[test]
fn a_multi_checkpoint_image_reads_the_same_through_its_view() {
    // Two layers of ~10 MiB each, gzip and zstd, so the gzip one gets checkpoints inside its member.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut content = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"abcdefgh ij\n"[(state % 12) as usize]
            })
            .collect()
    };
    let mut lower = LayerBuilder::new();
    let mut upper = LayerBuilder::new();
    for i in 0..40 {
        lower.file(format!("data/f{i}"), content(256 << 10));
        upper.file(format!("more/g{i}"), content(256 << 10));
    }
    upper.whiteout("data/f3");
    upper.hardlink("more/link-to-lower", "data/f7");
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    ImageBuilder::new()
        .layer(lower, Compression::Gzip)
        .layer(upper, Compression::Zstd)
        .write_layout(Path::new(&layout), "t")
        .unwrap();
    check(&format!("oci:{}:t", layout.display()));
}
