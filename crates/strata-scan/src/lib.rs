//! A library for scanners: what is inside an image, without running, mounting or unpacking it.
//!
//! This crate owns the scanner's view of an image: its distribution ([`os`]), its package databases
//! ([`packages`]: dpkg, apk, rpm), and the container certification checks. It reads bytes handed to it and
//! never prints.
//!
//! **Must not depend on:** the store's layout, FUSE, the CLI.

pub mod check;
pub mod os;
pub mod packages;
