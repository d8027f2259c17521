//! `strata`: look inside container images without running them.
//!
//! The binary owns all output: it parses arguments (clap), calls the library crates, renders their results
//! (JSON for scripts) and maps errors to a one-line message and exit code 1.

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Look inside container images without running them.
#[derive(Parser)]
#[command(name = "strata", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show an image's manifest, config and layers, as `skopeo inspect` does.
    Inspect(commands::inspect::Args),
    /// Read, verify and index every layer of an image, and report what each holds.
    Index(commands::index::Args),
    /// Write an image's root filesystem (its layers applied in order) into a directory, as `umoci unpack`.
    Unpack(commands::unpack::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Index(args) => commands::index::run(args),
        Command::Unpack(args) => commands::unpack::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
