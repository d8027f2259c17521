use thiserror::Error;

/// Errors from parsing, verifying or making image signatures.
///
/// The variants are the distinctions a CLI explains to a person, in podman's terms: a signature by no
/// accepted key, an expired signature or key, a revoked key, a payload that is not what
/// containers/image accepts. Comparing the signed digest and identity with the image is the evaluator's
/// job, not this crate's.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A signature, payload, message or key file is larger than strata accepts.
    #[error("{what} is {size} bytes, more than the {limit} bytes accepted")]
    TooLarge {
        /// What was too large ("signature blob", "decompressed OpenPGP message", …).
        what: &'static str,
        /// Its size, or a lower bound of it.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A payload is not the JSON containers/image accepts (strict: unknown, duplicate or missing keys).
    #[error("invalid signature payload: {field}: {reason}")]
    InvalidPayload {
        /// The JSON path of the offending field (`critical.type`, `optional.timestamp`, …), or `payload`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored signature blob (a `dir:` `signature-N` file, a storage big-data item) is malformed.
    #[error("invalid signature blob: {0}")]
    InvalidBlob(String),
    /// An OpenPGP message or keyring could not be parsed, or is not a signed message.
    #[error("invalid OpenPGP data: {0}")]
    OpenPgp(String),
    /// An OpenPGP message carries a number of signatures other than one.
    #[error("unexpected OpenPGP signature count {0} (exactly one is accepted)")]
    SignatureCount(usize),
    /// The key that made a signature is not among the keys given.
    #[error("no signature by an accepted key: signed by unknown key {key_id}")]
    UnknownKey {
        /// The issuer key ID or fingerprint the signature names (upper-case hex).
        key_id: String,
    },
    /// A signature did not verify cryptographically.
    #[error("invalid signature by key {key}: {reason}")]
    BadSignature {
        /// The key that was tried (fingerprint, or a sigstore key's description).
        key: String,
        /// What failed.
        reason: String,
    },
    /// The signature itself has expired.
    #[error("signature by key {key} expired at {expired_at} (unix seconds)")]
    SignatureExpired {
        /// The signing key's fingerprint.
        key: String,
        /// When the signature expired.
        expired_at: i64,
    },
    /// The signing key (or the primary key it belongs to) has expired.
    #[error("key {key} expired at {expired_at} (unix seconds)")]
    KeyExpired {
        /// The fingerprint of the expired key (primary or subkey).
        key: String,
        /// When it expired.
        expired_at: i64,
    },
    /// The signing key (or the primary key it belongs to) has been revoked.
    #[error("key {key} is revoked")]
    KeyRevoked {
        /// The fingerprint of the revoked key (primary or subkey).
        key: String,
    },
    /// The signing key may not make signatures (no signing flag, no valid binding, time conflicts).
    #[error("key {key} may not make this signature: {reason}")]
    KeyNotUsable {
        /// The fingerprint of the key.
        key: String,
        /// Why not.
        reason: String,
    },
    /// A sigstore public or private key could not be read or is of an unsupported kind.
    #[error("invalid sigstore key: {0}")]
    InvalidKey(String),
    /// An encrypted cosign private key could not be decrypted (wrong passphrase or corrupt file).
    #[error("cannot decrypt the cosign private key: {0}")]
    Decrypt(String),
    /// A sigstore signature is not of the kind this call handles, or lacks its signature annotation.
    #[error("unsupported sigstore signature: {0}")]
    UnsupportedSigstore(String),
    /// Running `gpg` failed.
    #[error("gpg signing with key {key} failed: {reason}")]
    Gpg {
        /// The fingerprint (or other key name) that was asked for.
        key: String,
        /// The failure, with gpg's standard error when it ran.
        reason: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
