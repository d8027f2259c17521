//! Helpers for the layer-store tests (`tests/store.rs`): a throw-away store shared by strata, podman and
//! containers-storage, and the commands that use it.
//!
//! The store lives in a temporary directory; dropping [`TestStore`] first unmounts everything mounted
//! under it (strata's and podman's image mounts, and the private bind mount podman makes of `overlay/`),
//! deepest first, then removes it.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::{parse_json, run, run_unchecked, strata_bin};

/// A temporary graph root and run root.
pub struct TestStore {
    dir: ScratchDir,
    /// The graph root.
    pub root: PathBuf,
    /// The run root.
    pub runroot: PathBuf,
}

impl Default for TestStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TestStore {
    /// A fresh, empty store location (nothing is created in it yet).
    ///
    /// # Panics
    /// When the temporary directory cannot be made.
    pub fn new() -> TestStore {
        let dir = ScratchDir::new();
        let root = dir.path().join("root");
        let runroot = dir.path().join("run");
        TestStore { dir, root, runroot }
    }

    /// The temporary directory everything lives in (for scratch files and mount points).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new directory `name` under [`TestStore::dir`].
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).expect("creating a scratch directory");
        p
    }

    /// `--root R --runroot RR`.
    pub fn strata_args(&self) -> Vec<OsString> {
        vec![
            "--root".into(),
            self.root.clone().into_os_string(),
            "--runroot".into(),
            self.runroot.clone().into_os_string(),
        ]
    }

    /// A `strata` command on this store.
    pub fn strata_cmd(&self) -> Command {
        let mut c = Command::new(strata_bin());
        c.args(self.strata_args());
        c
    }

    /// Runs strata on this store; success is not asserted.
    pub fn strata<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_unchecked(self.strata_cmd().args(args))
    }

    /// Runs strata on this store, which must succeed; returns stdout.
    ///
    /// # Panics
    /// When strata fails.
    pub fn strata_ok<I, S>(&self, args: I) -> Vec<u8>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.strata_cmd().args(args)).stdout
    }

    /// Runs strata with `--json`-style output and parses it.
    ///
    /// # Panics
    /// When strata fails or prints something that is not JSON.
    pub fn strata_json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.strata_ok(args);
        parse_json(&out, "strata output")
    }

    /// A `podman` command on this store (`--root R --runroot RR --storage-driver overlay`).
    pub fn podman_cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(["--storage-driver", "overlay", "--events-backend", "none"]);
        c
    }

    /// Runs podman on this store, which must succeed; returns stdout.
    ///
    /// # Panics
    /// When podman fails.
    pub fn podman_ok<I, S>(&self, args: I) -> Vec<u8>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.podman_cmd().args(args)).stdout
    }

    /// The IDs `podman images` lists, sorted.
    ///
    /// # Panics
    /// When podman fails or prints something unexpected.
    pub fn podman_image_ids(&self) -> Vec<String> {
        let out = self.podman_ok(["images", "--format", "json"]);
        let v = parse_json(&out, "podman images");
        let mut ids: Vec<String> = v
            .as_array()
            .expect("podman images --format json gives an array")
            .iter()
            .map(|i| i["Id"].as_str().expect("an image Id").to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// The IDs `strata images` lists, sorted.
    ///
    /// # Panics
    /// When strata fails.
    pub fn strata_image_ids(&self) -> Vec<String> {
        let v = self.strata_json(["images", "--json"]);
        let mut ids: Vec<String> = v
            .as_array()
            .expect("an array")
            .iter()
            .map(|i| i["id"].as_str().expect("an id").to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// A `containers-storage` command on this store.
    pub fn containers_storage_cmd(&self) -> Command {
        let mut c = Command::new("containers-storage");
        c.arg("--graph")
            .arg(&self.root)
            .arg("--run")
            .arg(&self.runroot)
            .args(["--storage-driver", "overlay"]);
        c
    }

    /// `containers-storage:[R+RR]image`.
    pub fn reference(&self, image: &str) -> String {
        format!(
            "containers-storage:[{}+{}]{image}",
            self.root.display(),
            self.runroot.display()
        )
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        unmount_all_under(self.dir.path());
        let _ = fs::remove_dir_all(self.dir.path());
    }
}

/// A temporary directory with an all-lowercase path (podman names an image pulled from `oci:PATH` after
/// PATH, and refuses upper case), removed by [`TestStore`]'s drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> ScratchDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Short: podman refuses run roots longer than 50 characters.
        let name = format!(
            "sst-{:x}{:x}-{}",
            std::process::id(),
            nanos & 0xfff,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir_all(&path).expect("creating a temporary directory");
        ScratchDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

/// Lazily unmounts everything mounted at or under `dir`, deepest first (`umount -l`).
pub fn unmount_all_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(&p).output();
    }
}
