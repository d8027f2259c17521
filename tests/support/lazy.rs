//! Images in the lazy formats of issue 13, made by the real tools, for the lazy-read tests:
//!
//! - source images built with umoci (gzip layers): [`varied_image`] (every kind of entry, files split into
//!   eStargz chunks, a whiteout and an opaque directory) and [`big_image`] (over 100 MB of incompressible
//!   layers around a small `/etc`);
//! - converted with `ctr-remote images convert` through a private containerd: eStargz ([`estargz_image`]) and
//!   zstd:chunked ([`zstd_chunked_ctr_image`]); and with `skopeo copy --dest-compress-format zstd:chunked`
//!   ([`zstd_chunked_skopeo_image`]);
//! - all four of one source at once ([`LazyImages::make`]), or made once per test process and shared
//!   ([`varied_images`], [`big_images`]).
//!
//! Every maker returns an OCI layout directory holding the image under the tag it was given, usable as
//! `oci:DIR:TAG` by skopeo and strata and pushable with [`Registry::push`](crate::registry::Registry::push).
//! Everything is deterministic: file contents come from seeded generators and every time (files, history,
//! config) is [`FIXTURE_CREATED`], so the same code makes the same digests.

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::{OciLayout, describe, is_root, require_tool, run, show_output, umoci, under_ci};

/// Layer annotation: sha256 of an eStargz layer's uncompressed TOC (ctr-remote also writes it on
/// zstd:chunked layers).
pub const ESTARGZ_TOC_DIGEST: &str = "containerd.io/snapshot/stargz/toc.digest";
/// Layer annotation: the uncompressed size of an eStargz (or ctr-remote zstd:chunked) layer.
pub const ESTARGZ_UNCOMPRESSED_SIZE: &str = "io.containers.estargz.uncompressed-size";
/// Layer annotation: sha256 of a zstd:chunked layer's compressed TOC (containers/storage ≤ 1.43 keys, as
/// Debian 12's skopeo and ctr-remote write them).
pub const ZSTD_CHUNKED_MANIFEST_CHECKSUM: &str = "io.containers.zstd-chunked.manifest-checksum";
/// Layer annotation: `offset:length:uncompressed length:1` of a zstd:chunked layer's TOC.
pub const ZSTD_CHUNKED_MANIFEST_POSITION: &str = "io.containers.zstd-chunked.manifest-position";

/// The time of every file, history entry and config of the fixtures.
pub const FIXTURE_CREATED: &str = "2024-01-02T03:04:05Z";
/// [`FIXTURE_CREATED`] in seconds since the epoch.
pub const FIXTURE_TIME: i64 = 1_704_164_645;

/// The `/etc/os-release` of both source images.
pub const OS_RELEASE: &str = "PRETTY_NAME=\"Strata Lazy Fixture 1\"\nNAME=\"Strata Lazy Fixture\"\n\
VERSION_ID=\"1\"\nID=strata-lazy\nHOME_URL=\"https://example.invalid/strata\"\n";

/// Whether every peer the lazy fixtures need is here: umoci, skopeo, ctr-remote and containerd (as root, for
/// containerd). Missing ones skip the test locally and fail it under `CI=true`.
///
/// # Panics
/// Under `CI=true`, when a peer is missing or the tests do not run as root.
pub fn lazy_peers() -> bool {
    let tools = ["umoci", "skopeo", "ctr-remote", "containerd"];
    if !tools.iter().all(|tool| require_tool(tool)) {
        return false;
    }
    if !is_root() {
        assert!(
            !under_ci(),
            "the lazy-format fixtures need root under CI=true (containerd)"
        );
        eprintln!("SKIP: the lazy-format fixtures need root (a private containerd)");
        return false;
    }
    true
}

/// `count` bytes from a seeded generator (splitmix64): incompressible, and the same for the same seed.
pub fn pseudo_random(count: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(count + 8);
    while out.len() < count {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(count);
    out
}

/// An image being built with umoci: its layout, `LAYOUT:TAG`, and the bundle its layers are made from.
struct UmociBuild {
    layout: PathBuf,
    image: String,
    bundle: PathBuf,
    _work: TempDir,
}

impl UmociBuild {
    fn new(layout: &Path, tag: &str) -> UmociBuild {
        let image = format!("{}:{tag}", layout.display());
        if !layout.join("index.json").exists() {
            umoci(["init".as_ref(), "--layout".as_ref(), layout.as_os_str()]);
        }
        umoci(["new", "--image", &image]);
        let work = tempfile::Builder::new()
            .prefix("umoci-bundle-")
            .tempdir_in(layout.parent().unwrap_or_else(|| Path::new(".")))
            .expect("creating a bundle tempdir");
        let bundle = work.path().join("bundle");
        let mut unpack = vec!["unpack".to_owned()];
        if !is_root() {
            unpack.push("--rootless".to_owned());
        }
        unpack.extend(["--image".to_owned(), image.clone()]);
        unpack.push(bundle.display().to_string());
        umoci(&unpack);
        UmociBuild {
            layout: layout.to_path_buf(),
            image,
            bundle,
            _work: work,
        }
    }

    fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    /// Writes `bytes` at `path` in the rootfs (parents made).
    fn write(&self, path: &str, bytes: &[u8]) {
        let path = self.rootfs().join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("creating parents");
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The rootfs as the next layer, every time set to [`FIXTURE_TIME`] first.
    fn repack(&self, created_by: &str) {
        set_times(&self.rootfs());
        umoci([
            "repack",
            "--refresh-bundle",
            &format!("--history.created={FIXTURE_CREATED}"),
            &format!("--history.created_by={created_by}"),
            "--image",
            &self.image,
            &self.bundle.display().to_string(),
        ]);
    }

    /// A layer written by hand (an uncompressed tar), added with `umoci raw add-layer`.
    fn add_raw_layer(&self, tar: &Path, created_by: &str) {
        umoci([
            "raw",
            "add-layer",
            &format!("--history.created={FIXTURE_CREATED}"),
            &format!("--history.created_by={created_by}"),
            "--image",
            &self.image,
            &tar.display().to_string(),
        ]);
    }

    /// The config's creation time and a label, with no history entry of its own; the layout.
    fn finish(self, title: &str) -> PathBuf {
        umoci([
            "config",
            "--no-history",
            &format!("--created={FIXTURE_CREATED}"),
            &format!("--config.label=org.opencontainers.image.title={title}"),
            "--config.env=PATH=/usr/local/bin:/usr/bin:/bin",
            "--config.cmd=/bin/sh",
            "--image",
            &self.image,
        ]);
        self.layout
    }
}

/// Sets the access and modification times of `root` and everything under it (symlinks themselves) to
/// [`FIXTURE_TIME`].
fn set_times(root: &Path) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let time = Timespec {
        tv_sec: FIXTURE_TIME,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    let meta = fs::symlink_metadata(root).expect("stat for set_times");
    if meta.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(root)
            .expect("reading a dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            set_times(&entry);
        }
    }
    utimensat(CWD, root, &times, AtFlags::SYMLINK_NOFOLLOW)
        .unwrap_or_else(|e| panic!("setting the times of {}: {e}", root.display()));
}

/// A hand-written layer tar: entries in the order given, owned by root, at [`FIXTURE_TIME`].
struct RawLayer {
    builder: tar::Builder<Vec<u8>>,
}

impl RawLayer {
    fn new() -> RawLayer {
        RawLayer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn entry(&mut self, path: &str, kind: tar::EntryType, mode: u32, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXTURE_TIME.unsigned_abs());
        header.set_size(data.len() as u64);
        self.builder
            .append_data(&mut header, path, data)
            .unwrap_or_else(|e| panic!("adding {path} to a layer tar: {e}"));
    }

    fn dir(&mut self, path: &str) {
        self.entry(path, tar::EntryType::Directory, 0o755, b"");
    }

    fn file(&mut self, path: &str, data: &[u8]) {
        self.entry(path, tar::EntryType::Regular, 0o644, data);
    }

    fn write(self, path: &Path) {
        let bytes = self.builder.into_inner().expect("finishing a layer tar");
        fs::write(path, bytes).expect("writing a layer tar");
    }
}

/// Builds the varied source image with umoci into the OCI layout `layout` (made when missing) under `tag`,
/// and returns the layout. Two gzip layers:
///
/// 1. `/etc/os-release` ([`OS_RELEASE`]), small files, an empty one (`/etc/empty`), `/etc/gone`; relative,
///    absolute and dangling symlinks (`/etc/link → os-release`, `/etc/abs-link → /usr/lib/medium.bin`,
///    `/etc/dangling`); `/usr/lib/medium.bin` (5 MiB + 123 B) and `/usr/lib/large.bin` (9 MiB + 4567 B) of
///    incompressible bytes, which eStargz splits into 2 and 3 chunks of 4 MiB; a compressible text
///    (`/usr/share/doc/lazy/notes.txt`, 256 KiB); an executable and its hardlink (`/usr/bin/tool`,
///    `/usr/bin/tool-hardlink`), a setuid file; 300 small files in `/usr/share/many`; `/opt/old` (a file
///    and a subdirectory); a file owned by 1000:1000 (as root) with mode 0600, an xattr (`user.strata` on
///    `/etc/hostname`), a fifo, a UTF-8 name and a path over 100 bytes under `/srv`;
/// 2. written by hand and added with `umoci raw add-layer`: a whiteout of `/etc/gone`, `/opt/old` made
///    opaque (`.wh..wh..opq`) with a new `fresh` file, and a new `/etc/motd`.
///
/// # Panics
/// When umoci or a file operation fails.
pub fn varied_image(layout: &Path, tag: &str) -> PathBuf {
    let build = UmociBuild::new(layout, tag);
    let root = build.rootfs();
    build.write("etc/os-release", OS_RELEASE.as_bytes());
    build.write("etc/hostname", b"lazy\n");
    build.write(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nlazy:x:1000:1000::/srv/data:/bin/sh\n",
    );
    build.write("etc/group", b"root:x:0:\nlazy:x:1000:\n");
    build.write("etc/empty", b"");
    build.write("etc/gone", b"removed in layer two\n");
    symlink("os-release", root.join("etc/link")).expect("etc/link");
    symlink("/usr/lib/medium.bin", root.join("etc/abs-link")).expect("etc/abs-link");
    symlink("../nowhere", root.join("etc/dangling")).expect("etc/dangling");
    rustix::fs::setxattr(
        root.join("etc/hostname"),
        "user.strata",
        b"lazy",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("setting an xattr");
    build.write("usr/lib/medium.bin", &pseudo_random((5 << 20) + 123, 1));
    build.write("usr/lib/large.bin", &pseudo_random((9 << 20) + 4567, 2));
    let notes: String = (0..6000)
        .map(|i| format!("line {i:05} of a compressible text file, for strata\n"))
        .collect();
    build.write(
        "usr/share/doc/lazy/notes.txt",
        &notes.as_bytes()[..256 << 10],
    );
    build.write("usr/bin/tool", b"#!/bin/sh\necho tool\n");
    fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o755))
        .expect("chmod tool");
    fs::hard_link(
        root.join("usr/bin/tool"),
        root.join("usr/bin/tool-hardlink"),
    )
    .expect("hardlink");
    build.write("usr/bin/su", b"#!/bin/sh\n");
    fs::set_permissions(root.join("usr/bin/su"), fs::Permissions::from_mode(0o4755))
        .expect("chmod su");
    for i in 0..300 {
        build.write(
            &format!("usr/share/many/file-{i:03}"),
            format!("small file {i}\n").repeat(i % 7).as_bytes(),
        );
    }
    build.write("opt/old/a", b"hidden by the opaque dir of layer two\n");
    build.write("opt/old/sub/b", b"hidden too\n");
    build.write("srv/data/owned", b"owned by 1000, mode 0600\n");
    fs::set_permissions(
        root.join("srv/data/owned"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod owned");
    if is_root() {
        rustix::fs::chown(
            root.join("srv/data/owned"),
            Some(rustix::process::Uid::from_raw(1000)),
            Some(rustix::process::Gid::from_raw(1000)),
        )
        .expect("chown");
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("srv/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    build.write("srv/données.txt", b"a UTF-8 name\n");
    build.write(
        &format!("srv/{}/{}", "d".repeat(60), "f".repeat(60)),
        b"a path over 100 bytes\n",
    );
    build.repack("strata lazy fixture: varied layer 1");

    let mut layer = RawLayer::new();
    layer.dir("etc/");
    layer.file("etc/.wh.gone", b"");
    layer.file("etc/motd", b"new in layer two\n");
    layer.dir("opt/");
    layer.dir("opt/old/");
    layer.file("opt/old/.wh..wh..opq", b"");
    layer.file("opt/old/fresh", b"the only file left in /opt/old\n");
    let tar = build.bundle.with_file_name("layer-2.tar");
    layer.write(&tar);
    build.add_raw_layer(&tar, "strata lazy fixture: varied layer 2");
    build.finish("strata lazy fixture: varied")
}

/// The sizes of [`big_image`]'s incompressible files, per layer: `(path, bytes)`.
pub const BIG_FILES: [&[(&str, usize)]; 4] = [
    &[
        ("usr/lib/big-1.bin", 30 << 20),
        ("usr/lib/big-2.bin", 9 << 20),
    ],
    &[("opt/data/a.bin", 24 << 20), ("opt/data/b.bin", 12 << 20)],
    &[
        ("srv/media/one.bin", 20 << 20),
        ("srv/media/two.bin", 8 << 20),
    ],
    &[("var/cache/pack.bin", 10 << 20)],
];

/// Builds the big source image with umoci into `layout` under `tag` and returns the layout: four gzip
/// layers holding 113 MiB of incompressible files ([`BIG_FILES`]), so over 118 MB of compressed layers,
/// around a small `/etc`: `os-release` ([`OS_RELEASE`]), `hostname`, `passwd`, `group`, `hosts` in layer 1,
/// `app.conf` in layer 2 and `motd` in layer 4.
///
/// # Panics
/// When umoci or a file operation fails.
pub fn big_image(layout: &Path, tag: &str) -> PathBuf {
    let build = UmociBuild::new(layout, tag);
    let etc: [&[(&str, &[u8])]; 4] = [
        &[
            ("etc/os-release", OS_RELEASE.as_bytes()),
            ("etc/hostname", b"big\n"),
            ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", b"root:x:0:\n"),
            ("etc/hosts", b"127.0.0.1 localhost\n"),
        ],
        &[("etc/app.conf", b"[app]\nlazy = true\n")],
        &[],
        &[("etc/motd", b"the big lazy fixture\n")],
    ];
    let mut seed = 100;
    for (i, (files, small)) in BIG_FILES.iter().zip(etc).enumerate() {
        for (path, bytes) in small {
            build.write(path, bytes);
        }
        for (path, size) in *files {
            seed += 1;
            build.write(path, &pseudo_random(*size, seed));
        }
        build.repack(&format!("strata lazy fixture: big layer {}", i + 1));
    }
    build.finish("strata lazy fixture: big")
}

/// A private containerd: its own root, state and socket under a temporary directory; killed on drop.
struct Containerd {
    child: Child,
    socket: PathBuf,
    dir: TempDir,
}

impl Containerd {
    /// Starts one and waits (at most 20 s) until its socket accepts connections.
    ///
    /// # Panics
    /// When it does not start (its log is shown).
    fn start() -> Containerd {
        // The socket's path must fit in sun_path (108 bytes): a short directory in /tmp when TMPDIR is long.
        let base = std::env::temp_dir();
        let base = if base.as_os_str().len() > 60 {
            PathBuf::from("/tmp")
        } else {
            base
        };
        let dir = tempfile::Builder::new()
            .prefix("strata-ctrd-")
            .tempdir_in(base)
            .expect("containerd tempdir");
        let path = dir.path();
        let socket = path.join("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n\
             [grpc]\n  address = \"{socket}\"\n\n\
             [ttrpc]\n  address = \"{socket}.ttrpc\"\n\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{opt}\"\n",
            root = path.join("root").display(),
            state = path.join("state").display(),
            socket = socket.display(),
            opt = path.join("opt").display(),
        );
        fs::write(path.join("config.toml"), config).expect("writing containerd's config");
        let log = fs::File::create(path.join("containerd.log")).expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(path.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("containerd log"))
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        let mut containerd = Containerd { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&containerd.socket).is_err() {
            if let Ok(Some(status)) = containerd.child.try_wait() {
                panic!("containerd exited ({status}):\n{}", containerd.log());
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not listen within 20 s:\n{}",
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        containerd
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Runs `ctr-remote --address SOCKET ARGS`, which must succeed (containerd's log is shown when it fails).
    fn ctr(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("ctr-remote");
        cmd.arg("--address").arg(&self.socket).args(args);
        let out = crate::run_with_timeout(&mut cmd, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "`{}` failed\n{}\n--- containerd log ---\n{}",
            describe(&cmd),
            show_output(&out),
            self.log()
        );
        out
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Converts `oci:SRC:TAG` with `ctr-remote images convert FLAG --oci`, for each `(FLAG, OUT)` of
/// `conversions`, in one private containerd, and stores each result in the layout `OUT` under `tag`.
fn ctr_convert(src: &Path, tag: &str, conversions: &[(&str, &Path)]) {
    let work = tempfile::Builder::new()
        .prefix("strata-ctr-convert-")
        .tempdir()
        .expect("conversion tempdir");
    let source_name = format!("docker.io/strata/source:{tag}");
    let archive = work.path().join("source.tar");
    run(Command::new("skopeo").args([
        "copy".to_owned(),
        "--quiet".to_owned(),
        format!("oci:{}:{tag}", src.display()),
        format!("oci-archive:{}:{source_name}", archive.display()),
    ]));
    let containerd = Containerd::start();
    containerd.ctr(&[
        "images",
        "import",
        "--no-unpack",
        &archive.display().to_string(),
    ]);
    for (i, (flag, out)) in conversions.iter().enumerate() {
        let name = format!("docker.io/strata/lazy{i}:{tag}");
        containerd.ctr(&["images", "convert", flag, "--oci", &source_name, &name]);
        let exported = work.path().join(format!("lazy{i}.tar"));
        containerd.ctr(&[
            "images",
            "export",
            "--skip-manifest-json",
            &exported.display().to_string(),
            &name,
        ]);
        let file = fs::File::open(&exported).expect("opening the exported image");
        if out.join("index.json").exists() {
            let unpacked = work.path().join(format!("layout{i}"));
            tar::Archive::new(file)
                .unpack(&unpacked)
                .expect("unpacking the exported image");
            merge_layout(&unpacked, out, tag);
        } else {
            tar::Archive::new(file)
                .unpack(out)
                .expect("unpacking the exported image");
            retag(out, tag);
        }
        fs::remove_file(&exported).expect("removing the exported tar");
    }
}

/// Leaves the one image of the exported layout `layout` under `tag` alone (`ref.name` only, no containerd
/// name), without the Docker `manifest.json` (ctr-remote 0.12 writes it despite `--skip-manifest-json`), with
/// its files writable by their owner as umoci's and skopeo's are.
fn retag(layout: &Path, tag: &str) {
    let layout = OciLayout::open(layout);
    let _ = fs::remove_file(layout.root.join("manifest.json"));
    fs::set_permissions(
        layout.root.join("oci-layout"),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod oci-layout");
    let mut index = layout.index();
    let manifests = index["manifests"]
        .as_array_mut()
        .expect("a manifests array");
    assert_eq!(manifests.len(), 1, "one image exported");
    manifests[0]["annotations"] = serde_json::json!({ crate::REF_NAME: tag });
    layout.write_index(&index);
    for entry in fs::read_dir(layout.root.join("blobs/sha256"))
        .expect("reading exported blobs")
        .flatten()
    {
        fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644)).expect("chmod a blob");
    }
}

/// Copies the one image of the exported layout `from` into the existing layout `to` under `tag`: its blobs
/// and its `index.json` entry (as [`retag`] leaves it).
fn merge_layout(from: &Path, to: &Path, tag: &str) {
    retag(from, tag);
    let from = OciLayout::open(from);
    let to = OciLayout::open(to);
    for entry in fs::read_dir(from.root.join("blobs/sha256"))
        .expect("reading exported blobs")
        .flatten()
    {
        let target = to.root.join("blobs/sha256").join(entry.file_name());
        if !target.exists() {
            fs::copy(entry.path(), &target).expect("copying a blob");
        }
    }
    let descriptor = from.index()["manifests"][0].clone();
    to.set_tag(tag, &descriptor);
}

/// Converts the image `oci:SRC:TAG` to eStargz with `ctr-remote images convert --estargz --oci` (Debian's
/// stargz-snapshotter, in a private containerd) into the layout `out` (made when missing) under `tag`, and
/// returns `out`. Each layer gets [`ESTARGZ_TOC_DIGEST`] and [`ESTARGZ_UNCOMPRESSED_SIZE`].
///
/// # Panics
/// When a tool fails.
pub fn estargz_image(src: &Path, tag: &str, out: &Path) -> PathBuf {
    ctr_convert(src, tag, &[("--estargz", out)]);
    out.to_path_buf()
}

/// Converts the image `oci:SRC:TAG` to zstd:chunked with `ctr-remote images convert --zstdchunked --oci` into
/// the layout `out` under `tag`, and returns `out`. Each layer gets [`ZSTD_CHUNKED_MANIFEST_CHECKSUM`],
/// [`ZSTD_CHUNKED_MANIFEST_POSITION`], and the eStargz pair ([`ESTARGZ_TOC_DIGEST`],
/// [`ESTARGZ_UNCOMPRESSED_SIZE`]); its TOC is in eStargz style.
///
/// # Panics
/// When a tool fails.
pub fn zstd_chunked_ctr_image(src: &Path, tag: &str, out: &Path) -> PathBuf {
    ctr_convert(src, tag, &[("--zstdchunked", out)]);
    out.to_path_buf()
}

/// Converts the image `oci:SRC:TAG` to zstd:chunked with `skopeo copy --dest-compress-format zstd:chunked`
/// into the layout `out` under `tag`, and returns `out`. Each layer gets [`ZSTD_CHUNKED_MANIFEST_CHECKSUM`]
/// and [`ZSTD_CHUNKED_MANIFEST_POSITION`]; its TOC is in containers/storage style (rollsum chunks); the
/// config is the source's (the layers' uncompressed tars are unchanged).
///
/// # Panics
/// When skopeo fails.
pub fn zstd_chunked_skopeo_image(src: &Path, tag: &str, out: &Path) -> PathBuf {
    run(Command::new("skopeo").args([
        "copy".to_owned(),
        "--quiet".to_owned(),
        "--dest-compress-format".to_owned(),
        "zstd:chunked".to_owned(),
        format!("oci:{}:{tag}", src.display()),
        format!("oci:{}:{tag}", out.display()),
    ]));
    out.to_path_buf()
}

/// The formats a [`LazyImages`] holds its image in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The umoci source: gzip layers, no table of contents.
    Gzip,
    /// eStargz by `ctr-remote`.
    Estargz,
    /// zstd:chunked by `ctr-remote` (eStargz-style TOC).
    ZstdChunkedCtr,
    /// zstd:chunked by `skopeo` (containers/storage-style TOC).
    ZstdChunkedSkopeo,
}

impl Format {
    /// Every format, source first.
    pub const ALL: [Format; 4] = [
        Format::Gzip,
        Format::Estargz,
        Format::ZstdChunkedCtr,
        Format::ZstdChunkedSkopeo,
    ];

    /// A short name (`gzip`, `estargz`, `zstd-chunked-ctr`, `zstd-chunked-skopeo`), usable in a repository
    /// name or a tag.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Estargz => "estargz",
            Format::ZstdChunkedCtr => "zstd-chunked-ctr",
            Format::ZstdChunkedSkopeo => "zstd-chunked-skopeo",
        }
    }

    /// The annotations every layer of this format carries.
    pub fn layer_annotations(self) -> &'static [&'static str] {
        match self {
            Format::Gzip => &[],
            Format::Estargz => &[ESTARGZ_TOC_DIGEST, ESTARGZ_UNCOMPRESSED_SIZE],
            Format::ZstdChunkedCtr => &[
                ESTARGZ_TOC_DIGEST,
                ESTARGZ_UNCOMPRESSED_SIZE,
                ZSTD_CHUNKED_MANIFEST_CHECKSUM,
                ZSTD_CHUNKED_MANIFEST_POSITION,
            ],
            Format::ZstdChunkedSkopeo => &[
                ZSTD_CHUNKED_MANIFEST_CHECKSUM,
                ZSTD_CHUNKED_MANIFEST_POSITION,
            ],
        }
    }

    /// The layers' media type.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Format::Gzip | Format::Estargz => "application/vnd.oci.image.layer.v1.tar+gzip",
            Format::ZstdChunkedCtr | Format::ZstdChunkedSkopeo => {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            }
        }
    }
}

/// One source image in every [`Format`], one layout each, all under one tag. Shared ones
/// ([`varied_images`], [`big_images`]) must not be changed: copy a layout to change it.
#[derive(Debug, Clone)]
pub struct LazyImages {
    /// The tag in every layout.
    pub tag: String,
    /// The umoci source (gzip).
    pub gzip: PathBuf,
    /// eStargz by ctr-remote.
    pub estargz: PathBuf,
    /// zstd:chunked by ctr-remote.
    pub zstd_chunked_ctr: PathBuf,
    /// zstd:chunked by skopeo.
    pub zstd_chunked_skopeo: PathBuf,
}

impl LazyImages {
    /// Builds the source with `source` (e.g. [`varied_image`]) in `work/gzip`, and converts it into
    /// `work/estargz`, `work/zstd-chunked-ctr` and `work/zstd-chunked-skopeo`; all tagged `tag`.
    ///
    /// # Panics
    /// When a tool fails.
    pub fn make(work: &Path, tag: &str, source: fn(&Path, &str) -> PathBuf) -> LazyImages {
        let started = Instant::now();
        let at = LazyImages::at(work, tag);
        let gzip = source(&at.gzip, tag);
        let made = started.elapsed();
        let images = LazyImages { gzip, ..at };
        // skopeo's conversion beside ctr-remote's two (one containerd for both).
        let (ctr, skopeo) = std::thread::scope(|scope| {
            let skopeo = scope.spawn(|| {
                let started = Instant::now();
                zstd_chunked_skopeo_image(&images.gzip, tag, &images.zstd_chunked_skopeo);
                started.elapsed()
            });
            let started = Instant::now();
            ctr_convert(
                &images.gzip,
                tag,
                &[
                    ("--estargz", &images.estargz),
                    ("--zstdchunked", &images.zstd_chunked_ctr),
                ],
            );
            let ctr = started.elapsed();
            (ctr, skopeo.join().expect("the skopeo conversion"))
        });
        eprintln!(
            "lazy fixtures {tag}: source {made:?}, ctr-remote conversions {ctr:?}, skopeo's {skopeo:?} \
             (beside them): {:?} in all",
            started.elapsed()
        );
        images
    }

    /// The layouts [`LazyImages::make`] writes under `work` for `tag`, whether they exist or not: to open a set
    /// made before.
    pub fn at(work: &Path, tag: &str) -> LazyImages {
        LazyImages {
            tag: tag.to_owned(),
            gzip: work.join(Format::Gzip.name()),
            estargz: work.join(Format::Estargz.name()),
            zstd_chunked_ctr: work.join(Format::ZstdChunkedCtr.name()),
            zstd_chunked_skopeo: work.join(Format::ZstdChunkedSkopeo.name()),
        }
    }

    /// The layout holding `format`.
    pub fn layout(&self, format: Format) -> &Path {
        match format {
            Format::Gzip => &self.gzip,
            Format::Estargz => &self.estargz,
            Format::ZstdChunkedCtr => &self.zstd_chunked_ctr,
            Format::ZstdChunkedSkopeo => &self.zstd_chunked_skopeo,
        }
    }

    /// `oci:LAYOUT:TAG` of `format`.
    pub fn oci(&self, format: Format) -> String {
        format!("oci:{}:{}", self.layout(format).display(), self.tag)
    }

    /// The manifest of `format`.
    pub fn manifest(&self, format: Format) -> Value {
        OciLayout::open(self.layout(format)).manifest(&self.tag)
    }

    /// The layer descriptors of `format`.
    pub fn layers(&self, format: Format) -> Vec<Value> {
        self.manifest(format)["layers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The sum of the layer sizes of `format`: the compressed image.
    pub fn compressed_size(&self, format: Format) -> u64 {
        self.layers(format)
            .iter()
            .map(|l| l["size"].as_u64().unwrap_or(0))
            .sum()
    }
}

/// The directory where this test process keeps its shared fixtures: `$TMPDIR/strata-lazy-fixtures-PID`.
/// Nothing removes it when the process ends (statics are never dropped); instead, making it removes those
/// of processes that are gone.
fn shared_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        const PREFIX: &str = "strata-lazy-fixtures-";
        let tmp = std::env::temp_dir();
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                    continue;
                };
                if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating the shared fixtures dir");
        dir
    })
}

/// [`varied_image`] in every format, made once per test process (tag `varied`); read-only.
///
/// # Panics
/// When a tool fails (check [`lazy_peers`] first).
pub fn varied_images() -> &'static LazyImages {
    static IMAGES: OnceLock<LazyImages> = OnceLock::new();
    IMAGES.get_or_init(|| LazyImages::make(&shared_dir().join("varied"), "varied", varied_image))
}

/// [`big_image`] in every format, made once per test process (tag `big`); read-only.
///
/// # Panics
/// When a tool fails (check [`lazy_peers`] first).
pub fn big_images() -> &'static LazyImages {
    static IMAGES: OnceLock<LazyImages> = OnceLock::new();
    IMAGES.get_or_init(|| LazyImages::make(&shared_dir().join("big"), "big", big_image))
}
