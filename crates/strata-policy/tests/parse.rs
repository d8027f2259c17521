//! containers-policy.json parsing: containers/image's fixture, the shared vectors, and the invalid cases of
//! containers/image's `policy_config_test.go` and `policy_config_sigstore_test.go` (restated as JSON here).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};

use strata_policy::{
    KeySource, KeyType, PathOrData, Policy, PolicyError, Requirement, SignedIdentity, SigstoreTrust,
};

fn vectors() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/containers-image-signature");
    if dir.is_dir() {
        return Some(dir);
    }
    // The vectors live beside the project, not in it (shared/vectors): a clone elsewhere has none, and CI
    // cannot install them as it installs a peer, so their absence skips, loudly, even under CI=true.
    eprintln!("SKIP: vectors not found at {}", dir.display());
    None
}

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::from_bytes(text.as_bytes(), Path::new("test-policy.json"))
}

/// The JSON path and reason of a refused policy.
fn fault(text: &str) -> (String, String) {
    match parse(text) {
        Err(PolicyError::Invalid {
            json_path, reason, ..
        }) => (json_path, reason),
        Err(other) => ("<syntax>".into(), other.to_string()),
        Ok(p) => panic!("accepted: {text}\n{p:?}"),
    }
}

const ACCEPT: &str = r#"[{"type":"insecureAcceptAnything"}]"#;

/// A policy whose default is one requirement given as JSON text.
fn with_default_req(req: &str) -> String {
    format!(r#"{{"default":[{req}]}}"#)
}

#[test]
fn containers_image_fixture_policy() {
    let Some(dir) = vectors() else { return };
    let p = Policy::from_file(&dir.join("policy.json")).unwrap();
    assert_eq!(p.default, vec![Requirement::Reject]);
    let docker = &p.transports["docker"];
    assert!(matches!(
        &docker["example.com/playground"][0],
        Requirement::InsecureAcceptAnything
    ));
    let rh = &docker["registry.access.redhat.com"];
    let Requirement::SignedBy(sb) = &rh[0] else {
        panic!("{rh:?}")
    };
    assert_eq!(sb.key_type, KeyType::SignedByGpgKeys);
    assert!(
        matches!(&sb.keys, KeySource::Path(p) if p == Path::new("/keys/RH-key-signing-key-gpg-keyring"))
    );
    assert_eq!(sb.signed_identity, SignedIdentity::MatchRepoDigestOrExact);
    let mut kinds = std::collections::BTreeSet::new();
    for scopes in p.transports.values() {
        for reqs in scopes.values() {
            for r in reqs {
                kinds.insert(r.type_name());
                if let Some(i) = r.signed_identity() {
                    kinds.insert(i.type_name());
                }
            }
        }
    }
    for k in [
        "insecureAcceptAnything",
        "signedBy",
        "signedBaseLayer",
        "sigstoreSigned",
        "matchExact",
        "matchRepoDigestOrExact",
        "matchRepository",
        "remapIdentity",
    ] {
        assert!(kinds.contains(k), "fixture has no {k}: {kinds:?}");
    }
    assert!(docker.contains_key("*.access.redhat.com"));
    assert!(p.transports["dir"].contains_key(""));
}

#[test]
fn debian_default_and_minimal() {
    let p = parse(r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    assert_eq!(p.default, vec![Requirement::InsecureAcceptAnything]);
    assert!(p.transports.is_empty());
    // "transports" may be absent or empty.
    parse(&format!(r#"{{"default":{ACCEPT},"transports":{{}}}}"#)).unwrap();
    // Unknown transports are kept with their scopes unvalidated.
    let p = parse(&format!(
        r#"{{"default":{ACCEPT},"transports":{{"unknown":{{"any thing/at all":{ACCEPT}}}}}}}"#
    ))
    .unwrap();
    assert!(p.transports["unknown"].contains_key("any thing/at all"));
}

#[test]
fn top_level_faults() {
    // (policy, JSON path, reason fragment)
    let cases: &[(&str, &str, &str)] = &[
        (r#"{}"#, "$", "Default policy is missing"),
        (r#"{"transports":{}}"#, "$", "Default policy is missing"),
        (
            r#"{"default":[],"transports":{}}"#,
            "$.default",
            "must not be empty",
        ),
        (r#"{"default":null}"#, "$.default", "must not be empty"),
        (r#"{"default":1}"#, "$.default", "array"),
        (r#"{"default":{}}"#, "$.default", "array"),
        (
            r#"{"default":[{"type":"reject"}],"unexpected":1}"#,
            "$.unexpected",
            "unknown key",
        ),
        (
            r#"{"default":[{"type":"reject"}],"default":[{"type":"reject"}]}"#,
            "$.default",
            "duplicate key",
        ),
        (
            r#"{"default":[{"type":"reject"}],"transports":1}"#,
            "$.transports",
            "object expected",
        ),
        (
            r#"{"default":[{"type":"reject"}],"transports":[]}"#,
            "$.transports",
            "object expected",
        ),
        (
            r#"{"default":[{"type":"reject"}],"transports":null}"#,
            "$.transports",
            "object expected",
        ),
        (
            r#"{"default":[{"type":"reject"}],"transports":{},"transports":{}}"#,
            "$.transports",
            "duplicate key",
        ),
        (r#"[]"#, "$", "object expected"),
    ];
    for (text, path, reason) in cases {
        let (p, r) = fault(text);
        assert_eq!(&p, path, "{text}: {r}");
        assert!(r.contains(reason), "{text}: {r}");
    }
}

#[test]
fn syntax_errors_name_the_file() {
    for bad in ["", "{", r#"{"default":[{"type":"reject"}]} x"#, "nul"] {
        let e = parse(bad).unwrap_err();
        assert!(matches!(e, PolicyError::Syntax { .. }), "{bad}: {e}");
        assert!(e.to_string().contains("test-policy.json"), "{e}");
    }
}

#[test]
fn transport_scope_faults() {
    let t = |transports: &str| {
        fault(&format!(
            r#"{{"default":{ACCEPT},"transports":{transports}}}"#
        ))
    };
    let cases: &[(&str, &str, &str)] = &[
        (r#"{"docker":1}"#, "$.transports.docker", "object expected"),
        (
            r#"{"docker":{"a.com":1}}"#,
            r#"$.transports.docker["a.com"]"#,
            "array",
        ),
        (
            r#"{"docker":{"":{}}}"#,
            r#"$.transports.docker[""]"#,
            "array",
        ),
        (
            r#"{"docker":{"a.com":[]}}"#,
            r#"$.transports.docker["a.com"]"#,
            "must not be empty",
        ),
        (
            r#"{"docker":{"a.com":[{"type":"reject"}],"a.com":[{"type":"reject"}]}}"#,
            r#"$.transports.docker["a.com"]"#,
            "duplicate",
        ),
        (
            r#"{"docker":{"":[{"type":"reject"}]},"docker":{}}"#,
            "$.transports.docker",
            "duplicate",
        ),
        (
            r#"{"dir":{"relative/path":[{"type":"reject"}]}}"#,
            r#"$.transports.dir["relative/path"]"#,
            "absolute",
        ),
        (
            r#"{"dir":{"/":[{"type":"reject"}]}}"#,
            r#"$.transports.dir["/"]"#,
            "\"\"",
        ),
        (
            r#"{"dir":{"/a/../b":[{"type":"reject"}]}}"#,
            r#"$.transports.dir["/a/../b"]"#,
            "non-canonical",
        ),
        (
            r#"{"oci":{"/a/":[{"type":"reject"}]}}"#,
            r#"$.transports.oci["/a/"]"#,
            "non-canonical",
        ),
        (
            r#"{"oci-archive":{"a":[{"type":"reject"}]}}"#,
            "$.transports.oci-archive.a",
            "absolute",
        ),
        (
            r#"{"sif":{"//x":[{"type":"reject"}]}}"#,
            r#"$.transports.sif["//x"]"#,
            "non-canonical",
        ),
        (
            r#"{"docker-archive":{"/x":[{"type":"reject"}]}}"#,
            r#"$.transports.docker-archive["/x"]"#,
            "default",
        ),
        (
            r#"{"tarball":{"x":[{"type":"reject"}]}}"#,
            "$.transports.tarball.x",
            "default",
        ),
        (
            r#"{"docker-daemon":{"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855":[{"type":"reject"}]}}"#,
            r#"$.transports.docker-daemon["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]"#,
            "algo:digest",
        ),
        (
            r#"{"containers-storage":{"busybox":[{"type":"reject"}]}}"#,
            "$.transports.containers-storage.busybox",
            "invalid",
        ),
        (
            r#"{"atomic":{"h/ns/s/x":[{"type":"reject"}]}}"#,
            r#"$.transports.atomic["h/ns/s/x"]"#,
            "invalid scope",
        ),
    ];
    for (transports, path, reason) in cases {
        let (p, r) = t(transports);
        assert_eq!(&p, path, "{transports}: {r}");
        assert!(r.contains(reason), "{transports}: {r}");
    }
    // Valid scopes of each kind.
    let ok = format!(
        r#"{{"default":{ACCEPT},"transports":{{
            "docker":{{"foo*.example.com":{ACCEPT},"*.example.com":{ACCEPT},"":{ACCEPT}}},
            "dir":{{"/a/b":{ACCEPT}}},"oci":{{"/a":{ACCEPT}}},"oci-archive":{{"/a.tar":{ACCEPT}}},
            "docker-archive":{{"":{ACCEPT}}},"tarball":{{"":{ACCEPT}}},"ostree":{{"whatever":{ACCEPT}}},
            "containers-storage":{{"[overlay@/var/lib/containers/storage]docker.io/library/busybox":{ACCEPT}}},
            "docker-daemon":{{"docker.io/library/busybox:latest":{ACCEPT}}},
            "atomic":{{"registry.example/ns/stream:tag":{ACCEPT}}}}}}}"#
    );
    parse(&ok).unwrap();
}

#[test]
fn simple_requirement_faults() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"type":"this is invalid"}"#,
            "Unknown policy requirement type",
        ),
        (r#"{}"#, "Unknown policy requirement type \"\""),
        (r#"{"type":1}"#, "string"),
        (r#""reject""#, "object expected"),
        (r#"{"type":"reject","unexpected":1}"#, "unknown key"),
        (r#"{"type":"reject","type":"reject"}"#, "duplicate"),
        (
            r#"{"type":"insecureAcceptAnything","x":null}"#,
            "unknown key",
        ),
        (r#"{"type":"Reject"}"#, "Unknown policy requirement type"),
        (r#"{"type":"signedBaseLayer"}"#, "baseLayerIdentity"),
        (
            r#"{"type":"signedBaseLayer","baseLayerIdentity":"this is invalid"}"#,
            "object expected",
        ),
        (
            r#"{"type":"signedBaseLayer","baseLayerIdentity":null}"#,
            "Unknown policy reference match type",
        ),
    ];
    for (req, reason) in cases {
        let (p, r) = fault(&with_default_req(req));
        assert!(p.starts_with("$.default[0]"), "{req}: {p}");
        assert!(r.contains(reason), "{req}: {r}");
    }
    let p = parse(&with_default_req(
        r#"{"type":"signedBaseLayer","baseLayerIdentity":{"type":"matchRepository"}}"#,
    ))
    .unwrap();
    assert_eq!(
        p.default,
        vec![Requirement::SignedBaseLayer {
            base_layer_identity: SignedIdentity::MatchRepository
        }]
    );
}

#[test]
fn signed_by_forms_and_faults() {
    let ok = |req: &str| match parse(&with_default_req(req)).unwrap().default.remove(0) {
        Requirement::SignedBy(s) => s,
        other => panic!("{other:?}"),
    };
    // "abc" base64 → keyData; default identity.
    let s = ok(r#"{"type":"signedBy","keyType":"GPGKeys","keyData":"YWJj"}"#);
    assert_eq!(s.keys, KeySource::Data(b"abc".to_vec()));
    assert_eq!(s.signed_identity, SignedIdentity::MatchRepoDigestOrExact);
    // Go's base64 skips line breaks.
    let s = ok(r#"{"type":"signedBy","keyType":"GPGKeys","keyData":"YW\nJj"}"#);
    assert_eq!(s.keys, KeySource::Data(b"abc".to_vec()));
    let s = ok(r#"{"type":"signedBy","keyType":"GPGKeys","keyPath":"/foo/bar"}"#);
    assert_eq!(s.keys, KeySource::Path("/foo/bar".into()));
    let s = ok(
        r#"{"type":"signedBy","keyType":"signedByGPGKeys","keyPaths":["/1","/2"],"signedIdentity":{"type":"matchRepository"}}"#,
    );
    assert_eq!(s.keys, KeySource::Paths(vec!["/1".into(), "/2".into()]));
    assert_eq!(s.key_type, KeyType::SignedByGpgKeys);
    assert!(!s.key_type.is_implemented());
    assert_eq!(s.signed_identity, SignedIdentity::MatchRepository);
    for kt in ["X509Certificates", "signedByX509CAs"] {
        ok(&format!(
            r#"{{"type":"signedBy","keyType":"{kt}","keyPath":"/k"}}"#
        ));
    }

    let base = r#""type":"signedBy","keyType":"GPGKeys""#;
    let cases: &[(&str, &str)] = &[
        (r#"{"type":"signedBy","keyData":"YWJj"}"#, "invalid keyType"),
        (
            r#"{"type":"signedBy","keyType":"this is invalid","keyData":"YWJj"}"#,
            "Unrecognized keyType",
        ),
        (
            r#"{"type":"signedBy","keyType":null,"keyData":"YWJj"}"#,
            "Unrecognized keyType",
        ),
        (&format!("{{{base}}}"), "none of them present"),
        (
            &format!(r#"{{{base},"keyData":"YWJj","keyPath":"/foo/bar"}}"#),
            "more than one present",
        ),
        (
            &format!(r#"{{{base},"keyData":"YWJj","keyPaths":["/1"]}}"#),
            "more than one present",
        ),
        (
            &format!(r#"{{{base},"keyPath":"/a","keyPaths":["/1"]}}"#),
            "more than one present",
        ),
        (&format!(r#"{{{base},"keyPath":1}}"#), "string"),
        (&format!(r#"{{{base},"keyPath":""}}"#), "exactly one of"),
        (&format!(r#"{{{base},"keyPath":null}}"#), "exactly one of"),
        (&format!(r#"{{{base},"keyPaths":1}}"#), "array"),
        (&format!(r#"{{{base},"keyPaths":[1]}}"#), "string"),
        (&format!(r#"{{{base},"keyPaths":null}}"#), "exactly one of"),
        (&format!(r#"{{{base},"keyData":1}}"#), "base64"),
        (
            &format!(r#"{{{base},"keyData":"this is invalid base64"}}"#),
            "base64",
        ),
        (
            &format!(r#"{{{base},"keyData":"YWJj","signedIdentity":"this is invalid"}}"#),
            "object expected",
        ),
        (
            &format!(r#"{{{base},"keyData":"YWJj","signedIdentity":null}}"#),
            "Unknown policy reference match type",
        ),
        (
            &format!(r#"{{{base},"keyData":"YWJj","unexpected":1}}"#),
            "unknown key",
        ),
        (
            &format!(r#"{{{base},"keyData":"YWJj","keyType":"GPGKeys"}}"#),
            "duplicate",
        ),
        (
            &format!(r#"{{{base},"keyData":"YWJj","keyData":"YWJj"}}"#),
            "duplicate",
        ),
    ];
    for (req, reason) in cases {
        let (p, r) = fault(&with_default_req(req));
        assert!(p.starts_with("$.default[0]"), "{req}: {p}");
        assert!(r.contains(reason), "{req}: {r}");
    }
    // The path points at the faulty member.
    let (p, _) = fault(&with_default_req(&format!(
        r#"{{{base},"keyPaths":["/a",2]}}"#
    )));
    assert_eq!(p, "$.default[0].keyPaths[1]");
    let (p, _) = fault(&format!(
        r#"{{"default":{ACCEPT},"transports":{{"docker":{{"example.com/ns":[{{"type":"reject"}},{{{base},"keyData":"@@"}}]}}}}}}"#
    ));
    assert_eq!(p, r#"$.transports.docker["example.com/ns"][1].keyData"#);
}

#[test]
fn identity_forms_and_faults() {
    let id = |si: &str| {
        parse(&with_default_req(&format!(
            r#"{{"type":"signedBy","keyType":"GPGKeys","keyData":"YWJj","signedIdentity":{si}}}"#
        )))
    };
    let got = |si: &str| {
        id(si).unwrap().default[0]
            .signed_identity()
            .cloned()
            .unwrap()
    };
    assert_eq!(got(r#"{"type":"matchExact"}"#), SignedIdentity::MatchExact);
    assert_eq!(
        got(r#"{"type":"matchRepoDigestOrExact"}"#),
        SignedIdentity::MatchRepoDigestOrExact
    );
    assert_eq!(
        got(r#"{"type":"matchRepository"}"#),
        SignedIdentity::MatchRepository
    );
    assert_eq!(
        got(r#"{"type":"exactReference","dockerReference":"library/busybox:latest"}"#),
        SignedIdentity::ExactReference {
            docker_reference: "library/busybox:latest".into()
        }
    );
    assert_eq!(
        got(r#"{"type":"exactRepository","dockerRepository":"library/busybox:latest"}"#),
        SignedIdentity::ExactRepository {
            docker_repository: "library/busybox:latest".into()
        }
    );
    assert_eq!(
        got(
            r#"{"type":"remapIdentity","prefix":"example.com/docker-library","signedPrefix":"docker.io/library"}"#
        ),
        SignedIdentity::RemapIdentity {
            prefix: "example.com/docker-library".into(),
            signed_prefix: "docker.io/library".into()
        }
    );
    let bad: &[(&str, &str)] = &[
        (
            r#"{"type":"this is invalid"}"#,
            "Unknown policy reference match type",
        ),
        (r#"{}"#, "Unknown policy reference match type"),
        (r#"{"type":"matchExact","unexpected":1}"#, "unknown key"),
        (r#"{"type":"matchExact","type":"matchExact"}"#, "duplicate"),
        (r#"{"type":"matchRepository","x":[]}"#, "unknown key"),
        (r#"{"type":"exactReference"}"#, "dockerReference"),
        (r#"{"type":"exactReference","dockerReference":1}"#, "string"),
        (
            r#"{"type":"exactReference","dockerReference":""}"#,
            "Invalid format",
        ),
        (
            r#"{"type":"exactReference","dockerReference":"INVALIDUPPERCASE:latest"}"#,
            "Invalid format",
        ),
        (
            r#"{"type":"exactReference","dockerReference":"library/busybox"}"#,
            "neither a tag nor digest",
        ),
        (r#"{"type":"exactRepository"}"#, "dockerRepository"),
        (
            r#"{"type":"exactRepository","dockerRepository":""}"#,
            "Invalid format",
        ),
        (
            r#"{"type":"exactRepository","dockerRepository":"INVALIDUPPERCASE"}"#,
            "Invalid format",
        ),
        (
            r#"{"type":"remapIdentity","prefix":"example.com"}"#,
            "signedPrefix",
        ),
        (
            r#"{"type":"remapIdentity","signedPrefix":"example.com"}"#,
            "prefix",
        ),
        (
            r#"{"type":"remapIdentity","prefix":1,"signedPrefix":"example.com"}"#,
            "string",
        ),
        (
            r#"{"type":"remapIdentity","prefix":"this is invalid","signedPrefix":"example.com"}"#,
            "not valid",
        ),
        (
            r#"{"type":"remapIdentity","prefix":"example.com","signedPrefix":"this is invalid"}"#,
            "not valid",
        ),
        (
            r#"{"type":"remapIdentity","prefix":"","signedPrefix":"example.com"}"#,
            "not valid",
        ),
        (
            r#"{"type":"remapIdentity","prefix":"example.com/UPPERCASEISINVALID","signedPrefix":"example.com"}"#,
            "not valid",
        ),
    ];
    for (si, reason) in bad {
        let e = id(si).unwrap_err();
        let PolicyError::Invalid {
            json_path,
            reason: r,
            ..
        } = &e
        else {
            panic!("{e}")
        };
        assert!(
            json_path.starts_with("$.default[0].signedIdentity"),
            "{si}: {json_path}"
        );
        assert!(r.contains(reason), "{si}: {r}");
    }
}

#[test]
fn remap_prefix_validation() {
    for ok in [
        "localhost",
        "example.com",
        "example.com:80",
        "example.com/repo",
        "example.com/ns1/ns2/ns3/repo.with.dots-dashes_underscores",
        "example.com:80/ns1/ns2/ns3/repo.with.dots-dashes_underscores",
        "shortname",
        "ns/shortname",
    ] {
        assert!(strata_policy::is_valid_remap_prefix(ok), "{ok}");
    }
    for bad in [
        "",
        "repo_with_underscores",
        "example.com/",
        "example.com/UPPERCASEISINVALID",
        "example.com/repo/",
        "example.com/repo:tag",
        "example.com/repo@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "example.com/repo:tag@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        assert!(!strata_policy::is_valid_remap_prefix(bad), "{bad}");
    }
}

/// `sigstoreSigned` as containers/image HEAD reads it (Debian's 5.23 knows only keyPath/keyData/signedIdentity
/// and calls the rest unknown keys; strata follows HEAD).
#[test]
fn sigstore_signed_forms_and_faults() {
    let ok = |req: &str| match parse(&with_default_req(req)).unwrap().default.remove(0) {
        Requirement::SigstoreSigned(s) => s,
        other => panic!("{other:?}"),
    };
    let s = ok(r#"{"type":"sigstoreSigned","keyPath":"/cosign.pub"}"#);
    assert_eq!(
        s.trust,
        SigstoreTrust::Keys(KeySource::Path("/cosign.pub".into()))
    );
    assert_eq!(s.rekor_public_keys, None);
    assert_eq!(s.signed_identity, SignedIdentity::MatchRepoDigestOrExact);
    let s = ok(
        r#"{"type":"sigstoreSigned","keyDatas":["YWJj","ZGVm"],"rekorPublicKeyPaths":["/r1","/r2"]}"#,
    );
    assert_eq!(
        s.trust,
        SigstoreTrust::Keys(KeySource::Datas(vec![b"abc".to_vec(), b"def".to_vec()]))
    );
    assert_eq!(
        s.rekor_public_keys,
        Some(KeySource::Paths(vec!["/r1".into(), "/r2".into()]))
    );
    ok(r#"{"type":"sigstoreSigned","keyPaths":["/a","/b"]}"#);
    ok(r#"{"type":"sigstoreSigned","keyData":"YWJj","rekorPublicKeyData":"YWJj"}"#);
    let s = ok(
        r#"{"type":"sigstoreSigned","fulcio":{"caPath":"/ca","oidcIssuer":"https://o","subjectEmail":"a@b"},"rekorPublicKeyPath":"/rekor.pub","signedIdentity":{"type":"matchRepository"}}"#,
    );
    let SigstoreTrust::Fulcio(f) = &s.trust else {
        panic!()
    };
    assert_eq!(f.ca, PathOrData::Path("/ca".into()));
    assert_eq!(f.oidc_issuer, "https://o");
    let s = ok(
        r#"{"type":"sigstoreSigned","pki":{"caRootsData":"YWJj","caIntermediatesPath":"/i","subjectHostname":"h.example"}}"#,
    );
    let SigstoreTrust::Pki(p) = &s.trust else {
        panic!()
    };
    assert_eq!(p.ca_roots, PathOrData::Data(b"abc".to_vec()));
    assert_eq!(p.ca_intermediates, Some(PathOrData::Path("/i".into())));
    assert_eq!(p.subject_email, None);
    assert_eq!(p.subject_hostname.as_deref(), Some("h.example"));

    let fulcio = r#""fulcio":{"caPath":"/ca","oidcIssuer":"https://o","subjectEmail":"a@b"}"#;
    let pki = r#""pki":{"caRootsPath":"/r","subjectEmail":"a@b"}"#;
    let cases: Vec<(String, &str)> = vec![
        (r#"{"type":"sigstoreSigned"}"#.into(), "exactly one of"),
        (r#"{"type":"sigstoreSigned","keyPath":""}"#.into(), "exactly one of"),
        (r#"{"type":"sigstoreSigned","keyPath":"/a","keyData":"YWJj"}"#.into(), "exactly one of"),
        (r#"{"type":"sigstoreSigned","keyPath":"/a","keyPaths":["/b"]}"#.into(), "exactly one of"),
        (format!(r#"{{"type":"sigstoreSigned","keyPath":"/a",{fulcio},"rekorPublicKeyPath":"/r"}}"#), "exactly one of"),
        (format!(r#"{{"type":"sigstoreSigned",{fulcio},{pki}}}"#), "exactly one of"),
        (r#"{"type":"sigstoreSigned","keyPaths":[]}"#.into(), "no entries"),
        (r#"{"type":"sigstoreSigned","keyPaths":null}"#.into(), "no entries"),
        (r#"{"type":"sigstoreSigned","keyDatas":[]}"#.into(), "no entries"),
        (r#"{"type":"sigstoreSigned","keyPath":"/a","rekorPublicKeyPaths":[]}"#.into(), "no entries"),
        (r#"{"type":"sigstoreSigned","keyPath":"/a","rekorPublicKeyPath":"/r","rekorPublicKeyData":"YWJj"}"#.into(), "at most one"),
        (format!(r#"{{"type":"sigstoreSigned",{fulcio}}}"#), "must be specified if fulcio"),
        (format!(r#"{{"type":"sigstoreSigned",{pki},"rekorPublicKeyPath":"/r"}}"#), "not supported for pki"),
        (r#"{"type":"sigstoreSigned","fulcio":null,"rekorPublicKeyPath":"/r"}"#.into(), "object expected"),
        (r#"{"type":"sigstoreSigned","fulcio":{"oidcIssuer":"o","subjectEmail":"e"},"rekorPublicKeyPath":"/r"}"#.into(), "caPath and caData must"),
        (r#"{"type":"sigstoreSigned","fulcio":{"caPath":"/c","caData":"YWJj","oidcIssuer":"o","subjectEmail":"e"},"rekorPublicKeyPath":"/r"}"#.into(), "simultaneously"),
        (r#"{"type":"sigstoreSigned","fulcio":{"caPath":"/c","subjectEmail":"e"},"rekorPublicKeyPath":"/r"}"#.into(), "oidcIssuer"),
        (r#"{"type":"sigstoreSigned","fulcio":{"caPath":"/c","oidcIssuer":"o"},"rekorPublicKeyPath":"/r"}"#.into(), "subjectEmail"),
        (r#"{"type":"sigstoreSigned","fulcio":{"caPath":"/c","oidcIssuer":"o","subjectEmail":"e","x":1},"rekorPublicKeyPath":"/r"}"#.into(), "unknown key"),
        (r#"{"type":"sigstoreSigned","pki":{"subjectEmail":"e"}}"#.into(), "caRootsPath and caRootsData must"),
        (r#"{"type":"sigstoreSigned","pki":{"caRootsPath":"/r","caRootsData":"YWJj","subjectEmail":"e"}}"#.into(), "simultaneously"),
        (r#"{"type":"sigstoreSigned","pki":{"caRootsPath":"/r","caIntermediatesPath":"/i","caIntermediatesData":"YWJj","subjectEmail":"e"}}"#.into(), "simultaneously"),
        (r#"{"type":"sigstoreSigned","pki":{"caRootsPath":"/r"}}"#.into(), "subjectEmail, subjectHostname"),
        (r#"{"type":"sigstoreSigned","keyPath":"/a","unknown":1}"#.into(), "unknown key"),
        (r#"{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"nope"}}"#.into(), "Unknown policy reference match type"),
    ];
    for (req, reason) in &cases {
        let (p, r) = fault(&with_default_req(req));
        assert!(p.starts_with("$.default[0]"), "{req}: {p}");
        assert!(r.contains(reason), "{req}: {r}");
    }
}

#[test]
fn loading_and_key_material() {
    let dir = tempfile::tempdir().unwrap();
    // A missing explicit file is an error, never a fallback.
    let missing = dir.path().join("missing.json");
    let e = Policy::load(Some(&missing)).unwrap_err();
    assert!(matches!(e, PolicyError::Read { .. }), "{e}");
    assert!(e.to_string().contains("missing.json"));
    // An explicit path overrides.
    let key = dir.path().join("key.gpg");
    std::fs::write(&key, b"KEYRING").unwrap();
    let f = dir.path().join("p.json");
    std::fs::write(
        &f,
        format!(
            r#"{{"default":[{{"type":"signedBy","keyType":"GPGKeys","keyPaths":[{k:?},{k:?}]}},
                {{"type":"sigstoreSigned","keyData":"YWJj"}},{{"type":"reject"}}]}}"#,
            k = key.display().to_string()
        ),
    )
    .unwrap();
    let p = Policy::load(Some(&f)).unwrap();
    assert_eq!(
        p.default[0].load_keys().unwrap(),
        Some(vec![b"KEYRING".to_vec(), b"KEYRING".to_vec()])
    );
    assert_eq!(
        p.default[1].load_keys().unwrap(),
        Some(vec![b"abc".to_vec()])
    );
    assert_eq!(p.default[2].load_keys().unwrap(), None);
    // An invalid file names itself.
    std::fs::write(&f, r#"{"default":[{"type":"reject"}],"extra":1}"#).unwrap();
    let e = Policy::load(Some(&f)).unwrap_err();
    assert!(
        e.to_string().contains("p.json") && e.to_string().contains("$.extra"),
        "{e}"
    );
    // Relative key paths are resolved against the working directory, as containers/image does.
    let rel = KeySource::Path("definitely/not/here.gpg".into());
    assert!(rel.load().is_err());
}
