//! Where everything lives in a graph root `R` and a run root `RR` (the containers/storage overlay layout,
//! plus strata's own `RR/strata/`).

use std::path::{Path, PathBuf};

use crate::ids::big_data_file_name;

/// The paths of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    runroot: PathBuf,
}

impl Layout {
    /// The layout of graph root `root` and run root `runroot` (both absolute).
    pub fn new(root: &Path, runroot: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
            runroot: runroot.to_path_buf(),
        }
    }

    /// The graph root `R`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run root `RR`.
    pub fn runroot(&self) -> &Path {
        &self.runroot
    }

    /// `R/storage.lock`: taken first by every operation (shared by readers, exclusive by writers).
    pub fn storage_lock(&self) -> PathBuf {
        self.root.join("storage.lock")
    }

    /// `R/userns.lock` (created as containers/storage does; strata does not use it).
    pub fn userns_lock(&self) -> PathBuf {
        self.root.join("userns.lock")
    }

    /// `R/overlay`: the overlay driver's home.
    pub fn overlay(&self) -> PathBuf {
        self.root.join("overlay")
    }

    /// `R/overlay/l`: short links to layers' `diff` directories.
    pub fn links(&self) -> PathBuf {
        self.root.join("overlay").join("l")
    }

    /// `R/overlay/l/<link>`.
    pub fn link(&self, link: &str) -> PathBuf {
        self.links().join(link)
    }

    /// `R/overlay/<id>`.
    pub fn layer_dir(&self, id: &str) -> PathBuf {
        self.overlay().join(id)
    }

    /// `R/overlay/<id>/diff`: the layer's files.
    pub fn diff(&self, id: &str) -> PathBuf {
        self.layer_dir(id).join("diff")
    }

    /// `R/overlay/<id>/merged`: where the layer is mounted.
    pub fn merged(&self, id: &str) -> PathBuf {
        self.layer_dir(id).join("merged")
    }

    /// `R/overlay-layers`.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("overlay-layers")
    }

    /// `R/overlay-layers/layers.json`.
    pub fn layers_json(&self) -> PathBuf {
        self.layers_dir().join("layers.json")
    }

    /// `R/overlay-layers/volatile-layers.json` (written by containers/storage for volatile layers; strata
    /// reads it and never writes it).
    pub fn volatile_layers_json(&self) -> PathBuf {
        self.layers_dir().join("volatile-layers.json")
    }

    /// `R/overlay-layers/layers.lock`.
    pub fn layers_lock(&self) -> PathBuf {
        self.layers_dir().join("layers.lock")
    }

    /// `R/overlay-layers/<id>.tar-split.gz`.
    pub fn tar_split(&self, id: &str) -> PathBuf {
        self.layers_dir().join(format!("{id}.tar-split.gz"))
    }

    /// `R/overlay-layers/<id>`: the layer's big-data items.
    pub fn layer_data_dir(&self, id: &str) -> PathBuf {
        self.layers_dir().join(id)
    }

    /// The file of layer big-data item `key`.
    pub fn layer_big_data(&self, id: &str, key: &str) -> PathBuf {
        self.layer_data_dir(id).join(big_data_file_name(key))
    }

    /// `R/overlay-images`.
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("overlay-images")
    }

    /// `R/overlay-images/images.json`.
    pub fn images_json(&self) -> PathBuf {
        self.images_dir().join("images.json")
    }

    /// `R/overlay-images/images.lock`.
    pub fn images_lock(&self) -> PathBuf {
        self.images_dir().join("images.lock")
    }

    /// `R/overlay-images/<id>`: the image's big-data items.
    pub fn image_data_dir(&self, id: &str) -> PathBuf {
        self.images_dir().join(id)
    }

    /// The file of image big-data item `key`.
    pub fn image_big_data(&self, id: &str, key: &str) -> PathBuf {
        self.image_data_dir(id).join(big_data_file_name(key))
    }

    /// `R/overlay-containers`.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("overlay-containers")
    }

    /// `R/overlay-containers/containers.json`.
    pub fn containers_json(&self) -> PathBuf {
        self.containers_dir().join("containers.json")
    }

    /// `R/overlay-containers/volatile-containers.json` (read, never written).
    pub fn volatile_containers_json(&self) -> PathBuf {
        self.containers_dir().join("volatile-containers.json")
    }

    /// `R/overlay-containers/containers.lock`.
    pub fn containers_lock(&self) -> PathBuf {
        self.containers_dir().join("containers.lock")
    }

    /// `RR/overlay-layers/mountpoints.json`.
    pub fn mountpoints_json(&self) -> PathBuf {
        self.runroot.join("overlay-layers").join("mountpoints.json")
    }

    /// `RR/overlay-layers/mountpoints.lock` (nested inside the layers lock).
    pub fn mountpoints_lock(&self) -> PathBuf {
        self.runroot.join("overlay-layers").join("mountpoints.lock")
    }

    /// `RR/strata/mounts.json`: the directories `strata mount` bound to layer mounts.
    pub fn binds_json(&self) -> PathBuf {
        self.runroot.join("strata").join("mounts.json")
    }

    /// `R/overlay/staging`: layers being unpacked by a pull, before they enter the store (containers/storage's
    /// own staging directory: inside the overlay home, which may be a mount point of its own, so that the
    /// final rename stays on one mount).
    pub fn staging(&self) -> PathBuf {
        self.overlay().join("staging")
    }
}
