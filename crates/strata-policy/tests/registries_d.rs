//! registries.d: merging, per-key lookup and lookaside locations (containers/image `docker/registries_d.go`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use strata_oci::ImageReference;
use strata_policy::{RegistriesD, RegistriesError, SignatureLocation, lookaside_url};

const DIGEST: &str = "sha256:01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b";

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(d.path().join(name), text).unwrap();
    }
    d
}

fn r(s: &str) -> ImageReference {
    ImageReference::parse(s).unwrap()
}

#[test]
fn per_key_fallthrough() {
    let d = dir_with(&[
        (
            "default.yaml",
            "default-docker:\n  lookaside: https://default.example/sigs\n  lookaside-staging: file:///staging/default\n  use-sigstore-attachments: true\n",
        ),
        (
            "example.yaml",
            "# comment\ndocker:\n  example.com:\n    lookaside: https://example.com/sigs\n  example.com/ns/app:\n    use-sigstore-attachments: false\n  example.com/ns:\n    sigstore-staging: file:///staging/ns\n  '*.internal.example':\n    sigstore: https://wildcard/sigs\n  empty.example:\n",
        ),
        (
            "ignored.yml",
            "default-docker: {lookaside: https://never/}\n",
        ),
        (
            "unknown-keys.yaml",
            "docker:\n  unknown.example:\n    lookaside: file:///u\n    not-a-key: 1\nalso-unknown: {}\n",
        ),
    ]);
    let c = RegistriesD::from_dir(d.path()).unwrap();
    // example.com/ns/app sets only use-sigstore-attachments: lookaside falls through to example.com, the
    // staging location to example.com/ns (via its old key name).
    let app = r("example.com/ns/app:v1");
    assert_eq!(
        c.lookaside_base(&app, false).unwrap(),
        "https://example.com/sigs"
    );
    assert_eq!(c.lookaside_base(&app, true).unwrap(), "file:///staging/ns");
    assert!(!c.use_sigstore_attachments(&app).unwrap());
    // Other repositories of example.com: attachments come from default-docker.
    let other = r("example.com/other:v1");
    assert!(c.use_sigstore_attachments(&other).unwrap());
    // Writing: example.com has no staging key but has `lookaside`, which is also for writing: it wins over
    // default-docker's staging location (the fall-through is per section, staging before lookaside).
    assert_eq!(
        c.lookaside_base(&other, true).unwrap(),
        "https://example.com/sigs"
    );
    assert_eq!(
        c.lookaside_base(&r("busybox"), true).unwrap(),
        "file:///staging/default"
    );
    // Wildcards as in policy.json.
    assert_eq!(
        c.lookaside_base(&r("a.internal.example/x:1"), false)
            .unwrap(),
        "https://wildcard/sigs"
    );
    // An empty section falls through entirely; unknown keys are ignored; *.yml files are not read.
    assert_eq!(
        c.lookaside_base(&r("empty.example/x:1"), false).unwrap(),
        "https://default.example/sigs"
    );
    assert_eq!(
        c.lookaside_base(&r("unknown.example/x:1"), false).unwrap(),
        "file:///u"
    );
    assert_eq!(
        c.configured_lookaside(&r("busybox"), false)
            .unwrap()
            .as_deref(),
        Some("https://default.example/sigs")
    );
}

#[test]
fn builtin_default_and_missing_dir() {
    let d = tempfile::tempdir().unwrap();
    let c = RegistriesD::from_dir(&d.path().join("does-not-exist")).unwrap();
    assert_eq!(c, RegistriesD::default());
    assert_eq!(c.configured_lookaside(&r("busybox"), false).unwrap(), None);
    assert!(!c.use_sigstore_attachments(&r("busybox")).unwrap());
    let base = c.lookaside_base(&r("busybox"), false).unwrap();
    let dir = strata_policy::builtin_lookaside_dir().unwrap();
    assert_eq!(base, format!("file://{}", dir.display()));
    if rustix_euid_is_root() {
        assert_eq!(dir, Path::new("/var/lib/containers/sigstore"));
    } else {
        assert!(
            dir.ends_with(".local/share/containers/sigstore"),
            "{}",
            dir.display()
        );
    }
    // Empty and comment-only files are empty configurations.
    let d = dir_with(&[("a.yaml", ""), ("b.yaml", "# nothing\n")]);
    assert_eq!(
        RegistriesD::from_dir(d.path()).unwrap(),
        RegistriesD::default()
    );
}

fn rustix_euid_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn duplicates_are_errors() {
    let d = dir_with(&[
        (
            "a.yaml",
            "docker:\n  example.com:\n    lookaside: file:///a\n",
        ),
        (
            "b.yaml",
            "docker:\n  example.com:\n    lookaside: file:///b\n",
        ),
    ]);
    let e = RegistriesD::from_dir(d.path()).unwrap_err();
    let RegistriesError::Duplicate {
        what,
        first,
        second,
    } = &e
    else {
        panic!("{e}")
    };
    assert!(what.contains("example.com"), "{e}");
    assert!(
        first.ends_with("a.yaml") && second.ends_with("b.yaml"),
        "{e}"
    );
    let d = dir_with(&[
        ("a.yaml", "default-docker:\n  lookaside: file:///a\n"),
        ("b.yaml", "default-docker:\n  sigstore: file:///b\n"),
    ]);
    let e = RegistriesD::from_dir(d.path()).unwrap_err();
    assert!(e.to_string().contains("default-docker"), "{e}");
    // The same key twice in one file is a YAML error (yaml.v3 refuses it too).
    let d = dir_with(&[(
        "a.yaml",
        "docker:\n  example.com:\n    lookaside: file:///a\n  example.com:\n    lookaside: file:///b\n",
    )]);
    let e = RegistriesD::from_dir(d.path()).unwrap_err();
    assert!(matches!(e, RegistriesError::Yaml { .. }), "{e}");
    assert!(e.to_string().contains("a.yaml"), "{e}");
    // A value of the wrong type is an error naming the file.
    let d = dir_with(&[(
        "bad.yaml",
        "docker:\n  example.com:\n    use-sigstore-attachments: [1]\n",
    )]);
    let e = RegistriesD::from_dir(d.path()).unwrap_err();
    assert!(e.to_string().contains("bad.yaml"), "{e}");
}

#[test]
fn lookaside_layout() {
    let app = r("registry.example:5000/strata/hello:v1");
    let hex = &DIGEST[7..];
    assert_eq!(
        lookaside_url("file:///var/lib/containers/sigstore", &app, DIGEST, 0).unwrap(),
        SignatureLocation::File(PathBuf::from(format!(
            "/var/lib/containers/sigstore/strata/hello@sha256={hex}/signature-1"
        )))
    );
    assert_eq!(
        lookaside_url("https://sigs.example/base", &app, DIGEST, 2).unwrap(),
        SignatureLocation::Http(format!(
            "https://sigs.example/base/strata/hello@sha256={hex}/signature-3"
        ))
    );
    // Percent-escapes in file URLs are decoded, as Go's url.Parse does; queries are kept on http URLs.
    assert_eq!(
        lookaside_url("file:///my%20sigs", &r("busybox"), DIGEST, 0).unwrap(),
        SignatureLocation::File(PathBuf::from(format!(
            "/my sigs/library/busybox@sha256={hex}/signature-1"
        )))
    );
    assert_eq!(
        lookaside_url("http://h/s?x=1", &r("busybox"), DIGEST, 0).unwrap(),
        SignatureLocation::Http(format!(
            "http://h/s/library/busybox@sha256={hex}/signature-1?x=1"
        ))
    );
    for bad in ["/no/scheme", "ftp://h/x", "file:///bad%zz"] {
        assert!(
            matches!(
                lookaside_url(bad, &app, DIGEST, 0),
                Err(RegistriesError::InvalidUrl { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn hostile_digests_are_refused() {
    let app = r("registry.example/strata/hello:v1");
    for hostile in [
        "sha256:../../../../etc/passwd",
        "sha256:01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b/../../x",
        "sha256:01BA4719C80B6FE911B091A7C05124B64EEECE964E09C058EF8F9805DACA546B",
        "sha256:01ba4719",
        "../sha256:01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256",
        "",
        "sha256:01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b\0",
    ] {
        let e = lookaside_url("file:///sigs", &app, hostile, 0).unwrap_err();
        assert!(
            matches!(e, RegistriesError::InvalidDigest { .. }),
            "{hostile:?}: {e}"
        );
    }
}
