use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// A docker-style image reference, normalised the way podman and docker normalise it.
///
/// `debian:12` becomes `docker.io/library/debian:12`, `index.docker.io` becomes `docker.io`, and a reference with
/// neither tag nor digest gets the tag `latest`. A digest, when present, is strictly validated ([`Digest`]).
/// Parsing follows the distribution reference grammar (via `oci-spec`).
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
        let invalid = |reason: String| Error::InvalidReference {
            reference: text.chars().take(300).collect(),
            reason,
        };
        let parsed = Reference::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let digest = parsed
            .digest()
            .map(Digest::parse)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let host = parsed.registry();
        let upper_host = !host.contains(['.', ':'])
            && host != "localhost"
            && host.chars().any(|c| c.is_ascii_uppercase());
        if upper_host || parsed.repository().chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase".into()));
        }
        let registry = match host {
            "index.docker.io" => "docker.io".to_owned(),
            r => r.to_owned(),
        };
        let mut repository = parsed.repository().to_owned();
        if registry == "docker.io" && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        Ok(ImageReference {
            registry,
            repository,
            tag: parsed.tag().map(str::to_owned),
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
