//! `strata list-tags`: a repository's tags, as `skopeo list-tags` prints them.

use crate::args::RegistryArgs;
use crate::output::print_json;

/// Arguments of `strata list-tags`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The repository: docker://HOST[:PORT]/NAME (no tag, no digest).
    repository: String,
}

/// Runs `strata list-tags`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let options = args.registry.options()?;
    print_json(&strata_source::list_tags(&args.repository, &options)?)
}
