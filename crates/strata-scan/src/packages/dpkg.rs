use super::{Manager, Package};

/// Parses a dpkg status file (or one file of distroless `status.d/`): RFC 822 paragraphs. Every package the
/// database knows is returned except those marked `not-installed`, as `dpkg-query -W` lists them; `status`
/// keeps the `Status` field (e.g. `install ok installed`, or `deinstall ok config-files`).
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut fields: Vec<(&str, String)> = Vec::new();
        for line in paragraph.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim(), value.trim().to_owned()));
            }
        }
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let name = get("Package");
        if name.is_empty() {
            continue;
        }
        // Distroless status.d entries have no Status field: they are installed.
        let status = match get("Status") {
            s if s.is_empty() => "install ok installed".to_owned(),
            s => s,
        };
        if status.split_whitespace().nth(2) == Some("not-installed") {
            continue;
        }
        let source = get("Source");
        let source = source.split_whitespace().next().unwrap_or("").to_owned();
        out.push(Package {
            name,
            version: get("Version"),
            architecture: get("Architecture"),
            source,
            license: String::new(),
            status,
            multi_arch: get("Multi-Arch"),
            manager: Manager::Dpkg,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc (2.36-9)\n\
                    Version: 2.36-9+deb12u4\nDescription: GNU C Library\n more text\n\n\
                    Package: gone\nStatus: purge ok not-installed\nVersion: 1\n\n\
                    Package: old\nStatus: deinstall ok config-files\nVersion: 2\n";
        let p = parse_dpkg_status(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "libc6");
        assert_eq!(p[0].source, "glibc");
        assert_eq!(p[0].version, "2.36-9+deb12u4");
        assert_eq!(p[1].status, "deinstall ok config-files");
    }
}
