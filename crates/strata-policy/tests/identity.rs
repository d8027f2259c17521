//! `signedIdentity` matching: the cases of containers/image's `policy_reference_match_test.go`, restated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_oci::ImageReference;
use strata_policy::{SignedIdentity, remap_reference};

const FULL_RHEL: &str = "registry.access.redhat.com/rhel7/rhel:7.2.3";
const UNTAGGED_RHEL: &str = "registry.access.redhat.com/rhel7/rhel";
const D: &str = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const D_OTHER: &str = "@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn s(a: &str, b: &str) -> String {
    format!("{a}{b}")
}

/// (a, b, result): symmetric cases for exact matching.
fn exact_table() -> Vec<(String, String, bool)> {
    let t = |a: &str, b: &str, r| (a.to_owned(), b.to_owned(), r);
    vec![
        t("busybox:latest", "busybox:latest", true),
        t(FULL_RHEL, FULL_RHEL, true),
        (s("busybox", D), s("busybox", D), true),
        t("library/busybox:latest", "busybox:latest", true),
        t("docker.io/library/busybox:latest", "busybox:latest", true),
        t(
            "index.docker.io/library/busybox:latest",
            "busybox:latest",
            true,
        ),
        (s("library/busybox", D), s("busybox", D), true),
        t("busybox:latest", "busybox:notlatest", false),
        t("busybox:latest", "notbusybox:latest", false),
        t(
            "busybox:latest",
            "hostname/library/busybox:notlatest",
            false,
        ),
        t(
            "hostname/library/busybox:latest",
            "busybox:notlatest",
            false,
        ),
        t("busybox:latest", FULL_RHEL, false),
        (s("busybox", D), s("notbusybox", D), false),
        (s("busybox:latest", ""), s("busybox", D), false),
        (s("busybox", D), s("busybox", D_OTHER), false),
        t("busybox", "busybox:latest", false),
        (s("busybox", ""), s("busybox", D), false),
        t("busybox", "busybox", false),
        (s("busybox:latest", D), s("busybox:latest", D), true),
        (s("busybox:latest", D), s("busybox:latest", D_OTHER), false),
        (s("busybox:latest", D), s("busybox:notlatest", D), false),
        (s("busybox:latest", D), s("busybox", D), false),
        (s("busybox:latest", D), s("busybox:latest", ""), false),
        t(
            "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES",
            "busybox:latest",
            false,
        ),
        t("", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", false),
        t("INVALID", "INVALID", false),
    ]
}

/// Symmetric cases for repository matching.
fn repository_table() -> Vec<(String, String, bool)> {
    let t = |a: &str, b: &str, r| (a.to_owned(), b.to_owned(), r);
    vec![
        t("busybox:latest", "busybox:latest", true),
        t(FULL_RHEL, FULL_RHEL, true),
        (s("busybox", D), s("busybox", D), true),
        t("library/busybox:latest", "busybox:latest", true),
        t("docker.io/library/busybox:latest", "busybox:latest", true),
        (s("library/busybox", D), s("busybox", D), true),
        t("busybox:latest", "busybox:notlatest", true),
        (s(FULL_RHEL, "tagsuffix"), FULL_RHEL.to_owned(), true),
        t("library/busybox:latest", "busybox:notlatest", true),
        t("busybox:latest", "library/busybox:notlatest", true),
        t(
            "docker.io/library/busybox:notlatest",
            "busybox:latest",
            true,
        ),
        t(
            "busybox:notlatest",
            "docker.io/library/busybox:latest",
            true,
        ),
        (s("busybox:latest", ""), s("busybox", D), true),
        (s("busybox", D), s("busybox", D_OTHER), true),
        t("busybox", "busybox:notlatest", true),
        t(FULL_RHEL, UNTAGGED_RHEL, true),
        (s("busybox", ""), s("busybox", D), true),
        t("library/busybox", "busybox", true),
        t("docker.io/library/busybox", "busybox", true),
        t("busybox:latest", "notbusybox:latest", false),
        t(
            "hostname/library/busybox:latest",
            "busybox:notlatest",
            false,
        ),
        t("busybox:latest", FULL_RHEL, false),
        (s("busybox", D), s("notbusybox", D), false),
        (s("busybox:latest", D), s("busybox:latest", D), true),
        (s("busybox:latest", D), s("busybox:latest", D_OTHER), true),
        (s("busybox:latest", D), s("busybox:notlatest", D), true),
        (s("busybox:latest", D), s("busybox", D), true),
        (s("busybox:latest", D), s("busybox:latest", ""), true),
        t(
            "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES",
            "busybox:latest",
            false,
        ),
        t("", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", false),
        t("INVALID", "INVALID", false),
    ]
}

/// (image, signature, result) for matchRepoDigestOrExact.
fn repo_digest_or_exact_table() -> Vec<(String, String, bool)> {
    let t = |a: &str, b: &str, r| (a.to_owned(), b.to_owned(), r);
    vec![
        t("busybox:latest", "busybox:notlatest", false),
        (s(FULL_RHEL, "tagsuffix"), FULL_RHEL.to_owned(), false),
        t("library/busybox:latest", "busybox:notlatest", false),
        t("busybox:latest", "library/busybox:notlatest", false),
        t(
            "docker.io/library/busybox:notlatest",
            "busybox:latest",
            false,
        ),
        t(
            "busybox:notlatest",
            "docker.io/library/busybox:latest",
            false,
        ),
        t("busybox", "busybox:latest", false),
        t("busybox:latest", "busybox", false),
        (s("busybox", ""), s("busybox", D), false),
        (s("busybox", D), s("busybox", ""), false),
        t(FULL_RHEL, UNTAGGED_RHEL, false),
        t("busybox", "busybox", false),
        (s("busybox:latest", ""), s("busybox", D), false),
        (s("busybox", D), s("busybox:latest", ""), true),
        (s("busybox", D), s("busybox", D_OTHER), true),
        (s("busybox:latest", D), s("busybox:latest", ""), false),
        (s("busybox:latest", D), s("busybox:notlatest", ""), false),
        (s("busybox:latest", ""), s("busybox:latest", D), false),
        (s("busybox:latest", D), s("busybox:latest", D_OTHER), false),
        (
            s("busybox:latest", D),
            s("busybox:notlatest", D_OTHER),
            false,
        ),
    ]
}

fn image(r: &str) -> Option<ImageReference> {
    ImageReference::parse_normalized_named(r).ok()
}

/// Checks `prm` with image `a` and signature `b`, skipping images that do not parse (as upstream does).
fn check(prm: &SignedIdentity, a: &str, b: &str, expected: bool) {
    let Some(intended) = image(a) else { return };
    let got = prm.matches(Some(&intended), b);
    assert_eq!(
        got.is_ok(),
        expected,
        "{prm:?}: image {a} vs signature {b}: {got:?}"
    );
}

#[test]
fn match_exact() {
    let prm = SignedIdentity::MatchExact;
    for (a, b, r) in exact_table() {
        check(&prm, &a, &b, r);
        check(&prm, &b, &a, r);
    }
    assert!(prm.matches(None, "busybox:latest").is_err());
}

#[test]
fn match_repo_digest_or_exact() {
    let prm = SignedIdentity::MatchRepoDigestOrExact;
    for (a, b, r) in exact_table().into_iter().filter(|c| c.2) {
        check(&prm, &a, &b, r);
        check(&prm, &b, &a, r);
    }
    for (a, b, r) in repository_table().into_iter().filter(|c| !c.2) {
        check(&prm, &a, &b, r);
        check(&prm, &b, &a, r);
    }
    for (a, b, r) in repo_digest_or_exact_table() {
        assert!(image(&a).is_some(), "{a}");
        check(&prm, &a, &b, r);
    }
    assert!(prm.matches(None, "busybox:latest").is_err());
}

#[test]
fn match_repository() {
    let prm = SignedIdentity::MatchRepository;
    for (a, b, r) in repository_table() {
        check(&prm, &a, &b, r);
        check(&prm, &b, &a, r);
    }
    assert!(prm.matches(None, "").is_err());
}

#[test]
fn exact_reference_and_repository() {
    let any = image("unrelated.example/image:tag").unwrap();
    for (a, b, r) in exact_table() {
        for (x, y) in [(&a, &b), (&b, &a)] {
            let prm = SignedIdentity::ExactReference {
                docker_reference: x.clone(),
            };
            // The image's own identity is not consulted: with none at all, or an unrelated one, same result.
            assert_eq!(prm.matches(None, y).is_ok(), r, "{x} vs {y}");
            assert_eq!(prm.matches(Some(&any), y).is_ok(), r, "{x} vs {y}");
        }
    }
    for (a, b, r) in repository_table() {
        for (x, y) in [(&a, &b), (&b, &a)] {
            let prm = SignedIdentity::ExactRepository {
                docker_repository: x.clone(),
            };
            assert_eq!(prm.matches(None, y).is_ok(), r, "{x} vs {y}");
        }
    }
}

#[test]
fn remap_prefix_matching() {
    let cases: &[(&str, &str, bool)] = &[
        ("docker.io/image", "docker.io", true),
        ("docker.io/image", "example.com", false),
        ("example.com:5000/image", "example.com:5000", true),
        ("example.com:50000/image", "example.com:5000", false),
        ("example.com:5000/image", "example.com", false),
        ("example.com/foo", "example.com", true),
        ("example.com/foo/bar", "example.com", true),
        ("example.com/foo/bar:baz", "example.com", true),
        (&s("example.com/foo/bar", D), "example.com", true),
        ("docker.io/ns/image", "docker.io/library", false),
        ("example.com/library", "docker.io/library", false),
        ("docker.io/libraryy/image", "docker.io/library", false),
        ("docker.io/library/busybox", "docker.io/library", true),
        ("example.com/ns/image", "example.com/ns", true),
        ("example.com/ns2/image", "example.com/ns", false),
        ("example.com/n2/image", "example.com/ns", false),
        ("example.com", "example.com/library/busybox", false),
        ("example.com:5000/ns/image", "example.com/ns", false),
        ("example.com/ns/image", "example.com:5000/ns", false),
        (
            "docker.io/library/busybox",
            "docker.io/library/busybox",
            true,
        ),
        (
            "example.com/library/busybox",
            "docker.io/library/busybox",
            false,
        ),
        (
            "docker.io/library/busybox2",
            "docker.io/library/busybox",
            false,
        ),
        ("example.com/ns/image", "example.com/ns/image", true),
        ("example.com/ns/imag2", "example.com/ns/image", false),
        ("example.com/ns/imagee", "example.com/ns/image", false),
        ("example.com:5000/ns/image", "example.com/ns/image", false),
        ("example.com/ns/image", "example.com:5000/ns/image", false),
        ("example.com/ns/image:tag", "example.com/ns/image", true),
        (&s("example.com/ns/image", D), "example.com/ns/image", true),
        (
            &s("example.com/ns/image:tag", D),
            "example.com/ns/image",
            true,
        ),
    ];
    for (r, prefix, expected) in cases {
        let reference = ImageReference::parse_normalized_named(r).unwrap();
        let got = remap_reference(prefix, "docker.io/library/signed-prefix", &reference).unwrap();
        assert_eq!(got.is_some(), *expected, "{r} vs {prefix}");
    }
}

#[test]
fn remap_rewrites() {
    let cases: Vec<(&str, &str, String, String)> = vec![
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/ns/image:tag".into(),
            "vendor.example/ns/image:tag".into(),
        ),
        (
            "mirror.example",
            "vendor.example",
            "different.com/ns/image:tag".into(),
            "different.com/ns/image:tag".into(),
        ),
        (
            "mirror.example/ns",
            "vendor.example/vendor-ns",
            "mirror.example/different-ns/image:tag".into(),
            "mirror.example/different-ns/image:tag".into(),
        ),
        (
            "docker.io",
            "not-docker-signed.example/ns",
            "busybox".into(),
            "not-docker-signed.example/ns/library/busybox".into(),
        ),
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/ns/image:tag".into(),
            "vendor.example/ns/image:tag".into(),
        ),
        (
            "example.com/mirror",
            "example.com/vendor",
            "example.com/mirror/image:tag".into(),
            "example.com/vendor/image:tag".into(),
        ),
        (
            "example.com/ns/mirror",
            "example.com/ns/vendor",
            "example.com/ns/mirror:tag".into(),
            "example.com/ns/vendor:tag".into(),
        ),
        (
            "mirror.example",
            "vendor.example",
            "prefixmirror.example/ns/image:tag".into(),
            "prefixmirror.example/ns/image:tag".into(),
        ),
        (
            "docker.io",
            "not-docker-signed.example",
            "busybox".into(),
            "not-docker-signed.example/library/busybox".into(),
        ),
        (
            "docker.io/library",
            "not-docker-signed.example/ns",
            "busybox".into(),
            "not-docker-signed.example/ns/busybox".into(),
        ),
        (
            "docker.io/library/busybox",
            "not-docker-signed.example/ns/notbusybox",
            "busybox".into(),
            "not-docker-signed.example/ns/notbusybox".into(),
        ),
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/image".into(),
            "vendor.example/image".into(),
        ),
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/image:tag".into(),
            "vendor.example/image:tag".into(),
        ),
        (
            "mirror.example",
            "vendor.example",
            s("mirror.example/image", D),
            s("vendor.example/image", D),
        ),
        (
            "mirror.example",
            "vendor.example",
            s("mirror.example/image:tag", D),
            s("vendor.example/image:tag", D),
        ),
        (
            "mirror.example/ns/image",
            "vendor.example:5000",
            "mirror.example/ns/image:tag".into(),
            "".into(),
        ),
        (
            "mirror.example/ns/image",
            "vendor.example:5000",
            s("mirror.example/ns/image", D),
            "".into(),
        ),
        (
            "mirror.example/ns/image",
            "notlocalhost",
            "mirror.example/ns/image:tag".into(),
            "".into(),
        ),
    ];
    for (prefix, signed_prefix, r, expected) in cases {
        let reference = ImageReference::parse_normalized_named(&r).unwrap();
        let got = remap_reference(prefix, signed_prefix, &reference);
        if expected.is_empty() {
            assert!(got.is_err(), "{prefix} {signed_prefix} {r}: {got:?}");
        } else {
            let got = got.unwrap().unwrap_or(reference);
            assert_eq!(got.to_string(), expected, "{prefix} {signed_prefix} {r}");
        }
    }
}

/// Upstream's trick: a prefix that never rewrites, and one that rewrites a modified domain back, must both
/// behave as matchRepoDigestOrExact.
fn remap_as_mrdoe(skip_invalid: bool, a: &str, b: &str, expected: bool) {
    let Some(parsed) = image(a) else {
        assert!(skip_invalid, "{a}");
        return;
    };
    let never = SignedIdentity::RemapIdentity {
        prefix: "never-causes-a-rewrite.example".into(),
        signed_prefix: "never-causes-a-rewrite.example".into(),
    };
    check(&never, a, b, expected);
    let modified = |x: &str| -> String {
        let mut chars: Vec<char> = x.chars().collect();
        chars[0] = match chars[0] {
            'z' => 'a',
            c @ 'a'..='y' => char::from(c as u8 + 1),
            c => panic!("unimplemented leading character {c}"),
        };
        chars.into_iter().collect()
    };
    let domain = parsed.registry().to_owned();
    let prm = SignedIdentity::RemapIdentity {
        prefix: modified(&domain),
        signed_prefix: domain,
    };
    let modified_image = image(&modified(&parsed.to_string())).unwrap();
    check(&prm, &modified_image.to_string(), b, expected);
}

#[test]
fn remap_identity() {
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        (
            "does-not-match.com",
            "does-not-match.rewritten",
            "busybox:latest",
            "busybox:latest",
            true,
        ),
        (
            "does-not-match.com",
            "does-not-match.rewritten",
            "busybox:latest",
            "notbusybox:latest",
            false,
        ),
        (
            "mirror.example",
            "public.com",
            "mirror.example/busybox:1",
            "public.com/busybox:1",
            true,
        ),
        (
            "mirror.example",
            "public.com",
            "mirror.example/busybox:1",
            "public.com/busybox:not1",
            false,
        ),
        (
            "mirror.example",
            "docker.io/library",
            "mirror.example/busybox:latest",
            "busybox:latest",
            true,
        ),
        (
            "mirror.example",
            "docker.io/library",
            "mirror.example/alpine:latest",
            "busybox:latest",
            false,
        ),
        (
            "docker.io/library",
            "original.com",
            "copied:latest",
            "original.com/copied:latest",
            true,
        ),
        (
            "docker.io/library",
            "original.com",
            "copied:latest",
            "original.com/ns/copied:latest",
            false,
        ),
        (
            "busybox",
            "example.com/busybox",
            "busybox:latest",
            "example.com/busybox:latest",
            false,
        ),
        (
            "docker.io/library/busybox",
            "busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
            false,
        ),
        (
            "UPPERCASE",
            "example.com",
            "example.com/foo:latest",
            "example.com/foo:latest",
            true,
        ),
        (
            "example.com",
            "UPPERCASE",
            "example.com/foo:latest",
            "UPPERCASE/foo:latest",
            false,
        ),
    ];
    for (prefix, signed_prefix, a, b, r) in cases {
        let prm = SignedIdentity::RemapIdentity {
            prefix: (*prefix).into(),
            signed_prefix: (*signed_prefix).into(),
        };
        check(&prm, a, b, *r);
    }
    let prm = SignedIdentity::RemapIdentity {
        prefix: "docker.io".into(),
        signed_prefix: "docker.io".into(),
    };
    assert!(prm.matches(None, "").is_err());
    for (a, b, r) in exact_table().into_iter().filter(|c| c.2) {
        remap_as_mrdoe(true, &a, &b, r);
        remap_as_mrdoe(true, &b, &a, r);
    }
    for (a, b, r) in repository_table().into_iter().filter(|c| !c.2) {
        remap_as_mrdoe(true, &a, &b, r);
        remap_as_mrdoe(true, &b, &a, r);
    }
    for (a, b, r) in repo_digest_or_exact_table() {
        remap_as_mrdoe(false, &a, &b, r);
    }
}

#[test]
fn mismatch_says_what_was_expected_and_claimed() {
    let intended = ImageReference::parse("busybox:v1").unwrap();
    let e = SignedIdentity::MatchRepoDigestOrExact
        .matches(Some(&intended), "busybox:v1-signed")
        .unwrap_err();
    assert_eq!(e.rule, "matchRepoDigestOrExact");
    assert_eq!(e.signed, "busybox:v1-signed");
    let text = e.to_string();
    assert!(
        text.contains("docker.io/library/busybox:v1") && text.contains("busybox:v1-signed"),
        "{text}"
    );
    // A cosign-style repository-only identity is refused by the default, accepted by matchRepository.
    let e = SignedIdentity::MatchRepoDigestOrExact
        .matches(Some(&intended), "docker.io/library/busybox")
        .unwrap_err();
    assert!(e.expected.contains("tag or digest"), "{e}");
    assert!(
        SignedIdentity::MatchRepository
            .matches(Some(&intended), "index.docker.io/library/busybox")
            .is_ok()
    );
    // No docker identity (dir:, oci:): only exactReference / exactRepository can match.
    let e = SignedIdentity::MatchRepository
        .matches(None, "busybox:v1")
        .unwrap_err();
    assert!(e.expected.contains("has none"), "{e}");
    assert!(
        SignedIdentity::ExactReference {
            docker_reference: "busybox:v1".into()
        }
        .matches(None, "docker.io/library/busybox:v1")
        .is_ok()
    );
    // An unparsable claimed identity is a mismatch that says so.
    let e = SignedIdentity::MatchRepository
        .matches(Some(&intended), "Not A Reference")
        .unwrap_err();
    assert!(e.expected.contains("valid docker reference"), "{e}");
}
