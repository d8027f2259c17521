//! Where a store lives when the user names none: the default graph root and run root.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

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
///
/// `$TMPDIR/strata-run-UID` is in a directory every user can write, so another user could make it first and
/// plant or read locks and mount records there: it is made mode 0700 if missing, and refused
/// ([`Error::RunDir`]), as podman refuses its `podman-run-UID`, unless it is a directory (not a symbolic
/// link) of this user's with no access for others.
pub fn user_run_dir() -> Result<PathBuf> {
    if is_root() {
        return Ok(PathBuf::from("/run/strata"));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d).join("strata"));
    }
    let uid = rustix::process::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("strata-run-{uid}"));
    check_private_dir(&dir, uid)?;
    Ok(dir)
}

/// Makes `dir` (mode 0700) if missing, and checks that it is a directory of user `uid` closed to others.
fn check_private_dir(dir: &Path, uid: u32) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(dir, e)),
    }
    let meta = fs::symlink_metadata(dir).at(dir)?;
    let refuse = |reason: String| {
        Err(Error::RunDir {
            path: dir.to_path_buf(),
            reason,
        })
    };
    if !meta.is_dir() {
        return refuse("not a directory (a symbolic link?)".into());
    }
    if meta.uid() != uid {
        return refuse(format!(
            "it belongs to {}, not to you, {}",
            user_name(meta.uid()),
            user_name(uid)
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return refuse(format!(
            "its mode is {:04o}, open to other users (it must be 0700: chmod 700 it)",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// `NAME (uid N)` from /etc/passwd, or `uid N`.
fn user_name(uid: u32) -> String {
    let name = fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
        })
    });
    match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// The run root (mount state) that goes with graph root `root` (`None`: the default root): the
/// [`user_run_dir`]; podman's run root with podman's graph root; for any other root, a subdirectory of the
/// user run directory named after it.
pub fn default_runroot(root: Option<&Path>) -> Result<PathBuf> {
    match root {
        Some(r) if r == Path::new(PODMAN_ROOT) => Ok(PathBuf::from(PODMAN_RUNROOT)),
        None => user_run_dir(),
        Some(r) => {
            let abs = std::path::absolute(r).unwrap_or_else(|_| r.to_path_buf());
            let d = strata_oci::Digest::sha256(abs.to_string_lossy().as_bytes());
            Ok(user_run_dir()?.join(&d.hex()[..16]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_run_dir_must_be_private() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let dir = tmp.path().join("run");
        check_private_dir(&dir, uid).unwrap();
        let meta = fs::symlink_metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o700);
        check_private_dir(&dir, uid).unwrap();
        // Someone else's.
        let err = check_private_dir(&dir, uid + 1).unwrap_err().to_string();
        assert!(
            err.contains(&dir.display().to_string()) && err.contains("belongs to"),
            "{err}"
        );
        // Open to others.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_private_dir(&dir, uid).unwrap_err().to_string();
        assert!(err.contains("0755"), "{err}");
        // A symbolic link to a directory of one's own.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let err = check_private_dir(&link, uid).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}

/// The storage.conf strata reads for containers/storage's default store, in containers/storage's order:
/// `$CONTAINERS_STORAGE_CONF`; for a non-root user `$XDG_CONFIG_HOME/containers/storage.conf`
/// (`~/.config/…`) if it exists; then `/etc/containers/storage.conf`, else `/usr/share/containers/storage.conf`.
/// Each comes with whether it is the user's own (its graphroot and runroot apply to a non-root user).
fn storage_conf_files() -> Vec<(PathBuf, bool)> {
    if let Some(f) = std::env::var_os("CONTAINERS_STORAGE_CONF").filter(|v| !v.is_empty()) {
        return vec![(PathBuf::from(f), true)];
    }
    let mut files = Vec::new();
    if !is_root() {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map_or_else(|| home().join(".config"), PathBuf::from);
        files.push((config.join("containers/storage.conf"), true));
    }
    files.push((PathBuf::from("/etc/containers/storage.conf"), false));
    files.push((PathBuf::from("/usr/share/containers/storage.conf"), false));
    files
}

/// The `[storage]` table of a storage.conf: the keys that place the store.
#[derive(Debug, Default, serde::Deserialize)]
struct StorageConf {
    #[serde(default)]
    storage: StorageTable,
}

#[derive(Debug, Default, serde::Deserialize)]
struct StorageTable {
    graphroot: Option<PathBuf>,
    runroot: Option<PathBuf>,
    rootless_storage_path: Option<PathBuf>,
}

/// containers/storage's own default store — what `containers-storage:NAME` means to skopeo and podman —
/// as (graph root, run root): the first storage.conf that exists decides ($CONTAINERS_STORAGE_CONF,
/// the user's own, `/etc/containers/`, `/usr/share/containers/`);
/// without one, `/var/lib/containers/storage` and `/run/containers/storage` as root, and
/// `$XDG_DATA_HOME/containers/storage` (or the system file's `rootless_storage_path`) with
/// `$XDG_RUNTIME_DIR/containers` otherwise. A storage.conf that cannot be parsed is an error naming it.
pub fn containers_storage_default() -> Result<(PathBuf, PathBuf)> {
    let mut conf = StorageConf::default();
    let mut from_user_file = false;
    for (path, users) in storage_conf_files() {
        match fs::read_to_string(&path) {
            Ok(text) => {
                conf = toml::from_str(&text).map_err(|e| Error::Invalid {
                    what: path.display().to_string(),
                    reason: format!("not a valid storage.conf: {e}"),
                })?;
                from_user_file = users;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    let StorageTable {
        graphroot,
        runroot,
        rootless_storage_path,
    } = conf.storage;
    if is_root() {
        return Ok((
            graphroot.unwrap_or_else(|| PathBuf::from(PODMAN_ROOT)),
            runroot.unwrap_or_else(|| PathBuf::from(PODMAN_RUNROOT)),
        ));
    }
    // A non-root user: the system file's graphroot and runroot are root's, not theirs.
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map_or_else(|| home().join(".local/share"), PathBuf::from);
    let graph = match (from_user_file, graphroot) {
        (true, Some(g)) => g,
        _ => rootless_storage_path.unwrap_or_else(|| data.join("containers/storage")),
    };
    let run = match (from_user_file, runroot) {
        (true, Some(r)) => r,
        _ => match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d).join("containers"),
            None => std::env::temp_dir().join(format!(
                "containers-user-{}",
                rustix::process::getuid().as_raw()
            )),
        },
    };
    Ok((graph, run))
}
