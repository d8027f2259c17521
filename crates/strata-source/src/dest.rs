//! Writing images: the destinations of `strata copy` (`oci:`, `oci-archive:`, `docker-archive:`, `dir:`,
//! `docker://`) and what they share — files written whole before they are renamed into place.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use strata_image::ImageDestination;
use strata_oci::{Algorithm, Digest, HashingWriter};

use crate::{
    Error, Result, SourceOptions, dir, docker_archive, docker_archive_dest, layout, layout_dest,
    registry,
};

/// The forms of destination names, for help and messages.
pub const DESTINATION_FORMS: [&str; 5] = [
    "oci:DIR[:TAG]",
    "oci-archive:FILE[:TAG]",
    "docker-archive:FILE[:REPO:TAG]",
    "dir:DIR",
    "docker://HOST[:PORT]/NAME[:TAG]",
];

/// Opens image name `name` (`transport:…`) for writing; `options` apply to `docker://`. Nothing is
/// written until the first blob (a registry is not asked anything until then either).
///
/// # Errors
/// When the name is malformed or names a transport strata cannot write, or the place cannot be written
/// (a `dir:` over a directory that is not an image, a `docker-archive:` file that exists already).
pub fn open_destination(name: &str, options: &SourceOptions) -> Result<Box<dyn ImageDestination>> {
    let invalid = |reason: &str| Error::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((transport, rest)) = name.split_once(':') else {
        return Err(invalid("no transport prefix"));
    };
    match transport {
        "oci" | "oci-archive" => {
            let (path, selector) = layout::parse_selector(rest).map_err(|r| invalid(&r))?;
            if path.is_empty() {
                return Err(invalid("empty path"));
            }
            let tag = match selector {
                layout::Selector::Only => None,
                layout::Selector::Tag(tag) => Some(tag),
                layout::Selector::Digest(_) => {
                    return Err(invalid("a destination cannot name a digest"));
                }
            };
            let dest = if transport == "oci" {
                layout_dest::LayoutDestination::open_dir(name, Path::new(path), tag)?
            } else {
                layout_dest::LayoutDestination::open_archive(name, Path::new(path), tag)?
            };
            Ok(Box::new(dest))
        }
        "docker-archive" => {
            let (path, selector) = docker_archive::parse_selector(rest).map_err(|r| invalid(&r))?;
            if path.is_empty() {
                return Err(invalid("empty path"));
            }
            let reference = match selector {
                docker_archive::Selector::Only => None,
                docker_archive::Selector::Reference(r) => Some(r),
                docker_archive::Selector::Index(_) => {
                    return Err(invalid("a destination cannot name an image number"));
                }
            };
            Ok(Box::new(docker_archive_dest::ArchiveDestination::open(
                name,
                Path::new(path),
                reference,
            )?))
        }
        "dir" => {
            if rest.is_empty() {
                return Err(invalid("empty path"));
            }
            Ok(Box::new(dir::DirDestination::open(name, Path::new(rest))?))
        }
        "docker" => Ok(Box::new(registry::RegistryDestination::open(
            name, rest, options,
        )?)),
        _ => Err(Error::UnknownTransport {
            transport: transport.to_owned(),
            known: "oci:, oci-archive:, docker-archive:, dir:, docker:// (containers-storage: \
                    through the store)"
                .into(),
        }),
    }
}

/// `path`'s parent directory (`.` for a bare file name) and its file name.
pub(crate) fn split_path(name: &str, path: &Path) -> Result<(PathBuf, std::ffi::OsString)> {
    let file = path
        .file_name()
        .ok_or_else(|| Error::InvalidName {
            name: name.to_owned(),
            reason: format!("{} names no file", path.display()),
        })?
        .to_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, file))
}

/// A staging directory beside `path` (`.NAME.strata-XXXXXX` in its parent), removed when dropped unless
/// kept.
pub(crate) fn staging_dir(name: &str, path: &Path) -> Result<tempfile::TempDir> {
    let (parent, file) = split_path(name, path)?;
    tempfile::Builder::new()
        .prefix(&format!(".{}.strata-", file.to_string_lossy()))
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))
}

/// Copies `reader` into a new file at `path` (which must not exist), returning the bytes written; the file
/// is removed again when the copy or the stream fails (a stream that fails verification included).
pub(crate) fn write_new_file(path: &Path, reader: &mut dyn Read) -> Result<u64> {
    let result = (|| -> io::Result<u64> {
        let mut file = File::options().write(true).create_new(true).open(path)?;
        let n = io::copy(reader, &mut file)?;
        file.flush()?;
        Ok(n)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(path);
        Error::io(path, e)
    })
}

/// A [`BlobSink`](strata_image::BlobSink) for a destination that keeps blobs as files: the bytes go to a
/// temporary file in `dir`, hashed as they come; [`keep`](strata_image::BlobSink::keep) gives the file and
/// its digest to `place`, which renames it where that digest goes. Dropped without `keep`, the temporary
/// file is removed.
pub(crate) struct FileSink<'a> {
    file: HashingWriter<io::BufWriter<tempfile::NamedTempFile>>,
    place: Place<'a>,
}

/// What keeps a [`FileSink`]'s finished file under its digest.
type Place<'a> = Box<dyn FnOnce(tempfile::NamedTempFile, &Digest) -> Result<()> + Send + 'a>;

impl<'a> FileSink<'a> {
    /// A sink writing into `dir`; `place` keeps the finished file under its digest.
    pub(crate) fn new(
        dir: &Path,
        place: impl FnOnce(tempfile::NamedTempFile, &Digest) -> Result<()> + Send + 'a,
    ) -> Result<Self> {
        let file = tempfile::Builder::new()
            .prefix(".strata-blob-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        Ok(FileSink {
            file: HashingWriter::new(
                io::BufWriter::with_capacity(1 << 20, file),
                Algorithm::Sha256,
            ),
            place: Box::new(place),
        })
    }
}

impl Write for FileSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl strata_image::BlobSink for FileSink<'_> {
    fn keep(self: Box<Self>) -> Result<(Digest, u64)> {
        let FileSink { file, place } = *self;
        let (file, hash) = file.into_parts();
        let file = file.into_inner().map_err(|e| {
            let (error, writer) = e.into_parts();
            Error::io(writer.get_ref().path(), error)
        })?;
        let size = hash.len();
        let digest = hash.finish();
        place(file, &digest)?;
        Ok((digest, size))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory renamed over it.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".strata-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
