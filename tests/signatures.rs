//! containers-policy.json and signatures, decided as podman and skopeo decide: every case below is one
//! image in a loopback `docker-registry` and one policy, judged by `skopeo copy --policy`, by `podman pull
//! --signature-policy` and by `strata verify`, which must all agree with the expected answer.
//!
//! The images are signed by `skopeo copy --sign-by` with keys `gpg` makes here, into a `file://` lookaside
//! that registries.d under the test's `$HOME` points all three tools at: a good key, another key, a key
//! that expired (made and used with gpg's clock in 2020), a key whose signing subkey was revoked after it
//! signed, a signature for another manifest (`skopeo standalone-sign`), images signed for another tag
//! (every `signedIdentity` form), one signed by two keys, and a two-platform index signed with `--all`
//! whose instance or index signature is then removed.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;

use serde_json::{Value, json};
use strata_tests::registry::{Auth, Env, Registry, clean_up_after_exit};
use strata_tests::signing::{
    Gpg, podman_decides, skopeo_decides, skopeo_sign, write_policy, write_registries_d,
};
use strata_tests::store::TestStore;
use strata_tests::{
    OCI_INDEX, OCI_MANIFEST, OciLayout, base_image, host_arch, require_tool, run, show_output,
    umoci,
};

/// Everything the cases share, made once per test binary.
struct Fixture {
    env: Env,
    /// Kept alive (and killed after the process exits).
    _registry: Registry,
    host: String,
    dir: PathBuf,
    lookaside: PathBuf,
    accept_all: PathBuf,
    /// Keyrings for `signedBy`: good, other, expired, revoked, subkey.
    keys: std::collections::HashMap<&'static str, PathBuf>,
    /// The manifest digest of the single-platform images, and of the index and its host instance.
    digest: String,
    index_digest: String,
    instance_digest: String,
}

impl Fixture {
    fn image(&self, rest: &str) -> String {
        format!("docker://{}/{rest}", self.host)
    }

    fn key(&self, name: &str) -> String {
        self.keys[name].display().to_string()
    }
}

fn peers() -> bool {
    ["skopeo", "podman", "docker-registry", "gpg", "umoci"]
        .iter()
        .all(|t| require_tool(t))
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

/// The manifest digest of `image` (`skopeo inspect --raw`, hashed).
fn manifest_digest(env: &Env, image: &str) -> String {
    let raw = env.skopeo_ok(&["inspect", "--raw", "--tls-verify=false", image]);
    strata_tests::sha256_digest(&raw)
}

fn build_fixture() -> Fixture {
    let env = Env::new();
    let registry = Registry::start(Auth::Open);
    let dir = env.path().join("work");
    std::fs::create_dir_all(&dir).unwrap();
    clean_up_after_exit(registry.pid(), &[registry.dir(), env.path()]);
    let host = registry.host.clone();
    let lookaside = dir.join("lookaside");
    write_registries_d(&env, &host, &lookaside);
    let accept_all = write_policy(
        &dir,
        "accept-all",
        &json!({"default": [{"type": "insecureAcceptAnything"}]}),
    );
    let gpg = Gpg::new(&dir.join("gnupg"));
    let good = gpg.gen_key("Good <good@example.com>", "rsa2048", "sign", "never", None);
    let other = gpg.gen_key(
        "Other <other@example.com>",
        "ed25519",
        "sign",
        "never",
        None,
    );
    let expired = gpg.gen_key(
        "Expired <expired@example.com>",
        "rsa2048",
        "sign",
        "1d",
        Some("20200101T000000"),
    );
    let revoked = gpg.gen_key(
        "Revoked <revoked@example.com>",
        "rsa2048",
        "cert",
        "never",
        None,
    );
    gpg.add_signing_subkey(&revoked);
    let sub = gpg.gen_key("Sub <sub@example.com>", "rsa2048", "cert", "never", None);
    gpg.add_signing_subkey(&sub);

    let f = |rest: &str| format!("docker://{host}/{rest}");
    // The unsigned image, and copies signed by each key.
    let layout = base_image(&dir);
    registry.push(
        &format!("oci:{}:base", layout.display()),
        "sig/unsigned:v1",
        &[],
    );
    let unsigned = f("sig/unsigned:v1");
    let sign =
        |fpr: &str, dst: &str| skopeo_sign(&env, &gpg, &accept_all, fpr, &unsigned, &f(dst), &[]);
    sign(&good, "sig/good:v1");
    sign(&other, "sig/other:v1");
    gpg.set_clock(Some("20200101T120000"));
    sign(&expired, "sig/expired:v1");
    gpg.set_clock(None);
    sign(&revoked, "sig/revoked:v1");
    gpg.revoke_first_subkey(&revoked);
    sign(&sub, "sig/subkey:v1");
    // Signed by two keys: the second copy keeps the first signature and adds its own.
    sign(&good, "sig/both:v1");
    skopeo_sign(
        &env,
        &gpg,
        &accept_all,
        &other,
        &f("sig/both:v1"),
        &f("sig/both:v1"),
        &[],
    );
    // The same, as a `dir:` image with uncompressed layers: a store serves layers uncompressed, so only such
    // an image keeps its manifest, and so its signatures, when skopeo copies it out of a store.
    let plain = dir.join("plain");
    let plain_identity = format!("{host}/sig/plain:v1");
    let sign_dir = |fpr: &str, src: &str, extra: &[&str]| {
        let mut args = vec!["--sign-identity", plain_identity.as_str()];
        args.extend_from_slice(extra);
        let dst = format!("dir:{}", plain.display());
        skopeo_sign(&env, &gpg, &accept_all, fpr, src, &dst, &args);
    };
    sign_dir(&good, &unsigned, &["--dest-decompress"]);
    let plain_once = dir.join("plain-once");
    std::fs::rename(&plain, &plain_once).unwrap();
    sign_dir(&other, &format!("dir:{}", plain_once.display()), &[]);
    // Signed for another tag of the same repository (the identity forms), and a mirror of it.
    registry.push(
        &format!("oci:{}:base", layout.display()),
        "sig/ident:v1",
        &[],
    );
    skopeo_sign(
        &env,
        &gpg,
        &accept_all,
        &good,
        &f("sig/ident:v1"),
        &f("sig/ident:v1-signed"),
        &[],
    );
    registry.push(
        &format!("oci:{}:base", layout.display()),
        "mirror/ident:v1-signed",
        &[],
    );
    let digest = manifest_digest(&env, &unsigned);
    let at = |repo: &str, digest: &str| {
        let (alg, hex) = digest.split_once(':').unwrap();
        lookaside.join(format!("{repo}@{alg}={hex}"))
    };
    std::fs::create_dir_all(at("mirror/ident", &digest)).unwrap();
    std::fs::copy(
        at("sig/ident", &digest).join("signature-1"),
        at("mirror/ident", &digest).join("signature-1"),
    )
    .unwrap();
    // A good key's signature of another manifest, where this image's signatures are looked for.
    registry.push(
        &format!("oci:{}:base", layout.display()),
        "sig/wrongdigest:v1",
        &[],
    );
    let other_manifest = dir.join("other-manifest.json");
    let mut raw = env.skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &unsigned]);
    raw.push(b'\n');
    std::fs::write(&other_manifest, raw).unwrap();
    std::fs::create_dir_all(at("sig/wrongdigest", &digest)).unwrap();
    let mut c = env.command("skopeo");
    c.env("GNUPGHOME", gpg.home())
        .args(["standalone-sign"])
        .arg(&other_manifest)
        .arg(format!("{host}/sig/wrongdigest:v1"))
        .arg(&good)
        .arg("--output")
        .arg(at("sig/wrongdigest", &digest).join("signature-1"));
    run(&mut c);
    // A two-platform index, signed with --all (index and instances), twice: one loses its instance's
    // signature, the other its index's.
    let (multi, index_digest, instance_digest) = multi_arch_layout(&dir);
    for repo in ["multi/no-instance-sig", "multi/no-index-sig"] {
        skopeo_sign(
            &env,
            &gpg,
            &accept_all,
            &good,
            &format!("oci:{}:multi", multi.display()),
            &f(&format!("{repo}:v1")),
            &["--all"],
        );
    }
    std::fs::remove_dir_all(at("multi/no-instance-sig", &instance_digest)).unwrap();
    std::fs::remove_dir_all(at("multi/no-index-sig", &index_digest)).unwrap();

    let mut keys = std::collections::HashMap::new();
    for (name, fpr) in [
        ("good", &good),
        ("other", &other),
        ("expired", &expired),
        ("revoked", &revoked),
        ("sub", &sub),
    ] {
        keys.insert(name, gpg.export(fpr, &dir.join(format!("{name}.gpg"))));
    }
    Fixture {
        env,
        _registry: registry,
        host,
        dir,
        lookaside,
        accept_all,
        keys,
        digest,
        index_digest,
        instance_digest,
    }
}

/// A layout with a host-platform and another-platform image and an index tagged `multi`; the layout, the
/// index's digest and the host instance's digest.
fn multi_arch_layout(dir: &Path) -> (PathBuf, String, String) {
    let root = dir.join("multi");
    let layout = OciLayout::open(strata_tests::umoci_image(
        &root,
        &strata_tests::ImageSpec::base("base"),
    ));
    let host = layout.descriptor("base");
    let other_arch = if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    umoci([
        "config",
        "--image",
        &format!("{}:base", layout.root.display()),
        "--tag",
        "other",
        "--architecture",
        other_arch,
    ]);
    let other = layout.descriptor("other");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": host["digest"], "size": host["size"],
             "platform": {"architecture": host_arch(), "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": other["digest"], "size": other["size"],
             "platform": {"architecture": other_arch, "os": "linux"}}
        ]
    });
    let index = layout.add_json(OCI_INDEX, &index);
    layout.set_tag("multi", &index);
    (
        layout.root.clone(),
        index["digest"].as_str().unwrap().to_owned(),
        host["digest"].as_str().unwrap().to_owned(),
    )
}

/// strata's decision: `strata verify --policy P IMAGE` (exit 0 accepted, 1 rejected, anything else a
/// failure of the test).
fn strata_decides(env: &Env, policy: &Path, image: &str) -> Result<(), String> {
    let out = env.strata(&[
        "verify",
        "--tls-verify=false",
        "--policy",
        &policy.display().to_string(),
        image,
    ]);
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => panic!("strata verify {image} failed\n{}", show_output(&out)),
    }
}

/// One case: `policy` (built from the fixture) for `image` must give `expect` (accepted?) from skopeo,
/// podman and strata alike.
fn case(name: &str, policy: impl Fn(&Fixture) -> Value, image: &str, expect: bool) {
    if !peers() {
        return;
    }
    let fx = fixture();
    let policy = write_policy(&fx.dir, name, &policy(fx));
    let image = fx.image(image);
    let skopeo = skopeo_decides(&fx.env, &policy, &image, &[]);
    let podman = podman_decides(&fx.env, &policy, &image, &[]);
    let strata = strata_decides(&fx.env, &policy, &image);
    let word = |d: &Result<(), String>| match d {
        Ok(()) => "accepted".to_owned(),
        Err(e) => format!("rejected ({e})"),
    };
    let report = format!(
        "case {name}: {image}, expected {}\n  skopeo: {}\n  podman: {}\n  strata: {}",
        if expect { "accepted" } else { "rejected" },
        word(&skopeo),
        word(&podman),
        word(&strata)
    );
    assert_eq!(skopeo.is_ok(), expect, "{report}");
    assert_eq!(podman.is_ok(), expect, "{report}");
    assert_eq!(strata.is_ok(), expect, "{report}");
}

/// `{"default":[reject], "transports":{"docker":{SCOPE:[signedBy KEY with IDENTITY]}}}`.
fn signed_by(fx: &Fixture, scope: &str, key: &str, identity: Option<Value>) -> Value {
    let mut requirement = json!({"type": "signedBy", "keyType": "GPGKeys", "keyPath": fx.key(key)});
    if let Some(identity) = identity {
        requirement["signedIdentity"] = identity;
    }
    json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {format!("{}/{scope}", fx.host): [requirement]}}
    })
}

#[test]
fn unsigned_image_under_signed_by_is_rejected() {
    case(
        "unsigned",
        |f| signed_by(f, "sig", "good", None),
        "sig/unsigned:v1",
        false,
    );
}

#[test]
fn signed_by_the_right_key_is_accepted() {
    case(
        "good",
        |f| signed_by(f, "sig", "good", None),
        "sig/good:v1",
        true,
    );
}

#[test]
fn signed_by_another_key_is_rejected() {
    case(
        "other",
        |f| signed_by(f, "sig", "good", None),
        "sig/other:v1",
        false,
    );
}

#[test]
fn signed_by_an_expired_key_is_rejected() {
    case(
        "expired",
        |f| signed_by(f, "sig", "expired", None),
        "sig/expired:v1",
        false,
    );
}

#[test]
fn signed_by_a_revoked_subkey_is_rejected() {
    case(
        "revoked",
        |f| signed_by(f, "sig", "revoked", None),
        "sig/revoked:v1",
        false,
    );
}

#[test]
fn a_signature_of_another_manifest_is_rejected() {
    case(
        "wrongdigest",
        |f| signed_by(f, "sig", "good", None),
        "sig/wrongdigest:v1",
        false,
    );
}

/// Both keys required: two `signedBy` requirements at the `sig` scope.
fn two_keys(f: &Fixture) -> Value {
    let mut p = signed_by(f, "sig", "good", None);
    if let Some(list) = p["transports"]["docker"][format!("{}/sig", f.host)].as_array_mut() {
        list.push(json!({"type": "signedBy", "keyType": "GPGKeys", "keyPath": f.key("other")}));
    }
    p
}

#[test]
fn two_keys_required_and_two_signatures_present_is_accepted() {
    case("both", two_keys, "sig/both:v1", true);
}

#[test]
fn two_keys_required_and_one_signature_present_is_rejected() {
    case("both-one", two_keys, "sig/good:v1", false);
}

#[test]
fn match_exact_accepts_the_signed_tag() {
    let identity = Some(json!({"type": "matchExact"}));
    case(
        "exact-tag",
        move |f| signed_by(f, "sig", "good", identity.clone()),
        "sig/ident:v1-signed",
        true,
    );
}

#[test]
fn match_exact_rejects_a_digest_reference() {
    let identity = Some(json!({"type": "matchExact"}));
    case(
        "exact-digest",
        move |f| signed_by(f, "sig", "good", identity.clone()),
        &format!("sig/ident@{}", digest()),
        false,
    );
}

/// The single-platform images' manifest digest (the fixture is built first).
fn digest() -> String {
    if !peers() {
        return String::new();
    }
    fixture().digest.clone()
}

#[test]
fn match_repo_digest_or_exact_rejects_another_tag() {
    case(
        "default-identity-tag",
        |f| signed_by(f, "sig", "good", None),
        "sig/ident:v1",
        false,
    );
}

#[test]
fn match_repo_digest_or_exact_accepts_a_digest_reference() {
    case(
        "default-identity-digest",
        |f| signed_by(f, "sig", "good", None),
        &format!("sig/ident@{}", digest()),
        true,
    );
}

#[test]
fn match_repository_accepts_another_tag() {
    let identity = Some(json!({"type": "matchRepository"}));
    case(
        "repository",
        move |f| signed_by(f, "sig", "good", identity.clone()),
        "sig/ident:v1",
        true,
    );
}

#[test]
fn exact_reference_accepts_the_named_reference() {
    case(
        "exact-reference",
        |f| {
            let identity = json!({"type": "exactReference", "dockerReference": format!("{}/sig/ident:v1-signed", f.host)});
            signed_by(f, "sig", "good", Some(identity))
        },
        "sig/ident:v1",
        true,
    );
}

#[test]
fn exact_reference_rejects_another_reference() {
    case(
        "exact-reference-other",
        |f| {
            let identity = json!({"type": "exactReference", "dockerReference": format!("{}/sig/ident:v2", f.host)});
            signed_by(f, "sig", "good", Some(identity))
        },
        "sig/ident:v1-signed",
        false,
    );
}

#[test]
fn exact_repository_accepts_the_named_repository() {
    case(
        "exact-repository",
        |f| {
            let identity = json!({"type": "exactRepository", "dockerRepository": format!("{}/sig/ident", f.host)});
            signed_by(f, "sig", "good", Some(identity))
        },
        "sig/ident:v1",
        true,
    );
}

#[test]
fn exact_repository_rejects_another_repository() {
    case(
        "exact-repository-other",
        |f| {
            let identity = json!({"type": "exactRepository", "dockerRepository": format!("{}/sig/other", f.host)});
            signed_by(f, "sig", "good", Some(identity))
        },
        "sig/ident:v1-signed",
        false,
    );
}

#[test]
fn remap_identity_accepts_a_mirror_of_the_signed_image() {
    case(
        "remap",
        |f| {
            let identity = json!({"type": "remapIdentity", "prefix": format!("{}/mirror", f.host), "signedPrefix": format!("{}/sig", f.host)});
            signed_by(f, "mirror", "good", Some(identity))
        },
        "mirror/ident:v1-signed",
        true,
    );
}

#[test]
fn remap_identity_with_another_prefix_rejects_the_mirror() {
    case(
        "remap-other",
        |f| {
            let identity = json!({"type": "remapIdentity", "prefix": format!("{}/mirror", f.host), "signedPrefix": format!("{}/elsewhere", f.host)});
            signed_by(f, "mirror", "good", Some(identity))
        },
        "mirror/ident:v1-signed",
        false,
    );
}

#[test]
fn a_reject_scope_rejects_a_signed_image() {
    case(
        "reject-scope",
        |f| json!({"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {format!("{}/sig/good", f.host): [{"type": "reject"}]}}}),
        "sig/good:v1",
        false,
    );
}

#[test]
fn an_insecure_scope_overrides_a_rejecting_default() {
    case(
        "insecure-scope",
        |f| json!({"default": [{"type": "reject"}], "transports": {"docker": {format!("{}/sig/unsigned:v1", f.host): [{"type": "insecureAcceptAnything"}]}}}),
        "sig/unsigned:v1",
        true,
    );
}

#[test]
fn the_most_specific_scope_wins_over_the_host() {
    case(
        "specific-scope",
        |f| {
            json!({
                "default": [{"type": "reject"}],
                "transports": {"docker": {
                    f.host.clone(): [{"type": "insecureAcceptAnything"}],
                    format!("{}/sig", f.host): [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": f.key("good")}]
                }}
            })
        },
        "sig/other:v1",
        false,
    );
}

#[test]
fn docker_io_normalisation_of_a_signed_identity() {
    // A signature claiming `busybox:latest` names docker.io/library/busybox:latest: exactReference written
    // the long way matches it, as containers/image normalises both.
    if !peers() {
        return;
    }
    let fx = fixture();
    let repo = "norm/busybox";
    let image = fx.image(&format!("{repo}:v1"));
    let src = fx.image("sig/unsigned:v1");
    let mut copy = fx.env.command("skopeo");
    copy.arg("--policy").arg(&fx.accept_all).args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &src,
        &image,
    ]);
    run(&mut copy);
    let manifest = fx.dir.join("norm-manifest.json");
    std::fs::write(
        &manifest,
        fx.env
            .skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &image]),
    )
    .unwrap();
    let (alg, hex) = fx.digest.split_once(':').unwrap();
    let sig_dir = fx.lookaside.join(format!("{repo}@{alg}={hex}"));
    std::fs::create_dir_all(&sig_dir).unwrap();
    let gpg = Gpg::new(&fx.dir.join("gnupg"));
    let mut sign = fx.env.command("skopeo");
    sign.env("GNUPGHOME", gpg.home())
        .arg("standalone-sign")
        .arg(&manifest)
        .arg("busybox:latest")
        .arg(gpg.fingerprint("good@example.com"))
        .arg("--output")
        .arg(sig_dir.join("signature-1"));
    run(&mut sign);
    case(
        "docker-io",
        |f| {
            let identity = json!({"type": "exactReference", "dockerReference": "docker.io/library/busybox:latest"});
            signed_by(f, "norm", "good", Some(identity))
        },
        &format!("{repo}:v1"),
        true,
    );
}

#[test]
fn a_multi_platform_image_needs_its_instance_signature() {
    case(
        "multi-instance",
        |f| signed_by(f, "multi", "good", None),
        "multi/no-instance-sig:v1",
        false,
    );
}

#[test]
fn a_multi_platform_image_does_not_need_its_index_signature() {
    case(
        "multi-index",
        |f| signed_by(f, "multi", "good", None),
        "multi/no-index-sig:v1",
        true,
    );
}

/// A signature by a valid signing subkey of a trusted key: containers/image accepts it since 2025
/// (commit 3ad129be, "Also accept subkey signatures in simple signing", mapping the subkey to its
/// primary key); Debian's skopeo 1.9.3 and podman 4.3.1 (containers/image 5.23) predate that and reject
/// it ("Signature by key <subkey> is not accepted"). strata follows current containers/image: the one
/// decision where it differs from Debian's peers, asserted here so that the difference stays known.
#[test]
fn a_valid_signing_subkey_is_accepted_as_current_containers_image_does() {
    if !peers() {
        return;
    }
    let fx = fixture();
    let policy = write_policy(&fx.dir, "subkey", &signed_by(fx, "sig", "sub", None));
    let image = fx.image("sig/subkey:v1");
    let skopeo = skopeo_decides(&fx.env, &policy, &image, &[]);
    let podman = podman_decides(&fx.env, &policy, &image, &[]);
    for (peer, decision) in [("skopeo", &skopeo), ("podman", &podman)] {
        let why = decision.as_ref().expect_err(peer);
        assert!(why.contains("is not accepted"), "{peer}: {why}");
    }
    strata_decides(&fx.env, &policy, &image).expect("strata accepts the subkey's signature");
}

#[test]
fn the_fixture_signed_what_it_says() {
    if !peers() {
        return;
    }
    let fx = fixture();
    let (alg, hex) = fx.digest.split_once(':').unwrap();
    for repo in [
        "sig/good",
        "sig/other",
        "sig/expired",
        "sig/revoked",
        "sig/ident",
        "sig/wrongdigest",
    ] {
        let sig = fx.lookaside.join(format!("{repo}@{alg}={hex}/signature-1"));
        assert!(sig.is_file(), "{} missing", sig.display());
    }
    let both = fx
        .lookaside
        .join(format!("sig/both@{alg}={hex}/signature-2"));
    assert!(both.is_file(), "{} missing", both.display());
    for digest in [&fx.index_digest, &fx.instance_digest] {
        let (alg, hex) = digest.split_once(':').unwrap();
        let kept = fx
            .lookaside
            .join(format!("multi/no-index-sig@{alg}={hex}"))
            .is_dir();
        assert_eq!(kept, digest == &fx.instance_digest);
    }
}

/// strata in the fixture's environment (its registries.d) on `store`.
fn strata_on(fx: &Fixture, store: &TestStore, args: &[&str]) -> std::process::Output {
    let mut c = fx.env.command(strata_tests::strata_bin());
    c.args(store.strata_args()).args(args);
    strata_tests::run_unchecked(&mut c)
}

/// The store's records and its overlay directory's entries, to compare before and after.
fn store_state(store: &TestStore) -> (Vec<u8>, Vec<u8>, Vec<String>) {
    let read = |p: &str| std::fs::read(store.root.join(p)).unwrap_or_default();
    let mut overlay: Vec<String> = std::fs::read_dir(store.root.join("overlay"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    overlay.sort();
    (
        read("overlay-layers/layers.json"),
        read("overlay-images/images.json"),
        overlay,
    )
}

#[test]
fn a_rejected_pull_leaves_the_store_as_it_was() {
    if !peers() {
        return;
    }
    let fx = fixture();
    let store = TestStore::new();
    let accept = fx.accept_all.display().to_string();
    let first = strata_on(
        fx,
        &store,
        &[
            "pull",
            "-q",
            "--tls-verify=false",
            "--policy",
            &accept,
            &fx.image("sig/good:v1"),
        ],
    );
    assert!(first.status.success(), "{}", show_output(&first));
    let before = store_state(&store);
    let reject = write_policy(
        &fx.dir,
        "pull-reject",
        &json!({"default": [{"type": "reject"}]}),
    );
    let signed = write_policy(&fx.dir, "pull-signed", &signed_by(fx, "sig", "good", None));
    for (policy, image, why) in [
        (&reject, "sig/unsigned:v1", "rejected by policy"),
        (&signed, "sig/unsigned:v1", "no signature exists"),
        (&signed, "sig/other:v1", "rejected by policy"),
    ] {
        let out = strata_on(
            fx,
            &store,
            &[
                "pull",
                "-q",
                "--tls-verify=false",
                "--policy",
                &policy.display().to_string(),
                &fx.image(image),
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", show_output(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{image}: {stderr}");
        assert_eq!(
            store_state(&store),
            before,
            "pulling {image} changed the store"
        );
    }
}

#[test]
fn signatures_of_a_pulled_image_travel_as_podmans_do() {
    if !peers() {
        return;
    }
    let fx = fixture();
    let store = TestStore::new();
    let identity =
        json!({"type": "exactReference", "dockerReference": format!("{}/sig/plain:v1", fx.host)});
    let policy = json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": fx.key("good"), "signedIdentity": identity}]});
    let policy = write_policy(&fx.dir, "travel", &policy);
    let plain = fx.dir.join("plain");
    let image = format!("dir:{}", plain.display());
    let out = strata_on(
        fx,
        &store,
        &[
            "pull",
            "-q",
            "--name",
            "localhost/plain:v1",
            "--policy",
            &policy.display().to_string(),
            &image,
        ],
    );
    assert!(out.status.success(), "{}", show_output(&out));
    // skopeo reads them back out of the store, as it would podman's.
    let out_dir = tempfile::tempdir().unwrap();
    let mut copy = fx.env.command("skopeo");
    copy.arg("--policy")
        .arg(&fx.accept_all)
        .args(["copy", "--quiet"])
        .arg(format!(
            "containers-storage:[overlay@{}+{}]localhost/plain:v1",
            store.root.display(),
            store.runroot.display()
        ))
        .arg(format!("dir:{}", out_dir.path().display()));
    run(&mut copy);
    for n in 1..=2 {
        let name = format!("signature-{n}");
        assert_eq!(
            std::fs::read(out_dir.path().join(&name)).unwrap(),
            std::fs::read(plain.join(&name)).unwrap(),
            "{name}"
        );
    }
    assert!(!out_dir.path().join("signature-3").exists());
    // And podman's own pull of the image keeps the same bytes under the same keys.
    let theirs = TestStore::new();
    let mut pull = fx.env.command("podman");
    pull.arg("--root")
        .arg(&theirs.root)
        .arg("--runroot")
        .arg(&theirs.runroot)
        .args([
            "--storage-driver",
            "overlay",
            "--events-backend",
            "none",
            "pull",
            "-q",
        ])
        .arg("--signature-policy")
        .arg(&policy)
        .arg(&image);
    run(&mut pull);
    let big_data = |s: &TestStore, key: &str| -> Vec<u8> {
        let images = s.root.join("overlay-images");
        let dir = std::fs::read_dir(&images)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.is_dir())
            .unwrap();
        // containers/storage's file name for a big-data key: the key if it is only `.`, `0-9`, `a-z`.
        let plain = key
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase());
        let file = if plain {
            key.to_owned()
        } else {
            format!("={}", base64::engine::general_purpose::STANDARD.encode(key))
        };
        std::fs::read(dir.join(file)).unwrap_or_default()
    };
    let digest = strata_tests::sha256_digest(&std::fs::read(plain.join("manifest.json")).unwrap());
    let hex = digest.trim_start_matches("sha256:");
    for key in ["signatures".to_owned(), format!("signature-{hex}")] {
        let ours = big_data(&store, &key);
        assert!(!ours.is_empty(), "{key} is empty in strata's store");
        assert_eq!(ours, big_data(&theirs, &key), "{key}");
    }
}

/// A `dir:` copy of the unsigned image, for planting signatures in.
fn dir_copy(fx: &Fixture, name: &str) -> PathBuf {
    let dir = fx.dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = fx.env.command("skopeo");
    c.arg("--policy")
        .arg(&fx.accept_all)
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &fx.image("sig/unsigned:v1"),
        ])
        .arg(format!("dir:{}", dir.display()));
    run(&mut c);
    dir
}

/// `strata verify` of `image` under a signedBy (good key, exactRepository) policy.
fn verify_hostile(fx: &Fixture, image: &str) -> std::process::Output {
    let identity =
        json!({"type": "exactRepository", "dockerRepository": format!("{}/sig/unsigned", fx.host)});
    let policy = json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": fx.key("good"), "signedIdentity": identity}]});
    let policy = write_policy(&fx.dir, "hostile", &policy);
    fx.env.strata(&[
        "verify",
        "--tls-verify=false",
        "--policy",
        &policy.display().to_string(),
        image,
    ])
}

#[test]
fn hostile_signature_stores_are_clear_errors() {
    if !peers() {
        return;
    }
    let fx = fixture();
    // 10,000 signatures.
    let many = dir_copy(fx, "hostile-many");
    for n in 1..=10_000 {
        std::fs::write(many.join(format!("signature-{n}")), b"x").unwrap();
    }
    let out = verify_hostile(fx, &format!("dir:{}", many.display()));
    assert_eq!(out.status.code(), Some(2), "{}", show_output(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than 128 signatures"));
    // A 100 MB signature (sparse: nothing is read of it).
    let big = dir_copy(fx, "hostile-big");
    std::fs::File::create(big.join("signature-1"))
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let out = verify_hostile(fx, &format!("dir:{}", big.display()));
    assert_eq!(out.status.code(), Some(2), "{}", show_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("over the 4194304-byte limit"),
        "{}",
        show_output(&out)
    );
    // Malformed and truncated OpenPGP: rejected with the reason, no crash.
    let good_sig = fx.lookaside.join(format!(
        "sig/good@{}/signature-1",
        fx.digest.replacen(':', "=", 1)
    ));
    let real = std::fs::read(good_sig).unwrap();
    for (name, bytes) in [
        ("hostile-truncated", real[..real.len() / 2].to_vec()),
        ("hostile-garbage", vec![0xa3, 0x01, 0xff, 0xff, 0xff, 0xff]),
    ] {
        let dir = dir_copy(fx, name);
        std::fs::write(dir.join("signature-1"), bytes).unwrap();
        let out = verify_hostile(fx, &format!("dir:{}", dir.display()));
        assert_eq!(out.status.code(), Some(1), "{name}: {}", show_output(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("rejected"));
    }
    // A properly signed payload with a duplicate key: refused after the signature verified.
    let dir = dir_copy(fx, "hostile-duplicate");
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{h}/sig/unsigned:v1"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"atomic container signature","type":"atomic container signature"}},"optional":{{}}}}"#,
        h = fx.host,
        d = fx.digest
    );
    let payload_path = fx.dir.join("duplicate-payload.json");
    std::fs::write(&payload_path, payload).unwrap();
    let gpg = Gpg::new(&fx.dir.join("gnupg"));
    run(gpg
        .cmd()
        .args([
            "--sign",
            "--local-user",
            &gpg.fingerprint("good@example.com"),
            "--output",
        ])
        .arg(dir.join("signature-1"))
        .arg(&payload_path));
    let out = verify_hostile(fx, &format!("dir:{}", dir.display()));
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("duplicate"),
        "{}",
        show_output(&out)
    );
    // A policy with an unknown key: the whole file is refused, naming the key.
    let bad = fx.dir.join("unknown-key.policy.json");
    std::fs::write(
        &bad,
        r#"{"default":[{"type":"insecureAcceptAnything"}],"extra":1}"#,
    )
    .unwrap();
    let out = fx.env.strata(&[
        "verify",
        "--policy",
        &bad.display().to_string(),
        &format!("dir:{}", dir.display()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("extra"),
        "{}",
        show_output(&out)
    );
}

#[test]
fn a_sig_attachment_with_a_thousand_layers_is_refused() {
    if !peers() {
        return;
    }
    let fx = fixture();
    // A `.sig` manifest naming 1000 layers (all the same small blob), for the good image.
    let repo = strata_source::Repository::open(&fx.image("sig/good"), &{
        let mut o = strata_source::SourceOptions::default();
        o.tls_verify = Some(false);
        o
    })
    .unwrap();
    let payload = b"{}";
    let digest = strata_oci::Digest::sha256(payload);
    repo.push_blob(&digest, payload).unwrap();
    let layer = json!({"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": digest.to_string(), "size": 2});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.to_string(), "size": 2},
        "layers": vec![layer; 1000],
    });
    let tag = format!("{}.sig", fx.digest.replacen(':', "-", 1));
    repo.push_manifest(
        Some(&tag),
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    // registries.d turns attachments on for this repository only.
    let d = fx.dir.join("registries.d-attachments");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("a.yaml"),
        format!(
            "docker:\n  {}/sig/good:\n    use-sigstore-attachments: true\n",
            fx.host
        ),
    )
    .unwrap();
    let policy = write_policy(
        &fx.dir,
        "attachments",
        &json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": fx.key("good")}]}),
    );
    let out = fx.env.strata(&[
        "verify",
        "--tls-verify=false",
        "--registries.d",
        &d.display().to_string(),
        "--policy",
        &policy.display().to_string(),
        &fx.image("sig/good:v1"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more than 128 signatures"),
        "{}",
        show_output(&out)
    );
}

/// `strata copy` (and `skopeo copy`) of `src` to `dst` under `policy`, with `extra` flags (for both).
fn copies(
    fx: &Fixture,
    policy: &Path,
    src: &str,
    dst: &str,
    extra: &[&str],
) -> (Result<(), String>, Result<(), String>) {
    let mut strata = fx.env.command(strata_tests::strata_bin());
    strata
        .env("GNUPGHOME", fx.dir.join("gnupg"))
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--policy",
        ])
        .arg(policy)
        .args(extra)
        .args([src, dst]);
    let strata = strata_tests::signing::decision(&mut strata);
    let skopeo_dst = format!("{dst}-skopeo");
    let mut skopeo = fx.env.command("skopeo");
    skopeo
        .env("GNUPGHOME", fx.dir.join("gnupg"))
        .arg("--policy")
        .arg(policy)
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .args([src, skopeo_dst.as_str()]);
    (strata, strata_tests::signing::decision(&mut skopeo))
}

#[test]
fn copy_honours_the_policy_and_carries_signatures_as_skopeo_does() {
    if !peers() {
        return;
    }
    let fx = fixture();
    let policy = write_policy(&fx.dir, "copy", &signed_by(fx, "sig", "good", None));
    // Rejected: nothing written, by either.
    let out = fx.dir.join("copy-rejected");
    let (strata, skopeo) = copies(
        fx,
        &policy,
        &fx.image("sig/unsigned:v1"),
        &format!("dir:{}", out.display()),
        &[],
    );
    assert!(
        strata.is_err() && skopeo.is_err(),
        "strata {strata:?}, skopeo {skopeo:?}"
    );
    assert!(strata.unwrap_err().contains("rejected by policy"));
    assert!(!out.exists());
    // Accepted: the signatures travel to dir: as skopeo writes them.
    let out = fx.dir.join("copy-accepted");
    let (strata, skopeo) = copies(
        fx,
        &policy,
        &fx.image("sig/both:v1"),
        &format!("dir:{}", out.display()),
        &[],
    );
    strata.unwrap();
    skopeo.unwrap();
    for n in 1..=2 {
        let name = format!("signature-{n}");
        let ours = std::fs::read(out.join(&name)).unwrap();
        let theirs = std::fs::read(fx.dir.join("copy-accepted-skopeo").join(&name)).unwrap();
        assert_eq!(ours, theirs, "{name}");
    }
    // A destination that keeps no signatures: refused unless --remove-signatures, by both.
    let oci = fx.dir.join("copy-oci");
    let dst = format!("oci:{}:v1", oci.display());
    let (strata, skopeo) = copies(fx, &policy, &fx.image("sig/good:v1"), &dst, &[]);
    assert!(
        strata.is_err() && skopeo.is_err(),
        "strata {strata:?}, skopeo {skopeo:?}"
    );
    assert!(
        !oci.join("index.json").exists(),
        "a refused copy wrote {}",
        oci.display()
    );
    let oci = fx.dir.join("copy-oci-removed");
    let dst = format!("oci:{}:v1", oci.display());
    let (strata, skopeo) = copies(
        fx,
        &policy,
        &fx.image("sig/good:v1"),
        &dst,
        &["--remove-signatures"],
    );
    strata.unwrap();
    skopeo.unwrap();
}

#[test]
fn copy_sign_by_makes_a_signature_podman_accepts() {
    if !peers() {
        return;
    }
    let fx = fixture();
    let gpg = Gpg::new(&fx.dir.join("gnupg"));
    let fpr = gpg.fingerprint("good@example.com");
    let image = fx.image("signed-by-strata/app:v1");
    let mut copy = fx.env.command(strata_tests::strata_bin());
    copy.env("GNUPGHOME", gpg.home())
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--policy",
        ])
        .arg(&fx.accept_all)
        .args(["--sign-by", &fpr, &fx.image("sig/unsigned:v1"), &image]);
    run(&mut copy);
    let policy = write_policy(
        &fx.dir,
        "copy-signed",
        &signed_by(fx, "signed-by-strata", "good", None),
    );
    podman_decides(&fx.env, &policy, &image, &[]).expect("podman accepts strata's signature");
    skopeo_decides(&fx.env, &policy, &image, &[]).expect("skopeo accepts strata's signature");
    let other = write_policy(
        &fx.dir,
        "copy-signed-other",
        &signed_by(fx, "signed-by-strata", "other", None),
    );
    assert!(podman_decides(&fx.env, &other, &image, &[]).is_err());
}

/// `python3 -m http.server` serving `dir` on 127.0.0.1, killed on drop.
struct StaticServer {
    child: std::process::Child,
    port: u16,
}

impl StaticServer {
    fn start(dir: &Path) -> StaticServer {
        let port = strata_tests::registry::free_port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "http.server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        StaticServer { child, port }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_http_lookaside_is_read_as_skopeo_reads_it() {
    if !peers() || !require_tool("python3") {
        return;
    }
    let fx = fixture();
    let server = StaticServer::start(&fx.lookaside);
    let registries_d = fx.dir.join("registries.d-http");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("http.yaml"),
        format!(
            "docker:\n  {}:\n    lookaside: http://127.0.0.1:{}\n",
            fx.host, server.port
        ),
    )
    .unwrap();
    for (image, key, expect) in [
        ("sig/good:v1", "good", true),
        ("sig/other:v1", "good", false),
        ("sig/unsigned:v1", "good", false),
    ] {
        let policy = write_policy(&fx.dir, "http", &signed_by(fx, "sig", key, None));
        let d = registries_d.display().to_string();
        let skopeo = skopeo_decides_with(fx, &policy, &fx.image(image), &d);
        let out = fx.env.strata(&[
            "verify",
            "--tls-verify=false",
            "--registries.d",
            &d,
            "--policy",
            &policy.display().to_string(),
            &fx.image(image),
        ]);
        assert_eq!(
            out.status.code(),
            Some(if expect { 0 } else { 1 }),
            "{image}: {}",
            show_output(&out)
        );
        assert_eq!(skopeo.is_ok(), expect, "{image}: skopeo {skopeo:?}");
        if expect {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains(&format!("http://127.0.0.1:{}/", server.port)),
                "{stdout}"
            );
        }
    }
}

/// skopeo's decision with `--registries.d DIR`.
fn skopeo_decides_with(
    fx: &Fixture,
    policy: &Path,
    image: &str,
    registries_d: &str,
) -> Result<(), String> {
    let out_dir = tempfile::tempdir().unwrap();
    let mut c = fx.env.command("skopeo");
    c.arg("--policy")
        .arg(policy)
        .args([
            "--registries.d",
            registries_d,
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            image,
        ])
        .arg(format!("dir:{}", out_dir.path().display()));
    strata_tests::signing::decision(&mut c)
}
