//! `strata inspect`: skopeo's `inspect`, for every transport.

use strata_image::{PlatformImage, resolve, resolve_all};
use strata_source::InspectReport;

use crate::args::image::{open_source, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{print_json, print_raw};
use crate::template::Template;

/// Arguments of `strata inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the manifest exactly as stored (the index, for a multi-platform image).
    #[arg(long)]
    raw: bool,
    /// Print the image config (converted to OCI; with --raw, the config blob as stored).
    #[arg(long)]
    config: bool,
    /// Do not list the repository's tags.
    #[arg(long, short = 'n')]
    no_tags: bool,
    /// Report every image of a multi-platform image at once, as a JSON list: each instance's platform,
    /// manifest digest, media type and size, layers, and the report `strata inspect` prints for that
    /// image alone. A single-platform image is a list of one. `--override-*` are not used.
    #[arg(long, conflicts_with_all = ["raw", "config", "format"])]
    all_platforms: bool,
    /// Print the report through a Go template, as `skopeo inspect --format`: literal text (`\n` is a
    /// newline), {{.FIELD}} (Name, Digest, RepoTags, Created, DockerVersion, Labels, Architecture, Variant,
    /// Os, Layers, LayersData, Env), {{.Labels.KEY}}, {{index .Labels "KEY"}}, {{json .FIELD}}; `json` alone
    /// is the usual document. Anything else is an error.
    #[arg(long, short = 'f', value_name = "TEMPLATE", conflicts_with_all = ["raw", "config"])]
    format: Option<String>,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N], dir:DIR,
    /// docker://HOST[:PORT]/NAME[:TAG|@DIGEST], containers-storage:[ROOT+RUNROOT]IMAGE.
    image: String,
}

/// Runs `strata inspect`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    // A bad template is refused before the image is read.
    let template = args.format.as_deref().map(Template::parse).transpose()?;
    let source = open_source(&args.image, &source_options(&args.registry, store)?)?;
    if args.raw && !args.config {
        return print_raw(&source.top_manifest()?.bytes);
    }
    if args.all_platforms {
        let images = resolve_all(source.as_ref())?;
        let tags = repo_tags(source.as_ref(), args.no_tags)?;
        let name = source.docker_reference().map(|r| r.name());
        let list: Vec<PlatformReport> = images
            .iter()
            .map(|i| PlatformReport::new(i, name.clone(), tags.clone()))
            .collect();
        return print_json(&list);
    }
    let image = resolve(source.as_ref(), &args.platform.platform())?;
    if args.config {
        return if args.raw {
            print_raw(&image.config_bytes)
        } else {
            print_json(&image.config.oci)
        };
    }
    let tags = repo_tags(source.as_ref(), args.no_tags)?;
    let name = source.docker_reference().map(|r| r.name());
    let report = InspectReport::new(&image, name, tags);
    match template {
        Some(t) if !t.is_json() => print_raw(t.render(&serde_json::to_value(&report)?)?.as_bytes()),
        _ => print_json(&report),
    }
}

/// The repository's tags (none with `--no-tags`, or when the registry refuses to list them).
fn repo_tags(source: &dyn strata_image::ImageSource, no_tags: bool) -> anyhow::Result<Vec<String>> {
    Ok(if no_tags {
        Vec::new()
    } else {
        match source.repo_tags() {
            Ok(tags) => tags,
            // As skopeo: some registries refuse to list tags (401, 403, 404); the rest of inspect still works.
            Err(e)
                if strata_source::registry_error(&e)
                    .is_some_and(|r| matches!(r.status(), Some(401 | 403 | 404))) =>
            {
                eprintln!("strata: warning: the registry refuses to list tags; skipping: {e}");
                Vec::new()
            }
            Err(e) => return Err(anyhow::Error::new(e).context("listing the repository's tags")),
        }
    })
}

/// A platform as `--all-platforms` prints it.
#[derive(serde::Serialize)]
struct PlatformJson {
    os: String,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

/// One entry of `strata inspect --all-platforms` (docs/FORMAT.md, "JSON outputs").
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PlatformReport {
    /// The platform of the index entry (else the config's).
    platform: PlatformJson,
    /// The instance manifest's digest.
    digest: String,
    /// The instance manifest's media type.
    media_type: String,
    /// The instance manifest's size in bytes.
    size: u64,
    /// The layer blobs' total size in bytes (as the manifest declares them).
    layers_size: u64,
    /// The layer blob digests, bottom first.
    layers: Vec<String>,
    /// What `strata inspect` prints for this image alone (with `--override-*` choosing it).
    inspect: InspectReport,
}

impl PlatformReport {
    fn new(image: &PlatformImage, name: Option<String>, tags: Vec<String>) -> Self {
        let layers = image.image.manifest.layers();
        PlatformReport {
            platform: PlatformJson {
                os: image.platform.os.clone(),
                architecture: image.platform.architecture.clone(),
                variant: image.platform.variant.clone(),
            },
            digest: image.image.instance.digest.to_string(),
            media_type: image.image.media_type.clone(),
            size: image.image.instance.bytes.len() as u64,
            layers_size: layers.iter().map(|l| l.size()).fold(0, u64::saturating_add),
            layers: layers.iter().map(|l| l.digest().to_string()).collect(),
            inspect: InspectReport::new(&image.image, name, tags),
        }
    }
}
