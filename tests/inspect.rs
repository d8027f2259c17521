//! `strata inspect` must print what `skopeo inspect` (1.9) prints, on real images built with
//! umoci and converted by skopeo into every local transport strata reads.
//!
//! For each image: the default JSON output is compared key by key over skopeo's keys (strata may
//! add `LayersData`, which must agree with the manifest, and `Variant`, which skopeo 1.9 never
//! prints and which must be the config's variant when set); `--raw` must be byte-identical;
//! `--config` must be the same JSON value; `--config --raw` must be byte-identical.
//! skopeo takes `--override-*` as global flags before `inspect`; strata takes them after.
//! `--all-platforms` is checked entry by entry against `skopeo --override-arch ARCH inspect`, in a layout and
//! in a registry.

// Test code: helpers outside #[test] functions panic on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Read as _;
use std::path::Path;

use serde_json::{Value, json};
use strata_tests::registry::{Auth, Registry};
use strata_tests::{
    ImageSpec, OCI_CONFIG, OCI_MANIFEST, OciLayout, assert_clean_error, assert_json_keys_eq,
    assert_layers_data, base_image, image_ref, multi_arch_layout, parse_json, require_tool,
    skopeo_ok, strata, strata_ok, umoci, umoci_image,
};
use tempfile::TempDir;

/// Both peers used by these tests; false (skip) when one is missing outside CI.
fn peers() -> bool {
    require_tool("skopeo") & require_tool("umoci")
}

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("strata-inspect-")
        .tempdir()
        .expect("creating a tempdir")
}

/// Shows bytes for a failure message: lossy text, truncated.
fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() > 3000 {
        let head: String = text.chars().take(3000).collect();
        format!("{head}… ({} bytes)", bytes.len())
    } else {
        text.into_owned()
    }
}

fn assert_bytes_eq(skopeo: &[u8], strata: &[u8], what: &str) {
    assert!(
        skopeo == strata,
        "{what}: bytes differ (skopeo {} bytes, strata {} bytes)\n--- skopeo ---\n{}\n--- strata ---\n{}",
        skopeo.len(),
        strata.len(),
        show(skopeo),
        show(strata)
    );
}

/// Copies `src` to `dest` with skopeo, with extra `copy` flags.
fn skopeo_copy(flags: &[&str], src: &str, dest: &str) {
    let mut args = vec!["copy", "--quiet"];
    args.extend_from_slice(flags);
    args.extend([src, dest]);
    skopeo_ok(&args);
}

/// Compares every inspect mode of strata with skopeo for one image reference.
///
/// `overrides` are `--override-*` flags (global for skopeo, after `inspect` for strata).
/// `skopeo_ref` and `strata_ref` are usually the same; they differ where skopeo 1.9 lacks a
/// syntax strata has (`oci:DIR@DIGEST`). `manifest` is the chosen image's manifest for the
/// `LayersData` check; `None` means "the `--raw` output" (right for single-image references).
fn compare_all(
    what: &str,
    skopeo_ref: &str,
    strata_ref: &str,
    overrides: &[&str],
    manifest: Option<&Value>,
) {
    let skopeo_args = |mode: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
        args.push("inspect".to_owned());
        args.extend(mode.iter().map(|s| (*s).to_owned()));
        args.push(skopeo_ref.to_owned());
        args
    };
    let strata_args = |mode: &[&str]| -> Vec<String> {
        let mut args = vec!["inspect".to_owned()];
        args.extend(overrides.iter().map(|s| (*s).to_owned()));
        args.extend(mode.iter().map(|s| (*s).to_owned()));
        args.push(strata_ref.to_owned());
        args
    };
    let label = format!("{what} [{strata_ref} {}]", overrides.join(" "));

    // --raw first: the manifest is needed for the LayersData check.
    let skopeo_raw = skopeo_ok(skopeo_args(&["--raw"]));
    let strata_raw = strata_ok(strata_args(&["--raw"]));
    assert_bytes_eq(&skopeo_raw, &strata_raw, &format!("{label} --raw"));

    let want = parse_json(
        &skopeo_ok(skopeo_args(&[])),
        &format!("skopeo inspect {label}"),
    );
    let got = parse_json(
        &strata_ok(strata_args(&[])),
        &format!("strata inspect {label}"),
    );
    // skopeo 1.9 never prints `Variant`; strata prints it when the config has one (checked
    // against the config below).
    assert_json_keys_eq(
        &want,
        &got,
        &["LayersData", "Variant"],
        &format!("{label} inspect"),
    );
    let inspect = got;
    let raw_manifest;
    let manifest = match manifest {
        Some(m) => m,
        None => {
            raw_manifest = parse_json(&skopeo_raw, "skopeo --raw");
            &raw_manifest
        }
    };
    assert_layers_data(&inspect, manifest, &format!("{label} LayersData"));

    let want = parse_json(
        &skopeo_ok(skopeo_args(&["--config"])),
        &format!("skopeo inspect --config {label}"),
    );
    let got = parse_json(
        &strata_ok(strata_args(&["--config"])),
        &format!("strata inspect --config {label}"),
    );
    assert_json_keys_eq(&want, &got, &[], &format!("{label} --config"));
    assert_eq!(
        inspect.get("Variant"),
        got.get("variant")
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty())),
        "{label}: inspect `Variant` must be the config's variant, present only when set"
    );

    let skopeo_raw = skopeo_ok(skopeo_args(&["--config", "--raw"]));
    let strata_raw = strata_ok(strata_args(&["--config", "--raw"]));
    assert_bytes_eq(&skopeo_raw, &strata_raw, &format!("{label} --config --raw"));
}

/// Same reference for both tools, no overrides, manifest from `--raw`.
fn compare(what: &str, reference: &str) {
    compare_all(what, reference, reference, &[], None);
}

/// Asserts that skopeo fails on `skopeo_args` and strata fails cleanly on `strata_args`.
fn both_fail(what: &str, skopeo_args: &[&str], strata_args: &[&str]) {
    let skopeo =
        strata_tests::run_unchecked(std::process::Command::new("skopeo").args(skopeo_args));
    assert!(
        !skopeo.status.success(),
        "{what}: expected skopeo to fail too\n{}",
        strata_tests::show_output(&skopeo)
    );
    assert_clean_error(&strata(strata_args), what);
}

#[test]
fn oci_layout_straight_from_umoci() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let layout = base_image(tmp.path());
    compare("umoci layout", &image_ref("oci", &layout, ":base"));
    // A layout with a single image needs no tag.
    compare("umoci layout, no tag", &image_ref("oci", &layout, ""));
    // skopeo 1.9 has no oci:DIR@DIGEST; strata's must equal the tag form.
    let digest = OciLayout::open(&layout).descriptor("base")["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    compare_all(
        "umoci layout by digest",
        &image_ref("oci", &layout, ":base"),
        &image_ref("oci", &layout, &format!("@{digest}")),
        &[],
        None,
    );
    // --no-tags changes nothing for local transports.
    let want = parse_json(
        &skopeo_ok(["inspect", "--no-tags", &image_ref("oci", &layout, ":base")]),
        "skopeo",
    );
    let got = parse_json(
        &strata_ok(["inspect", "--no-tags", &image_ref("oci", &layout, ":base")]),
        "strata",
    );
    assert_json_keys_eq(&want, &got, &["LayersData"], "--no-tags");
}

#[test]
fn oci_layout_gzip_and_zstd() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = image_ref("oci", &base_image(tmp.path()), ":base");
    // Separate layouts: copying into a layout that already has the gzip blobs makes skopeo
    // reuse them and silently skip the zstd recompression.
    let gzip = tmp.path().join("gzip");
    let zstd = tmp.path().join("zstd");
    skopeo_copy(&[], &base, &image_ref("oci", &gzip, ":gzip"));
    skopeo_copy(
        &["--dest-compress-format", "zstd"],
        &base,
        &image_ref("oci", &zstd, ":zstd"),
    );
    let manifest = OciLayout::open(&zstd).manifest("zstd");
    assert_eq!(
        manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
        "skopeo did not write zstd layers"
    );
    compare("oci gzip", &image_ref("oci", &gzip, ":gzip"));
    compare("oci zstd", &image_ref("oci", &zstd, ":zstd"));
    // A second tag in the gzip layout (same blobs), then no tag: skopeo refuses, strata must too.
    skopeo_copy(&[], &base, &image_ref("oci", &gzip, ":again"));
    let out = gzip;
    // Two images and no tag: skopeo refuses, strata must too.
    let untagged = image_ref("oci", &out, "");
    both_fail(
        "oci layout with two images and no tag",
        &["inspect", &untagged],
        &["inspect", &untagged],
    );
}

#[test]
fn oci_archive_gzip_and_zstd() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = image_ref("oci", &base_image(tmp.path()), ":base");
    let gzip = tmp.path().join("gzip.tar");
    let zstd = tmp.path().join("zstd.tar");
    skopeo_copy(&[], &base, &image_ref("oci-archive", &gzip, ":v1"));
    skopeo_copy(
        &["--dest-compress-format", "zstd"],
        &base,
        &image_ref("oci-archive", &zstd, ":v1"),
    );
    compare("oci-archive gzip", &image_ref("oci-archive", &gzip, ":v1"));
    compare(
        "oci-archive gzip, no tag",
        &image_ref("oci-archive", &gzip, ""),
    );
    compare("oci-archive zstd", &image_ref("oci-archive", &zstd, ":v1"));
    let missing = image_ref("oci-archive", &gzip, ":nope");
    both_fail(
        "oci-archive missing tag",
        &["inspect", &missing],
        &["inspect", &missing],
    );
}

#[test]
fn docker_archive_references() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = image_ref("oci", &base_image(tmp.path()), ":base");
    let plain = tmp.path().join("plain.tar");
    let named = tmp.path().join("named.tar");
    let short = tmp.path().join("short.tar");
    let zstd = tmp.path().join("zstd.tar");
    skopeo_copy(&[], &base, &image_ref("docker-archive", &plain, ""));
    skopeo_copy(
        &[],
        &base,
        &image_ref("docker-archive", &named, ":example.com/foo/bar:v1"),
    );
    // A short name is normalised (docker.io/library/foo:v1) both in the archive and in `Name`.
    skopeo_copy(&[], &base, &image_ref("docker-archive", &short, ":foo:v1"));
    // docker-archive always stores uncompressed layers; the zstd request must not matter.
    skopeo_copy(
        &["--dest-compress-format", "zstd"],
        &base,
        &image_ref("docker-archive", &zstd, ""),
    );

    compare("docker-archive", &image_ref("docker-archive", &plain, ""));
    compare(
        "docker-archive @0",
        &image_ref("docker-archive", &plain, ":@0"),
    );
    compare(
        "docker-archive named",
        &image_ref("docker-archive", &named, ""),
    );
    compare(
        "docker-archive by name",
        &image_ref("docker-archive", &named, ":example.com/foo/bar:v1"),
    );
    compare(
        "docker-archive named @0",
        &image_ref("docker-archive", &named, ":@0"),
    );
    compare(
        "docker-archive short name",
        &image_ref("docker-archive", &short, ":foo:v1"),
    );
    compare(
        "docker-archive short name, normalised",
        &image_ref("docker-archive", &short, ":docker.io/library/foo:v1"),
    );
    compare(
        "docker-archive zstd request",
        &image_ref("docker-archive", &zstd, ""),
    );

    let wrong_tag = image_ref("docker-archive", &named, ":example.com/foo/bar:v2");
    both_fail(
        "docker-archive tag not in archive",
        &["inspect", &wrong_tag],
        &["inspect", &wrong_tag],
    );
    let out_of_range = image_ref("docker-archive", &named, ":@1");
    both_fail(
        "docker-archive index out of range",
        &["inspect", &out_of_range],
        &["inspect", &out_of_range],
    );
}

/// Reads every entry of a tar into (header, data) pairs.
fn tar_entries(path: &Path) -> Vec<(tar::Header, Vec<u8>)> {
    let file = fs::File::open(path).expect("opening tar");
    let mut archive = tar::Archive::new(file);
    let mut entries = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("tar entry data");
        entries.push((header, data));
    }
    entries
}

fn entry_path(header: &tar::Header) -> String {
    header
        .path()
        .expect("tar entry path")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn docker_archive_with_two_images() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let layout = base_image(tmp.path());
    umoci([
        "config",
        "--image",
        &format!("{}:base", layout.display()),
        "--tag",
        "arm",
        "--architecture",
        "arm64",
        "--config.label",
        "flavour=arm",
    ]);
    let first = tmp.path().join("first.tar");
    let second = tmp.path().join("second.tar");
    skopeo_copy(
        &[],
        &image_ref("oci", &layout, ":base"),
        &image_ref("docker-archive", &first, ":example.com/one:1"),
    );
    skopeo_copy(
        &[],
        &image_ref("oci", &layout, ":arm"),
        &image_ref("docker-archive", &second, ":example.com/two:2"),
    );
    // Merge: every file once, manifest.json listing both images.
    let merged = tmp.path().join("merged.tar");
    let mut builder = tar::Builder::new(fs::File::create(&merged).expect("creating merged.tar"));
    let mut seen = std::collections::BTreeSet::new();
    let mut manifest = Vec::new();
    for source in [&first, &second] {
        for (header, data) in tar_entries(source) {
            let path = entry_path(&header);
            if path == "manifest.json" {
                let list = parse_json(&data, "manifest.json");
                manifest.extend(list.as_array().expect("manifest.json is a list").clone());
            } else if path != "repositories" && seen.insert(path) {
                builder
                    .append(&header, data.as_slice())
                    .expect("appending entry");
            }
        }
    }
    let manifest = serde_json::to_vec(&Value::Array(manifest)).expect("manifest.json");
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "manifest.json", manifest.as_slice())
        .expect("appending manifest.json");
    builder.finish().expect("finishing merged.tar");

    compare(
        "two-image archive @0",
        &image_ref("docker-archive", &merged, ":@0"),
    );
    compare(
        "two-image archive @1",
        &image_ref("docker-archive", &merged, ":@1"),
    );
    compare(
        "two-image archive by name 1",
        &image_ref("docker-archive", &merged, ":example.com/one:1"),
    );
    compare(
        "two-image archive by name 2",
        &image_ref("docker-archive", &merged, ":example.com/two:2"),
    );
    // No selector with two images: skopeo refuses ("expected 1 item, got 2").
    let bare = image_ref("docker-archive", &merged, "");
    both_fail(
        "two-image archive without selector",
        &["inspect", &bare],
        &["inspect", &bare],
    );
}

#[test]
fn dir_gzip_zstd_uncompressed() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let base = image_ref("oci", &base_image(tmp.path()), ":base");
    let gzip = tmp.path().join("gzip");
    let zstd = tmp.path().join("zstd");
    let plain = tmp.path().join("plain");
    skopeo_copy(&[], &base, &image_ref("dir", &gzip, ""));
    // dir: ignores --dest-compress-format unless --dest-compress is given too.
    skopeo_copy(
        &["--dest-compress", "--dest-compress-format", "zstd"],
        &base,
        &image_ref("dir", &zstd, ""),
    );
    skopeo_copy(&["--dest-decompress"], &base, &image_ref("dir", &plain, ""));
    compare("dir gzip", &image_ref("dir", &gzip, ""));
    compare("dir zstd", &image_ref("dir", &zstd, ""));
    compare("dir uncompressed", &image_ref("dir", &plain, ""));
}

#[test]
fn unusual_configs() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let layout = tmp.path().join("odd");
    // No layers, no config: Labels and Env are null, Layers is [].
    umoci_image(
        &layout,
        &ImageSpec {
            tag: "empty".to_owned(),
            ..ImageSpec::default()
        },
    );
    // umoci's own created time (nanoseconds), cleared env.
    umoci_image(
        &layout,
        &ImageSpec {
            tag: "now".to_owned(),
            layers: true,
            clear: vec!["config.env".to_owned()],
            labels: vec![("a".to_owned(), "1".to_owned())],
            ..ImageSpec::default()
        },
    );
    // A created time with a fraction and an offset, kept as written; odd labels; other os.
    umoci_image(
        &layout,
        &ImageSpec {
            tag: "offset".to_owned(),
            layers: false,
            created: Some("2024-01-02T05:04:05.5+02:00".to_owned()),
            labels: vec![
                ("x".to_owned(), "<a&b>".to_owned()),
                ("unicode".to_owned(), "ünï€ode".to_owned()),
            ],
            os: Some("freebsd".to_owned()),
            architecture: Some("riscv64".to_owned()),
            ..ImageSpec::default()
        },
    );
    for tag in ["empty", "now", "offset"] {
        compare(
            &format!("umoci image {tag}"),
            &image_ref("oci", &layout, &format!(":{tag}")),
        );
    }

    // Hand-edited: docker_version, variant and layer annotations, which umoci cannot set.
    let base = OciLayout::open(base_image(tmp.path()));
    let mut manifest = base.manifest("base");
    let mut config = base.read_json_blob(manifest["config"]["digest"].as_str().expect("config"));
    config["docker_version"] = json!("20.10.7");
    config["variant"] = json!("v8");
    config["architecture"] = json!("arm64");
    config["os.version"] = json!("1.0");
    manifest["config"] = base.add_json(OCI_CONFIG, &config);
    manifest["layers"][0]["annotations"] = json!({"org.example.layer": "first"});
    manifest["annotations"] = json!({"org.example.manifest": "yes"});
    let descriptor = base.add_json(OCI_MANIFEST, &manifest);
    base.set_tag("edited", &descriptor);
    compare(
        "hand-edited config",
        &image_ref("oci", &base.root, ":edited"),
    );
    // The same image in a docker-archive: docker_version survives, annotations do not.
    let archive = tmp.path().join("edited.tar");
    skopeo_copy(
        &[],
        &image_ref("oci", &base.root, ":edited"),
        &image_ref("docker-archive", &archive, ""),
    );
    compare(
        "hand-edited config in docker-archive",
        &image_ref("docker-archive", &archive, ""),
    );
}

#[test]
fn multi_arch_index() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let (layout, amd64, arm64) = multi_arch_layout(tmp.path());
    let multi = image_ref("oci", &layout.root, ":multi");
    let host = match std::env::consts::ARCH {
        "x86_64" => Some(&amd64),
        "aarch64" => Some(&arm64),
        _ => None,
    };
    if let Some(host) = host {
        compare_all("multi-arch, host default", &multi, &multi, &[], Some(host));
    }
    for overrides in [
        &["--override-arch", "amd64"][..],
        &["--override-arch", "arm64"][..],
        &["--override-arch", "arm64", "--override-variant", "v8"][..],
        &["--override-os", "linux", "--override-arch", "arm64"][..],
    ] {
        let manifest = if overrides.contains(&"amd64") {
            &amd64
        } else {
            &arm64
        };
        compare_all("multi-arch", &multi, &multi, overrides, Some(manifest));
    }

    // The same index copied with --all into an oci-archive (digests are preserved).
    let archive = tmp.path().join("multi.tar");
    skopeo_copy(
        &["--all"],
        &multi,
        &image_ref("oci-archive", &archive, ":multi"),
    );
    let archived = image_ref("oci-archive", &archive, ":multi");
    compare_all(
        "multi-arch oci-archive",
        &archived,
        &archived,
        &["--override-arch", "arm64"],
        Some(&arm64),
    );

    // No such platform: both fail; strata names what is available.
    let skopeo = strata_tests::run_unchecked(std::process::Command::new("skopeo").args([
        "--override-arch",
        "s390x",
        "inspect",
        &multi,
    ]));
    assert!(!skopeo.status.success(), "skopeo found an s390x image?");
    for mode in [&[][..], &["--config"][..]] {
        let mut args = vec!["inspect", "--override-arch", "s390x"];
        args.extend_from_slice(mode);
        args.push(&multi);
        let output = strata(&args);
        assert_clean_error(&output, "multi-arch, missing platform");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("s390x") && stderr.contains("amd64") && stderr.contains("arm64"),
            "the error should name the wanted and the available platforms, got: {stderr}"
        );
    }
    // Wrong variant: skopeo fails (arm64 v7 is not v8), strata too.
    both_fail(
        "multi-arch, wrong variant",
        &[
            "--override-arch",
            "arm64",
            "--override-variant",
            "v7",
            "inspect",
            &multi,
        ],
        &[
            "inspect",
            "--override-arch",
            "arm64",
            "--override-variant",
            "v7",
            &multi,
        ],
    );
}

/// `--format` runs skopeo's Go-template subset: fields, labels, literal text and `\n` print what skopeo
/// prints; `{{json .Labels}}` is the labels as compact JSON, `json` alone the usual document; anything else
/// is a clean error.
#[test]
fn format_templates_print_what_skopeo_prints() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let layout = base_image(tmp.path());
    let image = image_ref("oci", &layout, ":base");
    // skopeo 1.9 trims the spaces next to actions; these formats have none.
    for format in [
        "{{.Digest}}",
        "{{.Name}}|{{.Architecture}}|{{.Os}}\\n{{.Labels.name}}|{{.Labels.nope}}|{{.DockerVersion}}",
        "{{.Layers}}|{{.RepoTags}}|{{.Env}}|{{.Created}}",
        "{{.Labels}}",
        "{{index .Labels \"org.opencontainers.image.title\"}}",
        "digest={{.Digest}}\\n",
        "plain text",
    ] {
        let theirs = skopeo_ok(["inspect", "--format", format, &image]);
        let ours = strata_ok(["inspect", "--format", format, &image]);
        assert_bytes_eq(&theirs, &ours, &format!("--format {format}"));
    }
    let inspected = parse_json(&strata_ok(["inspect", &image]), "inspect");
    let labels = strata_ok(["inspect", "--format", "{{json .Labels}}", &image]);
    assert!(
        labels.ends_with(b"}\n") && !labels[..labels.len() - 1].contains(&b'\n'),
        "one line: {}",
        show(&labels)
    );
    assert!(
        labels.starts_with(b"{\"empty\":\"\","),
        "compact: {}",
        show(&labels)
    );
    assert!(
        String::from_utf8_lossy(&labels).contains("Strata <test> & co"),
        "not HTML-escaped: {}",
        show(&labels)
    );
    assert_eq!(parse_json(&labels, "json .Labels"), inspected["Labels"]);
    assert_eq!(
        strata_ok(["inspect", "--format", "json", &image]),
        strata_ok(["inspect", &image])
    );
    for bad in [
        "{{.Foo}}",
        "{{if .Name}}x{{end}}",
        "{{.Labels.a.b}}",
        "{{.Os",
    ] {
        let out = strata(["inspect", "--format", bad, &image]);
        assert_clean_error(&out, bad);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--format"),
            "{}",
            show(&out.stderr)
        );
    }
}

/// `--all-platforms` lists every instance of a two-platform index; each entry's `Inspect` is what
/// `skopeo --override-arch ARCH inspect` prints for that platform, and its manifest digest, size and
/// layers are the index entry's. A single-platform image is a list of one.
#[test]
fn all_platforms_lists_each_instance_as_skopeo_inspects_it() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let (layout, amd64, arm64) = multi_arch_layout(tmp.path());
    let multi = image_ref("oci", &layout.root, ":multi");
    let index = parse_json(&skopeo_ok(["inspect", "--raw", &multi]), "skopeo --raw");
    let list = parse_json(
        &strata_ok(["inspect", "--all-platforms", &multi]),
        "strata inspect --all-platforms",
    );
    let entries = list.as_array().expect("a JSON list");
    assert_eq!(entries.len(), 2, "two instances: {list:#}");
    let wanted = [
        ("amd64", None, &amd64, &index["manifests"][0]),
        ("arm64", Some("v8"), &arm64, &index["manifests"][1]),
    ];
    for (entry, (arch, variant, manifest, descriptor)) in entries.iter().zip(wanted) {
        let label = format!("--all-platforms {arch}");
        assert_eq!(entry["Platform"]["os"], "linux", "{label}");
        assert_eq!(entry["Platform"]["architecture"], arch, "{label}");
        assert_eq!(
            entry["Platform"].get("variant").and_then(Value::as_str),
            variant,
            "{label}"
        );
        assert_eq!(entry["Digest"], descriptor["digest"], "{label} digest");
        assert_eq!(entry["Size"], descriptor["size"], "{label} size");
        assert_eq!(entry["MediaType"], OCI_MANIFEST, "{label} media type");
        let layers: Vec<Value> = manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].clone())
            .collect();
        assert_eq!(entry["Layers"], Value::Array(layers), "{label} layers");
        let total: u64 = manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["size"].as_u64().expect("size"))
            .sum();
        assert_eq!(entry["LayersSize"], total, "{label} layers size");
        let want = parse_json(
            &skopeo_ok(["--override-arch", arch, "inspect", &multi]),
            &format!("skopeo --override-arch {arch} inspect"),
        );
        assert_json_keys_eq(&want, &entry["Inspect"], &["LayersData", "Variant"], &label);
        assert_layers_data(&entry["Inspect"], manifest, &label);
        // And what strata inspect prints for that platform alone.
        let alone = parse_json(
            &strata_ok(["inspect", "--override-arch", arch, &multi]),
            &format!("strata inspect --override-arch {arch}"),
        );
        assert_eq!(entry["Inspect"], alone, "{label}: equals strata inspect");
    }

    // The same index in a registry (pushed by skopeo with --all): each entry is what skopeo inspects for
    // its platform there too, `Name` and `RepoTags` included.
    if require_tool("docker-registry") {
        let reg = Registry::start(Auth::Open);
        reg.push(&multi, "multi/image:v1", &["--all"]);
        let remote = reg.image("multi/image:v1");
        let list = parse_json(
            &strata_ok(["inspect", "--tls-verify=false", "--all-platforms", &remote]),
            "strata inspect --all-platforms docker://",
        );
        let entries = list.as_array().expect("a JSON list");
        assert_eq!(entries.len(), 2, "two instances: {list:#}");
        for (entry, arch) in entries.iter().zip(["amd64", "arm64"]) {
            assert_eq!(entry["Platform"]["architecture"], arch);
            let want = parse_json(
                &skopeo_ok([
                    "--override-arch",
                    arch,
                    "inspect",
                    "--tls-verify=false",
                    &remote,
                ]),
                &format!("skopeo --override-arch {arch} inspect docker://"),
            );
            assert_json_keys_eq(
                &want,
                &entry["Inspect"],
                &["LayersData", "Variant"],
                &format!("--all-platforms docker:// {arch}"),
            );
        }
    }

    // A single-platform image: a list of one, whose digest is the manifest's.
    let single = image_ref("oci", &layout.root, ":base");
    let list = parse_json(
        &strata_ok(["inspect", "--all-platforms", &single]),
        "strata inspect --all-platforms (single)",
    );
    let entries = list.as_array().expect("a JSON list");
    assert_eq!(entries.len(), 1, "one instance: {list:#}");
    let alone = parse_json(&strata_ok(["inspect", &single]), "strata inspect");
    assert_eq!(entries[0]["Inspect"], alone);
    assert_eq!(entries[0]["Digest"], alone["Digest"]);
    assert_eq!(entries[0]["Platform"]["architecture"], "amd64");
}
