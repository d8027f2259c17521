//! Where credentials come from: `--creds`, then auth files (containers' `auth.json`, Docker's `config.json`
//! with `auths` and `credHelpers`), searched in containers/image's order.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::{Credentials, RegistryError, SourceOptions};

/// The largest auth file strata reads.
const MAX_AUTH_FILE_SIZE: u64 = 4 * 1024 * 1024;
/// The most a credential helper may print.
const MAX_HELPER_OUTPUT: u64 = 1024 * 1024;

/// A secret to authenticate with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    /// User name and password: sent as Basic auth to the registry or to the token server.
    Basic(Credentials),
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token server.
    IdentityToken {
        /// The user name, if the file had one.
        username: String,
        /// The refresh token.
        token: String,
    },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Basic(c) => c.fmt(f),
            Secret::IdentityToken { username, .. } => f
                .debug_struct("IdentityToken")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
}

/// One file to search; legacy files (`~/.dockercfg`) have no `auths` wrapper and are keyed by host only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthPath {
    pub path: PathBuf,
    pub legacy: bool,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The files to search, in order. An explicit file (option or `REGISTRY_AUTH_FILE`) excludes all others.
pub(crate) fn auth_paths(options: &SourceOptions) -> Vec<AuthPath> {
    if let Some(path) = options
        .authfile
        .clone()
        .or_else(|| env_path("REGISTRY_AUTH_FILE"))
    {
        return vec![AuthPath {
            path,
            legacy: false,
        }];
    }
    let mut paths = Vec::new();
    let runtime = match env_path("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("containers/auth.json"),
        None => PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            rustix::process::getuid().as_raw()
        )),
    };
    paths.push(runtime);
    let home = env_path("HOME");
    if let Some(config) =
        env_path("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
    {
        paths.push(config.join("containers/auth.json"));
    }
    if let Some(docker) = env_path("DOCKER_CONFIG") {
        paths.push(docker.join("config.json"));
    } else if let Some(h) = &home {
        paths.push(h.join(".docker/config.json"));
    }
    let mut out: Vec<AuthPath> = paths
        .into_iter()
        .map(|path| AuthPath {
            path,
            legacy: false,
        })
        .collect();
    if let Some(h) = &home {
        out.push(AuthPath {
            path: h.join(".dockercfg"),
            legacy: true,
        });
    }
    out
}

/// The credentials for `registry` (`host[:port]`) and `repository`, or `None` for anonymous access.
pub(crate) fn lookup(
    options: &SourceOptions,
    registry: &str,
    repository: &str,
) -> Result<Option<Secret>, RegistryError> {
    if let Some(creds) = &options.credentials {
        return Ok(Some(Secret::Basic(creds.clone())));
    }
    for auth_path in auth_paths(options) {
        if let Some(secret) = lookup_in_file(&auth_path, registry, repository)? {
            return Ok(Some(secret));
        }
    }
    Ok(None)
}

/// Reads at most `limit` bytes of `path`; `Ok(None)` when it does not exist; an error message otherwise.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(Some(bytes))
}

fn lookup_in_file(
    auth_path: &AuthPath,
    registry: &str,
    repository: &str,
) -> Result<Option<Secret>, RegistryError> {
    let path = &auth_path.path;
    let config_error = |reason: String| RegistryError::Config {
        path: path.clone(),
        reason,
    };
    let Some(bytes) = read_bounded(path, MAX_AUTH_FILE_SIZE).map_err(config_error)? else {
        return Ok(None);
    };
    let file: AuthFile = if auth_path.legacy {
        let auths: BTreeMap<String, AuthEntry> = serde_json::from_slice(&bytes)
            .map_err(|e| config_error(format!("malformed JSON: {e}")))?;
        AuthFile {
            auths,
            cred_helpers: BTreeMap::new(),
        }
    } else {
        serde_json::from_slice(&bytes).map_err(|e| config_error(format!("malformed JSON: {e}")))?
    };
    if let Some(helper) = file.cred_helpers.get(registry) {
        return run_helper(helper, registry);
    }
    let keys: Vec<String> = if auth_path.legacy {
        vec![registry.to_owned()]
    } else {
        keys_for(&format!("{registry}/{repository}"))
    };
    for key in &keys {
        if let Some(entry) = file.auths.get(key) {
            return decode(path, key, entry);
        }
    }
    // Keys in the old `https://host/v1/` style match by host.
    let wanted = normalize_registry(registry);
    for (key, entry) in &file.auths {
        if normalize_key(key, auth_path.legacy) == wanted {
            return decode(path, key, entry);
        }
    }
    Ok(None)
}

/// `host/ns/repo`, `host/ns`, `host`: most specific first.
fn keys_for(name: &str) -> Vec<String> {
    let mut keys = vec![name.to_owned()];
    let mut rest = name;
    while let Some((head, _)) = rest.rsplit_once('/') {
        keys.push(head.to_owned());
        rest = head;
    }
    keys
}

fn normalize_registry(registry: &str) -> &str {
    match registry {
        "registry-1.docker.io" | "docker.io" => "index.docker.io",
        other => other,
    }
}

fn normalize_key(key: &str, legacy: bool) -> &str {
    let stripped = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"));
    let host = match stripped {
        Some(s) => s.split('/').next().unwrap_or(s),
        None if legacy => key.split('/').next().unwrap_or(key),
        None => key,
    };
    normalize_registry(host)
}

fn decode(path: &Path, key: &str, entry: &AuthEntry) -> Result<Option<Secret>, RegistryError> {
    let config_error = |reason: String| RegistryError::Config {
        path: path.to_path_buf(),
        reason: format!("entry {key:?}: {reason}"),
    };
    let (username, password) = if entry.auth.is_empty() {
        (String::new(), String::new())
    } else {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(entry.auth.trim())
            .map_err(|e| config_error(format!("\"auth\" is not base64: {e}")))?;
        let text =
            String::from_utf8(raw).map_err(|_| config_error("\"auth\" is not UTF-8".into()))?;
        match text.split_once(':') {
            Some((u, p)) => (u.to_owned(), p.to_owned()),
            None => {
                return Err(config_error(
                    "\"auth\" is not base64 of USER:PASSWORD".into(),
                ));
            }
        }
    };
    if !entry.identity_token.is_empty() {
        return Ok(Some(Secret::IdentityToken {
            username,
            token: entry.identity_token.clone(),
        }));
    }
    if username.is_empty() && password.is_empty() {
        return Ok(None);
    }
    Ok(Some(Secret::Basic(Credentials { username, password })))
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-HELPER get` with the registry on stdin.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Secret>, RegistryError> {
    let fail = |reason: String| RegistryError::CredentialHelper {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        reason,
    };
    if helper.is_empty() || helper.contains(['/', '\0']) {
        return Err(fail("invalid helper name".into()));
    }
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE: its exit status tells the rest.
        let _ = stdin.write_all(registry.as_bytes());
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_HELPER_OUTPUT)
            .read_to_end(&mut out)
            .map_err(|e| fail(e.to_string()))?;
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        let text = String::from_utf8_lossy(&out);
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{status}: {}",
            super::http::clean_text(&text)
        )));
    }
    let output: HelperOutput =
        serde_json::from_slice(&out).map_err(|e| fail(format!("malformed output: {e}")))?;
    if output.username == "<token>" {
        return Ok(Some(Secret::IdentityToken {
            username: String::new(),
            token: output.secret,
        }));
    }
    if output.username.is_empty() && output.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Secret::Basic(Credentials {
        username: output.username,
        password: output.secret,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> AuthPath {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        AuthPath {
            path,
            legacy: name.ends_with("dockercfg"),
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn most_specific_key_wins() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"{{"auths": {{
                "reg.example:5000": {{"auth": "{}"}},
                "reg.example:5000/team": {{"auth": "{}"}},
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "tok.example": {{"auth": "{}", "identitytoken": "refresh"}}
            }}}}"#,
            b64("host:pw1"),
            b64("team:pw2"),
            b64("hub:pw3"),
            b64("t:")
        );
        let p = write(dir.path(), "auth.json", &text);
        let user = |reg: &str, repo: &str| match lookup_in_file(&p, reg, repo).unwrap() {
            Some(Secret::Basic(c)) => c.username,
            Some(Secret::IdentityToken { token, .. }) => format!("token:{token}"),
            None => "-".into(),
        };
        assert_eq!(user("reg.example:5000", "team/app"), "team");
        assert_eq!(user("reg.example:5000", "other/app"), "host");
        assert_eq!(user("docker.io", "library/debian"), "hub");
        assert_eq!(user("tok.example", "x"), "token:refresh");
        assert_eq!(user("nope.example", "x"), "-");
    }

    #[test]
    fn legacy_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            ".dockercfg",
            &format!(
                r#"{{"https://old.example/v1/": {{"auth": "{}"}}}}"#,
                b64("o:p")
            ),
        );
        assert!(matches!(
            lookup_in_file(&p, "old.example", "a/b").unwrap(),
            Some(Secret::Basic(_))
        ));
        let bad = write(dir.path(), "bad.json", "{");
        let err = lookup_in_file(&bad, "x", "y").unwrap_err().to_string();
        assert!(err.contains("bad.json"), "{err}");
        let bad = write(dir.path(), "bad2.json", r#"{"auths":{"x":{"auth":"!!"}}}"#);
        let err = lookup_in_file(&bad, "x", "y").unwrap_err().to_string();
        assert!(err.contains("base64"), "{err}");
    }

    #[test]
    fn explicit_file_excludes_the_others() {
        let options = SourceOptions {
            authfile: Some(PathBuf::from("/x/auth.json")),
            ..SourceOptions::default()
        };
        assert_eq!(auth_paths(&options).len(), 1);
        if std::env::var_os("REGISTRY_AUTH_FILE").is_none() {
            assert!(auth_paths(&SourceOptions::default()).len() >= 2);
        }
    }

    #[test]
    fn keys() {
        assert_eq!(keys_for("h:1/a/b"), vec!["h:1/a/b", "h:1/a", "h:1"]);
    }
}
