//! containers/image's own signature fixtures (made by real gpg and cosign) give the results its tests
//! (`signature/mechanism_test.go`, `simple_test.go`, `policy_eval_sigstore_test.go`) expect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::SystemTime;

use strata_oci::Digest;
use strata_signature::{
    Error, Keyring, Payload, PayloadKind, PublicKey, Signature, verify_sigstore,
    verify_simple_signing,
};

const TEST_KEY: &str = "08CD26E446E2E95249B7A405E932F44B23E8DD43";
const PRIMARY_WITH_SUBKEY: &str = "B9F4CDB9FD8C475BFA340AC38D54A947EE396F36";
const SUBKEY_WITH_SUBKEY: &str = "57D1D95BBC53BA0EAFF0718CD75B3109B3BAAEAF";
const PRIMARY_WITH_REVOKED_SUBKEY: &str = "6D88C5A1993648A17B2BB0DC6B8499AF63388D63";
const KEY_WITH_PASSPHRASE: &str = "F2B501009F78B0B340221A12A3CD242DA6028093";
const MANIFEST_DIGEST: &str =
    "sha256:20bf21ed457b390829cdbeec8795a7bea1626991fda603e0d01b4e7f60427e55";

fn keyring(dir: &std::path::Path, name: &str) -> Keyring {
    Keyring::from_bytes(&support::read(dir, name)).unwrap()
}

#[test]
fn image_signature_verifies_and_its_payload_parses() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key.gpg");
    assert_eq!(keys.fingerprints(), vec![TEST_KEY]);
    let sig = support::read(&dir, "image.signature");
    let verified = verify_simple_signing(&keys, &sig, SystemTime::now()).unwrap();
    assert_eq!(verified.key, TEST_KEY);
    assert_eq!(verified.payload.kind, PayloadKind::Atomic);
    assert_eq!(verified.payload.docker_reference, "testing/manifest");
    assert_eq!(
        verified.payload.manifest_digest,
        Digest::parse(MANIFEST_DIGEST).unwrap()
    );
    // The manifest it signs hashes to that digest.
    assert_eq!(
        Digest::sha256(&support::read(&dir, "image.manifest.json")),
        verified.payload.manifest_digest
    );
    // As a stored blob it is raw OpenPGP.
    assert_eq!(
        Signature::from_blob(&sig).unwrap(),
        Signature::SimpleSigning(sig.clone())
    );
    assert_eq!(Signature::SimpleSigning(sig.clone()).to_blob(), sig);
}

#[test]
fn invalid_blob_verifies_but_its_payload_is_refused() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key.gpg");
    for name in ["invalid-blob.signature", "invalid-blob.signature-v3"] {
        let sig = support::read(&dir, name);
        let verified = keys.verify(&sig, SystemTime::now()).unwrap();
        assert_eq!(verified.content, b"This is not JSON\n", "{name}");
        assert_eq!(verified.primary_fingerprint, TEST_KEY, "{name}");
        let err = verify_simple_signing(&keys, &sig, SystemTime::now()).unwrap_err();
        assert!(matches!(err, Error::InvalidPayload { .. }), "{name}: {err}");
    }
}

#[test]
fn no_optional_fields_verifies() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key.gpg");
    let v = verify_simple_signing(
        &keys,
        &support::read(&dir, "no-optional-fields.signature"),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(v.payload.creator, None);
    assert_eq!(v.payload.timestamp, None);
}

#[test]
fn expired_signature_is_refused() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key.gpg");
    let err = keys
        .verify(&support::read(&dir, "expired.signature"), SystemTime::now())
        .unwrap_err();
    assert!(matches!(err, Error::SignatureExpired { .. }), "{err}");
}

#[test]
fn unknown_key_is_refused() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key.gpg");
    for name in ["unknown-key.signature", "unknown-key.signature-v3"] {
        let err = keys
            .verify(&support::read(&dir, name), SystemTime::now())
            .unwrap_err();
        match err {
            Error::UnknownKey { key_id } => {
                assert!(key_id.ends_with("5F9470E3BC6C3B55"), "{name}: {key_id}")
            }
            other => panic!("{name}: {other}"),
        }
    }
}

#[test]
fn corrupt_signature_is_refused() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key.gpg");
    for name in ["corrupt.signature", "corrupt.signature-v3"] {
        let err = keys
            .verify(&support::read(&dir, name), SystemTime::now())
            .unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{name}: {err}");
    }
}

#[test]
fn unsigned_literal_and_encrypted_are_refused() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key.gpg");
    let err = keys
        .verify(
            &support::read(&dir, "unsigned-literal.signature"),
            SystemTime::now(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("bare literal"), "{err}");
    let err = keys
        .verify(
            &support::read(&dir, "unsigned-encrypted.signature"),
            SystemTime::now(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");
    for empty in [&b""[..], b"invalid signature"] {
        assert!(keys.verify(empty, SystemTime::now()).is_err());
    }
}

#[test]
fn subkey_signature_maps_to_its_primary_key() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key-with-subkey.gpg");
    assert_eq!(keys.fingerprints(), vec![PRIMARY_WITH_SUBKEY]);
    for name in ["subkey.signature", "subkey.signature-v3"] {
        let v = keys
            .verify(&support::read(&dir, name), SystemTime::now())
            .unwrap();
        assert_eq!(v.primary_fingerprint, PRIMARY_WITH_SUBKEY, "{name}");
        assert_eq!(v.signer_fingerprint, SUBKEY_WITH_SUBKEY, "{name}");
        assert_eq!(
            v.content,
            br#"{"critical":{"identity":{"docker-reference":"testing/manifest:latest"},"image":{"docker-manifest-digest":"sha256:20bf21ed457b390829cdbeec8795a7bea1626991fda603e0d01b4e7f60427e55"},"type":"atomic container signature"},"optional":{}}"#,
            "{name}"
        );
        let s =
            verify_simple_signing(&keys, &support::read(&dir, name), SystemTime::now()).unwrap();
        assert_eq!(s.key, PRIMARY_WITH_SUBKEY);
        assert_eq!(s.payload.docker_reference, "testing/manifest:latest");
    }
}

#[test]
fn revoked_subkey_is_refused() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key-with-revoked-subkey.gpg");
    assert_eq!(keys.fingerprints(), vec![PRIMARY_WITH_REVOKED_SUBKEY]);
    for name in ["subkey-revoked.signature", "subkey-revoked.signature-v3"] {
        let err = keys
            .verify(&support::read(&dir, name), SystemTime::now())
            .unwrap_err();
        assert!(matches!(err, Error::KeyRevoked { .. }), "{name}: {err}");
    }
}

#[test]
fn keyrings_concatenate_and_extend() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let pubring = support::read(&dir, "pubring.gpg");
    let mut twice = pubring.clone();
    twice.extend_from_slice(&pubring);
    let expected = [
        KEY_WITH_PASSPHRASE,
        TEST_KEY,
        PRIMARY_WITH_SUBKEY,
        PRIMARY_WITH_REVOKED_SUBKEY,
    ];
    let keys = Keyring::from_bytes(&twice).unwrap();
    assert_eq!(keys.fingerprints(), [expected, expected].concat());

    let mut keys = keyring(&dir, "public-key-1.gpg");
    keys.extend(keyring(&dir, "public-key-2.gpg"));
    assert_eq!(keys.fingerprints(), vec![TEST_KEY, KEY_WITH_PASSPHRASE]);

    // A keyring holding the key among others verifies.
    let keys = Keyring::from_bytes(&pubring).unwrap();
    verify_simple_signing(
        &keys,
        &support::read(&dir, "image.signature"),
        SystemTime::now(),
    )
    .unwrap();

    assert!(Keyring::from_bytes(b"").unwrap().is_empty());
    assert!(Keyring::from_bytes(b"This is invalid").is_err());
}

#[test]
fn armoured_keys_concatenate() {
    let Some(dir) = support::vectors() else {
        return;
    };
    // public-key.gpg is ASCII armour; two copies are two keys.
    let armour = support::read(&dir, "public-key.gpg");
    assert!(armour.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let mut twice = armour.clone();
    twice.extend_from_slice(&armour);
    assert_eq!(
        Keyring::from_bytes(&twice).unwrap().fingerprints(),
        vec![TEST_KEY, TEST_KEY]
    );
}

#[test]
fn cosign_signature_verifies_with_its_key() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let key = PublicKey::from_pem(&support::read(&dir, "cosign.pub")).unwrap();
    assert_eq!(key.algorithm(), "ECDSA P-256");
    let blob = support::read(&dir, "dir-img-cosign-valid/signature-1");
    let sig = Signature::from_blob(&blob).unwrap();
    // The stored form round-trips byte for byte.
    assert_eq!(sig.to_blob(), blob);
    let Signature::Sigstore {
        mime_type,
        payload,
        annotations,
    } = &sig
    else {
        panic!("not a sigstore signature: {sig:?}");
    };
    let v = verify_sigstore(std::slice::from_ref(&key), mime_type, payload, annotations).unwrap();
    assert_eq!(v.payload.kind, PayloadKind::Cosign);
    assert_eq!(
        v.payload.docker_reference,
        "192.168.64.2:5000/cosign-signed-single-sample"
    );
    assert_eq!(
        Digest::sha256(&support::read(&dir, "dir-img-cosign-valid/manifest.json")),
        v.payload.manifest_digest
    );
    assert_eq!(v.key, "key 1 (ECDSA P-256)");
    // cosign's payload with `"optional":null` is written back byte for byte.
    assert_eq!(&v.payload.to_bytes(), payload);

    // The other key does not verify it; with both keys, the right one is found.
    let other = PublicKey::from_pem(&support::read(&dir, "cosign2.pub")).unwrap();
    let err = verify_sigstore(
        std::slice::from_ref(&other),
        mime_type,
        payload,
        annotations,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    let v = verify_sigstore(&[other, key], mime_type, payload, annotations).unwrap();
    assert_eq!(v.key, "key 2 (ECDSA P-256)");
}

#[test]
fn unknown_cosign_key_signature_does_not_verify() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let key = PublicKey::from_pem(&support::read(&dir, "cosign.pub")).unwrap();
    let blob = support::read(&dir, "dir-img-cosign-valid/signature-1");
    let Signature::Sigstore {
        mime_type,
        payload,
        annotations,
    } = Signature::from_blob(&blob).unwrap()
    else {
        panic!("not sigstore");
    };
    assert!(
        verify_sigstore(
            std::slice::from_ref(&key),
            &mime_type,
            &payload,
            &annotations
        )
        .is_ok()
    );
    // The same kind of blob, signed by a key that is not cosign.pub.
    let Signature::Sigstore {
        mime_type,
        payload,
        annotations,
    } = Signature::from_blob(&support::read(&dir, "unknown-cosign-key.signature")).unwrap()
    else {
        panic!("not sigstore");
    };
    let err = verify_sigstore(&[key], &mime_type, &payload, &annotations).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
}

#[test]
fn other_cosign_vectors() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let key = PublicKey::from_pem(&support::read(&dir, "cosign.pub")).unwrap();
    let open = |name: &str| -> Vec<Signature> {
        (1..)
            .map(|n| dir.join(name).join(format!("signature-{n}")))
            .take_while(|p| p.exists())
            .map(|p| Signature::from_blob(&support::read_link(&p)).unwrap())
            .collect()
    };
    let check = |sig: &Signature| match sig {
        Signature::Sigstore {
            mime_type,
            payload,
            annotations,
        } => verify_sigstore(std::slice::from_ref(&key), mime_type, payload, annotations),
        Signature::SimpleSigning(_) => panic!("simple signing"),
    };
    // Two valid signatures (valid-2): both verify with cosign.pub.
    for sig in open("dir-img-cosign-valid-2") {
        check(&sig).unwrap();
    }
    // With a tag in the identity.
    for sig in open("dir-img-cosign-valid-with-tag") {
        let v = check(&sig).unwrap();
        assert!(
            v.payload.docker_reference.contains(':'),
            "{}",
            v.payload.docker_reference
        );
    }
    // The manifest-digest-error vector signs a digest other than its manifest's: crypto passes, the
    // evaluator's digest comparison is what refuses it.
    let dir_err = dir.join("dir-img-cosign-manifest-digest-error");
    for sig in open("dir-img-cosign-manifest-digest-error") {
        let v = check(&sig).unwrap();
        assert_ne!(
            Digest::sha256(&support::read_link(&dir_err.join("manifest.json"))),
            v.payload.manifest_digest
        );
    }
    // Another attachment type is not a cosign simple-signing signature.
    for sig in open("dir-img-cosign-other-attachment") {
        let err = check(&sig).unwrap_err();
        assert!(matches!(err, Error::UnsupportedSigstore(_)), "{err}");
    }
    // Mixed: a signature by an unknown key, then a valid one: one verifies, as one accepted signature
    // is all a requirement needs.
    let mixed: Vec<bool> = open("dir-img-cosign-mixed")
        .iter()
        .map(|s| check(s).is_ok())
        .collect();
    assert_eq!(mixed, vec![false, true]);
}

#[test]
fn sigstore_public_keys_parse() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let rsa = PublicKey::from_pem(&support::read(&dir, "some-rsa-key.pub")).unwrap();
    assert_eq!(rsa.algorithm(), "RSA");
    assert!(PublicKey::from_pem(&support::read(&dir, "cosign2.pub")).is_ok());
    assert!(PublicKey::from_pem(&support::read(&dir, "fulcio_v1.crt.pem")).is_err());
    assert!(PublicKey::from_pem(b"not a key").is_err());
}

#[test]
fn payload_kinds_are_not_interchangeable() {
    let Some(dir) = support::vectors() else {
        return;
    };
    let keys = keyring(&dir, "public-key.gpg");
    let content = keys
        .verify(&support::read(&dir, "image.signature"), SystemTime::now())
        .unwrap()
        .content;
    assert!(Payload::parse(&content, PayloadKind::Atomic).is_ok());
    let err = Payload::parse(&content, PayloadKind::Cosign).unwrap_err();
    assert!(err.to_string().contains("critical.type"), "{err}");
}
