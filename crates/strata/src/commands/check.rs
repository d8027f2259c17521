//! `strata check`: the container certification assessments by the names Red Hat's certification scan
//! reports (docs/CHECKS.md), each `pass`, `FAIL` or `unknown` with its reason, and the verification of every
//! packaged file.

use anyhow::Context as _;
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
    /// An offline advisory feed in the OSV format: a directory of OSV JSON files, or the zip an OSV
    /// ecosystem export is (`all.zip`). It decides free_of_critical_vulnerabilities and the Container
    /// Health Index, and lists every finding; without it both are unknown.
    #[arg(long, value_name = "PATH")]
    advisories: Option<std::path::PathBuf>,
    /// The date advisories' ages are counted to, `YYYY-MM-DD` [default: today, UTC]: makes a grade
    /// reproducible.
    #[arg(long, value_name = "DATE", requires = "advisories")]
    now: Option<String>,
    #[command(flatten)]
    target: ImageArgs,
}

/// Runs `strata check`: the table (or JSON) on standard output, then exit status 1 when any assessment
/// fails. An assessment that cannot be decided is `unknown`: not a failure, but counted and said.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let feed = args
        .advisories
        .as_deref()
        .map(|path| {
            strata_advisory::Feed::open(path)
                .with_context(|| format!("reading the advisory feed {}", path.display()))
        })
        .transpose()?;
    let now = match &args.now {
        Some(date) => {
            strata_advisory::Date::parse(date).with_context(|| format!("--now {date:?}"))?
        }
        None => today()?,
    };
    let image = args.target.open_scan(store)?;
    let advisories = feed
        .as_ref()
        .map(|feed| image.advisory_assessment(feed, now))
        .transpose()?;
    if let Some(feed) = &feed
        && !feed.warnings().is_empty()
    {
        let first = &feed.warnings()[0];
        eprintln!(
            "strata: {} advisory record(s) of the feed were skipped; the first: {}{}: {}",
            feed.warnings().len(),
            first.file,
            first
                .advisory
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default(),
            first.message
        );
    }
    let options = CheckOptions {
        verify_packages: !args.no_verify_packages,
        repository_tags: repository_tags(&args, store),
        advisories,
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
        if let Some(a) = report
            .advisories
            .as_ref()
            .filter(|a| !a.findings.is_empty())
        {
            out.push_str(&format!(
                "\n{} advisory finding(s) as of {}:\n",
                a.findings.len(),
                a.now
            ));
            for f in &a.findings {
                out.push_str(&format!(
                    "{} {} -> {}  {}  {:?}  published {}  ({} days)\n",
                    f.package,
                    f.installed,
                    f.fixed.as_deref().unwrap_or("(no fix)"),
                    f.advisory,
                    f.severity,
                    f.published
                        .map_or_else(|| "?".to_owned(), |d| d.to_string()),
                    f.age_days.map_or_else(|| "?".to_owned(), |d| d.to_string()),
                ));
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

/// Today's date in UTC.
fn today() -> anyhow::Result<strata_advisory::Date> {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let (y, m, d) = strata_oci::civil::civil_from_days(i64::try_from(days).unwrap_or(0));
    strata_advisory::Date::from_ymd(y, m, d).context("today's date")
}
