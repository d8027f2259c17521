//! The scanning commands against real peers: `strata packages` equals `dpkg-query` and `rpm -qa` on
//! databases the peers built or read, `strata export` equals `umoci unpack`'s tree (and `ls`, `find`, `cat`
//! agree with `ls`, `find` and the files there), `strata diff` lists exactly the changes made with umoci, and
//! `strata check` gives the expected table on a compliant and a non-compliant image.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
use strata_tests::packages::{APK_INSTALLED, build_rpms, new_image, rpm_cmd, rpm_database};
use strata_tests::registry::{Auth, Registry};
use strata_tests::rich::{copy_real_files, rich_image, umoci_repack, umoci_unpack};
use strata_tests::store::TestStore;
use strata_tests::tree::{assert_same_tree, listing};
use strata_tests::{
    assert_clean_error, host_arch, is_root, parse_json, require_tool, run, skopeo_ok, strata,
    strata_ok, under_ci,
};

/// Tests that write owners, devices and xattrs need root (CI runs as root).
fn require_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(!under_ci(), "{what} needs root under CI=true");
    eprintln!("SKIP: {what} needs root");
    false
}

/// `umoci repack --refresh-bundle` of `bundle` into `image` (a tag of the bundle's layout).
fn repack(image: &str, bundle: &Path) {
    umoci_repack(image, bundle, true);
}

fn oci(image: &str) -> String {
    format!("oci:{image}")
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let mut l = lines(bytes);
    l.sort();
    l
}

// ---------------------------------------------------------------------------------------------------
// Packages
// ---------------------------------------------------------------------------------------------------

/// Paragraphs added to the machine's dpkg status: each state and name form `dpkg-query -W` distinguishes.
const EXTRA_DPKG: &str = "
Package: strata-gone
Status: purge ok not-installed
Architecture: amd64

Package: strata-config-left
Status: deinstall ok config-files
Priority: optional
Section: misc
Maintainer: Strata <strata@example.invalid>
Architecture: amd64
Version: 1:2.0-1
Description: a removed package whose configuration files remain

Package: libstrata-same
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 10
Maintainer: Strata <strata@example.invalid>
Architecture: i386
Multi-Arch: same
Source: strata-src (1.0-1)
Version: 1.0-1
Description: a foreign Multi-Arch: same library

Package: strata-foreign
Status: install ok installed
Priority: optional
Section: misc
Installed-Size: 10
Maintainer: Strata <strata@example.invalid>
Architecture: arm64
Version: 0.1-1
Description: a package of a foreign architecture

Package: strata-arch-all
Status: install ok installed
Priority: optional
Section: misc
Installed-Size: 10
Maintainer: Strata <strata@example.invalid>
Architecture: all
Multi-Arch: foreign
Version: 2~rc1
Description: an architecture-independent package
";

/// `${binary:Package}` from strata's JSON: `name:arch` for `Multi-Arch: same` packages and for those of an
/// architecture other than dpkg's own (and `all`), as dpkg-query prints it.
fn binary_package(p: &Value, native: &str) -> String {
    let name = p["name"].as_str().unwrap();
    let arch = p["architecture"].as_str().unwrap();
    let same = p["multi_arch"].as_str() == Some("same");
    if !arch.is_empty() && (same || (arch != native && arch != "all")) {
        format!("{name}:{arch}")
    } else {
        name.to_owned()
    }
}

#[test]
fn dpkg_packages_equal_dpkg_query() {
    if !(require_tool("umoci") && require_tool("dpkg-query")) {
        return;
    }
    let Ok(host_status) = fs::read("/var/lib/dpkg/status") else {
        assert!(
            !under_ci(),
            "CI runs on Debian: /var/lib/dpkg/status must exist"
        );
        eprintln!("SKIP: no /var/lib/dpkg/status on this machine");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let mut status = host_status;
    status.extend_from_slice(EXTRA_DPKG.as_bytes());
    let (image, bundle) = new_image(&work.path().join("layout"), "dpkg");
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("var/lib/dpkg")).unwrap();
    fs::write(rootfs.join("var/lib/dpkg/status"), &status).unwrap();
    // Debian's layout: /etc/os-release -> ../usr/lib/os-release.
    fs::create_dir_all(rootfs.join("usr/lib")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::copy("/etc/os-release", rootfs.join("usr/lib/os-release")).unwrap();
    symlink("../usr/lib/os-release", rootfs.join("etc/os-release")).unwrap();
    repack(&image, &bundle);

    let admindir = work.path().join("admindir");
    fs::create_dir(&admindir).unwrap();
    fs::write(admindir.join("status"), &status).unwrap();
    let expected = sorted_lines(
        &run(Command::new("dpkg-query")
            .arg("-W")
            .arg("-f")
            .arg("${binary:Package}\t${Version}\n")
            .arg(format!("--admindir={}", admindir.display())))
        .stdout,
    );
    assert!(
        expected.len() > 100,
        "a realistic database: {}",
        expected.len()
    );

    let json = parse_json(
        &strata_ok(["packages", "--json", &oci(&image)]),
        "packages --json",
    );
    let packages = json.as_array().unwrap();
    let native = packages
        .iter()
        .find(|p| p["name"] == "dpkg")
        .and_then(|p| p["architecture"].as_str())
        .expect("the dpkg package is listed")
        .to_owned();
    let mut got: Vec<String> = packages
        .iter()
        .map(|p| {
            format!(
                "{}\t{}",
                binary_package(p, &native),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected);
    assert!(got.contains(&"libstrata-same:i386\t1.0-1".to_owned()));
    assert!(got.contains(&"strata-foreign:arm64\t0.1-1".to_owned()));
    assert!(!got.iter().any(|l| l.starts_with("strata-gone")));

    // The table: a header, then one line per package.
    let table = lines(&strata_ok(["packages", &oci(&image)]));
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "VERSION", "ARCH"]
    );
    assert_eq!(table.len(), packages.len() + 1);
    assert!(
        table.iter().any(
            |l| l.split_whitespace().collect::<Vec<_>>() == ["libstrata-same", "1.0-1", "i386"]
        )
    );

    // The distribution, through the os-release symlink.
    let check = check_json(&oci(&image));
    let host_id = fs::read_to_string("/etc/os-release")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("ID=")
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap();
    assert_eq!(check["distribution"]["id"], host_id.as_str());
    assert_eq!(check["distribution"]["source"], "/etc/os-release");
}

#[test]
fn apk_packages_from_the_installed_database() {
    if !require_tool("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (image, bundle) = new_image(&work.path().join("layout"), "apk");
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("lib/apk/db")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("lib/apk/db/installed"), APK_INSTALLED).unwrap();
    fs::write(rootfs.join("etc/alpine-release"), "3.19.1\n").unwrap();
    repack(&image, &bundle);

    let json = parse_json(
        &strata_ok(["packages", "--json", &oci(&image)]),
        "packages --json",
    );
    let got: Vec<[String; 6]> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            [
                "name",
                "version",
                "architecture",
                "license",
                "source",
                "manager",
            ]
            .map(|k| p[k].as_str().unwrap().to_owned())
        })
        .collect();
    let expected = [
        [
            "musl",
            "1.2.4_git20230717-r4",
            "x86_64",
            "MIT",
            "musl",
            "apk",
        ],
        [
            "busybox",
            "1.36.1-r15",
            "x86_64",
            "GPL-2.0-only",
            "busybox",
            "apk",
        ],
        [
            "alpine-baselayout-data",
            "3.4.3-r2",
            "x86_64",
            "GPL-2.0-only",
            "alpine-baselayout",
            "apk",
        ],
    ]
    .map(|row| row.map(str::to_owned));
    assert_eq!(got, expected);
    let check = check_json(&oci(&image));
    assert_eq!(check["distribution"]["id"], "alpine");
    assert_eq!(check["distribution"]["version_id"], "3.19.1");
}

#[test]
fn rpm_packages_equal_rpm_query() {
    if !(require_tool("umoci") && require_tool("rpm") && require_tool("rpmbuild")) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let packages = [
        ("strata-hello", "1.2.3", "4.el9", Some(2)),
        ("strata-plain", "0.9", "1", None),
    ];
    let rpms = build_rpms(work.path(), &packages);
    assert_eq!(rpms.len(), 2, "{rpms:?}");
    let db = work.path().join("rpmdb");
    rpm_database(&db, &rpms);
    let expected: Vec<String> = sorted_lines(
        &run(rpm_cmd(&db).args(["-qa", "--qf", "%{NAME}\t%{EPOCH}:%{VERSION}-%{RELEASE}\n"]))
            .stdout,
    )
    .into_iter()
    .map(|l| l.replace("\t(none):", "\t"))
    .collect();
    assert_eq!(
        expected,
        ["strata-hello\t2:1.2.3-4.el9", "strata-plain\t0.9-1"]
    );
    // Everything is in the database file itself (rpm checkpoints its write-ahead log on close).
    let wal = db.join("rpmdb.sqlite-wal");
    assert!(fs::metadata(&wal).map_or(0, |m| m.len()) == 0);

    let (image, bundle) = new_image(&work.path().join("layout"), "rpm");
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("var/lib/rpm")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::copy(
        db.join("rpmdb.sqlite"),
        rootfs.join("var/lib/rpm/rpmdb.sqlite"),
    )
    .unwrap();
    fs::write(
        rootfs.join("etc/redhat-release"),
        "Red Hat Enterprise Linux release 9.3 (Plow)\n",
    )
    .unwrap();
    repack(&image, &bundle);
    let json = parse_json(
        &strata_ok(["packages", "--json", &oci(&image)]),
        "packages --json",
    );
    let mut got: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["manager"], "rpm");
            assert_eq!(p["architecture"], "noarch");
            assert_eq!(p["license"], "MIT");
            format!(
                "{}\t{}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected);
    let check = check_json(&oci(&image));
    let rhel = assessment(&check, "is_rhel");
    assert_eq!(rhel["result"], "pass", "{rhel}");
    assert!(
        rhel["reason"]
            .as_str()
            .unwrap()
            .contains("/etc/redhat-release"),
        "{rhel}"
    );
    let list = assessment(&check, "rpm_list_successful");
    assert_eq!(list["result"], "pass");
    assert_eq!(list["reason"], "the rpm database lists 2 packages");
}

#[test]
fn berkeley_db_rpm_database_is_unsupported_not_misread() {
    if !require_tool("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (image, bundle) = new_image(&work.path().join("layout"), "bdb");
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("var/lib/rpm")).unwrap();
    // A BerkeleyDB hash database: its magic 0x00061561 at offset 12, then pages of noise.
    let mut packages = vec![0u8; 8192];
    packages[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
    for (i, b) in packages.iter_mut().enumerate().skip(64) {
        *b = (i * 7 % 251) as u8;
    }
    fs::write(rootfs.join("var/lib/rpm/Packages"), &packages).unwrap();
    repack(&image, &bundle);
    let out = strata(["packages", &oci(&image)]);
    assert_clean_error(&out, "packages of a BerkeleyDB rpm database");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/var/lib/rpm/Packages") && stderr.contains("BerkeleyDB"),
        "{stderr}"
    );
    let check = check_json(&oci(&image));
    for name in ["rpm_list_successful", "rpm_verify_successful"] {
        let a = assessment(&check, name);
        assert_eq!(a["result"], "fail", "{a}");
        assert!(a["reason"].as_str().unwrap().contains("BerkeleyDB"), "{a}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Package verification against rpm -Va and dpkg --verify
// ---------------------------------------------------------------------------------------------------

/// A package of each kind of file rpm verifies: plain files, a config file, a missing-ok config file, a
/// symlink, a directory it owns, a ghost, a file owned by users named in the image's passwd and group, and a
/// file [`TWIN_SPEC`]'s package owns too.
const VERIFY_SPEC: &str = "Name: strata-verify
Version: 1.0
Release: 1
Summary: files for strata's verification tests
License: MIT
BuildArch: noarch
%description
Files of each kind rpm -V checks.
%install
mkdir -p %{buildroot}/usr/share/sv %{buildroot}/etc/sv.d
for f in README data touched gone owned; do echo $f > %{buildroot}/usr/share/sv/$f; done
echo conf > %{buildroot}/etc/sv.conf
echo optional > %{buildroot}/etc/sv.d/optional
echo byname > %{buildroot}/usr/share/sv/byname
mkdir -p %{buildroot}/usr/share/svshared
echo common > %{buildroot}/usr/share/svshared/common
ln -s README %{buildroot}/usr/share/sv/link
%files
/usr/share/svshared/common
%dir /usr/share/sv
/usr/share/sv/README
/usr/share/sv/data
/usr/share/sv/touched
/usr/share/sv/gone
/usr/share/sv/owned
/usr/share/sv/link
%attr(0640,daemon,mail) /usr/share/sv/byname
%config(noreplace) /etc/sv.conf
%config(missingok) /etc/sv.d/optional
%ghost /var/log/sv.log
";

/// A second package with one file of [`VERIFY_SPEC`]'s, the same bytes: both own it.
const TWIN_SPEC: &str = "Name: strata-verify-twin
Version: 1.0
Release: 1
Summary: a file shared with strata-verify
License: MIT
BuildArch: noarch
%description
One file strata-verify has too.
%install
mkdir -p %{buildroot}/usr/share/svshared
echo common > %{buildroot}/usr/share/svshared/common
%files
/usr/share/svshared/common
";

/// One verification failure: (result, marker, path), `missing` as the result of a missing file.
type Failure = (String, char, String);

/// The failures `rpm -V` or `dpkg --verify` printed: `RESULT  M /path` (rpm: nine letters, two spaces),
/// `RESULT M /path` (dpkg), `missing   M /path` (both).
fn tool_failures(stdout: &[u8], rpm: bool) -> BTreeSet<Failure> {
    lines(stdout)
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let chars: Vec<char> = l.chars().collect();
            let (result, at) = if l.starts_with("missing") {
                ("missing".to_owned(), 10)
            } else {
                (chars[..9].iter().collect(), if rpm { 11 } else { 10 })
            };
            (result, chars[at], chars[at + 2..].iter().collect())
        })
        .collect()
}

/// strata's failures from `check --json`'s verification report.
fn strata_failures(json: &Value) -> BTreeSet<Failure> {
    json["verification"]["failures"]
        .as_array()
        .unwrap_or_else(|| panic!("no verification report: {json}"))
        .iter()
        .map(|f| {
            (
                f["result"].as_str().unwrap().to_owned(),
                f["marker"].as_str().unwrap().chars().next().unwrap(),
                f["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn check_json(image: &str) -> Value {
    parse_json(&strata(["check", "--json", image]).stdout, "check --json")
}

fn assessment<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["assessments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no {name}: {json}"))
}

/// The peer's failures on `image` unpacked by umoci into `dir` are `expected`, and strata's (from
/// `check --json`, returned) are the peer's.
fn assert_verify_agrees(
    image: &str,
    dir: &Path,
    peer: impl Fn(&Path) -> BTreeSet<Failure>,
    expected: &[(&str, char, &str)],
) -> Value {
    let found = peer(&umoci_unpack(image, dir));
    assert_eq!(found, failures(expected), "the peer itself");
    let json = check_json(&oci(image));
    assert_eq!(strata_failures(&json), found, "strata against the peer");
    json
}

fn failures(list: &[(&str, char, &str)]) -> BTreeSet<Failure> {
    list.iter()
        .map(|(r, m, p)| ((*r).to_owned(), *m, (*p).to_owned()))
        .collect()
}

/// `rpm -Va --root TREE` with the image's sqlite rpmdb: the failures it prints.
fn rpm_va(tree: &Path) -> BTreeSet<Failure> {
    let out = strata_tests::run_unchecked(
        Command::new("rpm")
            .arg("--root")
            .arg(tree)
            .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
            .args(["-Va", "--nodeps", "--noscripts"]),
    );
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "rpm -Va: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tool_failures(&out.stdout, true)
}

/// `rpm_verify_successful` agrees with `rpm -Va --root` on the unpacked tree, before and after a later
/// layer modifies, removes, re-modes, re-owns and touches packaged files (a config file, a symlink, a
/// directory and a ghost among them); a header whose file count lies is a clear failure, not a panic.
#[test]
fn rpm_verify_agrees_with_rpm_va() {
    if !(require_tool("umoci")
        && require_tool("rpm")
        && require_tool("rpmbuild")
        && require_root("installing an rpm with its owners"))
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let top = work.path().join("rpmbuild");
    for (name, text) in [
        ("strata-verify", VERIFY_SPEC),
        ("strata-verify-twin", TWIN_SPEC),
    ] {
        let spec = work.path().join(format!("{name}.spec"));
        fs::write(&spec, text).unwrap();
        run(Command::new("rpmbuild")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .args(["--quiet", "-bb"])
            .arg(&spec));
    }
    let rpms = ["strata-verify", "strata-verify-twin"]
        .map(|name| top.join(format!("RPMS/noarch/{name}-1.0-1.noarch.rpm")));
    let (image, bundle) = new_image(&work.path().join("layout"), "rpm-verify");
    let rootfs = bundle.join("rootfs");
    // Owners by name: rpm looks them up in the image's own files, and so does strata.
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/sh\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\nmail:x:8:\n").unwrap();
    run(Command::new("rpm")
        .arg("--root")
        .arg(&rootfs)
        .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
        .args(["-i", "--nodeps", "--noscripts"])
        .args(&rpms));
    repack(&image, &bundle);

    // As installed: nothing differs (the ghost is missing, which is not reported).
    let json = assert_verify_agrees(&image, &work.path().join("before"), rpm_va, &[]);
    let verify = assessment(&json, "rpm_verify_successful");
    assert_eq!(verify["result"], "pass", "{verify}");
    assert_eq!(json["verification"]["files"], 13, "{json}");
    let byname = fs::symlink_metadata(rootfs.join("usr/share/sv/byname")).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&byname),
            std::os::unix::fs::MetadataExt::gid(&byname)
        ),
        (1, 8),
        "installed as daemon:mail"
    );
    assert_eq!(assessment(&json, "rpm_list_successful")["result"], "pass");

    // A later layer changes them.
    let sv = rootfs.join("usr/share/sv");
    fs::write(sv.join("README"), "README, changed\n").unwrap();
    fs::set_permissions(sv.join("data"), fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&sv.join("touched"), 1_000_000_000);
    // Owned by two packages: rpm does not report its mtime.
    set_mtime(&rootfs.join("usr/share/svshared/common"), 1_000_000_000);
    fs::remove_file(sv.join("gone")).unwrap();
    std::os::unix::fs::chown(sv.join("owned"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(sv.join("byname"), Some(0), Some(0)).unwrap();
    fs::remove_file(sv.join("link")).unwrap();
    symlink("data", sv.join("link")).unwrap();
    fs::set_permissions(&sv, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(rootfs.join("etc/sv.conf"), "conf, edited\n").unwrap();
    fs::remove_file(rootfs.join("etc/sv.d/optional")).unwrap();
    fs::create_dir_all(rootfs.join("var/log")).unwrap();
    fs::write(rootfs.join("var/log/sv.log"), "log\n").unwrap();
    fs::set_permissions(
        rootfs.join("var/log/sv.log"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    repack(&image, &bundle);

    let expected = [
        ("S.5....T.", 'c', "/etc/sv.conf"),
        (".M.......", ' ', "/usr/share/sv"),
        ("S.5....T.", ' ', "/usr/share/sv/README"),
        (".....UG..", ' ', "/usr/share/sv/byname"),
        (".M.......", ' ', "/usr/share/sv/data"),
        ("missing", ' ', "/usr/share/sv/gone"),
        ("....L....", ' ', "/usr/share/sv/link"),
        (".....UG..", ' ', "/usr/share/sv/owned"),
        (".......T.", ' ', "/usr/share/sv/touched"),
        (".M.......", 'g', "/var/log/sv.log"),
    ];
    let json = assert_verify_agrees(&image, &work.path().join("after"), rpm_va, &expected);
    let verify = assessment(&json, "rpm_verify_successful");
    assert_eq!(verify["result"], "fail");
    assert!(
        verify["reason"]
            .as_str()
            .unwrap()
            .starts_with("10 of 13 packaged files differ"),
        "{verify}"
    );
    // The table lists them as rpm -V prints them.
    let table = String::from_utf8_lossy(&strata(["check", &oci(&image)]).stdout).into_owned();
    assert!(
        table.contains("\nS.5....T.  c /etc/sv.conf  (strata-verify)\n"),
        "{table}"
    );
    assert!(
        table.contains("\nmissing     /usr/share/sv/gone  (strata-verify)\n"),
        "{table}"
    );

    // A header whose BASENAMES count lies (a million names in a few bytes): a clear failure naming the
    // database and the tag, not a panic; the package list itself is still read.
    let db = rootfs.join("var/lib/rpm/rpmdb.sqlite");
    let patch = "import sqlite3, struct, sys
c = sqlite3.connect(sys.argv[1])
for hnum, blob in c.execute('SELECT hnum, blob FROM Packages').fetchall():
    b = bytearray(blob)
    il = struct.unpack('>I', b[0:4])[0]
    for i in range(il):
        at = 8 + 16 * i
        if struct.unpack('>I', b[at:at + 4])[0] == 1117:
            b[at + 12:at + 16] = struct.pack('>I', 1000000)
    c.execute('UPDATE Packages SET blob = ? WHERE hnum = ?', (bytes(b), hnum))
c.commit()
c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
c.close()
";
    run(Command::new("/usr/bin/python3")
        .args(["-c", patch])
        .arg(&db));
    repack(&image, &bundle);
    let json = check_json(&oci(&image));
    let verify = assessment(&json, "rpm_verify_successful");
    assert_eq!(verify["result"], "fail", "{verify}");
    let reason = verify["reason"].as_str().unwrap();
    assert!(
        reason.contains("/var/lib/rpm/rpmdb.sqlite") && reason.contains("tag 1117 claims 1000000"),
        "{reason}"
    );
    assert_eq!(assessment(&json, "rpm_list_successful")["result"], "pass");
    let out = strata(["check", &oci(&image)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// The dpkg variant agrees with `dpkg --verify --root` on the unpacked tree before and after a later layer
/// changes the files of a package installed by dpkg itself (a conffile among them); an md5sums file naming
/// `../` is a clear failure.
#[test]
fn dpkg_verify_agrees_with_dpkg_verify() {
    if !(require_tool("umoci") && require_tool("dpkg") && require_tool("dpkg-deb")) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let deb = work.path().join("deb");
    fs::create_dir_all(deb.join("DEBIAN")).unwrap();
    fs::create_dir_all(deb.join("usr/share/sd")).unwrap();
    fs::create_dir_all(deb.join("etc")).unwrap();
    let mut md5sums = String::new();
    for name in ["README", "data", "gone", "target"] {
        fs::write(deb.join("usr/share/sd").join(name), format!("{name}\n")).unwrap();
        let sum = run(Command::new("md5sum")
            .arg(format!("usr/share/sd/{name}"))
            .current_dir(&deb))
        .stdout;
        md5sums.push_str(&String::from_utf8_lossy(&sum));
    }
    symlink("target", deb.join("usr/share/sd/link")).unwrap();
    fs::write(deb.join("etc/sd.conf"), "conf\n").unwrap();
    fs::write(
        deb.join("DEBIAN/control"),
        "Package: strata-verify\nVersion: 1.0\nArchitecture: all\nMaintainer: strata <strata@example.org>\n\
         Description: files for strata's verification tests\n",
    )
    .unwrap();
    fs::write(deb.join("DEBIAN/conffiles"), "/etc/sd.conf\n").unwrap();
    fs::write(deb.join("DEBIAN/md5sums"), &md5sums).unwrap();
    let package = work.path().join("strata-verify.deb");
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(&deb)
        .arg(&package));

    let (image, bundle) = new_image(&work.path().join("layout"), "dpkg-verify");
    let rootfs = bundle.join("rootfs");
    for dir in ["info", "updates", "triggers"] {
        fs::create_dir_all(rootfs.join("var/lib/dpkg").join(dir)).unwrap();
    }
    fs::write(rootfs.join("var/lib/dpkg/status"), "").unwrap();
    run(Command::new("dpkg")
        .arg(format!("--root={}", rootfs.display()))
        .args([
            "--force-script-chrootless",
            "--force-not-root",
            "--force-bad-path",
            "-i",
        ])
        .arg(&package));
    repack(&image, &bundle);
    let dpkg_verify = |tree: &Path| {
        tool_failures(
            &run(Command::new("dpkg")
                .arg(format!("--root={}", tree.display()))
                .arg("--verify"))
            .stdout,
            false,
        )
    };
    let json = assert_verify_agrees(&image, &work.path().join("before"), dpkg_verify, &[]);
    let verify = assessment(&json, "rpm_verify_successful");
    assert_eq!(verify["result"], "pass", "{verify}");
    assert!(
        verify["reason"]
            .as_str()
            .unwrap()
            .contains("answered from dpkg"),
        "{verify}"
    );
    assert_eq!(json["verification"]["files"], 5);
    let list = assessment(&json, "rpm_list_successful");
    assert!(
        list["reason"]
            .as_str()
            .unwrap()
            .contains("answered from dpkg"),
        "{list}"
    );

    let sd = rootfs.join("usr/share/sd");
    fs::write(sd.join("README"), "README, changed\n").unwrap();
    fs::remove_file(sd.join("gone")).unwrap();
    fs::set_permissions(sd.join("data"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(sd.join("link")).unwrap();
    symlink("README", sd.join("link")).unwrap();
    fs::write(sd.join("target"), "target, changed\n").unwrap();
    fs::write(rootfs.join("etc/sd.conf"), "conf, edited\n").unwrap();
    repack(&image, &bundle);
    let expected = [
        ("??5??????", 'c', "/etc/sd.conf"),
        ("??5??????", ' ', "/usr/share/sd/README"),
        ("missing", ' ', "/usr/share/sd/gone"),
        ("??5??????", ' ', "/usr/share/sd/target"),
    ];
    let json = assert_verify_agrees(&image, &work.path().join("after"), dpkg_verify, &expected);
    assert_eq!(assessment(&json, "rpm_verify_successful")["result"], "fail");

    // An md5sums file naming ../ paths: refused, naming the file and the path.
    fs::write(
        rootfs.join("var/lib/dpkg/info/strata-verify.md5sums"),
        "d41d8cd98f00b204e9800998ecf8427e  ../../../etc/shadow\n",
    )
    .unwrap();
    repack(&image, &bundle);
    let json = check_json(&oci(&image));
    let verify = assessment(&json, "rpm_verify_successful");
    assert_eq!(verify["result"], "fail");
    let reason = verify["reason"].as_str().unwrap();
    assert!(
        reason.contains("/var/lib/dpkg/info/strata-verify.md5sums")
            && reason.contains("../../../etc/shadow"),
        "{reason}"
    );
}

/// `Q1` + base64 of the SHA-1 of `bytes`, as apk records a checksum, made with openssl.
fn apk_checksum(bytes: &[u8], work: &Path) -> String {
    let file = work.join("apk-checksum-input");
    fs::write(&file, bytes).unwrap();
    let digest = run(Command::new("openssl")
        .args(["dgst", "-sha1", "-binary"])
        .arg(&file))
    .stdout;
    fs::write(&file, &digest).unwrap();
    let encoded = run(Command::new("openssl")
        .args(["base64", "-A", "-in"])
        .arg(&file))
    .stdout;
    format!("Q1{}", String::from_utf8(encoded).unwrap().trim())
}

/// apk images are verified against the `Z:Q1…` checksums of `/lib/apk/db/installed` (a symlink's of its
/// target): a later layer's changed and removed files are listed as dpkg --verify lists them.
#[test]
fn apk_verify_checks_the_installed_checksums() {
    if !(require_tool("umoci") && require_tool("openssl")) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (image, bundle) = new_image(&work.path().join("layout"), "apk-verify");
    let rootfs = bundle.join("rootfs");
    for dir in ["lib/apk/db", "bin", "etc"] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    fs::write(rootfs.join("lib/libfoo.so"), "foo\n").unwrap();
    fs::write(rootfs.join("bin/tool"), "tool\n").unwrap();
    symlink("tool", rootfs.join("bin/alias")).unwrap();
    fs::write(rootfs.join("etc/alpine-release"), "3.19.1\n").unwrap();
    let installed = format!(
        "P:libfoo\nV:1.0-r0\nA:x86_64\nL:MIT\nF:lib\nR:libfoo.so\na:0:0:755\nZ:{}\n\n\
         P:tool\nV:2.0-r1\nA:x86_64\nL:MIT\nF:bin\nR:tool\nZ:{}\nR:alias\nZ:{}\n\n",
        apk_checksum(b"foo\n", work.path()),
        apk_checksum(b"tool\n", work.path()),
        apk_checksum(b"tool", work.path()),
    );
    fs::write(rootfs.join("lib/apk/db/installed"), installed).unwrap();
    repack(&image, &bundle);
    let json = check_json(&oci(&image));
    assert_eq!(strata_failures(&json), BTreeSet::new(), "{json}");
    assert_eq!(json["verification"]["files"], 3);
    assert_eq!(json["verification"]["managers"], serde_json::json!(["apk"]));
    let verify = assessment(&json, "rpm_verify_successful");
    assert_eq!(verify["result"], "pass", "{verify}");
    assert!(
        verify["reason"]
            .as_str()
            .unwrap()
            .contains("answered from apk")
    );

    fs::write(rootfs.join("lib/libfoo.so"), "foo, changed\n").unwrap();
    fs::remove_file(rootfs.join("bin/tool")).unwrap();
    repack(&image, &bundle);
    let json = check_json(&oci(&image));
    assert_eq!(
        strata_failures(&json),
        failures(&[
            ("??5??????", ' ', "/lib/libfoo.so"),
            ("missing", ' ', "/bin/tool"),
        ])
    );
    assert_eq!(json["verification"]["failures"][0]["package"], "libfoo");
    assert_eq!(json["verification"]["failures"][0]["manager"], "apk");
}

/// `good_tags`: an image referenced by a tag other than `latest` passes; one referenced as `latest` passes
/// when its repository (listed from the registry) has another tag and fails when it has none; an image named
/// with no tag and nothing to list is unknown.
#[test]
fn good_tags_from_the_reference_and_the_repository() {
    if !(require_tool("skopeo") && require_tool("docker-registry")) {
        return;
    }
    let sample = format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    let registry = Registry::start(Auth::Open);
    registry.push(&sample, "tagged/app:latest", &[]);
    registry.push(&sample, "tagged/app:1.0", &[]);
    registry.push(&sample, "only/latest:latest", &[]);
    let good_tags = |image: &str| {
        let out = strata([
            "check",
            "--json",
            "--no-verify-packages",
            "--tls-verify=false",
            image,
        ]);
        let json = parse_json(&out.stdout, "check --json");
        let a = assessment(&json, "good_tags");
        (
            a["result"].as_str().unwrap().to_owned(),
            a["reason"].as_str().unwrap().to_owned(),
        )
    };
    let cases = [
        (
            registry.image("tagged/app:1.0"),
            "pass",
            "referenced by tag \"1.0\"",
        ),
        (
            registry.image("tagged/app:latest"),
            "pass",
            "the repository has 1 tag(s) other than latest, e.g. \"1.0\"",
        ),
        (
            registry.image("tagged/app"),
            "pass",
            "the repository has 1 tag(s) other than latest, e.g. \"1.0\"",
        ),
        (
            registry.image("only/latest:latest"),
            "fail",
            "the repository has no tag other than latest",
        ),
        (
            sample.clone(),
            "unknown",
            "the reference has no tag and there is no repository tag list to look at",
        ),
    ];
    for (image, result, reason) in cases {
        assert_eq!(
            good_tags(&image),
            (result.to_owned(), reason.to_owned()),
            "{image}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// export, ls, find, cat against umoci unpack
// ---------------------------------------------------------------------------------------------------

/// `strata export` of `image`, extracted by GNU tar as root, must equal `umoci unpack`'s rootfs.
fn assert_export_equals_umoci(image: &str, work: &Path) -> PathBuf {
    assert_export_of_equals_umoci(&oci(image), image, work)
}

/// `strata export` of `exported` (any image strata reads), extracted by GNU tar as root, must equal the
/// rootfs `umoci unpack` makes of `image` (`LAYOUT:TAG`). Works in `work`, which must not exist yet.
fn assert_export_of_equals_umoci(exported: &str, image: &str, work: &Path) -> PathBuf {
    fs::create_dir_all(work).unwrap();
    let tar = work.join("export.tar");
    let out = strata(["export", exported, "-o", &tar.display().to_string()]);
    assert!(
        out.status.success(),
        "strata export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let extracted = work.join("extracted");
    fs::create_dir(&extracted).unwrap();
    run(Command::new("tar").arg("-C").arg(&extracted).args([
        "-xpf",
        &tar.display().to_string(),
        "--xattrs",
        "--xattrs-include=*",
        "--numeric-owner",
    ]));
    let bundle = work.join("umoci-bundle");
    umoci_unpack(image, &bundle);
    let rootfs = bundle.join("rootfs");
    let (ours, theirs) = (listing(&extracted), listing(&rootfs));
    assert!(theirs.len() > 20, "a real tree: {} entries", theirs.len());
    assert_same_tree(
        &ours,
        &theirs,
        &format!("strata export of {exported} (left) vs umoci unpack (right)"),
    );
    rootfs
}

#[test]
fn export_equals_umoci_unpack_and_ls_find_cat_agree() {
    if !(require_tool("umoci") && require_root("the export comparison")) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let image = rich_image(work.path(), 3 << 20).image;
    let rootfs = assert_export_equals_umoci(&image, work.path());
    let image = oci(&image);

    // find: the same paths as GNU find in the unpacked tree.
    let root_text = rootfs.display().to_string();
    let filters: [&[(&str, &str)]; 7] = [
        &[("perm", "-4000")],
        &[("perm", "/6000")],
        &[("perm", "0644"), ("type", "f")],
        &[("type", "l")],
        &[("type", "c")],
        &[("name", "*.gz")],
        &[("name", "[a-c]*"), ("type", "f")],
    ];
    for filter in filters {
        let mut find = Command::new("find");
        find.arg(&rootfs);
        let mut args = vec!["find".to_owned(), image.clone()];
        for (option, value) in filter {
            find.arg(format!("-{option}")).arg(value);
            args.push(format!("--{option}"));
            args.push((*value).to_owned());
        }
        let theirs: BTreeSet<String> = lines(&run(&mut find).stdout)
            .into_iter()
            .map(|p| match p.strip_prefix(&root_text) {
                Some("") => "/".to_owned(),
                Some(rest) => rest.to_owned(),
                None => p,
            })
            .collect();
        let ours: BTreeSet<String> = lines(&strata_ok(&args)).into_iter().collect();
        assert!(!theirs.is_empty(), "find {filter:?} finds something");
        assert_eq!(ours, theirs, "strata find {filter:?}");
    }
    let setuid = lines(&strata_ok(["find", &image, "/usr", "--perm", "-4000"]));
    assert_eq!(setuid, ["/usr/bin/su"]);

    // ls: the same names as `ls -A` in the unpacked tree, in the same (byte) order.
    for dir in ["/", "/usr/bin", "/srv", "/usr/share/doc"] {
        let theirs = lines(
            &run(Command::new("ls")
                .env("LC_ALL", "C")
                .arg("-A1")
                .arg(rootfs.join(dir.trim_start_matches('/'))))
            .stdout,
        );
        let ours = lines(&strata_ok(["ls", &image, dir]));
        assert_eq!(ours, theirs, "strata ls {dir}");
    }
    let long = lines(&strata_ok(["ls", "-l", &image, "/usr/bin"]));
    let line = |name: &str| {
        long.iter()
            .find(|l| l.split_whitespace().nth(7) == Some(name))
            .unwrap_or_else(|| panic!("{name} in {long:#?}"))
            .clone()
    };
    assert!(line("su").starts_with("-rwsr-xr-x "), "{}", line("su"));
    assert!(line("wall").starts_with("-rwxr-sr-x "), "{}", line("wall"));
    assert!(
        line("rel-link").ends_with("rel-link -> ../../srv/data/a"),
        "{}",
        line("rel-link")
    );
    // ls -l: the mode, link count (hardlinks, subdirectories), size (a symlink's target length) and name of
    // GNU ls -l in the unpacked tree (directories' sizes aside: the file system's, not the image's).
    for dir in ["/srv", "/srv/data", "/usr/bin"] {
        let theirs = lines(
            &run(Command::new("ls")
                .env("LC_ALL", "C")
                .env("TZ", "UTC")
                .arg("-ln")
                .arg("--time-style=long-iso")
                .arg(rootfs.join(dir.trim_start_matches('/'))))
            .stdout,
        );
        let ours = lines(&strata_ok(["ls", "-l", &image, dir]));
        let columns = |line: &str| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let size = if line.starts_with('d') || line.starts_with('c') {
                ""
            } else {
                f[4]
            };
            let time = line.find(':').unwrap();
            (
                f[0].to_owned(),
                f[1].to_owned(),
                size.to_owned(),
                line[time + 4..].to_owned(),
            )
        };
        let theirs: Vec<_> = theirs
            .iter()
            .filter(|l| !l.starts_with("total"))
            .map(|l| columns(l))
            .collect();
        let ours: Vec<_> = ours.iter().map(|l| columns(l)).collect();
        assert_eq!(ours, theirs, "strata ls -l {dir} vs ls -ln");
    }
    let srv = strata_ok(["ls", "-l", &image, "/srv"]);
    let srv = String::from_utf8_lossy(&srv);
    assert!(
        srv.lines()
            .any(|l| l.starts_with("crw-") && l.contains(" 1, 3 ") && l.ends_with(" null")),
        "{srv}"
    );
    assert!(
        srv.lines()
            .any(|l| l.starts_with("prw-------") && l.ends_with(" fifo")),
        "{srv}"
    );

    // cat: the bytes of the unpacked file, through symlinks (relative and absolute) inside the image.
    let long = format!(
        "srv/{}/{}/{}",
        "d".repeat(60),
        "e".repeat(60),
        "f".repeat(50)
    );
    for (path, file) in [
        ("/usr/bin/rel-link", "srv/data/a"),
        ("/usr/bin/abs-link", "srv/data/a"),
        ("/srv/long-link", long.as_str()),
        ("/srv/third-link", "srv/data/a"),
        ("/srv/data/owned", "srv/data/owned"),
    ] {
        assert_eq!(
            strata_ok(["cat", &image, path]),
            fs::read(rootfs.join(file)).unwrap(),
            "strata cat {path}"
        );
    }
    // The largest real file, streamed.
    let biggest = strata_ok(["find", &image, "/usr/share", "--type", "f"]);
    let biggest = lines(&biggest)
        .into_iter()
        .max_by_key(|p| {
            fs::metadata(rootfs.join(p.trim_start_matches('/')))
                .unwrap()
                .len()
        })
        .unwrap();
    assert_eq!(
        strata_ok(["cat", &image, &biggest]),
        fs::read(rootfs.join(biggest.trim_start_matches('/'))).unwrap()
    );
    for (path, what) in [
        ("/srv/data", "Is a directory"),
        ("/nope", "No such file"),
        ("/srv/fifo", "not a regular file"),
        ("/usr/bin/dangling", "dangling symlink to ../srv/data/a"),
        ("/srv/data/a/", "Not a directory"),
        ("/usr/bin/loop-a", "too many levels of symbolic links"),
    ] {
        let out = strata(["cat", &image, path]);
        assert_clean_error(&out, &format!("cat {path}"));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(what),
            "cat {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The committed sample: PAX and GNU long names, a name that is not UTF-8, an opaque directory, a
/// hardlink across layers, a capability xattr, devices and a fifo.
/// A store keeps layers unpacked: the scanner reads a `containers-storage:` image through the layers'
/// `diff` directories and indexes — layers podman stored (indexed by strata on first use, from their
/// tar-split) as well as layers strata pulled — and sees the same tree as in the image's archive.
#[test]
fn store_images_scan_as_their_archives() {
    if !(require_tool("umoci") && require_tool("podman") && require_root("the store scan")) {
        return;
    }
    let podman_store = TestStore::new();
    // podman names an image pulled from oci:PATH after PATH, and refuses upper case: build it in the store's
    // all-lowercase scratch area.
    let work = podman_store.scratch("work");
    let image = rich_image(&work, 3 << 20).image;
    podman_store.podman_ok(["pull", "-q", &oci(&image)]);
    let ids = podman_store.podman_image_ids();
    assert_eq!(ids.len(), 1, "podman stored one image: {ids:?}");
    let strata_store = TestStore::new();
    strata_store.strata_ok(["pull", &oci(&image)]);
    let strata_ids = strata_store.strata_image_ids();
    assert_eq!(strata_ids, ids, "the same image ID from strata and podman");

    for (who, store) in [("podman", &podman_store), ("strata", &strata_store)] {
        let reference = store.reference(&ids[0]);
        assert_export_of_equals_umoci(&reference, &image, &work.join(format!("export-{who}")));
        // Nothing differs from the archive, and the scanning commands agree with it.
        let diff = strata_ok(["diff", &oci(&image), &reference]);
        assert!(
            diff.is_empty(),
            "{who}: diff against the archive: {}",
            String::from_utf8_lossy(&diff)
        );
        for args in [
            &["find", "--perm", "-4000"][..],
            &["ls", "-l", "/srv/data"],
            &["cat", "/srv/third-link"],
            &["layers", "--files"],
        ] {
            let run_on = |name: &str| {
                let mut v = vec![args[0].to_owned(), name.to_owned()];
                v.extend(args[1..].iter().map(|a| (*a).to_owned()));
                strata_ok(v)
            };
            let (ours, archive) = (run_on(&reference), run_on(&oci(&image)));
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&archive),
                "{who}: strata {args:?} on the store image vs the archive"
            );
        }
    }

    // A layer directory changed behind the store's back is reported, never read silently.
    let layers = podman_store.strata_json(["layers", "--json"]);
    let changed = layers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["id"].as_str())
        .map(|id| {
            podman_store
                .root
                .join("overlay")
                .join(id)
                .join("diff/srv/data/owned")
        })
        .rev()
        .find(|p| p.is_file())
        .unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&changed)
        .unwrap()
        .write_all(b"tampered")
        .unwrap();
    let out = strata(["cat", &podman_store.reference(&ids[0]), "/srv/data/owned"]);
    assert_clean_error(&out, "cat of a changed layer file");
    assert_contains_all(
        &String::from_utf8_lossy(&out.stderr),
        &["srv/data/owned", "index"],
    );
}

fn assert_contains_all(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "{p:?} missing from: {text}");
    }
}

#[test]
fn export_of_the_sample_equals_umoci_unpack() {
    if !(require_tool("umoci") && require_tool("skopeo") && require_root("the export comparison")) {
        return;
    }
    if host_arch() != "amd64" {
        eprintln!("SKIP: the sample is linux/amd64 only");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // umoci reads gzip layers only: recompress the zstd one.
    let layout = work.path().join("sample");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sample.tar");
    skopeo_ok([
        "copy".to_owned(),
        "-q".to_owned(),
        "--dest-compress".to_owned(),
        "--dest-compress-format".to_owned(),
        "gzip".to_owned(),
        format!("oci-archive:{}", sample.display()),
        format!("oci:{}:latest", layout.display()),
    ]);
    assert_export_equals_umoci(&format!("{}:latest", layout.display()), work.path());
}

#[test]
fn ls_find_cat_on_the_sample() {
    if host_arch() != "amd64" {
        eprintln!("SKIP: the sample is linux/amd64 only");
        return;
    }
    let sample = format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    // /bin is a symlink to usr/bin: followed for cat and a listing, shown as a link by ls -l.
    assert_eq!(
        strata_ok(["cat", &sample, "/bin/app"]),
        b"#!/bin/sh\necho \"hello from the strata sample image\"\n"
    );
    let bin = lines(&strata_ok(["ls", &sample, "/bin"]));
    assert!(bin.contains(&"su".to_owned()), "{bin:?}");
    let bin_l = lines(&strata_ok(["ls", "-l", &sample, "/bin"]));
    assert_eq!(bin_l.len(), 1);
    assert!(
        bin_l[0].starts_with("lrwxrwxrwx") && bin_l[0].ends_with("/bin -> usr/bin"),
        "{bin_l:?}"
    );
    // Owners are named from the image's /etc/passwd and /etc/group.
    let usr_bin = lines(&strata_ok(["ls", "-l", &sample, "/bin/"]));
    let wall = usr_bin.iter().find(|l| l.ends_with(" wall")).unwrap();
    let fields: Vec<&str> = wall.split_whitespace().collect();
    assert_eq!(fields[..4], ["-rwxr-sr-x", "1", "root", "tty"], "{wall}");
    assert_eq!(fields[5..7], ["2023-11-14", "22:13"], "{wall}");
    let dev = String::from_utf8_lossy(&strata_ok(["ls", "-l", &sample, "/dev"])).into_owned();
    assert!(
        dev.lines()
            .any(|l| l.starts_with("brw-rw---- ") && l.contains(" 7, 0 ")),
        "{dev}"
    );
    assert_eq!(
        lines(&strata_ok(["find", &sample, "--perm", "/6000"])),
        ["/usr/bin/su", "/usr/bin/wall"]
    );
    assert_eq!(
        lines(&strata_ok([
            "find", &sample, "/usr", "--type", "l", "--name", "*app*"
        ])),
        ["/usr/local/bin/app"]
    );
    assert_eq!(
        lines(&strata_ok(["find", &sample, "/bin/", "--name", "p*"])),
        ["/bin/ping"]
    );
    assert_eq!(
        lines(&strata_ok(["find", &sample, "/etc/localtime"])),
        ["/etc/localtime"]
    );
    for (args, what) in [
        (vec!["find", sample.as_str(), "--perm", "u+s"], "--perm"),
        (vec!["find", sample.as_str(), "--type", "x"], "--type"),
        (vec!["ls", sample.as_str(), "/nope"], "No such file"),
    ] {
        let out = strata(&args);
        assert_clean_error(&out, &format!("{args:?}"));
        assert!(String::from_utf8_lossy(&out.stderr).contains(what));
    }
}

// ---------------------------------------------------------------------------------------------------
// diff
// ---------------------------------------------------------------------------------------------------

/// Sets the modification time of `path` (not following a symlink).
fn set_mtime(path: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Sets the modification time of every directory under `root`, and of `root` itself.
fn set_dir_mtimes(root: &Path, secs: i64) {
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            set_dir_mtimes(&entry.path(), secs);
        }
    }
    set_mtime(root, secs);
}

#[test]
fn diff_lists_exactly_the_changes_made() {
    if !require_tool("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let (a, bundle) = new_image(&layout, "a");
    let root = bundle.join("rootfs");
    copy_real_files(&root, 1 << 20);
    for dir in ["etc", "opt", "srv/tree/sub", "usr/bin"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (path, content) in [
        ("etc/keep", "unchanged\n"),
        ("etc/remove-me", "removed in b\n"),
        ("etc/same-size", "aaaa\n"),
        ("etc/other-size", "short\n"),
        ("etc/owner", "chowned in b\n"),
        ("etc/becomes-dir", "a file in a\n"),
        ("srv/tree/x", "x\n"),
        ("srv/tree/sub/y", "y\n"),
        ("usr/bin/tool", "#!/bin/sh\n"),
    ] {
        fs::write(root.join(path), content).unwrap();
    }
    fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("keep", root.join("etc/link")).unwrap();
    // Directory times are compared: make them the same in both images but where b changes one.
    set_dir_mtimes(&root, 1_600_000_000);
    repack(&a, &bundle);

    // b: a's bundle, changed, repacked as a new tag on top of a.
    let b = format!("{}:b", layout.display());
    fs::write(root.join("etc/added"), "new in b\n").unwrap();
    fs::create_dir(root.join("opt/newdir")).unwrap();
    fs::write(root.join("opt/newdir/file"), "new in b too\n").unwrap();
    fs::remove_file(root.join("etc/remove-me")).unwrap();
    fs::remove_dir_all(root.join("srv/tree")).unwrap();
    fs::write(root.join("etc/same-size"), "bbbb\n").unwrap();
    fs::write(root.join("etc/other-size"), "much longer\n").unwrap();
    fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_file(root.join("etc/link")).unwrap();
    symlink("same-size", root.join("etc/link")).unwrap();
    fs::remove_file(root.join("etc/becomes-dir")).unwrap();
    fs::create_dir(root.join("etc/becomes-dir")).unwrap();
    let chown = is_root();
    if chown {
        rustix::fs::chown(
            root.join("etc/owner"),
            Some(rustix::process::Uid::from_raw(1000)),
            Some(rustix::process::Gid::from_raw(1000)),
        )
        .unwrap();
    }
    set_dir_mtimes(&root, 1_600_000_000);
    set_mtime(&root.join("srv"), 1_700_000_000);
    repack(&b, &bundle);

    let out = strata(["diff", "--json", &oci(&a), &oci(&b)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "images that differ are findings"
    );
    let json = parse_json(&out.stdout, "diff --json");
    assert_eq!(json["image_a"], oci(&a).as_str());
    let got: Vec<(String, String, Vec<String>)> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_owned(),
                c["path"].as_str().unwrap().to_owned(),
                c["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let mut expected: Vec<(&str, &str, Vec<&str>)> = vec![
        ("added", "/etc/added", vec![]),
        ("changed", "/etc/becomes-dir", vec!["kind"]),
        ("changed", "/etc/link", vec!["link"]),
        ("changed", "/etc/other-size", vec!["size"]),
        ("changed", "/etc/owner", vec!["owner"]),
        ("removed", "/etc/remove-me", vec![]),
        ("changed", "/etc/same-size", vec!["content"]),
        ("added", "/opt/newdir", vec![]),
        ("added", "/opt/newdir/file", vec![]),
        ("changed", "/srv", vec!["mtime"]),
        ("removed", "/srv/tree", vec![]),
        ("removed", "/srv/tree/sub", vec![]),
        ("removed", "/srv/tree/sub/y", vec![]),
        ("removed", "/srv/tree/x", vec![]),
        ("changed", "/usr/bin/tool", vec!["mode"]),
    ];
    if !chown {
        expected.retain(|(_, path, _)| *path != "/etc/owner");
    }
    let expected: Vec<(String, String, Vec<String>)> = expected
        .into_iter()
        .map(|(c, p, f)| {
            (
                c.to_owned(),
                p.to_owned(),
                f.into_iter().map(str::to_owned).collect(),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // The text form: docker diff's letters, then what changed.
    let out = strata(["diff", &oci(&a), &oci(&b)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("differ"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = lines(&out.stdout);
    assert_eq!(text.len(), expected.len());
    for wanted in [
        "A /etc/added",
        "D /etc/remove-me",
        "C /etc/same-size: content",
        "C /etc/other-size: size 6->12",
        "C /etc/link: link keep->same-size",
        "C /usr/bin/tool: mode 0755->0700",
        "C /etc/becomes-dir: kind file->dir",
        "C /srv: mtime 2020-09-13 12:26->2023-11-14 22:13",
    ] {
        assert!(text.contains(&wanted.to_owned()), "{wanted} in {text:#?}");
    }
    // An image against itself, and swapped.
    assert!(strata_ok(["diff", &oci(&a), &oci(&a)]).is_empty(), "exit 0");
    let swapped = lines(&strata(["diff", &oci(&b), &oci(&a)]).stdout);
    assert!(
        swapped.contains(&"A /etc/remove-me".to_owned()),
        "{swapped:#?}"
    );
    assert!(swapped.contains(&"D /etc/added".to_owned()), "{swapped:#?}");
}

// ---------------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------------

const DEBIAN_OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
    VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n";
/// UBI 9's os-release (abridged).
const UBI_OS_RELEASE: &str = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.3 (Plow)\"\nID=\"rhel\"\n\
    ID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.3 (Plow)\"\n";
const DPKG_STATUS: &str = "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\n\
    Version: 12.4+deb12u5\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
    Multi-Arch: same\nVersion: 2.36-9+deb12u4\nConffiles:\n /etc/ld.so.conf.d/libc.conf 8537d9e34c376a8955453deae01b1ec3\n";

/// A base layer with `os_release`, a dpkg database of two packages, base-files' one file and its md5sum
/// and libc6's conffile.
fn base_layer(os_release: &str) -> LayerBuilder {
    let mut l = LayerBuilder::new();
    l.dir("etc");
    l.file("etc/os-release", os_release);
    l.dir("etc/ld.so.conf.d");
    l.file("etc/ld.so.conf.d/libc.conf", "/usr/lib/x86_64-linux-gnu\n");
    l.dir("usr");
    l.dir("usr/share");
    l.dir("usr/share/base-files");
    l.file("usr/share/base-files/motd", "motd\n");
    l.dir("var");
    l.dir("var/lib");
    l.dir("var/lib/dpkg");
    l.file("var/lib/dpkg/status", DPKG_STATUS);
    l.dir("var/lib/dpkg/info");
    l.file(
        "var/lib/dpkg/info/base-files.md5sums",
        "32354b5a12cf35c2ea3fe051e04ed72a  usr/share/base-files/motd\n",
    );
    l
}

const COMPLIANT_TABLE: &str = "\
ASSESSMENT                        RESULT   REASON
has_licenses                      pass     /licenses holds 2 file(s)
not_running_privileged            pass     no RUN or usage label asks for --privileged (all an image can state: privileges are granted when the container is run)
rpm_list_successful               pass     no rpm database; answered from dpkg: its database lists 2 packages
rpm_verify_successful             pass     2 files of 2 packages match the dpkg database (no rpm database; answered from dpkg)
is_rhel                           pass     ID=rhel, NAME=\"Red Hat Enterprise Linux\" in /etc/os-release; no rpm installed
vendor_label_exists               pass     vendor=\"Strata Project\"
free_of_critical_vulnerabilities  unknown  no advisory feed given
good_tags                         pass     referenced by tag \"1.0-3\"
good_layer_count                  pass     2 layers (at most 40)
release_label_exists              pass     release=\"3\"
not_running_as_root               pass     User is \"1001\"
version_label_exists              pass     version=\"1.0\"
name_label_exists                 pass     name=\"strata-compliant\"
maintainer_label_exists           pass     maintainer=\"strata@example.org\"
summary_label_exists              pass     summary=\"A compliant image\"
description_label_exists          pass     description=\"It passes every assessment.\"
health_index                      unknown  no advisory feed given
";

const NON_COMPLIANT_TABLE: &str = "\
ASSESSMENT                        RESULT   REASON
has_licenses                      FAIL     the image has no /licenses directory
not_running_privileged            FAIL     the RUN label asks for --privileged: \"podman run --privileged IMAGE\"
rpm_list_successful               pass     no rpm database; answered from dpkg: its database lists 2 packages
rpm_verify_successful             FAIL     1 of 2 packaged files differ (no rpm database; answered from dpkg): ??5?????? /usr/share/base-files/motd (base-files)
is_rhel                           FAIL     /etc/os-release says ID=\"debian\", not rhel
vendor_label_exists               FAIL     no \"vendor\" label
free_of_critical_vulnerabilities  unknown  no advisory feed given
good_tags                         FAIL     referenced only as latest, and no repository tag list to look at
good_layer_count                  FAIL     42 layers (at most 40)
release_label_exists              FAIL     no \"release\" label
not_running_as_root               FAIL     User is \"root\"
version_label_exists              FAIL     no \"version\" label
name_label_exists                 pass     name=\"strata-non-compliant\"
maintainer_label_exists           FAIL     no \"maintainer\" label
summary_label_exists              FAIL     label \"summary\" is empty
description_label_exists          FAIL     no \"description\" label
health_index                      unknown  no advisory feed given

1 of 2 packaged files differ from their package database:
??5??????   /usr/share/base-files/motd  (base-files)
";

/// The whole table, by the certification scan's names, of an image that passes everything an image can
/// decide alone (`free_of_critical_vulnerabilities` is unknown without an advisory feed) and of one that
/// fails everything it can.
#[test]
fn check_tables_of_a_compliant_and_a_non_compliant_image() {
    let work = tempfile::tempdir().unwrap();
    let mut licenses = LayerBuilder::new();
    licenses.dir("licenses");
    licenses.file("licenses/LICENSE", "Apache-2.0\n");
    licenses.dir("licenses/third-party");
    licenses.file("licenses/third-party/MIT", "MIT\n");
    let compliant = ImageBuilder::new()
        .architecture(host_arch())
        .label("name", "strata-compliant")
        .label("vendor", "Strata Project")
        .label("version", "1.0")
        .label("release", "3")
        .label("maintainer", "strata@example.org")
        .label("summary", "A compliant image")
        .label("description", "It passes every assessment.")
        .user("1001")
        .layer(base_layer(UBI_OS_RELEASE), Compression::Gzip)
        .layer(licenses, Compression::Zstd);
    let good = work.path().join("good");
    compliant.write_layout(&good, "1.0-3").unwrap();
    let good = format!("oci:{}:1.0-3", good.display());
    let out = strata(["check", &good]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), COMPLIANT_TABLE);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 of 16 could not be decided"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = parse_json(&strata_ok(["check", "--json", &good]), "check --json");
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "image",
            "passed",
            "failed",
            "unknown",
            "assessments",
            "health_index",
            "distribution",
            "verification",
            "advisories"
        ]
    );
    assert_eq!(json["image"], good.as_str());
    assert_eq!(
        (&json["passed"], &json["failed"], &json["unknown"]),
        (&Value::Bool(true), &Value::from(0), &Value::from(1))
    );
    let names: Vec<&str> = json["assessments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "has_licenses",
            "not_running_privileged",
            "rpm_list_successful",
            "rpm_verify_successful",
            "is_rhel",
            "vendor_label_exists",
            "free_of_critical_vulnerabilities",
            "good_tags",
            "good_layer_count",
            "release_label_exists",
            "not_running_as_root",
            "version_label_exists",
            "name_label_exists",
            "maintainer_label_exists",
            "summary_label_exists",
            "description_label_exists"
        ]
    );
    let first: Vec<&str> = json["assessments"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(first, ["name", "result", "reason"]);
    assert_eq!(json["health_index"]["grade"], "unknown");
    assert_eq!(json["distribution"]["id"], "rhel");
    assert_eq!(json["verification"]["files"], 2);

    // Root, labels missing or empty, no /licenses, a privileged RUN label, 42 layers, Debian, referenced as
    // latest, and a packaged file changed by a later layer.
    let mut changed = LayerBuilder::new();
    changed.dir("usr");
    changed.dir("usr/share");
    changed.dir("usr/share/base-files");
    changed.file("usr/share/base-files/motd", "changed\n");
    let mut bad = ImageBuilder::new()
        .architecture(host_arch())
        .label("name", "strata-non-compliant")
        .label("summary", "")
        .label("RUN", "podman run --privileged IMAGE")
        .user("root")
        .layer(base_layer(DEBIAN_OS_RELEASE), Compression::Gzip)
        .layer(changed, Compression::None);
    for i in 0..40 {
        let mut l = LayerBuilder::new();
        l.file(format!("layer-{i:02}"), format!("layer {i}\n"));
        bad = bad.layer(l, Compression::None);
    }
    let bad_dir = work.path().join("bad");
    bad.write_layout(&bad_dir, "latest").unwrap();
    let bad = format!("oci:{}:latest", bad_dir.display());
    let out = strata(["check", &bad]);
    assert_eq!(out.status.code(), Some(1), "a failing image exits 1");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error:"),
        "failed assessments are findings, not an error"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), NON_COMPLIANT_TABLE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "fails 13 of 16 assessments (1 unknown): has_licenses, not_running_privileged"
        ),
        "{stderr}"
    );
    let json = check_json(&bad);
    assert_eq!(json["passed"], false);
    let failed: Vec<&str> = json["assessments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "fail")
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "has_licenses",
            "not_running_privileged",
            "rpm_verify_successful",
            "is_rhel",
            "vendor_label_exists",
            "good_tags",
            "good_layer_count",
            "release_label_exists",
            "not_running_as_root",
            "version_label_exists",
            "maintainer_label_exists",
            "summary_label_exists",
            "description_label_exists",
        ]
    );
}

// ---------------------------------------------------------------------------------------------------
// Names are bytes
// ---------------------------------------------------------------------------------------------------

/// Names `ls` and `find` quote or escape, each a file in `n/` (and a symlink to a name that is not UTF-8).
const ODD_NAMES: &[&[u8]] = &[
    b"plain",
    b"a b",
    b"a'b",
    b"a'b c",
    b"a'$b",
    b"x\"y",
    b"tab\tx",
    b"nl\nx",
    b"del\x7f",
    b"bell\x07",
    b"caf\xe9.txt",
    b"\xc3\xa9",
    b"\xc3\xa9\xff",
    b"#hash",
    b"x#",
    b"~t",
    b"a~",
    b"{",
    b"a{",
    b"-dash",
    b"back\\slash",
    b"star*",
    b"q?",
    b"\x01a",
    b"semi;",
    b"amp&",
];

/// `cmd` run by `script` on a pseudo-terminal in `cwd` (UTF-8 locale, UTC): what a user sees.
fn on_tty(cmd: &str, cwd: &Path) -> Vec<u8> {
    run(Command::new("script")
        .args(["-q", "-e", "-c", cmd, "/dev/null"])
        .current_dir(cwd)
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC"))
    .stdout
}

/// `cmd` (a program and its arguments) in `cwd` with its output to a pipe.
fn on_pipe(cmd: &[&std::ffi::OsStr], cwd: &Path) -> Vec<u8> {
    run(Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(cwd)
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC"))
    .stdout
}

fn sorted_records(bytes: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let at = rest
            .windows(end.len())
            .position(|w| w == end)
            .unwrap_or(rest.len());
        records.push(rest[..at].to_vec());
        rest = rest.get(at + end.len()..).unwrap_or_default();
    }
    records.sort();
    records
}

/// What follows the `HH:MM ` of each `ls -l` line (the name, quoted, and a symlink's target).
fn after_time(listing: &[u8]) -> Vec<Vec<u8>> {
    sorted_records(listing, b"\r\n")
        .into_iter()
        .filter(|l| !l.starts_with(b"total"))
        .map(|l| {
            let at = l
                .windows(4)
                .position(|w| {
                    w[0] == b':' && w[1].is_ascii_digit() && w[2].is_ascii_digit() && w[3] == b' '
                })
                .unwrap();
            l[at + 4..].to_vec()
        })
        .collect()
}

#[test]
fn names_that_are_not_utf8_or_printable_print_as_ls_and_find_print_them() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    if !(require_tool("script") && require_tool("find") && require_tool("ls")) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let host = work.path().join("host");
    fs::create_dir_all(host.join("n")).unwrap();
    let mut l = LayerBuilder::new();
    l.dir("n");
    for name in ODD_NAMES {
        let mut path = b"n/".to_vec();
        path.extend_from_slice(name);
        l.file(path.clone(), "x\n").mtime(1_700_000_000);
        fs::write(host.join(OsStr::from_bytes(&path)), "x\n").unwrap();
    }
    l.symlink("n/link", &b"caf\xe9.txt"[..])
        .mtime(1_700_000_000);
    symlink(OsStr::from_bytes(b"caf\xe9.txt"), host.join("n/link")).unwrap();
    l.symlink("n/dangling", "nowhere");
    symlink("nowhere", host.join("n/dangling")).unwrap();
    let layout = work.path().join("names");
    ImageBuilder::new()
        .architecture(host_arch())
        .layer(l.clone(), Compression::Gzip)
        .write_layout(&layout, "latest")
        .unwrap();
    let image = format!("oci:{}:latest", layout.display());
    let bin = strata_tests::strata_bin();
    let strata_cmd = |args: &str| format!("'{}' {args}", bin.display());

    // ls: raw bytes to a pipe, quoted on a terminal, escaped with -b; in ls's order.
    let ours = strata_ok(["ls", &image, "/n"]);
    let theirs = on_pipe(&["ls".as_ref(), "-1".as_ref(), "n".as_ref()], &host);
    assert_eq!(ours, theirs, "ls to a pipe");
    let ours = on_tty(&strata_cmd(&format!("ls '{image}' /n")), &host);
    let theirs = on_tty("ls -1 n", &host);
    assert!(
        theirs.windows(3).any(|w| w == b"'$'"),
        "ls on a terminal quotes: {}",
        String::from_utf8_lossy(&theirs)
    );
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "ls on a terminal"
    );
    let ours = strata_ok(["ls", "-b", &image, "/n"]);
    let theirs = on_pipe(&["ls".as_ref(), "-1b".as_ref(), "n".as_ref()], &host);
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "ls -b"
    );
    let ours = on_tty(&strata_cmd(&format!("ls -l '{image}' /n")), &host);
    let theirs = on_tty("ls -l --time-style=long-iso n", &host);
    assert!(
        theirs.windows(7).any(|w| w == b"  -dash"),
        "unquoted names are indented: {}",
        String::from_utf8_lossy(&theirs)
    );
    assert_eq!(
        after_time(&ours),
        after_time(&theirs),
        "ls -l on a terminal: names, alignment and link targets"
    );
    // cat reaches the name by its bytes.
    assert_eq!(
        strata_ok([
            OsStr::new("cat"),
            OsStr::new(&image),
            OsStr::from_bytes(b"/n/caf\xe9.txt")
        ]),
        b"x\n"
    );

    // find: raw to a pipe, `?` on a terminal, NUL-ended with --print0; -name on bytes.
    let ours = strata_ok(["find", &image, "n"]);
    let theirs = on_pipe(&["find".as_ref(), "n".as_ref()], &host);
    assert_eq!(
        sorted_records(&ours, b"\n"),
        sorted_records(&theirs, b"\n"),
        "find to a pipe"
    );
    let ours = on_tty(&strata_cmd(&format!("find '{image}' n")), &host);
    let theirs = on_tty("find n", &host);
    assert!(
        theirs.contains(&b'?'),
        "{}",
        String::from_utf8_lossy(&theirs)
    );
    assert_eq!(
        sorted_records(&ours, b"\r\n"),
        sorted_records(&theirs, b"\r\n"),
        "find on a terminal"
    );
    let ours = strata_ok(["find", "--print0", &image, "n"]);
    let theirs = on_pipe(&["find".as_ref(), "n".as_ref(), "-print0".as_ref()], &host);
    assert_eq!(sorted_records(&ours, b"\0"), sorted_records(&theirs, b"\0"));
    for pattern in [&b"caf?.txt"[..], b"caf\xe9*", b"*[!a-z].txt", b"\xc3\xa9*"] {
        let ours = strata_ok([
            OsStr::new("find"),
            OsStr::new(&image),
            OsStr::new("n"),
            OsStr::new("--name"),
            OsStr::from_bytes(pattern),
        ]);
        let theirs = on_pipe(
            &[
                "find".as_ref(),
                "n".as_ref(),
                "-name".as_ref(),
                OsStr::from_bytes(pattern),
            ],
            &host,
        );
        assert!(!theirs.is_empty());
        assert_eq!(
            sorted_records(&ours, b"\n"),
            sorted_records(&theirs, b"\n"),
            "find -name {}",
            String::from_utf8_lossy(pattern)
        );
    }

    // diff: the exact bytes in JSON (`path_raw`, `link_raw`), raw in the text to a pipe.
    let mut upper = LayerBuilder::new();
    upper.whiteout(&b"n/caf\xe9.txt"[..]);
    upper.symlink("n/link", &b"\xff"[..]).mtime(1_700_000_000);
    let changed = work.path().join("changed");
    ImageBuilder::new()
        .architecture(host_arch())
        .layer(l, Compression::Gzip)
        .layer(upper, Compression::Gzip)
        .write_layout(&changed, "latest")
        .unwrap();
    let changed = format!("oci:{}:latest", changed.display());
    let out = strata(["diff", "--json", &image, &changed]);
    assert_eq!(out.status.code(), Some(1), "the images differ");
    let json = parse_json(&out.stdout, "diff --json");
    let changes = json["changes"].as_array().unwrap();
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let removed = changes.iter().find(|c| c["change"] == "removed").unwrap();
    assert_eq!(removed["path"], "/n/caf\u{fffd}.txt");
    assert_eq!(removed["path_raw"], b64(b"/n/caf\xe9.txt"));
    assert_eq!(removed["before"]["path_raw"], b64(b"/n/caf\xe9.txt"));
    let link = changes.iter().find(|c| c["path"] == "/n/link").unwrap();
    assert!(link.get("path_raw").is_none(), "{link}");
    assert_eq!(link["before"]["link_raw"], b64(b"caf\xe9.txt"));
    assert_eq!(link["after"]["link_raw"], b64(b"\xff"));
    assert_eq!(link["after"]["link"], "\u{fffd}");
    let text = strata(["diff", &image, &changed]).stdout;
    assert!(
        text.starts_with(b"D /n/caf\xe9.txt\n"),
        "{}",
        String::from_utf8_lossy(&text)
    );

    // export: the tar has the exact name (GNU tar extracts it).
    let tar = work.path().join("export.tar");
    strata_ok(["export", &image, "-o", tar.to_str().unwrap()]);
    let extracted = work.path().join("extracted");
    fs::create_dir(&extracted).unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(&extracted)
        .arg("-xf")
        .arg(&tar));
    for name in ODD_NAMES {
        let mut path = b"n/".to_vec();
        path.extend_from_slice(name);
        assert!(
            extracted.join(OsStr::from_bytes(&path)).is_file(),
            "{}",
            String::from_utf8_lossy(&path)
        );
    }
    assert_eq!(
        fs::read_link(extracted.join("n/link"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"caf\xe9.txt"
    );
}

/// A path that goes on after a file (`/etc/passwd/`, `/etc/passwd/x`) is not a directory, as the kernel and
/// coreutils say: an error (exit 2), not the file.
#[test]
fn a_trailing_slash_after_a_file_is_not_a_directory() {
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("passwd"), "root\n").unwrap();
    for tool in ["ls", "cat"] {
        let theirs = Command::new(tool)
            .arg("passwd/")
            .current_dir(work.path())
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&theirs.stderr).contains("Not a directory"),
            "{tool}: {}",
            String::from_utf8_lossy(&theirs.stderr)
        );
    }
    let sample = format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    for args in [
        ["ls", sample.as_str(), "/etc/passwd/"],
        ["ls", sample.as_str(), "/etc/passwd/."],
        ["cat", sample.as_str(), "/etc/passwd/"],
        ["cat", sample.as_str(), "/etc/passwd/x"],
        ["find", sample.as_str(), "/etc/passwd/"],
    ] {
        let out = strata(args);
        assert_clean_error(&out, &format!("{args:?}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("/etc/passwd/"), "{stderr}");
        assert!(stderr.contains(": Not a directory"), "{stderr}");
    }
    // Without the slash it is the file; a directory takes one.
    assert_eq!(
        lines(&strata_ok(["ls", &sample, "/etc/passwd"])),
        ["/etc/passwd"]
    );
    assert!(lines(&strata_ok(["ls", &sample, "/etc/"])).contains(&"passwd".to_owned()));
}

/// `strata layers IMAGE` is the per-layer files report (what `--files` asks for); `--files` needs an image.
#[test]
fn layers_of_an_image_is_its_files_report() {
    let sample = format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    let report = strata_ok(["layers", &sample]);
    assert_eq!(report, strata_ok(["layers", "--files", &sample]));
    assert!(
        String::from_utf8_lossy(&report).starts_with("LAYER  DIGEST"),
        "{}",
        String::from_utf8_lossy(&report)
    );
    let json = parse_json(&strata_ok(["layers", "--json", &sample]), "layers --json");
    assert_eq!(json["layers"].as_array().unwrap().len(), 3);
    let out = strata(["layers", "--files"]);
    assert_eq!(out.status.code(), Some(2), "--files without an image");
}

/// An image without a package database has no packages: `packages --json` prints `[]`, the text form says so
/// on stderr, both exit 0; `check` says `unknown` for the package assessments instead of failing them.
#[test]
fn no_package_database_is_no_packages_not_a_failure() {
    let sample = format!(
        "oci-archive:{}/../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = strata(["packages", "--json", &sample]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        parse_json(&out.stdout, "packages --json"),
        serde_json::json!([])
    );
    let out = strata(["packages", &sample]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no package database"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");

    let out = strata(["check", &sample]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for name in ["rpm_list_successful", "rpm_verify_successful"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(name) && l.split_whitespace().nth(1) == Some("unknown")),
            "{table}"
        );
    }
    let json = check_json(&sample);
    // The sample is Debian without a maintainer label: those fail; the package assessments are unknown.
    assert_eq!(json["passed"], false);
    for name in ["rpm_list_successful", "rpm_verify_successful"] {
        let a = assessment(&json, name);
        assert_eq!(a["result"], "unknown", "{a}");
        assert!(
            a["reason"]
                .as_str()
                .unwrap()
                .contains("no package database"),
            "{a}"
        );
    }
    assert!(json["verification"].is_null());
}
