//! OSV records: the parts matching needs, parsed and checked per advisory.
//!
//! Read: `id`, `aliases`, `summary`, `published`, `modified`, `withdrawn`, and each `affected[]` entry's
//! `package {ecosystem, name, purl}`, `ranges[]` of type `ECOSYSTEM` (`introduced`, `fixed`,
//! `last_affected` events; `limit` events are ignored), `versions[]` and its severity (see [`Severity`]).
//! `SEMVER` and `GIT` ranges do not apply to distribution packages: they are skipped with a warning.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{AnyVersion, Date, Scheme, Severity};

/// One advisory (an OSV record) with the affected packages of the ecosystems strata matches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Advisory {
    /// The OSV id (`DSA-5678-1`, `RHSA-2024:1234`, `ALSA-…`, `CVE-…`).
    pub id: String,
    /// Other ids of the same vulnerability (CVE ids).
    pub aliases: Vec<String>,
    /// The one-line summary, if given.
    pub summary: Option<String>,
    /// The date the advisory was published: what a finding's age counts from.
    pub published: Option<Date>,
    /// The date it was last modified.
    pub modified: Option<Date>,
    /// The affected packages of supported ecosystems.
    pub affected: Vec<Affected>,
    /// The file (or `ZIP!ENTRY`) it was read from.
    pub file: String,
}

/// One affected package of an advisory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Affected {
    /// The OSV ecosystem (`Debian:12`, `Red Hat:enterprise_linux:9::baseos`, …).
    pub ecosystem: String,
    /// The package name in that ecosystem (Debian's and Ubuntu's are source packages).
    pub name: String,
    /// The package URL, if given.
    pub purl: Option<String>,
    /// The version ordering of the ecosystem.
    pub scheme: Scheme,
    /// The `ECOSYSTEM` ranges, each with its events sorted by version.
    #[serde(skip)]
    pub ranges: Vec<RangeEvents>,
    /// The versions listed as affected.
    #[serde(skip)]
    pub versions: Vec<AnyVersion>,
    /// The severity for this package.
    pub severity: Severity,
}

/// The events of one `ECOSYSTEM` range, sorted by version (`introduced: "0"` first).
#[derive(Debug, Clone)]
pub struct RangeEvents {
    /// The events.
    pub events: Vec<Event>,
}

/// An event of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Affected from this version on; `None` is OSV's `"0"`, every version.
    Introduced(Option<AnyVersion>),
    /// Not affected from this version on.
    Fixed(AnyVersion),
    /// Affected up to and including this version.
    LastAffected(AnyVersion),
}

impl Event {
    fn version(&self) -> Option<&AnyVersion> {
        match self {
            Self::Introduced(v) => v.as_ref(),
            Self::Fixed(v) | Self::LastAffected(v) => Some(v),
        }
    }
}

impl Affected {
    /// Whether `installed` is affected, and if so the version that fixes it (`Some(None)`: affected, no fix
    /// known). `installed` must be of this entry's scheme.
    pub fn check(&self, installed: &AnyVersion) -> Option<Option<&AnyVersion>> {
        for range in &self.ranges {
            let mut affected = false;
            for event in &range.events {
                match event {
                    Event::Introduced(None) => affected = true,
                    Event::Introduced(Some(v)) if installed >= v => affected = true,
                    Event::Fixed(v) if installed >= v => affected = false,
                    Event::LastAffected(v) if installed > v => affected = false,
                    _ => {}
                }
            }
            if affected {
                let fixed = range.events.iter().find_map(|e| match e {
                    Event::Fixed(v) if v > installed => Some(v),
                    _ => None,
                });
                return Some(fixed);
            }
        }
        self.versions.iter().any(|v| v == installed).then_some(None)
    }
}

/// The scheme of a supported ecosystem (`Debian:12` → dpkg), `None` for any other.
pub(crate) fn ecosystem_scheme(ecosystem: &str) -> Option<Scheme> {
    match ecosystem.split(':').next().unwrap_or_default() {
        "Debian" | "Ubuntu" => Some(Scheme::Dpkg),
        "Alpine" => Some(Scheme::Apk),
        "Red Hat" | "AlmaLinux" | "Rocky Linux" => Some(Scheme::Rpm),
        _ => None,
    }
}

#[derive(Deserialize)]
struct RawRecord {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    summary: Option<String>,
    published: Option<String>,
    modified: Option<String>,
    withdrawn: Option<String>,
    #[serde(default)]
    affected: Vec<RawAffected>,
    #[serde(default)]
    severity: Vec<RawSeverity>,
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Vec<RawRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    severity: Vec<RawSeverity>,
    ecosystem_specific: Option<Value>,
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

/// What reading one record gave.
pub(crate) enum Parsed {
    /// An advisory (possibly with no affected package of a supported ecosystem) and notes about it.
    Advisory(Advisory, Vec<String>),
    /// A withdrawn advisory.
    Withdrawn,
}

/// A record refused: its id when known, and why.
pub(crate) struct Refused {
    pub id: Option<String>,
    pub reason: String,
}

/// Parses one OSV record; `other` counts affected entries of ecosystems strata does not match.
pub(crate) fn parse_record(
    value: Value,
    file: &str,
    other: &mut std::collections::BTreeMap<String, u64>,
) -> Result<Parsed, Refused> {
    let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    let raw: RawRecord = serde_json::from_value(value).map_err(|e| Refused {
        id: id.clone(),
        reason: format!("not an OSV record: {e}"),
    })?;
    let refuse = |reason: String| Refused {
        id: Some(raw.id.clone()),
        reason,
    };
    if raw.withdrawn.is_some() {
        return Ok(Parsed::Withdrawn);
    }
    let date = |field: &str, text: &Option<String>| -> Result<Option<Date>, Refused> {
        text.as_deref()
            .map(Date::parse)
            .transpose()
            .map_err(|e| refuse(format!("{field}: {e}")))
    };
    let published = date("published", &raw.published)?;
    let modified = date("modified", &raw.modified)?;
    let record_word = word_of(raw.database_specific.as_ref());
    let record_severity = severity_of(&raw.severity);
    let mut notes = Vec::new();
    let mut affected = Vec::new();
    for (index, entry) in raw.affected.iter().enumerate() {
        let Some(package) = &entry.package else {
            continue;
        };
        let Some(scheme) = ecosystem_scheme(&package.ecosystem) else {
            *other.entry(package.ecosystem.clone()).or_default() += 1;
            continue;
        };
        let parse = |what: &str, text: &str| {
            scheme.parse(text).map_err(|e| {
                refuse(format!(
                    "affected[{index}] ({} {}): {what}: {e}",
                    package.ecosystem, package.name
                ))
            })
        };
        let mut ranges = Vec::new();
        for range in &entry.ranges {
            if range.kind != "ECOSYSTEM" {
                notes.push(format!(
                    "affected[{index}] ({} {}): a {} range is not used for distribution packages",
                    package.ecosystem, package.name, range.kind
                ));
                continue;
            }
            let mut events = Vec::new();
            for event in &range.events {
                let mut fields = event.iter();
                let (Some((key, value)), None) = (fields.next(), fields.next()) else {
                    return Err(refuse(format!(
                        "affected[{index}] ({} {}): a range event must have exactly one field",
                        package.ecosystem, package.name
                    )));
                };
                let Some(text) = value.as_str() else {
                    return Err(refuse(format!(
                        "affected[{index}] ({} {}): range event {key} is not a string",
                        package.ecosystem, package.name
                    )));
                };
                events.push(match key.as_str() {
                    "introduced" if text == "0" => Event::Introduced(None),
                    "introduced" => Event::Introduced(Some(parse("introduced", text)?)),
                    "fixed" => Event::Fixed(parse("fixed", text)?),
                    "last_affected" => Event::LastAffected(parse("last_affected", text)?),
                    "limit" => continue,
                    other => {
                        return Err(refuse(format!(
                            "affected[{index}] ({} {}): unknown range event {other:?}",
                            package.ecosystem, package.name
                        )));
                    }
                });
            }
            if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
                return Err(refuse(format!(
                    "affected[{index}] ({} {}): a range without an introduced event",
                    package.ecosystem, package.name
                )));
            }
            // Sorted by version, "0" first; the sort is stable, so equal versions keep their order.
            events.sort_by(|a, b| a.version().cmp(&b.version()));
            ranges.push(RangeEvents { events });
        }
        let versions = entry
            .versions
            .iter()
            .map(|v| parse("versions", v))
            .collect::<Result<Vec<_>, _>>()?;
        let severity = word_of(entry.ecosystem_specific.as_ref())
            .or_else(|| word_of(entry.database_specific.as_ref()))
            .or(record_word)
            .or_else(|| severity_of(&entry.severity))
            .or(record_severity)
            .unwrap_or(Severity::Unknown);
        affected.push(Affected {
            ecosystem: package.ecosystem.clone(),
            name: package.name.clone(),
            purl: package.purl.clone(),
            scheme,
            ranges,
            versions,
            severity,
        });
    }
    Ok(Parsed::Advisory(
        Advisory {
            id: raw.id,
            aliases: raw.aliases,
            summary: raw.summary,
            published,
            modified,
            affected,
            file: file.to_owned(),
        },
        notes,
    ))
}

/// A vendor's severity word in a `database_specific` / `ecosystem_specific` object.
fn word_of(object: Option<&Value>) -> Option<Severity> {
    let object = object?;
    ["severity", "urgency"].iter().find_map(|key| {
        object
            .get(key)
            .and_then(Value::as_str)
            .and_then(Severity::from_word)
    })
}

/// The severity a `severity[]` list gives: an `Ubuntu` priority word, else a CVSS v3 vector's band.
fn severity_of(list: &[RawSeverity]) -> Option<Severity> {
    list.iter()
        .filter(|s| s.kind.eq_ignore_ascii_case("ubuntu"))
        .find_map(|s| Severity::from_word(&s.score))
        .or_else(|| {
            list.iter()
                .filter(|s| s.kind == "CVSS_V3")
                .find_map(|s| Severity::from_cvss_v3(&s.score))
        })
}
