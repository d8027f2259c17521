//! Severities on Red Hat's scale, from what OSV exports say.

use crate::cvss;

/// An advisory's severity on Red Hat's four-point scale.
///
/// Mapping (case-insensitive) of the ratings OSV exports carry:
/// - a vendor's word (`database_specific.severity`, `ecosystem_specific.severity` or `.urgency`, an
///   `Ubuntu` entry in `severity[]`): `critical`, `emergency` → Critical; `important`, `high` → Important;
///   `moderate`, `medium` → Moderate; `low`, `negligible`, `unimportant` → Low; anything else (Debian's
///   `not yet assigned`, `end-of-life`, …) → Unknown;
/// - else a `CVSS_V3` vector in `severity[]`, by its base score ([`cvss::base_score`]): 9.0–10.0 Critical,
///   7.0–8.9 Important, 4.0–6.9 Moderate, 0.0–3.9 Low (NVD's bands, with None folded into Low);
/// - else Unknown (`CVSS_V2` and `CVSS_V4` vectors are not scored).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    /// No rating could be read.
    Unknown,
    /// Low.
    Low,
    /// Moderate (medium).
    Moderate,
    /// Important (high).
    Important,
    /// Critical.
    Critical,
}

impl Severity {
    /// A vendor's word for a severity, `None` when the word is not one of the mapped ones.
    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "critical" | "emergency" => Self::Critical,
            "important" | "high" => Self::Important,
            "moderate" | "medium" => Self::Moderate,
            "low" | "negligible" | "unimportant" => Self::Low,
            _ => return None,
        })
    }

    /// The band a CVSS base score falls in.
    pub fn from_score(score: f64) -> Self {
        if score >= 9.0 {
            Self::Critical
        } else if score >= 7.0 {
            Self::Important
        } else if score >= 4.0 {
            Self::Moderate
        } else {
            Self::Low
        }
    }

    /// The severity of a CVSS v3 vector, `None` when it cannot be scored.
    pub fn from_cvss_v3(vector: &str) -> Option<Self> {
        cvss::base_score(vector).ok().map(Self::from_score)
    }
}
