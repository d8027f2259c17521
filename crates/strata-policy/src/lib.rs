//! containers-policy.json and registries.d, read as containers/image (podman, skopeo, CRI-O) reads them.
//!
//! This crate owns
//! - [`Policy`]: containers-policy.json(5) in full, parsed as strictly as containers/image: an unknown or
//!   duplicate key, a missing required key, an empty requirement list, a missing `default` or an invalid scope of
//!   a known transport refuses the whole file, with the file and the JSON path of the fault
//!   ([`PolicyError::Invalid`]). [`Policy::load`] finds the file as podman does.
//! - [`Requirement`] and its parts: `insecureAcceptAnything`, `reject`, `signedBy`, `signedBaseLayer`,
//!   `sigstoreSigned` (keys, Fulcio, PKI, Rekor keys). Key files are not read while parsing;
//!   [`Requirement::load_keys`] / [`KeySource::load`] read them for the verifier.
//! - Lookup ([`Policy::requirements_for`], [`PolicyTarget`]): transport scopes from the exact identity up through
//!   namespaces (and `*.` host wildcards for docker) to the transport's `""` and the policy `default`; the most
//!   specific scope wins, nothing is merged.
//! - [`SignedIdentity::matches`]: every `signedIdentity` form against a signature's claimed docker reference,
//!   with containers/image's normalisation ([`strata_oci::ImageReference::parse_normalized_named`]).
//! - [`RegistriesD`]: registries.d lookaside configuration, looked up per key, and [`lookaside_url`], which
//!   validates the digest before building a path (CVE-2024-3727).
//!
//! **Invariants:** no network, no cryptography, no printing. This crate depends on `strata-oci` only among
//! strata's crates: it decides *which* requirements apply and *whether an identity matches*; verifying
//! signatures belongs to the signature crate and evaluation to its caller.
//!
//! Known differences from containers/image: digests in identities are limited to sha256 and sha512 (strata's
//! [`strata_oci::Digest`]; Go also parses sha384), and a registries.d file holding several YAML documents is an
//! error here (Go reads the first).

mod error;
mod identity;
mod json;
mod lookup;
mod policy;
mod registries_d;

pub use error::{IdentityMismatch, KeyLoadError, LookupError, PolicyError, RegistriesError};
pub use identity::{SignedIdentity, is_valid_remap_prefix, remap_reference};
pub use lookup::{PolicyMatch, PolicyTarget, docker_scopes, resolve_path};
pub use policy::{
    Fulcio, KeySource, KeyType, MAX_KEY_FILE_SIZE, MAX_POLICY_FILE_SIZE, PathOrData, Pki, Policy,
    Requirement, SYSTEM_POLICY_PATH, SignedBy, SigstoreSigned, SigstoreTrust, USER_POLICY_FILE,
};
pub use registries_d::{
    MAX_LOOKASIDE_SIGNATURES, ROOTFUL_LOOKASIDE_DIR, ROOTLESS_LOOKASIDE_DIR, RegistriesD,
    RegistryNamespace, SYSTEM_REGISTRIES_D, SignatureLocation, USER_REGISTRIES_D,
    builtin_lookaside_dir, lookaside_url,
};
