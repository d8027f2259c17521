//! The "rich" test image the unpack, mount and scan comparisons share: three layers built by real umoci
//! from real files of this machine plus every kind of entry and change umoci can express, so that strata's
//! unpack, mount and export can each be compared with `umoci unpack` of the same image.

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use strata_fixtures::noise;

use crate::{is_root, run, skopeo_ok, umoci};

/// A [`rich_image`]: its OCI layout and its umoci reference (`LAYOUT:rich`).
#[derive(Debug, Clone)]
pub struct RichImage {
    /// The OCI layout.
    pub layout: PathBuf,
    /// `LAYOUT:rich`, as umoci names it (prefix `oci:` for strata and skopeo).
    pub image: String,
}

impl RichImage {
    /// `oci:LAYOUT:rich`.
    pub fn oci(&self) -> String {
        format!("oci:{}", self.image)
    }
}

/// The total size of the files under `path` (`path` itself if it is not a directory).
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

/// Copies up to `budget` bytes of real files from the machine's own /usr into `dest` (`cp -a`, keeping
/// their metadata), whole subtrees at a time in name order, so the test image holds realistic trees.
pub fn copy_real_files(dest: &Path, mut budget: u64) {
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
            let size = tree_size(&path);
            if size > budget {
                continue;
            }
            budget -= size;
            run(Command::new("cp").arg("-a").arg(&path).arg(&target));
        }
    }
}

/// `umoci unpack` of `image` (`LAYOUT:TAG`) into `bundle` (`--rootless` when not root); returns the
/// bundle's rootfs.
pub fn umoci_unpack(image: &str, bundle: &Path) -> PathBuf {
    let mut args = vec!["unpack".to_owned()];
    if !is_root() {
        args.push("--rootless".to_owned());
    }
    args.extend(["--image".to_owned(), image.to_owned()]);
    args.push(bundle.display().to_string());
    umoci(&args);
    bundle.join("rootfs")
}

/// `umoci repack` of `bundle` into `image` (a tag of the bundle's layout), `--refresh-bundle` if asked.
pub fn umoci_repack(image: &str, bundle: &Path, refresh: bool) {
    let mut args = vec!["repack".to_owned()];
    if refresh {
        args.push("--refresh-bundle".to_owned());
    }
    args.extend(["--image".to_owned(), image.to_owned()]);
    args.push(bundle.display().to_string());
    umoci(&args);
}

/// `skopeo copy` of `from` into a new layout at `to` with other compression: `zstd`, `gzip`, or anything
/// else for none (decompressed). Returns `oci:TO:v`.
pub fn recompress(from: &str, to: &Path, compression: &str) -> String {
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

/// Builds the rich image in `work/rich` (bundle in `work/rich-bundle`), with up to `real_bytes` of real
/// files:
/// 1. the real files; setuid and setgid files; a file owned by 1000; a hardlink pair with an xattr;
///    relative, absolute, dangling and looping symlinks; a name and a link target over 100 bytes; a UTF-8
///    name; a fifo; a character device; a 6 MiB incompressible file (several gzip checkpoints);
/// 2. whiteouts of a file and of a tree, file→dir, dir→file and file→symlink changes, new content and a
///    new directory mode;
/// 3. a removed tree recreated with other contents, a hardlink to a lower file, a new file.
///
/// # Panics
/// When umoci (or a file operation) fails.
pub fn rich_image(work: &Path, real_bytes: u64) -> RichImage {
    let layout = work.join("rich");
    let image = format!("{}:rich", layout.display());
    umoci(["init".as_ref(), "--layout".as_ref(), layout.as_os_str()]);
    umoci(["new", "--image", &image]);
    let bundle = work.join("rich-bundle");
    let root = umoci_unpack(&image, &bundle);
    write_layer_one(&root, real_bytes);
    umoci_repack(&image, &bundle, true);
    write_layer_two(&root);
    umoci_repack(&image, &bundle, false);
    write_layer_three(&root);
    umoci_repack(&image, &bundle, false);
    RichImage { layout, image }
}

fn write_layer_one(root: &Path, real_bytes: u64) {
    copy_real_files(root, real_bytes);
    for dir in ["etc/olddir/sub", "opt/becomes-file", "srv/data", "usr/bin"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("etc/olddir/sub/f"), b"gone with its dir\n").unwrap();
    fs::write(root.join("etc/gone"), b"removed in layer two\n").unwrap();
    fs::write(root.join("opt/becomes-dir"), b"a file, then a dir\n").unwrap();
    fs::write(root.join("opt/becomes-file/x"), b"a dir, then a file\n").unwrap();
    fs::write(root.join("opt/becomes-link"), b"a file, then a symlink\n").unwrap();
    fs::write(root.join("srv/big"), noise(6 << 20, 3)).unwrap();
    for (name, mode) in [("usr/bin/su", 0o4755), ("usr/bin/wall", 0o2755)] {
        fs::write(root.join(name), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
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
    symlink("../../srv/data/a", root.join("usr/bin/rel-link")).unwrap();
    symlink("/srv/data/a", root.join("usr/bin/abs-link")).unwrap();
    symlink("../srv/data/a", root.join("usr/bin/dangling")).unwrap();
    symlink("loop-b", root.join("usr/bin/loop-a")).unwrap();
    symlink("loop-a", root.join("usr/bin/loop-b")).unwrap();
    let long_dir = root.join("srv").join("d".repeat(60)).join("e".repeat(60));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(50)), b"a name over 100 bytes\n").unwrap();
    symlink(
        format!(
            "/srv/{}/{}/{}",
            "d".repeat(60),
            "e".repeat(60),
            "f".repeat(50)
        ),
        root.join("srv/long-link"),
    )
    .unwrap();
    fs::write(root.join("srv/données.txt"), b"utf-8 name\n").unwrap();
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
}

fn write_layer_two(root: &Path) {
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
}

fn write_layer_three(root: &Path) {
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
    fs::write(root.join("srv/late"), b"layer three\n").unwrap();
}

/// The root directory's mode, owner and modification time (seconds) at `path`.
pub fn root_meta(path: &Path) -> (u32, u32, u32, i64) {
    use std::os::unix::fs::MetadataExt as _;
    let m = fs::symlink_metadata(path).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime())
}

/// An image whose layers carry unusual metadata for the root directory (`./`), built by umoci in
/// `work/rootmeta` (root needed to chown): layer 1 has `./` mode 0700 owned by 1:1; layer 2 mode 0750,
/// owned by 1234:5678, mtime 1000000000; layer 3 leaves the root alone (a file in `srv/`).
pub fn root_entry_image(work: &Path) -> RichImage {
    let layout = work.join("rootmeta");
    let image = format!("{}:rootmeta", layout.display());
    umoci(["init".as_ref(), "--layout".as_ref(), layout.as_os_str()]);
    umoci(["new", "--image", &image]);
    let bundle = work.join("rootmeta-bundle");
    let root = umoci_unpack(&image, &bundle);
    let set = |mode: u32, owner: u32, mtime: Option<i64>| {
        fs::set_permissions(&root, fs::Permissions::from_mode(mode)).unwrap();
        rustix::fs::chown(
            &root,
            Some(rustix::process::Uid::from_raw(owner)),
            Some(rustix::process::Gid::from_raw(owner + 1)),
        )
        .unwrap();
        if let Some(secs) = mtime {
            let t = rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: secs,
                    tv_nsec: 0,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: secs,
                    tv_nsec: 0,
                },
            };
            rustix::fs::utimensat(rustix::fs::CWD, &root, &t, rustix::fs::AtFlags::empty())
                .unwrap();
        }
    };
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/one"), b"layer one\n").unwrap();
    set(0o700, 1, None);
    umoci_repack(&image, &bundle, true);
    fs::write(root.join("two"), b"layer two\n").unwrap();
    set(0o750, 1233, Some(1_000_000_000));
    umoci_repack(&image, &bundle, true);
    fs::create_dir_all(root.join("srv")).unwrap();
    fs::write(root.join("srv/three"), b"layer three\n").unwrap();
    rustix::fs::utimensat(
        rustix::fs::CWD,
        &root,
        &rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 0,
            },
        },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    umoci_repack(&image, &bundle, false);
    RichImage { layout, image }
}
