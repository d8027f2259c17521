//! `strata packages`: the packages installed in an image (dpkg, apk, rpm).

use strata_scan::packages::Package;

use crate::args::{ImageArgs, StoreArgs};
use crate::output::{print_json, print_raw};

/// Arguments of `strata packages`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: a list of {"name", "version", "architecture", "source", "license", "status",
    /// "multi_arch", "manager"}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: ImageArgs,
}

/// Runs `strata packages`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
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
