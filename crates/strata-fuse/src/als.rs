//! The Additional Layer Store: [`LayerStore`], a FUSE file system in the layout containers/storage's overlay
//! driver asks for layers before it downloads them (`overlay.additionallayerstore=DIR:ref`).
//!
//! ```text
//! DIR/<base64 of the image reference>/<compressed blob digest>/
//!     diff/   the layer's tree in overlayfs's form (whiteouts as 0/0 devices, opaque directories marked),
//!             read lazily: through the layer's table of contents, a cached or published index, or a
//!             verified full read (the finders of the index seam, in their order)
//!     info    containers/storage's layer record (JSON): digests, sizes, compression
//!     blob    the compressed blob (fetched whole and checked against its digest before a byte is served)
//!     use     never there: containers/storage's `create` of it counts a use (answered ENOENT)
//! ```
//!
//! containers/storage (1.29–1.53: podman 3.2–5.0, Debian's 4.3.1 among them) looks a layer up by its
//! compressed digest, whatever its compression, `stat`s `diff`, `info` and `blob`, creates `use` on every
//! lookup and every layer it makes from it, and `rmdir`s the layer directory on each release. A use count
//! is kept per layer; when it falls back to zero the layer's data (its tree, its caches, its blob file) is
//! dropped, to be opened again on the next request. Nothing is served that was not checked: a layer whose
//! index cannot be had from a checked source fails its lookup (ENOENT), and containers/storage then
//! pulls it normally.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use strata_image::{ImageSource, ResolvedImage, resolve};
use strata_index::{LayerInfo, MergedView};
use strata_layer::{BlobContents, ContentOptions, Contents, IndexOptions, IndexOrigin, LayerSpec};
use strata_oci::{Digest, ImageReference, Platform};

use crate::error::{Error, Result};
use crate::fs::{ImageFs, Summary, TTL};
use crate::tree::{ROOT_INO, Tree};

/// How long the kernel may keep the store's own entries (image and layer directories, `info`, `blob`):
/// they come and go with uses and releases.
const STORE_TTL: Duration = Duration::from_secs(1);

/// The longest span a lookup reads to check an index made elsewhere against the blob
/// ([`strata_layer::probe`]): 256 KiB, so the check stays a small part of a lazy pull.
const PROBE_MAX_BYTES: u64 = 256 << 10;

/// Bit 32 of a layer's inode numbers: the rest is an inode of the layer's `diff` tree.
const TREE_BIT: u64 = 1 << 32;

/// The `compression` numbers of containers/storage's layer record (`pkg/archive`'s `Compression`).
const CS_UNCOMPRESSED: u8 = 0;
const CS_GZIP: u8 = 2;
const CS_ZSTD: u8 = 4;

/// The annotation ctr-remote writes with the uncompressed size of an eStargz or zstd:chunked layer.
const UNCOMPRESSED_SIZE_ANNOTATION: &str = "io.containers.estargz.uncompressed-size";

/// The annotations whose value is a layer's TOC digest, which containers/storage ≥ 1.54 (podman ≥ 5.1) looks
/// annotated layers up by (`pkg/chunked/toc`'s `GetTOCDigest`, in its order).
const TOC_DIGEST_ANNOTATIONS: [&str; 2] = [
    "containerd.io/snapshot/stargz/toc.digest",
    "io.github.containers.zstd-chunked.manifest-checksum",
];

/// Opens an image by reference (without transport: `registry/repo:tag`, as containers/storage names it)
/// for reading: the caller's transports, credentials and registry settings.
pub type SourceOpener = Arc<
    dyn Fn(
            &str,
        )
            -> std::result::Result<Arc<dyn ImageSource>, Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
>;

/// Where the store says what it does (uses, releases, refused layers): one line each.
pub type StoreLog = Arc<dyn Fn(&str) + Send + Sync>;

/// Options of [`LayerStore::new`].
#[derive(Clone)]
pub struct StoreOptions {
    /// The platform an image index is resolved for.
    pub platform: Platform,
    /// Where layer indexes are found before a layer is read whole (the finders: tables of contents, the
    /// index cache, published indexes).
    pub indexes: IndexOptions,
    /// Budget of each layer's decompressed-span cache, in bytes (layers read through their checkpoints).
    pub cache_bytes: usize,
    /// A directory (existing, the store's own) for blobs fetched whole to serve `blob`.
    pub blob_dir: PathBuf,
    /// Where to say what happens, if anywhere.
    pub log: Option<StoreLog>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("platform", &self.platform)
            .field("indexes", &self.indexes)
            .field("blob_dir", &self.blob_dir)
            .finish_non_exhaustive()
    }
}

/// What an inode number designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    /// `<base64 ref>`: the reference numbered so.
    Image(u32),
    /// `<digest>`: the layer slot numbered so.
    Layer(u32),
    Info(u32),
    Blob(u32),
    /// An inode of slot's `diff` tree (the tree's root is `diff` itself).
    Tree(u32, u64),
}

impl Node {
    fn ino(self) -> u64 {
        let base = |slot: u32| (u64::from(slot) + 1) << 33;
        match self {
            Node::Root => ROOT_INO,
            Node::Image(r) => 2 + u64::from(r),
            Node::Layer(s) => base(s),
            Node::Info(s) => base(s) | 1,
            Node::Blob(s) => base(s) | 2,
            Node::Tree(s, t) => base(s) | TREE_BIT | (t & 0xffff_ffff),
        }
    }

    fn of(ino: u64) -> Option<Node> {
        let slot = ino >> 33;
        if slot == 0 {
            return match ino {
                0 => None,
                ROOT_INO => Some(Node::Root),
                _ => u32::try_from(ino - 2).ok().map(Node::Image),
            };
        }
        let s = u32::try_from(slot - 1).ok()?;
        if ino & TREE_BIT != 0 {
            return Some(Node::Tree(s, ino & 0xffff_ffff));
        }
        match ino & 0xffff_ffff {
            0 => Some(Node::Layer(s)),
            1 => Some(Node::Info(s)),
            2 => Some(Node::Blob(s)),
            _ => None,
        }
    }
}

/// One layer, opened: its tree and contents, its record, its blob once fetched.
struct OpenLayer {
    fs: ImageFs,
    info: Vec<u8>,
    blob_size: u64,
    source: Arc<dyn ImageSource>,
    digest: Digest,
    blob_path: PathBuf,
    /// The blob's file, once fetched whole and verified.
    blob: Mutex<Option<File>>,
}

impl Drop for OpenLayer {
    fn drop(&mut self) {
        if lock(&self.blob).take().is_some() {
            let _ = fs::remove_file(&self.blob_path);
        }
    }
}

/// A layer as the store knows it (it stays numbered for the process's life, whatever happens to its
/// data, so that the kernel's inode numbers stay valid).
struct Slot {
    image: u32,
    digest: Digest,
    /// Held while the layer is being opened: one opening at a time.
    opening: Mutex<()>,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    uses: u64,
    open: Option<Arc<OpenLayer>>,
}

/// An image reference's resolved image.
struct Image {
    source: Arc<dyn ImageSource>,
    image: ResolvedImage,
    specs: Vec<LayerSpec>,
}

impl Image {
    /// The TOC digest layer `at` is annotated with, if any.
    fn toc_digest(&self, at: usize) -> Option<&str> {
        let annotations = self
            .image
            .manifest
            .layers()
            .get(at)?
            .annotations()
            .as_ref()?;
        TOC_DIGEST_ANNOTATIONS
            .iter()
            .find_map(|key| annotations.get(*key))
            .map(String::as_str)
    }

    /// The position of the layer `key` designates: its compressed blob's digest, else its TOC digest.
    fn position(&self, key: &Digest) -> Option<usize> {
        let key_text = key.to_string();
        self.specs
            .iter()
            .position(|s| s.digest == *key)
            .or_else(|| {
                (0..self.specs.len()).find(|&at| self.toc_digest(at) == Some(key_text.as_str()))
            })
    }
}

#[derive(Default)]
struct State {
    images: Vec<String>,
    image_ids: HashMap<String, u32>,
    resolved: HashMap<u32, Arc<Image>>,
    slots: Vec<Arc<Slot>>,
    slot_ids: HashMap<(u32, Digest), u32>,
}

/// One layer's use count, as [`LayerStore::uses`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerUse {
    /// The image reference it was looked up under.
    pub reference: String,
    /// The compressed blob's digest.
    pub digest: Digest,
    /// Uses not yet released.
    pub uses: u64,
    /// Whether its data is held.
    pub open: bool,
}

/// The Additional Layer Store's file system (see the module's documentation). Requests are served by
/// several threads; a layer is opened by the first request that needs it, outside the store's lock.
pub struct LayerStore {
    opener: SourceOpener,
    options: StoreOptions,
    state: Mutex<State>,
    started: SystemTime,
    uid: u32,
    gid: u32,
}

impl std::fmt::Debug for LayerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `text` (a path component) decoded from base64 as an image reference, if it is one.
fn decode_reference(name: &[u8]) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(name)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    ImageReference::parse_normalized_named(&text).ok()?;
    Some(text)
}

impl LayerStore {
    /// A store opening images with `opener`.
    pub fn new(opener: SourceOpener, options: StoreOptions) -> LayerStore {
        LayerStore {
            opener,
            options,
            state: Mutex::new(State::default()),
            started: SystemTime::now(),
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        }
    }

    /// Every layer looked up so far with its use count.
    pub fn uses(&self) -> Vec<LayerUse> {
        let state = lock(&self.state);
        state
            .slots
            .iter()
            .map(|s| {
                let st = lock(&s.state);
                LayerUse {
                    reference: state
                        .images
                        .get(s.image as usize)
                        .cloned()
                        .unwrap_or_default(),
                    digest: s.digest.clone(),
                    uses: st.uses,
                    open: st.open.is_some(),
                }
            })
            .collect()
    }

    fn log(&self, line: &str) {
        if let Some(log) = &self.options.log {
            log(line);
        }
    }

    fn image_id(&self, reference: &str) -> u32 {
        let mut state = lock(&self.state);
        if let Some(&id) = state.image_ids.get(reference) {
            return id;
        }
        let id = u32::try_from(state.images.len()).unwrap_or(u32::MAX);
        state.images.push(reference.to_owned());
        state.image_ids.insert(reference.to_owned(), id);
        id
    }

    fn reference(&self, image: u32) -> Option<String> {
        lock(&self.state).images.get(image as usize).cloned()
    }

    fn slot_id(&self, image: u32, digest: &Digest) -> u32 {
        let mut state = lock(&self.state);
        if let Some(&id) = state.slot_ids.get(&(image, digest.clone())) {
            return id;
        }
        let id = u32::try_from(state.slots.len()).unwrap_or(u32::MAX);
        state.slots.push(Arc::new(Slot {
            image,
            digest: digest.clone(),
            opening: Mutex::new(()),
            state: Mutex::new(SlotState::default()),
        }));
        state.slot_ids.insert((image, digest.clone()), id);
        id
    }

    fn slot(&self, id: u32) -> Option<Arc<Slot>> {
        lock(&self.state).slots.get(id as usize).cloned()
    }

    /// Slot `id`'s layer, opened if it is not.
    fn layer(&self, id: u32) -> std::result::Result<Arc<OpenLayer>, Errno> {
        let slot = self.slot(id).ok_or(Errno::ENOENT)?;
        if let Some(open) = &lock(&slot.state).open {
            return Ok(Arc::clone(open));
        }
        let _opening = lock(&slot.opening);
        if let Some(open) = &lock(&slot.state).open {
            return Ok(Arc::clone(open));
        }
        let reference = self.reference(slot.image).ok_or(Errno::ENOENT)?;
        match self.open_layer(id, slot.image, &reference, &slot.digest) {
            Ok(layer) => {
                let layer = Arc::new(layer);
                lock(&slot.state).open = Some(Arc::clone(&layer));
                Ok(layer)
            }
            Err(e) => {
                self.log(&format!("refused {reference} {}: {e}", slot.digest));
                Err(Errno::ENOENT)
            }
        }
    }

    /// The resolved image `reference` whose layers include `digest` (resolved again if the one known
    /// does not: a tag may have moved), and the layer's position.
    fn image_with(
        &self,
        image: u32,
        reference: &str,
        digest: &Digest,
    ) -> Result<(Arc<Image>, usize)> {
        let known = lock(&self.state).resolved.get(&image).cloned();
        if let Some(known) = known
            && let Some(at) = known.position(digest)
        {
            return Ok((known, at));
        }
        let source = (self.opener)(reference).map_err(|e| Error::Source {
            reference: reference.to_owned(),
            reason: e.to_string(),
        })?;
        let resolved = resolve(source.as_ref(), &self.options.platform)?;
        let specs = strata_layer::source_layer_specs(source.as_ref(), &resolved)?;
        let found = Arc::new(Image {
            source,
            image: resolved,
            specs,
        });
        lock(&self.state).resolved.insert(image, Arc::clone(&found));
        let at = found.position(digest).ok_or_else(|| Error::NoSuchLayer {
            reference: reference.to_owned(),
            digest: digest.to_string(),
        })?;
        Ok((found, at))
    }

    /// Opens layer `digest` of image `reference`: its index from the finders (or a verified full read),
    /// its tree in overlay form, its contents provider, its record.
    fn open_layer(
        &self,
        slot: u32,
        image: u32,
        reference: &str,
        digest: &Digest,
    ) -> Result<OpenLayer> {
        let (found, at) = self.image_with(image, reference, digest)?;
        let obtained =
            strata_layer::obtain_layer(&found.source, &found.image, at, &self.options.indexes)?;
        let origin = obtained.origin.kind();
        if obtained.dir.is_some() {
            return Err(Error::Source {
                reference: reference.to_owned(),
                reason: "a layer kept unpacked by its source is not served".into(),
            });
        }
        let spec = found.specs.get(at).ok_or_else(|| Error::NoSuchLayer {
            reference: reference.to_owned(),
            digest: digest.to_string(),
        })?;
        // An index made elsewhere (published, cached) is checked against what the registry serves now,
        // by one short span, so a layer whose bytes would not verify is refused here — podman then pulls
        // it itself — rather than failing its first read.
        if matches!(
            obtained.origin,
            IndexOrigin::Published(_) | IndexOrigin::Cache(_) | IndexOrigin::IndexDir(_)
        ) {
            let probed = strata_layer::probe(
                found.source.as_ref(),
                &spec.digest,
                &obtained.index,
                PROBE_MAX_BYTES,
            )?;
            if !probed {
                self.log(&format!(
                    "not probed {reference} {digest}: no span of at most {PROBE_MAX_BYTES} bytes"
                ));
            }
        }
        let layer_info = obtained.index.layer().clone();
        let contents: Arc<dyn Contents> = match obtained.contents {
            Some(c) => c,
            None => Arc::new(BlobContents::new(
                Arc::clone(&found.source),
                std::slice::from_ref(&obtained.index),
                &ContentOptions::mount(self.options.cache_bytes),
            )?),
        };
        let merged = MergedView::new(vec![obtained.index]);
        let tree = Tree::build_overlay(&merged)?;
        let summary = Summary {
            manifest: found.image.instance.digest.to_string(),
            layers: 1,
            entries: tree.entries(),
            inodes: tree.inodes(),
            bytes: tree.total_bytes(),
        };
        let annotated_size = found
            .image
            .manifest
            .layers()
            .get(at)
            .and_then(|d| d.annotations().as_ref())
            .and_then(|a| a.get(UNCOMPRESSED_SIZE_ANNOTATION))
            .and_then(|v| v.parse::<u64>().ok());
        let info = layer_record(
            spec,
            &layer_info,
            origin,
            annotated_size,
            found.toc_digest(at),
        );
        let blob_size = spec.size.unwrap_or(layer_info.blob_size);
        self.log(&format!(
            "opened {reference} {digest} ({origin} index, {} entries)",
            summary.entries
        ));
        Ok(OpenLayer {
            fs: ImageFs::new(tree, contents, summary),
            info,
            blob_size,
            source: Arc::clone(&found.source),
            // The blob's own digest, whichever digest the layer was looked up by.
            digest: spec.digest.clone(),
            blob_path: self
                .options
                .blob_dir
                .join(format!("{slot}-{}", digest.hex())),
            blob: Mutex::new(None),
        })
    }

    /// Counts a use of slot `id`.
    fn use_layer(&self, id: u32) {
        let Some(slot) = self.slot(id) else { return };
        let uses = {
            let mut st = lock(&slot.state);
            st.uses = st.uses.saturating_add(1);
            st.uses
        };
        let reference = self.reference(slot.image).unwrap_or_default();
        self.log(&format!("use {reference} {} uses={uses}", slot.digest));
    }

    /// Releases a use of slot `id`; at the last, drops its data.
    fn release(&self, id: u32) {
        let Some(slot) = self.slot(id) else { return };
        let (uses, dropped) = {
            let mut st = lock(&slot.state);
            st.uses = st.uses.saturating_sub(1);
            let dropped = if st.uses == 0 { st.open.take() } else { None };
            (st.uses, dropped)
        };
        let was_open = dropped.is_some();
        drop(dropped);
        let reference = self.reference(slot.image).unwrap_or_default();
        self.log(&format!(
            "release {reference} {} uses={uses}{}",
            slot.digest,
            if was_open { " dropped" } else { "" }
        ));
    }

    fn dir_attr(&self, ino: u64) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: 4096,
            blocks: 8,
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind: FileType::Directory,
            // The store's own directories are its user's alone: another user could otherwise have it
            // fetch any image its credentials reach (the layers' trees keep the image's modes).
            perm: 0o700,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn file_attr(&self, ino: u64, size: u64) -> FileAttr {
        FileAttr {
            size,
            blocks: size.div_ceil(512),
            kind: FileType::RegularFile,
            perm: 0o444,
            nlink: 1,
            ..self.dir_attr(ino)
        }
    }

    /// The attributes of `node` and how long the kernel may keep them.
    fn attr(&self, node: Node) -> std::result::Result<(FileAttr, Duration), Errno> {
        match node {
            Node::Root | Node::Image(_) | Node::Layer(_) => {
                Ok((self.dir_attr(node.ino()), STORE_TTL))
            }
            Node::Info(s) => {
                let layer = self.layer(s)?;
                Ok((
                    self.file_attr(node.ino(), layer.info.len() as u64),
                    STORE_TTL,
                ))
            }
            Node::Blob(s) => {
                let layer = self.layer(s)?;
                Ok((self.file_attr(node.ino(), layer.blob_size), STORE_TTL))
            }
            Node::Tree(s, t) => {
                let layer = self.layer(s)?;
                let mut attr = layer.fs.attr_of(t).ok_or(Errno::ENOENT)?;
                attr.ino = INodeNo(node.ino());
                Ok((attr, if t == ROOT_INO { STORE_TTL } else { TTL }))
            }
        }
    }

    /// The child `name` of `parent`: `Ok(None)` for a name that is not there and may be cached as such.
    fn child(&self, parent: Node, name: &[u8]) -> std::result::Result<Option<Node>, Errno> {
        match parent {
            Node::Root => {
                let reference = decode_reference(name).ok_or(Errno::ENOENT)?;
                Ok(Some(Node::Image(self.image_id(&reference))))
            }
            Node::Image(r) => {
                let digest = std::str::from_utf8(name)
                    .ok()
                    .and_then(|n| Digest::parse(n).ok())
                    .ok_or(Errno::ENOENT)?;
                let s = self.slot_id(r, &digest);
                self.layer(s)?;
                Ok(Some(Node::Layer(s)))
            }
            Node::Layer(s) => match name {
                b"diff" => Ok(Some(Node::Tree(s, ROOT_INO))),
                b"info" => Ok(Some(Node::Info(s))),
                b"blob" => Ok(Some(Node::Blob(s))),
                // `use` is never there, and must be asked about every time.
                _ => Err(Errno::ENOENT),
            },
            Node::Info(_) | Node::Blob(_) => Err(Errno::ENOTDIR),
            Node::Tree(s, t) => {
                let layer = self.layer(s)?;
                layer.fs.dir(t)?;
                Ok(layer.fs.tree().lookup(t, name).map(|c| Node::Tree(s, c)))
            }
        }
    }

    /// The entries of directory `ino` from position `offset` (`.` and `..` first), handed to `add` until it
    /// says the reply is full.
    fn list(
        &self,
        ino: u64,
        offset: u64,
        mut add: impl FnMut(u64, u64, FileType, &[u8]) -> bool,
    ) -> std::result::Result<(), Errno> {
        let node = Node::of(ino).ok_or(Errno::ENOENT)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if let Node::Tree(s, t) = node {
            let layer = self.layer(s)?;
            layer.fs.dir(t)?;
            let mut i = start;
            while let Some((child, name)) = layer.fs.dir_entry(t, i) {
                i += 1;
                let child_ino = if i == 2 && t == ROOT_INO {
                    // `..` of `diff` is the layer directory.
                    Node::Layer(s).ino()
                } else {
                    Node::Tree(s, child).ino()
                };
                if add(child_ino, i as u64, layer.fs.file_type(child), name) {
                    break;
                }
            }
            return Ok(());
        }
        let mut entries: Vec<(u64, FileType, Vec<u8>)> =
            vec![(ino, FileType::Directory, b".".to_vec())];
        match node {
            Node::Root => {
                entries.push((ROOT_INO, FileType::Directory, b"..".to_vec()));
                let state = lock(&self.state);
                for (i, r) in state.images.iter().enumerate() {
                    let name = base64::engine::general_purpose::STANDARD.encode(r);
                    let id = u32::try_from(i).unwrap_or(u32::MAX);
                    entries.push((
                        Node::Image(id).ino(),
                        FileType::Directory,
                        name.into_bytes(),
                    ));
                }
            }
            Node::Image(r) => {
                entries.push((ROOT_INO, FileType::Directory, b"..".to_vec()));
                let state = lock(&self.state);
                for (i, slot) in state.slots.iter().enumerate() {
                    if slot.image == r && lock(&slot.state).open.is_some() {
                        let id = u32::try_from(i).unwrap_or(u32::MAX);
                        entries.push((
                            Node::Layer(id).ino(),
                            FileType::Directory,
                            slot.digest.to_string().into_bytes(),
                        ));
                    }
                }
            }
            Node::Layer(s) => {
                let image = self.slot(s).map_or(0, |slot| slot.image);
                entries.push((
                    Node::Image(image).ino(),
                    FileType::Directory,
                    b"..".to_vec(),
                ));
                entries.push((Node::Blob(s).ino(), FileType::RegularFile, b"blob".to_vec()));
                entries.push((
                    Node::Tree(s, ROOT_INO).ino(),
                    FileType::Directory,
                    b"diff".to_vec(),
                ));
                entries.push((Node::Info(s).ino(), FileType::RegularFile, b"info".to_vec()));
            }
            Node::Info(_) | Node::Blob(_) | Node::Tree(..) => return Err(Errno::ENOTDIR),
        }
        for (i, (child, kind, name)) in entries.iter().enumerate().skip(start) {
            if add(*child, i as u64 + 1, *kind, name) {
                break;
            }
        }
        Ok(())
    }

    /// The blob of `layer`, fetched whole and verified on first use.
    fn read_blob(&self, layer: &OpenLayer, offset: u64, size: u32) -> Result<Vec<u8>> {
        let mut blob = lock(&layer.blob);
        if blob.is_none() {
            *blob = Some(self.fetch_blob(layer)?);
            self.log(&format!(
                "blob {} fetched whole and verified ({} bytes)",
                layer.digest, layer.blob_size
            ));
        }
        let Some(file) = blob.as_ref() else {
            return Ok(Vec::new());
        };
        let want = layer.blob_size.saturating_sub(offset).min(u64::from(size));
        let mut buf = vec![0u8; usize::try_from(want).unwrap_or(0)];
        let mut done = 0;
        while done < buf.len() {
            let Some(rest) = buf.get_mut(done..) else {
                break;
            };
            let n = file
                .read_at(rest, offset + done as u64)
                .map_err(|e| Error::io(&layer.blob_path, e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(buf)
    }

    fn fetch_blob(&self, layer: &OpenLayer) -> Result<File> {
        let path = &layer.blob_path;
        let fetched = (|| -> Result<File> {
            let mut blob = layer.source.open_blob(&layer.digest)?;
            let mut file = fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            // The stream fails at its end if the bytes do not match the digest.
            io::copy(&mut blob.reader, &mut file).map_err(|e| Error::io(path, e))?;
            Ok(file)
        })();
        if fetched.is_err() {
            let _ = fs::remove_file(path);
        }
        fetched
    }
}

/// containers/storage's layer record for `spec`: `compressed-diff-digest`, `compressed-size`,
/// `diff-digest` (the config's diff ID), `diff-size` (the tar's size where it is known: read whole or
/// indexed, or as ctr-remote annotates it), `compression`, and `toc-digest` for an annotated layer
/// (containers/image ≥ 5.31 checks it against the digest it looked the layer up by).
fn layer_record(
    spec: &LayerSpec,
    info: &LayerInfo,
    origin: &str,
    annotated_size: Option<u64>,
    toc_digest: Option<&str>,
) -> Vec<u8> {
    let mut record = serde_json::Map::new();
    record.insert(
        "compressed-diff-digest".into(),
        spec.digest.to_string().into(),
    );
    record.insert(
        "compressed-size".into(),
        spec.size.unwrap_or(info.blob_size).into(),
    );
    if let Some(diff_id) = &spec.diff_id {
        record.insert("diff-digest".into(), diff_id.to_string().into());
    }
    // A table of contents' index counts data positions, not tar bytes.
    let size = if origin == "toc" {
        annotated_size
    } else {
        Some(info.tar_size)
    };
    if let Some(size) = size {
        record.insert("diff-size".into(), size.into());
    }
    let compression = match info.compression {
        LayerInfo::COMPRESSION_GZIP => CS_GZIP,
        LayerInfo::COMPRESSION_ZSTD => CS_ZSTD,
        _ => CS_UNCOMPRESSED,
    };
    record.insert("compression".into(), compression.into());
    if let Some(toc) = toc_digest {
        record.insert("toc-digest".into(), toc.into());
    }
    serde_json::to_vec(&serde_json::Value::Object(record)).unwrap_or_default()
}

/// Whether `flags` open for writing (or truncate: `O_TRUNC`).
fn writes(flags: OpenFlags) -> bool {
    flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & O_TRUNC != 0
}

/// open(2)'s `O_TRUNC`.
const O_TRUNC: i32 = 0o1000;

impl fuser::Filesystem for LayerStore {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let caps = config.capabilities();
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_MAX_PAGES;
        let _ = config.add_capabilities(wanted & caps);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(parent) = Node::of(parent.0) else {
            reply.error(Errno::ENOENT);
            return;
        };
        match self.child(parent, name.as_bytes()) {
            Ok(Some(node)) => match self.attr(node) {
                Ok((attr, ttl)) => reply.entry(&ttl, &attr, Generation(0)),
                Err(e) => reply.error(e),
            },
            Ok(None) => {
                // Not in the layer's tree, which never changes: the kernel may remember that.
                let mut attr = self.dir_attr(0);
                attr.ino = INodeNo(0);
                reply.entry(&TTL, &attr, Generation(0));
            }
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match Node::of(ino.0)
            .ok_or(Errno::ENOENT)
            .and_then(|n| self.attr(n))
        {
            Ok((attr, ttl)) => reply.attr(&ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        match Node::of(ino.0) {
            Some(Node::Tree(s, t)) => match self.layer(s) {
                Ok(layer) => fuser::Filesystem::readlink(&layer.fs, req, INodeNo(t), reply),
                Err(e) => reply.error(e),
            },
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        match (Node::of(parent.0), name.as_bytes()) {
            (Some(Node::Layer(s)), b"use") => {
                self.use_layer(s);
                reply.error(Errno::ENOENT);
            }
            _ => reply.error(Errno::EROFS),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match (Node::of(parent.0), name.as_bytes()) {
            (Some(Node::Layer(s)), b"use") => {
                self.use_layer(s);
                reply.error(Errno::ENOENT);
            }
            _ => reply.error(Errno::EROFS),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match (Node::of(parent.0), name.as_bytes()) {
            (Some(Node::Layer(_)), b"use") => reply.error(Errno::ENOENT),
            _ => reply.error(Errno::EROFS),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(Node::Image(r)) = Node::of(parent.0) else {
            reply.error(Errno::EROFS);
            return;
        };
        let digest = std::str::from_utf8(name.as_bytes())
            .ok()
            .and_then(|n| Digest::parse(n).ok());
        let slot = digest.and_then(|d| lock(&self.state).slot_ids.get(&(r, d)).copied());
        if let Some(s) = slot {
            self.release(s);
        }
        // What containers/storage expects of a store that counts uses.
        reply.error(Errno::ENOENT);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if writes(flags) {
            reply.error(Errno::EROFS);
            return;
        }
        match Node::of(ino.0) {
            None => reply.error(Errno::ENOENT),
            Some(Node::Root | Node::Image(_) | Node::Layer(_)) => reply.error(Errno::EISDIR),
            Some(Node::Tree(s, t)) => match self.layer(s) {
                Ok(layer) if layer.fs.dir(t).is_ok() => reply.error(Errno::EISDIR),
                Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
                Err(e) => reply.error(e),
            },
            Some(Node::Info(_) | Node::Blob(_)) => {
                reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
            }
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(node) = Node::of(ino.0) else {
            reply.error(Errno::ENOENT);
            return;
        };
        let (s, layer) = match node {
            Node::Info(s) | Node::Blob(s) | Node::Tree(s, _) => match self.layer(s) {
                Ok(layer) => (s, layer),
                Err(e) => {
                    reply.error(e);
                    return;
                }
            },
            _ => {
                reply.error(Errno::EISDIR);
                return;
            }
        };
        match node {
            Node::Tree(_, t) => fuser::Filesystem::read(
                &layer.fs,
                req,
                INodeNo(t),
                fh,
                offset,
                size,
                flags,
                lock_owner,
                reply,
            ),
            Node::Info(_) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(size as usize).min(layer.info.len());
                reply.data(layer.info.get(start..end).unwrap_or_default());
            }
            _ => match self.read_blob(&layer, offset, size) {
                Ok(bytes) => reply.data(&bytes),
                Err(e) => {
                    let reference = self
                        .slot(s)
                        .and_then(|slot| self.reference(slot.image))
                        .unwrap_or_default();
                    self.log(&format!("blob {reference} {}: {e}", layer.digest));
                    reply.error(Errno::EIO);
                }
            },
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match Node::of(ino.0) {
            None => reply.error(Errno::ENOENT),
            Some(Node::Info(_) | Node::Blob(_)) => reply.error(Errno::ENOTDIR),
            Some(Node::Tree(s, t)) => match self.layer(s) {
                Ok(layer) => match layer.fs.dir(t) {
                    Ok(()) => reply.opened(
                        FileHandle(0),
                        FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
                    ),
                    Err(e) => reply.error(e),
                },
                Err(e) => reply.error(e),
            },
            // The store's own directories change: not cached.
            Some(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listed = self.list(ino.0, offset, |child, next, kind, name| {
            reply.add(INodeNo(child), next, kind, OsStr::from_bytes(name))
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let listed = self.list(ino.0, offset, |child, next, _kind, name| {
            let Some(Ok((attr, ttl))) = Node::of(child).map(|n| self.attr(n)) else {
                return false;
            };
            reply.add(
                INodeNo(child),
                next,
                OsStr::from_bytes(name),
                &ttl,
                &attr,
                Generation(0),
            )
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096);
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match Node::of(ino.0) {
            Some(Node::Tree(s, t)) => match self.layer(s) {
                Ok(layer) => {
                    fuser::Filesystem::getxattr(&layer.fs, req, INodeNo(t), name, size, reply);
                }
                Err(e) => reply.error(e),
            },
            Some(_) => reply.error(Errno::NO_XATTR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match Node::of(ino.0) {
            Some(Node::Tree(s, t)) => match self.layer(s) {
                Ok(layer) => fuser::Filesystem::listxattr(&layer.fs, req, INodeNo(t), size, reply),
                Err(e) => reply.error(e),
            },
            Some(_) if size == 0 => reply.size(0),
            Some(_) => reply.data(&[]),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inode_numbers_round_trip() {
        for node in [
            Node::Root,
            Node::Image(0),
            Node::Image(7),
            Node::Layer(0),
            Node::Info(3),
            Node::Blob(3),
            Node::Tree(0, ROOT_INO),
            Node::Tree(5, 0xffff_ffff),
        ] {
            assert_eq!(Node::of(node.ino()), Some(node), "{node:?}");
        }
        assert_eq!(Node::of(0), None);
    }

    #[test]
    fn the_layer_record_has_containers_storage_keys() {
        let digest =
            |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let spec = LayerSpec {
            digest: digest('a'),
            size: Some(100),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            diff_id: Some(digest('b')),
        };
        let info = LayerInfo {
            blob_digest: digest('a').to_string(),
            diff_id: String::new(),
            media_type: spec.media_type.clone(),
            compression: LayerInfo::COMPRESSION_GZIP,
            blob_size: 100,
            tar_size: 1000,
        };
        let record: serde_json::Value =
            serde_json::from_slice(&layer_record(&spec, &info, "read", None, None)).unwrap();
        assert_eq!(
            record,
            serde_json::json!({
                "compressed-diff-digest": digest('a').to_string(),
                "compressed-size": 100,
                "diff-digest": digest('b').to_string(),
                "diff-size": 1000,
                "compression": 2,
            })
        );
        // A table of contents counts no tar bytes: the annotation's size, or none; the TOC digest named.
        let toc = digest('c').to_string();
        let record: serde_json::Value = serde_json::from_slice(&layer_record(
            &spec,
            &LayerInfo {
                compression: LayerInfo::COMPRESSION_ZSTD,
                ..info
            },
            "toc",
            None,
            Some(&toc),
        ))
        .unwrap();
        assert_eq!(record.get("diff-size"), None);
        assert_eq!(record["compression"], 4);
        assert_eq!(record["toc-digest"], toc.as_str());
    }

    #[test]
    fn references_are_base64_of_a_named_reference() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("127.0.0.1:5000/h:1");
        assert_eq!(
            decode_reference(b64.as_bytes()).as_deref(),
            Some("127.0.0.1:5000/h:1")
        );
        assert_eq!(decode_reference(b"not base64!"), None);
        let bad = base64::engine::general_purpose::STANDARD.encode("UPPER/case:1");
        assert_eq!(decode_reference(bad.as_bytes()), None);
    }
}
