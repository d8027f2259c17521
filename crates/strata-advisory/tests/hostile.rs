//! Hostile feeds: each is a clear error or a named warning, quickly, with nothing expanded or written.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::io::{Cursor, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_advisory::{Date, Distribution, Error, Feed, InstalledPackage, Limits, PackageManager};

fn deflated() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false)
}

/// A zip of one `name` entry holding `size` zero bytes, deflated (about 1000:1).
fn zeros_zip(name: &str, size: u64) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(name, deflated().large_file(size >= u64::from(u32::MAX)))
        .unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        zip.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn a_one_gigabyte_osv_file_is_refused_without_reading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feed");
    std::fs::create_dir(&dir).unwrap();
    let big = dir.join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap(); // sparse: no bytes written
    for path in [&dir, &big] {
        let start = Instant::now();
        let err = Feed::open(path).unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        match &err {
            Error::FileTooLarge { path, size, limit } => {
                assert!(path.ends_with("big.json"), "{path}");
                assert_eq!(*size, 1 << 30);
                assert_eq!(*limit, 64 << 20);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("big.json"), "{err}");
    }
}

#[test]
fn a_zip_bomb_is_refused_not_expanded() {
    let tmp = tempfile::tempdir().unwrap();
    // One entry of 1 GiB of zeros (about 1 MiB compressed): refused from its declared size.
    let bomb = tmp.path().join("bomb.zip");
    std::fs::write(&bomb, zeros_zip("bomb/DSA-1.json", 1 << 30)).unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 8 << 20);
    let start = Instant::now();
    let err = Feed::open(&bomb).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(&err, Error::FileTooLarge { path, size, .. } if path.ends_with("bomb.zip!bomb/DSA-1.json") && *size == 1 << 30),
        "{err:?}"
    );

    // Many entries, each under the per-entry limit, that uncompress to 4.8 GB in all: the same compressed
    // entry copied 80 times without recompressing. Refused before the total passes 4 GiB.
    let one = zeros_zip("e.json", 60 << 20);
    let mut source = zip::ZipArchive::new(Cursor::new(one)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..80 {
        let entry = source.by_index_raw(0).unwrap();
        out.raw_copy_file_rename(entry, format!("osv/{i:03}.json"))
            .unwrap();
    }
    let many = tmp.path().join("many.zip");
    std::fs::write(&many, out.finish().unwrap().into_inner()).unwrap();
    let start = Instant::now();
    let err = Feed::open(&many).unwrap_err();
    assert!(
        matches!(&err, Error::TotalTooLarge { size, limit, .. } if *size > *limit && *limit == 4 << 30),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    eprintln!("many-entry bomb refused in {:?}: {err}", start.elapsed());
}

#[test]
fn a_zip_entry_lying_about_its_size_is_cut_at_the_limit() {
    // An entry of 8 MiB whose headers declare 100 bytes, read under a 1 MiB limit.
    let mut bytes = zeros_zip("lie.json", 8 << 20);
    for (signature, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
        let at = bytes.windows(4).position(|w| w == signature).unwrap() + offset;
        bytes[at..at + 4].copy_from_slice(&100u32.to_le_bytes());
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("lie.zip");
    std::fs::write(&path, bytes).unwrap();
    let limits = Limits {
        max_file_size: 1 << 20,
        ..Limits::default()
    };
    // Whatever the zip reader makes of the lie, at most one byte past the limit is read and the feed is
    // refused with an error naming the entry.
    let err = Feed::open_with_limits(&path, &limits).unwrap_err();
    assert!(err.to_string().contains("lie.json"), "{err}");
    eprintln!("lying entry: {err}");
}

#[test]
fn too_many_zip_entries_and_too_deep_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..11 {
        zip.start_file(format!("{i}.json"), deflated()).unwrap();
        zip.write_all(b"{}").unwrap();
    }
    let path = tmp.path().join("entries.zip");
    std::fs::write(&path, zip.finish().unwrap().into_inner()).unwrap();
    let limits = Limits {
        max_zip_entries: 10,
        max_depth: 3,
        ..Limits::default()
    };
    let err = Feed::open_with_limits(&path, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyEntries {
                entries: 11,
                limit: 10,
                ..
            }
        ),
        "{err:?}"
    );

    let deep = tmp.path().join("a/b/c/d/e");
    std::fs::create_dir_all(&deep).unwrap();
    let err = Feed::open_with_limits(&tmp.path().join("a"), &limits).unwrap_err();
    assert!(matches!(err, Error::TooDeep { limit: 3, .. }), "{err:?}");
}

#[test]
fn zip_entry_names_are_never_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let inner = tmp.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (i, name) in ["../../escape.json", "/abs.json", "..\\win.json"]
        .iter()
        .enumerate()
    {
        zip.start_file(*name, deflated()).unwrap();
        let record = json!({"id": format!("X-{i}"), "affected": [{
            "package": {"ecosystem": "Debian:12", "name": "zlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.3-1"}]}],
        }]});
        zip.write_all(record.to_string().as_bytes()).unwrap();
    }
    let path = inner.join("names.zip");
    std::fs::write(&path, zip.finish().unwrap().into_inner()).unwrap();
    let before: Vec<_> = walk(tmp.path());
    let feed = Feed::open(&path).unwrap();
    assert_eq!(walk(tmp.path()), before, "nothing is written");
    let mut files: Vec<_> = feed.advisories().iter().map(|a| a.file.clone()).collect();
    files.sort();
    assert!(
        files[0].ends_with("names.zip!../../escape.json"),
        "{files:?}"
    );
    assert_eq!(feed.advisories().len(), 3);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out.sort();
    out
}

#[test]
fn malformed_versions_and_ranges_are_named_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let range = |ecosystem: &str, name: &str, events: serde_json::Value| json!([{"package": {"ecosystem": ecosystem, "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}]);
    let records = json!([
        {"id": "BAD-DPKG", "affected": range("Debian:12", "zlib", json!([{"introduced": "0"}, {"fixed": "1.0 beta"}]))},
        {"id": "BAD-APK", "affected": range("Alpine:v3.19", "musl", json!([{"introduced": "1.0bc"}]))},
        {"id": "BAD-RPM", "affected": range("Rocky Linux:9", "curl", json!([{"introduced": "0"}, {"fixed": "a:1-1"}]))},
        {"id": "NO-INTRODUCED", "affected": range("Debian:12", "zlib", json!([{"fixed": "1.0-1"}]))},
        {"id": "TWO-FIELDS", "affected": range("Debian:12", "zlib", json!([{"introduced": "0", "fixed": "1.0-1"}]))},
        {"id": "UNKNOWN-EVENT", "affected": range("Debian:12", "zlib", json!([{"introduced": "0"}, {"patched": "1.0-1"}]))},
        {"id": "NUMBER-EVENT", "affected": range("Debian:12", "zlib", json!([{"introduced": 0}]))},
        {"id": "BAD-DATE", "published": "yesterday", "affected": range("Debian:12", "zlib", json!([{"introduced": "0"}]))},
        {"id": "BAD-LIST", "affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"}, "versions": ["1.0", "~x"]}]},
        {"id": 5},
        {"id": "SHAPE", "affected": "everything"},
        {"id": "SEMVER", "affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"}, "ranges": [
            {"type": "SEMVER", "events": [{"introduced": "0"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.3-1"}]},
        ]}]},
        {"id": "GONE", "withdrawn": "2025-01-01T00:00:00Z", "affected": range("Debian:12", "zlib", json!([{"introduced": "0"}]))},
        {"id": "LIMIT", "affected": range("Debian:12", "zlib", json!([{"introduced": "0"}, {"limit": "9:9"}, {"fixed": "1:1.2.13.dfsg-1"}]))},
        {"id": "GOOD", "published": "2025-12-01T00:00:00Z", "affected": range("Debian:12", "zlib", json!([{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-2"}]))},
    ]);
    std::fs::write(tmp.path().join("mixed.json"), records.to_string()).unwrap();
    let feed = Feed::open(tmp.path()).unwrap();
    let warnings: Vec<(Option<&str>, &str)> = feed
        .warnings()
        .iter()
        .map(|w| {
            assert!(w.file.ends_with("mixed.json"), "{w}");
            (w.advisory.as_deref(), w.message.as_str())
        })
        .collect();
    let expect = [
        ("BAD-DPKG", "dpkg version \"1.0 beta\""),
        ("BAD-APK", "apk version \"1.0bc\""),
        ("BAD-RPM", "rpm version \"a:1-1\""),
        ("NO-INTRODUCED", "without an introduced event"),
        ("TWO-FIELDS", "exactly one field"),
        ("UNKNOWN-EVENT", "unknown range event \"patched\""),
        ("NUMBER-EVENT", "introduced is not a string"),
        ("BAD-DATE", "published: date \"yesterday\""),
        ("BAD-LIST", "dpkg version \"~x\""),
        ("SHAPE", "not an OSV record"),
        ("SEMVER", "a SEMVER range is not used"),
    ];
    for (id, text) in expect {
        assert!(
            warnings
                .iter()
                .any(|(a, m)| *a == Some(id) && m.contains(text)),
            "no warning for {id} containing {text:?}: {warnings:#?}"
        );
    }
    // `{"id": 5}`: not an OSV record, no id to name.
    assert!(
        warnings
            .iter()
            .any(|(a, m)| a.is_none() && m.contains("not an OSV record")),
        "{warnings:#?}"
    );
    assert_eq!(warnings.len(), expect.len() + 1);
    // What was sound is used: GOOD, and SEMVER's ECOSYSTEM range.
    let ids: Vec<&str> = feed.advisories().iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["SEMVER", "LIMIT", "GOOD"]);
    assert_eq!(feed.withdrawn(), 1);
    let zlib = InstalledPackage {
        manager: PackageManager::Dpkg,
        name: "zlib1g".into(),
        source_name: Some("zlib".into()),
        version: "1:1.2.13.dfsg-1".into(),
    };
    let now = Date::parse("2026-01-01").unwrap();
    let findings = feed
        .findings(
            &Distribution::new("debian", "12"),
            std::slice::from_ref(&zlib),
            now,
        )
        .unwrap();
    assert_eq!(findings.len(), 2);

    // A malformed installed version is an error naming the package, not a silent miss.
    let bad = InstalledPackage {
        version: "not a version".into(),
        ..zlib
    };
    let err = feed
        .findings(&Distribution::new("debian", "12"), &[bad], now)
        .unwrap_err();
    assert!(
        err.to_string().contains("zlib1g") && err.to_string().contains("not a version"),
        "{err}"
    );
}

#[test]
fn text_that_is_not_json_refuses_the_feed_and_links_are_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.json"), b"{\"id\": \"A\"").unwrap();
    let err = Feed::open(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Json { path, .. } if path.ends_with("a.json")),
        "{err:?}"
    );

    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("b.json"), b"{\"id\": \"B\"}").unwrap();
    let feed_dir = tmp.path().join("feed");
    std::fs::create_dir(&feed_dir).unwrap();
    std::os::unix::fs::symlink(other.path(), feed_dir.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(other.path().join("b.json"), feed_dir.join("b.json")).unwrap();
    let feed = Feed::open(&feed_dir).unwrap();
    assert!(feed.advisories().is_empty());
    assert_eq!(feed.warnings().len(), 2);
    assert!(
        feed.warnings()
            .iter()
            .all(|w| w.message.contains("symbolic link"))
    );
}
