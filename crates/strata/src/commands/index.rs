//! `strata index`: index every layer of an image and report what each holds and how it was had: read
//! whole (always, with `-o` or `--push`), or from a table of contents, a published index or the local
//! cache. `--push` publishes the indexes to the image's registry as an OCI artifact (`strata_lazy::published`)
//! that later readers anywhere find.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use serde::Serialize;
use strata_image::{ImageSource, ResolvedImage, resolve};
use strata_index::LayerInfo;
use strata_layer::{
    IndexDir, IndexOptions, IndexOrigin, LayerFinder, index_layers, obtain_layers,
    source_layer_specs,
};
use strata_oci::{Digest, Manifest, Platform};
use strata_source::{ReferrersVia, Repository};

use crate::args::image::{finders, open_source, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{human_bytes, print_json, print_raw};

/// Arguments of `strata index`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write each layer's index to DIR/<blob hex>.idx (every layer is then read whole: an index built
    /// from a table of contents is not one to keep).
    #[arg(long, short = 'o', value_name = "DIR")]
    output: Option<PathBuf>,
    /// Publish the indexes to the image's registry (a `docker://` image) as an OCI artifact whose
    /// subject is the image manifest: any later strata, anywhere, then reads its gzip and zstd layers by
    /// range. Every layer is read whole, verified and indexed first.
    #[arg(long)]
    push: bool,
    /// Every platform of a multi-platform image, not only --platform's (with --push or -o).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image (see `strata inspect --help` for the transports).
    image: String,
}

#[derive(Serialize)]
struct LayerRow {
    digest: String,
    /// How the index was had: `read` (whole), `toc`, `published`, `cache`, `kept` (a store's).
    read: &'static str,
    /// The table of contents' format, the published artifact or the cache file, where there is one.
    from: Option<String>,
    diff_id: String,
    media_type: String,
    compression: String,
    blob_size: u64,
    /// The uncompressed tar's size; for a layer indexed from its table of contents, the size of its files.
    tar_size: u64,
    entries: u64,
    /// Seconds reading the layer took (for layers not read whole: the whole lookup's).
    seconds: f64,
    index: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report {
    image: String,
    layers: Vec<LayerRow>,
    /// With --push: one artifact per image manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    published: Vec<PublishedRow>,
    seconds: f64,
}

#[derive(Serialize)]
struct PublishedRow {
    /// The image manifest the indexes describe.
    manifest: String,
    /// The artifact manifest pushed.
    artifact: String,
    /// How readers find it: `referrers` (the registry's API) or `tag` (the `sha256-<hex>` tag).
    via: &'static str,
}

/// Runs `strata index`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let source: Arc<dyn ImageSource> = Arc::from(open_source(
        &args.image,
        &source_options(&args.registry, store)?,
    )?);
    let options = source_options(&args.registry, store)?;
    let whole = args.output.is_some() || args.push;
    if args.all && !whole {
        bail!("--all is for -o and --push (which read every layer whole)");
    }
    let repository = if args.push {
        if !args.image.starts_with("docker://") {
            bail!("--push publishes to a registry: the image must be a docker:// one");
        }
        Some(Repository::open(&args.image, &options)?)
    } else {
        None
    };
    let mut layers = Vec::new();
    let mut published = Vec::new();
    if whole {
        let dir = args.output.as_deref().map(IndexDir::create).transpose()?;
        for image in instances(source.as_ref(), &args.platform, args.all)? {
            let (rows, indexes) = read_whole(source.as_ref(), &image, dir.as_ref())?;
            layers.extend(rows);
            if let Some(repo) = &repository {
                let pushed = strata_lazy::published::publish(repo, &image.instance, &indexes)?;
                published.push(PublishedRow {
                    manifest: image.instance.digest.to_string(),
                    artifact: pushed.manifest.digest.to_string(),
                    via: match pushed.via {
                        ReferrersVia::Api => "referrers",
                        ReferrersVia::TagSchema => "tag",
                    },
                });
            }
        }
    } else {
        layers = obtain(
            &source,
            &args.platform,
            finders(&args.image, &args.registry)?,
        )?;
    }
    let report = Report {
        image: args.image,
        layers,
        published,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        return print_json(&report);
    }
    let mut out = format!(
        "{:<19} {:<9} {:<5} {:>10} {:>10} {:>8} {:>8} {:>9}\n",
        "LAYER", "READ", "COMP", "BLOB", "TAR", "ENTRIES", "SECONDS", "MB/S"
    );
    for l in &report.layers {
        let rate = l.tar_size as f64 / 1e6 / l.seconds.max(1e-9);
        out.push_str(&format!(
            "{:<19} {:<9} {:<5} {:>10} {:>10} {:>8} {:>8.3} {:>9.1}\n",
            &l.digest[..19.min(l.digest.len())],
            l.read,
            l.compression,
            human_bytes(l.blob_size),
            human_bytes(l.tar_size),
            l.entries,
            l.seconds,
            rate
        ));
    }
    for p in &report.published {
        out.push_str(&format!(
            "published {} for {} (found by {})\n",
            p.artifact, p.manifest, p.via
        ));
    }
    out.push_str(&format!(
        "{} layers in {:.3} s\n",
        report.layers.len(),
        report.seconds
    ));
    print_raw(out.as_bytes())
}

/// The image manifests to index: the one `platform` chooses, or with `all` every one a multi-platform
/// image lists (entries without a platform, such as attestations, left out).
fn instances(
    source: &dyn ImageSource,
    platform: &PlatformArgs,
    all: bool,
) -> anyhow::Result<Vec<ResolvedImage>> {
    let top = source.top_manifest()?;
    let manifest = Manifest::parse(&top.bytes, top.media_type.as_deref(), source.name())?;
    match manifest {
        Manifest::Index { index, .. } if all => index
            .manifests()
            .iter()
            .filter_map(Platform::of_descriptor)
            .filter(|p| p.os != "unknown")
            .map(|p| Ok(resolve(source, &p)?))
            .collect(),
        _ => Ok(vec![resolve(source, &platform.platform())?]),
    }
}

/// Every layer of `image` read whole, verified and indexed, each index kept in `dir` if given; the rows,
/// and each layer's index file bytes by blob digest.
#[allow(clippy::type_complexity)]
fn read_whole(
    source: &dyn ImageSource,
    image: &ResolvedImage,
    dir: Option<&IndexDir>,
) -> anyhow::Result<(Vec<LayerRow>, Vec<(Digest, Vec<u8>)>)> {
    let specs = source_layer_specs(source, image)?;
    let mut layers = Vec::new();
    let mut indexes = Vec::new();
    for layer in index_layers(source, &specs)? {
        let index = match dir {
            Some(dir) => Some(dir.save(&layer.spec.digest, &layer.index)?),
            None => None,
        };
        indexes.push((layer.spec.digest.clone(), layer.index.try_to_bytes()?));
        layers.push(LayerRow {
            digest: layer.spec.digest.to_string(),
            read: IndexOrigin::Read.kind(),
            from: None,
            diff_id: layer.summary.diff_id.to_string(),
            media_type: layer.spec.media_type.clone(),
            compression: format!("{:?}", layer.summary.compression).to_lowercase(),
            blob_size: layer.summary.blob_size,
            tar_size: layer.summary.tar_size,
            entries: layer.summary.entries,
            seconds: layer.elapsed.as_secs_f64(),
            index,
        });
    }
    Ok((layers, indexes))
}

/// Every layer's index had the cheapest way there is (`finders`, as every reading command has them).
fn obtain(
    source: &Arc<dyn ImageSource>,
    platform: &PlatformArgs,
    finders: Vec<Arc<dyn LayerFinder>>,
) -> anyhow::Result<Vec<LayerRow>> {
    let started = Instant::now();
    let image = resolve(source.as_ref(), &platform.platform())?;
    let options = IndexOptions {
        finders,
        ..IndexOptions::default()
    };
    let obtained = obtain_layers(source, &image, &options)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(obtained
        .into_iter()
        .map(|layer| {
            let info = layer.index.layer();
            let from = match &layer.origin {
                IndexOrigin::Read => None,
                IndexOrigin::Toc(format) => Some(format.clone()),
                IndexOrigin::Published(digest) => Some(digest.to_string()),
                IndexOrigin::Kept(path)
                | IndexOrigin::IndexDir(path)
                | IndexOrigin::Cache(path) => Some(path.display().to_string()),
            };
            LayerRow {
                digest: info.blob_digest.clone(),
                read: layer.origin.kind(),
                from,
                diff_id: info.diff_id.clone(),
                media_type: info.media_type.clone(),
                compression: match info.compression {
                    LayerInfo::COMPRESSION_NONE => "none",
                    LayerInfo::COMPRESSION_GZIP => "gzip",
                    LayerInfo::COMPRESSION_ZSTD => "zstd",
                    _ => "other",
                }
                .to_owned(),
                blob_size: info.blob_size,
                tar_size: info.tar_size,
                entries: layer.index.len() as u64,
                seconds,
                index: None,
            }
        })
        .collect())
}
