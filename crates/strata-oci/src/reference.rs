use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The longest repository path accepted (distribution's `NameTotalLengthMax`).
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A docker-style image reference, normalised the way podman and docker normalise it.
///
/// `debian:12` becomes `docker.io/library/debian:12`, `index.docker.io` becomes `docker.io`, and a reference with
/// neither tag nor digest gets the tag `latest` ([`ImageReference::parse`]; [`ImageReference::parse_normalized_named`]
/// keeps such a reference name-only). A digest, when present, is strictly validated ([`Digest`]).
/// Parsing follows the distribution reference grammar (checked by hand: no regex to compile at start-up).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    /// Parses and normalises `text`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut reference = Self::parse_inner(text)?;
        if reference.is_name_only() {
            reference.tag = Some("latest".to_owned());
        }
        Ok(reference)
    }

    /// Parses and normalises `text` as containers/image's `reference.ParseNormalizedNamed` does: like
    /// [`ImageReference::parse`], except that a reference with neither tag nor digest stays name-only (no
    /// `latest` is added; see [`ImageReference::is_name_only`]) and a bare 64-hex-digit string is refused as an
    /// image ID. Signature identities need the difference: a signature for `repo` is not one for `repo:latest`.
    pub fn parse_normalized_named(text: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidReference {
            reference: text.chars().take(300).collect(),
            reason,
        };
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid(
                "cannot specify 64-byte hexadecimal strings as a repository name".into(),
            ));
        }
        Self::parse_inner(text)
    }

    /// Whether the reference has neither tag nor digest (only [`ImageReference::parse_normalized_named`]
    /// makes such references).
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// Whether `text` is a registry host name with an optional port, as the reference grammar defines it
    /// (`domain-component ( "." domain-component )* [ ":" port ]`).
    pub fn is_valid_domain(text: &str) -> bool {
        grammar::is_domain(text)
    }

    /// Whether `text` is one path component of a repository name (`[a-z0-9]+ ( separator [a-z0-9]+ )*`).
    pub fn is_valid_path_component(text: &str) -> bool {
        grammar::is_path_component(text)
    }

    fn parse_inner(text: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidReference {
            reference: text.chars().take(300).collect(),
            reason,
        };
        let parsed = grammar::parse(text).map_err(|reason| invalid(reason.into()))?;
        let digest = parsed
            .digest
            .map(Digest::parse)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        // Split the domain off as docker does: a first component with '.' or ':', or `localhost`.
        let (mut registry, mut repository) = match parsed.name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_owned(), rest.to_owned())
            }
            _ => ("docker.io".to_owned(), parsed.name.to_owned()),
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase".into()));
        }
        if registry == "index.docker.io" {
            registry = "docker.io".to_owned();
        }
        if registry == "docker.io" && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        let tag = parsed.tag.map(str::to_owned);
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host (and port), e.g. `docker.io` or `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry, e.g. `library/debian`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `registry/repository`, what skopeo prints as `Name`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ImageReference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ImageReference::parse(s)
    }
}

/// The distribution reference grammar, checked by hand (the regex form costs tens of milliseconds to compile,
/// more than everything else `strata inspect` does):
///
/// ```text
/// reference := name [ ":" tag ] [ "@" digest ]
/// name      := [ domain "/" ] path-component ( "/" path-component )*
/// domain    := domain-component ( "." domain-component )* [ ":" port ]
/// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
/// path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
/// tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
/// digest    := algorithm ":" hex{32,}   (algorithm: [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*)
/// ```
mod grammar {
    /// A reference split into its parts, each checked against the grammar.
    pub(super) struct Parts<'a> {
        pub name: &'a str,
        pub tag: Option<&'a str>,
        pub digest: Option<&'a str>,
    }

    pub(super) fn parse(text: &str) -> Result<Parts<'_>, &'static str> {
        if text.is_empty() {
            return Err("repository name must have at least one component");
        }
        let (name_tag, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (text, None),
        };
        let (name, tag) = match name_tag.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (name_tag, None),
        };
        if let Some(t) = tag
            && !is_tag(t)
        {
            return Err("invalid reference format");
        }
        if let Some(d) = digest {
            check_digest(d)?;
        }
        let whole_path = name.split('/').all(is_path_component);
        let domain_then_path = name.split_once('/').is_some_and(|(first, rest)| {
            is_domain(first) && rest.split('/').all(is_path_component)
        });
        if !(whole_path || domain_then_path) {
            if name.chars().any(|c| c.is_ascii_uppercase())
                && name.to_ascii_lowercase().split('/').all(is_path_component)
            {
                return Err("repository name must be lowercase");
            }
            return Err("invalid reference format");
        }
        Ok(Parts { name, tag, digest })
    }

    fn is_alnum_lower(c: u8) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit()
    }

    pub(super) fn is_path_component(s: &str) -> bool {
        let b = s.as_bytes();
        if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if is_alnum_lower(b[i]) {
                i += 1;
                continue;
            }
            // A separator: ".", "_", "__" or a run of "-", followed by an alphanumeric.
            let start = i;
            match b[i] {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if i < b.len() && b[i] == b'_' {
                        i += 1;
                    }
                }
                b'-' => {
                    while i < b.len() && b[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return false,
            }
            if i == start || i >= b.len() || !is_alnum_lower(b[i]) {
                return false;
            }
        }
        true
    }

    pub(super) fn is_domain(s: &str) -> bool {
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if let Some(p) = port
            && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
        {
            return false;
        }
        host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
    }

    fn is_tag(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    }

    fn check_digest(d: &str) -> Result<(), &'static str> {
        let Some((algorithm, hex)) = d.split_once(':') else {
            return Err("invalid reference format");
        };
        let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
            let b = part.as_bytes();
            !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
        });
        if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err("invalid reference format");
        }
        match (algorithm, hex.len()) {
            ("sha256", 64) | ("sha384", 96) | ("sha512", 128) => Ok(()),
            ("sha256" | "sha384" | "sha512", _) => Err("invalid checksum digest length"),
            _ => Err("unsupported digest algorithm"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        ImageReference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_podman() {
        assert_eq!(norm("debian:12"), "docker.io/library/debian:12");
        assert_eq!(norm("debian"), "docker.io/library/debian:latest");
        assert_eq!(norm("docker.io/debian"), "docker.io/library/debian:latest");
        assert_eq!(
            norm("index.docker.io/debian:12"),
            "docker.io/library/debian:12"
        );
        assert_eq!(norm("foo/bar:v1"), "docker.io/foo/bar:v1");
        assert_eq!(norm("quay.io/a/b/c:1.0"), "quay.io/a/b/c:1.0");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            norm(&format!("host:5000/ns/repo@{d}")),
            format!("host:5000/ns/repo@{d}")
        );
        let r = ImageReference::parse("host:5000/ns/repo:t").unwrap();
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.repository(), "ns/repo");
        assert_eq!(r.name(), "host:5000/ns/repo");
        assert_eq!(r.tag(), Some("t"));
    }

    #[test]
    fn grammar_edges() {
        for good in [
            "a",
            "a/b/c",
            "a.b_c__d---e/f",
            "My-Host.example:5000/x",
            "localhost:5000/x:T_1.2-3",
            "host/x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "x:t@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "host:5000",
        ] {
            assert!(ImageReference::parse(good).is_ok(), "{good} rejected");
        }
        for bad in [
            "a_",
            "-a",
            "a..b",
            "a___b",
            "a/",
            "/a",
            "host:/a",
            "host:50a0/a",
            "-host.example/a",
            "a:-tag",
            "a:t@x",
            &format!("a:{}", "t".repeat(129)),
            &format!("h.example/{}", "a".repeat(256)),
            "a@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855@x",
            "a:tägé",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad} accepted");
        }
        let r = ImageReference::parse("host:5000").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/host:5000");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = ImageReference::parse(&format!("h.io/a@{d}")).unwrap();
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn name_only_references() {
        let r = ImageReference::parse_normalized_named("busybox").unwrap();
        assert!(r.is_name_only());
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert_eq!(r.tag(), None);
        let r = ImageReference::parse_normalized_named("busybox:latest").unwrap();
        assert!(!r.is_name_only());
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert!(!ImageReference::parse("busybox").unwrap().is_name_only());
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(ImageReference::parse_normalized_named(hex).is_err());
        assert!(ImageReference::parse_normalized_named(&format!("h.io/{hex}")).is_ok());
        assert!(ImageReference::is_valid_domain("example.com:5000"));
        assert!(!ImageReference::is_valid_domain("repo_with_underscores"));
        assert!(ImageReference::is_valid_path_component("a.b_c__d-e"));
        assert!(!ImageReference::is_valid_path_component("UPPER"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "repo:bad tag",
            "repo@sha256:abc",
            "repo@md5:d41d8cd98f00b204e9800998ecf8427e",
            "repo@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            ":tag",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
