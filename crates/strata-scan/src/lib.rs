//! A library for scanners: what is inside an image, without running, mounting or unpacking it.
//!
//! This crate owns the scanner's view of an image: its distribution ([`os`]), its package databases
//! ([`packages`]: dpkg, apk, rpm), and the container certification checks. It reads bytes handed to it and
//! never prints.
//!
//! It builds on the layer engine's `ImageView`: an image's layers are read, verified and indexed, then
//! walked and read through their checkpoints; nothing is unpacked or mounted.
//!
//! **Must not depend on:** the store's layout, FUSE, the CLI.

pub mod check;
mod image;
pub mod os;
pub mod packages;

pub use image::{Error, FileEntry, Kind, MAX_DATABASE_SIZE, Result, ScanImage};
