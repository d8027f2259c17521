//! The scanner on the bundled sample image.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_oci::Platform;
use strata_scan::{Kind, ScanImage};

fn sample() -> ScanImage {
    let name = format!(
        "oci-archive:{}/../../samples/sample.tar",
        env!("CARGO_MANIFEST_DIR")
    );
    ScanImage::open(&name, &Platform::new("linux", "amd64", None)).unwrap()
}

#[test]
fn walks_stats_and_reads() {
    let image = sample();
    let all: Vec<_> = image.entries().collect::<Result<_, _>>().unwrap();
    assert!(
        all.iter()
            .any(|e| e.path == b"/usr/bin/su" && e.mode & 0o4000 != 0)
    );
    assert!(!all.iter().any(|e| e.path == b"/etc/motd"), "whited out");
    let su = image.stat("/usr/bin/su").unwrap().unwrap();
    assert_eq!(su.kind, Kind::File);
    let etc: Vec<String> = image
        .read_dir("/etc")
        .unwrap()
        .into_iter()
        .map(|e| e.path_lossy().into_owned())
        .collect();
    assert!(etc.contains(&"/etc/os-release".to_owned()), "{etc:?}");
    let passwd = image.read("/etc/passwd", 1 << 20).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&passwd).contains("root:"));
    assert!(image.read("/nope", 10).unwrap().is_none());
}

/// Paths are bytes: the sample's Latin-1 name is reached by its exact bytes, and its JSON form keeps them.
#[test]
fn a_name_that_is_not_utf8() {
    let image = sample();
    let path: &[u8] = b"/usr/share/misc/caf\xe9.txt";
    let entry = image.stat(path).unwrap().unwrap();
    assert_eq!(entry.path, path);
    assert_eq!(entry.name(), b"caf\xe9.txt");
    assert_eq!(entry.path_lossy(), "/usr/share/misc/caf\u{fffd}.txt");
    let listed = image.read_dir("/usr/share/misc").unwrap();
    assert!(listed.iter().any(|e| e.path == path), "{listed:?}");
    let mut content = Vec::new();
    assert!(image.copy_entry(&entry, &mut content).unwrap().is_some());
    assert_eq!(image.read(path, 1 << 20).unwrap().unwrap(), content);
    assert!(
        image
            .stat("/usr/share/misc/caf\u{fffd}.txt")
            .unwrap()
            .is_none()
    );
    assert!(
        strata_scan::find::Glob::new("caf?.txt").matches(entry.name()),
        "? matches the byte"
    );
    let json: serde_json::Value = serde_json::to_value(&entry).unwrap();
    assert_eq!(json["path"], "/usr/share/misc/caf\u{fffd}.txt");
    assert_eq!(json["path_raw"], "L3Vzci9zaGFyZS9taXNjL2NhZukudHh0");
    assert!(json.get("link_raw").is_none());
    assert_eq!(json["mode"], strata_scan::octal_mode(entry.mode));
    let su = serde_json::to_value(image.stat("/usr/bin/su").unwrap().unwrap()).unwrap();
    assert_eq!(su["mode"], "4755");
    assert!(su.get("path_raw").is_none(), "UTF-8 paths have none");
}

#[test]
fn os_and_checks() {
    let image = sample();
    let os = image.os().unwrap().unwrap();
    assert_eq!(os.id, "debian");
    let checks = image.check().unwrap();
    let get = |n: &str| checks.iter().find(|a| a.name == n).unwrap().result;
    use strata_scan::check::Status;
    assert_eq!(get("has_licenses"), Status::Pass);
    assert_eq!(get("not_running_as_root"), Status::Pass);
    assert_eq!(get("name_label_exists"), Status::Pass);
    assert_eq!(get("good_layer_count"), Status::Pass);
    assert_eq!(get("is_rhel"), Status::Fail, "a Debian sample");
    // No package database in the sample: unknown, not failed and not passed.
    assert_eq!(get("rpm_list_successful"), Status::Unknown);
    assert_eq!(get("rpm_verify_successful"), Status::Unknown);
}
