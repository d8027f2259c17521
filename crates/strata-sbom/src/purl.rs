//! Package URLs (<https://github.com/package-url/purl-spec>): `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`,
//! every component percent-encoded except the unreserved characters, namespace segments kept apart by
//! unencoded `/`, qualifiers sorted by key and left out when empty.

use strata_scan::inventory::{Ecosystem, InventoryPackage};
use strata_scan::os::OsInfo;

/// Percent-encodes everything but ASCII letters, digits and `.-_~` (so `@` → `%40`, `+` → `%2B`,
/// `:` → `%3A`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A package URL from its parts: `namespace` may hold `/`-separated segments; empty qualifier values are
/// left out.
pub fn build(
    ty: &str,
    namespace: &str,
    name: &str,
    version: &str,
    qualifiers: &[(&str, String)],
) -> String {
    let mut out = format!("pkg:{ty}/");
    for segment in namespace.split('/').filter(|s| !s.is_empty()) {
        out.push_str(&encode(segment));
        out.push('/');
    }
    out.push_str(&encode(name));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&encode(version));
    }
    let mut q: Vec<&(&str, String)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    q.sort_by_key(|(k, _)| *k);
    for (i, (k, v)) in q.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// The namespace of an rpm distribution's purls: its vendor (`redhat` for RHEL and UBI).
fn rpm_vendor(os: Option<&OsInfo>) -> String {
    match os.map(|o| o.id.as_str()) {
        Some("rhel") => "redhat".into(),
        Some("ol") => "oracle".into(),
        Some("amzn") => "amazon".into(),
        Some("sles" | "opensuse-leap" | "opensuse-tumbleweed" | "opensuse") => "opensuse".into(),
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => "unknown".into(),
    }
}

/// `distro=ID-VERSION_ID` (e.g. `debian-12`, `alpine-3.19.1`).
fn distro(os: Option<&OsInfo>) -> String {
    match os {
        Some(o) if !o.id.is_empty() && !o.version_id.is_empty() => {
            format!("{}-{}", o.id, o.version_id)
        }
        Some(o) => o.id.clone(),
        None => String::new(),
    }
}

/// The package URL of `p`, in an image of distribution `os`: `pkg:deb/ID/…?arch=…&distro=ID-VERSION`,
/// `pkg:rpm/VENDOR/…@VERSION-RELEASE?arch=…&epoch=…&distro=…`, `pkg:apk/ID/…?arch=…&distro=…`,
/// `pkg:pypi/NAME@…` (name lower-cased, `_` → `-`), `pkg:npm/%40SCOPE/NAME@…`,
/// `pkg:golang/MODULE/PATH@…` (the standard library as `pkg:golang/stdlib@1.22.1`).
pub fn purl(p: &InventoryPackage, os: Option<&OsInfo>) -> String {
    let os_id = os.map(|o| o.id.clone()).filter(|id| !id.is_empty());
    match p.ecosystem {
        Ecosystem::Deb => build(
            "deb",
            &os_id.unwrap_or_else(|| "debian".into()),
            &p.name,
            &p.version,
            &[("arch", p.architecture.clone()), ("distro", distro(os))],
        ),
        Ecosystem::Rpm => {
            let (epoch, version) = match p.version.split_once(':') {
                Some((e, v)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                    (e.to_owned(), v.to_owned())
                }
                _ => (String::new(), p.version.clone()),
            };
            build(
                "rpm",
                &rpm_vendor(os),
                &p.name,
                &version,
                &[
                    ("arch", p.architecture.clone()),
                    ("epoch", epoch),
                    ("distro", distro(os)),
                ],
            )
        }
        Ecosystem::Apk => build(
            "apk",
            &os_id.unwrap_or_else(|| "alpine".into()),
            &p.name,
            &p.version,
            &[("arch", p.architecture.clone()), ("distro", distro(os))],
        ),
        Ecosystem::Python => build(
            "pypi",
            "",
            &p.name.to_lowercase().replace('_', "-"),
            &p.version,
            &[],
        ),
        Ecosystem::Npm => match p.name.split_once('/') {
            Some((scope, name)) if scope.starts_with('@') => {
                build("npm", scope, name, &p.version, &[])
            }
            _ => build("npm", "", &p.name, &p.version, &[]),
        },
        Ecosystem::Go => {
            if p.name == "stdlib" {
                let v = p.version.strip_prefix("go").unwrap_or(&p.version);
                return build("golang", "", "stdlib", v, &[]);
            }
            match p.name.rsplit_once('/') {
                Some((namespace, name)) => build("golang", namespace, name, &p.version, &[]),
                None => build("golang", "", &p.name, &p.version, &[]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(ecosystem: Ecosystem, name: &str, version: &str, arch: &str) -> InventoryPackage {
        InventoryPackage {
            name: name.into(),
            version: version.into(),
            architecture: arch.into(),
            source: String::new(),
            licenses: Vec::new(),
            ecosystem,
            path: String::new(),
            layer: 0,
            previous_version: None,
            files: Vec::new(),
        }
    }

    fn os(id: &str, version: &str) -> OsInfo {
        OsInfo {
            id: id.into(),
            version_id: version.into(),
            ..OsInfo::default()
        }
    }

    #[test]
    fn purls() {
        let debian = os("debian", "12");
        assert_eq!(
            purl(
                &pkg(Ecosystem::Deb, "libc6", "2.36-9+deb12u4", "amd64"),
                Some(&debian)
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            purl(&pkg(Ecosystem::Deb, "x", "1:2.0-1", "all"), Some(&debian)),
            "pkg:deb/debian/x@1%3A2.0-1?arch=all&distro=debian-12"
        );
        assert_eq!(
            purl(
                &pkg(Ecosystem::Rpm, "bash", "2:5.1.8-6.el9", "x86_64"),
                Some(&os("rhel", "9.3"))
            ),
            "pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&distro=rhel-9.3&epoch=2"
        );
        assert_eq!(
            purl(
                &pkg(Ecosystem::Apk, "musl", "1.2.4-r2", "x86_64"),
                Some(&os("alpine", "3.19.1"))
            ),
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
        );
        assert_eq!(
            purl(
                &pkg(Ecosystem::Python, "Typing_Extensions", "4.9.0", ""),
                None
            ),
            "pkg:pypi/typing-extensions@4.9.0"
        );
        assert_eq!(
            purl(&pkg(Ecosystem::Npm, "@types/node", "20.1.0", ""), None),
            "pkg:npm/%40types/node@20.1.0"
        );
        assert_eq!(
            purl(
                &pkg(Ecosystem::Go, "github.com/spf13/cobra", "v1.8.0", ""),
                None
            ),
            "pkg:golang/github.com/spf13/cobra@v1.8.0"
        );
        assert_eq!(
            purl(&pkg(Ecosystem::Go, "stdlib", "go1.22.1", ""), None),
            "pkg:golang/stdlib@1.22.1"
        );
    }
}
