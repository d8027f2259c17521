//! `signedIdentity`: which docker reference a signature may claim for the image being checked.

use strata_oci::ImageReference;

use crate::error::{Fault, IdentityMismatch};
use crate::json::Json;
use crate::policy::{exact_fields, string, type_of};

/// A `signedIdentity` (or `baseLayerIdentity`) rule. "Intended" is the image's own docker reference (what the
/// user asked for); "signed" is the signature's `critical.identity.docker-reference`. Both are normalised as
/// containers/image's `reference.ParseNormalizedNamed` does (`busybox` → `docker.io/library/busybox`,
/// `index.docker.io` → `docker.io`), and a name-only reference is not the same as one tagged `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIdentity {
    /// `matchExact`: both tagged or digested, and equal (tag and digest both count).
    MatchExact,
    /// `matchRepoDigestOrExact` (the default): a tagged intended reference needs an equal signed one; one
    /// pinned only by digest needs the same repository; a name-only signed identity never matches.
    MatchRepoDigestOrExact,
    /// `matchRepository`: the same repository; tags and digests ignored, name-only identities allowed.
    MatchRepository,
    /// `exactReference`: the signed identity equals this reference (tag or digest required on both sides); the
    /// image's own reference is not consulted, so it works for `dir:` and `oci:` images.
    ExactReference {
        /// `dockerReference`, as written.
        docker_reference: String,
    },
    /// `exactRepository`: the signed identity's repository is this one's.
    ExactRepository {
        /// `dockerRepository`, as written (a tag or digest in it is ignored).
        docker_repository: String,
    },
    /// `remapIdentity`: if the intended repository is `prefix` or below it, `prefix` is replaced by
    /// `signed_prefix` first; then as [`SignedIdentity::MatchRepoDigestOrExact`].
    RemapIdentity {
        /// `prefix`: a host\[:port\] or a host-qualified repository prefix.
        prefix: String,
        /// `signedPrefix`: what `prefix` is replaced with.
        signed_prefix: String,
    },
}

fn mismatch(rule: &'static str, expected: String, signed: &str) -> IdentityMismatch {
    IdentityMismatch {
        rule,
        expected,
        signed: signed.to_owned(),
    }
}

/// containers/image's `reference.ParseNamed`: the text must already be in normalised form.
fn parse_canonical(text: &str) -> Result<ImageReference, String> {
    let r = ImageReference::parse_normalized_named(text).map_err(|e| e.to_string())?;
    if r.to_string() != text {
        return Err(format!(
            "{text:?} is not a canonical reference (it means {r})"
        ));
    }
    Ok(r)
}

/// `matchRepoDigestOrExact` on parsed values; `Err` carries what was expected.
fn repo_digest_or_exact(intended: &ImageReference, signed: &ImageReference) -> Result<(), String> {
    if signed.is_name_only() {
        return Err(format!(
            "a tag or digest in the signed identity (for {intended})"
        ));
    }
    if intended.tag().is_some() {
        if signed.to_string() == intended.to_string() {
            return Ok(());
        }
        return Err(format!("exactly {:?}", intended.to_string()));
    }
    if intended.digest().is_some() {
        if signed.name() == intended.name() {
            return Ok(());
        }
        return Err(format!(
            "repository {:?} (the image is pinned by digest)",
            intended.name()
        ));
    }
    Err(format!(
        "a tag or digest in the image's reference {intended} (it has neither)"
    ))
}

impl SignedIdentity {
    /// The rule's `type` as written in the policy.
    pub fn type_name(&self) -> &'static str {
        match self {
            SignedIdentity::MatchExact => "matchExact",
            SignedIdentity::MatchRepoDigestOrExact => "matchRepoDigestOrExact",
            SignedIdentity::MatchRepository => "matchRepository",
            SignedIdentity::ExactReference { .. } => "exactReference",
            SignedIdentity::ExactRepository { .. } => "exactRepository",
            SignedIdentity::RemapIdentity { .. } => "remapIdentity",
        }
    }

    /// Checks a signature's claimed identity `signed` against this rule for an image whose docker reference is
    /// `intended` (`None` for images with no docker identity, such as `dir:` and `oci:`: only
    /// `exactReference` and `exactRepository` can match those). Pass `intended` parsed with
    /// [`ImageReference::parse_normalized_named`] when it may be name-only.
    pub fn matches(
        &self,
        intended: Option<&ImageReference>,
        signed: &str,
    ) -> Result<(), IdentityMismatch> {
        let rule = self.type_name();
        let needs_intended = || {
            intended.ok_or_else(|| {
                mismatch(
                    rule,
                    "an image with a docker reference (this image has none)".into(),
                    signed,
                )
            })
        };
        let parse_signed = || {
            ImageReference::parse_normalized_named(signed)
                .map_err(|e| mismatch(rule, format!("a valid docker reference ({e})"), signed))
        };
        match self {
            SignedIdentity::MatchExact => {
                let intended = needs_intended()?;
                let sig = parse_signed()?;
                if intended.is_name_only() || sig.is_name_only() {
                    return Err(mismatch(
                        rule,
                        format!("a tag or digest on both {intended} and the signed identity"),
                        signed,
                    ));
                }
                if sig.to_string() != intended.to_string() {
                    return Err(mismatch(
                        rule,
                        format!("exactly {:?}", intended.to_string()),
                        signed,
                    ));
                }
                Ok(())
            }
            SignedIdentity::MatchRepoDigestOrExact => {
                let intended = needs_intended()?;
                let sig = parse_signed()?;
                repo_digest_or_exact(intended, &sig).map_err(|e| mismatch(rule, e, signed))
            }
            SignedIdentity::MatchRepository => {
                let intended = needs_intended()?;
                let sig = parse_signed()?;
                if sig.name() != intended.name() {
                    return Err(mismatch(
                        rule,
                        format!("repository {:?}", intended.name()),
                        signed,
                    ));
                }
                Ok(())
            }
            SignedIdentity::ExactReference { docker_reference } => {
                let wanted =
                    ImageReference::parse_normalized_named(docker_reference).map_err(|e| {
                        mismatch(
                            rule,
                            format!("a valid dockerReference in the policy ({e})"),
                            signed,
                        )
                    })?;
                let sig = parse_signed()?;
                if wanted.is_name_only()
                    || sig.is_name_only()
                    || sig.to_string() != wanted.to_string()
                {
                    return Err(mismatch(
                        rule,
                        format!("exactly {:?}", wanted.to_string()),
                        signed,
                    ));
                }
                Ok(())
            }
            SignedIdentity::ExactRepository { docker_repository } => {
                let wanted =
                    ImageReference::parse_normalized_named(docker_repository).map_err(|e| {
                        mismatch(
                            rule,
                            format!("a valid dockerRepository in the policy ({e})"),
                            signed,
                        )
                    })?;
                let sig = parse_signed()?;
                if sig.name() != wanted.name() {
                    return Err(mismatch(
                        rule,
                        format!("repository {:?}", wanted.name()),
                        signed,
                    ));
                }
                Ok(())
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                let intended = needs_intended()?;
                let sig = parse_signed()?;
                let remapped = remap(prefix, signed_prefix, intended)
                    .map_err(|e| mismatch(rule, e, signed))?;
                let intended = remapped.as_ref().unwrap_or(intended);
                repo_digest_or_exact(intended, &sig).map_err(|e| mismatch(rule, e, signed))
            }
        }
    }

    /// Parses a `signedIdentity` object.
    pub(crate) fn from_json(v: &Json, path: &str) -> Result<SignedIdentity, Fault> {
        let ty = type_of(v, path)?;
        let field = |name: &str| -> Result<String, Fault> {
            let fields = exact_fields(v, path, &[name])?;
            match fields.first() {
                Some((_, value, p)) => string(value, p),
                None => Err(Fault::new(
                    path,
                    format!("key {name:?} missing in a JSON object"),
                )),
            }
        };
        match ty.as_str() {
            "matchExact" => exact_fields(v, path, &[]).map(|_| SignedIdentity::MatchExact),
            "matchRepoDigestOrExact" => {
                exact_fields(v, path, &[]).map(|_| SignedIdentity::MatchRepoDigestOrExact)
            }
            "matchRepository" => {
                exact_fields(v, path, &[]).map(|_| SignedIdentity::MatchRepository)
            }
            "exactReference" => {
                let docker_reference = field("dockerReference")?;
                let r = ImageReference::parse_normalized_named(&docker_reference).map_err(|e| {
                    Fault::new(
                        path,
                        format!("Invalid format of dockerReference {docker_reference:?}: {e}"),
                    )
                })?;
                if r.is_name_only() {
                    return Err(Fault::new(
                        path,
                        format!(
                            "dockerReference {docker_reference:?} contains neither a tag nor digest"
                        ),
                    ));
                }
                Ok(SignedIdentity::ExactReference { docker_reference })
            }
            "exactRepository" => {
                let docker_repository = field("dockerRepository")?;
                ImageReference::parse_normalized_named(&docker_repository).map_err(|e| {
                    Fault::new(
                        path,
                        format!("Invalid format of dockerRepository {docker_repository:?}: {e}"),
                    )
                })?;
                Ok(SignedIdentity::ExactRepository { docker_repository })
            }
            "remapIdentity" => {
                let fields = exact_fields(v, path, &["prefix", "signedPrefix"])?;
                let mut prefix = String::new();
                let mut signed_prefix = String::new();
                for (key, value, p) in &fields {
                    let s = string(value, p)?;
                    if !is_valid_remap_prefix(&s) {
                        return Err(Fault::new(p, format!("prefix {s:?} is not valid")));
                    }
                    if key == "prefix" {
                        prefix = s;
                    } else {
                        signed_prefix = s;
                    }
                }
                Ok(SignedIdentity::RemapIdentity {
                    prefix,
                    signed_prefix,
                })
            }
            other => Err(Fault::new(
                path,
                format!("Unknown policy reference match type {other:?}"),
            )),
        }
    }
}

/// containers/image's `validateIdentityRemappingPrefix`: a host\[:port\], or a repository name whose first
/// component is a host (`shortname` and `ns/shortname` pass too, as there; they never match anything).
pub fn is_valid_remap_prefix(s: &str) -> bool {
    if ImageReference::is_valid_domain(s) {
        return true;
    }
    match s.split_once('/') {
        Some((first, rest)) => {
            ImageReference::is_valid_domain(first)
                && rest.split('/').all(ImageReference::is_valid_path_component)
        }
        None => false,
    }
}

/// `remapIdentity`'s rewrite: `Ok(None)` when `intended` is not under `prefix`; an error when the rewritten
/// text is not a canonical reference.
fn remap(
    prefix: &str,
    signed_prefix: &str,
    intended: &ImageReference,
) -> Result<Option<ImageReference>, String> {
    let name = intended.name();
    let under = match name.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with('/'),
        None => false,
    };
    if !under {
        return Ok(None);
    }
    let text = intended.to_string();
    let rewritten = text.replacen(prefix, signed_prefix, 1);
    parse_canonical(&rewritten)
        .map(Some)
        .map_err(|e| format!("a remapped identity, but rewriting {text:?} gave {rewritten:?}: {e}"))
}

/// The result of `remapIdentity`'s rewrite of `intended`, for tests and diagnostics: `Ok(None)` when the
/// prefix does not apply.
pub fn remap_reference(
    prefix: &str,
    signed_prefix: &str,
    intended: &ImageReference,
) -> Result<Option<ImageReference>, String> {
    remap(prefix, signed_prefix, intended)
}
