//! Judging an image a source designates: its policy target, its signatures from every place podman looks
//! for them, and the policy's verdict.

use std::path::PathBuf;
use std::time::SystemTime;

use strata_image::{ImageSource, ResolvedImage};
use strata_oci::{Digest, ImageReference};
use strata_policy::{Policy, PolicyTarget, RegistriesD, lookaside_url, resolve_path};
use strata_source::{Repository, SourceOptions, local_path};

use crate::error::{Error, Result};
use crate::evaluate::{Subject, Verdict, evaluate};
use crate::gather::{Found, attachments, lookaside, stored};

/// A `containers-storage:` image as the policy scopes it.
#[derive(Debug, Clone)]
pub struct StoreIdentity {
    /// The graph driver (`overlay`).
    pub driver: String,
    /// The store's graph root.
    pub graph_root: PathBuf,
    /// The image ID (64 hex digits).
    pub image_id: Option<String>,
}

/// What judging an image needs besides the image.
#[derive(Debug, Clone, Copy)]
pub struct TrustOptions<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// registries.d: where lookaside signatures are, whether cosign attachments are used.
    pub registries_d: &'a RegistriesD,
    /// Registry options (credentials, TLS) for attachments and lookaside servers.
    pub source_options: &'a SourceOptions,
    /// The time signatures and keys are checked at.
    pub now: SystemTime,
}

/// The policy target of the image `source` designates: `docker` by its reference, `dir`/`oci`/`oci-archive`
/// by its path (absolute, symlinks resolved), `docker-archive`, or `containers-storage` (`store` given).
///
/// # Errors
/// When a local path cannot be resolved, or the name's transport is one the policy cannot scope.
pub fn policy_target(
    source: &dyn ImageSource,
    store: Option<&StoreIdentity>,
) -> Result<PolicyTarget> {
    let name = source.name();
    if let Some(store) = store {
        return Ok(PolicyTarget::ContainersStorage {
            driver: store.driver.clone(),
            graph_root: store.graph_root.clone(),
            reference: source.docker_reference().cloned(),
            image_id: store.image_id.clone(),
        });
    }
    if name.starts_with("docker:") {
        let reference = source.docker_reference().ok_or_else(|| Error::Invalid {
            at: name.to_owned(),
            reason: "a registry image without a reference".into(),
        })?;
        return Ok(PolicyTarget::Docker(reference.clone()));
    }
    let (transport, path) = local_path(name).ok_or_else(|| Error::Invalid {
        at: name.to_owned(),
        reason: "no policy scope for this transport".into(),
    })?;
    if transport == "docker-archive" {
        return Ok(PolicyTarget::DockerArchive);
    }
    let path = resolve_path(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match transport {
        "dir" => PolicyTarget::Dir(path),
        "oci" => PolicyTarget::Oci(path),
        _ => PolicyTarget::OciArchive(path),
    })
}

/// Every signature of `image`'s chosen manifest: what `source` keeps itself, and for a registry image
/// its lookaside signatures (registries.d) and, where registries.d turns them on, its cosign attachments.
///
/// # Errors
/// As [`crate::gather`]'s functions.
pub fn signatures(
    source: &dyn ImageSource,
    image: &ResolvedImage,
    registries_d: &RegistriesD,
    options: &SourceOptions,
) -> Result<Vec<Found>> {
    let digest = &image.instance.digest;
    let instance = (image.instance.digest != image.top.digest).then_some(digest);
    signatures_of(source, instance, digest, registries_d, options)
}

/// Every signature of the manifest `digest` of `source`: the image the name designates (`instance`
/// `None`) or one instance of its index (`instance` is then `Some(digest)`), as [`signatures`] finds them.
///
/// # Errors
/// As [`crate::gather`]'s functions.
pub fn signatures_of(
    source: &dyn ImageSource,
    instance: Option<&Digest>,
    digest: &Digest,
    registries_d: &RegistriesD,
    options: &SourceOptions,
) -> Result<Vec<Found>> {
    let mut found = stored(source, instance)?;
    if source.name().starts_with("docker:")
        && let Some(reference) = source.docker_reference()
    {
        found.extend(registry_signatures(
            source.name(),
            reference,
            digest,
            registries_d,
            options,
        )?);
    }
    Ok(found)
}

fn registry_signatures(
    name: &str,
    reference: &ImageReference,
    digest: &Digest,
    registries_d: &RegistriesD,
    options: &SourceOptions,
) -> Result<Vec<Found>> {
    let config = |e: strata_policy::RegistriesError| Error::Invalid {
        at: "registries.d".into(),
        reason: e.to_string(),
    };
    let base = registries_d
        .lookaside_base(reference, false)
        .map_err(config)?;
    let digest_text = digest.to_string();
    let mut found = lookaside(
        |n| lookaside_url(&base, reference, &digest_text, n - 1).map_err(config),
        options,
    )?;
    if registries_d
        .use_sigstore_attachments(reference)
        .map_err(config)?
    {
        let repository = Repository::open(name, options).map_err(|e| Error::Source {
            at: name.to_owned(),
            source: Box::new(e),
        })?;
        found.extend(attachments(&repository, digest)?);
    }
    Ok(found)
}

/// Judges the image `source` designates, resolved as `image`, by the policy in `options`: its target
/// (`store` for a `containers-storage:` image), its identity, its signatures (fetched only if a requirement
/// needs them).
///
/// # Errors
/// As [`policy_target`], [`signatures`] and [`evaluate`].
pub fn verify_image(
    source: &dyn ImageSource,
    image: &ResolvedImage,
    store: Option<&StoreIdentity>,
    options: &TrustOptions<'_>,
) -> Result<Verdict> {
    let subject = Subject {
        target: policy_target(source, store)?,
        identity: source.docker_reference().cloned(),
        manifest: &image.instance.bytes,
    };
    evaluate(
        options.policy,
        &subject,
        || signatures(source, image, options.registries_d, options.source_options),
        options.now,
    )
}
