//! OCI image layout directories and `oci-archive` tarballs.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use crate::image::{Descriptor, index_json};
use crate::{Error, Result, sha256_digest};

/// Annotation carrying a tag in index.json.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Contents of the `oci-layout` file.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Low-level writer of an OCI image layout directory.
///
/// [`create`](Self::create) makes the directory, `oci-layout` and
/// `blobs/sha256/`; blobs are written as they are put; index.json is written
/// by [`finish`](Self::finish), from the descriptors added or from the bytes
/// given to [`set_index_json`](Self::set_index_json).
///
/// Nothing is verified: blobs can be stored under a digest that does not
/// match, manifests can be invalid JSON, index.json can be anything — which
/// is the point for hostile tests.
#[derive(Debug)]
pub struct LayoutWriter {
    root: PathBuf,
    manifests: Vec<Descriptor>,
    index_json: Option<Vec<u8>>,
}

impl LayoutWriter {
    /// Creates (or reuses) the layout directory `root`, writing `oci-layout`
    /// and `blobs/sha256/`.
    pub fn create(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("blobs").join("sha256"))?;
        fs::write(root.join("oci-layout"), OCI_LAYOUT)?;
        Ok(LayoutWriter {
            root: root.to_path_buf(),
            manifests: Vec::new(),
            index_json: None,
        })
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the blob file for `digest` (`blobs/<algorithm>/<encoded>`).
    ///
    /// The digest must have the form `ALGORITHM:ENCODED` with both parts
    /// non-empty and free of `/`, `\` and NUL, and neither part `.` or `..`.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let invalid = || Error::InvalidDigest(digest.to_owned());
        let (algorithm, encoded) = digest.split_once(':').ok_or_else(invalid)?;
        for part in [algorithm, encoded] {
            if part.is_empty() || part == "." || part == ".." || part.contains(['/', '\\', '\0']) {
                return Err(invalid());
            }
        }
        Ok(self.root.join("blobs").join(algorithm).join(encoded))
    }

    /// Stores `bytes` under their own sha256 digest; returns the digest
    /// string `sha256:<hex>`.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        self.put_blob_at(&digest, bytes)?;
        Ok(digest)
    }

    /// Stores `bytes` under any claimed `digest`, without checking that it
    /// matches (see [`blob_path`](Self::blob_path) for the accepted form).
    pub fn put_blob_at(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(digest)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, bytes)?;
        Ok(())
    }

    /// Stores raw manifest (or index) bytes as a blob and returns a
    /// descriptor for them with the given media type.
    pub fn put_manifest(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let digest = self.put_blob(bytes)?;
        Ok(Descriptor::new(media_type, &digest, bytes.len() as u64))
    }

    /// Lists `descriptor` in index.json as is.
    pub fn add_manifest(&mut self, descriptor: Descriptor) -> &mut Self {
        self.manifests.push(descriptor);
        self
    }

    /// Lists `descriptor` in index.json with the annotation
    /// `org.opencontainers.image.ref.name: tag`.
    pub fn add_tagged(&mut self, descriptor: Descriptor, tag: &str) -> &mut Self {
        self.add_manifest(descriptor.with_annotation(REF_NAME_ANNOTATION, tag))
    }

    /// Replaces the generated index.json with these exact bytes.
    pub fn set_index_json(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        self.index_json = Some(bytes.as_ref().to_vec());
        self
    }

    /// Overwrites the `oci-layout` file with these exact bytes, now.
    pub fn set_oci_layout(&self, bytes: impl AsRef<[u8]>) -> Result<()> {
        fs::write(self.root.join("oci-layout"), bytes)?;
        Ok(())
    }

    /// The index.json bytes [`finish`](Self::finish) would write.
    pub fn index_json(&self) -> Result<Vec<u8>> {
        match &self.index_json {
            Some(bytes) => Ok(bytes.clone()),
            None => index_json(&self.manifests, &BTreeMap::new()),
        }
    }

    /// Writes index.json; returns the layout directory.
    pub fn finish(self) -> Result<PathBuf> {
        let bytes = self.index_json()?;
        fs::write(self.root.join("index.json"), bytes)?;
        Ok(self.root)
    }
}

/// Collects every path under `dir` (relative to `root`), recursively.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        let relative = path
            .strip_prefix(root)
            .map_err(|_| Error::UnsupportedFileType(path.clone()))?;
        if file_type.is_dir() {
            out.push((relative.to_path_buf(), true));
            collect(root, &path, out)?;
        } else if file_type.is_file() {
            out.push((relative.to_path_buf(), false));
        } else {
            return Err(Error::UnsupportedFileType(path));
        }
    }
    Ok(())
}

/// Writes a deterministic `oci-archive` tarball of the layout directory
/// `layout_dir` to `out_file`.
///
/// Entries are the layout's directories and regular files, sorted by path
/// (component-wise), named relative to the layout (`blobs/`,
/// `blobs/sha256/<hex>`, `index.json`, `oci-layout`), as ustar headers with
/// mtime 0, uid/gid 0, no owner names, mode `0o755` for directories and
/// `0o644` for files. Symlinks and special files are an error.
pub fn write_oci_archive(layout_dir: &Path, out_file: &Path) -> Result<()> {
    let mut paths = Vec::new();
    collect(layout_dir, layout_dir, &mut paths)?;
    paths.sort();

    let mut builder = tar::Builder::new(BufWriter::new(fs::File::create(out_file)?));
    for (relative, is_dir) in &paths {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if *is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            let mut name = relative.as_os_str().to_owned();
            name.push("/");
            builder.append_data(&mut header, Path::new(&name), std::io::empty())?;
        } else {
            let data = fs::read(layout_dir.join(relative))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, relative, data.as_slice())?;
        }
    }
    let mut writer = builder.into_inner()?;
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_blob_at_rejects_path_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LayoutWriter::create(dir.path()).unwrap();
        for bad in [
            "sha256",
            "sha256:",
            ":abc",
            "sha256:../x",
            "../x:abc",
            "a/b:c",
            "sha256:..",
        ] {
            assert!(
                matches!(layout.put_blob_at(bad, b"x"), Err(Error::InvalidDigest(_))),
                "{bad}"
            );
        }
        // a wrong-but-well-formed digest is accepted on purpose
        layout
            .put_blob_at(&format!("sha256:{}", "0".repeat(64)), b"not matching")
            .unwrap();
        layout
            .put_blob_at("sha512:abc", b"other algorithm")
            .unwrap();
        assert!(dir.path().join("blobs/sha512/abc").is_file());
    }

    #[test]
    fn index_json_override_and_archive_order() {
        let dir = tempfile::tempdir().unwrap();
        let layout_dir = dir.path().join("layout");
        let mut layout = LayoutWriter::create(&layout_dir).unwrap();
        let digest = layout.put_blob(b"{not json").unwrap();
        let desc = Descriptor::new(crate::media_types::MANIFEST, &digest, 9);
        layout.add_tagged(desc, "broken");
        assert_eq!(
            String::from_utf8(layout.index_json().unwrap()).unwrap(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":9,"annotations":{{"org.opencontainers.image.ref.name":"broken"}}}}]}}"#
            )
        );
        layout.set_index_json(b"[]");
        layout.finish().unwrap();
        assert_eq!(std::fs::read(layout_dir.join("index.json")).unwrap(), b"[]");

        let archive = dir.path().join("a.tar");
        write_oci_archive(&layout_dir, &archive).unwrap();
        let bytes = std::fs::read(&archive).unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mtime().unwrap(), 0);
            assert_eq!(e.header().uid().unwrap(), 0);
            names.push(String::from_utf8(e.path_bytes().into_owned()).unwrap());
        }
        assert_eq!(
            names,
            vec![
                "blobs/".to_owned(),
                "blobs/sha256/".to_owned(),
                format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
                "index.json".to_owned(),
                "oci-layout".to_owned(),
            ]
        );
    }
}
