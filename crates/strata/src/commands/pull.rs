//! `strata pull`: an image into the store, every layer unpacked, indexed and tar-split in one pass.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context as _;
use strata_image::{ImageSource, resolve};
use strata_store::{PullEvent, PullOptions, normalise_name};

use crate::args::image::{open_source, source_options};
use crate::args::{PlatformArgs, PolicyArgs, RegistryArgs, StoreArgs};
use crate::output::{human_bytes, print_json, print_raw};
use crate::trust::Judge;

/// Arguments of `strata pull`.
#[derive(clap::Args)]
pub struct Args {
    /// Name the image NAME (`x` means `localhost/x:latest`); may be repeated [default, as podman names it: a
    /// docker-archive's RepoTags, the source's reference, or `localhost/<path>:<tag>` for an OCI layout].
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
    /// Print a JSON report instead of the image ID.
    #[arg(long)]
    json: bool,
    /// No progress display.
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N], dir:DIR,
    /// docker://REFERENCE, containers-storage:[ROOT+RUNROOT]IMAGE.
    source: String,
}

/// The names an image pulled from `name` gets by default, as podman names it: a `docker-archive:`'s
/// `RepoTags` (normalised as podman normalises them: `eval/x:v1` is `localhost/eval/x:v1`), the reference
/// the source was opened with, a registry reference, or `localhost/<path>:<tag>` for an OCI layout.
///
/// podman copies an archive's image once per tag, each copy putting its name in front of the names the image
/// has; the tags are given here in reverse so that the image ends with its names in podman's order.
fn default_names(name: &str, source: &dyn ImageSource) -> anyhow::Result<Vec<String>> {
    let recorded = source.recorded_names();
    if !recorded.is_empty() {
        return recorded
            .iter()
            .rev()
            .map(|t| {
                normalise_name(t).with_context(|| {
                    format!("naming the image after the tag {t:?} that {name} records")
                })
            })
            .collect();
    }
    Ok(default_name(name, source).into_iter().collect())
}

/// The one name an image pulled from `name` gets by default, if any (see [`default_names`]).
fn default_name(name: &str, source: &dyn ImageSource) -> Option<String> {
    if let Some(r) = source.docker_reference() {
        return Some(r.to_string());
    }
    let (transport, rest) = name.split_once(':')?;
    match transport {
        "docker" => normalise_name(rest.trim_start_matches("//")).ok(),
        "oci" | "oci-archive" => {
            let (path, tag) = match rest.split_once(':') {
                Some((p, t)) => (p, Some(t)),
                None => (rest, None),
            };
            if path.contains('@') {
                return None;
            }
            if let Some(tag) = tag
                && (tag.contains('/') || tag.contains(':'))
            {
                return normalise_name(tag).ok();
            }
            let path = path.trim_start_matches('/').trim_end_matches('/');
            let path = path.strip_suffix(".tar").unwrap_or(path);
            normalise_name(&format!("localhost/{path}:{}", tag.unwrap_or("latest"))).ok()
        }
        _ => None,
    }
}

/// A one-line progress display on a terminal.
struct Progress {
    enabled: bool,
    state: Mutex<ProgressState>,
}

struct ProgressState {
    layers: usize,
    missing: usize,
    done: usize,
    read: Vec<u64>,
    last: Option<Instant>,
}

impl Progress {
    fn event(&self, e: &PullEvent) {
        if !self.enabled {
            return;
        }
        let Ok(mut s) = self.state.lock() else { return };
        match e {
            PullEvent::Planned { layers, missing } => {
                s.layers = *layers;
                s.missing = *missing;
                s.read = vec![0; *layers];
            }
            PullEvent::LayerProgress { index, bytes } => {
                if let Some(r) = s.read.get_mut(*index) {
                    *r = *bytes;
                }
            }
            PullEvent::LayerDone { .. } => s.done += 1,
            PullEvent::LayerStarted { .. } => {}
            PullEvent::Committing => {
                let _ = write!(std::io::stderr(), "\r\x1b[Kcommitting…");
                return;
            }
        }
        let now = Instant::now();
        if s.last
            .is_some_and(|t| now.duration_since(t).as_millis() < 100)
            && !matches!(e, PullEvent::LayerDone { .. })
        {
            return;
        }
        s.last = Some(now);
        let total: u64 = s.read.iter().sum();
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[Klayers: {} of {} new ({} in store), {} done, {} read",
            s.missing,
            s.layers,
            s.layers - s.missing,
            s.done,
            human_bytes(total)
        );
    }

    fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

/// Runs `strata pull`.
pub fn run(args: Args, store_args: &StoreArgs) -> anyhow::Result<()> {
    // The policy is read before anything else, and decides before the store is touched. As containers/image's
    // copy: every signature the source has travels with the image (podman keeps them in the store).
    let options = source_options(&args.registry, store_args)?;
    let judge = Judge::new(&args.policy, &args.source, &options)?;
    let source = open_source(&args.source, &options)?;
    let image = resolve(source.as_ref(), &args.platform.platform())?;
    let instance = (image.instance.digest != image.top.digest).then_some(&image.instance.digest);
    let found = judge.admit(source.as_ref(), instance, &image.instance)?;
    let signatures = found.iter().map(|f| f.signature.to_blob()).collect();
    let store = store_args.open()?;
    let names = if args.names.is_empty() {
        default_names(&args.source, source.as_ref())?
    } else {
        args.names
            .iter()
            .map(|n| normalise_name(n))
            .collect::<Result<Vec<_>, _>>()?
    };
    let progress = Progress {
        enabled: !args.quiet && !args.json && std::io::stderr().is_terminal(),
        state: Mutex::new(ProgressState {
            layers: 0,
            missing: 0,
            done: 0,
            read: Vec::new(),
            last: None,
        }),
    };
    let report = store.pull(
        source.as_ref(),
        &image,
        &PullOptions { names, signatures },
        &|e| progress.event(e),
    );
    progress.finish();
    let report = report?;
    if args.json {
        return print_json(&report);
    }
    if !args.quiet {
        let new = report.layers.iter().filter(|l| !l.reused).count();
        eprintln!(
            "pulled {} ({} layers, {} new, {} unpacked) in {:.2} s",
            report.names.first().map_or("image", String::as_str),
            report.layers.len(),
            new,
            human_bytes(report.layers.iter().map(|l| l.tar_size).sum()),
            report.seconds
        );
    }
    print_raw(format!("{}\n", report.image).as_bytes())
}
