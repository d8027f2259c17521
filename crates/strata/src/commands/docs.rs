//! `strata completions SHELL` and `strata man DIR`: shell completions and man pages, generated from the
//! command line's own definitions so they never drift from it.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::output::print_raw;

/// Arguments of `strata completions`.
#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell. Load it with e.g. `source <(strata completions
    /// bash)`, or install it where your shell looks (`/usr/share/bash-completion/completions/strata`).
    shell: clap_complete::Shell,
}

/// Arguments of `strata man`.
#[derive(clap::Args)]
pub struct ManArgs {
    /// The directory to write `strata.1` and one `strata-VERB.1` per verb into (created if missing); view
    /// with `man -l DIR/strata-ls.1`, or install into a `man1` directory on your MANPATH.
    dir: PathBuf,
}

/// Runs `strata completions`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut command = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "strata", &mut out);
    print_raw(&out)
}

/// Runs `strata man`.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let command = crate::Cli::command();
    clap_mangen::generate_to(command, &args.dir)
        .with_context(|| format!("writing man pages into {}", args.dir.display()))?;
    Ok(())
}
