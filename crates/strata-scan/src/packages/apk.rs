use super::{Manager, Package};

/// Parses apk's installed database (`/lib/apk/db/installed`): blocks of `X:value` lines separated by blank
/// lines (`P` name, `V` version, `A` architecture, `L` licence, `o` origin).
pub fn parse_apk_installed(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut pkg = Package {
            name: String::new(),
            version: String::new(),
            architecture: String::new(),
            source: String::new(),
            license: String::new(),
            status: "installed".into(),
            multi_arch: String::new(),
            manager: Manager::Apk,
        };
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.to_owned();
            match key {
                "P" => pkg.name = value,
                "V" => pkg.version = value,
                "A" => pkg.architecture = value,
                "L" => pkg.license = value,
                "o" => pkg.source = value,
                _ => {}
            }
        }
        if !pkg.name.is_empty() {
            out.push(pkg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:libc.musl-x86_64.so.1\n\n\
                    P:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\n";
        let p = parse_apk_installed(text);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("musl", "1.2.4-r2")
        );
        assert_eq!(p[1].license, "GPL-2.0-only");
    }
}
