//! Real peers: keys made by gpg in the test, signatures made by strata (through gpg) verified by
//! `skopeo standalone-verify`, signatures made by `skopeo standalone-sign` verified by strata, and the
//! refusals (expired key, expired signature, revoked key, two signatures) agreed by both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_oci::Digest;
use strata_signature::{
    Error, GpgOptions, Keyring, Payload, PayloadKind, sign_with_gpg, verify_simple_signing,
};

const REFERENCE: &str = "127.0.0.1:5000/strata/hello:v1";
const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;
/// 2020-01-01 and 2020-06-01, for keys and signatures made in the past with `--faked-system-time`.
const JAN_2020: &str = "20200101T000000";
const JUN_2020: &str = "20200601T000000";

struct Home {
    dir: tempfile::TempDir,
}

impl Drop for Home {
    /// Stops the gpg-agent this home started (by its home directory, nothing else).
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("strata-gpg-")
            .tempdir()
            .unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(dir.path()).unwrap().permissions(),
            0o700,
        );
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn gpg(&self, args: &[&str]) -> Output {
        Command::new("gpg")
            .arg("--homedir")
            .arg(self.path())
            .args(["--batch", "--no-tty"])
            .args(args)
            .output()
            .unwrap()
    }

    fn gpg_ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.gpg(args);
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Makes a key and returns its fingerprint.
    fn gen_key(&self, uid: &str, extra: &[&str], expire: &str) -> String {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend([
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "rsa2048",
            "sign",
            expire,
        ]);
        self.gpg_ok(&args);
        self.fingerprint(uid)
    }

    fn fingerprint(&self, uid: &str) -> String {
        let listing =
            String::from_utf8(self.gpg_ok(&["--with-colons", "--list-keys", uid])).unwrap();
        listing
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_owned())
            })
            .unwrap()
    }

    fn keyring(&self, fpr: &str) -> Keyring {
        Keyring::from_bytes(&self.gpg_ok(&["--export", fpr])).unwrap()
    }

    fn options(&self) -> GpgOptions {
        GpgOptions {
            gnupghome: Some(self.path().to_owned()),
            passphrase_file: None,
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// `skopeo standalone-verify` with this GNUPGHOME: Ok(stdout) or Err(stderr).
    fn skopeo_verify(&self, manifest: &Path, fpr: &str, sig: &Path) -> Result<String, String> {
        let out = Command::new("skopeo")
            .env("GNUPGHOME", self.path())
            .arg("standalone-verify")
            .arg(manifest)
            .arg(REFERENCE)
            .arg(fpr)
            .arg(sig)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn peers() -> bool {
    support::have("gpg") && support::have("skopeo")
}

fn payload() -> Payload {
    Payload {
        kind: PayloadKind::Atomic,
        docker_reference: REFERENCE.into(),
        manifest_digest: Digest::sha256(MANIFEST.as_bytes()),
        creator: Some("strata test".into()),
        timestamp: Some(1_764_892_800),
    }
}

fn unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn strata_signs_through_gpg_and_skopeo_verifies() {
    if !peers() {
        return;
    }
    let home = Home::new();
    let fpr = home.gen_key("Strata Test <t@example.com>", &[], "never");
    let keys = home.keyring(&fpr);
    assert_eq!(keys.fingerprints(), vec![fpr.clone()]);

    let sig = sign_with_gpg(&fpr, &payload().to_bytes(), &home.options()).unwrap();
    let verified = verify_simple_signing(&keys, &sig, SystemTime::now()).unwrap();
    assert_eq!(verified.payload, payload());
    assert_eq!(verified.key, fpr);

    let manifest = home.write("manifest.json", MANIFEST.as_bytes());
    let sig_path = home.write("signature-1", &sig);
    let out = home.skopeo_verify(&manifest, &fpr, &sig_path).unwrap();
    assert!(
        out.contains(&Digest::sha256(MANIFEST.as_bytes()).to_string()),
        "{out}"
    );

    // A wrong fingerprint is an error naming it.
    let err = sign_with_gpg(
        "0123456789ABCDEF0123456789ABCDEF01234567",
        b"x",
        &home.options(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Gpg { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("0123456789ABCDEF0123456789ABCDEF01234567"),
        "{err}"
    );
}

#[test]
fn skopeo_signs_and_strata_verifies_byte_for_byte() {
    if !peers() {
        return;
    }
    let home = Home::new();
    let fpr = home.gen_key("Skopeo Test <s@example.com>", &[], "never");
    let keys = home.keyring(&fpr);
    let manifest = home.write("manifest.json", MANIFEST.as_bytes());
    let sig_path = home.path().join("skopeo.sig");
    let out = Command::new("skopeo")
        .env("GNUPGHOME", home.path())
        .arg("standalone-sign")
        .arg(&manifest)
        .arg(REFERENCE)
        .arg(&fpr)
        .arg("-o")
        .arg(&sig_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = std::fs::read(&sig_path).unwrap();

    let verified = verify_simple_signing(&keys, &sig, SystemTime::now()).unwrap();
    assert_eq!(verified.key, fpr);
    assert_eq!(verified.payload.docker_reference, REFERENCE);
    assert_eq!(
        verified.payload.manifest_digest,
        Digest::sha256(MANIFEST.as_bytes())
    );
    assert!(
        verified
            .payload
            .creator
            .as_deref()
            .unwrap()
            .starts_with("atomic ")
    );
    // What strata writes for the same payload is what skopeo wrote.
    let content = keys.verify(&sig, SystemTime::now()).unwrap().content;
    assert_eq!(verified.payload.to_bytes(), content);
    // skopeo's message is compressed: strata decompressed it.
    assert!(
        matches!(sig.first(), Some(0xA0..=0xA3 | 0xC8)),
        "{:#x?}",
        sig.first()
    );
}

#[test]
fn signing_subkey_maps_to_its_primary() {
    if !peers() {
        return;
    }
    let home = Home::new();
    let fpr = home.gen_key("Sub Test <sub@example.com>", &[], "never");
    home.gpg_ok(&[
        "--passphrase",
        "",
        "--quick-add-key",
        &fpr,
        "rsa2048",
        "sign",
        "never",
    ]);
    let listing = String::from_utf8(home.gpg_ok(&["--with-colons", "--list-keys", &fpr])).unwrap();
    let fprs: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("fpr:"))
        .map(|r| r.trim_matches(':'))
        .collect();
    let sub = fprs.get(1).copied().unwrap().to_owned();
    let sig = sign_with_gpg(&format!("{sub}!"), &payload().to_bytes(), &home.options()).unwrap();
    let keys = home.keyring(&fpr);
    let v = keys.verify(&sig, SystemTime::now()).unwrap();
    assert_eq!(
        (
            v.primary_fingerprint.as_str(),
            v.signer_fingerprint.as_str()
        ),
        (fpr.as_str(), sub.as_str())
    );
    let manifest = home.write("manifest.json", MANIFEST.as_bytes());
    let sig_path = home.write("sig", &sig);
    // skopeo 1.9.3's standalone-verify (containers/image 5.23) names the subkey and does not map it to
    // the primary key as later containers/image does; it accepts the signature for the subkey.
    home.skopeo_verify(&manifest, &sub, &sig_path).unwrap();
    let skopeo = home.skopeo_verify(&manifest, &fpr, &sig_path).unwrap_err();
    assert!(skopeo.contains(&sub), "{skopeo}");
}

#[test]
fn expired_key_is_refused_by_both() {
    if !peers() {
        return;
    }
    let home = Home::new();
    // Made in January 2020, valid for a year; the signature is from June 2020.
    let fpr = home.gen_key(
        "Old Key <old@example.com>",
        &["--faked-system-time", JAN_2020],
        "1y",
    );
    let payload_path = home.write("payload", &payload().to_bytes());
    let sig = home.gpg_ok(&[
        "--faked-system-time",
        JUN_2020,
        "--sign",
        "--local-user",
        &fpr,
        "--output",
        "-",
        payload_path.to_str().unwrap(),
    ]);
    let keys = home.keyring(&fpr);
    let err = verify_simple_signing(&keys, &sig, SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::KeyExpired { .. }), "{err}");
    // While the key was valid, strata accepted it.
    verify_simple_signing(&keys, &sig, unix(1_593_561_600)).unwrap(); // 2020-07-01
    let manifest = home.write("manifest.json", MANIFEST.as_bytes());
    let sig_path = home.write("sig", &sig);
    let skopeo = home.skopeo_verify(&manifest, &fpr, &sig_path).unwrap_err();
    assert!(!skopeo.is_empty());
}

#[test]
fn expired_signature_is_refused_by_both() {
    if !peers() {
        return;
    }
    let home = Home::new();
    let fpr = home.gen_key(
        "Sig Expire <se@example.com>",
        &["--faked-system-time", JAN_2020],
        "never",
    );
    let payload_path = home.write("payload", &payload().to_bytes());
    let sig = home.gpg_ok(&[
        "--faked-system-time",
        JUN_2020,
        "--default-sig-expire",
        "1d",
        "--sign",
        "--local-user",
        &fpr,
        "--output",
        "-",
        payload_path.to_str().unwrap(),
    ]);
    let keys = home.keyring(&fpr);
    let err = verify_simple_signing(&keys, &sig, SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::SignatureExpired { .. }), "{err}");
    let manifest = home.write("manifest.json", MANIFEST.as_bytes());
    let sig_path = home.write("sig", &sig);
    home.skopeo_verify(&manifest, &fpr, &sig_path).unwrap_err();
}

#[test]
fn revoked_key_is_refused_by_both() {
    if !peers() {
        return;
    }
    let home = Home::new();
    let fpr = home.gen_key("Revoked <rev@example.com>", &[], "never");
    let sig = sign_with_gpg(&fpr, &payload().to_bytes(), &home.options()).unwrap();
    // gpg wrote a revocation certificate when it made the key; its armour line is defused with ':'.
    let rev = std::fs::read_to_string(
        home.path()
            .join("openpgp-revocs.d")
            .join(format!("{fpr}.rev")),
    )
    .unwrap();
    let rev = rev.replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    );
    let rev_path = home.write("revoke.asc", rev.as_bytes());
    home.gpg_ok(&["--import", rev_path.to_str().unwrap()]);
    let keys = home.keyring(&fpr);
    let err = verify_simple_signing(&keys, &sig, SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::KeyRevoked { .. }), "{err}");
    let manifest = home.write("manifest.json", MANIFEST.as_bytes());
    let sig_path = home.write("sig", &sig);
    home.skopeo_verify(&manifest, &fpr, &sig_path).unwrap_err();
}

#[test]
fn two_signatures_in_one_message_are_refused_by_both() {
    if !peers() {
        return;
    }
    let home = Home::new();
    let a = home.gen_key("Signer A <a@example.com>", &[], "never");
    let b = home.gen_key("Signer B <b@example.com>", &[], "never");
    let payload_path = home.write("payload", &payload().to_bytes());
    let sig = home.gpg_ok(&[
        "--sign",
        "-u",
        &a,
        "-u",
        &b,
        "--output",
        "-",
        payload_path.to_str().unwrap(),
    ]);
    let mut keys = home.keyring(&a);
    keys.extend(home.keyring(&b));
    let err = keys.verify(&sig, SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::SignatureCount(2)), "{err}");
    let manifest = home.write("manifest.json", MANIFEST.as_bytes());
    let sig_path = home.write("sig", &sig);
    let skopeo = home.skopeo_verify(&manifest, &a, &sig_path).unwrap_err();
    assert!(skopeo.contains("signature count"), "{skopeo}");
}

#[test]
fn another_key_is_unknown_and_cleartext_is_refused() {
    if !peers() {
        return;
    }
    let home = Home::new();
    let a = home.gen_key("Key A <ka@example.com>", &[], "never");
    let b = home.gen_key("Key B <kb@example.com>", &[], "never");
    let sig = sign_with_gpg(&a, &payload().to_bytes(), &home.options()).unwrap();
    let err = verify_simple_signing(&home.keyring(&b), &sig, SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::UnknownKey { .. }), "{err}");

    let payload_path = home.write("payload", &payload().to_bytes());
    let clear = home.gpg_ok(&[
        "--clearsign",
        "-u",
        &a,
        "--output",
        "-",
        payload_path.to_str().unwrap(),
    ]);
    let err = home
        .keyring(&a)
        .verify(&clear, SystemTime::now())
        .unwrap_err();
    assert!(err.to_string().contains("cleartext"), "{err}");
    // An armoured (not cleartext) signed message is what gpg --verify also takes.
    let armoured = home.gpg_ok(&[
        "--sign",
        "--armor",
        "-u",
        &a,
        "--output",
        "-",
        payload_path.to_str().unwrap(),
    ]);
    assert_eq!(
        home.keyring(&a)
            .verify(&armoured, SystemTime::now())
            .unwrap()
            .content,
        payload().to_bytes()
    );
}

#[test]
fn a_passphrase_file_unlocks_the_key_and_a_wrong_one_is_gpgs_error() {
    if !peers() {
        return;
    }
    let home = Home::new();
    home.gpg_ok(&[
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "s3cret",
        "--quick-gen-key",
        "Locked <locked@example.com>",
        "rsa2048",
        "sign",
        "never",
    ]);
    let fpr = home.fingerprint("Locked <locked@example.com>");
    // The wrong passphrase first: once the right one worked, gpg-agent would remember it.
    let wrong = home.write("wrong", b"not it\n");
    let err = sign_with_gpg(
        &fpr,
        &payload().to_bytes(),
        &GpgOptions {
            gnupghome: Some(home.path().to_owned()),
            passphrase_file: Some(wrong),
        },
    )
    .unwrap_err();
    match &err {
        Error::Gpg { key, reason } => {
            assert_eq!(key, &fpr);
            assert!(reason.contains("gpg"), "{reason}");
        }
        other => panic!("{other}"),
    }
    let right = home.write("right", b"s3cret\n");
    let sig = sign_with_gpg(
        &fpr,
        &payload().to_bytes(),
        &GpgOptions {
            gnupghome: Some(home.path().to_owned()),
            passphrase_file: Some(right),
        },
    )
    .unwrap();
    let v = verify_simple_signing(&home.keyring(&fpr), &sig, SystemTime::now()).unwrap();
    assert_eq!(v.payload, payload());
}
