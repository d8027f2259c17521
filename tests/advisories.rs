//! `strata check --advisories FEED --now DATE`: a test OSV feed, written here with hand-checked
//! expectations, grades six Debian 12 images A to F by the Container Health Index's rules, and
//! `free_of_critical_vulnerabilities` fails exactly for the images a Critical advisory applies to. The
//! feed is read as a directory and as the zip an OSV export is.
//!
//! The rules (issue 17): A — no unapplied Critical or Important erratum; B — none older than 7 days
//! (Critical) / 30 days (Important); C — 30 / 90; D — 90 / 365; E — none older than 365; F — older. At
//! `--now 2026-01-01` each image has one package with one advisory of the age and severity below.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write as _;
use std::path::Path;

use serde_json::{Value, json};
use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
use strata_tests::{image_ref, parse_json, strata};

/// CVSS 3.1 vectors: 9.8 (Critical) and 7.5 (Important on Red Hat's scale).
const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
const IMPORTANT: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N";

/// (image, package, advisory published, vector, expected grade, expected free of Critical, age in days).
const CASES: [(&str, &str, &str, &str, &str, bool, i64); 6] = [
    ("a", "fixed-already", "2025-01-01", CRITICAL, "A", true, 365),
    ("b", "crit-new", "2025-12-28", CRITICAL, "B", false, 4),
    ("c", "imp-60", "2025-11-02", IMPORTANT, "C", true, 60),
    ("d", "crit-60", "2025-11-02", CRITICAL, "D", false, 60),
    ("e", "crit-200", "2025-06-15", CRITICAL, "E", false, 200),
    ("f", "imp-400", "2024-11-27", IMPORTANT, "F", true, 400),
];

fn image(dir: &Path, package: &str) -> String {
    let mut layer = LayerBuilder::new();
    layer.file(
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
    );
    layer.file(
        "var/lib/dpkg/status",
        format!(
            "Package: {package}\nStatus: install ok installed\nPriority: optional\nSection: misc\n\
             Maintainer: Strata <strata@example.invalid>\nArchitecture: amd64\nVersion: 1.0-1\n\
             Description: a package with one advisory\n"
        ),
    );
    ImageBuilder::new()
        .layer(layer, Compression::Gzip)
        .write_layout(dir, "v1")
        .unwrap();
    image_ref("oci", dir, ":v1")
}

/// One OSV record per case: the package's versions before `1.0-2` affected (for `fixed-already`, before
/// `0.9-1`, so the installed `1.0-1` is not).
fn feed(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for (i, (_, package, published, vector, ..)) in CASES.iter().enumerate() {
        let fixed = if *package == "fixed-already" {
            "0.9-1"
        } else {
            "1.0-2"
        };
        let record = json!({
            "schema_version": "1.6.0",
            "id": format!("DSA-{:04}-1", i + 1),
            "modified": format!("{published}T00:00:00Z"),
            "published": format!("{published}T00:00:00Z"),
            "summary": format!("{package}: a test advisory"),
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
            }],
            "severity": [{"type": "CVSS_V3", "score": vector}]
        });
        let name = format!("DSA-{:04}-1.json", i + 1);
        let bytes = serde_json::to_vec_pretty(&record).unwrap();
        fs::write(dir.join(&name), &bytes).unwrap();
        files.push((name, bytes));
    }
    files
}

fn check(image: &str, feed: &Path) -> Value {
    let out = strata([
        "check",
        "--json",
        "--no-verify-packages",
        "--advisories",
        feed.to_str().unwrap(),
        "--now",
        "2026-01-01",
        image,
    ]);
    // The fixtures lack labels: the check fails (exit 1), its report is complete.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_json(&out.stdout, "strata check --json")
}

#[test]
fn an_osv_feed_grades_images_a_to_f() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feed");
    fs::create_dir(&dir).unwrap();
    let files = feed(&dir);
    // The same feed as an OSV export's zip.
    let zip_path = tmp.path().join("all.zip");
    {
        let mut zip = zip::ZipWriter::new(fs::File::create(&zip_path).unwrap());
        for (name, bytes) in &files {
            zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    for (name, package, published, _, grade, free, age) in CASES {
        let image = image(&tmp.path().join(name), package);
        for feed in [&dir, &zip_path] {
            let report = check(&image, feed);
            let what = format!("image {name} ({package}), feed {}", feed.display());
            assert_eq!(report["health_index"]["grade"], grade, "{what}: {report:#}");
            let critical = report["assessments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["name"] == "free_of_critical_vulnerabilities")
                .unwrap();
            assert_eq!(
                critical["result"],
                if free { "pass" } else { "fail" },
                "{what}: {critical}"
            );
            let findings = report["advisories"]["findings"].as_array().unwrap();
            if package == "fixed-already" {
                assert!(findings.is_empty(), "{what}: {findings:?}");
                continue;
            }
            assert_eq!(findings.len(), 1, "{what}: {findings:?}");
            let f = &findings[0];
            assert_eq!(f["package"], package, "{what}");
            assert_eq!(f["installed"], "1.0-1", "{what}");
            assert_eq!(f["fixed"], "1.0-2", "{what}");
            assert_eq!(f["published"], published, "{what}");
            assert_eq!(f["age_days"], age, "{what}");
        }
    }
}

#[test]
fn without_a_feed_both_are_unknown_and_a_hostile_feed_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let image = image(&tmp.path().join("img"), "crit-new");
    let out = strata(["check", "--json", "--no-verify-packages", &image]);
    let report = parse_json(&out.stdout, "strata check --json");
    assert_eq!(report["health_index"]["grade"], "unknown");
    assert!(report["advisories"].is_null());
    // A zip whose entry inflates to 80 MiB (over the 64 MiB a feed file may have): refused, named.
    let bomb = tmp.path().join("bomb.zip");
    {
        let mut zip = zip::ZipWriter::new(fs::File::create(&bomb).unwrap());
        zip.start_file("huge.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..80 {
            zip.write_all(&chunk).unwrap();
        }
        zip.finish().unwrap();
    }
    let out = strata([
        "check",
        "--advisories",
        bomb.to_str().unwrap(),
        "--now",
        "2026-01-01",
        &image,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bomb.zip"), "{err}");
}
