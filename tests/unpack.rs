//! `strata unpack` must give the same root filesystem as `umoci unpack`: paths, kinds, modes, owners, sizes,
//! content hashes, link targets, device numbers, xattrs and hardlink groups — for gzip, zstd and plain
//! variants of multi-layer images with whiteouts, opaque directories and type changes.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
