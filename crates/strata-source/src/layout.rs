//! `oci:` and `oci-archive:`: an OCI image layout, as a directory or as a tar read in place.

use std::path::Path;

use oci_spec::image::Descriptor;
use strata_oci::{Digest, MAX_MANIFEST_SIZE, Manifest, media};

use crate::member::{DirTree, Member, TarTree, Tree};
use crate::{
    Blob, Error, ImageSource, RawManifest, Result, unhashed_blob, verified_blob, verified_manifest,
};

/// The annotation that tags an entry of `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Which entry of `index.json` an image name designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    /// The only entry.
    Only,
    /// The entry tagged so.
    Tag(String),
    /// The entry with this digest.
    Digest(Digest),
}

/// Splits `PATH[:TAG|@DIGEST]`.
pub(crate) fn parse_selector(rest: &str) -> std::result::Result<(&str, Selector), String> {
    if let Some((path, d)) = rest.rsplit_once('@').filter(|(_, d)| d.contains(':')) {
        let digest = Digest::parse(d).map_err(|e| e.to_string())?;
        return Ok((path, Selector::Digest(digest)));
    }
    match rest.split_once(':') {
        None => Ok((rest, Selector::Only)),
        Some((_, "")) => Err("empty tag".into()),
        Some((_, tag)) if tag.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Err("tag contains white space or control characters".into())
        }
        Some((path, tag)) => Ok((path, Selector::Tag(tag.to_owned()))),
    }
}

/// An OCI image layout.
pub(crate) struct OciLayout {
    name: String,
    tree: Box<dyn Tree>,
    top: Descriptor,
}

pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

impl OciLayout {
    pub(crate) fn open_dir(name: &str, path: &Path, selector: Selector) -> Result<Self> {
        Self::open(name, Box::new(DirTree::open(path)?), selector)
    }

    pub(crate) fn open_archive(name: &str, path: &Path, selector: Selector) -> Result<Self> {
        Self::open(name, Box::new(TarTree::open(path)?), selector)
    }

    fn open(name: &str, tree: Box<dyn Tree>, selector: Selector) -> Result<Self> {
        let layout = tree
            .member("oci-layout")?
            .ok_or_else(|| Error::invalid(name, "not an OCI image layout (no oci-layout file)"))?
            .read_all(MAX_MANIFEST_SIZE, name)?;
        let version: serde_json::Value = serde_json::from_slice(&layout).map_err(|source| {
            Error::oci(
                name,
                strata_oci::Error::Json {
                    what: "oci-layout".into(),
                    source,
                },
            )
        })?;
        if version.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(Error::invalid(
                name,
                "unsupported imageLayoutVersion in oci-layout",
            ));
        }
        let index_bytes = tree
            .member("index.json")?
            .ok_or_else(|| Error::invalid(name, "no index.json"))?
            .read_all(MAX_MANIFEST_SIZE, name)?;
        let index = match Manifest::parse(&index_bytes, Some(media::OCI_INDEX), "index.json")
            .map_err(|e| Error::oci(name, e))?
        {
            Manifest::Index { index, .. } => index,
            Manifest::Image { .. } => {
                return Err(Error::invalid(name, "index.json is not an index"));
            }
        };
        let manifests = index.manifests();
        let tag_of = |d: &Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        };
        let tags = || -> Vec<String> { manifests.iter().filter_map(tag_of).collect() };
        let top = match &selector {
            Selector::Only => match manifests.as_slice() {
                [only] => only.clone(),
                [] => return Err(Error::invalid(name, "index.json lists no image")),
                many => {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "index.json lists {} images; name one with :TAG or @DIGEST ({})",
                            many.len(),
                            strata_image::tag_listing(&tags())
                        ),
                    ));
                }
            },
            Selector::Tag(tag) => manifests
                .iter()
                .find(|d| tag_of(d).is_some_and(|r| &r == tag))
                .cloned()
                .ok_or_else(|| Error::TagNotFound {
                    source_name: name.to_owned(),
                    tag: tag.clone(),
                    defaulted: false,
                    tags: tags(),
                })?,
            Selector::Digest(digest) => manifests
                .iter()
                .find(|d| d.digest().to_string() == digest.to_string())
                .cloned()
                .ok_or_else(|| Error::not_found(name, format!("manifest {digest}")))?,
        };
        Ok(OciLayout {
            name: name.to_owned(),
            tree,
            top,
        })
    }

    fn blob_member(&self, digest: &Digest) -> Result<Member> {
        self.tree
            .member(&blob_path(digest))?
            .ok_or_else(|| Error::not_found(&self.name, format!("blob {digest}")))
    }
}

impl ImageSource for OciLayout {
    fn name(&self) -> &str {
        &self.name
    }

    fn top_manifest(&self) -> Result<RawManifest> {
        let digest = Digest::try_from(self.top.digest()).map_err(|e| Error::oci(&self.name, e))?;
        let media_type = self.top.media_type().to_string();
        let manifest = self.manifest(&digest, Some(&media_type))?;
        strata_image::check_size(&self.name, &manifest, self.top.size())?;
        Ok(manifest)
    }

    fn manifest(&self, digest: &Digest, media_type: Option<&str>) -> Result<RawManifest> {
        verified_manifest(&self.name, self.blob_member(digest)?, digest, media_type)
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

    /// Sniffed (a local read of 4 bytes): a layout may hold a plain tar under a compressed type.
    fn stored_compression(
        &self,
        digest: &Digest,
    ) -> Result<Option<strata_oci::media::Compression>> {
        self.blob_member(digest)?.sniff_compression().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(parse_selector("a/b").unwrap(), ("a/b", Selector::Only));
        assert_eq!(
            parse_selector("a/b:t1").unwrap(),
            ("a/b", Selector::Tag("t1".into()))
        );
        assert!(matches!(
            parse_selector(&format!("a@b/c@{d}")).unwrap(),
            ("a@b/c", Selector::Digest(_))
        ));
        assert!(parse_selector("a:").is_err());
        assert!(parse_selector("a@sha256:zz").is_err());
    }
}
