//! `strata-fixtures NAME OUT [--format oci|oci-archive] [--tag TAG]`: writes a
//! named test fixture image as an OCI layout directory or an `oci-archive`
//! tarball.

// A binary: it owns its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// OCI image layout directory (OUT must not exist or be empty).
    Oci,
    /// Tarball of an OCI image layout.
    OciArchive,
}

/// Write a deterministic strata test fixture image.
#[derive(Debug, Parser)]
#[command(name = "strata-fixtures", version)]
struct Args {
    /// Fixture name.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(strata_fixtures::FIXTURE_NAMES))]
    name: String,
    /// Output: a layout directory (oci) or a tar file (oci-archive).
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Oci)]
    format: Format,
    /// Tag recorded in index.json (org.opencontainers.image.ref.name).
    #[arg(long, default_value = "latest")]
    tag: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Some(fixture) = strata_fixtures::fixture(&args.name) else {
        bail!("unknown fixture {:?}", args.name);
    };
    let descriptor = match args.format {
        Format::Oci => {
            if args.out.exists() {
                let mut entries = std::fs::read_dir(&args.out)
                    .with_context(|| format!("{} is not a directory", args.out.display()))?;
                if entries.next().is_some() {
                    bail!("{} exists and is not empty", args.out.display());
                }
            }
            fixture.write_layout(&args.out, &args.tag)
        }
        Format::OciArchive => fixture.write_oci_archive(&args.out, &args.tag),
    }
    .with_context(|| format!("writing fixture {:?} to {}", args.name, args.out.display()))?;
    println!(
        "{} {} ({}:{}) -> {}",
        args.name,
        descriptor.digest,
        match args.format {
            Format::Oci => "oci",
            Format::OciArchive => "oci-archive",
        },
        args.tag,
        args.out.display()
    );
    Ok(())
}
