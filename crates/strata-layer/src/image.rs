//! From a resolved image to the specs of its layers.

use strata_oci::{Digest, media};
use strata_source::ResolvedImage;

use crate::error::{Error, Result};
use crate::pipeline::LayerSpec;

/// The layers of `image`, bottom first, each with its descriptor and the diff ID its config records.
/// Fails if the manifest and the config disagree on the number of layers, or a layer is non-distributable
/// (its blob is not in the image).
pub fn layer_specs(image: &ResolvedImage) -> Result<Vec<LayerSpec>> {
    let layers = image.manifest.layers();
    let diff_ids = image.config.oci.rootfs().diff_ids();
    let manifest = image.instance.digest.to_string();
    if layers.len() != diff_ids.len() {
        return Err(Error::Format {
            layer: manifest,
            reason: format!(
                "the manifest lists {} layers but the config has {} diff IDs",
                layers.len(),
                diff_ids.len()
            ),
        });
    }
    layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            let digest = Digest::try_from(d.digest()).map_err(|error| Error::Verify {
                layer: d.digest().to_string(),
                error,
            })?;
            let media_type = d.media_type().to_string();
            if media::is_non_distributable(&media_type) {
                return Err(Error::Format {
                    layer: digest.to_string(),
                    reason: "non-distributable layers are not supported".into(),
                });
            }
            let diff_id = Digest::parse(diff_id).map_err(|error| Error::Verify {
                layer: digest.to_string(),
                error,
            })?;
            Ok(LayerSpec {
                digest,
                size: Some(d.size()),
                media_type,
                diff_id: Some(diff_id),
            })
        })
        .collect()
}
