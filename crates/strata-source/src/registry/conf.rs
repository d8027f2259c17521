//! registries.conf: which registries are insecure (plain HTTP or unverified TLS allowed) or blocked.
//!
//! Read as containers/image reads it, for the parts strata uses: `[[registry]]` tables with `prefix` (or
//! `location`), `insecure` and `blocked`, matched by the longest prefix (`*.example.com` wildcards
//! included); and the v1 tables `[registries.insecure]` / `[registries.block]`. Mirrors, aliases and
//! short-name settings are not used (strata takes only fully qualified `docker://` names).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::RegistryError;

/// The largest registries.conf strata reads.
const MAX_CONF_SIZE: u64 = 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
struct ConfFile {
    #[serde(default)]
    registry: Vec<RegistryTable>,
    #[serde(default)]
    registries: Option<V1Tables>,
}

#[derive(Debug, Deserialize)]
struct RegistryTable {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
}

#[derive(Debug, Default, Deserialize)]
struct V1Tables {
    #[serde(default)]
    insecure: Option<V1List>,
    #[serde(default)]
    block: Option<V1List>,
}

#[derive(Debug, Default, Deserialize)]
struct V1List {
    #[serde(default)]
    registries: Vec<String>,
}

/// One registry entry that applies to a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The prefix it matched by.
    pub prefix: String,
    /// Plain HTTP and unverified TLS allowed.
    pub insecure: bool,
    /// Pulling is refused.
    pub blocked: bool,
    /// The file it came from.
    pub path: PathBuf,
}

/// The merged registries.conf (and drop-ins).
#[derive(Debug, Default)]
pub(crate) struct RegistriesConf {
    entries: Vec<Entry>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

impl RegistriesConf {
    /// Loads `explicit`, else `$CONTAINERS_REGISTRIES_CONF`, else the user's or the system's file with its
    /// drop-in directory. A named file must exist; default files may be missing.
    pub(crate) fn load(explicit: Option<&Path>) -> Result<Self, RegistryError> {
        let mut conf = RegistriesConf::default();
        let named = explicit.map(Path::to_path_buf).or_else(|| {
            std::env::var_os("CONTAINERS_REGISTRIES_CONF")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        if let Some(path) = named {
            match read_conf(&path)? {
                Some(file) => conf.merge(&path, file),
                None => {
                    return Err(RegistryError::Config {
                        path,
                        reason: "no such file".into(),
                    });
                }
            }
            return Ok(conf);
        }
        let user = home().map(|h| h.join(".config/containers/registries.conf"));
        let (main, dropins) = match user.filter(|p| p.is_file()) {
            Some(p) => {
                let d = p.with_extension("conf.d");
                (p, d)
            }
            None => (
                PathBuf::from("/etc/containers/registries.conf"),
                PathBuf::from("/etc/containers/registries.conf.d"),
            ),
        };
        if let Some(file) = read_conf(&main)? {
            conf.merge(&main, file);
        }
        if let Ok(dir) = std::fs::read_dir(&dropins) {
            let mut paths: Vec<PathBuf> = dir
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            paths.sort();
            for path in paths {
                if let Some(file) = read_conf(&path)? {
                    conf.merge(&path, file);
                }
            }
        }
        Ok(conf)
    }

    /// Parses one file's text (for tests).
    #[cfg(test)]
    fn from_text(text: &str) -> Self {
        let mut conf = RegistriesConf::default();
        let file: ConfFile = toml::from_str(text).unwrap_or_default();
        conf.merge(Path::new("test.conf"), file);
        conf
    }

    fn merge(&mut self, path: &Path, file: ConfFile) {
        let mut add = |prefix: String, insecure: bool, blocked: bool| {
            let prefix = prefix.trim_end_matches('/').to_owned();
            if prefix.is_empty() {
                return;
            }
            self.entries.retain(|e| e.prefix != prefix);
            self.entries.push(Entry {
                prefix,
                insecure,
                blocked,
                path: path.to_path_buf(),
            });
        };
        for table in file.registry {
            let prefix = if table.prefix.is_empty() {
                table.location
            } else {
                table.prefix
            };
            add(prefix, table.insecure, table.blocked);
        }
        if let Some(v1) = file.registries {
            let insecure = v1.insecure.map(|l| l.registries).unwrap_or_default();
            let block = v1.block.map(|l| l.registries).unwrap_or_default();
            for host in &insecure {
                add(host.clone(), true, block.contains(host));
            }
            for host in block.iter().filter(|h| !insecure.contains(h)) {
                add(host.clone(), false, true);
            }
        }
    }

    /// The entry for `name` (`host[:port]/repository`) with the longest matching prefix.
    pub(crate) fn lookup(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .filter_map(|e| prefix_match(name, &e.prefix).map(|len| (len, e)))
            .max_by_key(|(len, _)| *len)
            .map(|(_, e)| e)
    }
}

/// How much of `name` `prefix` matches (containers/image's rules), or `None`.
fn prefix_match(name: &str, prefix: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = name.split('/').next().unwrap_or(name);
        let host_only = host.split(':').next().unwrap_or(host);
        return host_only
            .strip_suffix(domain)
            .filter(|rest| rest.ends_with('.') && rest.len() > 1)
            .map(|_| prefix.len());
    }
    if name == prefix {
        return Some(prefix.len());
    }
    let rest = name.strip_prefix(prefix)?;
    matches!(rest.chars().next(), Some('/' | ':' | '@')).then_some(prefix.len())
}

/// Reads and parses a registries.conf; `None` when it does not exist.
fn read_conf(path: &Path) -> Result<Option<ConfFile>, RegistryError> {
    let config_error = |reason: String| RegistryError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match super::authfile::read_bounded(path, MAX_CONF_SIZE) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(reason) => return Err(config_error(reason)),
    };
    let text = String::from_utf8(bytes).map_err(|_| config_error("not UTF-8".into()))?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| config_error(e.to_string().replace('\n', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let conf = RegistriesConf::from_text(
            r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "localhost:5000"
insecure = true
[[registry]]
prefix = "localhost:5000/private"
location = "localhost:5000/private"
blocked = true
[[registry]]
prefix = "*.corp.example"
insecure = true
[registries.insecure]
registries = ["old.example:8080"]
"#,
        );
        assert!(conf.lookup("localhost:5000/demo/x").unwrap().insecure);
        assert!(conf.lookup("localhost:5000/private/x").unwrap().blocked);
        assert!(conf.lookup("localhost:50000/x").is_none());
        assert!(conf.lookup("reg.corp.example/a").unwrap().insecure);
        assert!(conf.lookup("corp.example/a").is_none());
        assert!(conf.lookup("old.example:8080/a/b").unwrap().insecure);
        assert!(conf.lookup("docker.io/library/x").is_none());
    }
}
