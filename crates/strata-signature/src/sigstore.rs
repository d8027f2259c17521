//! Sigstore (cosign) key cryptography: public keys that verify, encrypted cosign private keys that sign.
//!
//! As containers/image (through sigstore's `LoadVerifier(key, SHA-256)`): ECDSA signatures are ASN.1 DER
//! over SHA-256 of the payload **for every curve** (P-256 and P-384 here), RSA is PKCS#1 v1.5 with SHA-256,
//! Ed25519 is pure Ed25519; a signature travels as standard base64.
//!
//! Crates: RustCrypto's `p256`/`p384` (ecdsa 0.16), `rsa` 0.9 and `ed25519-dalek` 2, the generation rPGP
//! 0.21 already builds, so nothing is compiled twice; `spki`/`pkcs8` for key structures; `scrypt` and
//! `crypto_secretbox` (XSalsa20-Poly1305) for cosign's encrypted private keys. `ring` would have needed
//! hand-written SPKI/PKCS#8 parsing and a second, C-built implementation of the same primitives.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use pkcs8::DecodePrivateKey;
use pkcs8::der::Decode;
use pkcs8::der::asn1::ObjectIdentifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::sha2::{Digest as _, Sha256};
use serde::Deserialize;
use spki::DecodePublicKey;

use crate::error::{Error, Result};

/// The most a PEM file may be.
const MAX_PEM_SIZE: usize = 1024 * 1024;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A sigstore public key, as a `sigstoreSigned` requirement's `keyPath`/`keyData` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// ECDSA on P-256 (cosign's default).
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// ECDSA on P-384 (verified over SHA-256, as containers/image does).
    EcdsaP384(p384::ecdsa::VerifyingKey),
    /// RSA, PKCS#1 v1.5 with SHA-256.
    Rsa(rsa::RsaPublicKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// One PEM block: its label and decoded bytes.
struct PemBlock {
    label: String,
    der: Vec<u8>,
}

/// Decodes the first PEM block of `text`, as leniently as Go's `pem.Decode`: text before the block is
/// skipped, header lines (`Key: value`) are skipped, line lengths are free.
fn first_pem_block(text: &[u8]) -> Result<PemBlock> {
    if text.len() > MAX_PEM_SIZE {
        return Err(Error::TooLarge {
            what: "PEM key file",
            size: text.len() as u64,
            limit: MAX_PEM_SIZE as u64,
        });
    }
    let text = std::str::from_utf8(text)
        .map_err(|_| Error::InvalidKey("PEM decoding failed: not text".into()))?;
    let no_pem = || Error::InvalidKey("PEM decoding failed: no `-----BEGIN …-----` block".into());
    let start = text.find("-----BEGIN ").ok_or_else(no_pem)?;
    let after = text.get(start + "-----BEGIN ".len()..).ok_or_else(no_pem)?;
    let label_end = after.find("-----").ok_or_else(no_pem)?;
    let label = after.get(..label_end).ok_or_else(no_pem)?.to_owned();
    let body_and_rest = after.get(label_end + 5..).ok_or_else(no_pem)?;
    let end_marker = format!("-----END {label}-----");
    let body_end = body_and_rest
        .find(&end_marker)
        .ok_or_else(|| Error::InvalidKey(format!("PEM decoding failed: no `{end_marker}`")))?;
    let body = body_and_rest.get(..body_end).ok_or_else(no_pem)?;
    let mut b64 = String::with_capacity(body.len());
    for line in body.lines() {
        if line.contains(':') {
            continue;
        }
        b64.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
    }
    let der = STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| Error::InvalidKey(format!("PEM block {label:?}: not base64: {e}")))?;
    Ok(PemBlock { label, der })
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl PublicKey {
    /// Reads a PEM public key: `PUBLIC KEY` (SubjectPublicKeyInfo: ECDSA P-256 or P-384, RSA, Ed25519) or
    /// `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey> {
        let block = first_pem_block(pem)?;
        match block.label.as_str() {
            "PUBLIC KEY" => PublicKey::from_spki_der(&block.der),
            "RSA PUBLIC KEY" => rsa::RsaPublicKey::from_pkcs1_der(&block.der)
                .map(PublicKey::Rsa)
                .map_err(|e| Error::InvalidKey(format!("RSA PUBLIC KEY: {e}"))),
            other => Err(Error::InvalidKey(format!(
                "unknown public key PEM type {other:?} (expected \"PUBLIC KEY\")"
            ))),
        }
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| Error::InvalidKey(format!("SubjectPublicKeyInfo: {e}")))?;
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::InvalidKey(format!("{what} public key: {e}"))
        };
        match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters_oid()
                    .map_err(|e| bad("ECDSA", &e))?;
                match curve {
                    OID_P256 => p256::ecdsa::VerifyingKey::from_public_key_der(der)
                        .map(PublicKey::EcdsaP256)
                        .map_err(|e| bad("ECDSA P-256", &e)),
                    OID_P384 => p384::ecdsa::VerifyingKey::from_public_key_der(der)
                        .map(PublicKey::EcdsaP384)
                        .map_err(|e| bad("ECDSA P-384", &e)),
                    other => Err(Error::InvalidKey(format!(
                        "unsupported ECDSA curve {other} (P-256 and P-384 are supported)"
                    ))),
                }
            }
            OID_RSA => rsa::RsaPublicKey::from_public_key_der(der)
                .map(PublicKey::Rsa)
                .map_err(|e| bad("RSA", &e)),
            OID_ED25519 => ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::Ed25519)
                .map_err(|e| bad("Ed25519", &e)),
            other => Err(Error::InvalidKey(format!(
                "unsupported public key algorithm {other}"
            ))),
        }
    }

    /// A short description for messages: the algorithm.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::EcdsaP256(_) => "ECDSA P-256",
            PublicKey::EcdsaP384(_) => "ECDSA P-384",
            PublicKey::Rsa(_) => "RSA",
            PublicKey::Ed25519(_) => "Ed25519",
        }
    }

    /// Verifies `signature_b64` (standard base64; ASN.1 DER for ECDSA) over `payload`.
    pub fn verify(&self, payload: &[u8], signature_b64: &str) -> Result<()> {
        let sig = STANDARD
            .decode(signature_b64.trim().as_bytes())
            .map_err(|e| self.bad(format!("signature is not base64: {e}")))?;
        self.verify_raw(payload, &sig)
    }

    /// Verifies raw signature bytes over `payload`.
    pub fn verify_raw(&self, payload: &[u8], sig: &[u8]) -> Result<()> {
        use p256::ecdsa::signature::Verifier as _;
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        match self {
            PublicKey::EcdsaP256(key) => {
                let sig = p256::ecdsa::Signature::from_der(sig)
                    .map_err(|e| self.bad(format!("not an ASN.1 DER ECDSA signature: {e}")))?;
                key.verify_prehash(&sha256(payload), &sig)
                    .map_err(|_| self.bad("signature does not verify".into()))
            }
            PublicKey::EcdsaP384(key) => {
                let sig = p384::ecdsa::Signature::from_der(sig)
                    .map_err(|e| self.bad(format!("not an ASN.1 DER ECDSA signature: {e}")))?;
                key.verify_prehash(&sha256(payload), &sig)
                    .map_err(|_| self.bad("signature does not verify".into()))
            }
            PublicKey::Rsa(key) => {
                let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone());
                let sig = rsa::pkcs1v15::Signature::try_from(sig)
                    .map_err(|e| self.bad(format!("not an RSA signature: {e}")))?;
                verifier
                    .verify(payload, &sig)
                    .map_err(|_| self.bad("signature does not verify".into()))
            }
            PublicKey::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(sig)
                    .map_err(|e| self.bad(format!("not an Ed25519 signature: {e}")))?;
                key.verify(payload, &sig)
                    .map_err(|_| self.bad("signature does not verify".into()))
            }
        }
    }

    fn bad(&self, reason: String) -> Error {
        Error::BadSignature {
            key: format!("{} public key", self.algorithm()),
            reason,
        }
    }
}

/// A cosign signing key, decrypted.
#[derive(Clone)]
pub enum PrivateKey {
    /// ECDSA P-256 (what `cosign generate-key-pair` makes).
    EcdsaP256(p256::ecdsa::SigningKey),
    /// ECDSA P-384, signing SHA-256 of the payload (as containers/image's signer does).
    EcdsaP384(p384::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.public_key().algorithm())
    }
}

/// cosign's encrypted key container (go-securesystemslib `encrypted`).
#[derive(Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The most memory scrypt may use for one key (128·N·r bytes): cosign's N = 2^15, r = 8 is 32 MiB.
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;

impl PrivateKey {
    /// Decrypts a cosign private key file: PEM `ENCRYPTED COSIGN PRIVATE KEY` or `ENCRYPTED SIGSTORE PRIVATE
    /// KEY`, whose body is JSON naming scrypt parameters and a salt, a NaCl secretbox nonce and the
    /// ciphertext; the key is scrypt(passphrase) and the plaintext is a PKCS#8 DER private key.
    pub fn from_encrypted_pem(pem: &[u8], passphrase: &[u8]) -> Result<PrivateKey> {
        let block = first_pem_block(pem)?;
        if block.label != "ENCRYPTED COSIGN PRIVATE KEY"
            && block.label != "ENCRYPTED SIGSTORE PRIVATE KEY"
        {
            return Err(Error::InvalidKey(format!(
                "unsupported PEM type {:?} (expected \"ENCRYPTED COSIGN PRIVATE KEY\" or \"ENCRYPTED SIGSTORE PRIVATE KEY\")",
                block.label
            )));
        }
        let enc: EncryptedKey = serde_json::from_slice(&block.der)
            .map_err(|e| Error::InvalidKey(format!("encrypted key JSON: {e}")))?;
        if enc.kdf.name != "scrypt" {
            return Err(Error::InvalidKey(format!(
                "unsupported KDF {:?}",
                enc.kdf.name
            )));
        }
        if enc.cipher.name != "nacl/secretbox" {
            return Err(Error::InvalidKey(format!(
                "unsupported cipher {:?}",
                enc.cipher.name
            )));
        }
        let KdfParams { n, r, p } = enc.kdf.params;
        if n < 2 || !n.is_power_of_two() {
            return Err(Error::InvalidKey(format!(
                "scrypt N = {n} is not a power of two"
            )));
        }
        if r == 0 || p == 0 || p > 16 || 128 * n * u64::from(r) > MAX_SCRYPT_MEMORY {
            return Err(Error::InvalidKey(format!(
                "scrypt parameters N = {n}, r = {r}, p = {p} out of bounds (at most {MAX_SCRYPT_MEMORY} bytes, p ≤ 16)"
            )));
        }
        let log_n =
            u8::try_from(n.trailing_zeros()).map_err(|_| Error::InvalidKey("scrypt N".into()))?;
        let salt = STANDARD
            .decode(enc.kdf.salt.as_bytes())
            .map_err(|e| Error::InvalidKey(format!("salt is not base64: {e}")))?;
        let nonce = STANDARD
            .decode(enc.cipher.nonce.as_bytes())
            .map_err(|e| Error::InvalidKey(format!("nonce is not base64: {e}")))?;
        let nonce: [u8; 24] = nonce.try_into().map_err(|v: Vec<u8>| {
            Error::InvalidKey(format!("nonce is {} bytes, not 24", v.len()))
        })?;
        let ciphertext = STANDARD
            .decode(enc.ciphertext.as_bytes())
            .map_err(|e| Error::InvalidKey(format!("ciphertext is not base64: {e}")))?;
        let params = scrypt::Params::new(log_n, r, p, 32)
            .map_err(|e| Error::InvalidKey(format!("scrypt parameters: {e}")))?;
        let mut key = [0u8; 32];
        scrypt::scrypt(passphrase, &salt, &params, &mut key)
            .map_err(|e| Error::InvalidKey(format!("scrypt: {e}")))?;
        let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
        let der = cipher
            .decrypt(&nonce.into(), ciphertext.as_slice())
            .map_err(|_| Error::Decrypt("wrong passphrase, or the key file is corrupt".into()))?;
        PrivateKey::from_pkcs8_der(&der)
    }

    /// Reads an unencrypted PKCS#8 DER private key (ECDSA P-256 or P-384, Ed25519).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey> {
        let info = pkcs8::PrivateKeyInfo::from_der(der)
            .map_err(|e| Error::InvalidKey(format!("PKCS#8 private key: {e}")))?;
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::InvalidKey(format!("{what} private key: {e}"))
        };
        match info.algorithm.oid {
            OID_EC_PUBLIC_KEY => match info
                .algorithm
                .parameters_oid()
                .map_err(|e| bad("ECDSA", &e))?
            {
                OID_P256 => p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(PrivateKey::EcdsaP256)
                    .map_err(|e| bad("ECDSA P-256", &e)),
                OID_P384 => p384::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(PrivateKey::EcdsaP384)
                    .map_err(|e| bad("ECDSA P-384", &e)),
                other => Err(Error::InvalidKey(format!(
                    "unsupported ECDSA curve {other} for signing (P-256 and P-384 are supported)"
                ))),
            },
            OID_ED25519 => ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map(PrivateKey::Ed25519)
                .map_err(|e| bad("Ed25519", &e)),
            OID_RSA => Err(Error::InvalidKey(
                "RSA private keys are not supported for signing (ECDSA and Ed25519 are)".into(),
            )),
            other => Err(Error::InvalidKey(format!(
                "unsupported private key algorithm {other}"
            ))),
        }
    }

    /// Signs `payload` and returns the signature as cosign's annotation holds it: standard base64 of the
    /// ASN.1 DER ECDSA signature over SHA-256 (or of the raw Ed25519 signature).
    pub fn sign(&self, payload: &[u8]) -> Result<String> {
        use p256::ecdsa::signature::Signer as _;
        use p256::ecdsa::signature::hazmat::PrehashSigner as _;
        let der = match self {
            PrivateKey::EcdsaP256(key) => {
                let sig: p256::ecdsa::Signature = key
                    .sign_prehash(&sha256(payload))
                    .map_err(|e| Error::InvalidKey(format!("ECDSA P-256 signing: {e}")))?;
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::EcdsaP384(key) => {
                let sig: p384::ecdsa::Signature = key
                    .sign_prehash(&sha256(payload))
                    .map_err(|e| Error::InvalidKey(format!("ECDSA P-384 signing: {e}")))?;
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::Ed25519(key) => key.sign(payload).to_bytes().to_vec(),
        };
        Ok(STANDARD.encode(der))
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::EcdsaP256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
            PrivateKey::EcdsaP384(k) => PublicKey::EcdsaP384(*k.verifying_key()),
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }
}
