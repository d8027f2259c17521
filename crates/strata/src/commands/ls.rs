//! `strata ls`: list a directory of an image, as `ls` (and `ls -l`) would inside it.

use std::collections::HashMap;

use anyhow::bail;
use strata_scan::{FileEntry, Kind, MAX_DATABASE_SIZE, ScanImage};

use crate::args::{ImageArgs, StoreArgs};
use crate::output::print_raw;
use crate::render::{format_time, mode_string};

/// Arguments of `strata ls`.
#[derive(clap::Args)]
pub struct Args {
    /// Long listing: mode, owner, group, size (device numbers for devices), mtime (UTC), name and symlink
    /// target. Owners are named from the image's /etc/passwd and /etc/group when listed there.
    #[arg(short = 'l', long = "long")]
    long: bool,
    #[command(flatten)]
    target: ImageArgs,
    /// The directory (or file) inside the image. Symlinks in its directories are followed inside the
    /// image; a symlink to a directory is listed as a directory unless -l is given (or PATH ends in /).
    #[arg(default_value = "/")]
    path: String,
}

/// Runs `strata ls`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
    let Some(mut entry) = image.resolve(&args.path, false)? else {
        bail!("{}: no such file or directory in the image", args.path);
    };
    if entry.kind == Kind::Symlink
        && !args.long
        && let Some(target) = image.resolve(&args.path, true)?
        && target.kind == Kind::Dir
    {
        entry = target;
    }
    let listed = if entry.kind == Kind::Dir {
        image.read_dir(&entry.path)?
    } else {
        // A single entry is shown by the name it was given.
        let mut e = entry.clone();
        e.path = args.path.clone();
        vec![e]
    };
    let single = entry.kind != Kind::Dir;
    let name_of = |e: &FileEntry| -> String {
        if single {
            e.path.clone()
        } else {
            e.name().to_owned()
        }
    };
    let mut out = String::new();
    if !args.long {
        for e in &listed {
            out.push_str(&name_of(e));
            out.push('\n');
        }
        return print_raw(out.as_bytes());
    }
    let names = Names::of(&image)?;
    let rows: Vec<[String; 6]> = listed
        .iter()
        .map(|e| {
            let size = match e.kind {
                Kind::Char | Kind::Block => format!("{}, {}", e.device.0, e.device.1),
                _ => e.size.to_string(),
            };
            let mut name = name_of(e);
            if e.kind == Kind::Symlink {
                name.push_str(" -> ");
                name.push_str(&e.link);
            }
            [
                mode_string(e.kind, e.mode),
                names.user(e.uid),
                names.group(e.gid),
                size,
                format_time(e.mtime),
                name,
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w1, w2, w3) = (width(1), width(2), width(3));
    for [mode, user, group, size, time, name] in &rows {
        out.push_str(&format!(
            "{mode} {user:<w1$} {group:<w2$} {size:>w3$} {time} {name}\n"
        ));
    }
    print_raw(out.as_bytes())
}

/// User and group names from the image's own /etc/passwd and /etc/group.
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn of(image: &ScanImage) -> anyhow::Result<Names> {
        let table = |path: &str| -> anyhow::Result<HashMap<u32, String>> {
            let mut map = HashMap::new();
            // Names are a nicety: a missing or unreadable file leaves the numbers.
            let Ok(Some(bytes)) = image.read_resolved(path, MAX_DATABASE_SIZE) else {
                return Ok(map);
            };
            for line in String::from_utf8_lossy(&bytes).lines() {
                let mut fields = line.split(':');
                if let (Some(name), Some(_), Some(id)) =
                    (fields.next(), fields.next(), fields.next())
                    && let Ok(id) = id.parse::<u32>()
                    && !name.is_empty()
                {
                    map.entry(id).or_insert_with(|| name.to_owned());
                }
            }
            Ok(map)
        };
        Ok(Names {
            users: table("/etc/passwd")?,
            groups: table("/etc/group")?,
        })
    }

    fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
    }
}
