//! The scanner's API on images built by the fixture generator: path resolution, the per-layer report,
//! the tar export read back, and diff.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use strata_fixtures::{Compression, ImageBuilder, LayerBuilder, LongName};
use strata_oci::Platform;
use strata_scan::diff::{ChangeKind, Field, diff};
use strata_scan::{Error, Kind, Resolved, ScanImage};

fn open(builder: &ImageBuilder, dir: &Path, tag: &str) -> ScanImage {
    let layout = dir.join(tag);
    builder.write_layout(&layout, tag).unwrap();
    let name = format!("oci:{}:{tag}", layout.display());
    ScanImage::open(&name, &Platform::new("linux", "amd64", None)).unwrap()
}

#[test]
fn resolve_follows_symlinks_inside_the_image() {
    let mut l = LayerBuilder::new();
    l.dir("usr");
    l.dir("usr/bin");
    l.file("usr/bin/tool", "tool\n");
    l.symlink("bin", "usr/bin");
    l.symlink("usr/bin/rel", "../../usr/bin/tool");
    l.symlink("usr/bin/abs", "/bin/tool");
    l.symlink("usr/bin/escape", "../../../../usr/bin/tool");
    l.symlink("usr/bin/chain", "abs");
    l.symlink("usr/bin/dangling", "nothing");
    l.symlink("usr/bin/loop1", "loop2");
    l.symlink("usr/bin/loop2", "loop1");
    l.symlink("usr/bin/via-dot", "./../bin/./tool");
    l.symlink("lib", "usr/bin/tool");
    let dir = tempfile::tempdir().unwrap();
    let image = open(
        &ImageBuilder::new().layer(l, Compression::Gzip),
        dir.path(),
        "links",
    );
    let resolved = |p: &str, follow: bool| {
        image
            .resolve(p, follow)
            .unwrap()
            .map(|e| e.path_lossy().into_owned())
    };
    for path in [
        "/bin/tool",
        "bin/tool",
        "/usr/bin/rel",
        "/usr/bin/abs",
        "/usr/bin/escape",
        "/usr/bin/chain",
        "/usr/bin/via-dot",
        "/bin/../bin/tool",
        "/../../usr/bin/tool",
        "/lib",
    ] {
        assert_eq!(
            resolved(path, true).as_deref(),
            Some("/usr/bin/tool"),
            "{path}"
        );
    }
    // The last component is followed only when asked (or with a trailing slash).
    assert_eq!(resolved("/bin", false).as_deref(), Some("/bin"));
    assert_eq!(resolved("/bin/", false).as_deref(), Some("/usr/bin"));
    assert_eq!(resolved("/bin/abs", false).as_deref(), Some("/usr/bin/abs"));
    assert_eq!(resolved("/", true).as_deref(), Some("/"));
    // Missing, dangling, and a file used as a directory.
    assert_eq!(resolved("/usr/bin/dangling", true), None);
    assert_eq!(
        resolved("/usr/bin/dangling", false).as_deref(),
        Some("/usr/bin/dangling")
    );
    assert_eq!(resolved("/nope/tool", true), None);
    assert_eq!(resolved("/lib/x", true), None);
    assert_eq!(resolved("/usr/bin/tool/x", true), None);
    // A trailing slash, `.` or `..` after a file: not a directory (ENOTDIR), as the kernel says.
    for path in [
        "/usr/bin/tool/",
        "/usr/bin/tool/.",
        "/usr/bin/tool/..",
        "/usr/bin/tool/x",
        "/lib/",
        "/usr/bin/abs/",
    ] {
        assert_eq!(
            image.lookup(path, false).unwrap(),
            Resolved::NotADirectory,
            "{path}"
        );
    }
    assert_eq!(
        image.lookup("/usr/bin/dangling", true).unwrap(),
        Resolved::Missing
    );
    assert_eq!(
        image.lookup("/usr/bin/nope/", true).unwrap(),
        Resolved::Missing
    );
    assert_eq!(resolved("/usr/bin/.", false).as_deref(), Some("/usr/bin"));
    assert_eq!(resolved("/bin/./", false).as_deref(), Some("/usr/bin"));
    assert!(matches!(
        image.resolve("/usr/bin/loop1", true),
        Err(Error::SymlinkLoop { .. })
    ));
    assert_eq!(
        image.read_resolved("/bin/abs", 100).unwrap().as_deref(),
        Some(&b"tool\n"[..])
    );
    let mut out = Vec::new();
    let entry = image.resolve("/usr/bin/chain", true).unwrap().unwrap();
    assert_eq!(image.copy_entry(&entry, &mut out).unwrap(), Some(5));
    assert_eq!(out, b"tool\n");
    // A subtree walk.
    let usr = image.resolve("/usr", false).unwrap().unwrap();
    let under: Vec<String> = image
        .walk(&usr)
        .map(|e| e.unwrap().path_lossy().into_owned())
        .collect();
    assert_eq!(under[0], "/usr/bin");
    assert_eq!(under.len(), 10, "{under:?}");
}

#[test]
fn layer_report_counts_waste() {
    let mut base = LayerBuilder::new();
    base.dir("etc");
    base.file("etc/a", vec![b'a'; 100]);
    base.file("etc/b", vec![b'b'; 200]);
    base.file("etc/c", vec![b'c'; 50]);
    base.hardlink("etc/c-link", "etc/c");
    let mut top = LayerBuilder::new();
    top.dir("etc");
    top.file("etc/a", vec![b'A'; 30]);
    top.whiteout("etc/b");
    // c's bytes stay visible through c-link.
    top.whiteout("etc/c");
    let dir = tempfile::tempdir().unwrap();
    let image = open(
        &ImageBuilder::new()
            .layer(base, Compression::Gzip)
            .layer(top, Compression::Zstd),
        dir.path(),
        "waste",
    );
    let report = image.layer_report().unwrap();
    let rows: Vec<[u64; 6]> = report
        .layers
        .iter()
        .map(|l| {
            [
                l.entries as u64,
                l.added as u64,
                l.modified as u64,
                l.removed as u64,
                l.bytes,
                l.wasted_bytes,
            ]
        })
        .collect();
    assert_eq!(rows, [[5, 5, 0, 0, 350, 300], [2, 0, 2, 2, 30, 0]]);
    assert_eq!(report.total_bytes, 380);
    assert_eq!(report.wasted_bytes, 300);
    assert!((report.efficiency - 80.0 / 380.0).abs() < 1e-9);
    assert!(report.layers[0].digest.starts_with("sha256:"));
}

#[test]
fn export_writes_pax_records_hardlinks_and_devices() {
    let long_dir = format!("srv/{}", "d".repeat(90));
    let long_name = format!("{long_dir}/{}", "n".repeat(40));
    let long_target = format!("/{long_name}");
    let mut l = LayerBuilder::new();
    l.dir("a");
    // Walk order puts a/link before z/target: the first one written holds the bytes.
    l.file("z/target", "shared bytes\n").mode(0o640).owner(7, 8);
    l.hardlink("a/link", "z/target");
    l.dir("srv");
    l.dir(long_dir.as_str());
    l.file(long_name.as_str(), "long\n")
        .long_name(LongName::Pax)
        .owner(3_000_000, 3_000_001)
        .xattr("user.note", "hello")
        .pax_record("mtime", "1700000000.5");
    l.symlink("srv/long-link", long_target.as_str())
        .long_name(LongName::Pax);
    l.char_device("srv/null", 1, 3).mode(0o666);
    l.block_device("srv/loop", 7, 0);
    l.fifo("srv/pipe");
    let dir = tempfile::tempdir().unwrap();
    let image = open(
        &ImageBuilder::new().layer(l, Compression::Gzip),
        dir.path(),
        "export",
    );
    let mut tar = Vec::new();
    let report = image.export_tar(&mut tar).unwrap();
    assert_eq!(report.hardlinks, 1);

    struct Member {
        kind: tar::EntryType,
        link: String,
        mode: u32,
        owner: (u64, u64),
        content: Vec<u8>,
        device: (u32, u32),
        pax: BTreeMap<String, Vec<u8>>,
    }
    let mut members: Vec<(String, Member)> = Vec::new();
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let pax: BTreeMap<String, Vec<u8>> = entry
            .pax_extensions()
            .unwrap()
            .map(|exts| {
                exts.map(|e| {
                    let e = e.unwrap();
                    (e.key().unwrap().to_owned(), e.value_bytes().to_vec())
                })
                .collect()
            })
            .unwrap_or_default();
        let header = entry.header().clone();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap())
            .unwrap_or_default();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        members.push((
            path,
            Member {
                kind: header.entry_type(),
                link,
                mode: header.mode().unwrap(),
                owner: (entry.header().uid().unwrap(), entry.header().gid().unwrap()),
                content,
                device: (
                    header.device_major().unwrap().unwrap_or(0),
                    header.device_minor().unwrap().unwrap_or(0),
                ),
                pax,
            },
        ));
    }
    let names: Vec<&str> = members.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "a/",
            "a/link",
            "srv/",
            &format!("{long_dir}/"),
            long_name.as_str(),
            "srv/long-link",
            "srv/loop",
            "srv/null",
            "srv/pipe",
            "z/",
            "z/target"
        ]
    );
    let get = |p: &str| &members.iter().find(|(n, _)| n == p).unwrap().1;
    let link = get("a/link");
    assert_eq!(link.kind, tar::EntryType::Regular);
    assert_eq!(link.content, b"shared bytes\n");
    assert_eq!(
        (link.mode, link.owner),
        (0o640, (7, 8)),
        "the data's metadata"
    );
    let target = get("z/target");
    assert_eq!(target.kind, tar::EntryType::Link);
    assert_eq!(target.link, "a/link");
    let long = get(&long_name);
    assert_eq!(long.content, b"long\n");
    assert_eq!(long.owner, (3_000_000, 3_000_001));
    assert_eq!(long.pax["SCHILY.xattr.user.note"], b"hello");
    assert_eq!(long.pax["mtime"], b"1700000000.500000000");
    assert_eq!(get("srv/long-link").link, long_target);
    assert_eq!(get("srv/null").device, (1, 3));
    assert_eq!(get("srv/null").kind, tar::EntryType::Char);
    assert_eq!(get("srv/loop").device, (7, 0));
    assert_eq!(get("srv/pipe").kind, tar::EntryType::Fifo);
}

#[test]
fn diff_of_fixture_images() {
    let mut base = LayerBuilder::new();
    base.dir("etc");
    base.file("etc/same", "same\n");
    base.file("etc/content", "aaaa\n");
    base.file("etc/mode", "m\n").mode(0o644);
    base.char_device("etc/dev", 1, 3);
    let a = ImageBuilder::new().layer(base.clone(), Compression::Gzip);
    let mut change = LayerBuilder::new();
    change.dir("./").mode(0o700).mtime(1_000);
    change.dir("etc");
    change.file("etc/content", "bbbb\n");
    change.file("etc/mode", "m\n").mode(0o600);
    change.char_device("etc/dev", 1, 5);
    change.file("etc/new", "new\n");
    let b = ImageBuilder::new()
        .layer(base, Compression::Gzip)
        .layer(change, Compression::None);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(&a, dir.path(), "a"), open(&b, dir.path(), "b"));
    let changes = diff(&a, &b).unwrap();
    let got: Vec<(ChangeKind, &str, &[Field])> = changes
        .iter()
        .map(|c| {
            (
                c.change,
                std::str::from_utf8(&c.path).unwrap(),
                c.fields.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (ChangeKind::Changed, "/", &[Field::Mode, Field::Mtime][..]),
            (ChangeKind::Changed, "/etc/content", &[Field::Content][..]),
            (ChangeKind::Changed, "/etc/dev", &[Field::Device][..]),
            (ChangeKind::Changed, "/etc/mode", &[Field::Mode][..]),
            (ChangeKind::Added, "/etc/new", &[][..]),
        ]
    );
    assert!(diff(&b, &b).unwrap().is_empty());
    let same = a.stat("/etc/same").unwrap().unwrap();
    assert_eq!(same.kind, Kind::File);
    assert_eq!(
        a.content_identity(&same).unwrap(),
        b.content_identity(&b.stat("/etc/same").unwrap().unwrap())
            .unwrap(),
        "a shared layer's file is the same bytes without reading them"
    );
}

#[test]
fn a_file_read_twice_is_decompressed_once_through_the_shared_piece_cache() {
    // Three checkpoint spans' worth of incompressible bytes: reading the file decompresses each span once;
    // reading it again is served from the piece cache the mount uses too.
    let big = strata_fixtures::noise(3 * strata_layer::CHECKPOINT_SPAN as usize + 12_345, 5);
    let mut l = LayerBuilder::new();
    l.file("small", "small\n");
    l.file("big", big.clone());
    let dir = tempfile::tempdir().unwrap();
    let image = open(
        &ImageBuilder::new().layer(l, Compression::Gzip),
        dir.path(),
        "big",
    );
    assert_eq!(image.view().content_stats().pieces_decoded, 0);
    let mut first = Vec::new();
    image.copy_to("/big", &mut first).unwrap();
    assert!(first == big, "the file's bytes");
    let after_first = image.view().content_stats();
    assert!(
        after_first.spans_decoded >= 3,
        "a 3-span file decodes its spans: {after_first:?}"
    );
    let mut second = Vec::new();
    image.copy_to("/big", &mut second).unwrap();
    assert!(second == big, "the file's bytes, again");
    assert_eq!(
        image.view().content_stats(),
        after_first,
        "nothing decompressed twice"
    );
}

/// `installed_files` lists what dpkg records (md5sums, then conffiles marked config) and `verify_packages`
/// checks them through the merged view: a file changed and one whited out by a later layer and an edited
/// conffile are reported, in the database's order; a `Multi-Arch: same` package's md5sums are found under
/// `name:arch`.
#[test]
fn installed_files_and_verification_of_a_dpkg_image() {
    use strata_scan::packages::{DigestAlgorithm, FILE_CONFIG, Manager};
    let work = tempfile::tempdir().unwrap();
    let mut base = LayerBuilder::new();
    base.dir("etc");
    base.file("etc/app.conf", "conf\n");
    base.dir("usr");
    base.file("usr/a", "a\n");
    base.file("usr/b", "b\n");
    base.file("usr/lib.so", "lib\n");
    base.dir("var");
    base.dir("var/lib");
    base.dir("var/lib/dpkg");
    base.dir("var/lib/dpkg/info");
    // The md5sums are those of "a\n", "b\n" and "lib\n"; the conffile's recorded md5 is not that of its
    // content (an edited conffile).
    base.file(
        "var/lib/dpkg/status",
        "Package: app\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nConffiles:\n \
         /etc/app.conf 8ac7f3d5c4a7f2b1a9e27e3a4e5ae7ab\n\n\
         Package: libx\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2\n",
    );
    base.file(
        "var/lib/dpkg/info/app.md5sums",
        "60b725f10c9c85c70d97880dfe8191b3  usr/a\n3b5d5c3712955042212316173ccf37be  usr/b\n",
    );
    base.file(
        "var/lib/dpkg/info/libx:amd64.md5sums",
        "7e65df4db6cda11f7a9d4b50df9bcae4  usr/lib.so\n",
    );
    let mut later = LayerBuilder::new();
    later.dir("usr");
    later.file("usr/a", "a, changed\n");
    later.whiteout("usr/b");
    let image = open(
        &ImageBuilder::new()
            .layer(base, Compression::Gzip)
            .layer(later, Compression::Zstd),
        work.path(),
        "dpkg",
    );
    let packages = image.packages().unwrap();
    let app = packages.iter().find(|p| p.name == "app").unwrap();
    let files = image.installed_files(app).unwrap();
    let listed: Vec<(&str, u32)> = files.iter().map(|f| (f.path.as_str(), f.flags)).collect();
    assert_eq!(
        listed,
        [("/usr/a", 0), ("/usr/b", 0), ("/etc/app.conf", FILE_CONFIG)]
    );
    assert_eq!(
        files[0].digest.as_ref().unwrap().algorithm,
        DigestAlgorithm::Md5
    );
    let libx = packages.iter().find(|p| p.name == "libx").unwrap();
    assert_eq!(image.installed_files(libx).unwrap()[0].path, "/usr/lib.so");

    let report = image.verify_packages().unwrap();
    assert_eq!(report.managers, [Manager::Dpkg]);
    assert_eq!((report.packages, report.files), (2, 4));
    let lines: Vec<String> = report.failures.iter().map(|f| f.line()).collect();
    let want = [
        "??5??????   /usr/a",
        "missing     /usr/b",
        "??5?????? c /etc/app.conf",
    ];
    assert_eq!(lines, want);
    assert!(report.failures.iter().all(|f| f.package == "app"));
}
