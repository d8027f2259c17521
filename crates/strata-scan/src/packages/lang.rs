//! Language packages' metadata files: Python's core metadata (`*.dist-info/METADATA`,
//! `*.egg-info/PKG-INFO`) and npm's `package.json`.

/// What a language package's metadata file says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LangMetadata {
    /// The name (`Name:`; npm `name`, scope included: `@types/node`).
    pub name: String,
    /// The version.
    pub version: String,
    /// The licences it declares (an SPDX expression, a free-form name or a trove classifier's name), in
    /// the order the file gives them, without duplicates.
    pub licenses: Vec<String>,
}

fn push_unique(out: &mut Vec<String>, value: &str) {
    let value = value.trim();
    if !value.is_empty()
        && !value.eq_ignore_ascii_case("UNKNOWN")
        && !out.iter().any(|v| v == value)
    {
        out.push(value.to_owned());
    }
}

/// Parses Python core metadata (RFC 822 headers up to the first blank line): `Name`, `Version`, and the
/// licence from `License-Expression` (metadata 2.4), else a one-line `License`, else the
/// `License :: … :: NAME` classifiers. `None` without a name or a version.
pub fn parse_python_metadata(text: &str) -> Option<LangMetadata> {
    let mut name = String::new();
    let mut version = String::new();
    let mut expression = String::new();
    let mut license = String::new();
    let mut classifiers = Vec::new();
    let mut last_key = String::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if last_key.eq_ignore_ascii_case("License") {
                // A multi-line License is the licence text, not a name.
                license.clear();
                last_key.clear();
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        last_key = key.to_owned();
        match key.to_ascii_lowercase().as_str() {
            "name" => name = value.to_owned(),
            "version" => version = value.to_owned(),
            "license-expression" => expression = value.to_owned(),
            "license" => license = value.to_owned(),
            "classifier" => {
                if let Some(rest) = value.strip_prefix("License ::")
                    && let Some(last) = rest.rsplit("::").next()
                {
                    classifiers.push(last.trim().to_owned());
                }
            }
            _ => {}
        }
    }
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let mut licenses = Vec::new();
    if !expression.is_empty() {
        push_unique(&mut licenses, &expression);
    } else if !license.is_empty() && license.len() <= 200 {
        push_unique(&mut licenses, &license);
    } else {
        for c in &classifiers {
            push_unique(&mut licenses, c);
        }
    }
    Some(LangMetadata {
        name,
        version,
        licenses,
    })
}

/// Parses an npm `package.json`: `name`, `version`, and `license` (a string, or the old `{"type": …}`
/// object) or the older `licenses` array. `None` when it is not a JSON object with a name and a version.
pub fn parse_package_json(bytes: &[u8]) -> Option<LangMetadata> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let name = value.get("name")?.as_str()?.trim().to_owned();
    let version = value.get("version")?.as_str()?.trim().to_owned();
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let mut licenses = Vec::new();
    let one = |v: &serde_json::Value| -> Option<String> {
        v.as_str()
            .map(str::to_owned)
            .or_else(|| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
    };
    if let Some(l) = value.get("license").and_then(one) {
        push_unique(&mut licenses, &l);
    } else if let Some(list) = value.get("licenses").and_then(|l| l.as_array()) {
        for l in list.iter().filter_map(one) {
            push_unique(&mut licenses, &l);
        }
    }
    Some(LangMetadata {
        name,
        version,
        licenses,
    })
}

/// The licences a Debian machine-readable copyright file (`/usr/share/doc/PKG/copyright`, DEP-5) names:
/// the first line of every `License:` field, without duplicates. Empty for a file that does not start with
/// the `Format:` field of that format (free-form copyright files name no licence reliably).
pub fn parse_debian_copyright(text: &str) -> Vec<String> {
    let machine_readable = text
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("Format:") || l.starts_with("Format-Specification:"));
    let mut out = Vec::new();
    if !machine_readable {
        return out;
    }
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("License:") {
            push_unique(&mut out, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python() {
        let m = parse_python_metadata(
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\
             Classifier: License :: OSI Approved :: Apache Software License\n\nLicense: body\n",
        )
        .unwrap();
        assert_eq!(
            (m.name.as_str(), m.version.as_str()),
            ("requests", "2.31.0")
        );
        assert_eq!(m.licenses, ["Apache 2.0"]);
        let m = parse_python_metadata(
            "Name: a\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: x\n",
        )
        .unwrap();
        assert_eq!(m.licenses, ["MIT OR Apache-2.0"]);
        let m = parse_python_metadata(
            "Name: b\nVersion: 2\nLicense: Long\n        text\n\
             Classifier: License :: OSI Approved :: MIT License\n",
        )
        .unwrap();
        assert_eq!(m.licenses, ["MIT License"]);
        assert!(parse_python_metadata("Name: c\n").is_none());
    }

    #[test]
    fn npm() {
        let m = parse_package_json(br#"{"name":"@scope/x","version":"1.0.0","license":"MIT"}"#)
            .unwrap();
        assert_eq!(m.name, "@scope/x");
        assert_eq!(m.licenses, ["MIT"]);
        let m = parse_package_json(
            br#"{"name":"y","version":"2","licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]}"#,
        )
        .unwrap();
        assert_eq!(m.licenses, ["MIT", "Apache-2.0"]);
        assert!(parse_package_json(br#"{"name":"z"}"#).is_none());
        assert!(parse_package_json(b"[1]").is_none());
        assert!(parse_package_json(b"not json").is_none());
    }

    #[test]
    fn debian_copyright() {
        let dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
                    Upstream-Name: x\n\nFiles: *\nCopyright: me\nLicense: GPL-2+\n\n\
                    Files: a/*\nLicense: BSD-3-clause\n\nLicense: GPL-2+\n On Debian systems…\n";
        assert_eq!(parse_debian_copyright(dep5), ["GPL-2+", "BSD-3-clause"]);
        assert!(
            parse_debian_copyright("This package was debianized by…\nLicense: GPL\n").is_empty()
        );
    }
}
