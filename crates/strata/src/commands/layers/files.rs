//! `strata layers IMAGE` (or `--files`): what each layer of an image holds, and the bytes later layers waste by
//! overwriting or deleting its files (dive's efficiency).

use serde::Serialize;
use strata_scan::layers::LayerReport;

use crate::args::image::{open_scan, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{human_bytes, print_json, print_raw};

#[derive(Serialize)]
struct Report<'a> {
    image: &'a str,
    #[serde(flatten)]
    report: &'a LayerReport,
}

/// Prints the per-layer report of `image`: a table, or with `json` the object documented in docs/FORMAT.md
/// ("JSON outputs": `{"image", "layers": [{"index", "digest", "entries", "added", "modified", "removed",
/// "bytes", "wasted_bytes"}], "total_bytes", "wasted_bytes", "efficiency"}`).
pub fn run_files(
    image: &str,
    json: bool,
    platform: &PlatformArgs,
    registry: &RegistryArgs,
    store: &StoreArgs,
) -> anyhow::Result<()> {
    let scan = open_scan(image, platform, registry, &source_options(registry, store)?)?;
    let report = scan.layer_report()?;
    if json {
        return print_json(&Report {
            image,
            report: &report,
        });
    }
    print_raw(table(&report).as_bytes())
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
