//! `strata copy` and `strata delete` against the real peers: skopeo 1.9.3, podman 4.3 and Debian's
//! `docker-registry` (Distribution 2.8) on 127.0.0.1.
//!
//! Covered: the round trip `oci:` → `docker://` → `oci-archive:` → `docker-archive:` → `dir:` → `oci:`, each
//! step by strata, with `skopeo inspect --raw` byte-equal manifests (the docker archive's against skopeo's own
//! copy through a docker archive, which rewrites the manifest) and equal blobs at every step, every
//! strata-written destination read by `skopeo copy` and pulled by `podman pull`; `--all` of a two-platform index
//! to `docker://` and `oci:` keeping the index digest; blobs the registry has not sent again (counted in its
//! log) and blobs of another repository of the same registry mounted; a registry failing mid-copy leaving no
//! tag, and one killed mid-push too; a chunked push cut mid-blob resumed from the upload's status (and, where
//! Distribution took part of the cut chunk and cancels the upload, uploaded again); failed local copies
//! leaving no partial output; `oci:` adding to a layout and keeping its other images; `strata delete`.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use strata_tests::proxy::{Fault, FaultProxy, Rule};
use strata_tests::registry::{Auth, Registry};
use strata_tests::{
    OCI_CONFIG, OCI_MANIFEST, OciLayout, base_image, image_ref, multi_arch_layout, parse_json,
    require_tool, run_unchecked, skopeo_ok, strata, strata_ok,
};
use tempfile::TempDir;

const TLS_OFF: &str = "--dest-tls-verify=false";
const SRC_TLS_OFF: &str = "--src-tls-verify=false";

fn peers() -> bool {
    require_tool("skopeo") & require_tool("umoci") & require_tool("docker-registry")
}

/// A temporary directory with a lower-case name: podman names an `oci:` image after its path, and refuses
/// upper case.
fn tempdir() -> TempDir {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    tempfile::Builder::new()
        .prefix(&format!("strata-copy-{}-{n}-{nanos}", std::process::id()))
        .rand_bytes(0)
        .tempdir()
        .expect("tempdir")
}

/// An empty auth file, so the machine's are not read.
fn authfile() -> String {
    let path = std::env::temp_dir().join(format!("strata-copy-auth-{}.json", std::process::id()));
    if !path.exists() {
        fs::write(&path, br#"{"auths":{}}"#).unwrap();
    }
    path.display().to_string()
}

/// `strata copy` with flags that keep the machine's auth files out.
fn copy_ok(src: &str, dst: &str, extra: &[&str]) -> Value {
    let auth = authfile();
    let mut args = vec!["copy", "--json", "--authfile", &auth, TLS_OFF, SRC_TLS_OFF];
    args.extend_from_slice(extra);
    args.push(src);
    args.push(dst);
    parse_json(&strata_ok(&args), &format!("copy {src} {dst}"))
}

fn copy_fails(src: &str, dst: &str, extra: &[&str]) -> String {
    let auth = authfile();
    let mut args = vec!["copy", "--authfile", &auth, TLS_OFF, SRC_TLS_OFF];
    args.extend_from_slice(extra);
    args.push(src);
    args.push(dst);
    let out = strata(&args);
    assert!(
        !out.status.success(),
        "copy {src} {dst} succeeded: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn raw(image: &str) -> Vec<u8> {
    skopeo_ok(["inspect", "--raw", "--tls-verify=false", image])
}

/// Every blob of `image`, by digest, as `skopeo copy` to `dir:` writes them (so skopeo must read `image`).
fn blobs(image: &str, work: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::Builder::new()
        .prefix("blobs-")
        .tempdir_in(work)
        .unwrap();
    let out = dir.path().join("d");
    skopeo_ok([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        image,
        &format!("dir:{}", out.display()),
    ]);
    let mut found = BTreeMap::new();
    for entry in fs::read_dir(&out).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            found.insert(name, fs::read(entry.path()).unwrap());
        }
    }
    found
}

/// `podman pull` of `image` into a throw-away vfs store; panics with podman's message when it fails.
fn podman_pulls(image: &str) {
    if !require_tool("podman") {
        return;
    }
    let store = tempdir();
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(store.path().join("root"))
        .arg("--runroot")
        .arg(store.path().join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--events-backend",
            "none",
            "pull",
            "--quiet",
            "--tls-verify=false",
        ])
        .arg(image.strip_prefix("docker://").unwrap_or(image));
    let out = run_unchecked(&mut c);
    assert!(
        out.status.success(),
        "podman pull {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Files whose names start with `.` in `dir`: staging leftovers.
fn hidden(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.starts_with('.').then_some(n)
        })
        .collect()
}

#[test]
fn round_trip_through_every_transport() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    let base = image_ref("oci", &base_image(work), ":base");
    let reg = Registry::start(Auth::Open);
    let base_raw = raw(&base);
    let base_blobs = blobs(&base, work);

    // oci: → docker://
    let pushed = reg.image("copy/round:v1");
    let report = copy_ok(&base, &pushed, &[]);
    assert_eq!(raw(&pushed), base_raw, "docker:// manifest");
    assert_eq!(blobs(&pushed, work), base_blobs, "docker:// blobs");
    assert_eq!(
        report["digest"].as_str(),
        Some(strata_tests::sha256_digest(&base_raw).as_str())
    );
    podman_pulls(&pushed);

    // docker:// → oci-archive:
    let archive = image_ref("oci-archive", &work.join("round.tar"), ":v1");
    copy_ok(&pushed, &archive, &[]);
    assert_eq!(raw(&archive), base_raw, "oci-archive: manifest");
    assert_eq!(blobs(&archive, work), base_blobs, "oci-archive: blobs");
    podman_pulls(&archive);

    // oci-archive: → docker-archive: (the layers stored uncompressed, the manifest rewritten: compared
    // with skopeo's own copy through a docker archive)
    let docker_archive = image_ref(
        "docker-archive",
        &work.join("round-docker.tar"),
        ":copy/round:v1",
    );
    copy_ok(&archive, &docker_archive, &[]);
    let skopeo_archive = image_ref(
        "docker-archive",
        &work.join("skopeo-docker.tar"),
        ":copy/round:v1",
    );
    skopeo_ok(["copy", "--quiet", &archive, &skopeo_archive]);
    let docker_raw = raw(&skopeo_archive);
    assert_eq!(raw(&docker_archive), docker_raw, "docker-archive: manifest");
    let docker_blobs = blobs(&skopeo_archive, work);
    assert_eq!(
        blobs(&docker_archive, work),
        docker_blobs,
        "docker-archive: blobs"
    );
    assert_eq!(
        fs::read(work.join("round-docker.tar")).unwrap(),
        fs::read(work.join("skopeo-docker.tar")).unwrap(),
        "the docker archive is skopeo's byte for byte"
    );
    podman_pulls(&docker_archive);

    // docker-archive: → dir: (the Docker v2s2 manifest as it is)
    let dir = image_ref("dir", &work.join("round-dir"), "");
    copy_ok(&docker_archive, &dir, &[]);
    assert_eq!(raw(&dir), docker_raw, "dir: manifest");
    assert_eq!(blobs(&dir, work), docker_blobs, "dir: blobs");
    assert_eq!(
        fs::read_to_string(work.join("round-dir/version")).unwrap(),
        "Directory Transport Version: 1.1\n"
    );
    podman_pulls(&dir);

    // dir: → oci: of that v2s2 image converts it (the manifest and config as skopeo writes them), its
    // plain-tar layers typed tar.gzip gzipped as skopeo gzips them (see
    // a_docker_archive_s_plain_layers_are_compressed_as_their_type_says).
    let v2s2_oci = image_ref("oci", &work.join("v2s2-oci"), ":v1");
    copy_ok(&dir, &v2s2_oci, &[]);
    let converted: Value = serde_json::from_slice(&raw(&v2s2_oci)).unwrap();
    assert_eq!(converted["mediaType"], OCI_MANIFEST);
    assert_eq!(converted["config"]["mediaType"], OCI_CONFIG);
    podman_pulls(&v2s2_oci);

    // The OCI image through dir: and back to oci:, byte for byte.
    let oci_dir = image_ref("dir", &work.join("round-oci-dir"), "");
    copy_ok(&archive, &oci_dir, &[]);
    assert_eq!(raw(&oci_dir), base_raw, "dir: manifest");
    assert_eq!(blobs(&oci_dir, work), base_blobs, "dir: blobs");
    podman_pulls(&oci_dir);
    let oci = image_ref("oci", &work.join("round-oci"), ":v1");
    copy_ok(&oci_dir, &oci, &[]);
    assert_eq!(raw(&oci), base_raw, "oci: manifest");
    assert_eq!(blobs(&oci, work), base_blobs, "oci: blobs");
    podman_pulls(&oci);

    // And skopeo's own oci: → oci: copy writes the very same layout.
    let strata_layout = image_ref("oci", &work.join("strata-layout"), ":v1");
    let skopeo_layout = image_ref("oci", &work.join("skopeo-layout"), ":v1");
    copy_ok(&base, &strata_layout, &[]);
    skopeo_ok(["copy", "--quiet", &base, &skopeo_layout]);
    for file in ["index.json", "oci-layout"] {
        assert_eq!(
            fs::read(work.join("strata-layout").join(file)).unwrap(),
            fs::read(work.join("skopeo-layout").join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(hidden(work).is_empty(), "leftovers: {:?}", hidden(work));
}

#[test]
fn all_keeps_the_index_digest() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let (layout, _, _) = multi_arch_layout(tmp.path());
    let src = image_ref("oci", &layout.root, ":multi");
    let index_raw = raw(&src);
    let index_digest = strata_tests::sha256_digest(&index_raw);
    let reg = Registry::start(Auth::Open);

    let pushed = reg.image("copy/multi:all");
    let report = copy_ok(&src, &pushed, &["--all"]);
    assert_eq!(report["digest"].as_str(), Some(index_digest.as_str()));
    assert_eq!(report["manifests"].as_array().unwrap().len(), 3);
    assert_eq!(raw(&pushed), index_raw, "index pushed byte for byte");
    for arch in ["amd64", "arm64"] {
        let one = skopeo_ok([
            "--override-arch",
            arch,
            "inspect",
            "--tls-verify=false",
            &pushed,
        ]);
        assert_eq!(parse_json(&one, arch)["Architecture"], arch);
    }

    let oci = image_ref("oci", &tmp.path().join("all-oci"), ":m");
    copy_ok(&pushed, &oci, &["--all"]);
    assert_eq!(raw(&oci), index_raw, "index written to oci: byte for byte");
    let index: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("all-oci/index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"].as_str(),
        Some(index_digest.as_str())
    );

    // Without --all, one platform's image is the destination's manifest.
    let one = image_ref("oci", &tmp.path().join("one-oci"), ":m");
    copy_ok(&src, &one, &["--override-arch", "arm64"]);
    let arm64 = layout.read_json_blob(index_entry_digest(&layout, 1).as_str());
    assert_eq!(parse_json(&raw(&one), "one"), arm64);
    assert_eq!(
        strata_tests::sha256_digest(&raw(&one)),
        index_entry_digest(&layout, 1)
    );

    // --multi-arch index-only writes the index alone; a docker archive cannot take an index.
    let err = copy_fails(
        &src,
        &image_ref("docker-archive", &tmp.path().join("x.tar"), ""),
        &["--all"],
    );
    assert!(err.contains("single images"), "{err}");
    assert!(!tmp.path().join("x.tar").exists());
}

/// A docker archive's layers are plain tars its manifest types `tar.gzip` (as containers/image presents
/// it): copied to an OCI layout they are compressed as skopeo compresses them, never written as plain tars
/// under a gzip type; converted, they are read as what they are. Each copy unpacks (umoci; the zstd ones
/// through skopeo's gzip copy) to the tree of skopeo's own copy.
#[test]
fn a_docker_archive_s_plain_layers_are_compressed_as_their_type_says() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    let base = image_ref("oci", &base_image(work), ":base");
    let archive = image_ref("docker-archive", &work.join("plain.tar"), ":copy/plain:v1");
    skopeo_ok(["copy", "--quiet", &base, &archive]);
    let skopeo_layout = work.join("by-skopeo");
    skopeo_ok([
        "copy",
        "--quiet",
        &archive,
        &image_ref("oci", &skopeo_layout, ":v1"),
    ]);
    let expected = strata_tests::tree::listing(&strata_tests::rich::umoci_unpack(
        &format!("{}:v1", skopeo_layout.display()),
        &work.join("skopeo-bundle"),
    ));
    for (name, extra, magic, suffix) in [
        ("kept", &[][..], &[0x1f_u8, 0x8b][..], "tar+gzip"),
        (
            "zstd",
            &["--dest-compress-format", "zstd"][..],
            &[0x28, 0xb5, 0x2f, 0xfd][..],
            "tar+zstd",
        ),
        (
            "chunked",
            &["--dest-compress-format", "zstd:chunked"][..],
            &[0x28, 0xb5, 0x2f, 0xfd][..],
            "tar+zstd",
        ),
    ] {
        let layout = work.join(name);
        copy_ok(&archive, &image_ref("oci", &layout, ":v1"), extra);
        let oci = OciLayout::open(&layout);
        let manifest = oci.manifest("v1");
        for layer in manifest["layers"].as_array().unwrap() {
            let media_type = layer["mediaType"].as_str().unwrap();
            assert!(media_type.ends_with(suffix), "{name}: {media_type}");
            let digest = layer["digest"].as_str().unwrap();
            let bytes = fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
            assert!(
                bytes.starts_with(magic),
                "{name}: layer {digest} is not {suffix}"
            );
        }
        // umoci 0.4 reads no zstd: skopeo makes a gzip copy of those for it (reading every layer).
        let readable = if suffix == "tar+zstd" {
            let regz = work.join(format!("{name}-gzip"));
            skopeo_ok([
                "copy",
                "--quiet",
                "--dest-compress-format",
                "gzip",
                &image_ref("oci", &layout, ":v1"),
                &image_ref("oci", &regz, ":v1"),
            ]);
            regz
        } else {
            layout.clone()
        };
        let got = strata_tests::tree::listing(&strata_tests::rich::umoci_unpack(
            &format!("{}:v1", readable.display()),
            &work.join(format!("{name}-bundle")),
        ));
        strata_tests::tree::assert_same_tree(&expected, &got, name);
    }
}

/// The digest of entry `n` of the layout's `multi` index.
fn index_entry_digest(layout: &OciLayout, n: usize) -> String {
    let index = layout.manifest("multi");
    index["manifests"][n]["digest"].as_str().unwrap().to_owned()
}

/// The blob uploads (`PUT` of an upload) and mounts (`POST …?mount=`) the registry answered.
fn uploads(reg: &Registry) -> (usize, usize) {
    let served = reg.served();
    let puts = served
        .iter()
        .filter(|s| s.method == "PUT" && s.uri.contains("/blobs/uploads/"))
        .count();
    let mounts = served
        .iter()
        .filter(|s| s.method == "POST" && s.uri.contains("mount=") && s.status == 201)
        .count();
    (puts, mounts)
}

#[test]
fn blobs_the_registry_has_are_not_sent_again() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = image_ref("oci", &base_image(tmp.path()), ":base");
    let reg = Registry::start(Auth::Open);
    let first = copy_ok(&base, &reg.image("copy/reuse:a"), &[]);
    let blobs_count = first["blobs"].as_array().unwrap().len();
    let (puts, _) = uploads(&reg);
    assert_eq!(puts, blobs_count, "first copy uploads every blob");

    // Same repository, another tag: every blob skipped.
    let second = copy_ok(&base, &reg.image("copy/reuse:b"), &[]);
    assert_eq!(second["skipped"].as_u64(), Some(blobs_count as u64));
    assert_eq!(second["bytes_written"].as_u64(), Some(0));
    assert_eq!(uploads(&reg).0, puts, "no upload for the second copy");

    // Another repository of the same registry: mounted from the source's repository, not uploaded.
    let third = copy_ok(&reg.image("copy/reuse:a"), &reg.image("copy/other:a"), &[]);
    assert_eq!(third["skipped"].as_u64(), Some(blobs_count as u64));
    let (puts_after, mounts) = uploads(&reg);
    assert_eq!(puts_after, puts, "no upload for the cross-repository copy");
    assert_eq!(mounts, blobs_count, "each blob mounted");
    assert_eq!(raw(&reg.image("copy/other:a")), raw(&base));

    // delete: the manifest goes, and its tags with it.
    strata_ok([
        "delete",
        "--tls-verify=false",
        "--authfile",
        &authfile(),
        &reg.image("copy/other:a"),
    ]);
    assert!(
        !skopeo_sees(&reg.image("copy/other:a")),
        "the tag outlived delete"
    );
}

#[test]
fn a_registry_failing_mid_copy_leaves_no_tag() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = image_ref("oci", &base_image(tmp.path()), ":base");
    let reg = Registry::start(Auth::Open);
    // Every blob upload's final PUT fails: the copy fails, and the tag never appears.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/blobs/uploads/",
            Fault::Status {
                status: 500,
                retry_after: None,
            },
            usize::MAX,
        )],
    );
    let target = proxy.image("copy/broken:v1");
    let err = copy_fails(&base, &target, &["--retry-times", "1"]);
    assert!(err.contains("500"), "{err}");
    assert!(
        !skopeo_sees(&reg.image("copy/broken:v1")),
        "a tag was left behind"
    );

    // With the fault gone the same copy completes (blobs already there are not sent again).
    proxy.set_rules(Vec::new());
    copy_ok(&base, &target, &[]);
    assert_eq!(raw(&reg.image("copy/broken:v1")), raw(&base));
}

#[test]
fn a_corrupt_blob_pushed_unhashed_is_refused_by_the_registry() {
    // strata sends a local blob to a registry without hashing it (the registry checks every upload
    // against its digest): a layout whose layer no longer matches its digest fails, names the refusal,
    // and leaves neither the blob nor a tag in the registry.
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = base_image(tmp.path());
    let corrupt = corrupt_copy(&base, tmp.path());
    let manifest = OciLayout::open(&corrupt).manifest("base");
    let layers = manifest["layers"].as_array().unwrap();
    let digest = layers.last().unwrap()["digest"].as_str().unwrap();
    let reg = Registry::start(Auth::Open);
    let err = copy_fails(
        &image_ref("oci", &corrupt, ":base"),
        &reg.image("copy/corrupt:v1"),
        &[],
    );
    assert!(
        err.contains(digest) || err.contains("DIGEST_INVALID"),
        "{err}"
    );
    assert_eq!(
        strata_tests::registry::http_status(&reg.host, &format!("/v2/copy/corrupt/blobs/{digest}")),
        Some(404),
        "the corrupt blob was kept"
    );
    assert!(
        !skopeo_sees(&reg.image("copy/corrupt:v1")),
        "a tag was left behind"
    );
}

/// Whether skopeo finds a manifest at `image` (a `docker://` name on a plain-HTTP registry).
fn skopeo_sees(image: &str) -> bool {
    run_unchecked(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", image]))
        .status
        .success()
}

/// A copy of `base` with one layer byte changed (its digest no longer matches).
fn corrupt_copy(base: &Path, work: &Path) -> PathBuf {
    let out = work.join("corrupt");
    let status = Command::new("cp")
        .arg("-r")
        .arg(base)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let layout = OciLayout::open(&out);
    let manifest = layout.manifest("base");
    let layers = manifest["layers"].as_array().unwrap();
    let digest = layers.last().unwrap()["digest"].as_str().unwrap();
    let path = layout.blob_path(digest);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    out
}

#[test]
fn a_failed_local_copy_leaves_no_partial_output() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = base_image(tmp.path());
    let corrupt = image_ref("oci", &corrupt_copy(&base, tmp.path()), ":base");
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    for (transport, name) in [
        ("oci", "layout"),
        ("oci-archive", "archive.tar"),
        ("docker-archive", "docker.tar"),
        ("dir", "dir"),
    ] {
        let err = copy_fails(&corrupt, &image_ref(transport, &out.join(name), ""), &[]);
        // The blob's digest mismatch, or (for a docker archive, which decompresses) the broken gzip.
        assert!(
            ["sha256", "gzip", "deflate"]
                .iter()
                .any(|w| err.contains(w)),
            "{transport}: {err}"
        );
        assert!(!out.join(name).exists(), "{transport} left {name}");
        assert!(
            hidden(&out).is_empty(),
            "{transport} left {:?}",
            hidden(&out)
        );
    }

    // Into an existing layout: its index and blobs are as they were, its other image kept.
    let layout = out.join("existing");
    copy_ok(
        &image_ref("oci", &base, ":base"),
        &image_ref("oci", &layout, ":keep"),
        &[],
    );
    let before_index = fs::read(layout.join("index.json")).unwrap();
    let count = |p: &Path| fs::read_dir(p.join("blobs/sha256")).unwrap().count();
    let before_blobs = count(&layout);
    let big = big_layout(&tmp.path().join("corrupt-big"));
    let big_layout_dir = tmp.path().join("corrupt-big/big");
    let big_manifest = OciLayout::open(&big_layout_dir).manifest("big");
    let layer = OciLayout::open(&big_layout_dir)
        .blob_path(big_manifest["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = fs::read(&layer).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&layer, bytes).unwrap();
    let err = copy_fails(&big, &image_ref("oci", &layout, ":new"), &[]);
    assert!(err.contains("sha256"), "{err}");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before_index);
    assert_eq!(count(&layout), before_blobs);
    assert!(hidden(&layout).is_empty(), "{:?}", hidden(&layout));

    // A second image added to the layout keeps the first.
    let (multi, _, _) = multi_arch_layout(&tmp.path().join("m"));
    copy_ok(
        &image_ref("oci", &multi.root, ":multi"),
        &image_ref("oci", &layout, ":second"),
        &["--override-arch", "arm64"],
    );
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    raw(&image_ref("oci", &layout, ":keep"));
    raw(&image_ref("oci", &layout, ":second"));

    // A disk that fills up: the copy fails cleanly and removes what it wrote (a small tmpfs, as root).
    if strata_tests::is_root() {
        let small = tmp.path().join("small");
        fs::create_dir(&small).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&small)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            let src = big_layout(tmp.path());
            for (transport, name) in [("oci", "l"), ("dir", "d"), ("oci-archive", "a.tar")] {
                let err = copy_fails(&src, &image_ref(transport, &small.join(name), ""), &[]);
                assert!(err.contains("No space left"), "{transport}: {err}");
                assert!(
                    fs::read_dir(&small).unwrap().next().is_none(),
                    "{transport} left files"
                );
            }
            // Recompressed layers go straight to a directory destination's blobs (no spool): a full disk
            // there leaves nothing either.
            let noisy = noisy_layout(tmp.path());
            for (transport, name) in [("oci", "l"), ("dir", "d"), ("oci-archive", "a.tar")] {
                let err = copy_fails(
                    &noisy,
                    &image_ref(transport, &small.join(name), ""),
                    &["--dest-compress-format", "zstd"],
                );
                assert!(err.contains("No space left"), "{transport} zstd: {err}");
                assert!(
                    fs::read_dir(&small).unwrap().next().is_none(),
                    "{transport} zstd left files"
                );
            }
            let _ = Command::new("umount").arg(&small).status();
        }
    }
}

/// A layout whose one layer is 256 KiB of noise (copied as it is: never decompressed for these
/// destinations).
fn big_layout(work: &Path) -> String {
    let layout = OciLayout::create(work.join("big"));
    let layer = layout.add_blob(
        strata_tests::OCI_LAYER_GZIP,
        &strata_fixtures::noise(256 << 10, 7),
    );
    let config = layout.add_json(
        OCI_CONFIG,
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}),
    );
    let manifest = layout.add_json(
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}),
    );
    layout.set_tag("big", &manifest);
    image_ref("oci", &layout.root, ":big")
}

/// A layout of one gzip layer holding 256 KiB of noise, for recompression.
fn noisy_layout(work: &Path) -> String {
    let mut layer = strata_fixtures::LayerBuilder::new();
    layer.file("noise", strata_fixtures::noise(256 << 10, 11));
    let dir = work.join("noisy");
    strata_fixtures::ImageBuilder::new()
        .layer(layer, strata_fixtures::Compression::Gzip)
        .write_layout(&dir, "noisy")
        .unwrap();
    image_ref("oci", &dir, ":noisy")
}

/// A chunked push whose `PATCH` is cut mid-chunk (the fault proxy drops the connection after part of the
/// body, the registry never sees it) is resumed: strata asks the upload's `Location` how much the registry
/// holds (`GET`, 204 `Range: 0-LAST`) and sends the chunk on from there. The copy completes, the blobs
/// check against their digests (skopeo reads them back), and the registry's log shows the status `GET`
/// and the resumed `PATCH`.
#[test]
fn a_chunked_upload_cut_mid_blob_is_resumed() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let layout_dir = base_image(tmp.path());
    let base = image_ref("oci", &layout_dir, ":base");
    let layout = OciLayout::open(&layout_dir);
    let manifest = layout.manifest("base");
    let biggest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        biggest > 3000,
        "the base image's biggest layer is {biggest} bytes"
    );
    // The biggest layer goes in three or four chunks; the second is cut after a few bytes.
    let chunk = biggest.div_ceil(3);
    let reg = Registry::start(Auth::Open);
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/blobs/uploads/",
            Fault::CutRequest {
                content_range: format!("{chunk}-"),
                after: 100,
                forward: false,
            },
            1,
        )],
    );
    let target = proxy.image("copy/chunked:v1");
    let report = copy_ok(
        &base,
        &target,
        &["--dest-upload-chunk-size", &chunk.to_string()],
    );
    assert!(report["blobs"].as_array().is_some_and(|b| !b.is_empty()));
    assert_eq!(raw(&reg.image("copy/chunked:v1")), raw(&base));

    // The cut PATCH and its resumption, as the proxy saw them, with the status GET between.
    let seen = proxy.seen();
    let second: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.head.method == "PATCH"
                && s.head
                    .header("content-range")
                    .is_some_and(|r| r.starts_with(&format!("{chunk}-")))
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(second.len(), 2, "the second chunk cut once, then resumed");
    assert!(
        seen[second[0]..second[1]]
            .iter()
            .any(|s| s.head.method == "GET" && s.head.target.contains("/blobs/uploads/")),
        "the upload's status was asked before resuming"
    );
    // The registry never saw the cut request; it answered the status GET (204) and took every chunk.
    let served = reg.served();
    assert!(
        served
            .iter()
            .any(|s| s.method == "GET" && s.uri.contains("/blobs/uploads/") && s.status == 204),
        "the registry's log shows the upload status asked"
    );
    let patches = served
        .iter()
        .filter(|s| s.method == "PATCH" && s.status == 202)
        .count();
    assert!(patches >= 3, "{patches} chunks taken");

    // skopeo reads the image back, checking every blob's digest; the layer is byte for byte the source's.
    let back = tmp.path().join("back");
    skopeo_ok([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &reg.image("copy/chunked:v1"),
        &format!("dir:{}", back.display()),
    ]);
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let hex = digest.trim_start_matches("sha256:");
        assert_eq!(
            fs::read(back.join(hex)).unwrap(),
            fs::read(layout.blob_path(digest)).unwrap(),
            "layer {digest}"
        );
    }
}

/// A chunked push whose `PATCH` reached the registry in part: Distribution 2.8 then holds more than the
/// upload's `Location` says and cancels the upload when asked with it, so the chunk cannot be resumed; strata
/// falls back to uploading the blob again from its source (a new upload), and the copy completes.
#[test]
fn a_chunk_the_registry_took_in_part_falls_back_to_a_new_upload() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let layout_dir = base_image(tmp.path());
    let base = image_ref("oci", &layout_dir, ":base");
    let manifest = OciLayout::open(&layout_dir).manifest("base");
    let biggest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .max()
        .unwrap();
    let chunk = biggest.div_ceil(3);
    let reg = Registry::start(Auth::Open);
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/blobs/uploads/",
            Fault::CutRequest {
                content_range: format!("{chunk}-"),
                after: 100,
                forward: true,
            },
            1,
        )],
    );
    let target = proxy.image("copy/partial:v1");
    copy_ok(
        &base,
        &target,
        &["--dest-upload-chunk-size", &chunk.to_string()],
    );
    assert_eq!(raw(&reg.image("copy/partial:v1")), raw(&base));
    let seen = proxy.seen();
    let second_chunks = seen
        .iter()
        .filter(|s| {
            s.head.method == "PATCH"
                && s.head
                    .header("content-range")
                    .is_some_and(|r| r.starts_with(&format!("{chunk}-")))
        })
        .count();
    assert_eq!(
        second_chunks, 2,
        "the cut chunk, then the same chunk of a new upload"
    );
    let served = reg.served();
    assert!(
        served
            .iter()
            .any(|s| s.method == "GET" && s.uri.contains("/blobs/uploads/") && s.status != 204),
        "the stale upload's status was refused: {:?}",
        served
            .iter()
            .filter(|s| s.uri.contains("/blobs/uploads/"))
            .map(|s| (s.method.clone(), s.status))
            .collect::<Vec<_>>()
    );
}

/// A registry that goes away in the middle of a push (killed while blobs are being uploaded) leaves no tag:
/// the manifest is pushed last, and never was.
#[test]
fn a_registry_down_mid_push_leaves_no_tag() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = image_ref("oci", &base_image(tmp.path()), ":base");
    let mut reg = Registry::start(Auth::Open);
    // Every upload request waits a second on its way, so the registry dies with uploads in flight.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/blobs/uploads/",
            Fault::Delay(std::time::Duration::from_secs(1)),
            usize::MAX,
        )],
    );
    let target = proxy.image("copy/down:v1");
    let auth = authfile();
    let child = Command::new(strata_tests::strata_bin())
        .args([
            "copy",
            "--quiet",
            "--authfile",
            &auth,
            TLS_OFF,
            "--retry-times",
            "1",
            &base,
            &target,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    reg.stop();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "the copy succeeded with its registry down"
    );
    reg.resume();
    assert!(
        !skopeo_sees(&reg.image("copy/down:v1")),
        "a tag was left behind"
    );
}
