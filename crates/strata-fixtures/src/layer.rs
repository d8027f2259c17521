//! Layer tarballs built entry by entry, and their compression.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::image::Descriptor;
use crate::{Error, Result, sha256_digest};

/// Modification time given to every entry unless overridden: 2023-11-14T22:13:20Z.
pub const DEFAULT_MTIME: u64 = 1_700_000_000;

/// Size of one tar block.
const BLOCK: usize = 512;
/// Size of the ustar `name` and `linkname` fields.
const NAME_LEN: usize = 100;
/// Size of the ustar `prefix` field.
const PREFIX_LEN: usize = 155;
/// Size of the ustar `uname` and `gname` fields.
const OWNER_NAME_LEN: usize = 32;
/// Name given to the PAX extended header blocks this crate writes.
const PAX_HEADER_NAME: &[u8] = b"././@PaxHeader";
/// Name given to GNU long name / long link blocks.
const GNU_LONGLINK_NAME: &[u8] = b"././@LongLink";

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Plain tar (`application/vnd.oci.image.layer.v1.tar`).
    #[default]
    None,
    /// Gzip, level 6, header mtime 0, no file name
    /// (`application/vnd.oci.image.layer.v1.tar+gzip`).
    Gzip,
    /// Zstandard, level 3, single thread, library default frame flags
    /// (`application/vnd.oci.image.layer.v1.tar+zstd`).
    Zstd,
}

impl Compression {
    /// The OCI layer media type for a blob compressed this way.
    pub const fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Compresses `tar` deterministically as `compression` says.
pub fn compress(tar: &[u8], compression: Compression) -> Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(tar.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::new(6));
            encoder.write_all(tar)?;
            Ok(encoder.finish()?)
        }
        Compression::Zstd => Ok(zstd::bulk::compress(tar, 3)?),
    }
}

/// How to encode a name (or link target) longer than the 100-byte ustar field.
///
/// Names that fit in 100 bytes are always written directly in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LongName {
    /// PAX extended header records `path` / `linkpath` (the header keeps the
    /// first 100 bytes).
    #[default]
    Pax,
    /// GNU `././@LongLink` blocks of type `L` (name) / `K` (link target), and
    /// a GNU-format header for the entry itself.
    Gnu,
    /// The ustar `prefix` field (name split at a `/`; at most 155 + 100
    /// bytes). Link targets cannot use it: a long one is an error.
    UstarPrefix,
}

/// Something usable as a raw tar path: the bytes are written verbatim.
///
/// Implemented for strings, byte slices and vectors, `OsStr`/`OsString` and
/// `Path`/`PathBuf` (their encoded bytes, i.e. the raw bytes on Unix), so
/// non-UTF-8 names can be given directly.
pub trait TarPath {
    /// The bytes to store for this path.
    fn tar_path_bytes(&self) -> &[u8];
}

impl TarPath for str {
    fn tar_path_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}
impl TarPath for String {
    fn tar_path_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}
impl TarPath for [u8] {
    fn tar_path_bytes(&self) -> &[u8] {
        self
    }
}
impl<const N: usize> TarPath for [u8; N] {
    fn tar_path_bytes(&self) -> &[u8] {
        self
    }
}
impl TarPath for Vec<u8> {
    fn tar_path_bytes(&self) -> &[u8] {
        self
    }
}
impl TarPath for OsStr {
    fn tar_path_bytes(&self) -> &[u8] {
        self.as_encoded_bytes()
    }
}
impl TarPath for OsString {
    fn tar_path_bytes(&self) -> &[u8] {
        self.as_encoded_bytes()
    }
}
impl TarPath for Path {
    fn tar_path_bytes(&self) -> &[u8] {
        self.as_os_str().as_encoded_bytes()
    }
}
impl TarPath for PathBuf {
    fn tar_path_bytes(&self) -> &[u8] {
        self.as_os_str().as_encoded_bytes()
    }
}
impl<T: TarPath + ?Sized> TarPath for &T {
    fn tar_path_bytes(&self) -> &[u8] {
        (**self).tar_path_bytes()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink,
    Hardlink,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    /// Any type flag with any data, through the normal header encoder.
    Typed {
        typeflag: u8,
        data: Vec<u8>,
    },
    /// A complete 512-byte header written verbatim, then data padded to a block.
    RawHeader {
        header: Box<[u8; BLOCK]>,
        data: Vec<u8>,
    },
    /// Bytes appended verbatim, no padding.
    RawBytes(Vec<u8>),
}

/// One entry of a layer, as added to a [`LayerBuilder`].
///
/// The `LayerBuilder` methods that add an entry return `&mut Entry`, so its
/// metadata can be adjusted in place:
///
/// ```
/// let mut layer = strata_fixtures::LayerBuilder::new();
/// layer.file("usr/bin/su", b"#!/bin/true\n").mode(0o4755).owner(0, 0);
/// ```
///
/// Names and link targets are written exactly as given (no normalisation, no
/// validation), except that [`LayerBuilder::dir`] appends a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    name: Vec<u8>,
    link: Option<Vec<u8>>,
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: Option<String>,
    gname: Option<String>,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
    pax: Vec<(String, Vec<u8>)>,
    long_name: LongName,
}

impl Entry {
    fn new(name: &[u8], kind: Kind, mode: u32) -> Self {
        Entry {
            name: name.to_vec(),
            link: None,
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: None,
            gname: None,
            mtime: DEFAULT_MTIME,
            xattrs: Vec::new(),
            pax: Vec::new(),
            long_name: LongName::default(),
        }
    }

    /// The entry name as it will be written.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Sets the permission bits, including setuid (`0o4000`), setgid
    /// (`0o2000`) and sticky (`0o1000`).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Sets the numeric owner and group.
    pub fn owner(&mut self, uid: u64, gid: u64) -> &mut Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Sets the owner and group names (`uname` / `gname`). Names longer than
    /// 32 bytes go into PAX records.
    pub fn names(&mut self, uname: &str, gname: &str) -> &mut Self {
        self.uname = Some(uname.to_owned());
        self.gname = Some(gname.to_owned());
        self
    }

    /// Sets the owner name only.
    pub fn uname(&mut self, uname: &str) -> &mut Self {
        self.uname = Some(uname.to_owned());
        self
    }

    /// Sets the group name only.
    pub fn gname(&mut self, gname: &str) -> &mut Self {
        self.gname = Some(gname.to_owned());
        self
    }

    /// Sets the modification time in seconds since the epoch (default
    /// [`DEFAULT_MTIME`]).
    pub fn mtime(&mut self, mtime: u64) -> &mut Self {
        self.mtime = mtime;
        self
    }

    /// Adds an extended attribute, written as the PAX record
    /// `SCHILY.xattr.<key>` (attributes keep the order they were added in).
    pub fn xattr(&mut self, key: &str, value: impl AsRef<[u8]>) -> &mut Self {
        self.xattrs.push((key.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Adds an arbitrary PAX record (written after any `path`, `linkpath`,
    /// `uname`, `gname` and xattr records).
    pub fn pax_record(&mut self, key: &str, value: impl AsRef<[u8]>) -> &mut Self {
        self.pax.push((key.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Chooses how a name or link target over 100 bytes is encoded.
    pub fn long_name(&mut self, style: LongName) -> &mut Self {
        self.long_name = style;
        self
    }

    /// Sets (or overrides) the link target stored in the header, whatever the
    /// entry type.
    pub fn link_name(&mut self, target: impl TarPath) -> &mut Self {
        self.link = Some(target.tar_path_bytes().to_vec());
        self
    }
}

/// Builds one layer tarball, entry by entry, in the order given.
///
/// Every entry gets uid/gid 0 and mtime [`DEFAULT_MTIME`] unless changed
/// through the returned [`Entry`]. Default modes: directories `0o755`,
/// files `0o644`, symlinks `0o777`, devices `0o666`, fifos `0o644`,
/// whiteouts and opaque markers `0o644`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerBuilder {
    entries: Vec<Entry>,
    omit_end_marker: bool,
    truncate_at: Option<usize>,
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, entry: Entry) -> &mut Entry {
        self.entries.push(entry);
        let last = self.entries.len() - 1;
        &mut self.entries[last]
    }

    /// Adds a directory. A trailing `/` is appended to the name if missing.
    pub fn dir(&mut self, name: impl TarPath) -> &mut Entry {
        let mut name = name.tar_path_bytes().to_vec();
        if !name.ends_with(b"/") {
            name.push(b'/');
        }
        self.push(Entry::new(&name, Kind::Dir, 0o755))
    }

    /// Adds a regular file with the given contents.
    pub fn file(&mut self, name: impl TarPath, contents: impl AsRef<[u8]>) -> &mut Entry {
        let kind = Kind::File(contents.as_ref().to_vec());
        self.push(Entry::new(name.tar_path_bytes(), kind, 0o644))
    }

    /// Adds a symbolic link `name -> target` (target stored verbatim, relative
    /// or absolute).
    pub fn symlink(&mut self, name: impl TarPath, target: impl TarPath) -> &mut Entry {
        let entry = self.push(Entry::new(name.tar_path_bytes(), Kind::Symlink, 0o777));
        entry.link = Some(target.tar_path_bytes().to_vec());
        entry
    }

    /// Adds a hard link `name` to the archive path `target`, which may be a
    /// file added earlier in this layer or a file of a lower layer.
    pub fn hardlink(&mut self, name: impl TarPath, target: impl TarPath) -> &mut Entry {
        let entry = self.push(Entry::new(name.tar_path_bytes(), Kind::Hardlink, 0o644));
        entry.link = Some(target.tar_path_bytes().to_vec());
        entry
    }

    /// Adds a whiteout deleting `path` from lower layers: an empty regular
    /// file named `<dir>/.wh.<base>`.
    pub fn whiteout(&mut self, path: impl TarPath) -> &mut Entry {
        let path = trim_trailing_slashes(path.tar_path_bytes());
        let (dir, base) = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => (&b""[..], path),
        };
        let mut name = dir.to_vec();
        name.extend_from_slice(b".wh.");
        name.extend_from_slice(base);
        self.push(Entry::new(&name, Kind::File(Vec::new()), 0o644))
    }

    /// Adds an opaque-directory marker `<dir>/.wh..wh..opq`: lower layers'
    /// contents of `dir` are hidden. Pass `""` for the root directory.
    pub fn opaque(&mut self, dir: impl TarPath) -> &mut Entry {
        let dir = trim_trailing_slashes(dir.tar_path_bytes());
        let mut name = dir.to_vec();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(b".wh..wh..opq");
        self.push(Entry::new(&name, Kind::File(Vec::new()), 0o644))
    }

    /// Adds a character device node.
    pub fn char_device(&mut self, name: impl TarPath, major: u32, minor: u32) -> &mut Entry {
        let kind = Kind::CharDevice { major, minor };
        self.push(Entry::new(name.tar_path_bytes(), kind, 0o666))
    }

    /// Adds a block device node.
    pub fn block_device(&mut self, name: impl TarPath, major: u32, minor: u32) -> &mut Entry {
        let kind = Kind::BlockDevice { major, minor };
        self.push(Entry::new(name.tar_path_bytes(), kind, 0o666))
    }

    /// Adds a named pipe.
    pub fn fifo(&mut self, name: impl TarPath) -> &mut Entry {
        self.push(Entry::new(name.tar_path_bytes(), Kind::Fifo, 0o644))
    }

    /// Adds an entry with an arbitrary type flag (e.g. `b'S'`, `b'g'`,
    /// `b'V'`, or a made-up one) and data, encoded like any other entry.
    pub fn typed(
        &mut self,
        name: impl TarPath,
        typeflag: u8,
        data: impl AsRef<[u8]>,
    ) -> &mut Entry {
        let kind = Kind::Typed {
            typeflag,
            data: data.as_ref().to_vec(),
        };
        self.push(Entry::new(name.tar_path_bytes(), kind, 0o644))
    }

    /// Escape hatch: appends `header` verbatim (its checksum is *not*
    /// recomputed — call [`tar::Header::set_cksum`] first if it should be
    /// valid), followed by `data` zero-padded to a 512-byte boundary.
    ///
    /// Use [`raw_header_bytes`](Self::raw_header_bytes) for any name bytes.
    pub fn raw_header(&mut self, header: &Header, data: impl AsRef<[u8]>) -> &mut Self {
        let kind = Kind::RawHeader {
            header: Box::new(*header.as_bytes()),
            data: data.as_ref().to_vec(),
        };
        self.entries.push(Entry::new(b"", kind, 0));
        self
    }

    /// Escape hatch: appends a ustar header with the exact `name` bytes (any
    /// bytes, e.g. `../x` or `/abs`, truncated to 100), the given type flag,
    /// mode `0o644`, uid/gid 0, mtime [`DEFAULT_MTIME`], a valid checksum and
    /// `data`. Nothing is validated or normalised.
    pub fn raw_header_bytes(
        &mut self,
        name: impl TarPath,
        typeflag: u8,
        data: impl AsRef<[u8]>,
    ) -> &mut Self {
        let data = data.as_ref();
        let mut header = Header::new_ustar();
        set_field(&mut header.as_old_mut().name, name.tar_path_bytes());
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(DEFAULT_MTIME);
        header.set_size(data.len() as u64);
        header.set_entry_type(EntryType::new(typeflag));
        header.set_cksum();
        self.raw_header(&header, data)
    }

    /// Escape hatch: appends `bytes` verbatim, without any padding (so the
    /// stream may become misaligned on purpose).
    pub fn raw_bytes(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        let kind = Kind::RawBytes(bytes.as_ref().to_vec());
        self.entries.push(Entry::new(b"", kind, 0));
        self
    }

    /// Leaves out the two zero blocks that end a tar stream.
    pub fn omit_end_marker(&mut self) -> &mut Self {
        self.omit_end_marker = true;
        self
    }

    /// Cuts the uncompressed tar stream after `len` bytes (before
    /// compression), producing a truncated archive.
    pub fn truncate_at(&mut self, len: usize) -> &mut Self {
        self.truncate_at = Some(len);
        self
    }

    /// The entries added so far (raw escape-hatch items included, with empty
    /// names).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The uncompressed tar stream.
    pub fn tar_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for entry in &self.entries {
            write_entry(&mut out, entry)?;
        }
        if !self.omit_end_marker {
            out.extend_from_slice(&[0u8; 2 * BLOCK]);
        }
        if let Some(len) = self.truncate_at {
            out.truncate(len);
        }
        Ok(out)
    }

    /// Builds the tar stream, its diff ID and the blob compressed as asked.
    pub fn build(&self, compression: Compression) -> Result<BuiltLayer> {
        let tar = self.tar_bytes()?;
        let blob = compress(&tar, compression)?;
        Ok(BuiltLayer {
            diff_id: sha256_digest(&tar),
            digest: sha256_digest(&blob),
            tar,
            blob,
            compression,
            annotations: BTreeMap::new(),
        })
    }
}

/// A layer built by [`LayerBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// The uncompressed tar stream.
    pub tar: Vec<u8>,
    /// `sha256:` digest of [`tar`](Self::tar) (the config's `diff_id`).
    pub diff_id: String,
    /// How [`blob`](Self::blob) is compressed.
    pub compression: Compression,
    /// The layer blob as stored in the layout.
    pub blob: Vec<u8>,
    /// `sha256:` digest of [`blob`](Self::blob).
    pub digest: String,
    /// The descriptor's annotations (a lazy format's table-of-contents digest and position).
    pub annotations: BTreeMap<String, String>,
}

impl BuiltLayer {
    /// The OCI media type of the blob.
    pub fn media_type(&self) -> &'static str {
        self.compression.media_type()
    }

    /// A descriptor for the blob (media type, digest, size).
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::new(self.media_type(), &self.digest, self.blob.len() as u64);
        d.annotations = self.annotations.clone();
        d
    }
}

fn trim_trailing_slashes(mut path: &[u8]) -> &[u8] {
    while let [rest @ .., b'/'] = path {
        path = rest;
    }
    path
}

/// Copies `bytes` (truncated to the field) into a header field, NUL-filling
/// the remainder.
fn set_field(field: &mut [u8], bytes: &[u8]) {
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
    field[n..].fill(0);
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

fn invalid(name: &[u8], reason: &str) -> Error {
    Error::InvalidEntry {
        name: String::from_utf8_lossy(name).into_owned(),
        reason: reason.to_owned(),
    }
}

/// Splits `name` for the ustar prefix field: the shortest prefix (ending
/// before a `/`) that leaves at most 100 bytes of name.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    name.iter().enumerate().find_map(|(i, &b)| {
        let rest = &name[i + 1..];
        (b == b'/' && i > 0 && i <= PREFIX_LEN && !rest.is_empty() && rest.len() <= NAME_LEN)
            .then(|| (&name[..i], rest))
    })
}

/// Writes a GNU `././@LongLink` block of type `L` or `K` carrying `value`.
fn write_gnu_long(out: &mut Vec<u8>, typeflag: u8, value: &[u8]) {
    let mut header = Header::new_gnu();
    set_field(&mut header.as_old_mut().name, GNU_LONGLINK_NAME);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(value.len() as u64 + 1);
    header.set_entry_type(EntryType::new(typeflag));
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(value);
    out.push(0);
    pad(out);
}

/// Encodes PAX records `"<len> <key>=<value>\n"`.
fn pax_data(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        let rest = 3 + key.len() + value.len(); // ' ', '=', '\n'
        let mut digits = 1;
        while rest + digits >= 10usize.pow(digits as u32) {
            digits += 1;
        }
        data.extend_from_slice((rest + digits).to_string().as_bytes());
        data.push(b' ');
        data.extend_from_slice(key.as_bytes());
        data.push(b'=');
        data.extend_from_slice(value);
        data.push(b'\n');
    }
    data
}

fn write_pax(out: &mut Vec<u8>, records: &[(String, Vec<u8>)], mtime: u64) {
    let data = pax_data(records);
    let mut header = Header::new_ustar();
    set_field(&mut header.as_old_mut().name, PAX_HEADER_NAME);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(data.len() as u64);
    header.set_entry_type(EntryType::XHeader);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    pad(out);
}

fn write_entry(out: &mut Vec<u8>, entry: &Entry) -> Result<()> {
    let (typeflag, data, device): (u8, &[u8], (u32, u32)) = match &entry.kind {
        Kind::RawHeader { header, data } => {
            out.extend_from_slice(&header[..]);
            out.extend_from_slice(data);
            pad(out);
            return Ok(());
        }
        Kind::RawBytes(bytes) => {
            out.extend_from_slice(bytes);
            return Ok(());
        }
        Kind::Dir => (b'5', &[], (0, 0)),
        Kind::File(data) => (b'0', data, (0, 0)),
        Kind::Symlink => (b'2', &[], (0, 0)),
        Kind::Hardlink => (b'1', &[], (0, 0)),
        Kind::CharDevice { major, minor } => (b'3', &[], (*major, *minor)),
        Kind::BlockDevice { major, minor } => (b'4', &[], (*major, *minor)),
        Kind::Fifo => (b'6', &[], (0, 0)),
        Kind::Typed { typeflag, data } => (*typeflag, data, (0, 0)),
    };

    let name = entry.name.as_slice();
    let link = entry.link.as_deref();
    let is_long = name.len() > NAME_LEN || link.is_some_and(|l| l.len() > NAME_LEN);
    let gnu = entry.long_name == LongName::Gnu && is_long;
    let mut header = if gnu {
        Header::new_gnu()
    } else {
        Header::new_ustar()
    };
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();

    if name.len() <= NAME_LEN {
        set_field(&mut header.as_old_mut().name, name);
    } else {
        match entry.long_name {
            LongName::Pax => {
                pax.push(("path".to_owned(), name.to_vec()));
                set_field(&mut header.as_old_mut().name, name);
            }
            LongName::Gnu => {
                write_gnu_long(out, b'L', name);
                set_field(&mut header.as_old_mut().name, name);
            }
            LongName::UstarPrefix => {
                let (prefix, rest) = split_ustar(name)
                    .ok_or_else(|| invalid(name, "name cannot be split into ustar prefix/name"))?;
                let ustar = header
                    .as_ustar_mut()
                    .ok_or_else(|| invalid(name, "not a ustar header"))?;
                set_field(&mut ustar.prefix, prefix);
                set_field(&mut ustar.name, rest);
            }
        }
    }

    if let Some(link) = link {
        if link.len() <= NAME_LEN {
            set_field(&mut header.as_old_mut().linkname, link);
        } else {
            match entry.long_name {
                LongName::Pax => {
                    pax.push(("linkpath".to_owned(), link.to_vec()));
                    set_field(&mut header.as_old_mut().linkname, link);
                }
                LongName::Gnu => {
                    write_gnu_long(out, b'K', link);
                    set_field(&mut header.as_old_mut().linkname, link);
                }
                LongName::UstarPrefix => {
                    return Err(invalid(
                        name,
                        "ustar cannot store a link target over 100 bytes",
                    ));
                }
            }
        }
    }

    header.set_mode(entry.mode);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mtime(entry.mtime);
    header.set_size(data.len() as u64);
    header.set_entry_type(EntryType::new(typeflag));
    header.set_device_major(device.0)?;
    header.set_device_minor(device.1)?;
    if let Some(uname) = &entry.uname {
        if uname.len() <= OWNER_NAME_LEN {
            header.set_username(uname)?;
        } else {
            pax.push(("uname".to_owned(), uname.as_bytes().to_vec()));
        }
    }
    if let Some(gname) = &entry.gname {
        if gname.len() <= OWNER_NAME_LEN {
            header.set_groupname(gname)?;
        } else {
            pax.push(("gname".to_owned(), gname.as_bytes().to_vec()));
        }
    }
    for (key, value) in &entry.xattrs {
        pax.push((format!("SCHILY.xattr.{key}"), value.clone()));
    }
    pax.extend(entry.pax.iter().cloned());
    if !pax.is_empty() {
        write_pax(out, &pax, entry.mtime);
    }
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    pad(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// (path, type, link target, data) of each entry.
    type ReadEntry = (Vec<u8>, tar::EntryType, Option<Vec<u8>>, Vec<u8>);

    fn read_entries(tar: &[u8]) -> Vec<ReadEntry> {
        let mut archive = tar::Archive::new(tar);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path_bytes().into_owned();
            let ty = entry.header().entry_type();
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push((path, ty, link, data));
        }
        out
    }

    #[test]
    fn pax_record_length_includes_its_own_digits() {
        let data = pax_data(&[("path".to_owned(), vec![b'a'; 2])]);
        assert_eq!(data, b"11 path=aa\n");
        // 3 + 4 + 94 = 101 -> 3 digits -> 104
        let data = pax_data(&[("path".to_owned(), vec![b'a'; 94])]);
        assert!(data.starts_with(b"104 path="));
        assert_eq!(data.len(), 104);
        // 3 + 4 + 91 = 98 -> 2 digits would give 100, needs 3 -> 101
        let data = pax_data(&[("path".to_owned(), vec![b'a'; 91])]);
        assert!(data.starts_with(b"101 path="));
        assert_eq!(data.len(), 101);
    }

    #[test]
    fn entry_types_and_metadata_round_trip() {
        let mut layer = LayerBuilder::new();
        layer.dir("etc");
        layer
            .file("usr/bin/su", b"su")
            .mode(0o4755)
            .owner(0, 0)
            .names("root", "root");
        layer.symlink("bin", "usr/bin");
        layer.symlink("etc/localtime", "/usr/share/zoneinfo/UTC");
        layer.hardlink("usr/bin/su2", "usr/bin/su");
        layer.whiteout("etc/motd");
        layer.opaque("var/lib/");
        layer.char_device("dev/null", 1, 3);
        layer.block_device("dev/loop0", 7, 0).mode(0o660);
        layer.fifo("run/fifo").mode(0o600);
        layer.dir("tmp").mode(0o1777);
        layer
            .file("x", b"")
            .xattr("user.a", b"1")
            .xattr("security.capability", [1, 0, 0, 2]);
        let tar = layer.tar_bytes().unwrap();
        assert_eq!(tar.len() % BLOCK, 0);

        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            let path = entry.path_bytes().into_owned();
            let xattrs: Vec<(String, Vec<u8>)> = match entry.pax_extensions().unwrap() {
                Some(exts) => exts
                    .map(|ext| {
                        let ext = ext.unwrap();
                        (ext.key().unwrap().to_owned(), ext.value_bytes().to_vec())
                    })
                    .collect(),
                None => Vec::new(),
            };
            seen.push((path, h, xattrs));
        }
        let names: Vec<&[u8]> = seen.iter().map(|(p, _, _)| p.as_slice()).collect();
        assert_eq!(
            names,
            vec![
                &b"etc/"[..],
                b"usr/bin/su",
                b"bin",
                b"etc/localtime",
                b"usr/bin/su2",
                b"etc/.wh.motd",
                b"var/lib/.wh..wh..opq",
                b"dev/null",
                b"dev/loop0",
                b"run/fifo",
                b"tmp/",
                b"x",
            ]
        );
        let (_, su, _) = &seen[1];
        assert_eq!(su.mode().unwrap(), 0o4755);
        assert_eq!(su.username().unwrap(), Some("root"));
        assert_eq!(su.mtime().unwrap(), DEFAULT_MTIME);
        let (_, abs, _) = &seen[3];
        assert_eq!(
            abs.link_name_bytes().unwrap().as_ref(),
            b"/usr/share/zoneinfo/UTC"
        );
        let (_, hard, _) = &seen[4];
        assert_eq!(hard.entry_type(), EntryType::Link);
        assert_eq!(hard.link_name_bytes().unwrap().as_ref(), b"usr/bin/su");
        let (_, null, _) = &seen[7];
        assert_eq!(null.entry_type(), EntryType::Char);
        assert_eq!(null.device_major().unwrap(), Some(1));
        assert_eq!(null.device_minor().unwrap(), Some(3));
        let (_, lo, _) = &seen[8];
        assert_eq!(lo.entry_type(), EntryType::Block);
        assert_eq!(lo.device_major().unwrap(), Some(7));
        assert_eq!(seen[9].1.entry_type(), EntryType::Fifo);
        assert_eq!(seen[10].1.mode().unwrap(), 0o1777);
        let (_, _, xattrs) = &seen[11];
        assert_eq!(
            xattrs,
            &vec![
                ("SCHILY.xattr.user.a".to_owned(), b"1".to_vec()),
                (
                    "SCHILY.xattr.security.capability".to_owned(),
                    vec![1, 0, 0, 2]
                ),
            ]
        );
    }

    #[test]
    fn long_names_pax_gnu_and_prefix() {
        let long = format!("usr/share/{}/file.txt", "d".repeat(120));
        let long_target = format!("/{}", "t".repeat(150));
        let mut layer = LayerBuilder::new();
        layer.file(&long, b"pax").long_name(LongName::Pax);
        layer
            .file(format!("{long}.gnu"), b"gnu")
            .long_name(LongName::Gnu);
        layer
            .file(format!("{long}.ustar"), b"ustar")
            .long_name(LongName::UstarPrefix);
        layer.symlink("pax-link", &long_target);
        layer
            .symlink("gnu-link", &long_target)
            .long_name(LongName::Gnu);
        let tar = layer.tar_bytes().unwrap();

        // raw view: the GNU entries are preceded by ././@LongLink L/K blocks
        let mut raw = tar::Archive::new(&tar[..]);
        let mut raw_types = Vec::new();
        for e in raw.entries().unwrap().raw(true) {
            raw_types.push(e.unwrap().header().entry_type().as_byte());
        }
        assert_eq!(raw_types, b"x0L00x2K2".to_vec());

        let entries = read_entries(&tar);
        assert_eq!(entries[0].0, long.as_bytes());
        assert_eq!(entries[0].3, b"pax");
        assert_eq!(entries[1].0, format!("{long}.gnu").as_bytes());
        assert_eq!(entries[1].3, b"gnu");
        assert_eq!(entries[2].0, format!("{long}.ustar").as_bytes());
        assert_eq!(entries[3].2.as_deref(), Some(long_target.as_bytes()));
        assert_eq!(entries[4].2.as_deref(), Some(long_target.as_bytes()));
    }

    #[test]
    fn ustar_prefix_rejects_unsplittable_names() {
        let mut layer = LayerBuilder::new();
        layer
            .file("a".repeat(120), b"")
            .long_name(LongName::UstarPrefix);
        assert!(matches!(layer.tar_bytes(), Err(Error::InvalidEntry { .. })));
    }

    #[test]
    fn non_utf8_and_hostile_names_are_written_verbatim() {
        let mut layer = LayerBuilder::new();
        layer.file(b"caf\xe9.txt", b"latin-1");
        layer.raw_header_bytes("../escape", b'0', b"evil");
        layer.raw_header_bytes("/abs/path", b'0', b"abs");
        let tar = layer.tar_bytes().unwrap();
        let entries = read_entries(&tar);
        assert_eq!(entries[0].0, b"caf\xe9.txt");
        // the header must hold the exact bytes, whatever readers do with them
        assert_eq!(&tar[BLOCK * 2..BLOCK * 2 + 9], b"../escape");
        assert_eq!(&tar[BLOCK * 4..BLOCK * 4 + 9], b"/abs/path");
    }

    #[test]
    fn truncation_and_end_marker() {
        let mut layer = LayerBuilder::new();
        layer.file("a", vec![b'x'; 1000]);
        let full = layer.tar_bytes().unwrap();
        assert_eq!(full.len(), BLOCK * 3 + BLOCK * 2);
        let mut no_end = layer.clone();
        no_end.omit_end_marker();
        assert_eq!(no_end.tar_bytes().unwrap().len(), BLOCK * 3);
        let mut cut = layer.clone();
        cut.truncate_at(700);
        let built = cut.build(Compression::Gzip).unwrap();
        assert_eq!(built.tar.len(), 700);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&built.blob[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, built.tar);
    }

    #[test]
    fn compression_is_deterministic_and_decodes() {
        let mut layer = LayerBuilder::new();
        layer.file("etc/hostname", b"fixture\n");
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let a = layer.build(compression).unwrap();
            let b = layer.build(compression).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.digest, sha256_digest(&a.blob));
            assert_eq!(a.diff_id, sha256_digest(&a.tar));
            let decoded = match compression {
                Compression::None => a.blob.clone(),
                Compression::Gzip => {
                    // header: no name, mtime 0, OS 255
                    assert_eq!(&a.blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
                    let mut v = Vec::new();
                    flate2::read::GzDecoder::new(&a.blob[..])
                        .read_to_end(&mut v)
                        .unwrap();
                    v
                }
                Compression::Zstd => zstd::decode_all(&a.blob[..]).unwrap(),
            };
            assert_eq!(decoded, a.tar);
        }
    }
}
