//! CVSS v3.0/v3.1 base scores, computed from a vector string by the specification's formulas (FIRST's CVSS
//! v3.1 specification, section 7: the base metric equations and `Roundup`).

/// A CVSS v3 vector that cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CVSS vector {vector:?}: {reason}")]
pub struct CvssError {
    /// The vector as given.
    pub vector: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The base score (0.0–10.0) of a `CVSS:3.0/…` or `CVSS:3.1/…` vector. Temporal and environmental metrics
/// may be present and are ignored; every base metric (AV, AC, PR, UI, S, C, I, A) must be, once.
///
/// # Errors
/// [`CvssError`] for another version, a missing, repeated or unknown base metric value.
pub fn base_score(vector: &str) -> Result<f64, CvssError> {
    let bad = |reason: &'static str| CvssError {
        vector: vector.to_owned(),
        reason,
    };
    let mut parts = vector.split('/');
    match parts.next() {
        Some("CVSS:3.0" | "CVSS:3.1") => {}
        _ => return Err(bad("not a CVSS v3.0 or v3.1 vector")),
    }
    let mut metrics: [Option<&str>; 8] = [None; 8];
    const NAMES: [&str; 8] = ["AV", "AC", "PR", "UI", "S", "C", "I", "A"];
    for part in parts {
        let (name, value) = part
            .split_once(':')
            .ok_or_else(|| bad("a metric without `:`"))?;
        if let Some(slot) = NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| metrics.get_mut(i))
            && slot.replace(value).is_some()
        {
            return Err(bad("a base metric given twice"));
        }
    }
    let [
        Some(av),
        Some(ac),
        Some(pr),
        Some(ui),
        Some(s),
        Some(c),
        Some(i),
        Some(a),
    ] = metrics
    else {
        return Err(bad("a base metric is missing"));
    };
    let changed = match s {
        "U" => false,
        "C" => true,
        _ => return Err(bad("unknown scope")),
    };
    let av = match av {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return Err(bad("unknown attack vector")),
    };
    let ac = match ac {
        "L" => 0.77,
        "H" => 0.44,
        _ => return Err(bad("unknown attack complexity")),
    };
    let pr = match (pr, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return Err(bad("unknown privileges required")),
    };
    let ui = match ui {
        "N" => 0.85,
        "R" => 0.62,
        _ => return Err(bad("unknown user interaction")),
    };
    let cia = |v: &str| match v {
        "H" => Ok(0.56),
        "L" => Ok(0.22),
        "N" => Ok(0.0),
        _ => Err(bad("unknown impact value")),
    };
    let (c, i, a) = (cia(c)?, cia(i)?, cia(a)?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02_f64).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Ok(0.0);
    }
    let total = if changed {
        1.08 * (impact + exploitability)
    } else {
        impact + exploitability
    };
    Ok(roundup(total.min(10.0)))
}

/// CVSS v3.1's `Roundup`: the smallest one-decimal number not below `x`, robust to floating-point error.
fn roundup(x: f64) -> f64 {
    // Scores are within 0..=10.8, so the integer conversion is exact.
    #[allow(clippy::cast_possible_truncation)]
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Scores published with these vectors (NVD / FIRST's calculator).
    #[test]
    fn known_scores() {
        for (vector, score) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N", 2.5),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ] {
            assert_eq!(base_score(vector).unwrap(), score, "{vector}");
        }
        for bad in [
            "CVSS:2.0/AV:N",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ] {
            assert!(base_score(bad).is_err(), "{bad}");
        }
    }
}
