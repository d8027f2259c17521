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

use crate::{Date, Finding, Severity};

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
