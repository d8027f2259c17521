//! `docker://` as a source for more than inspect and pull: `strata unpack`, the scanning commands and the
//! FUSE mount read an image straight from a real registry (Debian's `docker-registry` on 127.0.0.1, images
//! pushed with `skopeo copy`) and see the same tree as `umoci unpack` of the image's layout — for gzip and
//! zstd layers. A mount whose layers were indexed beforehand reads the blobs only by HTTP range, so a
//! file is read without downloading its layer ("remote viewing").

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs;
use std::path::Path;

use strata_tests::registry::{Auth, FaultProxy, Registry};
use strata_tests::rich::{rich_image, umoci_unpack};
use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{is_root, require_tool, show_output, strata, strata_ok, under_ci};

const TLS_OFF: &str = "--tls-verify=false";

/// umoci, skopeo, the registry and FUSE; root for the tree comparison (owners, devices), as CI has.
fn peers() -> bool {
    if !["umoci", "skopeo", "docker-registry", "fusermount3"]
        .into_iter()
        .all(require_tool)
    {
        return false;
    }
    if is_root() {
        return true;
    }
    assert!(
        !under_ci(),
        "the registry tree comparison needs root under CI=true"
    );
    eprintln!("SKIP: the registry tree comparison needs root");
    false
}

/// Whether `dir` is in the mount table.
fn is_mounted(dir: &Path) -> bool {
    fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == dir.to_str())
}

#[test]
fn registry_images_unpack_scan_and_mount_like_their_layout() {
    if !peers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rich = rich_image(tmp.path(), 2 << 20);
    let expected = listing(&umoci_unpack(&rich.image, &tmp.path().join("umoci")));
    let reg = Registry::start(Auth::Open);
    reg.push(&rich.oci(), "rich/img:gzip", &[]);
    reg.push(
        &rich.oci(),
        "rich/img:zstd",
        &["--dest-compress", "--dest-compress-format", "zstd"],
    );
    let layout_export = tmp.path().join("layout-export.tar");
    strata_ok(["export", &rich.oci(), "-o", layout_export.to_str().unwrap()]);
    let layout_find = strata_ok(["find", &rich.oci(), "--perm", "-4000"]);

    for tag in ["gzip", "zstd"] {
        let image = reg.image(&format!("rich/img:{tag}"));
        let dest = tmp.path().join(format!("unpack-{tag}"));
        strata_ok(["unpack", TLS_OFF, &image, dest.to_str().unwrap()]);
        assert_same_tree(
            &expected,
            &listing(&dest),
            &format!("umoci (left) vs strata unpack {tag} from the registry (right)"),
        );

        let export = tmp.path().join(format!("export-{tag}.tar"));
        strata_ok(["export", TLS_OFF, &image, "-o", export.to_str().unwrap()]);
        assert!(
            fs::read(&export).unwrap() == fs::read(&layout_export).unwrap(),
            "strata export of {image} differs from the export of its layout"
        );
        let find = strata_ok(["find", TLS_OFF, &image, "--perm", "-4000"]);
        assert_eq!(
            String::from_utf8_lossy(&find),
            String::from_utf8_lossy(&layout_find),
            "{tag}: find"
        );

        let mnt = tmp.path().join(format!("mnt-{tag}"));
        fs::create_dir(&mnt).unwrap();
        strata_ok(["mount", "--fuse", TLS_OFF, &image, mnt.to_str().unwrap()]);
        let mounted = listing(&mnt);
        strata_ok(["umount", mnt.to_str().unwrap()]);
        assert_same_tree(
            &expected,
            &mounted,
            &format!("umoci (left) vs strata mount of {tag} from the registry (right)"),
        );
    }
}

/// With the layers indexed beforehand (`strata index -o`), mounting reads no blob, and reading a file reads
/// its layer's blob only by HTTP range, never whole.
#[test]
fn an_indexed_registry_mount_reads_blobs_by_range() {
    if !peers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rich = rich_image(tmp.path(), 2 << 20);
    let reg = Registry::start(Auth::Open);
    reg.push(&rich.oci(), "rich/img:gzip", &[]);
    let idx = tmp.path().join("idx");
    strata_ok(["index", &rich.oci(), "-o", idx.to_str().unwrap()]);
    let proxy = FaultProxy::start(&reg.host, Vec::new());
    let image = proxy.image("rich/img:gzip");
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let out = strata([
        "mount",
        "--fuse",
        TLS_OFF,
        "--index-dir",
        idx.to_str().unwrap(),
        &image,
        mnt.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show_output(&out));
    let blob_gets = || {
        proxy
            .seen()
            .into_iter()
            .filter(|s| s.head.method == "GET" && s.head.target.contains("/blobs/sha256:"))
            .collect::<Vec<_>>()
    };
    let config_only = blob_gets();
    assert!(
        config_only.len() <= 1,
        "mounting from indexes fetched blobs: {config_only:?}"
    );

    let big = fs::read(mnt.join("srv/big")).unwrap();
    assert_eq!(big.len(), 6 << 20);
    let late = fs::read_to_string(mnt.join("srv/late")).unwrap();
    assert_eq!(late, "layer three\n");
    strata_ok(["umount", mnt.to_str().unwrap()]);
    assert!(!is_mounted(&mnt));

    let layer_gets: Vec<_> = blob_gets().into_iter().skip(config_only.len()).collect();
    assert!(!layer_gets.is_empty(), "no blob was read through the proxy");
    for get in &layer_gets {
        assert!(
            get.head.header("range").is_some(),
            "a whole blob was fetched: {} {}",
            get.head.method,
            get.head.target
        );
    }
}
