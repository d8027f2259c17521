//! The policy's decision for one image, as containers/image's `PolicyContext.IsRunningImageAllowed`
//! makes it: the requirements of the most specific scope, every one of which must allow the image; for a
//! signature requirement, any one signature that passes (cryptography, then the strictly parsed payload,
//! then the manifest digest, then the identity) is enough.

use std::time::SystemTime;

use serde::Serialize;
use strata_oci::{Digest, ImageReference};
use strata_policy::{
    KeyType, Policy, PolicyTarget, Requirement, SignedBy, SignedIdentity, SigstoreSigned,
    SigstoreTrust,
};
use strata_signature::{Keyring, PublicKey, Signature, VerifiedSignature};

use crate::error::{Error, Result};
use crate::gather::{Found, RawSignature};

/// The image being judged: how the policy looks it up, the identity signatures must name, and the exact
/// manifest bytes signatures must sign (for a multi-platform image, the chosen instance's).
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The policy scope lookup key.
    pub target: PolicyTarget,
    /// The docker reference the image was named by (`None` for `dir:`, `oci:`: only `exactReference` and
    /// `exactRepository` identities can match those).
    pub identity: Option<ImageReference>,
    /// The manifest bytes, as fetched.
    pub manifest: &'a [u8],
}

/// What happened to one signature under one requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureVerdict {
    /// Where the signature was found.
    pub origin: String,
    /// `simple-signing` or `sigstore`.
    pub format: &'static str,
    /// Which key verified it, once its cryptography held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The identity its payload claims, once verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The manifest digest its payload claims, once verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Whether it satisfies the requirement.
    pub accepted: bool,
    /// Why not, or what it proved.
    pub reason: String,
}

/// One requirement's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequirementVerdict {
    /// The requirement's `type`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether it allows the image.
    pub accepted: bool,
    /// Why (containers/image's wording where it has one).
    pub reason: String,
    /// The signatures it looked at (signature requirements only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureVerdict>,
}

/// A signature found for the image, whether or not a requirement looked at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundSignature {
    /// Where it was found.
    pub origin: String,
    /// `simple-signing`, `sigstore`, or `unreadable` (a blob that is neither).
    pub format: &'static str,
}

/// The policy's decision for an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The transport section the requirements came from (`None`: the policy's `default`).
    pub transport: Option<String>,
    /// The scope that matched (`"default"` for the policy's default).
    pub scope: String,
    /// The manifest digest signatures had to sign.
    pub manifest_digest: String,
    /// Each requirement's answer, in the policy's order.
    pub requirements: Vec<RequirementVerdict>,
    /// Every signature found (none when no requirement needed them, and so none were looked for).
    pub signatures: Vec<FoundSignature>,
    /// Whether every requirement allows the image.
    pub accepted: bool,
}

impl Verdict {
    /// Why the image is refused: the first refusing requirement's reason; `None` if it is accepted.
    pub fn refusal(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| !r.accepted)
            .map(|r| r.reason.as_str())
    }
}

/// Judges `subject` by `policy` at `now`. `signatures` is asked for the image's signatures only if a
/// requirement needs them, and at most once (so an image the policy rejects or accepts outright costs no
/// lookaside or registry request).
///
/// Unlike containers/image, which stops at the first requirement that refuses, every requirement is
/// evaluated, so that `strata verify` can report them all; the decision is the same.
///
/// # Errors
/// When the policy cannot be looked up for the target (a docker reference with both tag and digest), or
/// finding signatures fails (an unreachable lookaside server, a registry error other than "no such
/// attachment", more signatures than allowed): containers/image fails the copy then too.
pub fn evaluate(
    policy: &Policy,
    subject: &Subject<'_>,
    signatures: impl FnOnce() -> Result<Vec<Found>>,
    now: SystemTime,
) -> Result<Verdict> {
    let matched = policy
        .requirements_for(&subject.target)
        .map_err(|e| Error::Invalid {
            at: "policy lookup".into(),
            reason: e.to_string(),
        })?;
    let manifest_digest = Digest::sha256(subject.manifest);
    let mut signatures = Some(signatures);
    let mut found: Vec<Found> = Vec::new();
    let mut requirements = Vec::with_capacity(matched.requirements.len());
    for requirement in matched.requirements {
        if requirement.signed_identity().is_some()
            && let Some(fetch) = signatures.take()
        {
            found = fetch()?;
        }
        requirements.push(judge(requirement, subject, &manifest_digest, &found, now));
    }
    Ok(Verdict {
        transport: matched.transport.map(str::to_owned),
        scope: matched.scope.to_owned(),
        manifest_digest: manifest_digest.to_string(),
        accepted: requirements.iter().all(|r| r.accepted),
        requirements,
        signatures: found
            .iter()
            .map(|f| FoundSignature {
                origin: f.origin.to_string(),
                format: format_of(f),
            })
            .collect(),
    })
}

/// The format of a signature found, as `strata verify` names it.
fn format_of(found: &Found) -> &'static str {
    if simple_signing(found).is_some() {
        "simple-signing"
    } else {
        match sigstore_parts(found) {
            Some(Ok(_)) => "sigstore",
            _ => "unreadable",
        }
    }
}

fn verdict(kind: &'static str, accepted: bool, reason: impl Into<String>) -> RequirementVerdict {
    RequirementVerdict {
        kind,
        accepted,
        reason: reason.into(),
        signatures: Vec::new(),
    }
}

fn judge(
    requirement: &Requirement,
    subject: &Subject<'_>,
    manifest_digest: &Digest,
    found: &[Found],
    now: SystemTime,
) -> RequirementVerdict {
    let kind = requirement.type_name();
    match requirement {
        Requirement::InsecureAcceptAnything => verdict(kind, true, "any image is accepted"),
        Requirement::Reject => verdict(kind, false, "the image is rejected by policy"),
        Requirement::SignedBaseLayer { .. } => verdict(
            kind,
            false,
            "signedBaseLayer is not implemented (as in containers/image)",
        ),
        Requirement::SignedBy(signed_by) => {
            signed_by_verdict(signed_by, subject, manifest_digest, found, now)
        }
        Requirement::SigstoreSigned(sigstore) => {
            sigstore_verdict(sigstore, subject, manifest_digest, found)
        }
    }
}

/// The checks after a signature's cryptography held: the digest it signs, then the identity it names.
fn check_claims(
    verified: &VerifiedSignature,
    identity: &SignedIdentity,
    subject: &Subject<'_>,
    manifest_digest: &Digest,
) -> std::result::Result<(), String> {
    if &verified.payload.manifest_digest != manifest_digest {
        return Err(format!(
            "signature for digest {}, not {manifest_digest}",
            verified.payload.manifest_digest
        ));
    }
    identity
        .matches(
            subject.identity.as_ref(),
            &verified.payload.docker_reference,
        )
        .map_err(|e| e.to_string())
}

/// One signature's verdict: `checked` is its cryptography's outcome (the verified payload, or why not); the
/// claims of a verified one are then checked.
fn signature_verdict(
    found: &Found,
    format: &'static str,
    checked: std::result::Result<VerifiedSignature, String>,
    identity: &SignedIdentity,
    subject: &Subject<'_>,
    manifest_digest: &Digest,
) -> SignatureVerdict {
    let mut v = SignatureVerdict {
        origin: found.origin.to_string(),
        format,
        key: None,
        identity: None,
        digest: None,
        accepted: false,
        reason: String::new(),
    };
    match checked {
        Ok(verified) => {
            v.key = Some(verified.key.clone());
            v.identity = Some(verified.payload.docker_reference.clone());
            v.digest = Some(verified.payload.manifest_digest.to_string());
            match check_claims(&verified, identity, subject, manifest_digest) {
                Ok(()) => {
                    v.accepted = true;
                    v.reason = "accepted".into();
                }
                Err(reason) => v.reason = reason,
            }
        }
        Err(reason) => v.reason = reason,
    }
    v
}

/// Folds per-signature verdicts into the requirement's, as containers/image words it.
fn fold(kind: &'static str, signatures: Vec<SignatureVerdict>) -> RequirementVerdict {
    let reason = if let Some(ok) = signatures.iter().find(|s| s.accepted) {
        format!(
            "signed by {} ({})",
            ok.key.as_deref().unwrap_or("?"),
            ok.origin
        )
    } else {
        match signatures.as_slice() {
            [] => "a signature was required, but no signature exists".to_owned(),
            [one] => one.reason.clone(),
            many => format!(
                "none of the signatures were accepted: {}",
                many.iter()
                    .map(|s| format!("{} ({})", s.reason, s.origin))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    };
    RequirementVerdict {
        kind,
        accepted: signatures.iter().any(|s| s.accepted),
        reason,
        signatures,
    }
}

fn signed_by_verdict(
    signed_by: &SignedBy,
    subject: &Subject<'_>,
    manifest_digest: &Digest,
    found: &[Found],
    now: SystemTime,
) -> RequirementVerdict {
    let kind = "signedBy";
    if signed_by.key_type != KeyType::GpgKeys {
        return verdict(
            kind,
            false,
            format!("unimplemented keyType {:?}", signed_by.key_type.as_str()),
        );
    }
    let mut keyring = Keyring::new();
    match signed_by.keys.load() {
        Ok(blobs) => {
            for blob in blobs {
                match Keyring::from_bytes(&blob) {
                    Ok(k) => keyring.extend(k),
                    Err(e) => {
                        return verdict(kind, false, format!("reading the policy's keys: {e}"));
                    }
                }
            }
        }
        Err(e) => return verdict(kind, false, e.to_string()),
    }
    if keyring.is_empty() {
        return verdict(kind, false, "the policy's keyring holds no keys");
    }
    let mut signatures = Vec::new();
    for f in found {
        let Some(blob) = simple_signing(f) else {
            continue;
        };
        let checked = strata_signature::verify_simple_signing(&keyring, &blob, now)
            .map_err(|e| e.to_string());
        let v = signature_verdict(
            f,
            "simple-signing",
            checked,
            &signed_by.signed_identity,
            subject,
            manifest_digest,
        );
        signatures.push(v);
    }
    fold(kind, signatures)
}

/// A simple-signing signature's OpenPGP bytes, if `found` is one (others are not `signedBy`'s business).
fn simple_signing(found: &Found) -> Option<Vec<u8>> {
    match &found.signature {
        RawSignature::Blob(bytes) => match Signature::from_blob(bytes) {
            Ok(Signature::SimpleSigning(b)) => Some(b),
            _ => None,
        },
        RawSignature::Attachment { .. } => None,
    }
}

/// A sigstore signature's parts, if `found` is one (a cosign attachment, or a stored sigstore blob);
/// an unreadable stored blob gives its error.
fn sigstore_parts(found: &Found) -> Option<std::result::Result<Signature, String>> {
    match &found.signature {
        RawSignature::Attachment {
            media_type,
            payload,
            annotations,
        } => Some(Ok(Signature::Sigstore {
            mime_type: media_type.clone(),
            payload: payload.clone(),
            annotations: annotations.clone(),
        })),
        RawSignature::Blob(bytes) => match Signature::from_blob(bytes) {
            Ok(s @ Signature::Sigstore { .. }) => Some(Ok(s)),
            Ok(Signature::SimpleSigning(_)) => None,
            Err(e) => Some(Err(e.to_string())),
        },
    }
}

fn sigstore_verdict(
    sigstore: &SigstoreSigned,
    subject: &Subject<'_>,
    manifest_digest: &Digest,
    found: &[Found],
) -> RequirementVerdict {
    let kind = "sigstoreSigned";
    let keys = match &sigstore.trust {
        SigstoreTrust::Keys(source) => source,
        SigstoreTrust::Fulcio(_) => {
            return verdict(
                kind,
                false,
                "fulcio certificates are not supported by strata yet",
            );
        }
        SigstoreTrust::Pki(_) => {
            return verdict(
                kind,
                false,
                "pki certificates are not supported by strata yet",
            );
        }
    };
    if sigstore.rekor_public_keys.is_some() {
        return verdict(
            kind,
            false,
            "Rekor verification (rekorPublicKey*) is not supported by strata yet",
        );
    }
    let keys = match keys.load() {
        Ok(pems) => match pems
            .iter()
            .map(|pem| PublicKey::from_pem(pem))
            .collect::<std::result::Result<Vec<_>, _>>()
        {
            Ok(keys) => keys,
            Err(e) => return verdict(kind, false, format!("reading the policy's keys: {e}")),
        },
        Err(e) => return verdict(kind, false, e.to_string()),
    };
    let mut signatures = Vec::new();
    for f in found {
        let Some(parts) = sigstore_parts(f) else {
            continue;
        };
        let checked = parts.and_then(|s| match s {
            Signature::Sigstore {
                mime_type,
                payload,
                annotations,
            } => strata_signature::verify_sigstore(&keys, &mime_type, &payload, &annotations)
                .map_err(|e| e.to_string()),
            Signature::SimpleSigning(_) => Err("not a sigstore signature".to_owned()),
        });
        let v = signature_verdict(
            f,
            "sigstore",
            checked,
            &sigstore.signed_identity,
            subject,
            manifest_digest,
        );
        signatures.push(v);
    }
    fold(kind, signatures)
}
