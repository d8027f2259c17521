//! Manifest and config conversion between Docker v2s2 and OCI, byte for byte as containers/image writes it.
//!
//! containers/image converts a v2s2 image to OCI by decoding its config into the OCI `Image` structure (so
//! Docker-only fields such as `container_config` are dropped) and encoding that again, and by renaming the
//! media types of the manifest, config and layers; the other way it renames media types only (the config
//! blob is kept). Its output is Go's `encoding/json`: fields in struct order, `omitempty` fields left out
//! when empty, map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped. This module writes that form.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use strata_oci::media::{self, Compression};

/// The manifest formats a copy can write (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ManifestFormat {
    /// OCI image manifest (`application/vnd.oci.image.manifest.v1+json`).
    #[serde(rename = "oci")]
    Oci,
    /// Docker image manifest v2, schema 2 (`application/vnd.docker.distribution.manifest.v2+json`).
    #[serde(rename = "v2s2")]
    DockerV2S2,
}

impl ManifestFormat {
    /// The format a manifest media type is written in, when it is an image manifest type.
    pub fn of_manifest_type(media_type: &str) -> Option<ManifestFormat> {
        match media_type {
            media::OCI_MANIFEST => Some(ManifestFormat::Oci),
            media::DOCKER_MANIFEST => Some(ManifestFormat::DockerV2S2),
            _ => None,
        }
    }

    /// The image manifest media type of this format.
    pub fn manifest_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => media::OCI_MANIFEST,
            ManifestFormat::DockerV2S2 => media::DOCKER_MANIFEST,
        }
    }

    /// The other format.
    pub(crate) fn other(self) -> ManifestFormat {
        match self {
            ManifestFormat::Oci => ManifestFormat::DockerV2S2,
            ManifestFormat::DockerV2S2 => ManifestFormat::Oci,
        }
    }

    /// The index media type of this format (OCI's image index, Docker's manifest list).
    pub fn index_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => media::OCI_INDEX,
            ManifestFormat::DockerV2S2 => media::DOCKER_MANIFEST_LIST,
        }
    }

    /// The format an index media type is written in.
    pub fn of_index_type(media_type: &str) -> Option<ManifestFormat> {
        match media_type {
            media::OCI_INDEX => Some(ManifestFormat::Oci),
            media::DOCKER_MANIFEST_LIST => Some(ManifestFormat::DockerV2S2),
            _ => None,
        }
    }

    /// The config media type of this format.
    fn config_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => media::OCI_CONFIG,
            ManifestFormat::DockerV2S2 => media::DOCKER_CONFIG,
        }
    }
}

/// Docker's uncompressed foreign layer type (containers/image knows it; strata-oci does not list it).
pub(crate) const DOCKER_LAYER_FOREIGN_TAR: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar";

/// Whether a layer media type marks a non-distributable (foreign) layer, of either format.
pub(crate) fn is_foreign(media_type: &str) -> bool {
    media::is_non_distributable(media_type) || media_type == DOCKER_LAYER_FOREIGN_TAR
}

/// The compression a layer media type declares (Docker's uncompressed foreign type included).
pub(crate) fn layer_compression(media_type: &str) -> Compression {
    if media_type == DOCKER_LAYER_FOREIGN_TAR {
        return Compression::None;
    }
    Compression::from_layer_media_type(media_type).unwrap_or(Compression::None)
}

/// The layer media type for `compression` in `format`, foreign or not; `None` where the format has no such
/// type (zstd in a Docker v2s2 manifest, as containers/image refuses it).
pub(crate) fn layer_type(
    format: ManifestFormat,
    compression: Compression,
    foreign: bool,
) -> Option<&'static str> {
    Some(match (format, compression, foreign) {
        (ManifestFormat::Oci, Compression::None, false) => media::OCI_LAYER,
        (ManifestFormat::Oci, Compression::Gzip, false) => media::OCI_LAYER_GZIP,
        (ManifestFormat::Oci, Compression::Zstd, false) => media::OCI_LAYER_ZSTD,
        (ManifestFormat::Oci, Compression::None, true) => media::OCI_LAYER_NONDIST,
        (ManifestFormat::Oci, Compression::Gzip, true) => media::OCI_LAYER_NONDIST_GZIP,
        (ManifestFormat::Oci, Compression::Zstd, true) => media::OCI_LAYER_NONDIST_ZSTD,
        (ManifestFormat::DockerV2S2, Compression::None, false) => media::DOCKER_LAYER,
        (ManifestFormat::DockerV2S2, Compression::Gzip, false) => media::DOCKER_LAYER_GZIP,
        (ManifestFormat::DockerV2S2, Compression::None, true) => DOCKER_LAYER_FOREIGN_TAR,
        (ManifestFormat::DockerV2S2, Compression::Gzip, true) => media::DOCKER_LAYER_FOREIGN,
        (ManifestFormat::DockerV2S2, Compression::Zstd, _) => return None,
    })
}

/// Writes JSON as Go's `encoding/json` does.
#[derive(Default)]
pub(crate) struct GoJson {
    out: String,
}

impl GoJson {
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out.into_bytes()
    }

    pub(crate) fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// A string, escaped as Go escapes it (HTML characters too).
    pub(crate) fn string(&mut self, text: &str) {
        self.out.push('"');
        for c in text.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    let _ = write!(self.out, "\\u{:04x}", u32::from(c));
                }
                c if u32::from(c) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", u32::from(c));
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    /// A key and its colon, preceded by a comma unless `first`.
    pub(crate) fn key(&mut self, first: &mut bool, key: &str) {
        if !std::mem::take(first) {
            self.out.push(',');
        }
        self.string(key);
        self.out.push(':');
    }

    pub(crate) fn strings(&mut self, items: &[String]) {
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.string(item);
        }
        self.out.push(']');
    }

    /// A `map[string]string`, keys sorted.
    pub(crate) fn string_map(&mut self, map: &[(String, String)]) {
        let mut sorted: Vec<&(String, String)> = map.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        self.out.push('{');
        let mut first = true;
        for (k, v) in sorted {
            self.key(&mut first, k);
            self.string(v);
        }
        self.out.push('}');
    }

    /// A `map[string]struct{}`, keys sorted.
    fn set(&mut self, keys: &[String]) {
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        self.out.push('{');
        let mut first = true;
        for k in sorted {
            self.key(&mut first, k);
            self.out.push_str("{}");
        }
        self.out.push('}');
    }
}

/// Go's decoding of a JSON object into a struct: each field of `fields` takes the value of the last key
/// matching its name, exactly or case-insensitively; other keys are dropped.
fn fields<'a, const N: usize>(
    object: &'a Map<String, Value>,
    names: [&str; N],
) -> [Option<&'a Value>; N] {
    let mut found = [None; N];
    for (key, value) in object {
        let slot = names
            .iter()
            .position(|n| *n == key)
            .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(key)));
        if let Some(slot) = slot.and_then(|i| found.get_mut(i)) {
            *slot = Some(value);
        }
    }
    found
}

/// What went wrong decoding a config as Go would.
fn type_error(field: &str, want: &str) -> String {
    format!("{field}: not {want}")
}

fn go_string(value: Option<&Value>, field: &str) -> Result<String, String> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(type_error(field, "a string")),
    }
}

fn go_bool(value: Option<&Value>, field: &str) -> Result<bool, String> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(type_error(field, "a boolean")),
    }
}

fn go_strings(value: Option<&Value>, field: &str) -> Result<Option<Vec<String>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| go_string(Some(v), field))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(type_error(field, "an array of strings")),
    }
}

fn go_object<'a>(
    value: Option<&'a Value>,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(type_error(field, "an object")),
    }
}

fn go_string_map(value: Option<&Value>, field: &str) -> Result<Vec<(String, String)>, String> {
    let Some(object) = go_object(value, field)? else {
        return Ok(Vec::new());
    };
    object
        .iter()
        .map(|(k, v)| Ok((k.clone(), go_string(Some(v), field)?)))
        .collect()
}

fn go_set(value: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    let Some(object) = go_object(value, field)? else {
        return Ok(Vec::new());
    };
    object
        .iter()
        .map(|(k, v)| match v {
            Value::Null | Value::Object(_) => Ok(k.clone()),
            _ => Err(type_error(field, "an object of objects")),
        })
        .collect()
}

/// A `*time.Time` decoded (RFC 3339) and encoded again as Go does: the fraction without trailing zeros,
/// `Z` for a zero offset. `None` for an absent or null time.
fn go_time(value: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(type_error(field, "a time")),
    };
    let bad = || format!("{field}: {text:?} is not an RFC 3339 time");
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return Err(bad());
    };
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return Err(bad());
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    let mut rest = text.get(19..).ok_or_else(bad)?;
    let mut fraction = "";
    if let Some(after) = rest.strip_prefix('.') {
        let end = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        if end == 0 {
            return Err(bad());
        }
        fraction = after.get(..end.min(9)).unwrap_or("").trim_end_matches('0');
        rest = after.get(end..).unwrap_or("");
    }
    let zone = match rest {
        "Z" => "Z".to_owned(),
        _ => {
            let z = rest.as_bytes();
            let (Some(h), Some(m)) = (digits_in(z, 1..3), digits_in(z, 4..6)) else {
                return Err(bad());
            };
            if z.len() != 6
                || !matches!(z.first(), Some(b'+' | b'-'))
                || z.get(3) != Some(&b':')
                || h > 23
                || m > 59
            {
                return Err(bad());
            }
            if h == 0 && m == 0 {
                "Z".to_owned()
            } else {
                rest.to_owned()
            }
        }
    };
    let mut out = text.get(..19).ok_or_else(bad)?.to_owned();
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out.push_str(&zone);
    Ok(Some(out))
}

fn digits_in(b: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    let part = b.get(range)?;
    if part.iter().all(u8::is_ascii_digit) {
        std::str::from_utf8(part).ok()?.parse().ok()
    } else {
        None
    }
}

/// A Docker image config re-encoded as containers/image's OCI conversion writes it: decoded into the OCI
/// image-spec `Image` structure (image-spec 1.1.0-rc2, as skopeo 1.9 vendors) and encoded by Go.
///
/// # Errors
/// When the config is not JSON or a field has a type the OCI structure cannot take (the reason, naming
/// the field).
pub fn oci_config_from_docker(config: &[u8]) -> Result<Vec<u8>, String> {
    let value: Value = serde_json::from_slice(config).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(object) = &value else {
        return Err("not a JSON object".into());
    };
    let [
        created,
        author,
        architecture,
        variant,
        os,
        os_version,
        os_features,
        cfg,
        rootfs,
        history,
    ] = fields(
        object,
        [
            "created",
            "author",
            "architecture",
            "variant",
            "os",
            "os.version",
            "os.features",
            "config",
            "rootfs",
            "history",
        ],
    );
    let mut w = GoJson::default();
    let mut first = true;
    w.raw("{");
    if let Some(t) = go_time(created, "created")? {
        w.key(&mut first, "created");
        w.string(&t);
    }
    let author = go_string(author, "author")?;
    if !author.is_empty() {
        w.key(&mut first, "author");
        w.string(&author);
    }
    w.key(&mut first, "architecture");
    w.string(&go_string(architecture, "architecture")?);
    let variant = go_string(variant, "variant")?;
    if !variant.is_empty() {
        w.key(&mut first, "variant");
        w.string(&variant);
    }
    w.key(&mut first, "os");
    w.string(&go_string(os, "os")?);
    let os_version = go_string(os_version, "os.version")?;
    if !os_version.is_empty() {
        w.key(&mut first, "os.version");
        w.string(&os_version);
    }
    if let Some(features) = go_strings(os_features, "os.features")?.filter(|f| !f.is_empty()) {
        w.key(&mut first, "os.features");
        w.strings(&features);
    }
    w.key(&mut first, "config");
    write_image_config(&mut w, go_object(cfg, "config")?)?;
    w.key(&mut first, "rootfs");
    let rootfs = go_object(rootfs, "rootfs")?;
    let empty = Map::new();
    let [kind, diff_ids] = fields(rootfs.unwrap_or(&empty), ["type", "diff_ids"]);
    w.raw("{");
    let mut first_r = true;
    w.key(&mut first_r, "type");
    w.string(&go_string(kind, "rootfs.type")?);
    w.key(&mut first_r, "diff_ids");
    match go_strings(diff_ids, "rootfs.diff_ids")? {
        Some(ids) => w.strings(&ids),
        None => w.raw("null"),
    }
    w.raw("}");
    if let Some(entries) = history {
        let entries = match entries {
            Value::Null => Vec::new(),
            Value::Array(a) => a.iter().collect(),
            _ => return Err(type_error("history", "an array")),
        };
        if !entries.is_empty() {
            w.key(&mut first, "history");
            w.raw("[");
            for (i, entry) in entries.into_iter().enumerate() {
                if i > 0 {
                    w.raw(",");
                }
                write_history(&mut w, go_object(Some(entry), "history")?.unwrap_or(&empty))?;
            }
            w.raw("]");
        }
    }
    w.raw("}");
    Ok(w.into_bytes())
}

fn write_image_config(w: &mut GoJson, cfg: Option<&Map<String, Value>>) -> Result<(), String> {
    let empty = Map::new();
    let [
        user,
        ports,
        env,
        entrypoint,
        cmd,
        volumes,
        workdir,
        labels,
        stop,
        escaped,
    ] = fields(
        cfg.unwrap_or(&empty),
        [
            "User",
            "ExposedPorts",
            "Env",
            "Entrypoint",
            "Cmd",
            "Volumes",
            "WorkingDir",
            "Labels",
            "StopSignal",
            "ArgsEscaped",
        ],
    );
    let mut first = true;
    w.raw("{");
    let user = go_string(user, "config.User")?;
    if !user.is_empty() {
        w.key(&mut first, "User");
        w.string(&user);
    }
    let ports = go_set(ports, "config.ExposedPorts")?;
    if !ports.is_empty() {
        w.key(&mut first, "ExposedPorts");
        w.set(&ports);
    }
    for (name, value) in [("Env", env), ("Entrypoint", entrypoint), ("Cmd", cmd)] {
        if let Some(items) = go_strings(value, name)?.filter(|i| !i.is_empty()) {
            w.key(&mut first, name);
            w.strings(&items);
        }
    }
    let volumes = go_set(volumes, "config.Volumes")?;
    if !volumes.is_empty() {
        w.key(&mut first, "Volumes");
        w.set(&volumes);
    }
    let workdir = go_string(workdir, "config.WorkingDir")?;
    if !workdir.is_empty() {
        w.key(&mut first, "WorkingDir");
        w.string(&workdir);
    }
    let labels = go_string_map(labels, "config.Labels")?;
    if !labels.is_empty() {
        w.key(&mut first, "Labels");
        w.string_map(&labels);
    }
    let stop = go_string(stop, "config.StopSignal")?;
    if !stop.is_empty() {
        w.key(&mut first, "StopSignal");
        w.string(&stop);
    }
    if go_bool(escaped, "config.ArgsEscaped")? {
        w.key(&mut first, "ArgsEscaped");
        w.raw("true");
    }
    w.raw("}");
    Ok(())
}

fn write_history(w: &mut GoJson, entry: &Map<String, Value>) -> Result<(), String> {
    let [created, created_by, author, comment, empty_layer] = fields(
        entry,
        ["created", "created_by", "author", "comment", "empty_layer"],
    );
    let mut first = true;
    w.raw("{");
    if let Some(t) = go_time(created, "history.created")? {
        w.key(&mut first, "created");
        w.string(&t);
    }
    for (name, value) in [
        ("created_by", created_by),
        ("author", author),
        ("comment", comment),
    ] {
        let text = go_string(value, name)?;
        if !text.is_empty() {
            w.key(&mut first, name);
            w.string(&text);
        }
    }
    if go_bool(empty_layer, "history.empty_layer")? {
        w.key(&mut first, "empty_layer");
        w.raw("true");
    }
    w.raw("}");
    Ok(())
}

/// A descriptor of a converted manifest: what containers/image keeps of one (no annotations between
/// formats; `urls` kept).
#[derive(Debug, Clone)]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub urls: Vec<String>,
    /// Written in OCI form only (a Docker descriptor has none).
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Descriptor {
    /// The descriptor's fields from a manifest's JSON.
    pub(crate) fn from_json(value: &Value) -> Result<Descriptor, String> {
        let object = value.as_object().ok_or("a descriptor is not an object")?;
        let media_type = object
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let digest = object
            .get("digest")
            .and_then(Value::as_str)
            .ok_or("a descriptor has no digest")?
            .to_owned();
        let size = object
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("descriptor {digest} has no size"))?;
        let urls = go_strings(object.get("urls"), "urls")?.unwrap_or_default();
        Ok(Descriptor {
            media_type,
            digest,
            size,
            urls,
            annotations: std::collections::BTreeMap::new(),
        })
    }

    fn write(&self, w: &mut GoJson, format: ManifestFormat) {
        let mut first = true;
        w.raw("{");
        w.key(&mut first, "mediaType");
        w.string(&self.media_type);
        match format {
            ManifestFormat::Oci => {
                w.key(&mut first, "digest");
                w.string(&self.digest);
                w.key(&mut first, "size");
                w.raw(&self.size.to_string());
            }
            ManifestFormat::DockerV2S2 => {
                w.key(&mut first, "size");
                w.raw(&self.size.to_string());
                w.key(&mut first, "digest");
                w.string(&self.digest);
            }
        }
        if !self.urls.is_empty() {
            w.key(&mut first, "urls");
            w.strings(&self.urls);
        }
        if format == ManifestFormat::Oci && !self.annotations.is_empty() {
            w.key(&mut first, "annotations");
            let pairs: Vec<(String, String)> = self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            w.string_map(&pairs);
        }
        w.raw("}");
    }
}

/// An image manifest of `format` with this config and these layers, as containers/image encodes a
/// converted one (its config descriptor's media type is set to the format's).
pub(crate) fn write_manifest(
    format: ManifestFormat,
    config: &Descriptor,
    layers: &[Descriptor],
) -> Vec<u8> {
    let mut w = GoJson::default();
    let mut first = true;
    w.raw("{");
    w.key(&mut first, "schemaVersion");
    w.raw("2");
    w.key(&mut first, "mediaType");
    w.string(format.manifest_type());
    w.key(&mut first, "config");
    let config = Descriptor {
        media_type: format.config_type().to_owned(),
        ..config.clone()
    };
    config.write(&mut w, format);
    w.key(&mut first, "layers");
    w.raw("[");
    for (i, layer) in layers.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        layer.write(&mut w, format);
    }
    w.raw("]}");
    w.into_bytes()
}

/// An index of `format` with these instances, as containers/image converts one (a Docker list keeps no
/// annotations and always has a platform; an OCI index takes Docker's platform without its `features`).
///
/// # Errors
/// When an instance descriptor is not one (no digest, no size, fields of the wrong type).
pub(crate) fn write_index(format: ManifestFormat, instances: &[Value]) -> Result<Vec<u8>, String> {
    let mut w = GoJson::default();
    let mut first = true;
    w.raw("{");
    w.key(&mut first, "schemaVersion");
    w.raw("2");
    w.key(&mut first, "mediaType");
    w.string(format.index_type());
    w.key(&mut first, "manifests");
    w.raw("[");
    let empty = Map::new();
    for (i, instance) in instances.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        let d = Descriptor::from_json(instance)?;
        let platform = go_object(instance.get("platform"), "platform")?;
        let mut first_d = true;
        w.raw("{");
        w.key(&mut first_d, "mediaType");
        w.string(&d.media_type);
        let size = d.size.to_string();
        let order: [(&str, &str); 2] = match format {
            ManifestFormat::Oci => [("digest", &d.digest), ("size", &size)],
            ManifestFormat::DockerV2S2 => [("size", &size), ("digest", &d.digest)],
        };
        for (key, value) in order {
            w.key(&mut first_d, key);
            if key == "size" {
                w.raw(value);
            } else {
                w.string(value);
            }
        }
        if !d.urls.is_empty() {
            w.key(&mut first_d, "urls");
            w.strings(&d.urls);
        }
        if format == ManifestFormat::DockerV2S2 || platform.is_some() {
            let [architecture, os, os_version, os_features, variant, features] = fields(
                platform.unwrap_or(&empty),
                [
                    "architecture",
                    "os",
                    "os.version",
                    "os.features",
                    "variant",
                    "features",
                ],
            );
            w.key(&mut first_d, "platform");
            let mut first_p = true;
            w.raw("{");
            w.key(&mut first_p, "architecture");
            w.string(&go_string(architecture, "platform.architecture")?);
            w.key(&mut first_p, "os");
            w.string(&go_string(os, "platform.os")?);
            let os_version = go_string(os_version, "platform.os.version")?;
            if !os_version.is_empty() {
                w.key(&mut first_p, "os.version");
                w.string(&os_version);
            }
            if let Some(f) =
                go_strings(os_features, "platform.os.features")?.filter(|f| !f.is_empty())
            {
                w.key(&mut first_p, "os.features");
                w.strings(&f);
            }
            let variant = go_string(variant, "platform.variant")?;
            if !variant.is_empty() {
                w.key(&mut first_p, "variant");
                w.string(&variant);
            }
            if format == ManifestFormat::DockerV2S2
                && let Some(f) =
                    go_strings(features, "platform.features")?.filter(|f| !f.is_empty())
            {
                w.key(&mut first_p, "features");
                w.strings(&f);
            }
            w.raw("}");
        }
        w.raw("}");
    }
    w.raw("]}");
    Ok(w.into_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_as_go_writes_them() {
        let t = |s: &str| go_time(Some(&Value::String(s.into())), "t");
        assert_eq!(
            t("2023-01-02T03:04:05.1200Z").unwrap().unwrap(),
            "2023-01-02T03:04:05.12Z"
        );
        assert_eq!(
            t("2023-01-02T03:04:05.000Z").unwrap().unwrap(),
            "2023-01-02T03:04:05Z"
        );
        assert_eq!(
            t("2023-01-02T03:04:05+00:00").unwrap().unwrap(),
            "2023-01-02T03:04:05Z"
        );
        assert_eq!(
            t("2023-01-02T03:04:05+02:00").unwrap().unwrap(),
            "2023-01-02T03:04:05+02:00"
        );
        assert_eq!(
            t("2023-01-02T03:04:05.1234567891Z").unwrap().unwrap(),
            "2023-01-02T03:04:05.123456789Z"
        );
        assert!(t("2023-02-30T03:04:05Z").is_err());
        assert!(t("2023-01-02 03:04:05Z").is_err());
        assert!(t("2023-01-02T03:04:05").is_err());
    }

    #[test]
    fn strings_as_go_escapes_them() {
        let mut w = GoJson::default();
        w.string("a<b>&\"\\\n\u{1}\u{8}\u{2028}é");
        assert_eq!(
            String::from_utf8(w.into_bytes()).unwrap(),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001\u0008\u2028é""#
        );
    }

    /// Made by skopeo 1.9.3 (`skopeo copy dir:… oci:…` of a v2s2 image with this config).
    #[test]
    fn a_docker_config_as_skopeo_converts_it() {
        let docker = r#"{"architecture":"amd64","os":"linux","os.version":"10.0","variant":"v8","os.features":["a"],"author":"Me <me@x> & co","created":"2023-01-02T03:04:05.1200Z","docker_version":"20.10","container":"abc","container_config":{"Hostname":"x"},"config":{"Hostname":"","User":"1000","ExposedPorts":{"8080/tcp":{},"80/tcp":{}},"Env":["PATH=/bin","X=<y>"],"Cmd":["sh"],"Entrypoint":null,"Volumes":{"/data":{}},"WorkingDir":"/w","Labels":{"z":"1","a":"2\u2028\u0001\b"},"StopSignal":"SIGTERM","ArgsEscaped":true,"OnBuild":null,"Image":"sha256:00"},"rootfs":{"type":"layers","diff_ids":["sha256:e514494b56fba34b1fa20ef4a73ffe8a5e3382d4fe745a9e2d2424b0c215e3b4"]},"history":[{"created":"2023-01-02T03:04:05+02:00","created_by":"/bin/sh -c #(nop) ADD","empty_layer":false},{"created":"2023-01-02T03:04:05.000Z","created_by":"CMD","empty_layer":true,"comment":"c","author":"a"}]}"#;
        let skopeo = r#"{"created":"2023-01-02T03:04:05.12Z","author":"Me \u003cme@x\u003e \u0026 co","architecture":"amd64","variant":"v8","os":"linux","os.version":"10.0","os.features":["a"],"config":{"User":"1000","ExposedPorts":{"80/tcp":{},"8080/tcp":{}},"Env":["PATH=/bin","X=\u003cy\u003e"],"Cmd":["sh"],"Volumes":{"/data":{}},"WorkingDir":"/w","Labels":{"a":"2\u2028\u0001\u0008","z":"1"},"StopSignal":"SIGTERM","ArgsEscaped":true},"rootfs":{"type":"layers","diff_ids":["sha256:e514494b56fba34b1fa20ef4a73ffe8a5e3382d4fe745a9e2d2424b0c215e3b4"]},"history":[{"created":"2023-01-02T03:04:05+02:00","created_by":"/bin/sh -c #(nop) ADD"},{"created":"2023-01-02T03:04:05Z","created_by":"CMD","author":"a","comment":"c","empty_layer":true}]}"#;
        assert_eq!(
            String::from_utf8(oci_config_from_docker(docker.as_bytes()).unwrap()).unwrap(),
            skopeo
        );
    }

    #[test]
    fn a_config_of_the_wrong_shape_is_refused() {
        assert!(oci_config_from_docker(br#"{"architecture":5}"#).is_err());
        assert!(oci_config_from_docker(br#"{"config":{"Env":"x"}}"#).is_err());
        assert_eq!(
            oci_config_from_docker(b"{}").unwrap(),
            br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"","diff_ids":null}}"#
        );
    }
}
