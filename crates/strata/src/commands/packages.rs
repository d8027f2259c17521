//! `strata packages`: the packages installed in an image (dpkg, apk, rpm).

use strata_scan::packages::{Package, PackageError};

use crate::args::{ImageArgs, StoreArgs};
use crate::output::{print_json, print_raw};

/// Arguments of `strata packages`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: a list of {"name", "version", "architecture", "source", "license", "status",
    /// "multi_arch", "manager"}; `[]` for an image without a package database.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: ImageArgs,
}

/// Runs `strata packages`. An image without a package database (dpkg, apk, rpm) has no packages: `[]`, or
/// a note on stderr, and exit status 0; an unreadable database is an error.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
    let packages = match image.packages() {
        Ok(packages) => packages,
        Err(strata_scan::Error::Packages(PackageError::NoDatabase { image })) => {
            if args.json {
                return print_json(&Vec::<Package>::new());
            }
            eprintln!("strata: {image}: no package database (dpkg, apk or rpm) found: no packages");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
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
