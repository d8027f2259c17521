//! Container image signatures as podman, skopeo and CRI-O (containers/image) make and check them.
//!
//! This crate owns
//! - [`Payload`]: the signed JSON ("simple signing" / atomic and cosign kinds), parsed as strictly as
//!   containers/image and written byte-for-byte as skopeo 1.9.3 writes it;
//! - [`Signature`]: one stored signature and its blob form (`dir:` `signature-N` files, containers-storage
//!   big-data): raw OpenPGP for simple signing, `\0sigstore-json\n{…}` for cosign;
//! - [`openpgp`]: [`Keyring`] and OpenPGP verification with gpgme's verdicts (expiry, revocation, key
//!   usage, subkeys mapped to their primary key), on rPGP;
//! - [`sigstore`]: cosign public keys (ECDSA P-256/P-384, RSA, Ed25519) and encrypted cosign private keys;
//! - [`verify_simple_signing`] and [`verify_sigstore`]: crypto first, then the payload;
//! - [`gpg`]: signing through the user's `gpg`.
//!
//! **Must not depend on:** any strata crate but `strata-oci` (for [`strata_oci::Digest`]); no network, no
//! registry client, no policy. Which keys are trusted, and whether a payload's digest and identity fit an
//! image, is the policy evaluator's decision: this crate answers "who signed what".
//! The library does no I/O except running `gpg` in [`sign_with_gpg`]; every input is bounded (4 MiB
//! signatures and payloads) and nothing panics on outside data.

mod blob;
mod error;
pub mod gpg;
pub mod openpgp;
mod payload;
pub mod sigstore;
mod verify;

pub use blob::{MAX_SIGNATURE_SIZE, Signature};
pub use error::{Error, Result};
pub use gpg::{GpgOptions, sign_with_gpg};
pub use openpgp::{Keyring, VerifiedOpenPgp};
pub use payload::{MAX_PAYLOAD_SIZE, Payload, PayloadKind};
pub use sigstore::{PrivateKey, PublicKey};
pub use verify::{
    SIGSTORE_SIGNATURE_ANNOTATION, SIGSTORE_SIGNATURE_MIME_TYPE, VerifiedSignature,
    verify_sigstore, verify_simple_signing,
};
