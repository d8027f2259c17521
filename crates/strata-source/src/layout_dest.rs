//! `oci:` and `oci-archive:` as destinations: an OCI image layout written as skopeo writes one.
//!
//! `oci:DIR[:TAG]` adds to the layout at `DIR` (made if missing), keeping its other images: blobs go to
//! `blobs/<alg>/<hex>` (each written to a temporary file and renamed into place), and `index.json` is
//! rewritten once, at commit, with the new top manifest's entry — one that takes the tag from any entry
//! holding it, as containers/image does. A failed copy removes the blobs it added (and the layout, if it
//! made it). `oci-archive:FILE[:TAG]` writes a new layout in a staging directory beside `FILE` and tars it
//! over `FILE` at commit.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use strata_image::{BlobSink, BlobWrite, ImageDestination, ManifestRole};
use strata_oci::{Digest, ImageReference, MAX_MANIFEST_SIZE, media};

use crate::dest::{FileSink, staging_dir, write_atomically, write_new_file};
use crate::{Error, RawManifest, Result};

/// The annotation that tags an entry of `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `oci-layout` file containers/image writes.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion": "1.0.0"}"#;

/// Where the layout goes.
enum Target {
    /// A layout directory, made by this destination (removed on abort) or there before.
    Dir { made: bool },
    /// An archive file, and the staging directory its layout is written in.
    Archive {
        file: PathBuf,
        staging: Option<tempfile::TempDir>,
    },
}

/// An OCI image layout being written.
pub(crate) struct LayoutDestination {
    name: String,
    /// The layout directory (the staging directory of an archive).
    root: PathBuf,
    tag: Option<String>,
    target: Target,
    /// `index.json` as it was (or a new one), changed only at commit.
    index: serde_json::Value,
    /// Blob files this destination created (removed on abort).
    added: Mutex<Vec<PathBuf>>,
    /// The top manifest's entry for `index.json`.
    top: Option<serde_json::Value>,
    committed: bool,
}

fn new_index() -> serde_json::Value {
    serde_json::json!({"schemaVersion": 2, "manifests": []})
}

impl LayoutDestination {
    pub(crate) fn open_dir(name: &str, path: &Path, tag: Option<String>) -> Result<Self> {
        let made = !path.exists();
        let index_path = path.join("index.json");
        let index = if index_path.exists() {
            let bytes = fs::read(&index_path).map_err(|e| Error::io(&index_path, e))?;
            if bytes.len() as u64 > MAX_MANIFEST_SIZE {
                return Err(Error::invalid(name, "index.json is over 4 MiB"));
            }
            let index: serde_json::Value = serde_json::from_slice(&bytes).map_err(|source| {
                Error::oci(
                    name,
                    strata_oci::Error::Json {
                        what: "index.json".into(),
                        source,
                    },
                )
            })?;
            if !index.get("manifests").is_some_and(|m| m.is_array()) {
                return Err(Error::invalid(name, "index.json has no manifests list"));
            }
            index
        } else {
            new_index()
        };
        fs::create_dir_all(path.join("blobs")).map_err(|e| Error::io(path, e))?;
        Ok(LayoutDestination {
            name: name.to_owned(),
            root: path.to_path_buf(),
            tag,
            target: Target::Dir { made },
            index,
            added: Mutex::new(Vec::new()),
            top: None,
            committed: false,
        })
    }

    pub(crate) fn open_archive(name: &str, path: &Path, tag: Option<String>) -> Result<Self> {
        let staging = staging_dir(name, path)?;
        let root = staging.path().to_path_buf();
        fs::create_dir_all(root.join("blobs")).map_err(|e| Error::io(&root, e))?;
        Ok(LayoutDestination {
            name: name.to_owned(),
            root,
            tag,
            target: Target::Archive {
                file: path.to_path_buf(),
                staging: Some(staging),
            },
            index: new_index(),
            added: Mutex::new(Vec::new()),
            top: None,
            committed: false,
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(crate::layout::blob_path(digest))
    }

    /// Writes a blob file from `reader` unless it is there, recording it as added.
    fn write_blob(&self, digest: &Digest, reader: &mut dyn std::io::Read) -> Result<u64> {
        let path = self.blob_path(digest);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = self.root.join(format!(
            ".strata-put-{}-{}",
            digest.hex(),
            std::process::id()
        ));
        let _ = fs::remove_file(&tmp);
        let written = write_new_file(&tmp, reader)?;
        self.keep_blob(&tmp, path)?;
        Ok(written)
    }

    /// Renames the finished blob file `tmp` to `path`, recording it as added unless it was there.
    fn keep_blob(&self, tmp: &Path, path: PathBuf) -> Result<()> {
        let existed = path.exists();
        fs::rename(tmp, &path).map_err(|e| {
            let _ = fs::remove_file(tmp);
            Error::io(&path, e)
        })?;
        if !existed {
            self.added
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(path);
        }
        Ok(())
    }

    /// Adds the top manifest's entry to `index`, as containers/image does: an entry holding the same tag
    /// loses it; an untagged entry of the same digest is replaced; else the entry is appended.
    fn add_top(&mut self) -> Result<()> {
        let Some(entry) = self.top.clone() else {
            return Err(Error::invalid(&self.name, "no manifest was written"));
        };
        let Some(list) = self
            .index
            .get_mut("manifests")
            .and_then(|m| m.as_array_mut())
        else {
            return Err(Error::invalid(
                &self.name,
                "index.json has no manifests list",
            ));
        };
        let ref_of = |d: &serde_json::Value| {
            d.get("annotations")
                .and_then(|a| a.get(REF_NAME))
                .and_then(|r| r.as_str())
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
        };
        if let Some(tag) = ref_of(&entry)
            && let Some(old) = list.iter_mut().find(|d| ref_of(d).as_deref() == Some(&tag))
            && let Some(annotations) = old.get_mut("annotations").and_then(|a| a.as_object_mut())
        {
            annotations.remove(REF_NAME);
            if annotations.is_empty()
                && let Some(o) = old.as_object_mut()
            {
                o.remove("annotations");
            }
        }
        let digest = entry.get("digest").cloned();
        if let Some(same) = list
            .iter_mut()
            .find(|d| d.get("digest") == digest.as_ref() && ref_of(d).is_none())
        {
            *same = entry;
        } else {
            list.push(entry);
        }
        Ok(())
    }

    /// Tars the staged layout into a temporary file beside `file`, then renames it over `file`: directories
    /// and files in lexical order, as skopeo's archive walks them.
    fn write_archive(&self, file: &Path) -> Result<()> {
        let (parent, base) = crate::dest::split_path(&self.name, file)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.strata-", base.to_string_lossy()))
            .tempfile_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let mut builder = tar::Builder::new(tmp.as_file());
        builder.mode(tar::HeaderMode::Deterministic);
        builder.follow_symlinks(false);
        let mut stack = vec![PathBuf::new()];
        let mut entries = Vec::new();
        while let Some(rel) = stack.pop() {
            let dir = self.root.join(&rel);
            let mut names: Vec<_> = fs::read_dir(&dir)
                .map_err(|e| Error::io(&dir, e))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            let mut subdirs = Vec::new();
            for n in names {
                let rel_child = rel.join(&n);
                let full = self.root.join(&rel_child);
                let is_dir = full.is_dir();
                entries.push((rel_child.clone(), is_dir));
                if is_dir {
                    subdirs.push(rel_child);
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (rel, is_dir) in entries {
            let full = self.root.join(&rel);
            let result = if is_dir {
                builder.append_dir(&rel, &full)
            } else {
                builder.append_path_with_name(&full, &rel)
            };
            result.map_err(|e| Error::io(file, e))?;
        }
        builder
            .into_inner()
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(file, e))?;
        tmp.persist(file).map_err(|e| Error::io(file, e.error))?;
        Ok(())
    }
}

impl ImageDestination for LayoutDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_parallel_blobs(&self) -> usize {
        4
    }

    fn layer_compression(&self) -> strata_image::LayerCompression {
        strata_image::LayerCompression::Compressed
    }

    /// OCI types only, as containers/image's OCI layouts (skopeo does not find other entries by tag).
    fn accepts_manifest_type(&self, media_type: &str) -> bool {
        media_type == media::OCI_MANIFEST || media_type == media::OCI_INDEX
    }

    fn reuse_blob(&self, digest: &Digest, size: u64, _: Option<&ImageReference>) -> Result<bool> {
        Ok(fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file() && m.len() == size))
    }

    fn put_blob(&self, blob: BlobWrite<'_>) -> Result<u64> {
        self.write_blob(blob.digest, blob.reader)
    }

    fn blob_sink(&self) -> Result<Option<Box<dyn BlobSink + '_>>> {
        let sink = FileSink::new(&self.root, |file, digest| {
            let path = self.blob_path(digest);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            // Kept as a plain file: `keep_blob` renames it (and removes it on failure).
            let tmp = file
                .into_temp_path()
                .keep()
                .map_err(|e| Error::io(&path, e.error))?;
            self.keep_blob(&tmp, path)
        })?;
        Ok(Some(Box::new(sink)))
    }

    fn put_manifest(&mut self, manifest: &RawManifest, role: ManifestRole) -> Result<()> {
        self.write_blob(&manifest.digest, &mut manifest.bytes.as_slice())?;
        if role == ManifestRole::Top {
            let media_type = manifest
                .media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
            let mut entry = serde_json::json!({
                "mediaType": media_type,
                "digest": manifest.digest.to_string(),
                "size": manifest.bytes.len(),
            });
            if let Some(tag) = &self.tag {
                entry["annotations"] = serde_json::json!({ REF_NAME: tag });
            }
            self.top = Some(entry);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.add_top()?;
        let index = serde_json::to_vec(&self.index)
            .map_err(|e| Error::invalid(&self.name, format!("encoding index.json: {e}")))?;
        let layout = self.root.join("oci-layout");
        write_atomically(&layout, OCI_LAYOUT)?;
        write_atomically(&self.root.join("index.json"), &index)?;
        if let Target::Archive { file, .. } = &self.target {
            self.write_archive(file)?;
        }
        self.committed = true;
        if let Target::Archive { staging, .. } = &mut self.target {
            drop(staging.take());
        }
        Ok(())
    }

    fn abort(&mut self) {
        if self.committed {
            return;
        }
        match &mut self.target {
            Target::Dir { made: true } => {
                let _ = fs::remove_dir_all(&self.root);
            }
            Target::Dir { made: false } => {
                for path in self
                    .added
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .drain(..)
                {
                    let _ = fs::remove_file(path);
                }
            }
            Target::Archive { staging, .. } => drop(staging.take()),
        }
    }
}
