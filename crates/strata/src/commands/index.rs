//! `strata index`: index every layer of an image and report what each holds and how it was had: read
//! whole (always, with `-o`), or from a table of contents, a published index or the local cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use strata_image::{ImageSource, resolve};
use strata_index::LayerInfo;
use strata_layer::{
    IndexDir, IndexOptions, IndexOrigin, index_layers, obtain_layers, source_layer_specs,
};
use strata_lazy::LazyOptions;

use crate::args::image::{open_source, source_options};
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
    seconds: f64,
}

/// Runs `strata index`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let source: Arc<dyn ImageSource> = Arc::from(open_source(
        &args.image,
        &source_options(&args.registry, store)?,
    )?);
    let layers = match args.output.as_deref() {
        Some(dir) => read_whole(source.as_ref(), &args.platform, &IndexDir::create(dir)?)?,
        None => obtain(&source, &args.platform)?,
    };
    let report = Report {
        image: args.image,
        layers,
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
    out.push_str(&format!(
        "{} layers in {:.3} s\n",
        report.layers.len(),
        report.seconds
    ));
    print_raw(out.as_bytes())
}

/// Every layer read whole, verified and indexed, each index kept in `dir`.
fn read_whole(
    source: &dyn ImageSource,
    platform: &PlatformArgs,
    dir: &IndexDir,
) -> anyhow::Result<Vec<LayerRow>> {
    let image = resolve(source, &platform.platform())?;
    let specs = source_layer_specs(source, &image)?;
    let mut layers = Vec::new();
    for layer in index_layers(source, &specs)? {
        let index = dir.save(&layer.spec.digest, &layer.index)?;
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
            index: Some(index),
        });
    }
    Ok(layers)
}

/// Every layer's index had the cheapest way there is (see [`strata_lazy::finders`]), as every reading
/// command has it.
fn obtain(source: &Arc<dyn ImageSource>, platform: &PlatformArgs) -> anyhow::Result<Vec<LayerRow>> {
    let started = Instant::now();
    let image = resolve(source.as_ref(), &platform.platform())?;
    let options = IndexOptions {
        finders: strata_lazy::finders(&LazyOptions::default()),
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
