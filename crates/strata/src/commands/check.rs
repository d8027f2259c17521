//! `strata check`: the container certification assessments by the names Red Hat's certification scan
//! reports (docs/CHECKS.md), each `pass`, `FAIL` or `unknown` with its reason, and the verification of every
//! packaged file.

use strata_scan::CheckOptions;
use strata_scan::check::Status;

use crate::args::{ImageArgs, StoreArgs};
use crate::output::{Findings, print_json, print_raw};

/// Arguments of `strata check`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: {"image", "passed", "failed", "unknown", "assessments": [{"name", "result", "reason"}],
    /// "health_index", "distribution", "verification"} (docs/FORMAT.md, "JSON outputs").
    #[arg(long)]
    json: bool,
    /// Do not verify the installed packages' files (it reads every packaged file);
    /// rpm_verify_successful is then unknown.
    #[arg(long)]
    no_verify_packages: bool,
    #[command(flatten)]
    target: ImageArgs,
}

/// Runs `strata check`: the table (or JSON) on standard output, then exit status 1 when any assessment
/// fails. An assessment that cannot be decided is `unknown`: not a failure, but counted and said.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
    let options = CheckOptions {
        verify_packages: !args.no_verify_packages,
        repository_tags: repository_tags(&args, store),
        ..CheckOptions::default()
    };
    let report = image.check_report(&options)?;
    if args.json {
        print_json(&report)?;
    } else {
        let width = report
            .assessments
            .iter()
            .map(|a| a.name.len())
            .max()
            .unwrap_or(0)
            .max("ASSESSMENT".len());
        let mut out = format!("{:<width$}  RESULT   REASON\n", "ASSESSMENT");
        for a in &report.assessments {
            out.push_str(&format!(
                "{:<width$}  {:<7}  {}\n",
                a.name,
                a.result.table_word(),
                a.reason
            ));
        }
        out.push_str(&format!(
            "{:<width$}  {:<7}  {}\n",
            "health_index", report.health_index.grade, report.health_index.reason
        ));
        if let Some(v) = report
            .verification
            .as_ref()
            .filter(|v| !v.failures.is_empty())
        {
            out.push_str(&format!(
                "\n{} of {} packaged files differ from their package database:\n",
                v.failures.len(),
                v.files
            ));
            for f in &v.failures {
                out.push_str(&format!("{}  ({})\n", f.line(), f.package));
            }
        }
        print_raw(out.as_bytes())?;
    }
    let failed: Vec<&str> = report
        .assessments
        .iter()
        .filter(|a| a.result == Status::Fail)
        .map(|a| a.name.as_str())
        .collect();
    let unknown = if report.unknown > 0 {
        format!(" ({} unknown)", report.unknown)
    } else {
        String::new()
    };
    if !failed.is_empty() {
        return Err(Findings(format!(
            "{} fails {} of {} assessments{unknown}: {}",
            args.target.image,
            failed.len(),
            report.assessments.len(),
            failed.join(", ")
        ))
        .into());
    }
    if report.unknown > 0 && !args.json {
        eprintln!(
            "{}: no assessment fails; {} of {} could not be decided (unknown)",
            args.target.image,
            report.unknown,
            report.assessments.len()
        );
    }
    Ok(())
}

/// For a `docker://` image referenced without a tag or as `latest`: the repository's tags (for
/// `good_tags`), or `None` when they cannot be listed (the assessment then says it had no list).
fn repository_tags(args: &Args, store: &StoreArgs) -> Option<Vec<String>> {
    let rest = args.target.image.strip_prefix("docker://")?;
    if strata_scan::reference_tag(&args.target.image).is_some_and(|t| t != "latest") {
        return None;
    }
    let reference = strata_oci::ImageReference::parse(rest).ok()?;
    let options = args.target.options(store).ok()?;
    strata_source::list_tags(&format!("docker://{}", reference.name()), &options)
        .ok()
        .map(|t| t.tags)
}
