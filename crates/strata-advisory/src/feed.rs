//! Reading an OSV feed from a directory, a zip export or one file, under limits.
//!
//! **Errors and warnings.** What makes the feed as a whole untrustworthy is an [`Error`] and no feed is
//! returned: an unreadable file, a file or zip entry over [`Limits::max_file_size`] (refused from its size
//! before reading, or as soon as more bytes than that arrive), a zip over [`Limits::max_zip_entries`] or
//! [`Limits::max_total_size`] (a zip bomb is refused, not expanded), text that is not JSON. What concerns one
//! advisory — a record that is not OSV's shape, a malformed version, range or date — skips that advisory and
//! is returned as a [`FeedWarning`] naming the file and the advisory id: never silently ignored.
//!
//! Zip entry names are only used in messages: nothing is ever written. In a directory, files named `*.json`
//! are read (recursively, in name order); symbolic links are not followed and are listed as warnings.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::osv::{Parsed, parse_record};
use crate::{Advisory, Error};

/// Bounds on what a feed may make strata read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest OSV file or zip entry read, in bytes (default 64 MiB).
    pub max_file_size: u64,
    /// The most entries a zip may have (default 1,000,000; an OSV ecosystem export has tens of thousands).
    pub max_zip_entries: u64,
    /// The most bytes a zip's entries may uncompress to in all (default 4 GiB).
    pub max_total_size: u64,
    /// The deepest directory nesting walked (default 32).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_size: 64 << 20,
            max_zip_entries: 1_000_000,
            max_total_size: 4 << 30,
            max_depth: 32,
        }
    }
}

/// An advisory (or file entry) skipped while reading a feed, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeedWarning {
    /// The file, or `ZIP!ENTRY` for a zip entry.
    pub file: String,
    /// The advisory's id, when it could be read.
    pub advisory: Option<String>,
    /// What is wrong, or what was not used.
    pub message: String,
}

impl std::fmt::Display for FeedWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.advisory {
            Some(id) => write!(f, "{} ({id}): {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// An OSV feed read into memory, indexed by ecosystem and package name.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    pub(crate) advisories: Vec<Advisory>,
    /// (ecosystem, name) → (advisory, affected) indexes.
    pub(crate) index: HashMap<(String, String), Vec<(usize, usize)>>,
    warnings: Vec<FeedWarning>,
    other_ecosystems: BTreeMap<String, u64>,
    withdrawn: u64,
}

impl Feed {
    /// Reads the feed at `path` with the default [`Limits`]: a directory of OSV JSON files, an OSV export's
    /// zip (`all.zip`; recognised by its `PK` signature), or one OSV JSON file.
    ///
    /// # Errors
    /// [`Error`] when the feed as a whole is refused (see the module docs).
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with_limits(path, &Limits::default())
    }

    /// [`Feed::open`] with the given limits.
    ///
    /// # Errors
    /// As [`Feed::open`].
    pub fn open_with_limits(path: &Path, limits: &Limits) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut feed = Self::default();
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            feed.read_dir(path, limits, 0)?;
        } else {
            let mut file = File::open(path).map_err(io)?;
            let mut magic = [0u8; 4];
            let n = read_up_to(&mut file, &mut magic).map_err(io)?;
            if magic.get(..n) == Some(b"PK\x03\x04".as_slice())
                || magic.get(..n) == Some(b"PK\x05\x06".as_slice())
            {
                feed.read_zip(path, file, limits)?;
            } else {
                let name = path.display().to_string();
                let bytes = read_file(path, limits)?;
                feed.add_json(&name, &bytes)?;
            }
        }
        feed.build_index();
        Ok(feed)
    }

    /// Every advisory read, in the order read (directory and zip entries in name order).
    pub fn advisories(&self) -> &[Advisory] {
        &self.advisories
    }

    /// The advisories skipped, and the notes on what was not used, naming file and advisory.
    pub fn warnings(&self) -> &[FeedWarning] {
        &self.warnings
    }

    /// Affected entries of ecosystems strata does not match (`PyPI`, `npm`, …), counted by ecosystem.
    pub fn other_ecosystems(&self) -> &BTreeMap<String, u64> {
        &self.other_ecosystems
    }

    /// How many withdrawn advisories were read (they are never matched).
    pub fn withdrawn(&self) -> u64 {
        self.withdrawn
    }

    fn read_dir(&mut self, dir: &Path, limits: &Limits, depth: usize) -> Result<(), Error> {
        if depth > limits.max_depth {
            return Err(Error::TooDeep {
                path: dir.to_owned(),
                limit: limits.max_depth,
            });
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        let mut entries = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<Vec<PathBuf>, _>>()
            .map_err(io(dir))?;
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            if meta.is_symlink() {
                self.warnings.push(FeedWarning {
                    file: path.display().to_string(),
                    advisory: None,
                    message: "a symbolic link: not followed".to_owned(),
                });
            } else if meta.is_dir() {
                self.read_dir(&path, limits, depth + 1)?;
            } else if meta.is_file() && is_json_name(&path.to_string_lossy()) {
                let bytes = read_file(&path, limits)?;
                self.add_json(&path.display().to_string(), &bytes)?;
            }
        }
        Ok(())
    }

    fn read_zip(&mut self, path: &Path, file: File, limits: &Limits) -> Result<(), Error> {
        let zip_err = |source| Error::Zip {
            path: path.to_owned(),
            source,
        };
        let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
        let entries = u64::try_from(archive.len()).unwrap_or(u64::MAX);
        if entries > limits.max_zip_entries {
            return Err(Error::TooManyEntries {
                path: path.to_owned(),
                entries,
                limit: limits.max_zip_entries,
            });
        }
        // Entries in name order, so warnings and advisories come in the same order as from a directory.
        let mut names: Vec<(String, usize)> = (0..archive.len())
            .filter_map(|i| {
                archive
                    .name_for_index(i)
                    .map(|n| n.map(|n| (n.into_owned(), i)))
            })
            .collect::<Result<_, _>>()
            .map_err(zip_err)?;
        names.sort();
        names.retain(|(name, _)| !name.ends_with('/') && is_json_name(name));
        // Judge the declared sizes first, so a bomb is refused before anything is inflated.
        let mut declared_total = 0u64;
        for (name, index) in &names {
            let declared = archive.by_index_raw(*index).map_err(zip_err)?.size();
            sizes_within(path, name, declared, &mut declared_total, limits)?;
        }
        let mut total = 0u64;
        for (name, index) in names {
            let label = format!("{}!{name}", path.display());
            let entry = archive.by_index(index).map_err(zip_err)?;
            // The declared size may lie: read at most one byte past the limit, then judge what arrived.
            let mut bytes = Vec::new();
            entry
                .take(limits.max_file_size.saturating_add(1))
                .read_to_end(&mut bytes)
                .map_err(|source| Error::Io {
                    path: PathBuf::from(&label),
                    source,
                })?;
            let got = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            sizes_within(path, &name, got, &mut total, limits)?;
            self.add_json(&label, &bytes)?;
        }
        Ok(())
    }

    /// Adds the records of one OSV file (one record, or a list of them).
    fn add_json(&mut self, file: &str, bytes: &[u8]) -> Result<(), Error> {
        let value: Value = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            path: file.to_owned(),
            source,
        })?;
        let records = match value {
            Value::Array(records) => records,
            record => vec![record],
        };
        for record in records {
            match parse_record(record, file, &mut self.other_ecosystems) {
                Ok(Parsed::Advisory(advisory, notes)) => {
                    self.warnings
                        .extend(notes.into_iter().map(|message| FeedWarning {
                            file: file.to_owned(),
                            advisory: Some(advisory.id.clone()),
                            message,
                        }));
                    self.advisories.push(advisory);
                }
                Ok(Parsed::Withdrawn) => self.withdrawn += 1,
                Err(refused) => self.warnings.push(FeedWarning {
                    file: file.to_owned(),
                    advisory: refused.id,
                    message: format!("advisory skipped: {}", refused.reason),
                }),
            }
        }
        Ok(())
    }

    fn build_index(&mut self) {
        self.index.clear();
        for (a, advisory) in self.advisories.iter().enumerate() {
            for (i, affected) in advisory.affected.iter().enumerate() {
                self.index
                    .entry((affected.ecosystem.clone(), affected.name.clone()))
                    .or_default()
                    .push((a, i));
            }
        }
    }
}

/// Checks a zip entry's `size` against the per-entry limit and adds it to `total`, checked against the total
/// limit.
fn sizes_within(
    zip: &Path,
    name: &str,
    size: u64,
    total: &mut u64,
    limits: &Limits,
) -> Result<(), Error> {
    if size > limits.max_file_size {
        return Err(Error::FileTooLarge {
            path: format!("{}!{name}", zip.display()),
            size,
            limit: limits.max_file_size,
        });
    }
    *total = total.saturating_add(size);
    if *total > limits.max_total_size {
        return Err(Error::TotalTooLarge {
            path: zip.to_owned(),
            size: *total,
            limit: limits.max_total_size,
        });
    }
    Ok(())
}

fn is_json_name(name: &str) -> bool {
    name.len() > 5
        && name
            .get(name.len() - 5..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".json"))
}

/// Reads a whole file of at most `limits.max_file_size` bytes: a larger one is refused from its size, and a
/// file that grows while read is cut one byte past the limit and refused.
fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let too_large = |size| Error::FileTooLarge {
        path: path.display().to_string(),
        size,
        limit: limits.max_file_size,
    };
    if size > limits.max_file_size {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limits.max_file_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let got = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if got > limits.max_file_size {
        return Err(too_large(got));
    }
    Ok(bytes)
}

/// Reads into `buf` until it is full or the file ends; the count read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        match file.read(rest)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
