//! The distribution an image is built from: `/etc/os-release` and its fallbacks.

use serde::Serialize;

/// What an image says about its distribution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsInfo {
    /// `ID`, e.g. `debian`, `rhel`, `alpine`.
    pub id: String,
    /// `ID_LIKE`, split on white space.
    pub id_like: Vec<String>,
    /// `NAME`.
    pub name: String,
    /// `VERSION_ID`.
    pub version_id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
    /// `VARIANT` (e.g. `Server`; empty when absent).
    pub variant: String,
    /// The file the answer came from.
    pub source: String,
}

impl OsInfo {
    /// Whether this is Red Hat Enterprise Linux (or UBI, which reports `rhel`).
    pub fn is_rhel(&self) -> bool {
        self.id == "rhel"
    }
}

/// Parses os-release(5) text: `KEY=VALUE` lines, values optionally quoted with shell-style escapes.
pub fn parse_os_release(text: &str, source: &str) -> OsInfo {
    let mut info = OsInfo {
        source: source.to_owned(),
        ..OsInfo::default()
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw.trim());
        match key.trim() {
            "ID" => info.id = value,
            "ID_LIKE" => info.id_like = value.split_whitespace().map(str::to_owned).collect(),
            "NAME" => info.name = value,
            "VERSION_ID" => info.version_id = value,
            "PRETTY_NAME" => info.pretty_name = value,
            "VARIANT" => info.variant = value,
            _ => {}
        }
    }
    info
}

fn unquote(raw: &str) -> String {
    let quote = match raw.chars().next() {
        Some(q @ ('"' | '\'')) if raw.len() >= 2 && raw.ends_with(q) => q,
        _ => return raw.to_owned(),
    };
    let inner = &raw[1..raw.len() - 1];
    if quote == '\'' {
        return inner.to_owned();
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `/etc/redhat-release` (`Red Hat Enterprise Linux release 9.3 (Plow)`, `Fedora release 39 …`,
/// `CentOS Linux release 7.9.2009 (Core)`).
pub fn parse_redhat_release(text: &str, source: &str) -> OsInfo {
    let line = text.lines().next().unwrap_or("").trim();
    let lower = line.to_lowercase();
    let id = if lower.starts_with("red hat enterprise linux") {
        "rhel"
    } else if lower.starts_with("fedora") {
        "fedora"
    } else if lower.starts_with("centos") {
        "centos"
    } else if lower.starts_with("rocky") {
        "rocky"
    } else if lower.starts_with("almalinux") {
        "almalinux"
    } else {
        ""
    };
    let version_id = line
        .split_once(" release ")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
        .unwrap_or_default();
    OsInfo {
        id: id.to_owned(),
        id_like: Vec::new(),
        name: line
            .split_once(" release ")
            .map_or(line, |(n, _)| n)
            .to_owned(),
        version_id,
        pretty_name: line.to_owned(),
        variant: String::new(),
        source: source.to_owned(),
    }
}

/// Parses `/etc/alpine-release` (a version number).
pub fn parse_alpine_release(text: &str, source: &str) -> OsInfo {
    let version = text.lines().next().unwrap_or("").trim().to_owned();
    OsInfo {
        id: "alpine".into(),
        id_like: Vec::new(),
        name: "Alpine Linux".into(),
        pretty_name: format!("Alpine Linux v{version}"),
        version_id: version,
        variant: String::new(),
        source: source.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let info = parse_os_release(
            "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\n\
             PRETTY_NAME=\"Red Hat Enterprise Linux 9.3 (Plow)\"\n# comment\nBROKEN\n",
            "/etc/os-release",
        );
        assert!(info.is_rhel());
        assert_eq!(info.version_id, "9.3");
        assert_eq!(info.id_like, vec!["fedora"]);
        let d = parse_os_release(
            "ID=debian\nPRETTY_NAME='Debian GNU/Linux 12 (bookworm)'\nNAME=\"a \\\"q\\\"\"",
            "x",
        );
        assert_eq!(d.id, "debian");
        assert_eq!(d.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(d.name, "a \"q\"");
    }

    #[test]
    fn release_files() {
        let r = parse_redhat_release("Red Hat Enterprise Linux release 8.9 (Ootpa)\n", "f");
        assert_eq!((r.id.as_str(), r.version_id.as_str()), ("rhel", "8.9"));
        let a = parse_alpine_release("3.19.1\n", "f");
        assert_eq!((a.id.as_str(), a.version_id.as_str()), ("alpine", "3.19.1"));
    }
}
