//! strata's FUSE file system: any image mounted read-only as one merged tree, with nothing unpacked.
//!
//! This crate owns the FUSE file system over an image's merged layer indexes and the mounts made with it:
//!
//! * [`Tree`]: the inode table, built once at mount time from [`strata_index::MergedView`] (whiteouts, opaque
//!   directories and type changes already applied): stable inode numbers, hardlinks sharing one inode with
//!   the right link count, and every attribute a request needs in flat arrays.
//! * File bytes come from the layer engine's [`strata_layer::Contents`] providers, the same the scanner
//!   reads through: the compressed blobs through their checkpoints (piece cache, read-ahead), or a store's
//!   `diff` directories. The tree and the file system serve a merged image or a single layer alike (a
//!   [`strata_index::MergedView`] of one index).
//! * [`ImageFs`]: the `fuser` low-level file system (long TTLs, zero-message or `KEEP_CACHE`/`CACHE_DIR`
//!   opens, READDIRPLUS, several threads), errors mapped to errnos at the boundary.
//! * [`mount()`] / [`Mounted::serve`] / [`unmount`]: `ro,nosuid,nodev` mounts of type `fuse.strata` where
//!   the kernel enforces the image's modes and owners (`default_permissions`), by mount(2) as root and
//!   `fusermount3` otherwise.
//! * [`LayerStore`] (`als`): containers/storage's Additional Layer Store, each layer of a registry image
//!   served as its own tree in overlayfs's form, with its layer record and blob, uses counted.
//! * [`Records`]: the mount records `strata mounts` lists, cleaned up when their serving process died, and
//!   the per-directory locks ([`MountLock`]) that make checking a directory and mounting there one step.
//!
//! **Invariants:** read-only; no data from an image causes a panic; the library never prints (the CLI
//! decides what a serving process says). **Must not depend on:** the store's write side, the CLI.

pub mod als;
mod error;
mod fs;
mod mount;
mod record;
mod tree;

pub use als::{LayerStore, LayerUse, SourceOpener, StoreLog, StoreOptions};
pub use error::{Error, Result};
pub use fs::{FsOptions, ImageFs, Summary, TTL};
pub use mount::{
    FS_TYPE, MountOptions, Mounted, absolute, is_strata_mount, mount, mount_type, unmount,
};
pub use record::{
    MODE_FUSE, MODE_OVERLAY, MountLock, MountRecord, RECORD_VERSION, Records, cleanup_dead_mount,
    is_dead_mount, process_start,
};
pub use tree::{ROOT_INO, Tree};
