//! A listing of a directory tree for comparing unpacked root filesystems: every entry's kind, mode,
//! owner, size, content hash, link target, device numbers, xattrs and hardlink group.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// What a tree listing records of one entry. Paths are relative, as raw bytes rendered lossily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `file`, `dir`, `symlink`, `char`, `block`, `fifo` or `socket`.
    pub kind: &'static str,
    /// `mode & 0o7777`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size of regular files (0 otherwise).
    pub size: u64,
    /// sha256 of regular files' content.
    pub sha256: String,
    /// Symlink target.
    pub link: String,
    /// Device numbers of devices.
    pub rdev: (u32, u32),
    /// Extended attributes other than `security.selinux`, sorted.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// For files with several links: the first path (sorted) of the group.
    pub hardlink_group: String,
}

/// Lists the tree under `root` (not `root` itself), never following symlinks.
pub fn listing(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    walk(root, root, &mut out, &mut inodes);
    for paths in inodes.values_mut() {
        paths.sort();
        let first = paths[0].clone();
        for p in paths.iter() {
            if let Some(node) = out.get_mut(p) {
                node.hardlink_group = first.clone();
            }
        }
    }
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, Node>,
    inodes: &mut HashMap<(u64, u64), Vec<String>>,
) {
    let mut children: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    children.sort();
    for path in children {
        let meta = fs::symlink_metadata(&path).expect("lstat");
        let rel = String::from_utf8_lossy(
            path.strip_prefix(root)
                .expect("inside")
                .as_os_str()
                .as_bytes(),
        )
        .into_owned();
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            "file"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        let mut node = Node {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: 0,
            sha256: String::new(),
            link: String::new(),
            rdev: (0, 0),
            xattrs: xattrs(&path),
            hardlink_group: String::new(),
        };
        match kind {
            "file" => {
                node.size = meta.len();
                let bytes = fs::read(&path).expect("reading file");
                node.sha256 = Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                if meta.nlink() > 1 {
                    inodes
                        .entry((meta.dev(), meta.ino()))
                        .or_default()
                        .push(rel.clone());
                }
            }
            "symlink" => {
                node.link = String::from_utf8_lossy(
                    fs::read_link(&path)
                        .expect("readlink")
                        .as_os_str()
                        .as_bytes(),
                )
                .into_owned();
            }
            "char" | "block" => {
                let rdev = meta.rdev();
                node.rdev = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
            }
            _ => {}
        }
        let is_dir = kind == "dir";
        out.insert(rel, node);
        if is_dir {
            walk(root, &path, out, inodes);
        }
    }
}

fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut names = vec![0u8; 64 << 10];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name == b"security.selinux" {
            continue;
        }
        let mut value = vec![0u8; 64 << 10];
        let name_str = std::str::from_utf8(name).expect("xattr name").to_owned();
        if let Ok(len) = rustix::fs::lgetxattr(path, name_str.as_str(), &mut value) {
            value.truncate(len);
            out.insert(name_str, value);
        }
    }
    out
}

/// Asserts two listings are equal, printing at most 20 differences (path: left vs right) otherwise.
pub fn assert_same_tree(left: &BTreeMap<String, Node>, right: &BTreeMap<String, Node>, what: &str) {
    let mut diffs = Vec::new();
    for (path, l) in left {
        match right.get(path) {
            None => diffs.push(format!("{path}: only in {what} left")),
            Some(r) if r != l => diffs.push(format!("{path}:\n    left  {l:?}\n    right {r:?}")),
            Some(_) => {}
        }
    }
    for path in right.keys().filter(|p| !left.contains_key(*p)) {
        diffs.push(format!("{path}: only in {what} right"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences (of {} / {} entries):\n{}",
        diffs.len(),
        left.len(),
        right.len(),
        diffs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
