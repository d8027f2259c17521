//! registries.d: where simple-signing signatures live (lookaside) and whether cosign attachments are used.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use strata_oci::{Digest, ImageReference};

use crate::error::RegistriesError;
use crate::lookup::docker_scopes;

/// The system-wide registries.d directory.
pub const SYSTEM_REGISTRIES_D: &str = "/etc/containers/registries.d";

/// The per-user registries.d directory, relative to the home directory.
pub const USER_REGISTRIES_D: &str = ".config/containers/registries.d";

/// The built-in lookaside directory when running as root.
pub const ROOTFUL_LOOKASIDE_DIR: &str = "/var/lib/containers/sigstore";

/// The built-in lookaside directory for other users, relative to the home directory.
pub const ROOTLESS_LOOKASIDE_DIR: &str = ".local/share/containers/sigstore";

/// containers/image reads at most this many lookaside signatures per image (`signature-1` … `signature-128`).
pub const MAX_LOOKASIDE_SIGNATURES: usize = 128;

/// The largest registries.d file read.
const MAX_YAML_SIZE: u64 = 16 << 20;

/// One `default-docker` or `docker: {<scope>: …}` section. Empty strings count as absent, as in containers/image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RegistryNamespace {
    /// `lookaside`: read signatures here (and write, unless `lookaside-staging` is set).
    #[serde(default)]
    pub lookaside: Option<String>,
    /// `lookaside-staging`: write signatures here.
    #[serde(default, rename = "lookaside-staging")]
    pub lookaside_staging: Option<String>,
    /// `sigstore`: the old name of `lookaside` (nothing to do with the Sigstore project).
    #[serde(default)]
    pub sigstore: Option<String>,
    /// `sigstore-staging`: the old name of `lookaside-staging`.
    #[serde(default, rename = "sigstore-staging")]
    pub sigstore_staging: Option<String>,
    /// `use-sigstore-attachments`: read and write cosign `sha256-<hex>.sig` attachments.
    #[serde(default, rename = "use-sigstore-attachments")]
    pub use_sigstore_attachments: Option<bool>,
}

impl RegistryNamespace {
    /// This section's lookaside base for reading (`write == false`) or writing, or `None` to fall through to
    /// a less specific section: staging keys first when writing, then `lookaside`, then `sigstore`.
    pub fn signature_top_level(&self, write: bool) -> Option<&str> {
        fn set(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        if write && let Some(s) = set(&self.lookaside_staging).or(set(&self.sigstore_staging)) {
            return Some(s);
        }
        set(&self.lookaside).or(set(&self.sigstore))
    }
}

/// One registries.d file. Unknown keys are ignored (containers/image uses non-strict `yaml.Unmarshal`).
#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default, rename = "default-docker")]
    default_docker: Option<RegistryNamespace>,
    #[serde(default)]
    docker: Option<UniqueKeys>,
}

/// The `docker` mapping, refusing a key given twice (yaml.v3 refuses duplicate mapping keys; serde would keep
/// the last one silently).
#[derive(Debug, Default)]
struct UniqueKeys(BTreeMap<String, Option<RegistryNamespace>>);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of scopes to namespace configurations")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((key, value)) =
                    map.next_entry::<String, Option<RegistryNamespace>>()?
                {
                    if out.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "mapping key {key:?} already defined"
                        )));
                    }
                    out.insert(key, value);
                }
                Ok(UniqueKeys(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// The merged registries.d configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesD {
    /// `default-docker`, with the file that defined it.
    pub default_docker: Option<(RegistryNamespace, PathBuf)>,
    /// `docker` scopes (as in policy.json, wildcards too), each with the file that defined it.
    pub docker: BTreeMap<String, (RegistryNamespace, PathBuf)>,
}

/// Where one lookaside signature is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureLocation {
    /// A `file://` base: a local path.
    File(PathBuf),
    /// An `http://` or `https://` URL (read only).
    Http(String),
}

impl RegistriesD {
    /// The directory podman and skopeo would read: `dir` if given; else `$HOME/.config/containers/registries.d`
    /// if it exists; else `/etc/containers/registries.d`.
    pub fn default_dir(dir: Option<&Path>) -> PathBuf {
        if let Some(d) = dir {
            return d.to_owned();
        }
        let user = std::env::home_dir()
            .unwrap_or_default()
            .join(USER_REGISTRIES_D);
        if user.exists() {
            return user;
        }
        PathBuf::from(SYSTEM_REGISTRIES_D)
    }

    /// Finds ([`RegistriesD::default_dir`]) and reads the configuration. A missing directory is an empty
    /// configuration, as in containers/image.
    pub fn load(dir: Option<&Path>) -> Result<RegistriesD, RegistriesError> {
        RegistriesD::from_dir(&RegistriesD::default_dir(dir))
    }

    /// Reads every `*.yaml` file of `dir` (in name order) and merges them; `default-docker` or a `docker` scope
    /// defined in two files is an error.
    pub fn from_dir(dir: &Path) -> Result<RegistriesD, RegistriesError> {
        let read_err = |path: &Path, source| RegistriesError::Read {
            path: path.to_owned(),
            source,
        };
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RegistriesD::default()),
            Err(e) => return Err(read_err(dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| read_err(dir, e))?;
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(".yaml") {
                names.push(name);
            }
        }
        names.sort();
        let mut merged = RegistriesD::default();
        for name in names {
            let path = dir.join(&name);
            let text = match read_limited(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(read_err(&path, e)),
            };
            merged.merge(RegistriesD::parse_file(&text, &path)?, &path)?;
        }
        Ok(merged)
    }

    fn parse_file(text: &str, path: &Path) -> Result<RawConfig, RegistriesError> {
        let yaml = |reason: String| RegistriesError::Yaml {
            file: path.to_owned(),
            reason,
        };
        // An empty document (or one with only comments) is an empty configuration.
        let config: Option<RawConfig> =
            serde_norway::from_str(text).map_err(|e| yaml(e.to_string()))?;
        Ok(config.unwrap_or_default())
    }

    fn merge(&mut self, config: RawConfig, path: &Path) -> Result<(), RegistriesError> {
        if let Some(ns) = config.default_docker {
            if let Some((_, first)) = &self.default_docker {
                return Err(RegistriesError::Duplicate {
                    what: "\"default-docker\"".into(),
                    first: first.clone(),
                    second: path.to_owned(),
                });
            }
            self.default_docker = Some((ns, path.to_owned()));
        }
        for (scope, ns) in config.docker.unwrap_or_default().0 {
            if let Some((_, first)) = self.docker.get(&scope) {
                return Err(RegistriesError::Duplicate {
                    what: format!("\"docker\" namespace {scope:?}"),
                    first: first.clone(),
                    second: path.to_owned(),
                });
            }
            self.docker
                .insert(scope, (ns.unwrap_or_default(), path.to_owned()));
        }
        Ok(())
    }

    /// The sections that apply to `reference`, most specific first: the exact identity, each namespace (as in
    /// policy.json, `*.` wildcards included), then `default-docker`.
    fn sections(
        &self,
        reference: &ImageReference,
    ) -> Result<Vec<&RegistryNamespace>, RegistriesError> {
        let (identity, namespaces) = docker_scopes(reference)?;
        let mut out: Vec<&RegistryNamespace> = std::iter::once(&identity)
            .chain(namespaces.iter())
            .filter_map(|scope| self.docker.get(scope).map(|(ns, _)| ns))
            .collect();
        if let Some((ns, _)) = &self.default_docker {
            out.push(ns);
        }
        Ok(out)
    }

    /// The configured lookaside base for `reference`, looked up **per key**: the most specific section that
    /// sets one (staging keys first when `write`), else `None` (then use [`builtin_lookaside_dir`]).
    pub fn configured_lookaside(
        &self,
        reference: &ImageReference,
        write: bool,
    ) -> Result<Option<String>, RegistriesError> {
        Ok(self
            .sections(reference)?
            .into_iter()
            .find_map(|ns| ns.signature_top_level(write))
            .map(str::to_owned))
    }

    /// The lookaside base URL for `reference`: the configured one, else the built-in default
    /// (`file://` + [`builtin_lookaside_dir`]).
    pub fn lookaside_base(
        &self,
        reference: &ImageReference,
        write: bool,
    ) -> Result<String, RegistriesError> {
        match self.configured_lookaside(reference, write)? {
            Some(base) => Ok(base),
            None => Ok(format!("file://{}", builtin_lookaside_dir()?.display())),
        }
    }

    /// Whether cosign attachments are used for `reference`: the most specific section that sets
    /// `use-sigstore-attachments` decides; `false` when none does.
    pub fn use_sigstore_attachments(
        &self,
        reference: &ImageReference,
    ) -> Result<bool, RegistriesError> {
        Ok(self
            .sections(reference)?
            .into_iter()
            .find_map(|ns| ns.use_sigstore_attachments)
            .unwrap_or(false))
    }
}

fn read_limited(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let f = fs::File::open(path)?;
    let mut bytes = Vec::new();
    f.take(MAX_YAML_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_YAML_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("over the {MAX_YAML_SIZE}-byte limit"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// containers/image's built-in lookaside directory: `/var/lib/containers/sigstore` for root,
/// `$HOME/.local/share/containers/sigstore` otherwise. "Root" is the effective UID, or
/// `_CONTAINERS_ROOTLESS_UID` inside a user namespace podman set up (`_CONTAINERS_USERNS_CONFIGURED=done`).
pub fn builtin_lookaside_dir() -> Result<PathBuf, RegistriesError> {
    if rootless_euid() == 0 {
        return Ok(PathBuf::from(ROOTFUL_LOOKASIDE_DIR));
    }
    let home = std::env::home_dir()
        .filter(|h| !h.as_os_str().is_empty())
        .ok_or(RegistriesError::NoHome)?;
    Ok(home.join(ROOTLESS_LOOKASIDE_DIR))
}

fn rootless_euid() -> u32 {
    if std::env::var("_CONTAINERS_USERNS_CONFIGURED").as_deref() == Ok("done")
        && let Ok(uid) = std::env::var("_CONTAINERS_ROOTLESS_UID")
            .unwrap_or_default()
            .parse::<u32>()
    {
        return uid;
    }
    rustix::process::geteuid().as_raw()
}

/// The location of signature number `index + 1` (`index` counts from 0) of the image with manifest digest
/// `manifest_digest` in repository `reference`, under lookaside `base`:
/// `<base>/<repository path without host>@<algorithm>=<hex>/signature-<index+1>`.
///
/// The digest is validated first (containers/image CVE-2024-3727: an unchecked digest could name a path
/// outside the tree), and a repository path with `.`, `..` or empty components is refused. `file://` bases give
/// a path, `http(s)://` bases a URL; other schemes are refused, as containers/image refuses to read them.
pub fn lookaside_url(
    base: &str,
    reference: &ImageReference,
    manifest_digest: &str,
    index: usize,
) -> Result<SignatureLocation, RegistriesError> {
    let digest = Digest::parse(manifest_digest).map_err(|e| RegistriesError::InvalidDigest {
        digest: manifest_digest.chars().take(160).collect(),
        reason: e.to_string(),
    })?;
    let repo = reference.repository();
    if repo
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(RegistriesError::UnsafeRepositoryPath {
            reference: reference.to_string(),
        });
    }
    let Some(number) = index.checked_add(1) else {
        return Err(RegistriesError::InvalidDigest {
            digest: manifest_digest.into(),
            reason: "signature index overflows".into(),
        });
    };
    let suffix = format!(
        "/{repo}@{}={}/signature-{number}",
        digest.algorithm().name(),
        digest.hex()
    );
    let invalid = |reason: &str| RegistriesError::InvalidUrl {
        url: base.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = base
        .split_once(':')
        .filter(|(s, _)| {
            !s.is_empty()
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        })
        .ok_or_else(|| invalid("no URL scheme (use file://, http:// or https://)"))?;
    let scheme = scheme.to_ascii_lowercase();
    // Split off a fragment and a query, as Go's url.Parse does, then the authority.
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => match r.find('/') {
            Some(i) => (&r[..i], &r[i..]),
            None => (r, ""),
        },
        None => ("", rest),
    };
    match scheme.as_str() {
        "file" => {
            let decoded = percent_encoding::percent_decode_str(path)
                .decode_utf8()
                .map_err(|_| invalid("path is not UTF-8 after percent-decoding"))?;
            if path.contains('%') && !valid_percent_escapes(path) {
                return Err(invalid("invalid percent escape"));
            }
            Ok(SignatureLocation::File(PathBuf::from(format!(
                "{decoded}{suffix}"
            ))))
        }
        "http" | "https" => {
            if !valid_percent_escapes(path) {
                return Err(invalid("invalid percent escape"));
            }
            let mut url = format!("{scheme}://{authority}{path}{suffix}");
            if let Some(q) = query {
                url.push('?');
                url.push_str(q);
            }
            if let Some(f) = fragment {
                url.push('#');
                url.push_str(f);
            }
            Ok(SignatureLocation::Http(url))
        }
        _ => Err(invalid(
            "unsupported scheme for reading signatures (file, http and https are)",
        )),
    }
}

fn valid_percent_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}
