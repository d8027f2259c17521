//! A generated OSV feed (deterministic, expectations checked by hand) grades six images A to F at a fixed
//! `now`; `free_of_critical` is false exactly when a Critical advisory applies; the directory and zip forms
//! of the feed give the same findings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use strata_advisory::{
    Date, Distribution, Feed, Finding, Grade, InstalledPackage, PackageManager, Severity,
    free_of_critical, health_index,
};

/// The fixed `now` every age is counted to.
fn now() -> Date {
    Date::parse("2026-01-01").unwrap()
}

/// One OSV record with one range per affected entry: `affected` is (ecosystem, name, events, extra fields).
fn record(id: &str, published: &str, top: Value, affected: &[(&str, &str, Value, Value)]) -> Value {
    let mut r = json!({
        "schema_version": "1.6.0",
        "id": id,
        "aliases": [format!("CVE-2025-{}", id.len() * 1000 + id.bytes().map(usize::from).sum::<usize>())],
        "summary": format!("summary of {id}"),
        "published": format!("{published}T10:00:00Z"),
        "modified": "2025-12-31T00:00:00Z",
        "affected": affected.iter().map(|(ecosystem, name, events, extra)| {
            let mut a = json!({
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            });
            if let (Some(a), Some(extra)) = (a.as_object_mut(), extra.as_object()) {
                a.extend(extra.clone());
            }
            a
        }).collect::<Vec<_>>(),
    });
    if let (Some(r), Some(top)) = (r.as_object_mut(), top.as_object()) {
        r.extend(top.clone());
    }
    r
}

fn fixed(v: &str) -> Value {
    json!([{"introduced": "0"}, {"fixed": v}])
}
fn cvss(score: &str) -> Value {
    let vector = match score {
        "9.8" => "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "7.5" => "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
        _ => unreachable!(),
    };
    json!({"severity": [{"type": "CVSS_V3", "score": vector}]})
}
fn none() -> Value {
    json!({})
}

/// The feed: (relative file name, records). Published dates are `now` minus the days in the comments.
pub fn feed_files() -> Vec<(String, Vec<Value>)> {
    let rh9 = "Red Hat:enterprise_linux:9::baseos";
    let files: Vec<(&str, Vec<Value>)> = vec![
        // Debian 12: a Moderate fixable finding, an unfixed Critical, and advisories that do not apply.
        (
            "debian/DSA-1-1.json",
            vec![record(
                "DSA-1-1",
                "2025-01-01",
                none(),
                &[(
                    "Debian:12",
                    "openssl",
                    fixed("3.0.11-1~deb12u2"),
                    json!({"ecosystem_specific": {"urgency": "high"}}),
                )],
            )],
        ),
        (
            "debian/DEBIAN-CVE-2.json",
            vec![record(
                "DEBIAN-CVE-2",
                "2024-06-01",
                cvss("9.8"),
                &[("Debian:12", "zlib", json!([{"introduced": "0"}]), none())],
            )],
        ),
        (
            "debian/DSA-3-1.json",
            vec![record(
                "DSA-3-1",
                "2024-06-01",
                cvss("9.8"),
                &[("Debian:11", "openssl", fixed("9.9-1"), none())],
            )],
        ),
        // Binary name `libssl3` is not the source name Debian advisories use: must not match by it.
        (
            "debian/DSA-5-1.json",
            vec![record(
                "DSA-5-1",
                "2024-06-01",
                cvss("9.8"),
                &[("Debian:12", "libssl3", fixed("9.9-1"), none())],
            )],
        ),
        (
            "debian/DSA-4-1.json",
            vec![record(
                "DSA-4-1",
                "2024-06-01",
                none(),
                &[(
                    "Debian:12",
                    "curl",
                    fixed("7.88.1-10+deb12u5"),
                    json!({"ecosystem_specific": {"urgency": "medium"}}),
                )],
            )],
        ),
        // Alpine 3.19: Critical 5 days and Important 20 days old → B.
        (
            "alpine/v3.19/ALPINE-1.json",
            vec![
                record(
                    "ALPINE-CVE-1",
                    "2025-12-27",
                    cvss("9.8"),
                    &[("Alpine:v3.19", "busybox", fixed("1.36.1-r16"), none())],
                ),
                record(
                    "ALPINE-CVE-2",
                    "2025-12-12",
                    cvss("7.5"),
                    &[(
                        "Alpine:v3.19",
                        "musl",
                        fixed("1.2.4_git20230717-r5"),
                        none(),
                    )],
                ),
                record(
                    "ALPINE-CVE-3",
                    "2024-01-01",
                    cvss("9.8"),
                    &[(
                        "Alpine:v3.19",
                        "musl",
                        json!([{"introduced": "1.2.5_rc1"}, {"fixed": "1.2.5-r0"}]),
                        none(),
                    )],
                ),
            ],
        ),
        // RHEL 9: Critical 20 days (C), Important 60 days (C, listed in two repositories); RHEL 8 not applied.
        (
            "redhat/RHSA-2025-1.json",
            vec![record(
                "RHSA-2025:1",
                "2025-12-12",
                json!({"database_specific": {"severity": "Critical"}}),
                &[(rh9, "openssl", fixed("1:3.0.7-28.el9_4"), none())],
            )],
        ),
        (
            "redhat/RHSA-2025-2.json",
            vec![record(
                "RHSA-2025:2",
                "2025-11-02",
                json!({"database_specific": {"severity": "Important"}}),
                &[
                    (rh9, "glibc", fixed("2.34-100.el9_4.2"), none()),
                    (
                        "Red Hat:enterprise_linux:9::appstream",
                        "glibc",
                        fixed("2.34-100.el9_4.2"),
                        none(),
                    ),
                ],
            )],
        ),
        (
            "redhat/RHSA-2025-3.json",
            vec![record(
                "RHSA-2025:3",
                "2020-01-01",
                json!({"database_specific": {"severity": "Critical"}}),
                &[(
                    "Red Hat:enterprise_linux:8::baseos",
                    "glibc",
                    fixed("2.99-1.el8"),
                    none(),
                )],
            )],
        ),
        // AlmaLinux 9: Important 200 days (D), Critical 60 days (D); a last_affected range that ends below.
        (
            "alma/ALSA.json",
            vec![
                record(
                    "ALSA-1",
                    "2025-06-15",
                    json!({"database_specific": {"severity": "Important"}}),
                    &[("AlmaLinux:9", "bash", fixed("5.1.8-9.el9"), none())],
                ),
                record(
                    "ALSA-2",
                    "2025-11-02",
                    json!({"database_specific": {"severity": "Critical"}}),
                    &[("AlmaLinux:9", "sudo", fixed("1.9.5p2-10.el9_3"), none())],
                ),
                record(
                    "ALSA-3",
                    "2020-01-01",
                    json!({"database_specific": {"severity": "Critical"}}),
                    &[(
                        "AlmaLinux:9",
                        "vim-minimal",
                        json!([{"introduced": "0"}, {"last_affected": "2:8.2.2637-20.el9_1"}]),
                        none(),
                    )],
                ),
            ],
        ),
        // Rocky 9: Critical 200 days (E), Important 300 days (D) → E.
        (
            "rocky/RLSA.json",
            vec![
                record(
                    "RLSA-1",
                    "2025-06-15",
                    json!({"database_specific": {"severity": "Critical"}}),
                    &[("Rocky Linux:9", "curl", fixed("7.76.1-26.el9_3.2"), none())],
                ),
                record(
                    "RLSA-2",
                    "2025-03-07",
                    json!({"database_specific": {"severity": "Important"}}),
                    &[("Rocky Linux:9", "libxml2", fixed("2.9.13-5.el9_3"), none())],
                ),
            ],
        ),
        // Ubuntu 22.04: Important 400 days (F); Pro not applied; a Moderate by `versions` (no fixed version).
        (
            "ubuntu/UBUNTU.json",
            vec![
                record(
                    "UBUNTU-CVE-1",
                    "2024-11-27",
                    json!({"severity": [{"type": "Ubuntu", "score": "high"}]}),
                    &[(
                        "Ubuntu:22.04:LTS",
                        "openssl",
                        fixed("3.0.2-0ubuntu1.15"),
                        none(),
                    )],
                ),
                record(
                    "UBUNTU-CVE-2",
                    "2020-01-01",
                    cvss("9.8"),
                    &[("Ubuntu:Pro:22.04:LTS", "openssl", fixed("9.9"), none())],
                ),
                {
                    let mut r = record(
                        "UBUNTU-CVE-3",
                        "2025-12-31",
                        json!({"severity": [{"type": "Ubuntu", "score": "medium"}]}),
                        &[],
                    );
                    r["affected"] = json!([{
                        "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "tar"},
                        "versions": ["1.34+dfsg-1ubuntu0.1.22.04.1", "1.34+dfsg-1build3"],
                    }]);
                    r
                },
                // Another ecosystem, counted and not matched.
                record(
                    "PYSEC-1",
                    "2020-01-01",
                    cvss("9.8"),
                    &[("PyPI", "openssl", json!([{"introduced": "0"}]), none())],
                ),
            ],
        ),
    ];
    files.into_iter().map(|(n, r)| (n.to_owned(), r)).collect()
}

fn pkg(
    manager: PackageManager,
    name: &str,
    source: Option<&str>,
    version: &str,
) -> InstalledPackage {
    InstalledPackage {
        manager,
        name: name.to_owned(),
        source_name: source.map(str::to_owned),
        version: version.to_owned(),
    }
}

/// The images: name, distribution, packages, expected grade, free of critical, expected (package,
/// advisory, fixed, severity, age) findings.
#[allow(clippy::type_complexity)]
fn images() -> Vec<(
    &'static str,
    Distribution,
    Vec<InstalledPackage>,
    Grade,
    bool,
    Vec<(
        &'static str,
        &'static str,
        Option<&'static str>,
        Severity,
        i64,
    )>,
)> {
    use PackageManager::{Apk, Dpkg, Rpm};
    let debian_base = vec![
        pkg(Dpkg, "libssl3", Some("openssl"), "3.0.11-1~deb12u2"),
        pkg(Dpkg, "openssl", None, "3.0.11-1~deb12u2"),
        pkg(Dpkg, "curl", None, "7.88.1-10+deb12u4"),
    ];
    let mut debian_zlib = debian_base.clone();
    debian_zlib.push(pkg(Dpkg, "zlib1g", Some("zlib"), "1:1.2.13.dfsg-1"));
    vec![
        (
            "debian-clean",
            Distribution::new("debian", "12"),
            debian_base,
            Grade::A,
            true,
            vec![(
                "curl",
                "DSA-4-1",
                Some("7.88.1-10+deb12u5"),
                Severity::Moderate,
                579,
            )],
        ),
        (
            "debian-unfixed-critical",
            Distribution::new("debian", "12"),
            debian_zlib,
            Grade::A,
            false,
            vec![
                (
                    "curl",
                    "DSA-4-1",
                    Some("7.88.1-10+deb12u5"),
                    Severity::Moderate,
                    579,
                ),
                ("zlib1g", "DEBIAN-CVE-2", None, Severity::Critical, 579),
            ],
        ),
        (
            "alpine",
            Distribution::new("alpine", "3.19.1"),
            vec![
                pkg(Apk, "ssl_client", Some("busybox"), "1.36.1-r15"),
                pkg(Apk, "musl", None, "1.2.4_git20230717-r4"),
            ],
            Grade::B,
            false,
            vec![
                (
                    "musl",
                    "ALPINE-CVE-2",
                    Some("1.2.4_git20230717-r5"),
                    Severity::Important,
                    20,
                ),
                (
                    "ssl_client",
                    "ALPINE-CVE-1",
                    Some("1.36.1-r16"),
                    Severity::Critical,
                    5,
                ),
            ],
        ),
        (
            "rhel",
            Distribution::new("rhel", "9.4"),
            vec![
                pkg(Rpm, "openssl-libs", Some("openssl"), "1:3.0.7-27.el9"),
                pkg(Rpm, "glibc", None, "2.34-100.el9"),
            ],
            Grade::C,
            false,
            vec![
                (
                    "glibc",
                    "RHSA-2025:2",
                    Some("2.34-100.el9_4.2"),
                    Severity::Important,
                    60,
                ),
                (
                    "openssl-libs",
                    "RHSA-2025:1",
                    Some("1:3.0.7-28.el9_4"),
                    Severity::Critical,
                    20,
                ),
            ],
        ),
        (
            "alma",
            Distribution::new("almalinux", "9.3"),
            vec![
                pkg(Rpm, "bash", None, "5.1.8-6.el9"),
                pkg(Rpm, "sudo", None, "1.9.5p2-9.el9"),
                pkg(Rpm, "vim-minimal", None, "2:8.2.2637-21.el9"),
            ],
            Grade::D,
            false,
            vec![
                (
                    "bash",
                    "ALSA-1",
                    Some("5.1.8-9.el9"),
                    Severity::Important,
                    200,
                ),
                (
                    "sudo",
                    "ALSA-2",
                    Some("1.9.5p2-10.el9_3"),
                    Severity::Critical,
                    60,
                ),
            ],
        ),
        (
            "rocky",
            Distribution::new("rocky", "9.3"),
            vec![
                pkg(Rpm, "curl", None, "7.76.1-26.el9"),
                pkg(Rpm, "libxml2", None, "2.9.13-5.el9_2"),
            ],
            Grade::E,
            false,
            vec![
                (
                    "curl",
                    "RLSA-1",
                    Some("7.76.1-26.el9_3.2"),
                    Severity::Critical,
                    200,
                ),
                (
                    "libxml2",
                    "RLSA-2",
                    Some("2.9.13-5.el9_3"),
                    Severity::Important,
                    300,
                ),
            ],
        ),
        (
            "ubuntu",
            Distribution::new("ubuntu", "22.04"),
            vec![
                pkg(Dpkg, "libssl3", Some("openssl"), "3.0.2-0ubuntu1.10"),
                pkg(Dpkg, "tar", None, "1.34+dfsg-1ubuntu0.1.22.04.1"),
            ],
            Grade::F,
            true,
            vec![
                (
                    "libssl3",
                    "UBUNTU-CVE-1",
                    Some("3.0.2-0ubuntu1.15"),
                    Severity::Important,
                    400,
                ),
                ("tar", "UBUNTU-CVE-3", None, Severity::Moderate, 1),
            ],
        ),
    ]
}

fn write_dir(root: &Path) {
    for (name, records) in feed_files() {
        let path = root.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let value = if records.len() == 1 {
            records[0].clone()
        } else {
            Value::Array(records)
        };
        std::fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    }
}

fn write_zip(path: &Path) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, records) in feed_files() {
        let value = if records.len() == 1 {
            records[0].clone()
        } else {
            Value::Array(records)
        };
        zip.start_file(name, options).unwrap();
        zip.write_all(&serde_json::to_vec(&value).unwrap()).unwrap();
    }
    zip.finish().unwrap();
}

fn check_images(feed: &Feed) -> Vec<Vec<Finding>> {
    let mut all = Vec::new();
    for (image, distro, packages, grade, free, expected) in images() {
        assert!(feed.covers(&distro), "{image}");
        let findings = feed.findings(&distro, &packages, now()).unwrap();
        let got: Vec<_> = findings
            .iter()
            .map(|f| {
                (
                    f.package.as_str(),
                    f.advisory.as_str(),
                    f.fixed.as_deref(),
                    f.severity,
                    f.age_days.unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected, "{image}: findings");
        assert_eq!(health_index(&findings, now()), grade, "{image}: grade");
        assert_eq!(
            free_of_critical(&findings),
            free,
            "{image}: free_of_critical"
        );
        assert_eq!(
            free,
            !expected.iter().any(|e| e.3 == Severity::Critical),
            "{image}"
        );
        for f in &findings {
            assert_eq!(f.aliases.len(), 1);
            assert!(f.summary.as_deref().unwrap().contains(&f.advisory));
            assert_eq!(
                f.installed,
                packages
                    .iter()
                    .find(|p| p.name == f.package)
                    .unwrap()
                    .version
            );
        }
        all.push(findings);
    }
    all
}

#[test]
fn grades_a_to_f_and_zip_matches_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feed");
    write_dir(&dir);
    let zip = tmp.path().join("all.zip");
    write_zip(&zip);

    let from_dir = Feed::open(&dir).unwrap();
    let from_zip = Feed::open(&zip).unwrap();
    assert!(from_dir.warnings().is_empty(), "{:?}", from_dir.warnings());
    assert!(from_zip.warnings().is_empty(), "{:?}", from_zip.warnings());
    assert_eq!(from_dir.advisories().len(), 20);
    assert_eq!(from_dir.other_ecosystems().get("PyPI"), Some(&1));
    let a = check_images(&from_dir);
    let b = check_images(&from_zip);
    assert_eq!(a, b, "the zip and the directory give the same findings");
    let grades: Vec<Grade> = a.iter().map(|f| health_index(f, now())).collect();
    assert_eq!(
        grades,
        [
            Grade::A,
            Grade::A,
            Grade::B,
            Grade::C,
            Grade::D,
            Grade::E,
            Grade::F
        ]
    );

    // Findings serialize as the CLI will print them.
    let json = serde_json::to_value(&a[2][1]).unwrap();
    assert_eq!(json["severity"], "Critical");
    assert_eq!(json["published"], "2025-12-27");
    assert_eq!(json["age_days"], 5);
    assert_eq!(json["fixed"], "1.36.1-r16");
    assert_eq!(serde_json::to_value(Grade::Unknown).unwrap(), "Unknown");

    // Not covered: a distribution release the feed has nothing for.
    assert!(!from_dir.covers(&Distribution::new("debian", "13")));
    assert!(!from_dir.covers(&Distribution::new("alpine", "3.20.0")));
}

fn finding(severity: Severity, published: Option<&str>, fixed: bool) -> Finding {
    Finding {
        package: "p".into(),
        installed: "1".into(),
        fixed: fixed.then(|| "2".into()),
        advisory: "X".into(),
        aliases: vec![],
        severity,
        published: published.map(|p| Date::parse(p).unwrap()),
        age_days: None,
        ecosystem: "Debian:12".into(),
        summary: None,
    }
}

/// The grade at each age boundary (hand-checked against the table).
#[test]
fn grade_boundaries() {
    use Severity::{Critical, Important, Low, Moderate, Unknown};
    let cases = [
        (Critical, "2025-12-25", Grade::B),  // 7 days
        (Critical, "2025-12-24", Grade::C),  // 8
        (Critical, "2025-12-02", Grade::C),  // 30
        (Critical, "2025-12-01", Grade::D),  // 31
        (Critical, "2025-10-03", Grade::D),  // 90
        (Critical, "2025-10-02", Grade::E),  // 91
        (Critical, "2025-01-01", Grade::E),  // 365
        (Critical, "2024-12-31", Grade::F),  // 366
        (Important, "2025-12-02", Grade::B), // 30
        (Important, "2025-12-01", Grade::C), // 31
        (Important, "2025-10-03", Grade::C), // 90
        (Important, "2025-10-02", Grade::D), // 91
        (Important, "2025-01-01", Grade::D), // 365
        (Important, "2024-12-31", Grade::F), // 366
        (Important, "2026-02-01", Grade::B), // published after now: age 0
        (Moderate, "2000-01-01", Grade::A),
        (Low, "2000-01-01", Grade::A),
        (Unknown, "2000-01-01", Grade::A),
    ];
    for (severity, published, grade) in cases {
        assert_eq!(
            health_index(&[finding(severity, Some(published), true)], now()),
            grade,
            "{severity:?} {published}"
        );
    }
    // No fixed version: no erratum to apply, the grade is not lowered; free_of_critical still sees it.
    let unfixed = finding(Critical, Some("2000-01-01"), false);
    assert_eq!(
        health_index(std::slice::from_ref(&unfixed), now()),
        Grade::A
    );
    assert!(!free_of_critical(&[unfixed]));
    // A counted finding without a publication date: Unknown.
    assert_eq!(
        health_index(&[finding(Important, None, true)], now()),
        Grade::Unknown
    );
    assert_eq!(health_index(&[], now()), Grade::A);
    // The worst finding decides.
    let mixed = [
        finding(Critical, Some("2025-12-31"), true),
        finding(Important, Some("2025-06-15"), true),
    ];
    assert_eq!(health_index(&mixed, now()), Grade::D);
}

#[test]
fn assess_says_unknown_when_the_feed_lacks_the_release() {
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path());
    let feed = Feed::open(tmp.path()).unwrap();
    for (image, distro, packages, grade, free, expected) in images() {
        let a = feed.assess(&distro, &packages, now()).unwrap();
        assert!(a.covered, "{image}");
        assert_eq!(
            (a.grade, a.free_of_critical, a.findings.len()),
            (grade, Some(free), expected.len())
        );
        assert_eq!(a.unknown_reason, None);
    }
    let trixie = Distribution::new("debian", "13");
    let packages = [pkg(
        PackageManager::Dpkg,
        "zlib1g",
        Some("zlib"),
        "1:1.2.13.dfsg-1",
    )];
    let a = feed.assess(&trixie, &packages, now()).unwrap();
    assert_eq!(
        (a.covered, a.grade, a.free_of_critical),
        (false, Grade::Unknown, None)
    );
    assert_eq!(
        a.unknown_reason.as_deref(),
        Some("the feed has no advisories for debian 13")
    );
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["grade"], "Unknown");
    assert_eq!(json["free_of_critical"], Value::Null);
    assert_eq!(json["now"], "2026-01-01");
    assert_eq!(json["distribution"]["id"], "debian");
}
