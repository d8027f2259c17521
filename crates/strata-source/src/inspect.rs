//! skopeo's `inspect` view of an image.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ResolvedImage;

/// One layer as `inspect` reports it in `LayersData`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct LayerData {
    /// The layer's media type.
    #[serde(rename = "MIMEType")]
    pub mime_type: String,
    /// The layer blob's digest.
    pub digest: String,
    /// The layer blob's size.
    pub size: u64,
    /// The descriptor's annotations, if any.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// What `strata inspect` prints: skopeo's `inspect` output, field for field and in skopeo's order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct InspectReport {
    /// The repository name, when the source has a docker reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The digest of the top-level manifest (the index's, for a multi-platform image).
    pub digest: String,
    /// The repository's tags, where the transport has them.
    pub repo_tags: Vec<String>,
    /// The image's creation time, RFC 3339.
    pub created: Option<String>,
    /// The Docker version that built the image, or empty.
    pub docker_version: String,
    /// The config's labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// The image's architecture.
    pub architecture: String,
    /// The architecture variant, when set.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// The image's operating system.
    pub os: String,
    /// The layer blob digests, bottom first.
    pub layers: Vec<String>,
    /// The layers' descriptors.
    pub layers_data: Vec<LayerData>,
    /// The config's environment.
    pub env: Option<Vec<String>>,
}

impl InspectReport {
    /// The report for `image`; `name` and `repo_tags` come from the source.
    pub fn new(image: &ResolvedImage, name: Option<String>, repo_tags: Vec<String>) -> Self {
        let cfg = &image.config.oci;
        let inner = cfg.config().as_ref();
        let layers_data: Vec<LayerData> = image
            .manifest
            .layers()
            .iter()
            .map(|l| LayerData {
                mime_type: l.media_type().to_string(),
                digest: l.digest().to_string(),
                size: l.size(),
                annotations: l
                    .annotations()
                    .as_ref()
                    .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            })
            .collect();
        InspectReport {
            name,
            digest: image.top.digest.to_string(),
            repo_tags,
            created: cfg.created().as_deref().map(go_time),
            docker_version: image.config.docker_version.clone().unwrap_or_default(),
            labels: inner
                .and_then(|c| c.labels().as_ref())
                .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            architecture: cfg.architecture().to_string(),
            variant: cfg.variant().clone().unwrap_or_default(),
            os: cfg.os().to_string(),
            layers: layers_data.iter().map(|l| l.digest.clone()).collect(),
            layers_data,
            env: inner.and_then(|c| c.env().clone()),
        }
    }
}

/// An RFC 3339 time as Go's `time.Time` prints it: fractional seconds without trailing zeros.
fn go_time(t: &str) -> String {
    let Some((head, frac_and_zone)) = t.split_once('.') else {
        return t.to_owned();
    };
    let zone_at = frac_and_zone
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(frac_and_zone.len());
    let (frac, zone) = frac_and_zone.split_at(zone_at);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{head}{zone}")
    } else {
        format!("{head}.{frac}{zone}")
    }
}

#[cfg(test)]
mod tests {
    use super::go_time;

    #[test]
    fn times_print_like_go() {
        assert_eq!(go_time("2023-11-14T22:13:20Z"), "2023-11-14T22:13:20Z");
        assert_eq!(go_time("2023-11-14T22:13:20.000Z"), "2023-11-14T22:13:20Z");
        assert_eq!(
            go_time("2023-11-14T22:13:20.1230Z"),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            go_time("2023-11-14T22:13:20.5+02:00"),
            "2023-11-14T22:13:20.5+02:00"
        );
    }
}
