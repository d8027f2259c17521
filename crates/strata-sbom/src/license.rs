//! Licence names as SBOMs need them: an SPDX expression when the name is one (checked against the SPDX
//! licence list the `spdx` crate carries), else a `LicenseRef-` with the name kept as extracted text.

use std::collections::BTreeMap;

/// Whether `name` is a valid SPDX licence expression (identifiers from the list, `LicenseRef-…`, `AND`,
/// `OR`, `WITH`, parentheses).
pub fn is_spdx_expression(name: &str) -> bool {
    spdx::Expression::parse(name).is_ok()
}

/// Whether `name` is exactly one identifier of the SPDX licence list (`MIT`, `GPL-2.0-only`; not
/// `GFDL-1.3+`, an identifier with the or-later operator, which is an expression).
pub fn is_spdx_id(name: &str) -> bool {
    spdx::license_id(name).is_some_and(|l| l.name == name)
}

/// The `LicenseRef-` identifiers a document gives to licence names that are not SPDX expressions, each
/// with the name it stands for.
#[derive(Debug, Default)]
pub struct LicenseRefs {
    refs: BTreeMap<String, String>,
}

impl LicenseRefs {
    /// The SPDX expression for `names` (joined with `AND`): each name as it is when it is an SPDX
    /// expression (parenthesised when compound and joined), else a `LicenseRef-` made of its letters,
    /// digits, `.` and `-` (`+` as `-plus`, anything else as `-`). `None` when there is no name.
    pub fn expression(&mut self, names: &[String]) -> Option<String> {
        let parts: Vec<String> = names.iter().map(|n| self.one(n)).collect();
        match parts.len() {
            0 => None,
            1 => parts.into_iter().next(),
            _ => Some(
                parts
                    .iter()
                    .map(|p| {
                        if p.contains(' ') {
                            format!("({p})")
                        } else {
                            p.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
        }
    }

    fn one(&mut self, name: &str) -> String {
        if is_spdx_expression(name) {
            return name.to_owned();
        }
        let mut id: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        id = id.trim_matches('-').to_owned();
        if id.is_empty() {
            id = "unnamed".into();
        }
        let base = format!("LicenseRef-{id}");
        let mut candidate = base.clone();
        let mut n = 2;
        loop {
            match self.refs.get(&candidate) {
                None => {
                    self.refs.insert(candidate.clone(), name.to_owned());
                    return candidate;
                }
                Some(existing) if existing == name => return candidate,
                Some(_) => {
                    candidate = format!("{base}-{n}");
                    n += 1;
                }
            }
        }
    }

    /// The identifiers given out and the names they stand for, sorted by identifier.
    pub fn refs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.refs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_and_refs() {
        let mut refs = LicenseRefs::default();
        assert_eq!(refs.expression(&["MIT".into()]).unwrap(), "MIT");
        assert_eq!(
            refs.expression(&["GPL-2+".into(), "MIT OR Apache-2.0".into()])
                .unwrap(),
            "LicenseRef-GPL-2 AND (MIT OR Apache-2.0)"
        );
        assert_eq!(
            refs.expression(&["GPL 2+".into()]).unwrap(),
            "LicenseRef-GPL-2-2"
        );
        assert_eq!(refs.expression(&[]), None);
        let all: Vec<_> = refs.refs().collect();
        assert_eq!(
            all,
            [
                ("LicenseRef-GPL-2", "GPL-2+"),
                ("LicenseRef-GPL-2-2", "GPL 2+")
            ]
        );
        assert!(is_spdx_id("GPL-2.0-only"));
        assert!(!is_spdx_id("GPLv3+"));
        assert!(!is_spdx_id("GFDL-1.3+"));
        assert!(is_spdx_expression(
            "GPL-2.0-or-later WITH Classpath-exception-2.0"
        ));
    }
}
