//! registries.conf: where a `docker://` reference is pulled from (mirrors, a `location` rewriting the
//! prefix), and which registries are insecure (plain HTTP or unverified TLS allowed) or blocked.
//!
//! Read as containers/image reads it, for the parts strata uses: `[[registry]]` tables with `prefix`,
//! `location`, `insecure`, `blocked`, `mirror-by-digest-only` and `[[registry.mirror]]` tables (`location`,
//! `insecure`, `pull-from-mirror` = `all` | `digest-only` | `tag-only`), matched by the longest prefix
//! (`*.example.com` wildcards included); and the v1 tables `[registries.insecure]` / `[registries.block]`.
//! Drop-ins (`registries.conf.d/*.conf`, v2 only) are read after the main file in name order, a later
//! table replacing an earlier one with the same prefix. Aliases and short-name settings are not used
//! (strata takes only fully qualified `docker://` names).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use strata_oci::ImageReference;

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
    #[serde(default, rename = "mirror-by-digest-only")]
    mirror_by_digest_only: bool,
    #[serde(default, rename = "pull-from-mirror")]
    pull_from_mirror: Option<String>,
    #[serde(default)]
    mirror: Vec<MirrorTable>,
}

#[derive(Debug, Deserialize)]
struct MirrorTable {
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default, rename = "pull-from-mirror")]
    pull_from_mirror: Option<String>,
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

/// Which references a mirror serves (`pull-from-mirror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MirrorUse {
    /// Tag and digest references (`all`, the default).
    All,
    /// Digest references only (`digest-only`, or the registry's `mirror-by-digest-only`).
    DigestOnly,
    /// Tag references only (`tag-only`).
    TagOnly,
}

/// A mirror of a registry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mirror {
    /// Where the prefix is rewritten to: `host[:port][/path]`.
    pub location: String,
    /// Plain HTTP and unverified TLS allowed for this mirror.
    pub insecure: bool,
    /// Which references it serves.
    pub usage: MirrorUse,
}

/// One registry entry that applies to a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The prefix it matched by.
    pub prefix: String,
    /// Where the prefix is rewritten to for pulls (empty: not rewritten, for `*.` prefixes).
    pub location: String,
    /// Plain HTTP and unverified TLS allowed.
    pub insecure: bool,
    /// Pulling is refused.
    pub blocked: bool,
    /// Mirrors, tried in order before the location.
    pub mirrors: Vec<Mirror>,
    /// The file it came from.
    pub path: PathBuf,
}

/// One place a reference can be pulled from: the reference rewritten for that endpoint, and whether the
/// endpoint is insecure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PullSource {
    /// The reference as the endpoint knows it (`location` + what follows the prefix).
    pub reference: ImageReference,
    /// Plain HTTP and unverified TLS allowed for this endpoint.
    pub insecure: bool,
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
    /// Loads the configuration as podman does: `explicit`, else `$CONTAINERS_REGISTRIES_CONF` (either must
    /// exist), else `~/.config/containers/registries.conf` if it exists, else
    /// `/etc/containers/registries.conf` (may be missing); then the drop-ins: with the user's file, those
    /// in `~/.config/containers/registries.conf.d`; otherwise those in `/etc/containers/registries.conf.d`,
    /// then the user's. Each directory's `*.conf` files are read in name order.
    pub(crate) fn load(explicit: Option<&Path>) -> Result<Self, RegistryError> {
        let user_dir = home().map(|h| h.join(".config/containers/registries.conf.d"));
        let system_dir = PathBuf::from("/etc/containers/registries.conf.d");
        let named = explicit.map(Path::to_path_buf).or_else(|| {
            std::env::var_os("CONTAINERS_REGISTRIES_CONF")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let user = home()
            .map(|h| h.join(".config/containers/registries.conf"))
            .filter(|p| p.is_file());
        let (main, must_exist, dirs) = match (named, user) {
            (Some(path), _) => (path, true, [Some(system_dir), user_dir]),
            (None, Some(path)) => (path, false, [user_dir, None]),
            (None, None) => (
                PathBuf::from("/etc/containers/registries.conf"),
                false,
                [Some(system_dir), user_dir],
            ),
        };
        let mut conf = RegistriesConf::default();
        match read_conf(&main)? {
            Some(file) => conf.merge(parse_entries(&main, file, false)?),
            None if must_exist => {
                return Err(RegistryError::Config {
                    path: main,
                    reason: "no such file".into(),
                });
            }
            None => {}
        }
        for dir in dirs.into_iter().flatten() {
            let Ok(listing) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = listing
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            paths.sort();
            for path in paths {
                if let Some(file) = read_conf(&path)? {
                    conf.merge(parse_entries(&path, file, true)?);
                }
            }
        }
        Ok(conf)
    }

    /// Parses one file's text (for tests).
    #[cfg(test)]
    fn from_text(text: &str) -> Result<Self, RegistryError> {
        let mut conf = RegistriesConf::default();
        let path = Path::new("test.conf");
        let file: ConfFile = toml::from_str(text).map_err(|e| RegistryError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        conf.merge(parse_entries(path, file, false)?);
        Ok(conf)
    }

    /// Adds `entries`, each replacing an earlier one with the same prefix.
    fn merge(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.entries.retain(|e| e.prefix != entry.prefix);
            self.entries.push(entry);
        }
    }

    /// The entry for `name` (`host[:port]/repository`, or a whole reference) with the longest matching
    /// prefix.
    pub(crate) fn lookup(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| prefix_end(name, &e.prefix).is_some())
            .max_by_key(|e| e.prefix.len())
    }

    /// Where `reference` is pulled from, in the order containers/image tries them: the mirrors that serve
    /// it (by digest or by tag, per `mirror-by-digest-only` and each mirror's `pull-from-mirror`), then the
    /// registry's location; each with the reference rewritten (`location` + what follows the prefix). A
    /// reference no entry matches is pulled from where it names.
    pub(crate) fn pull_sources(
        &self,
        reference: &ImageReference,
    ) -> Result<Vec<PullSource>, RegistryError> {
        let Some(entry) = self.lookup(&reference.name()) else {
            return Ok(vec![PullSource {
                reference: reference.clone(),
                insecure: false,
            }]);
        };
        let by_digest = reference.digest().is_some();
        let mut sources = Vec::new();
        let mirrors = entry.mirrors.iter().filter(|m| match m.usage {
            MirrorUse::All => true,
            MirrorUse::DigestOnly => by_digest,
            MirrorUse::TagOnly => !by_digest,
        });
        for mirror in mirrors {
            sources.push(PullSource {
                reference: rewrite(entry, &mirror.location, reference)?,
                insecure: mirror.insecure,
            });
        }
        sources.push(PullSource {
            reference: rewrite(entry, &entry.location, reference)?,
            insecure: entry.insecure,
        });
        Ok(sources)
    }
}

/// `reference` with `entry`'s prefix replaced by `location` (unchanged when `location` is empty).
fn rewrite(
    entry: &Entry,
    location: &str,
    reference: &ImageReference,
) -> Result<ImageReference, RegistryError> {
    let text = reference.to_string();
    if location.is_empty() {
        return Ok(reference.clone());
    }
    let error = |reason: String| RegistryError::Config {
        path: entry.path.clone(),
        reason: format!(
            "[[registry]] prefix {:?}: location {location:?} for {text}: {reason}",
            entry.prefix
        ),
    };
    let end =
        prefix_end(&text, &entry.prefix).ok_or_else(|| error("prefix does not match".into()))?;
    let rest = text.get(end..).unwrap_or_default();
    let rewritten = format!("{location}{rest}");
    ImageReference::parse_normalized_named(&rewritten)
        .map_err(|e| error(format!("{rewritten} is not a valid reference: {e}")))
}

/// Where in `reference` a match of `prefix` ends (containers/image's rules: the prefix followed by the end,
/// `/`, `:` or `@`; `*.example.com` matches any subdomain of the first component), or `None`.
fn prefix_end(reference: &str, prefix: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix('*') {
        let index = reference.find(domain)?;
        if reference.get(..index).is_none_or(|head| head.contains('/')) {
            return None;
        }
        let end = index + domain.len();
        return match reference.as_bytes().get(end) {
            None | Some(b':' | b'/' | b'@') => Some(end),
            Some(_) => None,
        };
    }
    let rest = reference.strip_prefix(prefix)?;
    match rest.as_bytes().first() {
        None | Some(b':' | b'/' | b'@') => Some(prefix.len()),
        Some(_) => None,
    }
}

/// A prefix or location as containers/image takes it: trailing `/` removed, no URL scheme.
fn clean_location(path: &Path, what: &str, value: &str) -> Result<String, RegistryError> {
    let trimmed = value.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return Err(RegistryError::Config {
            path: path.to_path_buf(),
            reason: format!(
                "{what} {value:?}: URL schemes are not allowed (write host[:port][/path])"
            ),
        });
    }
    Ok(trimmed.to_owned())
}

/// `pull-from-mirror`'s value.
fn mirror_use(value: Option<&str>) -> Option<MirrorUse> {
    match value {
        None | Some("" | "all") => Some(MirrorUse::All),
        Some("digest-only") => Some(MirrorUse::DigestOnly),
        Some("tag-only") => Some(MirrorUse::TagOnly),
        Some(_) => None,
    }
}

/// Checks one file's tables and turns them into entries; `drop_in` files must use the v2 format.
fn parse_entries(path: &Path, file: ConfFile, drop_in: bool) -> Result<Vec<Entry>, RegistryError> {
    let error = |reason: String| RegistryError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let mut entries = Vec::new();
    let v1 = file.registries.map(|v1| {
        (
            v1.insecure.map(|l| l.registries).unwrap_or_default(),
            v1.block.map(|l| l.registries).unwrap_or_default(),
        )
    });
    if let Some((insecure, block)) = v1.filter(|(i, b)| !i.is_empty() || !b.is_empty()) {
        if drop_in {
            return Err(error(
                "[registries.insecure] / [registries.block] (the v1 format) are not allowed in a drop-in"
                    .into(),
            ));
        }
        if !file.registry.is_empty() {
            return Err(error(
                "[registries.*] (v1) and [[registry]] (v2) tables cannot be mixed".into(),
            ));
        }
        for host in insecure.iter().chain(&block) {
            let location = clean_location(path, "[registries] registry", host)?;
            if entries.iter().any(|e: &Entry| e.prefix == location) || location.is_empty() {
                continue;
            }
            entries.push(Entry {
                prefix: location.clone(),
                location,
                insecure: insecure.contains(host),
                blocked: block.contains(host),
                mirrors: Vec::new(),
                path: path.to_path_buf(),
            });
        }
        return Ok(entries);
    }
    for table in file.registry {
        let location = clean_location(path, "[[registry]] location", &table.location)?;
        let prefix = if table.prefix.is_empty() {
            if location.is_empty() {
                return Err(error(
                    "[[registry]] with neither prefix nor location".into(),
                ));
            }
            location.clone()
        } else {
            clean_location(path, "[[registry]] prefix", &table.prefix)?
        };
        let key = |k: &str| format!("[[registry]] prefix {prefix:?}: {k}");
        if let Some(domain) = prefix.strip_prefix("*.") {
            if domain.is_empty() || domain.contains(['/', '@', ':']) {
                return Err(error(key(
                    "a wildcard prefix must be *.example.com (no port, path, tag or digest)",
                )));
            }
        } else if location.is_empty() {
            return Err(error(key(
                "location is unset and the prefix is not a wildcard (*.example.com)",
            )));
        }
        if let Some(value) = &table.pull_from_mirror {
            return Err(error(key(&format!(
                "pull-from-mirror = {value:?} is allowed only in [[registry.mirror]] tables"
            ))));
        }
        let mut mirrors = Vec::new();
        for mirror in table.mirror {
            let m_location = clean_location(path, &key("mirror location"), &mirror.location)?;
            let m_key = |k: &str| key(&format!("mirror {m_location:?}: {k}"));
            if m_location.is_empty() {
                return Err(error(key("[[registry.mirror]] without a location")));
            }
            let value = mirror.pull_from_mirror.as_deref();
            if table.mirror_by_digest_only && value.is_some() {
                return Err(error(m_key(
                    "pull-from-mirror cannot be set when the registry sets mirror-by-digest-only",
                )));
            }
            let usage = mirror_use(value).ok_or_else(|| {
                error(m_key(&format!(
                    "pull-from-mirror = {:?}: expected \"all\", \"digest-only\" or \"tag-only\"",
                    value.unwrap_or_default()
                )))
            })?;
            mirrors.push(Mirror {
                location: m_location,
                insecure: mirror.insecure,
                usage: if table.mirror_by_digest_only {
                    MirrorUse::DigestOnly
                } else {
                    usage
                },
            });
        }
        entries.retain(|e| e.prefix != prefix);
        entries.push(Entry {
            prefix,
            location,
            insecure: table.insecure,
            blocked: table.blocked,
            mirrors,
            path: path.to_path_buf(),
        });
    }
    Ok(entries)
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

    fn reference(text: &str) -> ImageReference {
        ImageReference::parse_normalized_named(text).unwrap()
    }

    /// (reference, insecure, a mirror: every source but the last, the registry's own location).
    fn sources(conf: &RegistriesConf, text: &str) -> Vec<(String, bool, bool)> {
        let sources = conf.pull_sources(&reference(text)).unwrap();
        let last = sources.len() - 1;
        sources
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s.reference.to_string(), s.insecure, i < last))
            .collect()
    }

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
"#,
        )
        .unwrap();
        assert!(conf.lookup("localhost:5000/demo/x").unwrap().insecure);
        assert!(conf.lookup("localhost:5000/private/x").unwrap().blocked);
        assert!(conf.lookup("localhost:50000/x").is_none());
        assert!(conf.lookup("reg.corp.example/a").unwrap().insecure);
        assert!(conf.lookup("corp.example/a").is_none());
        assert!(conf.lookup("docker.io/library/x").is_none());
        let v1 = RegistriesConf::from_text(
            "[registries.insecure]\nregistries = [\"old.example:8080\"]\n[registries.block]\nregistries = [\"bad.example\"]\n",
        )
        .unwrap();
        assert!(v1.lookup("old.example:8080/a/b").unwrap().insecure);
        assert!(v1.lookup("bad.example/a").unwrap().blocked);
    }

    #[test]
    fn mirrors_then_location_rewritten() {
        let conf = RegistriesConf::from_text(
            r#"
[[registry]]
prefix = "example.invalid/team"
location = "127.0.0.1:5000/real"
[[registry.mirror]]
location = "mirror.local:5001/cache"
insecure = true
[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"
[[registry]]
location = "quay.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "q-mirror.example"
"#,
        )
        .unwrap();
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            sources(&conf, "example.invalid/team/app:v1"),
            vec![
                ("mirror.local:5001/cache/app:v1".into(), true, true),
                ("tags.local/app:v1".into(), false, true),
                ("127.0.0.1:5000/real/app:v1".into(), false, false),
            ]
        );
        assert_eq!(
            sources(&conf, &format!("example.invalid/team/app@{d}")),
            vec![
                (format!("mirror.local:5001/cache/app@{d}"), true, true),
                (format!("digests.local/app@{d}"), false, true),
                (format!("127.0.0.1:5000/real/app@{d}"), false, false),
            ]
        );
        assert_eq!(
            sources(&conf, "quay.example/a/b:1"),
            vec![("quay.example/a/b:1".into(), false, false)]
        );
        assert_eq!(sources(&conf, &format!("quay.example/a/b@{d}")).len(), 2);
        // A name-only reference (tag listing) counts as by tag.
        assert_eq!(sources(&conf, "example.invalid/team/app").len(), 3);
        // "example.invalid/teams" is not under the prefix.
        assert_eq!(
            sources(&conf, "example.invalid/teams/app:1"),
            vec![("example.invalid/teams/app:1".into(), false, false)]
        );
    }

    #[test]
    fn malformed_files_are_errors_naming_the_key() {
        for (text, needle) in [
            (
                "[[registry]]\nlocation = \"a.example\"\n[[registry.mirror]]\nlocation = \"m.example\"\npull-from-mirror = \"sometimes\"\n",
                "pull-from-mirror = \"sometimes\"",
            ),
            (
                "[[registry]]\nlocation = \"a.example\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"all\"\n",
                "mirror-by-digest-only",
            ),
            (
                "[[registry]]\nlocation = \"a.example\"\npull-from-mirror = \"all\"\n",
                "only in [[registry.mirror]]",
            ),
            (
                "[[registry]]\nlocation = \"https://a.example\"\n",
                "URL schemes",
            ),
            (
                "[[registry]]\nprefix = \"a.example/x\"\n",
                "location is unset",
            ),
            (
                "[[registry]]\nlocation = \"a.example\"\n[[registry.mirror]]\ninsecure = true\n",
                "without a location",
            ),
            (
                "[[registry]]\ninsecure = true\n",
                "neither prefix nor location",
            ),
            ("[[registry]]\nprefix = \"*.a.example:5000\"\n", "wildcard"),
            ("[[registry]]\nlocation = 5\n", "location"),
        ] {
            let err = RegistriesConf::from_text(text).unwrap_err().to_string();
            assert!(
                err.contains("test.conf") && err.contains(needle),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn drop_ins_replace_by_prefix_in_name_order() {
        let dir = std::env::temp_dir().join(format!("strata-conf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("main.conf"),
            "[[registry]]\nlocation = \"a.example\"\ninsecure = true\n",
        )
        .unwrap();
        let mut conf = RegistriesConf::default();
        for (name, text) in [
            ("main.conf", None),
            (
                "10-a.conf",
                Some(
                    "[[registry]]\nlocation = \"a.example\"\n[[registry.mirror]]\nlocation = \"m1.example\"\n",
                ),
            ),
            (
                "20-b.conf",
                Some(
                    "[[registry]]\nlocation = \"a.example\"\n[[registry.mirror]]\nlocation = \"m2.example\"\n",
                ),
            ),
        ] {
            let path = dir.join(name);
            if let Some(text) = text {
                std::fs::write(&path, text).unwrap();
            }
            let file = read_conf(&path).unwrap().unwrap();
            conf.merge(parse_entries(&path, file, name != "main.conf").unwrap());
        }
        let entry = conf.lookup("a.example/x").unwrap();
        assert!(!entry.insecure);
        assert_eq!(entry.mirrors[0].location, "m2.example");
        assert!(entry.path.ends_with("20-b.conf"));
        let v1 = dir.join("30-v1.conf");
        std::fs::write(&v1, "[registries.insecure]\nregistries = [\"x\"]\n").unwrap();
        let file = read_conf(&v1).unwrap().unwrap();
        assert!(
            parse_entries(&v1, file, true)
                .unwrap_err()
                .to_string()
                .contains("v1")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
