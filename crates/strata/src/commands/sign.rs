//! `strata sign`: add a signature to an image already in a registry or a `dir:` directory, where podman and
//! skopeo look for it.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use serde::Serialize;
use strata_image::ImageSource;
use strata_oci::{Digest, ImageReference, Manifest};
use strata_policy::RegistriesD;
use strata_signature::Signature;
use strata_source::Repository;
use strata_trust::sign::{SignatureStore, Written, manifest_digest};

use crate::args::{PlatformArgs, RegistryArgs, StoreArgs, image::source_options};
use crate::output::print_json;

/// Arguments of `strata sign`.
#[derive(clap::Args)]
#[command(after_help = "\
What is signed, as `skopeo copy --sign-by` signs what it copies: a single-platform image's manifest; for a \
multi-platform image, the manifest of the instance for this platform (--override-os/arch/variant), which is \
the one podman checks, or with --all every instance and the index.

Where it goes, as containers/image writes it: for docker://, simple (GPG) signatures into the registries.d \
lookaside for writing (lookaside-staging, else lookaside; only file:// can be written) as the next free \
signature-N, and sigstore signatures as a layer of the cosign attachment tag sha256-<hex>.sig when \
use-sigstore-attachments is on for the repository; for dir:, the next free signature-N (<hex>.signature-N for \
an instance of an index). Existing signatures are kept. oci:, oci-archive: and docker-archive: keep no \
signatures.")]
pub struct Args {
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Sign with this GPG key (fingerprint), through the user's gpg ($GNUPGHOME), as simple signing.
    #[arg(
        long,
        value_name = "FINGERPRINT",
        required_unless_present = "sign_by_sigstore_private_key",
        conflicts_with = "sign_by_sigstore_private_key"
    )]
    sign_by: Option<String>,
    /// Sign with this cosign private key (ENCRYPTED COSIGN PRIVATE KEY), as a sigstore signature.
    #[arg(long, value_name = "FILE")]
    sign_by_sigstore_private_key: Option<PathBuf>,
    /// The key's passphrase is the first line of this file (required for a sigstore key).
    #[arg(long, value_name = "FILE")]
    sign_passphrase_file: Option<PathBuf>,
    /// The identity to sign for, a docker reference with a tag or digest [default: the image's own
    /// reference; required for dir:].
    #[arg(long, value_name = "REFERENCE")]
    sign_identity: Option<String>,
    /// The registries.d directory [default: ~/.config/containers/registries.d if present, else
    /// /etc/containers/registries.d].
    #[arg(long = "registries.d", value_name = "DIR")]
    registries_d: Option<PathBuf>,
    /// For a multi-platform image, sign every instance and the index.
    #[arg(long)]
    all: bool,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
    /// The image: docker://REFERENCE or dir:DIR.
    image: String,
}

/// One signature written, as `--json` prints it.
#[derive(Serialize)]
struct Report {
    /// The signed manifest's digest.
    manifest: String,
    /// Whether it is an instance of the image's index.
    instance: bool,
    /// `simple-signing` or `sigstore`.
    r#type: &'static str,
    /// The signed identity.
    identity: String,
    /// A file written.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    /// The cosign attachment written.
    #[serde(skip_serializing_if = "Option::is_none")]
    attachment: Option<String>,
    /// The attachment's layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<usize>,
}

/// A manifest to sign: its bytes and whether it is an instance of the top index.
struct ToSign {
    bytes: Vec<u8>,
    instance: bool,
}

/// Runs `strata sign`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let name = args.image.as_str();
    let transport = name.split_once(':').map(|(t, _)| t).unwrap_or_default();
    if let Some(message) = strata_trust::sign::unsupported_transport(transport) {
        bail!("{name}: {message}");
    }
    if transport != "docker" && transport != "dir" {
        bail!("{name}: strata sign writes signatures for docker://REFERENCE and dir:DIR images");
    }

    // The key first: a wrong passphrase or an unreadable file fails before anything is read or written.
    let Some(key) = crate::trust::signing_key(
        args.sign_by.as_deref(),
        args.sign_by_sigstore_private_key.as_deref(),
        args.sign_passphrase_file.as_deref(),
    )?
    else {
        bail!("give one of --sign-by and --sign-by-sigstore-private-key");
    };

    let options = source_options(&args.registry, store)?;
    let registries;
    let repository;
    let (signatures, own_identity) = if transport == "docker" {
        registries = RegistriesD::load(args.registries_d.as_deref())?;
        repository = Repository::open(name, &options)?;
        let identity = repository.reference().clone();
        (
            SignatureStore::Registry {
                repository: &repository,
                registries: &registries,
            },
            Some(identity),
        )
    } else {
        let dir = name.strip_prefix("dir:").unwrap_or_default();
        (SignatureStore::Dir(PathBuf::from(dir)), None)
    };
    let identity = match (&args.sign_identity, own_identity) {
        (Some(text), _) => ImageReference::parse_normalized_named(text)
            .with_context(|| format!("--sign-identity {text}"))?,
        (None, Some(identity)) => identity,
        (None, None) => bail!(
            "cannot determine the canonical docker reference for {name}: give --sign-identity"
        ),
    };
    if identity.is_name_only() {
        bail!("Sign identity must be a fully specified reference {identity}");
    }
    signatures.prepare(key.kind())?;

    let source = crate::args::image::open_source(name, &options)?;
    let manifests = to_sign(source.as_ref(), &args)?;

    // Sign everything, then write: a signing failure leaves nothing behind.
    let now = SystemTime::now();
    let mut signed: Vec<(Digest, bool, Signature)> = Vec::with_capacity(manifests.len());
    for m in &manifests {
        let signature = key.sign(&m.bytes, &identity, now)?;
        signed.push((manifest_digest(&m.bytes), m.instance, signature));
    }
    let mut reports = Vec::with_capacity(signed.len());
    for (digest, instance, signature) in &signed {
        let written = signatures.put(digest, *instance, signature)?;
        let r#type = match signature {
            Signature::SimpleSigning(_) => "simple-signing",
            Signature::Sigstore { .. } => "sigstore",
        };
        if !args.json {
            println!("{type} signature of {digest} for {identity}: {written}", type = r#type);
        }
        let (path, attachment, layer) = match written {
            Written::File(path) => (Some(path), None, None),
            Written::Attachment {
                reference, layer, ..
            } => (None, Some(reference), Some(layer)),
        };
        reports.push(Report {
            manifest: digest.to_string(),
            instance: *instance,
            r#type,
            identity: identity.to_string(),
            path,
            attachment,
            layer,
        });
    }
    if args.json {
        print_json(&reports)?;
    }
    Ok(())
}

/// The manifests to sign: a single image's; for an index, the instance for the platform, or with `--all`
/// every instance and then the index.
fn to_sign(source: &dyn ImageSource, args: &Args) -> anyhow::Result<Vec<ToSign>> {
    let top = source.top_manifest()?;
    let parsed = Manifest::parse(&top.bytes, top.media_type.as_deref(), source.name())?;
    let Manifest::Index { index, .. } = parsed else {
        return Ok(vec![ToSign {
            bytes: top.bytes,
            instance: false,
        }]);
    };
    if !args.all {
        let resolved = strata_image::resolve(source, &args.platform.platform())?;
        return Ok(vec![ToSign {
            bytes: resolved.instance.bytes,
            instance: true,
        }]);
    }
    let mut out = Vec::with_capacity(index.manifests().len() + 1);
    for descriptor in index.manifests() {
        let digest = Digest::parse(descriptor.digest().as_ref())
            .with_context(|| format!("{}: an index entry", source.name()))?;
        let media_type = descriptor.media_type().to_string();
        let raw = source.manifest(&digest, Some(&media_type))?;
        out.push(ToSign {
            bytes: raw.bytes,
            instance: true,
        });
    }
    out.push(ToSign {
        bytes: top.bytes,
        instance: false,
    });
    Ok(out)
}
