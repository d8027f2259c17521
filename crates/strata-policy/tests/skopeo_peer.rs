//! strata's policy reading and scope lookup against the real peer: for each policy file,
//! `skopeo --policy F copy dir:SRC dir:DST` must accept, reject, or fail to load the policy exactly where strata
//! does. SRC is an unsigned one-layer image that the test writes as an OCI layout and copies to `dir:` with
//! skopeo, so every signature requirement rejects it: the decision is settled by parsing and lookup alone.
//!
//! Debian 12's skopeo 1.9.3 carries containers/image 5.23, which does not know the `sigstoreSigned` keys added
//! later (`keyPaths`, `keyDatas`, `fulcio`, `pki`, `rekorPublicKey*`): it refuses them as unknown keys, while
//! strata follows containers/image HEAD and accepts them. Those cases are listed with their known difference.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::fs;
use std::path::Path;
use std::process::Command;

use strata_policy::{Policy, PolicyTarget, Requirement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected,
    BadPolicy,
}

fn have_skopeo() -> bool {
    let found = Command::new("skopeo").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "required peer skopeo missing under CI=true (tools/test.sh installs it)"
        );
        eprintln!("SKIP: skopeo is not on PATH");
    }
    found
}

/// Writes a one-layer OCI layout at `dir` (tag `v1`).
fn write_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = strata_oci::Digest::sha256(bytes).hex().to_owned();
        fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello", &b"hi\n"[..]).unwrap();
    let layer = tar.into_inner().unwrap();
    let (layer_digest, layer_size) = put(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let (config_digest, config_size) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{layer_size}}}]}}"#
    );
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#
        ),
    )
    .unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn skopeo_outcome(policy: &Path, src: &Path, dst: &Path) -> (Outcome, String) {
    let _ = fs::remove_dir_all(dst);
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(policy)
        .arg("copy")
        .arg(format!("dir:{}", src.display()))
        .arg(format!("dir:{}", dst.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let outcome = if out.status.success() {
        Outcome::Accepted
    } else if stderr.contains("Error loading trust policy") || stderr.contains("invalid policy") {
        Outcome::BadPolicy
    } else if stderr.contains("rejected") || stderr.contains("signature") {
        Outcome::Rejected
    } else {
        panic!("skopeo failed in an unexpected way: {stderr}")
    };
    (outcome, stderr)
}

/// strata's decision for the unsigned `dir:` image at `src`: parse, look up, then every requirement must allow
/// it; with no signatures only `insecureAcceptAnything` does.
fn strata_outcome(policy: &Path, src: &Path) -> (Outcome, String) {
    let p = match Policy::from_file(policy) {
        Ok(p) => p,
        Err(e) => return (Outcome::BadPolicy, e.to_string()),
    };
    let target = PolicyTarget::Dir(strata_policy::resolve_path(src).unwrap());
    let m = p.requirements_for(&target).unwrap();
    let all_allow = m
        .requirements
        .iter()
        .all(|r| matches!(r, Requirement::InsecureAcceptAnything));
    let why = format!("scope {:?} {:?}", m.transport, m.scope);
    (
        if all_allow {
            Outcome::Accepted
        } else {
            Outcome::Rejected
        },
        why,
    )
}

#[test]
fn policy_decisions_match_skopeo() {
    if !have_skopeo() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = strata_policy::resolve_path(tmp.path()).unwrap();
    let layout = root.join("layout");
    write_layout(&layout);
    let images = root.join("images");
    fs::create_dir(&images).unwrap();
    let src = images.join("src");
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("dir:{}", src.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dst = root.join("dst");
    let key = root.join("key.gpg");
    fs::write(&key, b"not really a key").unwrap();

    let s = src.display().to_string();
    let parent = images.display().to_string();
    let root_s = root.display().to_string();
    let k = key.display().to_string();
    let acc = r#"[{"type":"insecureAcceptAnything"}]"#;
    let rej = r#"[{"type":"reject"}]"#;
    let signed_by = format!(r#"[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{k}"}}]"#);
    use Outcome::*;
    // (name, policy text, expected outcome for both; Some(skopeo's) where Debian's 5.23 differs from HEAD)
    let cases: Vec<(&str, String, Outcome, Option<Outcome>)> = vec![
        ("accept all", format!(r#"{{"default":{acc}}}"#), Accepted, None),
        ("reject all", format!(r#"{{"default":{rej}}}"#), Rejected, None),
        ("unknown top-level key", format!(r#"{{"default":{acc},"extra":1}}"#), BadPolicy, None),
        ("duplicate key", format!(r#"{{"default":{acc},"default":{acc}}}"#), BadPolicy, None),
        ("empty default list", r#"{"default":[]}"#.into(), BadPolicy, None),
        ("missing default", format!(r#"{{"transports":{{"dir":{{"":{acc}}}}}}}"#), BadPolicy, None),
        ("null transports", format!(r#"{{"default":{acc},"transports":null}}"#), BadPolicy, None),
        ("trailing data", format!(r#"{{"default":{acc}}} {{}}"#), BadPolicy, None),
        ("relative dir scope", format!(r#"{{"default":{acc},"transports":{{"dir":{{"relative/x":{rej}}}}}}}"#), BadPolicy, None),
        ("root dir scope", format!(r#"{{"default":{acc},"transports":{{"dir":{{"/":{rej}}}}}}}"#), BadPolicy, None),
        ("unclean dir scope", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{parent}/":{rej}}}}}}}"#), BadPolicy, None),
        ("dotdot dir scope", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{parent}/../images":{rej}}}}}}}"#), BadPolicy, None),
        ("docker-archive scope", format!(r#"{{"default":{acc},"transports":{{"docker-archive":{{"/x":{rej}}}}}}}"#), BadPolicy, None),
        ("duplicate scope", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{s}":{rej},"{s}":{rej}}}}}}}"#), BadPolicy, None),
        ("empty scope list", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{s}":[]}}}}}}"#), BadPolicy, None),
        ("exact dir scope rejects", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{s}":{rej}}}}}}}"#), Rejected, None),
        ("parent dir scope rejects", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{parent}":{rej}}}}}}}"#), Rejected, None),
        ("grandparent dir scope rejects", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{root_s}":{rej}}}}}}}"#), Rejected, None),
        ("transport default rejects", format!(r#"{{"default":{acc},"transports":{{"dir":{{"":{rej}}}}}}}"#), Rejected, None),
        ("most specific wins (accept)", format!(r#"{{"default":{rej},"transports":{{"dir":{{"{s}":{acc},"{parent}":{rej},"":{rej}}}}}}}"#), Accepted, None),
        ("most specific wins (reject)", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{s}":{rej},"{parent}":{acc},"":{acc}}}}}}}"#), Rejected, None),
        ("parent beats transport default", format!(r#"{{"default":{rej},"transports":{{"dir":{{"{parent}":{acc},"":{rej}}}}}}}"#), Accepted, None),
        ("sibling scope does not match", format!(r#"{{"default":{acc},"transports":{{"dir":{{"{parent}x":{rej},"{s}x":{rej}}}}}}}"#), Accepted, None),
        ("other transport's scopes ignored", format!(r#"{{"default":{acc},"transports":{{"oci":{{"{s}":{rej}}},"docker":{{"":{rej}}}}}}}"#), Accepted, None),
        ("unknown transport accepted", format!(r#"{{"default":{acc},"transports":{{"nonesuch":{{"any thing":{rej}}}}}}}"#), Accepted, None),
        ("docker pseudo-wildcard parses", format!(r#"{{"default":{acc},"transports":{{"docker":{{"foo*.example.com":{rej}}}}}}}"#), Accepted, None),
        ("signedBy, unsigned image", format!(r#"{{"default":{signed_by}}}"#), Rejected, None),
        ("signedBy keyPaths", format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPaths":["{k}"]}}]}}"#), Rejected, None),
        ("signedBy X509Certificates parses", format!(r#"{{"default":[{{"type":"signedBy","keyType":"X509Certificates","keyPath":"{k}"}}]}}"#), Rejected, None),
        ("signedBy keyType missing", format!(r#"{{"default":[{{"type":"signedBy","keyPath":"{k}"}}]}}"#), BadPolicy, None),
        ("signedBy keyType invalid", format!(r#"{{"default":[{{"type":"signedBy","keyType":"PGP","keyPath":"{k}"}}]}}"#), BadPolicy, None),
        ("signedBy keyPath and keyData", format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{k}","keyData":"YWJj"}}]}}"#), BadPolicy, None),
        ("signedBy no key", r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#.into(), BadPolicy, None),
        ("signedBy bad base64", r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyData":"!!"}]}"#.into(), BadPolicy, None),
        ("signedBy unknown key", format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{k}","x":1}}]}}"#), BadPolicy, None),
        ("signedIdentity null", format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{k}","signedIdentity":null}}]}}"#), BadPolicy, None),
        ("exactReference name-only", format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{k}","signedIdentity":{{"type":"exactReference","dockerReference":"busybox"}}}}]}}"#), BadPolicy, None),
        ("exactReference tagged", format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{k}","signedIdentity":{{"type":"exactReference","dockerReference":"busybox:1"}}}}]}}"#), Rejected, None),
        ("remapIdentity bad prefix", format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{k}","signedIdentity":{{"type":"remapIdentity","prefix":"a_b","signedPrefix":"example.com"}}}}]}}"#), BadPolicy, None),
        ("remapIdentity ok", format!(r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{k}","signedIdentity":{{"type":"remapIdentity","prefix":"mirror.example","signedPrefix":"example.com/ns"}}}}]}}"#), Rejected, None),
        ("unknown requirement type", r#"{"default":[{"type":"acceptEverything"}]}"#.into(), BadPolicy, None),
        ("requirement type case", r#"{"default":[{"type":"Reject"}]}"#.into(), BadPolicy, None),
        ("signedBaseLayer", r#"{"default":[{"type":"signedBaseLayer","baseLayerIdentity":{"type":"matchRepository"}}]}"#.into(), Rejected, None),
        ("sigstoreSigned keyPath", format!(r#"{{"default":[{{"type":"sigstoreSigned","keyPath":"{k}"}}]}}"#), Rejected, None),
        ("sigstoreSigned no key", r#"{"default":[{"type":"sigstoreSigned"}]}"#.into(), BadPolicy, None),
        // HEAD-only keys: Debian's containers/image 5.23 calls them unknown; HEAD (and strata) accept them.
        ("sigstoreSigned keyPaths (HEAD)", format!(r#"{{"default":[{{"type":"sigstoreSigned","keyPaths":["{k}"]}}]}}"#), Rejected, Some(BadPolicy)),
        ("sigstoreSigned pki (HEAD)", r#"{"default":[{"type":"sigstoreSigned","pki":{"caRootsPath":"/r","subjectEmail":"a@b"}}]}"#.into(), Rejected, Some(BadPolicy)),
        // Invalid under every version: unknown in 5.23, missing Rekor key in HEAD.
        ("sigstoreSigned fulcio without rekor", r#"{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/c","oidcIssuer":"o","subjectEmail":"e"}}]}"#.into(), BadPolicy, None),
        ("reject beside accept (AND)", r#"{"default":[{"type":"insecureAcceptAnything"},{"type":"reject"}]}"#.into(), Rejected, None),
    ];
    assert!(cases.len() >= 12);
    let mut report = Vec::new();
    for (i, (name, text, strata_expected, skopeo_differs)) in cases.iter().enumerate() {
        let f = root.join(format!("policy-{i}.json"));
        fs::write(&f, text).unwrap();
        let (strata, why) = strata_outcome(&f, &src);
        let (skopeo, stderr) = skopeo_outcome(&f, &src, &dst);
        let skopeo_expected = skopeo_differs.unwrap_or(*strata_expected);
        if strata != *strata_expected || skopeo != skopeo_expected {
            report.push(format!(
                "{name}: strata {strata:?} (expected {strata_expected:?}; {why}), skopeo {skopeo:?} (expected {skopeo_expected:?}): {}",
                stderr.trim()
            ));
        }
    }
    eprintln!("{} policies compared with skopeo", cases.len());
    assert!(report.is_empty(), "disagreements:\n{}", report.join("\n"));
}
