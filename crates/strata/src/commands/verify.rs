//! `strata verify`: what containers-policy.json decides for an image, and why — the requirements that apply,
//! every signature found (where, format, key, identity, digest) and each one's verdict.

use std::time::SystemTime;

use strata_image::resolve;
use strata_trust::{TrustOptions, Verdict, verify_image};

use crate::args::image::{open_source, source_options};
use crate::args::{PlatformArgs, PolicyArgs, RegistryArgs, StoreArgs};
use crate::output::{Findings, print_json, print_raw};
use crate::trust::store_identity;

/// Arguments of `strata verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N], dir:DIR,
    /// docker://HOST[:PORT]/NAME[:TAG|@DIGEST], containers-storage:[ROOT+RUNROOT]IMAGE, or a name in the store.
    image: String,
}

/// The human-readable report of `verdict` for `image`.
fn render(image: &str, verdict: &Verdict) -> String {
    let mut out = format!("{image}\n  manifest: {}\n", verdict.manifest_digest);
    let scope = match &verdict.transport {
        Some(t) if verdict.scope.is_empty() => format!("transport {t}, its default (\"\")"),
        Some(t) => format!("transport {t}, scope {:?}", verdict.scope),
        None => "the policy's default".to_owned(),
    };
    out.push_str(&format!("  requirements from {scope}:\n"));
    for r in &verdict.requirements {
        let answer = if r.accepted { "accepted" } else { "rejected" };
        out.push_str(&format!("    {}: {answer}: {}\n", r.kind, r.reason));
        for s in &r.signatures {
            let answer = if s.accepted { "accepted" } else { "rejected" };
            out.push_str(&format!(
                "      {} signature, {}: {answer}",
                s.format, s.origin
            ));
            for (what, value) in [
                ("key", &s.key),
                ("identity", &s.identity),
                ("digest", &s.digest),
            ] {
                if let Some(v) = value {
                    out.push_str(&format!(", {what} {v}"));
                }
            }
            if !s.accepted {
                out.push_str(&format!(": {}", s.reason));
            }
            out.push('\n');
        }
    }
    if !verdict.signatures.is_empty() {
        out.push_str(&format!(
            "  signatures found: {}\n",
            verdict.signatures.len()
        ));
        for s in &verdict.signatures {
            out.push_str(&format!("    {}: {}\n", s.format, s.origin));
        }
    }
    let decision = if verdict.accepted {
        "accepted"
    } else {
        "rejected"
    };
    out.push_str(&format!("  decision: {decision}\n"));
    out
}

/// Runs `strata verify`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let policy = args.policy.policy()?;
    let registries_d = args.policy.registries_d()?;
    let options = source_options(&args.registry, store)?;
    let source = open_source(&args.image, &options)?;
    let image = resolve(source.as_ref(), &args.platform.platform())?;
    let verdict = verify_image(
        source.as_ref(),
        &image,
        store_identity(&args.image, &options).as_ref(),
        &TrustOptions {
            policy: &policy,
            registries_d: &registries_d,
            source_options: &options,
            now: SystemTime::now(),
        },
    )?;
    if args.json {
        print_json(&serde_json::json!({
            "image": args.image,
            "manifestDigest": verdict.manifest_digest,
            "transport": verdict.transport,
            "scope": verdict.scope,
            "requirements": verdict.requirements,
            "signatures": verdict.signatures,
            "accepted": verdict.accepted,
        }))?;
    } else {
        print_raw(render(&args.image, &verdict).as_bytes())?;
    }
    match verdict.refusal() {
        Some(reason) => {
            Err(Findings(format!("{} is rejected by policy: {reason}", args.image)).into())
        }
        None => Ok(()),
    }
}
