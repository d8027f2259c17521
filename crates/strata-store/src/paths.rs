//! Where a store lives when the user names none: the default graph root and run root.

use std::path::{Path, PathBuf};

/// podman's graph root as root; with it, podman's run root is the default.
pub const PODMAN_ROOT: &str = "/var/lib/containers/storage";
/// podman's run root as root.
pub const PODMAN_RUNROOT: &str = "/run/containers/storage";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// strata's own graph root: `/var/lib/strata` as root, `$XDG_DATA_HOME/strata` (`~/.local/share/strata`)
/// otherwise. `--root /var/lib/containers/storage` shares podman's.
pub fn default_root() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/strata");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("strata"),
        None => home().join(".local/share/strata"),
    }
}

/// strata's per-user run-time directory: `/run/strata` as root, `$XDG_RUNTIME_DIR/strata` otherwise
/// (`$TMPDIR/strata-run-UID` without `XDG_RUNTIME_DIR`). The default run root, and where FUSE mount records
/// live.
pub fn user_run_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/run/strata")
    } else {
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d).join("strata"),
            None => std::env::temp_dir()
                .join(format!("strata-run-{}", rustix::process::getuid().as_raw())),
        }
    }
}

/// The run root (mount state) that goes with graph root `root` (`None`: the default root): the
/// [`user_run_dir`]; podman's run root with podman's graph root; for any other root, a subdirectory of the
/// user run directory named after it.
pub fn default_runroot(root: Option<&Path>) -> PathBuf {
    let base = user_run_dir();
    match root {
        None => base,
        Some(r) if r == Path::new(PODMAN_ROOT) => PathBuf::from(PODMAN_RUNROOT),
        Some(r) => {
            let abs = std::path::absolute(r).unwrap_or_else(|_| r.to_path_buf());
            let d = strata_oci::Digest::sha256(abs.to_string_lossy().as_bytes());
            base.join(&d.hex()[..16])
        }
    }
}
