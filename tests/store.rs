//! The layer store against the real tools: podman and Debian's containers-storage share a store with strata
//! (`--root R --runroot RR`), each reading, mounting and removing what the other wrote; locks interoperate;
//! concurrent strata processes killed at random leave a consistent store.
//!
//! These tests need root (overlay mounts, podman's store) and the peers podman and containers-storage; a
//! missing peer or root skips them locally and fails them under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_fixtures::{Compression, ImageBuilder, LayerBuilder, LongName};
use strata_tests::store::TestStore;
use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{
    host_arch, is_root, parse_json, require_tool, sha256_digest, show_output, under_ci,
};

/// Whether the store tests can run here: root, podman and containers-storage.
fn ready() -> bool {
    if !is_root() {
        if under_ci() {
            panic!("the store tests need root under CI=true");
        }
        eprintln!("SKIP: the store tests need root (overlay mounts, podman's store)");
        return false;
    }
    require_tool("podman") && require_tool("containers-storage")
}

/// A layer every test image shares: in-layer hardlinks, symlinks, an owner other than root, an xattr, and
/// names long enough for PAX and GNU long-name headers.
fn base_layer() -> LayerBuilder {
    let mut l = LayerBuilder::new();
    l.dir("etc");
    l.file("etc/os-release", "ID=strata-test\n");
    l.file("etc/motd", "hello\n");
    l.file("etc/commented", "x\n")
        .xattr("user.comment", "hello");
    l.dir("bin");
    l.file("bin/tool", "#!/bin/sh\necho tool\n").mode(0o755);
    // A hardlink header carries its target's mode (containers/storage applies it to the shared inode).
    l.hardlink("bin/tool-link", "bin/tool").mode(0o755);
    l.symlink("bin/sh", "tool");
    l.dir("home");
    l.dir("home/app").owner(1000, 1000).mode(0o750);
    l.file("home/app/notes", "notes\n").owner(1000, 1000);
    l.dir("var");
    l.dir("var/lib");
    l.dir("var/lib/app");
    l.file("var/lib/app/state", "old\n");
    l.dir("usr");
    l.dir("usr/share");
    l.file(format!("usr/share/{}", "p".repeat(120)).as_str(), "pax\n")
        .long_name(LongName::Pax);
    l.file(format!("usr/share/{}", "g".repeat(120)).as_str(), "gnu\n")
        .long_name(LongName::Gnu);
    l
}

/// Test image `variant`: the shared base (gzip), an update layer (zstd: a whiteout, an opaque directory),
/// and a variant's own layer (plain tar) of `size` bytes. Images of different variants share the base.
fn test_image(variant: u32, size: usize) -> ImageBuilder {
    let mut update = LayerBuilder::new();
    update.dir("etc");
    update.whiteout("etc/motd");
    update.file("etc/variant", format!("{variant}\n"));
    update.dir("var");
    update.dir("var/lib");
    update.dir("var/lib/app");
    update.opaque("var/lib/app");
    update.file("var/lib/app/fresh", "new\n");
    let mut own = LayerBuilder::new();
    own.dir("opt");
    own.file(
        format!("opt/data-{variant}").as_str(),
        strata_fixtures::noise(size, u64::from(variant)),
    );
    ImageBuilder::new()
        .architecture(host_arch())
        .os("linux")
        .created("2024-01-02T03:04:05Z")
        .cmd(&["/bin/sh"])
        .layer(base_layer(), Compression::Gzip)
        .layer(update, Compression::Zstd)
        .layer(own, Compression::None)
}

/// Writes `image` as an OCI layout at `dir`, tagged `latest`; returns `oci:DIR:latest`.
fn write_layout(image: &ImageBuilder, dir: &Path) -> String {
    image.write_layout(dir, "latest").unwrap();
    format!("oci:{}:latest", dir.display())
}

/// The image ID (config digest hex) and diff IDs of a layout's `latest` image.
fn layout_ids(dir: &Path) -> (String, Vec<String>) {
    let index: Value = parse_json(&fs::read(dir.join("index.json")).unwrap(), "index.json");
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| fs::read(dir.join("blobs/sha256").join(&d[7..])).unwrap();
    let manifest: Value = parse_json(&blob(manifest_digest), "manifest");
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value = parse_json(&blob(config_digest), "config");
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    (config_digest[7..].to_owned(), diff_ids)
}

fn stdout_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn podman_lists_mounts_and_removes_an_image_strata_pulled() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let image = test_image(1, 200_000);
    let src = write_layout(&image, &layout);
    let (image_id, _) = layout_ids(&layout);

    let pulled = s.strata_ok(["pull", "-q", "--name", "strata-test/one", &src]);
    assert_eq!(stdout_line(&pulled), image_id);
    assert_eq!(s.podman_image_ids(), vec![image_id.clone()]);
    let names = s.podman_ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(stdout_line(&names), "localhost/strata-test/one:latest");

    // strata's mount and podman's show the same tree, sharing one counted layer mount.
    let mnt = s.scratch("mnt");
    s.strata_ok([
        "mount".as_ref(),
        "localhost/strata-test/one".as_ref(),
        mnt.as_os_str(),
    ]);
    let strata_tree = listing(&mnt);
    let podman_mnt = stdout_line(&s.podman_ok(["image", "mount", &image_id]));
    let podman_tree = listing(Path::new(&podman_mnt));
    assert_same_tree(
        &strata_tree,
        &podman_tree,
        "strata mount vs podman image mount",
    );
    let mounts: Value = parse_json(
        &fs::read(s.runroot.join("overlay-layers/mountpoints.json")).unwrap(),
        "mountpoints.json",
    );
    assert_eq!(mounts[0]["count"], 2, "{mounts}");
    assert!(!strata_tree.is_empty() && strata_tree.contains_key("etc/variant"));
    assert!(
        !strata_tree.contains_key("etc/motd"),
        "the whiteout hides etc/motd"
    );
    assert!(
        !strata_tree.contains_key("var/lib/app/state"),
        "the opaque dir hides state"
    );

    // The merged view equals the image unpacked as umoci would.
    let unpacked = s.scratch("unpacked");
    fs::remove_dir(&unpacked).unwrap();
    strata_tests::strata_ok(["unpack".as_ref(), src.as_ref(), unpacked.as_os_str()]);
    assert_same_tree(
        &strata_tree,
        &listing(&unpacked),
        "strata mount vs strata unpack",
    );

    // Mounted: strata refuses to remove it.
    let refused = s.strata(["rmi", &image_id]);
    assert!(
        !refused.status.success(),
        "rmi of a mounted image succeeded"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("mounted"),
        "{}",
        show_output(&refused)
    );

    s.podman_ok(["image", "unmount", &image_id]);
    s.strata_ok(["umount".as_ref(), mnt.as_os_str()]);
    let mounts = fs::read_to_string(s.runroot.join("overlay-layers/mountpoints.json")).unwrap();
    assert_eq!(mounts.trim(), "[]");

    // podman removes it cleanly: nothing left for strata to list or complain about.
    s.podman_ok(["rmi", &image_id]);
    assert!(s.strata_image_ids().is_empty());
    assert_eq!(
        s.strata_json(["layers", "--json"]),
        Value::Array(Vec::new())
    );
    s.strata_ok(["fsck"]);
    let left: Vec<String> = fs::read_dir(s.root.join("overlay"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "l" && n != ".has-mount-program")
        .collect();
    assert!(left.is_empty(), "left in overlay/: {left:?}");
}

#[test]
fn strata_lists_inspects_and_mounts_an_image_podman_pulled() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&test_image(2, 100_000), &layout);
    let (image_id, diff_ids) = layout_ids(&layout);

    let out = s.podman_ok(["pull", "-q", &src]);
    assert_eq!(stdout_line(&out), image_id);
    assert_eq!(s.strata_image_ids(), vec![image_id.clone()]);

    // The same IDs: strata pulling the same image finds every layer already there.
    let report = s.strata_json(["pull", "--json", &src]);
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), diff_ids.len());
    assert!(layers.iter().all(|l| l["reused"] == true), "{report}");
    assert_eq!(report["image"], image_id.as_str());

    // inspect, as skopeo sees the same store.
    let reference = s.reference(&image_id);
    let strata = parse_json(&s.strata_ok(["inspect", &reference]), "strata inspect");
    let skopeo = parse_json(
        &strata_tests::skopeo_ok(["inspect", &reference.replacen('[', "[overlay@", 1)]),
        "skopeo inspect",
    );
    for key in ["Digest", "Layers", "Architecture", "Os", "Created", "Env"] {
        assert_eq!(strata[key], skopeo[key], "{key}");
    }
    let raw = s.strata_ok(["inspect", "--raw", &reference]);
    assert_eq!(sha256_digest(&raw), strata["Digest"].as_str().unwrap());
    // A bare name or ID means the store's image for every command that opens one, as for `mount`.
    let by_reference = s.strata_ok(["ls", "-l", &reference, "/"]);
    assert_eq!(s.strata_ok(["ls", "-l", &image_id, "/"]), by_reference);
    let by_id = parse_json(&s.strata_ok(["inspect", &image_id]), "inspect by ID");
    assert_eq!(by_id["Digest"], strata["Digest"]);

    // mount and unpack read it as the layout it came from.
    let expected = {
        let d = s.scratch("expected");
        fs::remove_dir(&d).unwrap();
        strata_tests::strata_ok(["unpack".as_ref(), src.as_ref(), d.as_os_str()]);
        listing(&d)
    };
    let mnt = s.scratch("mnt");
    s.strata_ok(["mount".as_ref(), image_id.as_ref(), mnt.as_os_str()]);
    assert_same_tree(
        &listing(&mnt),
        &expected,
        "strata mount of podman's image vs unpack",
    );
    s.strata_ok(["umount".as_ref(), mnt.as_os_str()]);
    let from_store = s.scratch("from-store");
    fs::remove_dir(&from_store).unwrap();
    s.strata_ok([
        "unpack".as_ref(),
        reference.as_ref(),
        from_store.as_os_str(),
    ]);
    assert_same_tree(
        &listing(&from_store),
        &expected,
        "unpack containers-storage: vs unpack oci:",
    );

    // Its layers rebuild byte for byte (podman's tar-split, podman's diff directories).
    let fsck = s.strata_json(["fsck", "--content", "--json"]);
    assert_eq!(fsck["content_checked"], diff_ids.len() as u64, "{fsck}");
    assert_eq!(fsck["problems"], Value::Array(Vec::new()));

    s.strata_ok(["rmi", &image_id]);
    assert!(s.podman_image_ids().is_empty());
}

#[test]
fn containers_storage_reads_strata_store_and_rebuilds_each_layer() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    // The sample: gzip, zstd and plain layers, PAX and GNU long names, a non-UTF-8 name, devices, xattrs,
    // whiteouts, an opaque dir, and a hardlink into a lower layer (which containers/image cannot store).
    let layout = s.scratch("sample");
    strata_fixtures::sample()
        .write_layout(&layout, "latest")
        .unwrap();
    let (image_id, diff_ids) = layout_ids(&layout);
    s.strata_ok([
        "pull",
        "-q",
        "--name",
        "sample",
        &format!("oci:{}:latest", layout.display()),
    ]);

    let images = strata_tests::run(s.containers_storage_cmd().arg("images")).stdout;
    let images = String::from_utf8_lossy(&images);
    assert!(images.contains(&image_id), "{images}");
    assert!(images.contains("localhost/sample:latest"), "{images}");
    let layers = strata_tests::run(s.containers_storage_cmd().arg("layers")).stdout;
    let layers = String::from_utf8_lossy(&layers).into_owned();
    let store_layers = s.strata_json(["layers", "--json"]);
    let store_layers = store_layers.as_array().unwrap();
    assert_eq!(store_layers.len(), diff_ids.len());
    for (layer, diff_id) in store_layers.iter().zip(&diff_ids) {
        let id = layer["id"].as_str().unwrap();
        assert!(
            layers.contains(id),
            "containers-storage layers lacks {id}:\n{layers}"
        );
        assert_eq!(layer["diff-digest"], diff_id.as_str());
        let out = s.dir().join(format!("{id}.tar"));
        strata_tests::run(
            s.containers_storage_cmd()
                .args(["diff", "-u", "-f"])
                .arg(&out)
                .arg(id),
        );
        assert_eq!(
            &sha256_digest(&fs::read(&out).unwrap()),
            diff_id,
            "containers-storage diff of layer {id} is not the original tar"
        );
    }
    s.strata_ok(["fsck", "--content"]);
}

/// Spawns `cmd` with its output captured.
fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Whether `child` is still running after `wait`.
fn still_running_after(child: &mut Child, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Waits for `child` (at most a minute) and asserts success.
fn finish(child: Child, what: &str) -> Vec<u8> {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        show_output(&out)
    );
    out.stdout
}

#[test]
fn strata_waits_while_containers_storage_holds_the_store() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    s.strata_ok(["images"]);
    // containers-storage import-layer takes the layer store's locks, then reads the layer from stdin: while
    // stdin stays open and empty, it holds them.
    let mut holder = s
        .containers_storage_cmd()
        .arg("import-layer")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut reader = spawn(s.strata_cmd().arg("layers"));
    assert!(
        still_running_after(&mut reader, Duration::from_millis(1500)),
        "strata layers did not wait for containers-storage's lock"
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "hello", &b"hello\n"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    stdin.write_all(&tar).unwrap();
    drop(stdin);
    let id = stdout_line(&finish(holder, "containers-storage import-layer"));
    let listed = String::from_utf8_lossy(&finish(reader, "strata layers")).into_owned();
    assert!(
        listed.contains(&id[..12]),
        "strata did not see the layer it waited for:\n{listed}"
    );
}

#[test]
fn podman_waits_while_strata_holds_the_store_and_readers_do_not() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&test_image(3, 10_000), &layout);
    s.strata_ok(["pull", "-q", &src]);
    // `strata fsck --content` holds the store's shared locks while it reads each layer's tar-split: make one
    // a FIFO, and strata holds them until the FIFO is fed.
    let layers = s.strata_json(["layers", "--json"]);
    let id = layers[0]["id"].as_str().unwrap().to_owned();
    let ts = s.root.join(format!("overlay-layers/{id}.tar-split.gz"));
    let saved = fs::read(&ts).unwrap();
    fs::remove_file(&ts).unwrap();
    strata_tests::run(Command::new("mkfifo").arg(&ts));
    let holder = spawn(s.strata_cmd().args(["fsck", "--content"]));
    std::thread::sleep(Duration::from_millis(500));

    // Another reader goes through at once…
    let started = Instant::now();
    s.strata_ok(["images"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    // …but podman and containers-storage (which lock for writing even to list) wait.
    let mut podman = spawn(s.podman_cmd().arg("images"));
    let mut cs = spawn(s.containers_storage_cmd().arg("layers"));
    assert!(
        still_running_after(&mut podman, Duration::from_millis(1500)),
        "podman did not wait for strata's lock"
    );
    assert!(
        still_running_after(&mut cs, Duration::from_millis(200)),
        "containers-storage did not wait for strata's lock"
    );
    fs::OpenOptions::new()
        .write(true)
        .open(&ts)
        .unwrap()
        .write_all(&saved)
        .unwrap();
    finish(holder, "strata fsck --content");
    finish(podman, "podman images");
    finish(cs, "containers-storage layers");
    fs::remove_file(&ts).unwrap();
    fs::write(&ts, &saved).unwrap();
    s.strata_ok(["fsck", "--content"]);
}

/// A little xorshift generator (tests must not depend on a crate for this).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    t | 1
}

/// Asserts a store is consistent after interrupted operations: after the next open (which any strata
/// command does), fsck finds no damage to layers or images — at most stale mounts and leftovers, which
/// `--repair` fixes — and podman lists the same images as strata.
fn assert_consistent(s: &TestStore) {
    let first = s
        .strata_cmd()
        .args(["fsck", "--content", "--json"])
        .output()
        .unwrap();
    assert!(
        !first.stdout.is_empty(),
        "strata fsck --json printed nothing ({}): {}",
        first.status,
        String::from_utf8_lossy(&first.stderr)
    );
    let report = parse_json(&first.stdout, "strata fsck --json");
    for p in report["problems"].as_array().unwrap() {
        let kind = p["kind"].as_str().unwrap();
        assert!(
            kind == "mount" || kind == "leftover",
            "a damaged store after interrupted operations: {p}\n{report}"
        );
    }
    s.strata_ok(["fsck", "--repair"]);
    let again = s.strata_json(["fsck", "--content", "--json"]);
    assert_eq!(again["problems"], Value::Array(Vec::new()), "{again}");
    assert_eq!(s.podman_image_ids(), s.strata_image_ids());
    let layers = s.strata_json(["layers", "--json"]);
    assert!(
        layers
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l.get("flags").is_none()),
        "{layers}"
    );
    let staging: Vec<_> = fs::read_dir(s.root.join("overlay/staging"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(staging.is_empty(), "staging directories left: {staging:?}");
}

#[test]
fn a_pull_killed_at_any_point_leaves_no_half_layer_visible() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    // Big enough that a pull takes a while to unpack and commit.
    let src = write_layout(&test_image(4, 24 << 20), &layout);
    let (image_id, _) = layout_ids(&layout);
    // How long a whole pull takes here, to spread the kills over all of it (commit included).
    let whole = {
        let other = TestStore::new();
        let started = Instant::now();
        other.strata_ok(["pull", "-q", &src]);
        started.elapsed()
    };
    let step = (whole / 40).max(Duration::from_millis(2));
    let mut delay = Duration::from_millis(0);
    let mut kills = 0;
    loop {
        let mut child = spawn(s.strata_cmd().args(["pull", "-q", &src]));
        std::thread::sleep(delay);
        let done = child.try_wait().unwrap().is_some();
        if !done {
            child.kill().unwrap();
            kills += 1;
        }
        let _ = child.wait();
        // The next open removes what the killed pull left; every layer listed is whole.
        let layers = s.strata_json(["layers", "--json"]);
        for l in layers.as_array().unwrap() {
            assert!(
                l.get("flags").is_none(),
                "an incomplete layer is visible: {l}"
            );
        }
        // Leftovers (complete layers or big data a record never came to) are allowed; damage is not.
        let out = s.strata(["fsck", "--content", "--json"]);
        let fsck = parse_json(&out.stdout, "strata fsck --json");
        for p in fsck["problems"].as_array().unwrap() {
            assert_ne!(p["kind"], "layer", "after a kill at {delay:?}: {p}");
            assert_ne!(p["kind"], "image", "after a kill at {delay:?}: {p}");
        }
        if done {
            break;
        }
        delay += step;
        assert!(delay < Duration::from_secs(60), "the pull never finished");
    }
    eprintln!("the pull was killed {kills} times before it could finish ({delay:?})");
    assert!(kills > 0, "the pull finished before it could be killed");
    assert_eq!(s.strata_image_ids(), vec![image_id]);
    assert_consistent(&s);
}

/// A `strata mount` killed after mounting but before saving its records leaves the layer's overlay mount
/// (`overlay/<top>/merged`) and the bind at the user's directory with no record. Removing that layer must
/// unmount what is in its way (as containers/storage's `EnsureRemoveAll` does): otherwise the removal fails
/// half-way, leaves the layer flagged incomplete, and every later command — fsck included, in its open —
/// fails trying to finish it.
#[test]
fn a_mount_killed_before_recording_itself_does_not_wedge_the_store() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&test_image(30, 20_000), &layout);
    s.strata_ok(["pull", "-q", "--name", "wedge/img", &src]);
    let mnt = s.scratch("mnt");
    s.strata_ok(["mount".as_ref(), "wedge/img".as_ref(), mnt.as_os_str()]);
    // What a kill before `Mounts::save` leaves: the mounts, and no record of them.
    fs::write(s.runroot.join("overlay-layers/mountpoints.json"), "[]").unwrap();
    fs::write(s.runroot.join("strata/mounts.json"), "[]").unwrap();
    let report = s.strata(["fsck", "--json"]);
    let report = parse_json(&report.stdout, "strata fsck --json");
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.len() == 1
            && problems[0]["kind"] == "mount"
            && problems[0]["subject"]
                .as_str()
                .unwrap()
                .ends_with("/merged"),
        "{report}"
    );
    // Nothing records the mount, so the image may go; its top layer's mount goes with it.
    s.strata_ok(["rmi", "wedge/img"]);
    assert!(s.strata_image_ids().is_empty());
    assert_consistent(&s);
    assert!(
        s.strata_json(["layers", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn concurrent_pulls_removals_and_mounts_with_random_kills_leave_a_consistent_store() {
    if !ready() {
        return;
    }
    const WORKERS: usize = 8;
    const OPS: usize = 50;
    let s = TestStore::new();
    // Four images sharing their base layer (and so their first layer IDs).
    let sources: Vec<String> = (0..4)
        .map(|v| {
            let dir = s.scratch(&format!("layout-{v}"));
            write_layout(&test_image(10 + v, 50_000 * (v as usize + 1)), &dir)
        })
        .collect();
    let names: Vec<String> = (0..4).map(|v| format!("torture/img{v}")).collect();
    s.strata_ok(["images"]);
    let seed = seed();
    eprintln!("torture seed {seed}");
    let started = Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let s = &s;
                let sources = &sources;
                let names = &names;
                scope.spawn(move || {
                    let mut rng =
                        Rng(seed.wrapping_add((w as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
                    let mnt = s.scratch(&format!("mnt-{w}"));
                    let mut failures = Vec::new();
                    let mut stats = [0usize; 3]; // succeeded, failed cleanly, killed
                    for _ in 0..OPS {
                        let k = rng.below(4) as usize;
                        let mut cmd = s.strata_cmd();
                        match rng.below(10) {
                            0..=3 => cmd.args(["pull", "-q", "--name", &names[k], &sources[k]]),
                            4 | 5 => cmd.args(["rmi", &names[k]]),
                            6 => cmd.arg("mount").arg(&names[k]).arg(&mnt),
                            7 => cmd.arg("umount").arg(&mnt),
                            8 => cmd.args(["images"]),
                            _ => cmd.args(["layers"]),
                        };
                        let mut child = spawn(&mut cmd);
                        let killed = rng.below(6) == 0;
                        if killed {
                            std::thread::sleep(Duration::from_millis(rng.below(60)));
                            let _ = child.kill();
                        }
                        let out = child.wait_with_output().unwrap();
                        // Leave out the notes of what the open cleaned up ("incomplete layer …").
                        let err: String = String::from_utf8_lossy(&out.stderr)
                            .lines()
                            .filter(|l| {
                                !l.starts_with(
                                    "strata: removed what an interrupted operation left:",
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n");
                        let bad = out.status.code() == Some(101)
                            || [
                                "panicked",
                                "damaged",
                                "does not parse",
                                "internal error",
                                "incomplete",
                            ]
                            .iter()
                            .any(|m| err.contains(m));
                        if bad {
                            failures.push(format!("worker {w}: {}", show_output(&out)));
                        }
                        if std::env::var_os("STRATA_TORTURE_VERBOSE").is_some()
                            && !out.status.success()
                        {
                            eprintln!(
                                "worker {w}: {} -> {}",
                                strata_tests::describe(&cmd),
                                err.trim()
                            );
                        }
                        stats[if out.status.success() {
                            0
                        } else if out.status.code().is_some() {
                            1
                        } else {
                            2
                        }] += 1;
                    }
                    eprintln!(
                        "worker {w}: {} ok, {} refused, {} killed",
                        stats[0], stats[1], stats[2]
                    );
                    // Leave nothing mounted by this worker.
                    let _ = s.strata_cmd().arg("umount").arg(&mnt).output();
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    eprintln!(
        "{} operations in {:.1} s",
        WORKERS * OPS,
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_consistent(&s);
    // And the store still works: everything can be pulled and removed.
    for (src, name) in sources.iter().zip(&names) {
        s.strata_ok(["pull", "-q", "--name", name, src]);
    }
    assert_eq!(s.podman_image_ids().len(), 4);
    for name in &names {
        s.strata_ok(["rmi", "--force", name]);
    }
    s.strata_ok(["prune"]);
    assert!(
        s.strata_json(["layers", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(s.podman_image_ids().is_empty());
}

// ------------------------------------------------------------------------------ issue 19: the first hour

/// An image of gzip layers only (docker archives cannot hold zstd ones): the shared base and one of its own.
fn gzip_image(variant: u32) -> ImageBuilder {
    let mut own = LayerBuilder::new();
    own.dir("opt");
    own.file(
        format!("opt/data-{variant}").as_str(),
        strata_fixtures::noise(10_000, u64::from(variant)),
    );
    ImageBuilder::new()
        .architecture(host_arch())
        .os("linux")
        .created("2024-01-02T03:04:05Z")
        .layer(base_layer(), Compression::Gzip)
        .layer(own, Compression::Gzip)
}

/// Copies docker archive `from` to `to` with its one image's `RepoTags` replaced by `tags` (as `docker
/// save` writes them: short names, not normalised).
fn with_repo_tags(from: &Path, to: &Path, tags: &[&str]) {
    let mut input = tar::Archive::new(fs::File::open(from).unwrap());
    let mut out = tar::Builder::new(fs::File::create(to).unwrap());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if path == Path::new("manifest.json") {
            let mut m = parse_json(&data, "manifest.json");
            m[0]["RepoTags"] = serde_json::json!(tags);
            data = serde_json::to_vec(&m).unwrap();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        out.append_data(&mut header, &path, &data[..]).unwrap();
    }
    out.finish().unwrap();
}

/// The names of the only image of a store, as podman and as strata list them.
fn podman_names(s: &TestStore) -> Value {
    let v = parse_json(
        &s.podman_ok(["images", "--format", "json"]),
        "podman images",
    );
    // One entry per name, all of the one image.
    assert!(
        v.as_array().unwrap().iter().all(|i| i["Id"] == v[0]["Id"]),
        "{v}"
    );
    v[0]["Names"].clone()
}

fn strata_names(s: &TestStore) -> Value {
    let v = s.strata_json(["images", "--json"]);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    v[0]["names"].clone()
}

/// A `docker-archive:` pull is named from the archive's `RepoTags`, exactly as podman names it (short names
/// normalised under `localhost/`, every tag, podman's order), and pulling an image already in the store adds
/// the new names in front of its others, as podman does. Without names, `prune` would delete it.
#[test]
fn a_docker_archive_pull_is_named_as_podman_names_it() {
    if !(ready() && require_tool("skopeo")) {
        return;
    }
    let p = TestStore::new();
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&gzip_image(40), &layout);
    let (image_id, _) = layout_ids(&layout);
    // skopeo writes normalised names; docker save writes them as given.
    let skopeo_archive = s.dir().join("skopeo.tar");
    strata_tests::skopeo_ok([
        "copy",
        "-q",
        "--additional-tag",
        "example.com/x/y:1",
        &src,
        &format!("docker-archive:{}:eval/debian:v4", skopeo_archive.display()),
    ]);
    let docker_archive = s.dir().join("docker.tar");
    with_repo_tags(&skopeo_archive, &docker_archive, &["eval/debian:v4", "foo"]);

    for archive in [&skopeo_archive, &docker_archive] {
        let reference = format!("docker-archive:{}", archive.display());
        assert_eq!(
            stdout_line(&p.podman_ok(["pull", "-q", &reference])),
            image_id
        );
        assert_eq!(
            stdout_line(&s.strata_ok(["pull", "-q", &reference])),
            image_id
        );
        let names = strata_names(&s);
        assert_eq!(names, podman_names(&p), "after pulling {reference}");
    }
    assert_eq!(
        strata_names(&s),
        serde_json::json!([
            "localhost/foo:latest",
            "localhost/eval/debian:v4",
            "example.com/x/y:1",
            "docker.io/eval/debian:v4"
        ])
    );
    let listed = String::from_utf8_lossy(&s.strata_ok(["images"])).into_owned();
    assert!(!listed.contains("<none>"), "{listed}");
    s.strata_ok(["prune"]);
    assert_eq!(s.strata_image_ids(), vec![image_id]);
}

/// `strata rmi` refuses an image strata has mounted, naming the user's directory and the command that
/// unmounts it, also after podman dropped the layer mount's count (`podman image umount`), which used to let
/// the removal empty the mount under its user; and it names podman's own mount as podman's.
#[test]
fn rmi_refuses_an_image_strata_mounted_whatever_podman_counts() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&test_image(41, 20_000), &layout);
    let (image_id, _) = layout_ids(&layout);
    s.strata_ok(["pull", "-q", "--name", "guard/img", &src]);
    let mnt = s.scratch("mnt");
    s.strata_ok(["mount".as_ref(), "guard/img".as_ref(), mnt.as_os_str()]);
    let refused = |why: &str| {
        let out = s.strata(["rmi", "guard/img"]);
        strata_tests::assert_clean_error(&out, why);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused("rmi of a mounted image");
    let umount = format!("strata umount {}", mnt.display());
    assert!(err.contains(&umount), "{err}");
    assert!(!err.contains("/merged"), "an internal path: {err}");

    // podman gives back a count it never took: the layer mount is gone from mountpoints.json, strata's
    // mount of the user's directory is not.
    s.podman_ok(["image", "umount", &image_id]);
    let err = refused("rmi after podman image umount");
    assert!(err.contains(&umount), "{err}");
    assert!(
        listing(&mnt).contains_key("etc/variant"),
        "the mount was emptied"
    );
    s.strata_ok(["umount".as_ref(), mnt.as_os_str()]);

    // podman's own mount is podman's to undo.
    let podman_mnt = stdout_line(&s.podman_ok(["image", "mount", &image_id]));
    let err = refused("rmi of an image podman mounted");
    assert!(
        err.contains(&format!("podman image umount {}", &image_id[..12])),
        "{err}"
    );
    assert!(err.contains(&podman_mnt), "{err}");
    s.podman_ok(["image", "umount", &image_id]);
    s.strata_ok(["rmi", "guard/img"]);
    assert!(s.strata_image_ids().is_empty());
}

/// After a layer's files are changed, `fsck --content` says once what is wrong, counts right, and says
/// exactly what to run and what it removes; `--repair` alone finds nothing (it does not read contents) and
/// says so; `--content --repair` says what it removed.
#[test]
fn fsck_says_what_to_run_and_what_repairing_removes() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&test_image(42, 20_000), &layout);
    let (image_id, _) = layout_ids(&layout);
    s.strata_ok(["pull", "-q", "--name", "fsck/img", &src]);
    let layers = s.strata_json(["layers", "--json"]);
    let ids: Vec<String> = layers
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    let top = &ids[2];
    let file = s.root.join(format!("overlay/{top}/diff/opt/data-42"));
    let mut data = fs::read(&file).unwrap();
    data[0] ^= 0xff;
    fs::write(&file, data).unwrap();

    let out = s.strata(["fsck", "--content"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    assert!(
        !stdout.contains(&format!("layer {top}: layer {top}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("contents of 3 layers checked: 2 intact, 1 damaged; 1 problem\n"),
        "{stdout}"
    );
    let plan = format!(
        "`strata fsck --content --repair` would:\n  remove image {} (localhost/fsck/img:latest); pull it again \
         afterwards\n  remove layer {}\n",
        &image_id[..12],
        &top[..12]
    );
    assert!(stdout.contains(&plan), "{stdout}");
    assert!(
        stderr.contains("the store has 1 problem: `strata fsck --content --repair` fixes it"),
        "{stderr}"
    );

    let out = s.strata(["fsck", "--repair"]);
    assert!(out.status.success(), "{}", show_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains("layer contents not verified (--content does); no problems"),
        "{stdout}"
    );
    assert_eq!(s.strata_image_ids(), vec![image_id.clone()]);

    let out = s.strata(["fsck", "--content", "--repair"]);
    assert!(out.status.success(), "{}", show_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(&format!(
            "removed image {} (localhost/fsck/img:latest)\nremoved layer {}\n",
            &image_id[..12],
            &top[..12]
        )),
        "{stdout}"
    );
    assert!(stdout.contains("; 1 problem, repaired\n"), "{stdout}");
    assert!(s.strata_image_ids().is_empty());
    assert!(s.podman_image_ids().is_empty());
    s.strata_ok(["fsck", "--content"]);
}

/// What a killed pull leaves in `overlay/staging` is removed by the next store command of any kind — which
/// now says so on stderr, with the path and the size — and `prune` and `fsck` list it (text and JSON).
#[test]
fn leftovers_of_a_killed_pull_are_reported_where_they_are_removed() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&test_image(43, 48 << 20), &layout);
    s.strata_ok(["images"]);
    let staging = s.root.join("overlay/staging");
    // Kill a pull once it has unpacked a few MiB into a staging directory.
    let mut child = spawn(s.strata_cmd().args(["pull", "-q", &src]));
    let deadline = Instant::now() + Duration::from_secs(60);
    let left = loop {
        let dirs: Vec<_> = fs::read_dir(&staging)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        if let Some(big) = dirs.iter().find(|d| du(d) > 4 << 20) {
            break big.clone();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "the pull staged nothing");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    let _ = child.wait();
    // Keep a copy, to leave the same leftover before each command.
    let saved = s.dir().join("saved-staging");
    strata_tests::run(Command::new("cp").arg("-a").arg(&left).arg(&saved));
    let restore = || {
        strata_tests::run(Command::new("rm").arg("-rf").arg(&staging));
        fs::create_dir_all(&staging).unwrap();
        strata_tests::run(Command::new("cp").arg("-a").arg(&saved).arg(&left));
    };
    restore();
    let bytes = du(&left);
    let path = left.to_string_lossy().into_owned();

    // Any command: a line on stderr.
    let out = s.strata(["images"]);
    assert!(out.status.success(), "{}", show_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&format!("staging directory {path} (")) && stderr.contains("MiB)"),
        "{stderr}"
    );
    assert!(!left.exists());

    // prune: its report.
    restore();
    let report = s.strata_json(["prune", "--json"]);
    let leftovers = report["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 1, "{report}");
    assert_eq!(leftovers[0]["what"], "staging directory");
    assert_eq!(leftovers[0]["path"], path.as_str());
    let reported = leftovers[0]["bytes"].as_u64().unwrap();
    assert!(
        reported.abs_diff(bytes) < 1 << 20,
        "{reported} vs du's {bytes}"
    );
    restore();
    let text = String::from_utf8_lossy(&s.strata_ok(["prune"])).into_owned();
    assert!(
        text.contains(&format!("Removed staging directory {path} (")),
        "{text}"
    );

    // fsck: its report, not "0 problems" and silence.
    restore();
    let report = s.strata_json(["fsck", "--json"]);
    assert_eq!(report["cleaned"][0]["path"], path.as_str(), "{report}");
    restore();
    let text = String::from_utf8_lossy(&s.strata_ok(["fsck"])).into_owned();
    assert!(
        text.contains(&format!(
            "cleaned up before the check: staging directory {path} ("
        )),
        "{text}"
    );
    assert_consistent(&s);
}

/// The disk space a tree takes (`du -s --block-size=1`).
fn du(path: &Path) -> u64 {
    let out = Command::new("du")
        .args(["-s", "--block-size=1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `rmi` of several images, one unknown: as podman does, the ones found are removed, the rest reported, and
/// the command fails.
#[test]
fn rmi_removes_the_images_it_finds_and_reports_the_rest() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    for (v, name) in [(44, "multi/a"), (45, "multi/b"), (46, "multi/c")] {
        let layout = s.scratch(&format!("layout-{v}"));
        let src = write_layout(&test_image(v, 10_000), &layout);
        s.strata_ok(["pull", "-q", "--name", name, &src]);
    }
    // podman's behaviour, on the same store.
    let out = run_podman(&s, &["rmi", "localhost/multi/a:latest", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    assert_eq!(s.podman_image_ids().len(), 2);

    // An error for strata (exit status 2), after removing what it could.
    let out = s.strata(["rmi", "multi/b", "nosuch", "multi/c", "other"]);
    assert_eq!(out.status.code(), Some(2), "{}", show_output(&out));
    assert!(s.strata_image_ids().is_empty(), "{}", show_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("Deleted: ").count(), 2, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("strata: error: ") && lines[0].contains("\"nosuch\""),
        "{stderr}"
    );
    assert!(lines[1].contains("\"other\""), "{stderr}");
}

fn run_podman(s: &TestStore, args: &[&str]) -> std::process::Output {
    strata_tests::run_unchecked(s.podman_cmd().args(args))
}

/// Runs a copy of strata as `nobody` (uid 65534) with `env` (and no XDG variables unless given).
fn as_nobody(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin)
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_DATA_HOME")
        .env_remove("HOME")
        .env_remove("TMPDIR");
    for (k, v) in env {
        c.env(k, v);
    }
    strata_tests::run_unchecked(&mut c)
}

/// A copy of the strata binary that `nobody` can run, in a fresh directory that everyone can write (like
/// /tmp), owned by root.
fn nobody_setup() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    use std::os::unix::fs::PermissionsExt as _;
    if !is_root() {
        if under_ci() {
            panic!("the non-root tests need root (to switch users) under CI=true");
        }
        eprintln!("SKIP: switching to another user needs root");
        return None;
    }
    if !require_tool("setpriv") {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let bin = tmp.path().join("strata");
    fs::copy(strata_tests::strata_bin(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    Some((tmp, bin))
}

/// Without `XDG_RUNTIME_DIR`, a non-root user's run root is `$TMPDIR/strata-run-UID`, in a directory every
/// user can write: strata makes it 0700, and refuses it, as podman refuses its own, when another user owns
/// it or others may use it. `--help` says so.
#[test]
fn the_run_directory_fallback_must_be_the_users_own() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let Some((tmp, bin)) = nobody_setup() else {
        return;
    };
    let home = tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    strata_tests::run(Command::new("chown").arg("65534:65534").arg(&home));
    let env = [("HOME", home.as_path()), ("TMPDIR", tmp.path())];
    let run_dir = tmp.path().join("strata-run-65534");

    // Planted by root: refused, naming the directory and its owner.
    fs::create_dir(&run_dir).unwrap();
    fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let out = as_nobody(&bin, &["images"], &env);
    strata_tests::assert_clean_error(&out, "a run directory root owns");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&run_dir.display().to_string()) && err.contains("root (uid 0)"),
        "{err}"
    );

    // Made by strata: 0700, the user's.
    fs::remove_dir(&run_dir).unwrap();
    let out = as_nobody(&bin, &["images"], &env);
    assert!(out.status.success(), "{}", show_output(&out));
    let meta = fs::symlink_metadata(&run_dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (65534, 0o700));

    // Opened to others: refused.
    fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(&bin, &["images"], &env);
    strata_tests::assert_clean_error(&out, "a run directory others can use");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0755"),
        "{}",
        show_output(&out)
    );

    let help = String::from_utf8_lossy(&strata_tests::strata_ok(["--help"])).into_owned();
    assert!(help.contains("strata-run-UID"), "{help}");
}

/// A non-root user is told what to do instead: `--overlay` needs root (use `--fuse`); without a usable
/// home, the default store cannot be made (use `--root`).
#[test]
fn non_root_errors_say_what_to_do_instead() {
    let Some((tmp, bin)) = nobody_setup() else {
        return;
    };
    let home = tmp.path().join("home");
    let mnt = tmp.path().join("mnt");
    for d in [&home, &mnt] {
        fs::create_dir(d).unwrap();
        strata_tests::run(Command::new("chown").arg("65534:65534").arg(d));
    }
    let env = [
        ("HOME", home.as_path()),
        ("XDG_RUNTIME_DIR", home.as_path()),
    ];
    let out = as_nobody(
        &bin,
        &["mount", "--overlay", "some/img", mnt.to_str().unwrap()],
        &env,
    );
    strata_tests::assert_clean_error(&out, "mount --overlay as non-root");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("overlay mounts need root; use --fuse"),
        "{err}"
    );
    assert!(!err.contains("Operation not permitted"), "{err}");

    for home in [Path::new("/nonexistent"), Path::new("/")] {
        let env = [("HOME", home), ("XDG_RUNTIME_DIR", tmp.path())];
        let out = as_nobody(&bin, &["images"], &env);
        strata_tests::assert_clean_error(&out, "no usable home");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Permission denied") && err.contains("pass --root DIR"),
            "{err}"
        );
    }
    let root = tmp.path().join("home/store");
    let out = as_nobody(
        &bin,
        &["--root", root.to_str().unwrap(), "images"],
        &[
            ("HOME", Path::new("/nonexistent")),
            ("XDG_RUNTIME_DIR", home.as_path()),
        ],
    );
    assert!(out.status.success(), "{}", show_output(&out));
}

/// `containers-storage:NAME` without `[ROOT+RUNROOT]` or `--root` means containers/storage's own default
/// store, found through storage.conf as skopeo and podman find it (here `$CONTAINERS_STORAGE_CONF`, so the
/// test does not touch /var/lib/containers/storage); a bare name still means strata's store.
#[test]
fn containers_storage_names_look_where_skopeo_and_podman_look() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&test_image(5, 10_000), &layout);
    let (image_id, _) = layout_ids(&layout);
    s.podman_ok(["pull", "-q", &src]);
    let conf = s.dir().join("storage.conf");
    fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            s.root.display(),
            s.runroot.display()
        ),
    )
    .unwrap();
    let name = format!("containers-storage:{image_id}");
    let strata_out = Command::new(strata_tests::strata_bin())
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .args(["inspect", &name])
        .output()
        .unwrap();
    assert!(strata_out.status.success(), "{}", show_output(&strata_out));
    let skopeo_out = Command::new("skopeo")
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .args(["inspect", &name])
        .output()
        .unwrap();
    assert!(skopeo_out.status.success(), "{}", show_output(&skopeo_out));
    let strata = parse_json(&strata_out.stdout, "strata inspect");
    let skopeo = parse_json(&skopeo_out.stdout, "skopeo inspect");
    assert_eq!(strata["Digest"], skopeo["Digest"]);
    // A default store that was never made says so, not "overlay-layers: No such file or directory".
    let nowhere = s.dir().join("nowhere.conf");
    fs::write(
        &nowhere,
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/never\"\nrunroot = \"{0}/never-run\"\n",
            s.dir().display()
        ),
    )
    .unwrap();
    let out = Command::new(strata_tests::strata_bin())
        .env("CONTAINERS_STORAGE_CONF", &nowhere)
        .args(["ls", &name])
        .output()
        .unwrap();
    strata_tests::assert_clean_error(&out, "no default store");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no store at"),
        "{}",
        show_output(&out)
    );
    // A bare ID is strata's own store (an empty one here): not found there.
    let bare = Command::new(strata_tests::strata_bin())
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .args(["--root"])
        .arg(s.dir().join("empty-root"))
        .args(["inspect", &image_id])
        .output()
        .unwrap();
    assert_eq!(bare.status.code(), Some(2), "{}", show_output(&bare));
}

/// An overlay mount made with one `--root` is listed by `strata mounts` and undone by `strata umount DIR`
/// without it (strata records it beside its FUSE mounts), and the record goes with the mount.
#[test]
fn overlay_mounts_are_found_whatever_store_is_named() {
    if !ready() {
        return;
    }
    let s = TestStore::new();
    let layout = s.scratch("layout");
    let src = write_layout(&test_image(7, 10_000), &layout);
    s.strata_ok(["pull", "-q", "--name", "strata-test/seen", &src]);
    let mnt = s.scratch("mnt");
    s.strata_ok([
        "mount".as_ref(),
        "--overlay".as_ref(),
        "localhost/strata-test/seen".as_ref(),
        mnt.as_os_str(),
    ]);
    let elsewhere = s.dir().join("another-root");
    let listed = |root: &Path| -> Value {
        let out = Command::new(strata_tests::strata_bin())
            .arg("--root")
            .arg(root)
            .args(["mounts", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show_output(&out));
        parse_json(&out.stdout, "mounts --json")
    };
    let dir = fs::canonicalize(&mnt).unwrap().display().to_string();
    let found = listed(&elsewhere);
    let entry = found
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["dir"] == dir.as_str())
        .unwrap_or_else(|| panic!("{dir} not listed with another --root: {found}"));
    assert_eq!(entry["mode"], "overlay");
    assert_eq!(
        entry["store_root"],
        fs::canonicalize(&s.root).unwrap().display().to_string()
    );
    let out = Command::new(strata_tests::strata_bin())
        .arg("--root")
        .arg(&elsewhere)
        .arg("umount")
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show_output(&out));
    assert!(
        fs::read_dir(&mnt).unwrap().next().is_none(),
        "unmounted: the directory is empty again"
    );
    assert!(
        !listed(&elsewhere)
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["dir"] == dir.as_str()),
        "no longer listed"
    );
    // The store agrees: no mount left, so the image can go.
    s.strata_ok(["rmi", "localhost/strata-test/seen"]);
}
