//! The local index cache end to end: a registry image read once in full keeps its layers' indexes, and the
//! next command reads only ranges (counted by a proxy in front of a real `docker-registry`); a corrupted
//! entry is rebuilt, never trusted; processes filling the cache at once leave it sound.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs;
use std::path::Path;
use std::process::Command;

use strata_tests::registry::{Auth, FaultProxy, Registry};
use strata_tests::rich::rich_image;
use strata_tests::{parse_json, require_tool, show_output, strata, strata_bin, strata_ok};

const TLS_OFF: &str = "--tls-verify=false";

fn peers() -> bool {
    ["umoci", "skopeo", "docker-registry"]
        .into_iter()
        .all(require_tool)
}

/// `strata cat` of `path` in `image`, with the cache in `cache`.
fn cat(cache: &Path, image: &str, path: &str) -> Vec<u8> {
    strata_ok([
        "cat",
        TLS_OFF,
        "--cache-dir",
        cache.to_str().unwrap(),
        image,
        path,
    ])
}

/// The cache's entries: (digest, size, path).
fn entries(cache: &Path) -> Vec<(String, u64, String)> {
    let out = strata_ok(["cache", "--json", "--cache-dir", cache.to_str().unwrap()]);
    parse_json(&out, "strata cache --json")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["digest"].as_str().unwrap().to_owned(),
                e["size"].as_u64().unwrap(),
                e["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The layer blob GETs the proxy saw from request `from` on: (digest, ranged).
fn layer_gets(proxy: &FaultProxy, layers: &[String], from: usize) -> Vec<(String, bool)> {
    proxy
        .seen()
        .into_iter()
        .skip(from)
        .filter(|s| s.head.method == "GET")
        .filter_map(|s| {
            let digest = layers
                .iter()
                .find(|d| s.head.target.ends_with(&format!("/blobs/{d}")))?;
            Some((digest.clone(), s.head.header("range").is_some()))
        })
        .collect()
}

#[test]
fn a_cached_registry_layer_is_read_by_range_and_a_bad_entry_is_rebuilt() {
    if !peers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rich = rich_image(tmp.path(), 2 << 20);
    let reg = Registry::start(Auth::Open);
    reg.push(&rich.oci(), "rich/img:gzip", &[]);
    let proxy = FaultProxy::start(&reg.host, Vec::new());
    let image = proxy.image("rich/img:gzip");
    let cache = tmp.path().join("cache");
    let inspect = parse_json(&strata_ok(["inspect", TLS_OFF, &image]), "inspect");
    let layers: Vec<String> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert!(layers.len() >= 2, "{inspect}");

    // The first command reads every layer whole and keeps its index.
    let before = proxy.seen().len();
    assert_eq!(cat(&cache, &image, "/srv/late"), b"layer three\n");
    let first = layer_gets(&proxy, &layers, before);
    assert!(first.iter().any(|(_, ranged)| !ranged), "{first:?}");
    let kept = entries(&cache);
    assert_eq!(kept.len(), layers.len(), "{kept:?}");
    for (digest, _, _) in &kept {
        assert!(layers.contains(digest), "{digest}");
    }

    // The second fetches only ranges, of the layers it reads from.
    let before = proxy.seen().len();
    assert_eq!(cat(&cache, &image, "/srv/late"), b"layer three\n");
    let big = cat(&cache, &image, "/srv/big");
    assert_eq!(big.len(), 6 << 20);
    let second = layer_gets(&proxy, &layers, before);
    assert!(!second.is_empty(), "no layer bytes were read");
    assert!(
        second.iter().all(|(_, ranged)| *ranged),
        "a whole blob was fetched: {second:?}"
    );

    // A corrupted entry is not trusted: it is removed, its layer read whole again, and kept again.
    let (digest, size, path) = kept[0].clone();
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let before = proxy.seen().len();
    assert_eq!(cat(&cache, &image, "/srv/late"), b"layer three\n");
    let third = layer_gets(&proxy, &layers, before);
    assert!(
        third.iter().any(|(d, ranged)| *d == digest && !ranged),
        "the corrupted entry's layer was not read whole: {third:?}"
    );
    assert!(
        third
            .iter()
            .filter(|(d, _)| *d != digest)
            .all(|(_, ranged)| *ranged),
        "{third:?}"
    );
    let rebuilt = entries(&cache);
    assert!(
        rebuilt.iter().any(|(d, s, _)| *d == digest && *s == size),
        "{rebuilt:?}"
    );

    // Pruned: nothing left, and the next command reads whole blobs again.
    strata_ok([
        "cache",
        "prune",
        "--all",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(entries(&cache).is_empty());
}

#[test]
fn processes_filling_the_cache_at_once_leave_it_sound() {
    if !peers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rich = rich_image(tmp.path(), 2 << 20);
    let reg = Registry::start(Auth::Open);
    reg.push(&rich.oci(), "rich/img:gzip", &[]);
    let proxy = FaultProxy::start(&reg.host, Vec::new());
    let image = proxy.image("rich/img:gzip");
    let cache = tmp.path().join("cache");
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(strata_bin())
                .args(["cat", TLS_OFF, "--cache-dir"])
                .arg(&cache)
                .args([image.as_str(), "/srv/late"])
                .output_async()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", show_output(&out));
        assert_eq!(out.stdout, b"layer three\n");
    }
    let kept = entries(&cache);
    assert!(!kept.is_empty());
    assert_eq!(
        fs::read_dir(cache.join("index/tmp")).unwrap().count(),
        0,
        "temporary files were left"
    );
    // Every entry is sound: the next command reads only ranges.
    let inspect = parse_json(&strata_ok(["inspect", TLS_OFF, &image]), "inspect");
    let layers: Vec<String> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kept.len(), layers.len());
    let before = proxy.seen().len();
    let out = strata([
        "cat",
        TLS_OFF,
        "--cache-dir",
        cache.to_str().unwrap(),
        &image,
        "/srv/big",
    ]);
    assert!(out.status.success(), "{}", show_output(&out));
    assert!(
        layer_gets(&proxy, &layers, before)
            .iter()
            .all(|(_, ranged)| *ranged),
        "an entry written concurrently was not sound"
    );
}

/// Spawning a child with its output piped, to wait for later.
trait OutputAsync {
    fn output_async(&mut self) -> std::process::Child;
}

impl OutputAsync for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
