use super::{Manager, Package, PackageError};

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

/// Refuses a file-list name that could leave the image's root: one with a `..` component, or an empty
/// one. `db` is the database file, for the message. Returns the name as an absolute path.
pub(crate) fn safe_path(name: &str, db: &str) -> Result<String, PackageError> {
    let refuse = |reason: &str| PackageError::UnsafePath {
        path: db.to_owned(),
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = name.trim_start_matches("./").trim_start_matches('/');
    if trimmed.is_empty() {
        return Err(refuse("an empty file name"));
    }
    if trimmed.split('/').any(|c| c == "..") {
        return Err(refuse("a `..` component would leave the image's root"));
    }
    Ok(format!("/{trimmed}"))
}

/// Parses a dpkg `info/<package>.md5sums` file: lines of an MD5 in hex, white space, and a path relative to
/// the root. Returns (absolute path, md5) pairs. A name with a `..` component is refused
/// ([`PackageError::UnsafePath`]); a line that is not an MD5 and a name is [`PackageError::Malformed`]. `db`
/// is the file's path in the image, for messages.
pub fn parse_dpkg_md5sums(text: &str, db: &str) -> Result<Vec<(String, String)>, PackageError> {
    dpkg_md5sums(text, db).collect()
}

/// [`parse_dpkg_md5sums`] a line at a time, for lists too long to hold whole.
pub fn dpkg_md5sums<'a>(
    text: &'a str,
    db: &'a str,
) -> impl Iterator<Item = Result<(String, String), PackageError>> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(n, line)| {
            let (md5, name) = line
                .split_once(char::is_whitespace)
                .map(|(m, rest)| (m, rest.trim_start()))
                .filter(|(m, name)| {
                    m.len() == 32 && m.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty()
                })
                .ok_or_else(|| PackageError::Malformed {
                    path: db.to_owned(),
                    reason: format!("line {}: not an MD5 and a file name: {line:?}", n + 1),
                })?;
            Ok((safe_path(name, db)?, md5.to_ascii_lowercase()))
        })
}

/// The conffiles of each package of a dpkg status file, from its `Conffiles:` field: package name →
/// (absolute path, md5). Entries whose hash is `newconffile` (not yet installed) are left out; names with a
/// `..` component are refused.
pub fn parse_dpkg_conffiles(
    text: &str,
    db: &str,
) -> Result<std::collections::BTreeMap<String, Vec<(String, String)>>, PackageError> {
    let mut out = std::collections::BTreeMap::new();
    for paragraph in text.split("\n\n") {
        let mut name = "";
        let mut arch = "";
        let mut multi_same = false;
        let mut conffiles: Vec<(String, String)> = Vec::new();
        let mut in_conffiles = false;
        for line in paragraph.lines() {
            if line.starts_with([' ', '\t']) {
                if in_conffiles {
                    let mut words = line.split_whitespace();
                    if let (Some(path), Some(md5)) = (words.next(), words.next())
                        && md5 != "newconffile"
                    {
                        conffiles.push((safe_path(path, db)?, md5.to_ascii_lowercase()));
                    }
                }
                continue;
            }
            in_conffiles = false;
            if let Some((key, value)) = line.split_once(':') {
                match key.trim().to_ascii_lowercase().as_str() {
                    "package" => name = value.trim(),
                    "architecture" => arch = value.trim(),
                    "multi-arch" => multi_same = value.trim() == "same",
                    "conffiles" => in_conffiles = true,
                    _ => {}
                }
            }
        }
        if !name.is_empty() && !conffiles.is_empty() {
            let key = if multi_same && !arch.is_empty() {
                format!("{name}:{arch}")
            } else {
                name.to_owned()
            };
            out.insert(key, conffiles);
        }
    }
    Ok(out)
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

    #[test]
    fn md5sums_and_conffiles() {
        let sums = parse_dpkg_md5sums(
            "d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/x/copyright\n\n",
            "/var/lib/dpkg/info/x.md5sums",
        )
        .unwrap();
        assert_eq!(sums[0].0, "/usr/share/doc/x/copyright");
        for bad in [
            "d41d8cd98f00b204e9800998ecf8427e  ../../etc/shadow",
            "d41d8cd98f00b204e9800998ecf8427e  usr/../../x",
        ] {
            let err = parse_dpkg_md5sums(bad, "/var/lib/dpkg/info/x.md5sums").unwrap_err();
            assert!(matches!(err, PackageError::UnsafePath { .. }), "{err}");
            assert!(
                err.to_string().contains("x.md5sums") && err.to_string().contains(".."),
                "{err}"
            );
        }
        assert!(parse_dpkg_md5sums("nonsense", "f").is_err());
        let conf = parse_dpkg_conffiles(
            "Package: x\nStatus: install ok installed\nConffiles:\n /etc/x.conf 0123456789abcdef0123456789abcdef\n              /etc/new newconffile\nVersion: 1\n",
            "/var/lib/dpkg/status",
        )
        .unwrap();
        assert_eq!(
            conf["x"],
            [(
                "/etc/x.conf".to_owned(),
                "0123456789abcdef0123456789abcdef".to_owned()
            )]
        );
    }
}
