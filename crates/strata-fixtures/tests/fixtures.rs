//! End-to-end checks of the named fixtures: the committed sample is
//! reproducible, and what the fixtures write is a well-formed OCI layout
//! whose layers hold the promised edge cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_fixtures::{Compression, LayerBuilder, LayoutWriter, sha256_digest};

fn committed_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.tar")
}

/// Every file of a directory tree, relative path -> bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let (algo, hex) = digest.split_once(':').unwrap();
    let bytes = std::fs::read(layout.join("blobs").join(algo).join(hex)).unwrap();
    assert_eq!(
        sha256_digest(&bytes),
        digest,
        "blob content matches its digest"
    );
    bytes
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn decompress(media_type: &str, blob: &[u8]) -> Vec<u8> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar" => blob.to_vec(),
        "application/vnd.oci.image.layer.v1.tar+gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        "application/vnd.oci.image.layer.v1.tar+zstd" => zstd::decode_all(blob).unwrap(),
        other => panic!("unexpected layer media type {other}"),
    }
}

#[derive(Debug)]
struct Listed {
    path: Vec<u8>,
    kind: tar::EntryType,
    link: Option<Vec<u8>>,
    mode: u32,
    pax: Vec<(String, Vec<u8>)>,
}

/// Entries as a reader sees them, plus the raw type flags of every header
/// (extension headers included).
fn list(tar_bytes: &[u8]) -> (Vec<Listed>, Vec<u8>) {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let pax = match entry.pax_extensions().unwrap() {
            Some(exts) => exts
                .map(|e| {
                    let e = e.unwrap();
                    (e.key().unwrap().to_owned(), e.value_bytes().to_vec())
                })
                .collect(),
            None => Vec::new(),
        };
        entries.push(Listed {
            path: entry.path_bytes().into_owned(),
            kind: entry.header().entry_type(),
            link: entry.link_name_bytes().map(|l| l.into_owned()),
            mode: entry.header().mode().unwrap(),
            pax,
        });
    }
    let mut raw = tar::Archive::new(tar_bytes);
    let flags = raw
        .entries()
        .unwrap()
        .raw(true)
        .map(|e| e.unwrap().header().entry_type().as_byte())
        .collect();
    (entries, flags)
}

fn find<'a>(entries: &'a [Listed], path: &[u8]) -> &'a Listed {
    entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry {:?}", String::from_utf8_lossy(path)))
}

#[test]
fn committed_sample_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sample.tar");
    strata_fixtures::sample()
        .write_oci_archive(&out, "latest")
        .unwrap();
    let fresh = std::fs::read(&out).unwrap();
    let committed = std::fs::read(committed_sample()).unwrap();
    assert!(
        fresh == committed,
        "samples/sample.tar differs from a fresh build ({} vs {} bytes); if the change is \
         intended, regenerate it: cargo run -p strata-fixtures -- sample samples/sample.tar \
         --format oci-archive",
        fresh.len(),
        committed.len()
    );
    assert!(committed.len() < 30 * 1024, "sample stays small");
}

#[test]
fn binary_writes_the_committed_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sample.tar");
    let status = Command::new(env!("CARGO_BIN_EXE_strata-fixtures"))
        .args(["sample"])
        .arg(&out)
        .args(["--format", "oci-archive"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(committed_sample()).unwrap()
    );

    let layout = dir.path().join("layout");
    let status = Command::new(env!("CARGO_BIN_EXE_strata-fixtures"))
        .arg("multiarch")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(layout.join("index.json").is_file());
    // refuses to overwrite a non-empty directory
    let status = Command::new(env!("CARGO_BIN_EXE_strata-fixtures"))
        .arg("multiarch")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(!status.success());
}

#[test]
fn two_builds_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    for name in strata_fixtures::FIXTURE_NAMES {
        let fixture = strata_fixtures::fixture(name).unwrap();
        let a = dir.path().join(format!("{name}-a"));
        let b = dir.path().join(format!("{name}-b"));
        fixture.write_layout(&a, "latest").unwrap();
        fixture.write_layout(&b, "latest").unwrap();
        assert_eq!(tree(&a), tree(&b), "{name}");
    }
}

#[test]
fn sample_layout_and_layers() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path();
    strata_fixtures::sample()
        .write_layout(layout, "latest")
        .unwrap();

    assert_eq!(
        std::fs::read(layout.join("oci-layout")).unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = json(&std::fs::read(layout.join("index.json")).unwrap());
    let desc = &index["manifests"][0];
    assert_eq!(
        desc["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let manifest_bytes = blob(layout, desc["digest"].as_str().unwrap());
    assert_eq!(desc["size"], manifest_bytes.len());
    let manifest = json(&manifest_bytes);
    let config_bytes = blob(layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(manifest["config"]["size"], config_bytes.len());
    let config = json(&config_bytes);
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["config"]["User"], "1000");
    for label in [
        "name",
        "vendor",
        "version",
        "release",
        "summary",
        "description",
    ] {
        assert!(config["config"]["Labels"][label].is_string(), "{label}");
    }
    let history = config["history"].as_array().unwrap();
    let non_empty = history
        .iter()
        .filter(|h| h.get("empty_layer").is_none())
        .count();

    let layers = manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(diff_ids.len(), 3);
    assert_eq!(non_empty, 3);
    let media_types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        media_types,
        [
            Compression::Gzip.media_type(),
            Compression::Zstd.media_type(),
            Compression::None.media_type()
        ]
    );

    let mut tars = Vec::new();
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        // the blob's sha256 is what the manifest says, and so is its size
        let blob_bytes = blob(layout, layer["digest"].as_str().unwrap());
        assert_eq!(layer["size"], blob_bytes.len());
        let tar_bytes = decompress(layer["mediaType"].as_str().unwrap(), &blob_bytes);
        assert_eq!(sha256_digest(&tar_bytes), diff_id.as_str().unwrap());
        tars.push(tar_bytes);
    }

    // layer 1: PAX long name, xattrs, setuid, hardlink, devices, fifo
    let (l1, flags1) = list(&tars[0]);
    let long = find(&l1, b"usr/share/doc/sample/a-file-name-long-enough-to-need-a-pax-path-record-because-it-exceeds-the-ustar-name-field.txt");
    assert!(long.path.len() > 100);
    assert!(long.pax.iter().any(|(k, _)| k == "path"));
    assert!(!flags1.contains(&b'L'));
    let ping = find(&l1, b"usr/bin/ping");
    assert_eq!(ping.pax[0].0, "SCHILY.xattr.security.capability");
    assert_eq!(ping.pax[0].1.len(), 20);
    let copyright = find(&l1, b"usr/share/doc/sample/copyright");
    assert_eq!(
        copyright.pax,
        vec![(
            "SCHILY.xattr.user.comment".to_owned(),
            b"sample xattr".to_vec()
        )]
    );
    assert_eq!(find(&l1, b"usr/bin/su").mode, 0o4755);
    assert_eq!(find(&l1, b"usr/bin/wall").mode, 0o2755);
    assert_eq!(find(&l1, b"tmp/").mode, 0o1777);
    let hard = find(&l1, b"usr/bin/app-hardlink");
    assert_eq!(hard.kind, tar::EntryType::Link);
    assert_eq!(hard.link.as_deref(), Some(&b"usr/bin/app"[..]));
    assert_eq!(find(&l1, b"bin").link.as_deref(), Some(&b"usr/bin"[..]));
    assert_eq!(find(&l1, b"dev/null").kind, tar::EntryType::Char);
    assert_eq!(find(&l1, b"dev/loop0").kind, tar::EntryType::Block);
    assert_eq!(find(&l1, b"run/initctl").kind, tar::EntryType::Fifo);
    assert_eq!(find(&l1, b"opt/config").kind, tar::EntryType::Regular);
    find(&l1, b"licenses/LICENSE");
    find(&l1, b"etc/os-release");
    find(&l1, b"etc/motd");

    // layer 2: whiteout, hardlink into layer 1, GNU long name, non-UTF-8 name
    let (l2, flags2) = list(&tars[1]);
    find(&l2, b"etc/.wh.motd");
    let cross = find(&l2, b"usr/share/doc/sample-extra/copyright");
    assert_eq!(cross.kind, tar::EntryType::Link);
    assert_eq!(
        cross.link.as_deref(),
        Some(&b"usr/share/doc/sample/copyright"[..])
    );
    assert!(
        !l2.iter()
            .any(|e| e.path == b"usr/share/doc/sample/copyright")
    );
    assert!(flags2.contains(&b'L'));
    assert!(!flags2.contains(&b'x'));
    let gnu = l2.iter().find(|e| e.path.len() > 100).unwrap();
    assert!(gnu.path.starts_with(b"usr/share/doc/sample-extra/"));
    let latin1 = find(&l2, b"usr/share/misc/caf\xe9.txt");
    assert!(std::str::from_utf8(&latin1.path).is_err());

    // layer 3: opaque dir, type change, absolute symlink
    let (l3, _) = list(&tars[2]);
    find(&l3, b"var/lib/app/.wh..wh..opq");
    assert_eq!(find(&l3, b"opt/config/").kind, tar::EntryType::Directory);
    assert_eq!(
        find(&l3, b"etc/localtime").link.as_deref(),
        Some(&b"/usr/share/zoneinfo/Etc/UTC"[..])
    );
}

#[test]
fn multiarch_is_a_tagged_nested_index() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path();
    strata_fixtures::multiarch()
        .write_layout(layout, "latest")
        .unwrap();
    let top = json(&std::fs::read(layout.join("index.json")).unwrap());
    let manifests = top["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(
        manifests[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let index = json(&blob(layout, manifests[0]["digest"].as_str().unwrap()));
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let manifest = json(&blob(layout, m["digest"].as_str().unwrap()));
            let config = json(&blob(
                layout,
                manifest["config"]["digest"].as_str().unwrap(),
            ));
            assert_eq!(config["architecture"], m["platform"]["architecture"]);
            let p = &m["platform"];
            match p.get("variant") {
                Some(v) => format!("{}/{}/{}", p["os"], p["architecture"], v).replace('"', ""),
                None => format!("{}/{}", p["os"], p["architecture"]).replace('"', ""),
            }
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
}

#[test]
fn layout_writer_builds_hostile_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = LayoutWriter::create(dir.path()).unwrap();
    let mut layer = LayerBuilder::new();
    layer.raw_header_bytes("../escape", b'0', b"x");
    layer.truncate_at(700);
    let built = layer.build(Compression::Gzip).unwrap();
    // a blob stored under a digest that is not its own
    let wrong = sha256_digest(b"something else");
    layout.put_blob_at(&wrong, &built.blob).unwrap();
    let manifest = layout
        .put_manifest(
            strata_fixtures::media_types::MANIFEST,
            b"{\"schemaVersion\":",
        )
        .unwrap();
    layout.add_tagged(manifest, "broken");
    let root = layout.finish().unwrap();
    let stored = std::fs::read(
        root.join("blobs/sha256")
            .join(wrong.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_ne!(sha256_digest(&stored), wrong);
    let index = json(&std::fs::read(root.join("index.json")).unwrap());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "broken"
    );
}
