//! A library for scanners: what is inside an image, without running, mounting or unpacking it.
//!
//! Open an image with [`ScanImage::open`] (any transport: `oci:`, `oci-archive:`, `docker-archive:`, `dir:`,
//! `docker://`, and `containers-storage:[ROOT+RUNROOT]NAME` for podman's or strata's store), then:
//! - walk, stat, list and read its files: [`ScanImage::entries`], [`ScanImage::walk`], [`ScanImage::stat`],
//!   [`ScanImage::resolve`] (symlinks followed inside the image), [`ScanImage::read_dir`],
//!   [`ScanImage::read`], [`ScanImage::copy_to`]; each [`FileEntry`] has its kind, mode, owner, size, link
//!   target and the layer it comes from. Paths are bytes, as tar names are: arguments take `&str` or
//!   `&[u8]`, entries give `Vec<u8>` with lossy helpers for display;
//! - read its distribution ([`os`]) and packages ([`packages`]: dpkg, apk, rpm's sqlite database), the
//!   files each package installed ([`ScanImage::installed_files`]), and verify them as `rpm -Va` and
//!   `dpkg --verify` do ([`ScanImage::verify_packages`], [`verify`]);
//! - list every package, OS and language (Python, npm, Go binaries), with the layer that brought it
//!   ([`inventory`], what `strata-sbom` writes as SBOMs);
//! - run the container certification assessments ([`check`]);
//! - compare two images ([`diff`]), report what each layer holds and wastes ([`layers`], and as dive counts
//!   it: [`dive`]), write the squashed
//!   tree as a tar ([`ScanImage::export_tar`]), and match entries as `find` does ([`find`]).
//!
//! It builds on the layer engine's `ImageView`: an image's layers are read, verified and indexed, then
//! walked and read through their checkpoints, with the same piece cache and read-ahead the FUSE mount uses;
//! nothing is unpacked or mounted. An image a store keeps unpacked is read through its layers' indexes and
//! `diff` directories. It never prints.
//!
//! **Must not depend on:** the store's internals (it opens store images through the store's transport),
//! FUSE, the CLI.

pub mod advisories;
pub mod check;
pub mod diff;
pub mod dive;
mod export;
pub mod find;
mod image;
pub mod inventory;
pub mod layers;
pub mod os;
pub mod packages;
pub mod verify;

pub use export::ExportReport;
pub use image::{
    CheckOptions, Error, FileEntry, Kind, MAX_DATABASE_SIZE, MAX_SYMLINKS, Resolved, Result,
    ScanImage, octal_mode, raw_bytes, reference_tag,
};
