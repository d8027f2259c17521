//! Test harness for strata's end-to-end tests (package `strata-tests`).
//!
//! The tests in `tests/*.rs` drive the built `strata` binary as a black box and
//! compare what it prints with what the real peers (skopeo, umoci) do on the same
//! images. This library holds what they share:
//!
//! - locating the binary ([`strata_bin`]) and running it ([`strata`], [`strata_ok`]) with a
//!   time limit, so a hang fails the test instead of stalling the suite;
//! - checking for peers ([`require_tool`]): a missing peer skips the test locally but fails
//!   it under `CI=true`;
//! - running commands that must succeed ([`run`]) with their full output in the failure message;
//! - building real images with umoci ([`umoci_image`], [`ImageSpec`]), and images in the lazy formats
//!   (eStargz, zstd:chunked) made by ctr-remote and skopeo ([`lazy`]);
//! - a real registry, a fault-injecting, link-shaping and byte-counting proxy in front of it
//!   ([`registry`], [`proxy`]);
//! - reading and writing OCI image layouts by hand ([`OciLayout`], [`sha256_digest`]), for
//!   multi-arch indexes and deliberately broken (hostile) layouts;
//! - comparing strata's JSON with skopeo's ([`assert_json_keys_eq`], [`assert_layers_data`]) and
//!   checking the error contract ([`assert_clean_error`]).
//!
//! Test-only code: failing loudly is the point, so panics and unwraps are allowed here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod als;
pub mod lazy;
pub mod packages;
pub mod proxy;
pub mod registry;
pub mod rich;
pub mod signing;
pub mod store;
pub mod tree;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// How long one `strata` or peer invocation may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The OCI annotation holding a tag in an image layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Media type of an OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Media type of an OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Media type of a gzip-compressed OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The built `strata` binary.
///
/// `STRATA_BIN` wins when set; otherwise the binary is looked up next to the test executable's
/// directory (`target/<profile>/deps/<test>` → `target/<profile>/strata`).
///
/// # Panics
/// When the binary does not exist, telling how to build it.
pub fn strata_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("STRATA_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "STRATA_BIN={} does not exist or is not a file",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("cannot locate the test executable");
    // target/<profile>/deps/<test-exe> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable has no grandparent directory");
    let bin = profile_dir.join(format!("strata{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the strata binary is missing at {}: run `cargo build --workspace --bins` first \
         (or set STRATA_BIN)",
        bin.display()
    );
    // `cargo test -p strata-tests` does not rebuild the binary: a stale one would test old code.
    static NEWEST: std::sync::OnceLock<Option<(std::time::SystemTime, PathBuf)>> =
        std::sync::OnceLock::new();
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    if let Some((changed, source)) = NEWEST.get_or_init(|| newest_source(&crates))
        && let Ok(built) = std::fs::metadata(&bin).and_then(|m| m.modified())
    {
        assert!(
            built >= *changed,
            "{} is older than {}: run `cargo build --workspace --bins` first (or set STRATA_BIN)",
            bin.display(),
            source.display()
        );
    }
    bin
}

/// The most recently modified source file the `strata` binary is built from: the `src` trees of the
/// `strata` crate and of the workspace crates its `[dependencies]` name, transitively (dev-only crates and
/// tests do not rebuild the binary, so they do not count).
fn newest_source(crates: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut todo = vec!["strata".to_owned()];
    let mut seen = std::collections::HashSet::new();
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let dir = crates.join(&name);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let mut in_dependencies = false;
        for line in manifest.lines() {
            if line.starts_with('[') {
                in_dependencies = line.trim() == "[dependencies]";
            } else if in_dependencies && line.starts_with("strata-") {
                let dep: String = line
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                todo.push(dep);
            }
        }
        let mut dirs = vec![dir.join("src")];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(path);
                } else if let Ok(time) = entry.metadata().and_then(|m| m.modified())
                    && newest.as_ref().is_none_or(|(t, _)| time > *t)
                {
                    newest = Some((time, path));
                }
            }
        }
    }
    newest
}

/// True when the environment says this is a CI run (`CI=true`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// True when `name` is an executable on `PATH`.
pub fn on_path(name: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(name);
        fs::metadata(&candidate).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt as _;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        })
    })
}

/// Whether the peer tool `name` can be used.
///
/// Returns true when it is on `PATH`. When it is missing: under `CI=true` this panics (CI must
/// install every peer, see `tools/test.sh`); otherwise it prints a skip note and returns false,
/// and the caller returns early: `if !require_tool("skopeo") { return; }`.
///
/// # Panics
/// When the tool is missing and `CI=true`.
pub fn require_tool(name: &str) -> bool {
    if on_path(name) {
        return true;
    }
    if under_ci() {
        panic!("required peer {name} missing under CI=true (tools/test.sh installs it)");
    }
    eprintln!("SKIP: peer `{name}` is not on PATH; run `bash tools/test.sh` to install it");
    false
}

/// A peer tool installed from PyPI (dive, syft, pyspdxtools, …): the one in the venv `tools/test.sh` makes at
/// `target/peers-venv`, else the one on `PATH`. `None` (after saying so) when neither has it, as
/// [`require_tool`] decides.
///
/// # Panics
/// When the tool is missing and `CI=true`.
pub fn pypi_peer(name: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/peers-venv/bin")
        .join(name);
    if venv.is_file() {
        return Some(venv);
    }
    require_tool(name).then(|| PathBuf::from(name))
}

/// True when running as root (effective uid 0).
pub fn is_root() -> bool {
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
    {
        // Uid: real effective saved fs
        return line.split_whitespace().nth(2) == Some("0");
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command line as text, for failure messages.
pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Formats a finished process's status and output, for failure messages.
pub fn show_output(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `cmd` to completion, with stdin closed and a [`COMMAND_TIMEOUT`] limit, and returns its
/// output whatever the exit status.
///
/// # Panics
/// When the command cannot be started or does not finish in time (it is killed first).
pub fn run_unchecked(cmd: &mut Command) -> Output {
    run_with_timeout(cmd, COMMAND_TIMEOUT)
}

/// Like [`run_unchecked`], with an explicit time limit.
///
/// # Panics
/// When the command cannot be started or does not finish in time (it is killed first).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    // The local index cache of registry layers goes to a directory of this test process, not the user's
    // (unless the test chose one).
    if !cmd.get_envs().any(|(k, _)| k == "XDG_CACHE_HOME") {
        cmd.env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join(format!("strata-tests-cache-{}", std::process::id())),
        );
    }
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {timeout:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_thread.join().expect("stdout reader"),
        stderr: err_thread.join().expect("stderr reader"),
    }
}

/// Runs `cmd`, which must succeed, and returns its output.
///
/// # Panics
/// When the command fails, showing the command line, exit status, stdout and stderr.
pub fn run(cmd: &mut Command) -> Output {
    let output = run_unchecked(cmd);
    assert!(
        output.status.success(),
        "`{}` failed\n{}",
        describe(cmd),
        show_output(&output)
    );
    output
}

/// Runs the `strata` binary with `args` and returns its output; success is **not** asserted,
/// so tests can check failures.
pub fn strata<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_unchecked(Command::new(strata_bin()).args(args))
}

/// A command that runs as user and group `id` with no supplementary groups (`setpriv`, from root): add the
/// program and its arguments.
pub fn as_user(id: u32) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={id}"))
        .arg(format!("--regid={id}"))
        .args(["--clear-groups", "--"]);
    c
}

/// Runs `strata` with `args`, which must succeed, and returns its stdout.
///
/// # Panics
/// When strata fails, showing the full output.
pub fn strata_ok<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new(strata_bin()).args(args)).stdout
}

/// Runs `skopeo` with `args`, which must succeed, and returns its stdout.
///
/// # Panics
/// When skopeo fails, showing the full output.
pub fn skopeo_ok<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new("skopeo").args(args)).stdout
}

/// Runs `umoci` with `args`, which must succeed.
///
/// # Panics
/// When umoci fails, showing the full output.
pub fn umoci<I, S>(args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new("umoci").args(args));
}

/// Parses `bytes` as JSON, panicking with the text and `what` when it is not JSON.
///
/// # Panics
/// When `bytes` is not valid JSON.
pub fn parse_json(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what}: output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Asserts that `output` is a clean command-line failure: exit code 2 (an error, not findings), one non-empty line on
/// stderr, nothing on stdout, and no panic message. `what` names the case in the failure message.
///
/// # Panics
/// When the contract is broken.
pub fn assert_clean_error(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: strata panicked\n{}",
        show_output(output)
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "{what}: expected exit code 2\n{}",
        show_output(output)
    );
    let text = stderr.trim_end_matches('\n');
    assert!(
        !text.trim().is_empty(),
        "{what}: expected an error message on stderr\n{}",
        show_output(output)
    );
    assert_eq!(
        text.lines().count(),
        1,
        "{what}: expected exactly one line on stderr\n{}",
        show_output(output)
    );
    assert!(
        output.stdout.is_empty(),
        "{what}: expected nothing on stdout when failing\n{}",
        show_output(output)
    );
}

/// Compares strata's JSON object with skopeo's, key by key over **skopeo's** keys, and checks
/// that strata adds no keys other than those in `extra_allowed` (e.g. `LayersData`, which
/// skopeo 1.9 lacks). Collects every difference into one panic message.
///
/// # Panics
/// When a value differs, a key is missing, or strata has an unexpected key.
pub fn assert_json_keys_eq(skopeo: &Value, strata: &Value, extra_allowed: &[&str], what: &str) {
    let (Some(want), Some(got)) = (skopeo.as_object(), strata.as_object()) else {
        assert_eq!(strata, skopeo, "{what}: (non-object JSON) strata vs skopeo");
        return;
    };
    let mut diffs = String::new();
    for (key, want_value) in want {
        match got.get(key) {
            None => {
                let _ = writeln!(
                    diffs,
                    "  key {key:?} missing in strata; skopeo has {want_value}"
                );
            }
            Some(got_value) if got_value != want_value => {
                let _ = writeln!(
                    diffs,
                    "  key {key:?} differs:\n    skopeo: {want_value}\n    strata: {got_value}"
                );
            }
            Some(_) => {}
        }
    }
    for (key, got_value) in got {
        if !want.contains_key(key) && !extra_allowed.contains(&key.as_str()) {
            let _ = writeln!(
                diffs,
                "  key {key:?} only in strata (skopeo omits it): {got_value}"
            );
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: strata and skopeo differ:\n{diffs}--- skopeo ---\n{}\n--- strata ---\n{}",
        serde_json::to_string_pretty(skopeo).unwrap_or_default(),
        serde_json::to_string_pretty(strata).unwrap_or_default()
    );
}

/// Checks strata's `LayersData` against the (single-image) `manifest`: one entry per layer, in
/// order, with the layer's digest (also equal to `Layers[i]`), size, media type and annotations.
///
/// # Panics
/// When `LayersData` is missing or inconsistent.
pub fn assert_layers_data(strata: &Value, manifest: &Value, what: &str) {
    let layers = manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: manifest has no layers array: {manifest}"));
    let data = strata["LayersData"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: strata output has no LayersData array: {strata}"));
    let names = strata["Layers"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: strata output has no Layers array: {strata}"));
    assert_eq!(
        data.len(),
        layers.len(),
        "{what}: LayersData has {} entries, the manifest {} layers\n{strata}",
        data.len(),
        layers.len()
    );
    assert_eq!(names.len(), layers.len(), "{what}: Layers length");
    for (i, (entry, layer)) in data.iter().zip(layers).enumerate() {
        assert_eq!(
            entry["Digest"], layer["digest"],
            "{what}: LayersData[{i}].Digest vs manifest layers[{i}].digest"
        );
        assert_eq!(
            entry["Digest"], names[i],
            "{what}: LayersData[{i}].Digest vs Layers[{i}]"
        );
        assert_eq!(
            entry["Size"], layer["size"],
            "{what}: LayersData[{i}].Size vs manifest layers[{i}].size"
        );
        assert_eq!(
            entry["MIMEType"], layer["mediaType"],
            "{what}: LayersData[{i}].MIMEType vs manifest layers[{i}].mediaType"
        );
        let want_annotations = layer.get("annotations").unwrap_or(&Value::Null);
        let got_annotations = entry.get("Annotations").unwrap_or(&Value::Null);
        assert_eq!(
            got_annotations, want_annotations,
            "{what}: LayersData[{i}].Annotations vs manifest layers[{i}].annotations"
        );
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in hash.iter() {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Canonical compact JSON bytes of `value` (the way the tests write blobs).
pub fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialising JSON")
}

/// An OCI image layout directory, read and written by hand.
///
/// Nothing here validates: the point is to be able to write broken layouts on purpose.
#[derive(Debug, Clone)]
pub struct OciLayout {
    /// The layout's root directory (holding `oci-layout`, `index.json` and `blobs/`).
    pub root: PathBuf,
}

impl OciLayout {
    /// Opens the layout at `root` (nothing is checked).
    pub fn open(root: impl Into<PathBuf>) -> Self {
        OciLayout { root: root.into() }
    }

    /// Creates an empty layout at `root`: `oci-layout`, an empty `index.json`, `blobs/sha256/`.
    pub fn create(root: impl Into<PathBuf>) -> Self {
        let layout = OciLayout::open(root);
        fs::create_dir_all(layout.root.join("blobs/sha256")).expect("creating blobs/sha256");
        fs::write(
            layout.root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .expect("writing oci-layout");
        layout.write_index(&json!({"schemaVersion": 2, "manifests": []}));
        layout
    }

    /// Path of `index.json`.
    pub fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Value {
        let bytes = fs::read(self.index_path()).expect("reading index.json");
        parse_json(&bytes, "index.json")
    }

    /// Replaces `index.json` with `index`.
    pub fn write_index(&self, index: &Value) {
        fs::write(self.index_path(), json_bytes(index)).expect("writing index.json");
    }

    /// Path of the blob named by `digest` (`algo:hex`), without any validation.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest
            .split_once(':')
            .unwrap_or_else(|| panic!("not a digest: {digest}"));
        self.root.join("blobs").join(algorithm).join(hex)
    }

    /// The bytes of blob `digest`.
    pub fn read_blob(&self, digest: &str) -> Vec<u8> {
        fs::read(self.blob_path(digest)).unwrap_or_else(|e| panic!("reading blob {digest}: {e}"))
    }

    /// The blob `digest` parsed as JSON.
    pub fn read_json_blob(&self, digest: &str) -> Value {
        parse_json(&self.read_blob(digest), digest)
    }

    /// Stores `bytes` as a sha256 blob and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let path = self.blob_path(&digest);
        fs::create_dir_all(path.parent().expect("blob has a parent")).expect("creating blob dir");
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing blob {digest}: {e}"));
        digest
    }

    /// Stores `bytes` as a blob and returns a descriptor `{mediaType, digest, size}` for it.
    pub fn add_blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = self.write_blob(bytes);
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// Stores `value` (compact JSON) as a blob and returns its descriptor.
    pub fn add_json(&self, media_type: &str, value: &Value) -> Value {
        self.add_blob(media_type, &json_bytes(value))
    }

    /// The `index.json` descriptor tagged `tag`.
    ///
    /// # Panics
    /// When no descriptor has that tag.
    pub fn descriptor(&self, tag: &str) -> Value {
        self.index()["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["annotations"][REF_NAME] == tag)
            .cloned()
            .unwrap_or_else(|| panic!("no tag {tag} in {}", self.index_path().display()))
    }

    /// The manifest (or index) tagged `tag`, parsed.
    pub fn manifest(&self, tag: &str) -> Value {
        let descriptor = self.descriptor(tag);
        self.read_json_blob(descriptor["digest"].as_str().expect("descriptor digest"))
    }

    /// Adds `descriptor` to `index.json` under `tag`, replacing any entry with that tag.
    pub fn set_tag(&self, tag: &str, descriptor: &Value) {
        let mut descriptor = descriptor.clone();
        descriptor["annotations"][REF_NAME] = json!(tag);
        let mut index = self.index();
        let manifests = index["manifests"]
            .as_array_mut()
            .expect("index.json has a manifests array");
        manifests.retain(|d| d["annotations"][REF_NAME] != tag);
        manifests.push(descriptor);
        self.write_index(&index);
    }
}

/// What [`umoci_image`] builds.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Tag of the image in the layout.
    pub tag: String,
    /// Whether to add the two standard layers (see [`umoci_image`]); false gives an image with
    /// no layers at all.
    pub layers: bool,
    /// `--config.label KEY=VALUE` pairs.
    pub labels: Vec<(String, String)>,
    /// `--config.env` entries (`KEY=VALUE`).
    pub env: Vec<String>,
    /// `--config.user`.
    pub user: Option<String>,
    /// `--author`.
    pub author: Option<String>,
    /// `--created` (RFC 3339); `None` keeps umoci's current-time value (with nanoseconds).
    pub created: Option<String>,
    /// `--architecture`.
    pub architecture: Option<String>,
    /// `--os`.
    pub os: Option<String>,
    /// `--clear` values (e.g. `config.env`), applied before the settings above.
    pub clear: Vec<String>,
    /// Any further `umoci config` arguments (e.g. `--config.cmd`, `--config.workingdir`).
    pub extra_config: Vec<String>,
}

impl Default for ImageSpec {
    /// A bare image: no layers, no config settings, tag `latest`.
    fn default() -> Self {
        ImageSpec {
            tag: "latest".to_owned(),
            layers: false,
            labels: Vec::new(),
            env: Vec::new(),
            user: None,
            author: None,
            created: None,
            architecture: None,
            os: None,
            clear: Vec::new(),
            extra_config: Vec::new(),
        }
    }
}

impl ImageSpec {
    /// The standard test image: two layers (the second removes a file and a directory, giving
    /// whiteouts), labels, env, user, author, cmd, entrypoint, working dir, exposed port, volume,
    /// stop signal and a fixed creation time.
    pub fn base(tag: &str) -> Self {
        ImageSpec {
            tag: tag.to_owned(),
            layers: true,
            labels: vec![
                ("name".to_owned(), "strata-test".to_owned()),
                (
                    "org.opencontainers.image.title".to_owned(),
                    "Strata <test> & co".to_owned(),
                ),
                ("empty".to_owned(), String::new()),
            ],
            env: vec![
                "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
                "GREETING=hello world".to_owned(),
            ],
            user: Some("1000".to_owned()),
            author: Some("Strata Tests <tests@example.invalid>".to_owned()),
            created: Some("2024-01-02T03:04:05Z".to_owned()),
            architecture: None,
            os: None,
            clear: Vec::new(),
            extra_config: [
                "--config.cmd=/bin/sh",
                "--config.entrypoint=/usr/bin/env",
                "--config.workingdir=/srv",
                "--config.exposedports=8080/tcp",
                "--config.volume=/data",
                "--config.stopsignal=SIGTERM",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        }
    }
}

/// Builds an image with real umoci into the OCI layout `layout` (created with `umoci init` when
/// it does not exist yet) and returns the layout path; the image is tagged `spec.tag`.
///
/// With `spec.layers`, the image gets two layers made with `umoci unpack`/`umoci repack`
/// (`--rootless` when not root):
/// 1. `etc/hello`, `etc/gone`, `etc/olddir/file`, a symlink `etc/link -> hello`, an executable
///    `usr/bin/tool`, and a small copy of `/usr/share/doc/skopeo` when present;
/// 2. removes `etc/gone` and `etc/olddir` (whiteouts) and adds `etc/new`.
///
/// Then `umoci config` applies the spec's settings.
///
/// # Panics
/// When umoci fails.
pub fn umoci_image(layout: &Path, spec: &ImageSpec) -> PathBuf {
    let image = format!("{}:{}", layout.display(), spec.tag);
    if !layout.join("index.json").exists() {
        umoci(["init".as_ref(), "--layout".as_ref(), layout.as_os_str()]);
    }
    umoci(["new", "--image", &image]);
    if spec.layers {
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
        let rootfs = bundle.join("rootfs");
        write_first_layer(&rootfs);
        umoci([
            "repack".as_ref(),
            "--refresh-bundle".as_ref(),
            "--image".as_ref(),
            image.as_ref(),
            bundle.as_os_str(),
        ]);
        fs::remove_file(rootfs.join("etc/gone")).expect("removing etc/gone");
        fs::remove_dir_all(rootfs.join("etc/olddir")).expect("removing etc/olddir");
        fs::write(rootfs.join("etc/new"), b"new file in layer two\n").expect("writing etc/new");
        umoci([
            "repack".as_ref(),
            "--image".as_ref(),
            image.as_ref(),
            bundle.as_os_str(),
        ]);
    }
    let mut config: Vec<String> = vec!["config".into(), "--image".into(), image.clone()];
    for clear in &spec.clear {
        config.push(format!("--clear={clear}"));
    }
    for (key, value) in &spec.labels {
        config.push(format!("--config.label={key}={value}"));
    }
    for env in &spec.env {
        config.push(format!("--config.env={env}"));
    }
    let optional = [
        ("--config.user", &spec.user),
        ("--author", &spec.author),
        ("--created", &spec.created),
        ("--architecture", &spec.architecture),
        ("--os", &spec.os),
    ];
    for (flag, value) in optional {
        if let Some(value) = value {
            config.push(format!("{flag}={value}"));
        }
    }
    config.extend(spec.extra_config.iter().cloned());
    if config.len() > 3 {
        umoci(&config);
    }
    layout.to_path_buf()
}

fn write_first_layer(rootfs: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for dir in ["etc/olddir", "usr/bin", "usr/share/doc", "srv"] {
        fs::create_dir_all(rootfs.join(dir)).expect("creating rootfs dirs");
    }
    fs::write(rootfs.join("etc/hello"), b"hello from strata tests\n").expect("etc/hello");
    fs::write(rootfs.join("etc/gone"), b"removed in layer two\n").expect("etc/gone");
    fs::write(rootfs.join("etc/olddir/file"), b"also removed\n").expect("etc/olddir/file");
    std::os::unix::fs::symlink("hello", rootfs.join("etc/link")).expect("etc/link");
    let tool = rootfs.join("usr/bin/tool");
    fs::write(&tool, b"#!/bin/sh\necho tool\n").expect("usr/bin/tool");
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).expect("chmod tool");
    // A little real content from the machine, capped so the image stays tiny.
    let doc = Path::new("/usr/share/doc/skopeo");
    if let Ok(entries) = fs::read_dir(doc) {
        let target = rootfs.join("usr/share/doc/skopeo");
        fs::create_dir_all(&target).expect("creating doc dir");
        let mut budget: u64 = 64 * 1024;
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() && meta.len() <= budget {
                budget -= meta.len();
                fs::copy(entry.path(), target.join(entry.file_name())).expect("copying doc");
            }
        }
    }
}

/// The standard base image ([`ImageSpec::base`], tag `base`) built with umoci in `dir/base`;
/// returns the layout path. Each test builds its own (umoci takes ~50 ms).
pub fn base_image(dir: &Path) -> PathBuf {
    umoci_image(&dir.join("base"), &ImageSpec::base("base"))
}

/// `transport:path[suffix]` as one argument.
pub fn image_ref(transport: &str, path: &Path, suffix: &str) -> String {
    format!("{transport}:{}{suffix}", path.display())
}

/// The host architecture in OCI/Go spelling (`amd64`, `arm64`, …), as strata and skopeo
/// default to it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Builds a layout with amd64 and arm64 (variant v8 in index and config) images and an index
/// tagged `multi`; returns the layout and the two child manifests.
pub fn multi_arch_layout(dir: &Path) -> (OciLayout, Value, Value) {
    let layout = OciLayout::open(base_image(dir));
    let amd64 = layout.descriptor("base");
    let amd64_manifest = layout.manifest("base");
    // arm64 copy via umoci, then add the variant umoci cannot set.
    umoci([
        "config",
        "--image",
        &format!("{}:base", layout.root.display()),
        "--tag",
        "arm64",
        "--architecture",
        "arm64",
        "--config.label",
        "flavour=arm64",
    ]);
    let mut arm_manifest = layout.manifest("arm64");
    let mut config =
        layout.read_json_blob(arm_manifest["config"]["digest"].as_str().expect("config"));
    config["variant"] = json!("v8");
    arm_manifest["config"] = layout.add_json(OCI_CONFIG, &config);
    let arm64 = layout.add_json(OCI_MANIFEST, &arm_manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": amd64["digest"],
                "size": amd64["size"],
                "platform": {"architecture": "amd64", "os": "linux"}
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": arm64["digest"],
                "size": arm64["size"],
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}
            }
        ]
    });
    let index = layout.add_json(OCI_INDEX, &index);
    layout.set_tag("multi", &index);
    (layout, amd64_manifest, arm_manifest)
}
