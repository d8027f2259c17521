//! The file system over a fixture image with every kind of entry and change: the inode table as built, and
//! (where FUSE can be mounted: root and /dev/fuse) the mounted tree as the kernel shows it.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_fixtures::{Compression, ImageBuilder, LayerBuilder, noise};
use strata_fuse::{FsOptions, ImageFs, MountOptions, Tree};
use strata_layer::ImageView;
use strata_layer::contents::CHUNK;
use strata_layer::{BlobContents, ContentOptions, Contents};
use strata_oci::Platform;

/// Two layers (gzip, then zstd) with files, directories, symlinks, hardlinks (within a layer and across
/// layers), devices, a fifo, setuid and owners, an xattr, an mtime with nanoseconds, a whiteout, an opaque
/// directory, a type change, and a root entry (`./`) in each layer.
fn image(dir: &Path) -> String {
    let mut lower = LayerBuilder::new();
    lower.dir("./").mode(0o700).owner(1, 1).mtime(1);
    lower.dir("etc").mode(0o755);
    lower.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    lower.file("etc/gone", b"removed above\n");
    lower.dir("opt/d");
    lower.file("opt/d/x", b"hidden by the opaque dir\n");
    lower.file("opt/becomes-dir", b"a file below\n");
    lower.file("usr/bin/su", b"#!/bin/sh\n").mode(0o4755);
    lower
        .file("data/a", b"hardlinked\n")
        .xattr("user.strata", b"yes")
        .owner(1000, 1001)
        .pax_record("mtime", "1700000000.123456789");
    lower.hardlink("data/b", "data/a");
    lower.symlink("usr/bin/l", "../../data/a");
    // A tar header may give a symlink any mode; the kernel and every unpacker show 0777.
    lower.symlink("usr/bin/l755", "l").mode(0o755);
    lower.char_device("dev/null", 1, 3);
    lower.block_device("dev/sda", 8, 0);
    lower.fifo("run/fifo");
    lower.file("big", noise(12 << 20, 7));
    let mut upper = LayerBuilder::new();
    // The topmost root entry gives the root's metadata.
    upper
        .dir("./")
        .mode(0o750)
        .owner(1234, 5678)
        .pax_record("mtime", "1000000000.5")
        .xattr("user.root", b"top");
    upper.whiteout("etc/gone");
    upper.opaque("opt/d");
    upper.file("opt/d/y", b"above\n");
    upper.dir("opt/becomes-dir");
    upper.file("opt/becomes-dir/inside", b"now a dir\n");
    upper.hardlink("data/c", "data/a");
    upper.file("more", noise(3 << 20, 11));
    let layout = dir.join("layout");
    ImageBuilder::new()
        .layer(lower, Compression::Gzip)
        .layer(upper, Compression::Zstd)
        .write_layout(&layout, "t")
        .unwrap();
    format!("oci:{}:t", layout.display())
}

fn open(name: &str) -> ImageFs {
    let source: Arc<dyn strata_source::ImageSource> = Arc::from(strata_source::open(name).unwrap());
    ImageFs::open(
        source,
        &Platform::new("linux", "amd64", None),
        &FsOptions::default(),
    )
    .unwrap()
}

#[test]
fn the_inode_table_applies_the_layer_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = open(&image(tmp.path()));
    let tree: &Tree = fs.tree();
    assert!(tree.lookup_path(b"etc/gone").is_none(), "whiteout");
    assert!(tree.lookup_path(b"opt/d/x").is_none(), "opaque dir");
    assert!(tree.lookup_path(b"opt/d/y").is_some());
    assert!(tree.lookup_path(b"opt/becomes-dir/inside").is_some());
    let a = tree.lookup_path(b"data/a").unwrap();
    assert_eq!(tree.lookup_path(b"data/b"), Some(a), "hardlink in a layer");
    assert_eq!(
        tree.lookup_path(b"data/c"),
        Some(a),
        "hardlink across layers"
    );
    // Stable: the same image gives the same numbers.
    let again = open(&image(tmp.path()));
    assert_eq!(again.tree().lookup_path(b"data/c"), Some(a));
    assert_eq!(again.tree().lookup_path(b"more"), tree.lookup_path(b"more"));
    let file = tree.file(tree.lookup_path(b"more").unwrap()).unwrap();
    assert_eq!(
        (file.layer, file.size, file.path),
        (1, 3 << 20, &b"more"[..])
    );
}

#[test]
fn contents_read_right_from_many_threads_whatever_the_cache_size() {
    let tmp = tempfile::tempdir().unwrap();
    let name = image(tmp.path());
    let source: Arc<dyn strata_source::ImageSource> =
        Arc::from(strata_source::open(&name).unwrap());
    let view =
        ImageView::open(Arc::clone(&source), &Platform::new("linux", "amd64", None)).unwrap();
    let tree = Arc::new(Tree::build(view.merged()).unwrap());
    let files: Arc<Vec<(u64, Vec<u8>)>> = Arc::new(vec![
        (tree.lookup_path(b"big").unwrap(), noise(12 << 20, 7)),
        (tree.lookup_path(b"more").unwrap(), noise(3 << 20, 11)),
        (
            tree.lookup_path(b"data/c").unwrap(),
            b"hardlinked\n".to_vec(),
        ),
    ]);
    // One chunk (no read-ahead, constant eviction), a few, and plenty.
    for cache in [CHUNK, 3 * CHUNK, 64 * CHUNK] {
        let contents = Arc::new(
            BlobContents::new(
                Arc::clone(&source),
                view.merged().layers(),
                &ContentOptions::mount(cache),
            )
            .unwrap(),
        );
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let (tree, files, contents) =
                    (Arc::clone(&tree), Arc::clone(&files), Arc::clone(&contents));
                std::thread::spawn(move || {
                    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ (t << 32);
                    let mut next = |n: u64| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state % n.max(1)
                    };
                    let mut buf = vec![0u8; 300_000];
                    for i in 0..60 {
                        let (ino, data) = &files[(i + t as usize) % files.len()];
                        let file = tree.file(*ino).unwrap();
                        // Half the reads go through the file in order (read-ahead), half jump around.
                        let offset = if i % 2 == 0 {
                            (i as u64 / 2 * 200_000) % (data.len() as u64 + 10)
                        } else {
                            next(data.len() as u64 + 10)
                        };
                        let len = 1 + next(buf.len() as u64) as usize;
                        let n = contents.read_at(&file, offset, &mut buf[..len]).unwrap();
                        let from = (offset as usize).min(data.len());
                        let want = &data[from..(from + len).min(data.len())];
                        assert_eq!(&buf[..n], want, "thread {t} read {i}: {len} at {offset}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}

/// Whether this process can mount FUSE here (root with /dev/fuse); the CLI tests enforce it under CI.
fn can_mount() -> bool {
    let ok = rustix::process::geteuid().is_root() && Path::new("/dev/fuse").exists();
    if !ok {
        eprintln!("SKIP: mounting FUSE in-process needs root and /dev/fuse");
    }
    ok
}

#[test]
fn the_mounted_tree_shows_every_kind_and_attribute() {
    if !can_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fs = open(&image(tmp.path()));
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = strata_fuse::mount(fs, &mnt, &MountOptions::default()).unwrap();
    let server = std::thread::spawn(move || mounted.serve());
    assert_eq!(
        strata_fuse::mount_type(&mnt).unwrap().as_deref(),
        Some("fuse.strata")
    );
    let options = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = options
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(mnt.to_str().unwrap()))
        .unwrap();
    let opts = line.split(' ').nth(5).unwrap();
    for o in ["ro", "nosuid", "nodev"] {
        assert!(opts.split(',').any(|x| x == o), "{o} not in {line}");
    }

    let m = |p: &str| fs::symlink_metadata(mnt.join(p)).unwrap();
    let root = m("");
    assert_eq!(
        (
            root.mode() & 0o7777,
            root.uid(),
            root.gid(),
            root.mtime(),
            root.mtime_nsec()
        ),
        (0o750, 1234, 5678, 1_000_000_000, 500_000_000),
        "the root is the top layer's ./"
    );
    for link in ["usr/bin/l", "usr/bin/l755"] {
        assert_eq!(m(link).mode() & 0o7777, 0o777, "{link}: a symlink is 0777");
    }
    let mut value = [0u8; 16];
    let n = rustix::fs::lgetxattr(&mnt, "user.root", &mut value).unwrap();
    assert_eq!(&value[..n], b"top");
    assert_eq!(
        fs::read(mnt.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert!(!mnt.join("etc/gone").exists());
    assert!(!mnt.join("opt/d/x").exists());
    assert_eq!(fs::read(mnt.join("opt/d/y")).unwrap(), b"above\n");
    assert!(m("opt/becomes-dir").is_dir());
    assert_eq!(m("usr/bin/su").mode() & 0o7777, 0o4755);
    let a = m("data/a");
    assert_eq!((a.uid(), a.gid(), a.nlink()), (1000, 1001, 3));
    assert_eq!((a.mtime(), a.mtime_nsec()), (1_700_000_000, 123_456_789));
    assert_eq!(m("data/b").ino(), a.ino());
    assert_eq!(m("data/c").ino(), a.ino());
    assert_eq!(fs::read(mnt.join("data/c")).unwrap(), b"hardlinked\n");
    let n = rustix::fs::lgetxattr(mnt.join("data/a"), "user.strata", &mut value).unwrap();
    assert_eq!(&value[..n], b"yes");
    let mut names = [0u8; 64];
    let n = rustix::fs::llistxattr(mnt.join("data/a"), &mut names).unwrap();
    assert_eq!(&names[..n], b"user.strata\0");
    assert_eq!(
        rustix::fs::lgetxattr(mnt.join("etc/passwd"), "user.strata", &mut value),
        Err(rustix::io::Errno::NODATA)
    );
    assert_eq!(
        fs::read_link(mnt.join("usr/bin/l")).unwrap(),
        Path::new("../../data/a")
    );
    let null = m("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (
            rustix::fs::major(null.rdev()),
            rustix::fs::minor(null.rdev())
        ),
        (1, 3)
    );
    let sda = m("dev/sda");
    assert!(sda.file_type().is_block_device());
    assert_eq!(
        (rustix::fs::major(sda.rdev()), rustix::fs::minor(sda.rdev())),
        (8, 0)
    );
    assert!(m("run/fifo").file_type().is_fifo());
    assert_eq!(fs::read(mnt.join("big")).unwrap(), noise(12 << 20, 7));
    assert_eq!(fs::read(mnt.join("more")).unwrap(), noise(3 << 20, 11));
    // Directory link counts: 2 + subdirectories.
    assert_eq!(m("opt").nlink(), 4);
    // A read-only file system refuses writes.
    let err = fs::write(mnt.join("etc/passwd"), b"x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::ROFS.raw_os_error())
    );
    let st = rustix::fs::statfs(&mnt).unwrap();
    assert!(st.f_blocks > 0 && st.f_files > 10, "{st:?}");

    strata_fuse::unmount(&mnt).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.is_finished() {
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.join().unwrap().unwrap();
    assert_eq!(strata_fuse::mount_type(&mnt).unwrap(), None);
}
