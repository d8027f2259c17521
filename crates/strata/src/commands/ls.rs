//! `strata ls`: list a directory of an image, as `ls` (and `ls -l`) would inside it.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

use strata_scan::{FileEntry, Kind, MAX_DATABASE_SIZE, Resolved, ScanImage};

use crate::args::{ImageArgs, StoreArgs};
use crate::names::{self, Style};
use crate::output::print_raw;
use crate::render::{format_time, mode_string};

/// Arguments of `strata ls`.
#[derive(clap::Args)]
pub struct Args {
    /// Long listing: mode, link count, owner, group, size (device numbers for devices, the target's length
    /// for symlinks), mtime (UTC), name and symlink target. Owners are named from the image's /etc/passwd
    /// and /etc/group when listed there.
    #[arg(short = 'l', long = "long")]
    long: bool,
    /// Print names with C-style escapes for non-printable characters (`\351`, `\n`) and spaces (`\ `), as
    /// `ls -b`. Without it, names go to a pipe as they are, and on a terminal quoted as `ls` quotes them
    /// (`'caf'$'\351''.txt'`).
    #[arg(short = 'b', long = "escape", overrides_with = "literal")]
    escape: bool,
    /// Print names as they are, even on a terminal (`ls -N`).
    #[arg(short = 'N', long = "literal", overrides_with = "escape")]
    literal: bool,
    #[command(flatten)]
    target: ImageArgs,
    /// The directory (or file) inside the image; any bytes (names need not be UTF-8). Symlinks in its
    /// directories are followed inside the image; a symlink to a directory is listed as a directory unless
    /// -l is given (or PATH ends in /).
    #[arg(default_value = "/")]
    path: PathBuf,
}

/// Runs `strata ls`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let image = args.target.open_scan(store)?;
    let path = args.path.as_os_str().as_bytes();
    let mut entry = match image.lookup(path, false)? {
        Resolved::Entry(e) => e,
        other => return Err(names::lookup_error(path, &other)),
    };
    if entry.kind == Kind::Symlink
        && !args.long
        && let Some(target) = image.resolve(path, true)?
        && target.kind == Kind::Dir
    {
        entry = target;
    }
    let single = entry.kind != Kind::Dir;
    let listed = if single {
        vec![entry]
    } else {
        image.read_dir(&entry.path)?
    };
    // A single entry is shown by the name it was given, a directory's by their names.
    let name_of = |e: &FileEntry| -> Vec<u8> {
        if single {
            path.to_vec()
        } else {
            e.name().to_vec()
        }
    };
    let style = if args.escape {
        Style::Escape
    } else if args.literal {
        Style::Literal
    } else {
        Style::for_stdout(Style::ShellEscape)
    };
    let mut out = Vec::new();
    if !args.long {
        for e in &listed {
            out.extend_from_slice(&style.quote(&name_of(e)));
            out.push(b'\n');
        }
        return print_raw(&out);
    }
    let names = Names::of(&image)?;
    let quoted: Vec<(Vec<u8>, bool)> = listed
        .iter()
        .map(|e| {
            let name = name_of(e);
            let q = style.quote(&name).into_owned();
            let changed = q != name;
            (q, changed)
        })
        .collect();
    // As GNU ls -l: when some names are quoted, the others are indented by one space to line up with them.
    let pad = style == Style::ShellEscape && quoted.iter().any(|(_, changed)| *changed);
    let mut rows: Vec<[String; 6]> = Vec::with_capacity(listed.len());
    for e in &listed {
        let size = match e.kind {
            Kind::Char | Kind::Block => format!("{}, {}", e.device.0, e.device.1),
            // As ls: a symlink's size is its target's length.
            Kind::Symlink => e.link.len().to_string(),
            _ => e.size.to_string(),
        };
        rows.push([
            mode_string(e.kind, e.mode),
            image.link_count(e)?.to_string(),
            names.user(e.uid),
            names.group(e.gid),
            size,
            format_time(e.mtime),
        ]);
    }
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w1, w2, w3, w4) = (width(1), width(2), width(3), width(4));
    for ((row, e), (name, changed)) in rows.iter().zip(&listed).zip(&quoted) {
        let [mode, links, user, group, size, time] = row;
        out.extend_from_slice(
            format!("{mode} {links:>w1$} {user:<w2$} {group:<w3$} {size:>w4$} {time} ").as_bytes(),
        );
        if pad && !changed {
            out.push(b' ');
        }
        out.extend_from_slice(name);
        if e.kind == Kind::Symlink {
            out.extend_from_slice(b" -> ");
            out.extend_from_slice(&style.quote(&e.link));
        }
        out.push(b'\n');
    }
    print_raw(&out)
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
