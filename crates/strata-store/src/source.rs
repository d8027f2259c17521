//! The `containers-storage:[ROOT+RUNROOT]IMAGE` image source: an image of a store, read as any other source.
//!
//! Manifests and the config are the image's big-data items, verified against their digests. Layers are kept
//! uncompressed (as their `diff/` directories), so a layer blob can only be served by its **diff ID**: the
//! tar rebuilt from the layer's tar-split and files, byte for byte, verified as it streams
//! ([`LayerBlobs::ByDiffId`]); readers that want files rather than tar read them from each layer's `diff`
//! directory with the layer's index ([`ImageSource::kept_layer`]).

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;
use strata_layer::ChannelReader;

use strata_image::{
    Blob, ImageSource, KeptLayer, LayerBlobs, MAX_SIGNATURE_SIZE, MAX_SIGNATURES, RawManifest,
};
use strata_oci::{Digest, ImageReference, MAX_MANIFEST_SIZE, VerifyingReader};
use strata_source::{SourceOptions, Transport, Transports};

use crate::error::{Error, Result};
use crate::model::{ImageRecord, LayerRecord};
use crate::paths::{containers_storage_default, default_runroot};
use crate::store::Store;
use crate::tarsplit;

/// The transport prefix.
pub const TRANSPORT: &str = "containers-storage";

/// An image of a store, as an [`ImageSource`].
#[derive(Debug)]
pub struct StoreSource {
    name: String,
    store: Store,
    image: ImageRecord,
    /// The image's layers, bottom first.
    layers: Vec<LayerRecord>,
    reference: Option<ImageReference>,
    digest: Option<Digest>,
}

/// Parses `containers-storage:[[DRIVER@]ROOT+RUNROOT[:OPTIONS]]IMAGE`: the store's graph and run roots, if
/// given, and the image (a name, `name@digest`, an ID or an ID prefix).
pub fn parse_reference(name: &str) -> Result<(Option<PathBuf>, Option<PathBuf>, String)> {
    let invalid = |reason: &str| Error::Invalid {
        what: name.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = name
        .strip_prefix(TRANSPORT)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(|| invalid("not a containers-storage: reference"))?;
    let (root, runroot, image) = match rest.strip_prefix('[') {
        Some(spec) => {
            let (spec, image) = spec
                .split_once(']')
                .ok_or_else(|| invalid("a '[' without its ']'"))?;
            let spec = match spec.split_once('@') {
                Some((driver, s)) if !driver.contains('/') => {
                    if driver != "overlay" {
                        return Err(invalid("only the overlay driver is supported"));
                    }
                    s
                }
                _ => spec,
            };
            let (root, runroot) = match spec.split_once('+') {
                Some((r, rr)) => {
                    let rr = rr.split_once(':').map_or(rr, |(rr, _options)| rr);
                    (r, (!rr.is_empty()).then(|| PathBuf::from(rr)))
                }
                None => (spec, None),
            };
            if !root.starts_with('/') {
                return Err(invalid("the store's root must be an absolute path"));
            }
            (Some(PathBuf::from(root)), runroot, image)
        }
        None => (None, None, rest),
    };
    if image.is_empty() {
        return Err(invalid("no image named"));
    }
    Ok((root, runroot, image.to_owned()))
}

/// Opens the image `name` (`containers-storage:…`), in the store the reference names or else in the store
/// at `default_root` and `default_runroot`.
pub fn open_source(name: &str, default_root: &Path, default_runroot: &Path) -> Result<StoreSource> {
    let (root, runroot, image) = parse_reference(name)?;
    let root = root.unwrap_or_else(|| default_root.to_path_buf());
    let runroot = runroot.unwrap_or_else(|| default_runroot.to_path_buf());
    let store = Store::open_existing(&root, &runroot)?;
    StoreSource::new(name, store, &image)
}

/// The `containers-storage:` transport: images of the store the name gives in `[ROOT+RUNROOT]`, or else of
/// the store [`SourceOptions::storage_root`] and [`SourceOptions::storage_runroot`] name, or else of
/// containers/storage's own default store ([`containers_storage_default`]: storage.conf), where skopeo and
/// podman look.
pub fn transport() -> Transport {
    Transport {
        name: TRANSPORT,
        form: "containers-storage:[ROOT+RUNROOT]IMAGE",
        open: open_transport,
    }
}

/// The store error inside a source error from the `containers-storage:` transport, if it is one.
pub fn transport_error(e: &strata_image::Error) -> Option<&Error> {
    match e {
        strata_image::Error::Transport(inner) => inner.downcast_ref::<Error>(),
        _ => None,
    }
}

/// Every transport strata reads: strata-source's files and registries, and this store's
/// `containers-storage:`.
pub fn transports() -> Transports {
    Transports::builtin().with(transport())
}

/// The store a `containers-storage:` name without `[ROOT+RUNROOT]` means, as (graph root, run root): `root`
/// and `runroot` where given (a missing run root is [`default_runroot`]'s for that root), else
/// containers/storage's own default store ([`containers_storage_default`]).
pub fn transport_store(root: Option<&Path>, runroot: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    match root {
        Some(root) => {
            let runroot = match runroot {
                Some(r) => r.to_path_buf(),
                None => default_runroot(Some(root))?,
            };
            Ok((root.to_path_buf(), runroot))
        }
        None => {
            let (root, default) = containers_storage_default()?;
            Ok((root, runroot.map_or(default, Path::to_path_buf)))
        }
    }
}

fn open_transport(
    name: &str,
    _rest: &str,
    options: &SourceOptions,
) -> strata_image::Result<Box<dyn ImageSource>> {
    let transport_err = |e: Error| strata_image::Error::Transport(Box::new(e));
    let (root, runroot) = transport_store(
        options.storage_root.as_deref(),
        options.storage_runroot.as_deref(),
    )
    .map_err(transport_err)?;
    let source = open_source(name, &root, &runroot).map_err(|e| match e {
        Error::Source(s) => s,
        other => strata_image::Error::Transport(Box::new(other)),
    })?;
    Ok(Box::new(source))
}

impl StoreSource {
    /// The image `image` (name, `name@digest`, ID or ID prefix) of `store`; `name` is the full reference,
    /// for messages.
    pub fn new(name: &str, store: Store, image: &str) -> Result<StoreSource> {
        let (lookup, digest) = match image.rsplit_once('@') {
            Some((n, d)) if d.contains(':') => (n.to_owned(), Some(Digest::parse(d)?)),
            _ => (image.to_owned(), None),
        };
        let tx = store.read()?;
        let record = if lookup.is_empty() {
            let Some(d) = &digest else {
                return Err(Error::Invalid {
                    what: image.to_owned(),
                    reason: "no image named".into(),
                });
            };
            let key = format!("manifest-{d}");
            let found = tx
                .images
                .iter()
                .find(|i| i.digest == d.to_string() || i.big_data_names.contains(&key));
            found.cloned().ok_or_else(|| Error::ImageUnknown {
                name: image.to_owned(),
                root: store.root().to_path_buf(),
            })?
        } else {
            tx.images[tx.find_image(&lookup)?].clone()
        };
        let mut layers: Vec<LayerRecord> =
            tx.chain(&record.top_layer).into_iter().cloned().collect();
        layers.reverse();
        drop(tx);
        let reference = ImageReference::parse(&lookup)
            .ok()
            .filter(|r| record.names.contains(&r.to_string()))
            .or_else(|| {
                record
                    .names
                    .first()
                    .and_then(|n| ImageReference::parse(n).ok())
            });
        Ok(StoreSource {
            name: name.to_owned(),
            store,
            image: record,
            layers,
            reference,
            digest,
        })
    }

    /// The image's record.
    pub fn image(&self) -> &ImageRecord {
        &self.image
    }

    /// The store it reads from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn source_err(&self, e: Error) -> strata_image::Error {
        match e {
            Error::Source(s) => s,
            Error::Io { path, source } => strata_image::Error::Io { path, source },
            other => strata_image::Error::Invalid {
                source_name: self.name.clone(),
                reason: other.to_string(),
            },
        }
    }

    fn big_data(&self, key: &str) -> strata_image::Result<Option<Vec<u8>>> {
        if !self.image.big_data_names.iter().any(|k| k == key) {
            return Ok(None);
        }
        let path = self.store.layout().image_big_data(&self.image.id, key);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(strata_image::Error::Io { path, source }),
        }
    }

    fn not_found(&self, what: String) -> strata_image::Error {
        strata_image::Error::NotFound {
            what,
            source_name: self.name.clone(),
        }
    }

    fn raw_manifest(
        &self,
        key: &str,
        expected: Option<&Digest>,
    ) -> strata_image::Result<RawManifest> {
        let bytes = self
            .big_data(key)?
            .ok_or_else(|| self.not_found(format!("manifest ({key})")))?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(strata_image::Error::Invalid {
                source_name: self.name.clone(),
                reason: format!("manifest {key} is larger than {MAX_MANIFEST_SIZE} bytes"),
            });
        }
        let digest = match expected {
            Some(d) => {
                d.verify(&bytes).map_err(|error| strata_image::Error::Oci {
                    source_name: self.name.clone(),
                    error,
                })?;
                d.clone()
            }
            None => Digest::sha256(&bytes),
        };
        Ok(RawManifest {
            bytes,
            digest,
            media_type: None,
        })
    }
}

impl ImageSource for StoreSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// containers/image's items: big-data `signatures` for the image, `signature-<hex>` for an instance,
    /// cut by the sizes listed in the image's `metadata` (`signature-sizes`, `signatures-sizes`).
    fn signatures(&self, instance: Option<&Digest>) -> strata_image::Result<Vec<Vec<u8>>> {
        let invalid = |reason: String| strata_image::Error::Invalid {
            source_name: self.name.clone(),
            reason,
        };
        let metadata: serde_json::Value =
            serde_json::from_str(&self.image.metadata).unwrap_or_default();
        let (key, sizes) = match instance {
            None => ("signatures".to_owned(), metadata.get("signature-sizes")),
            Some(d) => (
                format!("signature-{}", d.hex()),
                metadata
                    .get("signatures-sizes")
                    .and_then(|m| m.get(d.to_string())),
            ),
        };
        let sizes: Vec<u64> = match sizes {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(list) => serde_json::from_value(list.clone())
                .map_err(|e| invalid(format!("the image's signature sizes ({key}): {e}")))?,
        };
        if sizes.len() > MAX_SIGNATURES {
            return Err(invalid(format!(
                "{} signatures in {key}, more than {MAX_SIGNATURES}",
                sizes.len()
            )));
        }
        if sizes.is_empty() {
            return Ok(Vec::new());
        }
        let blob = self
            .big_data(&key)?
            .ok_or_else(|| invalid(format!("signature sizes are listed but {key} is missing")))?;
        let mut rest = blob.as_slice();
        let mut found = Vec::with_capacity(sizes.len());
        for size in sizes {
            if size > MAX_SIGNATURE_SIZE {
                return Err(invalid(format!(
                    "a signature of {size} bytes in {key}, over {MAX_SIGNATURE_SIZE}"
                )));
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            let (one, after) = rest.split_at_checked(size).ok_or_else(|| {
                invalid(format!("{key} is shorter than its listed signature sizes"))
            })?;
            found.push(one.to_vec());
            rest = after;
        }
        if !rest.is_empty() {
            return Err(invalid(format!(
                "{key} holds {} bytes past its listed signatures",
                rest.len()
            )));
        }
        Ok(found)
    }

    fn docker_reference(&self) -> Option<&ImageReference> {
        self.reference.as_ref()
    }

    fn layer_blobs(&self) -> LayerBlobs {
        LayerBlobs::ByDiffId
    }

    /// Each layer of the image is kept: its `diff` directory, and its index (built and recorded first for
    /// a layer another tool stored, see [`Store::layer_index`]).
    fn kept_layer(&self, diff_id: &Digest) -> strata_image::Result<Option<KeptLayer>> {
        let wanted = diff_id.to_string();
        let Some(layer) = self.layers.iter().find(|l| l.diff_digest == wanted) else {
            return Ok(None);
        };
        let index = self
            .store
            .layer_index(&layer.id)
            .map_err(|e| self.source_err(e))?;
        Ok(Some(KeptLayer {
            index,
            dir: self.store.layout().diff(&layer.id),
        }))
    }

    fn top_manifest(&self) -> strata_image::Result<RawManifest> {
        match &self.digest {
            Some(d) => self.raw_manifest(&format!("manifest-{d}"), Some(d)),
            None => self.raw_manifest("manifest", None),
        }
    }

    fn manifest(
        &self,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> strata_image::Result<RawManifest> {
        let mut m = self.raw_manifest(&format!("manifest-{digest}"), Some(digest))?;
        m.media_type = media_type.map(str::to_owned);
        Ok(m)
    }

    fn open_blob(&self, digest: &Digest) -> strata_image::Result<Blob> {
        if let Some(bytes) = self.big_data(&digest.to_string())? {
            let size = bytes.len() as u64;
            return Ok(Blob {
                size,
                reader: Box::new(VerifyingReader::new(
                    io::Cursor::new(bytes),
                    digest.clone(),
                    Some(size),
                )),
            });
        }
        let wanted = digest.to_string();
        let Some(layer) = self.layers.iter().find(|l| l.diff_digest == wanted) else {
            if self
                .layers
                .iter()
                .any(|l| l.compressed_diff_digest == wanted)
            {
                return Err(strata_image::Error::Invalid {
                    source_name: self.name.clone(),
                    reason: format!(
                        "blob {digest} is a compressed layer; the store keeps layers uncompressed, so read it by \
                         its diff ID"
                    ),
                });
            }
            return Err(self.not_found(format!("blob {digest}")));
        };
        let size = u64::try_from(layer.diff_size).ok().filter(|&s| s > 0);
        let reader = assemble_stream(self.store.clone(), layer.id.clone())
            .map_err(|e| self.source_err(e))?;
        Ok(Blob {
            size: size.unwrap_or(0),
            reader: Box::new(VerifyingReader::new(reader, digest.clone(), size)),
        })
    }

    fn read_blob_at(
        &self,
        digest: &Digest,
        offset: u64,
        buf: &mut [u8],
    ) -> strata_image::Result<usize> {
        let Some(bytes) = self.big_data(&digest.to_string())? else {
            return Err(strata_image::Error::Invalid {
                source_name: self.name.clone(),
                reason: format!(
                    "ranged reads of layer {digest} are not supported by containers-storage:"
                ),
            });
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn repo_tags(&self) -> strata_image::Result<Vec<String>> {
        // As skopeo: the containers-storage transport does not list a repository's tags.
        Ok(Vec::new())
    }
}

/// Rebuilds layer `id`'s tar on a thread (holding the store's shared locks, so the layer cannot be removed
/// meanwhile), streaming it through a bounded channel.
pub(crate) fn assemble_stream(store: Store, id: String) -> Result<ChannelReader> {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
    thread::Builder::new()
        .name("strata-tar-split-assemble".into())
        .spawn(move || {
            let mut out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let result = (|| -> Result<()> {
                let read = store.read()?;
                let l = store.layout();
                let ts_path = l.tar_split(&id);
                let ts = File::open(&ts_path).map_err(|e| {
                    Error::damaged(
                        &id,
                        format!(
                            "{}: {e} (no tar-split: the layer's tar cannot be rebuilt)",
                            ts_path.display()
                        ),
                    )
                })?;
                let diff = l.diff(&id);
                let root = File::open(&diff).map_err(|e| Error::io(&diff, e))?;
                tarsplit::assemble(
                    flate2::read::MultiGzDecoder::new(BufReader::new(ts)),
                    &root,
                    &id,
                    &mut out,
                )?;
                out.flush().map_err(|e| Error::io(&diff, e))?;
                drop(read);
                Ok(())
            })();
            if let Err(e) = result {
                let _ = tx.send(Err(io::Error::other(e.to_string())));
            }
        })
        .map_err(|e| Error::io("<tar-split thread>", e))?;
    Ok(ChannelReader::new(rx))
}

const CHUNK: usize = 256 << 10;

struct ChannelWriter {
    tx: SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.tx
                .send(Ok(chunk))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader gone"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let (r, rr, i) =
            parse_reference("containers-storage:[/var/lib/x+/run/x]localhost/a:b").unwrap();
        assert_eq!(r.as_deref(), Some(Path::new("/var/lib/x")));
        assert_eq!(rr.as_deref(), Some(Path::new("/run/x")));
        assert_eq!(i, "localhost/a:b");
        let (r, rr, i) =
            parse_reference("containers-storage:[overlay@/g+/r:overlay.mountopt=nodev]busybox")
                .unwrap();
        assert_eq!(r.as_deref(), Some(Path::new("/g")));
        assert_eq!(rr.as_deref(), Some(Path::new("/r")));
        assert_eq!(i, "busybox");
        let (r, rr, i) = parse_reference("containers-storage:abc").unwrap();
        assert!(r.is_none() && rr.is_none());
        assert_eq!(i, "abc");
        assert!(parse_reference("containers-storage:[vfs@/g+/r]x").is_err());
        assert!(parse_reference("containers-storage:[relative+/r]x").is_err());
        assert!(parse_reference("containers-storage:").is_err());
    }
}
