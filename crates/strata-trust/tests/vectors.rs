//! The policy decisions containers/image's own tests expect (`signature/policy_eval_sigstore_test.go`,
//! `policy_eval_signedby_test.go`), on the images made by real cosign and gpg in its fixtures
//! (`../shared/vectors/containers-image-signature/`, beside the project): each `dir-img-*` image judged by
//! [`strata_trust::evaluate`] as containers/image's `dirImageMock` presents it — the `dir:` image's
//! manifest and `signature-N` files, with the docker reference the test gives it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Value, json};
use strata_oci::ImageReference;
use strata_policy::{Policy, PolicyTarget};
use strata_trust::gather::{Found, Origin, RawSignature};
use strata_trust::{Subject, evaluate};

fn vectors() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/containers-image-signature");
    if dir.is_dir() {
        return Some(dir);
    }
    // The vectors live beside the project, not in it (shared/vectors): a clone elsewhere has none, and CI
    // cannot install them as it installs a peer, so their absence skips, loudly, even under CI=true.
    eprintln!("SKIP: no signature vectors at {}", dir.display());
    None
}

/// A vector file's bytes; files that git kept as symlinks arrive as their target's relative path.
fn read(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    if bytes.len() < 200
        && bytes.starts_with(b"../")
        && let Ok(target) = std::str::from_utf8(&bytes)
    {
        return read(&path.parent().unwrap().join(target.trim()));
    }
    bytes
}

/// The manifest and signatures of the `dir:` image `name`.
fn dir_image(vectors: &Path, name: &str) -> (Vec<u8>, Vec<Found>) {
    let dir = vectors.join(name);
    let manifest = read(&dir.join("manifest.json"));
    let mut found = Vec::new();
    for n in 1.. {
        let path = dir.join(format!("signature-{n}"));
        if !path.exists() {
            break;
        }
        found.push(Found {
            origin: Origin::Stored {
                source: format!("dir:{}", dir.display()),
                index: n,
            },
            signature: RawSignature::Blob(read(&path)),
        });
    }
    (manifest, found)
}

/// Judges `image` presented with `reference` under one requirement (as the whole default).
fn decide(vectors: &Path, image: &str, reference: &str, requirement: Value) -> Result<(), String> {
    let policy = json!({"default": [requirement]});
    let policy = Policy::from_bytes(policy.to_string().as_bytes(), Path::new("test.json")).unwrap();
    let (manifest, found) = dir_image(vectors, image);
    let subject = Subject {
        target: PolicyTarget::Dir(vectors.join(image)),
        identity: Some(ImageReference::parse_normalized_named(reference).unwrap()),
        manifest: &manifest,
    };
    let verdict = evaluate(&policy, &subject, || Ok(found), SystemTime::now()).unwrap();
    match verdict.refusal() {
        None => Ok(()),
        Some(reason) => Err(reason.to_owned()),
    }
}

fn sigstore(vectors: &Path, identity: &str) -> Value {
    json!({"type": "sigstoreSigned", "keyPath": vectors.join("cosign.pub"), "signedIdentity": {"type": identity}})
}

fn signed_by(vectors: &Path, identity: Value) -> Value {
    json!({"type": "signedBy", "keyType": "GPGKeys", "keyPath": vectors.join("public-key.gpg"), "signedIdentity": identity})
}

const COSIGN_REF: &str = "192.168.64.2:5000/cosign-signed-single-sample";

#[test]
fn sigstore_signed_decides_as_containers_image_expects() {
    let Some(v) = vectors() else { return };
    let repo = sigstore(&v, "matchRepository");
    let cases: [(&str, &str, &Value, bool); 9] = [
        ("dir-img-cosign-valid", COSIGN_REF, &repo, true),
        ("dir-img-unsigned", "testing/manifest:latest", &repo, false),
        // Only simple-signing signatures: none a sigstore requirement looks at.
        ("dir-img-valid", "testing/manifest:latest", &repo, false),
        (
            "dir-img-cosign-other-attachment",
            "testing/manifest:latest",
            &repo,
            false,
        ),
        (
            "dir-img-cosign-valid",
            "testing/manifest:notlatest",
            &repo,
            false,
        ),
        ("dir-img-cosign-valid-2", COSIGN_REF, &repo, true),
        ("dir-img-cosign-mixed", COSIGN_REF, &repo, true),
        (
            "dir-img-cosign-valid-2",
            "this/does-not:match",
            &repo,
            false,
        ),
        ("dir-img-cosign-modified-manifest", COSIGN_REF, &repo, false),
    ];
    for (image, reference, requirement, expect) in cases {
        let got = decide(&v, image, reference, requirement.clone());
        assert_eq!(got.is_ok(), expect, "{image} as {reference}: {got:?}");
    }
    // matchExact: a signature with a matching tag works, another tag does not, and cosign's own
    // (repository-only) signatures never do.
    let exact = sigstore(&v, "matchExact");
    let with_tag = "192.168.64.2:5000/skopeo-signed";
    assert!(
        decide(
            &v,
            "dir-img-cosign-valid-with-tag",
            &format!("{with_tag}:tag"),
            exact.clone()
        )
        .is_ok()
    );
    assert!(
        decide(
            &v,
            "dir-img-cosign-valid-with-tag",
            &format!("{with_tag}:othertag"),
            exact.clone()
        )
        .is_err()
    );
    assert!(decide(&v, "dir-img-cosign-valid", COSIGN_REF, exact).is_err());
}

#[test]
fn a_manifest_digest_mismatch_is_named() {
    let Some(v) = vectors() else { return };
    let why = decide(
        &v,
        "dir-img-cosign-manifest-digest-error",
        COSIGN_REF,
        sigstore(&v, "matchRepository"),
    )
    .unwrap_err();
    assert!(why.contains("signature for digest"), "{why}");
}

#[test]
fn signed_by_decides_as_containers_image_expects() {
    let Some(v) = vectors() else { return };
    let exact = json!({"type": "matchExact"});
    let reference = "testing/manifest:latest";
    assert!(decide(&v, "dir-img-valid", reference, signed_by(&v, exact.clone())).is_ok());
    assert!(
        decide(
            &v,
            "dir-img-valid-2",
            reference,
            signed_by(&v, exact.clone())
        )
        .is_ok()
    );
    assert!(decide(&v, "dir-img-mixed", reference, signed_by(&v, exact.clone())).is_ok());
    for image in [
        "dir-img-unsigned",
        "dir-img-modified-manifest",
        "dir-img-manifest-digest-error",
    ] {
        let got = decide(&v, image, reference, signed_by(&v, exact.clone()));
        assert!(got.is_err(), "{image}: {got:?}");
    }
    // The valid image under another tag: the identity does not match.
    let got = decide(
        &v,
        "dir-img-valid",
        "testing/manifest:notlatest",
        signed_by(&v, exact),
    );
    assert!(got.unwrap_err().contains("is not accepted"));
    // Cosign signatures are not simple signing: a signedBy requirement sees none.
    let why = decide(
        &v,
        "dir-img-cosign-valid",
        COSIGN_REF,
        signed_by(&v, json!({"type": "matchRepository"})),
    )
    .unwrap_err();
    assert!(why.contains("no signature exists"), "{why}");
}

#[test]
fn reject_and_accept_anything_never_look_at_signatures() {
    let Some(v) = vectors() else { return };
    for (requirement, expect) in [
        (json!({"type": "reject"}), false),
        (json!({"type": "insecureAcceptAnything"}), true),
    ] {
        let policy = Policy::from_bytes(
            json!({"default": [requirement]}).to_string().as_bytes(),
            Path::new("test.json"),
        )
        .unwrap();
        let (manifest, _) = dir_image(&v, "dir-img-valid");
        let subject = Subject {
            target: PolicyTarget::Dir(v.join("dir-img-valid")),
            identity: None,
            manifest: &manifest,
        };
        let verdict = evaluate(
            &policy,
            &subject,
            || panic!("signatures fetched for a requirement that needs none"),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(verdict.accepted, expect);
    }
}
