//! The records of `layers.json`, `images.json`, `containers.json` and `mountpoints.json`, field for field
//! as containers/storage writes them (`layers.go` `Layer`, `images.go` `Image`, `containers.go`
//! `Container`, `layerMountPoint`).
//!
//! Fields strata does not know (a newer containers/storage's) are kept in `extra` and written back
//! unchanged, so strata never drops what podman stored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `incomplete` flag: set on a layer before its files are touched, cleared when they are complete. A
/// layer that still has it when a store is opened is removed (by strata and by containers/storage).
pub const INCOMPLETE_FLAG: &str = "incomplete";

/// A user-namespace ID mapping (`idtools.IDMap`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// First ID in the container.
    pub container_id: i64,
    /// First ID on the host.
    pub host_id: i64,
    /// How many IDs.
    pub size: i64,
}

/// One layer of `layers.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The layer ID (64 hex digits; see [`crate::layer_id`]).
    pub id: String,
    /// Names (unique among layers); image layers usually have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The parent layer's ID; empty for a base layer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// Caller data.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// SELinux mount label.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mountlabel: String,
    /// When the layer was created (RFC 3339, nanoseconds).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created: String,
    /// Digest of the blob as it was received (compressed).
    #[serde(
        rename = "compressed-diff-digest",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub compressed_diff_digest: String,
    /// Size of the blob as received.
    #[serde(rename = "compressed-size", default, skip_serializing_if = "is_zero")]
    pub compressed_size: i64,
    /// Digest of the uncompressed tar: the diff ID.
    #[serde(
        rename = "diff-digest",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub diff_digest: String,
    /// Digest of a zstd:chunked table of contents (partial pulls; strata never sets it).
    #[serde(
        rename = "toc-digest",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub toc_digest: String,
    /// Size of the uncompressed tar.
    #[serde(rename = "diff-size", default, skip_serializing_if = "is_zero")]
    pub diff_size: i64,
    /// Compression of the received blob: 0 none, 1 bzip2, 2 gzip, 3 xz, 4 zstd.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub compression: i64,
    /// The UIDs owning entries of the layer (whiteouts excepted), sorted.
    #[serde(rename = "uidset", default, skip_serializing_if = "Vec::is_empty")]
    pub uids: Vec<u32>,
    /// The GIDs owning entries of the layer (whiteouts excepted), sorted.
    #[serde(rename = "gidset", default, skip_serializing_if = "Vec::is_empty")]
    pub gids: Vec<u32>,
    /// Flags, e.g. `{"incomplete": true}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub flags: Map<String, Value>,
    /// UID mapping of a layer prepared for a user namespace.
    #[serde(rename = "uidmap", default, skip_serializing_if = "Vec::is_empty")]
    pub uid_map: Vec<IdMap>,
    /// GID mapping of a layer prepared for a user namespace.
    #[serde(rename = "gidmap", default, skip_serializing_if = "Vec::is_empty")]
    pub gid_map: Vec<IdMap>,
    /// Keys of the layer's big-data items (files in `overlay-layers/<id>/`).
    #[serde(
        rename = "big-data-names",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub big_data_names: Vec<String>,
    /// Fields strata does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl LayerRecord {
    /// Whether the layer carries the `incomplete` flag.
    pub fn is_incomplete(&self) -> bool {
        self.flags.get(INCOMPLETE_FLAG) == Some(&Value::Bool(true))
    }

    /// The parent's ID, if any.
    pub fn parent(&self) -> Option<&str> {
        (!self.parent.is_empty()).then_some(self.parent.as_str())
    }
}

/// One image of `images.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image ID: the hex of the config's digest.
    pub id: String,
    /// The digest of the manifest the image was pulled with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Names (`registry/repository:tag`), unique among images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Every name the image has had, most recent first.
    #[serde(
        rename = "names-history",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names_history: Vec<String>,
    /// The top layer's ID.
    #[serde(rename = "layer", default, skip_serializing_if = "String::is_empty")]
    pub top_layer: String,
    /// Copies of the top layer prepared for user namespaces.
    #[serde(
        rename = "mapped-layers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mapped_layers: Vec<String>,
    /// Caller data (containers/image keeps `{"signatures-sizes": …}` here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// Keys of the image's big-data items (files in `overlay-images/<id>/`).
    #[serde(
        rename = "big-data-names",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub big_data_names: Vec<String>,
    /// Sizes of the big-data items.
    #[serde(
        rename = "big-data-sizes",
        default,
        skip_serializing_if = "Map::is_empty"
    )]
    pub big_data_sizes: Map<String, Value>,
    /// Digests of the big-data items.
    #[serde(
        rename = "big-data-digests",
        default,
        skip_serializing_if = "Map::is_empty"
    )]
    pub big_data_digests: Map<String, Value>,
    /// When the image was created (the config's `created`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created: String,
    /// Flags.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub flags: Map<String, Value>,
    /// Fields strata does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One container of `containers.json`. strata only reads containers (to keep their images and layers).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container ID.
    pub id: String,
    /// Names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The image it was created from.
    #[serde(rename = "image", default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Its read-write layer (whose parent is the image's top layer).
    #[serde(rename = "layer", default, skip_serializing_if = "String::is_empty")]
    pub layer: String,
    /// Everything else, kept as it was.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `mountpoints.json`: where a layer is mounted and how many times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    /// The layer ID.
    pub id: String,
    /// The mount point (for the overlay driver, `overlay/<id>/merged`).
    #[serde(rename = "path")]
    pub path: String,
    /// How many users hold the mount.
    pub count: i64,
}

/// One entry of strata's own `RR/strata/mounts.json`: a directory `strata mount` bound to a layer's mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindRecord {
    /// The directory the user asked for (absolute).
    pub dir: String,
    /// The mounted (top) layer.
    pub layer: String,
    /// The image.
    pub image: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_round_trip_keeps_unknown_fields() {
        let text = r#"[{"id":"a","parent":"b","created":"2026-01-01T00:00:00Z","compressed-diff-digest":"sha256:x","compressed-size":3,"diff-digest":"sha256:y","diff-size":10,"compression":2,"uidset":[0,1000],"gidset":[0],"flags":{"incomplete":true},"future-field":{"k":1}}]"#;
        let layers: Vec<LayerRecord> = serde_json::from_str(text).unwrap();
        assert!(layers[0].is_incomplete());
        assert_eq!(layers[0].uids, vec![0, 1000]);
        let back = serde_json::to_string(&layers).unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn image_fields() {
        let text = r#"{"id":"b5","digest":"sha256:30","names":["localhost/x:latest"],"names-history":["localhost/x:latest"],"layer":"4a","metadata":"{}","big-data-names":["manifest"],"big-data-sizes":{"manifest":735},"big-data-digests":{"manifest":"sha256:30"},"created":"2024-01-01T00:00:00Z"}"#;
        let image: ImageRecord = serde_json::from_str(text).unwrap();
        assert_eq!(image.top_layer, "4a");
        assert_eq!(serde_json::to_string(&image).unwrap(), text);
    }
}
