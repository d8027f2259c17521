//! From a source's top-level manifest to one image: platform choice through indexes, then the config.

use oci_spec::image::ImageManifest;
use strata_oci::{Digest, ImageConfig, MAX_MANIFEST_SIZE, Manifest, Platform};

use crate::{Error, ImageSource, RawManifest, Result, read_blob};

/// How many indexes deep strata follows (an index whose chosen entry is an index, and so on).
pub const MAX_INDEX_DEPTH: usize = 4;

/// One image of a source, chosen for a platform, with its manifest and config read and verified.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The top-level manifest the name designates (an index for a multi-platform image).
    pub top: RawManifest,
    /// The chosen image manifest's bytes (the same as `top` for a single-platform image).
    pub instance: RawManifest,
    /// The chosen image manifest, decoded.
    pub manifest: ImageManifest,
    /// The chosen manifest's media type (OCI or Docker v2s2).
    pub media_type: String,
    /// The config blob, as stored.
    pub config_bytes: Vec<u8>,
    /// The config, decoded.
    pub config: ImageConfig,
}

/// Resolves the image `source` designates for `platform`: follows indexes (at most [`MAX_INDEX_DEPTH`]
/// levels), then reads and verifies the chosen manifest's config.
pub fn resolve(source: &dyn ImageSource, platform: &Platform) -> Result<ResolvedImage> {
    let name = source.name();
    let top = source.top_manifest()?;
    let mut current = top.clone();
    let mut depth = 0;
    let (media_type, manifest) = loop {
        let what = format!("manifest {}", current.digest);
        match Manifest::parse(&current.bytes, current.media_type.as_deref(), &what)
            .map_err(|e| Error::oci(name, e))?
        {
            Manifest::Image {
                media_type,
                manifest,
            } => break (media_type, *manifest),
            Manifest::Index { index, .. } => {
                depth += 1;
                if depth > MAX_INDEX_DEPTH {
                    return Err(Error::invalid(
                        name,
                        format!("image indexes nested more than {MAX_INDEX_DEPTH} deep"),
                    ));
                }
                let chosen = platform
                    .choose(index.manifests())
                    .map_err(|e| Error::oci(name, e))?;
                let digest = Digest::try_from(chosen.digest()).map_err(|e| Error::oci(name, e))?;
                if chosen.size() > MAX_MANIFEST_SIZE {
                    return Err(Error::oci(
                        name,
                        strata_oci::Error::TooLarge {
                            what: format!("manifest {digest}"),
                            size: chosen.size(),
                            limit: MAX_MANIFEST_SIZE,
                        },
                    ));
                }
                let media_type = chosen.media_type().to_string();
                current = source.manifest(&digest, Some(&media_type))?;
                check_size(name, &current, chosen.size())?;
            }
        }
    };
    with_config(source, top, current, media_type, manifest)
}

/// Reads and verifies the config of image manifest `manifest` (`current`'s bytes, reached from `top`).
fn with_config(
    source: &dyn ImageSource,
    top: RawManifest,
    current: RawManifest,
    media_type: String,
    manifest: ImageManifest,
) -> Result<ResolvedImage> {
    let name = source.name();
    let config_desc = manifest.config();
    let config_digest = Digest::try_from(config_desc.digest()).map_err(|e| Error::oci(name, e))?;
    let config_bytes = read_blob(source, &config_digest, MAX_MANIFEST_SIZE)?;
    if config_bytes.len() as u64 != config_desc.size() {
        return Err(Error::oci(
            name,
            strata_oci::Error::SizeMismatch {
                digest: config_digest.to_string(),
                expected: config_desc.size(),
                actual: config_bytes.len() as u64,
            },
        ));
    }
    let config = ImageConfig::parse(&config_bytes, &format!("config {config_digest}"))
        .map_err(|e| Error::oci(name, e))?;
    Ok(ResolvedImage {
        top,
        instance: current,
        manifest,
        media_type,
        config_bytes,
        config,
    })
}

/// One image of a source with the platform its index entry names (else its config's), as
/// [`resolve_all`] lists them.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// The platform of the index entry that led to the image; for a single-platform image (or an entry
    /// without a platform), the config's os, architecture and variant.
    pub platform: Platform,
    /// The image, resolved as [`resolve()`] does for that one entry.
    pub image: ResolvedImage,
}

/// Every image `source` designates: each image manifest its top-level index lists (indexes nested in it
/// followed, at most [`MAX_INDEX_DEPTH`] levels), in index order; a single-platform image is a list of
/// one. Each is read and verified as [`resolve()`] reads the one it chooses.
///
/// # Errors
/// As [`resolve()`], for any entry: a manifest or config that cannot be read, does not verify, or an
/// index nested too deep.
pub fn resolve_all(source: &dyn ImageSource) -> Result<Vec<PlatformImage>> {
    let top = source.top_manifest()?;
    let mut out = Vec::new();
    collect(source, &top, top.clone(), None, 0, &mut out)?;
    Ok(out)
}

/// Adds to `out` the images `current` (reached from `top` through an entry for `platform`) designates.
fn collect(
    source: &dyn ImageSource,
    top: &RawManifest,
    current: RawManifest,
    platform: Option<Platform>,
    depth: usize,
    out: &mut Vec<PlatformImage>,
) -> Result<()> {
    let name = source.name();
    let what = format!("manifest {}", current.digest);
    match Manifest::parse(&current.bytes, current.media_type.as_deref(), &what)
        .map_err(|e| Error::oci(name, e))?
    {
        Manifest::Image {
            media_type,
            manifest,
        } => {
            let image = with_config(source, top.clone(), current, media_type, *manifest)?;
            let platform = platform.unwrap_or_else(|| {
                let c = &image.config.oci;
                Platform::new(
                    &c.os().to_string(),
                    &c.architecture().to_string(),
                    c.variant().as_deref(),
                )
            });
            out.push(PlatformImage { platform, image });
            Ok(())
        }
        Manifest::Index { index, .. } => {
            if depth >= MAX_INDEX_DEPTH {
                return Err(Error::invalid(
                    name,
                    format!("image indexes nested more than {MAX_INDEX_DEPTH} deep"),
                ));
            }
            for entry in index.manifests() {
                let digest = Digest::try_from(entry.digest()).map_err(|e| Error::oci(name, e))?;
                if entry.size() > MAX_MANIFEST_SIZE {
                    return Err(Error::oci(
                        name,
                        strata_oci::Error::TooLarge {
                            what: format!("manifest {digest}"),
                            size: entry.size(),
                            limit: MAX_MANIFEST_SIZE,
                        },
                    ));
                }
                let media_type = entry.media_type().to_string();
                let child = source.manifest(&digest, Some(&media_type))?;
                check_size(name, &child, entry.size())?;
                let entry_platform = Platform::of_descriptor(entry).or_else(|| platform.clone());
                collect(source, top, child, entry_platform, depth + 1, out)?;
            }
            Ok(())
        }
    }
}

/// Fails unless `manifest` (of source `source_name`) has the size its descriptor declares.
pub fn check_size(source_name: &str, manifest: &RawManifest, declared: u64) -> Result<()> {
    let actual = manifest.bytes.len() as u64;
    if actual == declared {
        return Ok(());
    }
    Err(Error::oci(
        source_name,
        strata_oci::Error::SizeMismatch {
            digest: manifest.digest.to_string(),
            expected: declared,
            actual,
        },
    ))
}
