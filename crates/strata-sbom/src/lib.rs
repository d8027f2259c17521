//! SBOMs of container images: the documents `strata sbom` writes from a [`strata_scan::inventory::Inventory`].
//!
//! It owns the SBOM model ([`Sbom`]: the image as the root element, its packages with package URLs,
//! licences and the layer that introduced each) and its writers: SPDX 2.3 JSON ([`spdx_json`]), CycloneDX
//! 1.6 JSON ([`cyclonedx_json`]) and strata's own JSON ([`strata_json`], docs/FORMAT.md). Output is
//! deterministic: the creation time is given ([`Sbom::created`]) and the SPDX namespace and CycloneDX serial
//! number are derived from the image's manifest digest and the base, never random. It never prints.
//!
//! **Must not depend on:** image sources, the store, the layer engine (everything comes through
//! `strata-scan`'s inventory), the CLI.

pub mod license;
pub mod purl;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use strata_scan::inventory::{Ecosystem, Inventory, InventoryPackage, OwnedFile};

use crate::license::{LicenseRefs, is_spdx_expression, is_spdx_id};

/// The tool name and version written as the SBOM's creator.
pub const TOOL: &str = concat!("strata-", env!("CARGO_PKG_VERSION"));

/// The document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SPDX 2.3, JSON.
    SpdxJson,
    /// CycloneDX 1.6, JSON.
    CycloneDxJson,
    /// strata's own JSON (docs/FORMAT.md, "strata sbom").
    StrataJson,
}

impl Format {
    /// The format named `name` (`spdx-json`, `cyclonedx-json`, `strata-json`).
    pub fn parse(name: &str) -> Result<Format, Error> {
        match name {
            "spdx-json" => Ok(Format::SpdxJson),
            "cyclonedx-json" => Ok(Format::CycloneDxJson),
            "strata-json" => Ok(Format::StrataJson),
            other => Err(Error::UnknownFormat {
                name: other.to_owned(),
            }),
        }
    }
}

/// Errors of the SBOM writers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A format name strata does not write.
    #[error("unknown SBOM format {name:?}: expected spdx-json, cyclonedx-json or strata-json")]
    UnknownFormat {
        /// The name given.
        name: String,
    },
    /// A creation time that is not `YYYY-MM-DDThh:mm:ssZ`.
    #[error("creation time {value:?} is not of the form YYYY-MM-DDThh:mm:ssZ (UTC, whole seconds)")]
    BadCreated {
        /// The value given.
        value: String,
    },
}

/// The image an SBOM describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The reference it was opened by (`oci-archive:img.tar`, `docker://…`).
    pub reference: String,
    /// Its image manifest's digest.
    pub manifest_digest: String,
    /// Its config's digest (the image ID).
    pub config_digest: String,
}

/// An SBOM: an image, when it was made, and what is in it.
#[derive(Debug, Clone)]
pub struct Sbom {
    /// The image.
    pub image: ImageInfo,
    /// The creation time, `YYYY-MM-DDThh:mm:ssZ` (see [`check_created`]).
    pub created: String,
    /// The packages, with their layers.
    pub inventory: Inventory,
}

/// Checks a creation time: `YYYY-MM-DDThh:mm:ssZ`, as SPDX 2.3 requires it.
pub fn check_created(value: &str) -> Result<(), Error> {
    let b = value.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if shape {
        Ok(())
    } else {
        Err(Error::BadCreated {
            value: value.to_owned(),
        })
    }
}

impl Sbom {
    /// Writes the document in `format` to `out`, as pretty-printed JSON with a final newline, without
    /// holding the text in memory (the caller buffers `out`). Fails only if `out` does.
    pub fn write_to(&self, format: Format, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let document = match format {
            Format::SpdxJson => spdx_json(self),
            Format::CycloneDxJson => cyclonedx_json(self),
            Format::StrataJson => strata_json(self),
        };
        serde_json::to_writer_pretty(&mut *out, &document).map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    }

    /// A digest of what identifies this document: the manifest digest and the base.
    fn identity(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.image.manifest_digest.as_bytes());
        h.update(b"\0base=");
        h.update(self.inventory.base_layers.to_string().as_bytes());
        h.finalize().into()
    }

    fn purl(&self, p: &InventoryPackage) -> String {
        purl::purl(p, self.inventory.os.as_ref())
    }

    fn layer_digests(&self, layer: usize) -> (String, String) {
        self.inventory
            .layers
            .get(layer)
            .map(|l| (l.digest.clone(), l.diff_id.clone()))
            .unwrap_or_default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The package type strata-json and the CycloneDX properties name (`deb`, `rpm`, `apk`, `python`, `npm`,
/// `go`).
pub fn ecosystem_name(e: Ecosystem) -> &'static str {
    match e {
        Ecosystem::Deb => "deb",
        Ecosystem::Rpm => "rpm",
        Ecosystem::Apk => "apk",
        Ecosystem::Python => "python",
        Ecosystem::Npm => "npm",
        Ecosystem::Go => "go",
    }
}

/// The elements of a long JSON array, made one at a time as they are written.
type Elements<'a> = Box<dyn Fn() -> Box<dyn Iterator<Item = Value> + 'a> + 'a>;

/// One member of a [`Document`]: a value, or an array made element by element as it is written.
pub enum Member<'a> {
    /// A value held whole.
    Value(Value),
    /// An array whose elements are made as it is written, one held at a time.
    Array(Elements<'a>),
}

/// A JSON document's top-level object, its members in order: what the writers return. Serialized, the
/// long arrays (packages' files, relationships, components) are made element by element as they are
/// written, never held whole; [`Document::to_value`] makes the whole tree.
pub struct Document<'a>(Vec<(&'static str, Member<'a>)>);

impl<'a> Document<'a> {
    /// The whole document as one JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn value(mut self, key: &'static str, value: Value) -> Self {
        self.0.push((key, Member::Value(value)));
        self
    }

    fn array<I>(mut self, key: &'static str, elements: impl Fn() -> I + 'a) -> Self
    where
        I: Iterator<Item = Value> + 'a,
    {
        self.0.push((
            key,
            Member::Array(Box::new(move || {
                Box::new(elements()) as Box<dyn Iterator<Item = Value>>
            })),
        ));
        self
    }
}

impl serde::Serialize for Document<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        /// An array member, serialized as it is made.
        struct Lazy<'b, 'a>(&'b Elements<'a>);
        impl serde::Serialize for Lazy<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq((self.0)())
            }
        }
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, member) in &self.0 {
            match member {
                Member::Value(value) => map.serialize_entry(key, value)?,
                Member::Array(elements) => map.serialize_entry(key, &Lazy(elements))?,
            }
        }
        map.end()
    }
}

/// The packages and removed packages in document order, each with whether it was removed.
fn all_packages(sbom: &Sbom) -> impl Iterator<Item = (&InventoryPackage, bool)> {
    sbom.inventory
        .packages
        .iter()
        .map(|p| (p, false))
        .chain(sbom.inventory.removed.iter().map(|p| (p, true)))
}

/// The SPDX 2.3 JSON document: the image as a `CONTAINER` package the document `DESCRIBES`, which
/// `CONTAINS` every package; each package with its purl (an external reference), declared licence, source
/// package (`sourceInfo`) and, in an annotation, the layer that introduced it (`strata:layer=INDEX
/// digest=… diff_id=…`). Packages the layers above a base removed are listed without `CONTAINS`, their
/// annotation `strata:removed-by-layer=INDEX …`.
pub fn spdx_json(sbom: &Sbom) -> Document<'_> {
    let identity = sbom.identity();
    let namespace = format!(
        "https://strata.invalid/spdx/{}/{}",
        sbom.image.manifest_digest.replace(':', "-"),
        hex(identity.get(..8).unwrap_or_default())
    );
    let annotation = |comment: String| {
        json!({
            "annotationDate": sbom.created,
            "annotationType": "OTHER",
            "annotator": format!("Tool: {TOOL}"),
            "comment": comment,
        })
    };
    let image_id = "SPDXRef-Image";
    let manifest_hex = sbom
        .image
        .manifest_digest
        .strip_prefix("sha256:")
        .unwrap_or("");
    let mut image = json!({
        "SPDXID": image_id,
        "name": sbom.image.reference,
        "versionInfo": sbom.image.manifest_digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "annotations": [annotation(format!(
            "strata:image manifest={} config={} layers={} base_layers={}",
            sbom.image.manifest_digest,
            sbom.image.config_digest,
            sbom.inventory.layers.len(),
            sbom.inventory.base_layers
        ))],
    });
    if manifest_hex.len() == 64
        && let Some(obj) = image.as_object_mut()
    {
        obj.insert(
            "checksums".into(),
            json!([{"algorithm": "SHA256", "checksumValue": manifest_hex}]),
        );
    }
    let mut refs = LicenseRefs::default();
    let mut packages = vec![image];
    for (i, (p, removed)) in all_packages(sbom).enumerate() {
        let id = spdx_package_id(i, p);
        let (digest, diff_id) = sbom.layer_digests(p.layer);
        let comment = if removed {
            format!(
                "strata:removed-by-layer={} digest={digest} diff_id={diff_id}",
                p.layer
            )
        } else {
            format!("strata:layer={} digest={digest} diff_id={diff_id}", p.layer)
        };
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": refs.expression(&p.licenses).unwrap_or_else(|| "NOASSERTION".into()),
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": sbom.purl(p),
            }],
            "annotations": [annotation(comment)],
        });
        if let Some(obj) = pkg.as_object_mut() {
            let mut info = format!(
                "{} package found in {}",
                ecosystem_name(p.ecosystem),
                p.path
            );
            if !p.source.is_empty() {
                info.push_str(&format!("; source package {}", p.source));
            }
            if let Some(previous) = &p.previous_version {
                info.push_str(&format!("; the base had version {previous}"));
            }
            obj.insert("sourceInfo".into(), json!(info));
        }
        if !removed
            && !p.files.is_empty()
            && let Some(obj) = pkg.as_object_mut()
        {
            // Files listed: SPDX's verification code, the SHA-1 of their SHA-1s sorted and joined.
            let mut sha1s: Vec<&str> = p.files.iter().map(|f| f.sha1.as_str()).collect();
            sha1s.sort_unstable();
            obj.insert("filesAnalyzed".into(), json!(true));
            obj.insert(
                "packageVerificationCode".into(),
                json!({"packageVerificationCodeValue": sha1_hex(sha1s.concat().as_bytes())}),
            );
        }
        packages.push(pkg);
    }
    let extracted: Vec<Value> = refs
        .refs()
        .map(|(id, name)| json!({"licenseId": id, "name": name, "extractedText": name}))
        .collect();
    let doc = Document(Vec::new())
        .value("spdxVersion", json!("SPDX-2.3"))
        .value("dataLicense", json!("CC0-1.0"))
        .value("SPDXID", json!("SPDXRef-DOCUMENT"))
        .value("name", json!(sbom.image.reference))
        .value("documentNamespace", json!(namespace))
        .value(
            "creationInfo",
            json!({
                "created": sbom.created,
                "creators": [format!("Tool: {TOOL}")],
            }),
        )
        .value("packages", Value::Array(packages))
        .array("files", move || {
            listed_files(sbom).map(|(i, j, f)| {
                let mut checksums = vec![
                    json!({"algorithm": "SHA1", "checksumValue": f.sha1}),
                    json!({"algorithm": "SHA256", "checksumValue": f.sha256}),
                ];
                if let Some(recorded) = &f.recorded
                    && let Some(algorithm) = spdx_algorithm(recorded.algorithm)
                    && !matches!(algorithm, "SHA1" | "SHA256")
                {
                    checksums.push(json!({"algorithm": algorithm, "checksumValue": recorded.hex}));
                }
                json!({
                    "SPDXID": format!("SPDXRef-File-{i}-{j}"),
                    "fileName": format!(".{}", f.path),
                    "checksums": checksums,
                    "licenseConcluded": "NOASSERTION",
                    "copyrightText": "NOASSERTION",
                })
            })
        })
        .array("relationships", move || {
            let contains = |from: &str, to: String| {
                json!({
                    "spdxElementId": from,
                    "relationshipType": "CONTAINS",
                    "relatedSpdxElement": to,
                })
            };
            let describes = json!({
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": image_id,
            });
            std::iter::once(describes).chain(
                all_packages(sbom)
                    .enumerate()
                    .filter(|(_, (_, removed))| !removed)
                    .flat_map(move |(i, (p, _))| {
                        let id = spdx_package_id(i, p);
                        std::iter::once(contains(image_id, id.clone())).chain(
                            (0..p.files.len())
                                .map(move |j| contains(&id, format!("SPDXRef-File-{i}-{j}"))),
                        )
                    }),
            )
        });
    if extracted.is_empty() {
        doc
    } else {
        doc.value("hasExtractedLicensingInfos", Value::Array(extracted))
    }
}

/// The SPDX identifier of package `i` (in document order).
fn spdx_package_id(i: usize, p: &InventoryPackage) -> String {
    format!("SPDXRef-Package-{}-{i}", ecosystem_name(p.ecosystem))
}

/// The files of the packages not removed, in document order: (package, file's position in it, file).
fn listed_files(sbom: &Sbom) -> impl Iterator<Item = (usize, usize, &OwnedFile)> {
    all_packages(sbom)
        .enumerate()
        .filter(|(_, (_, removed))| !removed)
        .flat_map(|(i, (p, _))| p.files.iter().enumerate().map(move |(j, f)| (i, j, f)))
}

/// A UUID (the version-5 and RFC 4122 variant bits set) from the first 16 bytes of `digest`.
fn uuid_from(digest: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or(""),
        h.get(8..12).unwrap_or(""),
        h.get(12..16).unwrap_or(""),
        h.get(16..20).unwrap_or(""),
        h.get(20..32).unwrap_or("")
    )
}

/// CycloneDX licences: one `expression` for a single compound SPDX expression, else a `license` per name,
/// by `id` when the SPDX list has it, by `name` otherwise.
fn cyclonedx_licenses(names: &[String]) -> Value {
    if let [one] = names
        && !is_spdx_id(one)
        && is_spdx_expression(one)
    {
        return json!([{"expression": one}]);
    }
    Value::Array(
        names
            .iter()
            .map(|n| {
                if is_spdx_id(n) {
                    json!({"license": {"id": n}})
                } else {
                    json!({"license": {"name": n}})
                }
            })
            .collect(),
    )
}

/// The CycloneDX 1.6 JSON document: the image as `metadata.component` (type `container`, version its
/// manifest digest), every package a `library` component with its purl, licences and properties
/// `strata:package:type`, `strata:location`, `strata:layer:index`, `strata:layer:digest`,
/// `strata:layer:diffID`, and where known `strata:package:arch`, `strata:package:source`,
/// `strata:package:previousVersion`; packages the layers above a base removed have `strata:removed` =
/// `true` (their layer the one that removed them). The image `dependsOn` every package not removed.
pub fn cyclonedx_json(sbom: &Sbom) -> Document<'_> {
    let image_ref = format!("image:{}", sbom.image.manifest_digest);
    let contained: Vec<Value> = all_packages(sbom)
        .enumerate()
        .filter(|(_, (_, removed))| !removed)
        .map(|(i, (p, _))| Value::String(cyclonedx_ref(sbom, i, p)))
        .collect();
    let mut image_properties = vec![
        json!({"name": "strata:image:config", "value": sbom.image.config_digest}),
        json!({"name": "strata:image:baseLayers", "value": sbom.inventory.base_layers.to_string()}),
    ];
    for l in &sbom.inventory.layers {
        image_properties.push(json!({
            "name": format!("strata:layer:{}", l.index),
            "value": format!("{} {}", l.digest, l.diff_id),
        }));
    }
    let mut component = json!({
        "bom-ref": image_ref,
        "type": "container",
        "name": sbom.image.reference,
        "version": sbom.image.manifest_digest,
        "properties": image_properties,
    });
    if let Some(hex) = sbom.image.manifest_digest.strip_prefix("sha256:")
        && hex.len() == 64
        && let Some(obj) = component.as_object_mut()
    {
        obj.insert("hashes".into(), json!([{"alg": "SHA-256", "content": hex}]));
    }
    Document(Vec::new())
        .value("bomFormat", json!("CycloneDX"))
        .value("specVersion", json!("1.6"))
        .value(
            "serialNumber",
            json!(format!("urn:uuid:{}", uuid_from(&sbom.identity()))),
        )
        .value("version", json!(1))
        .value(
            "metadata",
            json!({
                "timestamp": sbom.created,
                "tools": {"components": [{
                    "type": "application",
                    "name": "strata",
                    "version": env!("CARGO_PKG_VERSION"),
                }]},
                "component": component,
            }),
        )
        .array("components", move || {
            all_packages(sbom)
                .enumerate()
                .map(move |(i, (p, removed))| cyclonedx_component(sbom, i, p, removed))
        })
        .value(
            "dependencies",
            json!([{"ref": image_ref, "dependsOn": contained}]),
        )
}

/// The `bom-ref` of package `i` (in document order) of a CycloneDX document.
fn cyclonedx_ref(sbom: &Sbom, i: usize, p: &InventoryPackage) -> String {
    format!("pkg-{i}-{}", sbom.purl(p))
}

/// Package `i` (in document order) as a CycloneDX `library` component, its files nested.
fn cyclonedx_component(sbom: &Sbom, i: usize, p: &InventoryPackage, removed: bool) -> Value {
    let (digest, diff_id) = sbom.layer_digests(p.layer);
    let mut properties = vec![
        json!({"name": "strata:package:type", "value": ecosystem_name(p.ecosystem)}),
        json!({"name": "strata:location", "value": p.path}),
        json!({"name": "strata:layer:index", "value": p.layer.to_string()}),
        json!({"name": "strata:layer:digest", "value": digest}),
        json!({"name": "strata:layer:diffID", "value": diff_id}),
    ];
    for (name, value) in [
        ("strata:package:arch", p.architecture.as_str()),
        ("strata:package:source", p.source.as_str()),
        (
            "strata:package:previousVersion",
            p.previous_version.as_deref().unwrap_or(""),
        ),
    ] {
        if !value.is_empty() {
            properties.push(json!({"name": name, "value": value}));
        }
    }
    if removed {
        properties.push(json!({"name": "strata:removed", "value": "true"}));
    }
    let mut c = json!({
        "bom-ref": cyclonedx_ref(sbom, i, p),
        "type": "library",
        "name": p.name,
        "version": p.version,
        "purl": sbom.purl(p),
        "properties": properties,
    });
    if !p.licenses.is_empty()
        && let Some(obj) = c.as_object_mut()
    {
        obj.insert("licenses".into(), cyclonedx_licenses(&p.licenses));
    }
    if !p.files.is_empty()
        && let Some(obj) = c.as_object_mut()
    {
        // The files it owns, nested: what the component is made of in the image.
        let files: Vec<Value> = p
            .files
            .iter()
            .map(|f| {
                json!({
                    "type": "file",
                    "name": f.path,
                    "hashes": [
                        {"alg": "SHA-1", "content": f.sha1},
                        {"alg": "SHA-256", "content": f.sha256},
                    ],
                })
            })
            .collect();
        obj.insert("components".into(), Value::Array(files));
    }
    c
}

fn strata_package(sbom: &Sbom, p: &InventoryPackage) -> Value {
    let (digest, diff_id) = sbom.layer_digests(p.layer);
    let mut v = json!({
        "name": p.name,
        "version": p.version,
        "type": ecosystem_name(p.ecosystem),
        "purl": sbom.purl(p),
        "architecture": p.architecture,
        "source": p.source,
        "licenses": p.licenses,
        "path": p.path,
        "layer": {"index": p.layer, "digest": digest, "diff_id": diff_id},
    });
    if let Some(previous) = &p.previous_version
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert("previous_version".into(), json!(previous));
    }
    if !p.files.is_empty()
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert("files".into(), json!(p.files));
    }
    v
}

/// The SHA-1 of `bytes`, lowercase hex.
fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest as _;
    hex(&sha1::Sha1::digest(bytes))
}

/// SPDX's name of a digest algorithm a package database records.
fn spdx_algorithm(algorithm: strata_scan::packages::DigestAlgorithm) -> Option<&'static str> {
    use strata_scan::packages::DigestAlgorithm as A;
    Some(match algorithm {
        A::Md5 => "MD5",
        A::Sha1 => "SHA1",
        A::Sha224 => "SHA224",
        A::Sha256 => "SHA256",
        A::Sha384 => "SHA384",
        A::Sha512 => "SHA512",
    })
}

/// strata's own JSON (docs/FORMAT.md, "strata sbom"): the image, the distribution, the layers, and the
/// packages and removed packages, each with its type, purl, licences, path and layer.
pub fn strata_json(sbom: &Sbom) -> Document<'_> {
    Document(Vec::new())
        .value("format", json!("strata-sbom"))
        .value("version", json!(1))
        .value("created", json!(sbom.created))
        .value(
            "image",
            json!({
                "reference": sbom.image.reference,
                "manifest_digest": sbom.image.manifest_digest,
                "config_digest": sbom.image.config_digest,
            }),
        )
        .value("distribution", json!(sbom.inventory.os))
        .value("layers", json!(sbom.inventory.layers))
        .value("base_layers", json!(sbom.inventory.base_layers))
        .array("packages", move || {
            sbom.inventory
                .packages
                .iter()
                .map(move |p| strata_package(sbom, p))
        })
        .array("removed", move || {
            sbom.inventory
                .removed
                .iter()
                .map(move |p| strata_package(sbom, p))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_shape() {
        assert!(check_created("2024-01-02T03:04:05Z").is_ok());
        for bad in [
            "2024-01-02T03:04:05.1Z",
            "2024-01-02 03:04:05Z",
            "2024-01-02",
            "",
        ] {
            assert!(check_created(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_from(&[0xab; 32]);
        assert_eq!(u, "abababab-abab-5bab-abab-abababababab");
    }
}
