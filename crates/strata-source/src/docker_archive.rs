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
use crate::{Blob, Error, ImageSource, RawManifest, Result, unhashed_blob, verified_blob};

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
    /// The chosen image's `RepoTags` (only the selected one, for a `:REPO:TAG` reference).
    tags: Vec<String>,
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
        let (item, reference, tag) = match selector {
            Selector::Only => match items.as_slice() {
                [only] => (only, None, None),
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
                None,
            ),
            Selector::Reference(r) => {
                let wanted = r.to_string();
                let (item, tag) = items
                    .iter()
                    .find_map(|i| {
                        i.repo_tags.iter().flatten().find_map(|t| {
                            ImageReference::parse(t)
                                .is_ok_and(|t| t.to_string() == wanted)
                                .then(|| (i, t.clone()))
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
                (item, Some(r), Some(tag))
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
        let tags = match tag {
            Some(t) => vec![t],
            None => item.repo_tags.clone().unwrap_or_default(),
        };
        Ok(DockerArchive {
            name: name.to_owned(),
            tree,
            reference,
            tags,
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

    fn recorded_names(&self) -> Vec<String> {
        self.tags.clone()
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

    fn open_blob_unhashed(&self, digest: &Digest) -> Result<Blob> {
        Ok(unhashed_blob(self.blob_member(digest)?))
    }

    fn read_blob_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.blob_member(digest)?.read_at(offset, buf)
    }

    /// Sniffed from the member's first bytes: `docker save` writes plain tars, other writers may not.
    fn stored_compression(&self, digest: &Digest) -> Result<Option<media::Compression>> {
        self.blob_member(digest)?.sniff_compression().map(Some)
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

    /// A docker archive of one one-layer image per entry of `tags` (its `RepoTags`; `None` leaves it out).
    fn archive(dir: &Path, tags: &[Option<&[&str]>]) -> std::path::PathBuf {
        let path = dir.join("a.tar");
        let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, data).unwrap();
        };
        let mut items = Vec::new();
        for (n, t) in tags.iter().enumerate() {
            let layer = format!("layer {n}");
            let diff_id = Digest::sha256(layer.as_bytes());
            let config = format!(
                r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
            );
            add(&format!("{n}.json"), config.as_bytes());
            add(&format!("{n}.tar"), layer.as_bytes());
            let mut item =
                serde_json::json!({"Config": format!("{n}.json"), "Layers": [format!("{n}.tar")]});
            if let Some(t) = t {
                item["RepoTags"] = serde_json::json!(t);
            }
            items.push(item);
        }
        add(
            "manifest.json",
            serde_json::to_string(&items).unwrap().as_bytes(),
        );
        tar.into_inner().unwrap();
        path
    }

    #[test]
    fn recorded_names_are_the_chosen_images_repo_tags_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let one = archive(dir.path(), &[Some(&["eval/debian:v4", "docker.io/x/y:1"])]);
        let open = |sel| {
            DockerArchive::open("t", &one, sel)
                .unwrap()
                .recorded_names()
        };
        assert_eq!(open(Selector::Only), ["eval/debian:v4", "docker.io/x/y:1"]);
        assert_eq!(
            open(Selector::Index(0)),
            ["eval/debian:v4", "docker.io/x/y:1"]
        );
        // A reference selects one tag, named as the archive writes it.
        let r = ImageReference::parse("docker.io/eval/debian:v4").unwrap();
        assert_eq!(open(Selector::Reference(r)), ["eval/debian:v4"]);

        let dir = tempfile::tempdir().unwrap();
        let two = archive(dir.path(), &[None, Some(&["b:1"])]);
        let open = |sel| {
            DockerArchive::open("t", &two, sel)
                .unwrap()
                .recorded_names()
        };
        assert!(open(Selector::Index(0)).is_empty());
        assert_eq!(open(Selector::Index(1)), ["b:1"]);
    }
}
