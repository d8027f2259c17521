//! Bad and hostile input: `strata inspect` must answer with one line on stderr and exit code 1,
//! never panic, never hang, never read outside the image it was given.
//!
//! Every layout and archive here is written by hand (no peers needed), starting from a small
//! valid image; a sanity test checks strata accepts the valid one, so the failures below are
//! about the damage, not the base.

// Test code: helpers outside #[test] functions panic on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strata_tests::{
    OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, OciLayout, assert_clean_error, host_arch, image_ref,
    json_bytes, parse_json, run_with_timeout, sha256_digest, show_output, strata, strata_bin,
    strata_ok,
};
use tempfile::TempDir;

/// Media type of an uncompressed OCI layer.
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Bytes of a content line of `/etc/passwd` that must never reach our stdout.
const PASSWD_MARKER: &str = "root:";

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("strata-hostile-")
        .tempdir()
        .expect("creating a tempdir")
}

/// A tiny uncompressed layer tarball with one file.
fn layer_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let data = b"hello\n";
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder
        .append_data(&mut header, "hello.txt", &data[..])
        .expect("appending to layer");
    builder.into_inner().expect("finishing layer")
}

fn config_json(layer: &[u8]) -> Value {
    json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": host_arch(),
        "os": "linux",
        "config": {"Env": ["A=b"], "Labels": {"k": "v"}},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "hand"}]
    })
}

/// A valid image in a new layout at `root`, tagged `good`.
struct Good {
    layout: OciLayout,
    manifest: Value,
    manifest_desc: Value,
    config: Vec<u8>,
    config_desc: Value,
    layer_desc: Value,
}

impl Good {
    fn new(root: &Path) -> Self {
        let layout = OciLayout::create(root);
        let layer = layer_tar();
        let layer_desc = layout.add_blob(OCI_LAYER_TAR, &layer);
        let config = json_bytes(&config_json(&layer));
        let config_desc = layout.add_blob(OCI_CONFIG, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc,
            "layers": [layer_desc]
        });
        let manifest_desc = layout.add_json(OCI_MANIFEST, &manifest);
        layout.set_tag("good", &manifest_desc);
        Good {
            layout,
            manifest,
            manifest_desc,
            config,
            config_desc,
            layer_desc,
        }
    }

    fn reference(&self, tag: &str) -> String {
        image_ref("oci", &self.layout.root, &format!(":{tag}"))
    }

    /// Adds `manifest` as a blob and tags it.
    fn tag_manifest(&self, tag: &str, manifest: &Value) {
        let desc = self.layout.add_json(OCI_MANIFEST, manifest);
        self.layout.set_tag(tag, &desc);
    }
}

fn digest_str(descriptor: &Value) -> &str {
    descriptor["digest"].as_str().expect("descriptor digest")
}

/// `strata inspect [mode…] reference` must fail cleanly.
fn rejects(what: &str, mode: &[&str], reference: &str) -> Output {
    let mut args = vec!["inspect"];
    args.extend_from_slice(mode);
    args.push(reference);
    let output = strata(&args);
    assert_clean_error(&output, &format!("{what} (strata {})", args.join(" ")));
    output
}

/// `strata inspect` must fail cleanly in every mode (plain, --raw, --config, --config --raw).
fn rejects_all_modes(what: &str, reference: &str) {
    for mode in [&[][..], &["--raw"], &["--config"], &["--config", "--raw"]] {
        let output = rejects(what, mode, reference);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains(PASSWD_MARKER),
            "{what}: error message leaks file content: {stderr}"
        );
    }
}

/// Either a success or a clean error, never a panic; returns whether it succeeded.
fn tolerates(what: &str, args: &[&str]) -> bool {
    let output = strata(args);
    if output.status.success() {
        eprintln!("NOTE {what}: strata accepts it");
        return true;
    }
    assert_clean_error(&output, what);
    eprintln!(
        "NOTE {what}: strata rejects it: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    false
}

#[test]
fn sanity_the_valid_layout_is_accepted() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    let reference = good.reference("good");
    let out = parse_json(&strata_ok(["inspect", &reference]), "inspect");
    assert_eq!(out["Digest"], good.manifest_desc["digest"]);
    assert_eq!(out["Layers"], json!([good.layer_desc["digest"]]));
    let raw = strata_ok(["inspect", "--raw", &reference]);
    assert_eq!(raw, json_bytes(&good.manifest));
    let raw_config = strata_ok(["inspect", "--config", "--raw", &reference]);
    assert_eq!(raw_config, good.config);
    let archive = docker_archive(tmp.path(), "good.tar", &good_docker_manifest(), &[]);
    strata_ok(["inspect", &image_ref("docker-archive", &archive, "")]);
}

#[test]
fn exit_statuses_tell_errors_from_findings() {
    // A bad argument is an error of the caller: exit 2, with clap's usage.
    for args in [
        &["inspect", "--no-such-flag", "oci:x"][..],
        &["no-such-command"],
        &["ls"],
    ] {
        let out = strata(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}\n{}",
            show_output(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Usage"),
            "{args:?}\n{}",
            show_output(&out)
        );
    }
    // An error met while working: exit 2 and one `strata: error:` line.
    let out = strata(["inspect", "oci:/nonexistent/strata-layout"]);
    assert_clean_error(&out, "missing layout");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("strata: error: "));
}

#[test]
fn unknown_transport_and_malformed_references() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    let archive = docker_archive(tmp.path(), "good.tar", &good_docker_manifest(), &[]);
    let root = good.layout.root.display().to_string();
    let cases = [
        "foo:bar".to_owned(),
        "nonsense-without-transport".to_owned(),
        String::new(),
        ":".to_owned(),
        "oci:".to_owned(),
        format!("docker-archive:{}:UPPER/case:tag", archive.display()),
        format!("docker-archive:{}:@x", archive.display()),
        format!("docker-archive:{}:@-1", archive.display()),
        format!(
            "docker-archive:{}:@99999999999999999999999",
            archive.display()
        ),
        format!(
            "docker-archive:{}:example.com/x@sha256:abc",
            archive.display()
        ),
        format!("oci:{root}:bad tag with spaces"),
        format!("oci:{root}:../../../etc/passwd"),
        format!("oci:{root}@sha256:abc"),
        format!("oci:{root}@md5:d41d8cd98f00b204e9800998ecf8427e"),
        format!("oci:{root}@sha256:../../../../etc/passwd"),
    ];
    for reference in &cases {
        rejects("malformed reference", &[], reference);
    }
}

#[test]
fn missing_things() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    rejects_all_modes("missing tag", &good.reference("nope"));
    rejects_all_modes(
        "missing layout",
        &image_ref("oci", &tmp.path().join("does-not-exist"), ":good"),
    );
    rejects_all_modes(
        "layout path is a file",
        &image_ref("oci", &good.layout.index_path(), ":good"),
    );
    for transport in ["oci-archive", "docker-archive", "dir"] {
        rejects_all_modes(
            &format!("missing {transport}"),
            &image_ref(transport, &tmp.path().join("does-not-exist"), ""),
        );
    }

    // Missing config blob: every mode that needs the config fails.
    let no_config = Good::new(&tmp.path().join("no-config"));
    fs::remove_file(
        no_config
            .layout
            .blob_path(digest_str(&no_config.config_desc)),
    )
    .expect("removing config");
    for mode in [&[][..], &["--config"], &["--config", "--raw"]] {
        rejects("missing config blob", mode, &no_config.reference("good"));
    }

    // Missing manifest blob.
    let no_manifest = Good::new(&tmp.path().join("no-manifest"));
    fs::remove_file(
        no_manifest
            .layout
            .blob_path(digest_str(&no_manifest.manifest_desc)),
    )
    .expect("removing manifest");
    rejects_all_modes("missing manifest blob", &no_manifest.reference("good"));

    // Missing layer blob: skopeo 1.9 never reads layers for inspect and succeeds; strata may
    // too, or may check; it must not panic.
    let no_layer = Good::new(&tmp.path().join("no-layer"));
    fs::remove_file(no_layer.layout.blob_path(digest_str(&no_layer.layer_desc)))
        .expect("removing layer");
    let reference = no_layer.reference("good");
    for mode in [&[][..], &["--config"]] {
        let mut args = vec!["inspect"];
        args.extend_from_slice(mode);
        args.push(&reference);
        tolerates("missing layer blob", &args);
    }

    // Missing oci-layout / index.json files.
    let no_index = Good::new(&tmp.path().join("no-index"));
    fs::remove_file(no_index.layout.index_path()).expect("removing index.json");
    rejects_all_modes("missing index.json", &no_index.reference("good"));
}

#[test]
fn bad_digests_in_index_json() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    // Files a path-traversing digest would reach if it were used as a path: make them valid
    // manifests, so only validation can stop them.
    let manifest_bytes = json_bytes(&good.manifest);
    fs::write(tmp.path().join("secret"), &manifest_bytes).expect("writing secret");
    let hex = digest_str(&good.manifest_desc)
        .strip_prefix("sha256:")
        .expect("sha256");
    let bad_digests = [
        "sha256:../../../secret".to_owned(),
        "sha256:../../../../../../../../etc/passwd".to_owned(),
        "sha256:/etc/passwd".to_owned(),
        format!("sha256:{}", &hex[..63]),
        format!("sha256:{hex}0"),
        format!("sha256:{}", hex.to_uppercase()),
        format!("md5:{}", &hex[..32]),
        format!("../sha256:{hex}"),
        format!("sha256/../sha256:{hex}"),
        format!("SHA256:{hex}"),
        format!("sha256:{}/..", &hex[..61]),
        format!("sha256{hex}"),
        format!(":{hex}"),
        "sha256:".to_owned(),
        String::new(),
    ];
    for (i, digest) in bad_digests.iter().enumerate() {
        let root = tmp.path().join(format!("case{i}"));
        let case = Good::new(&root);
        let mut desc = case.manifest_desc.clone();
        desc["digest"] = json!(digest);
        case.layout.set_tag("bad", &desc);
        rejects_all_modes(
            &format!("index.json digest {digest:?}"),
            &case.reference("bad"),
        );
    }
    // Wrong type for the digest and size fields.
    for (field, value) in [
        ("digest", json!(12)),
        ("digest", Value::Null),
        ("size", json!(-1)),
        ("size", json!("346")),
        ("mediaType", json!(["x"])),
    ] {
        let mut desc = good.manifest_desc.clone();
        desc[field] = value.clone();
        good.layout.set_tag("typed", &desc);
        rejects_all_modes(
            &format!("index.json {field} = {value}"),
            &good.reference("typed"),
        );
    }
}

#[test]
fn bad_digests_inside_the_manifest() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    // A config reachable by traversal, with content that would print if followed.
    fs::write(tmp.path().join("secret"), &good.config).expect("writing secret");
    for (i, digest) in [
        "sha256:../../../secret",
        "sha256:../../../../../../../../etc/passwd",
        "sha512:abc",
        "sha256:",
    ]
    .iter()
    .enumerate()
    {
        let mut manifest = good.manifest.clone();
        manifest["config"]["digest"] = json!(digest);
        let tag = format!("config{i}");
        good.tag_manifest(&tag, &manifest);
        for mode in [&[][..], &["--config"], &["--config", "--raw"]] {
            rejects(
                &format!("config digest {digest:?}"),
                mode,
                &good.reference(&tag),
            );
        }
        let mut manifest = good.manifest.clone();
        manifest["layers"][0]["digest"] = json!(digest);
        let tag = format!("layer{i}");
        good.tag_manifest(&tag, &manifest);
        rejects(
            &format!("layer digest {digest:?}"),
            &[],
            &good.reference(&tag),
        );
    }
}

#[test]
fn malformed_json() {
    let tmp = tempdir();
    let index_cases: [&[u8]; 9] = [
        b"",
        b"{",
        b"[]",
        b"null",
        b"\xff\xfe\x00garbage",
        br#"{"schemaVersion":2,"manifests":{}}"#,
        br#"{"schemaVersion":2,"manifests":[42]}"#,
        br#"{"schemaVersion":2}"#,
        br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json"}]}"#,
    ];
    for (i, bytes) in index_cases.iter().enumerate() {
        let case = Good::new(&tmp.path().join(format!("index{i}")));
        fs::write(case.layout.index_path(), bytes).expect("writing index.json");
        rejects_all_modes(
            &format!("index.json = {:?}", String::from_utf8_lossy(bytes)),
            &case.reference("good"),
        );
    }

    let good = Good::new(&tmp.path().join("layout"));
    let manifest_cases: [&[u8]; 7] = [
        b"",
        br#"{"schemaVersion":2,"#,
        b"null",
        b"[1,2,3]",
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":"x"}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
        b"\x00\x01\x02\x03",
    ];
    for (i, bytes) in manifest_cases.iter().enumerate() {
        let desc = good.layout.add_blob(OCI_MANIFEST, bytes);
        let tag = format!("manifest{i}");
        good.layout.set_tag(&tag, &desc);
        for mode in [&[][..], &["--config"], &["--config", "--raw"]] {
            rejects(
                &format!("manifest = {:?}", String::from_utf8_lossy(bytes)),
                mode,
                &good.reference(&tag),
            );
        }
    }

    // A config that is not JSON: inspect and --config must fail (skopeo's `--config --raw`
    // just prints the blob, so that mode is not checked).
    for (i, bytes) in [&b"{"[..], b"", b"[]", b"\"x\""].iter().enumerate() {
        let mut manifest = good.manifest.clone();
        manifest["config"] = good.layout.add_blob(OCI_CONFIG, bytes);
        let tag = format!("config{i}");
        good.tag_manifest(&tag, &manifest);
        for mode in [&[][..], &["--config"]] {
            rejects(
                &format!("config = {:?}", String::from_utf8_lossy(bytes)),
                mode,
                &good.reference(&tag),
            );
        }
    }
}

#[test]
fn oversized_manifest() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    let mut manifest = good.manifest.clone();
    manifest["annotations"] = json!({"pad": "x".repeat(4 * 1024 * 1024 + 1)});
    good.tag_manifest("big", &manifest);
    rejects_all_modes("manifest over 4 MiB", &good.reference("big"));

    // The same size in an index.
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [good.manifest_desc.clone()],
        "annotations": {"pad": "x".repeat(4 * 1024 * 1024 + 1)}
    });
    index["manifests"][0]["platform"] = json!({"architecture": host_arch(), "os": "linux"});
    let desc = good.layout.add_json(OCI_INDEX, &index);
    good.layout.set_tag("bigindex", &desc);
    rejects_all_modes("index over 4 MiB", &good.reference("bigindex"));

    // An index.json over 4 MiB: not a manifest blob, so either answer is defensible, but it
    // must be quick and clean.
    let big_index_json = Good::new(&tmp.path().join("big-index-json"));
    let mut index = big_index_json.layout.index();
    index["annotations"] = json!({"pad": "x".repeat(8 * 1024 * 1024)});
    big_index_json.layout.write_index(&index);
    tolerates(
        "index.json over 4 MiB",
        &["inspect", &big_index_json.reference("good")],
    );
}

/// Runs strata with a short time limit: hostile structures must not make it crawl.
fn strata_quick(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = run_with_timeout(
        Command::new(strata_bin()).args(args),
        Duration::from_secs(20),
    );
    (output, started.elapsed())
}

#[test]
fn nested_indexes() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    let platform = json!({"architecture": host_arch(), "os": "linux"});
    let mut desc = good.manifest_desc.clone();
    desc["platform"] = platform.clone();
    for _depth in 1..=10 {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]});
        desc = good.layout.add_json(OCI_INDEX, &index);
        desc["platform"] = platform.clone();
    }
    good.layout.set_tag("deep", &desc);
    let reference = good.reference("deep");
    // --raw prints the top-level index as stored, as skopeo does, without resolving it.
    let raw = strata_ok(["inspect", "--raw", &reference]);
    assert_eq!(
        raw,
        good.layout.read_blob(digest_str(&desc)),
        "--raw of the nested index must print the top-level index blob"
    );
    for mode in [&[][..], &["--config"], &["--config", "--raw"]] {
        let mut args = vec!["inspect"];
        args.extend_from_slice(mode);
        args.push(&reference);
        let (output, took) = strata_quick(&args);
        assert_clean_error(&output, "index nested 10 deep");
        assert!(
            took < Duration::from_secs(10),
            "nested 10 deep took {took:?}"
        );
    }

    // Wide and nested: every entry of every level points at the same next-level index, so a
    // naive walk of all paths never ends. Shallow (3 levels of 2000): answered quickly, either
    // way (strata resolves a few levels, as skopeo does). Deep (10 levels of 500): refused.
    for (levels, width, must_fail) in [(3, 2000, false), (10, 500, true)] {
        let mut desc = good.manifest_desc.clone();
        desc["platform"] = platform.clone();
        for _level in 0..levels {
            let entries: Vec<Value> = (0..width).map(|_| desc.clone()).collect();
            let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
            desc = good.layout.add_json(OCI_INDEX, &index);
            desc["platform"] = platform.clone();
        }
        let tag = format!("wide{levels}");
        good.layout.set_tag(&tag, &desc);
        let reference = good.reference(&tag);
        let what = format!("{levels} levels of {width}-entry indexes");
        for mode in [&[][..], &["--config"]] {
            let mut args = vec!["inspect"];
            args.extend_from_slice(mode);
            args.push(&reference);
            let (output, took) = strata_quick(&args);
            assert!(took < Duration::from_secs(10), "{what} took {took:?}");
            if must_fail || !output.status.success() {
                assert_clean_error(&output, &what);
            } else if mode.is_empty() {
                let got = parse_json(&output.stdout, &what);
                assert_eq!(
                    got["Layers"],
                    json!([good.layer_desc["digest"]]),
                    "{what}: resolved to the wrong image"
                );
            }
        }
    }

    // An index whose entries are all manifests but none for this platform, many of them:
    // must fail quickly and cleanly.
    let entries: Vec<Value> = (0..5000)
        .map(|i| {
            let mut d = good.manifest_desc.clone();
            d["platform"] = json!({"architecture": format!("arch{i}"), "os": "linux"});
            d
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    let desc = good.layout.add_json(OCI_INDEX, &index);
    good.layout.set_tag("noplatform", &desc);
    let reference = good.reference("noplatform");
    let (output, took) = strata_quick(&["inspect", &reference]);
    assert_clean_error(&output, "index with 5000 foreign platforms");
    assert!(
        took < Duration::from_secs(10),
        "5000 platforms took {took:?}"
    );
}

#[test]
fn content_that_does_not_match_its_descriptor() {
    // skopeo 1.9 accepts these (it does not verify oci: manifests for inspect); strata verifies every
    // manifest against its descriptor's digest, size and media type, and refuses.
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    // Tampered manifest: same file name, different bytes.
    let path = good.layout.blob_path(digest_str(&good.manifest_desc));
    let mut tampered = json_bytes(&good.manifest);
    tampered.push(b'\n');
    fs::write(&path, &tampered).expect("tampering");
    let reference = good.reference("good");
    for mode in [&[][..], &["--raw"]] {
        let out = rejects("manifest digest mismatch", mode, &reference);
        assert!(String::from_utf8_lossy(&out.stderr).contains("digest mismatch"));
    }

    let other = Good::new(&tmp.path().join("size"));
    let mut desc = other.manifest_desc.clone();
    desc["size"] = json!(3);
    other.layout.set_tag("size", &desc);
    let out = rejects("manifest size mismatch", &[], &other.reference("size"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("size mismatch"));
    let mut desc = other.manifest_desc.clone();
    desc["mediaType"] = json!(OCI_INDEX);
    other.layout.set_tag("mt", &desc);
    rejects(
        "manifest described as an index",
        &[],
        &other.reference("mt"),
    );
}

#[test]
fn blobs_that_are_symlinks_out_of_the_layout() {
    let tmp = tempdir();
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).expect("outside dir");

    // The config blob is a symlink to a file outside with exactly the right content.
    let good = Good::new(&tmp.path().join("config-link"));
    let config_path = good.layout.blob_path(digest_str(&good.config_desc));
    fs::write(outside.join("config"), &good.config).expect("outside config");
    fs::remove_file(&config_path).expect("removing config");
    std::os::unix::fs::symlink(outside.join("config"), &config_path).expect("symlink");
    for mode in [&[][..], &["--config"], &["--config", "--raw"]] {
        rejects(
            "config blob symlinked outside",
            mode,
            &good.reference("good"),
        );
    }

    // The same with a relative symlink climbing out.
    let good = Good::new(&tmp.path().join("config-rel-link"));
    let config_path = good.layout.blob_path(digest_str(&good.config_desc));
    fs::remove_file(&config_path).expect("removing config");
    std::os::unix::fs::symlink("../../../outside/config", &config_path).expect("symlink");
    for mode in [&[][..], &["--config"], &["--config", "--raw"]] {
        rejects(
            "config blob symlinked outside (relative)",
            mode,
            &good.reference("good"),
        );
    }

    // The manifest blob is a symlink out.
    let good = Good::new(&tmp.path().join("manifest-link"));
    let manifest_path = good.layout.blob_path(digest_str(&good.manifest_desc));
    fs::copy(&manifest_path, outside.join("manifest")).expect("outside manifest");
    fs::remove_file(&manifest_path).expect("removing manifest");
    std::os::unix::fs::symlink(outside.join("manifest"), &manifest_path).expect("symlink");
    rejects_all_modes("manifest blob symlinked outside", &good.reference("good"));

    // A blob symlinked to /etc/passwd (wrong content too): error, and no leak.
    let good = Good::new(&tmp.path().join("passwd-link"));
    let config_path = good.layout.blob_path(digest_str(&good.config_desc));
    fs::remove_file(&config_path).expect("removing config");
    std::os::unix::fs::symlink("/etc/passwd", &config_path).expect("symlink");
    // (`--raw` prints the manifest only, which is intact.)
    for mode in [&[][..], &["--config"], &["--config", "--raw"]] {
        let output = rejects(
            "config blob symlinked to /etc/passwd",
            mode,
            &good.reference("good"),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains(PASSWD_MARKER),
            "error message leaks /etc/passwd: {stderr}"
        );
    }

    // The whole blobs/sha256 directory is a symlink out of the layout.
    let good = Good::new(&tmp.path().join("dir-link"));
    let blobs = good.layout.root.join("blobs/sha256");
    let moved = outside.join("moved-blobs");
    fs::rename(&blobs, &moved).expect("moving blobs");
    std::os::unix::fs::symlink(&moved, &blobs).expect("symlink");
    rejects_all_modes("blobs/sha256 symlinked outside", &good.reference("good"));
}

// ---------------------------------------------------------------- docker-archive

/// The `manifest.json` of the hand-made docker archive (see [`docker_archive`]).
fn good_docker_manifest() -> Value {
    json!([{"Config": "config.json", "RepoTags": ["example.com/x:1"], "Layers": ["layer/layer.tar"]}])
}

/// Writes a docker-archive `name` in `dir` holding `config.json`, `layer/layer.tar` and the
/// given `manifest.json`, plus `extra` entries (built by the callers, e.g. symlinks).
fn docker_archive(dir: &Path, name: &str, manifest: &Value, extra: &[tar::Header]) -> PathBuf {
    let layer = layer_tar();
    let config = json_bytes(&config_json(&layer));
    let path = dir.join(name);
    let mut builder = tar::Builder::new(fs::File::create(&path).expect("creating archive"));
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, data)
            .expect("appending");
    };
    add("config.json", &config);
    add("layer/layer.tar", &layer);
    add("manifest.json", &json_bytes(manifest));
    for header in extra {
        builder
            .append(header, std::io::empty())
            .expect("appending extra");
    }
    builder.finish().expect("finishing archive");
    path
}

/// A tar header for a symlink entry `name -> target`, with no path checks.
fn symlink_entry(name: &str, target: &str) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    set_raw_name(&mut header, name);
    let link = &mut header.as_old_mut().linkname;
    link[..target.len()].copy_from_slice(target.as_bytes());
    header.set_cksum();
    header
}

/// Writes the name field directly: `Header::set_path` refuses `..`, which is the point here.
fn set_raw_name(header: &mut tar::Header, name: &str) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

#[test]
fn docker_archive_escaping_paths() {
    let tmp = tempdir();
    // Files an escaping path would reach, with valid content.
    let layer = layer_tar();
    fs::write(
        tmp.path().join("outside.json"),
        json_bytes(&config_json(&layer)),
    )
    .expect("outside.json");
    fs::write(tmp.path().join("outside.tar"), &layer).expect("outside.tar");

    let base = good_docker_manifest();
    let mut cases: Vec<(String, Value, Vec<tar::Header>)> = Vec::new();
    for bad in [
        "../outside.json",
        "/etc/passwd",
        "../../../../../../etc/passwd",
        "./../outside.json",
    ] {
        let mut m = base.clone();
        m[0]["Config"] = json!(bad);
        cases.push((format!("Config {bad}"), m, Vec::new()));
    }
    for bad in ["../outside.tar", "/etc/passwd", "layer/../../outside.tar"] {
        let mut m = base.clone();
        m[0]["Layers"][0] = json!(bad);
        cases.push((format!("Layers {bad}"), m, Vec::new()));
    }
    // Entries inside the archive that are symlinks leading out.
    for target in [
        "/etc/passwd",
        "../../../../../../../etc/passwd",
        "../outside.json",
    ] {
        let mut m = base.clone();
        m[0]["Config"] = json!("link.json");
        cases.push((
            format!("Config symlink -> {target}"),
            m,
            vec![symlink_entry("link.json", target)],
        ));
    }
    let mut m = base.clone();
    m[0]["Layers"][0] = json!("link.tar");
    cases.push((
        "Layers symlink -> ../outside.tar".to_owned(),
        m,
        vec![symlink_entry("link.tar", "../outside.tar")],
    ));
    // Malformed manifest.json shapes.
    for shape in [
        json!({}),
        json!([]),
        json!([{}]),
        json!([{"Config": 1, "Layers": []}]),
        json!([{"Config": "config.json", "Layers": "layer/layer.tar"}]),
        json!([{"Config": "config.json", "Layers": []}]),
        json!([{"Config": "config.json"}]),
        json!([{"Config": "missing.json", "Layers": ["layer/layer.tar"]}]),
    ] {
        cases.push((format!("manifest.json {shape}"), shape, Vec::new()));
    }
    for (i, (what, manifest, extra)) in cases.iter().enumerate() {
        let archive = docker_archive(tmp.path(), &format!("case{i}.tar"), manifest, extra);
        rejects_all_modes(
            &format!("docker-archive {what}"),
            &image_ref("docker-archive", &archive, ""),
        );
    }

    // manifest.json itself a symlink to a file outside.
    let archive = tmp.path().join("manifest-link.tar");
    let mut builder = tar::Builder::new(fs::File::create(&archive).expect("creating"));
    builder
        .append(
            &symlink_entry("manifest.json", "/etc/passwd"),
            std::io::empty(),
        )
        .expect("appending");
    builder.finish().expect("finishing");
    rejects_all_modes(
        "docker-archive manifest.json symlink",
        &image_ref("docker-archive", &archive, ""),
    );
}

#[test]
fn garbage_files() {
    let tmp = tempdir();
    let random: Vec<u8> = (0u32..10_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let garbage = tmp.path().join("garbage.bin");
    fs::write(&garbage, &random).expect("garbage");
    let empty = tmp.path().join("empty.bin");
    fs::write(&empty, b"").expect("empty");
    // A tar truncated in the middle of an entry.
    let good = docker_archive(tmp.path(), "good.tar", &good_docker_manifest(), &[]);
    let bytes = fs::read(&good).expect("reading");
    let truncated = tmp.path().join("truncated.tar");
    fs::write(&truncated, &bytes[..bytes.len() / 2 + 100]).expect("truncated");
    for file in [&garbage, &empty, &truncated] {
        for transport in ["oci-archive", "docker-archive"] {
            rejects_all_modes(
                &format!("{transport} of {}", file.display()),
                &image_ref(transport, file, ""),
            );
        }
    }
    // dir: without a manifest, with a garbage manifest, given a file.
    let dir = tmp.path().join("dir");
    fs::create_dir_all(&dir).expect("dir");
    rejects_all_modes("dir: without manifest.json", &image_ref("dir", &dir, ""));
    fs::write(dir.join("manifest.json"), &random).expect("garbage manifest");
    // (`--raw` is not checked: skopeo prints the raw bytes without parsing them.)
    for mode in [&[][..], &["--config"], &["--config", "--raw"]] {
        rejects(
            "dir: garbage manifest.json",
            mode,
            &image_ref("dir", &dir, ""),
        );
    }
    rejects_all_modes("dir: on a file", &image_ref("dir", &garbage, ""));
    // oci-archive: on a directory.
    rejects_all_modes(
        "oci-archive: on a directory",
        &image_ref("oci-archive", &dir, ""),
    );
}

/// Every file name (relative) under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn oci_archive_with_escaping_entries() {
    let tmp = tempdir();
    // A valid layout, archived, plus entries that try to land outside any extraction dir.
    let good = Good::new(&tmp.path().join("src/layout"));
    let archive = tmp.path().join("evil.tar");
    let mut builder = tar::Builder::new(fs::File::create(&archive).expect("creating"));
    builder
        .append_dir_all(".", &good.layout.root)
        .expect("archiving layout");
    for name in [
        "../escaped-one",
        "../../escaped-two",
        "blobs/../../escaped-three",
    ] {
        let data = b"escaped\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        set_raw_name(&mut header, name);
        header.set_cksum();
        builder.append(&header, &data[..]).expect("appending");
    }
    // And a symlink entry pointing out, then a file written "through" it.
    builder
        .append(&symlink_entry("sneaky", "../../"), std::io::empty())
        .expect("appending link");
    let data = b"escaped\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    set_raw_name(&mut header, "sneaky/escaped-four");
    header.set_cksum();
    builder.append(&header, &data[..]).expect("appending");
    builder.finish().expect("finishing");

    // Any temporary extraction goes under a deep TMPDIR inside our tempdir.
    let tmpdir = tmp.path().join("a/b/c/tmp");
    fs::create_dir_all(&tmpdir).expect("tmpdir");
    let output = run_with_timeout(
        Command::new(strata_bin())
            .env("TMPDIR", &tmpdir)
            .args(["inspect", &image_ref("oci-archive", &archive, ":good")]),
        Duration::from_secs(20),
    );
    if !output.status.success() {
        assert_clean_error(&output, "oci-archive with escaping entries");
    }
    let escaped: Vec<String> = all_files(tmp.path())
        .into_iter()
        .filter(|f| f.contains("escaped-"))
        .collect();
    assert!(
        escaped.is_empty(),
        "oci-archive entries escaped the extraction directory: {escaped:?}\n{}",
        show_output(&output)
    );
    let escaped_tmp: Vec<String> = [
        "escaped-one",
        "escaped-two",
        "escaped-three",
        "escaped-four",
    ]
    .iter()
    .map(|n| std::env::temp_dir().join(n))
    .filter(|p| p.exists())
    .map(|p| p.display().to_string())
    .collect();
    assert!(
        escaped_tmp.is_empty(),
        "files escaped into the temp dir: {escaped_tmp:?}"
    );
}

/// The one line of a clean failure of `strata args`.
fn error_line(args: &[&str], what: &str) -> String {
    let out = strata(args);
    assert_clean_error(&out, what);
    String::from_utf8_lossy(&out.stderr).trim_end().to_owned()
}

fn assert_has(text: &str, parts: &[&str], what: &str) {
    for part in parts {
        assert!(text.contains(part), "{what}: expected {part:?} in:\n{text}");
    }
}

/// A name without a transport gets the list of transports (as written: `docker://`, `containers-storage:`)
/// and a way out: `docker://NAME` for a registry name, and for a path the transport of what is there,
/// which then works.
#[test]
fn names_without_a_transport_get_a_way_out() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    let layout = good.layout.root.display().to_string();
    let archive = docker_archive(tmp.path(), "docker.tar", &good_docker_manifest(), &[]);
    let archive = archive.display().to_string();
    // The layout as an oci-archive: its files in a tar.
    let oci_archive = tmp.path().join("oci.tar");
    let mut builder = tar::Builder::new(fs::File::create(&oci_archive).unwrap());
    builder.append_dir_all(".", &good.layout.root).unwrap();
    builder.finish().unwrap();
    drop(builder);
    let oci_archive = oci_archive.display().to_string();
    // skopeo's dir: a manifest and its blobs by hex.
    let dir = tmp.path().join("skopeo-dir");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("manifest.json"), json_bytes(&good.manifest)).unwrap();
    fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    for blob in [&good.config_desc, &good.layer_desc] {
        let hex = digest_str(blob).trim_start_matches("sha256:");
        fs::copy(good.layout.blob_path(digest_str(blob)), dir.join(hex)).unwrap();
    }
    let dir = dir.display().to_string();
    let cases = [
        ("debian:12".to_owned(), "docker://debian:12".to_owned()),
        (layout.clone(), format!("oci:{layout}")),
        (format!("{layout}:good"), format!("oci:{layout}:good")),
        (archive.clone(), format!("docker-archive:{archive}")),
        (oci_archive.clone(), format!("oci-archive:{oci_archive}")),
        (dir.clone(), format!("dir:{dir}")),
    ];
    for (name, meant) in &cases {
        for command in ["inspect", "ls"] {
            let err = error_line(&[command, name], &format!("{command} {name}"));
            assert_has(
                &err,
                &[
                    "docker://, containers-storage:",
                    &format!("did you mean {meant}?"),
                ],
                name,
            );
        }
        if !meant.starts_with("docker://") {
            strata_ok(["inspect", meant.as_str()]);
        }
    }
    let err = error_line(&["inspect", "debian:12"], "debian:12");
    assert_has(&err, &["unknown transport \"debian\""], "debian:12");
    // A path that holds no image says so.
    let junk = tmp.path().join("junk");
    fs::write(&junk, "not a tar").unwrap();
    let err = error_line(&["inspect", junk.to_str().unwrap()], "junk file");
    assert_has(&err, &["is a file, but neither"], "junk file");
    let err = error_line(&["inspect", tmp.path().to_str().unwrap()], "plain dir");
    assert_has(&err, &["is a directory, but neither"], "plain dir");
}

/// A tag a layout or archive does not have: the error lists those it has (the first ten, and how many
/// more), as does a layout of several images named without a tag.
#[test]
fn missing_tags_list_the_tags_there_are() {
    let tmp = tempdir();
    let good = Good::new(&tmp.path().join("layout"));
    let err = error_line(&["inspect", &good.reference("nope")], "missing tag");
    assert_has(
        &err,
        &["tag \"nope\" not found", "the tags there: good"],
        "missing tag",
    );
    for i in 0..12 {
        good.tag_manifest(&format!("t{i:02}"), &good.manifest);
    }
    let err = error_line(&["inspect", &good.reference("nope")], "missing tag of 13");
    assert_has(
        &err,
        &["the tags there: good, t00, t01", "t08 (and 3 more)"],
        "missing tag of 13",
    );
    let root = good.layout.root.display().to_string();
    let err = error_line(&["inspect", &format!("oci:{root}")], "no tag, 13 images");
    assert_has(
        &err,
        &["lists 13 images", "name one with :TAG", "good, t00"],
        "no tag, 13 images",
    );
    let archive = docker_archive(tmp.path(), "docker.tar", &good_docker_manifest(), &[]);
    let err = error_line(
        &[
            "inspect",
            &format!("docker-archive:{}:example.com/x:2", archive.display()),
        ],
        "missing docker-archive tag",
    );
    assert_has(
        &err,
        &[
            "tag \"example.com/x:2\" not found",
            "the tags there: example.com/x:1",
        ],
        "missing docker-archive tag",
    );
}
