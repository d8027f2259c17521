use std::fmt;

use oci_spec::image::Descriptor;

use crate::error::{Error, Result};

/// An os/architecture/variant triple, compared after the usual normalisation
/// (`x86_64` is `amd64`, `aarch64` is `arm64`, arm64 without variant means `v8`, arm means `v7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Architecture in Go's naming, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8`; `None` for the architecture's default.
    pub variant: Option<String>,
}

impl Platform {
    /// A platform from its parts; an empty variant counts as none.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }

    /// The platform strata runs on, in Go's names.
    pub fn host() -> Self {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64", None),
            "loongarch64" => ("loong64", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        Platform::new(os, arch, variant)
    }

    /// The normalised (architecture, variant) pair used for comparisons.
    fn normalised(&self) -> (String, String) {
        let variant = self.variant.as_deref().unwrap_or("");
        let (arch, variant) = match self.architecture.as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { variant }),
            "i386" | "386" => ("386", variant),
            "aarch64" | "arm64" => (
                "arm64",
                match variant {
                    "" | "8" | "v8" | "v8.0" => "v8",
                    v => v,
                },
            ),
            "armhf" => ("arm", "v7"),
            "armel" => ("arm", "v6"),
            "arm" => (
                "arm",
                match variant {
                    "" | "7" | "v7" => "v7",
                    "5" => "v5",
                    "6" => "v6",
                    "8" => "v8",
                    v => v,
                },
            ),
            a => (a, variant),
        };
        (arch.to_owned(), variant.to_owned())
    }

    /// Whether `other` denotes the same platform after normalisation.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os && self.normalised() == other.normalised()
    }

    /// The platform an index entry declares, if any.
    pub fn of_descriptor(d: &Descriptor) -> Option<Platform> {
        d.platform().as_ref().map(|p| {
            Platform::new(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        })
    }

    /// The first index entry for this platform. The error names the platforms the index offers.
    pub fn choose<'a>(&self, manifests: &'a [Descriptor]) -> Result<&'a Descriptor> {
        if let Some(d) = manifests
            .iter()
            .find(|d| Platform::of_descriptor(d).is_some_and(|p| self.matches(&p)))
        {
            return Ok(d);
        }
        let available: Vec<String> = manifests
            .iter()
            .map(|d| {
                Platform::of_descriptor(d)
                    .map_or_else(|| "(no platform)".to_owned(), |p| p.to_string())
            })
            .collect();
        Err(Error::NoMatchingPlatform {
            wanted: self.to_string(),
            available: if available.is_empty() {
                "none".to_owned()
            } else {
                available.join(", ")
            },
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_variants() {
        let arm64 = Platform::new("linux", "arm64", None);
        assert!(arm64.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(arm64.matches(&Platform::new("linux", "aarch64", None)));
        assert!(!arm64.matches(&Platform::new("linux", "arm64", Some("v9"))));
        assert!(
            Platform::new("linux", "x86_64", None).matches(&Platform::new("linux", "amd64", None))
        );
        assert!(Platform::new("linux", "arm", None).matches(&Platform::new(
            "linux",
            "arm",
            Some("v7")
        )));
        assert!(
            !Platform::new("linux", "arm", Some("v6"))
                .matches(&Platform::new("linux", "arm", None))
        );
        assert!(!arm64.matches(&Platform::new("windows", "arm64", None)));
    }

    #[test]
    fn choose_names_what_exists() {
        let index: oci_spec::image::ImageIndex = serde_json::from_str(
            r#"{"schemaVersion":2,"manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
               "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "platform":{"os":"linux","architecture":"amd64"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
               "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b856",
               "platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#,
        )
        .unwrap();
        let d = Platform::new("linux", "arm64", None)
            .choose(index.manifests())
            .unwrap();
        assert!(d.digest().to_string().ends_with('6'));
        let err = Platform::new("linux", "s390x", None)
            .choose(index.manifests())
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux/amd64, linux/arm64/v8"), "{err}");
    }
}
