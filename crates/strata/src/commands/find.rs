//! `strata find`: the entries of an image that pass `find`'s `-name`, `-type` and `-perm` tests.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

use anyhow::bail;
use strata_scan::find::{Glob, PermFilter};
use strata_scan::{FileEntry, Kind, Resolved};

use crate::args::{ImageArgs, StoreArgs};
use crate::names::{self, Style};
use crate::output::print_raw;

/// Arguments of `strata find`.
#[derive(clap::Args)]
pub struct Args {
    /// Only entries whose name (last component) matches this shell pattern (`*`, `?`, `[...]`), as
    /// `find -name`; any bytes (a byte that is not UTF-8 is one character).
    #[arg(long, value_name = "GLOB")]
    name: Option<OsString>,
    /// Only entries of these kinds: f (regular file), d, l (symlink), c, b, p (fifo); several
    /// comma-separated, as `find -type f,l`.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Only entries with these permission bits, octal as `find -perm`: MODE exactly, -MODE all of them
    /// (-4000: setuid), /MODE any of them (/6000: setuid or setgid).
    #[arg(long, value_name = "MODE", allow_hyphen_values = true)]
    perm: Option<String>,
    /// End each path with a NUL byte instead of a newline, as `find -print0` (for `xargs -0`).
    #[arg(long)]
    print0: bool,
    #[command(flatten)]
    target: ImageArgs,
    /// Where to start, printed first when it passes the tests; any bytes. A symlink there is not followed
    /// unless PATH ends in / (symlinks in its directories always are). Paths go to a pipe as they are; on a
    /// terminal, non-printable characters show as `?`, as GNU find shows them.
    #[arg(default_value = "/")]
    path: PathBuf,
}

struct Filter {
    name: Option<Glob>,
    kinds: Option<Vec<Kind>>,
    perm: Option<PermFilter>,
}

impl Filter {
    fn passes(&self, entry: &FileEntry, name: &[u8]) -> bool {
        self.name.as_ref().is_none_or(|g| g.matches(name))
            && self.kinds.as_ref().is_none_or(|k| k.contains(&entry.kind))
            && self.perm.is_none_or(|p| p.matches(entry.mode))
    }
}

/// Runs `strata find`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let kinds = match &args.kind {
        None => None,
        Some(list) => {
            let mut kinds = Vec::new();
            for letter in list.split(',') {
                match Kind::from_find_type(letter) {
                    Some(k) => kinds.push(k),
                    None => bail!("--type {letter:?}: not one of f, d, l, c, b, p"),
                }
            }
            Some(kinds)
        }
    };
    let filter = Filter {
        name: args.name.as_ref().map(|n| Glob::new(n.as_bytes())),
        kinds,
        perm: args.perm.as_deref().map(PermFilter::parse).transpose()?,
    };
    let image = args.target.open_scan(store)?;
    let path = args.path.as_os_str().as_bytes();
    let start = match image.lookup(path, false)? {
        Resolved::Entry(e) => e,
        other => return Err(names::lookup_error(path, &other)),
    };
    let (style, end) = if args.print0 {
        (Style::Literal, 0u8)
    } else {
        (Style::for_stdout(Style::QuestionMarks), b'\n')
    };
    let mut out = Vec::new();
    // The start is named as given; what is under it by the given name and the path below the start.
    let prefix = match path.iter().rposition(|&b| b != b'/') {
        Some(i) => &path[..=i],
        None => &path[..0],
    };
    let start_name: &[u8] = match prefix.iter().rposition(|&b| b == b'/') {
        Some(i) => &prefix[i + 1..],
        None if prefix.is_empty() => b"/",
        None => prefix,
    };
    if filter.passes(&start, start_name) {
        out.extend_from_slice(&style.quote(path));
        out.push(end);
    }
    let base_len = start.relative().len();
    let mut full = Vec::new();
    for entry in image.walk(&start) {
        let entry = entry?;
        if !filter.passes(&entry, entry.name()) {
            continue;
        }
        let below = entry.relative().get(base_len..).unwrap_or_default();
        full.clear();
        full.extend_from_slice(prefix);
        if !below.starts_with(b"/") {
            full.push(b'/');
        }
        full.extend_from_slice(below);
        out.extend_from_slice(&style.quote(&full));
        out.push(end);
        if out.len() > 1 << 20 {
            print_raw(&out)?;
            out.clear();
        }
    }
    print_raw(&out)
}
