//! `strata sbom`: an image's software bill of materials (SPDX 2.3 JSON, CycloneDX 1.6 JSON or strata's
//! JSON), each package with its package URL, licences and the layer that introduced it.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use strata_sbom::{Format, ImageInfo, Sbom, check_created};

use crate::args::image::open_source;
use crate::args::{ImageArgs, StoreArgs};

/// Arguments of `strata sbom`.
#[derive(clap::Args)]
pub struct Args {
    /// The document format: spdx-json (SPDX 2.3), cyclonedx-json (CycloneDX 1.6) or strata-json
    /// (docs/FORMAT.md).
    #[arg(long, default_value = "spdx-json", value_name = "FORMAT")]
    format: String,
    /// Write the document to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Only what the layers above a base added or changed, and the packages they removed (listed as
    /// removed): BASE is a number of bottom layers, or an image whose layers are the bottom layers of
    /// IMAGE.
    #[arg(long, value_name = "BASE")]
    since_base: Option<String>,
    /// The creation time written, YYYY-MM-DDThh:mm:ssZ; default: $SOURCE_DATE_EPOCH if set, else now.
    #[arg(long, value_name = "DATE")]
    created: Option<String>,
    /// Leave out the files each OS package owns (listing them reads every one, for its SHA-1 and SHA-256).
    #[arg(long)]
    no_files: bool,
    #[command(flatten)]
    target: ImageArgs,
}

/// The creation time: `--created`, else `SOURCE_DATE_EPOCH`, else now (whole seconds, UTC).
fn created(given: Option<&str>) -> anyhow::Result<String> {
    if let Some(value) = given {
        check_created(value)?;
        return Ok(value.to_owned());
    }
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?,
        _ => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    Ok(strata_store::rfc3339_nano(
        UNIX_EPOCH + Duration::from_secs(secs),
    ))
}

/// How many bottom layers `base` names: a number, or an image whose layers (`rootfs.diff_ids`) are the
/// bottom layers of the image (`diff_ids`).
fn base_layers(
    base: &str,
    diff_ids: &[String],
    args: &ImageArgs,
    store: &StoreArgs,
) -> anyhow::Result<usize> {
    if let Ok(n) = base.parse::<usize>() {
        if n > diff_ids.len() {
            bail!(
                "--since-base {n}: {} has only {} layers",
                args.image,
                diff_ids.len()
            );
        }
        return Ok(n);
    }
    let source = open_source(base, &args.options(store)?)?;
    let resolved = strata_image::resolve(source.as_ref(), &args.platform.platform())?;
    let base_ids: Vec<String> = resolved
        .config
        .oci
        .rootfs()
        .diff_ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    if base_ids.len() > diff_ids.len() || diff_ids.get(..base_ids.len()) != Some(&base_ids[..]) {
        bail!(
            "--since-base {base}: its {} layers are not the bottom layers of {} (compared by diff_id)",
            base_ids.len(),
            args.image
        );
    }
    Ok(base_ids.len())
}

/// Runs `strata sbom`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.format)?;
    let created = created(args.created.as_deref())?;
    let image = args.target.open_scan(store)?;
    let layers = image.layer_refs();
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let base = match &args.since_base {
        Some(base) => base_layers(base, &diff_ids, &args.target, store)?,
        None => 0,
    };
    let inventory = image.inventory(base, !args.no_files)?;
    let resolved = image.view().image();
    let sbom = Sbom {
        image: ImageInfo {
            reference: args.target.image.clone(),
            manifest_digest: resolved.instance.digest.to_string(),
            config_digest: resolved.manifest.config().digest().to_string(),
        },
        created,
        inventory,
    };
    // The view's decoders and cached pieces are not needed to write the document.
    drop(image);
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            let written = std::fs::File::create(path).and_then(|file| {
                let mut out = std::io::BufWriter::new(file);
                sbom.write_to(format, &mut out)?;
                out.into_inner().map_err(|e| e.into_error())?.sync_all()
            });
            written.map_err(|e| {
                // No half-written document left behind.
                let _ = std::fs::remove_file(path);
                anyhow::Error::new(e).context(format!("writing {}", path.display()))
            })
        }
        _ => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            sbom.write_to(format, &mut out)?;
            out.flush()?;
            Ok(())
        }
    }
}
