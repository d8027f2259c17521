//! `strata sbom` against real peers: on a Debian (dpkg), an rpm, an apk image and one with Python, npm and
//! Go content, the SPDX document passes `pyspdxtools -i`, the CycloneDX one cyclonedx-python-lib's strict
//! JSON validator, and the package set (name, version, type) equals `syft scan … -o syft-json`'s, where the
//! two differ a test says which is right and why. On an image whose layers each change the dpkg database,
//! every package names the layer that introduced it, and `--since-base` lists exactly the upper layers'
//! changes and removals.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_fixtures::elf::{GoBuildInfoFormat, go_elf, go_modinfo};
use strata_tests::packages::{APK_INSTALLED, build_rpms, new_image, rpm_database};
use strata_tests::rich::umoci_repack;
use strata_tests::{parse_json, pypi_peer, require_tool, run, show_output, strata_ok, umoci};

const CREATED: &str = "2026-01-02T03:04:05Z";

/// (name, version, type) as syft names types.
type Triple = (String, String, String);

/// The peers: pyspdxtools, the venv's python (with cyclonedx-python-lib) and syft.
struct Peers {
    pyspdxtools: PathBuf,
    python: PathBuf,
    syft: PathBuf,
}

fn peers() -> Option<Peers> {
    if !require_tool("umoci") {
        return None;
    }
    Some(Peers {
        pyspdxtools: pypi_peer("pyspdxtools")?,
        python: pypi_peer("python")?,
        syft: pypi_peer("syft")?,
    })
}

/// `strata sbom IMAGE --format FORMAT -o FILE ARGS…` → FILE.
fn sbom_file(image: &str, format: &str, out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "sbom",
        "--created",
        CREATED,
        "--format",
        format,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(image);
    strata_ok(&args);
    out.to_owned()
}

fn sbom_json(image: &str, extra: &[&str]) -> Value {
    sbom_doc(image, "strata-json", extra)
}

/// `strata sbom --format FORMAT ARGS… IMAGE` on standard output, parsed.
fn sbom_doc(image: &str, format: &str, extra: &[&str]) -> Value {
    let mut args = vec!["sbom", "--created", CREATED, "--format", format];
    args.extend_from_slice(extra);
    args.push(image);
    parse_json(&strata_ok(&args), format)
}

fn validate(peers: &Peers, image: &str, work: &Path) {
    let spdx = sbom_file(image, "spdx-json", &work.join("sbom.spdx.json"), &[]);
    let out = run(Command::new(&peers.pyspdxtools).arg("-i").arg(&spdx));
    let text = show_output(&out);
    assert!(
        !text.to_lowercase().contains("invalid"),
        "pyspdxtools on {image}: {text}"
    );
    let cdx = sbom_file(image, "cyclonedx-json", &work.join("sbom.cdx.json"), &[]);
    run(Command::new(&peers.python)
        .arg("-c")
        .arg(
            "import sys\n\
         from cyclonedx.validation.json import JsonStrictValidator\n\
         from cyclonedx.schema import SchemaVersion\n\
         err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
         if err is not None:\n    sys.exit(f'invalid CycloneDX: {err}')\n",
        )
        .arg(&cdx));
    // Deterministic: the same bytes twice, and the serial number is not random.
    let again = fs::read(sbom_file(
        image,
        "cyclonedx-json",
        &work.join("again.cdx.json"),
        &[],
    ))
    .unwrap();
    assert_eq!(
        fs::read(&cdx).unwrap(),
        again,
        "{image}: CycloneDX output is deterministic"
    );
}

fn syft_type(t: &str) -> &str {
    match t {
        "go" => "go-module",
        other => other,
    }
}

/// (name, version, type) of each object of `list`, the type read from key `ty` as syft names it.
fn triples(list: &Value, ty: &str) -> BTreeSet<Triple> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap().to_owned();
            (
                field("name"),
                field("version"),
                syft_type(&field(ty)).to_owned(),
            )
        })
        .collect()
}

fn strata_set(doc: &Value) -> BTreeSet<Triple> {
    triples(&doc["packages"], "type")
}

/// `syft scan ARGS… -o syft-json oci-dir:LAYOUT` (one image in the layout), parsed.
fn syft_json(peers: &Peers, layout: &Path, args: &[&str]) -> Value {
    let out = run(Command::new(&peers.syft)
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .args(["scan", "-q", "-o", "syft-json"])
        .args(args)
        .arg(format!("oci-dir:{}", layout.display())));
    parse_json(&out.stdout, "syft-json")
}

/// syft's package set of the OCI layout `layout`.
fn syft_set(peers: &Peers, layout: &Path) -> BTreeSet<Triple> {
    triples(&syft_json(peers, layout, &[])["artifacts"], "type")
}

fn os_release(rootfs: &Path, text: &str) {
    fs::create_dir_all(rootfs.join("usr/lib")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("usr/lib/os-release"), text).unwrap();
    symlink("../usr/lib/os-release", rootfs.join("etc/os-release")).unwrap();
}

fn write(rootfs: &Path, path: &str, bytes: &[u8], mode: u32) {
    let p = rootfs.join(path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, bytes).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A one-layer image `tag` in its own layout under `work`, with `files` (path, bytes, mode) and
/// os-release `os`: its SBOMs validated, its package set equal to syft's (Python names compared
/// normalized: see `python_npm_and_go_packages_equal_syft`); returns strata's JSON and the image.
fn checked_image(
    peers: &Peers,
    work: &Path,
    tag: &str,
    os: &str,
    files: &[(&str, &[u8], u32)],
) -> (Value, String) {
    let layout = work.join(format!("{tag}-layout"));
    let (image, bundle) = new_image(&layout, tag);
    let rootfs = bundle.join("rootfs");
    os_release(&rootfs, os);
    for (path, bytes, mode) in files {
        write(&rootfs, path, bytes, *mode);
    }
    umoci_repack(&image, &bundle, true);
    let oci = format!("oci:{image}");
    let scratch = work.join(format!("{tag}-work"));
    fs::create_dir(&scratch).unwrap();
    validate(peers, &oci, &scratch);
    let doc = sbom_json(&oci, &[]);
    let ours = strata_set(&doc);
    let theirs = syft_set(peers, &layout);
    let only_syft: Vec<_> = theirs.difference(&ours).collect();
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    eprintln!("{tag}: only syft: {only_syft:?}; only strata: {only_ours:?}");
    assert_eq!(
        normalize(&ours),
        normalize(&theirs),
        "{tag}: strata and syft list the same packages"
    );
    (doc, oci)
}

/// Python names as PEP 503 normalizes them (lower case, runs of `-_.` as `-`).
fn normalize(set: &BTreeSet<Triple>) -> BTreeSet<Triple> {
    set.iter()
        .map(|(n, v, t)| {
            let n = if t == "python" {
                n.to_lowercase().replace(['_', '.'], "-")
            } else {
                n.clone()
            };
            (n, v.clone(), t.clone())
        })
        .collect()
}

#[test]
fn debian_image_sbom_validates_and_equals_syft() {
    let Some(peers) = peers() else { return };
    let Ok(status) = fs::read("/var/lib/dpkg/status") else {
        assert!(
            !strata_tests::under_ci(),
            "CI runs on Debian: /var/lib/dpkg/status must exist"
        );
        eprintln!("SKIP: no /var/lib/dpkg/status on this machine");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    // The machine's dpkg database and its packages' copyright files (symlinks followed), for licences.
    let mut copyrights = Vec::new();
    for entry in fs::read_dir("/usr/share/doc").unwrap() {
        let entry = entry.unwrap();
        if let Ok(text) = fs::read(entry.path().join("copyright")) {
            let name = entry.file_name().to_str().unwrap().to_owned();
            copyrights.push((format!("usr/share/doc/{name}/copyright"), text));
        }
    }
    assert!(
        copyrights.len() > 50,
        "copyright files: {}",
        copyrights.len()
    );
    let mut files: Vec<(&str, &[u8], u32)> = vec![("var/lib/dpkg/status", &status, 0o644)];
    files.extend(
        copyrights
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_slice(), 0o644)),
    );
    let os = fs::read_to_string("/etc/os-release").unwrap();
    let (doc, _) = checked_image(&peers, work.path(), "debian", &os, &files);
    let packages = doc["packages"].as_array().unwrap();
    assert!(
        packages.len() > 100,
        "a realistic database: {}",
        packages.len()
    );
    let dpkg = packages.iter().find(|p| p["name"] == "dpkg").unwrap();
    let distro = doc["distribution"]["id"].as_str().unwrap();
    let version_id = doc["distribution"]["version_id"].as_str().unwrap();
    assert_eq!(
        dpkg["purl"],
        format!(
            "pkg:deb/{distro}/dpkg@{}?arch={}&distro={distro}-{version_id}",
            dpkg["version"]
                .as_str()
                .unwrap()
                .replace('+', "%2B")
                .replace(':', "%3A"),
            dpkg["architecture"].as_str().unwrap()
        )
    );
    let licensed = packages
        .iter()
        .filter(|p| !p["licenses"].as_array().unwrap().is_empty())
        .count();
    assert!(
        licensed > 20,
        "licences from machine-readable copyright files: {licensed}"
    );
    assert!(packages.iter().all(|p| p["layer"]["index"] == 0));
}

/// The lowercase hex digest `tool` (`sha1sum`, `sha256sum`, `md5sum`) prints for `bytes`.
fn digest_by(tool: &str, dir: &Path, bytes: &[u8]) -> String {
    let file = dir.join("digest-input");
    fs::write(&file, bytes).unwrap();
    let out = String::from_utf8(run(Command::new(tool).arg(&file)).stdout).unwrap();
    out.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn os_packages_list_the_files_they_own_with_their_digests() {
    let Some(peers) = peers() else { return };
    let work = tempfile::tempdir().unwrap();
    let data: &[u8] = b"owned by strata-owned\n";
    let conf: &[u8] = b"setting = 1\n";
    let changed: &[u8] = b"changed since it was installed\n";
    let status = "Package: strata-owned\nStatus: install ok installed\nPriority: optional\nSection: misc\n\
                  Maintainer: Strata <strata@example.invalid>\nArchitecture: amd64\nVersion: 1.0-1\n\
                  Conffiles:\n /etc/strata-owned.conf 0123456789abcdef0123456789abcdef\n\
                  Description: a package owning files\n";
    let dir = work.path();
    let md5sums = format!(
        "{}  usr/share/strata/data.txt\n{}  usr/share/strata/changed.txt\n\
         0123456789abcdef0123456789abcdef  usr/share/strata/gone.txt\n",
        digest_by("md5sum", dir, data),
        digest_by("md5sum", dir, b"the original\n"),
    );
    let (doc, oci) = checked_image(
        &peers,
        dir,
        "owned",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        &[
            ("var/lib/dpkg/status", status.as_bytes(), 0o644),
            (
                "var/lib/dpkg/info/strata-owned.md5sums",
                md5sums.as_bytes(),
                0o644,
            ),
            ("usr/share/strata/data.txt", data, 0o644),
            ("usr/share/strata/changed.txt", changed, 0o644),
            ("etc/strata-owned.conf", conf, 0o644),
        ],
    );
    let package = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "strata-owned")
        .unwrap();
    // Every regular file the database names and the image has (gone.txt is not there), with the digests of
    // the bytes the image holds (changed.txt's differ from the recorded MD5, which is kept beside them).
    let files: Vec<(String, String, String, String)> = package["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["sha1"].as_str().unwrap().to_owned(),
                f["sha256"].as_str().unwrap().to_owned(),
                f["recorded"]["hex"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |path: &str, bytes: &[u8], recorded: String| {
        (
            path.to_owned(),
            digest_by("sha1sum", dir, bytes),
            digest_by("sha256sum", dir, bytes),
            recorded,
        )
    };
    assert_eq!(
        files,
        [
            expect(
                "/usr/share/strata/data.txt",
                data,
                digest_by("md5sum", dir, data)
            ),
            expect(
                "/usr/share/strata/changed.txt",
                changed,
                digest_by("md5sum", dir, b"the original\n")
            ),
            expect(
                "/etc/strata-owned.conf",
                conf,
                "0123456789abcdef0123456789abcdef".to_owned()
            ),
        ]
    );
    // In SPDX, File elements the package CONTAINS (checked by pyspdxtools above, with their SHA1).
    let spdx = sbom_doc(&oci, "spdx-json", &[]);
    let names: BTreeSet<&str> = spdx["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "./etc/strata-owned.conf",
            "./usr/share/strata/changed.txt",
            "./usr/share/strata/data.txt"
        ])
    );
    // --no-files leaves them out.
    let bare = sbom_json(&oci, &["--no-files"]);
    assert!(
        bare["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("files").is_none())
    );
}

#[test]
fn rpm_and_apk_image_sboms_validate_and_equal_syft() {
    let Some(peers) = peers() else { return };
    if !(require_tool("rpm") && require_tool("rpmbuild")) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let rpms = build_rpms(
        work.path(),
        &[
            ("strata-hello", "1.2.3", "4.el9", Some(2)),
            ("strata-plain", "0.9", "1", None),
        ],
    );
    let db = work.path().join("rpmdb");
    rpm_database(&db, &rpms);
    let sqlite = fs::read(db.join("rpmdb.sqlite")).unwrap();
    let (doc, _) = checked_image(
        &peers,
        work.path(),
        "rpm",
        "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"9.3\"\nID_LIKE=\"fedora\"\n",
        &[("var/lib/rpm/rpmdb.sqlite", &sqlite, 0o644)],
    );
    let hello = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "strata-hello")
        .unwrap();
    assert_eq!(
        hello["purl"],
        "pkg:rpm/redhat/strata-hello@1.2.3-4.el9?arch=noarch&distro=rhel-9.3&epoch=2"
    );
    assert_eq!(hello["licenses"], serde_json::json!(["MIT"]));

    // A compound SPDX expression for a licence, as Alpine writes some.
    let installed = format!(
        "{APK_INSTALLED}C:Q1QoNd6Smm1fRr1ZrQ0GZm4cxjWgI=\nP:ca-certificates-bundle\nV:20240226-r0\n\
         A:x86_64\nL:MPL-2.0 AND MIT\no:ca-certificates\nF:etc/ssl/certs\nR:ca-certificates.crt\n\n"
    );
    let (doc, oci) = checked_image(
        &peers,
        work.path(),
        "apk",
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
        &[("lib/apk/db/installed", installed.as_bytes(), 0o644)],
    );
    assert_eq!(doc["packages"].as_array().unwrap().len(), 4);
    assert_eq!(
        doc["packages"][0]["purl"],
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"
    );
    let cdx = sbom_doc(&oci, "cyclonedx-json", &[]);
    // A compound SPDX expression is CycloneDX's `expression`, a single identifier a licence `id`.
    let by_name: BTreeMap<&str, &Value> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c))
        .collect();
    assert_eq!(
        by_name["ca-certificates-bundle"]["licenses"][0]["expression"],
        "MPL-2.0 AND MIT"
    );
    assert_eq!(by_name["musl"]["licenses"][0]["license"]["id"], "MIT");
    assert_eq!(cdx["metadata"]["component"]["type"], "container");
}

#[test]
fn python_npm_and_go_packages_equal_syft() {
    let Some(peers) = peers() else { return };
    let work = tempfile::tempdir().unwrap();
    let hello = go_elf(
        "go1.22.1",
        &go_modinfo(
            "example.com/hello",
            ("example.com/hello", "v1.2.3"),
            &[
                (
                    "github.com/google/uuid",
                    "v1.6.0",
                    "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=",
                ),
                (
                    "golang.org/x/sys",
                    "v0.20.0",
                    "h1:Od9JTbYCk261bKm4M/mw7AklTlFYIa0bIp9BgSm1S8Y=",
                ),
            ],
        ),
        GoBuildInfoFormat::Inline,
    );
    // Go < 1.18's layout: the header points to the strings.
    let old = go_elf(
        "go1.16.15",
        &go_modinfo(
            "example.com/old",
            ("example.com/old", "v0.1.0"),
            &[(
                "github.com/pkg/errors",
                "v0.9.1",
                "h1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=",
            )],
        ),
        GoBuildInfoFormat::Pointers,
    );
    // Built outside module mode, as Debian builds Go: a `path` line and no `mod` line.
    let gopath = go_elf(
        "go1.19.8",
        &go_modinfo("example.com/cmd/gopath", ("", ""), &[]),
        GoBuildInfoFormat::Inline,
    );
    let files: [(&str, &[u8], u32); 9] = [
        (
            "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: HTTP\nLicense: Apache 2.0\n\
              Classifier: License :: OSI Approved :: Apache Software License\n\nLong description\n",
            0o644,
        ),
        (
            "usr/local/lib/python3.11/site-packages/typing_extensions-4.9.0.dist-info/METADATA",
            b"Metadata-Version: 2.4\nName: typing_extensions\nVersion: 4.9.0\nLicense-Expression: PSF-2.0\n\n",
            0o644,
        ),
        (
            "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
            b"Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
            0o644,
        ),
        (
            "app/node_modules/lodash/package.json",
            br#"{"name":"lodash","version":"4.17.21","license":"MIT"}"#,
            0o644,
        ),
        (
            "app/node_modules/@types/node/package.json",
            br#"{"name":"@types/node","version":"20.11.5","license":"MIT"}"#,
            0o644,
        ),
        (
            "app/node_modules/lodash/node_modules/inner/package.json",
            br#"{"name":"inner","version":"0.1.0","licenses":[{"type":"ISC"}]}"#,
            0o644,
        ),
        ("usr/local/bin/hello", &hello, 0o755),
        ("usr/local/bin/old", &old, 0o755),
        ("usr/local/bin/gopath", &gopath, 0o755),
    ];
    let (doc, _) = checked_image(
        &peers,
        work.path(),
        "lang",
        "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n",
        &files,
    );
    let t = |n: &str, v: &str, ty: &str| (n.to_owned(), v.to_owned(), ty.to_owned());
    // syft agrees on all of these (checked_image), Go's two layouts included, with one difference: it
    // reports a Python distribution under its normalized name (PEP 503), `typing-extensions`; strata
    // reports the `Name:` its METADATA declares, which `pip list` and `importlib.metadata` show. Both
    // name the same project, and strata's purl normalizes the name as the purl spec says.
    let expected: BTreeSet<Triple> = [
        t("requests", "2.31.0", "python"),
        t("typing_extensions", "4.9.0", "python"),
        t("six", "1.16.0", "python"),
        t("lodash", "4.17.21", "npm"),
        t("@types/node", "20.11.5", "npm"),
        t("inner", "0.1.0", "npm"),
        t("example.com/hello", "v1.2.3", "go-module"),
        t("github.com/google/uuid", "v1.6.0", "go-module"),
        t("golang.org/x/sys", "v0.20.0", "go-module"),
        t("stdlib", "go1.22.1", "go-module"),
        t("example.com/old", "v0.1.0", "go-module"),
        t("github.com/pkg/errors", "v0.9.1", "go-module"),
        t("stdlib", "go1.16.15", "go-module"),
        t("example.com/cmd/gopath", "(devel)", "go-module"),
        t("stdlib", "go1.19.8", "go-module"),
    ]
    .into_iter()
    .collect();
    assert_eq!(strata_set(&doc), expected);
    let purls: BTreeMap<&str, &str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["purl"].as_str().unwrap()))
        .collect();
    assert_eq!(purls["@types/node"], "pkg:npm/%40types/node@20.11.5");
    assert_eq!(
        purls["typing_extensions"],
        "pkg:pypi/typing-extensions@4.9.0"
    );
    assert_eq!(
        purls["github.com/google/uuid"],
        "pkg:golang/github.com/google/uuid@v1.6.0"
    );
    let licenses: BTreeMap<&str, &Value> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), &p["licenses"]))
        .collect();
    assert_eq!(
        licenses["typing_extensions"],
        &serde_json::json!(["PSF-2.0"])
    );
    assert_eq!(licenses["inner"], &serde_json::json!(["ISC"]));
}

/// A dpkg status paragraph.
fn paragraph(name: &str, version: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: misc\n\
         Maintainer: Strata <strata@example.invalid>\nArchitecture: amd64\nVersion: {version}\n\
         Description: a test package\n\n"
    )
}

fn status(packages: &[(&str, &str)]) -> String {
    packages.iter().map(|(n, v)| paragraph(n, v)).collect()
}

#[test]
fn every_package_names_its_layer_and_since_base_lists_the_upper_changes() {
    let Some(peers) = peers() else { return };
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let (image, bundle) = new_image(&layout, "layers");
    let rootfs = bundle.join("rootfs");
    os_release(
        &rootfs,
        "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    let steps: [&[(&str, &str)]; 3] = [
        &[("base-a", "1.0-1"), ("base-b", "2.0-1")],
        &[
            ("base-a", "1.0-1"),
            ("base-b", "2.0-1"),
            ("mid-c", "3.0-1"),
            ("mid-d", "4.0-1"),
        ],
        // base-b removed, mid-d upgraded, top-e added; base-a and mid-c untouched.
        &[
            ("base-a", "1.0-1"),
            ("mid-c", "3.0-1"),
            ("mid-d", "4.1-1"),
            ("top-e", "5.0-1"),
        ],
    ];
    for (i, step) in steps.iter().enumerate() {
        write(
            &rootfs,
            "var/lib/dpkg/status",
            status(step).as_bytes(),
            0o644,
        );
        // Language packages too: base-py is upgraded by layer 1, old-js removed by layer 2.
        let base_py = |v: &str| format!("usr/lib/python3/dist-packages/base_py-{v}.dist-info");
        match i {
            0 => {
                write(
                    &rootfs,
                    &format!("{}/METADATA", base_py("1.0")),
                    b"Name: base-py\nVersion: 1.0\n",
                    0o644,
                );
                write(
                    &rootfs,
                    "usr/lib/node_modules/old-js/package.json",
                    br#"{"name": "old-js", "version": "0.1.0"}"#,
                    0o644,
                );
            }
            1 => {
                fs::remove_dir_all(rootfs.join(base_py("1.0"))).unwrap();
                write(
                    &rootfs,
                    &format!("{}/METADATA", base_py("1.1")),
                    b"Name: base-py\nVersion: 1.1\n",
                    0o644,
                );
            }
            _ => fs::remove_dir_all(rootfs.join("usr/lib/node_modules/old-js")).unwrap(),
        }
        // A file of the layer's own, so that layer 2's python package is attributed too.
        if i == 2 {
            write(
                &rootfs,
                "usr/lib/python3/dist-packages/top_py-1.0.dist-info/METADATA",
                b"Name: top-py\nVersion: 1.0\n",
                0o644,
            );
        }
        umoci_repack(&image, &bundle, true);
        if i == 0 {
            umoci(["tag", "--image", &image, "base"]);
        }
    }
    let oci = format!("oci:{image}");
    let doc = sbom_json(&oci, &[]);
    assert_eq!(doc["layers"].as_array().unwrap().len(), 3);
    let layers: BTreeMap<String, (String, u64)> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                (
                    p["version"].as_str().unwrap().to_owned(),
                    p["layer"]["index"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    let v = |s: &str, l: u64| (s.to_owned(), l);
    assert_eq!(
        layers,
        [
            ("base-a".to_owned(), v("1.0-1", 0)),
            ("base-py".to_owned(), v("1.1", 1)),
            ("mid-c".to_owned(), v("3.0-1", 1)),
            ("mid-d".to_owned(), v("4.1-1", 2)),
            ("top-e".to_owned(), v("5.0-1", 2)),
            ("top-py".to_owned(), v("1.0", 2)),
        ]
        .into_iter()
        .collect()
    );
    // The layer digests are the image's.
    let layer2 = &doc["layers"][2];
    let e = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "top-e")
        .unwrap();
    assert_eq!(e["layer"]["digest"], layer2["digest"]);
    assert_eq!(e["layer"]["diff_id"], layer2["diff_id"]);

    let names = |doc: &Value, key: &str| -> Vec<String> {
        let mut n: Vec<String> = doc[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}={}@{}",
                    p["name"].as_str().unwrap(),
                    p["version"].as_str().unwrap(),
                    p["layer"]["index"]
                )
            })
            .collect();
        n.sort();
        n
    };
    // Above the bottom layer: what layers 1 and 2 added or changed, and base-b and old-js, which layer 2
    // removed; base-py names the version the base had.
    let since1 = sbom_json(&oci, &["--since-base", "1"]);
    assert_eq!(
        names(&since1, "packages"),
        [
            "base-py=1.1@1",
            "mid-c=3.0-1@1",
            "mid-d=4.1-1@2",
            "top-e=5.0-1@2",
            "top-py=1.0@2"
        ]
    );
    assert_eq!(
        names(&since1, "removed"),
        ["base-b=2.0-1@2", "old-js=0.1.0@2"]
    );
    let previous = |doc: &Value, name: &str| -> Value {
        let list = doc["packages"].as_array().unwrap();
        let p = list.iter().find(|p| p["name"] == name).unwrap();
        p["previous_version"].clone()
    };
    assert_eq!(previous(&since1, "base-py"), "1.0");
    // The same base given as an image: the layout's `base` tag is the image after its first layer.
    let by_image = sbom_json(
        &oci,
        &["--since-base", &format!("oci:{}:base", layout.display())],
    );
    assert_eq!(by_image["packages"], since1["packages"]);
    assert_eq!(by_image["removed"], since1["removed"]);
    assert_eq!(by_image["base_layers"], 1);
    // Above two layers: only layer 2's changes; mid-d names the version the base had.
    let since2 = sbom_json(&oci, &["--since-base", "2"]);
    assert_eq!(
        names(&since2, "packages"),
        ["mid-d=4.1-1@2", "top-e=5.0-1@2", "top-py=1.0@2"]
    );
    assert_eq!(
        names(&since2, "removed"),
        ["base-b=2.0-1@2", "old-js=0.1.0@2"]
    );
    assert_eq!(previous(&since2, "mid-d"), "4.0-1");
    // A base that is not a prefix of the image is refused.
    let out = strata_tests::strata(["sbom", "--since-base", "4", &oci]);
    assert!(!out.status.success());
    // The removed package is in both documents, marked, and the validators still pass.
    let spdx = sbom_file(
        &oci,
        "spdx-json",
        &work.path().join("since.spdx.json"),
        &["--since-base", "1"],
    );
    run(Command::new(&peers.pyspdxtools).arg("-i").arg(&spdx));
    let spdx: Value = serde_json::from_slice(&fs::read(&spdx).unwrap()).unwrap();
    let text = spdx.to_string();
    assert!(text.contains("strata:removed-by-layer=2"), "{text}");
    let cdx = sbom_doc(&oci, "cyclonedx-json", &["--since-base", "1"]);
    let b = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "base-b")
        .unwrap();
    assert!(
        b["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "strata:removed" && p["value"] == "true")
    );
    umoci(["rm", "--image", &format!("{}:base", layout.display())]);
    // syft's view of the same layers (the `base` tag dropped first: syft reads a layout of one image) (`--scope all-layers`, each location with the diff_id of the layer
    // it read): for every package strata lists, the lowest layer in which syft found that name and
    // version is the layer strata names.
    let syft = syft_json(&peers, &layout, &["--scope", "all-layers"]);
    let diff_ids: Vec<&str> = doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap())
        .collect();
    let mut syft_layers: BTreeMap<(String, String), u64> = BTreeMap::new();
    for a in syft["artifacts"].as_array().unwrap() {
        for loc in a["locations"].as_array().unwrap() {
            let layer = diff_ids
                .iter()
                .position(|d| Some(*d) == loc["layerID"].as_str())
                .unwrap() as u64;
            let key = (
                a["name"].as_str().unwrap().to_owned(),
                a["version"].as_str().unwrap().to_owned(),
            );
            let e = syft_layers.entry(key).or_insert(layer);
            *e = (*e).min(layer);
        }
    }
    for (name, (version, layer)) in &layers {
        assert_eq!(
            syft_layers.get(&(name.clone(), version.clone())),
            Some(layer),
            "{name} {version}: syft's lowest layer"
        );
    }
}
