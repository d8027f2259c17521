//! Lazy registry reads (issue 13) against real peers: eStargz and zstd:chunked images made by
//! `ctr-remote` and `skopeo`, pushed to a real `docker-registry` on 127.0.0.1 and read by strata through
//! their tables of contents. The FUSE-mounted tree equals `umoci unpack`'s of the same image in gzip, `cat`
//! of every regular file equals its bytes, a look at a 100+ MB image fetches a small part of it (counted by
//! the registry's own log), and faulty networks cost a retry or one read, never the mount.
//!
//! CI runs this as root with every peer installed; locally, missing peers skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs;
use std::path::{Path, PathBuf};
use strata_tests::lazy::{Format, LazyImages, OS_RELEASE, big_images, lazy_peers, varied_images};
use strata_tests::proxy::{Fault, FaultProxy, Rule};
use strata_tests::registry::{Auth, Registry, TokenServer, creds};
use strata_tests::rich::umoci_unpack;
use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{is_root, parse_json, require_tool, strata, strata_ok, under_ci};

const TLS_OFF: &str = "--tls-verify=false";

/// The lazy formats: each read through its table of contents.
const LAZY: [Format; 3] = [
    Format::Estargz,
    Format::ZstdChunkedCtr,
    Format::ZstdChunkedSkopeo,
];

/// Whether every peer is here (and we are root, for umoci and FUSE); fails under CI=true otherwise.
fn peers() -> bool {
    if !(lazy_peers() && require_tool("docker-registry") && require_tool("fusermount3")) {
        return false;
    }
    if !is_root() {
        assert!(!under_ci(), "the lazy-read tests run as root under CI=true");
        eprintln!("SKIP: the lazy-read tests need root");
        return false;
    }
    true
}

/// `images` pushed in every format to `registry` as `lazy/<format>:<tag>` (skopeo keeps the layers'
/// annotations and digests).
fn push_all(registry: &Registry, images: &LazyImages, formats: &[Format]) {
    for &format in formats {
        registry.push(
            &images.oci(format),
            &format!("lazy/{}:{}", format.name(), images.tag),
            &[],
        );
    }
}

fn repo(format: Format, images: &LazyImages) -> String {
    format!("lazy/{}:{}", format.name(), images.tag)
}

/// `strata index --json` of `image`: each layer's `read`.
fn read_ways(image: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["index", "--json", TLS_OFF];
    args.extend_from_slice(extra);
    args.push(image);
    let report = parse_json(&strata_ok(&args), "strata index --json");
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["read"].as_str().unwrap().to_owned())
        .collect()
}

/// A `strata mount --fuse` of a registry image, unmounted when dropped.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    fn new(image: &str, dir: &Path, extra: &[&str]) -> Mount {
        fs::create_dir_all(dir).unwrap();
        let mut args = vec!["mount", "--fuse", TLS_OFF];
        args.extend_from_slice(extra);
        args.extend([image, dir.to_str().unwrap()]);
        strata_ok(&args);
        Mount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = strata(["umount", self.dir.to_str().unwrap()]);
    }
}

#[test]
fn lazy_images_mount_and_cat_as_umoci_unpacks_them() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let gzip = format!("{}:{}", images.layout(Format::Gzip).display(), images.tag);
    let expected = listing(&umoci_unpack(&gzip, &tmp.path().join("umoci")));
    let files: Vec<(&String, &String)> = expected
        .iter()
        .filter(|(_, n)| n.kind == "file")
        .map(|(p, n)| (p, &n.sha256))
        .collect();
    assert!(files.len() > 300, "{} files", files.len());
    let registry = Registry::start(Auth::Open);
    push_all(&registry, images, &LAZY);
    for format in LAZY {
        let image = registry.image(&repo(format, images));
        let ways = read_ways(&image, &[]);
        assert!(
            ways.iter().all(|w| w == "toc"),
            "{}: every layer from its table of contents: {ways:?}",
            format.name()
        );
        let mount = Mount::new(
            &image,
            &tmp.path().join(format!("mnt-{}", format.name())),
            &[],
        );
        assert_same_tree(
            &expected,
            &listing(&mount.dir),
            &format!("umoci unpack vs strata mount of {}", format.name()),
        );
        drop(mount);
        // `cat` of every regular file, a few processes at a time.
        std::thread::scope(|scope| {
            for part in files.chunks(files.len().div_ceil(4)) {
                let image = &image;
                scope.spawn(move || {
                    for (path, sha) in part {
                        let out = strata_ok(["cat", TLS_OFF, image.as_str(), &format!("/{path}")]);
                        assert_eq!(
                            &strata_tests::sha256_digest(&out)["sha256:".len()..],
                            sha.as_str(),
                            "{}: strata cat /{path}",
                            format.name()
                        );
                    }
                });
            }
        });
    }
}

/// Bytes of blobs the registry served while `f` ran, by its JSON log.
fn served_during(registry: &Registry, f: impl FnOnce()) -> u64 {
    let before = registry.blob_bytes_written();
    f();
    registry.blob_bytes_written() - before
}

#[test]
fn a_look_at_a_big_lazy_image_fetches_a_small_part_of_it() {
    if !peers() {
        return;
    }
    let images = big_images();
    let registry = Registry::start(Auth::Open);
    push_all(&registry, images, &LAZY);
    for format in LAZY {
        let image = registry.image(&repo(format, images));
        let size = images.compressed_size(format);
        assert!(size >= 100_000_000, "{}: {size} bytes", format.name());
        let ls = served_during(&registry, || {
            let out = strata_ok(["ls", TLS_OFF, image.as_str(), "/etc"]);
            assert!(String::from_utf8_lossy(&out).contains("os-release"));
        });
        let cat = served_during(&registry, || {
            let out = strata_ok(["cat", TLS_OFF, image.as_str(), "/etc/os-release"]);
            assert_eq!(out, OS_RELEASE.as_bytes());
        });
        eprintln!(
            "{}: {size} bytes of layers; ls /etc fetched {ls} ({:.2} %), cat /etc/os-release {cat} ({:.2} %)",
            format.name(),
            ls as f64 * 100.0 / size as f64,
            cat as f64 * 100.0 / size as f64
        );
        for (what, bytes) in [("ls /etc", ls), ("cat /etc/os-release", cat)] {
            assert!(
                bytes * 50 <= size,
                "{}: {what} fetched {bytes} of {size} bytes (over 2 %)",
                format.name()
            );
        }
    }
}

/// The varied eStargz image in a fresh registry of `auth`, behind a fault proxy.
fn proxied(auth: Auth) -> (Registry, FaultProxy, String, tempfile::TempDir) {
    let images = varied_images();
    let registry = Registry::start(auth);
    push_all(&registry, images, &[Format::Estargz]);
    let proxy = FaultProxy::start(&registry.host, Vec::new());
    let image = proxy.image(&repo(Format::Estargz, images));
    (registry, proxy, image, tempfile::tempdir().unwrap())
}

/// `cat` through the mount: the bytes, or the error.
fn read(mount: &Mount, path: &str) -> std::io::Result<Vec<u8>> {
    fs::read(mount.dir.join(path))
}

#[test]
fn a_connection_dropped_mid_chunk_is_retried_then_fails_that_read_alone() {
    if !peers() {
        return;
    }
    let (_registry, proxy, image, tmp) = proxied(Auth::Open);
    let mount = Mount::new(&image, &tmp.path().join("mnt"), &[]);
    proxy.add_rule(Rule::new("/blobs/", Fault::CutBody { after: 1000 }, 1));
    let big = read(&mount, "usr/lib/medium.bin").unwrap();
    assert_eq!(big.len(), 5_243_003, "{}", proxy.describe());
    // Every request cut: that read fails with EIO, the mount stays up.
    proxy.set_rules(vec![Rule::new(
        "/blobs/",
        Fault::CutBody { after: 100 },
        usize::MAX,
    )]);
    let err = read(&mount, "etc/hostname").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "EIO: {err}");
    proxy.set_rules(Vec::new());
    assert_eq!(
        read(&mount, "etc/os-release").unwrap(),
        OS_RELEASE.as_bytes()
    );
    assert_eq!(read(&mount, "etc/hostname").unwrap().len(), 5);
}

#[test]
fn an_expired_token_is_renewed_under_a_live_mount() {
    if !peers() {
        return;
    }
    let (registry, proxy, image, tmp) = proxied(Auth::Token(TokenServer::start()));
    let creds = format!("--creds={}", creds());
    let mount = Mount::new(&image, &tmp.path().join("mnt"), &[&creds]);
    let Auth::Token(tokens) = &registry.auth else {
        unreachable!()
    };
    tokens.clear_requests();
    proxy.add_rule(Rule::new("/blobs/", Fault::Unauthorized, 1));
    assert_eq!(
        read(&mount, "etc/os-release").unwrap(),
        OS_RELEASE.as_bytes()
    );
    assert!(
        !tokens.requests().is_empty(),
        "a new token was asked for: {}",
        proxy.describe()
    );
}

#[test]
fn reads_resume_after_the_registry_restarts_under_a_live_mount() {
    if !peers() {
        return;
    }
    let (mut registry, proxy, image, tmp) = proxied(Auth::Open);
    let mount = Mount::new(&image, &tmp.path().join("mnt"), &[]);
    registry.restart();
    assert_eq!(
        read(&mount, "etc/os-release").unwrap(),
        OS_RELEASE.as_bytes()
    );
    assert!(proxy.blob_gets().len() > 1);
}

#[test]
fn a_registry_ignoring_ranges_still_gives_the_right_bytes() {
    if !peers() {
        return;
    }
    let (_registry, proxy, image, _tmp) = proxied(Auth::Open);
    proxy.set_rules(vec![Rule::new("/blobs/", Fault::StripRange, usize::MAX)]);
    let out = strata_ok(["cat", TLS_OFF, image.as_str(), "/etc/os-release"]);
    assert_eq!(out, OS_RELEASE.as_bytes());
    assert!(
        proxy.blob_gets().iter().all(|s| s.status == Some(200)),
        "{}",
        proxy.describe()
    );
}

/// `strata index --json` of `image` with a fresh, empty index cache: each layer's `read`.
fn read_ways_uncached(image: &str, tmp: &Path) -> Vec<String> {
    let cache = tempfile::tempdir_in(tmp).unwrap();
    let flag = format!("--cache-dir={}", cache.path().display());
    read_ways(image, &[&flag])
}

#[test]
fn a_published_index_makes_a_gzip_image_lazy_for_any_later_reader() {
    if !peers() {
        return;
    }
    let images = big_images();
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start(Auth::Open);
    push_all(&registry, images, &[Format::Gzip]);
    let image = registry.image(&repo(Format::Gzip, images));
    assert!(
        read_ways_uncached(&image, tmp.path())
            .iter()
            .all(|w| w == "read")
    );
    let pushed = parse_json(
        &strata_ok(["index", "--push", "--json", TLS_OFF, image.as_str()]),
        "strata index --push --json",
    );
    let manifest = pushed["published"][0]["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(pushed["published"][0]["via"], "tag", "{pushed}");
    let ways = read_ways_uncached(&image, tmp.path());
    assert!(ways.iter().all(|w| w == "published"), "{ways:?}");
    // A name pinned by digest is not read through an index anybody with push access could publish.
    let pinned = format!(
        "{}@{manifest}",
        image
            .rsplit_once(':')
            .map_or(image.as_str(), |(name, _)| name)
    );
    let ways = read_ways_uncached(&pinned, tmp.path());
    assert!(ways.iter().all(|w| w == "read"), "{ways:?}");

    let size = images.compressed_size(Format::Gzip);
    let cache = tempfile::tempdir_in(tmp.path()).unwrap();
    let flag = format!("--cache-dir={}", cache.path().display());
    let ls = served_during(&registry, || {
        strata_ok(["ls", TLS_OFF, &flag, image.as_str(), "/etc"]);
    });
    let cat = served_during(&registry, || {
        let out = strata_ok(["cat", TLS_OFF, &flag, image.as_str(), "/etc/os-release"]);
        assert_eq!(out, OS_RELEASE.as_bytes());
    });
    eprintln!(
        "published index: {size} bytes of layers; ls /etc fetched {ls} ({:.2} %), cat {cat} ({:.2} %)",
        ls as f64 * 100.0 / size as f64,
        cat as f64 * 100.0 / size as f64
    );
    for (what, bytes) in [("ls /etc", ls), ("cat /etc/os-release", cat)] {
        assert!(
            bytes * 20 <= size,
            "{what} fetched {bytes} of {size} bytes (over 5 %)"
        );
    }
}

/// An index rebuilt from `index` with `edit` applied to its entries and span digests.
fn rewritten(
    index: &strata_index::LayerIndex,
    edit: impl Fn(&mut Vec<strata_index::Entry>, &mut Vec<strata_index::SpanDigest>),
) -> Vec<u8> {
    let mut entries: Vec<strata_index::Entry> =
        index.iter().map(|e| e.unwrap().to_entry()).collect();
    let mut spans: Vec<strata_index::SpanDigest> = index.spans().collect();
    edit(&mut entries, &mut spans);
    let mut writer = strata_index::IndexWriter::new();
    if let Some(root) = index.root().unwrap() {
        writer.push(root.to_entry());
    }
    for e in entries {
        writer.push(e);
    }
    for c in index.checkpoints() {
        writer.add_checkpoint(c.to_checkpoint());
    }
    writer.set_spans(spans);
    writer.set_layer(index.layer().clone());
    writer.try_to_bytes().unwrap()
}

#[test]
fn a_lying_published_index_gets_errors_never_wrong_bytes() {
    use std::time::{Duration, UNIX_EPOCH};
    use strata_oci::Digest;

    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start(Auth::Open);
    push_all(&registry, images, &[Format::Gzip]);
    let name = registry.image(&repo(Format::Gzip, images));
    let mut options = strata_source::SourceOptions::default();
    options.tls_verify = Some(false);
    let source = strata_source::open_with(&name, &options).unwrap();
    let image = strata_source::resolve(source.as_ref(), &strata_oci::Platform::host()).unwrap();
    let specs = strata_layer::layer_specs(&image).unwrap();
    let honest: Vec<(Digest, Vec<u8>)> = strata_layer::index_layers(source.as_ref(), &specs)
        .unwrap()
        .into_iter()
        .map(|l| (l.spec.digest.clone(), l.index.try_to_bytes().unwrap()))
        .collect();
    let at = honest
        .iter()
        .position(|(_, bytes)| {
            let index = strata_index::LayerIndex::from_bytes(bytes.clone()).unwrap();
            index.lookup(b"etc/os-release").unwrap().is_some()
        })
        .unwrap();
    let index = strata_index::LayerIndex::from_bytes(honest[at].1.clone()).unwrap();
    // Another regular file of the same layer, whose bytes the lie serves as os-release's.
    let other = index
        .iter()
        .map(|e| e.unwrap())
        .find(|e| {
            e.kind() == strata_index::EntryKind::File
                && e.size() > 0
                && e.path() != b"etc/os-release"
        })
        .unwrap()
        .offset();
    let lies: [(&str, Vec<u8>); 2] = [
        (
            "span",
            rewritten(&index, |_, spans| {
                for s in spans.iter_mut() {
                    s.sha256[0] ^= 1;
                }
            }),
        ),
        (
            "etc/os-release",
            rewritten(&index, |entries, _| {
                for e in entries.iter_mut().filter(|e| e.path == b"etc/os-release") {
                    e.offset = other;
                }
            }),
        ),
    ];
    let repo = strata_source::Repository::open(&name, &options).unwrap();
    for (n, (word, lie)) in lies.into_iter().enumerate() {
        let mut published = honest.clone();
        published[at].1 = lie;
        let when = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + n as u64);
        strata_lazy::published::publish_at(&repo, &image.instance, &published, when).unwrap();
        let cache = tempfile::tempdir_in(tmp.path()).unwrap();
        let flag = format!("--cache-dir={}", cache.path().display());
        assert_eq!(
            read_ways(&name, &[&flag])[at],
            "published",
            "the lying index is the one found"
        );
        let out = strata(["cat", TLS_OFF, &flag, name.as_str(), "/etc/os-release"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(out.stdout.is_empty(), "no byte served: {:?}", out.stdout);
        assert!(
            err.contains(word) && err.contains(&honest[at].0.to_string()),
            "{err}"
        );
    }
}
