//! Pull sources: the endpoints a `docker://` read tries, in containers/image's order (registries.conf's
//! mirrors that serve the reference, then the registry's location), and the choice among them: the first
//! that answers is used for every read after, and when none does, every endpoint's error is reported.

use std::sync::Arc;

use strata_oci::ImageReference;

use super::client::Client;
use super::conf::RegistriesConf;
use super::{RegistryError, SourceOptions};

/// One endpoint to try: the reference as it knows it, and its client (or why none could be made, e.g.
/// registries.conf blocks it).
pub(crate) struct Candidate {
    /// The reference rewritten for this endpoint.
    pub reference: ImageReference,
    /// The client, or the error making it.
    pub client: Result<Arc<Client>, RegistryError>,
}

/// The endpoints `reference` is read from, in order, each with its client (made now; nothing is sent).
/// Without mirrors that is one endpoint, and an error making its client is returned as is.
pub(crate) fn candidates(
    reference: &ImageReference,
    options: &SourceOptions,
) -> Result<Vec<Candidate>, RegistryError> {
    let conf = RegistriesConf::load(options.registries_conf.as_deref())?;
    let sources = conf.pull_sources(reference)?;
    let single = sources.len() == 1;
    let mut out = Vec::with_capacity(sources.len());
    for source in sources {
        let physical = &source.reference;
        let client = Client::with_conf(
            &conf,
            physical.registry(),
            physical.repository(),
            source.insecure,
            physical.registry() == reference.registry(),
            options,
        );
        // With one place to pull from, its client's error is the answer at once.
        let client = if single {
            Ok(Arc::new(client?))
        } else {
            client.map(Arc::new)
        };
        out.push(Candidate {
            client,
            reference: source.reference,
        });
    }
    Ok(out)
}

/// Tries `attempt` on each candidate in order and returns the first success with its client. When all
/// fail: with one candidate its error as is; otherwise the last (the primary location's) error, with
/// every mirror's named.
pub(crate) fn first_success<T>(
    candidates: &[Candidate],
    mut attempt: impl FnMut(&Arc<Client>) -> Result<T, RegistryError>,
) -> Result<(Arc<Client>, T), RegistryError> {
    let mut failures = Vec::new();
    for candidate in candidates {
        let result = match &candidate.client {
            Ok(client) => attempt(client).map(|v| (Arc::clone(client), v)),
            Err(e) => Err(clone_error(e, candidate.reference.registry())),
        };
        match result {
            Ok(found) => return Ok(found),
            Err(e) => failures.push((candidate.reference.to_string(), e)),
        }
    }
    let Some((primary, error)) = failures.pop() else {
        return Err(RegistryError::InvalidResponse {
            url: String::new(),
            reason: "no endpoint to read from".into(),
        });
    };
    if failures.is_empty() {
        return Err(error);
    }
    Err(RegistryError::AllSourcesFailed {
        primary,
        mirrors: failures
            .into_iter()
            .map(|(reference, e)| format!("[{reference}: {e}]"))
            .collect(),
        source: Box::new(error),
    })
}

/// A copy of an error made when the client for `registry` was set up (blocked, an unreadable auth file or
/// certificate): its kind kept for those, its text for the others.
fn clone_error(e: &RegistryError, registry: &str) -> RegistryError {
    match e {
        RegistryError::Blocked { registry, path } => RegistryError::Blocked {
            registry: registry.clone(),
            path: path.clone(),
        },
        RegistryError::Config { path, reason } => RegistryError::Config {
            path: path.clone(),
            reason: reason.clone(),
        },
        RegistryError::CredentialHelper {
            helper,
            registry,
            reason,
        } => RegistryError::CredentialHelper {
            helper: helper.clone(),
            registry: registry.clone(),
            reason: reason.clone(),
        },
        other => RegistryError::InvalidResponse {
            url: registry.to_owned(),
            reason: other.to_string(),
        },
    }
}
