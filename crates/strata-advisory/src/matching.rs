//! Matching installed packages to a feed's advisories.
//!
//! An advisory's affected entry applies to a package when
//! - its ecosystem is the distribution's ([`Distribution::matches_ecosystem`]) and of the package manager's
//!   version scheme;
//! - its name is the package's: for `Debian:*` and `Ubuntu:*`, whose advisories name *source* packages, the
//!   package's source name (its own name when it has none); for the others (Alpine names origin packages,
//!   the rpm distributions binary or source rpms), the package's name or its source name;
//! - the installed version is in one of its `ECOSYSTEM` ranges or listed in its `versions`, by the
//!   ecosystem's ordering.
//!
//! One finding is made per package and advisory (Red Hat lists a package once per repository ecosystem):
//! the one with a fixed version if any, then the highest severity.

use std::collections::HashMap;

use crate::{AnyVersion, Date, Error, Feed, Scheme, Severity};

/// A package manager of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    /// dpkg (Debian, Ubuntu).
    Dpkg,
    /// rpm (Red Hat Enterprise Linux, UBI, AlmaLinux, Rocky Linux).
    Rpm,
    /// apk (Alpine).
    Apk,
}

impl PackageManager {
    /// The version ordering of this manager's packages.
    pub fn scheme(self) -> Scheme {
        match self {
            Self::Dpkg => Scheme::Dpkg,
            Self::Rpm => Scheme::Rpm,
            Self::Apk => Scheme::Apk,
        }
    }
}

/// An installed package, as the caller read it from the image's package database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstalledPackage {
    /// The package manager whose database lists it.
    pub manager: PackageManager,
    /// The (binary) package name.
    pub name: String,
    /// The source package name (dpkg's `Source:`, rpm's source rpm name, apk's origin), when different or
    /// known.
    pub source_name: Option<String>,
    /// The installed version: dpkg's `Version:`, rpm's `[epoch:]version-release`, apk's `V:`.
    pub version: String,
}

/// The distribution of an image: os-release's `ID` and `VERSION_ID`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Distribution {
    /// `debian`, `ubuntu`, `alpine`, `rhel`, `almalinux`, `rocky`.
    pub id: String,
    /// `12`, `22.04`, `3.19.1`, `9.4`, …
    pub version_id: String,
}

impl Distribution {
    /// A distribution from os-release's `ID` and `VERSION_ID`.
    pub fn new(id: &str, version_id: &str) -> Self {
        Self {
            id: id.to_owned(),
            version_id: version_id.to_owned(),
        }
    }

    /// Whether an OSV ecosystem is this distribution's release: `Debian:12` for Debian 12.x; `Ubuntu:22.04`
    /// or `Ubuntu:22.04:LTS` for Ubuntu 22.04 (not `Ubuntu:Pro:…`); `Alpine:v3.19` for Alpine 3.19.x;
    /// `Red Hat:enterprise_linux:9…` (any repository suffix) for RHEL or UBI 9.x; `AlmaLinux:9`,
    /// `Rocky Linux:9` for 9.x.
    pub fn matches_ecosystem(&self, ecosystem: &str) -> bool {
        let parts: Vec<&str> = ecosystem.split(':').collect();
        let mut numbers = self.version_id.split('.');
        let major = numbers.next().unwrap_or_default();
        let minor = numbers.next();
        if major.is_empty() {
            return false;
        }
        match (self.id.as_str(), parts.as_slice()) {
            ("debian", ["Debian", release]) => *release == major,
            ("ubuntu", ["Ubuntu", release, rest @ ..]) => {
                *release == self.version_id && (rest.is_empty() || rest == ["LTS"])
            }
            ("alpine", ["Alpine", release]) => {
                minor.is_some_and(|minor| *release == format!("v{major}.{minor}"))
            }
            ("rhel", ["Red Hat", "enterprise_linux", release, ..]) => {
                *release == major
                    || release
                        .strip_prefix(major)
                        .is_some_and(|r| r.starts_with('.'))
            }
            ("almalinux", ["AlmaLinux", release]) | ("rocky", ["Rocky Linux", release]) => {
                *release == major
            }
            _ => false,
        }
    }
}

/// An advisory that applies to an installed package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The installed package's name.
    pub package: String,
    /// Its installed version.
    pub installed: String,
    /// The version that fixes it, `None` when the advisory names no fix (yet).
    pub fixed: Option<String>,
    /// The advisory's id.
    pub advisory: String,
    /// The advisory's aliases (CVE ids).
    pub aliases: Vec<String>,
    /// The severity, on Red Hat's scale.
    pub severity: Severity,
    /// The advisory's publication date.
    pub published: Option<Date>,
    /// Whole days from `published` to the `now` given (0 when published after `now`); `None` without a
    /// publication date.
    pub age_days: Option<i64>,
    /// The OSV ecosystem the match was made in.
    pub ecosystem: String,
    /// The advisory's summary.
    pub summary: Option<String>,
}

impl Feed {
    /// Whether any advisory of the feed is for `distribution`'s release: when none is, an empty list of
    /// findings means the feed does not cover the image, not that it is clean.
    pub fn covers(&self, distribution: &Distribution) -> bool {
        self.index
            .keys()
            .any(|(ecosystem, _)| distribution.matches_ecosystem(ecosystem))
    }

    /// The findings for `packages` of an image of `distribution`, ages counted to `now`; sorted by package,
    /// then advisory id.
    ///
    /// # Errors
    /// [`Error::InstalledVersion`] when an installed version does not parse in its manager's grammar.
    pub fn findings(
        &self,
        distribution: &Distribution,
        packages: &[InstalledPackage],
        now: Date,
    ) -> Result<Vec<Finding>, Error> {
        let ecosystems: Vec<&str> = {
            let mut e: Vec<&str> = self
                .index
                .keys()
                .map(|(ecosystem, _)| ecosystem.as_str())
                .filter(|e| distribution.matches_ecosystem(e))
                .collect();
            e.sort_unstable();
            e.dedup();
            e
        };
        let mut findings: Vec<Finding> = Vec::new();
        let mut seen = HashMap::new();
        for package in packages {
            let scheme = package.manager.scheme();
            let installed: AnyVersion =
                scheme
                    .parse(&package.version)
                    .map_err(|source| Error::InstalledVersion {
                        package: package.name.clone(),
                        source,
                    })?;
            let source = package.source_name.as_deref().unwrap_or(&package.name);
            for ecosystem in &ecosystems {
                let names: &[&str] = if matches!(scheme, Scheme::Dpkg) || source == package.name {
                    &[source]
                } else {
                    &[package.name.as_str(), source]
                };
                for name in names {
                    let key = ((*ecosystem).to_owned(), (*name).to_owned());
                    for &(a, i) in self.index.get(&key).map(Vec::as_slice).unwrap_or_default() {
                        let Some(advisory) = self.advisories.get(a) else {
                            continue;
                        };
                        let Some(affected) = advisory.affected.get(i) else {
                            continue;
                        };
                        if affected.scheme != scheme {
                            continue;
                        }
                        let Some(fixed) = affected.check(&installed) else {
                            continue;
                        };
                        let finding = Finding {
                            package: package.name.clone(),
                            installed: package.version.clone(),
                            fixed: fixed.map(ToString::to_string),
                            advisory: advisory.id.clone(),
                            aliases: advisory.aliases.clone(),
                            severity: affected.severity,
                            published: advisory.published,
                            age_days: advisory.published.map(|p| now.days_since(p).max(0)),
                            ecosystem: affected.ecosystem.clone(),
                            summary: advisory.summary.clone(),
                        };
                        add(&mut findings, &mut seen, finding);
                    }
                }
            }
        }
        findings.sort_by(|a, b| {
            (a.package.as_str(), a.advisory.as_str())
                .cmp(&(b.package.as_str(), b.advisory.as_str()))
        });
        Ok(findings)
    }
}

/// Adds a finding, keeping one per package and advisory (`seen` maps them to their place in `findings`):
/// the one with a fix, then the more severe.
fn add(findings: &mut Vec<Finding>, seen: &mut HashMap<(String, String), usize>, finding: Finding) {
    let key = (finding.package.clone(), finding.advisory.clone());
    match seen.get(&key).and_then(|&i| findings.get_mut(i)) {
        Some(existing) => {
            let rank = |f: &Finding| (f.fixed.is_some(), f.severity);
            if rank(&finding) > rank(existing) {
                *existing = finding;
            }
        }
        None => {
            seen.insert(key, findings.len());
            findings.push(finding);
        }
    }
}
