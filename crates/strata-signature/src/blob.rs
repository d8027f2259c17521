//! The stored form of one signature, as containers/image keeps it in `dir:` `signature-N` files and in
//! containers-storage's signature big-data items.
//!
//! A simple-signing signature is stored as its raw OpenPGP message (so a `dir:` file is byte-identical to a
//! lookaside file); every other format as a zero byte, the format name, a newline and the format's data.
//! For `sigstore-json` the data is the JSON object `{"mimeType":…,"payload":<std base64>,"annotations":{…}}`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::payload::go_json_string;

/// The largest signature blob accepted: containers/image's `iolimits.MaxSignatureBodySize` (4 MiB).
pub const MAX_SIGNATURE_SIZE: usize = 4 * 1024 * 1024;

/// The format name of simple-signing blobs in the zero-byte form.
const SIMPLE_SIGNING_FORMAT: &[u8] = b"simple-signing";
/// The format name of sigstore blobs.
const SIGSTORE_FORMAT: &[u8] = b"sigstore-json";

/// One image signature, as stored or transported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// A simple-signing signature: an OpenPGP message signing an atomic payload.
    SimpleSigning(Vec<u8>),
    /// A sigstore (cosign) signature: the `.sig` layer's media type, its blob and its annotations.
    Sigstore {
        /// The layer's media type; only `application/vnd.dev.cosign.simplesigning.v1+json` is verified.
        mime_type: String,
        /// The payload the signature annotation signs.
        payload: Vec<u8>,
        /// The layer's annotations (`dev.cosignproject.cosign/signature`, certificates, Rekor bundle, …).
        annotations: BTreeMap<String, String>,
    },
}

/// The JSON form of a sigstore blob (Go's `encoding/json` rules: missing or null fields are empty).
#[derive(Deserialize)]
struct SigstoreJson {
    #[serde(rename = "mimeType", default)]
    mime_type: Option<String>,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

fn too_large(size: usize) -> Error {
    Error::TooLarge {
        what: "signature blob",
        size: size as u64,
        limit: MAX_SIGNATURE_SIZE as u64,
    }
}

impl Signature {
    /// Reads a stored blob: raw OpenPGP (told by its first byte, as containers/image does) or the
    /// zero-byte form. Blobs over [`MAX_SIGNATURE_SIZE`] are refused.
    pub fn from_blob(blob: &[u8]) -> Result<Signature> {
        if blob.len() > MAX_SIGNATURE_SIZE {
            return Err(too_large(blob.len()));
        }
        let Some(&first) = blob.first() else {
            return Err(Error::InvalidBlob("empty signature blob".into()));
        };
        match first {
            // Old-format and new-format packet tags of compressed data (8), one-pass signature (4) and
            // signature (2) packets: what a simple-signing message starts with.
            0xA0..=0xA3 | 0xC8 | 0x90..=0x92 | 0x3d | 0xC4 | 0x88..=0x8B | 0xC2 => {
                Ok(Signature::SimpleSigning(blob.to_vec()))
            }
            0x00 => {
                let rest = blob.get(1..).unwrap_or_default();
                let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                    return Err(Error::InvalidBlob(
                        "invalid signature format, missing newline".into(),
                    ));
                };
                let (format, data) = rest.split_at(newline);
                let data = data.get(1..).unwrap_or_default();
                if let Some(&b) = format.iter().find(|&&b| !(32..0x7f).contains(&b)) {
                    return Err(Error::InvalidBlob(format!(
                        "invalid signature format, non-ASCII byte {b:#x}"
                    )));
                }
                match format {
                    SIMPLE_SIGNING_FORMAT => Ok(Signature::SimpleSigning(data.to_vec())),
                    SIGSTORE_FORMAT => Self::sigstore_from_json(data),
                    other => Err(Error::InvalidBlob(format!(
                        "unrecognized signature format {:?}",
                        String::from_utf8_lossy(other)
                    ))),
                }
            }
            other => Err(Error::InvalidBlob(format!(
                "unrecognized signature format, starting with binary {other:#x}"
            ))),
        }
    }

    fn sigstore_from_json(data: &[u8]) -> Result<Signature> {
        let json: SigstoreJson = serde_json::from_slice(data)
            .map_err(|e| Error::InvalidBlob(format!("sigstore-json: {e}")))?;
        let payload = match json.payload {
            Some(b64) => STANDARD.decode(b64.as_bytes()).map_err(|e| {
                Error::InvalidBlob(format!("sigstore-json: payload is not base64: {e}"))
            })?,
            None => Vec::new(),
        };
        Ok(Signature::Sigstore {
            mime_type: json.mime_type.unwrap_or_default(),
            payload,
            annotations: json.annotations.unwrap_or_default(),
        })
    }

    /// The stored form: raw OpenPGP for simple signing; `\0sigstore-json\n` and the JSON object (keys
    /// `mimeType`, `payload`, `annotations` in that order, annotation keys sorted, Go's escaping) for
    /// sigstore: byte-identical to what containers/image writes.
    pub fn to_blob(&self) -> Vec<u8> {
        match self {
            Signature::SimpleSigning(bytes) => bytes.clone(),
            Signature::Sigstore {
                mime_type,
                payload,
                annotations,
            } => {
                let mut json = String::with_capacity(64 + payload.len() * 4 / 3);
                json.push_str("{\"mimeType\":");
                go_json_string(&mut json, mime_type);
                json.push_str(",\"payload\":\"");
                json.push_str(&STANDARD.encode(payload));
                json.push_str("\",\"annotations\":{");
                for (i, (k, v)) in annotations.iter().enumerate() {
                    if i > 0 {
                        json.push(',');
                    }
                    go_json_string(&mut json, k);
                    json.push(':');
                    go_json_string(&mut json, v);
                }
                json.push_str("}}");
                let mut out = Vec::with_capacity(2 + SIGSTORE_FORMAT.len() + json.len());
                out.push(0);
                out.extend_from_slice(SIGSTORE_FORMAT);
                out.push(b'\n');
                out.extend_from_slice(json.as_bytes());
                out
            }
        }
    }
}
