//! The JSON payload a signature signs: "simple signing" (atomic) and cosign's.
//!
//! Parsing is as strict as containers/image's (`ParanoidUnmarshalJSONObjectExactFields`): the document is
//! exactly `{"critical":…,"optional":…}`; `critical` is exactly `type`, `image` and `identity`; `image` is
//! exactly `docker-manifest-digest`; `identity` is exactly `docker-reference`; no object among these may
//! repeat a key. `optional` is an object whose `creator` must be a string and `timestamp` an integer, other
//! keys ignored; a cosign payload may also have `"optional": null`, as cosign writes.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use strata_oci::Digest;

use crate::error::{Error, Result};

/// The largest payload accepted (containers/image's limit for a signature).
pub const MAX_PAYLOAD_SIZE: usize = 4 * 1024 * 1024;

/// Which kind of payload: its `critical.type` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// "Simple signing", signed with OpenPGP: `atomic container signature`.
    Atomic,
    /// cosign's payload, signed with a sigstore key: `cosign container image signature`.
    Cosign,
}

impl PayloadKind {
    /// The `critical.type` string of this kind.
    pub fn type_string(self) -> &'static str {
        match self {
            PayloadKind::Atomic => "atomic container signature",
            PayloadKind::Cosign => "cosign container image signature",
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_string())
    }
}

/// A parsed signature payload. Untrusted until the signature over it has been verified; the evaluator
/// compares `manifest_digest` with the manifest and `docker_reference` with the policy's identity rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The kind, i.e. `critical.type`.
    pub kind: PayloadKind,
    /// `critical.identity.docker-reference`, as written (not normalised: that is the evaluator's).
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`, strictly validated.
    pub manifest_digest: Digest,
    /// `optional.creator`, e.g. `atomic 5.23.1`.
    pub creator: Option<String>,
    /// `optional.timestamp`, unix seconds.
    pub timestamp: Option<i64>,
}

/// A JSON object as its keys in order, each with its raw value, duplicates kept (to be refused).
struct Entries(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    if out.len() >= 1024 {
                        return Err(de::Error::custom("more than 1024 keys"));
                    }
                    out.push((key, value));
                }
                Ok(Entries(out))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidPayload {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Parses `text` as a JSON object with no duplicate keys.
fn object(field: &str, text: &str) -> Result<Vec<(String, Box<RawValue>)>> {
    let entries: Entries = serde_json::from_str(text)
        .map_err(|e| invalid(field, format!("not a JSON object: {e}")))?;
    let mut seen: Vec<&str> = Vec::with_capacity(entries.0.len());
    for (key, _) in &entries.0 {
        if seen.contains(&key.as_str()) {
            return Err(invalid(field, format!("duplicate key {key:?}")));
        }
        seen.push(key);
    }
    Ok(entries.0)
}

/// Parses `text` as an object with exactly the keys `names`, returning their raw values in that order.
fn exact_fields(field: &str, text: &str, names: &[&str]) -> Result<Vec<Box<RawValue>>> {
    let entries = object(field, text)?;
    let mut out: Vec<Option<Box<RawValue>>> = names.iter().map(|_| None).collect();
    for (key, value) in entries {
        let Some(i) = names.iter().position(|n| *n == key) else {
            return Err(invalid(field, format!("unknown key {key:?}")));
        };
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(value);
        }
    }
    out.into_iter()
        .zip(names)
        .map(|(v, name)| v.ok_or_else(|| invalid(field, format!("key {name:?} missing"))))
        .collect()
}

fn string(field: &str, raw: &RawValue) -> Result<String> {
    serde_json::from_str::<String>(raw.get()).map_err(|_| {
        invalid(
            field,
            format!("expected a string, got {}", shorten(raw.get())),
        )
    })
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// An integer timestamp: a JSON integer, or a number with no fractional part (as Go's float64 parse allows).
fn timestamp(raw: &RawValue) -> Result<i64> {
    let field = "optional.timestamp";
    let number: serde_json::Number = serde_json::from_str(raw.get()).map_err(|_| {
        invalid(
            field,
            format!("expected a number, got {}", shorten(raw.get())),
        )
    })?;
    if let Some(i) = number.as_i64() {
        return Ok(i);
    }
    match number.as_f64() {
        // ±2^63 bounds: every integral f64 strictly inside converts exactly.
        Some(f)
            if f.fract() == 0.0
                && f > -9.223_372_036_854_776e18
                && f < 9.223_372_036_854_776e18 =>
        {
            #[allow(clippy::cast_possible_truncation)]
            Ok(f as i64)
        }
        _ => Err(invalid(field, format!("not an integer: {number}"))),
    }
}

impl Payload {
    /// Parses a payload of the `expected` kind, as strictly as containers/image.
    pub fn parse(bytes: &[u8], expected: PayloadKind) -> Result<Payload> {
        if bytes.len() > MAX_PAYLOAD_SIZE {
            return Err(Error::TooLarge {
                what: "signature payload",
                size: bytes.len() as u64,
                limit: MAX_PAYLOAD_SIZE as u64,
            });
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| invalid("payload", format!("not UTF-8: {e}")))?;
        let top = exact_fields("payload", text, &["critical", "optional"])?;
        let [critical, optional] = <[Box<RawValue>; 2]>::try_from(top)
            .map_err(|_| invalid("payload", "internal: field count"))?;

        let mut creator = None;
        let mut timestamp_value = None;
        let optional_null = optional.get().trim() == "null";
        if optional_null && expected == PayloadKind::Atomic {
            return Err(invalid("optional", "expected a JSON object, got null"));
        }
        if !optional_null {
            for (key, value) in object("optional", optional.get())? {
                match key.as_str() {
                    // Go decodes a JSON null into a string or number as "no change": "" or 0.
                    "creator" if value.get() == "null" => creator = Some(String::new()),
                    "creator" => creator = Some(string("optional.creator", &value)?),
                    "timestamp" if value.get() == "null" => timestamp_value = Some(0),
                    "timestamp" => timestamp_value = Some(timestamp(&value)?),
                    _ => {}
                }
            }
        }

        let crit = exact_fields("critical", critical.get(), &["type", "image", "identity"])?;
        let [kind, image, identity] = <[Box<RawValue>; 3]>::try_from(crit)
            .map_err(|_| invalid("critical", "internal: field count"))?;
        let kind = string("critical.type", &kind)?;
        if kind != expected.type_string() {
            return Err(invalid(
                "critical.type",
                format!(
                    "unrecognized signature type {kind:?} (expected {:?})",
                    expected.type_string()
                ),
            ));
        }

        let image = exact_fields("critical.image", image.get(), &["docker-manifest-digest"])?;
        let digest_text = match image.first() {
            Some(raw) => string("critical.image.docker-manifest-digest", raw)?,
            None => {
                return Err(invalid(
                    "critical.image",
                    "key \"docker-manifest-digest\" missing",
                ));
            }
        };
        let manifest_digest = Digest::parse(&digest_text).map_err(|e| {
            invalid(
                "critical.image.docker-manifest-digest",
                format!("invalid digest: {e}"),
            )
        })?;

        let identity = exact_fields("critical.identity", identity.get(), &["docker-reference"])?;
        let docker_reference = match identity.first() {
            Some(raw) => string("critical.identity.docker-reference", raw)?,
            None => {
                return Err(invalid(
                    "critical.identity",
                    "key \"docker-reference\" missing",
                ));
            }
        };

        Ok(Payload {
            kind: expected,
            docker_reference,
            manifest_digest,
            creator,
            timestamp: timestamp_value,
        })
    }

    /// The payload's bytes as skopeo 1.9.3 / containers/image write them: Go's `json.Marshal` of maps, so
    /// keys sorted, no whitespace, `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u00XX`/`\u20XX`.
    ///
    /// `optional` holds `creator` and `timestamp` when set; when neither is, an atomic payload has
    /// `"optional":{}` and a cosign payload `"optional":null`, as cosign writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256 + self.docker_reference.len());
        out.push_str("{\"critical\":{\"identity\":{\"docker-reference\":");
        go_json_string(&mut out, &self.docker_reference);
        out.push_str("},\"image\":{\"docker-manifest-digest\":");
        go_json_string(&mut out, &self.manifest_digest.to_string());
        out.push_str("},\"type\":");
        go_json_string(&mut out, self.kind.type_string());
        out.push_str("},\"optional\":");
        if self.creator.is_none() && self.timestamp.is_none() {
            out.push_str(match self.kind {
                PayloadKind::Atomic => "{}",
                PayloadKind::Cosign => "null",
            });
        } else {
            out.push('{');
            if let Some(creator) = &self.creator {
                out.push_str("\"creator\":");
                go_json_string(&mut out, creator);
            }
            if let Some(ts) = self.timestamp {
                if self.creator.is_some() {
                    out.push(',');
                }
                out.push_str("\"timestamp\":");
                out.push_str(&ts.to_string());
            }
            out.push('}');
        }
        out.push('}');
        out.into_bytes()
    }
}

/// Appends `s` as a JSON string the way Go's `encoding/json` writes it (HTML-safe escaping).
pub(crate) fn go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn go_escaping() {
        let mut s = String::new();
        go_json_string(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\\u2028é\"");
    }

    #[test]
    fn round_trip() {
        let p = Payload {
            kind: PayloadKind::Atomic,
            docker_reference: "example.com/a:b".into(),
            manifest_digest: Digest::sha256(b"x"),
            creator: Some("atomic 5.23.1".into()),
            timestamp: Some(1_700_000_000),
        };
        let bytes = p.to_bytes();
        assert_eq!(Payload::parse(&bytes, PayloadKind::Atomic).unwrap(), p);
    }
}
