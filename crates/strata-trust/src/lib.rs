//! strata's chain of custody: an image's signatures, found wherever podman and skopeo keep them, judged by
//! containers-policy.json as they judge them.
//!
//! This crate owns *finding* signatures ([`gather`]: registries.d lookaside stores read over `file://` and
//! `http(s)://`, cosign `sha256-<hex>.sig` attachments in the registry, the signatures a `dir:` or a store
//! keeps), *making and writing* them ([`sign`]: simple signing through `gpg` or sigstore with a cosign key, into
//! the registries.d lookaside, a `.sig` attachment or `dir:`'s `signature-N`), and joining that to the policy's
//! decision. What a policy says lives in `strata-policy`; what a
//! signature says, and whether its cryptography holds, in `strata-signature`.
//!
//! **Invariants:** nothing found is believed before it is verified; every count and size is bounded
//! ([`strata_image::MAX_SIGNATURES`], [`strata_image::MAX_SIGNATURE_SIZE`]); digests used to build paths and
//! tags are [`strata_oci::Digest`]s, validated when parsed.
//!
//! **Must not depend on:** the layer engine, the store, the mount or the scanner; it never prints.

pub mod error;
pub mod gather;
pub mod sign;

pub use error::{Error, Result};
