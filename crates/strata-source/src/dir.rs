//! `dir:`: skopeo's directory format (`manifest.json`, `version`, blobs named by their hex digest, and
//! `<hex>.manifest.json` for the instances of a multi-image copy).

use std::path::Path;

use strata_oci::{Digest, MAX_MANIFEST_SIZE};

use crate::member::{DirTree, Member, Tree};
use crate::{
    Blob, Error, ImageSource, MAX_SIGNATURE_SIZE, MAX_SIGNATURES, RawManifest, Result,
    unhashed_blob, verified_blob, verified_manifest,
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

    fn open_blob_unhashed(&self, digest: &Digest) -> Result<Blob> {
        Ok(unhashed_blob(
            self.member(digest.hex(), &format!("blob {digest}"))?,
        ))
    }

    fn read_blob_at(&self, digest: &Digest, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.member(digest.hex(), &format!("blob {digest}"))?
            .read_at(offset, buf)
    }

    /// Sniffed: skopeo keeps a docker archive's plain tars under `tar.gzip` types in a `dir:`.
    fn stored_compression(
        &self,
        digest: &Digest,
    ) -> Result<Option<strata_oci::media::Compression>> {
        self.member(digest.hex(), &format!("blob {digest}"))?
            .sniff_compression()
            .map(Some)
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

/// `dir:DIR` as a destination, as skopeo writes it: `version`, blobs named by their hex digest,
/// `manifest.json` for the top manifest and `<hex>.manifest.json` for each instance of an index.
///
/// Everything is written to a staging directory beside `DIR` and renamed into place at commit, replacing
/// an empty directory or a `dir:` image there (skopeo's rule: any other non-empty directory is refused,
/// before anything is written). A failed copy leaves `DIR` as it was.
pub(crate) struct DirDestination {
    name: String,
    path: std::path::PathBuf,
    staging: Option<tempfile::TempDir>,
    /// The staging directory's path.
    root: std::path::PathBuf,
}

/// The `version` file's contents.
const VERSION: &str = "Directory Transport Version: 1.1\n";

impl DirDestination {
    pub(crate) fn open(name: &str, path: &Path) -> Result<Self> {
        if path.exists() {
            let mut entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
            if entries.next().is_some() {
                let version = std::fs::read(path.join("version")).unwrap_or_default();
                if version != VERSION.as_bytes() {
                    return Err(Error::invalid(
                        name,
                        "not a containers image directory, don't want to overwrite important data",
                    ));
                }
            }
        }
        let staging = crate::dest::staging_dir(name, path)?;
        let root = staging.path().to_path_buf();
        Ok(DirDestination {
            name: name.to_owned(),
            path: path.to_path_buf(),
            staging: Some(staging),
            root,
        })
    }
}

impl strata_image::ImageDestination for DirDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_parallel_blobs(&self) -> usize {
        4
    }

    fn reuse_blob(
        &self,
        digest: &Digest,
        size: u64,
        _: Option<&strata_oci::ImageReference>,
    ) -> Result<bool> {
        Ok(std::fs::metadata(self.root.join(digest.hex())).is_ok_and(|m| m.len() == size))
    }

    fn put_blob(&self, blob: strata_image::BlobWrite<'_>) -> Result<u64> {
        let path = self.root.join(blob.digest.hex());
        let tmp = self
            .root
            .join(format!("dir-put-blob-{}", blob.digest.hex()));
        let written = crate::dest::write_new_file(&tmp, blob.reader)?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(written)
    }

    fn blob_sink(&self) -> Result<Option<Box<dyn strata_image::BlobSink + '_>>> {
        let sink = crate::dest::FileSink::new(&self.root, |file, digest| {
            let path = self.root.join(digest.hex());
            file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
            Ok(())
        })?;
        Ok(Some(Box::new(sink)))
    }

    fn put_manifest(
        &mut self,
        manifest: &RawManifest,
        role: strata_image::ManifestRole,
    ) -> Result<()> {
        let file = match role {
            strata_image::ManifestRole::Top => "manifest.json".to_owned(),
            strata_image::ManifestRole::Instance => {
                format!("{}.manifest.json", manifest.digest.hex())
            }
        };
        let path = self.root.join(file);
        std::fs::write(&path, &manifest.bytes).map_err(|e| Error::io(&path, e))
    }

    fn commit(&mut self) -> Result<()> {
        let version = self.root.join("version");
        std::fs::write(&version, VERSION).map_err(|e| Error::io(&version, e))?;
        let Some(staging) = self.staging.take() else {
            return Err(Error::invalid(&self.name, "committed twice"));
        };
        let staged = staging.keep();
        let result = (|| -> std::io::Result<()> {
            match std::fs::rename(&staged, &self.path) {
                Ok(()) => Ok(()),
                // A dir: image there already: moved aside, replaced, then removed.
                Err(e) if self.path.is_dir() => {
                    let (parent, file) =
                        crate::dest::split_path(&self.name, &self.path).map_err(|_| e)?;
                    let old = tempfile::Builder::new()
                        .prefix(&format!(".{}.strata-old-", file.to_string_lossy()))
                        .tempdir_in(&parent)?;
                    let aside = old.path().join("old");
                    std::fs::rename(&self.path, &aside)?;
                    if let Err(e) = std::fs::rename(&staged, &self.path) {
                        let _ = std::fs::rename(&aside, &self.path);
                        return Err(e);
                    }
                    drop(old);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })();
        result.map_err(|e| {
            let _ = std::fs::remove_dir_all(&staged);
            Error::io(&self.path, e)
        })
    }

    fn abort(&mut self) {
        drop(self.staging.take());
    }
}
