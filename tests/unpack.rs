//! `strata unpack` must give the same root filesystem as `umoci unpack`: paths, kinds, modes, owners, sizes,
//! content hashes, link targets, device numbers, xattrs and hardlink groups — for gzip, zstd and plain
//! variants of multi-layer images with whiteouts, opaque directories and type changes.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{is_root, require_tool, run, skopeo_ok, strata, umoci, under_ci};

/// Unpacking with owners, devices and trusted xattrs needs root (CI runs as root).
fn require_root() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !under_ci(),
        "the unpack comparison needs root under CI=true"
    );
    eprintln!("skipping: the unpack comparison needs root");
    false
}

fn peers() -> bool {
    require_tool("umoci") && require_tool("skopeo") && require_root()
}

/// Copies up to `budget` bytes of real files from the machine's own /usr into `dest`, keeping their
/// metadata (`cp -a`), so the test image holds realistic trees.
fn copy_real_files(dest: &Path, mut budget: u64) {
    let candidates = [
        "/usr/share/doc",
        "/usr/lib/python3.11/email",
        "/usr/share/zoneinfo/Europe",
        "/usr/share/perl5",
    ];
    for dir in candidates {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        let target = dest.join(dir.trim_start_matches('/'));
        fs::create_dir_all(&target).expect("creating a target dir");
        for path in entries {
            let size: u64 = walk_size(&path);
            if size > budget {
                continue;
            }
            budget -= size;
            run(Command::new("cp").arg("-a").arg(&path).arg(&target));
        }
    }
}

fn walk_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| walk_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

fn repack(image: &str, bundle: &Path, refresh: bool) {
    let mut args = vec!["repack".to_owned()];
    if refresh {
        args.push("--refresh-bundle".to_owned());
    }
    args.extend(["--image".to_owned(), image.to_owned()]);
    args.push(bundle.display().to_string());
    umoci(&args);
}

/// A three-layer image built by umoci from real files plus every kind of change umoci can express:
/// whiteouts of files and trees, file→dir, dir→file and file→symlink changes, hardlinks, a setuid file,
/// owners, an xattr, a fifo and a character device.
fn rich_image(work: &Path) -> PathBuf {
    let layout = work.join("rich");
    let image = format!("{}:rich", layout.display());
    umoci(["init".as_ref(), "--layout".as_ref(), layout.as_os_str()]);
    umoci(["new", "--image", &image]);
    let bundle = work.join("bundle");
    umoci(["unpack", "--image", &image, &bundle.display().to_string()]);
    let root = bundle.join("rootfs");

    // Layer 1.
    copy_real_files(&root, 12 << 20);
    for dir in ["etc/olddir/sub", "opt/becomes-file", "srv/data", "usr/bin"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("etc/olddir/sub/f"), b"gone with its dir\n").unwrap();
    fs::write(root.join("etc/gone"), b"removed in layer two\n").unwrap();
    fs::write(root.join("opt/becomes-dir"), b"a file, then a dir\n").unwrap();
    fs::write(root.join("opt/becomes-file/x"), b"a dir, then a file\n").unwrap();
    fs::write(root.join("opt/becomes-link"), b"a file, then a symlink\n").unwrap();
    let su = root.join("usr/bin/su");
    fs::write(&su, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&su, fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(root.join("srv/data/owned"), b"owned by 1000\n").unwrap();
    rustix::fs::chown(
        root.join("srv/data/owned"),
        Some(rustix::process::Uid::from_raw(1000)),
        Some(rustix::process::Gid::from_raw(1000)),
    )
    .unwrap();
    fs::write(root.join("srv/data/a"), b"hardlinked\n").unwrap();
    fs::hard_link(root.join("srv/data/a"), root.join("srv/data/b")).unwrap();
    rustix::fs::setxattr(
        root.join("srv/data/a"),
        "user.strata",
        b"yes",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    symlink("../srv/data/a", root.join("usr/bin/rel-link")).unwrap();
    symlink("/srv/data/a", root.join("usr/bin/abs-link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("srv/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("srv/null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    repack(&image, &bundle, true);

    // Layer 2: whiteouts and type changes.
    fs::remove_file(root.join("etc/gone")).unwrap();
    fs::remove_dir_all(root.join("etc/olddir")).unwrap();
    fs::remove_file(root.join("opt/becomes-dir")).unwrap();
    fs::create_dir(root.join("opt/becomes-dir")).unwrap();
    fs::write(root.join("opt/becomes-dir/inside"), b"now a dir\n").unwrap();
    fs::remove_dir_all(root.join("opt/becomes-file")).unwrap();
    fs::write(root.join("opt/becomes-file"), b"now a file\n").unwrap();
    fs::remove_file(root.join("opt/becomes-link")).unwrap();
    symlink("becomes-file", root.join("opt/becomes-link")).unwrap();
    fs::write(root.join("srv/data/owned"), b"changed in layer two\n").unwrap();
    fs::set_permissions(root.join("srv/data"), fs::Permissions::from_mode(0o750)).unwrap();
    repack(&image, &bundle, false);

    // Layer 3: a removed tree recreated with other contents, and a hardlink to a lower file.
    let doc = root.join("usr/share/doc");
    if let Some(first) = fs::read_dir(&doc)
        .ok()
        .and_then(|rd| rd.flatten().map(|e| e.path()).min())
    {
        fs::remove_dir_all(&first).unwrap();
        fs::create_dir(&first).unwrap();
        fs::write(first.join("NEW"), b"recreated\n").unwrap();
    }
    fs::hard_link(root.join("srv/data/b"), root.join("srv/third-link")).unwrap();
    repack(&image, &bundle, false);
    layout
}

/// `skopeo copy` of `from` into a new layout with other compression: `zstd`, or `none` (decompressed).
fn recompress(from: &str, to: &Path, compression: &str) -> String {
    let dest = format!("oci:{}:v", to.display());
    let mut args = vec!["copy", "-q"];
    match compression {
        "zstd" => args.extend(["--dest-compress", "--dest-compress-format", "zstd"]),
        "gzip" => args.extend(["--dest-compress", "--dest-compress-format", "gzip"]),
        _ => args.push("--dest-decompress"),
    }
    args.extend([from, &dest]);
    skopeo_ok(args);
    dest
}

fn umoci_rootfs(image: &str, work: &Path) -> PathBuf {
    let bundle = work.join("umoci-bundle");
    umoci(["unpack", "--image", image, &bundle.display().to_string()]);
    bundle.join("rootfs")
}

fn strata_unpack(image: &str, dest: &Path) {
    let out = strata(["unpack", image, &dest.display().to_string()]);
    assert!(
        out.status.success(),
        "strata unpack {image} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unpack_equals_umoci_for_gzip_zstd_and_plain() {
    if !peers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = rich_image(tmp.path());
    let gzip = format!("oci:{}:rich", layout.display());
    let expected = listing(&umoci_rootfs(
        &format!("{}:rich", layout.display()),
        tmp.path(),
    ));
    assert!(
        expected.len() > 50,
        "the test image is too small: {}",
        expected.len()
    );
    let variants = [
        ("gzip", gzip.clone()),
        ("zstd", recompress(&gzip, &tmp.path().join("zstd"), "zstd")),
        (
            "plain",
            recompress(&gzip, &tmp.path().join("plain"), "none"),
        ),
    ];
    for (name, image) in variants {
        let dest = tmp.path().join(format!("strata-{name}"));
        strata_unpack(&image, &dest);
        assert_same_tree(
            &expected,
            &listing(&dest),
            &format!("umoci vs strata ({name})"),
        );
    }
}

#[test]
fn unpack_of_the_sample_equals_umoci() {
    if !peers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sample = format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    // umoci 0.4 reads no zstd: give it the same image with every layer gzip.
    let gzip = recompress(&sample, &tmp.path().join("gz"), "gzip");
    let expected = listing(&umoci_rootfs(&gzip.replace("oci:", ""), tmp.path()));
    let dest = tmp.path().join("strata");
    strata_unpack(&sample, &dest);
    assert_same_tree(&expected, &listing(&dest), "umoci vs strata (sample)");
}
