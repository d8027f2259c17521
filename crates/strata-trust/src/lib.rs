//! strata's chain of custody: an image's signatures, found wherever podman and skopeo keep them, judged by
//! containers-policy.json as they judge them.
//!
//! This crate owns *finding* signatures ([`gather`]: registries.d lookaside stores read over `file://` and
//! `http(s)://`, cosign `sha256-<hex>.sig` attachments in the registry, the signatures a `dir:` or a store
//! keeps), *deciding* ([`evaluate`](mod@evaluate): containers/image's evaluation — every requirement of the most
//! specific scope must allow the image, any one good signature satisfies a signature requirement, each
//! signature checked in the order cryptography, payload, manifest digest, identity), joining the two for an
//! image a source designates ([`verify`]), and *making and writing* signatures ([`sign`]: simple signing
//! through `gpg` or sigstore with a cosign key, into the registries.d lookaside, a `.sig` attachment or
//! `dir:`'s `signature-N`). What a policy says lives in `strata-policy`; what a
//! signature says, and whether its cryptography holds, in `strata-signature`.
//!
//! **Invariants:** nothing found is believed before it is verified; every count and size is bounded
//! ([`strata_image::MAX_SIGNATURES`], [`strata_image::MAX_SIGNATURE_SIZE`]); digests used to build paths and
//! tags are [`strata_oci::Digest`]s, validated when parsed; signatures are fetched only when a requirement
//! needs them.
//!
//! **Must not depend on:** the layer engine, the store, the mount or the scanner; it never prints.

pub mod error;
pub mod evaluate;
pub mod gather;
pub mod sign;
pub mod verify;

pub use error::{Error, Result};
pub use evaluate::{
    FoundSignature, RequirementVerdict, SignatureVerdict, Subject, Verdict, evaluate,
};
pub use verify::{
    StoreIdentity, TrustOptions, policy_target, signatures, signatures_of, verify_image,
};
