//! `strata layers IMAGE` (or `--files`): what each layer of an image holds, and the bytes later layers waste by
//! overwriting or deleting its files; then dive's figures, and with `--ci` dive's CI rules.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use strata_scan::dive::{CiRules, DiveAnalysis, RuleResult, RuleStatus};
use strata_scan::layers::LayerReport;

use crate::args::image::{open_scan, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{Findings, human_bytes, print_json, print_raw};

/// dive's CI gate, by dive's names.
#[derive(clap::Args)]
pub struct CiArgs {
    /// Judge the image by dive's CI rules (as `dive --ci` or `CI=true dive`): exit 1 when one fails.
    /// The rules come from --ci-config (dive's `.dive-ci` in the current directory by default, when it
    /// is there), then these flags.
    #[arg(long, requires = "image")]
    ci: bool,
    /// The YAML file of dive's CI rules (`rules: {lowestEfficiency, highestWastedBytes,
    /// highestUserWastedPercent}`) [default: .dive-ci when it exists].
    #[arg(long, value_name = "FILE", requires = "ci")]
    ci_config: Option<PathBuf>,
    /// The lowest efficiency score allowed, 0–1, or `disabled` [dive's default: 0.9].
    #[arg(long = "lowestEfficiency", value_name = "RATIO", requires = "ci")]
    lowest_efficiency: Option<String>,
    /// The most wasted bytes allowed (`20MB`, `1GiB`, …), or `disabled` [dive's default: disabled].
    #[arg(long = "highestWastedBytes", value_name = "BYTES", requires = "ci")]
    highest_wasted_bytes: Option<String>,
    /// The highest share, 0–1, of the bytes of the layers above the first that may be wasted, or
    /// `disabled` [dive's default: 0.1].
    #[arg(
        long = "highestUserWastedPercent",
        value_name = "RATIO",
        requires = "ci"
    )]
    highest_user_wasted_percent: Option<String>,
}

impl CiArgs {
    /// The rules: dive's defaults, then the config file, then the flags given (viper's order).
    fn rules(&self) -> anyhow::Result<CiRules> {
        let mut rules = CiRules::default();
        let config = match &self.ci_config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(".dive-ci")).filter(|p| p.exists()),
        };
        if let Some(path) = config {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            rules
                .read_yaml(&text)
                .with_context(|| format!("{}", path.display()))?;
        }
        for (rule, value) in [
            ("lowestEfficiency", &self.lowest_efficiency),
            ("highestWastedBytes", &self.highest_wasted_bytes),
            (
                "highestUserWastedPercent",
                &self.highest_user_wasted_percent,
            ),
        ] {
            if let Some(value) = value {
                rules.set(rule, value)?;
            }
        }
        Ok(rules)
    }
}

#[derive(Serialize)]
struct Report<'a> {
    image: &'a str,
    #[serde(flatten)]
    report: &'a LayerReport,
    dive: &'a DiveAnalysis,
    #[serde(skip_serializing_if = "Option::is_none")]
    ci: Option<Ci<'a>>,
}

/// The CI verdict in JSON.
#[derive(Serialize)]
struct Ci<'a> {
    passed: bool,
    rules: &'a [RuleResult],
}

/// Prints the per-layer report of `image`: a table, or with `json` the object documented in docs/FORMAT.md
/// ("JSON outputs": `{"image", "layers": [{"index", "digest", "entries", "added", "modified", "removed",
/// "bytes", "wasted_bytes"}], "total_bytes", "wasted_bytes", "efficiency"}`).
///
/// With `--ci`, dive's rules are judged too, and a failed rule is an error (exit 1) after the report.
pub fn run_files(
    image: &str,
    json: bool,
    ci: &CiArgs,
    platform: &PlatformArgs,
    registry: &RegistryArgs,
    store: &StoreArgs,
) -> anyhow::Result<()> {
    let rules = ci.ci.then(|| ci.rules()).transpose()?;
    let scan = open_scan(image, platform, registry, &source_options(registry, store)?)?;
    let report = scan.layer_report()?;
    let dive = scan.dive_analysis()?;
    let results = rules.map(|r| r.evaluate(&dive));
    let failed = results.as_ref().map_or(0, |r| {
        r.iter().filter(|r| r.status == RuleStatus::Fail).count()
    });
    if json {
        print_json(&Report {
            image,
            report: &report,
            dive: &dive,
            ci: results.as_deref().map(|rules| Ci {
                passed: failed == 0,
                rules,
            }),
        })?;
    } else {
        let mut out = table(&report);
        out.push_str(&dive_lines(&dive));
        if let Some(results) = &results {
            out.push_str(&ci_lines(results));
        }
        print_raw(out.as_bytes())?;
    }
    if failed > 0 {
        return Err(Findings(format!("{failed} of dive's CI rules failed")).into());
    }
    Ok(())
}

/// dive's figures, as `dive --ci` prints them.
fn dive_lines(dive: &DiveAnalysis) -> String {
    format!(
        "dive: efficiency {:.4} %, wasted {} bytes ({}), user wasted {:.4} %\n",
        dive.efficiency_score * 100.0,
        dive.inefficient_bytes,
        human_bytes(dive.inefficient_bytes),
        dive.user_wasted_percent * 100.0
    )
}

/// Each rule's outcome, then the tally.
fn ci_lines(results: &[RuleResult]) -> String {
    let mut out = String::new();
    for r in results {
        let status = match r.status {
            RuleStatus::Pass => "PASS",
            RuleStatus::Fail => "FAIL",
            RuleStatus::Skip => "SKIP",
        };
        if r.message.is_empty() || r.status == RuleStatus::Skip {
            out.push_str(&format!("  {status}: {}\n", r.rule));
        } else {
            out.push_str(&format!("  {status}: {}: {}\n", r.rule, r.message));
        }
    }
    let count = |s| results.iter().filter(|r| r.status == s).count();
    out.push_str(&format!(
        "Result: {} [Total:{}] [Passed:{}] [Failed:{}] [Skipped:{}]\n",
        if count(RuleStatus::Fail) > 0 {
            "FAIL"
        } else {
            "PASS"
        },
        results.len(),
        count(RuleStatus::Pass),
        count(RuleStatus::Fail),
        count(RuleStatus::Skip)
    ));
    out
}

/// The text form: one row per layer, then the totals and the efficiency.
fn table(report: &LayerReport) -> String {
    let mut out = format!(
        "{:<5}  {:<19}  {:>7}  {:>7}  {:>8}  {:>7}  {:>10}  {:>10}\n",
        "LAYER", "DIGEST", "ENTRIES", "ADDED", "MODIFIED", "REMOVED", "BYTES", "WASTED"
    );
    for l in &report.layers {
        let digest: String = l.digest.chars().take(19).collect();
        out.push_str(&format!(
            "{:<5}  {:<19}  {:>7}  {:>7}  {:>8}  {:>7}  {:>10}  {:>10}\n",
            l.index,
            digest,
            l.entries,
            l.added,
            l.modified,
            l.removed,
            human_bytes(l.bytes),
            human_bytes(l.wasted_bytes)
        ));
    }
    out.push_str(&format!(
        "total {}, wasted {}: efficiency {:.2} %\n",
        human_bytes(report.total_bytes),
        human_bytes(report.wasted_bytes),
        report.efficiency * 100.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use strata_scan::layers::LayerFiles;

    use super::*;

    #[test]
    fn renders_a_table() {
        let report = LayerReport {
            layers: vec![LayerFiles {
                index: 0,
                digest: "sha256:0123456789abcdef0123".into(),
                entries: 5,
                added: 4,
                modified: 1,
                removed: 2,
                bytes: 2048,
                wasted_bytes: 1024,
            }],
            total_bytes: 2048,
            wasted_bytes: 1024,
            efficiency: 0.5,
        };
        assert_eq!(
            table(&report),
            "LAYER  DIGEST               ENTRIES    ADDED  MODIFIED  REMOVED       BYTES      WASTED\n\
             0      sha256:0123456789ab        5        4         1        2     2.0 KiB     1.0 KiB\n\
             total 2.0 KiB, wasted 1.0 KiB: efficiency 50.00 %\n"
        );
    }
}
