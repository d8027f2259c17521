//! Scope lookup: containers/image's `policy_eval_test.go` table and `naming.go` namespaces, restated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use strata_oci::{Digest, ImageReference};
use strata_policy::{LookupError, Policy, PolicyTarget, docker_scopes};

/// A policy whose every scope holds one distinct `signedBy` (keyData = transport + scope), so the matched list
/// can be told apart. Default: reject.
fn tagged_policy(scopes: &[(&str, &str)]) -> Policy {
    let mut transports: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (t, scope) in scopes {
        let data = base64_encode(&format!("{t}{scope}"));
        transports.entry(t).or_default().push(format!(
            r#"{scope:?}:[{{"type":"signedBy","keyType":"GPGKeys","keyData":"{data}"}}]"#
        ));
    }
    let body: Vec<String> = transports
        .iter()
        .map(|(t, s)| format!("{t:?}:{{{}}}", s.join(",")))
        .collect();
    let text = format!(
        r#"{{"default":[{{"type":"reject"}}],"transports":{{{}}}}}"#,
        body.join(",")
    );
    Policy::from_bytes(text.as_bytes(), Path::new("lookup.json")).unwrap()
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn docker(r: &str) -> PolicyTarget {
    PolicyTarget::Docker(ImageReference::parse(r).unwrap())
}

/// (transport, scope) chosen for `target`; ("", "default") for the policy default.
fn chosen(p: &Policy, target: &PolicyTarget) -> (String, String) {
    let m = p.requirements_for(target).unwrap();
    (m.transport.unwrap_or("").to_owned(), m.scope.to_owned())
}

#[test]
fn containers_image_lookup_table() {
    let p = tagged_policy(&[
        ("docker", ""),
        ("docker", "unmatched"),
        ("docker", "deep.com"),
        ("docker", "*.very.deep.com"),
        ("docker", "*.deep.com"),
        ("docker", "deep.com/n1"),
        ("docker", "deep.com/n1/n2"),
        ("docker", "deep.com/n1/n2/n3"),
        ("docker", "deep.com/n1/n2/n3/repo"),
        ("docker", "deep.com/n1/n2/n3/repo:tag2"),
        ("atomic", "unmatched"),
    ]);
    let cases: &[(PolicyTarget, &str, &str)] = &[
        (
            docker("deep.com/n1/n2/n3/repo:tag2"),
            "docker",
            "deep.com/n1/n2/n3/repo:tag2",
        ),
        (
            docker("deep.com/n1/n2/n3/repo:nottag2"),
            "docker",
            "deep.com/n1/n2/n3/repo",
        ),
        (
            docker("deep.com/n1/n2/n3/notrepo:tag2"),
            "docker",
            "deep.com/n1/n2/n3",
        ),
        (
            docker("deep.com/n1/n2/notn3/repo:tag2"),
            "docker",
            "deep.com/n1/n2",
        ),
        (
            docker("deep.com/n1/notn2/n3/repo:tag2"),
            "docker",
            "deep.com/n1",
        ),
        (
            docker("deep.com/notn1/n2/n3/repo:tag2"),
            "docker",
            "deep.com",
        ),
        (
            docker("very.deep.com/n1/n2/n3/repo:tag2"),
            "docker",
            "*.deep.com",
        ),
        (
            docker("not.very.deep.com/n1/n2/n3/repo:tag2"),
            "docker",
            "*.very.deep.com",
        ),
        (docker("this.does-not/match:anything"), "docker", ""),
        (
            PolicyTarget::Atomic(ImageReference::parse("this.does-not/match:anything").unwrap()),
            "",
            "default",
        ),
        (PolicyTarget::Dir("/what/ever".into()), "", "default"),
    ];
    for (target, transport, scope) in cases {
        assert_eq!(
            chosen(&p, target),
            (transport.to_string(), scope.to_string()),
            "{target:?}"
        );
    }
    // The requirements are the ones stored under that scope (nothing merged).
    let m = p
        .requirements_for(&docker("deep.com/n1/n2/n3/repo:nottag2"))
        .unwrap();
    assert_eq!(
        m.requirements,
        p.transports["docker"]["deep.com/n1/n2/n3/repo"].as_slice()
    );
}

#[test]
fn docker_namespaces() {
    let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "busybox",
            "docker.io/library/busybox:latest",
            &[
                "docker.io/library/busybox",
                "docker.io/library",
                "docker.io",
                "*.io",
            ],
        ),
        (
            "a.b.example.com:5000/ns/repo:v1",
            "a.b.example.com:5000/ns/repo:v1",
            &[
                "a.b.example.com:5000/ns/repo",
                "a.b.example.com:5000/ns",
                "a.b.example.com:5000",
                "*.b.example.com",
                "*.example.com",
                "*.com",
            ],
        ),
        (
            "localhost/x",
            "localhost/x:latest",
            &["localhost/x", "localhost"],
        ),
        (
            &format!("h.io/r@{d}"),
            &format!("h.io/r@{d}"),
            &["h.io/r", "h.io", "*.io"],
        ),
    ];
    for (r, identity, namespaces) in cases {
        let (i, n) = docker_scopes(&ImageReference::parse(r).unwrap()).unwrap();
        assert_eq!(&i, identity);
        assert_eq!(n, *namespaces);
    }
    // A name-only reference is looked up as :latest, as the docker transport tags it.
    let (i, _) =
        docker_scopes(&ImageReference::parse_normalized_named("busybox").unwrap()).unwrap();
    assert_eq!(i, "docker.io/library/busybox:latest");
    let both = ImageReference::parse(&format!("busybox:v1@{d}")).unwrap();
    assert!(matches!(
        docker_scopes(&both),
        Err(LookupError::TagAndDigest { .. })
    ));
    let p = tagged_policy(&[("docker", "")]);
    assert!(p.requirements_for(&PolicyTarget::Docker(both)).is_err());
}

#[test]
fn references_by_scopes() {
    let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let p = tagged_policy(&[
        ("docker", "example.com/ns/app:v1"),
        ("docker", &format!("example.com/ns/app@{d}")),
        ("docker", "example.com/ns/app"),
        ("docker", "example.com/ns"),
        ("docker", "example.com:5000"),
        ("docker", "*.example.com"),
        ("docker", "foo*.example.com"),
        ("docker", "docker.io/library/busybox"),
        ("docker", "registry.test"),
    ]);
    let cases: &[(&str, &str)] = &[
        ("example.com/ns/app:v1", "example.com/ns/app:v1"),
        (
            &format!("example.com/ns/app@{d}"),
            &format!("example.com/ns/app@{d}"),
        ),
        ("example.com/ns/app:v2", "example.com/ns/app"),
        ("example.com/ns/app", "example.com/ns/app"),
        ("example.com/ns/other:v1", "example.com/ns"),
        ("example.com/ns/sub/app:v1", "example.com/ns"),
        // host:port is its own namespace; wildcards use the host without the port.
        ("example.com:5000/x:1", "example.com:5000"),
        ("example.com:6000/x:1", "default"),
        // `*.example.com` covers sub-domains at any depth, with or without a port, but not example.com itself.
        ("a.example.com/x:1", "*.example.com"),
        ("a.b.example.com:5000/x:1", "*.example.com"),
        ("example.com/other:1", "default"),
        // `foo*.example.com` is not a wildcard: it parses and never matches.
        ("foobar.example.com/x:1", "*.example.com"),
        // docker.io normalisation: `busybox` is `docker.io/library/busybox`.
        ("busybox", "docker.io/library/busybox"),
        ("busybox:1.36", "docker.io/library/busybox"),
        (
            "index.docker.io/library/busybox:1",
            "docker.io/library/busybox",
        ),
        ("docker.io/busybox", "docker.io/library/busybox"),
        ("alpine", "default"),
        ("registry.test/a/b/c:1", "registry.test"),
        ("registry.testing/a:1", "default"),
    ];
    for (r, scope) in cases {
        let (_, got) = chosen(&p, &docker(r));
        assert_eq!(&got, scope, "{r}");
    }
}

#[test]
fn path_and_other_transports() {
    let p = tagged_policy(&[
        ("dir", "/srv/images"),
        ("dir", "/srv/images/app"),
        ("dir", ""),
        ("oci", "/layouts/app"),
        ("oci-archive", "/archives"),
        ("docker-archive", ""),
        (
            "containers-storage",
            "[overlay@/var/lib/containers/storage]",
        ),
        (
            "containers-storage",
            "[overlay@/var/lib/containers/storage]docker.io/library/busybox",
        ),
        ("containers-storage", "[/graph]"),
        ("docker-daemon", "docker.io/library"),
        ("docker-daemon", ""),
        ("custom", "a/b"),
    ]);
    let d =
        Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            .unwrap();
    let storage = |driver: &str, root: &str, r: Option<&str>, id: Option<&str>| {
        PolicyTarget::ContainersStorage {
            driver: driver.into(),
            graph_root: root.into(),
            reference: r.map(|r| ImageReference::parse(r).unwrap()),
            image_id: id.map(str::to_owned),
        }
    };
    let cases: Vec<(PolicyTarget, &str, &str)> = vec![
        (
            PolicyTarget::Dir("/srv/images/app".into()),
            "dir",
            "/srv/images/app",
        ),
        (
            PolicyTarget::Dir("/srv/images/app/v1".into()),
            "dir",
            "/srv/images/app",
        ),
        (
            PolicyTarget::Dir("/srv/images/other".into()),
            "dir",
            "/srv/images",
        ),
        (PolicyTarget::Dir("/srv/imagesx".into()), "dir", ""),
        (PolicyTarget::Dir("/elsewhere".into()), "dir", ""),
        (
            PolicyTarget::Oci("/layouts/app".into()),
            "oci",
            "/layouts/app",
        ),
        (
            PolicyTarget::Oci("/layouts/app/sub".into()),
            "oci",
            "/layouts/app",
        ),
        (PolicyTarget::Oci("/layouts".into()), "", "default"),
        (
            PolicyTarget::OciArchive("/archives/a.tar".into()),
            "oci-archive",
            "/archives",
        ),
        (PolicyTarget::DockerArchive, "docker-archive", ""),
        (PolicyTarget::Tarball, "", "default"),
        (PolicyTarget::Sif("/x.sif".into()), "", "default"),
        (
            storage(
                "overlay",
                "/var/lib/containers/storage",
                Some("busybox:1"),
                None,
            ),
            "containers-storage",
            "[overlay@/var/lib/containers/storage]docker.io/library/busybox",
        ),
        (
            storage(
                "overlay",
                "/var/lib/containers/storage",
                Some("alpine"),
                Some(d.hex()),
            ),
            "containers-storage",
            "[overlay@/var/lib/containers/storage]",
        ),
        (
            storage("vfs", "/graph", Some("alpine"), None),
            "containers-storage",
            "[/graph]",
        ),
        (storage("vfs", "/other", None, Some(d.hex())), "", "default"),
        (
            PolicyTarget::DockerDaemon(ImageReference::parse("busybox").unwrap()),
            "docker-daemon",
            "docker.io/library",
        ),
        (PolicyTarget::DockerDaemonId(d.clone()), "docker-daemon", ""),
        (
            PolicyTarget::Other {
                transport: "custom".into(),
                identity: "a/b/c".into(),
                namespaces: vec!["a/b".into(), "a".into()],
            },
            "custom",
            "a/b",
        ),
    ];
    for (target, transport, scope) in &cases {
        assert_eq!(
            chosen(&p, target),
            (transport.to_string(), scope.to_string()),
            "{target:?}"
        );
    }
    // containers-storage namespaces, in containers/image's order.
    let (identity, namespaces) = storage(
        "overlay",
        "/g",
        Some(&format!("busybox:1@{d}")),
        Some(d.hex()),
    )
    .scopes()
    .unwrap();
    let r = format!("docker.io/library/busybox:1@{d}");
    assert_eq!(identity.unwrap(), format!("[overlay@/g]{r}@{}", d.hex()));
    assert_eq!(
        namespaces,
        vec![
            format!("[overlay@/g]{r}"),
            "[overlay@/g]docker.io/library/busybox:1".to_owned(),
            "[overlay@/g]docker.io/library/busybox".to_owned(),
            "[overlay@/g]docker.io/library".to_owned(),
            "[overlay@/g]docker.io".to_owned(),
            "[overlay@/g]".to_owned(),
            "[/g]".to_owned(),
        ]
    );
}

#[test]
fn resolve_path_like_containers_image() {
    let dir = tempfile::tempdir().unwrap();
    let real = strata_policy::resolve_path(dir.path()).unwrap();
    std::fs::create_dir(real.join("target")).unwrap();
    std::os::unix::fs::symlink(real.join("target"), real.join("link")).unwrap();
    // Symlinks are resolved, and a missing last component is resolved through its parent.
    assert_eq!(
        strata_policy::resolve_path(&real.join("link")).unwrap(),
        real.join("target")
    );
    assert_eq!(
        strata_policy::resolve_path(&real.join("link/new")).unwrap(),
        real.join("target/new")
    );
    assert!(strata_policy::resolve_path(&real.join("missing/new")).is_err());
    let cwd: PathBuf = std::env::current_dir().unwrap();
    assert_eq!(
        strata_policy::resolve_path(Path::new("no-such-file-here")).unwrap(),
        cwd.canonicalize().unwrap().join("no-such-file-here")
    );
}
