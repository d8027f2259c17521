//! The OCI image model of strata: the values every other strata crate passes around.
//!
//! This crate owns
//! - [`Digest`]: content digests (sha256 and sha512), strictly validated so a digest can safely name a file,
//!   plus streaming verification ([`DigestWriter`], [`HashingWriter`], [`VerifyingReader`]);
//! - [`ImageReference`]: docker-style image references, normalised as podman and docker do
//!   (`debian:12` → `docker.io/library/debian:12`);
//! - [`media`]: the media types of OCI and Docker v2 manifests, indexes, configs and layers;
//! - [`Manifest`]: manifests and indexes (OCI and Docker v2s2, both decoded into `oci-spec` types),
//!   parsed from raw bytes with size limits;
//! - [`ImageConfig`]: the image configuration, with the Docker-only fields skopeo reports;
//! - [`Platform`]: os/architecture/variant matching with the usual defaults (arm64 means v8).
//!
//! **Invariant:** this crate does no I/O and depends on no other strata crate. Parsers take byte slices
//! and return typed errors; nothing here panics on input.

pub mod civil;
mod config;
mod digest;
mod error;
mod manifest;
pub mod media;
mod platform;
mod reference;

pub use config::ImageConfig;
pub use digest::{Algorithm, Digest, DigestWriter, HashingWriter, VerifyingReader};
pub use error::{Error, Result};
pub use manifest::{MAX_MANIFEST_SIZE, Manifest};
pub use platform::Platform;
pub use reference::ImageReference;

/// Re-export of the `oci-spec` image types strata's manifests and configs are decoded into.
pub use oci_spec::image as spec;
