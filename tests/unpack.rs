//! `strata unpack` must give the same root filesystem as `umoci unpack`: paths, kinds, modes, owners, sizes,
//! content hashes, link targets, device numbers, xattrs and hardlink groups — for gzip, zstd and plain
//! variants of multi-layer images with whiteouts, opaque directories and type changes.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};

use strata_tests::rich::{recompress, rich_image, root_entry_image, root_meta, umoci_unpack};
use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{is_root, require_tool, run, strata, under_ci};

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

fn umoci_rootfs(image: &str, work: &Path) -> PathBuf {
    umoci_unpack(image, &work.join("umoci-bundle"))
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
    let rich = rich_image(tmp.path(), 12 << 20);
    let gzip = rich.oci();
    let expected = listing(&umoci_rootfs(&rich.image, tmp.path()));
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

/// The biggest blob of the layout at `dir` (its last layer, here).
fn biggest_blob(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

#[test]
fn a_failed_unpack_removes_what_it_wrote_and_can_be_run_again() {
    use strata_fixtures::{Compression, ImageBuilder, LayerBuilder, noise};
    let tmp = tempfile::tempdir().unwrap();
    let mut base = LayerBuilder::new();
    for i in 0..50 {
        base.file(format!("etc/file-{i}"), format!("{i}\n"));
    }
    let mut top = LayerBuilder::new();
    top.file("big", noise(4 << 20, 3));
    let layout = tmp.path().join("layout");
    ImageBuilder::new()
        .layer(base, Compression::Gzip)
        .layer(top, Compression::None)
        .write_layout(&layout, "t")
        .unwrap();
    // The top layer's bytes changed behind its digest: the base layer is written, then the top fails.
    let blob = biggest_blob(&layout);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let image = format!("oci:{}:t", layout.display());

    // A directory it creates is removed again.
    let new_dir = tmp.path().join("new");
    let out = strata(["unpack", &image, &new_dir.display().to_string()]);
    strata_tests::assert_clean_error(&out, "a corrupt layer");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("removed it"),
        "{}",
        strata_tests::show_output(&out)
    );
    assert!(!new_dir.exists(), "the directory it created is gone");

    // An empty directory it was given is left empty, and a second run is not told "not empty".
    let given = tmp.path().join("given");
    std::fs::create_dir(&given).unwrap();
    let out = strata(["unpack", &image, &given.display().to_string()]);
    strata_tests::assert_clean_error(&out, "a corrupt layer, given dir");
    assert_eq!(std::fs::read_dir(&given).unwrap().count(), 0, "left empty");
    let again = strata(["unpack", &image, &given.display().to_string()]);
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        strata_tests::show_output(&again)
    );
}

#[test]
fn an_interrupted_unpack_removes_what_it_wrote() {
    use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
    let tmp = tempfile::tempdir().unwrap();
    let mut layer = LayerBuilder::new();
    for i in 0..40_000 {
        layer.file(format!("d{}/f{i}", i % 100), format!("{i}\n"));
    }
    let layout = tmp.path().join("layout");
    ImageBuilder::new()
        .layer(layer, Compression::Gzip)
        .write_layout(&layout, "t")
        .unwrap();
    let dest = tmp.path().join("rootfs");
    let child = std::process::Command::new(strata_tests::strata_bin())
        .args(["unpack", &format!("oci:{}:t", layout.display())])
        .arg(&dest)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt it once it has written something.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_none()) {
        assert!(std::time::Instant::now() < deadline, "nothing unpacked");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "interrupted, not finished: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!dest.exists(), "the partial tree is removed: {stderr}");
}

/// A layer's `./` entry gives the root directory its mode, owner and mtime (the topmost one wins), as
/// `umoci unpack` applies it to `rootfs/`: in `strata unpack`'s target and in `strata export`'s tar (its
/// `./` member, applied by GNU tar to the directory it extracts into).
#[test]
fn the_root_entry_applies_as_umoci_applies_it() {
    if !peers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = root_entry_image(tmp.path());
    let expected = root_meta(&umoci_rootfs(&image.image, tmp.path()));
    assert_eq!(
        expected,
        (0o750, 1233, 1234, 1_000_000_000),
        "umoci's rootfs"
    );
    let dest = tmp.path().join("strata");
    strata_unpack(&image.oci(), &dest);
    assert_eq!(root_meta(&dest), expected, "strata unpack");

    let tar = tmp.path().join("export.tar");
    let out = strata(["export", &image.oci(), "-o", &tar.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let extracted = tmp.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    run(std::process::Command::new("tar")
        .arg("-C")
        .arg(&extracted)
        .args(["-xpf", &tar.display().to_string(), "--numeric-owner"]));
    assert_eq!(root_meta(&extracted), expected, "strata export, extracted");
}

/// `strata unpack` and `strata export` count the same thing: the paths under `/` of the image's tree, what
/// `find DIR -mindepth 1` lists in the unpacked tree and the tar's members but `./`. Without `-o`, export
/// writes to a pipe, and refuses a terminal.
#[test]
fn unpack_and_export_count_the_paths_under_the_root() {
    if !peers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sample = format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    let dest = tmp.path().join("rootfs");
    let out = strata_tests::strata_ok(["unpack", "--json", &sample, dest.to_str().unwrap()]);
    let report = strata_tests::parse_json(&out, "unpack --json");
    let found = run(std::process::Command::new("find")
        .arg(&dest)
        .args(["-mindepth", "1"]))
    .stdout
    .iter()
    .filter(|&&b| b == b'\n')
    .count() as u64;
    assert_eq!(
        report["entries"], found,
        "unpack's entries are find's paths"
    );
    assert!(
        report["layer_entries"].as_u64().unwrap() > found,
        "{report}"
    );

    let tar = tmp.path().join("export.tar");
    let out = strata(["export", &sample, "-o", tar.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("exported {found} entries (paths under /)")),
        "{stderr}"
    );
    let members = run(std::process::Command::new("tar").arg("-tf").arg(&tar)).stdout;
    let members = members
        .split(|&b| b == b'\n')
        .filter(|m| !m.is_empty() && *m != b"./")
        .count() as u64;
    assert_eq!(members, found, "the tar's members");

    // Without -o: to a pipe, the same tar; a terminal is refused.
    let piped = strata_tests::strata_ok(["export", &sample]);
    assert_eq!(piped, std::fs::read(&tar).unwrap());
    if require_tool("script") {
        let cmd = format!(
            "'{}' export '{sample}'",
            strata_tests::strata_bin().display()
        );
        let out = strata_tests::run_unchecked(std::process::Command::new("script").args([
            "-q",
            "-e",
            "-c",
            &cmd,
            "/dev/null",
        ]));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            strata_tests::show_output(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("terminal"),
            "{}",
            strata_tests::show_output(&out)
        );
    }
}
