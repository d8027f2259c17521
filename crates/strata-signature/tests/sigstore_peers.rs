//! Sigstore keys against openssl: strata's signatures verify with `openssl dgst -sha256 -verify`,
//! openssl's verify with strata (P-256, P-384 over SHA-256, RSA PKCS#1 v1.5, Ed25519); an encrypted cosign
//! key written by an independent writer (tests/support/cosign_key.py: hashlib.scrypt + a pure-Python
//! NaCl secretbox) decrypts, a wrong passphrase does not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use strata_oci::Digest;
use strata_signature::{
    Error, Payload, PayloadKind, PrivateKey, PublicKey, SIGSTORE_SIGNATURE_ANNOTATION,
    SIGSTORE_SIGNATURE_MIME_TYPE, Signature, verify_sigstore,
};

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    run(Command::new("openssl").current_dir(dir).args(args))
}

fn payload() -> Payload {
    Payload {
        kind: PayloadKind::Cosign,
        docker_reference: "127.0.0.1:5000/strata/hello".into(),
        manifest_digest: Digest::sha256(b"manifest"),
        creator: None,
        timestamp: None,
    }
}

/// Makes an openssl key pair in `dir`: `<name>.pem` (private), `<name>.pub` (SPKI), `<name>.der` (PKCS#8).
fn keypair(dir: &Path, name: &str, genpkey: &[&str]) -> PathBuf {
    let pem = format!("{name}.pem");
    let mut args = vec!["genpkey"];
    args.extend(genpkey);
    args.extend(["-out", &pem]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            &pem,
            "-pubout",
            "-out",
            &format!("{name}.pub"),
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &pem,
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
    );
    dir.join(name)
}

fn encrypted(dir: &Path, name: &str, passphrase: &str, label: &str) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/cosign_key.py");
    let out = dir.join(format!("{name}.key"));
    run(Command::new("python3")
        .arg(script)
        .arg(dir.join(format!("{name}.der")))
        .arg(passphrase)
        .arg(&out)
        .arg(label));
    std::fs::read(out).unwrap()
}

#[test]
fn p256_cosign_key_signs_for_openssl_and_verifies_openssl() {
    if !support::have("openssl") || !support::have("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    keypair(
        dir,
        "p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let public = PublicKey::from_pem(&std::fs::read(dir.join("p256.pub")).unwrap()).unwrap();
    assert_eq!(public.algorithm(), "ECDSA P-256");

    for label in [
        "ENCRYPTED COSIGN PRIVATE KEY",
        "ENCRYPTED SIGSTORE PRIVATE KEY",
    ] {
        let pem = encrypted(dir, "p256", "correct horse", label);
        let key = PrivateKey::from_encrypted_pem(&pem, b"correct horse").unwrap();
        assert_eq!(key.public_key(), public, "{label}");
        let err = PrivateKey::from_encrypted_pem(&pem, b"wrong horse").unwrap_err();
        assert!(matches!(err, Error::Decrypt(_)), "{label}: {err}");
    }
    let key = PrivateKey::from_encrypted_pem(
        &encrypted(dir, "p256", "", "ENCRYPTED COSIGN PRIVATE KEY"),
        b"",
    )
    .unwrap();

    // strata signs; openssl verifies.
    let bytes = payload().to_bytes();
    std::fs::write(dir.join("payload"), &bytes).unwrap();
    let sig_b64 = key.sign(&bytes).unwrap();
    std::fs::write(dir.join("strata.sig"), STANDARD.decode(&sig_b64).unwrap()).unwrap();
    let out = openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "p256.pub",
            "-signature",
            "strata.sig",
            "payload",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");

    // openssl signs; strata verifies, as a whole cosign signature too.
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "p256.pem",
            "-out",
            "openssl.sig",
            "payload",
        ],
    );
    let openssl_b64 = STANDARD.encode(std::fs::read(dir.join("openssl.sig")).unwrap());
    public.verify(&bytes, &openssl_b64).unwrap();
    assert!(public.verify(b"another payload", &openssl_b64).is_err());
    let sig = Signature::Sigstore {
        mime_type: SIGSTORE_SIGNATURE_MIME_TYPE.into(),
        payload: bytes.clone(),
        annotations: BTreeMap::from([(SIGSTORE_SIGNATURE_ANNOTATION.to_owned(), openssl_b64)]),
    };
    let stored = Signature::from_blob(&sig.to_blob()).unwrap();
    assert_eq!(stored, sig);
    let Signature::Sigstore {
        mime_type,
        payload: p,
        annotations,
    } = stored
    else {
        panic!()
    };
    let v = verify_sigstore(&[public], &mime_type, &p, &annotations).unwrap();
    assert_eq!(v.payload, payload());
}

#[test]
fn p384_rsa_and_ed25519_keys_against_openssl() {
    if !support::have("openssl") || !support::have("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bytes = payload().to_bytes();
    std::fs::write(dir.join("payload"), &bytes).unwrap();

    // P-384: containers/image hashes with SHA-256 for every curve; so does `openssl dgst -sha256`.
    keypair(
        dir,
        "p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let public = PublicKey::from_pem(&std::fs::read(dir.join("p384.pub")).unwrap()).unwrap();
    assert_eq!(public.algorithm(), "ECDSA P-384");
    openssl(
        dir,
        &[
            "dgst", "-sha256", "-sign", "p384.pem", "-out", "p384.sig", "payload",
        ],
    );
    public
        .verify(
            &bytes,
            &STANDARD.encode(std::fs::read(dir.join("p384.sig")).unwrap()),
        )
        .unwrap();
    let key = PrivateKey::from_encrypted_pem(
        &encrypted(dir, "p384", "pw", "ENCRYPTED COSIGN PRIVATE KEY"),
        b"pw",
    )
    .unwrap();
    std::fs::write(
        dir.join("p384-strata.sig"),
        STANDARD.decode(key.sign(&bytes).unwrap()).unwrap(),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "p384.pub",
            "-signature",
            "p384-strata.sig",
            "payload",
        ],
    );

    // RSA, PKCS#1 v1.5 with SHA-256 (openssl dgst's default padding).
    keypair(
        dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let public = PublicKey::from_pem(&std::fs::read(dir.join("rsa.pub")).unwrap()).unwrap();
    openssl(
        dir,
        &[
            "dgst", "-sha256", "-sign", "rsa.pem", "-out", "rsa.sig", "payload",
        ],
    );
    let sig = STANDARD.encode(std::fs::read(dir.join("rsa.sig")).unwrap());
    public.verify(&bytes, &sig).unwrap();
    assert!(public.verify(b"tampered", &sig).is_err());
    // The same key as PKCS#1 `RSA PUBLIC KEY`.
    let pkcs1 = openssl(dir, &["rsa", "-in", "rsa.pem", "-RSAPublicKey_out"]);
    PublicKey::from_pem(&pkcs1)
        .unwrap()
        .verify(&bytes, &sig)
        .unwrap();

    // Ed25519 (pure).
    keypair(dir, "ed", &["-algorithm", "ED25519"]);
    let public = PublicKey::from_pem(&std::fs::read(dir.join("ed.pub")).unwrap()).unwrap();
    openssl(
        dir,
        &[
            "pkeyutl", "-sign", "-rawin", "-inkey", "ed.pem", "-in", "payload", "-out", "ed.sig",
        ],
    );
    public
        .verify(
            &bytes,
            &STANDARD.encode(std::fs::read(dir.join("ed.sig")).unwrap()),
        )
        .unwrap();
    let key = PrivateKey::from_encrypted_pem(
        &encrypted(dir, "ed", "pw", "ENCRYPTED COSIGN PRIVATE KEY"),
        b"pw",
    )
    .unwrap();
    std::fs::write(
        dir.join("ed-strata.sig"),
        STANDARD.decode(key.sign(&bytes).unwrap()).unwrap(),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "pkeyutl",
            "-verify",
            "-rawin",
            "-pubin",
            "-inkey",
            "ed.pub",
            "-in",
            "payload",
            "-sigfile",
            "ed-strata.sig",
        ],
    );
}

#[test]
fn malformed_private_keys_are_clear_errors() {
    for (pem, what) in [
        (&b"nothing"[..], "PEM"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "unsupported PEM type"),
        (b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\nbm90IGpzb24=\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n", "JSON"),
    ] {
        let err = PrivateKey::from_encrypted_pem(pem, b"").unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
    // Absurd scrypt parameters are refused before any work.
    let body = br#"{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#;
    let pem = format!(
        "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n{}\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n",
        STANDARD.encode(body)
    );
    let err = PrivateKey::from_encrypted_pem(pem.as_bytes(), b"").unwrap_err();
    assert!(err.to_string().contains("out of bounds"), "{err}");
}
