//! `strata mount --fuse`: the mounted tree must equal `umoci unpack`'s rootfs (paths, kinds, modes, owners,
//! sizes, content hashes, link targets, device numbers, xattrs and hardlink groups) for gzip, zstd and
//! uncompressed images and for the bundled sample; and the mount must hold up: 16 parallel readers, reads
//! racing `strata umount`, a serving process killed with SIGKILL, `--foreground` stopped by SIGTERM.
//!
//! CI runs as root with fuse3 installed: there a missing /dev/fuse or fusermount3 fails the tests; locally
//! they skip.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
use strata_tests::rich::{
    noise, recompress, rich_image, root_entry_image, root_meta, umoci_unpack,
};
use strata_tests::store::TestStore;
use strata_tests::tree::{Node, assert_same_tree, listing};
use strata_tests::{
    assert_clean_error, is_root, parse_json, require_tool, run, show_output, strata, strata_bin,
    strata_ok, under_ci,
};

/// Whether FUSE mounts can be made here: /dev/fuse and fusermount3 (required under CI=true).
fn fuse_ok() -> bool {
    if !require_tool("fusermount3") {
        return false;
    }
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    assert!(!under_ci(), "/dev/fuse is missing under CI=true");
    eprintln!("SKIP: /dev/fuse is missing");
    false
}

/// The umoci comparison needs root (owners, devices, trusted xattrs), as CI has.
fn umoci_ok() -> bool {
    if !(fuse_ok() && require_tool("umoci") && require_tool("skopeo")) {
        return false;
    }
    if is_root() {
        return true;
    }
    assert!(!under_ci(), "the umoci comparison needs root under CI=true");
    eprintln!("SKIP: the umoci comparison needs root");
    false
}

/// A mount made by `strata mount --fuse`, unmounted (quietly) when dropped.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    fn new(image: &str, dir: &Path) -> Mount {
        fs::create_dir_all(dir).unwrap();
        let out = strata_ok(["mount", "--fuse", "--json", image, dir.to_str().unwrap()]);
        let report = parse_json(&out, "strata mount --json");
        assert_eq!(report["mode"], "fuse", "{report}");
        assert_eq!(
            Path::new(report["dir"].as_str().unwrap()),
            fs::canonicalize(dir).unwrap()
        );
        Mount {
            dir: dir.to_path_buf(),
        }
    }

    fn umount(&self) {
        strata_ok(["umount", self.dir.to_str().unwrap()]);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if is_mounted(&self.dir) {
            let _ = strata(["umount", self.dir.to_str().unwrap()]);
        }
    }
}

/// Whether `dir` is in the mount table.
fn is_mounted(dir: &Path) -> bool {
    let dir = fs::canonicalize(dir.parent().unwrap())
        .unwrap()
        .join(dir.file_name().unwrap());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == dir.to_str())
}

/// `strata mounts --json`'s record of `dir`, if listed.
fn record(dir: &Path) -> Option<Value> {
    let dir = fs::canonicalize(dir.parent().unwrap())
        .unwrap()
        .join(dir.file_name().unwrap());
    let out = strata_ok(["mounts", "--json"]);
    let list = parse_json(&out, "strata mounts --json");
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["dir"].as_str() == dir.to_str())
        .cloned()
}

// ----- images -----

/// The files of [`generated_image`], path and content: 300 small files over 30 directories and two large
/// ones, spread over two layers (every third small file and `big/two` in the upper one).
fn generated_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = (0..300u64)
        .map(|i| {
            (
                format!("d{}/f{i}", i % 30),
                noise(((i * 7919) % 20_000) as usize, i),
            )
        })
        .collect();
    files.push(("big/one".into(), noise(9 << 20, 1)));
    files.push(("big/two".into(), noise(5 << 20, 2)));
    files
}

/// An image made in-process (no peers): [`generated_files`] and a hardlink `big/link` to `big/one` across
/// layers, in two gzip layers (the large files span several checkpoints).
fn generated_image(work: &Path) -> String {
    let mut lower = LayerBuilder::new();
    let mut upper = LayerBuilder::new();
    for (i, (path, data)) in generated_files().into_iter().enumerate() {
        let layer = if i % 3 == 0 || path == "big/two" {
            &mut upper
        } else {
            &mut lower
        };
        layer.file(path.as_str(), data);
    }
    upper.hardlink("big/link", "big/one");
    let layout = work.join("generated");
    ImageBuilder::new()
        .layer(lower, Compression::Gzip)
        .layer(upper, Compression::Gzip)
        .write_layout(&layout, "g")
        .unwrap();
    format!("oci:{}:g", layout.display())
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ----- equality with umoci -----

#[test]
fn the_mount_equals_umoci_for_gzip_zstd_and_plain() {
    if !umoci_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rich = rich_image(tmp.path(), 4 << 20);
    let gzip = rich.oci();
    let expected = listing(&umoci_unpack(&rich.image, &tmp.path().join("umoci")));
    assert!(expected.len() > 50, "too small: {}", expected.len());
    assert_eq!(expected["srv/data/a"].hardlink_group, "srv/data/a");
    // umoci 0.4 unpacks no zstd: the zstd and plain variants are compared with the gzip one's unpack.
    let variants = [
        ("gzip", gzip.clone()),
        ("zstd", recompress(&gzip, &tmp.path().join("zstd"), "zstd")),
        (
            "plain",
            recompress(&gzip, &tmp.path().join("plain"), "none"),
        ),
    ];
    for (name, image) in variants {
        let mount = Mount::new(&image, &tmp.path().join(format!("mnt-{name}")));
        assert_same_tree(
            &expected,
            &listing(&mount.dir),
            &format!("umoci vs strata mount ({name})"),
        );
        mount.umount();
        assert!(!is_mounted(&mount.dir));
    }
}

/// Store images mount through FUSE from their layers' `diff` directories (nothing read from blobs): one
/// podman stored from gzip layers (indexed by strata from tar-split on first use) and one strata pulled
/// from zstd layers, each equal to umoci's unpack; a mounted image cannot be removed until it is unmounted.
#[test]
fn store_images_mount_from_their_layer_dirs_equal_umoci() {
    if !(umoci_ok() && require_tool("podman")) {
        return;
    }
    let podman_store = TestStore::new();
    let strata_store = TestStore::new();
    // podman refuses upper case in the oci: path it names the image after: build in the store's scratch.
    let work = podman_store.scratch("work");
    let rich = rich_image(&work, 4 << 20);
    let gzip = rich.oci();
    let expected = listing(&umoci_unpack(&rich.image, &work.join("umoci")));
    podman_store.podman_ok(["pull", "-q", &gzip]);
    let zstd = recompress(&gzip, &work.join("zstd"), "zstd");
    strata_store.strata_ok(["pull", &zstd]);
    for (name, store) in [
        ("podman, gzip", &podman_store),
        ("strata, zstd", &strata_store),
    ] {
        let ids = store.strata_image_ids();
        assert_eq!(ids.len(), 1, "{name}: {ids:?}");
        let dir = store.scratch("mnt");
        let mount = Mount::new(&store.reference(&ids[0]), &dir);
        assert_same_tree(
            &expected,
            &listing(&mount.dir),
            &format!("umoci vs strata mount of a store image ({name})"),
        );
        let rec = record(&mount.dir).unwrap();
        assert_eq!(rec["image_id"].as_str(), Some(ids[0].as_str()), "{rec}");

        // Mounted: rmi refuses, naming the mount; unmounted: it goes.
        let mut rmi = store.strata_cmd();
        rmi.args(["rmi", &ids[0]]);
        let out = strata_tests::run_unchecked(&mut rmi);
        assert_clean_error(&out, "rmi of a FUSE-mounted image");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("mounted at") && err.contains("mnt"), "{err}");
        assert_eq!(store.strata_image_ids(), ids, "{name}: still there");
        mount.umount();
        store.strata_ok(["rmi", &ids[0]]);
        assert!(store.strata_image_ids().is_empty(), "{name}: removed");
    }
}

#[test]
fn the_mounted_sample_equals_umoci() {
    if !umoci_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sample = format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    let gzip = recompress(&sample, &tmp.path().join("gz"), "gzip");
    let expected = listing(&umoci_unpack(
        &gzip.replace("oci:", ""),
        &tmp.path().join("umoci"),
    ));
    let mount = Mount::new(&sample, &tmp.path().join("mnt"));
    assert_same_tree(
        &expected,
        &listing(&mount.dir),
        "umoci vs strata mount (sample)",
    );
    let rec = record(&mount.dir).expect("listed by strata mounts");
    assert_eq!(rec["image"], sample.as_str());
    assert_eq!(rec["mode"], "fuse");
    mount.umount();
    assert!(record(&mount.dir).is_none());
}

/// The mount's root shows the topmost layer's `./` entry: the mode, owner and mtime `umoci unpack` gives
/// `rootfs/`.
#[test]
fn the_mounted_root_has_the_layers_root_metadata() {
    if !umoci_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = root_entry_image(tmp.path());
    let expected = root_meta(&umoci_unpack(&image.image, &tmp.path().join("umoci")));
    assert_eq!(
        expected,
        (0o750, 1233, 1234, 1_000_000_000),
        "umoci's rootfs"
    );
    let mount = Mount::new(&image.oci(), &tmp.path().join("mnt"));
    assert_eq!(root_meta(&mount.dir), expected, "strata mount");
    mount.umount();
}

// ----- robustness -----

/// Every regular file under `root` with its sha256, from a listing.
fn files(tree: &BTreeMap<String, Node>) -> Vec<(String, String)> {
    tree.iter()
        .filter(|(_, n)| n.kind == "file")
        .map(|(p, n)| (p.clone(), n.sha256.clone()))
        .collect()
}

#[test]
fn sixteen_parallel_readers_read_the_same_bytes() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = generated_image(tmp.path());
    let mut wanted: Vec<(String, String)> = generated_files()
        .iter()
        .map(|(p, d)| (p.clone(), sha256(d)))
        .collect();
    wanted.push(("big/link".into(), sha256(&noise(9 << 20, 1))));
    let wanted = Arc::new(wanted);
    // A fresh mount (cold caches), 16 readers at once, each through every file in its own order.
    let mount = Mount::new(&image, &tmp.path().join("mnt"));
    let readers: Vec<_> = (0..16)
        .map(|t| {
            let wanted = Arc::clone(&wanted);
            let dir = mount.dir.clone();
            std::thread::spawn(move || {
                let n = wanted.len();
                for k in 0..n {
                    // Thread t walks the files from its own offset, odd threads backwards.
                    let i = (k * 7 + t * n / 16) % n;
                    let i = if t % 2 == 1 { n - 1 - i } else { i };
                    let (path, sum) = &wanted[i];
                    let bytes = fs::read(dir.join(path))
                        .unwrap_or_else(|e| panic!("reader {t}: {path}: {e}"));
                    assert_eq!(&sha256(&bytes), sum, "reader {t}: {path}");
                }
            })
        })
        .collect();
    for r in readers {
        r.join().expect("a reader failed");
    }
    // The hardlink across layers is one inode with two links.
    let one = fs::metadata(mount.dir.join("big/one")).unwrap();
    let link = fs::metadata(mount.dir.join("big/link")).unwrap();
    assert_eq!((one.ino(), one.nlink()), (link.ino(), 2));
    mount.umount();
}

#[test]
fn reads_racing_umount_end_with_errors_not_hangs() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = generated_image(tmp.path());
    let mount = Mount::new(&image, &tmp.path().join("mnt"));
    let pid = record(&mount.dir).expect("listed")["pid"].as_u64().unwrap();
    let paths: Arc<Vec<PathBuf>> = Arc::new(
        files(&listing(&mount.dir))
            .into_iter()
            .map(|(p, _)| mount.dir.join(p))
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..8 {
        let paths = Arc::clone(&paths);
        let stop = Arc::clone(&stop);
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut error = None;
            'outer: while !stop.load(Ordering::Relaxed) {
                for (k, p) in paths.iter().enumerate() {
                    if (k + t) % 3 != 0 {
                        continue;
                    }
                    match fs::read(p) {
                        Ok(_) => reads += 1,
                        Err(e) => {
                            error = Some(e.to_string());
                            break 'outer;
                        }
                    }
                }
            }
            let _ = done.send((t, reads, error));
        });
    }
    drop(done_tx);
    std::thread::sleep(Duration::from_millis(300));
    let out = strata(["umount", mount.dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show_output(&out));
    assert!(!is_mounted(&mount.dir), "still mounted after strata umount");
    // Every reader ends, with an error (the files are gone from under it), within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut errors = 0;
    for _ in 0..8 {
        let left = deadline.saturating_duration_since(Instant::now());
        let (t, reads, error) = done_rx
            .recv_timeout(left)
            .expect("a reader hung after the unmount");
        assert!(reads > 0, "reader {t} read nothing before the unmount");
        errors += usize::from(error.is_some());
    }
    stop.store(true, Ordering::Relaxed);
    assert_eq!(errors, 8, "every reader should end on an error");
    // The serving process is gone, and so is its record.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        assert!(
            Instant::now() < deadline,
            "the serving process did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(record(&mount.dir).is_none());
}

fn is_zombie(pid: u64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[test]
fn a_killed_server_leaves_no_stale_record_and_the_dir_is_reusable() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = generated_image(tmp.path());
    let dir = tmp.path().join("mnt");
    let mount = Mount::new(&image, &dir);
    let pid = record(&dir).expect("listed")["pid"].as_u64().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_zombie(pid) {
        assert!(Instant::now() < deadline, "SIGKILL did not kill {pid}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The listing drops the record and detaches the dead mount.
    assert!(record(&dir).is_none(), "stale record listed");
    assert!(!is_mounted(&dir), "the dead mount is still there");
    // The directory takes a new mount, which works.
    let again = Mount::new(&image, &dir);
    assert_eq!(fs::read(dir.join("big/two")).unwrap(), noise(5 << 20, 2));
    // Killed again: this time `strata umount` cleans up, without a listing first.
    let pid = record(&dir).expect("listed")["pid"].as_u64().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    while !is_zombie(pid) {
        std::thread::sleep(Duration::from_millis(10));
    }
    again.umount();
    assert!(!is_mounted(&dir));
    assert!(record(&dir).is_none());
    drop(mount);
}

#[test]
fn foreground_serves_until_sigterm() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = generated_image(tmp.path());
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let mut child = Command::new(strata_bin())
        .args([
            "mount",
            "--fuse",
            "--foreground",
            &image,
            dir.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(&dir) {
        assert!(Instant::now() < deadline, "--foreground never mounted");
        assert!(child.try_wait().unwrap().is_none(), "--foreground exited");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fs::read(dir.join("big/two")).unwrap(), noise(5 << 20, 2));
    assert_eq!(
        record(&dir).expect("listed")["pid"].as_u64(),
        Some(u64::from(child.id()))
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "SIGTERM did not end --foreground"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&dir));
    assert!(record(&dir).is_none());
}

#[test]
fn an_indexed_image_mounts_from_its_index() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = generated_image(tmp.path());
    let idx = tmp.path().join("idx");
    strata_ok(["index", "-o", idx.to_str().unwrap(), &image]);
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let out = strata_ok([
        "mount",
        "--fuse",
        "--json",
        "--index-dir",
        idx.to_str().unwrap(),
        &image,
        dir.to_str().unwrap(),
    ]);
    let mount = Mount { dir: dir.clone() };
    // 300 small files in 30 directories, `big` with two files and a hardlink.
    assert_eq!(parse_json(&out, "mount")["entries"], 334);
    for (path, data) in generated_files().iter().step_by(17) {
        assert_eq!(&fs::read(dir.join(path)).unwrap(), data, "{path}");
    }
    mount.umount();
    // A damaged index is refused, in one clean line.
    for entry in fs::read_dir(&idx).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        fs::write(&path, bytes).unwrap();
    }
    let out = strata([
        "mount",
        "--fuse",
        "--index-dir",
        idx.to_str().unwrap(),
        &image,
        dir.to_str().unwrap(),
    ]);
    assert_clean_error(&out, "mount with a damaged index");
    assert!(!is_mounted(&dir));
}

/// A user other than root mounts through the setuid fusermount3 (mount(2) is not permitted), reads the
/// tree, lists and unmounts it; nothing of root's is needed but /dev/fuse. Run as `nobody` from root.
#[test]
fn a_non_root_user_mounts_through_fusermount3() {
    if !(fuse_ok() && require_tool("setpriv")) {
        return;
    }
    if !is_root() {
        eprintln!("SKIP: switching to another user needs root");
        return;
    }
    let mode = fs::metadata("/dev/fuse").unwrap().mode() & 0o777;
    if mode & 0o006 != 0o006 {
        assert!(
            !under_ci(),
            "/dev/fuse is {mode:o}: tools/test.sh makes it 0666"
        );
        eprintln!("SKIP: /dev/fuse is {mode:o}, not usable by other users");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let mnt = tmp.path().join("mnt");
    for d in [&home, &mnt] {
        fs::create_dir(d).unwrap();
    }
    // Everything the user needs, readable by it: the binary, the image, its own runtime dir.
    let bin = tmp.path().join("strata");
    fs::copy(strata_bin(), &bin).unwrap();
    let image = tmp.path().join("sample.tar");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sample.tar"),
        &image,
    )
    .unwrap();
    let perms = permissions_image(tmp.path());
    run(Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(tmp.path()));
    let as_nobody_run = |program: &Path, args: &[&str]| {
        let mut c = strata_tests::as_user(65534);
        c.arg(program)
            .args(args)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &home)
            .env_remove("XDG_DATA_HOME");
        strata_tests::run_unchecked(&mut c)
    };
    let as_nobody = |args: &[&str]| as_nobody_run(&bin, args);
    let image_ref = format!("oci-archive:{}", image.display());
    let out = as_nobody(&["mount", &image_ref, mnt.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show_output(&out));
    assert!(is_mounted(&mnt));
    let table = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = table
        .lines()
        .find(|l| l.split(' ').nth(1) == mnt.to_str())
        .unwrap();
    assert!(line.contains("user_id=65534"), "{line}");
    // Only its user sees into a FUSE mount made without allow_other (root included).
    assert!(fs::read_dir(&mnt).is_err(), "root sees into nobody's mount");
    let os_release = mnt.join("etc/os-release");
    let out = as_nobody_run(Path::new("/bin/cat"), &[os_release.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Debian"),
        "{}",
        show_output(&out)
    );
    let out = as_nobody(&["mounts"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(mnt.to_str().unwrap()),
        "{}",
        show_output(&out)
    );
    let out = as_nobody(&["umount", mnt.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show_output(&out));
    assert!(!is_mounted(&mnt));

    // In its own mount too the kernel enforces the image's modes and owners (default_permissions).
    let out = as_nobody(&["mount", &perms, mnt.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show_output(&out));
    let table = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = table
        .lines()
        .find(|l| l.split(' ').nth(1) == mnt.to_str())
        .unwrap();
    assert!(
        line.contains("default_permissions") && !line.contains("allow_other"),
        "{line}"
    );
    let cat =
        |path: &str| as_nobody_run(Path::new("/bin/cat"), &[mnt.join(path).to_str().unwrap()]);
    let out = cat("etc/passwd");
    assert!(out.status.success(), "{}", show_output(&out));
    let out = cat("etc/shadow");
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "nobody reads root's 0600 etc/shadow in its own mount: {}",
        show_output(&out)
    );
    let out = as_nobody(&["umount", mnt.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show_output(&out));

    // --allow-other needs user_allow_other in /etc/fuse.conf, and the error says so.
    let allowed = fs::read_to_string("/etc/fuse.conf")
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim() == "user_allow_other");
    let out = as_nobody(&["mount", "--allow-other", &perms, mnt.to_str().unwrap()]);
    if allowed {
        assert!(out.status.success(), "{}", show_output(&out));
        assert!(
            fs::read_dir(&mnt).is_ok(),
            "root is let into an --allow-other mount"
        );
        let out = as_nobody(&["umount", mnt.to_str().unwrap()]);
        assert!(out.status.success(), "{}", show_output(&out));
    } else {
        assert_clean_error(&out, "--allow-other without user_allow_other");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("user_allow_other") && err.contains("/etc/fuse.conf"),
            "{err}"
        );
    }
    assert!(!is_mounted(&mnt));
}

#[test]
fn mount_errors_are_one_clean_line() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = generated_image(tmp.path());
    let missing = tmp.path().join("no-such-dir");
    let out = strata(["mount", "--fuse", &image, missing.to_str().unwrap()]);
    assert_clean_error(&out, "mount on a missing directory");
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let out = strata([
        "mount",
        "--fuse",
        &format!("oci:{}/nothing:here", tmp.path().display()),
        dir.to_str().unwrap(),
    ]);
    assert_clean_error(&out, "mount of a missing image");
    assert!(!is_mounted(&dir));
    let mount = Mount::new(&image, &dir);
    let out = strata(["mount", "--fuse", &image, dir.to_str().unwrap()]);
    assert_clean_error(&out, "mount on a mounted directory");
    mount.umount();
    // A name without a transport is a store image; one the store lacks gets a way out.
    let store = TestStore::new();
    let layout = image.trim_start_matches("oci:").trim_end_matches(":g");
    let mut cases = vec![(
        vec!["mount", "--fuse", layout, dir.to_str().unwrap()],
        format!("did you mean oci:{layout}?"),
    )];
    if is_root() {
        // As root, through the store's overlay mount.
        cases.push((
            vec!["mount", "debian:12", dir.to_str().unwrap()],
            "did you mean docker://debian:12?".to_owned(),
        ));
    }
    for (args, hint) in cases {
        let out = store.strata(&args);
        assert_clean_error(&out, "mount of an image the store lacks");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not in the store") && err.contains(&hint),
            "{err}"
        );
        assert!(!is_mounted(&dir));
    }
}

/// A small one-layer image made in-process: `etc/passwd` (0644), `etc/shadow` (0600) and `root/` (0700, with
/// a file) owned by root, and `home/user/note` (0600) owned by uid 1000.
fn permissions_image(work: &Path) -> String {
    let mut layer = LayerBuilder::new();
    layer.dir("etc");
    layer.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    layer
        .file("etc/shadow", "root:secret:19000::::::\n")
        .mode(0o600);
    layer.dir("root").mode(0o700);
    layer.file("root/.profile", "PS1=#\n");
    layer.dir("home");
    layer.dir("home/user").owner(1000, 1000);
    layer
        .file("home/user/note", "mine\n")
        .mode(0o600)
        .owner(1000, 1000);
    let layout = work.join("perms");
    ImageBuilder::new()
        .layer(layer, Compression::Gzip)
        .write_layout(&layout, "p")
        .unwrap();
    format!("oci:{}:p", layout.display())
}

/// How many mounts the mount table has exactly at `dir`.
fn mounts_at(dir: &Path) -> usize {
    let dir = fs::canonicalize(dir.parent().unwrap())
        .unwrap()
        .join(dir.file_name().unwrap());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == dir.to_str())
        .count()
}

/// Many `strata mount` started together at one directory: exactly one mounts, every other one fails with
/// "already mounted" (no FUSE mounts stacked at the directory), and the one mount is the one listed.
#[test]
fn concurrent_mounts_at_one_directory_one_wins() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = permissions_image(tmp.path());
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    for round in 0..3 {
        let start = Arc::new(std::sync::Barrier::new(8));
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let (start, image, dir) = (Arc::clone(&start), image.clone(), dir.clone());
                std::thread::spawn(move || {
                    start.wait();
                    strata(["mount", "--fuse", "--json", &image, dir.to_str().unwrap()])
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let (won, lost): (Vec<_>, Vec<_>) = runs.iter().partition(|o| o.status.success());
        let table = mounts_at(&dir);
        // Unmount everything first, so that a failure leaves nothing stacked behind.
        let _guard = Mount { dir: dir.clone() };
        for _ in 0..table {
            let _ = strata(["umount", dir.to_str().unwrap()]);
        }
        assert_eq!(
            won.len(),
            1,
            "round {round}: {} mounts succeeded ({table} in the mount table):\n{}",
            won.len(),
            runs.iter().map(show_output).collect::<Vec<_>>().join("\n")
        );
        assert_eq!(
            table,
            1,
            "round {round}: mounts stacked at {}",
            dir.display()
        );
        for out in lost {
            assert_clean_error(out, "a second mount at the directory");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("already mounted"), "round {round}: {err}");
        }
        assert!(!is_mounted(&dir), "round {round}: still mounted");
    }
    // The winner is listed: mount once more, quietly, and look.
    let mount = Mount::new(&image, &dir);
    let pid = record(&dir).expect("listed")["pid"].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    mount.umount();
}

/// A directory that holds files is refused (its files would be hidden under the mount), as fusermount did
/// before libfuse 3; `--nonempty` mounts over it, and the files are back after the unmount.
#[test]
fn a_non_empty_directory_needs_nonempty() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = permissions_image(tmp.path());
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("mine"), "keep me\n").unwrap();
    // Unmounts whatever a failed assertion leaves behind.
    let _guard = Mount { dir: dir.clone() };
    let out = strata(["mount", "--fuse", &image, dir.to_str().unwrap()]);
    assert_clean_error(&out, "mount over a non-empty directory");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not empty") && err.contains("--nonempty"),
        "{err}"
    );
    assert!(!is_mounted(&dir));
    let out = strata_ok([
        "mount",
        "--fuse",
        "--nonempty",
        &image,
        dir.to_str().unwrap(),
    ]);
    assert!(!out.is_empty());
    assert!(is_mounted(&dir));
    assert!(dir.join("etc/passwd").exists() && !dir.join("mine").exists());
    strata_ok(["umount", dir.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(dir.join("mine")).unwrap(), "keep me\n");
}

/// `--index-dir` naming no directory is an error naming it, not silently ignored.
#[test]
fn a_missing_index_dir_is_an_error() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = permissions_image(tmp.path());
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let missing = tmp.path().join("no-such-index-dir");
    let _guard = Mount { dir: dir.clone() };
    for foreground in [false, true] {
        let mut args = vec!["mount", "--fuse", "--index-dir", missing.to_str().unwrap()];
        if foreground {
            args.push("--foreground");
        }
        args.extend([image.as_str(), dir.to_str().unwrap()]);
        let out = strata(&args);
        assert_clean_error(&out, "mount with a missing --index-dir");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(missing.to_str().unwrap()), "{err}");
        assert!(!is_mounted(&dir));
    }
}

/// A root mount lets every user in (`allow_other`, as an overlay image mount does) and the kernel enforces
/// the image's modes and owners (`default_permissions`): `nobody` reads `etc/passwd`, not `etc/shadow` nor
/// `root/`; uid 1000 reads its own 0600 file; root reads everything.
#[test]
fn a_root_mount_enforces_the_images_permissions() {
    if !(fuse_ok() && require_tool("setpriv")) {
        return;
    }
    if !is_root() {
        assert!(!under_ci(), "the permission test needs root under CI=true");
        eprintln!("SKIP: the permission test needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = permissions_image(tmp.path());
    let dir = tmp.path().join("mnt");
    // Let other users reach the mount point (the tempdir is 0700).
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mount = Mount::new(&image, &dir);
    let table = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = table
        .lines()
        .find(|l| l.split(' ').nth(1) == dir.to_str())
        .unwrap();
    assert!(
        line.contains("default_permissions") && line.contains("allow_other"),
        "{line}"
    );
    let cat = |who: &str, path: &str| {
        let file = dir.join(path);
        let mut c = strata_tests::as_user(if who == "nobody" { 65534 } else { 1000 });
        c.arg("cat").arg(&file);
        strata_tests::run_unchecked(&mut c)
    };
    let out = cat("nobody", "etc/passwd");
    assert!(
        out.status.success(),
        "nobody reads etc/passwd: {}",
        show_output(&out)
    );
    for path in ["etc/shadow", "root/.profile", "home/user/note"] {
        let out = cat("nobody", path);
        assert!(!out.status.success(), "nobody reads {path}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{path}: {}",
            show_output(&out)
        );
    }
    let out = cat("user", "home/user/note");
    assert!(
        out.status.success(),
        "uid 1000 reads its file: {}",
        show_output(&out)
    );
    assert_eq!(
        fs::read_to_string(dir.join("etc/shadow")).unwrap(),
        "root:secret:19000::::::\n"
    );
    assert!(fs::read_dir(dir.join("root")).is_ok());
    mount.umount();
}
