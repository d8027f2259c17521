//! `strata copy`: an image from any transport to any transport, as `skopeo copy` does: byte for byte, or
//! converted (`--format`, and where the destination needs it) and recompressed (`--dest-compress-format`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_copy::{CopyEvent, CopyHooks, CopyOptions, ManifestFormat, MultiArch, Recompression};
use strata_image::{RawManifest, resolve};
use strata_oci::media::Compression;
use strata_oci::{Digest, ImageReference, Manifest};
use strata_signature::{PayloadKind, Signature};
use strata_source::{Credentials, Repository, SourceOptions};
use strata_store::{PullOptions, normalise_name};
use strata_trust::gather::Found;
use strata_trust::sign::{SignatureStore, SigningKey};

use crate::args::image::open_source;
use crate::args::{PlatformArgs, PolicyArgs, StoreArgs};
use crate::output::{human_bytes, print_json};
use crate::trust::{Judge, signing_key};

/// `--multi-arch`'s values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum MultiArchArg {
    /// The image for the chosen platform only.
    System,
    /// Every image of the index, and the index.
    All,
    /// The index alone.
    IndexOnly,
}

/// Arguments of `strata copy`.
#[derive(clap::Args)]
pub struct Args {
    /// Copy every image of an index, and the index itself (keeping its digest); same as --multi-arch=all.
    #[arg(long, short = 'a')]
    all: bool,
    /// Which images of an index to copy: the one for the platform (system), all of them with the index
    /// (all), or the index alone (index-only).
    #[arg(long, value_enum, value_name = "WHICH")]
    multi_arch: Option<MultiArchArg>,
    #[command(flatten)]
    platform: PlatformArgs,
    /// Write the digest of the manifest written to this file.
    #[arg(long, value_name = "FILE")]
    digestfile: Option<PathBuf>,
    /// Keep digests as they are: fail rather than convert the manifest or recompress layers.
    #[arg(long)]
    preserve_digests: bool,
    /// Copy no signatures (they are copied by default, as skopeo copies them, where the destination keeps
    /// signatures: docker:// and dir:; elsewhere a signed source needs this flag).
    #[arg(long)]
    remove_signatures: bool,
    /// Sign what is written with this GPG key (fingerprint), through the user's gpg, as simple signing.
    #[arg(
        long,
        value_name = "FINGERPRINT",
        conflicts_with = "sign_by_sigstore_private_key"
    )]
    sign_by: Option<String>,
    /// Sign what is written with this cosign private key, as a sigstore signature.
    #[arg(long, value_name = "FILE")]
    sign_by_sigstore_private_key: Option<PathBuf>,
    /// The signing key's passphrase is the first line of this file.
    #[arg(long, value_name = "FILE")]
    sign_passphrase_file: Option<PathBuf>,
    /// The identity to sign for, a docker reference with a tag or digest [default: the destination's
    /// reference; required for dir:].
    #[arg(long, value_name = "REFERENCE")]
    sign_identity: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// The manifest type to write: oci or v2s2 (Docker image manifest v2, schema 2) [default: the
    /// source's, converted where the destination needs it: a v2s2 image to oci:].
    #[arg(long, short = 'f', value_name = "FORMAT")]
    format: Option<String>,
    /// Recompress the layers written: gzip, zstd, zstd:chunked or estargz (the last two readable lazily).
    #[arg(long, value_name = "FORMAT")]
    dest_compress_format: Option<String>,
    /// The compression level of the layers written (gzip 0-9, zstd 1-22), with --dest-compress-format.
    #[arg(long, value_name = "LEVEL")]
    dest_compress_level: Option<i32>,
    /// Read registry credentials from this auth.json only, for both sides.
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// The source registry's credentials, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    src_creds: Option<String>,
    /// The destination registry's credentials, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    dest_creds: Option<String>,
    /// The auth.json for the source registry.
    #[arg(long, value_name = "FILE")]
    src_authfile: Option<PathBuf>,
    /// The auth.json for the destination registry.
    #[arg(long, value_name = "FILE")]
    dest_authfile: Option<PathBuf>,
    /// Require HTTPS with verified certificates from the source registry (false: allow unverified HTTPS,
    /// then plain HTTP).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    src_tls_verify: Option<bool>,
    /// Require HTTPS with verified certificates from the destination registry.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    dest_tls_verify: Option<bool>,
    /// CA certificates and client certificate for the source registry.
    #[arg(long, value_name = "DIR")]
    src_cert_dir: Option<PathBuf>,
    /// CA certificates and client certificate for the destination registry.
    #[arg(long, value_name = "DIR")]
    dest_cert_dir: Option<PathBuf>,
    /// The registries.conf to use.
    #[arg(long, value_name = "FILE")]
    registries_conf: Option<PathBuf>,
    /// Retries of a registry request, and of a blob copy, that failed on the network or with 429/5xx.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retry_times: u32,
    /// Seconds to wait for a registry to connect or to send more data.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    timeout: f64,
    /// Push a blob larger than this many bytes to a registry in chunks of this size (PATCH uploads, resumed
    /// where the registry says it stopped when one is cut); 0 sends every blob in one PUT.
    #[arg(long, value_name = "BYTES", default_value_t = strata_source::DEFAULT_UPLOAD_CHUNK_SIZE)]
    dest_upload_chunk_size: u64,
    /// No progress display and no summary.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print a JSON report of what was copied.
    #[arg(long)]
    json: bool,
    /// The image to copy: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N],
    /// dir:DIR, docker://REFERENCE, containers-storage:[ROOT+RUNROOT]IMAGE.
    source: String,
    /// Where to copy it: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG], dir:DIR,
    /// docker://HOST[:PORT]/NAME[:TAG], containers-storage:[ROOT+RUNROOT]NAME (a `strata pull`).
    destination: String,
}

impl Args {
    fn side(
        &self,
        creds: Option<&str>,
        authfile: Option<&PathBuf>,
        tls_verify: Option<bool>,
        cert_dir: Option<&PathBuf>,
        store: &StoreArgs,
    ) -> anyhow::Result<SourceOptions> {
        let mut options = SourceOptions::default();
        options.credentials = creds.map(Credentials::parse).transpose()?;
        options.authfile = authfile.or(self.authfile.as_ref()).cloned();
        options.tls_verify = tls_verify;
        options.cert_dir = cert_dir.cloned();
        options.registries_conf = self.registries_conf.clone();
        options.retry.max_retries = self.retry_times;
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!("--timeout must be a positive number of seconds");
        }
        options.timeout = Duration::from_secs_f64(self.timeout.min(86_400.0));
        options.storage_root = store.given_root();
        options.storage_runroot = store.given_runroot();
        Ok(options)
    }

    /// `--format`.
    fn manifest_format(&self) -> anyhow::Result<Option<ManifestFormat>> {
        Ok(match self.format.as_deref() {
            None => None,
            Some("oci") => Some(ManifestFormat::Oci),
            Some("v2s2") => Some(ManifestFormat::DockerV2S2),
            Some("v2s1") => {
                bail!("--format v2s1: Docker schema 1 manifests are not written by strata")
            }
            Some(other) => bail!("--format {other}: unknown manifest type (oci, v2s2)"),
        })
    }

    /// `--dest-compress-format` and `--dest-compress-level`.
    fn recompression(&self) -> anyhow::Result<Option<Recompression>> {
        let format = match self.dest_compress_format.as_deref() {
            None => {
                if self.dest_compress_level.is_some() {
                    bail!("--dest-compress-level needs --dest-compress-format");
                }
                return Ok(None);
            }
            Some("gzip") => (Compression::Gzip, false),
            Some("zstd") => (Compression::Zstd, false),
            Some("zstd:chunked") => (Compression::Zstd, true),
            Some("estargz") => (Compression::Gzip, true),
            Some(other) => bail!(
                "--dest-compress-format {other}: unknown compression (gzip, zstd, zstd:chunked, estargz)"
            ),
        };
        let (format, toc) = format;
        if let Some(level) = self.dest_compress_level {
            strata_copy::check_level(format, level)
                .map_err(|e| anyhow::anyhow!("--dest-compress-level: {e}"))?;
        }
        Ok(Some(Recompression {
            format,
            level: self.dest_compress_level,
            toc,
        }))
    }

    fn multi_arch(&self) -> anyhow::Result<MultiArch> {
        Ok(match (self.all, self.multi_arch) {
            (true, None | Some(MultiArchArg::All)) => MultiArch::All,
            (true, Some(_)) => bail!("--all contradicts --multi-arch other than all"),
            (false, None | Some(MultiArchArg::System)) => MultiArch::System,
            (false, Some(MultiArchArg::All)) => MultiArch::All,
            (false, Some(MultiArchArg::IndexOnly)) => MultiArch::IndexOnly,
        })
    }
}

/// Per-blob progress bars on a terminal.
struct Progress {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Progress {
    fn bar(&self, digest: &Digest, size: u64) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            bars.entry(digest.clone())
                .or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(size));
                    if let Ok(style) = ProgressStyle::with_template(
                        "{prefix} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}",
                    ) {
                        bar.set_style(style);
                    }
                    bar.set_prefix(format!("blob {}", short(digest)));
                    bar
                })
                .clone(),
        )
    }
}

fn short(digest: &Digest) -> &str {
    digest.hex().get(..12).unwrap_or(digest.hex())
}

/// A manifest written, with the signatures that travel with it.
struct Written {
    bytes: Vec<u8>,
    digest: Digest,
    /// An instance of the index written (`dir:` names its signatures `<hex>.signature-N`).
    instance: bool,
    /// The source's signatures of it.
    signatures: Vec<Found>,
    /// The signatures made for it (`--sign-by…`).
    signed: Vec<Signature>,
}

/// The copy's hooks: the policy check (every image copied must be accepted) and the signatures found,
/// kept for writing once the copy is committed; and the progress display.
struct Hooks<'a> {
    progress: Progress,
    judge: &'a Judge<'a>,
    multi_arch: MultiArch,
    remove_signatures: bool,
    /// Where the destination keeps signatures (`None`: it keeps none).
    store: Option<&'a SignatureStore<'a>>,
    /// The destination's name, for messages.
    destination: &'a str,
    /// The signing key and the identity signatures are made for.
    signer: Option<(&'a SigningKey, &'a ImageReference)>,
    written: Mutex<Vec<Written>>,
    /// The copy writes other manifests than the source's (conversion): new signatures are made of the
    /// manifest written, once written.
    rewritten: std::sync::atomic::AtomicBool,
}

impl Hooks<'_> {
    fn check(
        &self,
        source: &dyn strata_image::ImageSource,
        top: &RawManifest,
        chosen: Option<&RawManifest>,
        rewritten: bool,
    ) -> anyhow::Result<()> {
        let mut written = Vec::new();
        let mut keep = |bytes: &RawManifest, instance: bool, signatures: Vec<Found>| {
            written.push(Written {
                bytes: bytes.bytes.clone(),
                digest: bytes.digest.clone(),
                instance,
                signatures: if self.remove_signatures {
                    Vec::new()
                } else {
                    signatures
                },
                signed: Vec::new(),
            });
        };
        let index = match Manifest::parse(&top.bytes, top.media_type.as_deref(), source.name())? {
            Manifest::Index { index, .. } => Some(index),
            Manifest::Image { .. } => None,
        };
        match (index, self.multi_arch) {
            (None, _) => keep(top, false, self.judge.admit(source, None, top)?),
            (Some(_), MultiArch::System) => {
                let chosen = chosen.unwrap_or(top);
                let found = self.judge.admit(source, Some(&chosen.digest), chosen)?;
                keep(chosen, false, found);
            }
            (Some(index), multi_arch) => {
                // Every image of the index is judged, as containers/image judges each instance it copies
                // (the index's own signature is never asked for, but travels with it).
                for descriptor in index.manifests() {
                    let digest = Digest::try_from(descriptor.digest())?;
                    let media_type = descriptor.media_type().to_string();
                    let instance = source.manifest(&digest, Some(&media_type))?;
                    let found = self.judge.admit(source, Some(&digest), &instance)?;
                    if multi_arch == MultiArch::All {
                        keep(&instance, true, found);
                    }
                }
                keep(
                    top,
                    false,
                    self.judge.signatures(source, None, &top.digest)?,
                );
            }
        }
        // A conversion would leave the source's signatures signing nothing written: containers/image refuses.
        if rewritten {
            if written.iter().any(|w| !w.signatures.is_empty()) {
                bail!(
                    "{}: Would invalidate signatures: the manifest written is not the one the source's \
                     signatures sign (copy with --remove-signatures)",
                    self.destination
                );
            }
            self.rewritten
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // Before any blob is written: signatures that cannot be kept stop the copy (as containers/image's
        // "Can not copy signatures"), and new ones are made now (a signing failure writes nothing) — of a
        // converted manifest, once it is written.
        let now = std::time::SystemTime::now();
        for w in &mut written {
            if let Some(store) = self.store.filter(|_| rewritten && self.signer.is_some()) {
                let kind = match self.signer.map(|(k, _)| k.kind()) {
                    Some(kind) => kind,
                    None => continue,
                };
                if !matches!(store, SignatureStore::Dir(_)) {
                    store.prepare(kind)?;
                }
                continue;
            }
            if let Some((key, identity)) = self.signer {
                let signature = key.sign(&w.bytes, identity, now)?;
                w.signed.push(signature);
            }
            let kinds = w
                .signatures
                .iter()
                .map(|f| f.signature.to_signature())
                .chain(w.signed.iter().cloned())
                .map(|s| match s {
                    Signature::SimpleSigning(_) => PayloadKind::Atomic,
                    Signature::Sigstore { .. } => PayloadKind::Cosign,
                });
            for kind in kinds {
                match self.store {
                    // A `dir:` takes every kind; it is written only at the commit.
                    Some(SignatureStore::Dir(_)) => {}
                    Some(store) => store.prepare(kind)?,
                    None => bail!(
                        "can not copy signatures to {}: it keeps no signatures (copy with --remove-signatures)",
                        self.destination
                    ),
                }
            }
        }
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = written;
        Ok(())
    }
}

impl CopyHooks for Hooks<'_> {
    fn check_source(
        &self,
        source: &dyn strata_image::ImageSource,
        top: &RawManifest,
        chosen: Option<&RawManifest>,
        rewritten: bool,
    ) -> Result<(), String> {
        self.check(source, top, chosen, rewritten)
            .map_err(|e| format!("{e:#}"))
    }

    fn after_manifests(
        &self,
        _: &dyn strata_image::ImageSource,
        _: &mut dyn strata_image::ImageDestination,
        written: &[(RawManifest, strata_image::ManifestRole)],
    ) -> Result<(), String> {
        if !self.rewritten.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        // Converted: the signatures are made of the manifests written, each instance and the top one (as
        // containers/image signs each image of an index it copies, then the index).
        let mut kept = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() != written.len() {
            return Err(format!(
                "{} manifests were written where {} were planned",
                written.len(),
                kept.len()
            ));
        }
        for (w, (manifest, _)) in kept.iter_mut().zip(written) {
            w.bytes.clone_from(&manifest.bytes);
            w.digest = manifest.digest.clone();
            if let Some((key, identity)) = self.signer {
                let signature = key
                    .sign(&w.bytes, identity, std::time::SystemTime::now())
                    .map_err(|e| format!("{e:#}"))?;
                w.signed.push(signature);
            }
        }
        Ok(())
    }

    fn event(&self, event: &CopyEvent) {
        self.progress.event(event);
    }
}

impl Progress {
    fn event(&self, event: &CopyEvent) {
        let Some(multi) = &self.multi else { return };
        match event {
            CopyEvent::BlobSkipped { digest, .. } => {
                let _ = multi.println(format!("blob {} skipped: already exists", short(digest)));
            }
            CopyEvent::BlobProgress { digest, read, size } => {
                if let Some(bar) = self.bar(digest, *size) {
                    bar.set_position(*read);
                }
            }
            CopyEvent::BlobDone { digest } => {
                if let Some(bar) = self.bars.lock().ok().and_then(|b| b.get(digest).cloned()) {
                    bar.finish();
                }
            }
            CopyEvent::ManifestWritten { digest } => {
                let _ = multi.println(format!("manifest {digest} written"));
            }
            CopyEvent::Planned { .. } => {}
        }
    }
}

/// Runs `strata copy`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let format = args.manifest_format()?;
    let compression = args.recompression()?;
    if args.preserve_digests && (format.is_some() || compression.is_some()) {
        bail!("--preserve-digests: --format and --dest-compress-format would change digests");
    }
    // The key first: a wrong passphrase fails before anything is read.
    let key = signing_key(
        args.sign_by.as_deref(),
        args.sign_by_sigstore_private_key.as_deref(),
        args.sign_passphrase_file.as_deref(),
    )?;
    let src_options = args.side(
        args.src_creds.as_deref(),
        args.src_authfile.as_ref(),
        args.src_tls_verify,
        args.src_cert_dir.as_ref(),
        store,
    )?;
    let mut dest_options = args.side(
        args.dest_creds.as_deref(),
        args.dest_authfile.as_ref(),
        args.dest_tls_verify,
        args.dest_cert_dir.as_ref(),
        store,
    )?;
    dest_options.upload_chunk_size = args.dest_upload_chunk_size;
    let multi_arch = args.multi_arch()?;
    let judge = Judge::new(&args.policy, &args.source, &src_options)?;
    let source = open_source(&args.source, &src_options)?;
    if args.destination.starts_with("containers-storage:") {
        if format.is_some() || compression.is_some() {
            bail!(
                "{}: a store keeps layers unpacked; --format and --dest-compress-format do not apply",
                args.destination
            );
        }
        return copy_to_store(
            &args,
            &judge,
            key.as_ref(),
            source.as_ref(),
            multi_arch,
            store,
        );
    }
    // Where the destination keeps signatures, and the identity new ones are made for.
    let repository = if args.destination.starts_with("docker:") {
        Some(Repository::open(&args.destination, &dest_options)?)
    } else {
        None
    };
    let signature_store = match (&repository, args.destination.strip_prefix("dir:")) {
        (Some(repository), _) => Some(SignatureStore::Registry {
            repository,
            registries: &judge.registries_d,
        }),
        (None, Some(dir)) => Some(SignatureStore::Dir(PathBuf::from(dir))),
        (None, None) => None,
    };
    let identity = match (&args.sign_identity, &repository) {
        (Some(text), _) => Some(
            ImageReference::parse_normalized_named(text)
                .with_context(|| format!("--sign-identity {text}"))?,
        ),
        (None, Some(repository)) => Some(repository.reference().clone()),
        (None, None) => None,
    };
    if key.is_some() {
        let transport = args.destination.split_once(':').map_or("", |(t, _)| t);
        if let Some(message) = strata_trust::sign::unsupported_transport(transport) {
            bail!("{}: {message}", args.destination);
        }
        if identity.is_none() {
            bail!(
                "cannot determine the canonical docker reference for {}: give --sign-identity",
                args.destination
            );
        }
    }
    let mut destination = strata_source::open_destination(&args.destination, &dest_options)
        .with_context(|| format!("opening {} for writing", args.destination))?;
    let options = CopyOptions {
        platform: args.platform.platform(),
        multi_arch,
        blob_retries: if args.destination.starts_with("docker:") {
            args.retry_times
        } else {
            0
        },
        format,
        compression,
        preserve_digests: args.preserve_digests,
    };
    let interactive = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let progress = Progress {
        multi: interactive.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        bars: Mutex::new(HashMap::new()),
    };
    let hooks = Hooks {
        progress,
        judge: &judge,
        multi_arch,
        remove_signatures: args.remove_signatures,
        store: signature_store.as_ref(),
        destination: &args.destination,
        signer: key.as_ref().zip(identity.as_ref()),
        written: Mutex::new(Vec::new()),
        rewritten: std::sync::atomic::AtomicBool::new(false),
    };
    let report = strata_copy::copy(source.as_ref(), destination.as_mut(), &options, &hooks)
        .with_context(|| format!("copying {} to {}", args.source, args.destination))?;
    if let Some(multi) = &hooks.progress.multi {
        let _ = multi.clear();
    }
    // The signatures, once the image is in place: the source's, then the new ones.
    if let Some(store) = &signature_store {
        let written = std::mem::take(&mut *hooks.written.lock().unwrap_or_else(|p| p.into_inner()));
        for w in written {
            let signatures = w.signatures.iter().map(|f| f.signature.to_signature());
            for signature in signatures.chain(w.signed) {
                store
                    .put(&w.digest, w.instance, &signature)
                    .with_context(|| {
                        format!(
                            "writing a signature of {} to {}",
                            w.digest, args.destination
                        )
                    })?;
            }
        }
    }
    if report_written(&args, &report.digest, &report)? {
        return Ok(());
    }
    if !args.quiet {
        eprintln!(
            "copied {} to {}: {} blobs ({} skipped, {} written), {} manifests, in {:.2} s",
            args.source,
            args.destination,
            report.blobs.len(),
            report.skipped,
            human_bytes(report.bytes_written),
            report.manifests.len(),
            report.seconds
        );
    }
    Ok(())
}

/// Writes `--digestfile`, and the JSON report with `--json` (then `true`: nothing more is printed).
fn report_written(
    args: &Args,
    digest: &str,
    report: &impl serde::Serialize,
) -> anyhow::Result<bool> {
    if let Some(path) = &args.digestfile {
        std::fs::write(path, digest).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        print_json(report)?;
    }
    Ok(args.json)
}

/// `containers-storage:` as destination: a `strata pull` of the chosen image under the name given.
fn copy_to_store(
    args: &Args,
    judge: &Judge<'_>,
    key: Option<&SigningKey>,
    source: &dyn strata_image::ImageSource,
    multi_arch: MultiArch,
    store_args: &StoreArgs,
) -> anyhow::Result<()> {
    if multi_arch != MultiArch::System {
        bail!(
            "{}: a store takes one image: copy without --all or --multi-arch",
            args.destination
        );
    }
    let (root, runroot, image) = strata_store::parse_reference(&args.destination)?;
    let (root, runroot) = store_args.transport_store(root, runroot)?;
    let store = crate::args::store::open_store(&root, &runroot, false)?;
    let name = normalise_name(&image)
        .with_context(|| format!("naming the image {image:?} in {}", root.display()))?;
    let resolved = resolve(source, &args.platform.platform())?;
    let instance =
        (resolved.instance.digest != resolved.top.digest).then_some(&resolved.instance.digest);
    let found = judge.admit(source, instance, &resolved.instance)?;
    let mut signatures: Vec<Vec<u8>> = if args.remove_signatures {
        Vec::new()
    } else {
        found.iter().map(|f| f.signature.to_blob()).collect()
    };
    if let Some(key) = key {
        let identity = match &args.sign_identity {
            Some(text) => ImageReference::parse_normalized_named(text)
                .with_context(|| format!("--sign-identity {text}"))?,
            None => ImageReference::parse_normalized_named(&name)?,
        };
        let signature = key.sign(
            &resolved.instance.bytes,
            &identity,
            std::time::SystemTime::now(),
        )?;
        signatures.push(signature.to_blob());
    }
    let report = store.pull(
        source,
        &resolved,
        &PullOptions {
            names: vec![name],
            signatures,
        },
        &|_| {},
    )?;
    if report_written(args, &report.digest, &report)? {
        return Ok(());
    }
    if !args.quiet {
        eprintln!(
            "copied {} to {}: image {} ({} layers, {} new)",
            args.source,
            args.destination,
            report.image,
            report.layers.len(),
            report.layers.iter().filter(|l| !l.reused).count()
        );
    }
    Ok(())
}
