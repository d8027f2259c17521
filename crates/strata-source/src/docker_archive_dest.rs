//! `docker-archive:FILE[:REPO:TAG]` as a destination: the tar `docker save` writes, as skopeo 1.9 writes it.
//!
//! Members, in order: each layer as an uncompressed tar named `<diff ID hex>.tar`, the config as
//! `<hex>.json`, a legacy directory per layer (`<id>/layer.tar` a symlink to the layer, `<id>/VERSION`,
//! `<id>/json`, the IDs derived as containers/image derives them), then `manifest.json` and `repositories`.
//! Every member is mode 0444, owned by 0:0, dated 1970-01-01. The archive is written to a temporary file
//! beside `FILE` and renamed over it at commit; like skopeo, an existing non-empty `FILE` is refused.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::value::RawValue;
use strata_image::{BlobWrite, ImageDestination, LayerCompression, ManifestRole};
use strata_oci::{Digest, ImageReference, MAX_MANIFEST_SIZE};

use crate::dest::split_path;
use crate::{Error, RawManifest, Result};

/// The config keys the top legacy layer's `json` takes from the image config, in containers/image's order.
const LEGACY_CONFIG_KEYS: [&str; 7] = [
    "architecture",
    "config",
    "container",
    "container_config",
    "created",
    "docker_version",
    "os",
];

struct Archive {
    builder: tar::Builder<File>,
    /// The configs written, by digest (the legacy layers need the image's).
    configs: Vec<(Digest, Vec<u8>)>,
    /// `manifest.json`'s one item, once the manifest is written.
    item: Option<serde_json::Value>,
    /// `repositories`: name → tag → top legacy layer ID.
    repositories: serde_json::Map<String, serde_json::Value>,
}

/// A docker archive being written.
pub(crate) struct ArchiveDestination {
    name: String,
    path: PathBuf,
    reference: Option<ImageReference>,
    tmp: Option<tempfile::NamedTempFile>,
    archive: Mutex<Archive>,
}

/// A member header as containers/image writes them (Go's `archive/tar`: ustar, device numbers written as
/// zeros, the checksum as six octal digits, a NUL and a space), so archives match skopeo's byte for byte.
fn header(path: &str, size: u64, link: Option<&str>) -> std::io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    match link {
        Some(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_link_name(target)?;
            h.set_mode(0);
        }
        None => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o444);
        }
    }
    h.set_path(path)?;
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_device_major(0)?;
    h.set_device_minor(0)?;
    let bytes = h.as_mut_bytes();
    if let Some(field) = bytes.get_mut(148..156) {
        field.fill(b' ');
    }
    let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
    if let Some(field) = bytes.get_mut(148..156) {
        field.copy_from_slice(format!("{:06o}\0 ", sum & 0o777_777).as_bytes());
    }
    Ok(h)
}

/// `raw` as Go's `json.Marshal` writes a `json.RawMessage`: white space outside strings removed, and `<`,
/// `>`, `&`, U+2028 and U+2029 escaped.
fn go_compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            match c {
                _ if escaped => {
                    escaped = false;
                    out.push(c);
                }
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                _ => out.push(c),
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// A JSON object with keys in Go's order (sorted), values already encoded.
fn go_object(fields: &std::collections::BTreeMap<&str, String>) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

impl ArchiveDestination {
    pub(crate) fn open(name: &str, path: &Path, reference: Option<ImageReference>) -> Result<Self> {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return Err(Error::invalid(
                name,
                "docker-archive doesn't support modifying existing images",
            ));
        }
        let reference = match reference {
            Some(r) if r.tag().is_none() => Some(
                ImageReference::parse(&format!("{}:latest", r.name()))
                    .map_err(|e| Error::oci(name, e))?,
            ),
            other => other,
        };
        let (parent, file) = split_path(name, path)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.strata-", file.to_string_lossy()))
            .tempfile_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let file = tmp.reopen().map_err(|e| Error::io(tmp.path(), e))?;
        Ok(ArchiveDestination {
            name: name.to_owned(),
            path: path.to_path_buf(),
            reference,
            tmp: Some(tmp),
            archive: Mutex::new(Archive {
                builder: tar::Builder::new(file),
                configs: Vec::new(),
                item: None,
                repositories: serde_json::Map::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Archive> {
        self.archive.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::io(&self.path, e)
    }

    fn append(&self, archive: &mut Archive, path: &str, bytes: &[u8]) -> Result<()> {
        self.append_from(archive, path, bytes.len() as u64, bytes)
    }

    fn append_from(
        &self,
        archive: &mut Archive,
        path: &str,
        size: u64,
        data: impl Read,
    ) -> Result<()> {
        let h = header(path, size, None).map_err(|e| self.io(e))?;
        archive.builder.append(&h, data).map_err(|e| self.io(e))
    }

    /// The legacy layer directories, and the `repositories` entry for the top one (containers/image's
    /// `writeLegacyMetadata`).
    fn write_legacy(&self, archive: &mut Archive, layers: &[Digest], config: &[u8]) -> Result<()> {
        let config_fields: std::collections::BTreeMap<String, Box<RawValue>> =
            serde_json::from_slice(config).map_err(|source| {
                Error::oci(
                    &self.name,
                    strata_oci::Error::Json {
                        what: "config".into(),
                        source,
                    },
                )
            })?;
        let mut chain: Option<String> = None;
        let mut last: Option<String> = None;
        for (i, layer) in layers.iter().enumerate() {
            let mut fields = std::collections::BTreeMap::new();
            if let Some(parent) = &last {
                fields.insert(
                    "parent",
                    serde_json::Value::from(parent.as_str()).to_string(),
                );
            }
            if i + 1 == layers.len() {
                for key in LEGACY_CONFIG_KEYS {
                    let value = config_fields
                        .get(key)
                        .map_or_else(|| "null".to_owned(), |v| go_compact(v.get()));
                    fields.insert(key, value);
                }
            }
            let chain_id = match &chain {
                None => layer.to_string(),
                Some(c) => Digest::sha256(format!("{c} {layer}").as_bytes()).to_string(),
            };
            fields.insert(
                "layer_id",
                serde_json::Value::from(chain_id.as_str()).to_string(),
            );
            let id = Digest::sha256(go_object(&fields).as_bytes())
                .hex()
                .to_owned();
            fields.remove("layer_id");
            fields.insert("id", serde_json::Value::from(id.as_str()).to_string());
            let json = go_object(&fields);
            let link = header(
                &format!("{id}/layer.tar"),
                0,
                Some(&format!("../{}.tar", layer.hex())),
            )
            .map_err(|e| self.io(e))?;
            archive
                .builder
                .append(&link, std::io::empty())
                .map_err(|e| self.io(e))?;
            self.append(archive, &format!("{id}/VERSION"), b"1.0")?;
            self.append(archive, &format!("{id}/json"), json.as_bytes())?;
            chain = Some(chain_id);
            last = Some(id);
        }
        if let (Some(top), Some(r)) = (last, &self.reference) {
            let tags = archive
                .repositories
                .entry(r.name())
                .or_insert_with(|| serde_json::json!({}));
            tags[r.tag().unwrap_or("latest")] = top.into();
        }
        Ok(())
    }
}

impl ImageDestination for ArchiveDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn layer_compression(&self) -> LayerCompression {
        LayerCompression::Uncompressed
    }

    fn supports_indexes(&self) -> bool {
        false
    }

    fn reuse_blob(&self, _: &Digest, _: u64, _: Option<&ImageReference>) -> Result<bool> {
        Ok(false)
    }

    fn put_blob(&self, blob: BlobWrite<'_>) -> Result<u64> {
        let hex = blob.digest.hex();
        if blob.config {
            let mut bytes = Vec::new();
            blob.reader
                .take(MAX_MANIFEST_SIZE + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| self.io(e))?;
            if bytes.len() as u64 > MAX_MANIFEST_SIZE {
                return Err(Error::invalid(&self.name, "config over 4 MiB"));
            }
            let mut archive = self.lock();
            self.append(&mut archive, &format!("{hex}.json"), &bytes)?;
            let size = bytes.len() as u64;
            archive.configs.push((blob.digest.clone(), bytes));
            return Ok(size);
        }
        let path = format!("{hex}.tar");
        match blob.size {
            Some(size) => {
                let mut archive = self.lock();
                self.append_from(&mut archive, &path, size, blob.reader)?;
                Ok(size)
            }
            None => {
                // The size goes in the member's header: the layer is spooled first.
                let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty());
                let mut spool =
                    tempfile::tempfile_in(dir.unwrap_or(Path::new("."))).map_err(|e| self.io(e))?;
                let size = std::io::copy(blob.reader, &mut spool).map_err(|e| self.io(e))?;
                spool.flush().map_err(|e| self.io(e))?;
                spool.rewind().map_err(|e| self.io(e))?;
                let mut archive = self.lock();
                self.append_from(&mut archive, &path, size, spool)?;
                Ok(size)
            }
        }
    }

    fn put_manifest(&mut self, manifest: &RawManifest, role: ManifestRole) -> Result<()> {
        if role == ManifestRole::Instance {
            return Err(Error::Unsupported {
                destination: self.name.clone(),
                what: "a docker archive holds single images, not an index".into(),
            });
        }
        let value: serde_json::Value =
            serde_json::from_slice(&manifest.bytes).map_err(|source| {
                Error::oci(
                    &self.name,
                    strata_oci::Error::Json {
                        what: format!("manifest {}", manifest.digest),
                        source,
                    },
                )
            })?;
        let digest_of = |d: &serde_json::Value| -> Result<Digest> {
            let text = d.get("digest").and_then(|d| d.as_str()).unwrap_or("");
            Digest::parse(text).map_err(|e| Error::oci(&self.name, e))
        };
        let Some(config) = value.get("config") else {
            return Err(Error::Unsupported {
                destination: self.name.clone(),
                what: format!("manifest {} is not an image manifest", manifest.digest),
            });
        };
        let config = digest_of(config)?;
        let layers = value
            .get("layers")
            .and_then(|l| l.as_array())
            .map(|l| l.iter().map(digest_of).collect::<Result<Vec<_>>>())
            .transpose()?
            .unwrap_or_default();
        let mut archive = self.lock();
        let config_bytes = archive
            .configs
            .iter()
            .find(|(d, _)| *d == config)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| Error::not_found(&self.name, format!("config {config}")))?;
        self.write_legacy(&mut archive, &layers, &config_bytes)?;
        let repo_tags: Vec<String> = self
            .reference
            .iter()
            .map(|r| format!("{}:{}", r.name(), r.tag().unwrap_or("latest")))
            .collect();
        archive.item = Some(serde_json::json!({
            "Config": format!("{}.json", config.hex()),
            "RepoTags": repo_tags,
            "Layers": layers.iter().map(|l| format!("{}.tar", l.hex())).collect::<Vec<_>>(),
        }));
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        {
            let mut archive = self.lock();
            let Some(item) = archive.item.take() else {
                return Err(Error::invalid(&self.name, "no manifest was written"));
            };
            let manifest = serde_json::to_vec(&serde_json::json!([item]))
                .map_err(|e| Error::invalid(&self.name, e.to_string()))?;
            self.append(&mut archive, "manifest.json", &manifest)?;
            let repositories =
                serde_json::to_vec(&serde_json::Value::Object(archive.repositories.clone()))
                    .map_err(|e| Error::invalid(&self.name, e.to_string()))?;
            self.append(&mut archive, "repositories", &repositories)?;
            archive.builder.finish().map_err(|e| self.io(e))?;
            archive
                .builder
                .get_mut()
                .sync_all()
                .map_err(|e| self.io(e))?;
        }
        let Some(tmp) = self.tmp.take() else {
            return Err(Error::invalid(&self.name, "committed twice"));
        };
        tmp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        Ok(())
    }

    fn abort(&mut self) {
        drop(self.tmp.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_as_go_does() {
        assert_eq!(
            go_compact("{ \"a\" : [1, 2],\n \"b\": \"x <y> & \\\" z\" }"),
            r#"{"a":[1,2],"b":"x \u003cy\u003e \u0026 \" z"}"#
        );
    }
}
