//! registries.conf mirrors and `location` rewriting for `docker://` reads, against real registries (Debian's
//! `docker-registry`) and checked against skopeo and podman reading the same registries.conf.
//!
//! The "primary" registry of these tests is a dead port on 127.0.0.1: whatever works does so through a
//! mirror. Covered: `inspect`, `list-tags`, `ls`/`cat` (lazy reads by range) and `pull` (with podman's pull
//! of the same reference under the same file giving the same image); `mirror-by-digest-only` and
//! `pull-from-mirror = "digest-only"` (a tag skips the mirror, a digest uses it); a `location` rewrite of a
//! prefix from a drop-in; a mirror's `insecure` not leaking to the primary; every endpoint's error reported
//! when none serves the image; malformed files.

// Test code: helpers outside #[test] functions panic on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};

use strata_tests::registry::{Auth, Env, Registry, assert_contains, clean_failure, free_port};
use strata_tests::store::TestStore;
use strata_tests::{parse_json, require_tool, run, run_unchecked, show_output};
use tempfile::TempDir;

/// The peers every test here needs; false (skip) when one is missing outside CI.
fn peers() -> bool {
    require_tool("skopeo") & require_tool("docker-registry")
}

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("strata-mirrors-test-")
        .tempdir()
        .expect("creating a tempdir")
}

/// The sample fixture as an OCI layout: the `oci:` name to push from.
fn sample(dir: &Path) -> String {
    let layout = dir.join("sample");
    strata_fixtures::fixture("sample")
        .expect("sample fixture")
        .write_layout(&layout, "v1")
        .expect("writing the sample layout");
    format!("oci:{}:v1", layout.display())
}

/// A registries.conf with `text` in `env`'s directory, set as `$CONTAINERS_REGISTRIES_CONF` for every
/// command `env` runs (strata, skopeo, podman).
fn use_conf(env: &mut Env, name: &str, text: &str) -> PathBuf {
    let path = env.path().join(name);
    std::fs::write(&path, text).unwrap();
    env.set("CONTAINERS_REGISTRIES_CONF", path.display().to_string());
    path
}

/// A registry (with `auth`) holding the sample image as `rest`: `(tmp, the sample's oci: name, registry)`.
fn registry_with_sample(auth: Auth, rest: &str) -> (TempDir, String, Registry) {
    let tmp = tempdir();
    let src = sample(tmp.path());
    let reg = Registry::start(auth);
    reg.push(&src, rest, &[]);
    (tmp, src, reg)
}

/// `127.0.0.1:PORT` with nothing listening: the dead primary.
fn dead_host() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A registries.conf: the insecure primary `dead`, with one insecure mirror at `mirror`.
fn mirror_conf(dead: &str, mirror: &str) -> String {
    format!(
        "[[registry]]\nlocation = \"{dead}\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n"
    )
}

/// Requests the registry answered for blobs, and the bytes it sent for them.
fn blob_traffic(reg: &Registry) -> (usize, u64) {
    let served = reg.served();
    let blobs: Vec<_> = served
        .iter()
        .filter(|s| s.uri.contains("/blobs/"))
        .collect();
    (blobs.len(), blobs.iter().map(|s| s.written).sum())
}

#[test]
fn reads_go_through_the_mirror_when_the_primary_is_dead() {
    if !peers() {
        return;
    }
    let (tmp_dir, src, mirror) = registry_with_sample(Auth::Open, "cache/demo/single:v1");
    let dead = dead_host();
    let mut env = Env::new();
    use_conf(
        &mut env,
        "registries.conf",
        &mirror_conf(&dead, &format!("{}/cache", mirror.host)),
    );
    let image = format!("docker://{dead}/demo/single:v1");
    let direct = mirror.image("cache/demo/single:v1");

    // inspect: the mirror's manifest, byte for byte; the same as skopeo under the same file.
    let raw = env.strata_ok(&["inspect", "--raw", &image]);
    let want = env.skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &direct]);
    assert_eq!(raw, want, "inspect --raw through the mirror");
    // (skopeo 1.9's inspect pings the primary before reading, so it cannot be the peer here: it reads the
    // mirror directly; podman's pull below goes through the same file.)
    let got = parse_json(&env.strata_ok(&["inspect", &image]), "strata inspect");
    let skopeo = parse_json(
        &env.skopeo_ok(&["inspect", "--tls-verify=false", &direct]),
        "skopeo inspect",
    );
    for key in ["Digest", "Layers", "RepoTags", "Created"] {
        assert_eq!(got[key], skopeo[key], "inspect {key}");
    }
    assert_eq!(got["Name"], format!("{dead}/demo/single"));
    let tags = parse_json(
        &env.strata_ok(&["list-tags", &format!("docker://{dead}/demo/single")]),
        "list-tags",
    );
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]));

    // ls and cat read the layers lazily (by range) from the mirror.
    let local_ls = env.strata_ok(&["ls", "-l", &src, "/etc"]);
    assert_eq!(env.strata_ok(&["ls", "-l", &image, "/etc"]), local_ls, "ls");
    let before = blob_traffic(&mirror);
    let local_cat = env.strata_ok(&["cat", &src, "/etc/os-release"]);
    assert_eq!(
        env.strata_ok(&["cat", &image, "/etc/os-release"]),
        local_cat,
        "cat"
    );
    let after = blob_traffic(&mirror);
    assert!(
        after.0 > before.0,
        "cat read blobs from the mirror: {before:?} -> {after:?}"
    );
    eprintln!(
        "cat through the mirror: {} blob requests, {} bytes",
        after.0 - before.0,
        after.1 - before.1
    );

    // pull: strata and podman, each into its own store, get the same image from the mirror.
    if !strata_tests::is_root() || !require_tool("podman") {
        eprintln!("SKIP: the pull half needs root and podman");
        return;
    }
    // (The sample fixture holds entries podman's overlay refuses as a non-root-mapped layer; a plain image
    // is pulled instead.)
    let plain_dir = tmp_dir.path().join("plain");
    let mut layer = strata_fixtures::LayerBuilder::new();
    layer.dir("app");
    layer.file("app/hello.txt", "hello through a mirror\n");
    strata_fixtures::ImageBuilder::new()
        .architecture(strata_tests::host_arch())
        .os("linux")
        .created("2024-01-02T03:04:05Z")
        .layer(layer, strata_fixtures::Compression::Gzip)
        .write_layout(&plain_dir, "v1")
        .unwrap();
    mirror.push(
        &format!("oci:{}:v1", plain_dir.display()),
        "cache/demo/plain:v1",
        &[],
    );
    let image = format!("docker://{dead}/demo/plain:v1");
    let got = parse_json(&env.strata_ok(&["inspect", &image]), "strata inspect plain");
    let ours = TestStore::new();
    let out = run_unchecked(
        env.command(strata_tests::strata_bin())
            .args(ours.strata_args())
            .args(["pull", "--quiet", &image]),
    );
    assert!(out.status.success(), "strata pull\n{}", show_output(&out));
    let theirs = TestStore::new();
    let conf = env.path().join("registries.conf");
    run(theirs
        .podman_cmd()
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .args(["pull", "--quiet", &image]));
    assert_eq!(ours.podman_image_ids(), theirs.podman_image_ids());
    let pulled = blob_traffic(&mirror);
    eprintln!(
        "strata pull + podman pull through the mirror: {} blob requests, {} bytes in all",
        pulled.0 - after.0,
        pulled.1 - after.1
    );
    let digest = |store: &TestStore| {
        String::from_utf8(store.podman_ok([
            "image",
            "inspect",
            "--format",
            "{{.Digest}}",
            &format!("{dead}/demo/plain:v1"),
        ]))
        .unwrap()
    };
    assert_eq!(digest(&ours), digest(&theirs), "manifest digest");
    assert_eq!(
        digest(&ours).trim(),
        got["Digest"].as_str().unwrap(),
        "strata pull stored the manifest inspect saw"
    );
}

#[test]
fn digest_only_mirrors_serve_digests_not_tags() {
    if !peers() {
        return;
    }
    let (_tmp, src, mirror) = registry_with_sample(Auth::Open, "demo/single:v1");
    let dead = dead_host();
    let raw = Env::new().skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &mirror.image("demo/single:v1"),
    ]);
    let digest = strata_tests::sha256_digest(&raw);
    for (what, registry_line, mirror_line) in [
        (
            "mirror-by-digest-only",
            "mirror-by-digest-only = true\n",
            "",
        ),
        (
            "pull-from-mirror",
            "",
            "pull-from-mirror = \"digest-only\"\n",
        ),
    ] {
        let mut env = Env::new();
        use_conf(
            &mut env,
            "registries.conf",
            &format!(
                "[[registry]]\nlocation = \"{dead}\"\ninsecure = true\n{registry_line}\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n{mirror_line}",
                mirror.host
            ),
        );
        let by_tag = format!("docker://{dead}/demo/single:v1");
        let err = clean_failure(&env, &["inspect", "--raw", &by_tag], what);
        assert_contains(&err, &[&dead], what);
        assert!(
            !err.contains(&mirror.host),
            "{what}: the mirror was tried:\n{err}"
        );
        // skopeo agrees: the tag does not go to the mirror.
        let skopeo = run_unchecked(env.command("skopeo").args(["inspect", "--raw", &by_tag]));
        assert!(!skopeo.status.success(), "{what}: skopeo by tag succeeded");
        let by_digest = format!("docker://{dead}/demo/single@{digest}");
        assert_eq!(
            env.strata_ok(&["inspect", "--raw", &by_digest]),
            raw,
            "{what}"
        );
        assert_eq!(
            env.strata_ok(&["cat", &by_digest, "/etc/os-release"]),
            env.strata_ok(&["cat", &src, "/etc/os-release"]),
            "{what}: cat by digest"
        );
    }
}

#[test]
fn location_rewrite_from_a_drop_in() {
    if !peers() {
        return;
    }
    let (_tmp, src, reg) = registry_with_sample(Auth::Open, "real/app:v1");
    let mut env = Env::new();
    // The main file says nothing; the drop-in (in the user's registries.conf.d, read after it) rewrites.
    use_conf(&mut env, "registries.conf", "");
    let dropins = env.home().join(".config/containers/registries.conf.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(
        dropins.join("50-team.conf"),
        format!(
            "[[registry]]\nprefix = \"example.invalid/team\"\nlocation = \"{}/wrong\"\n",
            reg.host
        ),
    )
    .unwrap();
    std::fs::write(
        dropins.join("60-team.conf"),
        format!(
            "[[registry]]\nprefix = \"example.invalid/team\"\nlocation = \"{}/real\"\ninsecure = true\n",
            reg.host
        ),
    )
    .unwrap();
    let image = "docker://example.invalid/team/app:v1";
    let raw = env.strata_ok(&["inspect", "--raw", image]);
    assert_eq!(
        raw,
        env.skopeo_ok(&["inspect", "--raw", image]),
        "skopeo agrees"
    );
    let got = parse_json(&env.strata_ok(&["inspect", image]), "inspect");
    assert_eq!(got["Name"], "example.invalid/team/app");
    assert_eq!(
        env.strata_ok(&["cat", image, "/etc/os-release"]),
        env.strata_ok(&["cat", &src, "/etc/os-release"])
    );
    let tags = parse_json(
        &env.strata_ok(&["list-tags", "docker://example.invalid/team/app"]),
        "list-tags",
    );
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]));
    // Outside the prefix nothing is rewritten.
    let err = clean_failure(
        &env,
        &["inspect", "--raw", "docker://example.invalid/teams/app:v1"],
        "outside the prefix",
    );
    assert_contains(&err, &["example.invalid"], "outside the prefix");
}

#[test]
fn a_mirrors_insecure_is_its_own() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let src = sample(tmp.path());
    let mirror = Registry::start(Auth::Open);
    let primary = Registry::start(Auth::Open);
    primary.push(&src, "demo/single:v1", &[]);
    let image = primary.image("demo/single:v1");
    let conf = |mirror_insecure: bool| {
        format!(
            "[[registry]]\nlocation = \"{}\"\n\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = {mirror_insecure}\n",
            primary.host, mirror.host
        )
    };
    // The image only at the primary, which speaks plain HTTP and is not insecure: the insecure mirror is
    // asked over HTTP (404), the primary over HTTPS only; both are named.
    let mut env = Env::new();
    use_conf(&mut env, "registries.conf", &conf(true));
    let err = clean_failure(&env, &["inspect", "--raw", &image], "primary not insecure");
    assert_contains(
        &err,
        &[
            &format!("https://{}", primary.host),
            &format!("http://{}", mirror.host),
            "mirrors also failed",
        ],
        "primary not insecure",
    );
    // The image at the mirror too: plain HTTP to the insecure mirror works.
    mirror.push(&src, "demo/single:v1", &[]);
    let want = env.skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &image]);
    assert_eq!(env.strata_ok(&["inspect", "--raw", &image]), want);
    // Not insecure, the mirror is asked over HTTPS only, and fails like the primary.
    use_conf(&mut env, "registries.conf", &conf(false));
    let err = clean_failure(&env, &["inspect", "--raw", &image], "mirror not insecure");
    assert_contains(
        &err,
        &[
            &format!("https://{}", mirror.host),
            &format!("https://{}", primary.host),
        ],
        "mirror not insecure",
    );
    // --tls-verify=false opens both, as skopeo's flag does.
    assert_eq!(
        env.strata_ok(&["inspect", "--raw", "--tls-verify=false", &image]),
        want
    );
}

#[test]
fn every_endpoint_is_named_when_none_serves_the_image() {
    if !peers() {
        return;
    }
    let empty = Registry::start(Auth::Open);
    let dead = dead_host();
    let mut env = Env::new();
    use_conf(
        &mut env,
        "registries.conf",
        &format!(
            "[[registry]]\nlocation = \"{dead}\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"{}/m1\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"{}/m2\"\ninsecure = true\n",
            empty.host, empty.host
        ),
    );
    let image = format!("docker://{dead}/demo/x:v1");
    for args in [
        vec!["inspect", "--raw", image.as_str()],
        vec!["ls", image.as_str()],
    ] {
        let err = clean_failure(&env, &args, "all endpoints fail");
        eprintln!("{}: {err}", args.join(" "));
        assert_contains(
            &err,
            &[
                &format!("{}/m1/demo/x:v1", empty.host),
                &format!("{}/m2/demo/x:v1", empty.host),
                &format!("{dead}/demo/x:v1"),
                "404",
            ],
            "all endpoints fail",
        );
    }
}

#[test]
fn malformed_registries_conf_is_a_clear_error() {
    let mut env = Env::new();
    let path = use_conf(
        &mut env,
        "registries.conf",
        "[[registry]]\nlocation = \"example.invalid\"\n\n[[registry.mirror]]\nlocation = \"mirror.invalid\"\npull-from-mirror = \"sometimes\"\n",
    );
    let err = clean_failure(
        &env,
        &["inspect", "docker://example.invalid/a:v1"],
        "bad pull-from-mirror",
    );
    assert_contains(
        &err,
        &[
            &path.display().to_string(),
            "pull-from-mirror",
            "sometimes",
            "mirror.invalid",
        ],
        "bad pull-from-mirror",
    );
    // A malformed drop-in is named too.
    use_conf(&mut env, "registries.conf", "");
    let dropins = env.home().join(".config/containers/registries.conf.d");
    std::fs::create_dir_all(&dropins).unwrap();
    let bad = dropins.join("10-bad.conf");
    std::fs::write(
        &bad,
        "[[registry]]\nlocation = \"https://example.invalid\"\n",
    )
    .unwrap();
    let err = clean_failure(
        &env,
        &["inspect", "docker://example.invalid/a:v1"],
        "bad drop-in",
    );
    assert_contains(
        &err,
        &[&bad.display().to_string(), "location"],
        "bad drop-in",
    );
}

#[test]
fn credentials_follow_the_endpoint_and_writes_skip_mirrors() {
    if !peers() {
        return;
    }
    let (_tmp, src, mirror) = registry_with_sample(Auth::Htpasswd, "demo/single:v1");
    let dead = dead_host();
    let mut env = Env::new();
    use_conf(
        &mut env,
        "registries.conf",
        &mirror_conf(&dead, &mirror.host.clone()),
    );
    let image = format!("docker://{dead}/demo/single:v1");
    // No credentials for the mirror's host: it refuses, and says so.
    let err = clean_failure(&env, &["inspect", "--raw", &image], "no credentials");
    assert_contains(
        &err,
        &[&mirror.host, "unauthorized", &dead],
        "no credentials",
    );
    // --creds are for the reference's own host (the dead primary), never sent to a mirror elsewhere.
    let creds = strata_tests::registry::creds();
    let err = clean_failure(
        &env,
        &["inspect", "--raw", "--creds", &creds, &image],
        "--creds not for mirrors",
    );
    assert_contains(
        &err,
        &[&mirror.host, "unauthorized"],
        "--creds not for mirrors",
    );
    // An auth file entry for the mirror's host is used for the mirror.
    env.write_auth(
        &env.runtime_dir().join("containers/auth.json"),
        &mirror.host,
    );
    let want = env.skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &mirror.image("demo/single:v1"),
    ]);
    assert_eq!(env.strata_ok(&["inspect", "--raw", &image]), want);

    // Writes go to the reference as named: the copy fails on the dead primary; the mirror sees no write.
    let before = mirror.served().len();
    let err = clean_failure(
        &env,
        &[
            "copy",
            "--insecure-policy",
            &src,
            &format!("docker://{dead}/demo/pushed:v1"),
        ],
        "copy to the primary",
    );
    assert_contains(&err, &[&dead], "copy to the primary");
    let writes: Vec<_> = mirror
        .served()
        .into_iter()
        .skip(before)
        .filter(|s| s.method != "GET" && s.method != "HEAD")
        .collect();
    assert!(writes.is_empty(), "the mirror got writes: {writes:?}");
}
