//! The CLI's side of the chain of custody, shared by `pull`, `copy` and `sign`: judging an image by the
//! policy before anything is written (keeping the signatures found, which travel with it), and the signing
//! key the flags name.

use std::path::Path;
use std::time::SystemTime;

use anyhow::bail;
use strata_image::{ImageSource, RawManifest};
use strata_oci::Digest;
use strata_policy::{Policy, RegistriesD};
use strata_source::SourceOptions;
use strata_trust::gather::Found;
use strata_trust::sign::SigningKey;
use strata_trust::{StoreIdentity, Subject, evaluate, policy_target, signatures_of};

use crate::args::PolicyArgs;
use crate::args::image::has_transport;

/// The policy, registries.d and source options an image is judged with.
pub struct Judge<'a> {
    policy: Policy,
    /// registries.d: where signatures are looked for (and written).
    pub registries_d: RegistriesD,
    options: &'a SourceOptions,
    store: Option<StoreIdentity>,
}

impl<'a> Judge<'a> {
    /// The judge `args` describe, for images named `name` read with `options`.
    pub fn new(args: &PolicyArgs, name: &str, options: &'a SourceOptions) -> anyhow::Result<Self> {
        Ok(Judge {
            policy: args.policy()?,
            registries_d: args.registries_d()?,
            options,
            store: store_identity(name, options),
        })
    }

    /// Judges `manifest` of `source` (the image its name designates, `instance` `None`; or that instance of
    /// its index) as containers/image does before copying it: the policy must accept it. Its signatures,
    /// every one found, come back to travel with it.
    pub fn admit(
        &self,
        source: &dyn ImageSource,
        instance: Option<&Digest>,
        manifest: &RawManifest,
    ) -> anyhow::Result<Vec<Found>> {
        let found = self.signatures(source, instance, &manifest.digest)?;
        let subject = Subject {
            target: policy_target(source, self.store.as_ref())?,
            identity: source.docker_reference().cloned(),
            manifest: &manifest.bytes,
        };
        let verdict = evaluate(
            &self.policy,
            &subject,
            || Ok(found.clone()),
            SystemTime::now(),
        )?;
        if let Some(reason) = verdict.refusal() {
            bail!(
                "source image {} rejected by policy: {reason}",
                source.name()
            );
        }
        Ok(found)
    }

    /// The signatures of `digest` of `source`, not judged (an index's own, which the policy never asks
    /// about but which travel with it).
    pub fn signatures(
        &self,
        source: &dyn ImageSource,
        instance: Option<&Digest>,
        digest: &Digest,
    ) -> anyhow::Result<Vec<Found>> {
        Ok(signatures_of(
            source,
            instance,
            digest,
            &self.registries_d,
            self.options,
        )?)
    }
}

/// The signing key `--sign-by` or `--sign-by-sigstore-private-key` (with `--sign-passphrase-file`) name,
/// if any, loaded before anything is read or written (a wrong passphrase fails first).
pub fn signing_key(
    sign_by: Option<&str>,
    sigstore_key: Option<&Path>,
    passphrase_file: Option<&Path>,
) -> anyhow::Result<Option<SigningKey>> {
    Ok(match (sign_by, sigstore_key) {
        (None, None) => None,
        (Some(fingerprint), None) => Some(SigningKey::gpg(fingerprint, passphrase_file)?),
        (None, Some(file)) => {
            let Some(passphrase) = passphrase_file else {
                bail!(
                    "--sign-by-sigstore-private-key needs --sign-passphrase-file (strata does not prompt)"
                );
            };
            Some(SigningKey::sigstore(file, passphrase)?)
        }
        (Some(_), Some(_)) => {
            bail!("give one of --sign-by and --sign-by-sigstore-private-key, not both")
        }
    })
}

/// The store identity the policy scopes a `containers-storage:` image (or a bare name in strata's store) by.
pub fn store_identity(name: &str, options: &SourceOptions) -> Option<StoreIdentity> {
    let in_store = !has_transport(name) || name.starts_with(strata_store::TRANSPORT);
    if !in_store {
        return None;
    }
    let given = strata_store::parse_reference(name)
        .ok()
        .and_then(|(root, _, _)| root);
    Some(StoreIdentity {
        driver: "overlay".to_owned(),
        graph_root: given
            .or_else(|| options.storage_root.clone())
            .unwrap_or_else(strata_store::default_root),
        image_id: None,
    })
}
