//! `strata copy` conversions against the real peers: skopeo 1.9.3, podman 4.3, umoci 0.4.7, gpg and Debian's
//! `docker-registry`.
//!
//! Covered: a Docker v2s2 image to `oci:` (converted without being asked, as skopeo does) with the manifest,
//! config and `index.json` byte-equal to skopeo's own conversion; `--format v2s2` of an OCI image to `dir:`
//! and `docker://`, byte-equal to skopeo's; both read by `skopeo inspect`, pulled by `podman pull`, and
//! unpacked by umoci to the original's tree; gzip → zstd → gzip recompression with the diff IDs (and so the
//! config) unchanged, every layer's tar checked against its diff ID, pulled by podman, the same tree; zstd
//! pushed to a registry turns a v2s2 image into OCI (as containers/image must: v2s2 has no zstd type);
//! `--all` of an index to a Docker list and back to an OCI index, byte-equal to skopeo's, and recompressed
//! with the index naming the rewritten instances;
//! `--dest-compress-format zstd:chunked` and `estargz` pushed to a registry and read lazily by `strata cat`
//! and `strata index` (a small part of the blobs fetched; zstd:chunked's tar, and so the diff IDs,
//! unchanged and its tar-split strata-store's; eStargz's diff IDs rewritten, each layer checked against
//! them; the tree umoci unpacks the original's; podman 4.3 pulls strata's eStargz partially, through its
//! table, to the tree it makes of ctr-remote's eStargz of the same image); a signed source refused ("Would invalidate signatures") unless `--remove-signatures`, and `--sign-by`
//! signing the converted manifest (checked by `skopeo standalone-verify`).
//!
//! Where strata differs from skopeo, on purpose: skopeo 1.9.3 ignores `--dest-compress-format` for a `dir:`
//! destination (which it writes as stored) and gzips uncompressed layers on the way to `oci:` and
//! `docker://` unasked; strata recompresses wherever asked and never unasked. Recompressed blobs differ from
//! skopeo's in their bytes (another gzip and zstd encoder), never in their tars.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use strata_tests::registry::{Auth, Env, Registry};
use strata_tests::rich::{RichImage, rich_image, umoci_unpack};
use strata_tests::signing::Gpg;
use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{
    base_image, image_ref, parse_json, require_tool, run_unchecked, sha256_digest, skopeo_ok,
    strata, strata_ok,
};
use tempfile::TempDir;

const TLS_OFF: &str = "--dest-tls-verify=false";
const SRC_TLS_OFF: &str = "--src-tls-verify=false";

fn peers() -> bool {
    require_tool("skopeo") & require_tool("umoci") & require_tool("docker-registry")
}

/// A temporary directory with a lower-case name (podman names an `oci:` image after its path, and refuses
/// upper case).
fn tempdir() -> TempDir {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    tempfile::Builder::new()
        .prefix(&format!(
            "strata-convert-{}-{n}-{nanos}",
            std::process::id()
        ))
        .rand_bytes(0)
        .tempdir()
        .expect("tempdir")
}

fn authfile(work: &Path) -> String {
    let path = work.join("auth.json");
    if !path.exists() {
        fs::write(&path, br#"{"auths":{}}"#).unwrap();
    }
    path.display().to_string()
}

fn copy_ok(work: &Path, src: &str, dst: &str, extra: &[&str]) -> Value {
    let auth = authfile(work);
    let mut args = vec!["copy", "--json", "--authfile", &auth, TLS_OFF, SRC_TLS_OFF];
    args.extend_from_slice(extra);
    args.extend([src, dst]);
    parse_json(&strata_ok(&args), &format!("copy {src} {dst}"))
}

fn raw(image: &str) -> Vec<u8> {
    skopeo_ok(["inspect", "--raw", "--tls-verify=false", image])
}

fn raw_config(image: &str) -> Vec<u8> {
    skopeo_ok(["inspect", "--raw", "--config", "--tls-verify=false", image])
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
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

/// `podman pull` of `image` with partial pulls enabled (`enable_partial_images` in a storage.conf of its
/// own, the overlay driver: as root only), then `podman image mount`: whether podman fetched a layer
/// partially (its debug log's "Retrieved partial blob"), and the tree it mounted. `None` without podman or
/// root.
fn podman_partial_pull(
    image: &str,
    work: &Path,
) -> Option<(bool, BTreeMap<String, strata_tests::tree::Node>)> {
    if !require_tool("podman") || !strata_tests::is_root() {
        return None;
    }
    let dir = work.join("podman-partial");
    fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("storage.conf");
    fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n\
             [storage.options]\npull_options = {{enable_partial_images = \"true\", \
             use_hard_links = \"false\", ostree_repos = \"\"}}\n",
            dir.join("run").display(),
            dir.join("root").display()
        ),
    )
    .unwrap();
    let name = image.strip_prefix("docker://").unwrap_or(image);
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_STORAGE_CONF", &conf)
            .args(["--events-backend", "none"])
            .args(args);
        run_unchecked(&mut c)
    };
    let pulled = podman(&["--log-level=debug", "pull", "--tls-verify=false", name]);
    assert!(
        pulled.status.success(),
        "podman pull {name}: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let partial = String::from_utf8_lossy(&pulled.stderr).contains("Retrieved partial blob");
    let mounted = podman(&["image", "mount", name]);
    assert!(mounted.status.success(), "podman image mount {name}");
    let root = String::from_utf8_lossy(&mounted.stdout).trim().to_owned();
    let tree = listing(Path::new(&root));
    podman(&["image", "umount", name]);
    podman(&["rmi", "-a", "-f"]);
    Some((partial, tree))
}

/// The tree `umoci unpack` makes of `image`; an image umoci 0.4.7 cannot read (not in an OCI layout, or
/// with zstd layers) is first copied by skopeo to an OCI layout with gzip layers (the same tars).
fn unpacked(image: &str, work: &Path, name: &str) -> BTreeMap<String, strata_tests::tree::Node> {
    let zstd = layer_types(&json(&raw(image)))
        .iter()
        .any(|t| t.ends_with("zstd"));
    let umoci_ref = match image.strip_prefix("oci:").filter(|_| !zstd) {
        Some(rest) => rest.to_owned(),
        None => {
            let layout = work.join(format!("{name}-layout"));
            skopeo_ok([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-compress",
                "--dest-compress-format",
                "gzip",
                image,
                &image_ref("oci", &layout, ":u"),
            ]);
            format!("{}:u", layout.display())
        }
    };
    listing(&umoci_unpack(
        &umoci_ref,
        &work.join(format!("{name}-bundle")),
    ))
}

/// A source image of a test: its `oci:` name, its tree as `umoci unpack` makes it, and whether podman
/// can pull it (podman 4.3's vfs driver cannot apply the rich image's directory-to-file change).
struct Case {
    name: &'static str,
    oci: String,
    tree: BTreeMap<String, strata_tests::tree::Node>,
    podman: bool,
}

/// The base image (a config with labels, entrypoint, ports, volumes; gzip layers) and the rich image
/// (three umoci layers of every kind of entry, gzip), each in its own directory under `work`.
fn cases(work: &Path) -> Vec<Case> {
    let base_dir = work.join("case-base");
    fs::create_dir_all(&base_dir).unwrap();
    let base = base_image(&base_dir);
    let base_tree = listing(&umoci_unpack(
        &format!("{}:base", base.display()),
        &base_dir.join("original"),
    ));
    let rich_dir = work.join("case-rich");
    fs::create_dir_all(&rich_dir).unwrap();
    let rich: RichImage = rich_image(&rich_dir, 2 << 20);
    let rich_tree = listing(&umoci_unpack(&rich.image, &rich_dir.join("original")));
    vec![
        Case {
            name: "base",
            oci: image_ref("oci", &base, ":base"),
            tree: base_tree,
            podman: true,
        },
        Case {
            name: "rich",
            oci: rich.oci(),
            tree: rich_tree,
            podman: false,
        },
    ]
}

impl Case {
    /// `podman pull`, where podman can.
    fn pulls(&self, image: &str) {
        if self.podman {
            podman_pulls(image);
        }
    }

    /// A directory of the case's own under `work`.
    fn dir(&self, work: &Path, name: &str) -> std::path::PathBuf {
        let dir = work.join(self.name);
        fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }
}

/// Every layer blob of an image in `dir:` or an OCI layout, decompressed as its media type says, hashes to
/// the config's diff ID.
fn check_diff_ids(manifest: &Value, blob: impl Fn(&str) -> Vec<u8>) {
    let config = json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), diff_ids.len());
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let bytes = blob(layer["digest"].as_str().unwrap());
        assert_eq!(sha256_digest(&bytes), layer["digest"].as_str().unwrap());
        assert_eq!(bytes.len() as u64, layer["size"].as_u64().unwrap());
        let media_type = layer["mediaType"].as_str().unwrap();
        let mut tar = Vec::new();
        if media_type.ends_with("zstd") {
            zstd::stream::read::Decoder::new(&bytes[..])
                .unwrap()
                .read_to_end(&mut tar)
                .unwrap();
        } else if media_type.ends_with("gzip") {
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut tar)
                .unwrap();
        } else {
            tar = bytes;
        }
        assert_eq!(
            sha256_digest(&tar),
            diff_id.as_str().unwrap(),
            "layer {}",
            layer["digest"]
        );
    }
}

fn layout_blob(layout: &Path) -> impl Fn(&str) -> Vec<u8> + '_ {
    move |digest: &str| {
        fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    }
}

fn layer_types(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_v2s2_image_to_oci_is_converted_as_skopeo_converts_it() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    for case in cases(work) {
        let own = work.join(case.name);
        // A Docker v2s2 image with gzip layers, as skopeo writes one.
        let v2s2 = image_ref("dir", &case.dir(work, "v2s2"), "");
        skopeo_ok(["copy", "--quiet", "--format", "v2s2", &case.oci, &v2s2]);
        assert_eq!(
            json(&raw(&v2s2))["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );

        // To oci: without asking (an OCI layout holds OCI manifests only), as skopeo does.
        let strata_oci = image_ref("oci", &case.dir(work, "strata-oci"), ":v1");
        let skopeo_oci = image_ref("oci", &case.dir(work, "skopeo-oci"), ":v1");
        copy_ok(work, &v2s2, &strata_oci, &[]);
        skopeo_ok(["copy", "--quiet", &v2s2, &skopeo_oci]);
        assert_eq!(
            raw(&strata_oci),
            raw(&skopeo_oci),
            "{}: the OCI manifest",
            case.name
        );
        assert_eq!(
            raw_config(&strata_oci),
            raw_config(&skopeo_oci),
            "{}: the OCI config",
            case.name
        );
        for file in ["index.json", "oci-layout"] {
            assert_eq!(
                fs::read(own.join("strata-oci").join(file)).unwrap(),
                fs::read(own.join("skopeo-oci").join(file)).unwrap(),
                "{}: {file}",
                case.name
            );
        }
        let listed = |dir: &str| -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(own.join(dir).join("blobs/sha256"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(listed("strata-oci"), listed("skopeo-oci"), "the same blobs");
        skopeo_ok(["inspect", &strata_oci]);
        case.pulls(&strata_oci);
        assert_same_tree(
            &case.tree,
            &unpacked(&strata_oci, &own, "strata-oci"),
            &format!("{}: umoci unpack of the converted image", case.name),
        );

        // --format oci asks for the same conversion to any destination.
        let strata_dir = image_ref("dir", &case.dir(work, "strata-oci-dir"), "");
        copy_ok(work, &v2s2, &strata_dir, &["--format", "oci"]);
        assert_eq!(raw(&strata_dir), raw(&skopeo_oci));
    }
}

#[test]
fn an_oci_image_to_v2s2_is_converted_as_skopeo_converts_it() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    let reg = Registry::start(Auth::Open);
    for case in cases(work) {
        let own = work.join(case.name);
        let strata_dir = image_ref("dir", &case.dir(work, "strata-v2s2"), "");
        let skopeo_dir = image_ref("dir", &case.dir(work, "skopeo-v2s2"), "");
        copy_ok(work, &case.oci, &strata_dir, &["--format", "v2s2"]);
        skopeo_ok([
            "copy",
            "--quiet",
            "--format",
            "v2s2",
            &case.oci,
            &skopeo_dir,
        ]);
        let manifest = raw(&strata_dir);
        assert_eq!(
            manifest,
            raw(&skopeo_dir),
            "{}: the v2s2 manifest",
            case.name
        );
        assert_eq!(
            json(&manifest)["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        // The config is kept as it is (only its media type in the manifest changes).
        assert_eq!(raw_config(&strata_dir), raw_config(&case.oci));
        skopeo_ok(["inspect", &strata_dir]);
        case.pulls(&strata_dir);
        assert_same_tree(
            &case.tree,
            &unpacked(&strata_dir, &own, "strata-v2s2"),
            &format!("{}: the v2s2 image's tree", case.name),
        );

        // Pushed to a registry: the same bytes skopeo pushes.
        let pushed = reg.image(&format!("convert/{}:strata", case.name));
        let by_skopeo = reg.image(&format!("convert/{}:skopeo", case.name));
        copy_ok(work, &case.oci, &pushed, &["--format", "v2s2"]);
        skopeo_ok([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            &case.oci,
            &by_skopeo,
        ]);
        assert_eq!(raw(&pushed), raw(&by_skopeo), "the pushed v2s2 manifest");
        case.pulls(&pushed);

        // And back to OCI: the config re-encoded as containers/image encodes it, as skopeo would.
        let back = image_ref("oci", &case.dir(work, "back"), ":v1");
        let skopeo_back = image_ref("oci", &case.dir(work, "skopeo-back"), ":v1");
        copy_ok(work, &pushed, &back, &[]);
        skopeo_ok([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &pushed,
            &skopeo_back,
        ]);
        assert_eq!(raw(&back), raw(&skopeo_back));
        assert_eq!(raw_config(&back), raw_config(&skopeo_back));
    }
}

#[test]
fn recompression_keeps_the_diff_ids() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    for case in cases(work) {
        let own = work.join(case.name);
        let source = json(&raw(&case.oci));

        // gzip → zstd.
        let zstd = image_ref("oci", &case.dir(work, "zstd"), ":v1");
        let report = copy_ok(
            work,
            &case.oci,
            &zstd,
            &[
                "--dest-compress-format",
                "zstd",
                "--dest-compress-level",
                "5",
            ],
        );
        let manifest = json(&raw(&zstd));
        assert!(
            layer_types(&manifest)
                .iter()
                .all(|t| t == "application/vnd.oci.image.layer.v1.tar+zstd"),
            "{manifest}"
        );
        // The diff IDs do not change, so neither does the config.
        assert_eq!(manifest["config"], source["config"]);
        check_diff_ids(&manifest, layout_blob(&own.join("zstd")));
        for blob in report["blobs"].as_array().unwrap() {
            if blob["digest"] != source["config"]["digest"] {
                assert!(blob["stored_as"].is_string(), "{blob}");
            }
        }
        skopeo_ok(["inspect", &zstd]);
        case.pulls(&zstd);
        assert_same_tree(
            &case.tree,
            &unpacked(&zstd, &own, "zstd"),
            &format!("{}: the zstd image's tree", case.name),
        );

        // zstd → gzip, into dir:.
        let gzip = image_ref("dir", &case.dir(work, "gzip"), "");
        copy_ok(work, &zstd, &gzip, &["--dest-compress-format", "gzip"]);
        let manifest = json(&raw(&gzip));
        assert!(
            layer_types(&manifest)
                .iter()
                .all(|t| t == "application/vnd.oci.image.layer.v1.tar+gzip"),
            "{manifest}"
        );
        assert_eq!(manifest["config"], source["config"]);
        check_diff_ids(&manifest, |d: &str| {
            fs::read(own.join("gzip").join(d.trim_start_matches("sha256:"))).unwrap()
        });
        case.pulls(&gzip);
        assert_same_tree(
            &case.tree,
            &unpacked(&gzip, &own, "gzip"),
            &format!("{}: the gzip image's tree", case.name),
        );

        // Already gzip: kept as it is, byte for byte.
        let same = image_ref("dir", &case.dir(work, "same"), "");
        copy_ok(work, &case.oci, &same, &["--dest-compress-format", "gzip"]);
        assert_eq!(raw(&same), raw(&case.oci));
    }
}

#[test]
fn zstd_to_a_registry_makes_a_v2s2_image_oci() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    let reg = Registry::start(Auth::Open);
    for case in cases(work) {
        let own = work.join(case.name);
        let v2s2 = image_ref("dir", &case.dir(work, "v2s2"), "");
        skopeo_ok(["copy", "--quiet", "--format", "v2s2", &case.oci, &v2s2]);
        let pushed = reg.image(&format!("convert/zstd-{}:v1", case.name));
        copy_ok(work, &v2s2, &pushed, &["--dest-compress-format", "zstd"]);
        let manifest = json(&raw(&pushed));
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert!(
            layer_types(&manifest)
                .iter()
                .all(|t| t == "application/vnd.oci.image.layer.v1.tar+zstd")
        );
        // The config converted as skopeo converts it.
        let skopeo_oci = image_ref("oci", &case.dir(work, "skopeo-oci"), ":v1");
        skopeo_ok(["copy", "--quiet", &v2s2, &skopeo_oci]);
        assert_eq!(raw_config(&pushed), raw_config(&skopeo_oci));
        case.pulls(&pushed);
        assert_same_tree(
            &case.tree,
            &unpacked(&pushed, &own, "pushed"),
            &format!("{}: the pushed tree", case.name),
        );

        // eStargz is gzip, but its table is found through layer annotations, which v2s2 has not: OCI too.
        let estargz = reg.image(&format!("convert/estargz-{}:v1", case.name));
        copy_ok(
            work,
            &v2s2,
            &estargz,
            &["--dest-compress-format", "estargz"],
        );
        let manifest = json(&raw(&estargz));
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        case.pulls(&estargz);

        // v2s2 has no zstd layer type: asking for both fails, with nothing written.
        let auth = authfile(work);
        let never = case.dir(work, "never");
        let out = strata([
            "copy",
            "--authfile",
            &auth,
            "--format",
            "v2s2",
            "--dest-compress-format",
            "zstd",
            &v2s2,
            &image_ref("dir", &never, ""),
        ]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("zstd compression is not supported"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!never.exists());
    }
}

#[test]
fn a_conversion_would_invalidate_signatures() {
    if !(peers() && require_tool("gpg")) {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    let mut env = Env::new();
    let gpg = Gpg::new(&work.join("gnupg"));
    env.set("GNUPGHOME", gpg.home().display().to_string());
    let fpr = gpg.gen_key("Conv <conv@example.com>", "rsa2048", "sign", "never", None);
    let layout = base_image(work);
    let signed = image_ref("dir", &work.join("signed"), "");
    let identity = "example.com/convert/signed:v1";
    let policy = ["--insecure-policy"];
    let copy = |extra: &[&str], src: &str, dst: &str| {
        let mut args: Vec<&str> = vec!["copy", "-q"];
        args.extend_from_slice(&policy);
        args.extend_from_slice(extra);
        args.extend([src, dst]);
        env.strata(&args)
    };
    let out = copy(
        &["--sign-by", &fpr, "--sign-identity", identity],
        &image_ref("oci", &layout, ":base"),
        &signed,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(work.join("signed/signature-1").exists());

    // Converting would leave the signature signing nothing: refused, nothing written.
    let dest = image_ref("dir", &work.join("converted"), "");
    let out = copy(&["--format", "v2s2"], &signed, &dest);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Would invalidate signatures"), "{err}");
    assert!(!work.join("converted").exists());
    let out = copy(&["--dest-compress-format", "zstd"], &signed, &dest);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Would invalidate signatures"));

    // Without them it goes; signed anew, the new signature signs the converted manifest.
    let out = copy(
        &[
            "--format",
            "v2s2",
            "--remove-signatures",
            "--sign-by",
            &fpr,
            "--sign-identity",
            identity,
        ],
        &signed,
        &dest,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = work.join("converted/manifest.json");
    assert_eq!(
        json(&fs::read(&manifest).unwrap())["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert!(!work.join("converted/signature-2").exists());
    env.skopeo_ok(&[
        "standalone-verify",
        manifest.to_str().unwrap(),
        identity,
        &fpr,
        work.join("converted/signature-1").to_str().unwrap(),
    ]);
}

#[test]
fn options_say_what_they_take() {
    for (args, message) in [
        (
            vec!["--format", "v2s1"],
            "schema 1 manifests are not written",
        ),
        (vec!["--format", "docker"], "unknown manifest type"),
        (
            vec!["--dest-compress-format", "bzip2"],
            "unknown compression",
        ),
        (
            vec!["--dest-compress-level", "3"],
            "needs --dest-compress-format",
        ),
        (
            vec![
                "--dest-compress-format",
                "gzip",
                "--dest-compress-level",
                "12",
            ],
            "out of 0..=9",
        ),
        (
            vec!["--dest-compress-format", "zstd", "--preserve-digests"],
            "would change digests",
        ),
    ] {
        let mut all = vec!["copy"];
        all.extend(args.iter().copied());
        all.extend(["oci:/nonexistent:x", "dir:/nonexistent/x"]);
        let out = strata(&all);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// A two-platform OCI index over the base image's manifest (amd64, and arm64/v8 with `os.features`),
/// with annotations a Docker list cannot keep, tagged `multi` in the base image's layout.
fn multi_arch(work: &Path) -> String {
    let layout = base_image(work);
    let index_path = layout.join("index.json");
    let top = json(&fs::read(&index_path).unwrap());
    let base = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "base")
        .unwrap()
        .clone();
    let entry = |platform: Value, annotations: Option<Value>| {
        let mut e = serde_json::json!({
            "mediaType": base["mediaType"],
            "digest": base["digest"],
            "size": base["size"],
            "platform": platform,
        });
        if let Some(a) = annotations {
            e["annotations"] = a;
        }
        e
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            entry(serde_json::json!({"architecture": "amd64", "os": "linux"}), Some(serde_json::json!({"k": "v"}))),
            entry(serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8", "os.features": ["f"]}), None),
        ],
        "annotations": {"top": "1"},
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = sha256_digest(&bytes);
    fs::write(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
        &bytes,
    )
    .unwrap();
    let mut top = top;
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    fs::write(&index_path, serde_json::to_vec(&top).unwrap()).unwrap();
    image_ref("oci", &layout, ":multi")
}

/// The files of a `dir:` image, by name.
fn dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn an_index_is_converted_with_its_instances() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    let multi = multi_arch(work);

    // --all --format v2s2: a Docker manifest list over v2s2 instances, skopeo's bytes.
    let strata_list = work.join("strata-list");
    let skopeo_list = work.join("skopeo-list");
    copy_ok(
        work,
        &multi,
        &image_ref("dir", &strata_list, ""),
        &["--all", "--format", "v2s2"],
    );
    skopeo_ok([
        "copy",
        "--quiet",
        "--all",
        "--format",
        "v2s2",
        &multi,
        &image_ref("dir", &skopeo_list, ""),
    ]);
    assert_eq!(
        dir_files(&strata_list),
        dir_files(&skopeo_list),
        "the dir: of a list"
    );
    assert_eq!(
        json(&fs::read(strata_list.join("manifest.json")).unwrap())["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );

    // Back to oci: with --all: the list becomes an OCI index without being asked, as skopeo makes it.
    let strata_oci = work.join("strata-index");
    let skopeo_oci = work.join("skopeo-index");
    copy_ok(
        work,
        &image_ref("dir", &strata_list, ""),
        &image_ref("oci", &strata_oci, ":m"),
        &["--all"],
    );
    skopeo_ok([
        "copy",
        "--quiet",
        "--all",
        &image_ref("dir", &skopeo_list, ""),
        &image_ref("oci", &skopeo_oci, ":m"),
    ]);
    assert_eq!(
        fs::read(strata_oci.join("index.json")).unwrap(),
        fs::read(skopeo_oci.join("index.json")).unwrap()
    );
    assert_eq!(
        dir_files(&strata_oci.join("blobs/sha256")),
        dir_files(&skopeo_oci.join("blobs/sha256"))
    );

    // Pushed as a list, pulled by podman.
    let reg = Registry::start(Auth::Open);
    let pushed = reg.image("convert/list:v1");
    let by_skopeo = reg.image("convert/list:skopeo");
    copy_ok(work, &multi, &pushed, &["--all", "--format", "v2s2"]);
    skopeo_ok([
        "copy",
        "--quiet",
        "--all",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &multi,
        &by_skopeo,
    ]);
    assert_eq!(raw(&pushed), raw(&by_skopeo));
    podman_pulls(&pushed);

    // Recompressed with --all: the index names the instances as rewritten, and keeps its annotations.
    let zstd = work.join("zstd-index");
    let zstd_ref = image_ref("oci", &zstd, ":m");
    copy_ok(
        work,
        &multi,
        &zstd_ref,
        &["--all", "--dest-compress-format", "zstd"],
    );
    let index = json(&raw(&zstd_ref));
    assert_eq!(index["annotations"]["top"], "1");
    assert_eq!(index["manifests"][0]["annotations"]["k"], "v");
    for instance in index["manifests"].as_array().unwrap() {
        let digest = instance["digest"].as_str().unwrap();
        let bytes = layout_blob(&zstd)(digest);
        assert_eq!(sha256_digest(&bytes), digest);
        assert_eq!(bytes.len() as u64, instance["size"].as_u64().unwrap());
        let manifest = json(&bytes);
        assert!(layer_types(&manifest).iter().all(|t| t.ends_with("+zstd")));
        check_diff_ids(&manifest, layout_blob(&zstd));
    }
    podman_pulls(&zstd_ref);
}

#[test]
fn zstd_chunked_and_estargz_images_are_read_lazily() {
    if !(peers() && require_tool("fusermount3")) {
        return;
    }
    let tmp = tempdir();
    let work = tmp.path();
    let layout = strata_tests::lazy::varied_image(&work.join("varied"), "v");
    let source = image_ref("oci", &layout, ":v");
    let original = listing(&umoci_unpack(
        &format!("{}:v", layout.display()),
        &work.join("original"),
    ));
    let source_manifest = json(&raw(&source));
    let reg = Registry::start(Auth::Open);
    for (format, media_type, keys) in [
        (
            "zstd:chunked",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            &[
                "io.github.containers.zstd-chunked.manifest-checksum",
                "io.github.containers.zstd-chunked.manifest-position",
                "io.github.containers.zstd-chunked.tarsplit-position",
            ][..],
        ),
        (
            "estargz",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &[
                "containerd.io/snapshot/stargz/toc.digest",
                "io.containers.estargz.uncompressed-size",
            ][..],
        ),
    ] {
        let name = format.replace(':', "-");
        let own = work.join(&name);
        fs::create_dir_all(&own).unwrap();
        let pushed = reg.image(&format!("convert/{name}:v1"));
        copy_ok(work, &source, &pushed, &["--dest-compress-format", format]);
        let manifest = json(&raw(&pushed));
        let mut size = 0;
        for layer in manifest["layers"].as_array().unwrap() {
            assert_eq!(layer["mediaType"], media_type);
            for key in keys {
                assert!(layer["annotations"][key].is_string(), "{key}: {layer}");
            }
            size += layer["size"].as_u64().unwrap();
        }
        if format == "zstd:chunked" {
            // The tar is kept byte for byte: the config, with its diff IDs, is the source's.
            assert_eq!(manifest["config"], source_manifest["config"]);
        } else {
            // eStargz adds the landmark and the table to each tar: new diff IDs, a new config.
            assert_ne!(manifest["config"], source_manifest["config"]);
        }
        let local = image_ref("oci", &own.join("copied"), ":v1");
        copy_ok(work, &pushed, &local, &[]);
        let copied = json(&raw(&local));
        check_diff_ids(&copied, layout_blob(&own.join("copied")));
        if format == "zstd:chunked" {
            // Each layer's tar-split is the one strata-store writes for the store (as podman's).
            for layer in copied["layers"].as_array().unwrap() {
                let blob = layout_blob(&own.join("copied"))(layer["digest"].as_str().unwrap());
                let position =
                    layer["annotations"]["io.github.containers.zstd-chunked.tarsplit-position"]
                        .as_str()
                        .unwrap();
                let fields: Vec<usize> = position.split(':').map(|f| f.parse().unwrap()).collect();
                let split =
                    zstd::stream::decode_all(&blob[fields[0]..fields[0] + fields[1]]).unwrap();
                assert_eq!(split.len(), fields[2]);
                let tar = zstd::stream::decode_all(&blob[..]).unwrap();
                let mut writer = strata_store::tarsplit::TarSplitWriter::new(Vec::new());
                std::io::Write::write_all(&mut writer, &tar).unwrap();
                let (expected, _) = writer.finish().unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&split),
                    String::from_utf8_lossy(&expected),
                    "the tar-split of {}",
                    layer["digest"]
                );
            }
        }

        // Read from its tables of contents: a small file costs a small part of the blobs.
        let cache_flag = format!("--cache-dir={}", own.join("cache").display());
        let index = parse_json(
            &strata_ok([
                "index",
                "--json",
                "--tls-verify=false",
                &cache_flag,
                &pushed,
            ]),
            "strata index --json",
        );
        for layer in index["layers"].as_array().unwrap() {
            assert_eq!(layer["read"], "toc", "{format}: {layer}");
        }
        let before = reg.blob_bytes_written();
        let out = strata_ok([
            "cat",
            "--tls-verify=false",
            &cache_flag,
            &pushed,
            "/etc/os-release",
        ]);
        let fetched = reg.blob_bytes_written() - before;
        assert_eq!(out, strata_tests::lazy::OS_RELEASE.as_bytes());
        assert!(
            fetched * 20 <= size,
            "{format}: cat /etc/os-release fetched {fetched} of {size} bytes (over 5 %)"
        );
        let large = strata_ok([
            "cat",
            "--tls-verify=false",
            &cache_flag,
            &pushed,
            "/usr/lib/large.bin",
        ]);
        assert_eq!(
            large,
            fs::read(work.join("original/rootfs/usr/lib/large.bin")).unwrap()
        );
        // The whole tree is the original's (eStargz's own entries aside: they are files in its tar).
        let mut tree = unpacked(&pushed, &own, "unpacked");
        tree.remove(".no.prefetch.landmark");
        tree.remove("stargz.index.json");
        assert_same_tree(&original, &tree, &format!("the {format} tree"));
        podman_pulls(&pushed);
        // podman 4.3 (containers/storage 1.43) pulls an eStargz layer partially, through its table, to
        // the original's tree; it knows only the older zstd:chunked keys, so strata's zstd:chunked layers
        // are plain zstd to it.
        if let Some((partial, tree)) = podman_partial_pull(&pushed, &own) {
            assert_eq!(partial, format == "estargz", "{format}: a partial pull");
            if !partial {
                assert_same_tree(&original, &tree, &format!("podman's {format} tree"));
                continue;
            }
            // containers/storage 1.43's partial pull skips fifos and leaves a file owned by 1000 to
            // root: stargz-snapshotter's own eStargz (ctr-remote's) of the same image comes out the same.
            let mut expected = original.clone();
            expected.remove("srv/fifo");
            if let Some(owned) = expected.get_mut("srv/data/owned") {
                owned.uid = 0;
                owned.gid = 0;
            }
            assert_same_tree(&expected, &tree, &format!("podman's partial {format} tree"));
            if strata_tests::lazy::lazy_peers() {
                let ctr =
                    strata_tests::lazy::estargz_image(&layout, "v", &work.join("ctr-estargz"));
                reg.push(&image_ref("oci", &ctr, ":v"), "convert/ctr-estargz:v1", &[]);
                let (ctr_partial, ctr_tree) = podman_partial_pull(
                    &reg.image("convert/ctr-estargz:v1"),
                    &work.join("ctr-estargz-pull"),
                )
                .unwrap();
                assert!(ctr_partial, "ctr-remote's eStargz: a partial pull");
                assert_same_tree(
                    &ctr_tree,
                    &tree,
                    "podman's partial trees of ctr-remote's and strata's eStargz",
                );
            }
        }
    }
}
