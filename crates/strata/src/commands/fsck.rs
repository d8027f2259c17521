//! `strata fsck`: check the store's consistency, and repair it.

use strata_store::{FsckOptions, FsckReport, Repair};

use crate::args::StoreArgs;
use crate::output::{Findings, human_bytes, print_json, print_raw};

/// Arguments of `strata fsck`.
#[derive(clap::Args)]
pub struct Args {
    /// Fix what can be fixed: lost links and directories, stale mount records, leftovers; broken layers are
    /// removed with the layers built on them and the images that need them (pull those again). Fixes only
    /// what this run finds: with --content, also layers whose contents are damaged.
    #[arg(long)]
    repair: bool,
    /// Also rebuild every layer's tar from its tar-split and files and check it against the diff ID.
    #[arg(long)]
    content: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

/// `1 layer`, `2 layers`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The first 12 characters of an ID.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// One repair, for people: `remove image 0123456789ab (docker.io/x:1)`; in the past tense once done.
fn describe(r: &Repair) -> String {
    let (now, done) = match r.action.as_str() {
        "remove image" => ("remove image", "removed image"),
        "remove layer" => ("remove layer", "removed layer"),
        "recreate link" => (
            "recreate the short link of layer",
            "recreated the short link of layer",
        ),
        "rewrite lower" => (
            "rewrite the lower file of layer",
            "rewrote the lower file of layer",
        ),
        "create directory" => ("create", "created"),
        "drop big-data item" => (
            "drop from its record: image",
            "dropped from its record: image",
        ),
        "drop mount record" => ("drop the mount record of", "dropped the mount record of"),
        "unmount" => ("unmount", "unmounted"),
        "remove leftover" => ("remove", "removed"),
        other => (other, other),
    };
    let verb = if r.done { done } else { now };
    match r.action.as_str() {
        "remove image" => {
            let names = if r.names.is_empty() {
                "no name".to_owned()
            } else {
                r.names.join(", ")
            };
            let again = if r.done {
                ""
            } else {
                "; pull it again afterwards"
            };
            format!("{verb} {} ({names}){again}", short(&r.subject))
        }
        "remove layer" | "recreate link" | "rewrite lower" => {
            format!("{verb} {}", short(&r.subject))
        }
        _ => format!("{verb} {}", r.subject),
    }
}

/// The command that repairs what this run found: the same checks, with `--repair`.
fn repair_command(args: &Args) -> String {
    format!(
        "strata fsck{} --repair",
        if args.content { " --content" } else { "" }
    )
}

/// Runs `strata fsck`. Exits 1 (findings) if a problem is left unrepaired.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let report = store.open()?.fsck(FsckOptions {
        repair: args.repair,
        content: args.content,
    })?;
    if args.json {
        print_json(&report)?;
    } else {
        print_raw(text(&args, &report).as_bytes())?;
    }
    let left: Vec<_> = report.problems.iter().filter(|p| !p.repaired).collect();
    if left.is_empty() {
        return Ok(());
    }
    let fixable = left.iter().filter(|p| p.repairable).count();
    let unfixable = left.len() - fixable;
    let cannot = if unfixable > 0 {
        format!("; {unfixable} of them strata cannot fix")
    } else {
        String::new()
    };
    if args.repair || fixable == 0 {
        return Err(Findings(format!(
            "the store has {} left{cannot}",
            count(left.len(), "problem")
        ))
        .into());
    }
    let which = if unfixable == 0 {
        if fixable == 1 {
            "fixes it"
        } else {
            "fixes them"
        }
        .to_owned()
    } else {
        format!("fixes {fixable}")
    };
    let listed = if args.json {
        "(its `repairs`)"
    } else {
        "as listed above"
    };
    Err(Findings(format!(
        "the store has {}: `{}` {which}, {listed}{cannot}",
        count(left.len(), "problem"),
        repair_command(&args)
    ))
    .into())
}

/// The report as text: what was cleaned up before the check, the problems, what the repair did or would
/// do, and a summary line.
fn text(args: &Args, report: &FsckReport) -> String {
    let mut out = String::new();
    for x in &report.cleaned {
        out.push_str(&format!(
            "cleaned up before the check: {} {} ({}), left by an interrupted operation\n",
            x.what,
            x.path.display(),
            human_bytes(x.bytes)
        ));
    }
    for p in &report.problems {
        out.push_str(&format!(
            "{}{} {}: {}\n",
            if p.repaired { "repaired: " } else { "" },
            p.kind,
            p.subject,
            p.detail
        ));
    }
    if args.repair {
        for r in &report.repairs {
            out.push_str(&format!("{}\n", describe(r)));
        }
    }
    let contents = if args.content {
        let checked = count(report.content_checked, "layer");
        match report.content_failed {
            0 => format!(", contents of {checked} verified"),
            failed => format!(
                ", contents of {checked} checked: {} intact, {failed} damaged",
                report.content_checked.saturating_sub(failed)
            ),
        }
    } else {
        "; layer contents not verified (--content does)".to_owned()
    };
    let problems = match report.problems.len() {
        0 => "no problems".to_owned(),
        n => {
            let repaired = report.problems.iter().filter(|p| p.repaired).count();
            if repaired == n {
                format!("{}, repaired", count(n, "problem"))
            } else if repaired > 0 {
                format!("{}, {repaired} repaired", count(n, "problem"))
            } else {
                count(n, "problem")
            }
        }
    };
    out.push_str(&format!(
        "{}, {} checked{contents}; {problems}\n",
        count(report.layers, "layer"),
        count(report.images, "image"),
    ));
    if !args.repair && !report.repairs.is_empty() {
        out.push_str(&format!("`{}` would:\n", repair_command(args)));
        for r in &report.repairs {
            out.push_str(&format!("  {}\n", describe(r)));
        }
    }
    out
}
