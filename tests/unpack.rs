//! `strata unpack` must give the same root filesystem as `umoci unpack`: paths, kinds, modes, owners, sizes,
//! content hashes, link targets, device numbers, xattrs and hardlink groups — for gzip, zstd and plain
//! variants of multi-layer images with whiteouts, opaque directories and type changes.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};

use strata_tests::rich::{recompress, rich_image, umoci_unpack};
use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{is_root, require_tool, strata, under_ci};

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
