//! `strata sign` against the real peers: signatures strata makes are written where podman and skopeo look
//! and accepted by them.
//!
//! - GPG (simple signing) into a `file://` lookaside of a loopback `docker-registry`: `skopeo
//!   standalone-verify` verifies it; `podman pull --signature-policy` and `skopeo copy --policy` with a
//!   `signedBy` policy for the signing key accept the image, and reject it for another key. A second
//!   signature is added as `signature-2`, the first kept.
//! - `dir:`: `signature-1`, accepted and copied as `signature-1` by `skopeo copy --policy dir:… dir:…`.
//! - Sigstore with an encrypted cosign key (made with openssl and the independent writer
//!   `crates/strata-signature/tests/support/cosign_key.py`) pushed as a `sha256-<hex>.sig` attachment: the
//!   payload verifies with `openssl dgst -sha256 -verify`, strata's gather finds it and
//!   `strata_signature::verify_sigstore` accepts it; Debian's skopeo (which reads attachments when
//!   `use-sigstore-attachments` is on) copies it to `dir:` as a `signature-N` blob equal to what strata reads.
//! - Multi-platform: the instance for the platform, or with `--all` every instance and the index.
//! - Refusals: an http lookaside for writing, an `oci:` destination, a wrong passphrase, an unknown
//!   fingerprint: one clear line, exit 2, nothing written.

// Test code: helpers outside #[test] functions panic on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use strata_oci::Digest;
use strata_signature::{PublicKey, Signature, verify_sigstore};
use strata_source::{Repository, SourceOptions};
use strata_tests::registry::{Auth, Env, Registry};
use strata_tests::signing::{
    Gpg, accept_all_policy, cosign_key, files_under, podman_decides, skopeo_decides, write_policy,
    write_registries_d, write_registries_d_yaml,
};
use strata_tests::{assert_clean_error, parse_json, require_tool, run, sha256_digest, show_output};
use strata_trust::gather::{RawSignature, attachments};

const TLS_OFF: &str = "--tls-verify=false";

fn peers(extra: &[&str]) -> bool {
    ["skopeo", "docker-registry", "gpg"]
        .iter()
        .chain(extra)
        .all(|t| require_tool(t))
}

/// The test's world: a hermetic environment with a GnuPG home (`GNUPGHOME` set for every command), a
/// registry, and a scratch directory.
struct World {
    env: Env,
    gpg: Gpg,
    registry: Registry,
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let mut env = Env::new();
        let gpg = Gpg::new(&tmp.path().join("gnupg"));
        env.set("GNUPGHOME", gpg.home().display().to_string());
        World {
            env,
            gpg,
            registry: Registry::start(Auth::Open),
            tmp,
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A new key; its fingerprint.
    fn key(&self, name: &str) -> String {
        self.gpg.gen_key(
            &format!("{name} <{name}@example.com>"),
            "rsa2048",
            "sign",
            "never",
            None,
        )
    }

    /// Pushes fixture `fixture` as `rest` (`REPO:TAG`; `--all` for an index); its `docker://` name.
    fn push(&self, fixture: &str, rest: &str) -> String {
        let layout = self.path().join(format!("layout-{fixture}"));
        if !layout.exists() {
            strata_fixtures::fixture(fixture)
                .unwrap()
                .write_layout(&layout, "v1")
                .unwrap();
        }
        self.registry
            .push(&format!("oci:{}:v1", layout.display()), rest, &["--all"]);
        self.registry.image(rest)
    }

    /// The raw manifest `image` names, as skopeo fetches it.
    fn raw_manifest(&self, image: &str) -> Vec<u8> {
        self.env.skopeo_ok(&["inspect", "--raw", TLS_OFF, image])
    }

    fn strata(&self, args: &[&str]) -> std::process::Output {
        self.env.strata(args)
    }

    fn strata_ok(&self, args: &[&str]) -> Vec<u8> {
        self.env.strata_ok(args)
    }

    /// A `signedBy` policy for `fpr`'s exported key, with `identity` as `signedIdentity` when given.
    fn signed_by(&self, fpr: &str, name: &str, identity: Option<Value>) -> PathBuf {
        let keyring = self
            .gpg
            .export(fpr, &self.path().join(format!("{name}.gpg")));
        let mut requirement = json!({"type": "signedBy", "keyType": "GPGKeys", "keyPath": keyring});
        if let Some(identity) = identity {
            requirement["signedIdentity"] = identity;
        }
        write_policy(
            self.path(),
            name,
            &json!({
                "default": [{"type": "reject"}],
                "transports": {
                    "docker": {"": [requirement.clone()]},
                    "dir": {"": [requirement]},
                },
            }),
        )
    }
}

/// `<lookaside>/<repo>@sha256=<hex>/signature-<n>`.
fn lookaside_file(lookaside: &Path, repo: &str, digest: &str, n: usize) -> PathBuf {
    lookaside.join(format!(
        "{repo}@{}/signature-{n}",
        digest.replacen(':', "=", 1)
    ))
}

#[test]
fn gpg_signature_in_the_lookaside_is_accepted_by_skopeo_and_podman() {
    if !peers(&["podman"]) {
        return;
    }
    let w = World::new();
    let fpr = w.key("signer");
    let other = w.key("other");
    let lookaside = w.path().join("lookaside");
    write_registries_d(&w.env, &w.registry.host, &lookaside);
    let image = w.push("minimal", "strata/signed:v1");
    let manifest = w.raw_manifest(&image);
    let digest = sha256_digest(&manifest);

    let out = parse_json(
        &w.strata_ok(&["sign", TLS_OFF, "--json", "--sign-by", &fpr, &image]),
        "sign --json",
    );
    let sig1 = lookaside_file(&lookaside, "strata/signed", &digest, 1);
    assert_eq!(out[0]["manifest"], digest.as_str(), "{out}");
    assert_eq!(out[0]["type"], "simple-signing", "{out}");
    assert_eq!(out[0]["path"], sig1.display().to_string(), "{out}");
    let identity = format!("{}/strata/signed:v1", w.registry.host);
    assert_eq!(out[0]["identity"], identity.as_str(), "{out}");
    assert!(sig1.is_file(), "{}", sig1.display());

    // skopeo standalone-verify: manifest, reference, fingerprint, signature file.
    let manifest_file = w.path().join("manifest.json");
    fs::write(&manifest_file, &manifest).unwrap();
    let verified = w.env.skopeo_ok(&[
        "standalone-verify",
        manifest_file.to_str().unwrap(),
        &identity,
        &fpr,
        sig1.to_str().unwrap(),
    ]);
    let verified = String::from_utf8_lossy(&verified);
    assert!(verified.contains(&digest), "{verified}");

    // podman and skopeo accept it under the signer's key and reject it under another's.
    let good = w.signed_by(&fpr, "good", None);
    let bad = w.signed_by(&other, "bad", None);
    assert_eq!(podman_decides(&w.env, &good, &image, &[]), Ok(()));
    assert_eq!(skopeo_decides(&w.env, &good, &image, &[]), Ok(()));
    for refused in [
        podman_decides(&w.env, &bad, &image, &[]),
        skopeo_decides(&w.env, &bad, &image, &[]),
    ] {
        let e = refused.unwrap_err();
        assert!(e.contains("Source image rejected"), "{e}");
    }

    // A second signature (by the other key) is added beside the first, which is kept; then the other key's
    // policy accepts the image too.
    let before = fs::read(&sig1).unwrap();
    let text = w.strata_ok(&["sign", TLS_OFF, "--sign-by", &other, &image]);
    let sig2 = lookaside_file(&lookaside, "strata/signed", &digest, 2);
    assert!(
        String::from_utf8_lossy(&text).contains(&sig2.display().to_string()),
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert_eq!(fs::read(&sig1).unwrap(), before);
    assert_eq!(podman_decides(&w.env, &bad, &image, &[]), Ok(()));
    assert_eq!(skopeo_decides(&w.env, &good, &image, &[]), Ok(()));
}

#[test]
fn dir_signature_is_accepted_and_copied_by_skopeo() {
    if !peers(&[]) {
        return;
    }
    let w = World::new();
    let fpr = w.key("signer");
    let other = w.key("other");
    let accept = accept_all_policy(w.path());
    let layout = w.path().join("layout");
    strata_fixtures::fixture("minimal")
        .unwrap()
        .write_layout(&layout, "v1")
        .unwrap();
    let dir = w.path().join("image");
    w.env.skopeo_ok(&[
        "--policy",
        accept.to_str().unwrap(),
        "copy",
        "--quiet",
        &format!("oci:{}:v1", layout.display()),
        &format!("dir:{}", dir.display()),
    ]);
    let name = format!("dir:{}", dir.display());

    // dir: has no docker reference: the identity must be given.
    let out = w.strata(&["sign", "--sign-by", &fpr, &name]);
    assert_clean_error(&out, "dir: without --sign-identity");
    assert!(!dir.join("signature-1").exists());

    let identity = "example.com/strata/dir:v1";
    w.strata_ok(&[
        "sign",
        "--sign-by",
        &fpr,
        "--sign-identity",
        identity,
        &name,
    ]);
    assert!(dir.join("signature-1").is_file());

    let exact = json!({"type": "exactReference", "dockerReference": identity});
    let good = w.signed_by(&fpr, "good", Some(exact.clone()));
    let bad = w.signed_by(&other, "bad", Some(exact));
    let out = w.path().join("copied");
    w.env.skopeo_ok(&[
        "--policy",
        good.to_str().unwrap(),
        "copy",
        "--quiet",
        &name,
        &format!("dir:{}", out.display()),
    ]);
    assert_eq!(
        fs::read(out.join("signature-1")).unwrap(),
        fs::read(dir.join("signature-1")).unwrap()
    );
    let e = skopeo_decides(&w.env, &bad, &name, &[]).unwrap_err();
    assert!(e.contains("Source image rejected"), "{e}");
}

/// The cosign attachment's manifest and config, as skopeo reads them.
fn attachment_manifest_and_config(w: &World, repo: &str, digest: &str) -> (Value, Value) {
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    let image = w.registry.image(&format!("{repo}:{tag}"));
    let manifest = parse_json(&w.raw_manifest(&image), "attachment manifest");
    let config = parse_json(
        &w.env
            .skopeo_ok(&["inspect", "--raw", "--config", TLS_OFF, &image]),
        "attachment config",
    );
    (manifest, config)
}

#[test]
fn sigstore_attachment_verifies_with_openssl_and_is_copied_by_skopeo() {
    if !peers(&["openssl", "python3"]) {
        return;
    }
    let w = World::new();
    let (key, public) = cosign_key(w.path(), "cosign", "pass phrase");
    let passphrase = w.path().join("passphrase");
    fs::write(&passphrase, "pass phrase\n").unwrap();
    write_registries_d_yaml(
        &w.env,
        &format!(
            "docker:\n  {}:\n    lookaside: file://{}\n    use-sigstore-attachments: true\n",
            w.registry.host,
            w.path().join("lookaside").display()
        ),
    );
    let image = w.push("minimal", "strata/cosign:v1");
    let manifest = w.raw_manifest(&image);
    let digest = sha256_digest(&manifest);
    let sign = [
        "sign",
        TLS_OFF,
        "--json",
        "--sign-by-sigstore-private-key",
        key.to_str().unwrap(),
        "--sign-passphrase-file",
        passphrase.to_str().unwrap(),
        &image,
    ];
    let out = parse_json(&w.strata_ok(&sign), "sign --json");
    assert_eq!(out[0]["type"], "sigstore", "{out}");
    assert_eq!(out[0]["layer"], 0, "{out}");

    // strata's gather finds it; strata verifies it with the public key.
    let mut options = SourceOptions::default();
    options.tls_verify = Some(false);
    let repo = Repository::open(&image, &options).unwrap();
    let manifest_digest = Digest::parse(&digest).unwrap();
    let found = attachments(&repo, &manifest_digest).unwrap();
    assert_eq!(found.len(), 1);
    let RawSignature::Attachment {
        media_type,
        payload,
        annotations,
    } = &found[0].signature
    else {
        panic!("not an attachment: {:?}", found[0]);
    };
    let public_key = PublicKey::from_pem(&fs::read(&public).unwrap()).unwrap();
    let verified = verify_sigstore(&[public_key], media_type, payload, annotations).unwrap();
    assert_eq!(verified.payload.manifest_digest, manifest_digest);
    assert_eq!(
        verified.payload.docker_reference,
        format!("{}/strata/cosign:v1", w.registry.host)
    );
    assert!(
        verified
            .payload
            .creator
            .as_deref()
            .is_some_and(|c| c.starts_with("strata ")),
        "{verified:?}"
    );

    // `strata verify` finds the attachment through registries.d and accepts it under a sigstoreSigned
    // policy with the public key, and not with another key.
    let sigstore_policy = |key: &Path, name: &str| {
        write_policy(
            w.path(),
            name,
            &serde_json::json!({"default": [{"type": "sigstoreSigned", "keyPath": key}]}),
        )
    };
    let verify = |policy: &Path| {
        w.env.strata(&[
            "verify",
            TLS_OFF,
            "--policy",
            policy.to_str().unwrap(),
            &image,
        ])
    };
    let accepted = verify(&sigstore_policy(&public, "sigstore-right"));
    assert!(accepted.status.success(), "{}", show_output(&accepted));
    assert!(String::from_utf8_lossy(&accepted.stdout).contains("sigstore signature, attachment"));
    let (_, other_public) = cosign_key(w.path(), "cosign-other", "other");
    let rejected = verify(&sigstore_policy(&other_public, "sigstore-other"));
    assert_eq!(
        rejected.status.code(),
        Some(1),
        "{}",
        show_output(&rejected)
    );

    // openssl verifies the payload against the annotation's DER signature.
    let payload_file = w.path().join("payload");
    let der_file = w.path().join("sig.der");
    fs::write(&payload_file, payload).unwrap();
    fs::write(
        &der_file,
        STANDARD
            .decode(&annotations["dev.cosignproject.cosign/signature"])
            .unwrap(),
    )
    .unwrap();
    let checked = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(&der_file)
        .arg(&payload_file));
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("Verified OK"),
        "{}",
        show_output(&checked)
    );

    // Another key's signature is appended as a second layer; the config lists both payloads.
    let (key2, _) = cosign_key(w.path(), "cosign2", "pass phrase");
    let mut sign2 = sign;
    sign2[4] = key2.to_str().unwrap();
    let second = parse_json(&w.strata_ok(&sign2), "sign with a second key");
    assert_eq!(second[0]["layer"], 1, "{second}");
    let (oci, config) = attachment_manifest_and_config(&w, "strata/cosign", &digest);
    let layers = oci["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{oci}");
    assert_eq!(
        oci["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    for layer in layers {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    }
    let digests: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let diff_ids: Vec<&Value> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(digests, diff_ids, "{config}");
    assert_eq!(config["rootfs"]["type"], "layers");

    // skopeo (use-sigstore-attachments) copies both to dir: as signature-N blobs, byte for byte what strata
    // reads.
    let found = attachments(&repo, &manifest_digest).unwrap();
    assert_eq!(found.len(), 2);
    let accept = accept_all_policy(w.path());
    let out = w.path().join("copied");
    w.env.skopeo_ok(&[
        "--policy",
        accept.to_str().unwrap(),
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &image,
        &format!("dir:{}", out.display()),
    ]);
    for (i, f) in found.iter().enumerate() {
        let RawSignature::Attachment {
            media_type,
            payload,
            annotations,
        } = &f.signature
        else {
            panic!("not an attachment");
        };
        let blob = Signature::Sigstore {
            mime_type: media_type.clone(),
            payload: payload.clone(),
            annotations: annotations.clone(),
        }
        .to_blob();
        let copied = fs::read(out.join(format!("signature-{}", i + 1))).unwrap();
        assert_eq!(
            copied,
            blob,
            "signature-{}:\n{}\n{}",
            i + 1,
            String::from_utf8_lossy(&copied),
            String::from_utf8_lossy(&blob)
        );
    }
}

#[test]
fn multi_platform_images_sign_the_instance_or_everything() {
    if !peers(&["podman"]) {
        return;
    }
    let w = World::new();
    let fpr = w.key("signer");
    let lookaside = w.path().join("lookaside");
    write_registries_d(&w.env, &w.registry.host, &lookaside);
    let image = w.push("multiarch", "strata/multi:v1");
    let index = w.raw_manifest(&image);
    let index_digest = sha256_digest(&index);
    let instances: Vec<String> = parse_json(&index, "index")["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(instances.len(), 2);
    let policy = w.signed_by(&fpr, "good", None);

    // Without --all: the arm64 instance only (as `skopeo copy --sign-by` without --all signs the one
    // manifest it copies); podman accepts arm64 and still refuses amd64.
    let out = parse_json(
        &w.strata_ok(&[
            "sign",
            TLS_OFF,
            "--json",
            "--override-arch",
            "arm64",
            "--sign-by",
            &fpr,
            &image,
        ]),
        "sign",
    );
    assert_eq!(out.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out[0]["manifest"], instances[1].as_str(), "{out}");
    assert_eq!(out[0]["instance"], true, "{out}");
    assert_eq!(
        podman_decides(&w.env, &policy, &image, &["--arch", "arm64"]),
        Ok(())
    );
    let e = podman_decides(&w.env, &policy, &image, &["--arch", "amd64"]).unwrap_err();
    assert!(e.contains("Source image rejected"), "{e}");

    // --all: every instance and the index, as `skopeo copy --all --sign-by`.
    let out = parse_json(
        &w.strata_ok(&[
            "sign",
            TLS_OFF,
            "--json",
            "--all",
            "--sign-by",
            &fpr,
            &image,
        ]),
        "sign --all",
    );
    let signed: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["manifest"].as_str().unwrap())
        .collect();
    assert_eq!(
        signed,
        [
            instances[0].as_str(),
            instances[1].as_str(),
            index_digest.as_str()
        ]
    );
    assert!(lookaside_file(&lookaside, "strata/multi", &instances[1], 2).is_file());
    assert!(lookaside_file(&lookaside, "strata/multi", &index_digest, 1).is_file());
    assert_eq!(
        podman_decides(&w.env, &policy, &image, &["--arch", "amd64"]),
        Ok(())
    );

    // --all with a conversion (the source's signatures left behind: they sign other manifests): every
    // converted instance and the new index are signed, as `skopeo copy --all --dest-compress-format zstd
    // --sign-by` signs what it writes; podman accepts both platforms.
    let converted = w.registry.image("strata/multi-zstd:v1");
    w.strata_ok(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--all",
        "--dest-compress-format",
        "zstd",
        "--remove-signatures",
        "--sign-by",
        &fpr,
        &image,
        &converted,
    ]);
    let new_index = w.raw_manifest(&converted);
    let new_instances: Vec<String> = parse_json(&new_index, "converted index")["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new_instances.len(), 2);
    for digest in new_instances.iter().chain([&sha256_digest(&new_index)]) {
        assert!(!instances.contains(digest), "{digest} was not converted");
        assert!(
            lookaside_file(&lookaside, "strata/multi-zstd", digest, 1).is_file(),
            "no signature of {digest}"
        );
    }
    for arch in ["amd64", "arm64"] {
        assert_eq!(
            podman_decides(&w.env, &policy, &converted, &["--arch", arch]),
            Ok(()),
            "{arch}"
        );
    }
}

#[test]
fn refusals_are_one_clear_line_and_write_nothing() {
    if !peers(&["openssl", "python3"]) {
        return;
    }
    let w = World::new();
    let fpr = w.key("signer");
    let image = w.push("minimal", "strata/refused:v1");
    let digest = sha256_digest(&w.raw_manifest(&image));
    let lookaside = w.path().join("lookaside");

    // An http lookaside for writing.
    write_registries_d_yaml(
        &w.env,
        &format!(
            "docker:\n  {}:\n    lookaside: http://127.0.0.1:9/sigs\n",
            w.registry.host
        ),
    );
    let out = w.strata(&["sign", TLS_OFF, "--sign-by", &fpr, &image]);
    assert_clean_error(&out, "http lookaside");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lookaside-staging"), "{stderr}");

    // A file:// lookaside from here on.
    write_registries_d(&w.env, &w.registry.host, &lookaside);

    // An unknown fingerprint: gpg's reason, nothing written.
    let unknown = "0123456789ABCDEF0123456789ABCDEF01234567";
    let out = w.strata(&["sign", TLS_OFF, "--sign-by", unknown, &image]);
    assert_clean_error(&out, "unknown fingerprint");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(unknown) && stderr.contains("No secret key"),
        "{stderr}"
    );
    assert_eq!(files_under(&lookaside), Vec::<PathBuf>::new());

    // An oci: destination: containers/image's message, the layout untouched.
    let layout = w.path().join("layout-minimal");
    let before = files_under(&layout);
    let index_before = fs::read(layout.join("index.json")).unwrap();
    let out = w.strata(&[
        "sign",
        "--sign-by",
        &fpr,
        &format!("oci:{}:v1", layout.display()),
    ]);
    assert_clean_error(&out, "oci: destination");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Pushing signatures for OCI images is not supported"),
        "{stderr}"
    );
    assert_eq!(files_under(&layout), before);
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before);

    // A wrong passphrase for a cosign key: no attachment pushed.
    write_registries_d_yaml(
        &w.env,
        &format!(
            "docker:\n  {}:\n    lookaside: file://{}\n    use-sigstore-attachments: true\n",
            w.registry.host,
            lookaside.display()
        ),
    );
    let (key, _) = cosign_key(w.path(), "cosign", "right");
    let wrong = w.path().join("wrong");
    fs::write(&wrong, "wrong\n").unwrap();
    let out = w.strata(&[
        "sign",
        TLS_OFF,
        "--sign-by-sigstore-private-key",
        key.to_str().unwrap(),
        "--sign-passphrase-file",
        wrong.to_str().unwrap(),
        &image,
    ]);
    assert_clean_error(&out, "wrong passphrase");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    let tags = parse_json(
        &w.env
            .skopeo_ok(&["list-tags", TLS_OFF, &w.registry.image("strata/refused")]),
        "list-tags",
    );
    assert!(
        !tags["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == tag.as_str()),
        "{tags}"
    );

    // Sigstore without use-sigstore-attachments: refused as containers/image refuses it.
    write_registries_d(&w.env, &w.registry.host, &lookaside);
    let right = w.path().join("right");
    fs::write(&right, "right\n").unwrap();
    let out = w.strata(&[
        "sign",
        TLS_OFF,
        "--sign-by-sigstore-private-key",
        key.to_str().unwrap(),
        "--sign-passphrase-file",
        right.to_str().unwrap(),
        &image,
    ]);
    assert_clean_error(&out, "attachments disabled");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("use-sigstore-attachments"), "{stderr}");
    assert_eq!(files_under(&lookaside), Vec::<PathBuf>::new());
}

#[test]
fn signatures_go_to_lookaside_staging_when_it_is_set() {
    if !peers(&[]) {
        return;
    }
    let w = World::new();
    let fpr = w.key("signer");
    let staging = w.path().join("staging");
    // Read over http, written to the staging directory (published to the server by other means).
    let registries_d = w.path().join("registries.d");
    fs::create_dir_all(&registries_d).unwrap();
    fs::write(
        registries_d.join("staging.yaml"),
        format!(
            "docker:\n  {}/strata:\n    lookaside: http://127.0.0.1:9/sigs\n    lookaside-staging: file://{}\n",
            w.registry.host,
            staging.display()
        ),
    )
    .unwrap();
    let image = w.push("minimal", "strata/staged:v1");
    let digest = sha256_digest(&w.raw_manifest(&image));
    w.strata_ok(&[
        "sign",
        TLS_OFF,
        "--registries.d",
        registries_d.to_str().unwrap(),
        "--sign-by",
        &fpr,
        &image,
    ]);
    assert_eq!(
        files_under(&staging),
        [lookaside_file(Path::new(""), "strata/staged", &digest, 1)]
    );
}

#[test]
fn a_hostile_attachment_is_refused_not_extended() {
    if !peers(&["openssl", "python3"]) {
        return;
    }
    let w = World::new();
    write_registries_d_yaml(
        &w.env,
        &format!(
            "docker:\n  {}:\n    lookaside: file://{}\n    use-sigstore-attachments: true\n",
            w.registry.host,
            w.path().join("lookaside").display()
        ),
    );
    let image = w.push("minimal", "strata/hostile:v1");
    let digest = sha256_digest(&w.raw_manifest(&image));
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    let (key, _) = cosign_key(w.path(), "cosign", "p");
    let passphrase = w.path().join("passphrase");
    fs::write(&passphrase, "p\n").unwrap();
    let sign = [
        "sign",
        TLS_OFF,
        "--sign-by-sigstore-private-key",
        key.to_str().unwrap(),
        "--sign-passphrase-file",
        passphrase.to_str().unwrap(),
        image.as_str(),
    ];

    // Someone pushed a `.sig` with 1,000 layers: strata adds no 1,001st.
    let mut options = SourceOptions::default();
    options.tls_verify = Some(false);
    let repo = Repository::open(&image, &options).unwrap();
    let payload = b"{}".to_vec();
    let payload_digest = Digest::sha256(&payload);
    repo.push_blob(&payload_digest, &payload).unwrap();
    let layer = json!({
        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "digest": payload_digest.to_string(),
        "size": payload.len(),
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": payload_digest.to_string(), "size": payload.len()},
        "layers": vec![layer; 1000],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let pushed = repo
        .push_manifest(
            Some(&tag),
            "application/vnd.oci.image.manifest.v1+json",
            &bytes,
        )
        .unwrap();
    let out = w.strata(&sign);
    assert_clean_error(&out, "1,000-layer attachment");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("128"), "{stderr}");
    assert_eq!(repo.manifest(&tag).unwrap().digest, pushed.digest);

    // A `.sig` that is not an OCI image manifest (a v2s2 one, as `COSIGN_DOCKER_MEDIA_TYPES=1` writes).
    let v2s2 = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": payload_digest.to_string(), "size": payload.len()},
        "layers": [],
    });
    let bytes = serde_json::to_vec(&v2s2).unwrap();
    let pushed = repo
        .push_manifest(
            Some(&tag),
            "application/vnd.docker.distribution.manifest.v2+json",
            &bytes,
        )
        .unwrap();
    let out = w.strata(&sign);
    assert_clean_error(&out, "v2s2 attachment");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("must be an OCI image manifest"), "{stderr}");
    assert_eq!(repo.manifest(&tag).unwrap().digest, pushed.digest);
}
