//! Which requirements apply to an image: transport scopes, their validation, and the lookup order.

use std::io;
use std::path::{Component, Path, PathBuf};

use strata_oci::{Digest, ImageReference};

use crate::error::LookupError;
use crate::policy::{Policy, Requirement};

/// An image as policy lookup sees it: its transport and the identity that transport gives it.
///
/// Paths must be absolute and free of symlinks, as containers/image resolves them before lookup
/// ([`resolve_path`] does that); a symlinked scope in the policy never matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    /// `docker://` (a registry): tag or digest, not both (a name-only reference means `:latest`).
    Docker(ImageReference),
    /// `atomic:` (deprecated OpenShift transport): scoped as docker.
    Atomic(ImageReference),
    /// `docker-daemon:` by name: scoped as docker.
    DockerDaemon(ImageReference),
    /// `docker-daemon:` by image ID (`algo:hex`): only the transport's `""` scope applies.
    DockerDaemonId(Digest),
    /// `containers-storage:`.
    ContainersStorage {
        /// The graph driver (`overlay`, `vfs`, …).
        driver: String,
        /// The store's graph root.
        graph_root: PathBuf,
        /// The image's name, if it was named (may carry both tag and digest).
        reference: Option<ImageReference>,
        /// The image ID (64 hex digits), if known.
        image_id: Option<String>,
    },
    /// `dir:PATH`.
    Dir(PathBuf),
    /// `oci:PATH[:REF]`: `REF` is not part of the scope.
    Oci(PathBuf),
    /// `oci-archive:PATH[:REF]`: `REF` is not part of the scope.
    OciArchive(PathBuf),
    /// `sif:PATH`.
    Sif(PathBuf),
    /// `docker-archive:`: only the transport's `""` scope applies.
    DockerArchive,
    /// `tarball:`: only the transport's `""` scope applies.
    Tarball,
    /// Any other transport: its identity, then its namespaces, most specific first.
    Other {
        /// The transport name as it appears under `transports`.
        transport: String,
        /// The exact identity.
        identity: String,
        /// Parent namespaces, most specific first.
        namespaces: Vec<String>,
    },
}

/// The requirements chosen for an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyMatch<'a> {
    /// The transport section used, or `None` when the policy's `default` was used.
    pub transport: Option<&'a str>,
    /// The scope that matched: an identity, a namespace, `""` (the transport's default), or `"default"` when
    /// the policy's `default` was used (then [`PolicyMatch::transport`] is `None`).
    pub scope: &'a str,
    /// The requirements: all of them must allow the image.
    pub requirements: &'a [Requirement],
}

impl PolicyTarget {
    /// The transport name as written in `transports`.
    pub fn transport(&self) -> &str {
        match self {
            PolicyTarget::Docker(_) => "docker",
            PolicyTarget::Atomic(_) => "atomic",
            PolicyTarget::DockerDaemon(_) | PolicyTarget::DockerDaemonId(_) => "docker-daemon",
            PolicyTarget::ContainersStorage { .. } => "containers-storage",
            PolicyTarget::Dir(_) => "dir",
            PolicyTarget::Oci(_) => "oci",
            PolicyTarget::OciArchive(_) => "oci-archive",
            PolicyTarget::Sif(_) => "sif",
            PolicyTarget::DockerArchive => "docker-archive",
            PolicyTarget::Tarball => "tarball",
            PolicyTarget::Other { transport, .. } => transport,
        }
    }

    /// The docker reference the image claims, for `signedIdentity` (`None` for path transports and IDs).
    pub fn docker_reference(&self) -> Option<&ImageReference> {
        match self {
            PolicyTarget::Docker(r) | PolicyTarget::Atomic(r) | PolicyTarget::DockerDaemon(r) => {
                Some(r)
            }
            PolicyTarget::ContainersStorage { reference, .. } => reference.as_ref(),
            _ => None,
        }
    }

    /// The exact identity and the namespaces to try after it, most specific first (the transport's `""` and
    /// the policy `default` come after these). `None` identity: no scope but `""` can match.
    pub fn scopes(&self) -> Result<(Option<String>, Vec<String>), LookupError> {
        Ok(match self {
            PolicyTarget::Docker(r) | PolicyTarget::Atomic(r) | PolicyTarget::DockerDaemon(r) => {
                let (identity, namespaces) = docker_scopes(r)?;
                (Some(identity), namespaces)
            }
            PolicyTarget::DockerDaemonId(_)
            | PolicyTarget::DockerArchive
            | PolicyTarget::Tarball => (None, Vec::new()),
            PolicyTarget::ContainersStorage {
                driver,
                graph_root,
                reference,
                image_id,
            } => storage_scopes(driver, graph_root, reference.as_ref(), image_id.as_deref()),
            PolicyTarget::Dir(p)
            | PolicyTarget::Oci(p)
            | PolicyTarget::OciArchive(p)
            | PolicyTarget::Sif(p) => match p.to_str() {
                // A path that is not UTF-8 cannot equal any scope written in JSON.
                None => (None, Vec::new()),
                Some(s) => (Some(s.to_owned()), path_parents(s)),
            },
            PolicyTarget::Other {
                identity,
                namespaces,
                ..
            } => (Some(identity.clone()), namespaces.clone()),
        })
    }
}

/// containers/image's `DockerReferenceIdentity` and `DockerReferenceNamespaces`: `host/ns/repo:tag` (or
/// `@digest`), then the repository, each parent namespace, the host with port, then `*.`-wildcards made from
/// the host without its port (`*.b.example.com`, `*.example.com`, `*.com`).
pub fn docker_scopes(r: &ImageReference) -> Result<(String, Vec<String>), LookupError> {
    let name = r.name();
    let identity = match (r.tag(), r.digest()) {
        (Some(_), Some(_)) => {
            return Err(LookupError::TagAndDigest {
                reference: r.to_string(),
            });
        }
        (Some(t), None) => format!("{name}:{t}"),
        (None, Some(d)) => format!("{name}@{d}"),
        // Name-only (from parse_normalized_named): docker transports tag it `latest`.
        (None, None) => format!("{name}:latest"),
    };
    let mut namespaces = Vec::new();
    let mut current = name.as_str();
    loop {
        namespaces.push(current.to_owned());
        match current.rfind('/') {
            Some(i) => current = &current[..i],
            None => break,
        }
    }
    let mut host = current.split(':').next().unwrap_or(current);
    while let Some(i) = host.find('.') {
        host = &host[i + 1..];
        namespaces.push(format!("*.{host}"));
    }
    Ok((identity, namespaces))
}

fn storage_scopes(
    driver: &str,
    graph_root: &Path,
    reference: Option<&ImageReference>,
    image_id: Option<&str>,
) -> (Option<String>, Vec<String>) {
    let root = graph_root.to_string_lossy();
    let store = format!("[{driver}@{root}]");
    let mut identity = store.clone();
    if let Some(r) = reference {
        identity.push_str(&r.to_string());
    }
    if let Some(id) = image_id {
        identity.push('@');
        identity.push_str(id);
    }
    let mut namespaces = Vec::new();
    if let Some(r) = reference {
        if image_id.is_some() {
            namespaces.push(format!("{store}{r}"));
        }
        if let (Some(tag), Some(_)) = (r.tag(), r.digest()) {
            namespaces.push(format!("{store}{}:{tag}", r.name()));
        }
        let name = r.name();
        let mut components: Vec<&str> = name.split('/').collect();
        while !components.is_empty() {
            namespaces.push(format!("{store}{}", components.join("/")));
            components.pop();
        }
    }
    namespaces.push(store);
    namespaces.push(format!("[{root}]"));
    (Some(identity), namespaces)
}

/// The parent directories of an absolute path, nearest first, without `/`.
fn path_parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = path;
    while let Some(i) = current.rfind('/') {
        if i == 0 {
            break;
        }
        current = &current[..i];
        out.push(current.to_owned());
    }
    out
}

impl Policy {
    /// The requirements for `target`, as containers/image chooses them: the transport's section, if any, at the
    /// exact identity, else the first namespace present, else its `""` scope; otherwise the policy `default`.
    /// The most specific scope wins and nothing is merged.
    pub fn requirements_for(&self, target: &PolicyTarget) -> Result<PolicyMatch<'_>, LookupError> {
        let (identity, namespaces) = target.scopes()?;
        if let Some((transport, scopes)) = self.transports.get_key_value(target.transport()) {
            let candidates = identity.iter().chain(namespaces.iter());
            for scope in candidates {
                if let Some((key, requirements)) = scopes.get_key_value(scope.as_str()) {
                    return Ok(PolicyMatch {
                        transport: Some(transport),
                        scope: key,
                        requirements,
                    });
                }
            }
            if let Some((key, requirements)) = scopes.get_key_value("") {
                return Ok(PolicyMatch {
                    transport: Some(transport),
                    scope: key,
                    requirements,
                });
            }
        }
        Ok(PolicyMatch {
            transport: None,
            scope: "default",
            requirements: &self.default,
        })
    }
}

/// Checks a non-empty scope of `transport` as containers/image does while parsing the policy. Unknown
/// transports (and the removed `ostree`) accept anything; `docker` accepts anything too (a scope such as
/// `foo*.example.com` parses and never matches).
pub(crate) fn validate_scope(transport: &str, scope: &str) -> Result<(), String> {
    match transport {
        "dir" | "sif" | "oci" | "oci-archive" => validate_path_scope(scope),
        "docker-archive" | "tarball" => Err(format!(
            "{transport}: does not support any scopes except the default \"\" one"
        )),
        "docker-daemon" => {
            if is_go_digest(scope) {
                Err(format!(
                    "docker-daemon: can not use algo:digest value {scope} as a namespace"
                ))
            } else {
                Ok(())
            }
        }
        "containers-storage" => validate_storage_scope(scope),
        "atomic" => validate_atomic_scope(scope),
        _ => Ok(()),
    }
}

fn validate_path_scope(scope: &str) -> Result<(), String> {
    if !scope.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if scope == "/" {
        return Err("\"/\" is not allowed: use the generic default scope \"\"".into());
    }
    let cleaned = clean_path(scope);
    if cleaned != scope {
        return Err(format!("uses non-canonical format, perhaps try {cleaned}"));
    }
    Ok(())
}

/// Go's `filepath.Clean` for absolute Unix paths.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// go-digest's `Parse`: a registered algorithm (sha256, sha384, sha512) and exactly its length of lowercase hex.
fn is_go_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn validate_storage_scope(scope: &str) -> Result<(), String> {
    let invalid = || Err("invalid reference format".to_owned());
    let Some(rest) = scope.strip_prefix('[') else {
        return invalid();
    };
    let Some(close) = rest.find(']') else {
        return invalid();
    };
    if close == 0 {
        return invalid();
    }
    let (store, after) = (&rest[..close], &rest[close + 1..]);
    match store.split_once('@') {
        Some((driver, root)) if !driver.is_empty() && !root.is_empty() => {
            if !root.starts_with('/') {
                return Err("the graph root must be an absolute path".into());
            }
        }
        None if !store.is_empty() => {
            if !store.starts_with('/') {
                return Err("the graph root must be an absolute path".into());
            }
        }
        _ => return invalid(),
    }
    if after.is_empty() {
        return Ok(());
    }
    let fields: Vec<&str> = after.splitn(3, '@').collect();
    let is_id = |s: &str| is_go_digest(&format!("sha256:{s}"));
    match fields.as_slice() {
        [_] => Ok(()),
        [_, x] if is_id(x) || is_go_digest(x) => Ok(()),
        [_, x] => Err(format!("{x} is neither a valid digest nor a valid ID")),
        [_, d, id] if is_go_digest(d) && is_id(id) => Ok(()),
        _ => Err("invalid digest or image ID".into()),
    }
}

/// The OpenShift transport's scopes: `host[/namespace[/stream[:tag]]]`.
fn validate_atomic_scope(scope: &str) -> Result<(), String> {
    let mut parts = scope.splitn(4, '/');
    let ok = (|| {
        let _host = parts.next()?;
        if let Some(ns) = parts.next() {
            if ns.contains(':') {
                return None;
            }
            if let Some(stream) = parts.next() {
                let (name, tag) = match stream.split_once(':') {
                    Some((n, t)) => (n, Some(t)),
                    None => (stream, None),
                };
                if name.contains(':') || tag.is_some_and(|t| t.contains(':')) {
                    return None;
                }
                if parts.next().is_some() {
                    return None;
                }
            }
        }
        Some(())
    })();
    ok.ok_or_else(|| format!("invalid scope name {scope}"))
}

/// containers/image's `ResolvePathToFullyExplicit`: the absolute, symlink-free form of `path`; a path that does
/// not exist yet is resolved through its parent (which must exist).
pub fn resolve_path(path: &Path) -> io::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => std::fs::canonicalize(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let file = match path.components().next_back() {
                Some(Component::Normal(f)) => f.to_owned(),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("unexpected last path component in {}", path.display()),
                    ));
                }
            };
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => std::fs::canonicalize(p)?,
                _ => std::env::current_dir()?,
            };
            Ok(parent.join(file))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_scopes() {
        assert!(validate_scope("dir", "/a/b").is_ok());
        assert!(validate_scope("dir", "a/b").is_err());
        assert!(validate_scope("dir", "/").is_err());
        assert!(validate_scope("dir", "/a/").is_err());
        assert!(validate_scope("oci", "/a//b").is_err());
        assert!(validate_scope("oci-archive", "/a/./b").is_err());
        assert!(validate_scope("sif", "/a/../b").is_err());
        assert!(validate_scope("docker-archive", "/a").is_err());
        assert!(validate_scope("tarball", "x").is_err());
        assert!(validate_scope("docker", "foo*.example.com").is_ok());
        assert!(validate_scope("whatever", "anything").is_ok());
        assert_eq!(path_parents("/a/b/c"), ["/a/b", "/a"]);
    }

    #[test]
    fn storage_scopes_validation() {
        let id = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for ok in [
            "[vfs@/var/lib/containers/storage]".to_owned(),
            "[/var/lib/containers/storage]".to_owned(),
            "[vfs@/root]docker.io/library/busybox:latest".to_owned(),
            format!("[vfs@/root]busybox@{id}"),
            format!("[vfs@/root]busybox@sha256:{id}"),
            format!("[vfs@/root]busybox:l@sha256:{id}@{id}"),
        ] {
            assert!(validate_scope("containers-storage", &ok).is_ok(), "{ok}");
        }
        for bad in [
            "vfs@/root",
            "[]",
            "[vfs@relative]",
            "[relative]",
            "[@/root]",
            "[vfs@/root]busybox@notanid",
        ] {
            assert!(validate_scope("containers-storage", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn atomic_scopes() {
        for ok in [
            "host",
            "host/ns",
            "host/ns/stream",
            "host/ns/stream:tag",
            "host:5000/ns",
        ] {
            assert!(validate_atomic_scope(ok).is_ok(), "{ok}");
        }
        for bad in ["host/ns:x", "host/ns/stream:t:u", "host/ns/stream/x"] {
            assert!(validate_atomic_scope(bad).is_err(), "{bad}");
        }
    }
}
