//! `strata cache`: the local index cache of registry layers — list its entries, prune it.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use serde::Serialize;
use strata_lazy::{CacheEntry, DEFAULT_MAX_BYTES, IndexCache};

use crate::output::{human_bytes, print_json, print_raw};
use crate::render::format_time;

/// Arguments of `strata cache`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// The cache directory [default: $XDG_CACHE_HOME/strata, else ~/.cache/strata].
    #[arg(long, value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// Print JSON: the entries (listed, or removed by prune), least recently used first.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List the entries: blob digest, size, last use, least recently used first (the default).
    List,
    /// Remove entries, least recently used first, until the cache holds at most --max-size (1 GiB, the
    /// limit every command keeps it to, by default), or all of them with --all.
    Prune {
        /// Remove every entry.
        #[arg(long, conflicts_with = "max_size")]
        all: bool,
        /// Keep at most this much: bytes, or a number with K, M, G or T (powers of 1024).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
    },
}

/// One entry, as `--json` prints it.
#[derive(Serialize)]
struct Listed {
    digest: String,
    size: u64,
    /// Seconds since the epoch.
    last_used: u64,
    path: PathBuf,
}

impl From<CacheEntry> for Listed {
    fn from(e: CacheEntry) -> Listed {
        Listed {
            digest: e.digest.to_string(),
            size: e.size,
            last_used: e
                .last_used
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            path: e.path,
        }
    }
}

/// A size: bytes, or a number followed by K, M, G or T (KiB, MiB, GiB, TiB; `B`/`iB` may follow).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or a number with K, M, G or T)"))
}

/// Runs `strata cache`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = match args.cache_dir.or_else(IndexCache::default_dir) {
        Some(dir) => dir,
        None => {
            anyhow::bail!("no cache directory: set XDG_CACHE_HOME or HOME, or give --cache-dir")
        }
    };
    let cache = IndexCache::open(&dir, DEFAULT_MAX_BYTES)?;
    let (entries, removed) = match args.action.unwrap_or(Action::List) {
        Action::List => (cache.entries()?, false),
        Action::Prune { all, max_size } => {
            let keep = if all {
                0
            } else {
                max_size.unwrap_or(DEFAULT_MAX_BYTES)
            };
            (cache.prune(keep)?, true)
        }
    };
    if args.json {
        let listed: Vec<Listed> = entries.into_iter().map(Listed::from).collect();
        return print_json(&listed);
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let mut out = String::new();
    if !entries.is_empty() {
        out.push_str(&format!(
            "{:<71}  {:>10}  {}\n",
            "BLOB", "SIZE", "LAST USED"
        ));
    }
    for e in &entries {
        let secs = e
            .last_used
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        out.push_str(&format!(
            "{:<71}  {:>10}  {}\n",
            e.digest.to_string(),
            human_bytes(e.size),
            format_time(i64::try_from(secs).unwrap_or(i64::MAX))
        ));
    }
    let what = if removed { "removed" } else { "in" };
    out.push_str(&format!(
        "{} entries {what} {} ({})\n",
        entries.len(),
        dir.display(),
        human_bytes(total)
    ));
    print_raw(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
