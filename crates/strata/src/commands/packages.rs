//! `strata packages`: the packages installed in an image (dpkg, apk, rpm).

use strata_scan::packages::Package;

use super::ls::open_scan;
use super::platform::PlatformArgs;
use super::registry_args::RegistryArgs;
use crate::output::{print_json, print_raw};

/// Arguments of `strata packages`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: a list of {"name", "version", "architecture", "source", "license", "status",
    /// "multi_arch", "manager"}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image (see `strata inspect --help` for the transports).
    image: String,
}

/// Runs `strata packages`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let image = open_scan(&args.image, &args.platform, Some(&args.registry))?;
    let packages = image.packages()?;
    if args.json {
        return print_json(&packages);
    }
    print_raw(table(&packages).as_bytes())
}

/// NAME, VERSION and ARCH columns, in the databases' order.
fn table(packages: &[Package]) -> String {
    let width = |f: fn(&Package) -> &str, title: &str| {
        packages
            .iter()
            .map(|p| f(p).len())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let wn = width(|p| &p.name, "NAME");
    let wv = width(|p| &p.version, "VERSION");
    let mut out = format!("{:<wn$}  {:<wv$}  ARCH\n", "NAME", "VERSION");
    for p in packages {
        out.push_str(&format!(
            "{:<wn$}  {:<wv$}  {}\n",
            p.name, p.version, p.architecture
        ));
    }
    out
}
