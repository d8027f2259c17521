use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media;

/// The largest manifest, index or config strata reads: 4 MiB, as containers/image.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// A decoded manifest: a single image, or an index of manifests (OCI index or Docker manifest list).
///
/// Docker v2s2 manifests and manifest lists share their JSON shape with their OCI counterparts and are decoded
/// into the same `oci-spec` types; [`Manifest::media_type`] keeps telling which one it was.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// An image manifest.
    Image {
        /// The effective media type (OCI or Docker v2s2).
        media_type: String,
        /// The decoded manifest.
        manifest: Box<ImageManifest>,
    },
    /// An index or manifest list.
    Index {
        /// The effective media type (OCI index or Docker manifest list).
        media_type: String,
        /// The decoded index.
        index: Box<ImageIndex>,
    },
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<serde_json::Value>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
    #[serde(rename = "fsLayers")]
    fs_layers: Option<serde::de::IgnoredAny>,
}

impl Manifest {
    /// Decodes manifest bytes. `declared` is the media type the transport reported (a descriptor's or a
    /// `Content-Type`), if any; `what` names the manifest in errors (e.g. its digest).
    ///
    /// The media type is taken from the body's `mediaType`, else from `declared`, else guessed from the shape
    /// (`manifests` → index, `config` → image) as containers/image does. Every descriptor digest is validated.
    pub fn parse(bytes: &[u8], declared: Option<&str>, what: &str) -> Result<Manifest> {
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(Error::TooLarge {
                what: what.to_owned(),
                size: bytes.len() as u64,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let json_err = |source| Error::Json {
            what: what.to_owned(),
            source,
        };
        let probe: Probe = serde_json::from_slice(bytes).map_err(json_err)?;
        let declared =
            declared.filter(|d| !d.is_empty() && *d != "application/json" && *d != "text/plain");
        let media_type = match (probe.media_type.as_deref(), declared) {
            (Some(body), Some(decl))
                if body != decl && !(media::is_index(decl) && media::is_index(body)) =>
            {
                return Err(Error::Invalid {
                    what: what.to_owned(),
                    reason: format!("body says mediaType {body:?} but it was served as {decl:?}"),
                });
            }
            (Some(body), _) => body.to_owned(),
            (None, Some(decl)) => decl.to_owned(),
            (None, None) if probe.manifests.is_some() => media::OCI_INDEX.to_owned(),
            (None, None) if probe.config.is_some() => media::OCI_MANIFEST.to_owned(),
            (None, None) if probe.fs_layers.is_some() => media::DOCKER_MANIFEST_V1.to_owned(),
            (None, None) => {
                return Err(Error::Invalid {
                    what: what.to_owned(),
                    reason: "neither a manifest nor an index (no mediaType, manifests or config)"
                        .into(),
                });
            }
        };
        if probe.schema_version.as_ref().and_then(|v| v.as_u64()) != Some(2) {
            if media_type == media::DOCKER_MANIFEST_V1
                || media_type == media::DOCKER_MANIFEST_V1_SIGNED
            {
                return Err(Error::UnsupportedManifest { media_type });
            }
            return Err(Error::Invalid {
                what: what.to_owned(),
                reason: "schemaVersion is not 2".into(),
            });
        }
        if media::is_index(&media_type) {
            let index: ImageIndex = serde_json::from_slice(bytes).map_err(json_err)?;
            for d in index.manifests() {
                check_descriptor(d, what)?;
            }
            Ok(Manifest::Index {
                media_type,
                index: Box::new(index),
            })
        } else if media::is_image_manifest(&media_type) {
            let manifest: ImageManifest = serde_json::from_slice(bytes).map_err(json_err)?;
            check_descriptor(manifest.config(), what)?;
            for d in manifest.layers() {
                check_descriptor(d, what)?;
            }
            Ok(Manifest::Image {
                media_type,
                manifest: Box::new(manifest),
            })
        } else {
            Err(Error::UnsupportedManifest { media_type })
        }
    }

    /// The effective media type.
    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image { media_type, .. } | Manifest::Index { media_type, .. } => media_type,
        }
    }
}

/// The validated digest of a descriptor.
pub(crate) fn descriptor_digest(d: &Descriptor, what: &str) -> Result<Digest> {
    Digest::try_from(d.digest()).map_err(|e| Error::Invalid {
        what: what.to_owned(),
        reason: format!("descriptor {e}"),
    })
}

fn check_descriptor(d: &Descriptor, what: &str) -> Result<()> {
    descriptor_digest(d, what).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image_json(media_type: &str, layer_digest: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"{CFG}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"{layer_digest}"}}]}}"#
        )
    }

    #[test]
    fn docker_v2s2_decodes() {
        let m = Manifest::parse(
            image_json(media::DOCKER_MANIFEST, CFG).as_bytes(),
            None,
            "m",
        )
        .unwrap();
        assert_eq!(m.media_type(), media::DOCKER_MANIFEST);
        let Manifest::Image { manifest, .. } = m else {
            panic!("not an image")
        };
        assert_eq!(manifest.layers().len(), 1);
    }

    #[test]
    fn guesses_type_without_media_type() {
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","size":1,"digest":"{CFG}"}}]}}"#,
            media::OCI_MANIFEST
        );
        let m = Manifest::parse(idx.as_bytes(), None, "i").unwrap();
        assert_eq!(m.media_type(), media::OCI_INDEX);
    }

    #[test]
    fn rejects_bad_manifests() {
        let bad_digest = image_json(media::DOCKER_MANIFEST, "sha256:../../etc/passwd");
        let odd_algorithm = image_json(
            media::DOCKER_MANIFEST,
            "blake3:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        let big = vec![b' '; (MAX_MANIFEST_SIZE + 1) as usize];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{".to_vec(), "malformed"),
            (b"[]".to_vec(), "malformed"),
            (bad_digest.into_bytes(), "malformed"),
            (odd_algorithm.into_bytes(), "unsupported algorithm"),
            (big, "limit"),
            (
                br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec(),
                "unsupported",
            ),
            (br#"{"schemaVersion":2}"#.to_vec(), "neither"),
            (
                image_json("application/x-nope", CFG).into_bytes(),
                "unsupported",
            ),
        ];
        for (bytes, want) in cases {
            let err = Manifest::parse(&bytes, None, "m").unwrap_err().to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
        let err = Manifest::parse(
            image_json(media::DOCKER_MANIFEST, CFG).as_bytes(),
            Some(media::OCI_MANIFEST),
            "m",
        )
        .unwrap_err();
        assert!(err.to_string().contains("served as"), "{err}");
    }
}
