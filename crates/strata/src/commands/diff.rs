//! `strata diff`: the files added, removed and changed from one image to another.

use serde::Serialize;
use strata_scan::diff::{Change, ChangeKind, Field, diff};
use strata_scan::{FileEntry, Kind};

use crate::args::image::{open_scan, source_options};
use crate::args::{PlatformArgs, RegistryArgs, StoreArgs};
use crate::output::{print_json, print_raw};

/// Arguments of `strata diff`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: `{"image_a", "image_b", "changes": [{"change", "path", "fields", "before", "after"}]}`.
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
fn describe(field: Field, a: &FileEntry, b: &FileEntry) -> String {
    match field {
        Field::Kind => format!("kind {}->{}", kind_name(a.kind), kind_name(b.kind)),
        Field::Mode => format!("mode {:04o}->{:04o}", a.mode & 0o7777, b.mode & 0o7777),
        Field::Owner => format!("owner {}:{}->{}:{}", a.uid, a.gid, b.uid, b.gid),
        Field::Size => format!("size {}->{}", a.size, b.size),
        Field::Content => "content".to_owned(),
        Field::Link => format!("link {}->{}", a.link, b.link),
        Field::Device => format!(
            "device {},{}->{},{}",
            a.device.0, a.device.1, b.device.0, b.device.1
        ),
    }
}

/// Runs `strata diff`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let options = source_options(&args.registry, store)?;
    let a = open_scan(&args.image_a, &args.platform, &options)?;
    let b = open_scan(&args.image_b, &args.platform, &options)?;
    let changes = diff(&a, &b)?;
    if args.json {
        return print_json(&Report {
            image_a: &args.image_a,
            image_b: &args.image_b,
            changes: &changes,
        });
    }
    let mut out = String::new();
    for c in &changes {
        out.push(c.change.letter());
        out.push(' ');
        out.push_str(&c.path);
        if let (ChangeKind::Changed, Some(x), Some(y)) = (c.change, &c.before, &c.after) {
            let details: Vec<String> = c.fields.iter().map(|f| describe(*f, x, y)).collect();
            out.push_str(": ");
            out.push_str(&details.join(", "));
        }
        out.push('\n');
    }
    print_raw(out.as_bytes())
}
