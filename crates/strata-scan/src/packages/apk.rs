use base64::Engine as _;

use super::dpkg::safe_path;
use super::{DigestAlgorithm, Manager, Package, PackageError, PackagedFile};

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

/// The files of each package of apk's installed database: package name → files, from the `F:` (directory)
/// and `R:` (file) lines, each file with the `Z:Q1…` checksum that follows it (base64 SHA-1; for a symlink,
/// of its target). Files without a checksum are left out. Names with a `..` component are refused; `db` is
/// the database's path, for messages.
pub fn parse_apk_files(
    text: &str,
    db: &str,
) -> Result<Vec<(String, Vec<PackagedFile>)>, PackageError> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut name = String::new();
        let mut dir = String::new();
        let mut file: Option<String> = None;
        let mut files = Vec::new();
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key {
                "P" => name = value.to_owned(),
                "F" => {
                    dir = value.to_owned();
                    file = None;
                }
                "R" => {
                    file = Some(if dir.is_empty() {
                        value.to_owned()
                    } else {
                        format!("{dir}/{value}")
                    })
                }
                "Z" => {
                    let Some(path) = file.take() else { continue };
                    let path = safe_path(&path, db)?;
                    let hex = apk_checksum_hex(value).ok_or_else(|| PackageError::Malformed {
                        path: db.to_owned(),
                        reason: format!("{path}: checksum {value:?} is not Q1 and base64 SHA-1"),
                    })?;
                    files.push(PackagedFile::with_digest(
                        path,
                        DigestAlgorithm::Sha1,
                        hex,
                        0,
                    ));
                }
                _ => {}
            }
        }
        if !name.is_empty() {
            out.push((name, files));
        }
    }
    Ok(out)
}

/// `Q1` + base64 of a SHA-1 → the SHA-1 in hex.
fn apk_checksum_hex(value: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.strip_prefix("Q1")?)
        .ok()?;
    (raw.len() == 20).then(|| raw.iter().map(|b| format!("{b:02x}")).collect())
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

    #[test]
    fn files_and_checksums() {
        let text = "P:musl\nF:lib\nR:libc.so\nZ:Q1xiR2Wy3C5shv+8g7H4HZ0z5t9M0=\nR:nosum\n\nP:x\nF:etc\nR:../../y\nZ:Q1xiR2Wy3C5shv+8g7H4HZ0z5t9M0=\n";
        let err = parse_apk_files(text, "/lib/apk/db/installed").unwrap_err();
        assert!(matches!(err, PackageError::UnsafePath { .. }), "{err}");
        let files = parse_apk_files(text.split("\n\n").next().unwrap(), "db").unwrap();
        assert_eq!(files[0].1.len(), 1);
        assert_eq!(files[0].1[0].path, "/lib/libc.so");
        assert_eq!(files[0].1[0].digest.as_ref().unwrap().hex.len(), 40);
    }
}
