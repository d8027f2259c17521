//! `strata ls`: list a directory of an image, as `ls` (and `ls -l`) would inside it. Also the opener the
//! scanning commands (`ls`, `cat`, `find`, `diff`, `packages`, `export`, `check`, `layers --files`) share.

use std::collections::HashMap;

use anyhow::bail;
use strata_scan::{FileEntry, Kind, MAX_DATABASE_SIZE, ScanImage};

use super::platform::PlatformArgs;
use super::registry_args::RegistryArgs;
use crate::output::print_raw;

/// Arguments of `strata ls`.
#[derive(clap::Args)]
pub struct Args {
    /// Long listing: mode, owner, group, size (device numbers for devices), mtime (UTC), name and symlink
    /// target. Owners are named from the image's /etc/passwd and /etc/group when listed there.
    #[arg(short = 'l', long = "long")]
    long: bool,
    #[command(flatten)]
    target: ScanArgs,
    /// The directory (or file) inside the image. Symlinks in its directories are followed inside the
    /// image; a symlink to a directory is listed as a directory unless -l is given (or PATH ends in /).
    #[arg(default_value = "/")]
    path: String,
}

/// The image a scanning command reads, with the flags that choose and reach it.
#[derive(clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image (see `strata inspect --help` for the transports).
    pub image: String,
}

impl ScanArgs {
    /// Opens the image for scanning ([`open_scan`]).
    pub fn open(&self) -> anyhow::Result<ScanImage> {
        open_scan(&self.image, &self.platform, Some(&self.registry))
    }
}

/// Opens `image` for scanning, nothing unpacked: a store image (`containers-storage:`) through its layers'
/// `diff` directories and indexes, any other image with every layer read, verified and indexed in memory.
pub fn open_scan(
    image: &str,
    platform: &PlatformArgs,
    registry: Option<&RegistryArgs>,
) -> anyhow::Result<ScanImage> {
    if super::store::is_store_image(image) {
        let source = super::store::open_store_image(image)?;
        return Ok(ScanImage::from_view(
            image,
            source.view(&platform.platform())?,
        ));
    }
    super::names::check_transport(image)?;
    let options = match registry {
        Some(r) => r.options()?,
        None => strata_source::SourceOptions::default(),
    };
    Ok(ScanImage::open_with(image, &options, &platform.platform())?)
}

/// Runs `strata ls`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let image = args.target.open()?;
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

/// `drwxr-xr-x`, `-rwsr-xr-x`, `drwxrwxrwt`: the kind letter, then rwx for owner, group and others with
/// setuid, setgid and sticky shown as `ls` shows them (`s`/`S`, `t`/`T`).
pub fn mode_string(kind: Kind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind.ls_char());
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: bool, set: bool, on: char, off: char| match (exec, set) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'));
    s
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM` in UTC (`ls --time-style=long-iso`).
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_string(Kind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(Kind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(Kind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(Kind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(Kind::Dir, 0o1776), "drwxrwxrwT");
        assert_eq!(mode_string(Kind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(Kind::Char, 0o666), "crw-rw-rw-");
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00");
        assert_eq!(format_time(-1), "1969-12-31 23:59");
    }
}
