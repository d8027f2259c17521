//! `strata`: look inside container images without running them.
//!
//! The binary owns all output: it parses arguments (clap), calls the library crates, renders their results
//! (JSON for scripts) and maps the outcome to an exit status: 0 when all went well, 1 for findings (a failed
//! check, images that differ, a verification that rejected something: see [`output::Findings`]), 2 for an
//! error (a one-line `strata: error: …`) or a bad argument (clap's usage message).

// A binary: it owns its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod commands;
mod hints;
mod memory;
mod names;
mod output;
mod render;
mod serve;
mod template;
mod trust;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Look inside container images without running them.
#[derive(Parser)]
#[command(name = "strata", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    store: args::StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show an image's manifest, config and layers, as `skopeo inspect` does.
    Inspect(commands::inspect::Args),
    /// List a registry repository's tags, as `skopeo list-tags` does.
    ListTags(commands::list_tags::Args),
    /// Read, verify and index every layer of an image, and report what each holds.
    Index(commands::index::Args),
    /// Write an image's root filesystem (its layers applied in order) into a directory, as `umoci unpack`.
    Unpack(commands::unpack::Args),
    /// List a directory of an image (`ls`, `ls -l`), without unpacking it.
    Ls(commands::ls::Args),
    /// Print a file of an image (symlinks followed inside the image).
    Cat(commands::cat::Args),
    /// Find an image's entries by name, type and permission bits, as `find` does.
    Find(commands::find::Args),
    /// List the files added, removed and changed from one image to another.
    Diff(commands::diff::Args),
    /// List the packages installed in an image (dpkg, apk, rpm).
    Packages(commands::packages::Args),
    /// Write an image's SBOM (SPDX 2.3 or CycloneDX 1.6 JSON): OS and language packages, each with its
    /// package URL, licences and the layer that introduced it.
    Sbom(commands::sbom::Args),
    /// Write an image's squashed tree as one tar, streamed from its layers.
    Export(commands::export::Args),
    /// Run the certification scan's assessments on an image (docs/CHECKS.md), packaged files verified;
    /// exit 1 when any fails.
    Check(commands::check::Args),
    /// Copy an image from any transport to any transport, as `skopeo copy` does (no conversion yet).
    Copy(Box<commands::copy::Args>),
    /// Delete an image's manifest from a registry, as `skopeo delete` does.
    Delete(commands::delete::Args),
    /// Show what containers-policy.json decides for an image, with every signature found; exit 1 when
    /// it is rejected.
    Verify(commands::verify::Args),
    /// Pull an image into the store (containers/storage layout, shared with podman via --root), if the
    /// trust policy accepts it.
    Pull(commands::pull::Args),
    /// List the images in the store.
    Images(commands::images::Args),
    /// List the layers in the store, or with IMAGE what each layer of that image adds, removes and wastes.
    Layers(commands::layers::Args),
    /// Remove images from the store, with the layers nothing else uses.
    Rmi(commands::rmi::Args),
    /// Remove unnamed images, unused layers and leftovers of interrupted operations from the store.
    Prune(commands::prune::Args),
    /// Check the store's consistency (and repair it with --repair).
    Fsck(commands::fsck::Args),
    /// Mount any image read-only at a directory: FUSE (from a store, archive, layout or registry), or the
    /// kernel overlayfs for a store image as root.
    Mount(commands::mount::Args),
    /// Serve podman's Additional Layer Store at a directory: image layers taken from registries lazily,
    /// every byte checked, instead of downloaded (overlay.additionallayerstore=DIR:ref).
    LayerStore(commands::layer_store::Args),
    /// Unmount a directory `strata mount` or `strata layer-store` mounted.
    Umount(commands::umount::Args),
    /// List the live mounts: FUSE (`strata mount --fuse`) and the store's overlay image mounts.
    Mounts(commands::mounts::Args),
    /// Sign an image in a registry or a dir: directory (GPG or a cosign key), where podman looks for it.
    Sign(commands::sign::Args),
    /// Show or prune the local index cache (indexes of registry layers read whole, for later range reads).
    Cache(commands::cache::Args),
    /// Print shell completions for strata (bash, zsh, fish, elvish, powershell).
    Completions(commands::docs::CompletionsArgs),
    /// Write strata's man pages (strata.1 and one per verb) into a directory.
    Man(commands::docs::ManArgs),
}

fn main() -> ExitCode {
    memory::tune_allocator();
    let cli = Cli::parse();
    let store = &cli.store;
    let result = match cli.command {
        Command::Inspect(args) => commands::inspect::run(args, store),
        Command::ListTags(args) => commands::list_tags::run(args),
        Command::Index(args) => commands::index::run(args, store),
        Command::Unpack(args) => commands::unpack::run(args, store),
        Command::Ls(args) => commands::ls::run(args, store),
        Command::Cat(args) => commands::cat::run(args, store),
        Command::Find(args) => commands::find::run(args, store),
        Command::Diff(args) => commands::diff::run(args, store),
        Command::Packages(args) => commands::packages::run(args, store),
        Command::Sbom(args) => commands::sbom::run(args, store),
        Command::Export(args) => commands::export::run(args, store),
        Command::Check(args) => commands::check::run(args, store),
        Command::Verify(args) => commands::verify::run(args, store),
        Command::Pull(args) => commands::pull::run(args, store),
        Command::Copy(args) => commands::copy::run(*args, store),
        Command::Delete(args) => commands::delete::run(args),
        Command::Images(args) => commands::images::run(args, store),
        Command::Layers(args) => commands::layers::run(args, store),
        Command::Rmi(args) => commands::rmi::run(args, store),
        Command::Prune(args) => commands::prune::run(args, store),
        Command::Fsck(args) => commands::fsck::run(args, store),
        Command::Mount(args) => commands::mount::run(args, store),
        Command::LayerStore(args) => commands::layer_store::run(args, store),
        Command::Umount(args) => commands::umount::run(args, store),
        Command::Mounts(args) => commands::mounts::run(args, store),
        Command::Sign(args) => commands::sign::run(args, store),
        Command::Cache(args) => commands::cache::run(args),
        Command::Completions(args) => commands::docs::completions(args),
        Command::Man(args) => commands::docs::man(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<output::Findings>() {
            Some(findings) => {
                output::print_findings(findings);
                ExitCode::from(output::EXIT_FINDINGS)
            }
            None => {
                output::print_error(&e);
                ExitCode::from(output::EXIT_ERROR)
            }
        },
    }
}
