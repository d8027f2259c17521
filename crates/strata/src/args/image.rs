//! The image a command opens, with the flags that choose it (platform) and reach it (registry, store):
//! every command that opens an image takes the same ones.

use std::path::Path;
use std::sync::Arc;

use strata_image::ImageSource;
use strata_layer::{ImageView, IndexOptions, LayerFinder, ViewOptions};
use strata_lazy::{DEFAULT_MAX_BYTES, IndexCache};
use strata_scan::ScanImage;
use strata_source::SourceOptions;

use super::{PlatformArgs, RegistryArgs, StoreArgs};

/// The image flags and the image, as every command that reads an image takes them.
#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    #[command(flatten)]
    pub platform: PlatformArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N],
    /// dir:DIR, docker://REFERENCE, containers-storage:[ROOT+RUNROOT]IMAGE, or a name or ID in the store.
    pub image: String,
}

/// The source options for `registry` and `store`.
pub fn source_options(registry: &RegistryArgs, store: &StoreArgs) -> anyhow::Result<SourceOptions> {
    let mut options = registry.options()?;
    options.storage_root = store.given_root();
    options.storage_runroot = store.given_runroot();
    Ok(options)
}

impl ImageArgs {
    /// The source options these flags describe, with the store `store` names.
    pub fn options(&self, store: &StoreArgs) -> anyhow::Result<SourceOptions> {
        source_options(&self.registry, store)
    }

    /// Opens the image for scanning: nothing unpacked (see [`ScanImage::open_with`]), layers found by
    /// [`finders`] first.
    pub fn open_scan(&self, store: &StoreArgs) -> anyhow::Result<ScanImage> {
        open_scan(
            &self.image,
            &self.platform,
            &self.registry,
            &self.options(store)?,
        )
    }
}

/// Whether `name` starts with a transport (`oci:`, `docker://`, `containers-storage:`, …).
pub fn has_transport(name: &str) -> bool {
    strata_store::transports().of(name).is_some()
}

/// Opens image `name` with `options`: a name with a transport through it (`containers-storage:NAME` in the
/// store `options` name, else containers/storage's default store), a bare name (or ID) from strata's store
/// (`options`' store, else strata's default one).
pub fn open_source(name: &str, options: &SourceOptions) -> anyhow::Result<Box<dyn ImageSource>> {
    let transports = strata_store::transports();
    if transports.of(name).is_some() {
        return Ok(transports.open(name, options)?);
    }
    let mut options = options.clone();
    if options.storage_root.is_none() {
        options.storage_root = Some(strata_store::default_root());
        if options.storage_runroot.is_none() {
            options.storage_runroot = Some(strata_store::default_runroot(None)?);
        }
    }
    let in_store = format!("{}:{name}", strata_store::TRANSPORT);
    transports.open(&in_store, &options).map_err(|e| {
        let root = options.storage_root.as_deref().unwrap_or(Path::new(""));
        strata_store::transport_error(&e)
            .and_then(|store| crate::hints::store_hint(store, name, root))
            .unwrap_or_else(|| anyhow::Error::new(e))
    })
}

/// Opens image `name` for scanning, for `platform`, with `options`, its layers looked for by the
/// [`finders`] for `name` before any is read whole.
pub fn open_scan(
    name: &str,
    platform: &PlatformArgs,
    registry: &RegistryArgs,
    options: &SourceOptions,
) -> anyhow::Result<ScanImage> {
    let source: Arc<dyn ImageSource> = Arc::from(open_source(name, options)?);
    let view_options = ViewOptions {
        indexes: IndexOptions {
            finders: finders(name, registry)?,
            ..IndexOptions::default()
        },
        ..ViewOptions::default()
    };
    let view = ImageView::open_with(source, &platform.platform(), &view_options)?;
    Ok(ScanImage::from_view(name, view))
}

/// The ways a reading command finds a layer of image `name` without reading it whole
/// (`IndexOptions::finders`, in [`strata_lazy::finders`]' order): a layer's own table of contents, for
/// every image; for a `docker://` image also the local index cache (`--cache-dir`, else
/// `$XDG_CACHE_HOME/strata`), which keeps the index of each layer read whole, and indexes published to the
/// registry (`strata index --push`) for an image named by tag. A default cache directory that cannot be
/// made is no cache; a given one is an error.
pub fn finders(name: &str, registry: &RegistryArgs) -> anyhow::Result<Vec<Arc<dyn LayerFinder>>> {
    let mut lazy = strata_lazy::LazyOptions::default();
    if name.starts_with("docker://") {
        lazy.index_cache = match registry.cache_dir() {
            Some(dir) => Some(IndexCache::open(dir, DEFAULT_MAX_BYTES)?),
            None => {
                IndexCache::default_dir().and_then(|d| IndexCache::open(&d, DEFAULT_MAX_BYTES).ok())
            }
        };
        lazy.published = Some(registry.options()?);
    }
    Ok(strata_lazy::finders(&lazy))
}
