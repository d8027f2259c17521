//! `strata check`: the container certification assessments, each passing or failing with its reason.

use crate::args::{ImageArgs, StoreArgs};
use crate::output::{Findings, print_json, print_raw};

/// Arguments of `strata check`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: {"image", "passed", "assessments": [{"name", "passed", "reason", "skipped"}],
    /// "distribution"} (docs/FORMAT.md, "JSON outputs").
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: ImageArgs,
}

/// Runs `strata check`: the table (or JSON) on standard output, then exit status 1 when any assessment
/// fails. An assessment that cannot be decided (no package database to list) is SKIP, not a failure.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
    let report = image.check_report()?;
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
        let mut out = format!("{:<width$}  RESULT  REASON\n", "ASSESSMENT");
        for a in &report.assessments {
            out.push_str(&format!(
                "{:<width$}  {:<6}  {}\n",
                a.name,
                match (a.skipped, a.passed) {
                    (true, _) => "SKIP",
                    (false, true) => "PASS",
                    (false, false) => "FAIL",
                },
                a.reason
            ));
        }
        print_raw(out.as_bytes())?;
    }
    let failed: Vec<&str> = report
        .assessments
        .iter()
        .filter(|a| !a.passed)
        .map(|a| a.name.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(Findings(format!(
            "{} fails {} of {} assessments: {}",
            args.target.image,
            failed.len(),
            report.assessments.len(),
            failed.join(", ")
        ))
        .into());
    }
    Ok(())
}
