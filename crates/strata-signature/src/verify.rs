//! The two calls a policy evaluator makes: verify one signature's cryptography, then parse its payload.
//! Comparing the payload's digest with the manifest and its identity with the policy stays with the
//! evaluator.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::openpgp::Keyring;
use crate::payload::{MAX_PAYLOAD_SIZE, Payload, PayloadKind};
use crate::sigstore::PublicKey;

/// The media type of cosign signature layers; the only sigstore signatures verified.
pub const SIGSTORE_SIGNATURE_MIME_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a cosign signature (standard base64).
pub const SIGSTORE_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// A signature whose cryptography verified, with its parsed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The payload, parsed strictly after the signature verified.
    pub payload: Payload,
    /// Which key signed: for simple signing the primary key's fingerprint (upper-case hex); for sigstore
    /// `key N (ALGORITHM)`, N counting from 1 in the slice of keys given.
    pub key: String,
}

/// Verifies a simple-signing signature (the raw OpenPGP message) with `keyring` at `now`, then parses its
/// atomic payload. The payload is not looked at before the signature verified.
pub fn verify_simple_signing(
    keyring: &Keyring,
    blob: &[u8],
    now: SystemTime,
) -> Result<VerifiedSignature> {
    let verified = keyring.verify(blob, now)?;
    let payload = Payload::parse(&verified.content, PayloadKind::Atomic)?;
    Ok(VerifiedSignature {
        payload,
        key: verified.primary_fingerprint,
    })
}

/// Verifies a sigstore signature (the parts of a [`crate::Signature::Sigstore`]) with any of `keys`, then
/// parses its cosign payload. Only `application/vnd.dev.cosign.simplesigning.v1+json` signatures are
/// handled; the signature comes from the `dev.cosignproject.cosign/signature` annotation.
pub fn verify_sigstore(
    keys: &[PublicKey],
    mime_type: &str,
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
) -> Result<VerifiedSignature> {
    if mime_type != SIGSTORE_SIGNATURE_MIME_TYPE {
        return Err(Error::UnsupportedSigstore(format!(
            "media type {mime_type:?} is not {SIGSTORE_SIGNATURE_MIME_TYPE:?}"
        )));
    }
    let Some(signature) = annotations.get(SIGSTORE_SIGNATURE_ANNOTATION) else {
        return Err(Error::UnsupportedSigstore(format!(
            "missing {SIGSTORE_SIGNATURE_ANNOTATION} annotation"
        )));
    };
    if payload.len() > MAX_PAYLOAD_SIZE {
        return Err(Error::TooLarge {
            what: "sigstore payload",
            size: payload.len() as u64,
            limit: MAX_PAYLOAD_SIZE as u64,
        });
    }
    if keys.is_empty() {
        return Err(Error::InvalidKey(
            "no public key to verify the sigstore signature with".into(),
        ));
    }
    let mut failures = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match key.verify(payload, signature) {
            Ok(()) => {
                let payload = Payload::parse(payload, PayloadKind::Cosign)?;
                return Ok(VerifiedSignature {
                    payload,
                    key: format!("key {} ({})", i + 1, key.algorithm()),
                });
            }
            Err(e) => failures.push(format!("key {}: {e}", i + 1)),
        }
    }
    Err(Error::BadSignature {
        key: if keys.len() == 1 {
            format!(
                "key 1 ({})",
                keys.first().map(PublicKey::algorithm).unwrap_or_default()
            )
        } else {
            format!("any of {} keys", keys.len())
        },
        reason: format!("no signature by an accepted key: {}", failures.join("; ")),
    })
}
