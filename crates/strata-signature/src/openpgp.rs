//! OpenPGP "simple signing" verification with the decisions containers/image gets from gpgme.
//!
//! rPGP (`pgp`) parses packets and keys and checks the cryptography; it "explicitly does not deal with"
//! expiry, revocation or key usage, so this module decides those itself, the way gpg reports them to gpgme
//! (and containers/image refuses anything but a clean signature):
//! - the message is a signed message, possibly compressed (decompressed here, bounded): one-pass signature,
//!   literal data, signature; or signature, literal data. Cleartext-signed, bare literal and encrypted
//!   messages are refused, and so is any number of signatures other than one.
//! - the signing key is a primary key or a subkey of a key in the keyring, found by the signature's issuer
//!   fingerprint or key ID; a subkey maps to its primary key's fingerprint.
//! - refused: a bad signature, an unknown key, an expired signature, an expired or revoked primary key or
//!   subkey (evaluated at `now`), a key whose latest self-signature or binding lacks the signing flag, a
//!   signing subkey without a valid binding or back-signature (gpg requires cross-certification), a key
//!   created after the signature or in the future, and MD5 signatures (gpg rejects them by default).
//!
//! Every size and count is bounded: a 4 MiB message, a 4 MiB decompressed body, 64 packets a level,
//! 4 levels of compression, a 16 MiB keyring of at most 1024 keys.

use std::io::{Cursor, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{SignedPublicKey, SignedPublicKeyParser, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::PacketTrait as _;
use pgp::packet::{
    LiteralData, OnePassSignature, Packet, PacketParser, Signature, SignatureType, SubpacketData,
};
use pgp::types::{Fingerprint, KeyDetails, Tag};

use crate::error::{Error, Result};

/// The largest OpenPGP message accepted, and the largest decompressed body.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// The largest keyring accepted.
pub const MAX_KEYRING_SIZE: usize = 16 * 1024 * 1024;
/// The most keys one keyring may hold.
pub const MAX_KEYS: usize = 1024;
/// The most packets one level of a message may hold.
const MAX_PACKETS: usize = 64;
/// The deepest nesting of compressed data packets.
const MAX_COMPRESSION_DEPTH: usize = 4;
/// The most signatures looked at on one key component (self-signatures, bindings, revocations).
const MAX_COMPONENT_SIGNATURES: usize = 256;

/// A set of OpenPGP public keys: the keys a `signedBy` requirement accepts.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// A verified simple-signing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOpenPgp {
    /// The signed content (the literal data), not yet parsed.
    pub content: Vec<u8>,
    /// The fingerprint of the primary key, upper-case hex as gpg prints it: the key identity a policy names.
    pub primary_fingerprint: String,
    /// The fingerprint of the key that made the signature (the primary key, or one of its subkeys).
    pub signer_fingerprint: String,
}

fn pgp_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::OpenPgp(format!("{context}: {e}"))
}

/// Upper-case hex of a fingerprint, as gpg and gpgme print it.
fn fingerprint_hex(fp: &Fingerprint) -> String {
    upper_hex(fp.as_bytes())
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Skips leading ASCII whitespace.
fn trim_start(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    bytes.get(n..).unwrap_or_default()
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Reads public keys: binary (`gpg --export`, a `pubring.gpg`) or ASCII armour, several keys or armour
    /// blocks concatenated. Empty input is an empty keyring (as gpg imports nothing from it); input with
    /// no key in it, or a key that cannot be parsed, is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring> {
        if bytes.len() > MAX_KEYRING_SIZE {
            return Err(Error::TooLarge {
                what: "OpenPGP keyring",
                size: bytes.len() as u64,
                limit: MAX_KEYRING_SIZE as u64,
            });
        }
        let mut keys = Vec::new();
        let trimmed = trim_start(bytes);
        if trimmed.is_empty() {
            return Ok(Keyring::default());
        }
        if trimmed.starts_with(b"-----BEGIN PGP") {
            const END: &[u8] = b"-----END PGP PUBLIC KEY BLOCK-----";
            let mut rest = trimmed;
            while !trim_start(rest).is_empty() {
                let Some(start) = find(rest, b"-----BEGIN PGP") else {
                    break;
                };
                let block_and_after = rest.get(start..).unwrap_or_default();
                let Some(end) = find(block_and_after, END) else {
                    return Err(Error::OpenPgp(
                        "keyring: armour block without `-----END PGP PUBLIC KEY BLOCK-----`".into(),
                    ));
                };
                let block_len = end + END.len();
                let block = block_and_after.get(..block_len).unwrap_or_default();
                let mut dearmor = pgp::armor::Dearmor::new(Cursor::new(block));
                let mut binary = Vec::new();
                (&mut dearmor)
                    .take(MAX_KEYRING_SIZE as u64)
                    .read_to_end(&mut binary)
                    .map_err(|e| pgp_err("keyring: armour", e))?;
                read_binary_keys(&binary, &mut keys)?;
                rest = block_and_after.get(block_len..).unwrap_or_default();
            }
        } else {
            read_binary_keys(bytes, &mut keys)?;
        }
        if keys.is_empty() {
            return Err(Error::OpenPgp("keyring: no public key found".into()));
        }
        Ok(Keyring { keys })
    }

    /// Adds the keys of `other`.
    pub fn extend(&mut self, other: Keyring) {
        self.keys.extend(other.keys);
    }

    /// The primary key fingerprints, upper-case hex, in keyring order (a key given twice appears twice, as
    /// containers/image's key import reports it).
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| fingerprint_hex(&k.primary_key.fingerprint()))
            .collect()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the keyring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies a simple-signing OpenPGP message with the keys of this keyring, at time `now`, and returns
    /// its content and the signing key. See the module documentation for what is refused.
    pub fn verify(&self, signed: &[u8], now: SystemTime) -> Result<VerifiedOpenPgp> {
        if signed.len() > MAX_MESSAGE_SIZE {
            return Err(Error::TooLarge {
                what: "OpenPGP message",
                size: signed.len() as u64,
                limit: MAX_MESSAGE_SIZE as u64,
            });
        }
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let trimmed = trim_start(signed);
        if trimmed.is_empty() {
            return Err(Error::OpenPgp("empty message".into()));
        }
        let binary;
        let data: &[u8] = if trimmed.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
            return Err(Error::OpenPgp(
                "a cleartext-signed message, not a signed OpenPGP message".into(),
            ));
        } else if trimmed.starts_with(b"-----BEGIN PGP MESSAGE-----") {
            let mut dearmor = pgp::armor::Dearmor::new(Cursor::new(trimmed));
            let mut out = Vec::new();
            (&mut dearmor)
                .take(MAX_MESSAGE_SIZE as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| pgp_err("armoured message", e))?;
            binary = out;
            &binary
        } else if trimmed.starts_with(b"-----") {
            return Err(Error::OpenPgp("not an OpenPGP message".into()));
        } else {
            signed
        };

        let mut packets = Vec::new();
        flatten_packets(data, 0, &mut packets)?;
        let message = SignedMessage::from_packets(packets)?;
        self.verify_message(&message, now)
    }

    fn verify_message(&self, message: &SignedMessage, now: u64) -> Result<VerifiedOpenPgp> {
        let sig = &message.signature;
        match sig.typ() {
            Some(SignatureType::Binary | SignatureType::Text) => {}
            other => {
                return Err(Error::OpenPgp(format!(
                    "the signature is of type {other:?}, not a document signature"
                )));
            }
        }
        if let Some(ops) = &message.one_pass
            && (Some(ops.hash_algorithm()) != sig.hash_alg() || Some(ops.typ()) != sig.typ())
        {
            return Err(Error::OpenPgp(
                "the one-pass signature packet does not match the signature packet".into(),
            ));
        }
        let issuer_fps: Vec<&Fingerprint> = sig.issuer_fingerprint();
        let issuer_ids = sig.issuer_key_id();
        let Some(issuer_name) = issuer_fps
            .first()
            .map(|fp| fingerprint_hex(fp))
            .or_else(|| issuer_ids.first().map(|id| upper_hex(id.as_ref())))
        else {
            return Err(Error::OpenPgp("the signature names no issuer key".into()));
        };

        // Every key component the signature's issuer data names.
        let mut candidates: Vec<(&SignedPublicKey, Option<&SignedPublicSubKey>)> = Vec::new();
        let names = |k: &dyn KeyDetails| {
            let fp = k.fingerprint();
            let id = k.legacy_key_id();
            issuer_fps.iter().any(|f| **f == fp) || issuer_ids.iter().any(|i| **i == id)
        };
        for key in &self.keys {
            if names(&key.primary_key) {
                candidates.push((key, None));
            }
            for sub in &key.public_subkeys {
                if names(&sub.key) {
                    candidates.push((key, Some(sub)));
                }
            }
        }
        if candidates.is_empty() {
            return Err(Error::UnknownKey {
                key_id: issuer_name,
            });
        }
        if sig.hash_alg() == Some(HashAlgorithm::Md5) {
            return Err(Error::BadSignature {
                key: issuer_name,
                reason: "MD5 signatures are rejected".into(),
            });
        }

        let content = message.literal.data();
        let mut first_failure = None;
        for (key, sub) in candidates {
            let (fp, result) = match sub {
                None => (
                    key.primary_key.fingerprint(),
                    sig.verify(&key.primary_key, content),
                ),
                Some(sub) => (sub.key.fingerprint(), sig.verify(&sub.key, content)),
            };
            match result {
                Ok(()) => {
                    check_validity(key, sub, sig, now)?;
                    return Ok(VerifiedOpenPgp {
                        content: content.to_vec(),
                        primary_fingerprint: fingerprint_hex(&key.primary_key.fingerprint()),
                        signer_fingerprint: fingerprint_hex(&fp),
                    });
                }
                Err(e) => {
                    if first_failure.is_none() {
                        first_failure = Some(Error::BadSignature {
                            key: fingerprint_hex(&fp),
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        Err(first_failure.unwrap_or(Error::UnknownKey {
            key_id: issuer_name,
        }))
    }
}

/// Reads the transferable public keys of binary OpenPGP data into `keys`. gpg's keyring trust packets are
/// dropped first (rPGP stops at them).
fn read_binary_keys(data: &[u8], keys: &mut Vec<SignedPublicKey>) -> Result<()> {
    let mut packets = Vec::new();
    for (i, packet) in PacketParser::new(Cursor::new(data)).enumerate() {
        if i >= MAX_KEYS * MAX_COMPONENT_SIGNATURES {
            return Err(Error::TooLarge {
                what: "OpenPGP keyring (packets)",
                size: i as u64 + 1,
                limit: (MAX_KEYS * MAX_COMPONENT_SIGNATURES) as u64,
            });
        }
        match packet {
            Ok(Packet::Trust(_) | Packet::Marker(_) | Packet::Padding(_)) => {}
            Ok(p) => packets.push(Ok(p)),
            Err(e) => return Err(pgp_err(&format!("keyring: packet {}", i + 1), e)),
        }
    }
    let parser = SignedPublicKeyParser::from_packets(packets.into_iter().peekable());
    for key in parser {
        if keys.len() >= MAX_KEYS {
            return Err(Error::TooLarge {
                what: "OpenPGP keyring (keys)",
                size: keys.len() as u64 + 1,
                limit: MAX_KEYS as u64,
            });
        }
        keys.push(key.map_err(|e| pgp_err(&format!("keyring: key {}", keys.len() + 1), e))?);
    }
    Ok(())
}

/// Appends the packets of `data` to `out`, replacing compressed data packets by their decompressed packets.
fn flatten_packets(data: &[u8], depth: usize, out: &mut Vec<Packet>) -> Result<()> {
    let mut count = 0usize;
    for packet in PacketParser::new(Cursor::new(data)) {
        count += 1;
        if count > MAX_PACKETS {
            return Err(Error::OpenPgp(format!(
                "more than {MAX_PACKETS} packets in one message"
            )));
        }
        let packet = packet.map_err(|e| pgp_err("malformed message", e))?;
        match packet {
            Packet::CompressedData(compressed) => {
                if depth >= MAX_COMPRESSION_DEPTH {
                    return Err(Error::OpenPgp(format!(
                        "compressed data nested more than {MAX_COMPRESSION_DEPTH} deep"
                    )));
                }
                let reader = compressed
                    .decompress()
                    .map_err(|e| pgp_err("compressed data", e))?;
                let mut inner = Vec::new();
                reader
                    .take(MAX_MESSAGE_SIZE as u64 + 1)
                    .read_to_end(&mut inner)
                    .map_err(|e| pgp_err("decompressing", e))?;
                if inner.len() > MAX_MESSAGE_SIZE {
                    return Err(Error::TooLarge {
                        what: "decompressed OpenPGP message",
                        size: inner.len() as u64,
                        limit: MAX_MESSAGE_SIZE as u64,
                    });
                }
                flatten_packets(&inner, depth + 1, out)?;
            }
            Packet::Marker(_) | Packet::Padding(_) => {}
            other => out.push(other),
        }
    }
    if count == 0 {
        return Err(Error::OpenPgp("no OpenPGP packet found".into()));
    }
    Ok(())
}

/// A message that has the shape of a signed message with one signature.
struct SignedMessage {
    one_pass: Option<OnePassSignature>,
    literal: LiteralData,
    signature: Signature,
}

impl SignedMessage {
    fn from_packets(packets: Vec<Packet>) -> Result<SignedMessage> {
        let mut signatures = 0usize;
        let mut literals = 0usize;
        let mut one_passes = 0usize;
        for p in &packets {
            match p {
                Packet::Signature(_) => signatures += 1,
                Packet::LiteralData(_) => literals += 1,
                Packet::OnePassSignature(_) => one_passes += 1,
                Packet::PublicKeyEncryptedSessionKey(_)
                | Packet::SymKeyEncryptedSessionKey(_)
                | Packet::SymEncryptedData(_)
                | Packet::SymEncryptedProtectedData(_)
                | Packet::GnupgAeadData(_) => {
                    return Err(Error::OpenPgp(
                        "an encrypted message, not a signed message".into(),
                    ));
                }
                other => {
                    return Err(Error::OpenPgp(format!(
                        "not a signed message: it contains a {:?} packet",
                        other.tag()
                    )));
                }
            }
        }
        if literals == 0 {
            return Err(Error::OpenPgp("the message holds no literal data".into()));
        }
        if literals > 1 {
            return Err(Error::OpenPgp(
                "the message holds more than one literal data packet".into(),
            ));
        }
        if signatures == 0 {
            return Err(Error::OpenPgp(
                "not signed: bare literal data without a signature".into(),
            ));
        }
        if signatures != 1 {
            return Err(Error::SignatureCount(signatures));
        }
        let mut it = packets.into_iter();
        match (one_passes, it.next(), it.next(), it.next()) {
            (
                1,
                Some(Packet::OnePassSignature(ops)),
                Some(Packet::LiteralData(literal)),
                Some(Packet::Signature(signature)),
            ) => Ok(SignedMessage {
                one_pass: Some(ops),
                literal,
                signature,
            }),
            (0, Some(Packet::Signature(signature)), Some(Packet::LiteralData(literal)), None) => {
                Ok(SignedMessage {
                    one_pass: None,
                    literal,
                    signature,
                })
            }
            _ => Err(Error::OpenPgp(
                "packets out of order for a signed message".into(),
            )),
        }
    }
}

fn secs(t: pgp::types::Timestamp) -> u64 {
    u64::from(t.as_secs())
}

/// Whether a self-signature or binding's hashed key flags allow signing. With no key flags subpacket gpg
/// derives the usage from the algorithm: every signature-capable algorithm may sign.
fn may_sign(sig: &Signature, algorithm: PublicKeyAlgorithm) -> bool {
    let has_flags = sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    });
    if has_flags {
        sig.key_flags().sign()
    } else {
        algorithm.can_sign()
    }
}

/// The expiry (unix seconds) a self-signature or binding gives its key, if any.
fn expiry(sig: &Signature, created: u64) -> Option<u64> {
    sig.key_expiration_time()
        .map(|d| u64::from(d.as_secs()))
        .filter(|&d| d > 0)
        .map(|d| created + d)
}

fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|s| s.created().map(secs).unwrap_or(0))
}

/// gpg's verdicts on the key side of a cryptographically good signature.
fn check_validity(
    key: &SignedPublicKey,
    sub: Option<&SignedPublicSubKey>,
    sig: &Signature,
    now: u64,
) -> Result<()> {
    let primary = &key.primary_key;
    let primary_fp = fingerprint_hex(&primary.fingerprint());
    let Some(sig_created) = sig.created().map(secs) else {
        return Err(Error::OpenPgp("the signature has no creation time".into()));
    };
    let signer_fp = match sub {
        Some(s) => fingerprint_hex(&s.key.fingerprint()),
        None => primary_fp.clone(),
    };

    // The signature's own lifetime.
    if let Some(d) = sig
        .signature_expiration_time()
        .map(|d| u64::from(d.as_secs()))
        .filter(|&d| d > 0)
    {
        let expired_at = sig_created + d;
        if now >= expired_at {
            return Err(Error::SignatureExpired {
                key: signer_fp,
                expired_at: i64::try_from(expired_at).unwrap_or(i64::MAX),
            });
        }
    }

    // The primary key: revocation, a valid self-signature, expiry.
    let primary_created = secs(primary.created_at());
    if primary_created > now {
        return Err(Error::KeyNotUsable {
            key: primary_fp,
            reason: "the key was created in the future".into(),
        });
    }
    let revoked = key
        .details
        .revocation_signatures
        .iter()
        .take(MAX_COMPONENT_SIGNATURES)
        .any(|r| r.typ() == Some(SignatureType::KeyRevocation) && r.verify_key(primary).is_ok());
    if revoked {
        return Err(Error::KeyRevoked { key: primary_fp });
    }
    let mut self_sigs: Vec<&Signature> = Vec::new();
    for user in key.details.users.iter().take(MAX_COMPONENT_SIGNATURES) {
        for s in user.signatures.iter().take(MAX_COMPONENT_SIGNATURES) {
            let is_cert = matches!(
                s.typ(),
                Some(
                    SignatureType::CertGeneric
                        | SignatureType::CertPersona
                        | SignatureType::CertCasual
                        | SignatureType::CertPositive
                )
            );
            if is_cert
                && s.created().map(secs).is_some_and(|c| c <= now)
                && s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
            {
                self_sigs.push(s);
            }
        }
    }
    for s in key
        .details
        .direct_signatures
        .iter()
        .take(MAX_COMPONENT_SIGNATURES)
    {
        if s.typ() == Some(SignatureType::Key)
            && s.created().map(secs).is_some_and(|c| c <= now)
            && s.verify_key(primary).is_ok()
        {
            self_sigs.push(s);
        }
    }
    let Some(self_sig) = newest(self_sigs.into_iter()) else {
        return Err(Error::KeyNotUsable {
            key: primary_fp,
            reason: "the key has no valid self-signature".into(),
        });
    };
    let primary_expiry = expiry(self_sig, primary_created).or_else(|| {
        primary
            .legacy_v3_expiration_days()
            .filter(|&d| d > 0)
            .map(|d| primary_created + u64::from(d) * 86_400)
    });
    if let Some(expired_at) = primary_expiry.filter(|&e| now >= e) {
        return Err(Error::KeyExpired {
            key: primary_fp,
            expired_at: i64::try_from(expired_at).unwrap_or(i64::MAX),
        });
    }

    match sub {
        None => {
            if primary_created > sig_created {
                return Err(Error::KeyNotUsable {
                    key: primary_fp,
                    reason: "the key is newer than the signature".into(),
                });
            }
            if !may_sign(self_sig, primary.algorithm()) {
                return Err(Error::KeyNotUsable {
                    key: primary_fp,
                    reason: "the key is not marked for signing".into(),
                });
            }
        }
        Some(sub) => {
            let sub_created = secs(sub.key.created_at());
            if sub_created > now || sub_created > sig_created {
                return Err(Error::KeyNotUsable {
                    key: signer_fp,
                    reason: "the subkey is newer than the signature".into(),
                });
            }
            let sigs = || sub.signatures.iter().take(MAX_COMPONENT_SIGNATURES);
            if sigs().any(|r| {
                r.typ() == Some(SignatureType::SubkeyRevocation)
                    && r.verify_subkey_binding(primary, &sub.key).is_ok()
            }) {
                return Err(Error::KeyRevoked { key: signer_fp });
            }
            let binding = newest(sigs().filter(|b| {
                b.typ() == Some(SignatureType::SubkeyBinding)
                    && b.created().map(secs).is_some_and(|c| c <= now)
                    && b.verify_subkey_binding(primary, &sub.key).is_ok()
            }));
            let Some(binding) = binding else {
                return Err(Error::KeyNotUsable {
                    key: signer_fp,
                    reason: "the subkey has no valid binding signature".into(),
                });
            };
            if !may_sign(binding, sub.key.algorithm()) {
                return Err(Error::KeyNotUsable {
                    key: signer_fp,
                    reason: "the subkey is not marked for signing".into(),
                });
            }
            let cross_certified = binding.embedded_signature().is_some_and(|back| {
                back.typ() == Some(SignatureType::KeyBinding)
                    && back.verify_primary_key_binding(&sub.key, primary).is_ok()
            });
            if !cross_certified {
                return Err(Error::KeyNotUsable {
                    key: signer_fp,
                    reason: "the signing subkey is not cross-certified".into(),
                });
            }
            if let Some(expired_at) = expiry(binding, sub_created).filter(|&e| now >= e) {
                return Err(Error::KeyExpired {
                    key: signer_fp,
                    expired_at: i64::try_from(expired_at).unwrap_or(i64::MAX),
                });
            }
        }
    }
    Ok(())
}
