//! `strata diff`: the files added, removed and changed from one image to another.

use serde::Serialize;
use strata_scan::diff::{Change, ChangeKind, Field, diff};
use strata_scan::{FileEntry, Kind};

use crate::args::image::{open_scan, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::names::Style;
use crate::output::{Findings, print_json, print_raw};

/// Arguments of `strata diff`.
#[derive(clap::Args)]
#[command(after_help = "\
One line per difference, in walk order (a directory before its children):
  A PATH                      added: only in IMAGE_B
  D PATH                      deleted: only in IMAGE_A
  C PATH: FIELD OLD->NEW, ... changed: kind, mode, owner, size, content, link, device or, for a
                              directory (the root / included), mtime
Exit status: 0 when the images' trees are the same, 1 when they differ (as diff(1)), 2 on error.")]
pub struct Args {
    /// Print JSON: `{"image_a", "image_b", "changes": [{"change", "path", "fields", "before", "after"}]}`
    /// (docs/FORMAT.md: modes are octal strings, names that are not UTF-8 have `path_raw`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The first image (see `strata inspect --help` for the transports).
    image_a: String,
    /// The second image.
    image_b: String,
}

#[derive(Serialize)]
struct Report<'a> {
    image_a: &'a str,
    image_b: &'a str,
    changes: &'a [Change],
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Char => "char",
        Kind::Block => "block",
        Kind::Fifo => "fifo",
    }
}

/// `mode 0644->0755`, `content`, …: what a changed entry's field was and became.
fn describe(field: Field, a: &FileEntry, b: &FileEntry, style: Style) -> Vec<u8> {
    let text = match field {
        Field::Kind => format!("kind {}->{}", kind_name(a.kind), kind_name(b.kind)),
        Field::Mode => format!("mode {:04o}->{:04o}", a.mode & 0o7777, b.mode & 0o7777),
        Field::Owner => format!("owner {}:{}->{}:{}", a.uid, a.gid, b.uid, b.gid),
        Field::Size => format!("size {}->{}", a.size, b.size),
        Field::Content => "content".to_owned(),
        Field::Link => {
            let mut out = b"link ".to_vec();
            out.extend_from_slice(&style.quote(&a.link));
            out.extend_from_slice(b"->");
            out.extend_from_slice(&style.quote(&b.link));
            return out;
        }
        Field::Device => format!(
            "device {},{}->{},{}",
            a.device.0, a.device.1, b.device.0, b.device.1
        ),
        Field::Mtime => format!(
            "mtime {}->{}",
            crate::render::format_time(a.mtime),
            crate::render::format_time(b.mtime)
        ),
    };
    text.into_bytes()
}

/// Runs `strata diff`: the changes, then exit status 1 when there are any (as diff(1)).
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let options = source_options(&args.registry, store)?;
    let a = open_scan(&args.image_a, &args.platform, &args.registry, &options)?;
    let b = open_scan(&args.image_b, &args.platform, &args.registry, &options)?;
    let changes = diff(&a, &b)?;
    if args.json {
        print_json(&Report {
            image_a: &args.image_a,
            image_b: &args.image_b,
            changes: &changes,
        })?;
    } else {
        let style = Style::for_stdout(Style::ShellEscape);
        let mut out = Vec::new();
        for c in &changes {
            out.push(c.change.letter() as u8);
            out.push(b' ');
            out.extend_from_slice(&style.quote(&c.path));
            if let (ChangeKind::Changed, Some(x), Some(y)) = (c.change, &c.before, &c.after) {
                out.extend_from_slice(b": ");
                for (i, f) in c.fields.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(&describe(*f, x, y, style));
                }
            }
            out.push(b'\n');
        }
        print_raw(&out)?;
    }
    if changes.is_empty() {
        return Ok(());
    }
    Err(Findings(format!(
        "{} and {} differ: {} change(s)",
        args.image_a,
        args.image_b,
        changes.len()
    ))
    .into())
}
