//! The squashed tree of an image as one tar stream: [`ScanImage::export_tar`].

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use serde::Serialize;
use strata_index::{EntryKind, EntryRef};
use tar::{EntryType, Header};

use crate::image::{Error, Result, ScanImage, display_path};

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Entries under the root written as tar members (PAX extension headers and the root `./` not
    /// counted): every path of the image's tree but `/`.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Members written as hardlinks to an earlier member.
    pub hardlinks: u64,
}

/// The longest name or link target a ustar header holds; longer ones go into PAX records.
const USTAR_NAME: usize = 100;
/// The largest uid, gid or size a ustar header holds in octal; larger ones go into PAX records too.
const USTAR_ID_MAX: u64 = 0o7777777;
const USTAR_SIZE_MAX: u64 = 0o77777777777;

/// A regular file's bytes as a reader, fetched through the layer's checkpoints.
struct Content<'a> {
    image: &'a ScanImage,
    layer: usize,
    entry: EntryRef<'a>,
    offset: u64,
}

impl Read for Content<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .image
            .view()
            .read_at(self.layer, self.entry, self.offset, buf)
            .map_err(io::Error::other)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Turns an error from writing a member back into the scanner's error: a layer read failure stays one.
fn member_error(path: &[u8], e: io::Error) -> Error {
    let what = format!("writing {} to the tar", display_path(path));
    if !e
        .get_ref()
        .is_some_and(|inner| inner.is::<strata_layer::Error>())
    {
        return Error::Io { what, source: e };
    }
    match e
        .into_inner()
        .map(|inner| inner.downcast::<strata_layer::Error>())
    {
        Some(Ok(layer)) => Error::Layer(*layer),
        Some(Err(other)) => Error::Io {
            what,
            source: io::Error::other(other),
        },
        None => Error::Io {
            what,
            source: io::Error::other("unknown error"),
        },
    }
}

impl ScanImage {
    /// Writes the image's squashed tree (what `umoci unpack` puts in `rootfs/`) to `out` as a tar stream,
    /// file contents streamed from the layers (nothing is written to disk). Members come in walk order
    /// (parents first); names and link targets longer than 100 bytes, sub-second or negative mtimes,
    /// large ids and sizes, and xattrs (`SCHILY.xattr.NAME`) are PAX records; devices keep their numbers;
    /// files sharing bytes through hardlinks are one regular member and hardlinks to it. Each member
    /// carries its owner (numeric), permission bits and mtime; a hardlinked file's metadata is its data's.
    /// The root directory is the first member, `./`, when a layer has an entry for it (the topmost one's
    /// metadata, as `umoci unpack` gives `rootfs/`); it is not counted in [`ExportReport::entries`].
    pub fn export_tar(&self, out: &mut dyn Write) -> Result<ExportReport> {
        let merged = self.view().merged();
        // The bytes (layer, offset) that some visible hardlink shares.
        let mut shared: HashSet<(usize, u64)> = HashSet::new();
        for item in merged.walk() {
            let (_, m) = item?;
            if m.entry.kind() == EntryKind::Hardlink {
                let (layer, data) = self.view().data_entry(m.layer, m.entry)?;
                shared.insert((layer, data.offset()));
            }
        }
        // For shared bytes already written: the member that holds them.
        let mut first: HashMap<(usize, u64), Vec<u8>> = HashMap::new();
        let mut report = ExportReport::default();
        let mut builder = tar::Builder::new(out);
        // The root first, as `./`, when a layer has an entry for it (its metadata is then the image's).
        let root = merged.root()?;
        let root = (!root.entry.is_implicit()).then_some(Ok((Vec::new(), root)));
        for item in root.into_iter().chain(merged.walk()) {
            let (path, m) = item?;
            let entry = m.entry;
            let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
            let (meta, data) = match entry.kind() {
                EntryKind::File | EntryKind::Hardlink => {
                    let (layer, data) = self.view().data_entry(m.layer, entry)?;
                    (data, Some((layer, data)))
                }
                _ => (entry, None),
            };
            let mut header = Header::new_ustar();
            // As GNU tar: device numbers are written (as zeros) for every member.
            let (major, minor) = match entry.kind() {
                EntryKind::CharDevice | EntryKind::BlockDevice => {
                    (entry.dev_major(), entry.dev_minor())
                }
                _ => (0, 0),
            };
            let unrepresentable = |e: io::Error| Error::Unrepresentable {
                path: display_path(&path),
                reason: e.to_string(),
            };
            header.set_device_major(major).map_err(unrepresentable)?;
            header.set_device_minor(minor).map_err(unrepresentable)?;
            let mut name = path.clone();
            let mut link: Option<Vec<u8>> = None;
            let mut size = 0u64;
            match entry.kind() {
                EntryKind::Dir => {
                    header.set_entry_type(EntryType::Directory);
                    if name.is_empty() {
                        name.push(b'.');
                    }
                    name.push(b'/');
                }
                EntryKind::Symlink => {
                    header.set_entry_type(EntryType::Symlink);
                    link = Some(entry.link().to_vec());
                }
                EntryKind::CharDevice | EntryKind::BlockDevice => {
                    header.set_entry_type(if entry.kind() == EntryKind::CharDevice {
                        EntryType::Char
                    } else {
                        EntryType::Block
                    });
                }
                EntryKind::Fifo => header.set_entry_type(EntryType::Fifo),
                EntryKind::File | EntryKind::Hardlink => {
                    let Some((layer, data)) = data else {
                        continue;
                    };
                    let identity = (layer, data.offset());
                    match first.get(&identity) {
                        Some(target) => {
                            header.set_entry_type(EntryType::Link);
                            link = Some(target.clone());
                            report.hardlinks += 1;
                        }
                        None => {
                            if shared.contains(&identity) {
                                first.insert(identity, path.clone());
                            }
                            header.set_entry_type(EntryType::Regular);
                            size = data.size();
                        }
                    }
                }
                // Markers never reach the merged view.
                EntryKind::Whiteout | EntryKind::Opaque => continue,
            }
            set_bytes(&mut header.as_old_mut().name, &name);
            if name.len() > USTAR_NAME {
                pax.push(("path".into(), name.clone()));
            }
            if let Some(link) = &link {
                set_bytes(&mut header.as_old_mut().linkname, link);
                if link.len() > USTAR_NAME {
                    pax.push(("linkpath".into(), link.clone()));
                }
            }
            header.set_mode(meta.mode() & 0o7777);
            for (key, id) in [("uid", meta.uid()), ("gid", meta.gid())] {
                let id = u64::from(id);
                if id > USTAR_ID_MAX {
                    pax.push((key.into(), id.to_string().into_bytes()));
                }
            }
            header.set_uid(u64::from(meta.uid()).min(USTAR_ID_MAX));
            header.set_gid(u64::from(meta.gid()).min(USTAR_ID_MAX));
            let (mtime, nsec) = (meta.mtime(), meta.mtime_nsec());
            header.set_mtime(u64::try_from(mtime).unwrap_or(0).min(USTAR_SIZE_MAX));
            if nsec != 0 || !(0..=USTAR_SIZE_MAX as i64).contains(&mtime) {
                let value = if nsec == 0 {
                    mtime.to_string()
                } else if mtime >= 0 {
                    format!("{mtime}.{nsec:09}")
                } else {
                    // -1.75 s is (-2 s, 250000000 ns): PAX writes it "-1.750000000".
                    let (s, ns) = (mtime + 1, 1_000_000_000 - nsec);
                    if s == 0 {
                        format!("-0.{ns:09}")
                    } else {
                        format!("{s}.{ns:09}")
                    }
                };
                pax.push(("mtime".into(), value.into_bytes()));
            }
            header.set_size(size.min(USTAR_SIZE_MAX));
            if size > USTAR_SIZE_MAX {
                pax.push(("size".into(), size.to_string().into_bytes()));
            }
            for (key, value) in meta.xattrs() {
                match std::str::from_utf8(key) {
                    Ok(key) => pax.push((format!("SCHILY.xattr.{key}"), value.to_vec())),
                    Err(_) => {
                        return Err(Error::Unrepresentable {
                            path: display_path(&path),
                            reason: "an xattr name that is not UTF-8 cannot be a PAX record".into(),
                        });
                    }
                }
            }
            if !pax.is_empty() {
                builder
                    .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .map_err(|e| member_error(&path, e))?;
            }
            header.set_cksum();
            match (size, data) {
                (1.., Some((layer, data))) => {
                    let content = Content {
                        image: self,
                        layer,
                        entry: data,
                        offset: 0,
                    };
                    builder
                        .append(&header, content.take(size))
                        .map_err(|e| member_error(&path, e))?;
                    report.bytes += size;
                }
                _ => builder
                    .append(&header, io::empty())
                    .map_err(|e| member_error(&path, e))?,
            }
            if !path.is_empty() {
                report.entries += 1;
            }
        }
        builder
            .into_inner()
            .and_then(|out| out.flush())
            .map_err(|source| Error::Io {
                what: "finishing the tar".into(),
                source,
            })?;
        Ok(report)
    }
}

/// Copies `value` into a header field, truncated to it (the rest stays NUL).
fn set_bytes(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}
