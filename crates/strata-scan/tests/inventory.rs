//! `ScanImage::inventory` on images built by the fixture generator: OS packages attributed through a
//! database deleted by a whiteout and written again, apk across gzip and zstd layers, language packages
//! (a Go binary reached through a hardlink), and a base.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use strata_fixtures::elf::{GoBuildInfoFormat, go_elf, go_modinfo};
use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
use strata_oci::Platform;
use strata_scan::ScanImage;
use strata_scan::inventory::{Ecosystem, Inventory};

fn inventory(builder: &ImageBuilder, base: usize) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("img");
    builder.write_layout(&layout, "t").unwrap();
    let name = format!("oci:{}:t", layout.display());
    let image = ScanImage::open(&name, &Platform::new("linux", "amd64", None)).unwrap();
    image.inventory(base, true).unwrap()
}

fn apk(packages: &[(&str, &str)]) -> String {
    packages
        .iter()
        .map(|(n, v)| format!("P:{n}\nV:{v}\nA:x86_64\nL:MIT\no:{n}\n\n"))
        .collect()
}

fn layers(inv: &Inventory) -> BTreeMap<String, (String, usize)> {
    inv.packages
        .iter()
        .map(|p| (p.name.clone(), (p.version.clone(), p.layer)))
        .collect()
}

#[test]
fn a_database_deleted_and_written_again_restarts_attribution() {
    let mut l0 = LayerBuilder::new();
    l0.file("etc/alpine-release", "3.19.1\n");
    l0.file(
        "lib/apk/db/installed",
        apk(&[("musl", "1.2.4-r2"), ("zlib", "1.3-r0")]),
    );
    let mut l1 = LayerBuilder::new();
    l1.whiteout("lib/apk/db/installed");
    l1.file("unrelated", "x");
    let mut l2 = LayerBuilder::new();
    l2.file(
        "lib/apk/db/installed",
        apk(&[("musl", "1.2.4-r2"), ("curl", "8.5.0-r0")]),
    );
    let mut l3 = LayerBuilder::new();
    l3.file(
        "usr/bin/tool",
        go_elf(
            "go1.21.0",
            &go_modinfo("x/tool", ("x/tool", "v0.1.0"), &[]),
            GoBuildInfoFormat::Inline,
        ),
    )
    .mode(0o755);
    l3.hardlink("usr/bin/tool-link", "usr/bin/tool");
    l3.file(
        "usr/lib/python3.11/site-packages/attrs-23.2.0.dist-info/METADATA",
        "Name: attrs\nVersion: 23.2.0\nLicense-Expression: MIT\n",
    );
    let builder = ImageBuilder::new()
        .layer(l0, Compression::Gzip)
        .layer(l1, Compression::Zstd)
        .layer(l2, Compression::Gzip)
        .layer(l3, Compression::Zstd);
    let inv = inventory(&builder, 0);
    let got = layers(&inv);
    // musl was listed at layer 0, gone at 1 (the database deleted), listed again at 2: layer 2.
    assert_eq!(got["musl"], ("1.2.4-r2".to_owned(), 2));
    assert_eq!(got["curl"], ("8.5.0-r0".to_owned(), 2));
    assert!(!got.contains_key("zlib"));
    assert_eq!(got["attrs"], ("23.2.0".to_owned(), 3));
    assert_eq!(got["x/tool"], ("v0.1.0".to_owned(), 3));
    // The binary and its hardlink are two paths of the image, each a Go binary.
    let tools: Vec<_> = inv
        .packages
        .iter()
        .filter(|p| p.name == "x/tool")
        .map(|p| p.path.clone())
        .collect();
    assert_eq!(tools, ["/usr/bin/tool", "/usr/bin/tool-link"]);
    assert!(
        inv.packages
            .iter()
            .any(|p| p.ecosystem == Ecosystem::Go && p.name == "stdlib")
    );
    assert_eq!(inv.os.as_ref().unwrap().id, "alpine");
    assert_eq!(inv.layers.len(), 4);

    // Above the bottom layer: the upper layers deleted zlib (at layer 1) and musl came back at layer 2.
    let since = inventory(&builder, 1);
    let removed: Vec<_> = since
        .removed
        .iter()
        .map(|p| (p.name.as_str(), p.layer))
        .collect();
    assert_eq!(removed, [("zlib", 1)]);
    assert!(since.packages.iter().all(|p| p.layer >= 1));
    assert!(since.packages.iter().any(|p| p.name == "musl"));
}

#[test]
fn an_image_without_packages_has_an_empty_inventory() {
    let mut l = LayerBuilder::new();
    l.file("etc/hostname", "x\n");
    l.file("bin/sh", "#!/bin/true\n").mode(0o755);
    l.file(
        "bin/fake-elf",
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0garbage that is not an ELF file at all........",
    )
    .mode(0o755);
    let inv = inventory(&ImageBuilder::new().layer(l, Compression::Gzip), 0);
    assert!(inv.packages.is_empty());
    assert!(inv.removed.is_empty());
}
