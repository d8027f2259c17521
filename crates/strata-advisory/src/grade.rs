//! The Container Health Index and the critical-vulnerability verdict.
//!
//! **Age** is `now − published`, in whole calendar days (the advisory's OSV `published` date; `now` is the
//! caller's). **What counts for the grade:** Red Hat grades by *unapplied errata* of Critical or Important
//! severity. A finding with a fixed version is an unapplied erratum; a finding without one has no erratum to
//! apply and does not lower the grade (it is still a finding, listed, and still counts for
//! [`free_of_critical`]). Moderate, Low and Unknown severities never lower the grade.
//!
//! | grade | every counted Critical finding is at most | every counted Important finding is at most |
//! |---|---|---|
//! | A | (none) | (none) |
//! | B | 7 days old | 30 days old |
//! | C | 30 days | 90 days |
//! | D | 90 days | 365 days |
//! | E | 365 days | 365 days |
//! | F | older than 365 days | older than 365 days |
//!
//! The grade is the worst any counted finding earns. **Unknown**: a counted finding without a publication
//! date (its age cannot be known). The caller also says Unknown when it has no feed, or the feed does not
//! cover the image's distribution ([`crate::Feed::covers`]).

use crate::{Date, Distribution, Error, Feed, Finding, InstalledPackage, Severity};

/// The Container Health Index grade.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Grade {
    /// No unapplied Critical or Important errata.
    A,
    /// None older than 7 days (Critical) / 30 days (Important).
    B,
    /// None older than 30 / 90 days.
    C,
    /// None older than 90 / 365 days.
    D,
    /// None older than 365 days.
    E,
    /// Some older than 365 days.
    F,
    /// The findings lack what grading needs (a publication date).
    Unknown,
}

/// Whether no Critical advisory applies: `false` exactly when a finding is Critical, fixed or not.
pub fn free_of_critical(findings: &[Finding]) -> bool {
    !findings.iter().any(|f| f.severity == Severity::Critical)
}

/// The Container Health Index of `findings` at `now` (see the module docs for the rules). Ages are
/// recomputed from each finding's `published` date and `now`.
pub fn health_index(findings: &[Finding], now: Date) -> Grade {
    let mut grade = Grade::A;
    for finding in findings {
        if finding.fixed.is_none() {
            continue;
        }
        let critical = match finding.severity {
            Severity::Critical => true,
            Severity::Important => false,
            _ => continue,
        };
        let Some(published) = finding.published else {
            return Grade::Unknown;
        };
        let age = now.days_since(published).max(0);
        let earned = match (critical, age) {
            (true, 0..=7) | (false, 0..=30) => Grade::B,
            (true, 8..=30) | (false, 31..=90) => Grade::C,
            (true, 31..=90) | (false, 91..=365) => Grade::D,
            (true, 91..=365) => Grade::E,
            _ => Grade::F,
        };
        grade = grade.max(earned);
    }
    grade
}

/// Why a grade is Unknown when a counted finding has no publication date.
const NO_PUBLISHED: &str =
    "a Critical or Important finding with a fixed version has no publication date";

/// The whole answer for one image: what `strata check --advisories PATH --now DATE` reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Assessment {
    /// The distribution assessed.
    pub distribution: Distribution,
    /// The date ages are counted to.
    pub now: Date,
    /// Whether the feed has advisories for the distribution's release ([`Feed::covers`]).
    pub covered: bool,
    /// The Container Health Index; Unknown when not covered, or as [`health_index`] says.
    pub grade: Grade,
    /// Whether no Critical advisory applies; `None` (unknown) when the feed does not cover the release.
    pub free_of_critical: Option<bool>,
    /// Why the grade is Unknown, when it is.
    pub unknown_reason: Option<String>,
    /// The findings, by package then advisory.
    pub findings: Vec<Finding>,
}

impl Feed {
    /// Assesses an image: its findings, the grade and the critical verdict, with Unknown (and the reason)
    /// when the feed does not cover the distribution's release.
    ///
    /// # Errors
    /// As [`Feed::findings`].
    pub fn assess(
        &self,
        distribution: &Distribution,
        packages: &[InstalledPackage],
        now: Date,
    ) -> Result<Assessment, Error> {
        let findings = self.findings(distribution, packages, now)?;
        let covered = self.covers(distribution);
        let (grade, free, unknown_reason) = if covered {
            let grade = health_index(&findings, now);
            let reason = (grade == Grade::Unknown).then(|| NO_PUBLISHED.to_owned());
            (grade, Some(free_of_critical(&findings)), reason)
        } else {
            let reason = format!(
                "the feed has no advisories for {} {}",
                distribution.id, distribution.version_id
            );
            (Grade::Unknown, None, Some(reason))
        };
        Ok(Assessment {
            distribution: distribution.clone(),
            now,
            covered,
            grade,
            free_of_critical: free,
            unknown_reason,
            findings,
        })
    }
}
