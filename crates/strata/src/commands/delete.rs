//! `strata delete`: a registry image's manifest deleted, as `skopeo delete` does.

use anyhow::{Context as _, bail};
use strata_source::Repository;

use crate::args::RegistryArgs;

/// Arguments of `strata delete`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image: docker://HOST[:PORT]/NAME[:TAG|@DIGEST]. Its manifest is deleted by digest, so every tag
    /// of that manifest goes with it.
    image: String,
}

/// Runs `strata delete`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.image.starts_with("docker://") {
        bail!(
            "{}: delete takes docker://HOST/NAME[:TAG|@DIGEST]",
            args.image
        );
    }
    let repository = Repository::open(&args.image, &args.registry.options()?)?;
    let reference = repository.reference();
    let target = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    repository
        .delete(&target)
        .with_context(|| format!("deleting {}", args.image))?;
    Ok(())
}
