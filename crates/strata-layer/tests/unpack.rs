//! Tests of `strata_layer::unpack`: every entry kind, metadata, overlay and squash semantics, and hostile
//! layers that try to reach outside the target.
//!
//! Most tests need root (owners, devices, `trusted.*` xattrs); they return early when not run as root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use strata_index::{Entry, EntryKind};
use strata_layer::unpack::{Mode, OpaqueXattr, UnpackOptions, UnpackReport, Unpacker};
use tempfile::TempDir;

// ---- building entries ----

const T0: i64 = 1_600_000_000;

fn ent(path: &str, kind: EntryKind) -> Entry {
    Entry {
        path: path.as_bytes().to_vec(),
        kind,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        size: 0,
        mtime: T0,
        mtime_nsec: 0,
        link: Vec::new(),
        dev_major: 0,
        dev_minor: 0,
        xattrs: Vec::new(),
        offset: 0,
    }
}

/// One entry with its content.
type Item = (Entry, Vec<u8>);

fn file(path: &str, content: &str) -> Item {
    let mut e = ent(path, EntryKind::File);
    e.size = content.len() as u64;
    (e, content.as_bytes().to_vec())
}
fn dir(path: &str) -> Item {
    (ent(path, EntryKind::Dir), Vec::new())
}
fn symlink(path: &str, target: &str) -> Item {
    let mut e = ent(path, EntryKind::Symlink);
    e.mode = 0o777;
    e.link = target.as_bytes().to_vec();
    (e, Vec::new())
}
fn hardlink(path: &str, target: &str) -> Item {
    let mut e = ent(path, EntryKind::Hardlink);
    e.link = target.as_bytes().to_vec();
    (e, Vec::new())
}
fn whiteout(path: &str) -> Item {
    (ent(path, EntryKind::Whiteout), Vec::new())
}
fn opaque(path: &str) -> Item {
    (ent(path, EntryKind::Opaque), Vec::new())
}
fn with(mut item: Item, f: impl FnOnce(&mut Entry)) -> Item {
    f(&mut item.0);
    item
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

// ---- fixture ----

/// A temp dir holding `target/` (unpacked into) and a sentinel `outside/` beside it.
struct Fx {
    tmp: TempDir,
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("target")).unwrap();
        let out = tmp.path().join("outside");
        fs::create_dir_all(out.join("sub")).unwrap();
        fs::write(out.join("secret"), "keep me").unwrap();
        fs::write(out.join("sub/f"), "also keep").unwrap();
        std::os::unix::fs::symlink("secret", out.join("link")).unwrap();
        Fx { tmp }
    }
    fn target(&self) -> PathBuf {
        self.tmp.path().join("target")
    }
    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }
    fn outside_str(&self) -> String {
        self.outside().to_str().unwrap().to_string()
    }
    /// Everything in the temp dir except the target's contents.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        walk(self.tmp.path(), self.tmp.path(), &self.target(), &mut out);
        out
    }
    fn unpacker(&self, mode: Mode) -> Unpacker {
        Unpacker::new(&self.target(), UnpackOptions::new(mode)).unwrap()
    }
}

fn walk(base: &Path, p: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
    if p == skip {
        return;
    }
    let md = fs::symlink_metadata(p).unwrap();
    let ft = md.file_type();
    let mut desc = format!(
        "{:?} mode={:o} uid={} gid={} size={} mtime={}.{} nlink={} xattrs={:?}",
        ft,
        md.mode(),
        md.uid(),
        md.gid(),
        md.size(),
        md.mtime(),
        md.mtime_nsec(),
        md.nlink(),
        xattrs_of(p)
    );
    if ft.is_file() {
        let mut h = DefaultHasher::new();
        fs::read(p).unwrap().hash(&mut h);
        desc += &format!(" hash={:x}", h.finish());
    } else if ft.is_symlink() {
        desc += &format!(" -> {:?}", fs::read_link(p).unwrap());
    }
    out.insert(p.strip_prefix(base).unwrap().to_path_buf(), desc);
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            walk(base, &n, skip, out);
        }
    }
}

fn xattrs_of(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut list = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(p, &mut list[..]).unwrap_or(0);
    let mut out = Vec::new();
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut v = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(p, name, &mut v[..]).unwrap_or(0);
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            v[..len].to_vec(),
        ));
    }
    out
}

fn lxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut v = vec![0u8; 65536];
    rustix::fs::lgetxattr(p, name, &mut v[..])
        .ok()
        .map(|n| v[..n].to_vec())
}

fn apply_all(u: &mut Unpacker, items: &[Item]) -> strata_layer::Result<()> {
    for (e, data) in items {
        u.apply(e, &mut &data[..])?;
    }
    Ok(())
}

/// Squash-unpacks `layers` into the fixture's target.
fn squash(fx: &Fx, layers: &[&[Item]]) -> strata_layer::Result<UnpackReport> {
    let mut u = fx.unpacker(Mode::Squash);
    for l in layers {
        u.begin_layer()?;
        apply_all(&mut u, l)?;
    }
    u.finish()
}

fn overlay(fx: &Fx, items: &[Item]) -> strata_layer::Result<UnpackReport> {
    let mut u = fx.unpacker(Mode::Overlay);
    apply_all(&mut u, items)?;
    u.finish()
}

/// Runs `f` (which may fail) and asserts that nothing outside the target changed, and nothing appeared at `/`.
fn contained<R>(fx: &Fx, f: impl FnOnce() -> R) -> R {
    let before = fx.snapshot();
    let r = f();
    assert_eq!(
        before,
        fx.snapshot(),
        "something outside the target changed"
    );
    assert!(!Path::new("/strata-escape-probe").exists());
    r
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(p).unwrap()
}
fn kind(p: PathBuf) -> fs::FileType {
    fs::symlink_metadata(p).unwrap().file_type()
}

// ---- kinds and metadata ----

#[test]
fn every_kind() {
    if !is_root() {
        return;
    }
    let fx = Fx::new();
    let t = fx.target();
    let r = squash(
        &fx,
        &[&[
            dir("d"),
            file("d/f", "hello"),
            symlink("d/s", "f"),
            hardlink("d/h", "d/f"),
            with((ent("dev/null", EntryKind::CharDevice), vec![]), |e| {
                e.dev_major = 1;
                e.dev_minor = 3;
                e.mode = 0o666;
            }),
            with((ent("dev/loop0", EntryKind::BlockDevice), vec![]), |e| {
                e.dev_major = 7;
                e.dev_minor = 0;
                e.mode = 0o660;
            }),
            with((ent("p", EntryKind::Fifo), vec![]), |e| e.mode = 0o620),
        ]],
    )
    .unwrap();
    assert_eq!(r.entries, 7);
    assert_eq!(r.bytes, 5);
    assert_eq!(read(t.join("d/f")), "hello");
    assert_eq!(fs::read_link(t.join("d/s")).unwrap(), Path::new("f"));
    let f = fs::metadata(t.join("d/f")).unwrap();
    let h = fs::metadata(t.join("d/h")).unwrap();
    assert_eq!((f.ino(), f.nlink()), (h.ino(), 2));
    let null = fs::symlink_metadata(t.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let lp = fs::symlink_metadata(t.join("dev/loop0")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), rustix::fs::makedev(7, 0));
    let p = fs::symlink_metadata(t.join("p")).unwrap();
    assert!(p.file_type().is_fifo());
    assert_eq!(p.mode() & 0o7777, 0o620);
    // An implicit parent: 0755 whatever the umask.
    assert_eq!(fs::metadata(t.join("dev")).unwrap().mode() & 0o7777, 0o755);
}

#[test]
fn setuid_setgid_sticky_and_owner() {
    if !is_root() {
        return;
    }
    let fx = Fx::new();
    let t = fx.target();
    let own = |e: &mut Entry| {
        e.uid = 1000;
        e.gid = 1000;
    };
    squash(
        &fx,
        &[&[
            with(file("bin/su", "x"), |e| {
                own(e);
                e.mode = 0o4755;
            }),
            with(file("bin/wall", "x"), |e| {
                e.uid = 0;
                e.gid = 5;
                e.mode = 0o2755;
            }),
            with(dir("tmp"), |e| e.mode = 0o1777),
            with(dir("shared"), |e| {
                own(e);
                e.mode = 0o2770;
            }),
            with(symlink("l", "bin/su"), own),
            with((ent("fifo", EntryKind::Fifo), vec![]), |e| {
                own(e);
                e.mode = 0o4600;
            }),
        ]],
    )
    .unwrap();
    let m = |p: &str| fs::symlink_metadata(t.join(p)).unwrap();
    assert_eq!(
        (
            m("bin/su").mode() & 0o7777,
            m("bin/su").uid(),
            m("bin/su").gid()
        ),
        (0o4755, 1000, 1000)
    );
    assert_eq!(
        (m("bin/wall").mode() & 0o7777, m("bin/wall").gid()),
        (0o2755, 5)
    );
    assert_eq!(m("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(
        (m("shared").mode() & 0o7777, m("shared").uid()),
        (0o2770, 1000)
    );
    assert_eq!((m("l").uid(), m("l").gid()), (1000, 1000));
    assert_eq!((m("fifo").mode() & 0o7777, m("fifo").uid()), (0o4600, 1000));
}

#[test]
fn xattrs_applied_and_skipped() {
    if !is_root() {
        return;
    }
    let fx = Fx::new();
    let t = fx.target();
    let xa = |pairs: &[(&str, &str)]| -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    };
    let r = squash(
        &fx,
        &[&[
            with(dir("d"), |e| {
                e.xattrs = xa(&[("user.dir", "1"), ("trusted.overlay.opaque", "y")])
            }),
            with(file("d/f", "x"), |e| {
                e.xattrs = xa(&[
                    ("user.a", "va"),
                    ("security.selinux", "system_u:object_r:x:s0"),
                ]);
                e.uid = 1000;
            }),
            with(file("cap", "x"), |e| {
                // chown clears file capabilities, so xattrs must come after it.
                e.uid = 1000;
                e.xattrs = vec![(
                    b"security.capability".to_vec(),
                    vec![
                        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    ],
                )];
            }),
            with(symlink("s", "d/f"), |e| {
                e.xattrs = xa(&[("trusted.t", "sym")])
            }),
            with((ent("p", EntryKind::Fifo), vec![]), |e| {
                e.xattrs = xa(&[("trusted.p", "fifo")])
            }),
            with(file("bad", "x"), |e| e.xattrs = xa(&[("nonamespace", "v")])),
        ]],
    )
    .unwrap();
    assert_eq!(lxattr(&t.join("d"), "user.dir").as_deref(), Some(&b"1"[..]));
    assert_eq!(lxattr(&t.join("d"), "trusted.overlay.opaque"), None);
    assert_eq!(
        lxattr(&t.join("d/f"), "user.a").as_deref(),
        Some(&b"va"[..])
    );
    assert_eq!(
        lxattr(&t.join("cap"), "security.capability").map(|v| v.len()),
        Some(20)
    );
    assert_eq!(
        lxattr(&t.join("s"), "trusted.t").as_deref(),
        Some(&b"sym"[..])
    );
    assert_eq!(
        lxattr(&t.join("d/f"), "trusted.t"),
        None,
        "symlink xattr went to its target"
    );
    assert_eq!(
        lxattr(&t.join("p"), "trusted.p").as_deref(),
        Some(&b"fifo"[..])
    );
    // trusted.overlay.opaque, security.selinux, nonamespace.
    assert_eq!(r.skipped_xattrs, 3);
}

#[test]
fn mtimes_with_nanoseconds() {
    let fx = Fx::new();
    let t = fx.target();
    let ts = |e: &mut Entry, s: i64, ns: u32| {
        e.mtime = s;
        e.mtime_nsec = ns;
    };
    squash(
        &fx,
        &[&[
            with(dir("d"), |e| ts(e, 1_000_000_001, 111)),
            with(dir("d/ro"), |e| {
                ts(e, 1_000_000_002, 222);
                e.mode = 0o555;
            }),
            // Children created after their directories' entries.
            with(file("d/ro/f", "abc"), |e| ts(e, 1_000_000_003, 333_333_333)),
            with(symlink("d/ro/s", "f"), |e| ts(e, 1_000_000_004, 444)),
            with((ent("d/ro/p", EntryKind::Fifo), vec![]), |e| {
                ts(e, 1_000_000_005, 555)
            }),
            with(dir("d/ro/sub"), |e| ts(e, 1_000_000_006, 666)),
            file("d/ro/sub/late", "x"),
            with(file("neg", ""), |e| ts(e, -1, 5)),
        ]],
    )
    .unwrap();
    let m = |p: &str| {
        let md = fs::symlink_metadata(t.join(p)).unwrap();
        (md.mtime(), md.mtime_nsec())
    };
    assert_eq!(m("d"), (1_000_000_001, 111));
    assert_eq!(m("d/ro"), (1_000_000_002, 222));
    assert_eq!(m("d/ro/f"), (1_000_000_003, 333_333_333));
    assert_eq!(m("d/ro/s"), (1_000_000_004, 444));
    assert_eq!(m("d/ro/p"), (1_000_000_005, 555));
    assert_eq!(m("d/ro/sub"), (1_000_000_006, 666));
    assert_eq!(m("neg"), (-1, 5));
    assert_eq!(fs::metadata(t.join("d/ro")).unwrap().mode() & 0o7777, 0o555);
}

#[test]
fn read_only_dirs_are_filled_then_locked() {
    // Meaningful as non-root (root ignores permissions): a layer's 0555 or 0000 directory still takes its
    // children, in this layer and the next, and gets its mode at finish.
    let fx = Fx::new();
    let t = fx.target();
    squash(
        &fx,
        &[
            &[
                with(dir("ro"), |e| e.mode = 0o555),
                file("ro/f", "x"),
                with(dir("ro/none"), |e| e.mode = 0o000),
                file("ro/none/g", "y"),
                with(file("ro/ro-file", "z"), |e| e.mode = 0o400),
            ],
            &[
                file("ro/next-layer", "n"),
                whiteout("ro/f"),
                file("ro/none/h", "h"),
            ],
        ],
    )
    .unwrap();
    let mode = |p: &str| fs::symlink_metadata(t.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(
        (mode("ro"), mode("ro/none"), mode("ro/ro-file")),
        (0o555, 0o000, 0o400)
    );
    assert_eq!(read(t.join("ro/next-layer")), "n");
    assert!(!t.join("ro/f").exists());
    // Let the temp dir be cleaned up.
    fs::set_permissions(t.join("ro/none"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(t.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn short_content_and_bad_paths_are_errors() {
    let fx = Fx::new();
    let mut u = fx.unpacker(Mode::Squash);
    let (mut e, _) = file("f", "abcdef");
    assert!(u.apply(&e, &mut &b"abc"[..]).is_err());
    for bad in ["", "/abs", "a/../b", "./a", "a//b", "a/", "..", "a\0b"] {
        e.path = bad.as_bytes().to_vec();
        let err = u.apply(&e, &mut &b"abcdef"[..]).unwrap_err();
        assert!(err.to_string().contains("normalised"), "{bad:?}: {err}");
    }
}

#[test]
fn devices_skipped_when_disabled() {
    let fx = Fx::new();
    let mut opts = UnpackOptions::new(Mode::Squash);
    opts.devices = false;
    opts.chown = false;
    let mut u = Unpacker::new(&fx.target(), opts).unwrap();
    apply_all(
        &mut u,
        &[
            file("dev/null", "placeholder from a lower layer"),
            with((ent("dev/null", EntryKind::CharDevice), vec![]), |e| {
                e.dev_minor = 3
            }),
            (ent("dev/sda", EntryKind::BlockDevice), vec![]),
            (ent("dev/fifo", EntryKind::Fifo), vec![]),
        ],
    )
    .unwrap();
    let r = u.finish().unwrap();
    assert_eq!(r.skipped_devices, 2);
    assert!(!fx.target().join("dev/null").exists());
    assert!(!fx.target().join("dev/sda").exists());
    assert!(kind(fx.target().join("dev/fifo")).is_fifo());
}

// ---- overlay ----

#[test]
fn overlay_whiteout_and_opaque() {
    if !is_root() {
        return;
    }
    let fx = Fx::new();
    let t = fx.target();
    overlay(
        &fx,
        &[
            dir("etc"),
            with(whiteout("etc/gone"), |e| {
                e.uid = 12;
                e.gid = 34;
            }),
            whiteout("deep/er/gone"),
            dir("var"),
            file("var/keep", "k"),
            opaque("var"),
            opaque("new/opq"),
        ],
    )
    .unwrap();
    let wh = fs::symlink_metadata(t.join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!((wh.rdev(), wh.uid(), wh.gid()), (0, 12, 34));
    assert!(kind(t.join("deep/er/gone")).is_char_device());
    assert_eq!(
        lxattr(&t.join("var"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(read(t.join("var/keep")), "k");
    assert!(kind(t.join("new/opq")).is_dir());
    assert_eq!(
        lxattr(&t.join("new/opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
}

#[test]
fn overlay_opaque_user_namespace() {
    let fx = Fx::new();
    let mut opts = UnpackOptions::new(Mode::Overlay);
    opts.xattr_namespace_for_opaque = OpaqueXattr::User;
    let mut u = Unpacker::new(&fx.target(), opts).unwrap();
    apply_all(&mut u, &[dir("a"), opaque("a")]).unwrap();
    u.finish().unwrap();
    assert_eq!(
        lxattr(&fx.target().join("a"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        lxattr(&fx.target().join("a"), "trusted.overlay.opaque"),
        None
    );
}

#[test]
fn overlay_hardlink_missing_target_names_both() {
    let fx = Fx::new();
    let err = overlay(&fx, &[hardlink("bin/b", "bin/a")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("bin/b") && err.contains("bin/a"), "{err}");
}

#[test]
fn overlay_hardlink_to_whiteout_is_an_error() {
    if !is_root() {
        return;
    }
    let fx = Fx::new();
    assert!(overlay(&fx, &[whiteout("a"), hardlink("b", "a")]).is_err());
}

#[test]
fn overlay_hardlink_copied_from_lowers() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mk = |n: &str| {
        let p = tmp.path().join(n);
        fs::create_dir(&p).unwrap();
        p
    };
    let (base, mid, hidden, upper) = (mk("base"), mk("mid"), mk("hidden"), mk("upper"));
    // base: usr/bin/tool (the real one), gone/x (whited out in mid), opq/y (under an opaque dir in mid).
    {
        let mut u = Unpacker::new(&base, UnpackOptions::new(Mode::Overlay)).unwrap();
        apply_all(
            &mut u,
            &[
                with(file("usr/bin/tool", "tool-bytes"), |e| {
                    e.mode = 0o4711;
                    e.uid = 7;
                    e.gid = 8;
                    e.mtime = 1_234_567_890;
                    e.mtime_nsec = 42;
                    e.xattrs = vec![(b"user.k".to_vec(), b"v".to_vec())];
                }),
                file("gone/x", "x"),
                file("opq/y", "y"),
                symlink("lnk", "usr/bin/tool"),
            ],
        )
        .unwrap();
        u.finish().unwrap();
    }
    {
        let mut u = Unpacker::new(&mid, UnpackOptions::new(Mode::Overlay)).unwrap();
        apply_all(&mut u, &[whiteout("gone/x"), dir("opq"), opaque("opq")]).unwrap();
        u.finish().unwrap();
    }
    let mut opts = UnpackOptions::new(Mode::Overlay);
    opts.lowers = vec![hidden.clone(), mid.clone(), base.clone()];
    let mut u = Unpacker::new(&upper, opts.clone()).unwrap();
    // As in a real layer, the hardlink headers carry the file's metadata (in overlay mode they are applied to
    // the copy, after the lower's, as containers/storage applies a hardlink header's metadata).
    let tool_meta = |e: &mut Entry| {
        e.mode = 0o4711;
        e.uid = 7;
        e.gid = 8;
        e.mtime = 1_234_567_890;
        e.mtime_nsec = 42;
    };
    apply_all(
        &mut u,
        &[
            with(hardlink("a/t1", "usr/bin/tool"), tool_meta),
            with(hardlink("a/t2", "usr/bin/tool"), tool_meta),
            hardlink("l2", "lnk"),
        ],
    )
    .unwrap();
    let r = u.finish().unwrap();
    assert_eq!(r.bytes, 10);
    let t1 = fs::symlink_metadata(upper.join("a/t1")).unwrap();
    assert_eq!(read(upper.join("a/t1")), "tool-bytes");
    assert_eq!((t1.mode() & 0o7777, t1.uid(), t1.gid()), (0o4711, 7, 8));
    assert_eq!((t1.mtime(), t1.mtime_nsec()), (1_234_567_890, 42));
    assert_eq!(
        lxattr(&upper.join("a/t1"), "user.k").as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(t1.ino(), fs::metadata(upper.join("a/t2")).unwrap().ino());
    assert_eq!(
        fs::read_link(upper.join("l2")).unwrap(),
        Path::new("usr/bin/tool")
    );
    assert!(
        !upper.join("usr").exists(),
        "the lower's path must not appear in this diff"
    );
    // The base is untouched (not linked to).
    assert_eq!(fs::metadata(base.join("usr/bin/tool")).unwrap().nlink(), 1);

    for hidden_by_mid in ["gone/x", "opq/y"] {
        let fresh = tmp
            .path()
            .join(format!("u-{}", hidden_by_mid.replace('/', "-")));
        fs::create_dir(&fresh).unwrap();
        let mut u = Unpacker::new(&fresh, opts.clone()).unwrap();
        let err = u
            .apply(&hardlink("h", hidden_by_mid).0, &mut io::empty())
            .unwrap_err();
        assert!(err.to_string().contains(hidden_by_mid), "{err}");
    }
}

// ---- squash ----

#[test]
fn squash_whiteouts_and_opaque() {
    if !is_root() {
        return;
    }
    let fx = Fx::new();
    let t = fx.target();
    squash(
        &fx,
        &[
            &[
                file("a", "a"),
                dir("tree"),
                dir("tree/sub"),
                file("tree/sub/f", "f"),
                dir("o"),
                file("o/lower1", "1"),
                dir("o/sub"),
                file("o/sub/lower2", "2"),
                dir("o/lowerdir"),
                file("o/lowerdir/x", "x"),
                dir("o2"),
                file("o2/lower", "l"),
            ],
            &[
                whiteout("a"),
                whiteout("tree"),
                whiteout("never/existed"),
                // Written by this layer before the marker: survives.
                file("o/new", "n"),
                file("o/sub/new2", "n2"),
                opaque("o"),
                // After the marker: fine too.
                file("o/after", "a"),
                opaque("o2"),
                opaque("o3"),
            ],
        ],
    )
    .unwrap();
    assert!(!t.join("a").exists());
    assert!(!t.join("tree").exists());
    assert!(!t.join("never").exists());
    let mut names: Vec<_> = walkdir(&t.join("o"));
    names.sort();
    assert_eq!(names, ["after", "new", "sub", "sub/new2"]);
    assert_eq!(walkdir(&t.join("o2")), Vec::<String>::new());
    assert!(kind(t.join("o3")).is_dir());
}

fn walkdir(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn go(base: &Path, p: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            out.push(
                e.path()
                    .strip_prefix(base)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
            );
            if e.file_type().unwrap().is_dir() {
                go(base, &e.path(), out);
            }
        }
    }
    go(p, p, &mut out);
    out
}

#[test]
fn squash_type_changes() {
    if !is_root() {
        return;
    }
    let fx = Fx::new();
    let t = fx.target();
    squash(
        &fx,
        &[
            &[
                file("f2d", "file"),
                dir("d2f"),
                file("d2f/child", "c"),
                dir("d2s"),
                dir("d2s/deep"),
                file("d2s/deep/c", "c"),
                symlink("s2d", "f2d"),
                with(dir("dd"), |e| e.mode = 0o700),
                file("dd/kept", "k"),
            ],
            &[
                dir("f2d"),
                file("f2d/in", "in"),
                file("d2f", "now a file"),
                symlink("d2s", "/elsewhere"),
                dir("s2d"),
                with(dir("dd"), |e| {
                    e.mode = 0o751;
                    e.mtime = 77;
                }),
                file("dd/added", "a"),
            ],
        ],
    )
    .unwrap();
    assert!(kind(t.join("f2d")).is_dir());
    assert_eq!(read(t.join("f2d/in")), "in");
    assert_eq!(read(t.join("d2f")), "now a file");
    assert_eq!(
        fs::read_link(t.join("d2s")).unwrap(),
        Path::new("/elsewhere")
    );
    assert!(kind(t.join("s2d")).is_dir());
    assert_eq!(read(t.join("dd/kept")), "k");
    assert_eq!(read(t.join("dd/added")), "a");
    let dd = fs::metadata(t.join("dd")).unwrap();
    assert_eq!((dd.mode() & 0o7777, dd.mtime()), (0o751, 77));
}

#[test]
fn squash_hardlink_to_lower_layer() {
    let fx = Fx::new();
    let t = fx.target();
    squash(
        &fx,
        &[&[file("bin/a", "A")], &[hardlink("sbin/b", "bin/a")]],
    )
    .unwrap();
    assert_eq!(
        fs::metadata(t.join("bin/a")).unwrap().ino(),
        fs::metadata(t.join("sbin/b")).unwrap().ino()
    );
    let err = squash(&fx, &[&[hardlink("x", "nope/missing")]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope/missing") && err.contains("/x"), "{err}");
}

// ---- hostile layers ----

#[test]
fn hostile_symlink_to_root_then_file() {
    let fx = Fx::new();
    let t = fx.target();
    contained(&fx, || {
        squash(
            &fx,
            &[&[symlink("a", "/"), file("a/strata-escape-probe", "x")]],
        )
        .unwrap()
    });
    assert_eq!(read(t.join("strata-escape-probe")), "x");
}

#[test]
fn hostile_relative_escape_then_file() {
    let fx = Fx::new();
    let t = fx.target();
    contained(&fx, || {
        squash(
            &fx,
            &[&[
                symlink("a", "../../outside"),
                file("a/secret", "pwned"),
                file("a/sub/f", "pwned"),
            ]],
        )
        .unwrap()
    });
    // Clamped to the target: `../../outside` from the root is `/outside` inside it.
    assert_eq!(read(t.join("outside/secret")), "pwned");
}

#[test]
fn hostile_absolute_escape_planted_in_earlier_layer() {
    let fx = Fx::new();
    let t = fx.target();
    let out = fx.outside_str();
    contained(&fx, || {
        squash(
            &fx,
            &[
                &[
                    symlink("a", &out),
                    symlink("b", &format!("{out}/secret")),
                    dir("c"),
                ],
                &[
                    file("a/secret", "pwned"),
                    file("a/new", "pwned"),
                    dir("a/sub"),
                    with(file("a/sub/f", "pwned"), |e| e.mode = 0o777),
                    symlink("c/d", &format!("{out}/sub")),
                ],
                &[file("c/d/f", "pwned"), with(dir("c/d"), |e| e.mode = 0o777)],
            ],
        )
        .unwrap()
    });
    assert_eq!(read(t.join(&out[1..]).join("secret")), "pwned");
    assert_eq!(
        fs::read_link(t.join("b")).unwrap().to_str().unwrap(),
        format!("{out}/secret")
    );
    assert!(
        kind(t.join("c/d")).is_dir(),
        "a dir entry replaces the symlink, not its target"
    );
}

#[test]
fn hostile_hardlinks() {
    let fx = Fx::new();
    let out = fx.outside_str();
    let passwd_links = fs::metadata("/etc/passwd").map(|m| m.nlink()).ok();
    contained(&fx, || {
        // A normalised absolute target resolves inside the target: missing.
        assert!(squash(&fx, &[&[hardlink("h", "etc/passwd")]]).is_err());
        // Not normalised: refused.
        assert!(squash(&fx, &[&[hardlink("h", "/etc/passwd")]]).is_err());
        assert!(squash(&fx, &[&[hardlink("h", "../outside/secret")]]).is_err());
        // Through a symlinked parent: resolved inside the target.
        assert!(squash(&fx, &[&[symlink("s", &out), hardlink("h", "s/secret")]]).is_err());
        assert!(squash(&fx, &[&[symlink("r", "/"), hardlink("h2", "r/etc/passwd")]]).is_err());
        // The link's own parent through a symlink: created inside the target.
        squash(
            &fx,
            &[&[file("f", "F"), symlink("s2", &out), hardlink("s2/h", "f")]],
        )
        .unwrap();
        // Over a symlink to outside: the symlink is replaced.
        squash(
            &fx,
            &[&[
                file("g", "G"),
                symlink("l", &format!("{out}/secret")),
                hardlink("l", "g"),
            ]],
        )
        .unwrap();
        // Overlay mode, lowers given, and the lower holds a symlink to outside on the way.
        let lower = fx.tmp.path().join("target/lower");
        fs::create_dir(&lower).unwrap();
        std::os::unix::fs::symlink(&out, lower.join("evil")).unwrap();
        let up = fx.target().join("upper");
        fs::create_dir(&up).unwrap();
        let mut o = UnpackOptions::new(Mode::Overlay);
        o.lowers = vec![lower];
        let mut u = Unpacker::new(&up, o).unwrap();
        assert!(
            u.apply(&hardlink("x", "evil/secret").0, &mut io::empty())
                .is_err()
        );
    });
    let t = fx.target();
    assert_eq!(read(t.join(&out[1..]).join("h")), "F");
    assert_eq!(read(t.join("l")), "G");
    assert_eq!(
        fs::metadata("/etc/passwd").map(|m| m.nlink()).ok(),
        passwd_links
    );
}

#[test]
fn hostile_whiteout_through_symlink() {
    let fx = Fx::new();
    let out = fx.outside_str();
    contained(&fx, || {
        squash(
            &fx,
            &[
                &[
                    symlink("a", &out),
                    symlink("b", "../outside"),
                    symlink("c", &format!("{out}/sub")),
                ],
                &[
                    whiteout("a/secret"),
                    whiteout("b/secret"),
                    whiteout("c/f"),
                    whiteout("a/sub"),
                    whiteout("a/link"),
                ],
            ],
        )
        .unwrap()
    });
    // Overlay: whiteouts are created, never outside.
    let fx = Fx::new();
    contained(&fx, || {
        let r = overlay(
            &fx,
            &[
                symlink("a", &out),
                whiteout("a/secret"),
                whiteout("a/sub/f"),
            ],
        );
        if is_root() {
            r.unwrap();
            assert!(kind(fx.target().join(&out[1..]).join("secret")).is_char_device());
        }
    });
}

#[test]
fn hostile_opaque_on_symlinked_dir() {
    let fx = Fx::new();
    let t = fx.target();
    let out = fx.outside_str();
    contained(&fx, || {
        squash(
            &fx,
            &[
                &[
                    file("keep", "k"),
                    symlink("d", &out),
                    symlink("r", "/"),
                    symlink("rel", "../outside"),
                ],
                &[opaque("d"), opaque("r"), opaque("rel")],
            ],
        )
        .unwrap()
    });
    assert_eq!(
        read(t.join("keep")),
        "k",
        "opaque on `r -> /` must not clear the root"
    );
    for d in ["d", "r", "rel"] {
        assert!(kind(t.join(d)).is_dir());
        assert!(walkdir(&t.join(d)).is_empty());
    }
    // Same layer: the marker contradicts the symlink.
    let fx = Fx::new();
    contained(&fx, || {
        assert!(squash(&fx, &[&[], &[symlink("d", &out), opaque("d")]]).is_err());
        assert!(overlay(&fx, &[symlink("d2", &out), opaque("d2")]).is_err());
        assert!(overlay(&fx, &[symlink("d3", "/"), opaque("d3")]).is_err());
    });
    assert!(lxattr(&fx.target(), "trusted.overlay.opaque").is_none());
    assert!(lxattr(&fx.target(), "user.overlay.opaque").is_none());
}

#[test]
fn hostile_symlink_loops() {
    let fx = Fx::new();
    contained(&fx, || {
        assert!(squash(&fx, &[&[symlink("l", "l"), file("l/x", "x")]]).is_err());
        assert!(squash(&fx, &[&[symlink("p", "q"), symlink("q", "p"), dir("p/x")]]).is_err());
        // A dangling chain longer than the kernel's limit, created through.
        let mut chain: Vec<Item> = (0..50)
            .map(|i| symlink(&format!("c{i}"), &format!("c{}", i + 1)))
            .collect();
        chain.push(file("c0/x", "x"));
        assert!(squash(&fx, &[&chain]).is_err());
        // Nothing to delete under a loop.
        squash(
            &fx,
            &[&[symlink("l2", "l2")], &[whiteout("l2/x"), opaque("l2")]],
        )
        .unwrap();
    });
}

#[test]
fn hostile_dangling_symlink_parent_is_created_inside() {
    let fx = Fx::new();
    let t = fx.target();
    let out = fx.outside_str();
    contained(&fx, || {
        squash(
            &fx,
            &[&[
                symlink("var/run", "/run"),
                file("var/run/pid", "1"),
                symlink("x", &format!("{out}/newdir/deeper")),
                file("x/f", "2"),
                symlink("y", "../../../nope"),
                file("y/z/f", "3"),
            ]],
        )
        .unwrap()
    });
    assert_eq!(read(t.join("run/pid")), "1");
    assert_eq!(read(t.join(&out[1..]).join("newdir/deeper/f")), "2");
    assert_eq!(read(t.join("nope/z/f")), "3");
}

#[test]
fn hostile_deep_path() {
    let fx = Fx::new();
    let t = fx.target();
    let depth = 3000;
    let mut items = Vec::with_capacity(depth + 1);
    let mut p = String::from("d");
    for _ in 0..depth {
        items.push(with(dir(&p), |e| e.mtime = 99));
        p.push_str("/d");
    }
    items.push(file(&p, "bottom"));
    let start = std::time::Instant::now();
    contained(&fx, || {
        // Works; nothing recursive, so no stack overflow.
        squash(&fx, &[&items]).unwrap();
        assert_eq!(fs::metadata(t.join("d")).unwrap().mtime(), 99);
        // A symlink deep down that tries to climb: contained.
        let mut deep = String::from("d");
        for _ in 0..2500 {
            deep.push_str("/d");
        }
        let climb = squash(
            &fx,
            &[&[
                symlink(&format!("{deep}/up"), &"../".repeat(1000)),
                file(&format!("{deep}/up/outside/secret"), "x"),
            ]],
        );
        // Far past where the over-long path was split: refused rather than clamped.
        let err = climb.unwrap_err().to_string();
        assert!(err.contains("over-long"), "{err}");
        // Removal of the whole deep tree (iterative, no fd per level).
        squash(&fx, &[&[whiteout("d")]]).unwrap();
    });
    assert!(!t.join("d").exists());
    assert!(start.elapsed().as_secs() < 30);
}

#[test]
fn hostile_file_replaces_symlink_chain() {
    let fx = Fx::new();
    let t = fx.target();
    let out = fx.outside_str();
    contained(&fx, || {
        squash(
            &fx,
            &[
                &[
                    symlink("c1", "c2"),
                    symlink("c2", "c3"),
                    symlink("c3", &format!("{out}/secret")),
                    symlink("f", "../outside/secret"),
                    symlink("g", &format!("{out}/secret")),
                    symlink("h", &out),
                    symlink("p", &format!("{out}/secret")),
                    symlink("n", &format!("{out}/secret")),
                ],
                &[
                    file("c1", "replaced"),
                    file("f", "replaced"),
                    with(file("g", "replaced"), |e| e.mode = 0o777),
                    with(dir("h"), |e| e.mode = 0o777),
                    (ent("p", EntryKind::Fifo), vec![]),
                    symlink("n", "elsewhere"),
                ],
            ],
        )
        .unwrap();
        overlay(
            &fx,
            &[
                symlink("of", &format!("{out}/secret")),
                file("of", "replaced"),
            ],
        )
        .unwrap();
    });
    for f in ["c1", "f", "g", "of"] {
        assert!(kind(t.join(f)).is_file(), "{f}");
        assert_eq!(read(t.join(f)), "replaced");
    }
    assert!(kind(t.join("c2")).is_symlink());
    assert!(kind(t.join("h")).is_dir());
    assert!(kind(t.join("p")).is_fifo());
    assert_eq!(fs::read_link(t.join("n")).unwrap(), Path::new("elsewhere"));
    assert_eq!(
        fs::metadata(t.join("g")).unwrap().permissions().mode() & 0o777,
        0o777
    );
}

#[test]
fn hostile_metadata_never_follows_final_symlink() {
    let fx = Fx::new();
    let out = fx.outside_str();
    contained(&fx, || {
        // A symlink entry with metadata that would change its target if followed.
        let r = squash(
            &fx,
            &[&[with(symlink("s", &format!("{out}/secret")), |e| {
                e.uid = 4242;
                e.gid = 4242;
                e.mtime = 5;
                e.xattrs = vec![
                    (b"user.x".to_vec(), b"v".to_vec()),
                    (b"trusted.x".to_vec(), b"v".to_vec()),
                ];
            })]],
        );
        r.unwrap();
        // A whiteout in overlay mode over such a symlink.
        overlay(
            &fx,
            &[symlink("w", &format!("{out}/secret")), whiteout("w")],
        )
        .ok();
    });
    let md = fs::symlink_metadata(fx.target().join("s")).unwrap();
    assert_eq!(md.mtime(), 5);
    if is_root() {
        assert_eq!(md.uid(), 4242);
    }
}

#[test]
fn target_is_opened_once() {
    // Renaming the target away after `new` keeps writing into the same directory, not to its old path.
    let fx = Fx::new();
    let mut u = fx.unpacker(Mode::Squash);
    fs::rename(fx.target(), fx.tmp.path().join("moved")).unwrap();
    fs::create_dir(fx.target()).unwrap();
    apply_all(&mut u, &[file("f", "x")]).unwrap();
    u.finish().unwrap();
    assert!(fx.tmp.path().join("moved/f").exists());
    assert!(!fx.target().join("f").exists());
}

/// umoci writes a directory that became a file as the file, then whiteouts for the directory's old
/// children below it: in overlay form those whiteouts are redundant and dropped (as containers/storage
/// does), never a failed layer; a whiteout through a symlink to a file is dropped as well, inside the target.
#[test]
fn overlay_drops_whiteouts_below_a_new_file() {
    let fx = Fx::new();
    let outside = fx.outside_str();
    contained(&fx, || {
        overlay(
            &fx,
            &[
                dir("opt"),
                file("opt/becomes-file", "now a file"),
                whiteout("opt/becomes-file/.wh.x"),
                symlink("opt/to-secret", &format!("{outside}/secret")),
                whiteout("opt/to-secret/.wh.y"),
            ],
        )
        .unwrap()
    });
    let t = fx.target();
    assert_eq!(read(t.join("opt/becomes-file")), "now a file");
    assert!(kind(t.join("opt/to-secret")).is_symlink());
}

// ---- hardlink headers' metadata ----

#[test]
fn hardlink_header_metadata_overlay_applies_squash_keeps() {
    // A hardlink header whose owner, mode, mtime and xattrs differ from its target's: containers/storage
    // (pkg/archive, checked with skopeo copy into containers-storage) applies them to the shared inode,
    // mode and times not for a hardlinked symlink; umoci unpack keeps the target's.
    if !is_root() {
        return;
    }
    let big = "x".repeat(3 << 20); // so that the target is likely still with a writer thread
    let items = [
        with(file("d/a", &big), |e| e.mtime = 1_600_000_000),
        with(hardlink("d/b", "d/a"), |e| {
            e.mode = 0o4751;
            e.uid = 1000;
            e.gid = 1001;
            e.mtime = 1_700_000_000;
            e.mtime_nsec = 5;
            e.xattrs = vec![(b"user.hl".to_vec(), b"yes".to_vec())];
        }),
        symlink("d/s", "a"),
        with(hardlink("d/s2", "d/s"), |e| {
            e.mode = 0o600;
            e.uid = 7;
            e.gid = 8;
            e.mtime = 5;
        }),
    ];
    let stat = |t: &Path, p: &str| {
        let m = fs::symlink_metadata(t.join(p)).unwrap();
        (
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            m.mtime(),
            m.mtime_nsec(),
            m.nlink(),
        )
    };

    let fx = Fx::new();
    let t = fx.target();
    // With writer threads, whatever the machine's default: the target may still be with one.
    let with_writers = |fx: &Fx, mode: Mode| {
        let mut opts = UnpackOptions::new(mode);
        opts.writer_threads = 2;
        let mut u = Unpacker::new(&fx.target(), opts).unwrap();
        apply_all(&mut u, &items).unwrap();
        u.finish().unwrap();
    };
    with_writers(&fx, Mode::Overlay);
    for p in ["d/a", "d/b"] {
        assert_eq!(
            stat(&t, p),
            (0o4751, 1000, 1001, 1_700_000_000, 5, 2),
            "{p}"
        );
    }
    if xattrs_supported(&t) {
        assert_eq!(lxattr(&t.join("d/a"), "user.hl"), Some(b"yes".to_vec()));
    }
    assert_eq!(read(t.join("d/b")), big);
    let s = stat(&t, "d/s2");
    assert_eq!((s.1, s.2, s.3, s.5), (7, 8, T0, 2));

    let fx = Fx::new();
    let t = fx.target();
    with_writers(&fx, Mode::Squash);
    for p in ["d/a", "d/b"] {
        assert_eq!(stat(&t, p), (0o644, 0, 0, 1_600_000_000, 0, 2), "{p}");
    }
    assert_eq!(lxattr(&t.join("d/a"), "user.hl"), None);
    let s = stat(&t, "d/s2");
    assert_eq!((s.1, s.2, s.3, s.5), (0, 0, T0, 2));
}

/// Whether the file system under `dir` takes `user.*` xattrs on regular files.
fn xattrs_supported(dir: &Path) -> bool {
    let p = dir.join(".xattr-probe");
    fs::write(&p, "").unwrap();
    let ok = rustix::fs::setxattr(&p, "user.probe", b"1", rustix::fs::XattrFlags::empty()).is_ok();
    fs::remove_file(&p).unwrap();
    ok
}

// ---- writer threads ----

/// A layer exercising the orders that matter to the writer threads: files replaced, removed, retyped and
/// hardlinked right after they were handed to a writer, in the same layer and the next, big files written
/// inline, a read-only file, and directories whose times are set at the end.
fn busy_layers() -> Vec<Vec<Item>> {
    let mut l1 = vec![dir("a"), with(dir("a/ro"), |e| e.mode = 0o555)];
    for i in 0..300 {
        let body = format!("{i}:").repeat(1 + (i * 37) % 5000);
        l1.push(with(file(&format!("a/f{i}"), &body), |e| {
            e.mode = 0o600 + (i as u32 % 0o100);
            e.mtime = T0 + i as i64;
        }));
        if i % 7 == 0 {
            l1.push(hardlink(&format!("a/ro/h{i}"), &format!("a/f{i}")));
        }
        if i % 11 == 0 {
            // Replaced at once, with a hardlink to the first version in between.
            l1.push(hardlink(&format!("a/first{i}"), &format!("a/f{i}")));
            l1.push(file(&format!("a/f{i}"), "second version"));
        }
        if i % 13 == 0 {
            l1.push(whiteout(&format!("a/f{i}")));
        }
    }
    l1.push(with(file("big", &"B".repeat(9 << 20)), |e| e.mode = 0o400));
    l1.push(hardlink("big-link", "big"));
    l1.push(with(dir("a"), |e| e.mtime = 12345));
    let mut l2 = Vec::new();
    for i in (0..300).step_by(3) {
        l2.push(file(&format!("a/f{i}"), "layer two"));
        if i % 2 == 0 {
            l2.push(whiteout(&format!("a/f{i}")));
        }
    }
    l2.push(dir("a/f1"));
    l2.push(file("a/f1/under", "f1 is a directory now"));
    l2.push(opaque("a/ro"));
    l2.push(file("a/ro/new", "n"));
    l2.push(hardlink("a/ro/h-new", "a/f2"));
    vec![l1, l2]
}

/// Everything under `t`: each node's description (kind, mode, owner, size, mtime, nlink, xattrs, content
/// hash, link target), and the hardlink groups.
fn tree_of(t: &Path) -> (BTreeMap<PathBuf, String>, Vec<Vec<PathBuf>>) {
    let mut out = BTreeMap::new();
    walk(t, t, Path::new("/nonexistent"), &mut out);
    out.remove(Path::new(""));
    let mut groups: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for p in out.keys() {
        let m = fs::symlink_metadata(t.join(p)).unwrap();
        if !m.is_dir() && m.nlink() > 1 {
            groups.entry(m.ino()).or_default().push(p.clone());
        }
    }
    let mut groups: Vec<Vec<PathBuf>> = groups.into_values().collect();
    groups.sort();
    (out, groups)
}

#[test]
fn writer_threads_give_the_same_tree() {
    let layers = busy_layers();
    for mode in [Mode::Squash, Mode::Overlay] {
        let mut trees = Vec::new();
        for threads in [0, 1, 4] {
            let fx = Fx::new();
            let mut opts = UnpackOptions::new(mode);
            opts.writer_threads = threads;
            let mut u = Unpacker::new(&fx.target(), opts).unwrap();
            let r = match mode {
                Mode::Squash => {
                    for l in &layers {
                        u.begin_layer().unwrap();
                        apply_all(&mut u, l).unwrap();
                    }
                    u.finish().unwrap()
                }
                Mode::Overlay => {
                    apply_all(&mut u, &layers[0]).unwrap();
                    u.finish().unwrap()
                }
            };
            let tree = tree_of(&fx.target());
            fs::set_permissions(fx.target().join("a/ro"), fs::Permissions::from_mode(0o755)).ok();
            trees.push((threads, r, tree));
        }
        let (_, r0, t0) = &trees[0];
        assert!(t0.0.len() > 250, "{mode:?}: {} nodes", t0.0.len());
        assert!(!t0.1.is_empty(), "{mode:?}: no hardlink groups");
        for (threads, r, t) in &trees[1..] {
            assert_eq!(r, r0, "{mode:?}, {threads} writer threads: report");
            assert_eq!(t.0, t0.0, "{mode:?}, {threads} writer threads: nodes");
            assert_eq!(
                t.1, t0.1,
                "{mode:?}, {threads} writer threads: hardlink groups"
            );
        }
    }
}
