//! `strata find`: the entries of an image that pass `find`'s `-name`, `-type` and `-perm` tests.

use anyhow::bail;
use strata_scan::find::{Glob, PermFilter};
use strata_scan::{FileEntry, Kind};

use crate::args::{ImageArgs, StoreArgs};
use crate::output::print_raw;

/// Arguments of `strata find`.
#[derive(clap::Args)]
pub struct Args {
    /// Only entries whose name (last component) matches this shell pattern (`*`, `?`, `[...]`), as
    /// `find -name`.
    #[arg(long, value_name = "GLOB")]
    name: Option<String>,
    /// Only entries of these kinds: f (regular file), d, l (symlink), c, b, p (fifo); several
    /// comma-separated, as `find -type f,l`.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Only entries with these permission bits, octal as `find -perm`: MODE exactly, -MODE all of them
    /// (-4000: setuid), /MODE any of them (/6000: setuid or setgid).
    #[arg(long, value_name = "MODE", allow_hyphen_values = true)]
    perm: Option<String>,
    #[command(flatten)]
    target: ImageArgs,
    /// Where to start, printed first when it passes the tests. A symlink there is not followed unless PATH
    /// ends in / (symlinks in its directories always are).
    #[arg(default_value = "/")]
    path: String,
}

struct Filter {
    name: Option<Glob>,
    kinds: Option<Vec<Kind>>,
    perm: Option<PermFilter>,
}

impl Filter {
    fn passes(&self, entry: &FileEntry, name: &str) -> bool {
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
        name: args.name.as_deref().map(Glob::new),
        kinds,
        perm: args.perm.as_deref().map(PermFilter::parse).transpose()?,
    };
    let image = args.target.open_scan(store)?;
    let Some(start) = image.resolve(&args.path, false)? else {
        bail!("{}: no such file or directory in the image", args.path);
    };
    let mut out = String::new();
    // The start is named as given; what is under it by the given name and the path below the start.
    let start_name = match args.path.trim_end_matches('/').rsplit_once('/') {
        Some((_, name)) if !name.is_empty() => name.to_owned(),
        _ if args.path.trim_end_matches('/').is_empty() => "/".to_owned(),
        _ => args.path.trim_end_matches('/').to_owned(),
    };
    if filter.passes(&start, &start_name) {
        out.push_str(&args.path);
        out.push('\n');
    }
    let prefix = args.path.trim_end_matches('/');
    let base_len = start.raw_path.len();
    for entry in image.walk(&start) {
        let entry = entry?;
        if !filter.passes(&entry, entry.name()) {
            continue;
        }
        let below = entry.raw_path.get(base_len..).unwrap_or_default();
        let below = String::from_utf8_lossy(below);
        out.push_str(prefix);
        if !below.starts_with('/') {
            out.push('/');
        }
        out.push_str(&below);
        out.push('\n');
        if out.len() > 1 << 20 {
            print_raw(out.as_bytes())?;
            out.clear();
        }
    }
    print_raw(out.as_bytes())
}
