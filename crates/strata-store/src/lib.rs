//! The layer store: a containers/storage-compatible overlay graph that strata, podman, buildah, skopeo and
//! CRI-O can share, safely across processes.
//!
//! This crate owns the on-disk store — a graph root `R` and a run root `RR` laid out exactly as
//! containers/storage's overlay driver lays them out (docs/FORMAT.md, "The layer store"):
//! - **metadata**: `overlay-layers/layers.json`, `overlay-images/images.json` with each image's big-data files
//!   (manifest, config, signatures, named by containers/storage's base64 rule), `overlay-containers/
//!   containers.json` (read only), `RR/overlay-layers/mountpoints.json`; field for field as containers/storage
//!   writes them ([`model`]), unknown fields kept;
//! - **layers**: `overlay/<id>/{diff,link,lower|empty,work,merged}`, `overlay/l/<26-char link>`, the
//!   `<id>.tar-split.gz` that rebuilds each layer's tar byte for byte (written by the layer engine's
//!   `strata_layer::tarsplit`, rebuilt from by [`tarsplit`]), and strata's own
//!   layer index as the layer big-data item `strata.index` ([`Store::layer_index`] builds it for layers
//!   other tools stored);
//! - **IDs** as containers/image makes them ([`layer_id`]): the same image pulled by podman and by strata is
//!   the same set of layers;
//! - **locks** interoperable with containers/storage: OFD `fcntl` locks on the same lock files, shared for
//!   readers and exclusive for writers, taken in the same order, the 64-byte last-write token written before
//!   the data, metadata replaced atomically, the `incomplete` flag set before a layer's files are touched and
//!   cleaned up by the next [`Store::open`];
//! - **operations**: [`Store::pull`] (layers unpacked in parallel, each indexed and tar-split in the same
//!   pass), [`Store::images`], [`Store::layers`], [`Store::remove_image`], [`Store::prune`], [`Store::fsck`],
//!   [`Store::mount_image`] / [`Store::unmount`] (kernel overlayfs, read-only, counted as podman counts), and
//!   the `containers-storage:` image source ([`StoreSource`], registered with the other transports by
//!   [`transports`]) and where a store lives by default ([`default_root`], [`default_runroot`]).
//!
//! **Must not depend on:** FUSE, the CLI, or any store-wide state in memory between calls (every operation
//! reloads under its locks). Never prints. The only `unsafe` is the `fcntl(F_OFD_SETLKW)` call in `sys.rs`.

mod error;
mod fsck;
mod fsutil;
mod ids;
mod layout;
mod lock;
pub mod model;
mod mounts;
mod paths;
mod pull;
mod source;
mod staging;
mod store;
mod sys;
pub mod tarsplit;
mod time;

pub use error::{Error, Result};
pub use fsck::{FsckOptions, FsckReport, Problem, Repair};
pub use ids::{big_data_file_name, chain_ids, layer_id};
pub use layout::Layout;
pub use lock::{TOKEN_SIZE, Token};
pub use mounts::{MountReport, is_mount_point, mount_points_under};
pub use paths::{
    PODMAN_ROOT, PODMAN_RUNROOT, containers_storage_default, default_root, default_runroot,
    user_run_dir,
};
pub use pull::{INDEX_BIG_DATA_KEY, PullEvent, PullOptions, PullReport, PulledLayer};
pub use source::{
    StoreSource, TRANSPORT, open_source, parse_reference, transport, transport_error,
    transport_store, transports,
};
pub use store::{
    Generation, ImageInfo, LayerInfo, Leftover, PruneReport, RemoveReport, Store, normalise_name,
};
pub use time::rfc3339_nano;
