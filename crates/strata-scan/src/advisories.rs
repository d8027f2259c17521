//! An image's installed packages against an offline advisory feed ([`strata_advisory`]): the findings,
//! `free_of_critical_vulnerabilities` and the Container Health Index, for [`ScanImage::check_report`].
//!
//! This module only turns what the image holds (its distribution from os-release, its dpkg, rpm or apk
//! packages with their source packages) into the advisory crate's terms; matching, version ordering and
//! grading are that crate's.

use strata_advisory::{
    Assessment, Date, Distribution, Feed, Grade, InstalledPackage, PackageManager,
};

use crate::check::{Decision, HealthIndex, Status};
use crate::image::{Error, Result, ScanImage};
use crate::packages::{Manager, Package};

/// The advisory crate's view of `packages`: manager, name, source package name, version.
pub fn installed_packages(packages: &[Package]) -> Vec<InstalledPackage> {
    packages
        .iter()
        .filter(|p| p.manager != Manager::Dpkg || p.status.ends_with(" installed"))
        .map(|p| InstalledPackage {
            manager: match p.manager {
                Manager::Dpkg => PackageManager::Dpkg,
                Manager::Rpm => PackageManager::Rpm,
                Manager::Apk => PackageManager::Apk,
            },
            name: p.name.clone(),
            source_name: source_name(p).filter(|s| *s != p.name),
            version: p.version.clone(),
        })
        .collect()
}

/// The source package's name: dpkg's `Source:` (its parser already drops a `(version)`), rpm's
/// `SOURCERPM` without `-VERSION-RELEASE.src.rpm`, apk's origin.
fn source_name(p: &Package) -> Option<String> {
    let source = p.source.trim();
    if source.is_empty() {
        return None;
    }
    match p.manager {
        Manager::Dpkg | Manager::Apk => Some(source.to_owned()),
        Manager::Rpm => {
            let stem = source
                .strip_suffix(".src.rpm")
                .or_else(|| source.strip_suffix(".nosrc.rpm"))?;
            let (rest, _release) = stem.rsplit_once('-')?;
            let (name, _version) = rest.rsplit_once('-')?;
            (!name.is_empty()).then(|| name.to_owned())
        }
    }
}

/// `free_of_critical_vulnerabilities` and the grade as `assessment` decides them.
pub fn check_answers(assessment: &Assessment) -> (Decision, HealthIndex) {
    let criticals = assessment
        .findings
        .iter()
        .filter(|f| f.severity == strata_advisory::Severity::Critical)
        .count();
    let decision = match assessment.free_of_critical {
        Some(true) => Decision {
            result: Status::Pass,
            reason: format!(
                "no Critical advisory applies ({} finding(s) of lower severity)",
                assessment.findings.len()
            ),
        },
        Some(false) => Decision {
            result: Status::Fail,
            reason: format!("{criticals} Critical advisory finding(s) apply"),
        },
        None => Decision {
            result: Status::Unknown,
            reason: assessment
                .unknown_reason
                .clone()
                .unwrap_or_else(|| "the feed cannot decide for this image".into()),
        },
    };
    let grade = match assessment.grade {
        Grade::Unknown => "unknown".to_owned(),
        g => format!("{g:?}"),
    };
    let reason = match (&assessment.grade, &assessment.unknown_reason) {
        (Grade::Unknown, Some(why)) => why.clone(),
        (Grade::Unknown, None) => "the image lacks what the grading needs".to_owned(),
        (Grade::A, _) => "no unapplied Critical or Important erratum".to_owned(),
        _ => format!(
            "the oldest unapplied Critical or Important erratum, as of {}",
            assessment.now
        ),
    };
    (decision, HealthIndex { grade, reason })
}

impl ScanImage {
    /// The image's packages matched against `feed` at `now`: every finding, the critical verdict and the
    /// grade. Unknown (with the reason) when the image has no distribution the feed covers, or no package
    /// database to grade.
    ///
    /// # Errors
    /// Reading the image, or a package database that is there but unreadable; an installed version the
    /// ordering of its manager refuses.
    pub fn advisory_assessment(&self, feed: &Feed, now: Date) -> Result<Assessment> {
        let os = self.os()?;
        let distribution = os.as_ref().map_or_else(
            || Distribution::new("", ""),
            |o| Distribution::new(&o.id, &o.version_id),
        );
        let packages = installed_packages(&self.packages()?);
        let mut assessment = feed
            .assess(&distribution, &packages, now)
            .map_err(|e| Error::Advisory(e.to_string()))?;
        if os.is_none() {
            assessment.unknown_reason =
                Some("the image has no os-release: no distribution to match".into());
        } else if packages.is_empty() && assessment.covered {
            // Nothing listed is not nothing vulnerable: the grade needs a package database.
            assessment.grade = Grade::Unknown;
            assessment.free_of_critical = None;
            assessment.unknown_reason = Some("the image has no package database to match".into());
        }
        Ok(assessment)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn package(manager: Manager, name: &str, source: &str) -> Package {
        Package {
            name: name.into(),
            version: "1.0-1".into(),
            architecture: String::new(),
            source: source.into(),
            license: String::new(),
            status: "install ok installed".into(),
            multi_arch: String::new(),
            manager,
        }
    }

    #[test]
    fn source_names_as_each_manager_records_them() {
        let list = installed_packages(&[
            package(Manager::Dpkg, "libssl3", "openssl"),
            package(Manager::Dpkg, "bash", ""),
            package(Manager::Rpm, "openssl-libs", "openssl-3.0.7-24.el9.src.rpm"),
            package(
                Manager::Rpm,
                "glibc-langpack-en",
                "glibc-2.34-100.el9_4.2.src.rpm",
            ),
            package(Manager::Apk, "libcrypto3", "openssl"),
        ]);
        let sources: Vec<Option<&str>> = list.iter().map(|p| p.source_name.as_deref()).collect();
        assert_eq!(
            sources,
            [
                Some("openssl"),
                None,
                Some("openssl"),
                Some("glibc"),
                Some("openssl")
            ]
        );
    }
}
