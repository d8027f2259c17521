//! containers-policy.json: the model and its strict reader.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::{Fault, KeyLoadError, PolicyError};
use crate::identity::SignedIdentity;
use crate::json::{self, Json, index_path, member_path};
use crate::lookup;

/// The system-wide policy file.
pub const SYSTEM_POLICY_PATH: &str = "/etc/containers/policy.json";

/// The per-user policy file, relative to the home directory.
pub const USER_POLICY_FILE: &str = ".config/containers/policy.json";

/// The largest key, keyring or certificate file [`KeySource::load`] reads.
pub const MAX_KEY_FILE_SIZE: u64 = 64 << 20;

/// The largest policy file [`Policy::from_file`] reads.
pub const MAX_POLICY_FILE_SIZE: u64 = 64 << 20;

/// A parsed containers-policy.json.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The requirements used when no transport scope matches (`default`, never empty).
    pub default: Vec<Requirement>,
    /// `transports`: transport name → scope → requirements (each list non-empty). Unknown transport names are
    /// kept, as containers/image keeps them.
    pub transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

/// One policy requirement; every requirement of the list chosen for an image must allow it.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// `insecureAcceptAnything`: allows any image, but never makes a signature "accepted".
    InsecureAcceptAnything,
    /// `reject`: refuses every image.
    Reject,
    /// `signedBy`: simple signing (OpenPGP).
    SignedBy(SignedBy),
    /// `signedBaseLayer`: parses, and always rejects (containers/image has never implemented it).
    SignedBaseLayer {
        /// `baseLayerIdentity`.
        base_layer_identity: SignedIdentity,
    },
    /// `sigstoreSigned`: cosign-format signatures.
    SigstoreSigned(SigstoreSigned),
}

/// A `signedBy` requirement.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedBy {
    /// `keyType`: only [`KeyType::GpgKeys`] can ever accept a signature.
    pub key_type: KeyType,
    /// Exactly one of `keyPath`, `keyPaths`, `keyData` (never [`KeySource::Datas`]).
    pub keys: KeySource,
    /// `signedIdentity` (default `matchRepoDigestOrExact`).
    pub signed_identity: SignedIdentity,
}

/// `signedBy`'s `keyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `GPGKeys`: OpenPGP public keys (the only implemented type).
    GpgKeys,
    /// `signedByGPGKeys`: parses; evaluation rejects with `Unimplemented "keyType"`.
    SignedByGpgKeys,
    /// `X509Certificates`: parses; evaluation rejects.
    X509Certificates,
    /// `signedByX509CAs`: parses; evaluation rejects.
    SignedByX509Cas,
}

impl KeyType {
    /// The value as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::GpgKeys => "GPGKeys",
            KeyType::SignedByGpgKeys => "signedByGPGKeys",
            KeyType::X509Certificates => "X509Certificates",
            KeyType::SignedByX509Cas => "signedByX509CAs",
        }
    }

    /// Whether containers/image can verify signatures with this key type (only `GPGKeys`).
    pub fn is_implemented(self) -> bool {
        self == KeyType::GpgKeys
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GPGKeys" => KeyType::GpgKeys,
            "signedByGPGKeys" => KeyType::SignedByGpgKeys,
            "X509Certificates" => KeyType::X509Certificates,
            "signedByX509CAs" => KeyType::SignedByX509Cas,
            _ => return None,
        })
    }
}

/// Where a requirement's keys come from. Files are not read while parsing: [`KeySource::load`] reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `keyPath` (or `rekorPublicKeyPath`): one file.
    Path(PathBuf),
    /// `keyPaths` (or `rekorPublicKeyPaths`): several files.
    Paths(Vec<PathBuf>),
    /// `keyData` (or `rekorPublicKeyData`): the key bytes, base64-decoded from the policy.
    Data(Vec<u8>),
    /// `keyDatas` (or `rekorPublicKeyDatas`): several keys' bytes (sigstore only).
    Datas(Vec<Vec<u8>>),
}

impl KeySource {
    /// The key bytes, one item per file or datum, as containers/image loads them: relative paths are resolved
    /// against the process's working directory (containers/image calls `os.ReadFile` on the path as written,
    /// not relative to the policy file). For `signedBy` every item is an OpenPGP keyring; for `sigstoreSigned`
    /// a PEM public key.
    pub fn load(&self) -> Result<Vec<Vec<u8>>, KeyLoadError> {
        match self {
            KeySource::Path(p) => Ok(vec![read_key_file(p)?]),
            KeySource::Paths(ps) => ps.iter().map(|p| read_key_file(p)).collect(),
            KeySource::Data(d) => Ok(vec![d.clone()]),
            KeySource::Datas(ds) => Ok(ds.clone()),
        }
    }
}

/// A certificate or CA bundle given by path or inline (`caPath`/`caData`, `caRootsPath`/`caRootsData`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathOrData {
    /// A file (read by [`PathOrData::load`]).
    Path(PathBuf),
    /// Inline bytes, base64-decoded from the policy.
    Data(Vec<u8>),
}

impl PathOrData {
    /// The bytes (relative paths are relative to the working directory, as in containers/image).
    pub fn load(&self) -> Result<Vec<u8>, KeyLoadError> {
        match self {
            PathOrData::Path(p) => read_key_file(p),
            PathOrData::Data(d) => Ok(d.clone()),
        }
    }
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyLoadError> {
    let read = |source| KeyLoadError::Read {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_KEY_FILE_SIZE {
        return Err(KeyLoadError::TooLarge {
            path: path.to_owned(),
            limit: MAX_KEY_FILE_SIZE,
        });
    }
    Ok(bytes)
}

/// A `sigstoreSigned` requirement.
#[derive(Debug, Clone, PartialEq)]
pub struct SigstoreSigned {
    /// Exactly one of the public keys (`keyPath`, `keyPaths`, `keyData`, `keyDatas`), `fulcio` or `pki`.
    pub trust: SigstoreTrust,
    /// `rekorPublicKeyPath(s)`/`rekorPublicKeyData(s)`: required with `fulcio`, refused with `pki`.
    pub rekor_public_keys: Option<KeySource>,
    /// `signedIdentity` (default `matchRepoDigestOrExact`).
    pub signed_identity: SignedIdentity,
}

/// What a `sigstoreSigned` signature must chain to.
#[derive(Debug, Clone, PartialEq)]
pub enum SigstoreTrust {
    /// Public keys (PEM).
    Keys(KeySource),
    /// Fulcio-issued certificates.
    Fulcio(Fulcio),
    /// Certificates from a private PKI.
    Pki(Pki),
}

/// `sigstoreSigned.fulcio`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulcio {
    /// `caPath` or `caData`: the Fulcio CA certificates (PEM).
    pub ca: PathOrData,
    /// `oidcIssuer` (non-empty).
    pub oidc_issuer: String,
    /// `subjectEmail` (non-empty).
    pub subject_email: String,
}

/// `sigstoreSigned.pki`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    /// `caRootsPath` or `caRootsData`.
    pub ca_roots: PathOrData,
    /// `caIntermediatesPath` or `caIntermediatesData`, optional.
    pub ca_intermediates: Option<PathOrData>,
    /// `subjectEmail` (at least one of it and `subjectHostname`).
    pub subject_email: Option<String>,
    /// `subjectHostname`.
    pub subject_hostname: Option<String>,
}

impl Requirement {
    /// The `type` as written in the policy.
    pub fn type_name(&self) -> &'static str {
        match self {
            Requirement::InsecureAcceptAnything => "insecureAcceptAnything",
            Requirement::Reject => "reject",
            Requirement::SignedBy(_) => "signedBy",
            Requirement::SignedBaseLayer { .. } => "signedBaseLayer",
            Requirement::SigstoreSigned(_) => "sigstoreSigned",
        }
    }

    /// The signature identity rule, for the requirements that check signatures.
    pub fn signed_identity(&self) -> Option<&SignedIdentity> {
        match self {
            Requirement::SignedBy(s) => Some(&s.signed_identity),
            Requirement::SigstoreSigned(s) => Some(&s.signed_identity),
            _ => None,
        }
    }

    /// Loads the verification keys the requirement names, for the crypto code: OpenPGP keyrings for
    /// `signedBy`, PEM public keys for `sigstoreSigned` with keys. `None` for requirements that take no keys
    /// (including `sigstoreSigned` with `fulcio` or `pki`: load [`Fulcio::ca`] / [`Pki::ca_roots`] instead).
    pub fn load_keys(&self) -> Result<Option<Vec<Vec<u8>>>, KeyLoadError> {
        match self {
            Requirement::SignedBy(s) => s.keys.load().map(Some),
            Requirement::SigstoreSigned(SigstoreSigned {
                trust: SigstoreTrust::Keys(k),
                ..
            }) => k.load().map(Some),
            _ => Ok(None),
        }
    }
}

impl Policy {
    /// The policy file podman and skopeo would use: `path` if given; else
    /// `$HOME/.config/containers/policy.json` if it exists; else `/etc/containers/policy.json` if it exists;
    /// else [`PolicyError::NotFound`].
    pub fn default_path(path: Option<&Path>) -> Result<PathBuf, PolicyError> {
        if let Some(p) = path {
            return Ok(p.to_owned());
        }
        let user = std::env::home_dir()
            .unwrap_or_default()
            .join(USER_POLICY_FILE);
        if user.exists() {
            return Ok(user);
        }
        let system = PathBuf::from(SYSTEM_POLICY_PATH);
        if system.exists() {
            return Ok(system);
        }
        Err(PolicyError::NotFound { user, system })
    }

    /// Finds ([`Policy::default_path`]) and reads the policy. A missing file is an error, never a fallback.
    pub fn load(path: Option<&Path>) -> Result<Policy, PolicyError> {
        Policy::from_file(&Policy::default_path(path)?)
    }

    /// Reads and parses one policy file.
    pub fn from_file(file: &Path) -> Result<Policy, PolicyError> {
        let read = |source| PolicyError::Read {
            file: file.to_owned(),
            source,
        };
        let f = fs::File::open(file).map_err(read)?;
        let mut data = Vec::new();
        f.take(MAX_POLICY_FILE_SIZE + 1)
            .read_to_end(&mut data)
            .map_err(read)?;
        if data.len() as u64 > MAX_POLICY_FILE_SIZE {
            return Err(PolicyError::Invalid {
                file: file.to_owned(),
                json_path: "$".into(),
                reason: format!("file is over the {MAX_POLICY_FILE_SIZE}-byte limit"),
            });
        }
        Policy::from_bytes(&data, file)
    }

    /// Parses a policy document; `file` names it in errors. As strict as containers/image: an unknown or
    /// duplicate key, a missing required key, a value of the wrong type, an empty requirement list, an
    /// invalid scope of a known transport or a missing `default` refuses the whole document.
    pub fn from_bytes(data: &[u8], file: &Path) -> Result<Policy, PolicyError> {
        let tree = json::parse(data).map_err(|source| PolicyError::Syntax {
            file: file.to_owned(),
            source,
        })?;
        parse_policy(&tree).map_err(|f| PolicyError::Invalid {
            file: file.to_owned(),
            json_path: f.path,
            reason: f.reason,
        })
    }
}

type R<T> = Result<T, Fault>;

/// Walks the members of the object at `path` in order, refusing duplicates; `f` returns `Ok(false)` for a key
/// it does not know, which refuses the object.
fn walk_object(v: &Json, path: &str, mut f: impl FnMut(&str, &Json, &str) -> R<bool>) -> R<()> {
    let Json::Object(members) = v else {
        return Err(Fault::new(
            path,
            format!("JSON object expected, got {}", v.kind()),
        ));
    };
    let mut seen = HashSet::new();
    for (key, value) in members {
        let p = member_path(path, key);
        if !seen.insert(key.as_str()) {
            return Err(Fault::new(&p, format!("duplicate key {key:?}")));
        }
        if !f(key, value, &p)? {
            return Err(Fault::new(&p, format!("unknown key {key:?}")));
        }
    }
    Ok(())
}

/// A JSON string decoded as Go decodes into a `string`: `null` leaves it empty.
pub(crate) fn string(v: &Json, path: &str) -> R<String> {
    match v {
        Json::String(s) => Ok(s.clone()),
        Json::Null => Ok(String::new()),
        other => Err(Fault::new(
            path,
            format!("expected a string, got {}", other.kind()),
        )),
    }
}

/// A JSON array of strings decoded as Go decodes into `[]string`: `null` is a nil slice (`None`).
fn strings(v: &Json, path: &str) -> R<Option<Vec<String>>> {
    match v {
        Json::Null => Ok(None),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| string(item, &index_path(path, i)))
            .collect::<R<Vec<_>>>()
            .map(Some),
        other => Err(Fault::new(
            path,
            format!("expected an array of strings, got {}", other.kind()),
        )),
    }
}

/// Go's `encoding/json` `[]byte`: standard base64 with padding; CR and LF are skipped; `null` is nil.
fn bytes(v: &Json, path: &str) -> R<Option<Vec<u8>>> {
    const GO_STD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    match v {
        Json::Null => Ok(None),
        Json::String(s) => {
            let cleaned: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
            GO_STD
                .decode(cleaned.as_bytes())
                .map(Some)
                .map_err(|e| Fault::new(path, format!("invalid base64 data: {e}")))
        }
        other => Err(Fault::new(
            path,
            format!("expected a base64 string, got {}", other.kind()),
        )),
    }
}

fn byte_lists(v: &Json, path: &str) -> R<Option<Vec<Vec<u8>>>> {
    match v {
        Json::Null => Ok(None),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| bytes(item, &index_path(path, i)).map(Option::unwrap_or_default))
            .collect::<R<Vec<_>>>()
            .map(Some),
        other => Err(Fault::new(
            path,
            format!("expected an array of base64 strings, got {}", other.kind()),
        )),
    }
}

fn parse_policy(v: &Json) -> R<Policy> {
    let mut default = None;
    let mut transports = BTreeMap::new();
    walk_object(v, "$", |key, value, p| {
        match key {
            "default" => default = Some(parse_requirements(value, p)?),
            "transports" => transports = parse_transports(value, p)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let default = default.ok_or_else(|| Fault::new("$", "Default policy is missing"))?;
    Ok(Policy {
        default,
        transports,
    })
}

type Scopes = BTreeMap<String, Vec<Requirement>>;

fn parse_transports(v: &Json, path: &str) -> R<BTreeMap<String, Scopes>> {
    let mut out = BTreeMap::new();
    walk_object(v, path, |transport, value, p| {
        out.insert(transport.to_owned(), parse_scopes(transport, value, p)?);
        Ok(true)
    })?;
    Ok(out)
}

fn parse_scopes(transport: &str, v: &Json, path: &str) -> R<Scopes> {
    let mut out = BTreeMap::new();
    walk_object(v, path, |scope, value, p| {
        // containers/image reports an invalid scope as an unknown key; say why.
        if !scope.is_empty()
            && let Err(reason) = lookup::validate_scope(transport, scope)
        {
            return Err(Fault::new(
                p,
                format!("invalid scope {scope:?} for transport {transport:?}: {reason}"),
            ));
        }
        out.insert(scope.to_owned(), parse_requirements(value, p)?);
        Ok(true)
    })?;
    Ok(out)
}

fn parse_requirements(v: &Json, path: &str) -> R<Vec<Requirement>> {
    let items = match v {
        Json::Array(items) => items.as_slice(),
        Json::Null => &[],
        other => {
            return Err(Fault::new(
                path,
                format!("expected an array of requirements, got {}", other.kind()),
            ));
        }
    };
    if items.is_empty() {
        return Err(Fault::new(
            path,
            "List of verification policy requirements must not be empty",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_requirement(item, &index_path(path, i)))
        .collect()
}

/// The `type` member of a requirement or identity object (Go first decodes only this member).
pub(crate) fn type_of(v: &Json, path: &str) -> R<String> {
    match v {
        Json::Object(members) => match members.iter().rev().find(|(k, _)| k == "type") {
            Some((_, t)) => string(t, &member_path(path, "type")),
            None => Ok(String::new()),
        },
        Json::Null => Ok(String::new()),
        other => Err(Fault::new(
            path,
            format!("JSON object expected, got {}", other.kind()),
        )),
    }
}

/// An object with exactly the members `fields` (plus `type`), each present once.
pub(crate) fn exact_fields(
    v: &Json,
    path: &str,
    fields: &[&str],
) -> R<Vec<(String, Json, String)>> {
    let mut got = Vec::new();
    walk_object(v, path, |key, value, p| {
        if key == "type" {
            string(value, p)?;
            return Ok(true);
        }
        if !fields.contains(&key) {
            return Ok(false);
        }
        got.push((key.to_owned(), value.clone(), p.to_owned()));
        Ok(true)
    })?;
    let has_type = matches!(v, Json::Object(m) if m.iter().any(|(k, _)| k == "type"));
    if !has_type {
        return Err(Fault::new(path, "key \"type\" missing in a JSON object"));
    }
    for f in fields {
        if !got.iter().any(|(k, _, _)| k == f) {
            return Err(Fault::new(
                path,
                format!("key {f:?} missing in a JSON object"),
            ));
        }
    }
    Ok(got)
}

fn parse_requirement(v: &Json, path: &str) -> R<Requirement> {
    let ty = type_of(v, path)?;
    match ty.as_str() {
        "insecureAcceptAnything" => {
            exact_fields(v, path, &[])?;
            Ok(Requirement::InsecureAcceptAnything)
        }
        "reject" => {
            exact_fields(v, path, &[])?;
            Ok(Requirement::Reject)
        }
        "signedBy" => parse_signed_by(v, path).map(Requirement::SignedBy),
        "signedBaseLayer" => {
            let fields = exact_fields(v, path, &["baseLayerIdentity"])?;
            let mut identity = None;
            for (_, value, p) in &fields {
                identity = Some(SignedIdentity::from_json(value, p)?);
            }
            let base_layer_identity =
                identity.ok_or_else(|| Fault::new(path, "baseLayerIdentity not specified"))?;
            Ok(Requirement::SignedBaseLayer {
                base_layer_identity,
            })
        }
        "sigstoreSigned" => parse_sigstore_signed(v, path).map(Requirement::SigstoreSigned),
        other => Err(Fault::new(
            &member_path(path, "type"),
            format!("Unknown policy requirement type {other:?}"),
        )),
    }
}

fn parse_signed_by(v: &Json, path: &str) -> R<SignedBy> {
    let mut key_type: Option<KeyType> = None;
    let mut key_path: Option<String> = None;
    let mut key_paths: Option<Option<Vec<String>>> = None;
    let mut key_data: Option<Option<Vec<u8>>> = None;
    let mut identity = None;
    walk_object(v, path, |key, value, p| {
        match key {
            "type" => {
                string(value, p)?;
            }
            "keyType" => {
                let s = string(value, p)?;
                key_type =
                    Some(KeyType::parse(&s).ok_or_else(|| {
                        Fault::new(p, format!("Unrecognized keyType value {s:?}"))
                    })?);
            }
            "keyPath" => key_path = Some(string(value, p)?),
            "keyPaths" => key_paths = Some(strings(value, p)?),
            "keyData" => key_data = Some(bytes(value, p)?),
            "signedIdentity" => identity = Some(SignedIdentity::from_json(value, p)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let signed_identity = identity.unwrap_or(SignedIdentity::MatchRepoDigestOrExact);
    let present = [key_path.is_some(), key_paths.is_some(), key_data.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    match present {
        0 => {
            return Err(Fault::new(
                path,
                "Exactly one of keyPath, keyPaths and keyData must be specified, none of them present",
            ));
        }
        1 => {}
        _ => {
            return Err(Fault::new(
                path,
                "Exactly one of keyPath, keyPaths and keyData must be specified, more than one present",
            ));
        }
    }
    let key_type = key_type.ok_or_else(|| Fault::new(path, "invalid keyType \"\""))?;
    let keys = match (key_path, key_paths, key_data) {
        (Some(p), _, _) if !p.is_empty() => Some(KeySource::Path(PathBuf::from(p))),
        (_, Some(Some(ps)), _) => Some(KeySource::Paths(
            ps.into_iter().map(PathBuf::from).collect(),
        )),
        (_, _, Some(Some(d))) => Some(KeySource::Data(d)),
        _ => None,
    };
    let keys = keys.ok_or_else(|| {
        Fault::new(
            path,
            "exactly one of keyPath, keyPaths and keyData must be specified",
        )
    })?;
    Ok(SignedBy {
        key_type,
        keys,
        signed_identity,
    })
}

/// Collects `*Path`/`*Paths`/`*Data`/`*Datas` sources with containers/image's option rules (empty path and
/// null data count as absent; an empty list is an error).
#[derive(Default)]
struct Sources {
    found: Vec<KeySource>,
}

impl Sources {
    fn path(&mut self, s: String) {
        if !s.is_empty() {
            self.found.push(KeySource::Path(PathBuf::from(s)));
        }
    }
    fn paths(&mut self, v: Option<Vec<String>>, key: &str, p: &str) -> R<()> {
        match v {
            Some(list) if !list.is_empty() => {
                self.found.push(KeySource::Paths(
                    list.into_iter().map(PathBuf::from).collect(),
                ));
                Ok(())
            }
            _ => Err(Fault::new(p, format!("{key:?} contains no entries"))),
        }
    }
    fn data(&mut self, v: Option<Vec<u8>>) {
        if let Some(d) = v {
            self.found.push(KeySource::Data(d));
        }
    }
    fn datas(&mut self, v: Option<Vec<Vec<u8>>>, key: &str, p: &str) -> R<()> {
        match v {
            Some(list) if !list.is_empty() => {
                self.found.push(KeySource::Datas(list));
                Ok(())
            }
            _ => Err(Fault::new(p, format!("{key:?} contains no entries"))),
        }
    }
}

fn parse_sigstore_signed(v: &Json, path: &str) -> R<SigstoreSigned> {
    let mut keys = Sources::default();
    let mut rekor = Sources::default();
    let mut fulcio = None;
    let mut pki = None;
    let mut identity = None;
    walk_object(v, path, |key, value, p| {
        match key {
            "type" => {
                string(value, p)?;
            }
            "keyPath" => keys.path(string(value, p)?),
            "keyPaths" => keys.paths(strings(value, p)?, key, p)?,
            "keyData" => keys.data(bytes(value, p)?),
            "keyDatas" => keys.datas(byte_lists(value, p)?, key, p)?,
            "fulcio" => fulcio = Some(parse_fulcio(value, p)?),
            "pki" => pki = Some(parse_pki(value, p)?),
            "rekorPublicKeyPath" => rekor.path(string(value, p)?),
            "rekorPublicKeyPaths" => rekor.paths(strings(value, p)?, key, p)?,
            "rekorPublicKeyData" => rekor.data(bytes(value, p)?),
            "rekorPublicKeyDatas" => rekor.datas(byte_lists(value, p)?, key, p)?,
            "signedIdentity" => identity = Some(SignedIdentity::from_json(value, p)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let signed_identity = identity.unwrap_or(SignedIdentity::MatchRepoDigestOrExact);
    let sources = keys.found.len() + usize::from(fulcio.is_some()) + usize::from(pki.is_some());
    if sources != 1 {
        return Err(Fault::new(
            path,
            "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified",
        ));
    }
    if rekor.found.len() > 1 {
        return Err(Fault::new(
            path,
            "at most one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas can be used simultaneously",
        ));
    }
    let rekor_public_keys = rekor.found.pop();
    let trust = if let Some(f) = fulcio {
        if rekor_public_keys.is_none() {
            return Err(Fault::new(
                path,
                "at least one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas must be specified if fulcio is used",
            ));
        }
        SigstoreTrust::Fulcio(f)
    } else if let Some(p) = pki {
        if rekor_public_keys.is_some() {
            return Err(Fault::new(
                path,
                "rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas are not supported for pki",
            ));
        }
        SigstoreTrust::Pki(p)
    } else {
        match keys.found.pop() {
            Some(k) => SigstoreTrust::Keys(k),
            None => return Err(Fault::new(path, "no key source")),
        }
    };
    Ok(SigstoreSigned {
        trust,
        rekor_public_keys,
        signed_identity,
    })
}

/// One of `<name>Path` / `<name>Data` (both → error, `required` and neither → error).
fn path_or_data(
    path_value: Option<String>,
    data_value: Option<Option<Vec<u8>>>,
    names: (&str, &str),
    path: &str,
) -> R<Option<PathOrData>> {
    let p = path_value.filter(|s| !s.is_empty());
    let d = data_value.flatten();
    match (p, d) {
        (Some(_), Some(_)) => Err(Fault::new(
            path,
            format!("{} and {} cannot be used simultaneously", names.0, names.1),
        )),
        (Some(p), None) => Ok(Some(PathOrData::Path(PathBuf::from(p)))),
        (None, Some(d)) => Ok(Some(PathOrData::Data(d))),
        (None, None) => Ok(None),
    }
}

fn parse_fulcio(v: &Json, path: &str) -> R<Fulcio> {
    let (mut ca_path, mut ca_data, mut issuer, mut email) = (None, None, None, None);
    walk_object(v, path, |key, value, p| {
        match key {
            "caPath" => ca_path = Some(string(value, p)?),
            "caData" => ca_data = Some(bytes(value, p)?),
            "oidcIssuer" => issuer = Some(string(value, p)?),
            "subjectEmail" => email = Some(string(value, p)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let ca = path_or_data(ca_path, ca_data, ("caPath", "caData"), path)?
        .ok_or_else(|| Fault::new(path, "At least one of caPath and caData must be specified"))?;
    let oidc_issuer = issuer
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Fault::new(path, "oidcIssuer not specified"))?;
    let subject_email = email
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Fault::new(path, "subjectEmail not specified"))?;
    Ok(Fulcio {
        ca,
        oidc_issuer,
        subject_email,
    })
}

fn parse_pki(v: &Json, path: &str) -> R<Pki> {
    let (mut roots_path, mut roots_data, mut int_path, mut int_data) = (None, None, None, None);
    let (mut email, mut hostname) = (None, None);
    walk_object(v, path, |key, value, p| {
        match key {
            "caRootsPath" => roots_path = Some(string(value, p)?),
            "caRootsData" => roots_data = Some(bytes(value, p)?),
            "caIntermediatesPath" => int_path = Some(string(value, p)?),
            "caIntermediatesData" => int_data = Some(bytes(value, p)?),
            "subjectEmail" => email = Some(string(value, p)?),
            "subjectHostname" => hostname = Some(string(value, p)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let ca_roots = path_or_data(roots_path, roots_data, ("caRootsPath", "caRootsData"), path)?
        .ok_or_else(|| {
            Fault::new(
                path,
                "At least one of caRootsPath and caRootsData must be specified",
            )
        })?;
    let ca_intermediates = path_or_data(
        int_path,
        int_data,
        ("caIntermediatesPath", "caIntermediatesData"),
        path,
    )?;
    let subject_email = email.filter(|s| !s.is_empty());
    let subject_hostname = hostname.filter(|s| !s.is_empty());
    if subject_email.is_none() && subject_hostname.is_none() {
        return Err(Fault::new(
            path,
            "At least one of subjectEmail, subjectHostname must be specified",
        ));
    }
    Ok(Pki {
        ca_roots,
        ca_intermediates,
        subject_email,
        subject_hostname,
    })
}
