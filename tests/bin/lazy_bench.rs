//! `lazy-bench`: strata's lazy registry reads against full pulls on a shaped link, in one run (issue 13,
//! "Time on a shaped link"). `tools/compare_lazy.sh` builds it and strata (release) and writes
//! docs/BENCHMARKS-lazy.md around the tables it writes.
//!
//! ```text
//! lazy-bench --work DIR --markdown FILE [--json FILE] [--runs N]
//! ```
//!
//! Everything comes from the test support (`strata_tests`): the big lazy fixture (`lazy::big_image`: 4 layers,
//! over 118 MB of compressed layers, made by umoci) converted by ctr-remote (eStargz, zstd:chunked) and skopeo
//! (zstd:chunked), made once and kept in `DIR/images`; a real `docker-registry` on 127.0.0.1 holding the
//! four; and in front of it the fault proxy shaped as `Link::wan()` (20 ms each way, 100 Mbit/s), which
//! counts the bytes of blobs it serves and logs each request. Every command goes through the proxy.
//!
//! Rows, each timed `--runs` times (default 5) after one untimed warm-up round, the rows interleaved round
//! by round so that other load on the machine falls on all of them alike:
//! - per lazy image: `strata cat IMG /etc/os-release` (a fresh process with a fresh `$HOME`: nothing kept
//!   from an earlier run), and `strata mount --fuse IMG DIR` + `ls -R DIR/etc` (then `strata umount`, timed
//!   apart);
//! - on the gzip image: `skopeo copy docker://… oci:…` + `umoci unpack` + `cat`; `podman pull` into a fresh
//!   store (`--root`/`--runroot` in the work dir's temporary directory) + `podman image mount` + `cat`; and
//!   `strata cat` of the gzip image, which reads every layer whole (gzip layers have no table of contents);
//! - podman through `strata layer-store` (issue 14; the store started apart, its cache empty): `podman
//!   pull`, `podman image mount` and `cat` of each lazy image, and of the gzip image pushed again to a
//!   repository where `strata index --push` published its index.
//!
//! Every output is checked (the file's bytes, the listing). Outputs of the full pulls are removed and
//! `sync`ed between runs, untimed. Needs root (FUSE, umoci, podman's overlay mounts, ctr-remote's
//! containerd), the peers on `PATH`, and `STRATA_BIN` naming the strata binary to time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use strata_tests::als::LayerStore;
use strata_tests::lazy::{Format, LazyImages, OS_RELEASE, big_image, lazy_peers};
use strata_tests::proxy::{FaultProxy, Link, Seen};
use strata_tests::registry::{Auth, Env, Registry};
use strata_tests::rich::umoci_unpack;
use strata_tests::store::TestStore;
use strata_tests::{describe, is_root, require_tool, show_output, strata_bin};

const USAGE: &str = "usage: lazy-bench --work DIR --markdown FILE [--json FILE] [--runs N]";
const TLS_OFF: &str = "--tls-verify=false";
/// The fixture's tag.
const TAG: &str = "big";
/// The file every row reads.
const FILE: &str = "/etc/os-release";
/// The lazy images, each read through its table of contents.
const LAZY: [Format; 3] = [
    Format::Estargz,
    Format::ZstdChunkedCtr,
    Format::ZstdChunkedSkopeo,
];

/// One thing timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Row {
    /// `strata cat` of a lazy image.
    Cat(Format),
    /// `strata mount --fuse` of a lazy image + `ls -R /etc`.
    Mount(Format),
    /// `skopeo copy` + `umoci unpack` + `cat`, gzip image.
    SkopeoUmoci,
    /// `podman pull` + `podman image mount` + `cat`, gzip image.
    Podman,
    /// `strata cat` of the gzip image: every layer read whole.
    StrataFull,
    /// `podman pull` through `strata layer-store` + `podman image mount` + `cat` (the gzip image: the one
    /// with a published index).
    PodmanAls(Format),
}

/// The images podman pulls through the layer store: the lazy formats, and gzip with its index published.
const ALS: [Format; 4] = [
    Format::Estargz,
    Format::ZstdChunkedCtr,
    Format::ZstdChunkedSkopeo,
    Format::Gzip,
];

impl Row {
    /// Every row, in the order a round runs them.
    fn all() -> Vec<Row> {
        let mut rows = Vec::new();
        for format in LAZY {
            rows.push(Row::Cat(format));
            rows.push(Row::Mount(format));
        }
        rows.extend([Row::SkopeoUmoci, Row::Podman, Row::StrataFull]);
        rows.extend(ALS.map(Row::PodmanAls));
        rows
    }

    fn format(self) -> Format {
        match self {
            Row::Cat(f) | Row::Mount(f) | Row::PodmanAls(f) => f,
            Row::SkopeoUmoci | Row::Podman | Row::StrataFull => Format::Gzip,
        }
    }

    fn is_full(self) -> bool {
        matches!(self, Row::SkopeoUmoci | Row::Podman | Row::StrataFull)
    }

    fn label(self) -> &'static str {
        match self {
            Row::Cat(_) => "`strata cat IMG /etc/os-release`",
            Row::Mount(_) => "`strata mount --fuse IMG DIR` + `ls -R DIR/etc`",
            Row::SkopeoUmoci => "`skopeo copy` + `umoci unpack` + `cat`",
            Row::Podman => "`podman pull` + `podman image mount` + `cat`",
            Row::StrataFull => "`strata cat IMG /etc/os-release`, every layer read whole",
            Row::PodmanAls(Format::Gzip) => {
                "`podman pull` through `strata layer-store` (published index) + `podman image mount` + `cat`"
            }
            Row::PodmanAls(_) => {
                "`podman pull` through `strata layer-store` + `podman image mount` + `cat`"
            }
        }
    }

    fn key(self) -> String {
        match self {
            Row::Cat(f) => format!("cat-{}", f.name()),
            Row::Mount(f) => format!("mount-{}", f.name()),
            Row::SkopeoUmoci => "skopeo-umoci".to_owned(),
            Row::Podman => "podman".to_owned(),
            Row::StrataFull => "strata-full".to_owned(),
            Row::PodmanAls(f) => format!("podman-als-{}", f.name()),
        }
    }
}

/// How the doc names an image format.
fn format_label(format: Format) -> &'static str {
    match format {
        Format::Gzip => "gzip (umoci)",
        Format::Estargz => "eStargz (ctr-remote)",
        Format::ZstdChunkedCtr => "zstd:chunked (ctr-remote)",
        Format::ZstdChunkedSkopeo => "zstd:chunked (skopeo)",
    }
}

/// `lazy/<format>:big`, the repository each format is pushed to.
fn repo(format: Format) -> String {
    format!("lazy/{}:{TAG}", format.name())
}

/// The repository podman pulls `format` from through the layer store: the gzip image's has its index
/// published (`strata index --push`), which the other rows' gzip repository must not have.
fn als_repo(format: Format) -> String {
    match format {
        Format::Gzip => format!("lazy/gzip-indexed:{TAG}"),
        _ => repo(format),
    }
}

/// One timed execution of a row.
struct Sample {
    /// Each phase and how long it took; `true` when it counts towards the row's time.
    phases: Vec<(&'static str, Duration, bool)>,
    /// When the first phase started.
    started: Instant,
    /// The requests the proxy saw meanwhile.
    requests: Vec<Seen>,
    /// Connections the proxy accepted meanwhile (an HTTPS attempt's included).
    connections: u64,
}

impl Sample {
    /// The row's time: its counted phases.
    fn secs(&self) -> f64 {
        self.phases
            .iter()
            .filter(|p| p.2)
            .map(|p| p.1.as_secs_f64())
            .sum()
    }

    /// Body bytes of the blob GETs answered.
    fn blob_bytes(&self) -> u64 {
        self.requests
            .iter()
            .filter(|s| s.is_blob_get())
            .map(|s| s.body_bytes)
            .sum()
    }

    fn blob_gets(&self) -> usize {
        self.requests.iter().filter(|s| s.is_blob_get()).count()
    }
}

/// Phases of one execution.
struct Timer {
    phases: Vec<(&'static str, Duration, bool)>,
    started: Option<Instant>,
}

impl Timer {
    /// Runs `f` as a phase that counts towards the row's time.
    fn phase<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        self.timed(name, true, f)
    }

    /// Runs `f` as a phase timed apart (not in the row's time).
    fn apart<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        self.timed(name, false, f)
    }

    fn timed<T>(&mut self, name: &'static str, counted: bool, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        self.started.get_or_insert(start);
        let out = f();
        self.phases.push((name, start.elapsed(), counted));
        out
    }
}

/// Runs `cmd` (stdin closed, output captured), which must succeed. No time limit and no polling, so the time
/// around it is the command's.
fn exec(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", describe(cmd)));
    assert!(
        out.status.success(),
        "`{}` failed\n{}",
        describe(cmd),
        show_output(&out)
    );
    out
}

fn sync() {
    exec(&mut Command::new("sync"));
}

struct Bench {
    images: LazyImages,
    proxy: FaultProxy,
    work: PathBuf,
    registries_conf: PathBuf,
}

impl Bench {
    /// `docker://PROXY/lazy/<format>:big`.
    fn image(&self, format: Format) -> String {
        self.proxy.image(&repo(format))
    }

    /// A fresh environment (its own `$HOME`, so nothing cached by an earlier run) with the bench's
    /// registries.conf.
    fn env(&self) -> Env {
        let mut env = Env::new();
        env.set(
            "CONTAINERS_REGISTRIES_CONF",
            self.registries_conf.display().to_string(),
        );
        env
    }

    fn measure(&self, row: Row) -> Sample {
        let before = self.proxy.seen().len();
        let connections = self.proxy.connections();
        let mut timer = Timer {
            phases: Vec::new(),
            started: None,
        };
        match row {
            Row::Cat(format) => self.strata_cat(&mut timer, format),
            Row::Mount(format) => self.mount(&mut timer, format),
            Row::SkopeoUmoci => self.skopeo_umoci(&mut timer),
            Row::Podman => self.podman(&mut timer),
            Row::StrataFull => self.strata_cat(&mut timer, Format::Gzip),
            Row::PodmanAls(format) => self.podman_als(&mut timer, format),
        }
        Sample {
            phases: timer.phases,
            started: timer.started.expect("a row has a phase"),
            requests: self.proxy.seen().split_off(before),
            connections: self.proxy.connections() - connections,
        }
    }

    fn strata_cat(&self, timer: &mut Timer, format: Format) {
        let env = self.env();
        let image = self.image(format);
        let out = timer.phase("cat", || {
            exec(
                env.command(strata_bin())
                    .args(["cat", TLS_OFF, &image, FILE]),
            )
        });
        assert_eq!(
            out.stdout,
            OS_RELEASE.as_bytes(),
            "strata cat {image} {FILE}"
        );
    }

    fn mount(&self, timer: &mut Timer, format: Format) {
        let env = self.env();
        let image = self.image(format);
        let dir = self.work.join("mnt");
        fs::create_dir_all(&dir).expect("creating the mount point");
        let mut cmd = env.command(strata_bin());
        cmd.args(["mount", "--fuse", TLS_OFF, &image]).arg(&dir);
        timer.phase("mount", || exec(&mut cmd));
        let listed = timer.phase("ls -R", || {
            exec(Command::new("ls").arg("-R").arg(dir.join("etc")))
        });
        let mut cmd = env.command(strata_bin());
        cmd.arg("umount").arg(&dir);
        timer.apart("umount", || exec(&mut cmd));
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(
            listed.lines().any(|l| l == "os-release"),
            "ls -R of {image}'s /etc:\n{listed}"
        );
    }

    fn skopeo_umoci(&self, timer: &mut Timer) {
        let env = self.env();
        let dir = self.work.join("full");
        remove(&dir);
        fs::create_dir_all(&dir).expect("creating the pull dir");
        let layout = dir.join("oci");
        let mut copy = env.command("skopeo");
        copy.args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(self.image(Format::Gzip))
            .arg(format!("oci:{}:{TAG}", layout.display()));
        timer.phase("skopeo copy", || exec(&mut copy));
        let rootfs = timer.phase("umoci unpack", || {
            umoci_unpack(&format!("{}:{TAG}", layout.display()), &dir.join("bundle"))
        });
        let out = timer.phase("cat", || {
            exec(Command::new("cat").arg(rootfs.join(&FILE[1..])))
        });
        assert_eq!(out.stdout, OS_RELEASE.as_bytes(), "umoci's {FILE}");
        remove(&dir);
        sync();
    }

    fn podman(&self, timer: &mut Timer) {
        let store = TestStore::new();
        let podman = || {
            let mut cmd = store.podman_cmd();
            cmd.env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf);
            cmd
        };
        let name = format!("{}/{}", self.proxy.host, repo(Format::Gzip));
        pull_mount_cat(timer, &podman, &name);
        exec(podman().args(["image", "unmount", "--all"]));
        drop(store);
        sync();
    }

    /// podman through a layer store started for the run (apart: a service is started once), its cache
    /// empty.
    fn podman_als(&self, timer: &mut Timer, format: Format) {
        let run = self.work.join("als-run");
        remove(&run);
        let env = self.env();
        let als = timer.apart("layer-store", || {
            LayerStore::start_with(env.command(strata_bin()), &run, &[])
        });
        let store = TestStore::new();
        let podman = || {
            let mut cmd = store.podman_cmd();
            cmd.env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf)
                .args(["--storage-opt", &als.storage_opt()]);
            cmd
        };
        let name = format!("{}/{}", self.proxy.host, als_repo(format));
        pull_mount_cat(timer, &podman, &name);
        let log = als.log();
        assert!(
            !log.contains("refused"),
            "the layer store served every layer:\n{log}"
        );
        exec(podman().args(["image", "unmount", "--all"]));
        exec(podman().args(["rmi", "--all"]));
        drop(store);
        timer.apart("umount", || drop(als));
        remove(&run);
    }
}

/// `podman pull` of `name`, `podman image mount` and `cat` of the file, each timed, with `podman` making
/// the commands (its store, registries.conf and storage options); checks the file's bytes.
fn pull_mount_cat(timer: &mut Timer, podman: &dyn Fn() -> Command, name: &str) {
    let mut pull = podman();
    pull.args(["pull", "--quiet", TLS_OFF, &format!("docker://{name}")]);
    timer.phase("podman pull", || exec(&mut pull));
    let mut mount = podman();
    mount.args(["image", "mount", name]);
    let mounted = timer.phase("podman image mount", || exec(&mut mount));
    let root = PathBuf::from(String::from_utf8_lossy(&mounted.stdout).trim());
    let out = timer.phase("cat", || {
        exec(Command::new("cat").arg(root.join(&FILE[1..])))
    });
    assert_eq!(
        out.stdout,
        OS_RELEASE.as_bytes(),
        "podman's {FILE} of {name}"
    );
}

/// Removes `dir` if it is there.
fn remove(dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
    }
}

/// The big fixture in every format, made once into `dir` (a marker says it is complete).
fn fixtures(dir: &Path) -> LazyImages {
    let marker = dir.join(".complete");
    if marker.exists() {
        eprintln!("lazy-bench: the fixture images kept in {}", dir.display());
        return LazyImages::at(dir, TAG);
    }
    remove(dir);
    eprintln!(
        "lazy-bench: making the fixture images in {} (umoci, ctr-remote, skopeo)",
        dir.display()
    );
    let images = LazyImages::make(dir, TAG, big_image);
    fs::write(&marker, b"").expect("writing the fixtures marker");
    images
}

struct Options {
    work: PathBuf,
    markdown: PathBuf,
    json: Option<PathBuf>,
    runs: usize,
}

impl Options {
    fn parse() -> Options {
        let mut args = std::env::args().skip(1);
        let (mut work, mut markdown, mut json, mut runs) = (None, None, None, 5);
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| die(&format!("{arg} needs a value")))
            };
            match arg.as_str() {
                "--work" => work = Some(PathBuf::from(value())),
                "--markdown" => markdown = Some(PathBuf::from(value())),
                "--json" => json = Some(PathBuf::from(value())),
                "--runs" => {
                    runs = value()
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .unwrap_or_else(|| die("--runs needs a number >= 1"));
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => die(&format!("unknown argument {arg}")),
            }
        }
        Options {
            work: work.unwrap_or_else(|| die("--work is required")),
            markdown: markdown.unwrap_or_else(|| die("--markdown is required")),
            json,
            runs,
        }
    }
}

fn die(message: &str) -> ! {
    eprintln!("lazy-bench: {message}\n{USAGE}");
    std::process::exit(2);
}

fn main() {
    let options = Options::parse();
    let tools = [
        "docker-registry",
        "fusermount3",
        "podman",
        "umoci",
        "skopeo",
    ];
    if !(lazy_peers() && tools.iter().all(|t| require_tool(t))) {
        die("a peer is missing (see above)");
    }
    if !is_root() {
        die("needs root (FUSE, umoci, podman's overlay mounts, a private containerd)");
    }
    let _ = strata_bin();
    fs::create_dir_all(&options.work).expect("creating the work dir");
    let work = options
        .work
        .canonicalize()
        .expect("the work dir's full path");
    let started = Instant::now();
    let images = fixtures(&work.join("images"));
    let registry = Registry::start(Auth::Open);
    for format in Format::ALL {
        registry.push(&images.oci(format), &repo(format), &[]);
    }
    registry.push(&images.oci(Format::Gzip), &als_repo(Format::Gzip), &[]);
    exec(Command::new(strata_bin()).args([
        "index",
        "--push",
        TLS_OFF,
        &registry.image(&als_repo(Format::Gzip)),
    ]));
    let proxy = FaultProxy::start_shaped(&registry.host, Vec::new(), Link::wan());
    let registries_conf = work.join("registries.conf");
    fs::write(
        &registries_conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            proxy.host
        ),
    )
    .expect("writing registries.conf");
    eprintln!(
        "lazy-bench: registry {} behind the shaped proxy {} ({:?}); set up in {:.1} s",
        registry.host,
        proxy.host,
        proxy.link(),
        started.elapsed().as_secs_f64()
    );
    let bench = Bench {
        images,
        proxy,
        work,
        registries_conf,
    };
    let rows = Row::all();
    eprintln!("lazy-bench: warm-up round (untimed; checks every output)");
    for &row in &rows {
        let sample = bench.measure(row);
        eprintln!("  {:<22} {:8.3} s", row.key(), sample.secs());
    }
    let mut samples: HashMap<Row, Vec<Sample>> = HashMap::new();
    for run in 1..=options.runs {
        eprintln!("lazy-bench: run {run} of {}", options.runs);
        for &row in &rows {
            let sample = bench.measure(row);
            eprintln!(
                "  {:<22} {:8.3} s  {:>12} blob bytes  {:>3} requests  {:>2} connections",
                row.key(),
                sample.secs(),
                sample.blob_bytes(),
                sample.requests.len(),
                sample.connections
            );
            samples.entry(row).or_default().push(sample);
        }
    }
    let report = Report {
        bench: &bench,
        rows: &rows,
        samples: &samples,
        runs: options.runs,
    };
    fs::write(&options.markdown, report.markdown()).expect("writing the markdown");
    if let Some(path) = &options.json {
        fs::write(path, report.json()).expect("writing the JSON");
    }
    eprintln!(
        "lazy-bench: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as the tables show them.
fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.3} s")
    } else {
        format!("{s:.2} s")
    }
}

struct Report<'a> {
    bench: &'a Bench,
    rows: &'a [Row],
    samples: &'a HashMap<Row, Vec<Sample>>,
    runs: usize,
}

impl Report<'_> {
    fn samples(&self, row: Row) -> &[Sample] {
        self.samples.get(&row).map_or(&[], Vec::as_slice)
    }

    fn median(&self, row: Row) -> f64 {
        median(
            &self
                .samples(row)
                .iter()
                .map(Sample::secs)
                .collect::<Vec<_>>(),
        )
    }

    fn median_of(&self, row: Row, f: impl Fn(&Sample) -> f64) -> f64 {
        median(&self.samples(row).iter().map(f).collect::<Vec<_>>())
    }

    fn image_size(&self, format: Format) -> u64 {
        self.bench.images.compressed_size(format)
    }

    fn markdown(&self) -> String {
        let mut md = String::from("## Link and image\n\n");
        let link = self.bench.proxy.link();
        let mbit = link.bits_per_second.map_or_else(
            || "no cap".to_owned(),
            |b| format!("{} Mbit/s", b / 1_000_000),
        );
        let _ = writeln!(
            md,
            "Link: {} ms each way ({} ms round trip; a new connection also waits one round trip for its \
             handshake), {mbit} each way, shared by all connections. {} timed runs per row after one \
             warm-up round.\n",
            link.latency.as_millis(),
            (link.latency * 2).as_millis(),
            self.runs
        );
        md.push_str("Image: the same 4 layers in each format (compressed layer bytes, the config aside):\n\n");
        for format in Format::ALL {
            let layers = self.bench.images.layers(format);
            let _ = writeln!(
                md,
                "- {}: {} bytes ({:.1} MB) in {} layers",
                format_label(format),
                thousands(self.image_size(format)),
                self.image_size(format) as f64 / 1e6,
                layers.len()
            );
        }
        md.push_str("\n## Results\n\n");
        self.results_table(&mut md);
        md.push_str("\n## Full pulls against the lazy `cat`\n\n");
        self.ratio_table(&mut md);
        md.push_str("\n## podman through `strata layer-store` against a plain `podman pull`\n\n");
        self.als_table(&mut md);
        md.push_str("\n## The goal\n\n");
        self.goal(&mut md);
        md.push_str("\n## Where strata's time goes\n\n");
        self.timelines(&mut md);
        md
    }

    fn results_table(&self, md: &mut String) {
        md.push_str(
            "| what | image | median | min – max | phases (medians) | blob bytes fetched | share of the \
             image | requests (blob GETs) | connections |\n|---|---|---:|---:|---|---:|---:|---:|---:|\n",
        );
        for &row in self.rows {
            let samples = self.samples(row);
            let times: Vec<f64> = samples.iter().map(Sample::secs).collect();
            let min = times.iter().copied().fold(f64::INFINITY, f64::min);
            let max = times.iter().copied().fold(0.0, f64::max);
            let phases = samples.first().map_or_else(String::new, |first| {
                first
                    .phases
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _, counted))| {
                        let m = self.median_of(row, |s| s.phases[i].1.as_secs_f64());
                        if *counted {
                            format!("{name} {}", secs(m))
                        } else {
                            format!("({name} {})", secs(m))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" + ")
                    .replace(" + (", " (")
            });
            let bytes = self.median_of(row, |s| s.blob_bytes() as f64) as u64;
            let (lo, hi) = samples
                .iter()
                .map(Sample::blob_bytes)
                .fold((u64::MAX, 0), |(lo, hi), b| (lo.min(b), hi.max(b)));
            let mut bytes_cell = thousands(bytes);
            if lo != hi {
                let _ = write!(bytes_cell, " ({} – {})", thousands(lo), thousands(hi));
            }
            let share = bytes as f64 * 100.0 / self.image_size(row.format()) as f64;
            let requests = self.median_of(row, |s| s.requests.len() as f64);
            let gets = self.median_of(row, |s| s.blob_gets() as f64);
            let connections = self.median_of(row, |s| s.connections as f64);
            let _ = writeln!(
                md,
                "| {} | {} | **{}** | {} – {} | {phases} | {bytes_cell} | {share:.2} % | {requests} ({gets}) | \
                 {connections} |",
                row.label(),
                format_label(row.format()),
                secs(self.median(row)),
                secs(min),
                secs(max),
            );
        }
    }

    fn ratio_table(&self, md: &mut String) {
        md.push_str("Each full-pull path's median time over each lazy `cat`'s (above 1: the lazy `cat` is faster).\n\n");
        md.push_str("| full-pull path (gzip image) | median |");
        for format in LAZY {
            let _ = write!(md, " ÷ `cat`, {} |", format_label(format));
        }
        md.push_str("\n|---|---:|");
        for _ in LAZY {
            md.push_str("---:|");
        }
        md.push('\n');
        for &row in self.rows.iter().filter(|r| r.is_full()) {
            let _ = write!(md, "| {} | {} |", row.label(), secs(self.median(row)));
            for format in LAZY {
                let _ = write!(
                    md,
                    " {:.1}× |",
                    self.median(row) / self.median(Row::Cat(format))
                );
            }
            md.push('\n');
        }
    }

    fn als_table(&self, md: &mut String) {
        md.push_str(
            "Issue 14: `podman pull` + `podman image mount` + `cat` of one file, through the layer store (its \
             cache empty, started apart) and plainly (the gzip image), on the same link.\n\n| image | through \
             the layer store | blob bytes fetched | plain `podman pull` (gzip) | blob bytes fetched | ratio \
             |\n|---|---:|---:|---:|---:|---:|\n",
        );
        let plain = self.median(Row::Podman);
        let plain_bytes = self.median_of(Row::Podman, |s| s.blob_bytes() as f64);
        for format in ALS {
            let row = Row::PodmanAls(format);
            let bytes = self.median_of(row, |s| s.blob_bytes() as f64);
            let _ = writeln!(
                md,
                "| {}{} | {} | {} ({:.2} %) | {} | {} | {:.1}× |",
                format_label(format),
                if format == Format::Gzip {
                    ", index published"
                } else {
                    ""
                },
                secs(self.median(row)),
                thousands(bytes as u64),
                bytes * 100.0 / self.image_size(format) as f64,
                secs(plain),
                thousands(plain_bytes as u64),
                plain / self.median(row)
            );
        }
    }

    fn goal(&self, md: &mut String) {
        md.push_str(
            "Issue 13 asks for a lazy `cat` under 1 s on this link, at least 10× faster than any full-pull \
             path.\n\n| image | lazy `cat` (median) | under 1 s | fastest full-pull path | its median | \
             ratio | ≥ 10× |\n|---|---:|---|---|---:|---:|---|\n",
        );
        let fastest = self
            .rows
            .iter()
            .copied()
            .filter(|r| r.is_full())
            .min_by(|a, b| self.median(*a).total_cmp(&self.median(*b)))
            .expect("a full-pull row");
        let mut all = true;
        for format in LAZY {
            let cat = self.median(Row::Cat(format));
            let ratio = self.median(fastest) / cat;
            let fast = cat < 1.0;
            let far = ratio >= 10.0;
            all &= fast && far;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {ratio:.1}× | {} |",
                format_label(format),
                secs(cat),
                if fast { "yes" } else { "**no**" },
                row_short(fastest),
                secs(self.median(fastest)),
                if far { "yes" } else { "**no**" },
            );
        }
        let _ = writeln!(
            md,
            "\n**{}**",
            if all {
                "Met for all three lazy images in this run."
            } else {
                "Not met in this run (see the rows marked no)."
            }
        );
    }

    /// The requests of the last timed `strata cat` of each image, with when each arrived at the proxy.
    fn timelines(&self, md: &mut String) {
        md.push_str(
            "The requests of the last timed `strata cat` of each image as the proxy saw them: when each arrived \
             (20 ms after it was sent), from the start of the process; the connection it came on (numbered from \
             the first request's; the HTTPS attempt before it sends no request); the bytes of its answer. The \
             process's exit is the last line.\n",
        );
        let rows = LAZY.iter().map(|&f| Row::Cat(f)).chain([Row::StrataFull]);
        for row in rows {
            let Some(sample) = self.samples(row).last() else {
                continue;
            };
            let names = self.blob_names(row.format());
            let _ = writeln!(
                md,
                "\n{}, {}: {} requests on {} connections, {}.\n",
                format_label(row.format()),
                if row.is_full() {
                    "every layer read whole"
                } else {
                    "lazy"
                },
                sample.requests.len(),
                sample.connections,
                secs(sample.secs())
            );
            md.push_str(
                "| at | connection | request | range | status | body bytes |\n|---:|---:|---|---|---:|---:|\n",
            );
            let first = sample.requests.first().map_or(0, |s| s.connection);
            for seen in &sample.requests {
                let at = seen.arrived.saturating_duration_since(sample.started);
                let _ = writeln!(
                    md,
                    "| {} ms | {} | {} {} | {} | {} | {} |",
                    at.as_millis(),
                    seen.connection.saturating_sub(first),
                    seen.head.method,
                    short_target(&seen.head.target, &names),
                    seen.range().unwrap_or(""),
                    seen.status
                        .map_or_else(|| "–".to_owned(), |s| s.to_string()),
                    thousands(seen.body_bytes)
                );
            }
            let _ = writeln!(
                md,
                "| {} ms | | exit | | | |",
                (sample.secs() * 1000.0).round()
            );
        }
    }

    /// `sha256:…` of each layer and of the config of `format`, and a name for it.
    fn blob_names(&self, format: Format) -> Vec<(String, String)> {
        let manifest = self.bench.images.manifest(format);
        let mut names = vec![(
            manifest["config"]["digest"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            "config".to_owned(),
        )];
        for (i, layer) in self.bench.images.layers(format).iter().enumerate() {
            names.push((
                layer["digest"].as_str().unwrap_or("").to_owned(),
                format!("layer {}", i + 1),
            ));
        }
        names
    }

    fn json(&self) -> String {
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|&row| {
                json!({
                    "row": row.key(),
                    "image": format_label(row.format()),
                    "compressed_bytes": self.image_size(row.format()),
                    "runs": self.samples(row).iter().map(|s| json!({
                        "seconds": s.secs(),
                        "phases": s.phases.iter().map(|(n, d, c)| json!({"phase": n, "seconds": d.as_secs_f64(), "counted": c})).collect::<Vec<_>>(),
                        "blob_bytes": s.blob_bytes(),
                        "requests": s.requests.len(),
                        "blob_gets": s.blob_gets(),
                        "connections": s.connections,
                        "log": s.requests.iter().map(|r| json!({
                            "at_ms": r.arrived.saturating_duration_since(s.started).as_secs_f64() * 1000.0,
                            "connection": r.connection,
                            "method": r.head.method,
                            "target": r.head.target,
                            "range": r.range(),
                            "status": r.status,
                            "body_bytes": r.body_bytes,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::to_string_pretty(
            &json!({ "link": format!("{:?}", self.bench.proxy.link()), "rows": rows }),
        )
        .expect("JSON")
    }
}

/// A full-pull row in a few words.
fn row_short(row: Row) -> &'static str {
    match row {
        Row::SkopeoUmoci => "skopeo + umoci",
        Row::Podman => "podman pull + mount",
        Row::StrataFull => "strata, whole layers",
        Row::Cat(_) | Row::Mount(_) | Row::PodmanAls(_) => "lazy",
    }
}

/// A request target without `/v2/REPO/`, its blob named (`config`, `layer N`).
fn short_target(target: &str, names: &[(String, String)]) -> String {
    let rest = target
        .strip_prefix("/v2/")
        .and_then(|t| {
            t.find("/blobs/")
                .or_else(|| t.find("/manifests/"))
                .map(|i| &t[i + 1..])
        })
        .unwrap_or(target);
    if let Some(digest) = rest.strip_prefix("blobs/")
        && let Some((_, name)) = names.iter().find(|(d, _)| d == digest)
    {
        return format!("blob ({name})");
    }
    rest.to_owned()
}
