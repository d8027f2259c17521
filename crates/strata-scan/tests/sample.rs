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
            .any(|e| e.path == "/usr/bin/su" && e.mode & 0o4000 != 0)
    );
    assert!(!all.iter().any(|e| e.path == "/etc/motd"), "whited out");
    let su = image.stat("/usr/bin/su").unwrap().unwrap();
    assert_eq!(su.kind, Kind::File);
    let etc: Vec<String> = image
        .read_dir("/etc")
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(etc.contains(&"/etc/os-release".to_owned()), "{etc:?}");
    let passwd = image.read("/etc/passwd", 1 << 20).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&passwd).contains("root:"));
    assert!(image.read("/nope", 10).unwrap().is_none());
}

#[test]
fn os_and_checks() {
    let image = sample();
    let os = image.os().unwrap().unwrap();
    assert_eq!(os.id, "debian");
    let checks = image.check().unwrap();
    let get = |n: &str| checks.iter().find(|a| a.name == n).unwrap().passed;
    assert!(get("has_licenses"));
    assert!(get("not_running_as_root"));
    assert!(get("has_name_label"));
    assert!(get("good_layer_count"));
    assert!(get("base_distribution_detected"));
}
