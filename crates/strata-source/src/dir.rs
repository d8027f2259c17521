//! `dir:`: skopeo's directory format (`manifest.json`, `version`, blobs named by their hex digest, and
//! `<hex>.manifest.json` for the instances of a multi-image copy).

use std::path::Path;

use strata_oci::{Digest, MAX_MANIFEST_SIZE};

use crate::member::{DirTree, Member, Tree};
use crate::{
    Blob, Error, ImageSource, MAX_SIGNATURE_SIZE, MAX_SIGNATURES, RawManifest, Result,
    verified_blob, verified_manifest,
};

/// The `version` file skopeo writes.
const VERSION_PREFIX: &str = "Directory Transport Version: ";

pub(crate) struct DirSource {
    name: String,
    tree: DirTree,
}

impl DirSource {
    pub(crate) fn open(name: &str, path: &Path) -> Result<Self> {
        let tree = DirTree::open(path)?;
        let version = tree
            .member("version")?
            .ok_or_else(|| Error::invalid(name, "not a dir: image (no version file)"))?
            .read_all(4096, name)?;
        if !String::from_utf8_lossy(&version).starts_with(VERSION_PREFIX) {
            return Err(Error::invalid(name, "unrecognised version file"));
        }
        Ok(DirSource {
            name: name.to_owned(),
            tree,
        })
    }

    fn member(&self, path: &str, what: &str) -> Result<Member> {
        self.tree
            .member(path)?
            .ok_or_else(|| Error::not_found(&self.name, what))
    }
}

impl ImageSource for DirSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn top_manifest(&self) -> Result<RawManifest> {
        let bytes = self
            .member("manifest.json", "manifest.json")?
            .read_all(MAX_MANIFEST_SIZE, &self.name)?;
        Ok(RawManifest {
            digest: Digest::sha256(&bytes),
            bytes,
            media_type: None,
        })
    }

    fn manifest(&self, digest: &Digest, media_type: Option<&str>) -> Result<RawManifest> {
        let instance = format!("{}.manifest.json", digest.hex());
        let member = match self.tree.member(&instance)? {
            Some(m) => m,
            None => self.member(digest.hex(), &format!("manifest {digest}"))?,
        };
        verified_manifest(&self.name, member, digest, media_type)
    }

    fn open_blob(&self, digest: &Digest) -> Result<Blob> {
        let member = self.member(digest.hex(), &format!("blob {digest}"))?;
        Ok(verified_blob(member, digest))
    }

    fn read_blob_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.member(digest.hex(), &format!("blob {digest}"))?
            .read_at(offset, buf)
    }

    /// skopeo's `signature-1`, `signature-2`, … up to the first missing one; an instance's are
    /// `<hex>.signature-N`.
    fn signatures(&self, instance: Option<&Digest>) -> Result<Vec<Vec<u8>>> {
        let prefix = instance.map_or_else(String::new, |d| format!("{}.", d.hex()));
        let mut found = Vec::new();
        for n in 1.. {
            let Some(member) = self.tree.member(&format!("{prefix}signature-{n}"))? else {
                break;
            };
            if n > MAX_SIGNATURES {
                return Err(Error::invalid(
                    &self.name,
                    format!("more than {MAX_SIGNATURES} signatures ({prefix}signature-{n} exists)"),
                ));
            }
            found.push(member.read_all(MAX_SIGNATURE_SIZE, &self.name)?);
        }
        Ok(found)
    }
}
