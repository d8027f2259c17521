//! Kernel overlay mounts of images, recorded as containers/storage records them.
//!
//! An image is mounted the way `podman image mount` mounts it: its top layer, read-only, at
//! `overlay/<top>/merged`, with `lowerdir=<top>/diff:<the lower chain of l/ short links>` (`<top>/diff:<top>/empty`
//! for a single layer), counted in `RR/overlay-layers/mountpoints.json` (`{"id","path","count"}`). The
//! directory the user asked for is a read-only bind mount of that, recorded in `RR/strata/mounts.json`, and
//! holds one count. So podman and strata share one mount of an image, and neither removes an image the
//! other has mounted.
//!
//! When the mount data outgrows a page (about 50 layers with absolute paths), the paths are made relative
//! to the driver's home and the mount is made from there, as containers/storage's `mountfrom` helper does;
//! when even that is too long (about 140 layers), the lower layers are given one by one through the new
//! mount API (`fsconfig` `lowerdir+`, Linux ≥ 6.8).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::mount::{self as rmount, MountFlags, UnmountFlags};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{read_optional, write_atomic_mkdir};
use crate::layout::Layout;
use crate::lock::Lock;
use crate::model::{BindRecord, MountRecord};
use crate::store::{Store, short};

/// What [`Store::mount_image`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MountReport {
    /// The image ID.
    pub image: String,
    /// The mounted (top) layer.
    pub layer: String,
    /// The directory the image is now visible at.
    pub dir: String,
    /// The layer's overlay mount (`overlay/<layer>/merged`), shared with podman.
    pub layer_mount: String,
    /// How many users the layer mount has now.
    pub count: i64,
}

impl Store {
    /// Mounts image `name` read-only at `dir` (an existing directory) through overlayfs, as `podman image
    /// mount` does, sharing and counting the layer mount in `mountpoints.json` (docs/FORMAT.md, "The layer store").
    /// While mounted, [`Store::remove_image`] refuses the image. Needs `CAP_SYS_ADMIN`.
    pub fn mount_image(&self, name: &str, dir: &Path) -> Result<MountReport> {
        let dir = fs::canonicalize(dir).at(dir)?;
        if !fs::metadata(&dir).at(&dir)?.is_dir() {
            return Err(Error::mount(&dir, "not a directory"));
        }
        if is_mount_point(&dir)? {
            return Err(Error::mount(&dir, "already a mount point"));
        }
        let tx = self.write()?;
        let i = tx.find_image(name)?;
        let image = tx.images[i].clone();
        let top = image.top_layer.clone();
        let chain = tx.chain(&top);
        let complete = chain.first().is_some_and(|l| l.id == top)
            && chain.iter().all(|l| !l.is_incomplete())
            && chain.last().is_some_and(|l| l.parent().is_none());
        if !complete {
            return Err(Error::damaged(
                &top,
                format!(
                    "the layers of image {} are not all in the store",
                    short(&image.id)
                ),
            ));
        }
        // Short links lost (containers/storage recreates them too): the mount needs every one.
        for layer in &chain {
            crate::fsck::ensure_link(self, &layer.id)?;
        }
        let lower = read_optional(&self.layout().layer_dir(&top).join("lower"))?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut mounts = tx.lock_mounts()?;
        let merged = mounts.acquire_layer(&top, &lower)?;
        if let Err(e) = mounts.bind(&merged, &dir, &top, &image.id) {
            mounts.release_layer(&top)?;
            mounts.save()?;
            return Err(e);
        }
        mounts.save()?;
        Ok(MountReport {
            image: image.id,
            layer: top.clone(),
            dir: dir.to_string_lossy().into_owned(),
            layer_mount: merged.to_string_lossy().into_owned(),
            count: mounts.record(&top).map_or(0, |r| r.count),
        })
    }

    /// Unmounts a directory [`Store::mount_image`] mounted, giving back its count on the layer mount (the
    /// last count unmounts that too).
    pub fn unmount(&self, dir: &Path) -> Result<BindRecord> {
        let dir = fs::canonicalize(dir)
            .unwrap_or_else(|_| std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
        let tx = self.write()?;
        let mut mounts = tx.lock_mounts()?;
        let bind = mounts.unbind(&dir)?;
        mounts.save()?;
        Ok(bind)
    }

    /// The directories strata has mounted images at.
    pub fn mounts(&self) -> Result<Vec<BindRecord>> {
        let tx = self.read()?;
        let mounts = tx.lock_mounts_shared()?;
        Ok(mounts)
    }
}

/// `mountpoints.json` and strata's bind records, under the exclusive `mountpoints.lock`.
pub(crate) struct Mounts {
    layout: Layout,
    lock: Lock,
    pub(crate) records: Vec<MountRecord>,
    pub(crate) binds: Vec<BindRecord>,
    dirty: bool,
}

impl Mounts {
    pub(crate) fn new(
        layout: Layout,
        lock: Lock,
        records: Vec<MountRecord>,
        binds: Vec<BindRecord>,
    ) -> Mounts {
        Mounts {
            layout,
            lock,
            records,
            binds,
            dirty: false,
        }
    }

    /// Writes both files (the lock's last-write token first) if anything changed.
    pub(crate) fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.records.retain(|r| r.count > 0 && !r.path.is_empty());
        self.lock.record_write()?;
        let path = self.layout.mountpoints_json();
        let data = serde_json::to_vec(&self.records)
            .map_err(std::io::Error::other)
            .at(&path)?;
        write_atomic_mkdir(&path, &data, 0o600)?;
        let path = self.layout.binds_json();
        let data = serde_json::to_vec(&self.binds)
            .map_err(std::io::Error::other)
            .at(&path)?;
        write_atomic_mkdir(&path, &data, 0o600)?;
        self.dirty = false;
        Ok(())
    }

    /// The record of layer `id`.
    pub(crate) fn record(&self, id: &str) -> Option<&MountRecord> {
        self.records.iter().find(|r| r.id == id)
    }

    /// Takes one count on layer `top`'s read-only mount, mounting it at `overlay/<top>/merged` if it is not
    /// mounted (a stale record, whose mount is gone, starts over). `lower` is the layer's `lower` file
    /// content (empty for a base layer). Returns the mount point.
    pub(crate) fn acquire_layer(&mut self, top: &str, lower: &str) -> Result<PathBuf> {
        let merged = self.layout.merged(top);
        if let Some(r) = self.records.iter_mut().find(|r| r.id == top)
            && r.count > 0
            && is_mount_point(Path::new(&r.path))?
        {
            r.count += 1;
            self.dirty = true;
            return Ok(PathBuf::from(&r.path));
        }
        fs::create_dir_all(&merged).at(&merged)?;
        ensure_private_home(&self.layout.overlay())?;
        mount_overlay_ro(&self.layout.overlay(), top, lower, &merged)?;
        self.records.retain(|r| r.id != top);
        self.records.push(MountRecord {
            id: top.to_owned(),
            path: merged.to_string_lossy().into_owned(),
            count: 1,
        });
        self.dirty = true;
        Ok(merged)
    }

    /// Gives back one count on layer `id`'s mount; the last one unmounts it (lazily, as containers/storage
    /// does). A layer without a record is left alone.
    pub(crate) fn release_layer(&mut self, id: &str) -> Result<()> {
        let Some(pos) = self.records.iter().position(|r| r.id == id) else {
            return Ok(());
        };
        self.dirty = true;
        if self.records[pos].count > 1 {
            self.records[pos].count -= 1;
            return Ok(());
        }
        let path = PathBuf::from(&self.records[pos].path);
        unmount_quietly(&path, true)?;
        self.records.remove(pos);
        Ok(())
    }

    /// Binds `dir` (read-only) to layer `top`'s mount at `source` and records it.
    pub(crate) fn bind(&mut self, source: &Path, dir: &Path, top: &str, image: &str) -> Result<()> {
        rmount::mount_bind(source, dir)
            .map_err(|e| Error::mount(dir, format!("bind mount of {}: {e}", source.display())))?;
        if let Err(e) = rmount::mount_remount(dir, MountFlags::BIND | MountFlags::RDONLY, "") {
            let _ = rmount::unmount(dir, UnmountFlags::DETACH);
            return Err(Error::mount(
                dir,
                format!("making the bind mount read-only: {e}"),
            ));
        }
        self.binds.push(BindRecord {
            dir: dir.to_string_lossy().into_owned(),
            layer: top.to_owned(),
            image: image.to_owned(),
        });
        self.dirty = true;
        Ok(())
    }

    /// Undoes the bind at `dir` and gives back its count. Fails if `dir` is not a strata mount.
    pub(crate) fn unbind(&mut self, dir: &Path) -> Result<BindRecord> {
        let key = dir.to_string_lossy();
        let Some(pos) = self.binds.iter().position(|b| b.dir == key) else {
            return Err(Error::mount(dir, "not mounted by strata"));
        };
        unmount_quietly(dir, false)?;
        let bind = self.binds.remove(pos);
        self.dirty = true;
        self.release_layer(&bind.layer)?;
        Ok(bind)
    }

    /// Unmounts layer `id` wherever it is mounted: strata's binds of it, then the layer mount itself,
    /// whatever its count. Returns the paths unmounted.
    pub(crate) fn unmount_layer_everywhere(&mut self, id: &str) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let dirs: Vec<String> = self
            .binds
            .iter()
            .filter(|b| b.layer == id)
            .map(|b| b.dir.clone())
            .collect();
        for d in dirs {
            unmount_quietly(Path::new(&d), true)?;
            self.binds.retain(|b| b.dir != d);
            done.push(d);
        }
        if let Some(pos) = self.records.iter().position(|r| r.id == id) {
            let path = self.records[pos].path.clone();
            unmount_quietly(Path::new(&path), true)?;
            self.records.remove(pos);
            done.push(path);
        }
        self.dirty = true;
        Ok(done)
    }

    /// Marks the records changed (after a caller edited them).
    pub(crate) fn touch(&mut self) {
        self.dirty = true;
    }
}

/// Makes the driver's home a private mount point, as containers/storage's overlay driver does at start-up
/// (`mount.MakePrivate(home)`: bind it onto itself if it is not a mount point, then mark it private). Layer
/// mounts then live inside that one mount; were it created later (by podman) on top of them, they would be
/// hidden under it and their directories stay busy.
fn ensure_private_home(home: &Path) -> Result<()> {
    if !is_mount_point(home)? {
        rmount::mount_bind(home, home).map_err(|e| {
            Error::mount(
                home,
                format!("bind mount of the overlay home onto itself: {e}"),
            )
        })?;
    }
    rmount::mount_change(home, rmount::MountPropagationFlags::PRIVATE)
        .map_err(|e| Error::mount(home, format!("making the overlay home private: {e}")))
}

/// Unmounts `path`; fine if it is not mounted (or gone). `lazy`: `MNT_DETACH`.
pub(crate) fn unmount_quietly(path: &Path, lazy: bool) -> Result<()> {
    let flags = if lazy {
        UnmountFlags::DETACH
    } else {
        UnmountFlags::empty()
    };
    match rmount::unmount(path, flags) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::mount(path, format!("unmount: {e}"))),
    }
}

/// Lazily unmounts (`MNT_DETACH`) everything mounted at or under `dir`, deepest first, each of several
/// mounts stacked on one point included; fine if nothing is.
///
/// For a directory about to be removed, as containers/storage's `EnsureRemoveAll` unmounts what is in its
/// way: a `strata mount` or `podman image mount` killed between mounting a layer and saving its record
/// leaves `overlay/<id>/merged` mounted with nothing accounting for it. Removing the layer must not descend
/// into that mount (its files are not the layer's, and it is read-only) nor fail on it — a failed removal
/// leaves the layer flagged incomplete, and every later open would fail trying to finish it.
pub(crate) fn unmount_all_under(dir: &Path) -> Result<()> {
    // mountinfo has the kernel's paths: symbolic links resolved.
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    // Each round detaches every mount it sees; a detached mount takes those below it along, so one round
    // is enough unless another process mounts there meanwhile.
    for _ in 0..4 {
        let mut points = mount_points_under(&dir)?;
        if points.is_empty() {
            return Ok(());
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in &points {
            unmount_quietly(p, true)?;
        }
    }
    Ok(())
}

/// Whether `path` is a mount point of this mount namespace (`/proc/self/mountinfo`).
pub fn is_mount_point(path: &Path) -> Result<bool> {
    let info = fs::read("/proc/self/mountinfo").at("/proc/self/mountinfo")?;
    let want = path.to_string_lossy();
    Ok(String::from_utf8_lossy(&info).lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp) == want)
    }))
}

/// Every mount point under `dir` (inclusive), from `/proc/self/mountinfo`.
pub fn mount_points_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let info = fs::read("/proc/self/mountinfo").at("/proc/self/mountinfo")?;
    Ok(String::from_utf8_lossy(&info)
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(unescape_mountinfo))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serialises the working-directory change of the relative-path fallback within this process.
static CHDIR: Mutex<()> = Mutex::new(());

/// The lower directories of a read-only mount of `top`, relative to the driver's home: `<top>/diff`, then the
/// `lower` file's `l/…` entries (or `<top>/empty` for a base layer).
fn lower_dirs(top: &str, lower: &str) -> Vec<String> {
    let mut dirs = vec![format!("{top}/diff")];
    if lower.trim().is_empty() {
        dirs.push(format!("{top}/empty"));
    } else {
        dirs.extend(
            lower
                .trim()
                .split(':')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    dirs
}

/// Mounts layer `top` read-only at `target` (see the module docs for the three ways).
fn mount_overlay_ro(home: &Path, top: &str, lower: &str, target: &Path) -> Result<()> {
    let dirs = lower_dirs(top, lower);
    if dirs.len() > 500 {
        return Err(Error::mount(
            target,
            "max depth exceeded (more than 500 layers)",
        ));
    }
    let page = rustix::param::page_size();
    let home_s = home.to_string_lossy();
    let absolute = format!(
        "lowerdir={}",
        dirs.iter()
            .map(|d| format!("{home_s}/{d}"))
            .collect::<Vec<_>>()
            .join(":")
    );
    if absolute.len() < page {
        let data = cstring(target, &absolute)?;
        return rmount::mount(
            "overlay",
            target,
            "overlay",
            MountFlags::RDONLY,
            Some(data.as_c_str()),
        )
        .map_err(|e| Error::mount(target, format!("overlay mount ({absolute}): {e}")));
    }
    let relative = format!("lowerdir={}", dirs.join(":"));
    if relative.len() < page {
        let _guard = CHDIR.lock().unwrap_or_else(|p| p.into_inner());
        let saved = std::env::current_dir().ok();
        std::env::set_current_dir(home).at(home)?;
        let data = cstring(target, &relative)?;
        let result = rmount::mount(
            "overlay",
            target,
            "overlay",
            MountFlags::RDONLY,
            Some(data.as_c_str()),
        );
        if let Some(saved) = saved {
            let _ = std::env::set_current_dir(saved);
        }
        return result
            .map_err(|e| Error::mount(target, format!("overlay mount (relative lowerdir): {e}")));
    }
    mount_overlay_fsconfig(home, &dirs, target)
}

fn cstring(target: &Path, s: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| Error::mount(target, "a path with a NUL byte"))
}

/// The new mount API: one `lowerdir+` per layer, so the option string has no length limit.
fn mount_overlay_fsconfig(home: &Path, dirs: &[String], target: &Path) -> Result<()> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
    let err = |what: &str, e: rustix::io::Errno| Error::mount(target, format!("{what}: {e}"));
    let fs = rmount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| err("fsopen overlay", e))?;
    for d in dirs {
        let p = home.join(d);
        rmount::fsconfig_set_string(&fs, "lowerdir+", p.as_path()).map_err(|e| {
            err(
                "overlay lowerdir+ (needs Linux 6.8 for more than ~140 layers)",
                e,
            )
        })?;
    }
    rmount::fsconfig_set_flag(&fs, "ro").map_err(|e| err("overlay ro", e))?;
    rmount::fsconfig_create(&fs).map_err(|e| err("creating the overlay", e))?;
    let mnt = rmount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )
    .map_err(|e| err("fsmount", e))?;
    rmount::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| err("move_mount", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers() {
        assert_eq!(lower_dirs("a", ""), vec!["a/diff", "a/empty"]);
        assert_eq!(lower_dirs("a", "l/X:l/Y"), vec!["a/diff", "l/X", "l/Y"]);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
