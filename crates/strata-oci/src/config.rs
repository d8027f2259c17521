use oci_spec::image::ImageConfiguration;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::manifest::MAX_MANIFEST_SIZE;

/// An image configuration: the OCI view of it plus the Docker-only fields skopeo reports.
///
/// Docker v2 configs are a superset of OCI configs with the same field names, so both decode into
/// `oci-spec`'s [`ImageConfiguration`]; fields OCI lacks are dropped there, as containers/image's conversion
/// drops them.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    /// The configuration as OCI defines it.
    pub oci: ImageConfiguration,
    /// `docker_version`, set by images Docker built.
    pub docker_version: Option<String>,
}

#[derive(Deserialize)]
struct DockerOnly {
    docker_version: Option<String>,
}

impl ImageConfig {
    /// Decodes config bytes; `what` names the config in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig> {
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
        let oci: ImageConfiguration = serde_json::from_slice(bytes).map_err(json_err)?;
        let docker: DockerOnly = serde_json::from_slice(bytes).map_err(json_err)?;
        Ok(ImageConfig {
            oci,
            docker_version: docker.docker_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_docker_config() {
        let cfg = ImageConfig::parse(
            br#"{"architecture":"amd64","os":"linux","docker_version":"20.10.7",
                 "config":{"Env":["A=1"],"Labels":{"k":"v"},"User":"1000"},
                 "container_config":{"Hostname":"x"},
                 "rootfs":{"type":"layers","diff_ids":[]}}"#,
            "c",
        )
        .unwrap();
        assert_eq!(cfg.docker_version.as_deref(), Some("20.10.7"));
        assert_eq!(cfg.oci.architecture().to_string(), "amd64");
        let c = cfg.oci.config().as_ref().unwrap();
        assert_eq!(c.user().as_deref(), Some("1000"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(ImageConfig::parse(b"{\"os\":", "c").is_err());
        assert!(ImageConfig::parse(b"42", "c").is_err());
    }
}
