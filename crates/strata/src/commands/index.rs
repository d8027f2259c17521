//! `strata index`: read, verify and index every layer of an image, and report what each holds.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use strata_image::resolve;
use strata_layer::{IndexDir, index_layers, source_layer_specs};

use crate::args::image::{open_source, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{human_bytes, print_json, print_raw};

/// Arguments of `strata index`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write each layer's index to DIR/<blob hex>.idx.
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
    diff_id: String,
    media_type: String,
    compression: String,
    blob_size: u64,
    tar_size: u64,
    entries: u64,
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
    let source = open_source(&args.image, &source_options(&args.registry, store)?)?;
    let image = resolve(source.as_ref(), &args.platform.platform())?;
    let specs = source_layer_specs(source.as_ref(), &image)?;
    let indexed = index_layers(source.as_ref(), &specs)?;
    let output = args.output.as_deref().map(IndexDir::create).transpose()?;
    let mut layers = Vec::new();
    for layer in indexed {
        let index = match &output {
            Some(dir) => Some(dir.save(&layer.spec.digest, &layer.index)?),
            None => None,
        };
        layers.push(LayerRow {
            digest: layer.spec.digest.to_string(),
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
    let report = Report {
        image: args.image,
        layers,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        return print_json(&report);
    }
    let mut out = format!(
        "{:<19} {:<5} {:>10} {:>10} {:>8} {:>8} {:>9}\n",
        "LAYER", "COMP", "BLOB", "TAR", "ENTRIES", "SECONDS", "MB/S"
    );
    for l in &report.layers {
        let rate = l.tar_size as f64 / 1e6 / l.seconds.max(1e-9);
        out.push_str(&format!(
            "{:<19} {:<5} {:>10} {:>10} {:>8} {:>8.3} {:>9.1}\n",
            &l.digest[..19.min(l.digest.len())],
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
