//! `strata layer-store` run for a test or a benchmark: started with `--json` (it returns once mounted),
//! logging to a file, unmounted when dropped.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{parse_json, run, strata, strata_bin};

const TLS_OFF: &str = "--tls-verify=false";

/// A `strata layer-store` at `dir`, logging to `log`, unmounted when dropped.
pub struct LayerStore {
    /// The store's mount point.
    pub dir: PathBuf,
    log: PathBuf,
    /// The serving process.
    pub pid: u32,
}

impl LayerStore {
    /// Starts one at `work/als`, its cache at `work/cache` and log at `work/als.log`, with `extra` arguments.
    pub fn start(work: &Path, extra: &[&str]) -> LayerStore {
        LayerStore::start_with(Command::new(strata_bin()), work, extra)
    }

    /// `strata layer-store` run as `cmd` (a strata command: its environment, say).
    pub fn start_with(mut cmd: Command, work: &Path, extra: &[&str]) -> LayerStore {
        let dir = work.join("als");
        let cache = work.join("cache");
        fs::create_dir_all(&dir).unwrap();
        let log = work.join("als.log");
        cmd.args([
            "layer-store".to_owned(),
            "--json".to_owned(),
            TLS_OFF.to_owned(),
            format!("--cache-dir={}", cache.display()),
            format!("--log={}", log.display()),
        ]);
        cmd.args(extra).arg(&dir);
        let report = parse_json(&run(&mut cmd).stdout, "strata layer-store --json");
        LayerStore {
            pid: u32::try_from(report["pid"].as_u64().unwrap()).unwrap(),
            dir,
            log,
        }
    }

    /// `--storage-opt overlay.additionallayerstore=DIR:ref`.
    pub fn storage_opt(&self) -> String {
        format!("overlay.additionallayerstore={}:ref", self.dir.display())
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Each layer's last logged use count, by `REFERENCE DIGEST`.
    pub fn uses(&self) -> BTreeMap<String, u64> {
        let mut uses = BTreeMap::new();
        for line in self.log().lines() {
            let mut words = line.split(' ');
            let (Some(verb), Some(reference), Some(digest)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            if !matches!(verb, "use" | "release") {
                continue;
            }
            let count = words
                .find_map(|w| w.strip_prefix("uses="))
                .and_then(|n| n.parse().ok())
                .unwrap();
            uses.insert(format!("{reference} {digest}"), count);
        }
        uses
    }
}

impl Drop for LayerStore {
    fn drop(&mut self) {
        let _ = strata(["umount", self.dir.to_str().unwrap()]);
    }
}
