//! The store: opening (and recovering) it, the locked transaction every operation runs in, listing,
//! looking up and removing images and layers.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use strata_oci::ImageReference;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{
    create_dir_all_mode, create_dir_mode, disk_usage, read_optional, remove_all, write_atomic,
    write_atomic_mkdir,
};
use crate::ids::{is_hex_id, is_link_id};
use crate::layout::Layout;
use crate::lock::{Kind, Lock, Token};
use crate::model::{
    BindRecord, ContainerRecord, INCOMPLETE_FLAG, ImageRecord, LayerRecord, MountRecord,
};
use crate::{mounts, staging};

/// A containers/storage-compatible overlay store: a graph root `R` and a run root `RR`.
///
/// A `Store` holds no lock and no cached state between calls: every operation takes the store's locks (in
/// containers/storage's order: `storage.lock`, `layers.lock`, `images.lock`, `containers.lock`, then
/// `mountpoints.lock`), reads the metadata, and releases them, so any number of processes — strata, podman,
/// buildah — can use the same store at once. Readers take shared locks and never block each other.
#[derive(Debug, Clone)]
pub struct Store {
    layout: Layout,
    /// What [`Store::open`]'s recovery removed.
    recovered: Vec<Leftover>,
}

/// Something an interrupted operation left in the store, which the store removed: a dead pull's staging
/// directory, a layer still flagged incomplete, files without a record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Leftover {
    /// What it was: `staging directory` (of a pull that died), `incomplete layer` (its directory, tar-split and
    /// big data), `layer directory`, `layer data` or `image data` (without a record), `dangling link`.
    pub what: String,
    /// Where it was (for an incomplete layer, `overlay/<id>`).
    pub path: PathBuf,
    /// The disk space it took, in bytes (as `du` counts it).
    pub bytes: u64,
}

impl Leftover {
    /// Measures `paths` (the first is the one named) before they are removed.
    pub(crate) fn measure(what: &str, paths: &[&Path]) -> Leftover {
        Leftover {
            what: what.to_owned(),
            path: paths.first().map(|p| p.to_path_buf()).unwrap_or_default(),
            bytes: disk_usage(paths),
        }
    }
}

/// A layer as listed: its record and its mount state.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// The `layers.json` record.
    #[serde(flatten)]
    pub record: LayerRecord,
    /// How many times it is mounted (`mountpoints.json`).
    #[serde(rename = "mount-count")]
    pub mount_count: i64,
    /// Where it is mounted, if it is.
    #[serde(rename = "mount-point", skip_serializing_if = "Option::is_none")]
    pub mount_point: Option<String>,
    /// Whether it came from `volatile-layers.json`.
    pub volatile: bool,
}

/// An image as listed: its record and the size of its layers.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// The `images.json` record.
    #[serde(flatten)]
    pub record: ImageRecord,
    /// The sum of its layers' uncompressed sizes.
    pub size: i64,
    /// Its layers, bottom first (as far as they are present).
    pub layers: Vec<String>,
}

/// The last-write tokens of a store's lock files (see [`Store::generation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// `layers.lock`'s token.
    pub layers: Token,
    /// `images.lock`'s token.
    pub images: Token,
    /// `containers.lock`'s token.
    pub containers: Token,
    /// `mountpoints.lock`'s token.
    pub mounts: Token,
}

/// What [`Store::remove_image`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoveReport {
    /// The image ID.
    pub image: String,
    /// Names removed. When only a name was removed (the image has others), `deleted` is false.
    pub untagged: Vec<String>,
    /// Whether the image itself was deleted.
    pub deleted: bool,
    /// Layers deleted with it (those no other image, layer or container uses), top first.
    pub layers: Vec<String>,
    /// Mounts undone first (with `force`).
    pub unmounted: Vec<String>,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// Images without names (that no container uses).
    pub images: Vec<String>,
    /// Layers no image or container uses, and that are not mounted.
    pub layers: Vec<String>,
    /// Leftovers removed: unfinished pulls' staging directories, incomplete layers, layer directories and
    /// files without a record — also those the store's open removed before the prune.
    pub leftovers: Vec<Leftover>,
}

impl Store {
    /// Opens (creating if needed) the store with graph root `root` and run root `runroot`: makes the
    /// directories and lock files containers/storage expects, then recovers from interrupted operations —
    /// layers still flagged `incomplete` are removed with their files, and staging directories of pulls
    /// that died are deleted. After `open`, nothing half-written is visible; [`Store::recovered`] tells what
    /// was removed.
    pub fn open(root: &Path, runroot: &Path) -> Result<Store> {
        let root = std::path::absolute(root).at(root)?;
        let runroot = std::path::absolute(runroot).at(runroot)?;
        let mut store = Store {
            layout: Layout::new(&root, &runroot),
            recovered: Vec::new(),
        };
        store.init()?;
        store.recovered = store.recover()?;
        Ok(store)
    }

    /// What [`Store::open`] removed to recover from interrupted operations (empty for
    /// [`Store::open_existing`]).
    pub fn recovered(&self) -> &[Leftover] {
        &self.recovered
    }

    /// Opens an existing store without creating or repairing anything (for read-only access to a store
    /// this user may not write). Fails if `R/overlay-layers` does not exist.
    pub fn open_existing(root: &Path, runroot: &Path) -> Result<Store> {
        let root = std::path::absolute(root).at(root)?;
        let runroot = std::path::absolute(runroot).at(runroot)?;
        let layout = Layout::new(&root, &runroot);
        match fs::metadata(layout.layers_dir()) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoStore { root });
            }
            Err(e) => return Err(e).at(layout.layers_dir()),
        }
        Ok(Store {
            layout,
            recovered: Vec::new(),
        })
    }

    /// The store's paths.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The graph root.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The run root.
    pub fn runroot(&self) -> &Path {
        self.layout.runroot()
    }

    fn init(&self) -> Result<()> {
        let l = &self.layout;
        create_dir_all_mode(l.root(), 0o700)?;
        create_dir_mode(&l.overlay(), 0o700)?;
        create_dir_mode(&l.links(), 0o700)?;
        create_dir_mode(&l.layers_dir(), 0o700)?;
        create_dir_mode(&l.images_dir(), 0o700)?;
        create_dir_mode(&l.containers_dir(), 0o700)?;
        create_dir_all_mode(&l.runroot().join("overlay-layers"), 0o700)?;
        let has_mount_program = l.overlay().join(".has-mount-program");
        if !has_mount_program.exists() {
            write_atomic(&has_mount_program, b"false", 0o644)?;
        }
        for lock in [
            l.storage_lock(),
            l.userns_lock(),
            l.layers_lock(),
            l.images_lock(),
            l.containers_lock(),
            l.mountpoints_lock(),
        ] {
            if !lock.exists() {
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&lock)
                    .at(&lock)?;
            }
        }
        Ok(())
    }

    /// Removes what interrupted operations left: `incomplete` layers (with their files) and dead pulls'
    /// staging directories. Readers look first, under shared locks; only if there is something to clean
    /// are the exclusive locks taken (and the state checked again under them). Returns what was removed.
    pub fn recover(&self) -> Result<Vec<Leftover>> {
        let needs = {
            let tx = self.read()?;
            tx.layers.iter().any(LayerRecord::is_incomplete)
        } || staging::has_stale(&self.layout)?;
        if !needs {
            return Ok(Vec::new());
        }
        let mut tx = self.write()?;
        let mut cleaned = std::mem::take(&mut tx.cleaned);
        drop(tx);
        cleaned.extend(staging::clean_stale(&self.layout)?);
        Ok(cleaned)
    }

    /// Starts a read transaction: shared locks, metadata loaded.
    pub(crate) fn read(&self) -> Result<Txn<'_>> {
        Txn::begin(self, false)
    }

    /// Starts a write transaction: exclusive locks (containers shared: strata never writes containers),
    /// metadata loaded, incomplete layers removed.
    pub(crate) fn write(&self) -> Result<Txn<'_>> {
        Txn::begin(self, true)
    }

    /// The last-write tokens of the store's lock files. Every writer — strata, podman, any containers/storage
    /// user — changes a token before it changes what the lock guards, so a caller that keeps state derived
    /// from the store (a mount, a cache) reloads exactly when the generation differs from the one it saw.
    pub fn generation(&self) -> Result<Generation> {
        self.read()?.generation()
    }

    /// The layers, in `layers.json` order (volatile ones last), incomplete ones left out.
    pub fn layers(&self) -> Result<Vec<LayerInfo>> {
        let tx = self.read()?;
        let mounts = tx.read_mounts()?;
        let by_id: HashMap<&str, &MountRecord> =
            mounts.iter().map(|m| (m.id.as_str(), m)).collect();
        let info = |r: &LayerRecord, volatile: bool| {
            let m = by_id.get(r.id.as_str());
            LayerInfo {
                record: r.clone(),
                mount_count: m.map_or(0, |m| m.count),
                mount_point: m.map(|m| m.path.clone()),
                volatile,
            }
        };
        Ok(tx
            .layers
            .iter()
            .filter(|l| !l.is_incomplete())
            .map(|l| info(l, false))
            .chain(
                tx.volatile_layers
                    .iter()
                    .filter(|l| !l.is_incomplete())
                    .map(|l| info(l, true)),
            )
            .collect())
    }

    /// The images, in `images.json` order.
    pub fn images(&self) -> Result<Vec<ImageInfo>> {
        let tx = self.read()?;
        Ok(tx.images.iter().map(|i| tx.image_info(i)).collect())
    }

    /// The image `name` designates: an ID, a unique ID prefix, a name (`localhost/x:latest`), or a short
    /// name (`x`, `x:tag`, normalised as podman does).
    pub fn image(&self, name: &str) -> Result<ImageInfo> {
        let tx = self.read()?;
        let i = tx.find_image(name)?;
        Ok(tx.image_info(&tx.images[i]))
    }

    /// The containers (read from `containers.json`; strata never changes them).
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        Ok(self.read()?.containers)
    }

    /// The bytes of image big-data item `key` (e.g. `manifest`, `sha256:<config digest>`).
    pub fn image_big_data(&self, image: &str, key: &str) -> Result<Vec<u8>> {
        let tx = self.read()?;
        let i = tx.find_image(image)?;
        let id = tx.images[i].id.clone();
        let path = self.layout.image_big_data(&id, key);
        fs::read(&path).at(path)
    }

    /// The ID of the image [`Store::remove_image`] would delete for `name`; `None` when it would only remove
    /// that name (one of the image's several).
    pub fn image_to_remove(&self, name: &str) -> Result<Option<String>> {
        let tx = self.read()?;
        let image = &tx.images[tx.find_image(name)?];
        Ok(tx
            .name_to_untag(image, name)
            .is_none()
            .then(|| image.id.clone()))
    }

    /// Removes image `name`: if `name` is one of several names of the image, only that name; otherwise the
    /// image and every layer of it nothing else uses (another image, a child layer, a container), top
    /// first. Refused while a container uses the image, and while a layer to delete is mounted — counted in
    /// `mountpoints.json` (`podman image mount`), or bound to a directory [`Store::mount_image`] mounted that
    /// is still mounted, whatever the count says ([`Error::ImageMounted`]) — unless `force` (which unmounts
    /// it first, `strata mount` directories included).
    pub fn remove_image(&self, name: &str, force: bool) -> Result<RemoveReport> {
        let mut tx = self.write()?;
        let i = tx.find_image(name)?;
        let image = tx.images[i].clone();
        let mut report = RemoveReport {
            image: image.id.clone(),
            ..RemoveReport::default()
        };
        if let Some(n) = tx.name_to_untag(&image, name) {
            tx.images[i].names.retain(|x| *x != n);
            tx.save_images()?;
            report.untagged.push(n);
            return Ok(report);
        }
        if let Some(c) = tx
            .containers
            .iter()
            .find(|c| c.image == image.id || tx.images_of_layer(&c.layer).contains(&image.id))
        {
            return Err(Error::InUse {
                what: format!("image {}", short(&image.id)),
                reason: format!("container {} uses it", short(&c.id)),
            });
        }
        let doomed = tx.layers_only_used_by(&image);
        let mut mounts = tx.lock_mounts()?;
        // strata's own mounts of the layers (a user's directory bound to the layer mount), still mounted:
        // they count even when another program dropped the layer mount's count (`podman image unmount`).
        let mut dirs = Vec::new();
        for b in mounts.binds.iter().filter(|b| doomed.contains(&b.layer)) {
            if mounts::is_mount_point(Path::new(&b.dir))? {
                dirs.push(PathBuf::from(&b.dir));
            }
        }
        // Counts on the layer mounts beyond those live binds: other programs' (`podman image mount`).
        let others = mounts
            .records
            .iter()
            .filter(|m| m.count > 0 && doomed.contains(&m.id))
            .find_map(|m| {
                let ours = mounts
                    .binds
                    .iter()
                    .filter(|b| {
                        b.layer == m.id && dirs.iter().any(|d| d.as_os_str() == b.dir.as_str())
                    })
                    .count() as i64;
                (m.count > ours).then(|| (PathBuf::from(&m.path), m.count - ours))
            });
        if !dirs.is_empty() || others.is_some() {
            if !force {
                return Err(Error::ImageMounted {
                    image: short(&image.id).to_owned(),
                    dirs,
                    layer_mount: others,
                });
            }
            for id in &doomed {
                report
                    .unmounted
                    .extend(mounts.unmount_layer_everywhere(id)?);
            }
            mounts.save()?;
        }
        drop(mounts);
        report.untagged = image.names.clone();
        tx.images.remove(i);
        tx.save_images()?;
        remove_all(&self.layout.image_data_dir(&image.id))?;
        report.deleted = true;
        tx.delete_layers(&doomed)?;
        report.layers = doomed;
        Ok(report)
    }

    /// Removes images without names that no container uses, then layers that no image or container uses
    /// and that are not mounted, then leftovers: staging directories of pulls that died, layer directories,
    /// tar-split files and big-data directories without a record, and dangling short links.
    pub fn prune(&self) -> Result<PruneReport> {
        let mut report = PruneReport {
            leftovers: self.recovered.clone(),
            ..PruneReport::default()
        };
        let mut tx = self.write()?;
        report.leftovers.append(&mut tx.cleaned);
        let used_images: HashSet<String> = tx.containers.iter().map(|c| c.image.clone()).collect();
        let dangling: Vec<String> = tx
            .images
            .iter()
            .filter(|i| i.names.is_empty() && !used_images.contains(&i.id))
            .map(|i| i.id.clone())
            .collect();
        if !dangling.is_empty() {
            tx.images.retain(|i| !dangling.contains(&i.id));
            tx.save_images()?;
            for id in &dangling {
                remove_all(&self.layout.image_data_dir(id))?;
            }
        }
        report.images = dangling;
        let reachable = tx.reachable_layers();
        let mounts = tx.read_mounts()?;
        let mounted: HashSet<&str> = mounts
            .iter()
            .filter(|m| m.count > 0)
            .map(|m| m.id.as_str())
            .collect();
        // Children before parents, so the order is top-down where it matters.
        let mut orphans: Vec<String> = tx
            .layers
            .iter()
            .filter(|l| !reachable.contains(l.id.as_str()) && !mounted.contains(l.id.as_str()))
            .map(|l| l.id.clone())
            .collect();
        orphans.reverse();
        tx.delete_layers(&orphans)?;
        report.layers = orphans;
        report.leftovers.extend(tx.remove_leftovers()?);
        drop(tx);
        report.leftovers.extend(staging::clean_stale(&self.layout)?);
        Ok(report)
    }
}

/// The first 12 characters of an ID, as podman shows them.
pub(crate) fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// A locked view of the store. Dropping it releases the locks.
pub(crate) struct Txn<'a> {
    pub(crate) store: &'a Store,
    /// Layers removed because they were incomplete when the transaction began.
    pub(crate) cleaned: Vec<Leftover>,
    pub(crate) layers: Vec<LayerRecord>,
    pub(crate) volatile_layers: Vec<LayerRecord>,
    pub(crate) images: Vec<ImageRecord>,
    pub(crate) containers: Vec<ContainerRecord>,
    // Declared last: released after everything above, in reverse order of acquisition below.
    containers_lock: Lock,
    images_lock: Lock,
    layers_lock: Lock,
    _storage_lock: Lock,
}

fn load_json<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    match read_optional(path)? {
        None => Ok(Vec::new()),
        Some(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Vec::new()),
        Some(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

impl<'a> Txn<'a> {
    fn begin(store: &'a Store, write: bool) -> Result<Txn<'a>> {
        let l = &store.layout;
        let kind = if write { Kind::Exclusive } else { Kind::Shared };
        let storage_lock = Lock::acquire(&l.storage_lock(), kind)?;
        let layers_lock = Lock::acquire(&l.layers_lock(), kind)?;
        let images_lock = Lock::acquire(&l.images_lock(), kind)?;
        let containers_lock = Lock::acquire(&l.containers_lock(), Kind::Shared)?;
        let mut tx = Txn {
            store,
            cleaned: Vec::new(),
            layers: load_json(&l.layers_json())?,
            volatile_layers: load_json(&l.volatile_layers_json())?,
            images: load_json(&l.images_json())?,
            containers: load_json(&l.containers_json())?,
            containers_lock,
            images_lock,
            layers_lock,
            _storage_lock: storage_lock,
        };
        tx.containers
            .extend(load_json::<ContainerRecord>(&l.volatile_containers_json())?);
        if write {
            let incomplete: Vec<String> = tx
                .layers
                .iter()
                .filter(|r| r.is_incomplete())
                .map(|r| r.id.clone())
                .collect();
            if !incomplete.is_empty() {
                tx.cleaned = incomplete
                    .iter()
                    .map(|id| {
                        Leftover::measure(
                            "incomplete layer",
                            &[&l.layer_dir(id), &l.tar_split(id), &l.layer_data_dir(id)],
                        )
                    })
                    .collect();
                tx.delete_layers(&incomplete)?;
            }
        }
        Ok(tx)
    }

    pub(crate) fn layout(&self) -> &'a Layout {
        &self.store.layout
    }

    /// Writes `layers.json` (the lock's last-write token first).
    pub(crate) fn save_layers(&self) -> Result<()> {
        self.layers_lock.record_write()?;
        let data = serde_json::to_vec(&self.layers)
            .map_err(io::Error::other)
            .at(self.layout().layers_json())?;
        write_atomic_mkdir(&self.layout().layers_json(), &data, 0o600)
    }

    /// Writes `images.json` (the lock's last-write token first).
    pub(crate) fn save_images(&self) -> Result<()> {
        self.images_lock.record_write()?;
        let data = serde_json::to_vec(&self.images)
            .map_err(io::Error::other)
            .at(self.layout().images_json())?;
        write_atomic_mkdir(&self.layout().images_json(), &data, 0o600)
    }

    /// The last-write tokens of the layers, images and mount lock files.
    pub(crate) fn generation(&self) -> Result<Generation> {
        let mounts = Lock::acquire(&self.layout().mountpoints_lock(), Kind::Shared)?;
        Ok(Generation {
            layers: self.layers_lock.token()?,
            images: self.images_lock.token()?,
            containers: self.containers_lock.token()?,
            mounts: mounts.token()?,
        })
    }

    /// The layer record `id`, complete or not, from `layers.json` or the volatile file.
    pub(crate) fn layer(&self, id: &str) -> Option<&LayerRecord> {
        self.layers
            .iter()
            .chain(self.volatile_layers.iter())
            .find(|l| l.id == id)
    }

    /// The complete layer `id`.
    pub(crate) fn complete_layer(&self, id: &str) -> Option<&LayerRecord> {
        self.layer(id).filter(|l| !l.is_incomplete())
    }

    /// The chain of `top` and its parents, top first, as far as the records go.
    pub(crate) fn chain(&self, top: &str) -> Vec<&LayerRecord> {
        let mut out = Vec::new();
        let mut next = Some(top.to_owned());
        while let Some(id) = next {
            let Some(l) = self.layer(&id) else { break };
            if out.iter().any(|x: &&LayerRecord| x.id == l.id) || out.len() > 1000 {
                break;
            }
            next = l.parent().map(str::to_owned);
            out.push(l);
        }
        out
    }

    pub(crate) fn image_info(&self, image: &ImageRecord) -> ImageInfo {
        let chain = self.chain(&image.top_layer);
        ImageInfo {
            record: image.clone(),
            size: chain.iter().map(|l| l.diff_size).sum(),
            layers: chain.iter().rev().map(|l| l.id.clone()).collect(),
        }
    }

    /// The names of `image` that `name` designates.
    /// The name `rmi name` only removes from `image` (one of its several names), if that is all it does.
    fn name_to_untag(&self, image: &ImageRecord, name: &str) -> Option<String> {
        if image.id.starts_with(name) || image.names.len() < 2 {
            return None;
        }
        self.matching_names(image, name).into_iter().next()
    }

    fn matching_names(&self, image: &ImageRecord, name: &str) -> Vec<String> {
        let candidates = name_candidates(name);
        image
            .names
            .iter()
            .filter(|n| candidates.iter().any(|c| c == *n))
            .cloned()
            .collect()
    }

    /// The index of the one image matching `matches`; `None` when none does, an error naming the
    /// candidates when several do (`name` is what the user asked for).
    fn unique_image(
        &self,
        name: &str,
        matches: impl Fn(&ImageRecord) -> bool,
    ) -> Result<Option<usize>> {
        let hits: Vec<usize> = self
            .images
            .iter()
            .enumerate()
            .filter(|(_, i)| matches(i))
            .map(|(k, _)| k)
            .collect();
        match hits.as_slice() {
            [] => Ok(None),
            [k] => Ok(Some(*k)),
            _ => Err(Error::Ambiguous {
                name: name.to_owned(),
                candidates: hits
                    .iter()
                    .map(|&k| short(&self.images[k].id).to_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The index of the image `name` designates (see [`Store::image`]).
    pub(crate) fn find_image(&self, name: &str) -> Result<usize> {
        let name = name.strip_prefix("sha256:").unwrap_or(name);
        if let Some(i) = self.images.iter().position(|i| i.id == name) {
            return Ok(i);
        }
        let candidates = name_candidates(name);
        if let Some(i) = self
            .images
            .iter()
            .position(|i| i.names.iter().any(|n| candidates.contains(n)))
        {
            return Ok(i);
        }
        // A short name matches `<anything>/<name>` (podman's lookup of local images).
        if !name.contains('/')
            || !name
                .split('/')
                .next()
                .is_some_and(|d| d.contains(['.', ':']))
        {
            let with_tag = if name
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
            {
                name.to_owned()
            } else {
                format!("{name}:latest")
            };
            let suffix = format!("/{with_tag}");
            if let Some(k) =
                self.unique_image(name, |i| i.names.iter().any(|n| n.ends_with(&suffix)))?
            {
                return Ok(k);
            }
        }
        if name.len() >= 3
            && name.bytes().all(|b| b.is_ascii_hexdigit())
            && let Some(k) = self.unique_image(name, |i| i.id.starts_with(name))?
        {
            return Ok(k);
        }
        Err(Error::ImageUnknown {
            name: name.to_owned(),
            root: self.layout().root().to_path_buf(),
        })
    }

    /// The IDs of images whose chain contains layer `layer`.
    fn images_of_layer(&self, layer: &str) -> Vec<String> {
        let chain: HashSet<String> = self.chain(layer).iter().map(|l| l.id.clone()).collect();
        self.images
            .iter()
            .filter(|i| chain.contains(&i.top_layer))
            .map(|i| i.id.clone())
            .collect()
    }

    /// Layers that every image, container and other layer can do without once `image` is gone, top first:
    /// walking down from its top layer, stopping at the first layer another image, container or child
    /// layer needs.
    fn layers_only_used_by(&self, image: &ImageRecord) -> Vec<String> {
        let mut keep: HashSet<&str> = HashSet::new();
        for i in &self.images {
            if i.id != image.id {
                keep.insert(i.top_layer.as_str());
                keep.extend(i.mapped_layers.iter().map(String::as_str));
            }
        }
        for c in &self.containers {
            keep.insert(c.layer.as_str());
        }
        let mut doomed: Vec<String> = Vec::new();
        let mut next = Some(image.top_layer.clone());
        while let Some(id) = next {
            if keep.contains(id.as_str()) || doomed.contains(&id) {
                break;
            }
            let Some(layer) = self.layer(&id) else { break };
            // Another layer built on this one (and not on its way out with it)?
            let has_child = self
                .layers
                .iter()
                .chain(self.volatile_layers.iter())
                .any(|l| l.parent == id && !doomed.contains(&l.id));
            if has_child {
                break;
            }
            next = layer.parent().map(str::to_owned);
            doomed.push(id);
        }
        // Mapped copies of the top layer go with the image.
        for m in &image.mapped_layers {
            if !keep.contains(m.as_str()) && self.layer(m).is_some() {
                doomed.insert(0, m.clone());
            }
        }
        doomed
    }

    /// Every layer some image or container needs (their chains).
    pub(crate) fn reachable_layers(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        let roots = self
            .images
            .iter()
            .flat_map(|i| std::iter::once(&i.top_layer).chain(i.mapped_layers.iter()))
            .chain(self.containers.iter().map(|c| &c.layer))
            .chain(self.volatile_layers.iter().map(|l| &l.id));
        for root in roots {
            for l in self.chain(root) {
                out.insert(l.id.clone());
            }
        }
        out
    }

    /// Deletes layers (containers/storage `deleteInternal`): all are flagged `incomplete` and saved first, so
    /// a crash part-way leaves them to the next open; then their files go, then their records.
    pub(crate) fn delete_layers(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut flagged = false;
        for l in self.layers.iter_mut().filter(|l| ids.contains(&l.id)) {
            if !l.is_incomplete() {
                l.flags.insert(INCOMPLETE_FLAG.into(), Value::Bool(true));
                flagged = true;
            }
        }
        if flagged {
            self.save_layers()?;
        }
        for id in ids {
            remove_layer_files(self.layout(), id)?;
        }
        self.layers.retain(|l| !ids.contains(&l.id));
        self.save_layers()
    }

    /// Removes what no record accounts for (unmounting what is still mounted in them): `overlay/<id>`
    /// directories, `overlay-layers/<id>.tar-split.gz` and `overlay-layers/<id>/`, `overlay-images/<id>/`,
    /// and dangling `overlay/l/` links.
    pub(crate) fn remove_leftovers(&self) -> Result<Vec<Leftover>> {
        let l = self.layout();
        let known: HashSet<&str> = self
            .layers
            .iter()
            .chain(self.volatile_layers.iter())
            .map(|r| r.id.as_str())
            .collect();
        let mut removed = Vec::new();
        for (dir, what) in [
            (l.overlay(), "layer directory"),
            (l.layers_dir(), "layer data"),
        ] {
            for entry in fs::read_dir(&dir).at(&dir)? {
                let entry = entry.at(&dir)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".tar-split.gz").unwrap_or(&name);
                if is_hex_id(id) && !known.contains(id) {
                    let found = Leftover::measure(what, &[&entry.path()]);
                    remove_unmounted(&entry.path())?;
                    removed.push(found);
                }
            }
        }
        let images: HashSet<&str> = self.images.iter().map(|i| i.id.as_str()).collect();
        let dir = l.images_dir();
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_hex_id(&name) && !images.contains(name.as_str()) {
                let found = Leftover::measure("image data", &[&entry.path()]);
                remove_all(&entry.path())?;
                removed.push(found);
            }
        }
        let links = l.links();
        for entry in fs::read_dir(&links).at(&links)? {
            let entry = entry.at(&links)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_link_id(&name) && fs::metadata(entry.path()).is_err() {
                let found = Leftover::measure("dangling link", &[&entry.path()]);
                remove_all(&entry.path())?;
                removed.push(found);
            }
        }
        Ok(removed)
    }

    /// `mountpoints.json` as it is now (under the shared mount lock).
    pub(crate) fn read_mounts(&self) -> Result<Vec<MountRecord>> {
        let _lock = Lock::acquire(&self.layout().mountpoints_lock(), Kind::Shared)?;
        load_json(&self.layout().mountpoints_json())
    }

    /// strata's bind records (under the shared mount lock).
    pub(crate) fn lock_mounts_shared(&self) -> Result<Vec<BindRecord>> {
        let _lock = Lock::acquire(&self.layout().mountpoints_lock(), Kind::Shared)?;
        load_json(&self.layout().binds_json())
    }

    /// Takes `mountpoints.lock` exclusively (nested inside the layers lock) and loads the mount records.
    pub(crate) fn lock_mounts(&self) -> Result<mounts::Mounts> {
        let lock = Lock::acquire(&self.layout().mountpoints_lock(), Kind::Exclusive)?;
        let records = load_json(&self.layout().mountpoints_json())?;
        let binds: Vec<BindRecord> = load_json(&self.layout().binds_json())?;
        Ok(mounts::Mounts::new(
            self.layout().clone(),
            lock,
            records,
            binds,
        ))
    }

    /// Names every image currently holds, to check `names` for uniqueness.
    pub(crate) fn take_names(&mut self, owner: &str, names: &[String]) {
        for image in self.images.iter_mut().filter(|i| i.id != owner) {
            image.names.retain(|n| !names.contains(n));
        }
    }
}

/// Removes `path` after detaching whatever is still mounted at or under it (see
/// [`mounts::unmount_all_under`]): a removal never descends into a mount, nor fails on one.
fn remove_unmounted(path: &Path) -> Result<()> {
    mounts::unmount_all_under(path)?;
    remove_all(path)
}

/// Removes a layer's files: its short link, `overlay/<id>` (after unmounting whatever is still mounted in
/// it), its tar-split and its big data.
pub(crate) fn remove_layer_files(l: &Layout, id: &str) -> Result<()> {
    if !is_hex_id(id) {
        return Ok(());
    }
    if let Some(link) = read_optional(&l.layer_dir(id).join("link"))? {
        let link = String::from_utf8_lossy(&link).trim().to_owned();
        if is_link_id(&link) {
            remove_all(&l.link(&link))?;
        }
    }
    remove_unmounted(&l.layer_dir(id))?;
    remove_all(&l.tar_split(id))?;
    remove_all(&l.layer_data_dir(id))
}

/// The full names `name` may stand for: itself, with `:latest`, normalised (`docker.io/library/…`), and
/// under `localhost/`.
pub(crate) fn name_candidates(name: &str) -> Vec<String> {
    let mut out = vec![name.to_owned()];
    let last = name.rsplit('/').next().unwrap_or(name);
    if !last.contains(':') && !name.contains('@') {
        out.push(format!("{name}:latest"));
    }
    if let Ok(r) = ImageReference::parse(name) {
        out.push(r.to_string());
    }
    let first = name.split('/').next().unwrap_or("");
    let has_domain = name.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    if !has_domain {
        out.push(format!("localhost/{name}"));
        if !last.contains(':') && !name.contains('@') {
            out.push(format!("localhost/{name}:latest"));
        }
    }
    out
}

/// The name podman would store for `name` given by a user (`--name x` → `localhost/x:latest`): a domain is
/// kept (`docker.io` short names expanded), a bare name goes under `localhost/`, `:latest` is added.
pub fn normalise_name(name: &str) -> Result<String> {
    let first = name.split('/').next().unwrap_or("");
    let has_domain = name.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    let full = if has_domain {
        name.to_owned()
    } else {
        format!("localhost/{name}")
    };
    let r = ImageReference::parse(&full).map_err(|e| Error::Invalid {
        what: name.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(r.to_string())
}
