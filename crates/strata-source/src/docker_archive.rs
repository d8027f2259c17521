//! `docker-archive:`: the tar `docker save` and `podman save` write, read in place.
//!
//! The archive has no manifest of the registry kind; like containers/image, strata synthesises a Docker v2s2
//! manifest from `manifest.json` and the config (layers named by their diff IDs, sizes of the layer files), so
//! digests and `--raw` output match skopeo's.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use strata_oci::{Digest, ImageConfig, ImageReference, MAX_MANIFEST_SIZE, media};

use crate::member::{Member, TarTree, Tree, normalise};
use crate::{Blob, Error, ImageSource, RawManifest, Result, verified_blob};

/// Which image of the archive a name designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    /// The only image.
    Only,
    /// The image tagged so.
    Reference(ImageReference),
    /// The N-th image of `manifest.json`.
    Index(usize),
}

/// Splits `PATH[:REPO:TAG|:@N]`.
pub(crate) fn parse_selector(rest: &str) -> std::result::Result<(&str, Selector), String> {
    let Some((path, sel)) = rest.split_once(':') else {
        return Ok((rest, Selector::Only));
    };
    if let Some(n) = sel.strip_prefix('@') {
        let n = n
            .parse()
            .map_err(|_| format!("{n:?} is not an image number"))?;
        return Ok((path, Selector::Index(n)));
    }
    let reference = ImageReference::parse(sel).map_err(|e| e.to_string())?;
    if reference.digest().is_some() {
        return Err("docker-archive references cannot name a digest".into());
    }
    Ok((path, Selector::Reference(reference)))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(crate) struct DockerArchive {
    name: String,
    tree: TarTree,
    reference: Option<ImageReference>,
    manifest: Vec<u8>,
    blobs: HashMap<Digest, String>,
}

impl DockerArchive {
    pub(crate) fn open(name: &str, path: &Path, selector: Selector) -> Result<Self> {
        let tree = TarTree::open(path)?;
        let bytes = tree
            .member("manifest.json")?
            .ok_or_else(|| Error::invalid(name, "not a docker archive (no manifest.json)"))?
            .read_all(MAX_MANIFEST_SIZE, name)?;
        let items: Vec<Item> = serde_json::from_slice(&bytes).map_err(|source| {
            Error::oci(
                name,
                strata_oci::Error::Json {
                    what: "manifest.json".into(),
                    source,
                },
            )
        })?;
        let (item, reference) = match selector {
            Selector::Only => match items.as_slice() {
                [only] => (only, None),
                [] => return Err(Error::invalid(name, "manifest.json lists no image")),
                many => {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "the archive holds {} images; name one with :REPO:TAG or :@N",
                            many.len()
                        ),
                    ));
                }
            },
            Selector::Index(n) => (
                items
                    .get(n)
                    .ok_or_else(|| Error::not_found(name, format!("image @{n}")))?,
                None,
            ),
            Selector::Reference(r) => {
                let wanted = r.to_string();
                let item = items
                    .iter()
                    .find(|i| {
                        i.repo_tags.iter().flatten().any(|t| {
                            ImageReference::parse(t).is_ok_and(|t| t.to_string() == wanted)
                        })
                    })
                    .ok_or_else(|| Error::TagNotFound {
                        source_name: name.to_owned(),
                        tag: wanted.clone(),
                        defaulted: false,
                        tags: items
                            .iter()
                            .flat_map(|i| i.repo_tags.iter().flatten().cloned())
                            .collect(),
                    })?;
                (item, Some(r))
            }
        };

        let member = |file: &str| -> Result<(String, Member)> {
            let inside = normalise(file).filter(|_| !file.starts_with('/'));
            let Some(inside) = inside.filter(|_| !file.split('/').any(|p| p == "..")) else {
                return Err(Error::invalid(
                    name,
                    format!("manifest.json names {file:?}, a file outside the archive"),
                ));
            };
            let m = tree
                .member(&inside)?
                .ok_or_else(|| Error::not_found(name, format!("file {file:?}")))?;
            Ok((inside, m))
        };

        let (config_path, config_member) = member(&item.config)?;
        let config_bytes = config_member.read_all(MAX_MANIFEST_SIZE, name)?;
        let config_digest = Digest::sha256(&config_bytes);
        let config = ImageConfig::parse(&config_bytes, &format!("config {}", item.config))
            .map_err(|e| Error::oci(name, e))?;
        let diff_ids = config.oci.rootfs().diff_ids();
        if diff_ids.len() != item.layers.len() {
            return Err(Error::invalid(
                name,
                format!(
                    "manifest.json lists {} layers but the config has {} diff IDs",
                    item.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let mut blobs = HashMap::from([(config_digest.clone(), config_path)]);
        let mut layers = Vec::new();
        for (file, diff_id) in item.layers.iter().zip(diff_ids) {
            let digest = Digest::parse(diff_id).map_err(|e| Error::oci(name, e))?;
            let (path, m) = member(file)?;
            layers.push(format!(
                r#"{{"mediaType":"{}","size":{},"digest":"{digest}"}}"#,
                media::DOCKER_LAYER_GZIP,
                m.size()
            ));
            blobs.insert(digest, path);
        }
        // Byte for byte what containers/image serialises for this archive.
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":{},"digest":"{config_digest}"}},"layers":[{}]}}"#,
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            config_bytes.len(),
            layers.join(",")
        )
        .into_bytes();
        Ok(DockerArchive {
            name: name.to_owned(),
            tree,
            reference,
            manifest,
            blobs,
        })
    }

    fn blob_member(&self, digest: &Digest) -> Result<Member> {
        let missing = || Error::not_found(&self.name, format!("blob {digest}"));
        let path = self.blobs.get(digest).ok_or_else(missing)?;
        self.tree.member(path)?.ok_or_else(missing)
    }
}

impl ImageSource for DockerArchive {
    fn name(&self) -> &str {
        &self.name
    }

    fn docker_reference(&self) -> Option<&ImageReference> {
        self.reference.as_ref()
    }

    fn top_manifest(&self) -> Result<RawManifest> {
        Ok(RawManifest {
            bytes: self.manifest.clone(),
            digest: Digest::sha256(&self.manifest),
            media_type: Some(media::DOCKER_MANIFEST.to_owned()),
        })
    }

    fn manifest(&self, digest: &Digest, _media_type: Option<&str>) -> Result<RawManifest> {
        let top = self.top_manifest()?;
        if &top.digest == digest {
            Ok(top)
        } else {
            Err(Error::not_found(&self.name, format!("manifest {digest}")))
        }
    }

    fn open_blob(&self, digest: &Digest) -> Result<Blob> {
        Ok(verified_blob(self.blob_member(digest)?, digest))
    }

    fn read_blob_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.blob_member(digest)?.read_at(offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!(parse_selector("a.tar").unwrap(), ("a.tar", Selector::Only));
        assert_eq!(
            parse_selector("a.tar:@2").unwrap(),
            ("a.tar", Selector::Index(2))
        );
        let (p, s) = parse_selector("a.tar:foo/bar:v1").unwrap();
        assert_eq!(p, "a.tar");
        assert_eq!(
            s,
            Selector::Reference(ImageReference::parse("docker.io/foo/bar:v1").unwrap())
        );
        assert!(parse_selector("a.tar:@x").is_err());
        assert!(parse_selector("a.tar:UPPER:v1").is_err());
    }
}
