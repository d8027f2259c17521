//! `strata layer-store` (issue 14) against Debian's podman 4.3.1: podman pulls through strata's Additional
//! Layer Store (`--storage-opt overlay.additionallayerstore=DIR:ref`) from a real `docker-registry` on
//! 127.0.0.1, fetching a small part of the compressed bytes (counted by the registry's own log); `podman
//! image mount` of the result equals `umoci unpack`'s tree; `podman save` writes layers of the config's
//! diff IDs; `podman rmi` releases every layer; a killed serving process leaves reads failing, not hanging,
//! and a restarted one serves the same tree; a plain gzip layer is read whole once, then from the index
//! cache; a layer whose table of contents does not check is refused and podman pulls it itself; two pulls
//! of images sharing layers run at once.
//!
//! CI runs this as root with every peer installed; locally, missing peers skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use strata_tests::als::LayerStore;
use strata_tests::lazy::{Format, LazyImages, big_images, lazy_peers, varied_images};
use strata_tests::proxy::{Fault, FaultProxy, Rule};
use strata_tests::registry::{Auth, Env, Registry, creds};
use strata_tests::rich::umoci_unpack;
use strata_tests::store::TestStore;
use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{
    is_root, parse_json, require_tool, run, run_with_timeout, strata_bin, strata_ok, under_ci,
};

const TLS_OFF: &str = "--tls-verify=false";

/// Whether every peer is here (and we are root, for podman's overlay store and FUSE); fails under CI=true
/// otherwise.
fn peers() -> bool {
    if !(lazy_peers()
        && require_tool("docker-registry")
        && require_tool("fusermount3")
        && require_tool("podman"))
    {
        return false;
    }
    if !is_root() {
        assert!(
            !under_ci(),
            "the layer-store tests run as root under CI=true"
        );
        eprintln!("SKIP: the layer-store tests need root");
        return false;
    }
    true
}

/// `umoci unpack`'s tree of the gzip form of `images`, unpacked under `work/umoci`: what podman must see.
fn umoci_tree(images: &LazyImages, work: &Path) -> BTreeMap<String, strata_tests::tree::Node> {
    let gzip = format!("{}:{}", images.layout(Format::Gzip).display(), images.tag);
    listing(&umoci_unpack(&gzip, &work.join("umoci")))
}

/// A tree listing without the entries eStargz adds to a layer (its table and landmarks), which a layer
/// unpacked whole keeps and the layer store does not serve.
fn without_estargz_entries(
    mut tree: BTreeMap<String, strata_tests::tree::Node>,
) -> BTreeMap<String, strata_tests::tree::Node> {
    for own in [
        "stargz.index.json",
        ".no.prefetch.landmark",
        ".prefetch.landmark",
    ] {
        tree.remove(own);
    }
    tree
}

/// `podman` on `store` with the layer store.
fn podman(store: &TestStore, als: &LayerStore) -> Command {
    let mut c = store.podman_cmd();
    c.args(["--storage-opt", &als.storage_opt()]);
    c
}

fn podman_ok(store: &TestStore, als: &LayerStore, args: &[&str]) -> String {
    String::from_utf8(run(podman(store, als).args(args)).stdout)
        .unwrap()
        .trim()
        .to_owned()
}

/// The registry reference (without transport) of `format` of `images`.
fn reference(registry: &Registry, images: &LazyImages, format: Format) -> String {
    format!("{}/als/{}:{}", registry.host, format.name(), images.tag)
}

/// Pulls `format` of `images` through a layer store with podman and checks the pull and the tree; returns the
/// bytes of blobs the registry served during the pull.
fn pull_and_compare(
    registry: &Registry,
    images: &LazyImages,
    format: Format,
    expected: &BTreeMap<String, strata_tests::tree::Node>,
    work: &Path,
) -> u64 {
    let reference = reference(registry, images, format);
    let store = TestStore::new();
    let als = LayerStore::start(work, &[]);
    let before = registry.blob_bytes_written();
    podman_ok(&store, &als, &["pull", "-q", TLS_OFF, &reference]);
    let pulled = registry.blob_bytes_written() - before;
    let log = als.log();
    let layers = images.layers(format);
    for layer in &layers {
        let digest = layer["digest"].as_str().unwrap();
        assert!(
            log.contains(&format!("opened {reference} {digest}")),
            "{}: layer {digest} served by the store:\n{log}",
            format.name()
        );
    }
    // Every layer in use: podman's layer holds one use each.
    let uses = als.uses();
    assert_eq!(uses.len(), layers.len(), "{uses:?}\n{log}");
    assert!(uses.values().all(|&n| n >= 1), "{uses:?}\n{log}");

    let mounted = podman_ok(&store, &als, &["image", "mount", &reference]);
    assert_same_tree(
        expected,
        &listing(Path::new(&mounted)),
        &format!(
            "umoci unpack vs podman image mount through the layer store ({})",
            format.name()
        ),
    );
    podman_ok(&store, &als, &["image", "unmount", &reference]);
    // A container's root: the same tree under its own (empty) upper layer.
    let container = podman_ok(&store, &als, &["create", &reference, "/bin/true"]);
    let root = podman_ok(&store, &als, &["mount", &container]);
    assert_same_tree(
        expected,
        &listing(Path::new(&root)),
        &format!(
            "umoci unpack vs podman mount of a container ({})",
            format.name()
        ),
    );
    podman_ok(&store, &als, &["unmount", &container]);
    podman_ok(&store, &als, &["rm", &container]);
    check_overlay_form(&als, &reference, &layers);
    check_save(&store, &als, &reference, images, format, work);
    podman_ok(&store, &als, &["rmi", &reference]);
    let uses = als.uses();
    assert!(
        uses.values().all(|&n| n == 0),
        "{}: podman rmi released every layer: {uses:?}\n{}",
        format.name(),
        als.log()
    );
    assert!(
        als.log().contains(" dropped"),
        "cached data dropped at the last release:\n{}",
        als.log()
    );
    pulled
}

/// The store's own view of the varied image's second layer: its whiteout of `/etc/gone` a 0/0 character
/// device, `/opt/old` marked opaque, as containers/storage would have unpacked it; the `info` record's keys.
fn check_overlay_form(als: &LayerStore, reference: &str, layers: &[serde_json::Value]) {
    use base64::Engine as _;
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let b64 = base64::engine::general_purpose::STANDARD.encode(reference);
    let top = als
        .dir
        .join(b64)
        .join(layers.last().unwrap()["digest"].as_str().unwrap());
    let gone = fs::symlink_metadata(top.join("diff/etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device(), "{gone:?}");
    assert_eq!(gone.rdev(), 0);
    let opaque = rustix::fs::lgetxattr(
        top.join("diff/opt/old"),
        "trusted.overlay.opaque",
        &mut [0u8; 8],
    );
    assert_eq!(opaque.ok(), Some(1), "opt/old is opaque");
    let info = parse_json(&fs::read(top.join("info")).unwrap(), "the layer's info");
    assert_eq!(
        info["compressed-diff-digest"],
        layers.last().unwrap()["digest"],
        "{info}"
    );
    assert_eq!(
        info["compressed-size"],
        layers.last().unwrap()["size"],
        "{info}"
    );
    assert!(
        info["diff-digest"].as_str().unwrap().starts_with("sha256:"),
        "{info}"
    );
}

/// `podman save` of the image pulled through the store: each layer it writes (read from the store's `blob`)
/// decompresses to the config's diff ID.
fn check_save(
    store: &TestStore,
    als: &LayerStore,
    reference: &str,
    images: &LazyImages,
    format: Format,
    work: &Path,
) {
    use std::io::Read as _;
    let archive = work.join("saved.tar");
    podman_ok(
        store,
        als,
        &[
            "save",
            "-q",
            "--format",
            "oci-archive",
            "-o",
            archive.to_str().unwrap(),
            reference,
        ],
    );
    let mut blobs = BTreeMap::new();
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let hex = hex.to_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            blobs.insert(hex, bytes);
        }
    }
    let config = images.manifest(format)["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let config: serde_json::Value = serde_json::from_slice(
        &fs::read(
            images
                .layout(format)
                .join("blobs/sha256")
                .join(&config["sha256:".len()..]),
        )
        .unwrap(),
    )
    .unwrap();
    let mut saved: Vec<String> = Vec::new();
    for bytes in blobs.values() {
        let mut tar_bytes = Vec::new();
        if flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar_bytes)
            .is_ok()
        {
            saved.push(strata_tests::sha256_digest(&tar_bytes));
        }
    }
    for diff_id in config["rootfs"]["diff_ids"].as_array().unwrap() {
        assert!(
            saved.iter().any(|d| d == diff_id.as_str().unwrap()),
            "{}: podman save wrote a layer of diff ID {diff_id}: {saved:?}",
            format.name()
        );
    }
}

#[test]
fn podman_pulls_lazy_images_through_the_layer_store() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let expected = umoci_tree(images, tmp.path());
    let registry = Registry::start(Auth::Open);
    for format in [
        Format::Estargz,
        Format::ZstdChunkedCtr,
        Format::ZstdChunkedSkopeo,
    ] {
        registry.push(
            &images.oci(format),
            &format!("als/{}:{}", format.name(), images.tag),
            &[],
        );
        let work = tmp.path().join(format.name());
        fs::create_dir_all(&work).unwrap();
        let pulled = pull_and_compare(&registry, images, format, &expected, &work);
        let size = images.compressed_size(format);
        eprintln!(
            "{}: {size} bytes of layers; podman pull through the layer store fetched {pulled} ({:.2} %)",
            format.name(),
            pulled as f64 * 100.0 / size as f64
        );
        assert!(
            pulled * 10 <= size,
            "{}: the pull fetched {pulled} of {size} bytes (over 10 %)",
            format.name()
        );
    }
}

#[test]
fn podman_pulls_a_gzip_image_with_a_published_index_through_the_layer_store() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let expected = umoci_tree(images, tmp.path());
    let registry = Registry::start(Auth::Open);
    let rest = format!("als/{}:{}", Format::Gzip.name(), images.tag);
    registry.push(&images.oci(Format::Gzip), &rest, &[]);
    strata_ok(["index", "--push", TLS_OFF, &registry.image(&rest)]);
    let pulled = pull_and_compare(&registry, images, Format::Gzip, &expected, tmp.path());
    let size = images.compressed_size(Format::Gzip);
    eprintln!(
        "gzip + published index: {size} bytes of layers; the pull fetched {pulled} ({:.2} %)",
        pulled as f64 * 100.0 / size as f64
    );
    assert!(
        pulled * 10 <= size,
        "the pull fetched {pulled} of {size} bytes"
    );
}

#[test]
fn a_killed_layer_store_fails_reads_without_hanging() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start(Auth::Open);
    let format = Format::Estargz;
    registry.push(
        &images.oci(format),
        &format!("als/{}:{}", format.name(), images.tag),
        &[],
    );
    let reference = reference(&registry, images, format);
    let store = TestStore::new();
    let als = LayerStore::start(tmp.path(), &[]);
    podman_ok(&store, &als, &["pull", "-q", TLS_OFF, &reference]);
    let mounted = PathBuf::from(podman_ok(&store, &als, &["image", "mount", &reference]));
    // Nothing read yet: the serving process dies before any file's bytes were fetched.
    run(Command::new("kill").args(["-KILL", &als.pid.to_string()]));
    std::thread::sleep(Duration::from_millis(200));
    let out = run_with_timeout(
        Command::new("cat").arg(mounted.join("usr/lib/large.bin")),
        Duration::from_secs(20),
    );
    assert!(
        !out.status.success(),
        "cat through a dead layer store failed"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Transport endpoint is not connected") || err.contains("Input/output error"),
        "ENOTCONN or EIO: {err}"
    );
    // Started again at the same directory, the store serves the same tree: podman mounts the image again.
    strata_ok(["umount", als.dir.to_str().unwrap()]);
    let _ = run_with_timeout(
        podman(&store, &als).args(["image", "unmount", &reference]),
        Duration::from_secs(30),
    );
    let again = LayerStore::start(tmp.path(), &[]);
    let mounted = PathBuf::from(podman_ok(&store, &again, &["image", "mount", &reference]));
    let expected = umoci_tree(images, tmp.path());
    assert_same_tree(
        &expected,
        &listing(&mounted),
        "umoci unpack vs podman image mount through a restarted layer store",
    );
    podman_ok(&store, &again, &["image", "unmount", &reference]);
    podman_ok(&store, &again, &["rmi", &reference]);
}

#[test]
fn a_plain_gzip_layer_is_read_whole_once_then_lazily_from_the_cache() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let expected = umoci_tree(images, tmp.path());
    let registry = Registry::start(Auth::Open);
    let rest = format!("als/plain:{}", images.tag);
    registry.push(&images.oci(Format::Gzip), &rest, &[]);
    let reference = format!("{}/{rest}", registry.host);
    let size = images.compressed_size(Format::Gzip);
    // Two stores, one layer store (and its index cache): the first pull reads every layer whole, verified;
    // the second finds their indexes in the cache.
    let als = LayerStore::start(tmp.path(), &[]);
    let mut fetched = Vec::new();
    for round in ["first", "second"] {
        let store = TestStore::new();
        let before = registry.blob_bytes_written();
        podman_ok(&store, &als, &["pull", "-q", TLS_OFF, &reference]);
        fetched.push(registry.blob_bytes_written() - before);
        let mounted = podman_ok(&store, &als, &["image", "mount", &reference]);
        assert_same_tree(
            &expected,
            &listing(Path::new(&mounted)),
            &format!("umoci unpack vs podman image mount, {round} pull of a plain gzip image"),
        );
        podman_ok(&store, &als, &["image", "unmount", &reference]);
        podman_ok(&store, &als, &["rmi", &reference]);
    }
    let log = als.log();
    assert!(log.contains("(read index"), "{log}");
    assert!(log.contains("(cache index"), "{log}");
    eprintln!(
        "plain gzip, {size} bytes of layers: first pull fetched {}, second {}",
        fetched[0], fetched[1]
    );
    assert!(fetched[0] >= size, "the first pull read every layer whole");
    assert!(
        fetched[1] * 10 <= size,
        "the second pull fetched {} bytes",
        fetched[1]
    );
}

#[test]
fn a_layer_that_cannot_be_verified_is_refused_and_podman_pulls_it_itself() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let expected = umoci_tree(images, tmp.path());
    // The eStargz image with its top layer's TOC digest annotation changed: its table can no longer be
    // checked (the blob itself is intact, as podman will find).
    let layout = tmp.path().join("lying");
    run(Command::new("cp")
        .arg("-a")
        .arg(images.layout(Format::Estargz))
        .arg(&layout));
    let oci = strata_tests::OciLayout::open(&layout);
    let mut manifest = oci.manifest(&images.tag);
    let top = manifest["layers"].as_array().unwrap().len() - 1;
    let lied = format!("sha256:{}", "0".repeat(64));
    manifest["layers"][top]["annotations"]["containerd.io/snapshot/stargz/toc.digest"] =
        serde_json::json!(lied);
    let refused = manifest["layers"][top]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused_size = manifest["layers"][top]["size"].as_u64().unwrap();
    let descriptor = oci.add_json("application/vnd.oci.image.manifest.v1+json", &manifest);
    oci.set_tag(&images.tag, &descriptor);
    let registry = Registry::start(Auth::Open);
    let rest = format!("als/lying:{}", images.tag);
    registry.push(
        &format!("oci:{}:{}", layout.display(), images.tag),
        &rest,
        &[],
    );
    let reference = format!("{}/{rest}", registry.host);

    let store = TestStore::new();
    let als = LayerStore::start(tmp.path(), &[]);
    let before = registry.blob_bytes_written();
    podman_ok(&store, &als, &["pull", "-q", TLS_OFF, &reference]);
    let pulled = registry.blob_bytes_written() - before;
    let log = als.log();
    assert!(
        log.contains(&format!("refused {reference} {refused}")),
        "the layer whose table does not check is refused:\n{log}"
    );
    assert!(
        !log.contains(&format!("opened {reference} {refused}")),
        "and never served:\n{log}"
    );
    assert!(
        pulled >= refused_size,
        "podman downloaded the refused layer itself ({pulled} bytes fetched, the layer has {refused_size})"
    );
    let mounted = podman_ok(&store, &als, &["image", "mount", &reference]);
    // The layer podman unpacked itself keeps eStargz's own entries.
    let got = without_estargz_entries(listing(Path::new(&mounted)));
    assert_same_tree(
        &expected,
        &got,
        "umoci unpack vs podman image mount, one layer from the store and one pulled by podman",
    );
    podman_ok(&store, &als, &["image", "unmount", &reference]);
    podman_ok(&store, &als, &["rmi", &reference]);
    assert!(als.uses().values().all(|&n| n == 0), "{}", als.log());
}

#[test]
fn a_blob_served_otherwise_than_its_published_index_is_refused_and_podman_pulls_it() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let expected = umoci_tree(images, tmp.path());
    let registry = Registry::start(Auth::Open);
    let rest = format!("als/served-otherwise:{}", images.tag);
    registry.push(&images.oci(Format::Gzip), &rest, &[]);
    strata_ok(["index", "--push", TLS_OFF, &registry.image(&rest)]);
    // Between the registry and both clients, a mirror that serves other bytes for every range of a blob
    // (a byte flipped), and whole blobs as they are: the published indexes no longer describe what the
    // layer store reads, while podman's own full download is intact.
    let proxy = FaultProxy::start(
        &registry.host,
        vec![Rule::new("/blobs/", Fault::CorruptRanges, usize::MAX)],
    );
    let reference = format!("{}/{rest}", proxy.host);
    let store = TestStore::new();
    let als = LayerStore::start(tmp.path(), &[]);
    podman_ok(&store, &als, &["pull", "-q", TLS_OFF, &reference]);
    let log = als.log();
    for layer in images.layers(Format::Gzip) {
        let digest = layer["digest"].as_str().unwrap();
        assert!(
            log.contains(&format!("refused {reference} {digest}")) && log.contains("sha256"),
            "layer {digest} is refused at lookup, its span not checking:\n{log}"
        );
        assert!(
            !log.contains(&format!("opened {reference} {digest}")),
            "and never served:\n{log}"
        );
    }
    let mounted = podman_ok(&store, &als, &["image", "mount", &reference]);
    assert_same_tree(
        &expected,
        &listing(Path::new(&mounted)),
        "umoci unpack vs podman image mount of the layers podman pulled itself",
    );
    podman_ok(&store, &als, &["image", "unmount", &reference]);
    podman_ok(&store, &als, &["rmi", &reference]);
}

#[test]
fn two_pulls_of_images_sharing_layers_at_once() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let expected = umoci_tree(images, tmp.path());
    let registry = Registry::start(Auth::Open);
    let references: Vec<String> = ["one", "two"]
        .iter()
        .map(|name| {
            let rest = format!("als/{name}:{}", images.tag);
            registry.push(&images.oci(Format::Estargz), &rest, &[]);
            format!("{}/{rest}", registry.host)
        })
        .collect();
    let als = LayerStore::start(tmp.path(), &[]);
    let stores = [TestStore::new(), TestStore::new()];
    std::thread::scope(|scope| {
        for (store, reference) in stores.iter().zip(&references) {
            let als = &als;
            let expected = &expected;
            scope.spawn(move || {
                podman_ok(store, als, &["pull", "-q", TLS_OFF, reference]);
                let mounted = podman_ok(store, als, &["image", "mount", reference]);
                assert_same_tree(
                    expected,
                    &listing(Path::new(&mounted)),
                    &format!(
                        "umoci unpack vs podman image mount of {reference}, pulled beside another"
                    ),
                );
            });
        }
    });
    let uses = als.uses();
    assert_eq!(uses.len(), 4, "two layers under each reference: {uses:?}");
    assert!(uses.values().all(|&n| n >= 1), "{uses:?}");
    for (store, reference) in stores.iter().zip(&references) {
        podman_ok(store, &als, &["image", "unmount", reference]);
        podman_ok(store, &als, &["rmi", reference]);
    }
    assert!(als.uses().values().all(|&n| n == 0), "{}", als.log());
}

#[test]
fn the_layer_store_finds_credentials_where_strata_finds_them() {
    if !peers() || !require_tool("htpasswd") {
        return;
    }
    let images = varied_images();
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start(Auth::Htpasswd);
    let rest = format!("als/private:{}", images.tag);
    registry.push(&images.oci(Format::Estargz), &rest, &[]);
    let reference = format!("{}/{rest}", registry.host);
    // The store's user has logged in (auth.json in $XDG_RUNTIME_DIR/containers), as podman login writes it;
    // podman passes the store no credentials.
    let env = Env::new();
    env.write_auth(
        &env.runtime_dir().join("containers/auth.json"),
        &registry.host,
    );
    let als = LayerStore::start_with(env.command(strata_bin()), tmp.path(), &[]);
    // Another user cannot have the store fetch with those credentials: its directories are root's alone.
    let top = images.layers(Format::Estargz)[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&reference)
    };
    let probe = strata_tests::run_unchecked(
        strata_tests::as_user(65534)
            .arg("stat")
            .arg(als.dir.join(&b64).join(&top).join("diff")),
    );
    assert!(!probe.status.success(), "nobody looked into the store");
    assert!(
        String::from_utf8_lossy(&probe.stderr).contains("Permission denied"),
        "{}",
        strata_tests::show_output(&probe)
    );
    assert!(!als.log().contains("opened"), "{}", als.log());
    let store = TestStore::new();
    podman_ok(
        &store,
        &als,
        &["pull", "-q", TLS_OFF, "--creds", &creds(), &reference],
    );
    let log = als.log();
    for layer in images.layers(Format::Estargz) {
        let digest = layer["digest"].as_str().unwrap();
        assert!(
            log.contains(&format!("opened {reference} {digest}")),
            "layer {digest} served with the user's credentials:\n{log}"
        );
    }
    podman_ok(&store, &als, &["rmi", &reference]);
}

#[test]
fn pulls_of_big_images_fetch_under_five_percent_of_them() {
    if !peers() {
        return;
    }
    let images = big_images();
    let tmp = tempfile::tempdir().unwrap();
    let expected = umoci_tree(images, tmp.path());
    let registry = Registry::start(Auth::Open);
    // eStargz and zstd:chunked by ctr-remote, and the plain gzip image with its index pushed by strata.
    for format in [Format::Estargz, Format::ZstdChunkedCtr, Format::Gzip] {
        let rest = format!("als/{}:{}", format.name(), images.tag);
        registry.push(&images.oci(format), &rest, &[]);
        if format == Format::Gzip {
            strata_ok(["index", "--push", TLS_OFF, &registry.image(&rest)]);
        }
        let reference = reference(&registry, images, format);
        let size = images.compressed_size(format);
        assert!(size > 100_000_000, "{size} bytes of layers");
        let store = TestStore::new();
        let als = LayerStore::start(&tmp.path().join(format.name()), &[]);
        let before = registry.blob_bytes_written();
        podman_ok(&store, &als, &["pull", "-q", TLS_OFF, &reference]);
        let pulled = registry.blob_bytes_written() - before;
        let mounted = PathBuf::from(podman_ok(&store, &als, &["image", "mount", &reference]));
        let os_release = fs::read_to_string(mounted.join("etc/os-release")).unwrap();
        assert_eq!(os_release, strata_tests::lazy::OS_RELEASE);
        let read = registry.blob_bytes_written() - before;
        eprintln!(
            "big {}, {size} bytes of layers: podman pull through the layer store fetched {pulled} \
             ({:.2} %), with image mount + cat /etc/os-release {read} ({:.2} %)",
            format.name(),
            pulled as f64 * 100.0 / size as f64,
            read as f64 * 100.0 / size as f64
        );
        assert!(
            read * 20 <= size,
            "{}: fetched {read} of {size} bytes (over 5 %)",
            format.name()
        );
        // Then the whole tree, every file read through the layer store (eStargz's own entries aside).
        let got = without_estargz_entries(listing(&mounted));
        assert_same_tree(
            &expected,
            &got,
            &format!(
                "umoci unpack vs podman image mount of the big {} image",
                format.name()
            ),
        );
        podman_ok(&store, &als, &["image", "unmount", &reference]);
        podman_ok(&store, &als, &["rmi", &reference]);
        assert!(als.uses().values().all(|&n| n == 0), "{}", als.log());
    }
}
